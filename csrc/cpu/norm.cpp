// Picks the normalisation kernels for the ISA in force; the ref build of norm_vec.cpp is the reference.
#include "cpu/norm.h"

#include "cpu/elementwise.h"

namespace fastdl::cpu {

#ifdef FASTDL_NO_X86_ISA
namespace avx2 { const NormKernels& norm_table() { return ref::norm_table(); } }
namespace avx512 { const NormKernels& norm_table() { return ref::norm_table(); } }
#endif

const NormKernels& norm_kernels() { return pick_isa(cpu_isa(), ref::norm_table(), avx2::norm_table(), avx512::norm_table()); }

}  // namespace fastdl::cpu
