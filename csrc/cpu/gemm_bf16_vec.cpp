// bf16 GEMM with VDPBF16PS (AVX512-BF16): each f32 lane accumulates a[k]*b[k] + a[k+1]*b[k+1],
// so both operands are packed in k pairs (k padded to even with zeros):
//   packed A: [panel][k/2][MR][2]  (one 32-bit broadcast per row and k pair)
//   packed B: [panel][k/2][NR][2]  (one zmm = 16 columns x 2 k)
// Tile 14 x 32 like the f32 kernel: 28 zmm accumulators, 2 B vectors, 1 broadcast.
// Only the avx512 build has the kernel, and only its functions carry the bf16 target, so
// nothing else in the file can emit bf16 instructions; gemm.cpp checks cpu_info().avx512bf16.
#include <type_traits>

#include "cpu/gemm_kernel.h"

#if defined(FASTDL_ISA_avx512)
#include <immintrin.h>
#endif

namespace fastdl::cpu::FASTDL_ISA_NS {
namespace {
using detail::GemmKernel;

#if defined(FASTDL_ISA_avx512)
constexpr int kMR = 14, kNR = 32;

inline uint32_t pair(uint16_t lo, uint16_t hi) { return uint32_t(lo) | uint32_t(hi) << 16; }

// A rows [0, mc) x k [0, kc) -> k-pair micro-panels of MR rows.
void pack_a_pairs(const void* A_, int64_t sm, int64_t sk, int64_t mc, int64_t kc, void* dst_) {
  const uint16_t* A = static_cast<const uint16_t*>(A_);
  uint32_t* dst = static_cast<uint32_t*>(dst_);
  const int64_t kp = (kc + 1) / 2, kfull = kc / 2;
  for (int64_t i0 = 0; i0 < mc; i0 += kMR, dst += kMR * kp) {
    const int m = int(std::min<int64_t>(kMR, mc - i0));
    const uint16_t* a = A + i0 * sm;
    if (m == kMR && sk == 1 && sm % 2 == 0) {
      // Row-major A: a k pair is one 32-bit word, so this is a 32-bit transpose (bit-exact
      // through the float register shuffles).
      gk::pack_transposed<float, float, kMR>(reinterpret_cast<const float*>(a), sm / 2, kfull,
                                             reinterpret_cast<float*>(dst));
      if (kp != kfull)
        for (int i = 0; i < kMR; ++i) dst[kfull * kMR + i] = pair(a[i * sm + kc - 1], 0);
      continue;
    }
    for (int i = 0; i < m; ++i) {
      const uint16_t* ai = a + i * sm;
      if (sk == 1) {
        for (int64_t p = 0; p < kfull; ++p) dst[p * kMR + i] = pair(ai[2 * p], ai[2 * p + 1]);
      } else {
        for (int64_t p = 0; p < kfull; ++p) dst[p * kMR + i] = pair(ai[2 * p * sk], ai[(2 * p + 1) * sk]);
      }
      if (kp != kfull) dst[kfull * kMR + i] = pair(ai[(kc - 1) * sk], 0);
    }
    for (int i = m; i < kMR; ++i)
      for (int64_t p = 0; p < kp; ++p) dst[p * kMR + i] = 0;
  }
}

// VPERMT2W indices interleaving two 32-word rows x, y into x0 y0 x1 y1 ... (0-31 pick from x, 32-63
// from y): the first 32 words of the result (columns 0-15), then the next 32 (columns 16-31).
alignas(64) constexpr uint16_t kInterleave[64] = {
    0, 32, 1, 33, 2, 34, 3, 35, 4, 36, 5, 37, 6, 38, 7, 39, 8, 40, 9, 41, 10, 42, 11, 43, 12, 44, 13, 45, 14, 46, 15, 47,
    16, 48, 17, 49, 18, 50, 19, 51, 20, 52, 21, 53, 22, 54, 23, 55, 24, 56, 25, 57, 26, 58, 27, 59, 28, 60, 29, 61, 30, 62,
    31, 63};

// B k [0, kc) x columns [0, nc) -> k-pair micro-panels of NR columns.
void pack_b_pairs(const void* B_, int64_t sk, int64_t sn, int64_t kc, int64_t nc, void* dst_) {
  const uint16_t* B = static_cast<const uint16_t*>(B_);
  uint32_t* dst = static_cast<uint32_t*>(dst_);
  const int64_t kp = (kc + 1) / 2, kfull = kc / 2;
  for (int64_t j0 = 0; j0 < nc; j0 += kNR, dst += kNR * kp) {
    const int n = int(std::min<int64_t>(kNR, nc - j0));
    const uint16_t* b = B + j0 * sn;
    if (n == kNR && sn == 1) {  // row-major B: interleave two rows, 32 words each, with two VPERMT2W
      const __m512i lo = _mm512_loadu_si512(kInterleave), hi = _mm512_loadu_si512(kInterleave + 32);
      for (int64_t p = 0; p < kfull; ++p) {
        const uint16_t* r0 = b + 2 * p * sk;
        const __m512i x = _mm512_loadu_si512(r0), y = _mm512_loadu_si512(r0 + sk);
        _mm512_storeu_si512(dst + p * kNR, _mm512_permutex2var_epi16(x, lo, y));
        _mm512_storeu_si512(dst + p * kNR + 16, _mm512_permutex2var_epi16(x, hi, y));
      }
    } else if (n == kNR && sk == 1 && sn % 2 == 0) {  // B^T view: a pair is one 32-bit word
      gk::pack_transposed<float, float, kNR>(reinterpret_cast<const float*>(b), sn / 2, kfull,
                                             reinterpret_cast<float*>(dst));
    } else if (n == kNR && sk == 1) {
      for (int j = 0; j < kNR; ++j) {
        const uint16_t* bj = b + j * sn;
        for (int64_t p = 0; p < kfull; ++p) dst[p * kNR + j] = pair(bj[2 * p], bj[2 * p + 1]);
      }
    } else {
      for (int64_t p = 0; p < kfull; ++p)
        for (int j = 0; j < kNR; ++j)
          dst[p * kNR + j] = j < n ? pair(b[j * sn + 2 * p * sk], b[j * sn + (2 * p + 1) * sk]) : 0;
    }
    if (kp != kfull)
      for (int j = 0; j < kNR; ++j) dst[kfull * kNR + j] = j < n ? pair(b[j * sn + (kc - 1) * sk], 0) : 0;
  }
}

#define FASTDL_BF16_TARGET __attribute__((target("avx512bf16,avx512f,avx512bw,avx512vl")))

struct UkernelBf16 {
  FASTDL_BF16_TARGET
  void operator()(int64_t kpairs, const uint16_t* a, const uint16_t* b, uint16_t* c, int64_t rs,
                  int64_t cs, int mr, int nr, float alpha, float beta) const {
    __m512 acc[kMR][2];
#pragma GCC unroll 32
    for (int i = 0; i < kMR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    if (cs == 1)  // C rows are needed after the k loop: fetch every line of the tile now
      for (int i = 0; i < mr; ++i)
        for (int j = 0; j < int(kNR * sizeof(uint16_t)); j += 64)
          _mm_prefetch(reinterpret_cast<const char*>(c + i * rs) + j, _MM_HINT_T0);
    const uint32_t* ap = reinterpret_cast<const uint32_t*>(a);
    for (int64_t p = 0; p < kpairs; ++p) {
      const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b);
      const __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + 32);
      _mm_prefetch(reinterpret_cast<const char*>(ap + 8 * kMR), _MM_HINT_T0);
#pragma GCC unroll 32
      for (int i = 0; i < kMR; ++i) {
        const __m512bh av = (__m512bh)_mm512_set1_epi32(int(ap[i]));
        acc[i][0] = _mm512_dpbf16_ps(acc[i][0], av, b0);
        acc[i][1] = _mm512_dpbf16_ps(acc[i][1], av, b1);
      }
      ap += kMR;
      b += 2 * kNR;
    }
    if (cs == 1 && nr == kNR) {  // full-width rows: convert with round-to-nearest-even
      const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 32
      for (int i = 0; i < kMR; ++i) {
        if (i >= mr) break;
        uint16_t* ci = c + i * rs;
#pragma GCC unroll 2
        for (int j = 0; j < 2; ++j) {
          __m512 r = _mm512_mul_ps(acc[i][j], va);
          if (beta != 0.0f) {
            __m512i old = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(ci + 16 * j)));
            r = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(old, 16)), vb, r);
          }
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(ci + 16 * j), (__m256i)_mm512_cvtneps_pbh(r));
        }
      }
      return;
    }
    alignas(64) float tile[kMR * kNR];
#pragma GCC unroll 32
    for (int i = 0; i < kMR; ++i) {
      _mm512_store_ps(tile + i * kNR, acc[i][0]);
      _mm512_store_ps(tile + i * kNR + 16, acc[i][1]);
    }
    gk::write_tile<float, uint16_t, kNR>(tile, c, rs, cs, mr, nr, alpha, beta);
  }
};
#endif

}  // namespace

// The VDPBF16PS kernel; false where this ISA build has none.
bool gemm_get_bf16_dot_kernel(GemmKernel* k) {
#if defined(FASTDL_ISA_avx512)
  k->mr = kMR; k->nr = kNR; k->kpack = 2; k->elem = 2; k->full_k = true;
  k->pack_a = &pack_a_pairs;
  k->pack_b = &pack_b_pairs;
  k->macro = [](int64_t mc, int64_t nc, int64_t kc, const void* Ap, const void* Bp, void* C,
                int64_t rs, int64_t cs, double alpha, double beta, int64_t jr0, int64_t jr1) {
    gk::macro<kMR, kNR, 2, uint16_t, uint16_t, float>(mc, nc, kc, Ap, Bp, C, rs, cs, alpha, beta,
                                                      jr0, jr1, UkernelBf16{});
  };
  k->name = "avx512/bf16-dpbf16ps";
  return true;
#else
  (void)k;
  return false;
#endif
}

}  // namespace fastdl::cpu::FASTDL_ISA_NS
