// Picks the nn row kernels for the ISA in force; the ref build of nn_vec.cpp is the reference.
#include "cpu/nn.h"

#include "cpu/elementwise.h"

namespace fastdl::cpu {

#ifdef FASTDL_NO_X86_ISA
namespace avx2 { const NnKernels& nn_table() { return ref::nn_table(); } }
namespace avx512 { const NnKernels& nn_table() { return ref::nn_table(); } }
#endif

const NnKernels& nn_kernels() { return pick_isa(cpu_isa(), ref::nn_table(), avx2::nn_table(), avx512::nn_table()); }

}  // namespace fastdl::cpu
