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
//   A panel (32 rows): [k block][row][32 k]        -> an A tile is 16 rows with a 64-byte stride
//   B panel (32 cols): [k pair][col][2]            -> a B tile is 16 pairs with a 128-byte stride,
//                                                     the second tile 64 bytes in
// The driver (gemm.cpp) owns blocking and threads, as for every other kernel (full_k: C is
// bf16, so the whole K runs in one block and partial sums never round through C).
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

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// ---- packing ------------------------------------------------------------------------------

void pack_a(const void* A_, int64_t sm, int64_t sk, int64_t mc, int64_t kc, void* dst_) {
  const uint16_t* A = static_cast<const uint16_t*>(A_);
  uint16_t* dst = static_cast<uint16_t*>(dst_);
  const int64_t kcp = round_up(kc, kKB);
  for (int64_t i0 = 0; i0 < mc; i0 += kMR, dst += kMR * kcp) {
    for (int64_t kb = 0; kb < kcp; kb += kKB) {
      const int64_t kn = std::max<int64_t>(0, std::min<int64_t>(kKB, kc - kb));
      for (int i = 0; i < kMR; ++i) {
        uint16_t* d = dst + (kb + i) * kKB;  // (kb / 32 * 32 + i) rows of 32
        const int64_t row = i0 + i;
        int64_t k = 0;
        if (row < mc) {
          const uint16_t* a = A + row * sm + kb * sk;
          if (sk == 1) { std::memcpy(d, a, size_t(kn) * 2); k = kn; }
          else for (; k < kn; ++k) d[k] = a[k * sk];
        }
        for (; k < kKB; ++k) d[k] = 0;
      }
    }
  }
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
  static void block(int64_t nkb, const uint16_t* a, const uint16_t* b, float* t) {
    __asm__ volatile("tilezero %%tmm0\n\ttilezero %%tmm1\n\ttilezero %%tmm2\n\ttilezero %%tmm3" ::);
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
  static void block(int64_t nkb, const uint16_t* a, const uint16_t* b, float* t) {
    for (int m = 0; m < kMR; ++m)
      for (int n = 0; n < kNR; ++n) {
        float acc = 0;
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
#pragma GCC diagnostic pop
#endif

template <class Unit>
void macro(int64_t mc, int64_t nc, int64_t kc, const void* Ap_, const void* Bp_, void* C_, int64_t rs, int64_t cs,
           double alpha, double beta, int64_t jr0, int64_t jr1) {
  const uint16_t* Ap = static_cast<const uint16_t*>(Ap_);
  const uint16_t* Bp = static_cast<const uint16_t*>(Bp_);
  uint16_t* C = static_cast<uint16_t*>(C_);
  const int64_t kcp = round_up(kc, kKB), nkb = kcp / kKB;
  alignas(64) float t[kMR * kNR];
  Unit::begin();
  for (int64_t jr = jr0; jr < jr1; ++jr) {
    const int nr = int(std::min<int64_t>(kNR, nc - jr * kNR));
    const uint16_t* bp = Bp + jr * kNR * kcp;
    for (int64_t ir = 0; ir * kMR < mc; ++ir) {
      const int mr = int(std::min<int64_t>(kMR, mc - ir * kMR));
      Unit::block(nkb, Ap + ir * kMR * kcp, bp, t);
      uint16_t* c = C + ir * kMR * rs + jr * kNR * cs;
#ifdef FASTDL_AMX
      if constexpr (std::is_same_v<Unit, Hardware>) {
        if (cs == 1 && nr == kNR) {
          write_rows(t, c, rs, mr, float(alpha), float(beta));
          continue;
        }
      }
#endif
      write_generic(t, c, rs, cs, mr, nr, float(alpha), float(beta));
    }
  }
  Unit::end();
}

void fill(GemmKernel* k, bool hardware) {
  k->mr = kMR; k->nr = kNR; k->kpack = kKB; k->elem = 2; k->full_k = true;
  k->pack_a = &pack_a;
  k->pack_b = &pack_b;
#ifdef FASTDL_AMX
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
