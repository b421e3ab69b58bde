// CPU 2-D pooling: the per-ISA kernel tables (cpu/pool_vec.cpp). Semantics, window bounds and
// Pool2dParams: kernels/pool.h.
#pragma once
#include <cstdint>

#include "core/cpu_info.h"
#include "core/dtype.h"
#include "kernels/pool.h"

namespace fastdl::cpu {

// kernels/pool.h; keep the spellings cpu::X of these valid.
using fastdl::adaptive_begin;
using fastdl::adaptive_end;
using fastdl::Pool2dParams;
using fastdl::PoolKind;

struct PoolKernels {
  void (*fwd)(const Pool2dParams& p);
  void (*bwd)(const Pool2dParams& p);
};

namespace ref { const PoolKernels& pool_table(); }
namespace avx2 { const PoolKernels& pool_table(); }
namespace avx512 { const PoolKernels& pool_table(); }
const PoolKernels& pool_kernels();

}  // namespace fastdl::cpu
