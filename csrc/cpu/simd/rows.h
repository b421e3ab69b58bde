// Row primitives shared by the per-ISA kernel files (reduce, nn, norm): max/min with NaN
// propagation and find-first with explicit vectors (AVX builds), and a sum in 16 independent
// accumulators (every build). Included by *_vec.cpp files only; it opens
// the ISA's own namespace so every ISA build gets its own copy.
#pragma once
#include <cmath>
#include <cstdint>

#if defined(FASTDL_ISA_avx512) || defined(FASTDL_ISA_avx2)
#include <immintrin.h>

namespace fastdl::cpu::FASTDL_ISA_NS::rows {

// max/min of a float row with explicit vectors: max_ps(v, acc) returns acc when v is NaN, so
// NaN is tracked apart with an unordered compare; 4 accumulators hide the latency.
#if defined(FASTDL_ISA_avx512)
struct XF { using T = float; using R = __m512; static constexpr int W = 16;
  static R ld(const T* p) { return _mm512_loadu_ps(p); } static R splat(T v) { return _mm512_set1_ps(v); }
  static R mx(R a, R b) { return _mm512_max_ps(a, b); } static R mn(R a, R b) { return _mm512_min_ps(a, b); }
  static bool unord(R a, R b) { return _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q) != 0; }
  static uint32_t eq(R a, R b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
  static void st(T* p, R v) { _mm512_storeu_ps(p, v); } };
struct XD { using T = double; using R = __m512d; static constexpr int W = 8;
  static R ld(const T* p) { return _mm512_loadu_pd(p); } static R splat(T v) { return _mm512_set1_pd(v); }
  static R mx(R a, R b) { return _mm512_max_pd(a, b); } static R mn(R a, R b) { return _mm512_min_pd(a, b); }
  static bool unord(R a, R b) { return _mm512_cmp_pd_mask(a, b, _CMP_UNORD_Q) != 0; }
  static uint32_t eq(R a, R b) { return _mm512_cmp_pd_mask(a, b, _CMP_EQ_OQ); }
  static void st(T* p, R v) { _mm512_storeu_pd(p, v); } };
#else
struct XF { using T = float; using R = __m256; static constexpr int W = 8;
  static R ld(const T* p) { return _mm256_loadu_ps(p); } static R splat(T v) { return _mm256_set1_ps(v); }
  static R mx(R a, R b) { return _mm256_max_ps(a, b); } static R mn(R a, R b) { return _mm256_min_ps(a, b); }
  static bool unord(R a, R b) { return _mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_UNORD_Q)) != 0; }
  static uint32_t eq(R a, R b) { return uint32_t(_mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_EQ_OQ))); }
  static void st(T* p, R v) { _mm256_storeu_ps(p, v); } };
struct XD { using T = double; using R = __m256d; static constexpr int W = 4;
  static R ld(const T* p) { return _mm256_loadu_pd(p); } static R splat(T v) { return _mm256_set1_pd(v); }
  static R mx(R a, R b) { return _mm256_max_pd(a, b); } static R mn(R a, R b) { return _mm256_min_pd(a, b); }
  static bool unord(R a, R b) { return _mm256_movemask_pd(_mm256_cmp_pd(a, b, _CMP_UNORD_Q)) != 0; }
  static uint32_t eq(R a, R b) { return uint32_t(_mm256_movemask_pd(_mm256_cmp_pd(a, b, _CMP_EQ_OQ))); }
  static void st(T* p, R v) { _mm256_storeu_pd(p, v); } };
#endif
// Float arithmetic vector for the row sums of the norm kernels (several sums interleaved in one
// loop with two accumulators each: the compiler's vectorisation of such loops interleaves the
// sums with permutes). sum folds the lanes and widens to double.
#if defined(FASTDL_ISA_avx512)
struct GV { using R = __m512; static constexpr int W = 16;
  static R zero() { return _mm512_setzero_ps(); } static R ld(const float* p) { return _mm512_loadu_ps(p); }
  static R splat(float v) { return _mm512_set1_ps(v); } static R add(R a, R b) { return _mm512_add_ps(a, b); }
  static R sub(R a, R b) { return _mm512_sub_ps(a, b); } static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static double sum(R a) { return double(_mm512_reduce_add_ps(a)); } };
#else
struct GV { using R = __m256; static constexpr int W = 8;
  static R zero() { return _mm256_setzero_ps(); } static R ld(const float* p) { return _mm256_loadu_ps(p); }
  static R splat(float v) { return _mm256_set1_ps(v); } static R add(R a, R b) { return _mm256_add_ps(a, b); }
  static R sub(R a, R b) { return _mm256_sub_ps(a, b); } static R mul(R a, R b) { return _mm256_mul_ps(a, b); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
  static double sum(R a) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return double(_mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)))); } };
#endif

template <class X, bool MX> typename X::T simd_extreme(const typename X::T* x, int64_t n) {
  using T = typename X::T;
  using R = typename X::R;
  constexpr int W = X::W;
  const T init = MX ? -INFINITY : INFINITY;
  R a0 = X::splat(init), a1 = a0, a2 = a0, a3 = a0;
  bool nan = false;
  int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    R v0 = X::ld(x + i), v1 = X::ld(x + i + W), v2 = X::ld(x + i + 2 * W), v3 = X::ld(x + i + 3 * W);
    if (MX) { a0 = X::mx(v0, a0); a1 = X::mx(v1, a1); a2 = X::mx(v2, a2); a3 = X::mx(v3, a3); }
    else { a0 = X::mn(v0, a0); a1 = X::mn(v1, a1); a2 = X::mn(v2, a2); a3 = X::mn(v3, a3); }
    nan |= X::unord(v0, v1) | X::unord(v2, v3);
  }
  a0 = MX ? X::mx(X::mx(a0, a1), X::mx(a2, a3)) : X::mn(X::mn(a0, a1), X::mn(a2, a3));
  alignas(64) T lanes[W];
  X::st(lanes, a0);
  T m = init;
  for (int j = 0; j < W; ++j) m = (MX ? lanes[j] > m : lanes[j] < m) ? lanes[j] : m;
  for (; i < n; ++i) { m = (MX ? x[i] > m : x[i] < m) ? x[i] : m; nan |= x[i] != x[i]; }
  return nan ? T(NAN) : m;
}

// First index of value m in the row (m found by simd_extreme, not NaN).
template <class X> int64_t simd_find(const typename X::T* x, int64_t n, typename X::T m) {
  constexpr int W = X::W;
  const typename X::R vm = X::splat(m);
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    uint32_t k = X::eq(X::ld(x + i), vm);
    if (k) return i + __builtin_ctz(k);
  }
  for (; i < n; ++i) if (x[i] == m) return i;
  return 0;
}

}  // namespace fastdl::cpu::FASTDL_ISA_NS::rows
#endif

namespace fastdl::cpu::FASTDL_ISA_NS::rows {

// Sum of a row in 16 accumulators of the element type (vectorised by the compiler), combined
// in double in a fixed order.
template <class T> double row_sum(const T* __restrict x, int64_t n) {
  T acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += x[i + j];
  double s = 0;
  for (int j = 0; j < 16; ++j) s += double(acc[j]);
  for (; i < n; ++i) s += double(x[i]);
  return s;
}

}  // namespace fastdl::cpu::FASTDL_ISA_NS::rows
