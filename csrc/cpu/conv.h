// CPU 2-D convolution: the per-ISA kernel tables, the plain-loop reference and the loop helpers
// they share. Semantics and Conv2dParams: kernels/conv.h.
#pragma once
#include <cstdint>

#include "core/cpu_info.h"
#include "core/dtype.h"
#include "kernels/conv.h"

namespace fastdl::cpu {

using fastdl::Conv2dParams;  // kernels/conv.h; keeps the spelling cpu::Conv2dParams valid

struct ConvKernels {
  void (*fwd)(const Conv2dParams& p);         // y from x, w, b
  void (*bwd_input)(const Conv2dParams& p);   // gx from gy, w
  void (*bwd_weight)(const Conv2dParams& p);  // gw (and gb when set) from x, gy
  const char* name;
};

// Plain loops in the operand precision: the oracle, and the `ref` ISA's path.
void conv2d_fwd_ref(const Conv2dParams& p);
void conv2d_bwd_input_ref(const Conv2dParams& p);
void conv2d_bwd_weight_ref(const Conv2dParams& p);
// y[n, k, :, :] += b[k] over a (N, K, HW) tensor; gb[k] = sum over n and HW of gy (N, K, HW).
void conv_bias_add(DType dt, void* y, const void* b, int64_t N, int64_t K, int64_t HW);
void conv_bias_grad(DType dt, const void* gy, void* gb, int64_t N, int64_t K, int64_t HW);

// [lo, hi): the output positions o < O whose input index o s - p + t lies in [0, I) (t = the
// tap's offset r d): the valid range of one tap along one axis, shared by every conv loop.
inline void conv_out_span(int64_t O, int64_t I, int64_t s, int64_t p, int64_t t, int64_t& lo, int64_t& hi) {
  const int64_t off = t - p;  // input index = o s + off
  lo = off >= 0 ? 0 : (-off + s - 1) / s;
  hi = I - off <= 0 ? 0 : (O < (I - off + s - 1) / s ? O : (I - off + s - 1) / s);
  if (hi < lo) hi = lo;
}

namespace avx2 { const ConvKernels& conv_table(); }
namespace avx512 { const ConvKernels& conv_table(); }
const ConvKernels& conv_ref_kernels();
const ConvKernels& conv_kernels();  // for the ISA in force

}  // namespace fastdl::cpu
