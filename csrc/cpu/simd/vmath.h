// Branch-free float32 math written so that the compiler vectorises loops that call it
// (each *_vec.cpp is compiled per ISA). Accuracy: exp/log within 2 ulp, tanh within a few
// ulp, erf within 1.5e-7 absolute (Abramowitz & Stegun 7.1.26). float64 uses libm, except the
// Box-Muller pieces at the end (random_vec.cpp).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

// Always inlined: these are the bodies of vectorised loops (a call is a scalar loop), and the
// ISA builds include this header under different flags, so an out-of-line copy would be one
// ISA's code shared by all (the linker keeps one; fastdl.expm1 ran the reference build's).
#define FASTDL_VM_INLINE inline __attribute__((always_inline))

namespace fastdl::vm {

FASTDL_VM_INLINE float as_f(int32_t i) { float f; std::memcpy(&f, &i, 4); return f; }
FASTDL_VM_INLINE int32_t as_i(float f) { int32_t i; std::memcpy(&i, &f, 4); return i; }

// The polynomial cores, shared by the scalar functions below and the explicit-vector ones
// (selective_scan_vec.cpp): F is float or a GCC float vector.
// e^x = 2^n e^r with r = x - n ln2 (Cody-Waite, ln2 in two parts), given n = round(x / ln2).
template <class F> FASTDL_VM_INLINE F exp_reduce(F x, F n) {
  F r = x - n * 0.693145751953125f;
  return r - n * 1.42860682030941723212e-6f;
}
// e^r on [-ln2/2, ln2/2]: degree-6 Taylor/minimax (Cephes expf coefficients).
template <class F> FASTDL_VM_INLINE F exp_poly(F r) {
  F p = F{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  return p * r * r + r + 1.0f;
}
// log(1 + f) for 1 + f in [sqrt(1/2), sqrt(2)) (Cephes logf polynomial).
template <class F> FASTDL_VM_INLINE F log1p_poly(F f) {
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

FASTDL_VM_INLINE float exp_f(float x) {
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
FASTDL_VM_INLINE float exp_ftz_f(float x) {
  const bool tiny = x < -87.33654f;
  const float r = exp_f(tiny ? 0.f : x);  // NaN passes through exp_f
  return tiny ? 0.f : r;
}

// x = 2^e m, m in [sqrt(1/2), sqrt(2)): log(m) returned, e in ef (special values: log_fix).
FASTDL_VM_INLINE float log_m(float x, float& ef) {
  const bool sub = x < 1.17549435e-38f;
  const float xs = sub ? x * 8388608.f : x;
  const int32_t i = as_i(xs);
  int32_t e = ((i >> 23) & 0xff) - 126;
  float m = as_f((i & 0x007fffff) | 0x3f000000);  // [0.5, 1)
  const bool small = m < 0.707106781186547524f;
  e -= small ? 1 : 0;
  m = small ? m + m : m;
  ef = float(e) - (sub ? 23.f : 0.f);
  return log1p_poly(m - 1.0f);
}
FASTDL_VM_INLINE float log_fix(float x, float y) {  // log's special values: 0 -> -inf, < 0 -> NaN, inf / NaN through
  y = x == 0.f ? -INFINITY : y;
  y = x < 0.f ? NAN : y;
  return (x == INFINITY || x != x) ? x : y;
}
FASTDL_VM_INLINE float log_f(float x) {
  float e;
  const float lm = log_m(x, e);
  return log_fix(x, lm + e * 0.693147180559945309f);
}

FASTDL_VM_INLINE float tanh_f(float x) {
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

FASTDL_VM_INLINE float sigmoid_f(float x) { return 1.f / (1.f + exp_ftz_f(-x)); }

// erf given e = exp(-x * x), for callers that have it already (GELU's backward needs
// exp(-x^2/2) = exp(-(x/sqrt2)^2) itself).
FASTDL_VM_INLINE float erf_with_exp_f(float x, float e) {
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
FASTDL_VM_INLINE float exp_neg_f(float x) {
  float xc = !(x >= -87.f) ? -87.f : x;  // NaN too (see exp_f)
  float n = std::nearbyint(xc * 1.44269504088896341f);
  return exp_poly(exp_reduce(xc, n)) * as_f((int32_t(n) + 127) << 23);
}

FASTDL_VM_INLINE float erf_f(float x) { return erf_with_exp_f(x, exp_neg_f(-x * x)); }

// erf to ~1.5 ulp (the erf op; erf_f above is GELU's, 1.5e-7 absolute): |x| < 0.875 as
// x P(x^2), degree 5; up to 3.925 as 1 - e^(-x^2) R(x - 2.4), R of degree 8 fitted to
// erfc(x) e^(x^2) by least squares on Chebyshev nodes (absolute error below 1e-8); beyond it
// erf is 1 in float32. Both forms are computed and one selected (branch-free: vectorises).
FASTDL_VM_INLINE float erf_acc_f(float x) {
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

// The float32 transcendental ops, branch-free so that their loops vectorise (each within a few
// ulp of float64; edge values exact: inf, NaN, +-0, overflow). Built on exp_f / log_f above.

FASTDL_VM_INLINE float log2_f(float x) {  // exact at powers of two
  float e;
  const float lm = log_m(x, e);
  return log_fix(x, lm * 1.44269504088896341f + e);
}
FASTDL_VM_INLINE float log10_f(float x) {
  float e;
  const float lm = log_m(x, e);
  return log_fix(x, lm * 0.434294481903251828f + e * 0.301029995663981195f);
}
FASTDL_VM_INLINE float exp2_f(float x) {  // 2^n e^((x - n) ln2): exact at integers
  const float xc = !(x >= -151.f) ? -151.f : (x > 129.f ? 129.f : x);
  const float n = std::nearbyint(xc);
  const float p = exp_poly((xc - n) * 0.693147180559945309f);
  const int32_t ni = int32_t(n), e1 = ni >> 1, e2 = ni - e1;
  const float res = p * as_f((e1 + 127) << 23) * as_f((e2 + 127) << 23);
  return x != x ? x : res;
}
// e^x - 1 = 2^n (e^r - 1) + (2^n - 1), x = n ln2 + r, e^r - 1 = r + r^2 (1/2 + ... + r^5/5040)
// (Taylor; the next term is 1.5e-8 of r): accurate near 0. -1 below -40; e^x - 1 above 80.
FASTDL_VM_INLINE float expm1_f(float x) {
  const float xc = !(x >= -40.f) ? -40.f : (x > 80.f ? 80.f : x);
  const float n = std::nearbyint(xc * 1.44269504088896341f);
  const float r = exp_reduce(xc, n);
  float q = 1.f / 5040.f;
  q = q * r + 1.f / 720.f;
  q = q * r + 1.f / 120.f;
  q = q * r + 1.f / 24.f;
  q = q * r + 1.f / 6.f;
  q = q * r + 0.5f;
  const float em1 = r + r * r * q, sc = as_f((int32_t(n) + 127) << 23);  // n in [-58, 116]
  const float y = x > 80.f ? exp_f(x) - 1.f : sc * em1 + (sc - 1.f);
  return (x != x || x == 0.f) ? x : y;  // NaN through, -0 kept
}
// log(1 + x) = log(u) x / (u - 1), u = 1 + x rounded: the quotient corrects u's rounding.
FASTDL_VM_INLINE float log1p_f(float x) {
  const float u = 1.f + x;
  const float y = u == 1.f ? x : log_f(u) * (x / (u - 1.f));
  return x == INFINITY ? x : y;
}
// sinh |x| = (u + u / (u + 1)) / 2 with u = e^|x| - 1 (accurate near 0); cosh = (e + 1/e) / 2;
// past 88 (e^|x| overflows before they do) both are (e^(|x|/2) / 2) e^(|x|/2).
FASTDL_VM_INLINE float sinh_f(float x) {
  const float a = std::fabs(x), u = expm1_f(a), h = exp_f(0.5f * a);
  const float y = a > 88.f ? (0.5f * h) * h : 0.5f * (u + u / (u + 1.f));
  return std::copysign(y, x);
}
FASTDL_VM_INLINE float cosh_f(float x) {
  const float a = std::fabs(x), e = exp_f(a), h = exp_f(0.5f * a);
  return a > 88.f ? (0.5f * h) * h : 0.5f * e + 0.5f / e;
}

// sin, cos, tan for |x| <= kTrigMax: x = j pi/2 + r, |r| <= pi/4, j by rounding x 2/pi (its low
// bits the quadrant), r by Cody-Waite with pi/2 in four parts (201/128, 1015/2^21, -700/2^32:
// each j P exact for j < 2^13; the float nearest the rest); Cephes sinf / cosf polynomials on
// r. Larger |x| needs Payne-Hanek: callers take libm there (elementwise_vec.cpp's trig_rows).
constexpr float kTrigMax = 8192.f;
FASTDL_VM_INLINE void trig_reduce(float x, float& r, int32_t& q) {
  const float big = x * 0.636619772367581343f + 12582912.0f;  // 1.5 * 2^23: the low bits are j
  const float j = big - 12582912.0f;
  q = as_i(big) & 3;
  r = (((x - j * 1.5703125f) - j * 4.8398971557617188e-4f) + j * 1.6298145055770874e-7f) - j * 6.0771006282767e-11f;
}
FASTDL_VM_INLINE float sin_poly(float r, float z) {
  return ((-1.9515295891e-4f * z + 8.3321608736e-3f) * z - 1.6666654611e-1f) * z * r + r;
}
FASTDL_VM_INLINE float cos_poly(float z) {
  return ((2.443315711809948e-5f * z - 1.388731625493765e-3f) * z + 4.166664568298827e-2f) * z * z - 0.5f * z + 1.0f;
}
FASTDL_VM_INLINE float sin_f(float x) {
  float r;
  int32_t q;
  trig_reduce(x, r, q);
  const float z = r * r, sp = sin_poly(r, z), cp = cos_poly(z);
  const float v = (q & 1) ? cp : sp;
  return x == 0.f ? x : ((q & 2) ? -v : v);  // -0 kept (r = -0 - 0 rounds to +0)
}
FASTDL_VM_INLINE float cos_f(float x) {
  float r;
  int32_t q;
  trig_reduce(x, r, q);
  const float z = r * r, sp = sin_poly(r, z), cp = cos_poly(z);
  const float v = (q & 1) ? sp : cp;
  return ((q + 1) & 2) ? -v : v;
}
FASTDL_VM_INLINE float tan_f(float x) {  // sin r / cos r, or -cos r / sin r in the odd quadrants
  float r;
  int32_t q;
  trig_reduce(x, r, q);
  const float z = r * r, sp = sin_poly(r, z), cp = cos_poly(z);
  return x == 0.f ? x : ((q & 1) ? -cp / sp : sp / cp);  // -0 kept
}
// asin: |x| <= 1/2 as x + x z P(z), z = x^2; beyond, pi/2 - 2 asin(sqrt((1 - |x|) / 2)) (Cephes
// asinf). acos from the same pieces. |x| > 1 gives NaN (the sqrt of a negative).
FASTDL_VM_INLINE float asin_poly(float v, float z) {
  return ((((4.2163199048e-2f * z + 2.4181311049e-2f) * z + 4.5470025998e-2f) * z + 7.4953002686e-2f) * z +
          1.6666752422e-1f) * z * v + v;
}
FASTDL_VM_INLINE float asin_f(float x) {
  const float a = std::fabs(x), zb = 0.5f * (1.f - a), sb = std::sqrt(zb);
  const float y = a > 0.5f ? 1.57079632679489662f - 2.f * asin_poly(sb, zb) : asin_poly(a, a * a);
  return std::copysign(y, x);
}
FASTDL_VM_INLINE float acos_f(float x) {
  const float a = std::fabs(x), zb = 0.5f * (1.f - a), sb = std::sqrt(zb);
  const float big = 2.f * asin_poly(sb, zb);  // acos |x| for |x| > 1/2
  const float y = a > 0.5f ? (x < 0.f ? 3.14159265358979324f - big : big) : 1.57079632679489662f - asin_poly(x, x * x);
  return x != x ? x : y;
}
// atan: |x| reduced to [0, tan(pi/8)] by atan x = pi/4 + atan((x - 1) / (x + 1)) past tan(pi/8),
// pi/2 + atan(-1/x) past tan(3 pi/8); odd polynomial (Cephes atanf). inf -> pi/2.
FASTDL_VM_INLINE float atan_f(float x) {
  const float a = std::fabs(x);
  const bool hi = a > 2.414213562373095f, mid = a > 0.4142135623730950f;
  const float v = hi ? -1.f / a : (mid ? (a - 1.f) / (a + 1.f) : a);
  const float base = hi ? 1.57079632679489662f : (mid ? 0.785398163397448310f : 0.f);
  const float z = v * v;
  const float y = base + ((((8.05374449538e-2f * z - 1.38776856032e-1f) * z + 1.99777106478e-1f) * z -
                           3.33329491539e-1f) * z * v + v);
  return x != x ? x : std::copysign(y, x);
}

// sin and cos of 2 pi u for u in [0, 1] (Box-Muller's angle, random_vec.cpp): u = q / 4 + t with
// q = round(4 u) and |t| <= 1/8 exact, so the polynomials see only |x| = 2 pi |t| <= pi / 4, and
// q mod 4 swaps and negates them. float: Cephes sinf / cosf (2 ulp); double: Taylor to x^17 /
// x^18 (next terms below 1e-17).
FASTDL_VM_INLINE void sincos2pi_f(float u, float& s, float& c) {
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

FASTDL_VM_INLINE double as_d(int64_t i) { double f; std::memcpy(&f, &i, 8); return f; }
FASTDL_VM_INLINE int64_t as_l(double f) { int64_t i; std::memcpy(&i, &f, 8); return i; }

FASTDL_VM_INLINE void sincos2pi_d(double u, double& s, double& c) {
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
FASTDL_VM_INLINE double log_pos_d(double x) {
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
