// Helpers shared by the per-ISA convolution files (conv_vec.cpp: implicit GEMM;
// conv_direct_vec.cpp: direct loops): vector loads with lane masks, scratch memory, a task
// loop over the pool. Included only inside #if'd *_vec.cpp files (avx2, avx512), so each ISA
// gets its own copy compiled with its own flags.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <vector>

#include <immintrin.h>

#include "core/allocator.h"
#include "core/parallel.h"
#include "cpu/conv.h"
#include "cpu/gemm.h"

namespace fastdl::cpu::FASTDL_ISA_NS {
bool gemm_get_kernel(DType dt, detail::GemmKernel* k);  // gemm_vec.cpp, this ISA

namespace cv {

// This ISA's GEMM micro-kernel for T (float or double), made once.
template <class T> const detail::GemmKernel& kernel() {
  static const detail::GemmKernel k = [] {
    detail::GemmKernel g;
    gemm_get_kernel(sizeof(T) == 8 ? DType::f64 : DType::f32, &g);
    return g;
  }();
  return k;
}

// Vector loads for packing: full, or lanes [lo, hi) with the rest zero (masked lanes are
// never touched, so the pointer may run past either end of a row).
template <class T> struct PV;
#if defined(FASTDL_ISA_avx512)
template <> struct PV<float> {
  using R = __m512; static constexpr int W = 16;
  static R zero() { return _mm512_setzero_ps(); }
  static R load(const float* p) { return _mm512_loadu_ps(p); }
  using M = __mmask16;
  static M mask(int lo, int hi) { return M(((1u << hi) - 1) & ~((1u << lo) - 1)); }
  static R loadm(const float* p, M m) { return _mm512_maskz_loadu_ps(m, p); }
  static R loadm(const float* p, int lo, int hi) { return loadm(p, mask(lo, hi)); }
  static R merge(R v, const float* p, M m) { return _mm512_mask_loadu_ps(v, m, p); }  // lanes m from p
  static bool full(M m) { return m == M(0xFFFF); }
  static R add(R a, R b) { return _mm512_add_ps(a, b); }
  static R set1(float v) { return _mm512_set1_ps(v); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static float sum(R v) { return _mm512_reduce_add_ps(v); }
  static void store(float* p, R v) { _mm512_storeu_ps(p, v); }
  static void storem(float* p, R v, M m) { _mm512_mask_storeu_ps(p, m, v); }
  // lanes m of p[idx[l]], the rest zero
  static R gather(const float* p, const int32_t* idx, M m) {
    return _mm512_mask_i32gather_ps(zero(), m, _mm512_loadu_si512(idx), p, 4);
  }
};
template <> struct PV<double> {
  using R = __m512d; static constexpr int W = 8;
  static R zero() { return _mm512_setzero_pd(); }
  static R load(const double* p) { return _mm512_loadu_pd(p); }
  using M = __mmask8;
  static M mask(int lo, int hi) { return M(((1u << hi) - 1) & ~((1u << lo) - 1)); }
  static R loadm(const double* p, M m) { return _mm512_maskz_loadu_pd(m, p); }
  static R loadm(const double* p, int lo, int hi) { return loadm(p, mask(lo, hi)); }
  static R merge(R v, const double* p, M m) { return _mm512_mask_loadu_pd(v, m, p); }
  static bool full(M m) { return m == M(0xFF); }
  static R add(R a, R b) { return _mm512_add_pd(a, b); }
  static R set1(double v) { return _mm512_set1_pd(v); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_pd(a, b, c); }
  static double sum(R v) { return _mm512_reduce_add_pd(v); }
  static void store(double* p, R v) { _mm512_storeu_pd(p, v); }
  static void storem(double* p, R v, M m) { _mm512_mask_storeu_pd(p, m, v); }
  static R gather(const double* p, const int32_t* idx, M m) {
    return _mm512_mask_i32gather_pd(zero(), m, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx)), p, 8);
  }
};
#else
template <> struct PV<float> {
  using R = __m256; static constexpr int W = 8;
  static R zero() { return _mm256_setzero_ps(); }
  static R load(const float* p) { return _mm256_loadu_ps(p); }
  using M = __m256i;
  static M mask(int lo, int hi) {
    const __m256i i = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_and_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(hi), i), _mm256_cmpgt_epi32(i, _mm256_set1_epi32(lo - 1)));
  }
  static R loadm(const float* p, M m) { return _mm256_maskload_ps(p, m); }
  static R loadm(const float* p, int lo, int hi) { return loadm(p, mask(lo, hi)); }
  // lanes m from p, the rest from v (the lanes of v under m are zero: pieces are disjoint)
  static R merge(R v, const float* p, M m) { return _mm256_or_ps(v, loadm(p, m)); }
  static bool full(M m) { return _mm256_movemask_ps(_mm256_castsi256_ps(m)) == 0xFF; }
  static R add(R a, R b) { return _mm256_add_ps(a, b); }
  static R set1(float v) { return _mm256_set1_ps(v); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
  static float sum(R v) {
    alignas(32) float t[8];
    _mm256_store_ps(t, v);
    return ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
  }
  static void store(float* p, R v) { _mm256_storeu_ps(p, v); }
  static void storem(float* p, R v, M m) { _mm256_maskstore_ps(p, m, v); }
  static R gather(const float* p, const int32_t* idx, M m) {
    return _mm256_mask_i32gather_ps(zero(), p, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx)),
                                    _mm256_castsi256_ps(m), 4);
  }
};
template <> struct PV<double> {
  using R = __m256d; static constexpr int W = 4;
  static R zero() { return _mm256_setzero_pd(); }
  static R load(const double* p) { return _mm256_loadu_pd(p); }
  using M = __m256i;
  static M mask(int lo, int hi) {
    const __m256i i = _mm256_setr_epi64x(0, 1, 2, 3);
    return _mm256_and_si256(_mm256_cmpgt_epi64(_mm256_set1_epi64x(hi), i),
                            _mm256_cmpgt_epi64(i, _mm256_set1_epi64x(lo - 1)));
  }
  static R loadm(const double* p, M m) { return _mm256_maskload_pd(p, m); }
  static R loadm(const double* p, int lo, int hi) { return loadm(p, mask(lo, hi)); }
  static R merge(R v, const double* p, M m) { return _mm256_or_pd(v, loadm(p, m)); }
  static bool full(M m) { return _mm256_movemask_pd(_mm256_castsi256_pd(m)) == 0xF; }
  static R add(R a, R b) { return _mm256_add_pd(a, b); }
  static R set1(double v) { return _mm256_set1_pd(v); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_pd(a, b, c); }
  static double sum(R v) {
    alignas(32) double t[4];
    _mm256_store_pd(t, v);
    return (t[0] + t[1]) + (t[2] + t[3]);
  }
  static void store(double* p, R v) { _mm256_storeu_pd(p, v); }
  static void storem(double* p, R v, M m) { _mm256_maskstore_pd(p, m, v); }
  static R gather(const double* p, const int32_t* idx, M m) {
    return _mm256_mask_i32gather_pd(zero(), p, _mm_loadu_si128(reinterpret_cast<const __m128i*>(idx)),
                                    _mm256_castsi256_pd(m), 8);
  }
};
#endif

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Scratch memory from the caching allocator, freed on scope exit.
struct Scratch {
  void* p = nullptr; size_t n = 0;
  explicit Scratch(size_t bytes) : p(bytes ? cpu_alloc(bytes) : nullptr), n(bytes) {}
  ~Scratch() { if (p) cpu_free(p, n); }
  template <class T> T* as() const { return static_cast<T*>(p); }
};

// Runs f(task, lane) for tasks [0, n) handed out dynamically over nt lanes of the pool, each
// lane with its own index (its scratch). Lanes are parallel_for chunks, so a lane whose worker
// the OS has not scheduled finds the tasks gone when it starts, and nobody waits for it.
template <class F> void run_tasks(int64_t n, int nt, const F& f) {
  if (nt <= 1 || n <= 1) { for (int64_t i = 0; i < n; ++i) f(i, 0); return; }
  std::atomic<int64_t> next{0};
  parallel_for(0, nt, 1, [&](int64_t l0, int64_t l1) {
    for (int64_t lane = l0; lane < l1; ++lane)
      for (int64_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;) f(i, int(lane));
  });
}
inline int threads_for(int64_t tasks) {
  if (in_parallel_region()) return 1;
  return int(std::max<int64_t>(1, std::min<int64_t>(get_num_threads(), tasks)));
}

// Outputs [o0, o1) along one axis that see the taps [t0, t1) inside the input (t0 == t1: padding
// only). The taps of output o are those t with 0 <= o s - p + t d < I, an interval whose ends
// do not decrease with o, so equal intervals are runs of outputs.
struct Band { int64_t o0, o1, t0, t1; };
inline std::vector<Band> tap_bands(int64_t O, int64_t I, int64_t s, int64_t p, int64_t taps, int64_t d) {
  std::vector<Band> out;
  for (int64_t o = 0; o < O; ++o) {
    int64_t t0 = 0, t1 = 0;
    for (int64_t t = 0; t < taps; ++t) {
      const int64_t i = o * s - p + t * d;
      if (i >= 0 && i < I) { if (t1 == t0) t0 = t; t1 = t + 1; }
    }
    if (!out.empty() && out.back().t0 == t0 && out.back().t1 == t1) out.back().o1 = o + 1;
    else out.push_back({o, o + 1, t0, t1});
  }
  return out;
}

// The stride-1 input gradient of p as a forward convolution: gx = conv(gy, w') with
// w'[g Cg + c, k, r, s] = w[g Kg + k, c, R-1-r, S-1-s] and padding d (k - 1) - p (which may be
// negative: those rows are simply never read). The caller sets q.w: flipped_weight's copy, or
// w itself for conv_fwd_taps(q, true), which reads it flipped.
inline Conv2dParams input_grad_as_forward(const Conv2dParams& p) {
  Conv2dParams q = p;
  q.C = p.K; q.H = p.OH; q.W = p.OW; q.K = p.C; q.OH = p.H; q.OW = p.W;
  q.ph = p.dh * (p.R - 1) - p.ph; q.pw = p.dw * (p.S - 1) - p.pw;
  q.x = p.gy; q.w = nullptr; q.b = nullptr; q.y = p.gx;
  return q;
}
// w' of input_grad_as_forward, written into w2 (K Cg R S elements), rows (g, c) in order.
template <class T>
void flipped_weight(const Conv2dParams& p, T* w2) {
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G, RS = p.R * p.S;
  const T* w = static_cast<const T*>(p.w);
  parallel_for(0, G * Cg, std::max<int64_t>(1, 16384 / (Kg * RS)), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {  // w2's rows (g, c), each written in order (512 x 512 x 3 x 3: 2.4M)
      const int64_t g = t / Cg, c = t % Cg;
      for (int64_t k = 0; k < Kg; ++k)
        for (int64_t i = 0; i < RS; ++i)
          w2[((g * Cg + c) * Kg + k) * RS + (RS - 1 - i)] = w[((g * Kg + k) * Cg + c) * RS + i];
    }
  });
}

}  // namespace cv

// Forward with the padding taps skipped (conv_taps_vec.cpp): conv_taps_pays says whether a
// layer loses enough of its implicit GEMM to padding for it.
bool conv_taps_pays(const Conv2dParams& p, double max_share = 0.91);
// flipped: p.w is the weight of the convolution whose stride-1 input gradient p is (w[k][c][r][s],
// read as w'[c][k][R-1-r][S-1-s]), so that gradient needs no flipped copy of it.
void conv_fwd_taps(const Conv2dParams& p, bool flipped);
void conv_bwd_weight_taps(const Conv2dParams& p);

// Direct loops (conv_direct_vec.cpp) for layers with few channels per group.
// Channels in the vector lanes (conv_lanes_vec.cpp): conv_lanes_pays says whether a layer's
// pass takes it (small output rows, strides).
enum class ConvPass { forward, input, weight };
bool conv_lanes_pays(const Conv2dParams& p, ConvPass pass);
void conv_fwd_lanes(const Conv2dParams& p);
void conv_bwd_input_lanes(const Conv2dParams& p);
void conv_bwd_weight_lanes(const Conv2dParams& p);
void conv_fwd_direct(const Conv2dParams& p);
void conv_bwd_input_direct(const Conv2dParams& p);
void conv_bwd_weight_direct(const Conv2dParams& p);

}  // namespace fastdl::cpu::FASTDL_ISA_NS
