#include "cpu/reduce.h"

namespace fastdl::cpu {

#ifdef FASTDL_NO_X86_ISA
namespace avx2 { const ReduceKernels& reduce_table() { return ref::reduce_table(); } }
namespace avx512 { const ReduceKernels& reduce_table() { return ref::reduce_table(); } }
#endif

const ReduceKernels& reduce_kernels() {
  return pick_isa(cpu_isa(), ref::reduce_table(), avx2::reduce_table(), avx512::reduce_table());
}

}  // namespace fastdl::cpu
