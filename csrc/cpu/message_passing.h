// CPU message passing: the per-ISA kernel tables (cpu/message_passing_vec.cpp) and the balanced
// row split. Semantics and the parameter structs: kernels/message_passing.h; the cached CSR the
// op builds from the indices: ops/csr.h.
#pragma once
#include <cstdint>

#include "core/cpu_info.h"
#include "core/dtype.h"
#include "kernels/message_passing.h"

namespace fastdl::cpu {

// kernels/message_passing.h; keep the spellings cpu::X of these valid.
using fastdl::CsrView;
using fastdl::MpParams;
using fastdl::MpReduce;
using fastdl::SegSoftmaxParams;

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

}  // namespace fastdl::cpu
