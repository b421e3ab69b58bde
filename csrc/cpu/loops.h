// N-d strided iteration for CPU kernels: coalesce the dims of up to 4 operands that share
// one shape (broadcast operands have stride 0), then hand the kernel rows of the innermost
// dim, split across the thread pool when the loop is large.
#pragma once
#include <cstdint>

#include "core/error.h"
#include "core/parallel.h"
#include "core/small_vec.h"

namespace fastdl::cpu {

constexpr int kMaxOps = 4;
constexpr int64_t kParallelGrain = 1 << 15;  // elements per thread before waking the pool

struct Loop {
  int nops = 0, ndim = 0;
  int64_t shape[16];
  int64_t strides[kMaxOps][16];  // elements
  int64_t numel = 1;
};

// shape: the common shape; strides[k]: operand k's strides (0 on broadcast dims). Unit dims
// dropped, the rest ordered by the output's (operand 0's) strides, then merged where every
// operand steps through adjacent dims as one.
inline Loop make_loop(const Dims& shape, const Dims* const* strides, int nops) {
  Loop L;
  L.nops = nops;
  int nonunit = 0;
  for (int d = 0; d < shape.size(); ++d) nonunit += shape[d] != 1;
  if (nonunit > 16) throw ValueError(str_cat("tensors with more than 16 non-unit dims are not supported; got shape ", shape_str(shape)));
  int nd = 0;
  for (int d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;  // drop unit dims
    L.shape[nd] = shape[d];
    for (int k = 0; k < nops; ++k) L.strides[k][nd] = (*strides[k])[d];
    ++nd;
  }
  // Dims in the output's memory order, outermost first (a stable insertion sort by operand 0's
  // strides), so the inner loop walks it, and every operand sharing its layout, in order: with
  // x.T + y.T into a transposed output (empty_in_layout) the dims then merge into one row.
  // Only when the output has no zero or negative strides (a write order could matter there).
  bool positive = true;
  for (int d = 0; d < nd; ++d) positive &= L.strides[0][d] > 0;
  if (positive) {
    for (int d = 1; d < nd; ++d) {
      int64_t sh = L.shape[d], st[kMaxOps];
      for (int k = 0; k < nops; ++k) st[k] = L.strides[k][d];
      int e = d;
      for (; e > 0 && L.strides[0][e - 1] < st[0]; --e) {
        L.shape[e] = L.shape[e - 1];
        for (int k = 0; k < nops; ++k) L.strides[k][e] = L.strides[k][e - 1];
      }
      L.shape[e] = sh;
      for (int k = 0; k < nops; ++k) L.strides[k][e] = st[k];
    }
  }
  // merge dim i into i+1 when every operand steps through them as one
  int w = 0;
  for (int d = 0; d < nd; ++d) {
    if (w > 0) {
      bool ok = true;
      for (int k = 0; k < nops; ++k) ok &= L.strides[k][w - 1] == L.strides[k][d] * L.shape[d];
      if (ok) {
        L.shape[w - 1] *= L.shape[d];
        for (int k = 0; k < nops; ++k) L.strides[k][w - 1] = L.strides[k][d];
        continue;
      }
    }
    L.shape[w] = L.shape[d];
    for (int k = 0; k < nops; ++k) L.strides[k][w] = L.strides[k][d];
    ++w;
  }
  if (w == 0) { L.shape[0] = 1; for (int k = 0; k < nops; ++k) L.strides[k][0] = 1; w = 1; }
  L.ndim = w;
  L.numel = shape.numel();
  return L;
}

// f(char* ptrs[nops], int64_t n, const int64_t* inner_strides) per row; base pointers and
// element sizes per operand. Runs in parallel above the grain.
template <class F>
void for_each_row(const Loop& L, char* const* base, const int64_t* elsize, const F& f, int64_t grain = kParallelGrain) {
  if (L.numel == 0) return;
  const int nd = L.ndim, nops = L.nops;
  const int64_t inner = L.shape[nd - 1];
  int64_t inner_str[kMaxOps];
  for (int k = 0; k < nops; ++k) inner_str[k] = L.strides[k][nd - 1];
  if (nd == 1) {
    // one long row: split it
    parallel_for(0, inner, grain, [&](int64_t b, int64_t e) {
      char* p[kMaxOps];
      for (int k = 0; k < nops; ++k) p[k] = base[k] + b * inner_str[k] * elsize[k];
      f(p, e - b, inner_str);
    });
    return;
  }
  const int64_t rows = L.numel / inner;
  int64_t row_grain = grain / (inner > 0 ? inner : 1);
  parallel_for(0, rows, row_grain < 1 ? 1 : row_grain, [&](int64_t rb, int64_t re) {
    int64_t idx[16] = {};
    int64_t r = rb;
    for (int d = nd - 2; d >= 0; --d) { idx[d] = r % L.shape[d]; r /= L.shape[d]; }
    int64_t off[kMaxOps];  // byte offsets of the current row, stepped as idx advances
    int64_t step[kMaxOps][16];
    for (int k = 0; k < nops; ++k) {
      off[k] = 0;
      for (int d = 0; d < nd - 1; ++d) { off[k] += idx[d] * L.strides[k][d] * elsize[k]; step[k][d] = L.strides[k][d] * elsize[k]; }
    }
    for (int64_t row = rb; row < re; ++row) {
      char* p[kMaxOps];
      for (int k = 0; k < nops; ++k) p[k] = base[k] + off[k];
      f(p, inner, inner_str);
      for (int d = nd - 2; d >= 0; --d) {
        if (++idx[d] < L.shape[d]) { for (int k = 0; k < nops; ++k) off[k] += step[k][d]; break; }
        for (int k = 0; k < nops; ++k) off[k] -= (L.shape[d] - 1) * step[k][d];
        idx[d] = 0;
      }
    }
  });
}

}  // namespace fastdl::cpu
