// Fused nn row kernels, compiled per ISA (the ref build is the scalar reference). Rows run in
// parallel over the pool; within a row, sums use 16 independent partial accumulators so the
// compiler vectorises without reassociating one chain; float32 exp/log are vm::*. Max-subtracted
// exponentials keep softmax and cross entropy finite for logits of any magnitude.
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "core/parallel.h"
#include "cpu/nn.h"
#include "cpu/simd/rows.h"
#include "cpu/simd/vmath.h"
#if defined(FASTDL_ISA_avx512) || defined(FASTDL_ISA_avx2)
#include "cpu/simd/vec.h"
#endif
#include "kernels/random.h"

namespace fastdl::cpu::FASTDL_ISA_NS {
namespace {

// exp with results below FLT_MIN flushed to 0: no denormal arithmetic (vm::exp_ftz_f).
template <class T> inline T t_exp(T x) { if constexpr (std::is_same_v<T, float>) return vm::exp_ftz_f(x); else return std::exp(x); }

// Rows per task so a task holds at least ~16k elements (small problems stay on one thread).
inline int64_t row_grain(int64_t n) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)); }

// Explicit vectors on the SIMD builds (cpu/simd/rows.h); elsewhere 16 independent lanes.
template <class T> T row_max(const T* __restrict x, int64_t n) {
#if defined(FASTDL_ISA_avx512) || defined(FASTDL_ISA_avx2)
  if constexpr (std::is_same_v<T, float>) return rows::simd_extreme<rows::XF, true>(x, n);
  if constexpr (std::is_same_v<T, double>) return rows::simd_extreme<rows::XD, true>(x, n);
#endif
  T acc[16];
  bool nan[16] = {};
  for (int j = 0; j < 16; ++j) acc[j] = -INFINITY;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) {
      T v = x[i + j];
      acc[j] = v > acc[j] ? v : acc[j];
      nan[j] |= v != v;
    }
  T m = -INFINITY;
  bool any_nan = false;
  for (int j = 0; j < 16; ++j) { m = acc[j] > m ? acc[j] : m; any_nan |= nan[j]; }
  for (; i < n; ++i) { m = x[i] > m ? x[i] : m; any_nan |= x[i] != x[i]; }
  return any_nan ? T(NAN) : m;
}

using rows::row_sum;

template <class T> double row_dot(const T* __restrict a, const T* __restrict b, int64_t n) {
  T acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += a[i + j] * b[i + j];
  double s = 0;
  for (int j = 0; j < 16; ++j) s += double(acc[j]);
  for (; i < n; ++i) s += double(a[i]) * double(b[i]);
  return s;
}

// sum(exp(x - m)) over a row, writing the exponentials to e (may be null).
template <class T> double row_sumexp(const T* __restrict x, T* __restrict e, T m, int64_t n) {
  T acc[16] = {};
  int64_t i = 0;
#if defined(FASTDL_ISA_avx512) || defined(FASTDL_ISA_avx2)
  if constexpr (std::is_same_v<T, float>) {  // explicit vectors: 2.5x the auto-vectorised exp
    vf s0{}, s1{};
    for (; i + 2 * kWf <= n; i += 2 * kWf) {
      const vf v0 = exp_ftz_v(ldv(x + i) - m), v1 = exp_ftz_v(ldv(x + i + kWf) - m);
      if (e) { stv(e + i, v0); stv(e + i + kWf, v1); }
      s0 += v0;
      s1 += v1;
    }
    stv(acc, s0 + s1);
  }
#endif
  if (e)  // two loops rather than a test inside one, so each vectorises
    for (; i + 16 <= n; i += 16)
      for (int j = 0; j < 16; ++j) { T v = t_exp(x[i + j] - m); e[i + j] = v; acc[j] += v; }
  else
    for (; i + 16 <= n; i += 16)
      for (int j = 0; j < 16; ++j) acc[j] += t_exp(x[i + j] - m);
  double s = 0;
  for (int j = 0; j < 16; ++j) s += double(acc[j]);  // (kWf <= 16 lanes from the vector loop)
  for (; i < n; ++i) { T v = t_exp(x[i] - m); if (e) e[i] = v; s += double(v); }
  return s;
}

// log-sum-exp of a row; an all -inf row gives -inf, a NaN gives NaN.
template <class T> T row_lse(const T* x, int64_t n) {
  T m = row_max(x, n);
  if (std::isinf(m)) return m;
  if (m != m) return m;
  return T(std::log(row_sumexp<T>(x, nullptr, m, n))) + m;
}

template <class T> void softmax_fwd_t(const T* x, T* y, int64_t rows, int64_t n, bool log) {
  parallel_for(0, rows, row_grain(n), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* xr = x + r * n;
      T* __restrict yr = y + r * n;
      T m = row_max(xr, n);
      if (std::isinf(m) && m < 0) m = 0;
      if (log) {
        T ls = T(std::log(row_sumexp<T>(xr, nullptr, m, n))) + m;
        for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] - ls;
      } else {
        T inv = T(1.0 / row_sumexp<T>(xr, yr, m, n));
        for (int64_t i = 0; i < n; ++i) yr[i] *= inv;
      }
    }
  });
}

template <class T> void softmax_bwd_t(const T* y, const T* g, T* gx, int64_t rows, int64_t n, bool log) {
  parallel_for(0, rows, row_grain(n), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* __restrict yr = y + r * n;
      const T* __restrict gr = g + r * n;
      T* __restrict o = gx + r * n;
      if (log) {
        T s = T(row_sum(gr, n));
        for (int64_t i = 0; i < n; ++i) o[i] = gr[i] - t_exp(yr[i]) * s;
      } else {
        T s = T(row_dot(gr, yr, n));
        for (int64_t i = 0; i < n; ++i) o[i] = yr[i] * (gr[i] - s);
      }
    }
  });
}

template <class T>
void layer_norm_fwd_t(const T* x, const T* w, const T* bias, T* y, T* mean, T* rstd, int64_t rows, int64_t n, double eps,
                      bool rms) {
  parallel_for(0, rows, row_grain(n), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* __restrict xr = x + r * n;
      T* __restrict yr = y + r * n;
      T mu = rms ? T(0) : T(row_sum(xr, n) / double(n));  // RMSNorm: no centring, rstd of mean(x^2)
      T acc[16] = {};
      int64_t i = 0;
      for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; ++j) { T d = xr[i + j] - mu; acc[j] += d * d; }
      double v = 0;
      for (int j = 0; j < 16; ++j) v += double(acc[j]);
      for (; i < n; ++i) { double d = double(xr[i] - mu); v += d * d; }
      T rs = T(1.0 / std::sqrt(v / double(n) + eps));
      mean[r] = mu;
      rstd[r] = rs;
      if (w && bias) for (int64_t k = 0; k < n; ++k) yr[k] = (xr[k] - mu) * rs * w[k] + bias[k];
      else if (w) for (int64_t k = 0; k < n; ++k) yr[k] = (xr[k] - mu) * rs * w[k];
      else if (bias) for (int64_t k = 0; k < n; ++k) yr[k] = (xr[k] - mu) * rs + bias[k];
      else for (int64_t k = 0; k < n; ++k) yr[k] = (xr[k] - mu) * rs;
    }
  });
}

// (sum gh, sum gh xh) of a row, gh = g w (w may be null), xh = (x - mu) rs.
template <class T> void ln_grad_sums(const T* __restrict g, const T* __restrict w, const T* __restrict x, T mu, T rs,
                                     int64_t n, double& s1, double& s2) {
  T a1[16] = {}, a2[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) {
      T gh = w ? g[i + j] * w[i + j] : g[i + j];
      a1[j] += gh;
      a2[j] += gh * (x[i + j] - mu) * rs;
    }
  for (int j = 0; j < 16; ++j) { s1 += double(a1[j]); s2 += double(a2[j]); }
  for (; i < n; ++i) {
    T gh = w ? g[i] * w[i] : g[i];
    s1 += double(gh);
    s2 += double(gh) * double((x[i] - mu) * rs);
  }
}
#if defined(FASTDL_ISA_avx512) || defined(FASTDL_ISA_avx2)
// float rows with explicit vectors: the compiler's vectorisation of the two 16-lane sums above
// interleaves them with permutes (a third of the speed; group norm's backward had the same).
void ln_grad_sums(const float* __restrict g, const float* __restrict w, const float* __restrict x, float mu, float rs,
                  int64_t n, double& s1, double& s2) {
  using rows::GV;
  constexpr int W = GV::W;
  const GV::R vmu = GV::splat(mu);
  GV::R a0 = GV::zero(), a1 = a0, b0 = a0, b1 = a0;
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    GV::R g0 = GV::ld(g + i), g1 = GV::ld(g + i + W);
    if (w) { g0 = GV::mul(g0, GV::ld(w + i)); g1 = GV::mul(g1, GV::ld(w + i + W)); }
    a0 = GV::add(a0, g0);
    a1 = GV::add(a1, g1);
    b0 = GV::fma(g0, GV::sub(GV::ld(x + i), vmu), b0);
    b1 = GV::fma(g1, GV::sub(GV::ld(x + i + W), vmu), b1);
  }
  s1 += GV::sum(GV::add(a0, a1));
  s2 += GV::sum(GV::add(b0, b1)) * double(rs);  // sum gh (x - mu), scaled once
  for (; i < n; ++i) {
    const float gh = w ? g[i] * w[i] : g[i];
    s1 += double(gh);
    s2 += double(gh) * double((x[i] - mu) * rs);
  }
}
#endif

// gx = rstd (gh - mean(gh) - xh mean(gh xh)), gh = gy w, xh = (x - mean) rstd; RMSNorm (mean 0)
// drops the mean(gh) term. gw = sum_rows gy xh, gb = sum_rows gy: a second pass over column
// blocks (deterministic).
template <class T>
void layer_norm_bwd_t(const T* x, const T* w, const T* mean, const T* rstd, const T* gy, T* gx, T* gw, T* gb,
                      int64_t rows, int64_t n, bool rms) {
  // Blocks of rows in parallel; each row's gx, and (when wanted) the block's partial column sums
  // of gw and gb while the row is in cache. The blocking is fixed (not by thread count), and the
  // blocks' partial sums are added in order: the result is the same on any number of threads.
  const bool cols = gw || gb;
  const int64_t rb = std::max<int64_t>(row_grain(n), (rows + 63) / 64);  // at most 64 blocks of partial sums
  const int64_t nblk = (rows + rb - 1) / rb;
  std::vector<T> part(cols ? size_t(2 * nblk * n) : 0);
  T* pw = part.data();
  T* pb = pw + (cols ? nblk * n : 0);
  parallel_for(0, nblk, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      T* __restrict sw = pw + b * n;
      T* __restrict sb = pb + b * n;
      if (cols) { std::fill(sw, sw + n, T(0)); std::fill(sb, sb + n, T(0)); }
      for (int64_t r = b * rb; r < std::min(rows, (b + 1) * rb); ++r) {
        const T* __restrict xr = x + r * n;
        const T* __restrict g = gy + r * n;
        T* __restrict o = gx + r * n;
        const T mu = mean[r], rs = rstd[r];
        double s1 = 0, s2 = 0;
        ln_grad_sums(g, w, xr, mu, rs, n, s1, s2);
        const T m1 = rms ? T(0) : T(s1 / double(n)), m2 = T(s2 / double(n));
        if (w) for (int64_t k = 0; k < n; ++k) o[k] = rs * (g[k] * w[k] - m1 - (xr[k] - mu) * rs * m2);
        else for (int64_t k = 0; k < n; ++k) o[k] = rs * (g[k] - m1 - (xr[k] - mu) * rs * m2);
        if (cols) {  // the row is in cache: its share of the column sums now
          for (int64_t k = 0; k < n; ++k) sw[k] += g[k] * ((xr[k] - mu) * rs);
          for (int64_t k = 0; k < n; ++k) sb[k] += g[k];
        }
      }
    }
  });
  if (!cols) return;
  parallel_for(0, n, 1024, [&](int64_t cb, int64_t ce) {
    for (int64_t c = cb; c < ce; ++c) {
      T sw = 0, sb = 0;
      for (int64_t b = 0; b < nblk; ++b) { sw += pw[b * n + c]; sb += pb[b * n + c]; }
      if (gw) gw[c] = sw;
      if (gb) gb[c] = sb;
    }
  });
}

// loss_r = (1-eps) w_t (lse - x_t) + eps/C sum_c w_c (lse - x_c); 0 on ignored rows.
template <class T> void cross_entropy_fwd_t(const CrossEntropyParams& p) {
  const T* x = static_cast<const T*>(p.x);
  const T* w = static_cast<const T*>(p.w);
  T* lse = static_cast<T*>(p.lse);
  T* loss = static_cast<T*>(p.loss);
  const int64_t C = p.C;
  const double ls = p.smoothing;
  double wsum = 0;
  if (w && ls > 0) for (int64_t c = 0; c < C; ++c) wsum += double(w[c]);
  parallel_for(0, p.rows, row_grain(C), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* xr = x + r * C;
      const int64_t t = p.t[r];
      T l = row_lse(xr, C);
      lse[r] = l;
      if (t == p.ignore_index) { loss[r] = 0; continue; }
      double wt = w ? double(w[t]) : 1.0;
      double v = (1 - ls) * wt * double(l - xr[t]);
      if (ls > 0) {
        double s = w ? double(l) * wsum - row_dot(w, xr, C) : double(l) * double(C) - row_sum(xr, C);
        v += ls / double(C) * s;
      }
      loss[r] = T(v);
    }
  });
}

// gx_rc = go_r [ (1-eps) w_t (p_c - [c == t]) + eps/C (p_c sum_k w_k - w_c) ], p = softmax(x_r).
template <class T> void cross_entropy_bwd_t(const CrossEntropyParams& p) {
  const T* x = static_cast<const T*>(p.x);
  const T* w = static_cast<const T*>(p.w);
  const T* lse = static_cast<const T*>(p.lse);
  const T* gl = static_cast<const T*>(p.gloss);
  T* gx = static_cast<T*>(p.gx);
  const int64_t C = p.C;
  const double ls = p.smoothing;
  double wsum = double(C);
  if (w) { wsum = 0; for (int64_t c = 0; c < C; ++c) wsum += double(w[c]); }
  parallel_for(0, p.rows, row_grain(C), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* __restrict xr = x + r * C;
      T* __restrict o = gx + r * C;
      const int64_t t = p.t[r];
      if (t == p.ignore_index) { for (int64_t c = 0; c < C; ++c) o[c] = 0; continue; }
      const T go = T(double(gl[r * p.gstride]) * p.gscale);
      const T wt = w ? w[t] : T(1);
      const T a = T(go * ((1 - ls) * double(wt) + ls / double(C) * wsum));  // coefficient of p_c
      const T l = lse[r], sc = T(double(go) * ls / double(C));
      if (w) for (int64_t c = 0; c < C; ++c) o[c] = a * t_exp(xr[c] - l) - sc * w[c];
      else for (int64_t c = 0; c < C; ++c) o[c] = a * t_exp(xr[c] - l) - sc;
      o[t] -= T(double(go) * (1 - ls) * double(wt));
    }
  });
}

#define FASTDL_NN_DT(dt, call) (dt == DType::f32 ? call(float) : call(double))

void softmax_fwd_k(DType dt, const void* x, void* y, int64_t rows, int64_t n, bool log) {
#define C_(T) softmax_fwd_t<T>(static_cast<const T*>(x), static_cast<T*>(y), rows, n, log)
  FASTDL_NN_DT(dt, C_);
#undef C_
}
void softmax_bwd_k(DType dt, const void* y, const void* g, void* gx, int64_t rows, int64_t n, bool log) {
#define C_(T) softmax_bwd_t<T>(static_cast<const T*>(y), static_cast<const T*>(g), static_cast<T*>(gx), rows, n, log)
  FASTDL_NN_DT(dt, C_);
#undef C_
}
void layer_norm_fwd_k(DType dt, const void* x, const void* w, const void* b, void* y, void* mean, void* rstd,
                      int64_t rows, int64_t n, double eps, bool rms) {
#define C_(T) layer_norm_fwd_t<T>(static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(b), \
                                  static_cast<T*>(y), static_cast<T*>(mean), static_cast<T*>(rstd), rows, n, eps, rms)
  FASTDL_NN_DT(dt, C_);
#undef C_
}
void layer_norm_bwd_k(DType dt, const void* x, const void* w, const void* mean, const void* rstd, const void* gy,
                      void* gx, void* gw, void* gb, int64_t rows, int64_t n, bool rms) {
#define C_(T) layer_norm_bwd_t<T>(static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(mean), \
                                  static_cast<const T*>(rstd), static_cast<const T*>(gy), static_cast<T*>(gx),     \
                                  static_cast<T*>(gw), static_cast<T*>(gb), rows, n, rms)
  FASTDL_NN_DT(dt, C_);
#undef C_
}
void cross_entropy_fwd_k(DType dt, const CrossEntropyParams& p) {
  if (dt == DType::f32) cross_entropy_fwd_t<float>(p); else cross_entropy_fwd_t<double>(p);
}
void cross_entropy_bwd_k(DType dt, const CrossEntropyParams& p) {
  if (dt == DType::f32) cross_entropy_bwd_t<float>(p); else cross_entropy_bwd_t<double>(p);
}

// Runs of up to 2^32 elements share the seed's high word, so the inner loop is pure 32-bit
// integer math that the compiler vectorises (vpmulld); the mask multiplies (no branch: a random
// branch mispredicts every other element, 8 ns each) and, as PyTorch's x * mask, a dropped NaN
// stays NaN.
template <class T>
void dropout_t(const T* __restrict x, T* __restrict y, int64_t n, uint64_t seed, uint32_t drop24, T scale) {
  parallel_for(0, n, 1 << 15, [&](int64_t b, int64_t e) {
    // Locals, not captures: the closure is memory that y's stores might alias, which would keep
    // the loop below from vectorising (it ran 10x slower on the pool's workers).
    const T* __restrict xl = x;
    T* __restrict yl = y;
    const uint32_t thr = drop24;
    const T sc = scale;
    while (b < e) {
      const int64_t run_end = std::min<int64_t>({e, ((b >> 32) + 1) << 32, b + (int64_t(1) << 31)});
      const uint32_t lo = uint32_t(seed), hi = dropout_seed_hi(seed, uint64_t(b)), i0 = uint32_t(b);
      const uint32_t m = uint32_t(run_end - b);
      const T* __restrict xs = xl + b;
      T* __restrict ys = yl + b;
      for (uint32_t j = 0; j < m; ++j) ys[j] = xs[j] * (dropout_u24(lo, hi, i0 + j) >= thr ? sc : T(0));
      b = run_end;
    }
  });
}
void dropout_k(DType dt, const void* x, void* y, int64_t n, uint64_t seed, uint32_t drop24, double scale) {
  if (dt == DType::f64) dropout_t(static_cast<const double*>(x), static_cast<double*>(y), n, seed, drop24, scale);
  else dropout_t(static_cast<const float*>(x), static_cast<float*>(y), n, seed, drop24, float(scale));
}

template <class T> void row_norm2_t(const T* x, T* out, int64_t rows, int64_t n) {
  parallel_for(0, rows, row_grain(n), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) out[r] = T(std::sqrt(row_dot(x + r * n, x + r * n, n)));
  });
}
void row_norm2_k(DType dt, const void* x, void* out, int64_t rows, int64_t n) {
  if (dt == DType::f64) row_norm2_t(static_cast<const double*>(x), static_cast<double*>(out), rows, n);
  else row_norm2_t(static_cast<const float*>(x), static_cast<float*>(out), rows, n);
}

}  // namespace

const NnKernels& nn_table() {
  static const NnKernels k{softmax_fwd_k, softmax_bwd_k, layer_norm_fwd_k, layer_norm_bwd_k, cross_entropy_fwd_k,
                           cross_entropy_bwd_k, dropout_k, row_norm2_k};
  return k;
}

}  // namespace fastdl::cpu::FASTDL_ISA_NS
