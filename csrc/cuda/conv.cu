// conv2d on CUDA as implicit GEMM (Chetlur et al., cuDNN 2014); semantics and params in
// kernels/conv.h. One SIMT tiled GEMM kernel (64 x 64 tile, 16-deep k steps staged in shared memory,
// 4 x 4 outputs per thread) whose operand loads gather straight from the tensors, per group:
//   fwd         y  (Kg x N*OH*OW) = w (Kg x Cg*R*S) . im2col(x)        (+ bias)
//   bwd_input   gx (Cg x N*H*W)   = w^T (Cg x Kg*R*S) . col(gy)          (taps that land on a stride)
//   bwd_weight  gw (Kg x Cg*R*S)  = gy (Kg x N*OH*OW) . im2col(x)^T     split over the long k range
//               into per-split partials summed in a fixed order (no atomics: reproducible).
// float32 / float64 run this SIMT kernel in the operand precision. bfloat16 / float16 run the same
// gathers through a tensor-core kernel (WMMA 16x16x16, fp32 accumulation; below the SIMT one):
// half operands staged in shared memory, outputs rounded once to the operand dtype (weight grad:
// fp32 per-split partials, summed and rounded by sum_splits_kernel). im2col never exists in memory.
#include <algorithm>
#include <type_traits>

#include <mma.h>

#include "cuda/common.cuh"
#include "kernels/conv.h"

namespace fastdl::cuda {
namespace {


// Accumulation type: double for double, float for float and the half types.
template <class T> using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;
template <class T> __device__ __forceinline__ T zero() { return cvt<T>(0.0f); }

constexpr int kBM = 64, kBN = 64, kBK = 16;  // tile rows, columns, k depth
constexpr int kTM = 4, kTN = 4;              // outputs per thread: rows ty + 16 i, columns tx + 16 j
constexpr int kGemmThreads = 256;

// Operand gathers of one GEMM. Column data (decoded once per thread) is `Col`.
// Forward: rows = output channels of group g, columns = (n, oh, ow), k = (c, r, s).
template <class T> struct FwdOp {
  struct Col { int64_t n, oh, ow; bool ok; };
  static __host__ __device__ int64_t rows(const Conv2dParams& p) { return p.K / p.groups; }
  static __host__ __device__ int64_t cols(const Conv2dParams& p) { return p.N * p.OH * p.OW; }
  static __host__ __device__ int64_t depth(const Conv2dParams& p) { return (p.C / p.groups) * p.R * p.S; }
  static __host__ __device__ Col col(const Conv2dParams& p, int64_t j) {
    Col c;
    c.ok = j < cols(p);
    c.ow = j % p.OW;
    c.oh = (j / p.OW) % p.OH;
    c.n = j / (p.OW * p.OH);
    return c;
  }
  static __device__ T a(const Conv2dParams& p, int64_t g, int64_t m, int64_t k) {
    return static_cast<const T*>(p.w)[(g * rows(p) + m) * depth(p) + k];
  }
  static __device__ T b(const Conv2dParams& p, int64_t g, int64_t k, const Col& c) {
    const int64_t rs = p.R * p.S, ci = k / rs, r = (k % rs) / p.S, s = k % p.S;
    const int64_t ih = c.oh * p.sh - p.ph + r * p.dh, iw = c.ow * p.sw - p.pw + s * p.dw;
    if (!c.ok || ih < 0 || ih >= p.H || iw < 0 || iw >= p.W) return zero<T>();
    return static_cast<const T*>(p.x)[((c.n * p.C + g * (p.C / p.groups) + ci) * p.H + ih) * p.W + iw];
  }
  template <class A>
  static __device__ void store(const Conv2dParams& p, int64_t g, int64_t m, const Col& c, A v, int64_t) {
    const int64_t k = g * rows(p) + m;
    if (p.b) v += cvt<A>(static_cast<const T*>(p.b)[k]);
    static_cast<T*>(p.y)[((c.n * p.K + k) * p.OH + c.oh) * p.OW + c.ow] = cvt<T>(v);
  }
};

// Input gradient: rows = input channels of group g, columns = (n, h, w), k = (output channel, r, s).
template <class T> struct BwdInputOp {
  struct Col { int64_t n, h, w; bool ok; };
  static __host__ __device__ int64_t rows(const Conv2dParams& p) { return p.C / p.groups; }
  static __host__ __device__ int64_t cols(const Conv2dParams& p) { return p.N * p.H * p.W; }
  static __host__ __device__ int64_t depth(const Conv2dParams& p) { return (p.K / p.groups) * p.R * p.S; }
  static __host__ __device__ Col col(const Conv2dParams& p, int64_t j) {
    Col c;
    c.ok = j < cols(p);
    c.w = j % p.W;
    c.h = (j / p.W) % p.H;
    c.n = j / (p.W * p.H);
    return c;
  }
  static __device__ T a(const Conv2dParams& p, int64_t g, int64_t m, int64_t k) {
    const int64_t rs = p.R * p.S, ko = g * (p.K / p.groups) + k / rs;
    return static_cast<const T*>(p.w)[(ko * rows(p) + m) * rs + k % rs];
  }
  static __device__ T b(const Conv2dParams& p, int64_t g, int64_t k, const Col& c) {
    const int64_t rs = p.R * p.S, ko = g * (p.K / p.groups) + k / rs, r = (k % rs) / p.S, s = k % p.S;
    const int64_t th = c.h + p.ph - r * p.dh, tw = c.w + p.pw - s * p.dw;  // = oh * sh, ow * sw
    if (!c.ok || th < 0 || tw < 0 || th % p.sh || tw % p.sw) return zero<T>();
    const int64_t oh = th / p.sh, ow = tw / p.sw;
    if (oh >= p.OH || ow >= p.OW) return zero<T>();
    return static_cast<const T*>(p.gy)[((c.n * p.K + ko) * p.OH + oh) * p.OW + ow];
  }
  template <class A>
  static __device__ void store(const Conv2dParams& p, int64_t g, int64_t m, const Col& c, A v, int64_t) {
    static_cast<T*>(p.gx)[((c.n * p.C + g * rows(p) + m) * p.H + c.h) * p.W + c.w] = cvt<T>(v);
  }
};

// Weight gradient: rows = output channels of group g, columns = (c, r, s), k = (n, oh, ow);
// `out` (element type O) is gw or one split's partial (K, Cg*R*S); the half kernels write fp32 partials.
template <class T, class O = T> struct BwdWeightOp {
  struct Col { int64_t c, r, s; bool ok; };
  static __host__ __device__ int64_t rows(const Conv2dParams& p) { return p.K / p.groups; }
  static __host__ __device__ int64_t cols(const Conv2dParams& p) { return (p.C / p.groups) * p.R * p.S; }
  static __host__ __device__ int64_t depth(const Conv2dParams& p) { return p.N * p.OH * p.OW; }
  static __host__ __device__ Col col(const Conv2dParams& p, int64_t j) {
    Col c;
    c.ok = j < cols(p);
    c.s = j % p.S;
    c.r = (j / p.S) % p.R;
    c.c = j / (p.S * p.R);
    return c;
  }
  static __device__ T a(const Conv2dParams& p, int64_t g, int64_t m, int64_t k) {
    const int64_t ohw = p.OH * p.OW, n = k / ohw;
    return static_cast<const T*>(p.gy)[(n * p.K + g * rows(p) + m) * ohw + k % ohw];
  }
  static __device__ T b(const Conv2dParams& p, int64_t g, int64_t k, const Col& c) {
    const int64_t ohw = p.OH * p.OW, n = k / ohw, oh = (k % ohw) / p.OW, ow = k % p.OW;
    const int64_t ih = oh * p.sh - p.ph + c.r * p.dh, iw = ow * p.sw - p.pw + c.s * p.dw;
    if (!c.ok || ih < 0 || ih >= p.H || iw < 0 || iw >= p.W) return zero<T>();
    return static_cast<const T*>(p.x)[((n * p.C + g * (p.C / p.groups) + c.c) * p.H + ih) * p.W + iw];
  }
  template <class A>
  static __device__ void store(const Conv2dParams& p, int64_t g, int64_t m, const Col& c, A v, int64_t split) {
    O* out = static_cast<O*>(p.gw) + split * p.K * cols(p);
    out[(g * rows(p) + m) * cols(p) + (c.c * p.R + c.r) * p.S + c.s] = cvt<O>(v);
  }
};

// Grid: x = column tiles, y = row tiles, z = group * splits + split; split z covers
// k in [split * kspan, min(depth, (split + 1) * kspan)), kspan a multiple of kBK.
template <class T, class Op>
__global__ void __launch_bounds__(kGemmThreads) conv_gemm_kernel(const Conv2dParams p, int64_t splits, int64_t kspan) {
  __shared__ T s_a[kBK][kBM + 1];
  __shared__ T s_b[kBK][kBN + 1];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int64_t g = blockIdx.z / splits, split = blockIdx.z % splits;
  const int64_t m0 = int64_t(blockIdx.y) * kBM, j0 = int64_t(blockIdx.x) * kBN;
  const int64_t M = Op::rows(p), Kd = Op::depth(p);
  const int64_t k_begin = split * kspan, k_end = Kd < k_begin + kspan ? Kd : k_begin + kspan;
  // This thread's loads: A at (m0 + ty + 16 i, kk = tx), B at (kk = ty / 4 + 4 i, j0 + tid % 64).
  const int bj = tid % kBN, bk = tid / kBN;
  const typename Op::Col lc = Op::col(p, j0 + bj);
  T acc[kTM][kTN];
#pragma unroll
  for (int i = 0; i < kTM; ++i)
#pragma unroll
    for (int j = 0; j < kTN; ++j) acc[i][j] = 0;
  for (int64_t k0 = k_begin; k0 < k_end; k0 += kBK) {
#pragma unroll
    for (int i = 0; i < kBM * kBK / kGemmThreads; ++i) {
      const int mm = ty + 16 * i;
      const int64_t k = k0 + tx;
      s_a[tx][mm] = m0 + mm < M && k < k_end ? Op::a(p, g, m0 + mm, k) : T(0);
    }
#pragma unroll
    for (int i = 0; i < kBN * kBK / kGemmThreads; ++i) {
      const int kk = bk + 4 * i;
      const int64_t k = k0 + kk;
      s_b[kk][bj] = k < k_end ? Op::b(p, g, k, lc) : T(0);
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kBK; ++kk) {
      T av[kTM], bv[kTN];
#pragma unroll
      for (int i = 0; i < kTM; ++i) av[i] = s_a[kk][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < kTN; ++j) bv[j] = s_b[kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < kTM; ++i)
#pragma unroll
        for (int j = 0; j < kTN; ++j) acc[i][j] += av[i] * bv[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int j = 0; j < kTN; ++j) {
    const typename Op::Col c = Op::col(p, j0 + tx + 16 * j);
    if (!c.ok) continue;
#pragma unroll
    for (int i = 0; i < kTM; ++i)
      if (m0 + ty + 16 * i < M) Op::store(p, g, m0 + ty + 16 * i, c, acc[i][j], split);
  }
}

// ---------------------------------------------------------------- bf16 / f16, tensor cores
// Same grid and gathers as conv_gemm_kernel (H = __half or __nv_bfloat16 operands): a 64 x 64
// tile, 32-deep k steps staged in shared memory as H, 8 warps in a 4 (rows) x 2 (columns) grid,
// each warp a 16 x 32 strip (two 16x16 fp32 accumulator fragments). The accumulators go through
// shared memory to the Op's store, which adds the bias in fp32 and rounds once (weight grad with
// O = float: an fp32 partial).
constexpr int kHBK = 32;
constexpr int kLdA = kHBK + 8, kLdB = kBN + 8, kLdC = kBN + 4;  // padded leading dims (elements)

template <class H, class Op>
__global__ void __launch_bounds__(kGemmThreads) conv_gemm_half_kernel(const Conv2dParams p, int64_t splits,
                                                                      int64_t kspan) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800  // bf16 WMMA needs sm_80; the default archs are 80 and 90
  __trap();
#else
  namespace wm = nvcuda::wmma;
  __shared__ __align__(128) H s_a[kBM * kLdA];    // (m, k), row-major
  __shared__ __align__(128) H s_b[kHBK * kLdB];   // (k, j), row-major
  __shared__ __align__(128) float s_c[kBM * kLdC];  // (m, j) accumulators for the epilogue
  const int tid = threadIdx.x, warp = tid / 32, wr = warp / 2, wc = warp % 2;
  const int64_t g = blockIdx.z / splits, split = blockIdx.z % splits;
  const int64_t m0 = int64_t(blockIdx.y) * kBM, j0 = int64_t(blockIdx.x) * kBN;
  const int64_t M = Op::rows(p), Kd = Op::depth(p);
  const int64_t k_begin = split * kspan, k_end = Kd < k_begin + kspan ? Kd : k_begin + kspan;
  // This thread's loads: A at (m0 + tid / 32 + 8 i, k0 + tid % 32), B at (k0 + tid / 64 + 4 i, j0 + tid % 64).
  const int ak = tid % kHBK, am = tid / kHBK, bj = tid % kBN, bk = tid / kBN;
  const typename Op::Col lc = Op::col(p, j0 + bj);
  wm::fragment<wm::accumulator, 16, 16, 16, float> acc[2];
  wm::fill_fragment(acc[0], 0.f);
  wm::fill_fragment(acc[1], 0.f);
  for (int64_t k0 = k_begin; k0 < k_end; k0 += kHBK) {
#pragma unroll
    for (int i = 0; i < kBM * kHBK / kGemmThreads; ++i) {
      const int mm = am + 8 * i;
      const int64_t k = k0 + ak;
      s_a[mm * kLdA + ak] = m0 + mm < M && k < k_end ? Op::a(p, g, m0 + mm, k) : zero<H>();
    }
#pragma unroll
    for (int i = 0; i < kBN * kHBK / kGemmThreads; ++i) {
      const int kk = bk + 4 * i;
      const int64_t k = k0 + kk;
      s_b[kk * kLdB + bj] = k < k_end ? Op::b(p, g, k, lc) : zero<H>();
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kHBK; kk += 16) {
      wm::fragment<wm::matrix_a, 16, 16, 16, H, wm::row_major> fa;
      wm::load_matrix_sync(fa, s_a + wr * 16 * kLdA + kk, kLdA);
#pragma unroll
      for (int f = 0; f < 2; ++f) {
        wm::fragment<wm::matrix_b, 16, 16, 16, H, wm::row_major> fb;
        wm::load_matrix_sync(fb, s_b + kk * kLdB + wc * 32 + f * 16, kLdB);
        wm::mma_sync(acc[f], fa, fb, acc[f]);
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int f = 0; f < 2; ++f)
    wm::store_matrix_sync(s_c + wr * 16 * kLdC + wc * 32 + f * 16, acc[f], kLdC, wm::mem_row_major);
  __syncthreads();
  // Epilogue: consecutive threads take consecutive columns (coalesced along ow / w / s).
  const typename Op::Col c = lc;  // column j0 + bj, as loaded
  if (c.ok)
    for (int mm = bk; mm < kBM; mm += kGemmThreads / kBN)
      if (m0 + mm < M) Op::store(p, g, m0 + mm, c, s_c[mm * kLdC + bj], split);
#endif
}

// out[e] = sum over s < splits, ascending, of in[s * n + e] (in the accumulation type A of T),
// rounded once to T.
template <class T, class A = T>
__global__ void sum_splits_kernel(T* out, const A* in, int64_t splits, int64_t n) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    A s = 0;
    for (int64_t i = 0; i < splits; ++i) s += in[i * n + e];
    out[e] = cvt<T>(s);
  }
}

// y[n, k, :] += b[k] over (N, K, HW), summed in Acc<T>.
template <class T>
__global__ void bias_add_kernel(T* y, const T* b, int64_t N, int64_t K, int64_t HW) {
  using A = Acc<T>;
  const int64_t n = N * K * HW;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x)
    y[e] = cvt<T>(cvt<A>(y[e]) + cvt<A>(b[(e / HW) % K]));
}

// gb[k] = sum over n and HW of gy (N, K, HW): one block per k, fixed-order tree in Acc<T>.
template <class T>
__global__ void bias_grad_kernel(const T* gy, T* gb, int64_t N, int64_t K, int64_t HW) {
  using A = Acc<T>;
  __shared__ A part[kThreads];
  const int64_t k = blockIdx.x;
  A s = 0;
  for (int64_t e = threadIdx.x; e < N * HW; e += blockDim.x) s += cvt<A>(gy[((e / HW) * K + k) * HW + e % HW]);
  part[threadIdx.x] = s;
  __syncthreads();
  for (int o = kThreads / 2; o > 0; o >>= 1) {
    if (int(threadIdx.x) < o) part[threadIdx.x] += part[threadIdx.x + o];
    __syncthreads();
  }
  if (threadIdx.x == 0) gb[k] = cvt<T>(part[0]);
}

// ---------------------------------------------------------------- host side

// Half operand types take the tensor-core kernel; its k step is kHBK, the SIMT kernel's kBK.
template <class T> constexpr bool kHalf = std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>;
template <class T> constexpr int64_t kStep = kHalf<T> ? kHBK : kBK;

template <class T, class Op>
void gemm(const Conv2dParams& p, int64_t M, int64_t cols, int64_t splits, int64_t kspan, const char* what) {
  const int64_t gx = cdiv(cols, kBN), gy = cdiv(M, kBM), gz = p.groups * splits;
  FASTDL_CHECK(gx < (int64_t(1) << 31) && gy < 65536 && gz < 65536, DeviceError, what, ": grid too large (", gx, " x ",
               gy, " x ", gz, ")");
  const dim3 grid{unsigned(gx), unsigned(gy), unsigned(gz)};
  if constexpr (kHalf<T>) conv_gemm_half_kernel<T, Op><<<grid, kGemmThreads, 0, stream()>>>(p, splits, kspan);
  else conv_gemm_kernel<T, Op><<<grid, kGemmThreads, 0, stream()>>>(p, splits, kspan);
  check_launch(what);
}

template <class T>
void bias_grad(const void* gy, void* gb, int64_t N, int64_t K, int64_t HW) {
  if (K == 0) return;
  bias_grad_kernel<T><<<unsigned(K), kThreads, 0, stream()>>>(static_cast<const T*>(gy), static_cast<T*>(gb), N, K, HW);
  check_launch("conv2d backward (bias)");
}

template <class T>
void fwd_typed(const Conv2dParams& p) {
  const int64_t M = p.K / p.groups, Kd = (p.C / p.groups) * p.R * p.S;
  gemm<T, FwdOp<T>>(p, M, p.N * p.OH * p.OW, 1, cdiv(Kd, kStep<T>) * kStep<T>, "conv2d forward");
}

template <class T>
void bwd_input_typed(const Conv2dParams& p) {
  const int64_t M = p.C / p.groups, Kd = (p.K / p.groups) * p.R * p.S;
  gemm<T, BwdInputOp<T>>(p, M, p.N * p.H * p.W, 1, cdiv(Kd, kStep<T>) * kStep<T>, "conv2d backward (input)");
}

template <class T>
void bwd_weight_typed(const Conv2dParams& p, int device) {
  const int64_t M = p.K / p.groups, cols = (p.C / p.groups) * p.R * p.S, Kd = p.N * p.OH * p.OW;
  // Split the long k range until the grid fills the device twice over (each split >= 256 deep).
  const int64_t tiles = cdiv(M, kBM) * cdiv(cols, kBN) * p.groups;
  int64_t splits = std::min(cdiv(2 * sm_count(device), tiles), cdiv(Kd, 256));
  splits = std::max<int64_t>(1, std::min<int64_t>(splits, 65535 / std::max<int64_t>(1, p.groups)));
  const int64_t kspan = cdiv(cdiv(Kd, splits), kStep<T>) * kStep<T>;
  splits = cdiv(Kd, kspan);
  const int64_t n = p.K * cols;
  if (splits == 1 && !kHalf<T>) {
    gemm<T, BwdWeightOp<T>>(p, M, cols, 1, kspan, "conv2d backward (weight)");
  } else {  // per-split partials in Acc<T> (fp32 for the half types, even with one split), then summed
    using A = Acc<T>;
    Scratch ws(sizeof(A) * size_t(splits * n), device);
    Conv2dParams q = p;
    q.gw = ws.ptr;
    gemm<T, BwdWeightOp<T, A>>(q, M, cols, splits, kspan, "conv2d backward (weight)");
    sum_splits_kernel<T, A><<<grid_for(n, device), kThreads, 0, stream()>>>(static_cast<T*>(p.gw),
                                                                             static_cast<const A*>(ws.ptr), splits, n);
    check_launch("conv2d backward (weight, split sums)");
  }
  if (p.gb) bias_grad<T>(p.gy, p.gb, p.N, p.K, p.OH * p.OW);
}

void check_dtype(DType dt, const char* what) {
  FASTDL_CHECK(dt == DType::f32 || dt == DType::f64 || is_half(dt), TypeError, what,
               ": the CUDA kernel takes float32, float64, bfloat16 or float16; got ", dtype_str(dt));
}

// Calls f(Tag<T>{}) with T the storage type of dt (one of the four check_dtype accepts).
template <class T> struct Tag { using type = T; };
template <class F> void by_dtype(DType dt, F&& f) {
  if (dt == DType::f64) f(Tag<double>{});
  else if (dt == DType::f32) f(Tag<float>{});
  else if (dt == DType::bf16) f(Tag<__nv_bfloat16>{});
  else f(Tag<__half>{});
}

}  // namespace

void conv2d_fwd(const Conv2dParams& p, int device) {
  check_dtype(p.dt, "conv2d");
  if (p.N * p.K * p.OH * p.OW == 0) return;
  use_device(device);
  by_dtype(p.dt, [&](auto t) { fwd_typed<typename decltype(t)::type>(p); });
}

void conv2d_bwd_input(const Conv2dParams& p, int device) {
  check_dtype(p.dt, "conv2d backward");
  if (p.N * p.C * p.H * p.W == 0) return;
  use_device(device);
  by_dtype(p.dt, [&](auto t) { bwd_input_typed<typename decltype(t)::type>(p); });
}

void conv2d_bwd_weight(const Conv2dParams& p, int device) {
  check_dtype(p.dt, "conv2d backward");
  use_device(device);
  const size_t sz = dtype_size(p.dt);
  if (p.N * p.OH * p.OW == 0) {  // nothing flows: zero gradients
    const int64_t nw = p.K * (p.C / std::max<int64_t>(1, p.groups)) * p.R * p.S;
    if (nw) check(cudaMemsetAsync(p.gw, 0, sz * size_t(nw), stream()), "conv2d backward (weight)");
    if (p.gb && p.K) check(cudaMemsetAsync(p.gb, 0, sz * size_t(p.K), stream()), "conv2d backward (bias)");
    return;
  }
  if (p.K * (p.C / p.groups) * p.R * p.S == 0) {
    if (p.gb) conv_bias_grad(p.dt, p.gy, p.gb, p.N, p.K, p.OH * p.OW, device);
    return;
  }
  by_dtype(p.dt, [&](auto t) { bwd_weight_typed<typename decltype(t)::type>(p, device); });
}

void conv_bias_add(DType dt, void* y, const void* b, int64_t N, int64_t K, int64_t HW, int device) {
  check_dtype(dt, "conv2d");
  if (N * K * HW == 0) return;
  use_device(device);
  const int64_t n = N * K * HW;
  by_dtype(dt, [&](auto t) {
    using T = typename decltype(t)::type;
    bias_add_kernel<T><<<grid_for(n, device), kThreads, 0, stream()>>>(static_cast<T*>(y), static_cast<const T*>(b), N,
                                                                       K, HW);
  });
  check_launch("conv2d (bias)");
}

void conv_bias_grad(DType dt, const void* gy, void* gb, int64_t N, int64_t K, int64_t HW, int device) {
  check_dtype(dt, "conv2d backward");
  use_device(device);
  by_dtype(dt, [&](auto t) { bias_grad<typename decltype(t)::type>(gy, gb, N, K, HW); });
}

}  // namespace fastdl::cuda
