// CPU recurrent layers: the drivers (cpu/rnn.cpp: the step loop over cpu::gemm and the fused
// cells) and the per-ISA cell kernel tables. Semantics, RnnParams and the cell formulas:
// kernels/rnn.h.
#pragma once
#include <cstdint>

#include "core/cpu_info.h"
#include "core/dtype.h"
#include "kernels/rnn.h"

namespace fastdl::cpu {

// kernels/rnn.h; keep the spellings cpu::X of these valid.
using fastdl::rnn_gates;
using fastdl::rnn_saved;
using fastdl::RnnCellArgs;
using fastdl::RnnMode;
using fastdl::RnnParams;

struct RnnKernels {
  void (*cell_fwd)(DType dt, const RnnCellArgs& a, int64_t r0, int64_t r1);  // rows [r0, r1)
  void (*cell_bwd)(DType dt, const RnnCellArgs& a, int64_t r0, int64_t r1);
};

// Fills p.offsets' storage from batch sizes (off[t] = sum of bs before t); returns N.
int64_t rnn_offsets(const int64_t* bs, int64_t T, int64_t* off);

void rnn_fwd(const RnnParams& p);  // CPU drivers over the ISA's cell kernels and cpu::gemm
void rnn_bwd(const RnnParams& p);

// Plain scalar cell kernels: the oracle, and the `ref` ISA's path.
void rnn_cell_fwd_ref(DType dt, const RnnCellArgs& a, int64_t r0, int64_t r1);
void rnn_cell_bwd_ref(DType dt, const RnnCellArgs& a, int64_t r0, int64_t r1);

namespace avx2 { const RnnKernels& rnn_table(); }
namespace avx512 { const RnnKernels& rnn_table(); }
const RnnKernels& rnn_kernels();

}  // namespace fastdl::cpu
