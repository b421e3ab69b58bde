// Shared by the CUDA benchmarks (cuda_check, attention_cuda, nn_cuda): the mean time of one
// call of f over iters calls, in milliseconds, by CUDA events around the loop, after a warm-up.
#pragma once
#include <cuda_runtime.h>

template <class F> double time_ms(F&& f, int iters) {
  f();
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  cudaEventRecord(a);
  for (int i = 0; i < iters; ++i) f();
  cudaEventRecord(b);
  cudaEventSynchronize(b);
  float ms = 0;
  cudaEventElapsedTime(&ms, a, b);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms / iters;
}
