// 2-D pooling on CUDA; semantics and params in kernels/pool.h. One thread per output element in the
// forward; the backward is a gather, one thread per input element summing the outputs whose
// window holds it (max: whose idx is it), so nothing is scattered with atomics and gradients
// are reproducible. Operand precision throughout (float32, float64).
#include "cuda/common.cuh"
#include "kernels/pool.h"

namespace fastdl::cuda {
namespace {


__host__ __device__ __forceinline__ int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
__host__ __device__ __forceinline__ int64_t ad_begin(int64_t o, int64_t n, int64_t on) { return (o * n) / on; }
__host__ __device__ __forceinline__ int64_t ad_end(int64_t o, int64_t n, int64_t on) { return ((o + 1) * n + on - 1) / on; }

// Window rows [h0, h1) (already clipped to the input for avg's sums) and the avg divisor.
struct Win { int64_t h0, h1, w0, w1; double div; };
__host__ __device__ __forceinline__ Win avg_window(const Pool2dParams& p, int64_t oh, int64_t ow) {
  Win r;
  if (p.kind == PoolKind::adaptive_avg) {
    r.h0 = ad_begin(oh, p.H, p.OH), r.h1 = ad_end(oh, p.H, p.OH);
    r.w0 = ad_begin(ow, p.W, p.OW), r.w1 = ad_end(ow, p.W, p.OW);
    r.div = double((r.h1 - r.h0) * (r.w1 - r.w0));
    return r;
  }
  int64_t h0 = oh * p.sh - p.ph, w0 = ow * p.sw - p.pw;
  int64_t h1 = imin(h0 + p.kh, p.H + p.ph), w1 = imin(w0 + p.kw, p.W + p.pw);
  const int64_t padded = (h1 - h0) * (w1 - w0);
  h0 = imax(h0, 0), w0 = imax(w0, 0), h1 = imin(h1, p.H), w1 = imin(w1, p.W);
  r.h0 = h0, r.h1 = h1, r.w0 = w0, r.w1 = w1;
  r.div = p.divisor_override != 0 ? double(p.divisor_override)
                                 : double(p.count_include_pad ? padded : (h1 - h0) * (w1 - w0));
  return r;
}

// Output e of y, idx (planes, OH, OW) from x (planes, H, W).
template <class T>
__host__ __device__ void pool_fwd_one(const Pool2dParams& p, int64_t e) {
  const int64_t ow = e % p.OW, oh = (e / p.OW) % p.OH, pl = e / (p.OW * p.OH);
  const T* x = static_cast<const T*>(p.x) + pl * p.H * p.W;
  if (p.kind == PoolKind::avg || p.kind == PoolKind::adaptive_avg) {
    const Win w = avg_window(p, oh, ow);
    T s = 0;
    for (int64_t h = w.h0; h < w.h1; ++h)
      for (int64_t c = w.w0; c < w.w1; ++c) s += x[h * p.W + c];
    static_cast<T*>(p.y)[e] = w.div != 0 ? s / T(w.div) : T(0);
    return;
  }
  int64_t h0, hn, hs, w0, wn, ws;  // first tap, taps, step
  if (p.kind == PoolKind::adaptive_max) {
    h0 = ad_begin(oh, p.H, p.OH), hn = ad_end(oh, p.H, p.OH) - h0, hs = 1;
    w0 = ad_begin(ow, p.W, p.OW), wn = ad_end(ow, p.W, p.OW) - w0, ws = 1;
  } else {
    h0 = oh * p.sh - p.ph, hn = p.kh, hs = p.dh;
    w0 = ow * p.sw - p.pw, wn = p.kw, ws = p.dw;
  }
  T best = -INFINITY;  // as the CPU kernel: idx starts at the first valid tap; NaN wins
  int64_t at = -1;
  for (int64_t i = 0; i < hn; ++i) {
    const int64_t h = h0 + i * hs;
    if (h < 0 || h >= p.H) continue;
    for (int64_t j = 0; j < wn; ++j) {
      const int64_t c = w0 + j * ws;
      if (c < 0 || c >= p.W) continue;
      const T v = x[h * p.W + c];
      if (at < 0) at = h * p.W + c;
      if (v > best || v != v) best = v, at = h * p.W + c;
    }
  }
  static_cast<T*>(p.y)[e] = best;
  p.idx[e] = at;
}

template <class T>
__global__ void pool_fwd_kernel(const Pool2dParams p) {
  const int64_t n = p.planes * p.OH * p.OW;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x)
    pool_fwd_one<T>(p, e);
}

// Element e of gx (planes, H, W), overwritten, from gy (planes, OH, OW): the sum over the
// outputs whose window holds it (max: whose idx is it), in ascending output order.
template <class T>
__host__ __device__ void pool_bwd_one(const Pool2dParams& p, int64_t e) {
  const int64_t w = e % p.W, h = (e / p.W) % p.H, pl = e / (p.W * p.H);
  const T* gy = static_cast<const T*>(p.gy) + pl * p.OH * p.OW;
  const int64_t* idx = p.idx ? p.idx + pl * p.OH * p.OW : nullptr;
  // Outputs whose window may hold (h, w): a superset, each checked below.
  int64_t oh0, oh1, ow0, ow1;
  if (p.kind == PoolKind::adaptive_avg || p.kind == PoolKind::adaptive_max) {
    oh0 = imax(0, (h * p.OH) / p.H - 1), oh1 = imin(p.OH, ((h + 1) * p.OH) / p.H + 2);
    ow0 = imax(0, (w * p.OW) / p.W - 1), ow1 = imin(p.OW, ((w + 1) * p.OW) / p.W + 2);
  } else {
    const int64_t eh = (p.kh - 1) * (p.kind == PoolKind::max ? p.dh : 1);  // window extent - 1
    const int64_t ew = (p.kw - 1) * (p.kind == PoolKind::max ? p.dw : 1);
    oh0 = imax(0, (h + p.ph - eh + p.sh - 1) / p.sh - (h + p.ph - eh < 0 ? 1 : 0));
    oh1 = imin(p.OH, (h + p.ph) / p.sh + 1);
    ow0 = imax(0, (w + p.pw - ew + p.sw - 1) / p.sw - (w + p.pw - ew < 0 ? 1 : 0));
    ow1 = imin(p.OW, (w + p.pw) / p.sw + 1);
  }
  const int64_t self = h * p.W + w;
  T s = 0;
  for (int64_t oh = oh0; oh < oh1; ++oh)
    for (int64_t ow = ow0; ow < ow1; ++ow) {
      const int64_t o = oh * p.OW + ow;
      if (p.kind == PoolKind::max || p.kind == PoolKind::adaptive_max) {
        if (idx[o] == self) s += gy[o];
      } else {
        const Win win = avg_window(p, oh, ow);
        if (win.div != 0 && h >= win.h0 && h < win.h1 && w >= win.w0 && w < win.w1) s += gy[o] / T(win.div);
      }
    }
  static_cast<T*>(p.gx)[e] = s;
}

template <class T>
__global__ void pool_bwd_kernel(const Pool2dParams p) {
  const int64_t n = p.planes * p.H * p.W;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x)
    pool_bwd_one<T>(p, e);
}

void check_dtype(DType dt, const char* what) {
  FASTDL_CHECK(dt == DType::f32 || dt == DType::f64, TypeError, what,
               ": the CUDA kernel takes float32 or float64; got ", dtype_str(dt));
}

}  // namespace

void pool2d_fwd(const Pool2dParams& p, int device) {
  check_dtype(p.dt, "pool2d");
  const int64_t n = p.planes * p.OH * p.OW;
  if (n == 0) return;
  use_device(device);
  if (p.dt == DType::f64) pool_fwd_kernel<double><<<grid_for(n, device), kThreads, 0, stream()>>>(p);
  else pool_fwd_kernel<float><<<grid_for(n, device), kThreads, 0, stream()>>>(p);
  check_launch("pool2d");
}

void pool2d_bwd(const Pool2dParams& p, int device) {
  check_dtype(p.dt, "pool2d backward");
  const int64_t n = p.planes * p.H * p.W;
  if (n == 0) return;
  use_device(device);
  if (p.dt == DType::f64) pool_bwd_kernel<double><<<grid_for(n, device), kThreads, 0, stream()>>>(p);
  else pool_bwd_kernel<float><<<grid_for(n, device), kThreads, 0, stream()>>>(p);
  check_launch("pool2d backward");
}

}  // namespace fastdl::cuda
