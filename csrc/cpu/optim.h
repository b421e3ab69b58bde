// CPU fused optimizer steps: the per-ISA kernel tables (cpu/optim_vec.cpp) over the shared
// structs of kernels/optim.h.
#pragma once
#include <cstdint>

#include "core/cpu_info.h"
#include "core/dtype.h"
#include "kernels/optim.h"

namespace fastdl::cpu {

struct OptimKernels {
  void (*step)(OptimKind kind, DType dt, const OptimHyper& h, const OptimTensor* ts, int64_t count);
};
namespace ref { const OptimKernels& optim_table(); }
namespace avx2 { const OptimKernels& optim_table(); }
namespace avx512 { const OptimKernels& optim_table(); }
const OptimKernels& optim_kernels();
const OptimKernels& optim_kernels_for(Isa isa);

}  // namespace fastdl::cpu
