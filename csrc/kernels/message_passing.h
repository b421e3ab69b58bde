// Message passing kernels over a CSR (rows = output groups, entries = edges in a fixed order):
//   gather_fwd:  out[r] = reduce over entries k of row r of  w[eid_k] * src[col_k]
//   gather_bwd:  over the transposed CSR (rows = forward sources j, col = forward targets i):
//                gx[j] = sum_k coef_k * g[i_k]            (masked by arg for max/min)
//                gw[eid_k] = scale[i_k] * <g[i_k], x[j]>  (per head; masked for max/min)
//   segment softmax over the entries of each row, forward and backward.
// Every row is computed by one thread in entry order: no atomics, and the same bits for any
// thread count. Threads take row ranges balanced by (edges + rows). The CSR is built once per
// distinct index content by ops/csr.cpp (a stable counting sort) and cached.
// Shared by the CPU (cpu/message_passing.h) and CUDA (cuda/message_passing.cu) kernels.
#pragma once
#include <cstdint>

namespace fastdl {

enum class MpReduce : uint8_t { sum, mean, max, min };

struct CsrView {
  const int64_t* rowptr = nullptr;  // rows + 1
  const int64_t* col = nullptr;     // E: the row of `src` each entry gathers
  const int64_t* eid = nullptr;     // E: the entry's position in the caller's edge list
  int64_t rows = 0, nnz = 0;
};

struct MpParams {
  CsrView csr;
  int64_t F = 0;   // features per row (contiguous rows of src/out)
  int64_t H = 1;   // weights per edge (heads): w is (E, H), features split in H blocks of F / H
  MpReduce reduce = MpReduce::sum;
  const void* src = nullptr;    // fwd: x (n_src, F);  bwd: upstream grad g (n_targets, F)
  const void* w = nullptr;      // (E, H) or null (all ones)
  void* out = nullptr;          // fwd: (rows, F);  bwd: gx (rows = n_src, F) or null
  int32_t* arg = nullptr;       // max/min: fwd writes (rows, F) eid of the winner (int32) or -1; bwd reads
  const void* scale = nullptr;  // bwd: per-target factor (mean: 1 / degree), indexed by col; or null
  const void* x = nullptr;      // bwd: forward x (n_src, F), needed for gw
  void* gw = nullptr;           // bwd: (E, H) or null
};

struct SegSoftmaxParams {
  CsrView csr;      // rows = segments; eid = entry rows of s / y / g
  int64_t H = 1;    // columns per entry
  const void* s = nullptr;  // fwd: scores (E, H)
  void* y = nullptr;        // fwd: out (E, H); bwd: saved output
  const void* g = nullptr;  // bwd: upstream grad (E, H)
  void* gs = nullptr;       // bwd: (E, H)
};

}  // namespace fastdl
