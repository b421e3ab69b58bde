// Message passing ops (DESIGN §3.5): scatter, message_passing and segment softmax over a
// cached CSR (cpu/message_passing.h), forward and backward, CPU and CUDA.
#pragma once
#include <optional>
#include <string>

#include "core/tensor.h"

namespace fastdl {

// out (dim_size, ...) : out[index[k]] reduced over k of src[k] along `dim`; reduce in
// sum, mean, max, min; empty groups give 0. index: (src.shape[dim],) int64 (or broadcast to
// src with size 1 elsewhere). dim_size defaults to max(index) + 1.
Tensor scatter(const Tensor& src, const Tensor& index, int64_t dim, std::optional<int64_t> dim_size,
               const std::string& reduce);
// out[i] = reduce over edges e = (j -> i) of w_e * x[j]; edge_index (2, E): row 0 sources,
// row 1 targets; edge_weight (E,) or (E, H) with x (N, H, ...) (one weight per head);
// reduce in sum, mean, max, min; num_nodes (output rows) defaults to x.shape[0].
Tensor message_passing(const Tensor& x, const Tensor& edge_index, const Tensor& edge_weight,
                       const std::string& reduce, std::optional<int64_t> num_nodes);
// Softmax of src (E, ...) over the entries that share a value of index (E,), per column.
Tensor segment_softmax(const Tensor& src, const Tensor& index, std::optional<int64_t> num_nodes);

}  // namespace fastdl
