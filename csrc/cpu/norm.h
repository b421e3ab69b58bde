// CPU batch and group normalisation: the per-ISA kernel tables (cpu/norm_vec.cpp). Semantics
// and the parameter structs: kernels/norm.h.
#pragma once
#include <cstdint>

#include "core/cpu_info.h"
#include "core/dtype.h"
#include "kernels/norm.h"

namespace fastdl::cpu {

// kernels/norm.h; keep the spellings cpu::X of these valid.
using fastdl::BatchNormParams;
using fastdl::GroupNormParams;

struct NormKernels {
  void (*batch_norm_fwd)(const BatchNormParams& p);
  void (*batch_norm_bwd)(const BatchNormParams& p);
  void (*group_norm_fwd)(const GroupNormParams& p);
  void (*group_norm_bwd)(const GroupNormParams& p);
};

namespace ref { const NormKernels& norm_table(); }
namespace avx2 { const NormKernels& norm_table(); }
namespace avx512 { const NormKernels& norm_table(); }
const NormKernels& norm_kernels();

}  // namespace fastdl::cpu
