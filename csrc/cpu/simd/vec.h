// Explicit float32 vectors for the per-ISA kernel files (*_vec.cpp, AVX2 and AVX-512 builds
// only): one GCC vector of W lanes (a ymm on AVX2, a zmm on AVX-512), so sums and the exp stay
// in registers where loops left to the auto-vectoriser spill them and blend the exp's clamps.
// Included inside the file's ISA namespace (fastdl::cpu::FASTDL_ISA_NS), after <immintrin.h>.
#pragma once
#if !defined(FASTDL_ISA_avx2) && !defined(FASTDL_ISA_avx512)
#error "simd/vec.h is for the AVX2 and AVX-512 builds of a *_vec.cpp file"
#endif
#include <cstdint>
#include <cstring>

#include <immintrin.h>

#include "cpu/simd/vmath.h"

namespace fastdl::cpu::FASTDL_ISA_NS {

#if defined(FASTDL_ISA_avx512)
constexpr int kVecBytes = 64;
#else
constexpr int kVecBytes = 32;
#endif
constexpr int kWf = kVecBytes / 4;
using vf = float __attribute__((vector_size(kVecBytes)));
using vi = int32_t __attribute__((vector_size(kVecBytes)));
inline vf ldv(const float* p) { vf v; std::memcpy(&v, p, sizeof v); return v; }
inline void stv(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
// out[j] += sum of the lanes of v[j], j < cnt (v[cnt..8) zero): the 8 sums in one transposing
// tree of horizontal adds instead of 8 separate reductions; a fixed order, so reproducible.
inline void add_sums8(const vf* v, float* out, int cnt) {
#if defined(FASTDL_ISA_avx512)
  __m256 y[8];
  for (int j = 0; j < 8; ++j) y[j] = _mm256_add_ps(_mm512_castps512_ps256(v[j]), _mm512_extractf32x8_ps(v[j], 1));
#else
  const vf* y = v;
#endif
  const __m256 t0 = _mm256_hadd_ps(_mm256_hadd_ps(y[0], y[1]), _mm256_hadd_ps(y[2], y[3]));
  const __m256 t1 = _mm256_hadd_ps(_mm256_hadd_ps(y[4], y[5]), _mm256_hadd_ps(y[6], y[7]));
  const __m256 s8 = _mm256_add_ps(_mm256_permute2f128_ps(t0, t1, 0x20), _mm256_permute2f128_ps(t0, t1, 0x31));
  if (cnt == 8) {
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_loadu_ps(out), s8));
  } else {
    alignas(32) float t[8];
    _mm256_store_ps(t, s8);
    for (int j = 0; j < cnt; ++j) out[j] += t[j];
  }
}

// exp on a vector: x = n ln2 + r (Cody-Waite), Cephes' degree-6 polynomial for e^r, and 2^n
// added into the exponent bits. x is clamped to [-86.6, 88.3] first, so 2^n p stays a normal
// float (below -86.6 it returns ~2e-38 instead of underflowing to 0: immaterial as a decay
// factor); max/min return their second operand on NaN, so NaN passes through.
#if defined(FASTDL_ISA_avx512)
inline vf vmax(vf a, vf b) { return _mm512_max_ps(a, b); }
inline vf vmin(vf a, vf b) { return _mm512_min_ps(a, b); }
#else
inline vf vmax(vf a, vf b) { return _mm256_max_ps(a, b); }
inline vf vmin(vf a, vf b) { return _mm256_min_ps(a, b); }
#endif
inline vf exp_v(vf x) {
  x = vmin(vf{} + 88.3f, vmax(vf{} - 86.6f, x));
  const vf n = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;  // round to nearest
  const vf p = vm::exp_poly(vm::exp_reduce(x, n));
  return (vf)((vi)p + (__builtin_convertvector(n, vi) << 23));
}

// vm::exp_ftz_f on a vector: e^x, exactly 0 where it would be below FLT_MIN (x < -87.34;
// clamped there, 2^n p is still normal, so no lane ever computes a denormal), +inf above 88.7,
// NaN through. For softmax-style sums whose largest term is 1.
inline vf exp_ftz_v(vf x) {
  const vi keep = (vi)(x >= -87.33654f) | (vi)(x != x);
  const vf xc = vmin(vf{} + 89.f, vmax(vf{} - 87.33654f, x));
  const vf n = (xc * 1.44269504088896341f + 12582912.f) - 12582912.f;  // round to nearest
  const vf p = vm::exp_poly(vm::exp_reduce(xc, n));
  const vi ni = __builtin_convertvector(n, vi), e1 = ni >> 1;  // two factors: 2^128 overflows to inf
  const vf r = p * (vf)((e1 + 127) << 23) * (vf)((ni - e1 + 127) << 23);
  return (vf)((vi)(x != x ? x : r) & keep);
}

// 2^x, for loops whose exponents can be pre-scaled by log2(e) (exp(a x) = 2^(a log2(e) x)):
// n = round(x) by the 1.5 * 2^23 trick (whose bits also give n as an integer), 2^r on
// [-1/2, 1/2] by a degree-6 polynomial fitted to the relative error (1.0e-7 in float32
// arithmetic; 2.0e-9 in exact arithmetic), 2^n added into the exponent field. Four
// multiply-adds fewer than exp_v; x is clamped to [-125, 127], so results stay normal.
inline vf exp2_v(vf x) {
  x = vmin(vf{} + 127.0f, vmax(vf{} - 125.0f, x));
  const vf t = x + 12582912.f;  // 1.5 * 2^23: the float's low bits are now n
  const vf r = x - (t - 12582912.f);
  vf p = vf{} + 1.5353361888e-4f;
  p = p * r + 1.3398874422e-3f;
  p = p * r + 9.6184373578e-3f;
  p = p * r + 5.5503324711e-2f;
  p = p * r + 2.4022647914e-1f;
  p = p * r + 6.9314720286e-1f;
  p = p * r + 1.0f;
  return (vf)((vi)p + (((vi)t - 0x4B400000) << 23));
}

// 2^d for d <= 0 (and up to d = 126: the lazy rescale's P reaches 2^8), exactly 0 below
// d = -125 and for -inf or NaN, undefined above 126 (the lazy pass discards such tiles): the
// softmax exponential of flash attention (attention_vec.cpp), its hottest non-GEMM loop. With
// d bounded no clamp is needed (exp2_v's clamps cost two operations a vector), and a
// degree-5 minimax polynomial on [-1/2, 1/2] is within 2.4e-7 relative (float evaluation).
// t's low bits hold n = round(d); its magic exponent bits vanish in the shift.
inline vf exp2_neg_v(vf d) {
  const vf t = d + 12582912.f;  // 1.5 * 2^23
  const vf r = d - (t - 12582912.f);
  vf q = vf{} + 1.3278166e-3f;
  q = q * r + 9.6755559e-3f;
  q = q * r + 5.5507079e-2f;
  q = q * r + 2.4022119e-1f;
  q = q * r + 6.9314694e-1f;
  q = q * r + 1.0000001f;
  return (vf)(((vi)q + ((vi)t << 23)) & (vi)(d > -125.0f));
}

}  // namespace fastdl::cpu::FASTDL_ISA_NS
