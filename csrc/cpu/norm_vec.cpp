// Batch / group normalisation kernels (cpu/norm.h), compiled per ISA; the ref build is the
// scalar reference. Each contiguous row of S (or (C / G) S) elements is summed with 16
// independent partial accumulators (so the compiler vectorises without reassociating one chain)
// and the row totals are added in double. Batch norm reads x once for its statistics (sums of
// x - k and (x - k)^2 with k a sample of the channel: the shifted-data variance, never the raw
// E[x^2] - E[x]^2), group norm twice (two-pass variance over rows that stay in cache). Every
// output is an affine map of x and gy per row, written in one vectorised pass. Batch norm runs
// channels in parallel, group norm (n, g) rows; batch norm over rows too short to vectorise
// (S < kShortRows) sums channel ranges across samples instead (bn_fwd_short, bn_bwd_short).
#include <algorithm>
#include <array>
#include <cmath>
#include <utility>
#include <vector>

#include "core/parallel.h"
#include "cpu/norm.h"
#include "cpu/simd/rows.h"

namespace fastdl::cpu::FASTDL_ISA_NS {
namespace {

using rows::row_sum;

// sum (x - m)^2
template <class T> double row_sqdev(const T* __restrict x, T m, int64_t n) {
  T acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) { const T d = x[i + j] - m; acc[j] += d * d; }
  double s = 0;
  for (int j = 0; j < 16; ++j) s += double(acc[j]);
  for (; i < n; ++i) { const double d = double(x[i]) - double(m); s += d * d; }
  return s;
}

// (sum (x - k), sum (x - k)^2) in one pass: the shifted-data variance, stable while the shift k
// lies within the data (the op passes the channel's first element).
template <class T> void row_shifted_sums(const T* __restrict x, T k, int64_t n, double& s1, double& s2) {
  T a[16] = {}, b[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) { const T d = x[i + j] - k; a[j] += d; b[j] += d * d; }
  for (int j = 0; j < 16; ++j) { s1 += double(a[j]); s2 += double(b[j]); }
  for (; i < n; ++i) { const double d = double(x[i]) - double(k); s1 += d; s2 += d * d; }
}

// (sum g, sum g (x - m))
#if defined(FASTDL_ISA_avx512) || defined(FASTDL_ISA_avx2)
// float rows with explicit vectors, two accumulators per sum: the compiler's vectorisation of the
// 16-lane loop below interleaves the two sums with permutes and ran group norm's backward at a
// third of the speed it should.
using rows::GV;
inline void row_grad_sums(const float* __restrict g, const float* __restrict x, float m, int64_t n, double& sg_out,
                          double& sgx_out) {
  constexpr int W = GV::W;
  const GV::R vm = GV::splat(m);
  GV::R a0 = GV::zero(), a1 = a0, b0 = a0, b1 = a0;
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    const GV::R g0 = GV::ld(g + i), g1 = GV::ld(g + i + W);
    a0 = GV::add(a0, g0);
    a1 = GV::add(a1, g1);
    b0 = GV::fma(g0, GV::sub(GV::ld(x + i), vm), b0);
    b1 = GV::fma(g1, GV::sub(GV::ld(x + i + W), vm), b1);
  }
  double sg = GV::sum(GV::add(a0, a1)), sgx = GV::sum(GV::add(b0, b1));
  for (; i < n; ++i) { sg += double(g[i]); sgx += double(g[i]) * (double(x[i]) - double(m)); }
  sg_out += sg;
  sgx_out += sgx;
}
inline void row_shifted_sums(const float* __restrict x, float k, int64_t n, double& s1, double& s2) {
  constexpr int W = GV::W;
  const GV::R vk = GV::splat(k);
  GV::R a0 = GV::zero(), a1 = a0, b0 = a0, b1 = a0;
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    const GV::R d0 = GV::sub(GV::ld(x + i), vk), d1 = GV::sub(GV::ld(x + i + W), vk);
    a0 = GV::add(a0, d0);
    a1 = GV::add(a1, d1);
    b0 = GV::fma(d0, d0, b0);
    b1 = GV::fma(d1, d1, b1);
  }
  double t1 = GV::sum(GV::add(a0, a1)), t2 = GV::sum(GV::add(b0, b1));
  for (; i < n; ++i) { const double d = double(x[i]) - double(k); t1 += d; t2 += d * d; }
  s1 += t1;
  s2 += t2;
}
#endif

template <class T> void row_grad_sums(const T* __restrict g, const T* __restrict x, T m, int64_t n, double& sg_out,
                                      double& sgx_out) {
  T a[16] = {}, b[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) { a[j] += g[i + j]; b[j] += g[i + j] * (x[i + j] - m); }
  double sg = 0, sgx = 0;  // locals: sums through the references stayed in memory
  for (int j = 0; j < 16; ++j) { sg += double(a[j]); sgx += double(b[j]); }
  for (; i < n; ++i) { sg += double(g[i]); sgx += double(g[i]) * (double(x[i]) - double(m)); }
  sg_out += sg;
  sgx_out += sgx;
}

// y = a (x - m) + c  (centred first: a x + c' would cancel in float32 when |m| >> std)
template <class T> inline void row_affine(const T* __restrict x, T* __restrict y, T m, T a, T c, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a * (x[i] - m) + c;
}
// gx = a g + b (x - m) + c
template <class T> inline void row_affine2(const T* __restrict g, const T* __restrict x, T* __restrict gx, T m, T a,
                                           T b, T c, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gx[i] = a * g[i] + b * (x[i] - m) + c;
}

template <class T> inline T at(const void* p, int64_t i, T dflt) { return p ? static_cast<const T*>(p)[i] : dflt; }

inline int64_t grain_for(int64_t per_item) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(per_item, 1)); }

// Batch norm's per-channel arithmetic, shared by the row loops and the short-row path.
// Forward: channel c's mean and 1 / std, from its shifted sums in training (s1 = sum (x - k),
// s2 = sum (x - k)^2 over its N S values; the running statistics updated) or the running ones in
// eval; written to mean[c] and invstd[c] and returned.
template <class T> std::pair<double, double> bn_stats(const BatchNormParams& p, int64_t c, double k, double s1, double s2) {
  const int64_t M = p.N * p.S;
  T* rm = static_cast<T*>(p.running_mean);
  T* rv = static_cast<T*>(p.running_var);
  double mu, is;
  if (p.training) {
    const double dm = s1 / double(M);
    mu = k + dm;
    const double v = std::max(0.0, s2 / double(M) - dm * dm);
    is = 1.0 / std::sqrt(v + p.eps);
    if (rm) rm[c] = T((1 - p.momentum) * double(rm[c]) + p.momentum * mu);
    if (rv && M > 1) rv[c] = T((1 - p.momentum) * double(rv[c]) + p.momentum * v * double(M) / double(M - 1));
  } else {
    mu = double(rm[c]);
    is = 1.0 / std::sqrt(double(rv[c]) + p.eps);
  }
  static_cast<T*>(p.mean)[c] = T(mu);
  static_cast<T*>(p.invstd)[c] = T(is);
  return {mu, is};
}
// Backward: from channel c's sums sg = sum gy and sgx = sum gy (x - mean), writes gb[c] and
// gw[c] and returns (a, b, cc) with gx = a gy + b (x - mean) + cc:
//   gx = a (gy - sg / M - xhat gw / M) in training,  a = w is,  xhat = (x - mean) is,  gw = sgx is
template <class T> std::array<double, 3> bn_grad_coeffs(const BatchNormParams& p, int64_t c, double sg, double sgx) {
  const double is = double(static_cast<const T*>(p.invstd)[c]), M = double(p.N * p.S);
  if (p.gb) static_cast<T*>(p.gb)[c] = T(sg);
  if (p.gw) static_cast<T*>(p.gw)[c] = T(sgx * is);
  const double a = double(at<T>(p.w, c, T(1))) * is;
  if (!p.training) return {a, 0.0, 0.0};
  return {a, -a * is * is * sgx / M, -a * sg / M};
}

#if defined(FASTDL_ISA_avx2) || defined(FASTDL_ISA_avx512)
// Batch norm over short rows (S below kShortRows: the last stages of a CNN, BatchNorm1d's S = 1):
// per channel the rows are too short to vectorise, so a thread takes a range of channels and
// walks the samples' contiguous (channels x S) segments, accumulating elementwise into
// per-element sums (vector loops over the segment), then adds each channel's S sums in double.
// The elementwise sums run in float over blocks of kRowBlock samples, then in double. Per-element
// copies of each channel's constants make the output passes single vector loops too.
constexpr int64_t kShortRows = 64, kRowBlock = 256;

// A range of channels, L = channels x S elements of each sample: term(n, u, v) adds sample n's
// two per-element terms into u[j] and v[j]; their sums over the samples, added per channel (S
// consecutive elements), go to s1[c] and s2[c]. a, b, da, db: the caller's L-long scratch.
template <class T, class F>
void seg_sums(int64_t N, int64_t L, int64_t S, const F& term, double* s1, double* s2, std::vector<T>& a,
              std::vector<T>& b, std::vector<double>& da, std::vector<double>& db) {
  std::fill(da.begin(), da.begin() + L, 0.0);
  std::fill(db.begin(), db.begin() + L, 0.0);
  for (int64_t n0 = 0; n0 < N; n0 += kRowBlock) {
    std::fill(a.begin(), a.begin() + L, T(0));
    std::fill(b.begin(), b.begin() + L, T(0));
    for (int64_t n = n0; n < std::min(N, n0 + kRowBlock); ++n) term(n, a.data(), b.data());
    for (int64_t j = 0; j < L; ++j) { da[size_t(j)] += double(a[size_t(j)]); db[size_t(j)] += double(b[size_t(j)]); }
  }
  for (int64_t c = 0; c < L / S; ++c) {
    double u = 0, v = 0;
    for (int64_t s = 0; s < S; ++s) { u += da[size_t(c * S + s)]; v += db[size_t(c * S + s)]; }
    s1[c] = u; s2[c] = v;
  }
}

inline int64_t short_grain(int64_t N, int64_t S) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(N * S, 1)); }

template <class T> void bn_fwd_short(const BatchNormParams& p) {
  const int64_t N = p.N, C = p.C, S = p.S;
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  parallel_for(0, C, short_grain(N, S), [&](int64_t c0, int64_t c1) {
    const int64_t L = (c1 - c0) * S;
    const size_t len = static_cast<size_t>(L);
    std::vector<T> a(len), b(len), k(len), sc(len), sh(len);
    std::vector<double> da(len), db(len), s1(static_cast<size_t>(c1 - c0)), s2(static_cast<size_t>(c1 - c0));
    if (p.training) {
      for (int64_t j = 0; j < L; ++j) k[size_t(j)] = x[(c0 + j / S) * S];  // shift: the channel's first element
      const T* kk = k.data();
      seg_sums<T>(N, L, S, [&](int64_t n, T* __restrict u, T* __restrict v) {
        const T* xr = x + n * C * S + c0 * S;
        for (int64_t j = 0; j < L; ++j) { const T d = xr[j] - kk[j]; u[j] += d; v[j] += d * d; }
      }, s1.data(), s2.data(), a, b, da, db);
    }
    for (int64_t c = c0; c < c1; ++c) {  // k, sc, sh become each element's mean, scale and shift
      const double shift = p.training ? double(x[c * S]) : 0.0;  // eval may see an empty batch
      const auto [mu, is] = bn_stats<T>(p, c, shift, s1[size_t(c - c0)], s2[size_t(c - c0)]);
      for (int64_t s = 0; s < S; ++s) {
        k[size_t((c - c0) * S + s)] = T(mu);
        sc[size_t((c - c0) * S + s)] = T(double(at<T>(p.w, c, T(1))) * is);
        sh[size_t((c - c0) * S + s)] = at<T>(p.b, c, T(0));
      }
    }
    const T *m = k.data(), *av = sc.data(), *bv = sh.data();
    for (int64_t n = 0; n < N; ++n) {
      const T* __restrict xr = x + n * C * S + c0 * S;
      T* __restrict yr = y + n * C * S + c0 * S;
      for (int64_t j = 0; j < L; ++j) yr[j] = av[j] * (xr[j] - m[j]) + bv[j];
    }
  });
}

template <class T> void bn_bwd_short(const BatchNormParams& p) {
  const int64_t N = p.N, C = p.C, S = p.S;
  const T* x = static_cast<const T*>(p.x);
  const T* gy = static_cast<const T*>(p.gy);
  const T* mean = static_cast<const T*>(p.mean);
  T* gx = static_cast<T*>(p.gx);
  parallel_for(0, C, short_grain(N, S), [&](int64_t c0, int64_t c1) {
    const int64_t L = (c1 - c0) * S;
    const size_t len = static_cast<size_t>(L);
    std::vector<T> a(len), b(len), m(len), ca(len), cb(len), cc(len);
    std::vector<double> da(len), db(len), sg(static_cast<size_t>(c1 - c0)), sgx(static_cast<size_t>(c1 - c0));
    for (int64_t j = 0; j < L; ++j) m[size_t(j)] = mean[c0 + j / S];
    const T* mm = m.data();
    seg_sums<T>(N, L, S, [&](int64_t n, T* __restrict u, T* __restrict v) {
      const T* gr = gy + n * C * S + c0 * S;
      const T* xr = x + n * C * S + c0 * S;
      for (int64_t j = 0; j < L; ++j) { u[j] += gr[j]; v[j] += gr[j] * (xr[j] - mm[j]); }
    }, sg.data(), sgx.data(), a, b, da, db);
    for (int64_t c = c0; c < c1; ++c) {  // each element's coefficients of gx
      const auto [ac, bc, ccc] = bn_grad_coeffs<T>(p, c, sg[size_t(c - c0)], sgx[size_t(c - c0)]);
      for (int64_t s = 0; s < S; ++s) {
        ca[size_t((c - c0) * S + s)] = T(ac);
        cb[size_t((c - c0) * S + s)] = T(bc);
        cc[size_t((c - c0) * S + s)] = T(ccc);
      }
    }
    if (!gx) return;
    const T *av = ca.data(), *bv = cb.data(), *cv = cc.data();
    for (int64_t n = 0; n < N; ++n) {
      const T* __restrict gr = gy + n * C * S + c0 * S;
      const T* __restrict xr = x + n * C * S + c0 * S;
      T* __restrict o = gx + n * C * S + c0 * S;
      for (int64_t j = 0; j < L; ++j) o[j] = av[j] * gr[j] + bv[j] * (xr[j] - mm[j]) + cv[j];
    }
  });
}
#endif

template <class T> void bn_fwd(const BatchNormParams& p) {
  const int64_t N = p.N, C = p.C, S = p.S, M = N * S;
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  parallel_for(0, C, grain_for(M), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const T k = p.training ? x[c * S] : T(0);  // eval may see an empty batch
      double s1 = 0, s2 = 0;
      if (p.training)
        for (int64_t n = 0; n < N; ++n) row_shifted_sums(x + (n * C + c) * S, k, S, s1, s2);
      const auto [mu, is] = bn_stats<T>(p, c, double(k), s1, s2);
      const T a = T(double(at<T>(p.w, c, T(1))) * is), b = at<T>(p.b, c, T(0));
      for (int64_t n = 0; n < N; ++n) row_affine(x + (n * C + c) * S, y + (n * C + c) * S, T(mu), a, b, S);
    }
  });
}

template <class T> void bn_bwd(const BatchNormParams& p) {
  const int64_t N = p.N, C = p.C, S = p.S, M = N * S;
  const T* x = static_cast<const T*>(p.x);
  const T* gy = static_cast<const T*>(p.gy);
  const T* mean = static_cast<const T*>(p.mean);
  T* gx = static_cast<T*>(p.gx);
  parallel_for(0, C, grain_for(M), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const T m = mean[c];
      double sg = 0, sgx = 0;
      for (int64_t n = 0; n < N; ++n) row_grad_sums(gy + (n * C + c) * S, x + (n * C + c) * S, m, S, sg, sgx);
      const auto [a, b, cc] = bn_grad_coeffs<T>(p, c, sg, sgx);
      if (!gx) continue;
      for (int64_t n = 0; n < N; ++n)
        row_affine2(gy + (n * C + c) * S, x + (n * C + c) * S, gx + (n * C + c) * S, m, T(a), T(b), T(cc), S);
    }
  });
}

template <class T> void gn_fwd(const GroupNormParams& p) {
  const int64_t N = p.N, C = p.C, S = p.S, G = p.G, Cg = C / G, L = Cg * S;
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  T* mean = static_cast<T*>(p.mean);
  T* invstd = static_cast<T*>(p.invstd);
  parallel_for(0, N * G, grain_for(L), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * L;
      const double mu = row_sum(xr, L) / double(L);
      const double is = 1.0 / std::sqrt(row_sqdev(xr, T(mu), L) / double(L) + p.eps);
      mean[r] = T(mu);
      invstd[r] = T(is);
      const int64_t g = r % G;
      for (int64_t k = 0; k < Cg; ++k) {
        const int64_t c = g * Cg + k;
        const T a = T(double(at<T>(p.w, c, T(1))) * is);
        row_affine(xr + k * S, y + r * L + k * S, T(mu), a, at<T>(p.b, c, T(0)), S);
      }
    }
  });
}

template <class T> void gn_bwd(const GroupNormParams& p) {
  const int64_t N = p.N, C = p.C, S = p.S, G = p.G, Cg = C / G, L = Cg * S;
  const T* x = static_cast<const T*>(p.x);
  const T* gy = static_cast<const T*>(p.gy);
  const T* mean = static_cast<const T*>(p.mean);
  const T* invstd = static_cast<const T*>(p.invstd);
  T* gx = static_cast<T*>(p.gx);
  T* sgs = static_cast<T*>(p.scratch);       // (N, C): sum over s of gy
  T* sgxs = sgs + N * C;                     // (N, C): sum over s of gy (x - mean)
  parallel_for(0, N * G, grain_for(L), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / G, g = r % G;
      const T m = mean[r];
      const double is = double(invstd[r]);
      double sd = 0, sdx = 0;  // sum d, sum d (x - mean) with d = gy w
      for (int64_t k = 0; k < Cg; ++k) {
        const int64_t c = g * Cg + k;
        double sg = 0, sgx = 0;
        row_grad_sums(gy + r * L + k * S, x + r * L + k * S, m, S, sg, sgx);
        sgs[n * C + c] = T(sg);
        sgxs[n * C + c] = T(sgx);
        const double w = double(at<T>(p.w, c, T(1)));
        sd += w * sg;
        sdx += w * sgx;
      }
      if (!gx) continue;
      // gx = is (d - sd / L - xhat sum(d xhat) / L),  sum(d xhat) = is sdx
      const double b = -is * is * is * sdx / double(L);
      const double cc = -is * sd / double(L);
      for (int64_t k = 0; k < Cg; ++k) {
        const int64_t c = g * Cg + k;
        const double a = double(at<T>(p.w, c, T(1))) * is;
        row_affine2(gy + r * L + k * S, x + r * L + k * S, gx + r * L + k * S, m, T(a), T(b), T(cc), S);
      }
    }
  });
  if (!p.gw && !p.gb) return;
  for (int64_t c = 0; c < C; ++c) {
    double gw = 0, gb = 0;
    for (int64_t n = 0; n < N; ++n) {
      gb += double(sgs[n * C + c]);
      gw += double(sgxs[n * C + c]) * double(invstd[n * G + c / Cg]);
    }
    if (p.gw) static_cast<T*>(p.gw)[c] = T(gw);
    if (p.gb) static_cast<T*>(p.gb)[c] = T(gb);
  }
}

void batch_norm_fwd(const BatchNormParams& p) {
#if defined(FASTDL_ISA_avx2) || defined(FASTDL_ISA_avx512)
  if (p.S < kShortRows && p.C > 1) {
    if (p.dt == DType::f64) bn_fwd_short<double>(p); else bn_fwd_short<float>(p);
    return;
  }
#endif
  if (p.dt == DType::f64) bn_fwd<double>(p); else bn_fwd<float>(p);
}
void batch_norm_bwd(const BatchNormParams& p) {
#if defined(FASTDL_ISA_avx2) || defined(FASTDL_ISA_avx512)
  if (p.S < kShortRows && p.C > 1) {
    if (p.dt == DType::f64) bn_bwd_short<double>(p); else bn_bwd_short<float>(p);
    return;
  }
#endif
  if (p.dt == DType::f64) bn_bwd<double>(p); else bn_bwd<float>(p);
}
void group_norm_fwd(const GroupNormParams& p) { if (p.dt == DType::f64) gn_fwd<double>(p); else gn_fwd<float>(p); }
void group_norm_bwd(const GroupNormParams& p) { if (p.dt == DType::f64) gn_bwd<double>(p); else gn_bwd<float>(p); }

}  // namespace

const NormKernels& norm_table() {
  static const NormKernels t{batch_norm_fwd, batch_norm_bwd, group_norm_fwd, group_norm_bwd};
  return t;
}

}  // namespace fastdl::cpu::FASTDL_ISA_NS
