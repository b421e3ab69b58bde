// GEMM parameters shared by the CPU (cpu/gemm.h) and CUDA (cuda/gemm.cu) kernels:
// C[b] = alpha * A[b] @ B[b] + beta * C[b] for every batch b. Operands are arbitrary strided
// views (strides in elements), so transposes and slices are absorbed by packing. beta == 0
// means C is write-only (never read, NaN-safe).
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace fastdl {

struct GemmParams {
  int64_t M = 0, N = 0, K = 0, batch = 1;
  DType dtype = DType::f32;        // f32, f64 or bf16 (all three operands; f32 accumulation)
  const void* A = nullptr;         // (batch, M, K)
  int64_t sa_b = 0, sa_m = 0, sa_k = 0;
  const void* B = nullptr;         // (batch, K, N)
  int64_t sb_b = 0, sb_k = 0, sb_n = 0;
  void* C = nullptr;               // (batch, M, N)
  int64_t sc_b = 0, sc_m = 0, sc_n = 0;
  double alpha = 1.0, beta = 0.0;
  // An outer batch level for views whose batch dims don't collapse into one stride (e.g.
  // heads split out of a (B, T, H, D) tensor): matrix (o, b) starts at o * s?_b2 + b * s?_b.
  int64_t batch2 = 1, sa_b2 = 0, sb_b2 = 0, sc_b2 = 0;
};

}  // namespace fastdl
