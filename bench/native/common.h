// Shared helpers for the native benchmarks (gemm, conv, attention, scan, scatter, peak):
// wall-clock timing with warm-up and medians, cache flushing, argument parsing, and the
// machine's measured ceilings (FMA peak per ISA and dtype, memory bandwidth), so every
// benchmark can print "% of peak" against numbers measured on the same machine.
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <omp.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "core/cpu_info.h"
#include "core/parallel.h"

namespace fastdl::bench {

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Median seconds of f() over at least `reps` runs and `min_s` seconds, after one warm-up.
template <class F>
double time_median(F&& f, int reps = 5, double min_s = 0.3, int max_reps = 1000) {
  f();
  std::vector<double> t;
  const double t0 = now_s();
  while (int(t.size()) < reps || (now_s() - t0 < min_s && int(t.size()) < max_reps)) {
    const double a = now_s();
    f();
    t.push_back(now_s() - a);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Evicts the caches by writing a buffer twice the size of the L3.
inline void flush_caches() {
  static std::vector<char> junk(std::max<size_t>(cpu_info().l3 * 2, 64 << 20));
  for (size_t i = 0; i < junk.size(); i += 64) junk[i] = char(junk[i] + 1);
}

// Tiny argument parser: --name value, --flag.
struct Args {
  int argc; char** argv;
  const char* get(const char* name, const char* dflt = nullptr) const {
    for (int i = 1; i + 1 < argc; ++i) if (!std::strcmp(argv[i], name)) return argv[i + 1];
    return dflt;
  }
  long geti(const char* name, long dflt) const { const char* v = get(name); return v ? std::atol(v) : dflt; }
  bool has(const char* name) const {
    for (int i = 1; i < argc; ++i) if (!std::strcmp(argv[i], name)) return true;
    return false;
  }
};

// Applies --impl ref|avx2|avx512 and --threads N; returns false on a bad --impl.
inline bool apply_impl_threads(const Args& a) {
  if (const char* impl = a.get("--impl")) {
    Isa want = !std::strcmp(impl, "ref") ? Isa::ref : !std::strcmp(impl, "avx2") ? Isa::avx2
             : !std::strcmp(impl, "avx512") ? Isa::avx512 : Isa(-1);
    if (int(want) < 0) { std::fprintf(stderr, "unknown --impl %s\n", impl); return false; }
    set_cpu_isa(want);
    if (cpu_isa() != want) std::fprintf(stderr, "note: %s not supported here, using %s\n", impl, isa_name(cpu_isa()));
  }
  if (long t = a.geti("--threads", 0)) set_num_threads(int(t));
  return true;
}

// ---- FMA peak probes ------------------------------------------------------------------------
// Independent FMA chains (more than latency x ports) on registers only; each returns flops.
enum class PeakKind { f32, f64, bf16dot };

#if defined(__x86_64__)
#define FASTDL_PROBE_LOOP(R, SET1, FMA, NACC)                                 \
  R acc[NACC];                                                                \
  for (int i = 0; i < NACC; ++i) acc[i] = SET1(float(i) * 1e-3f);             \
  const R x = SET1(0.999999f), y = SET1(1e-7f);                               \
  for (int64_t it = 0; it < iters; ++it) {                                    \
    _Pragma("GCC unroll 16") for (int i = 0; i < NACC; ++i) acc[i] = FMA(acc[i], x, y); \
                                                                              \
  }                                                                           \
  for (int i = 1; i < NACC; ++i) acc[0] = FMA(acc[0], x, acc[i]);

__attribute__((target("avx512f"))) inline double probe_avx512_f32(int64_t iters, float* sink) {
  FASTDL_PROBE_LOOP(__m512, _mm512_set1_ps, _mm512_fmadd_ps, 16)
  *sink = _mm512_reduce_add_ps(acc[0]);
  return double(iters) * 16 * 16 * 2;
}
__attribute__((target("avx512f"))) inline double probe_avx512_f64(int64_t iters, float* sink) {
  FASTDL_PROBE_LOOP(__m512d, _mm512_set1_pd, _mm512_fmadd_pd, 16)
  *sink = float(_mm512_reduce_add_pd(acc[0]));
  return double(iters) * 16 * 8 * 2;
}
__attribute__((target("avx2,fma"))) inline double probe_avx2_f32(int64_t iters, float* sink) {
  FASTDL_PROBE_LOOP(__m256, _mm256_set1_ps, _mm256_fmadd_ps, 12)
  float t[8]; _mm256_storeu_ps(t, acc[0]); *sink = t[0];
  return double(iters) * 12 * 8 * 2;
}
__attribute__((target("avx2,fma"))) inline double probe_avx2_f64(int64_t iters, float* sink) {
  FASTDL_PROBE_LOOP(__m256d, _mm256_set1_pd, _mm256_fmadd_pd, 12)
  double t[4]; _mm256_storeu_pd(t, acc[0]); *sink = float(t[0]);
  return double(iters) * 12 * 4 * 2;
}
__attribute__((target("avx512bf16,avx512f,avx512bw,avx512vl"))) inline double probe_avx512_bf16(int64_t iters, float* sink) {
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps(float(i));
  const __m512bh x = (__m512bh)_mm512_set1_epi32(0x3f803f80), y = (__m512bh)_mm512_set1_epi32(0x33003300);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], (i & 1) ? x : y, x);
  }
  for (int i = 1; i < 16; ++i) acc[0] = _mm512_add_ps(acc[0], acc[i]);
  *sink = _mm512_reduce_add_ps(acc[0]);
  return double(iters) * 16 * 32 * 2;
}
#endif

// A scalar FMA chain set (what the ref ISA can reach without vectors).
inline double probe_scalar(int64_t iters, float* sink, bool f64) {
  double a[8]; for (int i = 0; i < 8; ++i) a[i] = i * 1e-3;
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < 8; ++i) a[i] = a[i] * 0.999999 + 1e-7;
    __asm__ volatile("" ::: "memory");
  }
  *sink = float(a[0] + a[7]);
  return double(iters) * 8 * 2;
}

// Peak GFLOP/s of `isa`/`kind` on `threads` threads (each thread runs the probe ~0.2 s).
inline double fma_peak_gflops(Isa isa, PeakKind kind, int threads) {
  const CpuInfo& ci = cpu_info();
  auto probe = [&](int64_t iters, float* sink) -> double {
#if defined(__x86_64__)
    if (isa == Isa::avx512 && kind == PeakKind::bf16dot && ci.avx512bf16) return probe_avx512_bf16(iters, sink);
    if (isa == Isa::avx512 && ci.avx512f) return kind == PeakKind::f64 ? probe_avx512_f64(iters, sink) : probe_avx512_f32(iters, sink);
    if (isa != Isa::ref && ci.avx2 && ci.fma) return kind == PeakKind::f64 ? probe_avx2_f64(iters, sink) : probe_avx2_f32(iters, sink);
#endif
    return probe_scalar(iters, sink, kind == PeakKind::f64);
  };
  float sink = 0;
  // Calibrate the iteration count for ~0.2 s on one thread.
  int64_t iters = 1 << 16;
  for (;;) {
    double t0 = now_s(); probe(iters, &sink); double dt = now_s() - t0;
    if (dt > 0.05) { iters = int64_t(double(iters) * 0.2 / dt); break; }
    iters *= 4;
  }
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    double flops = 0;
    const double t0 = now_s();
#pragma omp parallel num_threads(threads) reduction(+ : flops)
    { float s = 0; flops += probe(iters, &s); if (s == 12345.f) std::printf(" "); }
    best = std::max(best, flops / (now_s() - t0) * 1e-9);
  }
  return best;
}

// ---- memory bandwidth probes ------------------------------------------------------------------
// Copy with streaming stores (counts read + write bytes) and a read-only sum; GB/s.
struct Bandwidth { double copy_gbs, read_gbs; };

#if defined(__x86_64__)
__attribute__((target("avx2"))) inline void stream_copy(const float* s, float* d, size_t n) {
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256 a = _mm256_load_ps(s + i), b = _mm256_load_ps(s + i + 8), c = _mm256_load_ps(s + i + 16), e = _mm256_load_ps(s + i + 24);
    _mm256_stream_ps(d + i, a); _mm256_stream_ps(d + i + 8, b); _mm256_stream_ps(d + i + 16, c); _mm256_stream_ps(d + i + 24, e);
  }
  for (; i < n; ++i) d[i] = s[i];
}
__attribute__((target("avx2"))) inline float read_sum(const float* s, size_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_load_ps(s + i)); a1 = _mm256_add_ps(a1, _mm256_load_ps(s + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(s + i + 16)); a3 = _mm256_add_ps(a3, _mm256_load_ps(s + i + 24));
  }
  float t[8]; _mm256_storeu_ps(t, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  float r = 0; for (float v : t) r += v;
  for (; i < n; ++i) r += s[i];
  return r;
}
#else
inline void stream_copy(const float* s, float* d, size_t n) { std::memcpy(d, s, n * 4); }
inline float read_sum(const float* s, size_t n) { float r = 0; for (size_t i = 0; i < n; ++i) r += s[i]; return r; }
#endif

inline Bandwidth memory_bandwidth(int threads, size_t bytes = size_t(512) << 20) {
  const size_t n = bytes / 4;
  float* a = static_cast<float*>(std::aligned_alloc(64, n * 4));
  float* b = static_cast<float*>(std::aligned_alloc(64, n * 4));
#pragma omp parallel for num_threads(threads) schedule(static)
  for (size_t i = 0; i < n; ++i) { a[i] = 1.0f; b[i] = 0.0f; }  // fault pages in, first touch
  auto copy = [&] {
#pragma omp parallel num_threads(threads)
    {
      const int t = omp_get_thread_num(), T = omp_get_num_threads();
      const size_t chunk = (n / T) / 16 * 16, lo = chunk * t, hi = t == T - 1 ? n : lo + chunk;
      stream_copy(a + lo, b + lo, hi - lo);
    }
  };
  float sink = 0;
  auto read = [&] {
    float s = 0;
#pragma omp parallel num_threads(threads) reduction(+ : s)
    {
      const int t = omp_get_thread_num(), T = omp_get_num_threads();
      const size_t chunk = (n / T) / 16 * 16, lo = chunk * t, hi = t == T - 1 ? n : lo + chunk;
      s += read_sum(a + lo, hi - lo);
    }
    sink += s;
  };
  const double tc = time_median(copy, 5, 0.5), tr = time_median(read, 5, 0.5);
  std::free(a); std::free(b);
  if (sink == 12345.f) std::printf(" ");
  return {2.0 * double(bytes) / tc * 1e-9, double(bytes) / tr * 1e-9};
}

}  // namespace fastdl::bench
