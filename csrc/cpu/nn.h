// Fused row kernels for the nn ops (ops/nn.cpp): softmax / log_softmax forward and backward,
// layer_norm forward (saving mean and rstd) and backward, cross entropy from logits forward
// (saving the log-sum-exp) and backward, element dropout. Rows are contiguous, `n` (or C)
// elements each; dt is float32 or float64 (the op upcasts halves). Each ISA build of nn_vec.cpp fills the table.
#pragma once
#include <cstdint>

#include "core/cpu_info.h"
#include "core/dtype.h"

namespace fastdl::cpu {

struct CrossEntropyParams {
  const void* x = nullptr;       // (rows, C) logits
  const int64_t* t = nullptr;    // (rows,) targets, already bounds-checked (or == ignore_index)
  const void* w = nullptr;       // (C,) class weights or null
  int64_t rows = 0, C = 0, ignore_index = -100;
  double smoothing = 0;
  void* lse = nullptr;           // (rows,) saved log-sum-exp (forward writes, backward reads)
  void* loss = nullptr;          // forward: (rows,) per-row losses, 0 on ignored rows
  const void* gloss = nullptr;   // backward: upstream grad, row r reads gloss[r * gstride] * gscale
  int64_t gstride = 1;
  double gscale = 1;
  void* gx = nullptr;            // backward: (rows, C)
};

struct NnKernels {
  void (*softmax_fwd)(DType dt, const void* x, void* y, int64_t rows, int64_t n, bool log);
  // softmax: gx = y (g - sum(g y));  log_softmax: gx = g - exp(y) sum(g)
  void (*softmax_bwd)(DType dt, const void* y, const void* g, void* gx, int64_t rows, int64_t n, bool log);
  // y = (x - mean) rstd w + b; w, b may be null; mean, rstd: (rows,). rms (RMSNorm): mean 0, so
  // rstd = 1 / sqrt(mean(x^2) + eps).
  void (*layer_norm_fwd)(DType dt, const void* x, const void* w, const void* b, void* y, void* mean, void* rstd,
                         int64_t rows, int64_t n, double eps, bool rms);
  // gx (rows, n); gw, gb (n,) or null when not wanted; rms as in forward
  void (*layer_norm_bwd)(DType dt, const void* x, const void* w, const void* mean, const void* rstd, const void* gy,
                         void* gx, void* gw, void* gb, int64_t rows, int64_t n, bool rms);
  void (*cross_entropy_fwd)(DType dt, const CrossEntropyParams& p);
  void (*cross_entropy_bwd)(DType dt, const CrossEntropyParams& p);
  // Element dropout over n contiguous elements: y[i] = x[i] * scale where
  // dropout_keep(seed, i, drop24) (kernels/random.h), else 0. Forward (x the input) and backward
  // (x the gradient) alike: the mask is regenerated, never stored.
  void (*dropout)(DType dt, const void* x, void* y, int64_t n, uint64_t seed, uint32_t drop24, double scale);
  // out[r] = sqrt(sum of x[r, :]^2) for rows of n contiguous elements (the 2-norm, no temporary)
  void (*row_norm2)(DType dt, const void* x, void* out, int64_t rows, int64_t n);
};

namespace ref { const NnKernels& nn_table(); }
namespace avx2 { const NnKernels& nn_table(); }
namespace avx512 { const NnKernels& nn_table(); }
const NnKernels& nn_kernels();

}  // namespace fastdl::cpu
