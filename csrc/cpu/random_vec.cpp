// Random fill kernels, compiled per ISA (the ref build is the scalar reference). A pass makes the
// Philox words of up to kChunkGroups groups into an L1 buffer (explicit vectors on AVX2 / AVX-512:
// sixteen blocks side by side, one 32x32 -> 64-bit multiply per lane pair), then one loop turns
// them into the output dtype. Threads split the groups; every word depends on (key, slot) only, so
// the result is the same for any thread count, and the same bits on every ISA (the float math
// after them may differ in the last bit where the SIMD builds contract a multiply-add).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/parallel.h"
#include "cpu/random.h"
#include "cpu/simd/vmath.h"
#include "kernels/random.h"

#if defined(FASTDL_ISA_avx2) || defined(FASTDL_ISA_avx512)
#include <immintrin.h>
#endif

namespace fastdl::cpu::FASTDL_ISA_NS {
namespace {

constexpr int64_t kChunkGroups = 16;  // 1024 words (4 KiB) per pass
constexpr int64_t kGrainGroups = 256;  // >= 8k elements per thread

#if defined(FASTDL_ISA_avx2) || defined(FASTDL_ISA_avx512)
#if defined(FASTDL_ISA_avx512)
// GCC 12's _mm512_mul_epu32 / shifts start from _mm512_undefined_epi32(), which it then warns about.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
constexpr int kW = 16;
using vu = uint32_t __attribute__((vector_size(64)));
using mi = __m512i;
inline mi mul_even(mi a, mi b) { return _mm512_mul_epu32(a, b); }
inline mi srl32(mi a) { return _mm512_srli_epi64(a, 32); }
inline mi sll32(mi a) { return _mm512_slli_epi64(a, 32); }
inline mi odd_from(mi even, mi odd) { return _mm512_mask_blend_epi32(0xAAAA, even, odd); }
#else
constexpr int kW = 8;
using vu = uint32_t __attribute__((vector_size(32)));
using mi = __m256i;
inline mi mul_even(mi a, mi b) { return _mm256_mul_epu32(a, b); }
inline mi srl32(mi a) { return _mm256_srli_epi64(a, 32); }
inline mi sll32(mi a) { return _mm256_slli_epi64(a, 32); }
inline mi odd_from(mi even, mi odd) { return _mm256_blend_epi32(even, odd, 0xAA); }
#endif
// 32 x 32 -> 64-bit products of every lane with m: the even lanes' products directly, the odd
// lanes' after shifting them down; then the low and high halves regrouped by lane.
inline void mulhilo(vu a, vu m, vu& hi, vu& lo) {
  const mi pe = mul_even(mi(a), mi(m)), po = mul_even(srl32(mi(a)), mi(m));
  lo = vu(odd_from(pe, sll32(po)));
  hi = vu(odd_from(srl32(pe), po));
}
// Words of groups g0 .. g0 + ng - 1 into w[64 ng] (the slot layout of kernels/random.h).
void philox_groups(uint64_t key, uint64_t g0, int64_t ng, uint32_t* __restrict w) {
  vu iota;
  for (int l = 0; l < kW; ++l) iota[l] = uint32_t(l);
  const vu m0 = vu{} + 0xD2511F53u, m1 = vu{} + 0xCD9E8D57u;
  for (int64_t gi = 0; gi < ng; ++gi) {
    const uint64_t b0 = (g0 + uint64_t(gi)) * kPhiloxLanes;
    for (int h = 0; h < kPhiloxLanes / kW; ++h) {
      vu c0 = iota + (uint32_t(b0) + uint32_t(h * kW)), c1 = vu{} + uint32_t(b0 >> 32), c2 = vu{}, c3 = vu{};
      uint32_t k0 = uint32_t(key), k1 = uint32_t(key >> 32);
      for (int r = 0; r < 10; ++r) {
        vu h0, l0, h1, l1;
        mulhilo(c0, m0, h0, l0);
        mulhilo(c2, m1, h1, l1);
        c0 = h1 ^ c1 ^ k0;
        c2 = h0 ^ c3 ^ k1;
        c1 = l1;
        c3 = l0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
      }
      uint32_t* o = w + gi * kPhiloxGroupWords + h * kW;
      std::memcpy(o, &c0, sizeof c0);
      std::memcpy(o + 16, &c1, sizeof c1);
      std::memcpy(o + 32, &c2, sizeof c2);
      std::memcpy(o + 48, &c3, sizeof c3);
    }
  }
}
#else
void philox_groups(uint64_t key, uint64_t g0, int64_t ng, uint32_t* __restrict w) {
  for (int64_t gi = 0; gi < ng; ++gi) {
    const uint64_t b0 = (g0 + uint64_t(gi)) * kPhiloxLanes;
    for (int l = 0; l < kPhiloxLanes; ++l) {
      const uint64_t b = b0 + uint64_t(l);
      uint32_t c0 = uint32_t(b), c1 = uint32_t(b >> 32), c2 = 0, c3 = 0;
      philox4x32_10(c0, c1, c2, c3, uint32_t(key), uint32_t(key >> 32));
      uint32_t* o = w + gi * kPhiloxGroupWords + l;
      o[0] = c0;
      o[16] = c1;
      o[32] = c2;
      o[48] = c3;
    }
  }
}
#endif

// [0, 1) from a word's top 24 bits; (0, 1] from its top 31 plus a half step (Box-Muller's radius:
// the log stays finite, the float32 tail reaches sqrt(64 ln 2) = 6.66 sigma; the float64 radius
// uses 1 - u53, reaching 8.57); [0, 1) from 53 bits of two words (26 + 27 bits, both halves exact
// in double, so their sum is exact).
inline float u24(uint32_t w) { return float(int32_t(w >> 8)) * (1.0f / 16777216.0f); }
inline float u32_open0(uint32_t w) { return float(int32_t(w >> 1)) * 4.656612873077393e-10f + 2.3283064365386963e-10f; }
inline double u53(uint32_t hi, uint32_t lo) {
  return double(int32_t(hi >> 6)) * (1.0 / 67108864.0) + double(int32_t(lo >> 5)) * (1.0 / 9007199254740992.0);
}

inline void store(float* o, float v) { *o = v; }
inline void store(double* o, double v) { *o = v; }
inline void store(uint16_t* o, float v) { *o = f32_to_bf16(v); }

// Runs body(w, ng, dst, e0, m) over the groups of n elements (kPerGroup = 64 / words per element),
// threaded: dst receives elements e0 .. e0 + ng * kPerGroup (through a buffer at the tail, where
// only the first m < ng * kPerGroup are in the tensor; a body reading inputs reads m).
template <int kPerGroup, class T, class Body> void fill(T* out, int64_t n, uint64_t key, const Body& body) {
  const int64_t ngroups = (n + kPerGroup - 1) / kPerGroup;
  parallel_for(0, ngroups, kGrainGroups, [&](int64_t gb, int64_t ge) {
    // Locals, not captures: stores through the closure's members may alias them (nn_vec.cpp).
    T* const o = out;
    const int64_t nl = n;
    const uint64_t k = key;
    const Body bd = body;
    alignas(64) uint32_t w[kChunkGroups * kPhiloxGroupWords];
    alignas(64) T tmp[kChunkGroups * kPerGroup];
    for (int64_t g = gb; g < ge; g += kChunkGroups) {
      const int64_t ng = std::min(kChunkGroups, ge - g), e0 = g * kPerGroup;
      philox_groups(k, uint64_t(g), ng, w);
      const int64_t m = std::min(ng * kPerGroup, nl - e0);
      if (m == ng * kPerGroup) {
        bd(w, ng, o + e0, e0, m);
      } else {
        bd(w, ng, tmp, e0, m);
        std::copy(tmp, tmp + m, o + e0);
      }
    }
  });
}

// float32 / bfloat16 (T = float / uint16_t): element i from word slot i.
template <class T> void uniform32(T* out, int64_t n, uint64_t key, float lo, float range, float cap) {
  fill<64>(out, n, key, [lo, range, cap](const uint32_t* __restrict w, int64_t ng, T* __restrict o, int64_t, int64_t) {
    for (int64_t j = 0; j < ng * 64; ++j) store(o + j, std::min(lo + range * u24(w[j]), cap));
  });
}
void uniform64(double* out, int64_t n, uint64_t key, double lo, double range, double cap) {
  fill<32>(out, n, key, [lo, range, cap](const uint32_t* __restrict w, int64_t ng, double* __restrict o, int64_t,
                                         int64_t) {
    for (int64_t h = 0; h < 2 * ng; ++h)  // words 2 (h % 2) and 2 (h % 2) + 1 of 16 blocks
      for (int l = 0; l < 16; ++l) o[16 * h + l] = std::min(lo + range * u53(w[32 * h + l], w[32 * h + 16 + l]), cap);
  });
}
void uniform_k(DType dt, void* out, int64_t n, uint64_t key, double lo, double hi, double cap) {
  if (dt == DType::f64) uniform64(static_cast<double*>(out), n, key, lo, hi - lo, cap);
  else if (dt == DType::bf16) uniform32(static_cast<uint16_t*>(out), n, key, float(lo), float(hi - lo), float(cap));
  else uniform32(static_cast<float*>(out), n, key, float(lo), float(hi - lo), float(cap));
}

// Box-Muller on word pairs: words 2k and 2k + 1 of a block (slots 32 h + l and 32 h + 16 + l) give
// the elements at those slots, r cos and r sin.
template <class T> void normal32(T* out, int64_t n, uint64_t key, float mean, float std) {
  fill<64>(out, n, key, [mean, std](const uint32_t* __restrict w, int64_t ng, T* __restrict o, int64_t, int64_t) {
    for (int64_t h = 0; h < 2 * ng; ++h) {
      const uint32_t* __restrict wh = w + 32 * h;
      T* __restrict oh = o + 32 * h;
      for (int l = 0; l < 16; ++l) {
        const float r = std * std::sqrt(std::max(-2.0f * vm::log_f(u32_open0(wh[l])), 0.0f));
        float s, c;
        vm::sincos2pi_f(u24(wh[16 + l]), s, c);
        store(oh + l, mean + r * c);
        store(oh + 16 + l, mean + r * s);
      }
    }
  });
}
// float64: block words 0, 1 give u1 (53 bits, as 1 - u in (0, 1]), words 2, 3 give u2; the block's
// two elements are at slots l and 16 + l of its group's 32.
void normal64(double* out, int64_t n, uint64_t key, double mean, double std) {
  fill<32>(out, n, key, [mean, std](const uint32_t* __restrict w, int64_t ng, double* __restrict o, int64_t, int64_t) {
    for (int64_t g = 0; g < ng; ++g) {
      const uint32_t* __restrict wg = w + 64 * g;
      double* __restrict og = o + 32 * g;
      for (int l = 0; l < 16; ++l) {
        const double r = std * std::sqrt(std::max(-2.0 * vm::log_pos_d(1.0 - u53(wg[l], wg[16 + l])), 0.0));
        double s, c;
        vm::sincos2pi_d(u53(wg[32 + l], wg[48 + l]), s, c);
        og[l] = mean + r * c;
        og[16 + l] = mean + r * s;
      }
    }
  });
}
void normal_k(DType dt, void* out, int64_t n, uint64_t key, double mean, double std) {
  if (dt == DType::f64) normal64(static_cast<double*>(out), n, key, mean, std);
  else if (dt == DType::bf16) normal32(static_cast<uint16_t*>(out), n, key, float(mean), float(std));
  else normal32(static_cast<float*>(out), n, key, float(mean), float(std));
}

void bernoulli_k(DType dt, const void* p, void* out, int64_t n, uint64_t key) {
  if (dt == DType::f64) {
    const double* pp = static_cast<const double*>(p);
    fill<32>(static_cast<double*>(out), n, key,
             [pp](const uint32_t* __restrict w, int64_t, double* __restrict o, int64_t e0, int64_t m) {
               const double* __restrict pe = pp + e0;
               for (int64_t j = 0; j < m; ++j) {  // element j: words at 32 (j / 16) + j % 16, + 16
                 const int64_t s = 32 * (j >> 4) + (j & 15);
                 o[j] = u53(w[s], w[s + 16]) < pe[j] ? 1.0 : 0.0;
               }
             });
  } else {
    const float* pp = static_cast<const float*>(p);
    fill<64>(static_cast<float*>(out), n, key,
             [pp](const uint32_t* __restrict w, int64_t, float* __restrict o, int64_t e0, int64_t m) {
               const float* __restrict pe = pp + e0;
               for (int64_t j = 0; j < m; ++j) o[j] = u24(w[j]) < pe[j] ? 1.0f : 0.0f;
             });
  }
}

void bits64_k(uint64_t* out, int64_t n, uint64_t key, uint64_t span) {
  fill<32>(out, n, key, [span](const uint32_t* __restrict w, int64_t ng, uint64_t* __restrict o, int64_t, int64_t) {
    for (int64_t h = 0; h < 2 * ng; ++h)
      for (int l = 0; l < 16; ++l) {
        const uint64_t b = (uint64_t(w[32 * h + l]) << 32) | w[32 * h + 16 + l];
        o[16 * h + l] = span ? uint64_t((unsigned __int128)b * span >> 64) : b;
      }
  });
}

}  // namespace

const RandomKernels& random_table() {
  static const RandomKernels k{uniform_k, normal_k, bernoulli_k, bits64_k};
  return k;
}

}  // namespace fastdl::cpu::FASTDL_ISA_NS
