// Sorting and selection along one dim: sort (stable), topk, kthvalue. Values and int64 indices;
// the values are differentiable (the gradient is scattered back through the indices). CUDA inputs
// are ordered on the host and copied back.
#pragma once
#include <utility>

#include "core/tensor.h"

namespace fastdl {

std::pair<Tensor, Tensor> sort(const Tensor& a, int64_t dim, bool descending);  // always stable
std::pair<Tensor, Tensor> topk(const Tensor& a, int64_t k, int64_t dim, bool largest, bool sorted);
std::pair<Tensor, Tensor> kthvalue(const Tensor& a, int64_t k, int64_t dim, bool keepdim);

}  // namespace fastdl
