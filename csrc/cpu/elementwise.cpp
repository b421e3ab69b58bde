#include "cpu/elementwise.h"

namespace fastdl::cpu {

#ifdef FASTDL_NO_X86_ISA
namespace avx2 { const ElementwiseKernels& elementwise_table() { return ref::elementwise_table(); } }
namespace avx512 { const ElementwiseKernels& elementwise_table() { return ref::elementwise_table(); } }
#endif

const ElementwiseKernels& elementwise_kernels_for(Isa isa) {
  return pick_isa(isa, ref::elementwise_table(), avx2::elementwise_table(), avx512::elementwise_table());
}
const ElementwiseKernels& elementwise_kernels() { return elementwise_kernels_for(cpu_isa()); }

}  // namespace fastdl::cpu
