// Batch and group normalisation on CUDA; semantics and params in kernels/norm.h. One block per
// channel (batch norm) or per (sample, group) (group norm): statistics and gradient sums
// accumulate in double through a fixed-order block reduction (reproducible), then the same
// block writes its normalised slice. Group norm's weight / bias gradients sum the per-(n, c)
// partials of `scratch` over n in order. Operand precision float32 or float64. layer_norm runs
// group norm's forward (one group per row) and its own backward (cuda/norm_kernels.cuh).
#include <algorithm>

#include "cuda/common.cuh"
#include "cuda/norm_kernels.cuh"
#include "kernels/norm.h"

namespace fastdl::cuda {
namespace {

using norm_detail::at;
using norm_detail::block_sum;
using norm_detail::gn_fwd_kernel;
using norm_detail::kNormThreads;
using norm_detail::kWarp;

// x, y (N, C, S); one block per channel c over its M = N S elements.
template <class T>
__global__ void __launch_bounds__(kNormThreads) bn_fwd_kernel(const BatchNormParams p) {
  __shared__ double sh[kWarp + 1];
  const int64_t c = blockIdx.x, S = p.S, M = p.N * S;
  const T* x = static_cast<const T*>(p.x);
  auto at_e = [&](int64_t e) { return (e / S * p.C + c) * S + e % S; };
  double mu, is;
  if (p.training) {
    double s = 0;
    for (int64_t e = threadIdx.x; e < M; e += kNormThreads) s += double(x[at_e(e)]);
    mu = block_sum(s, sh) / double(M);
    const T m = T(mu);
    double v = 0;
    for (int64_t e = threadIdx.x; e < M; e += kNormThreads) {
      const T d = x[at_e(e)] - m;
      v += double(d * d);
    }
    v = block_sum(v, sh) / double(M);
    is = 1.0 / sqrt(v + p.eps);
    if (threadIdx.x == 0) {
      T* rm = static_cast<T*>(p.running_mean);
      T* rv = static_cast<T*>(p.running_var);
      if (rm) rm[c] = T((1 - p.momentum) * double(rm[c]) + p.momentum * mu);
      if (rv && M > 1) rv[c] = T((1 - p.momentum) * double(rv[c]) + p.momentum * v * double(M) / double(M - 1));
    }
  } else {
    mu = double(static_cast<const T*>(p.running_mean)[c]);
    is = 1.0 / sqrt(double(static_cast<const T*>(p.running_var)[c]) + p.eps);
  }
  if (threadIdx.x == 0) {
    static_cast<T*>(p.mean)[c] = T(mu);
    static_cast<T*>(p.invstd)[c] = T(is);
  }
  // Centred first, as the CPU kernel: a x + (b - a m) would cancel in float32 when |m| >> std.
  const T tm = T(mu), ta = T(double(at<T>(p.w, c, T(1))) * is), tb = at<T>(p.b, c, T(0));
  T* y = static_cast<T*>(p.y);
  for (int64_t e = threadIdx.x; e < M; e += kNormThreads) y[at_e(e)] = ta * (x[at_e(e)] - tm) + tb;
}

template <class T>
__global__ void __launch_bounds__(kNormThreads) bn_bwd_kernel(const BatchNormParams p) {
  __shared__ double sh[kWarp + 1];
  const int64_t c = blockIdx.x, S = p.S, M = p.N * S;
  const T* x = static_cast<const T*>(p.x);
  const T* gy = static_cast<const T*>(p.gy);
  auto at_e = [&](int64_t e) { return (e / S * p.C + c) * S + e % S; };
  const T m = static_cast<const T*>(p.mean)[c];
  const double is = double(static_cast<const T*>(p.invstd)[c]);
  double sg = 0, sgx = 0;
  for (int64_t e = threadIdx.x; e < M; e += kNormThreads) {
    const int64_t i = at_e(e);
    sg += double(gy[i]);
    sgx += double(gy[i] * (x[i] - m));
  }
  sg = block_sum(sg, sh);
  sgx = block_sum(sgx, sh);
  if (threadIdx.x == 0) {
    if (p.gb) static_cast<T*>(p.gb)[c] = T(sg);
    if (p.gw) static_cast<T*>(p.gw)[c] = T(sgx * is);
  }
  if (!p.gx) return;
  const double a = double(at<T>(p.w, c, T(1))) * is;
  double b = 0, cc = 0;
  if (p.training) {  // gx = a (gy - sg / M - xhat gw / M),  xhat = (x - m) is,  gw = sgx is
    b = -a * is * is * sgx / double(M);
    cc = -a * sg / double(M);
  }
  const T ta = T(a), tb = T(b), tc = T(cc);
  T* gx = static_cast<T*>(p.gx);
  for (int64_t e = threadIdx.x; e < M; e += kNormThreads) {
    const int64_t i = at_e(e);
    gx[i] = ta * gy[i] + tb * (x[i] - m) + tc;  // centred, as the forward
  }
}

// Per row: sums over each channel's S elements into scratch (sgs, sgxs: (N, C)), then gx.
template <class T>
__global__ void __launch_bounds__(kNormThreads) gn_bwd_kernel(const GroupNormParams p) {
  __shared__ double sh[kWarp + 1];
  const int64_t r = blockIdx.x, Cg = p.C / p.G, S = p.S, L = Cg * S, n = r / p.G, g = r % p.G;
  const T* x = static_cast<const T*>(p.x) + r * L;
  const T* gy = static_cast<const T*>(p.gy) + r * L;
  T* sgs = static_cast<T*>(p.scratch);
  T* sgxs = sgs + p.N * p.C;
  const T m = static_cast<const T*>(p.mean)[r];
  const double is = double(static_cast<const T*>(p.invstd)[r]);
  double sd = 0, sdx = 0;  // sum d, sum d (x - mean) with d = gy w
  for (int64_t k = 0; k < Cg; ++k) {
    const int64_t c = g * Cg + k;
    double sg = 0, sgx = 0;
    for (int64_t e = threadIdx.x; e < S; e += kNormThreads) {
      sg += double(gy[k * S + e]);
      sgx += double(gy[k * S + e] * (x[k * S + e] - m));
    }
    sg = block_sum(sg, sh);
    sgx = block_sum(sgx, sh);
    if (threadIdx.x == 0) {
      sgs[n * p.C + c] = T(sg);
      sgxs[n * p.C + c] = T(sgx);
    }
    const double w = double(at<T>(p.w, c, T(1)));
    sd += w * sg;
    sdx += w * sgx;
  }
  if (!p.gx) return;
  // gx = is (d - sd / L - xhat sum(d xhat) / L),  sum(d xhat) = is sdx
  const double b = -is * is * is * sdx / double(L);
  const double cc = -is * sd / double(L);
  const T tb = T(b), tc = T(cc);
  T* gx = static_cast<T*>(p.gx) + r * L;
  for (int64_t e = threadIdx.x; e < L; e += kNormThreads) {
    const T a = T(double(at<T>(p.w, g * Cg + e / S, T(1))) * is);
    gx[e] = a * gy[e] + tb * (x[e] - m) + tc;
  }
}

// gw[c] = sum over n of sgxs[n, c] invstd[n, g(c)], gb[c] = sum over n of sgs[n, c], in order.
template <class T>
__global__ void gn_param_grad_kernel(const GroupNormParams p) {
  const int64_t Cg = p.C / p.G;
  const T* sgs = static_cast<const T*>(p.scratch);
  const T* sgxs = sgs + p.N * p.C;
  const T* invstd = static_cast<const T*>(p.invstd);
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < p.C; c += int64_t(gridDim.x) * blockDim.x) {
    double gw = 0, gb = 0;
    for (int64_t n = 0; n < p.N; ++n) {
      gb += double(sgs[n * p.C + c]);
      gw += double(sgxs[n * p.C + c]) * double(invstd[n * p.G + c / Cg]);
    }
    if (p.gw) static_cast<T*>(p.gw)[c] = T(gw);
    if (p.gb) static_cast<T*>(p.gb)[c] = T(gb);
  }
}

void check_dtype(DType dt, const char* what) {
  FASTDL_CHECK(dt == DType::f32 || dt == DType::f64, TypeError, what,
               ": the CUDA kernel takes float32 or float64; got ", dtype_str(dt));
}

template <class P, class K32, class K64>
void launch(const P& p, int64_t blocks, K32 k32, K64 k64, const char* what) {
  FASTDL_CHECK(blocks < (int64_t(1) << 31), DeviceError, what, ": too many blocks (", blocks, ")");
  if (p.dt == DType::f64) k64<<<unsigned(blocks), kNormThreads, 0, stream()>>>(p);
  else k32<<<unsigned(blocks), kNormThreads, 0, stream()>>>(p);
  check_launch(what);
}

void zero(void* ptr, int64_t n, DType dt, const char* what) {
  if (ptr && n > 0) check(cudaMemsetAsync(ptr, 0, size_t(n) * dtype_size(dt), stream()), what);
}

}  // namespace

void batch_norm_fwd(const BatchNormParams& p, int device) {
  check_dtype(p.dt, "batch_norm");
  if (p.C == 0) return;
  use_device(device);
  launch(p, p.C, bn_fwd_kernel<float>, bn_fwd_kernel<double>, "batch_norm");
}

void batch_norm_bwd(const BatchNormParams& p, int device) {
  check_dtype(p.dt, "batch_norm backward");
  if (p.C == 0) return;
  use_device(device);
  launch(p, p.C, bn_bwd_kernel<float>, bn_bwd_kernel<double>, "batch_norm backward");
}

void group_norm_fwd(const GroupNormParams& p, int device) {
  check_dtype(p.dt, "group_norm");
  if (p.N * p.G == 0) return;
  use_device(device);
  launch(p, p.N * p.G, gn_fwd_kernel<float>, gn_fwd_kernel<double>, "group_norm");
}

void group_norm_bwd(const GroupNormParams& p, int device) {
  check_dtype(p.dt, "group_norm backward");
  use_device(device);
  if (p.N * p.G == 0) {  // no sample: parameter gradients are zero
    zero(p.gw, p.C, p.dt, "group_norm backward");
    zero(p.gb, p.C, p.dt, "group_norm backward");
    return;
  }
  launch(p, p.N * p.G, gn_bwd_kernel<float>, gn_bwd_kernel<double>, "group_norm backward");
  if ((p.gw || p.gb) && p.C > 0) {
    const unsigned blocks = grid_for(p.C, device);
    if (p.dt == DType::f64) gn_param_grad_kernel<double><<<blocks, kThreads, 0, stream()>>>(p);
    else gn_param_grad_kernel<float><<<blocks, kThreads, 0, stream()>>>(p);
    check_launch("group_norm backward (weight, bias)");
  }
}

void layer_norm_bwd(const LayerNormParams& p, int device) {
  check_dtype(p.dt, "layer_norm backward");
  use_device(device);
  if (p.rows == 0) {  // no row: parameter gradients are zero
    zero(p.gw, p.n, p.dt, "layer_norm backward");
    zero(p.gb, p.n, p.dt, "layer_norm backward");
    return;
  }
  if (p.n == 0) return;
  const bool f64 = p.dt == DType::f64;
  if (p.gx) {
    const unsigned blocks = unsigned(std::min<int64_t>(p.rows, int64_t(sm_count(device)) * 16));
    if (f64) norm_detail::ln_bwd_kernel<double><<<blocks, kNormThreads, 0, stream()>>>(p);
    else norm_detail::ln_bwd_kernel<float><<<blocks, kNormThreads, 0, stream()>>>(p);
    check_launch("layer_norm backward");
  }
  if (!p.gw && !p.gb) return;
  // Row chunks: enough blocks for about four per multiprocessor, at least 32 rows each.
  const int64_t cblocks = cdiv(p.n, kNormThreads);
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>({cdiv(p.rows, 32), cdiv(4 * int64_t(sm_count(device)), cblocks), 65535}));
  const int64_t rpc = cdiv(p.rows, chunks);
  Scratch ws(size_t(2 * chunks * p.n) * sizeof(double), device);
  double* w = static_cast<double*>(ws.ptr);
  const dim3 grid{unsigned(cblocks), unsigned(chunks)};
  if (f64) norm_detail::ln_param_partial_kernel<double><<<grid, kNormThreads, 0, stream()>>>(p, rpc, w);
  else norm_detail::ln_param_partial_kernel<float><<<grid, kNormThreads, 0, stream()>>>(p, rpc, w);
  check_launch("layer_norm backward (parameter sums)");
  if (f64) norm_detail::ln_param_reduce_kernel<double><<<unsigned(cblocks), kNormThreads, 0, stream()>>>(p, chunks, w);
  else norm_detail::ln_param_reduce_kernel<float><<<unsigned(cblocks), kNormThreads, 0, stream()>>>(p, chunks, w);
  check_launch("layer_norm backward (parameter sums)");
}

}  // namespace fastdl::cuda
