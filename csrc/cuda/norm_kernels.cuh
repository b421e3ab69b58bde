// Kernels of cuda/norm.cu that a host harness also runs (tests/cuda_emu): the block sum, group
// norm's forward (layer_norm's too) and layer_norm's backward. Needs the CUDA runtime's names (or the harness's emulation of them).
#pragma once
#include <cstdint>

#include "kernels/norm.h"

namespace fastdl::cuda::norm_detail {

constexpr int kWarp = 32;
constexpr int kNormThreads = 256;

// Sum over the block (kNormThreads threads), the same bits in every thread. sh: 33 doubles.
__device__ inline double block_sum(double v, double* sh) {
  for (int o = kWarp / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x % kWarp, w = threadIdx.x / kWarp;
  if (lane == 0) sh[w] = v;
  __syncthreads();
  if (w == 0) {
    v = lane < kNormThreads / kWarp ? sh[lane] : 0.0;
    for (int o = kWarp / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0) sh[kWarp] = v;
  }
  __syncthreads();
  const double r = sh[kWarp];
  __syncthreads();
  return r;
}

template <class T> __device__ inline T at(const void* p, int64_t i, T dflt) {
  return p ? static_cast<const T*>(p)[i] : dflt;
}

// One block per row r = n G + g: the L = (C / G) S contiguous elements of group g of sample n.
template <class T>
__global__ void __launch_bounds__(kNormThreads) gn_fwd_kernel(const GroupNormParams p) {
  __shared__ double sh[kWarp + 1];
  const int64_t r = blockIdx.x, Cg = p.C / p.G, S = p.S, L = Cg * S, g = r % p.G;
  const T* x = static_cast<const T*>(p.x) + r * L;
  double s = 0;
  for (int64_t e = threadIdx.x; e < L; e += kNormThreads) s += double(x[e]);
  const double mu = block_sum(s, sh) / double(L);
  const T m = T(mu);
  double v = 0;
  for (int64_t e = threadIdx.x; e < L; e += kNormThreads) {
    const T d = x[e] - m;
    v += double(d * d);
  }
  const double is = 1.0 / sqrt(block_sum(v, sh) / double(L) + p.eps);
  if (threadIdx.x == 0) {
    static_cast<T*>(p.mean)[r] = m;
    static_cast<T*>(p.invstd)[r] = T(is);
  }
  T* y = static_cast<T*>(p.y) + r * L;
  for (int64_t e = threadIdx.x; e < L; e += kNormThreads) {
    const int64_t c = g * Cg + e / S;
    y[e] = T(double(at<T>(p.w, c, T(1))) * is) * (x[e] - m) + at<T>(p.b, c, T(0));  // centred first
  }
}

// gx of layer_norm, one block per row (grid-stride over rows).
template <class T>
__global__ void __launch_bounds__(kNormThreads) ln_bwd_kernel(const LayerNormParams p) {
  __shared__ double sh[kWarp + 1];
  const T* wp = static_cast<const T*>(p.w);
  for (int64_t r = blockIdx.x; r < p.rows; r += gridDim.x) {
    const T* x = static_cast<const T*>(p.x) + r * p.n;
    const T* gy = static_cast<const T*>(p.gy) + r * p.n;
    const double m = double(static_cast<const T*>(p.mean)[r]), is = double(static_cast<const T*>(p.invstd)[r]);
    double sd = 0, sdx = 0;  // sum d, sum d (x - mean), d = gy w
    for (int64_t e = threadIdx.x; e < p.n; e += kNormThreads) {
      const double d = double(gy[e]) * (wp ? double(wp[e]) : 1.0);
      sd += d;
      sdx += d * (double(x[e]) - m);
    }
    sd = block_sum(sd, sh);
    sdx = block_sum(sdx, sh);
    // gx = is (d - sd / n - (x - m) is^2 sdx / n)
    const double b = -is * is * is * sdx / double(p.n), c = -is * sd / double(p.n);
    T* gx = static_cast<T*>(p.gx) + r * p.n;
    for (int64_t e = threadIdx.x; e < p.n; e += kNormThreads) {
      const double d = double(gy[e]) * (wp ? double(wp[e]) : 1.0);
      gx[e] = T(is * d + b * (double(x[e]) - m) + c);
    }
  }
}

// gw / gb partials: block (column block, row chunk z) sums rows [z rpc, (z + 1) rpc) of its
// columns into ws[z][n] (gw) and ws[chunks + z][n] (gb), doubles; consecutive threads read
// consecutive columns of a row (coalesced).
template <class T>
__global__ void __launch_bounds__(kNormThreads) ln_param_partial_kernel(const LayerNormParams p, int64_t rpc, double* ws) {
  const int64_t c = int64_t(blockIdx.x) * kNormThreads + threadIdx.x, z = blockIdx.y, chunks = gridDim.y;
  if (c >= p.n) return;
  const int64_t r0 = z * rpc, r1 = r0 + rpc < p.rows ? r0 + rpc : p.rows;
  double gw = 0, gb = 0;
  for (int64_t r = r0; r < r1; ++r) {
    const double g = double(static_cast<const T*>(p.gy)[r * p.n + c]);
    const double xh = (double(static_cast<const T*>(p.x)[r * p.n + c]) - double(static_cast<const T*>(p.mean)[r])) *
                      double(static_cast<const T*>(p.invstd)[r]);
    gw += g * xh;
    gb += g;
  }
  ws[z * p.n + c] = gw;
  ws[(chunks + z) * p.n + c] = gb;
}

// gw[c], gb[c] = the chunks' partials summed in order (reproducible).
template <class T>
__global__ void __launch_bounds__(kNormThreads) ln_param_reduce_kernel(const LayerNormParams p, int64_t chunks, const double* ws) {
  const int64_t c = int64_t(blockIdx.x) * kNormThreads + threadIdx.x;
  if (c >= p.n) return;
  double gw = 0, gb = 0;
  for (int64_t z = 0; z < chunks; ++z) gw += ws[z * p.n + c], gb += ws[(chunks + z) * p.n + c];
  if (p.gw) static_cast<T*>(p.gw)[c] = T(gw);
  if (p.gb) static_cast<T*>(p.gb)[c] = T(gb);
}

}  // namespace fastdl::cuda::norm_detail
