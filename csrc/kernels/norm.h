// Batch and group normalisation on contiguous (N, C, S) float32/float64 tensors (S = the product
// of the spatial dims, 1 for (N, C)). One plain struct is all a kernel sees (CPU and CUDA); the
// op (ops/norm.cpp) checks shapes and fills it. Statistics accumulate in double.
//
// batch_norm, per channel c over the M = N S elements x[:, c, :]:
//   training:  mean_c, var_c = biased batch variance, invstd_c = 1 / sqrt(var_c + eps);
//              if running_mean: running_mean = (1 - momentum) running_mean + momentum mean_c,
//                               running_var  = (1 - momentum) running_var + momentum var_c M / (M - 1)
//   eval:      mean_c = running_mean[c], invstd_c = 1 / sqrt(running_var[c] + eps) (written to
//              mean / invstd too, so backward reads the same arrays)
//   y = (x - mean_c) invstd_c w_c + b_c           (w, b may be null: 1 and 0)
//   backward, xhat = (x - mean_c) invstd_c:  gb_c = sum gy, gw_c = sum gy xhat,
//     training: gx = w_c invstd_c (gy - gb_c / M - xhat gw_c / M);  eval: gx = w_c invstd_c gy
//
// group_norm, per (n, g) over the (C / G) S contiguous elements of group g of sample n:
//   mean, invstd as above (biased variance); y = (x - mean) invstd w_c + b_c;
//   backward: with d = gy w_c, gx = invstd (d - mean(d) - xhat mean(d xhat)) over the group;
//   gw_c = sum over n, s of gy xhat, gb_c = sum of gy (scratch: 2 N C of the compute type).
// Shared by the CPU (cpu/norm.h) and CUDA (cuda/norm.cu) kernels.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace fastdl {

struct BatchNormParams {
  DType dt = DType::f32;             // every pointer below has this type
  int64_t N = 0, C = 0, S = 1;       // x / y / gx / gy: (N, C, S)
  bool training = true;
  double eps = 1e-5, momentum = 0.1;
  const void* x = nullptr;
  const void* w = nullptr;           // (C,) or null
  const void* b = nullptr;           // (C,) or null
  void* y = nullptr;                 // fwd
  void* mean = nullptr;              // (C,) fwd writes, bwd reads
  void* invstd = nullptr;            // (C,) fwd writes, bwd reads
  void* running_mean = nullptr;      // (C,) or null: read in eval, updated in training
  void* running_var = nullptr;       // (C,) or null
  const void* gy = nullptr;          // bwd
  void* gx = nullptr;                // bwd, or null
  void* gw = nullptr;                // bwd (C,), or null
  void* gb = nullptr;                // bwd (C,), or null
};

struct GroupNormParams {
  DType dt = DType::f32;
  int64_t N = 0, C = 0, S = 1, G = 1;
  double eps = 1e-5;
  const void* x = nullptr;           // (N, C, S)
  const void* w = nullptr;           // (C,) or null
  const void* b = nullptr;           // (C,) or null
  void* y = nullptr;                 // fwd
  void* mean = nullptr;              // (N, G) fwd writes, bwd reads
  void* invstd = nullptr;            // (N, G)
  const void* gy = nullptr;          // bwd
  void* gx = nullptr;                // bwd, or null
  void* gw = nullptr;                // bwd (C,), or null
  void* gb = nullptr;                // bwd (C,), or null
  void* scratch = nullptr;           // bwd: 2 N C elements of dt
};

// layer_norm's backward on CUDA (its forward is group_norm's with N = rows, C = n, S = 1, G = 1),
// over rows of n contiguous elements: with d = gy w and xhat = (x - mean) invstd,
//   gx = invstd (d - mean(d) - xhat mean(d xhat)) per row;  gw = sum over rows gy xhat, gb = sum gy.
struct LayerNormParams {
  DType dt = DType::f32;
  int64_t rows = 0, n = 0;
  const void* x = nullptr;           // (rows, n)
  const void* w = nullptr;           // (n,) or null
  const void* mean = nullptr;        // (rows,)
  const void* invstd = nullptr;      // (rows,)
  const void* gy = nullptr;          // (rows, n)
  void* gx = nullptr;                // (rows, n), or null
  void* gw = nullptr;                // (n,), or null
  void* gb = nullptr;                // (n,), or null
};

}  // namespace fastdl
