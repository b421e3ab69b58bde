// Building blocks shared by the per-ISA GEMM files (gemm_vec.cpp, gemm_bf16_vec.cpp):
// packing into zero-padded micro-panels, the write-back of a finished micro-tile, and
// the macro-kernel (jr/ir loops). Included only by *_vec.cpp files, inside their ISA
// namespace, so every ISA gets its own copy compiled with its own flags.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core/dtype.h"
#include "cpu/gemm.h"

#if defined(FASTDL_ISA_avx512) || defined(FASTDL_ISA_avx2)
#include <immintrin.h>
#define FASTDL_GEMM_AVX 1
#include "cpu/simd/transpose.h"
#endif

namespace fastdl::cpu::FASTDL_ISA_NS {
namespace gk {

// Element conversions: bf16 is stored as uint16_t.
template <class D, class S> inline D cvt(S v) { return D(v); }
template <> inline float cvt<float, uint16_t>(uint16_t v) { return bf16_to_f32(v); }
template <> inline uint16_t cvt<uint16_t, float>(float v) { return f32_to_bf16(v); }


// dst[k * R + r] = src[r * ld + k] for r < R, k < kc (src contiguous along k).
template <class S, class D, int R>
void pack_transposed(const S* src, int64_t ld, int64_t kc, D* dst) {
  int64_t k0 = 0;
#ifdef FASTDL_GEMM_AVX
  if constexpr (std::is_same_v<S, D>) {
    constexpr int B = 32 / sizeof(D);
    for (; k0 + B <= kc; k0 += B)
      for (int r0 = 0; r0 < R; r0 += B) tr_block(src + r0 * ld + k0, ld, dst + k0 * R + r0, R, std::min(B, R - r0));
  }
#endif
  for (; k0 + 8 <= kc; k0 += 8)
    for (int r = 0; r < R; ++r)
      for (int kk = 0; kk < 8; ++kk) dst[(k0 + kk) * R + r] = cvt<D>(src[r * ld + k0 + kk]);
  for (; k0 < kc; ++k0)
    for (int r = 0; r < R; ++r) dst[k0 * R + r] = cvt<D>(src[r * ld + k0]);
}

// Packed A: for each micro-panel of MR rows, kc columns of MR contiguous elements.
// Layout dst[panel][k][i]; rows past mc are zero. The two common layouts get loops the
// compiler vectorises: sm == 1 (A^T view: copy runs of MR) and sk == 1 (row-major: a
// blocked transpose that reads each row contiguously).
template <class S, class D, int MR>
void pack_a(const void* A_, int64_t sm, int64_t sk, int64_t mc, int64_t kc, void* dst_) {
  const S* A = static_cast<const S*>(A_);
  D* dst = static_cast<D*>(dst_);
  for (int64_t i0 = 0; i0 < mc; i0 += MR, dst += MR * kc) {
    const int m = int(std::min<int64_t>(MR, mc - i0));
    const S* a = A + i0 * sm;
    if (m == MR && sm == 1) {
      for (int64_t k = 0; k < kc; ++k)
        for (int i = 0; i < MR; ++i) dst[k * MR + i] = cvt<D>(a[k * sk + i]);
    } else if (m == MR && sk == 1) {
      pack_transposed<S, D, MR>(a, sm, kc, dst);
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        for (int i = 0; i < m; ++i) dst[k * MR + i] = cvt<D>(a[i * sm + k * sk]);
        for (int i = m; i < MR; ++i) dst[k * MR + i] = D(0);
      }
    }
  }
}

// Packed B: for each micro-panel of NR columns, kc rows of NR contiguous elements.
template <class S, class D, int NR>
void pack_b(const void* B_, int64_t sk, int64_t sn, int64_t kc, int64_t nc, void* dst_) {
  const S* B = static_cast<const S*>(B_);
  D* dst = static_cast<D*>(dst_);
  D* const dst0 = dst;
  for (int64_t j0 = 0; j0 < nc; j0 += NR, dst += NR * kc) {
    const int n = int(std::min<int64_t>(NR, nc - j0));
    const S* b = B + j0 * sn;
    if (n == NR && sn == 1) {
      continue;  // row-major B: copied below, row by row across all panels
    } else if (n == NR && sk == 1) {
      pack_transposed<S, D, NR>(b, sn, kc, dst);
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        for (int j = 0; j < n; ++j) dst[k * NR + j] = cvt<D>(b[j * sn + k * sk]);
        for (int j = n; j < NR; ++j) dst[k * NR + j] = D(0);
      }
    }
  }
  // Row-major B, full panels: walk k in short blocks and, inside, every panel, so the source
  // is read along its rows (sequential, few pages live) rather than down 32-wide columns.
  if (sn == 1 && nc >= NR) {
    const int64_t full = nc / NR;
    constexpr int64_t KB = 16;
    for (int64_t k0 = 0; k0 < kc; k0 += KB) {
      const int64_t k1 = std::min(kc, k0 + KB);
      for (int64_t jp = 0; jp < full; ++jp) {
        const S* b = B + jp * NR;
        D* d = dst0 + jp * NR * kc;
        for (int64_t k = k0; k < k1; ++k)
          for (int j = 0; j < NR; ++j) d[k * NR + j] = cvt<D>(b[k * sk + j]);
      }
    }
  }
}

// Write a finished tile (row-major MR x NR in Acc precision) to C[0:mr, 0:nr] with
// arbitrary strides: C = alpha * tile + beta * C; beta == 0 never reads C.
template <class Acc, class CT, int NR>
inline void write_tile(const Acc* t, CT* c, int64_t rs, int64_t cs, int mr, int nr, Acc alpha, Acc beta) {
  for (int i = 0; i < mr; ++i) {
    CT* ci = c + i * rs;
    const Acc* ti = t + i * NR;
    if (beta == Acc(0)) {
      for (int j = 0; j < nr; ++j) ci[j * cs] = cvt<CT>(Acc(alpha * ti[j]));
    } else {
      for (int j = 0; j < nr; ++j) ci[j * cs] = cvt<CT>(Acc(alpha * ti[j] + beta * cvt<Acc>(ci[j * cs])));
    }
  }
}

// Macro-kernel: micro-panels jr0..jr1 of packed B against every micro-panel of packed A.
// Ukernel(kunits, a, b, c, rs, cs, mr, nr, alpha, beta) computes one MR x NR tile.
template <int MR, int NR, int KPACK, class PT, class CT, class Acc, class Ukernel>
void macro(int64_t mc, int64_t nc, int64_t kc, const void* Ap_, const void* Bp_, void* C_,
           int64_t rs, int64_t cs, double alpha, double beta, int64_t jr0, int64_t jr1, Ukernel uk) {
  const PT* Ap = static_cast<const PT*>(Ap_);
  const PT* Bp = static_cast<const PT*>(Bp_);
  CT* C = static_cast<CT*>(C_);
  const int64_t kcp = (kc + KPACK - 1) / KPACK * KPACK;
  const int64_t mpanels = (mc + MR - 1) / MR;
  for (int64_t jr = jr0; jr < jr1; ++jr) {
    const int nr = int(std::min<int64_t>(NR, nc - jr * NR));
    const PT* bp = Bp + jr * NR * kcp;
    for (int64_t ir = 0; ir < mpanels; ++ir) {
      const int mr = int(std::min<int64_t>(MR, mc - ir * MR));
      uk(kcp / KPACK, Ap + ir * MR * kcp, bp, C + ir * MR * rs + jr * NR * cs, rs, cs, mr, nr,
         Acc(alpha), Acc(beta));
    }
  }
}

}  // namespace gk
}  // namespace fastdl::cpu::FASTDL_ISA_NS
