// Branch-free float32 math written so that the compiler vectorises loops that call it
// (each *_vec.cpp is compiled per ISA). Accuracy: exp/log within 2 ulp, tanh within a few
// ulp, erf within 1.5e-7 absolute (Abramowitz & Stegun 7.1.26). float64 uses libm, except the
// Box-Muller pieces at the end (random_vec.cpp).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace fastdl::vm {

inline float as_f(int32_t i) { float f; std::memcpy(&f, &i, 4); return f; }
inline int32_t as_i(float f) { int32_t i; std::memcpy(&i, &f, 4); return i; }

// The polynomial cores, shared by the scalar functions below and the explicit-vector ones
// (selective_scan_vec.cpp): F is float or a GCC float vector.
// e^x = 2^n e^r with r = x - n ln2 (Cody-Waite, ln2 in two parts), given n = round(x / ln2).
template <class F> inline F exp_reduce(F x, F n) {
  F r = x - n * 0.693145751953125f;
  return r - n * 1.42860682030941723212e-6f;
}
// e^r on [-ln2/2, ln2/2]: degree-6 Taylor/minimax (Cephes expf coefficients).
template <class F> inline F exp_poly(F r) {
  F p = F{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  return p * r * r + r + 1.0f;
}
// log(1 + f) for 1 + f in [sqrt(1/2), sqrt(2)) (Cephes logf polynomial).
template <class F> inline F log1p_poly(F f) {
  const F z = f * f;
  F p = F{} + 7.0376836292e-2f;
  p = p * f - 1.1514610310e-1f;
  p = p * f + 1.1676998740e-1f;
  p = p * f - 1.2420140846e-1f;
  p = p * f + 1.4249322787e-1f;
  p = p * f - 1.6668057665e-1f;
  p = p * f + 2.0000714765e-1f;
  p = p * f - 2.4999993993e-1f;
  p = p * f + 3.3333331174e-1f;
  return f * z * p - 0.5f * z + f;
}

inline float exp_f(float x) {
  // NaN clamps too (!(x >= lo)): int32_t(NaN) would give shifts of negative values (UB).
  float xc = !(x >= -104.f) ? -104.f : (x > 89.f ? 89.f : x);
  float n = std::nearbyint(xc * 1.44269504088896341f);
  float p = exp_poly(exp_reduce(xc, n));
  int32_t ni = int32_t(n), e1 = ni >> 1, e2 = ni - e1;
  float res = p * as_f((e1 + 127) << 23) * as_f((e2 + 127) << 23);
  return x != x ? x : res;
}

// exp(x) with results below FLT_MIN (x < -87.34) flushed to 0, computed so that no lane ever
// produces a denormal: on Intel cores each denormal result costs a microcode assist (~100
// cycles), which made softmax over a causal mask's -inf entries 3-4x slower and tanh of large
// |x| 10x slower (Xeon, Sapphire Rapids class). For callers where such a value is negligible
// next to the others or next to 1: softmax, sigmoid, tanh, GELU's density, decay factors.
// (vm::exp_f, fastdl.exp itself, keeps the denormal results.)
inline float exp_ftz_f(float x) {
  const bool tiny = x < -87.33654f;
  const float r = exp_f(tiny ? 0.f : x);  // NaN passes through exp_f
  return tiny ? 0.f : r;
}

inline float log_f(float x) {
  // x = m * 2^e, m in [sqrt(1/2), sqrt(2)); log(m) by Cephes logf polynomial in f = m - 1.
  bool sub = x < 1.17549435e-38f;
  float xs = sub ? x * 8388608.f : x;
  int32_t i = as_i(xs);
  int32_t e = ((i >> 23) & 0xff) - 126;
  float m = as_f((i & 0x007fffff) | 0x3f000000);  // [0.5, 1)
  bool small = m < 0.707106781186547524f;
  e -= small ? 1 : 0;
  m = small ? m + m : m;
  float ef = float(e) - (sub ? 23.f : 0.f);
  float y = log1p_poly(m - 1.0f) + ef * 0.693147180559945309f;
  y = x == 0.f ? -INFINITY : y;
  y = x < 0.f ? NAN : y;
  y = (x == INFINITY || x != x) ? x : y;
  return y;
}

inline float tanh_f(float x) {
  float a = std::fabs(x);
  float z = x * x;  // odd Taylor series for |x| < 0.3 (next term < 1e-9 relative)
  float s = -0.0088632355299021966f;
  s = s * z + 0.021869488536155203f;
  s = s * z - 0.053968253968253968f;
  s = s * z + 0.13333333333333333f;
  s = s * z - 0.33333333333333333f;
  float small = x + x * z * s;
  float e = exp_ftz_f(-2.f * a);  // 0 from |x| > 43.7, where tanh is +-1 in float
  float big = (1.f - e) / (1.f + e);
  big = std::copysign(big, x);
  return a < 0.3f ? small : big;
}

inline float sigmoid_f(float x) { return 1.f / (1.f + exp_ftz_f(-x)); }

// erf given e = exp(-x * x), for callers that have it already (GELU's backward needs
// exp(-x^2/2) = exp(-(x/sqrt2)^2) itself).
inline float erf_with_exp_f(float x, float e) {
  float a = std::fabs(x);
  float t = 1.f / (1.f + 0.3275911f * a);
  float y = 1.061405429f;
  y = y * t - 1.453152027f;
  y = y * t + 1.421413741f;
  y = y * t - 0.284496736f;
  y = y * t + 0.254829592f;
  y = 1.f - y * t * e;
  return std::copysign(y, x);
}

// exp(x) for x <= 0 where results below FLT_MIN may be flushed to exp(-87) (erf's tail,
// which only ever meets 1 - tiny): one scale by 2^n, no overflow or NaN handling.
inline float exp_neg_f(float x) {
  float xc = !(x >= -87.f) ? -87.f : x;  // NaN too (see exp_f)
  float n = std::nearbyint(xc * 1.44269504088896341f);
  return exp_poly(exp_reduce(xc, n)) * as_f((int32_t(n) + 127) << 23);
}

inline float erf_f(float x) { return erf_with_exp_f(x, exp_neg_f(-x * x)); }

// erf to ~1.5 ulp (the erf op; erf_f above is GELU's, 1.5e-7 absolute): |x| < 0.875 as
// x P(x^2), degree 5; up to 3.925 as 1 - e^(-x^2) R(x - 2.4), R of degree 8 fitted to
// erfc(x) e^(x^2) by least squares on Chebyshev nodes (absolute error below 1e-8); beyond it
// erf is 1 in float32. Both forms are computed and one selected (branch-free: vectorises).
inline float erf_acc_f(float x) {
  const float a = std::fabs(x), s = a * a;
  float p = -6.199346687e-04f;
  p = p * s + 5.031426385e-03f;
  p = p * s - 2.679095131e-02f;
  p = p * s + 1.128244112e-01f;
  p = p * s - 3.761254908e-01f;
  const float small = a + a * (1.283791573e-01f + s * p);  // a + a q: the sum rounds once, q is small
  const float c = a < 0.875f ? 0.875f : (a > 3.925f ? 3.925f : a), z = c - 2.4f;
  float r = 1.367911207e-04f;
  r = r * z + 2.738920161e-04f;
  r = r * z + 6.156836052e-04f;
  r = r * z - 8.810951852e-04f;
  r = r * z + 2.600262801e-03f;
  r = r * z - 9.227314227e-03f;
  r = r * z + 2.748210529e-02f;
  r = r * z - 7.957366730e-02f;
  r = r * z + 2.185004687e-01f;
  const float large = a > 3.925f ? 1.f : 1.f - exp_neg_f(-c * c) * r;
  const float y = std::copysign(a < 0.875f ? small : large, x);
  return x != x ? x : y;
}

// sin and cos of 2 pi u for u in [0, 1] (Box-Muller's angle, random_vec.cpp): u = q / 4 + t with
// q = round(4 u) and |t| <= 1/8 exact, so the polynomials see only |x| = 2 pi |t| <= pi / 4, and
// q mod 4 swaps and negates them. float: Cephes sinf / cosf (2 ulp); double: Taylor to x^17 /
// x^18 (next terms below 1e-17).
inline void sincos2pi_f(float u, float& s, float& c) {
  const float big = 4.0f * u + 12582912.0f;  // 1.5 * 2^23: the low mantissa bits are now q
  const float q = big - 12582912.0f;
  const int32_t qi = as_i(big) & 3;
  const float x = (u - 0.25f * q) * 6.28318530717958647692f, z = x * x;
  const float sp = ((-1.9515295891e-4f * z + 8.3321608736e-3f) * z - 1.6666654611e-1f) * z * x + x;
  const float cp = ((2.443315711809948e-5f * z - 1.388731625493765e-3f) * z + 4.166664568298827e-2f) * z * z -
                   0.5f * z + 1.0f;
  const float s0 = (qi & 1) ? cp : sp, c0 = (qi & 1) ? sp : cp;
  s = (qi & 2) ? -s0 : s0;
  c = ((qi + 1) & 2) ? -c0 : c0;
}

inline double as_d(int64_t i) { double f; std::memcpy(&f, &i, 8); return f; }
inline int64_t as_l(double f) { int64_t i; std::memcpy(&i, &f, 8); return i; }

inline void sincos2pi_d(double u, double& s, double& c) {
  const double big = 4.0 * u + 6755399441055744.0;  // 1.5 * 2^52
  const double q = big - 6755399441055744.0;
  const int64_t qi = as_l(big) & 3;
  const double x = (u - 0.25 * q) * 6.283185307179586476925, z = x * x;
  double sp = -1.0 / 355687428096000.0;
  sp = sp * z + 1.0 / 1307674368000.0;
  sp = sp * z - 1.0 / 6227020800.0;
  sp = sp * z + 1.0 / 39916800.0;
  sp = sp * z - 1.0 / 362880.0;
  sp = sp * z + 1.0 / 5040.0;
  sp = sp * z - 1.0 / 120.0;
  sp = sp * z + 1.0 / 6.0;
  sp = x - x * z * sp;
  double cp = 1.0 / 6402373705728000.0;
  cp = cp * z - 1.0 / 20922789888000.0;
  cp = cp * z + 1.0 / 87178291200.0;
  cp = cp * z - 1.0 / 479001600.0;
  cp = cp * z + 1.0 / 3628800.0;
  cp = cp * z - 1.0 / 40320.0;
  cp = cp * z + 1.0 / 720.0;
  cp = cp * z - 1.0 / 24.0;
  cp = 1.0 - 0.5 * z - z * z * cp;
  const double s0 = (qi & 1) ? cp : sp, c0 = (qi & 1) ? sp : cp;
  s = (qi & 2) ? -s0 : s0;
  c = ((qi + 1) & 2) ? -c0 : c0;
}

// log(x) for positive, normal, finite x only (no special cases; Box-Muller's radius): x = m 2^e,
// m in [sqrt(1/2), sqrt(2)), log(m) = 2 atanh(s) with s = (m - 1) / (m + 1), |s| <= 0.172, by its
// odd series to s^23 (next term below 1e-19 relative); within a few ulp.
inline double log_pos_d(double x) {
  const uint64_t i = uint64_t(as_l(x));
  int64_t e = int64_t((i >> 52) & 0x7ff) - 1022;  // a logical shift: AVX2 has no 64-bit arithmetic one
  double m = as_d(int64_t((i & 0xfffffffffffffull) | 0x3fe0000000000000ull));  // [0.5, 1)
  const bool small = m < 0.70710678118654752440;
  e -= small ? 1 : 0;
  m = small ? m + m : m;
  const double sv = (m - 1.0) / (m + 1.0), z = sv * sv;
  double p = 1.0 / 23;
  p = p * z + 1.0 / 21;
  p = p * z + 1.0 / 19;
  p = p * z + 1.0 / 17;
  p = p * z + 1.0 / 15;
  p = p * z + 1.0 / 13;
  p = p * z + 1.0 / 11;
  p = p * z + 1.0 / 9;
  p = p * z + 1.0 / 7;
  p = p * z + 1.0 / 5;
  p = p * z + 1.0 / 3;
  const double ef = as_d(0x4338000000000000ll + e) - 6755399441055744.0;  // double(e), vectorisable
  return ef * 6.93147180369123816490e-01 + (2.0 * sv + 2.0 * sv * z * p + ef * 1.90821492927058770002e-10);
}

}  // namespace fastdl::vm
