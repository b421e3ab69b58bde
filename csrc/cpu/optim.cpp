// Picks the optimizer-step kernels for the ISA in force. The ref build of optim_vec.cpp
// (plain scalar loops, no ISA flags) is the reference and the non-x86 path.
#include "cpu/optim.h"

#include "cpu/elementwise.h"

namespace fastdl::cpu {

#ifdef FASTDL_NO_X86_ISA
namespace avx2 { const OptimKernels& optim_table() { return ref::optim_table(); } }
namespace avx512 { const OptimKernels& optim_table() { return ref::optim_table(); } }
#endif

const OptimKernels& optim_kernels_for(Isa isa) {
  return pick_isa(isa, ref::optim_table(), avx2::optim_table(), avx512::optim_table());
}
const OptimKernels& optim_kernels() { return optim_kernels_for(cpu_isa()); }

}  // namespace fastdl::cpu
