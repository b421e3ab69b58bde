// 2-D convolution (cross-correlation, PyTorch's conv2d), forward and backward, on contiguous
// NCHW float32/float64 operands. One plain struct is all a kernel sees (CPU and CUDA alike):
//   y[n, k, oh, ow] = b[k] + sum_{c < Cg, r < R, s < S} w[k, c, r, s] *
//                     x[n, g Cg + c, oh sh - ph + r dh, ow sw - pw + s dw]     (g = k / Kg)
// with x read as 0 outside [0, H) x [0, W). Cg = C / groups, Kg = K / groups. ph / pw are the
// top / left padding; the bottom / right padding is implied by OH / OW (PyTorch's asymmetric
// 'same' padding for even kernels), and may even be negative (rows never read).
// conv_transpose2d is the input gradient of a conv2d: the op fills the struct with the
// transposed layer's output as x / dx and its input as dy.
// The op (ops/conv.cpp) checks shapes and fills this; kernels never allocate tensors.
// Shared by the CPU (cpu/conv.h) and CUDA (cuda/conv.cu) kernels.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace fastdl {

struct Conv2dParams {
  int64_t N = 0, C = 0, H = 0, W = 0;   // input x / dx: (N, C, H, W)
  int64_t K = 0, R = 0, S = 0;          // weight w / dw: (K, C / groups, R, S)
  int64_t OH = 0, OW = 0;               // output y / dy: (N, K, OH, OW)
  int64_t sh = 1, sw = 1;               // stride
  int64_t ph = 0, pw = 0;               // top / left padding (>= 0)
  int64_t dh = 1, dw = 1;               // dilation
  int64_t groups = 1;
  DType dt = DType::f32;                // f32 or f64, every operand (CUDA also bf16 / f16)
  const void* x = nullptr;              // (N, C, H, W)
  const void* w = nullptr;              // (K, C / groups, R, S)
  const void* b = nullptr;              // (K,) or null (forward only)
  void* y = nullptr;                    // (N, K, OH, OW), written by fwd
  // backward: every gradient is overwritten, never accumulated into
  const void* gy = nullptr;             // (N, K, OH, OW): upstream gradient
  void* gx = nullptr;                   // (N, C, H, W), written by bwd_input
  void* gw = nullptr;                   // (K, C / groups, R, S), written by bwd_weight
  void* gb = nullptr;                   // (K,) or null, written by bwd_weight
};

}  // namespace fastdl
