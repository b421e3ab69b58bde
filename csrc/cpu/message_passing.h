// Message passing kernels over a CSR (rows = output groups, entries = edges in a fixed order):
//   gather_fwd:  out[r] = reduce over entries k of row r of  w[eid_k] * src[col_k]
//   gather_bwd:  over the transposed CSR (rows = forward sources j, col = forward targets i):
//                gx[j] = sum_k coef_k * g[i_k]            (masked by arg for max/min)
//                gw[eid_k] = scale[i_k] * <g[i_k], x[j]>  (per head; masked for max/min)
//   segment softmax over the entries of each row, forward and backward.
// Every row is computed by one thread in entry order: no atomics, and the same bits for any
// thread count. Threads take row ranges balanced by (edges + rows). The CSR is built once per
// distinct index content by message_passing.cpp (a stable counting sort) and cached.
#pragma once
#include <cstdint>
#include <mutex>

#include "core/cpu_info.h"
#include "core/dtype.h"
#include "core/tensor.h"

namespace fastdl::cpu {

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

struct MpKernels {
  void (*gather_fwd)(DType dt, const MpParams& p);
  void (*gather_bwd)(DType dt, const MpParams& p);
  void (*seg_softmax_fwd)(DType dt, const SegSoftmaxParams& p);
  void (*seg_softmax_bwd)(DType dt, const SegSoftmaxParams& p);
};

namespace ref { const MpKernels& mp_table(); }
namespace avx2 { const MpKernels& mp_table(); }
namespace avx512 { const MpKernels& mp_table(); }
const MpKernels& mp_kernels();

// Splits rows [0, rows) into `parts` contiguous ranges of about equal (entries + rows); writes
// parts + 1 bounds. Any split gives the same results: each row is summed by one thread in order.
void balanced_bounds(const int64_t* rowptr, int64_t rows, int parts, int64_t* bounds);

// A CSR over int64 tensors on the CPU, with lazily built transposed CSR and device copies.
struct Csr : RefCounted {
  int64_t rows = 0, cols = 0, nnz = 0;  // rows: targets (segments); cols: sources
  Tensor rowptr, col, eid;              // int64, CPU
  CsrView view() const { return {rowptr.data<int64_t>(), col.data<int64_t>(), eid.data<int64_t>(), rows, nnz}; }
  // The transposed CSR (rows = sources; col = target row; eid = edge id), built on first use.
  Ref<Csr> transposed();
  // Copies of rowptr/col/eid on a CUDA device, made on first use.
  const Tensor* on_device(Device d);

 private:
  std::mutex mu_;
  Ref<Csr> t_;
  Device dev_;
  Tensor d_[3];
};

// The CSR grouping edges by dst (stable: entries keep edge order within a row). src may be
// undefined: then col = edge position (scatter). Indices are checked before anything is built:
// IndexError names `op`, the argument, the position, the value and the bound. Cached on the
// indices' content (a 128-bit fingerprint, the sizes and the kind), reused across calls and layers.
Ref<Csr> csr_for(const Tensor& src, const Tensor& dst, int64_t n_src, int64_t n_dst, const char* op,
                 const char* src_name, const char* dst_name);
void csr_cache_clear();
int64_t csr_cache_size();
int64_t csr_cache_builds();  // CSRs built so far (tests check reuse)

}  // namespace fastdl::cpu
