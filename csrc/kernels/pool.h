// 2-D pooling (PyTorch's max_pool2d, avg_pool2d, adaptive_avg_pool2d, adaptive_max_pool2d) on
// contiguous NCHW float32/float64 planes. One plain struct is all a kernel sees (CPU and CUDA):
// the op (ops/pool.cpp) checks shapes, computes OH / OW (ceil_mode included) and fills it.
// Windows, for output (oh, ow) of plane p = n * C + c:
//   fixed (max, avg):  rows h = oh sh - ph + i dh, i < kh (dh = 1 for avg); same for columns;
//                      taps outside [0, H) x [0, W) are skipped (max) or count as 0 (avg)
//   adaptive:          rows [floor(oh H / OH), ceil((oh + 1) H / OH)); same for columns
// max: y = the largest tap (NaN wins and stays, as PyTorch), idx = its flat h * W + w within the
//      plane (the first one on ties); a window with no valid tap is never produced by the op.
// avg: y = sum of the valid taps / divisor, where divisor = divisor_override if != 0, else the
//      window clipped to [-ph, H + ph) x [-pw, W + pw) (count_include_pad) or to the valid taps.
// Backward overwrites gx: max scatters gy to idx; avg spreads gy / divisor over the window taps.
// Shared by the CPU (cpu/pool.h) and CUDA (cuda/pool.cu) kernels.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace fastdl {

enum class PoolKind : uint8_t { max, avg, adaptive_avg, adaptive_max };

struct Pool2dParams {
  PoolKind kind = PoolKind::max;
  DType dt = DType::f32;                // f32 or f64, x / y / gx / gy alike
  int64_t planes = 0;                   // N * C
  int64_t H = 0, W = 0, OH = 0, OW = 0;
  int64_t kh = 1, kw = 1;               // window (fixed kinds)
  int64_t sh = 1, sw = 1;               // stride
  int64_t ph = 0, pw = 0;               // padding (top / left and bottom / right alike)
  int64_t dh = 1, dw = 1;               // dilation (max only)
  bool count_include_pad = true;        // avg
  int64_t divisor_override = 0;         // avg: != 0 replaces the window size (PyTorch allows < 0)
  const void* x = nullptr;              // (planes, H, W)
  void* y = nullptr;                    // (planes, OH, OW), written by fwd
  int64_t* idx = nullptr;               // max kinds: (planes, OH, OW), written by fwd, read by bwd
  const void* gy = nullptr;             // bwd: (planes, OH, OW)
  void* gx = nullptr;                   // bwd: (planes, H, W), overwritten
};

// Window bounds shared by every backend: [begin, end) along one axis of size n for output o.
inline int64_t adaptive_begin(int64_t o, int64_t n, int64_t on) { return (o * n) / on; }
inline int64_t adaptive_end(int64_t o, int64_t n, int64_t on) { return ((o + 1) * n + on - 1) / on; }

}  // namespace fastdl
