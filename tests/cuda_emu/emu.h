// Host emulation of the CUDA names a kernel uses, for checking kernels' index arithmetic where
// no GPU is: one std::thread per CUDA thread, a std::barrier per block for __syncthreads and
// one per warp for the shuffles; blocks run one after another, so __shared__ arrays (function
// statics here) are per block in effect. Timing means nothing here; results must match.
#pragma once
#include <barrier>
#include <cmath>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};
inline thread_local dim3 threadIdx, blockIdx;
inline dim3 gridDim, blockDim;
inline std::barrier<>* g_block_bar;
inline std::vector<std::unique_ptr<std::barrier<>>> g_warp_bar;
inline double g_lanes[32][32];  // [warp][lane] values in flight through a shuffle

inline void __syncthreads() { g_block_bar->arrive_and_wait(); }
template <class T> T __shfl_xor_sync(unsigned, T v, int o) {
  const unsigned lane = threadIdx.x % 32, w = threadIdx.x / 32;
  g_lanes[w][lane] = double(v);
  g_warp_bar[w]->arrive_and_wait();
  const T r = T(g_lanes[w][lane ^ unsigned(o)]);
  g_warp_bar[w]->arrive_and_wait();
  return r;
}
struct alignas(16) float4 { float x, y, z, w; };
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
template <class To> inline To cvt(float v) { return To(v); }
template <class To> inline To cvt(double v) { return To(v); }
using std::fma;
using std::sqrt;

// Runs f() as every thread of every block of grid (threads a multiple of 32, at most 1024).
template <class F> void emu_launch(dim3 grid, unsigned threads, F f) {
  gridDim = grid;
  blockDim = {threads, 1, 1};
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        std::barrier<> bar(threads);
        g_block_bar = &bar;
        g_warp_bar.clear();
        for (unsigned w = 0; w < threads / 32; ++w) g_warp_bar.push_back(std::make_unique<std::barrier<>>(32));
        std::vector<std::thread> ts;
        for (unsigned t = 0; t < threads; ++t)
          ts.emplace_back([&, t] { threadIdx = {t, 0, 0}; blockIdx = {x, y, z}; f(); });
        for (auto& th : ts) th.join();
      }
}
