// Picks the pooling kernels for the ISA in force; the ref build of pool_vec.cpp is the reference.
#include "cpu/pool.h"

#include "cpu/elementwise.h"

namespace fastdl::cpu {

#ifdef FASTDL_NO_X86_ISA
namespace avx2 { const PoolKernels& pool_table() { return ref::pool_table(); } }
namespace avx512 { const PoolKernels& pool_table() { return ref::pool_table(); } }
#endif

const PoolKernels& pool_kernels() { return pick_isa(cpu_isa(), ref::pool_table(), avx2::pool_table(), avx512::pool_table()); }

}  // namespace fastdl::cpu
