// CPU sort / topk / kthvalue along one dim of a strided tensor. Every row (one index of the other
// dims) is ordered independently; rows are split over the thread pool. Order: NaN above +inf (all
// NaNs tie), -0.0 ties +0.0, as PyTorch. Values are copied bit for bit from the input.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/small_vec.h"

namespace fastdl::cpu {

struct SortParams {
  DType dt;
  const char* in;             // input at element (0, ..., 0)
  char* values;               // output, dtype dt, m elements per row
  int64_t* indices;           // output, same layout as values
  int64_t n;                  // length of the ordered dim (< 2^32)
  int64_t k;                  // topk: elements kept; kthvalue: 1-based rank
  int64_t in_stride, out_stride;  // element strides along the ordered dim
  Dims shape, in_strides, out_strides;  // the other dims (element strides)
  bool descending;            // sort: descending; topk: largest
  bool sorted;                // topk: the k results in order
};

// in: rows x (n) strided -> values/indices: rows x (n), stable (ties keep input order).
void sort_fwd(const SortParams& p);
// in: rows x (n) -> rows x (k): PyTorch's selection (partial sort when k * 64 <= n, else nth element
// then sort), so tied values come back with the same indices as torch's CPU topk.
void topk_fwd(const SortParams& p);
// in: rows x (n) -> rows x (1): the k-th smallest; among ties, the one a stable sort puts there.
void kthvalue_fwd(const SortParams& p);

}  // namespace fastdl::cpu
