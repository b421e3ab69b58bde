// 2-D convolution fast paths, compiled per ISA (avx2, avx512). The ref ISA runs the scalar
// reference (conv.cpp). For now every ISA runs the reference loops; the implicit-GEMM path
// lands next.
#if defined(FASTDL_ISA_avx2) || defined(FASTDL_ISA_avx512)
#include "cpu/conv.h"

namespace fastdl::cpu::FASTDL_ISA_NS {

const ConvKernels& conv_table() { return conv_ref_kernels(); }

}  // namespace fastdl::cpu::FASTDL_ISA_NS
#endif
