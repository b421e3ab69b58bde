// The CSR that scatter, message_passing and segment_softmax run over (kernels/message_passing.h
// describes how the kernels read it): built from the index tensors by a stable counting sort
// after every index was checked, and cached on the indices' content. Op-level machinery (it
// makes tensors and raises errors naming the op), so it lives here rather than beside the kernels.
#pragma once
#include <cstdint>
#include <mutex>

#include "core/tensor.h"
#include "kernels/message_passing.h"

namespace fastdl {

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

}  // namespace fastdl
