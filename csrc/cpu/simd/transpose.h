// 8x8 float / 4x4 double block transposes in AVX registers, for the per-ISA kernel files
// (AVX2 and AVX-512 builds): GEMM packing (gemm_kernel.h) and the selective scan's
// (step, lane) tiles. Included inside the file's ISA namespace (fastdl::cpu::FASTDL_ISA_NS).
#pragma once
#if !defined(FASTDL_ISA_avx2) && !defined(FASTDL_ISA_avx512)
#error "simd/transpose.h is for the AVX2 and AVX-512 builds of a *_vec.cpp file"
#endif
#include <cstdint>

#include <immintrin.h>

namespace fastdl::cpu::FASTDL_ISA_NS {

// Transposing copies for panels whose source is contiguous along k (row-major A, B^T views):
// dst[k * R + r] = src[r * ld + k]. Blocks of 8x8 floats / 4x4 doubles are transposed in
// registers (unpack, shuffle, lane permute); a block with fewer than 8 (4) source rows
// loads zeros for the rest and stores only the first `rows` lanes of each output row (float
// blocks of 4-7 rows whose output rows lie back to back: full stores in order, see tr_block).
//
// Those partial rows are written with plain 128/64/32-bit stores, not VMASKMOVPS: AMD cores
// microcode masked stores (tens of cycles each on Zen 3, by published instruction tables), and
// the AVX2 GEMM packs every row-major A panel (6 rows) through here: perf on Zen 3 put most of
// F.linear 128 x 256 -> 10's samples on them.
inline void store_first(float* d, __m256 v, int n) {  // d[0:n] = v[0:n], 0 < n < 8
  __m128 lo = _mm256_castps256_ps128(v);
  if (n >= 4) {
    _mm_storeu_ps(d, lo);
    d += 4; n -= 4;
    lo = _mm256_extractf128_ps(v, 1);
  }
  if (n >= 2) {
    _mm_storel_pi(reinterpret_cast<__m64*>(d), lo);
    d += 2; n -= 2;
    lo = _mm_movehl_ps(lo, lo);
  }
  if (n) _mm_store_ss(d, lo);
}
inline void store_first(double* d, __m256d v, int n) {  // d[0:n] = v[0:n], 0 < n < 4
  __m128d lo = _mm256_castpd256_pd128(v);
  if (n >= 2) {
    _mm_storeu_pd(d, lo);
    d += 2; n -= 2;
    lo = _mm256_extractf128_pd(v, 1);
  }
  if (n) _mm_store_sd(d, lo);
}
inline void tr_block(const float* s, int64_t ld, float* d, int64_t ldd, int rows) {
  __m256 r[8];
  for (int i = 0; i < 8; ++i) r[i] = i < rows ? _mm256_loadu_ps(s + i * ld) : _mm256_setzero_ps();
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h) {  // rows 0-3 (h = 0) and 4-7 (h = 1)
    const __m256 *a = t + 4 * h;
    u[4 * h + 0] = _mm256_shuffle_ps(a[0], a[2], 0x44);
    u[4 * h + 1] = _mm256_shuffle_ps(a[0], a[2], 0xEE);
    u[4 * h + 2] = _mm256_shuffle_ps(a[1], a[3], 0x44);
    u[4 * h + 3] = _mm256_shuffle_ps(a[1], a[3], 0xEE);
  }
  __m256 o[8];
  for (int i = 0; i < 4; ++i) {
    o[i] = _mm256_permute2f128_ps(u[i], u[4 + i], 0x20);
    o[4 + i] = _mm256_permute2f128_ps(u[i], u[4 + i], 0x31);
  }
  if (rows == 8) {
    for (int k = 0; k < 8; ++k) _mm256_storeu_ps(d + k * ldd, o[k]);
  } else if (ldd == rows && rows >= 4) {
    // Output rows back to back (the AVX2 GEMM's 6-row A panels): full stores in order, each
    // one's tail overwritten by the next row, all inside the block's 8 x rows floats. Packing a
    // 384 x 512 A block: 96 -> 80 us (Zen 3, one thread).
    for (int k = 0; k < 7; ++k) _mm256_storeu_ps(d + k * ldd, o[k]);
    store_first(d + 7 * ldd, o[7], rows);
  } else {
    for (int k = 0; k < 8; ++k) store_first(d + k * ldd, o[k], rows);
  }
}
inline void tr_block(const double* s, int64_t ld, double* d, int64_t ldd, int rows) {
  __m256d r[4];
  for (int i = 0; i < 4; ++i) r[i] = i < rows ? _mm256_loadu_pd(s + i * ld) : _mm256_setzero_pd();
  const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
  const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
  __m256d o[4] = {_mm256_permute2f128_pd(t0, t2, 0x20), _mm256_permute2f128_pd(t1, t3, 0x20),
                  _mm256_permute2f128_pd(t0, t2, 0x31), _mm256_permute2f128_pd(t1, t3, 0x31)};
  if (rows == 4) {
    for (int k = 0; k < 4; ++k) _mm256_storeu_pd(d + k * ldd, o[k]);
  } else {
    for (int k = 0; k < 4; ++k) store_first(d + k * ldd, o[k], rows);
  }
}

}  // namespace fastdl::cpu::FASTDL_ISA_NS
