// Message passing on CUDA over the CSR built (and cached) on the host, kernels/message_passing.h:
//   gather_fwd   warp per target row; lanes over features (kVec accumulators per lane, chunks
//                of 32 * kVec features); entries in CSR order -> sum / mean / max / min (+ arg)
//   gather_bwd   over the transposed CSR, warp per source row: gx by the same gather-reduce
//                (masked by arg for max / min); gw per entry and head by a fixed butterfly
//                reduction across the warp, written once by lane 0
//   segment softmax forward / backward: warp per segment, lanes over columns.
// Every output element is produced by one warp in a fixed order: no atomics, deterministic.
#include <cfloat>

#include "cuda/common.cuh"
#include "kernels/message_passing.h"

namespace fastdl::cuda {
namespace {


constexpr int kWarp = 32, kVec = 4, kWarpsPerBlock = 8;

unsigned blocks_for_rows(int64_t rows) {
  int64_t b = (rows + kWarpsPerBlock - 1) / kWarpsPerBlock;
  return unsigned(b < 1 ? 1 : (b > 65535LL * 16 ? 65535LL * 16 : b));
}

__device__ __forceinline__ int64_t warp_id() { return int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp; }
__device__ __forceinline__ int64_t warp_count() { return int64_t(gridDim.x) * kWarpsPerBlock; }

template <class T> __device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;  // every lane holds the same bits: the butterfly order is fixed
}

template <class T> __device__ __forceinline__ T t_exp(T v) { return exp(v); }
template <> __device__ __forceinline__ float t_exp<float>(float v) { return expf(v); }

template <class T>
__global__ void gather_fwd_kernel(MpParams p) {
  const int lane = threadIdx.x % kWarp;
  const int64_t F = p.F, C = p.F / p.H;
  const T* x = static_cast<const T*>(p.src);
  const T* w = static_cast<const T*>(p.w);
  T* out = static_cast<T*>(p.out);
  const bool ext = p.reduce == MpReduce::max || p.reduce == MpReduce::min;
  const bool mx = p.reduce == MpReduce::max;
  for (int64_t r = warp_id(); r < p.csr.rows; r += warp_count()) {
    const int64_t k0 = p.csr.rowptr[r], k1 = p.csr.rowptr[r + 1];
    for (int64_t f0 = 0; f0 < F; f0 += kWarp * kVec) {
      T acc[kVec];
      int32_t arg[kVec];
#pragma unroll
      for (int u = 0; u < kVec; ++u) { acc[u] = ext ? (mx ? T(-INFINITY) : T(INFINITY)) : T(0); arg[u] = -1; }
      for (int64_t k = k0; k < k1; ++k) {
        const int64_t j = p.csr.col[k], e = p.csr.eid[k];
        const T* xr = x + j * F;
#pragma unroll
        for (int u = 0; u < kVec; ++u) {
          const int64_t f = f0 + u * kWarp + lane;
          if (f >= F) continue;
          const T wv = w ? w[e * p.H + f / C] : T(1);
          const T v = wv * xr[f];
          if (!ext) { acc[u] += v; continue; }
          const bool better = (mx ? v > acc[u] : v < acc[u]) || (v != v && acc[u] == acc[u]);
          if (better) { acc[u] = v; arg[u] = int32_t(e); }
        }
      }
#pragma unroll
      for (int u = 0; u < kVec; ++u) {
        const int64_t f = f0 + u * kWarp + lane;
        if (f >= F) continue;
        T v = acc[u];
        if (k1 == k0) v = T(0);
        else if (p.reduce == MpReduce::mean) v = v / T(k1 - k0);
        out[r * F + f] = v;
        if (ext) p.arg[r * F + f] = k1 == k0 ? -1 : (arg[u] < 0 ? int32_t(p.csr.eid[k0]) : arg[u]);
      }
    }
  }
}

// gx over the transposed CSR (row j = forward source; col = forward target i).
template <class T>
__global__ void gather_bwd_x_kernel(MpParams p) {
  const int lane = threadIdx.x % kWarp;
  const int64_t F = p.F, C = p.F / p.H;
  const T* g = static_cast<const T*>(p.src);
  const T* w = static_cast<const T*>(p.w);
  const T* sc = static_cast<const T*>(p.scale);
  T* gx = static_cast<T*>(p.out);
  const bool ext = p.reduce == MpReduce::max || p.reduce == MpReduce::min;
  for (int64_t j = warp_id(); j < p.csr.rows; j += warp_count()) {
    const int64_t k0 = p.csr.rowptr[j], k1 = p.csr.rowptr[j + 1];
    for (int64_t f0 = 0; f0 < F; f0 += kWarp * kVec) {
      T acc[kVec];
#pragma unroll
      for (int u = 0; u < kVec; ++u) acc[u] = T(0);
      for (int64_t k = k0; k < k1; ++k) {
        const int64_t i = p.csr.col[k], e = p.csr.eid[k];
        const T s = sc ? sc[i] : T(1);
#pragma unroll
        for (int u = 0; u < kVec; ++u) {
          const int64_t f = f0 + u * kWarp + lane;
          if (f >= F) continue;
          const T wv = w ? w[e * p.H + f / C] : T(1);
          const T gv = g[i * F + f];
          if (!ext) acc[u] += wv * s * gv;
          else if (p.arg[i * F + f] == int32_t(e)) acc[u] += wv * gv;
        }
      }
#pragma unroll
      for (int u = 0; u < kVec; ++u) {
        const int64_t f = f0 + u * kWarp + lane;
        if (f < F) gx[j * F + f] = acc[u];
      }
    }
  }
}

// gw[e, h] = scale[i] * <g[i, head h], x[j, head h]> (masked by arg for max / min).
template <class T>
__global__ void gather_bwd_w_kernel(MpParams p) {
  const int lane = threadIdx.x % kWarp;
  const int64_t F = p.F, C = p.F / p.H;
  const T* g = static_cast<const T*>(p.src);
  const T* sc = static_cast<const T*>(p.scale);
  const T* x = static_cast<const T*>(p.x);
  T* gw = static_cast<T*>(p.gw);
  const bool ext = p.reduce == MpReduce::max || p.reduce == MpReduce::min;
  for (int64_t j = warp_id(); j < p.csr.rows; j += warp_count()) {
    const T* xr = x + j * F;
    for (int64_t k = p.csr.rowptr[j]; k < p.csr.rowptr[j + 1]; ++k) {
      const int64_t i = p.csr.col[k], e = p.csr.eid[k];
      const T* gr = g + i * F;
      const T s = sc ? sc[i] : T(1);
      for (int64_t h = 0; h < p.H; ++h) {
        T part = T(0);
        for (int64_t c = lane; c < C; c += kWarp) {
          const int64_t f = h * C + c;
          if (!ext || p.arg[i * F + f] == int32_t(e)) part += gr[f] * xr[f];
        }
        part = warp_sum(part);
        if (lane == 0) gw[e * p.H + h] = s * part;
      }
    }
  }
}

template <class T>
__global__ void seg_softmax_fwd_kernel(SegSoftmaxParams p) {
  const int lane = threadIdx.x % kWarp;
  const T* s = static_cast<const T*>(p.s);
  T* y = static_cast<T*>(p.y);
  for (int64_t r = warp_id(); r < p.csr.rows; r += warp_count()) {
    const int64_t k0 = p.csr.rowptr[r], k1 = p.csr.rowptr[r + 1];
    for (int64_t h = lane; h < p.H; h += kWarp) {
      T m = T(-INFINITY), z = T(0);
      for (int64_t k = k0; k < k1; ++k) {
        const T v = s[p.csr.eid[k] * p.H + h];
        if (v > m || (v != v && m == m)) m = v;
      }
      for (int64_t k = k0; k < k1; ++k) {
        const int64_t o = p.csr.eid[k] * p.H + h;
        const T v = t_exp(s[o] - m);
        y[o] = v;
        z += v;
      }
      for (int64_t k = k0; k < k1; ++k) y[p.csr.eid[k] * p.H + h] /= z;
    }
  }
}

template <class T>
__global__ void seg_softmax_bwd_kernel(SegSoftmaxParams p) {
  const int lane = threadIdx.x % kWarp;
  const T* y = static_cast<const T*>(p.y);
  const T* g = static_cast<const T*>(p.g);
  T* gs = static_cast<T*>(p.gs);
  for (int64_t r = warp_id(); r < p.csr.rows; r += warp_count()) {
    const int64_t k0 = p.csr.rowptr[r], k1 = p.csr.rowptr[r + 1];
    for (int64_t h = lane; h < p.H; h += kWarp) {
      T d = T(0);
      for (int64_t k = k0; k < k1; ++k) {
        const int64_t o = p.csr.eid[k] * p.H + h;
        d += y[o] * g[o];
      }
      for (int64_t k = k0; k < k1; ++k) {
        const int64_t o = p.csr.eid[k] * p.H + h;
        gs[o] = y[o] * (g[o] - d);
      }
    }
  }
}

template <class Fn> void by_dtype(DType dt, const char* what, Fn&& f) {
  if (dt == DType::f32) f(float());
  else if (dt == DType::f64) f(double());
  else throw DeviceError(std::string("cuda: ") + what + " supports float32 and float64; got " + dtype_str(dt));
}

}  // namespace

void mp_gather_fwd(DType dt, const MpParams& p, int device) {
  use_device(device);
  if (p.csr.rows == 0 || p.F == 0) return;
  by_dtype(dt, "message_passing", [&](auto tag) {
    using T = decltype(tag);
    gather_fwd_kernel<T><<<blocks_for_rows(p.csr.rows), kWarp * kWarpsPerBlock, 0, stream()>>>(p);
  });
  check_launch("message_passing forward");
}

void mp_gather_bwd(DType dt, const MpParams& p, int device) {
  use_device(device);
  if (p.csr.rows == 0 || p.F == 0) {
    if (p.gw && p.csr.nnz) check(cudaMemsetAsync(p.gw, 0, size_t(p.csr.nnz * p.H) * dtype_size(dt), stream()),
                                 "message_passing backward memset");
    return;
  }
  by_dtype(dt, "message_passing backward", [&](auto tag) {
    using T = decltype(tag);
    const unsigned b = blocks_for_rows(p.csr.rows);
    if (p.out) gather_bwd_x_kernel<T><<<b, kWarp * kWarpsPerBlock, 0, stream()>>>(p);
    if (p.gw) gather_bwd_w_kernel<T><<<b, kWarp * kWarpsPerBlock, 0, stream()>>>(p);
  });
  check_launch("message_passing backward");
}

void seg_softmax_fwd(DType dt, const SegSoftmaxParams& p, int device) {
  use_device(device);
  if (p.csr.rows == 0 || p.H == 0) return;
  by_dtype(dt, "segment_softmax", [&](auto tag) {
    using T = decltype(tag);
    seg_softmax_fwd_kernel<T><<<blocks_for_rows(p.csr.rows), kWarp * kWarpsPerBlock, 0, stream()>>>(p);
  });
  check_launch("segment_softmax forward");
}

void seg_softmax_bwd(DType dt, const SegSoftmaxParams& p, int device) {
  use_device(device);
  if (p.csr.rows == 0 || p.H == 0) return;
  by_dtype(dt, "segment_softmax backward", [&](auto tag) {
    using T = decltype(tag);
    seg_softmax_bwd_kernel<T><<<blocks_for_rows(p.csr.rows), kWarp * kWarpsPerBlock, 0, stream()>>>(p);
  });
  check_launch("segment_softmax backward");
}

}  // namespace fastdl::cuda
