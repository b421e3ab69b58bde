// bf16 GEMM on Intel AMX tiles (TDPBF16PS; Sapphire Rapids and later), f32 accumulation.
//
// AMX has eight tile registers of up to 16 rows x 64 bytes. TDPBF16PS C, A, B computes, for
// a 16 x 16 f32 tile C, C[m][n] += sum_p A[m][2p] B[p][2n] + A[m][2p+1] B[p][2n+1]: A holds 16
// rows of 32 consecutive k, B holds 16 k pairs ("VNNI" rows: column n's two k values side by
// side). One micro-kernel call computes a 32 x 32 block of C in four C tiles (2 x 2) from two A
// tiles and two B tiles per 32-wide k block: 4 tile loads (4 KiB) per 4 TDPBF16PS, the most
// reuse eight tiles allow.
//
// Packed layouts (k padded with zeros to a multiple of 32, GemmKernel::kpack = 32):
//   A (all panels):    [K chunk][panel][k block][row][32 k]  -> an A tile is 16 rows with a
//                                                     64-byte stride (see a_offset)
//   B panel (32 cols): [k pair][col][2]            -> a B tile is 16 pairs with a 128-byte stride,
//                                                     the second tile 64 bytes in
// The driver (gemm.cpp) owns blocking and threads, as for every other kernel (full_k: C is
// bf16, so the driver hands over the whole K; the macro-kernel walks it in chunks with the
// partial sums in an f32 buffer, so they never round through C).
//
// Using AMX needs the CPU (CPUID AMX-TILE, AMX-BF16), the OS (XCR0 bits 17-18) and, on Linux,
// a per-process grant of the tile data state (arch_prctl ARCH_REQ_XCOMP_PERM). The tile
// configuration is per thread and other libraries in the process (oneDNN) load their own, so
// every macro-kernel call loads ours and releases the tiles when done.
//
// The instructions are written as inline assembly, so this file needs no AMX compiler flags and
// is compiled once for every CPU. An emulated tile unit (plain C++ with the same layouts) runs
// the same packing and loops on any CPU: the tests check the layouts with it, and gemm.cpp
// checks the real unit against the reference once before trusting it.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core/allocator.h"
#include "core/cpu_info.h"
#include "core/dtype.h"
#include "cpu/gemm.h"

#if defined(__x86_64__) && defined(__linux__)
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#define FASTDL_AMX 1
#endif

namespace fastdl::cpu::amx {
namespace {
using detail::GemmKernel;

constexpr int kMR = 32, kNR = 32, kKB = 32;  // C block, k per tile block
// k blocks per chunk of K: a B panel's chunk (kChunk * 2 KiB) stays in L1 across the A panels.
// Tile loads that miss L1 stall the tile unit (nothing runs ahead of them, and software
// prefetching measured slower), so one operand must be L1-resident. A tile-loop benchmark on a
// Xeon (Sapphire Rapids class, 48 KiB L1d): both operands in L1 ~2.2 TFLOP/s per core, both
// streamed from L2 ~1.3-1.6. GEMM 2048^3 on one core: the whole K per C block 0.90 TFLOP/s,
// chunks of 256 0.98-1.04, chunk-major packed A (a_offset) 1.04-1.10 (PyTorch / oneDNN 1.07-1.10).
constexpr int64_t kChunk = 8;

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// ---- packing ------------------------------------------------------------------------------

// Packed A is chunk-major: for each chunk of K (kChunk k blocks), every panel's 32 rows x the
// chunk's k, so the pieces that one pass of the macro-kernel streams past a B chunk are
// contiguous (a panel-major layout put them a whole panel (128 KiB at K = 2048) apart: 1.3 vs
// 1.7 TFLOP/s in a tile-loop benchmark). Within a chunk: [k block][row][32 k].
// Element offset of k block kb of panel ip, for mpanels panels over nkb k blocks:
int64_t a_offset(int64_t mpanels, int64_t nkb, int64_t ip, int64_t kb) {
  const int64_t c0 = kb / kChunk * kChunk, n = std::min(kChunk, nkb - c0);
  return (c0 * mpanels + ip * n + (kb - c0)) * kMR * kKB;
}

// Rows [i0, i0 + 32) of A (those below mc; the rest zero) as panel ip.
void pack_a_panel(const uint16_t* A, int64_t sm, int64_t sk, int64_t mc, int64_t kc, int64_t i0, uint16_t* dst) {
  const int64_t kcp = round_up(kc, kKB), nkb = kcp / kKB, mpanels = (mc + kMR - 1) / kMR;
  for (int64_t kb = 0; kb < nkb; ++kb) {
    uint16_t* d0 = dst + a_offset(mpanels, nkb, i0 / kMR, kb);
    const int64_t kn = std::min<int64_t>(kKB, kc - kb * kKB);
    for (int i = 0; i < kMR; ++i) {
      uint16_t* d = d0 + i * kKB;
      const int64_t row = i0 + i;
      int64_t k = 0;
      if (row < mc) {
        const uint16_t* a = A + row * sm + kb * kKB * sk;
        if (sk == 1) { std::memcpy(d, a, size_t(kn) * 2); k = kn; }
        else for (; k < kn; ++k) d[k] = a[k * sk];
      }
      for (; k < kKB; ++k) d[k] = 0;
    }
  }
}

void pack_a(const void* A_, int64_t sm, int64_t sk, int64_t mc, int64_t kc, void* dst_) {
  for (int64_t i0 = 0; i0 < mc; i0 += kMR)
    pack_a_panel(static_cast<const uint16_t*>(A_), sm, sk, mc, kc, i0, static_cast<uint16_t*>(dst_));
}

void pack_b(const void* B_, int64_t sk, int64_t sn, int64_t kc, int64_t nc, void* dst_) {
  const uint16_t* B = static_cast<const uint16_t*>(B_);
  uint16_t* dst = static_cast<uint16_t*>(dst_);
  const int64_t kcp = round_up(kc, kKB);
  for (int64_t j0 = 0; j0 < nc; j0 += kNR, dst += kNR * kcp) {
    const int n = int(std::min<int64_t>(kNR, nc - j0));
    const uint16_t* b = B + j0 * sn;
    for (int64_t p = 0; p < kcp / 2; ++p) {
      uint16_t* d = dst + p * 2 * kNR;
      const int64_t k0 = 2 * p, k1 = 2 * p + 1;
      if (k1 < kc && n == kNR && sn == 1) {  // row-major B: interleave two rows
        const uint16_t* r0 = b + k0 * sk;
        const uint16_t* r1 = r0 + sk;
        for (int j = 0; j < kNR; ++j) { d[2 * j] = r0[j]; d[2 * j + 1] = r1[j]; }
        continue;
      }
      for (int j = 0; j < kNR; ++j) {
        d[2 * j] = j < n && k0 < kc ? b[j * sn + k0 * sk] : uint16_t(0);
        d[2 * j + 1] = j < n && k1 < kc ? b[j * sn + k1 * sk] : uint16_t(0);
      }
    }
  }
}

// ---- the tile unit: real and emulated -------------------------------------------------------

// Tiles 0-3: C (00, 01, 10, 11); 4-5: A rows 0-15, 16-31; 6-7: B columns 0-15, 16-31.
// Every tile is 16 rows x 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
  TileConfig() {
    for (int t = 0; t < 8; ++t) { colsb[t] = 64; rows[t] = 16; }
  }
};

#ifdef FASTDL_AMX
// The 32 x 32 block of A panel `a` times B panel `b` over nkb k blocks, into t (32 x 32 f32).
// Operand order in AT&T syntax is reversed: tdpbf16ps B, A, C.
#define FASTDL_TLOAD(T, p, s) __asm__ volatile("tileloadd (%0,%1,1), %%tmm" #T ::"r"(p), "r"(int64_t(s)) : "memory")
#define FASTDL_TSTORE(T, p, s) __asm__ volatile("tilestored %%tmm" #T ", (%0,%1,1)" ::"r"(p), "r"(int64_t(s)) : "memory")
#define FASTDL_TDP(C, A, B) __asm__ volatile("tdpbf16ps %%tmm" #B ", %%tmm" #A ", %%tmm" #C ::)
struct Hardware {
  static void begin() {
    static const TileConfig cfg;
    __asm__ volatile("ldtilecfg (%0)" ::"r"(&cfg) : "memory");
  }
  static void end() { __asm__ volatile("tilerelease" ::); }
  static void block(int64_t nkb, const uint16_t* a, const uint16_t* b, float* t, bool accumulate) {
    if (accumulate) {
      FASTDL_TLOAD(0, t, 128);
      FASTDL_TLOAD(1, t + 16, 128);
      FASTDL_TLOAD(2, t + 16 * kNR, 128);
      FASTDL_TLOAD(3, t + 16 * kNR + 16, 128);
    } else {
      __asm__ volatile("tilezero %%tmm0\n\ttilezero %%tmm1\n\ttilezero %%tmm2\n\ttilezero %%tmm3" ::);
    }
    for (int64_t kb = 0; kb < nkb; ++kb, a += kMR * kKB, b += kNR * kKB) {
      FASTDL_TLOAD(4, a, 64);
      FASTDL_TLOAD(6, b, 128);
      FASTDL_TLOAD(5, a + 16 * kKB, 64);
      FASTDL_TLOAD(7, b + 32, 128);
      FASTDL_TDP(0, 4, 6);
      FASTDL_TDP(1, 4, 7);
      FASTDL_TDP(2, 5, 6);
      FASTDL_TDP(3, 5, 7);
    }
    FASTDL_TSTORE(0, t, 128);
    FASTDL_TSTORE(1, t + 16, 128);
    FASTDL_TSTORE(2, t + 16 * kNR, 128);
    FASTDL_TSTORE(3, t + 16 * kNR + 16, 128);
  }
};
#undef FASTDL_TLOAD
#undef FASTDL_TSTORE
#undef FASTDL_TDP
#endif

// The same arithmetic in C++, reading the packed panels through the tile layouts above.
struct Emulated {
  static void begin() {}
  static void end() {}
  static void block(int64_t nkb, const uint16_t* a, const uint16_t* b, float* t, bool accumulate) {
    for (int m = 0; m < kMR; ++m)
      for (int n = 0; n < kNR; ++n) {
        float acc = accumulate ? t[m * kNR + n] : 0.0f;
        for (int64_t kb = 0; kb < nkb; ++kb) {
          const uint16_t* at = a + kb * kMR * kKB + m * kKB;  // row m of this k block
          const uint16_t* bt = b + kb * kNR * kKB;           // pair rows of this k block
          for (int p = 0; p < kKB / 2; ++p)
            acc += bf16_to_f32(at[2 * p]) * bf16_to_f32(bt[(p * kNR + n) * 2]) +
                   bf16_to_f32(at[2 * p + 1]) * bf16_to_f32(bt[(p * kNR + n) * 2 + 1]);
        }
        t[m * kNR + n] = acc;
      }
  }
};

// ---- write-back -----------------------------------------------------------------------------

void write_generic(const float* t, uint16_t* c, int64_t rs, int64_t cs, int mr, int nr, float alpha, float beta) {
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j) {
      uint16_t* x = c + i * rs + j * cs;
      float v = alpha * t[i * kNR + j];
      if (beta != 0.0f) v += beta * bf16_to_f32(*x);
      *x = f32_to_bf16(v);
    }
}

#ifdef FASTDL_AMX
// (GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on their own _mm512_undefined values.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// Full-width rows of contiguous C (every AMX CPU has AVX512-BF16): round-to-nearest-even.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
void write_rows(const float* t, uint16_t* c, int64_t rs, int mr, float alpha, float beta) {
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < kNR; j += 16) {
      uint16_t* ci = c + i * rs + j;
      __m512 r = _mm512_mul_ps(_mm512_loadu_ps(t + i * kNR + j), va);
      if (beta != 0.0f) {
        const __m512i old = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(ci)));
        r = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(old, 16)), vb, r);
      }
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(ci), (__m256i)_mm512_cvtneps_pbh(r));
    }
}

// ---- packing with AVX-512 (every AMX CPU has it); the scalar versions above handle the rest --

#define FASTDL_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))
// 16 x 16 transpose of 32-bit elements in r (after the unpack / 128-bit-lane shuffle scheme).
FASTDL_AVX512 inline void transpose16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // u[4i + q], 128-bit lane L: column 4L + q of rows 4i .. 4i + 3
    u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int q = 0; q < 4; ++q) {
    const __m512i x01 = _mm512_shuffle_i32x4(u[q], u[4 + q], _MM_SHUFFLE(1, 0, 1, 0));
    const __m512i x23 = _mm512_shuffle_i32x4(u[q], u[4 + q], _MM_SHUFFLE(3, 2, 3, 2));
    const __m512i y01 = _mm512_shuffle_i32x4(u[8 + q], u[12 + q], _MM_SHUFFLE(1, 0, 1, 0));
    const __m512i y23 = _mm512_shuffle_i32x4(u[8 + q], u[12 + q], _MM_SHUFFLE(3, 2, 3, 2));
    r[q] = _mm512_shuffle_i32x4(x01, y01, _MM_SHUFFLE(2, 0, 2, 0));
    r[4 + q] = _mm512_shuffle_i32x4(x01, y01, _MM_SHUFFLE(3, 1, 3, 1));
    r[8 + q] = _mm512_shuffle_i32x4(x23, y23, _MM_SHUFFLE(2, 0, 2, 0));
    r[12 + q] = _mm512_shuffle_i32x4(x23, y23, _MM_SHUFFLE(3, 1, 3, 1));
  }
}

// Two rows of 32 bf16 -> 32 (row 0, row 1) pairs: lo holds pairs 0-15, hi pairs 16-31.
FASTDL_AVX512 inline void interleave(__m512i r0, __m512i r1, __m512i* lo, __m512i* hi) {
  alignas(64) static const uint16_t kLo[32] = {0, 32, 1, 33, 2, 34, 3, 35, 4, 36, 5, 37, 6, 38, 7, 39,
                                               8, 40, 9, 41, 10, 42, 11, 43, 12, 44, 13, 45, 14, 46, 15, 47};
  alignas(64) static const uint16_t kHi[32] = {16, 48, 17, 49, 18, 50, 19, 51, 20, 52, 21, 53, 22, 54, 23, 55,
                                               24, 56, 25, 57, 26, 58, 27, 59, 28, 60, 29, 61, 30, 62, 31, 63};
  *lo = _mm512_permutex2var_epi16(r0, _mm512_load_si512(kLo), r1);
  *hi = _mm512_permutex2var_epi16(r0, _mm512_load_si512(kHi), r1);
}

// pack_b's layout for full 32-column panels of row-major B (sn == 1: two rows interleaved) and of
// B = W^T (sk == 1: a column's k pairs are 32-bit words, so 16 x 16 word transposes); partial
// panels and odd k tails go through the scalar pack_b.
FASTDL_AVX512 void pack_b_fast(const void* B_, int64_t sk, int64_t sn, int64_t kc, int64_t nc, void* dst_) {
  const uint16_t* B = static_cast<const uint16_t*>(B_);
  uint16_t* dst = static_cast<uint16_t*>(dst_);
  const int64_t kcp = round_up(kc, kKB), full = nc / kNR;
  if (full == 0 || (sn != 1 && sk != 1)) return pack_b(B_, sk, sn, kc, nc, dst_);
  const int64_t pairs = kc / 2;  // whole k pairs
  if (sn == 1) {
    // Short runs of k pairs across every panel, so B is read along its rows (a walk down one
    // panel's columns touches a new page per row).
    constexpr int64_t kRun = 8;
    for (int64_t p0 = 0; p0 < pairs; p0 += kRun)
      for (int64_t jp = 0; jp < full; ++jp) {
        const uint16_t* b = B + jp * kNR;
        uint16_t* d = dst + jp * kNR * kcp;
        for (int64_t p = p0; p < std::min(pairs, p0 + kRun); ++p) {
          __m512i lo, hi;
          interleave(_mm512_loadu_si512(b + 2 * p * sk), _mm512_loadu_si512(b + (2 * p + 1) * sk), &lo, &hi);
          _mm512_storeu_si512(d + p * 2 * kNR, lo);
          _mm512_storeu_si512(d + p * 2 * kNR + 32, hi);
        }
      }
  }
  for (int64_t jp = 0; jp < full; ++jp) {
    const uint16_t* b = B + jp * kNR * sn;
    uint16_t* d = dst + jp * kNR * kcp;
    int64_t p = 0;  // k pairs done
    if (sn == 1) {
      p = pairs;
    } else {
      for (; 2 * p + 32 <= kc; p += 16)  // 16 pairs x 32 columns, as two 16 x 16 word blocks
        for (int h = 0; h < 2; ++h) {
          __m512i r[16];
          for (int j = 0; j < 16; ++j) r[j] = _mm512_loadu_si512(b + (16 * h + j) * sn + 2 * p);
          transpose16(r);
          for (int q = 0; q < 16; ++q) _mm512_storeu_si512(d + (p + q) * 2 * kNR + 32 * h, r[q]);
        }
    }
    for (; p < kcp / 2; ++p) {  // the k tail (and zero padding) element by element
      uint16_t* o = d + p * 2 * kNR;
      for (int j = 0; j < kNR; ++j) {
        o[2 * j] = 2 * p < kc ? b[j * sn + 2 * p * sk] : uint16_t(0);
        o[2 * j + 1] = 2 * p + 1 < kc ? b[j * sn + (2 * p + 1) * sk] : uint16_t(0);
      }
    }
  }
  if (full * kNR < nc)
    pack_b(B + full * kNR * sn, sk, sn, kc, nc - full * kNR, dst + full * kNR * kcp);
}

// pack_a's layout for full 32-row panels of row-major A (sk == 1: 64-byte row pieces, the k tail
// masked) and of A = X^T (sm == 1: pairs of k rows interleaved, then 16 x 16 word transposes).
FASTDL_AVX512 void pack_a_fast(const void* A_, int64_t sm, int64_t sk, int64_t mc, int64_t kc, void* dst_) {
  const uint16_t* A = static_cast<const uint16_t*>(A_);
  uint16_t* dst = static_cast<uint16_t*>(dst_);
  const int64_t kcp = round_up(kc, kKB), nkb = kcp / kKB, mpanels = (mc + kMR - 1) / kMR, full = mc / kMR;
  if (sk != 1 && sm != 1) return pack_a(A_, sm, sk, mc, kc, dst_);
  for (int64_t ip = 0; ip < full; ++ip) {
    const uint16_t* a = A + ip * kMR * sm;
    for (int64_t kb = 0; kb < nkb; ++kb) {
      uint16_t* o = dst + a_offset(mpanels, nkb, ip, kb);  // 32 rows x 32 k
      const int64_t k0 = kb * kKB, kn = std::min<int64_t>(kKB, kc - k0);
      if (sk == 1) {
        const __mmask32 m = kn >= 32 ? ~__mmask32(0) : (__mmask32(1) << kn) - 1;
        for (int i = 0; i < kMR; ++i) _mm512_storeu_si512(o + i * kKB, _mm512_maskz_loadu_epi16(m, a + i * sm + k0));
      } else {
        // Row k of this block is A[0:32][k] (contiguous): pairs of rows -> 32 words per pair,
        // 16 pairs x 32 rows, transposed in two 16 x 16 halves to rows of 16 pairs = 32 k.
        __m512i w[2][16];
        for (int q = 0; q < 16; ++q) {
          const int64_t ka = k0 + 2 * q, kb1 = ka + 1;
          const __m512i r0 = ka < kc ? _mm512_loadu_si512(a + ka * sk) : _mm512_setzero_si512();
          const __m512i r1 = kb1 < kc ? _mm512_loadu_si512(a + kb1 * sk) : _mm512_setzero_si512();
          interleave(r0, r1, &w[0][q], &w[1][q]);
        }
        for (int h = 0; h < 2; ++h) {
          transpose16(w[h]);
          for (int i = 0; i < 16; ++i) _mm512_storeu_si512(o + (16 * h + i) * kKB, w[h][i]);
        }
      }
    }
  }
  if (full < mpanels) pack_a_panel(A, sm, sk, mc, kc, full * kMR, dst);
}
#undef FASTDL_AVX512
#pragma GCC diagnostic pop
#endif

template <class Unit>
void macro(int64_t mc, int64_t nc, int64_t kc, const void* Ap_, const void* Bp_, void* C_, int64_t rs, int64_t cs,
           double alpha, double beta, int64_t jr0, int64_t jr1) {
  const uint16_t* Ap = static_cast<const uint16_t*>(Ap_);
  const uint16_t* Bp = static_cast<const uint16_t*>(Bp_);
  uint16_t* C = static_cast<uint16_t*>(C_);
  const int64_t kcp = round_up(kc, kKB), nkb = kcp / kKB;
  const int64_t mpanels = (mc + kMR - 1) / kMR;
  // The f32 32 x 32 blocks of one column panel (C is bf16: sums stay f32 until the last chunk).
  const size_t wbytes = size_t(mpanels) * kMR * kNR * sizeof(float);
  float* w = static_cast<float*>(cpu_alloc(wbytes));
  Unit::begin();
  for (int64_t jr = jr0; jr < jr1; ++jr) {
    const int nr = int(std::min<int64_t>(kNR, nc - jr * kNR));
    const uint16_t* bp = Bp + jr * kNR * kcp;
    auto write = [&](int64_t ir) {
      const int mr = int(std::min<int64_t>(kMR, mc - ir * kMR));
      const float* t = w + ir * kMR * kNR;
      uint16_t* c = C + ir * kMR * rs + jr * kNR * cs;
#ifdef FASTDL_AMX
      if constexpr (std::is_same_v<Unit, Hardware>) {
        if (cs == 1 && nr == kNR) return write_rows(t, c, rs, mr, float(alpha), float(beta));
      }
#endif
      write_generic(t, c, rs, cs, mr, nr, float(alpha), float(beta));
    };
    // K in chunks of kChunk k blocks: the chunk of this B panel (16 KiB) stays in L1 while the
    // A panels' chunks stream past it from L2. In the last chunk, block ir - 1 is written to C
    // while the tile unit works on block ir (written right after its tiles are stored, the
    // conversion waited for the unit to drain: 10% of the time at 2048^3).
    for (int64_t kb0 = 0; kb0 < nkb; kb0 += kChunk) {
      const int64_t n = std::min(kChunk, nkb - kb0);
      const bool last = kb0 + kChunk >= nkb;
      for (int64_t ir = 0; ir < mpanels; ++ir) {
        Unit::block(n, Ap + a_offset(mpanels, nkb, ir, kb0), bp + kb0 * kNR * kKB, w + ir * kMR * kNR, kb0 > 0);
        if (last && ir > 0) write(ir - 1);
      }
    }
    write(mpanels - 1);
  }
  Unit::end();
  cpu_free(w, wbytes);
}

void fill(GemmKernel* k, bool hardware) {
  k->mr = kMR; k->nr = kNR; k->kpack = kKB; k->elem = 2; k->full_k = true;
  k->pack_a = &pack_a;
  k->pack_b = &pack_b;
#ifdef FASTDL_AMX
  if (hardware) {  // AVX-512 packing (the emulation keeps the scalar packing: it runs on any CPU)
    k->pack_a = &pack_a_fast;
    k->pack_b = &pack_b_fast;
  }
  k->macro = hardware ? &macro<Hardware> : &macro<Emulated>;
#else
  k->macro = &macro<Emulated>;
#endif
  k->direct = nullptr;
  k->gemv_dot = nullptr;
  k->gemv_axpy = nullptr;
  k->name = hardware ? "amx/bf16-tdpbf16ps" : "amx/bf16-emulated";
}

}  // namespace

// The CPU has AMX-BF16 with the OS's tile state, and this process holds the grant to use it
// (requested once).
bool usable() {
#ifdef FASTDL_AMX
  static const bool ok = [] {
    const CpuInfo& c = cpu_info();
    if (!(c.amx_bf16 && c.avx512bf16)) return false;
    constexpr long kReqXcompPerm = 0x1023, kXtileData = 18;  // asm/prctl.h, XFEATURE_XTILEDATA
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXtileData) == 0;
  }();
  return ok;
#else
  return false;
#endif
}

// The AMX kernel (hardware: the real tile unit, else the emulation). False when the hardware
// one is asked for and not usable.
bool get_kernel(GemmKernel* k, bool hardware) {
  if (hardware && !usable()) return false;
  fill(k, hardware);
  return true;
}

}  // namespace fastdl::cpu::amx
