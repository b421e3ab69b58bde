// Recurrent layers on CUDA: the same step loop as cpu/rnn.cpp, run on the host around
// cuda::gemm, with the fused gate arithmetic of kernels/rnn.h as one kernel per step
// (a thread per (row, unit)), forward and backward.
#include "cuda/common.cuh"
#include "kernels/rnn.h"

namespace fastdl::cuda {

namespace {


template <class T> struct ThreadLanes {
  using V = T;
  __device__ static V ld(const T* p) { return *p; }
  __device__ static void st(T* p, V v) { *p = v; }
  __device__ static V ld1() { return T(1); }
  __device__ static V sig(V x) { return T(1) / (T(1) + exp(-x)); }
  __device__ static V tanh(V x) { return ::tanh(x); }
  __device__ static V pos(V h, V x) { return h > T(0) ? x : T(0); }
};

template <class T, bool Fwd>
__global__ void cell_kernel(RnnCellArgs a) {
  const int64_t n = a.rows * a.H;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    if constexpr (Fwd) rnn_cell::fwd_at<ThreadLanes<T>, T>(a, i / a.H, i % a.H);
    else rnn_cell::bwd_at<ThreadLanes<T>, T>(a, i / a.H, i % a.H);
  }
}

template <class T>
__global__ void add_kernel(const T* a, const T* b, T* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = a[i] + b[i];
}

void cells(bool fwd, DType dt, const RnnCellArgs& a, int device) {
  const unsigned grid = grid_for(a.rows * a.H, device);
  if (dt == DType::f64) {
    if (fwd) cell_kernel<double, true><<<grid, kThreads, 0, stream()>>>(a);
    else cell_kernel<double, false><<<grid, kThreads, 0, stream()>>>(a);
  } else {
    if (fwd) cell_kernel<float, true><<<grid, kThreads, 0, stream()>>>(a);
    else cell_kernel<float, false><<<grid, kThreads, 0, stream()>>>(a);
  }
  check_launch(fwd ? "rnn cell forward" : "rnn cell backward");
}

// C (M, N) = A (M, K, row stride lda) @ B (K, N; strides sk, sn) + beta C (row stride ldc).
void mm(DType dt, int64_t M, int64_t N, int64_t K, const void* A, int64_t lda, const void* B, int64_t sk, int64_t sn,
        void* C, int64_t ldc, double beta, int device) {
  GemmParams g;
  g.M = M; g.N = N; g.K = K; g.dtype = dt;
  g.A = A; g.sa_m = lda; g.sa_k = 1;
  g.B = B; g.sb_k = sk; g.sb_n = sn;
  g.C = C; g.sc_m = ldc; g.sc_n = 1;
  g.beta = beta;
  gemm(g, device);
}


void d2d(void* dst, const void* src, int64_t bytes) {
  check(cudaMemcpyAsync(dst, src, size_t(bytes), cudaMemcpyDeviceToDevice, stream()), "rnn copy");
}

}  // namespace

void rnn_fwd(const RnnParams& p, int device) {
  use_device(device);
  const int64_t H = p.H, P = p.P, GH = rnn_gates(p.mode) * H, SH = rnn_saved(p.mode) * H;
  const int64_t e = int64_t(dtype_size(p.dt));
  const bool proj = p.w_hr != nullptr;
  mm(p.dt, p.N, GH, p.I, p.x, p.I, p.w_ih, 1, p.I, p.gates, SH, 0.0, device);
  for (int64_t s = 0; s < p.T; ++s) {
    const int64_t t = p.reverse ? p.T - 1 - s : s, bs = p.batch_sizes[t], off = p.offsets[t];
    if (p.hprev) d2d(rnn_at(p.hprev, off * P, e), p.hst, bs * P * e);
    mm(p.dt, bs, GH, P, p.hst, P, p.w_hh, 1, P, p.gh, GH, 0.0, device);
    RnnCellArgs a = rnn_fwd_step_args(p, t);
    cells(true, p.dt, a, device);
    if (proj) {
      mm(p.dt, bs, P, H, a.h1, H, p.w_hr, 1, H, rnn_at(p.out, off * P, e), P, 0.0, device);
      d2d(p.hst, rnn_at(p.out, off * P, e), bs * P * e);
    }
  }
}

void rnn_bwd(const RnnParams& p, int device) {
  use_device(device);
  const int64_t H = p.H, P = p.P, GH = rnn_gates(p.mode) * H;
  const int64_t e = int64_t(dtype_size(p.dt));
  const bool proj = p.w_hr != nullptr, gru = p.mode == RnnMode::gru;
  for (int64_t s = p.T - 1; s >= 0; --s) {
    const int64_t t = p.reverse ? p.T - 1 - s : s, bs = p.batch_sizes[t], off = p.offsets[t];
    RnnCellArgs a = rnn_bwd_step_args(p, t);
    if (proj) {
      void* dhs = rnn_at(p.dhs, off * P, e);
      if (p.dout) {
        const unsigned grid = grid_for(bs * P, device);
        if (p.dt == DType::f64)
          add_kernel<double><<<grid, kThreads, 0, stream()>>>(reinterpret_cast<const double*>(rnn_at(p.dout, off * P, e)),
                                                               static_cast<const double*>(p.dh), static_cast<double*>(dhs), bs * P);
        else
          add_kernel<float><<<grid, kThreads, 0, stream()>>>(reinterpret_cast<const float*>(rnn_at(p.dout, off * P, e)),
                                                             static_cast<const float*>(p.dh), static_cast<float*>(dhs), bs * P);
        check_launch("rnn backward add");
      } else {
        d2d(dhs, p.dh, bs * P * e);
      }
      mm(p.dt, bs, H, P, dhs, P, p.w_hr, H, 1, p.dm, H, 0.0, device);
      a.da = p.dm; a.ldda = H;
    } else if (p.dout) {
      a.da = rnn_at(p.dout, off * P, e); a.ldda = P;
      a.db = p.dh; a.lddb = P;
    } else {
      a.da = p.dh; a.ldda = P;
    }
    cells(false, p.dt, a, device);
    mm(p.dt, bs, P, GH, a.dgh, GH, p.w_hh, P, 1, p.dh, P, gru ? 1.0 : 0.0, device);
  }
}

}  // namespace fastdl::cuda
