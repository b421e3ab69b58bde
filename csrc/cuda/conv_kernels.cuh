// Kernels of cuda/conv.cu that a host harness also runs (tests/cuda_emu/conv_emu.cpp): conv2d's
// three implicit GEMMs (Chetlur et al., cuDNN 2014) as operand gathers (Ops), the SIMT tiled
// GEMM kernel over them, and the sum of split-k partials. Needs the CUDA runtime's names and
// cvt (cuda/common.cuh), or the harness's emulation of them. Semantics: kernels/conv.h.
//   fwd         y  (Kg x N*OH*OW) = w (Kg x Cg*R*S) . im2col(x)        (+ bias)    k = (c, r, s)
//   bwd_input   gx (Cg x N*H*W)   = w^T (Cg x Kg*R*S) . col(gy)          k = (output channel, r, s)
//   bwd_weight  gw (Kg x Cg*R*S)  = gy (Kg x N*OH*OW) . im2col(x)^T      k = (n, oh, ow)
// im2col never exists in memory: each operand element is gathered from the tensor it lies in.
// Every k is three mixed-radix digits; a thread decodes its k positions once (two divisions)
// and then advances them by the k step with adds and compares, never a division per element.
// A long k range with too few output tiles to fill the device is split into per-split partials
// in Acc<T>, summed in split order by splits_finish_kernel (no atomics: reproducible).
#pragma once
#include <cstdint>
#include <type_traits>

#include "kernels/conv.h"

namespace fastdl::cuda::conv_detail {

// Accumulation type: double for double, float for float and the half types.
template <class T> using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;
template <class T> __device__ __forceinline__ T zero() { return cvt<T>(0.0f); }

constexpr int kBM = 64, kBN = 64, kBK = 16;  // tile rows, columns, k depth (SIMT kernel)
constexpr int kTM = 4, kTN = 4;              // outputs per thread: rows 4 ty + i, columns 4 tx + j
constexpr int kGemmThreads = 256;

// k = (hi r1 + mid) r0 + lo.
struct Digits {
  int hi, mid, lo;
};
struct Radix {
  int r1, r0;
  __host__ __device__ Digits at(int64_t k) const {
    const int64_t t = k / r0;
    return {int(t / r1), int(t % r1), int(k % r0)};
  }
  // d += s, s = at(step): one carry per digit suffices (s.lo < r0, s.mid < r1).
  __device__ __forceinline__ void add(Digits& d, const Digits& s) const {
    d.lo += s.lo;
    if (d.lo >= r0) d.lo -= r0, ++d.mid;
    d.mid += s.mid;
    if (d.mid >= r1) d.mid -= r1, ++d.hi;
    d.hi += s.hi;
  }
};

// Forward: rows = output channels of group g, columns = (n, oh, ow), k = (c, r, s).
template <class T> struct FwdOp {
  struct Col { int64_t xb, yb; int ih0, iw0; bool ok; };
  static __host__ __device__ int64_t rows(const Conv2dParams& p) { return p.K / p.groups; }
  static __host__ __device__ int64_t cols(const Conv2dParams& p) { return p.N * p.OH * p.OW; }
  static __host__ __device__ int64_t depth(const Conv2dParams& p) { return (p.C / p.groups) * p.R * p.S; }
  static __host__ __device__ Radix radix(const Conv2dParams& p) { return {int(p.R), int(p.S)}; }
  static __device__ Col col(const Conv2dParams& p, int64_t g, int64_t j) {
    const int64_t ow = j % p.OW, oh = (j / p.OW) % p.OH, n = j / (p.OW * p.OH);
    return {(n * p.C + g * (p.C / p.groups)) * p.H * p.W, n * p.K * p.OH * p.OW + oh * p.OW + ow,
            int(oh * p.sh - p.ph), int(ow * p.sw - p.pw), j < cols(p)};
  }
  static __device__ T a(const Conv2dParams& p, int64_t g, int64_t m, int64_t k, const Digits&) {
    return static_cast<const T*>(p.w)[(g * rows(p) + m) * depth(p) + k];
  }
  static __device__ T b(const Conv2dParams& p, const Digits& d, const Col& c) {
    const int ih = c.ih0 + d.mid * int(p.dh), iw = c.iw0 + d.lo * int(p.dw);
    if (!c.ok || ih < 0 || ih >= int(p.H) || iw < 0 || iw >= int(p.W)) return zero<T>();
    return static_cast<const T*>(p.x)[c.xb + (int64_t(d.hi) * p.H + ih) * p.W + iw];
  }
  template <class A> static __device__ void store(const Conv2dParams& p, int64_t g, int64_t m, const Col& c, A v) {
    const int64_t k = g * rows(p) + m;
    if (p.b) v += cvt<A>(static_cast<const T*>(p.b)[k]);
    static_cast<T*>(p.y)[c.yb + k * p.OH * p.OW] = cvt<T>(v);
  }
};

// Input gradient: rows = input channels of group g, columns = (n, h, w), k = (output channel, r, s).
template <class T> struct BwdInputOp {
  struct Col { int64_t gyb, gxb; int th0, tw0; bool ok; };
  static __host__ __device__ int64_t rows(const Conv2dParams& p) { return p.C / p.groups; }
  static __host__ __device__ int64_t cols(const Conv2dParams& p) { return p.N * p.H * p.W; }
  static __host__ __device__ int64_t depth(const Conv2dParams& p) { return (p.K / p.groups) * p.R * p.S; }
  static __host__ __device__ Radix radix(const Conv2dParams& p) { return {int(p.R), int(p.S)}; }
  static __device__ Col col(const Conv2dParams& p, int64_t g, int64_t j) {
    const int64_t w = j % p.W, h = (j / p.W) % p.H, n = j / (p.W * p.H);
    return {(n * p.K + g * (p.K / p.groups)) * p.OH * p.OW, (n * p.C + g * rows(p)) * p.H * p.W + h * p.W + w,
            int(h + p.ph), int(w + p.pw), j < cols(p)};
  }
  static __device__ T a(const Conv2dParams& p, int64_t g, int64_t m, int64_t, const Digits& d) {
    const int64_t ko = g * (p.K / p.groups) + d.hi;
    return static_cast<const T*>(p.w)[(ko * rows(p) + m) * p.R * p.S + d.mid * int(p.S) + d.lo];
  }
  static __device__ T b(const Conv2dParams& p, const Digits& d, const Col& c) {
    int oh = c.th0 - d.mid * int(p.dh), ow = c.tw0 - d.lo * int(p.dw);  // = oh * sh, ow * sw
    if (!c.ok || oh < 0 || ow < 0) return zero<T>();
    if (p.sh > 1) {
      if (oh % int(p.sh)) return zero<T>();
      oh /= int(p.sh);
    }
    if (p.sw > 1) {
      if (ow % int(p.sw)) return zero<T>();
      ow /= int(p.sw);
    }
    if (oh >= int(p.OH) || ow >= int(p.OW)) return zero<T>();
    return static_cast<const T*>(p.gy)[c.gyb + (int64_t(d.hi) * p.OH + oh) * p.OW + ow];
  }
  template <class A> static __device__ void store(const Conv2dParams& p, int64_t, int64_t m, const Col& c, A v) {
    static_cast<T*>(p.gx)[c.gxb + m * p.H * p.W] = cvt<T>(v);
  }
};

// Weight gradient: rows = output channels of group g, columns = (c, r, s), k = (n, oh, ow).
template <class T> struct BwdWeightOp {
  struct Col { int64_t xb, j; int ih0, iw0; bool ok; };
  static __host__ __device__ int64_t rows(const Conv2dParams& p) { return p.K / p.groups; }
  static __host__ __device__ int64_t cols(const Conv2dParams& p) { return (p.C / p.groups) * p.R * p.S; }
  static __host__ __device__ int64_t depth(const Conv2dParams& p) { return p.N * p.OH * p.OW; }
  static __host__ __device__ Radix radix(const Conv2dParams& p) { return {int(p.OH), int(p.OW)}; }
  static __device__ Col col(const Conv2dParams& p, int64_t g, int64_t j) {
    const int64_t s = j % p.S, r = (j / p.S) % p.R, c = j / (p.S * p.R);
    return {(g * (p.C / p.groups) + c) * p.H * p.W, j, int(r * p.dh - p.ph), int(s * p.dw - p.pw), j < cols(p)};
  }
  static __device__ T a(const Conv2dParams& p, int64_t g, int64_t m, int64_t, const Digits& d) {
    return static_cast<const T*>(p.gy)[((d.hi * p.K + g * rows(p) + m) * p.OH + d.mid) * p.OW + d.lo];
  }
  static __device__ T b(const Conv2dParams& p, const Digits& d, const Col& c) {
    const int ih = c.ih0 + d.mid * int(p.sh), iw = c.iw0 + d.lo * int(p.sw);
    if (!c.ok || ih < 0 || ih >= int(p.H) || iw < 0 || iw >= int(p.W)) return zero<T>();
    return static_cast<const T*>(p.x)[int64_t(d.hi) * p.C * p.H * p.W + c.xb + int64_t(ih) * p.W + iw];
  }
  template <class A> static __device__ void store(const Conv2dParams& p, int64_t g, int64_t m, const Col& c, A v) {
    static_cast<T*>(p.gw)[(g * rows(p) + m) * cols(p) + c.j] = cvt<T>(v);
  }
};

// How a GEMM of `depth` k over `tiles` output tiles is split: until the grid fills the device
// twice over, each split at least 256 deep; kspan is a multiple of the kernel's k step.
struct Split {
  int64_t splits, kspan;
};
inline Split choose_split(int64_t depth, int64_t tiles, int64_t sms, int64_t step, int64_t groups) {
  if (depth <= 0) return {1, step};
  int64_t s = (2 * sms + tiles - 1) / tiles, cap = (depth + 255) / 256;
  s = s < cap ? s : cap;
  const int64_t zmax = 65535 / (groups > 0 ? groups : 1);
  s = s < zmax ? s : zmax;
  s = s > 1 ? s : 1;
  const int64_t kspan = ((depth + s - 1) / s + step - 1) / step * step;
  return {(depth + kspan - 1) / kspan, kspan};
}

// Four consecutive shared elements into registers (one 16-byte load per float4).
template <class T> __device__ __forceinline__ void ld4(const T* s, T (&v)[4]) {
  if constexpr (std::is_same_v<T, float>) {
    const float4 q = *reinterpret_cast<const float4*>(s);
    v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
  } else {
#pragma unroll
    for (int i = 0; i < 4; ++i) v[i] = s[i];
  }
}

// Grid: x = column tiles, y = row tiles, z = group * splits + split; split z covers
// k in [split * kspan, min(depth, (split + 1) * kspan)), kspan a multiple of kBK. With ws, the
// tile goes to split z's partial ws[((split * groups + g) * M + m) * cols + j] instead of the
// Op's store. Thread (tx, ty) = (tid % 16, tid / 16) owns rows 4 ty + i and columns 4 tx + j,
// read from shared memory four at a time.
template <class T, class Op>
__global__ void __launch_bounds__(kGemmThreads) conv_gemm_kernel(const Conv2dParams p, int64_t splits, int64_t kspan,
                                                                 Acc<T>* ws) {
  __shared__ __align__(16) T s_a[kBK][kBM + 4];
  __shared__ __align__(16) T s_b[kBK][kBN + 4];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int64_t g = blockIdx.z / splits, split = blockIdx.z % splits;
  const int64_t m0 = int64_t(blockIdx.y) * kBM, j0 = int64_t(blockIdx.x) * kBN;
  const int64_t M = Op::rows(p), Kd = Op::depth(p);
  const int64_t k_begin = split * kspan, k_end = Kd < k_begin + kspan ? Kd : k_begin + kspan;
  // This thread's loads: A at (m0 + ty + 16 i, k0 + tx), B at (k0 + bk + 4 i, j0 + bj).
  const int bj = tid % kBN, bk = tid / kBN;
  const typename Op::Col lc = Op::col(p, g, j0 + bj);
  const Radix rx = Op::radix(p);
  const Digits step = rx.at(kBK);
  Digits da = rx.at(k_begin + tx), db[kBN * kBK / kGemmThreads];
#pragma unroll
  for (int i = 0; i < kBN * kBK / kGemmThreads; ++i) db[i] = rx.at(k_begin + bk + 4 * i);
  Acc<T> acc[kTM][kTN];
#pragma unroll
  for (int i = 0; i < kTM; ++i)
#pragma unroll
    for (int j = 0; j < kTN; ++j) acc[i][j] = 0;
  for (int64_t k0 = k_begin; k0 < k_end; k0 += kBK) {
#pragma unroll
    for (int i = 0; i < kBM * kBK / kGemmThreads; ++i) {
      const int mm = ty + 16 * i;
      const int64_t k = k0 + tx;
      s_a[tx][mm] = m0 + mm < M && k < k_end ? Op::a(p, g, m0 + mm, k, da) : zero<T>();
    }
#pragma unroll
    for (int i = 0; i < kBN * kBK / kGemmThreads; ++i) {
      const int kk = bk + 4 * i;
      s_b[kk][bj] = k0 + kk < k_end ? Op::b(p, db[i], lc) : zero<T>();
      rx.add(db[i], step);
    }
    rx.add(da, step);
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kBK; ++kk) {
      T av[kTM], bv[kTN];
      ld4(&s_a[kk][kTM * ty], av);
      ld4(&s_b[kk][kTN * tx], bv);
#pragma unroll
      for (int i = 0; i < kTM; ++i)
#pragma unroll
        for (int j = 0; j < kTN; ++j) acc[i][j] += cvt<Acc<T>>(av[i]) * cvt<Acc<T>>(bv[j]);
    }
    __syncthreads();
  }
  const int64_t cols = Op::cols(p);
#pragma unroll
  for (int j = 0; j < kTN; ++j) {
    const int64_t jj = j0 + kTN * tx + j;
    if (jj >= cols) continue;
    const typename Op::Col c = Op::col(p, g, jj);
#pragma unroll
    for (int i = 0; i < kTM; ++i) {
      const int64_t m = m0 + kTM * ty + i;
      if (m >= M) continue;
      if (ws) ws[((split * p.groups + g) * M + m) * cols + jj] = acc[i][j];
      else Op::store(p, g, m, c, acc[i][j]);
    }
  }
}

// Sums the split partials of conv_gemm_kernel (ws, `splits` blocks of groups * M * cols) in
// split order and hands each sum to the Op's store (grid-stride over the outputs).
template <class T, class Op>
__global__ void splits_finish_kernel(const Conv2dParams p, const Acc<T>* ws, int64_t splits) {
  const int64_t M = Op::rows(p), cols = Op::cols(p), n = p.groups * M * cols;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    Acc<T> s = 0;
    for (int64_t i = 0; i < splits; ++i) s += ws[i * n + e];
    const int64_t j = e % cols, m = (e / cols) % M, g = e / (cols * M);
    Op::store(p, g, m, Op::col(p, g, j), s);
  }
}

}  // namespace fastdl::cuda::conv_detail
