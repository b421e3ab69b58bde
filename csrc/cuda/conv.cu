// conv2d on CUDA as implicit GEMM (Chetlur et al., cuDNN 2014); semantics and params in
// kernels/conv.h, the gathers, the SIMT kernel and the split-k sums in cuda/conv_kernels.cuh.
// float32 / float64 run the SIMT kernel (64 x 64 tile, 16-deep k steps staged in shared memory,
// 4 x 4 outputs per thread) in the operand precision. bfloat16 / float16 run the same gathers
// through a tensor-core kernel (WMMA 16x16x16, fp32 accumulation; below): half operands staged in
// shared memory, outputs rounded once to the operand dtype. Either kernel splits a long k range
// into fp32 / fp64 partials when the output tiles cannot fill the device (conv_detail::choose_split).
#include <algorithm>
#include <type_traits>

#include <mma.h>

#include "cuda/common.cuh"
#include "cuda/conv_kernels.cuh"
#include "kernels/conv.h"

namespace fastdl::cuda {
namespace {

using namespace conv_detail;

// ---------------------------------------------------------------- bf16 / f16, tensor cores
// Same grid and gathers as conv_gemm_kernel (H = __half or __nv_bfloat16 operands): a 64 x 64
// tile, 32-deep k steps staged in shared memory as H, 8 warps in a 4 (rows) x 2 (columns) grid,
// each warp a 16 x 32 strip (two 16x16 fp32 accumulator fragments). The accumulators go through
// shared memory to the Op's store, which adds the bias in fp32 and rounds once, or to split z's
// fp32 partial in ws (layout as conv_gemm_kernel's).
constexpr int kHBK = 32;
constexpr int kLdA = kHBK + 8, kLdB = kBN + 8, kLdC = kBN + 4;  // padded leading dims (elements)

template <class H, class Op>
__global__ void __launch_bounds__(kGemmThreads) conv_gemm_half_kernel(const Conv2dParams p, int64_t splits,
                                                                      int64_t kspan, float* ws) {
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
  const typename Op::Col lc = Op::col(p, g, j0 + bj);
  const Radix rx = Op::radix(p);
  const Digits step = rx.at(kHBK);
  Digits da = rx.at(k_begin + ak), db[kBN * kHBK / kGemmThreads];
#pragma unroll
  for (int i = 0; i < kBN * kHBK / kGemmThreads; ++i) db[i] = rx.at(k_begin + bk + 4 * i);
  wm::fragment<wm::accumulator, 16, 16, 16, float> acc[2];
  wm::fill_fragment(acc[0], 0.f);
  wm::fill_fragment(acc[1], 0.f);
  for (int64_t k0 = k_begin; k0 < k_end; k0 += kHBK) {
#pragma unroll
    for (int i = 0; i < kBM * kHBK / kGemmThreads; ++i) {
      const int mm = am + 8 * i;
      const int64_t k = k0 + ak;
      s_a[mm * kLdA + ak] = m0 + mm < M && k < k_end ? Op::a(p, g, m0 + mm, k, da) : zero<H>();
    }
    rx.add(da, step);
#pragma unroll
    for (int i = 0; i < kBN * kHBK / kGemmThreads; ++i) {
      const int kk = bk + 4 * i;
      s_b[kk * kLdB + bj] = k0 + kk < k_end ? Op::b(p, db[i], lc) : zero<H>();
      rx.add(db[i], step);
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
  const int64_t cols = Op::cols(p);
  if (j0 + bj < cols)
    for (int mm = bk; mm < kBM; mm += kGemmThreads / kBN) {
      if (m0 + mm >= M) continue;
      if (ws) ws[((split * p.groups + g) * M + m0 + mm) * cols + j0 + bj] = s_c[mm * kLdC + bj];
      else Op::store(p, g, m0 + mm, c, s_c[mm * kLdC + bj]);
    }
#endif
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

// One of the three GEMMs (Op), split along k when its output tiles cannot fill the device.
template <class T, class Op>
void gemm(const Conv2dParams& p, int device, const char* what) {
  const int64_t M = Op::rows(p), cols = Op::cols(p);
  const int64_t gx = cdiv(cols, kBN), gy = cdiv(M, kBM);
  const Split sp = choose_split(Op::depth(p), gx * gy * p.groups, sm_count(device), kStep<T>, p.groups);
  const int64_t gz = p.groups * sp.splits;
  FASTDL_CHECK(gx < (int64_t(1) << 31) && gy < 65536 && gz < 65536, DeviceError, what, ": grid too large (", gx, " x ",
               gy, " x ", gz, ")");
  const dim3 grid{unsigned(gx), unsigned(gy), unsigned(gz)};
  using A = Acc<T>;
  const int64_t n = p.groups * M * cols;
  Scratch ws(sp.splits > 1 ? sizeof(A) * size_t(sp.splits * n) : 0, device);
  A* part = static_cast<A*>(ws.ptr);
  if constexpr (kHalf<T>) conv_gemm_half_kernel<T, Op><<<grid, kGemmThreads, 0, stream()>>>(p, sp.splits, sp.kspan, part);
  else conv_gemm_kernel<T, Op><<<grid, kGemmThreads, 0, stream()>>>(p, sp.splits, sp.kspan, part);
  check_launch(what);
  if (part) {
    splits_finish_kernel<T, Op><<<grid_for(n, device), kThreads, 0, stream()>>>(p, part, sp.splits);
    check_launch(what);
  }
}

template <class T>
void bias_grad(const void* gy, void* gb, int64_t N, int64_t K, int64_t HW) {
  if (K == 0) return;
  bias_grad_kernel<T><<<unsigned(K), kThreads, 0, stream()>>>(static_cast<const T*>(gy), static_cast<T*>(gb), N, K, HW);
  check_launch("conv2d backward (bias)");
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
  by_dtype(p.dt, [&](auto t) {
    using T = typename decltype(t)::type;
    gemm<T, FwdOp<T>>(p, device, "conv2d forward");
  });
}

void conv2d_bwd_input(const Conv2dParams& p, int device) {
  check_dtype(p.dt, "conv2d backward");
  if (p.N * p.C * p.H * p.W == 0) return;
  use_device(device);
  by_dtype(p.dt, [&](auto t) {
    using T = typename decltype(t)::type;
    gemm<T, BwdInputOp<T>>(p, device, "conv2d backward (input)");
  });
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
  by_dtype(p.dt, [&](auto t) {
    using T = typename decltype(t)::type;
    gemm<T, BwdWeightOp<T>>(p, device, "conv2d backward (weight)");
    if (p.gb) bias_grad<T>(p.gy, p.gb, p.N, p.K, p.OH * p.OW);
  });
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
