// Picks the random fill kernels for the ISA in force; the ref build of random_vec.cpp is the reference.
#include "cpu/random.h"

#include "cpu/elementwise.h"

namespace fastdl::cpu {

#ifdef FASTDL_NO_X86_ISA
namespace avx2 { const RandomKernels& random_table() { return ref::random_table(); } }
namespace avx512 { const RandomKernels& random_table() { return ref::random_table(); } }
#endif

const RandomKernels& random_kernels() {
  return pick_isa(cpu_isa(), ref::random_table(), avx2::random_table(), avx512::random_table());
}

}  // namespace fastdl::cpu
