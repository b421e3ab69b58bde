// 2-D pooling kernels (cpu/pool.h), compiled per ISA; the ref build is the scalar reference.
// Planes (n, c) run in parallel over the pool, each plane written by one thread, so backward
// scatters into its own gx plane without atomics. Windows are clipped to the input once per
// output row / column once per call (no divisions per output), so the tap loops carry no bounds
// tests; 3-wide max windows (ResNet's stem pool) take an unrolled column loop.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/parallel.h"
#include "cpu/pool.h"
#if defined(FASTDL_ISA_avx2) || defined(FASTDL_ISA_avx512)
#include "cpu/simd/vec.h"
#endif

namespace fastdl::cpu::FASTDL_ISA_NS {
namespace {

// The valid taps of one window along one axis: first coordinate, count, step.
struct Taps { int64_t first, count, step; int64_t span; };  // span: avg's padded window size

inline Taps fixed_taps(int64_t o, int64_t s, int64_t pad, int64_t k, int64_t d, int64_t n) {
  const int64_t start = o * s - pad;
  int64_t i0 = start >= 0 ? 0 : (-start + d - 1) / d;     // first tap index with coordinate >= 0
  int64_t i1 = n - start > 0 ? (n - start + d - 1) / d : 0;  // taps with coordinate < n
  if (i1 > k) i1 = k;
  const int64_t span = std::min(start + k, n + pad) - start;  // avg (d = 1): clipped to the padded input
  return {start + i0 * d, i1 > i0 ? i1 - i0 : 0, d, span};
}
inline Taps adaptive_taps(int64_t o, int64_t n, int64_t on) {
  const int64_t b = adaptive_begin(o, n, on), e = adaptive_end(o, n, on);
  return {b, e - b, 1, e - b};
}
inline Taps row_taps(const Pool2dParams& p, int64_t oh) {
  if (p.kind == PoolKind::adaptive_avg || p.kind == PoolKind::adaptive_max) return adaptive_taps(oh, p.H, p.OH);
  return fixed_taps(oh, p.sh, p.ph, p.kh, p.kind == PoolKind::max ? p.dh : 1, p.H);
}
inline Taps col_taps(const Pool2dParams& p, int64_t ow) {
  if (p.kind == PoolKind::adaptive_avg || p.kind == PoolKind::adaptive_max) return adaptive_taps(ow, p.W, p.OW);
  return fixed_taps(ow, p.sw, p.pw, p.kw, p.kind == PoolKind::max ? p.dw : 1, p.W);
}

// Every output row's and column's taps, computed once per call (integer divisions kept out of
// the per-output loops).
struct Windows {
  std::vector<Taps> rows, cols;
  explicit Windows(const Pool2dParams& p) : rows(size_t(p.OH)), cols(size_t(p.OW)) {
    for (int64_t o = 0; o < p.OH; ++o) rows[size_t(o)] = row_taps(p, o);
    for (int64_t o = 0; o < p.OW; ++o) cols[size_t(o)] = col_taps(p, o);
  }
};

inline int64_t plane_grain(const Pool2dParams& p) {
  return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, p.H * p.W + p.OH * p.OW));
}

template <class T> inline bool wins(T v, T best) { return (v > best) | (v != v); }  // |, not ||: no branch

// y, idx of one output: the max over the window's valid taps (NaN wins, the first max on ties).
// Selects, not branches: which tap wins is data-dependent and would mispredict.
template <class T> inline void take(T v, int64_t i, T& best, int64_t& bi) {
  const bool w = wins(v, best);
  best = w ? v : best;
  bi = w ? i : bi;
}

template <class T> inline void max_window(const T* __restrict xp, int64_t W, const Taps& r, const Taps& c, T& y,
                                          int64_t& idx) {
  T best = -std::numeric_limits<T>::infinity();
  int64_t bi = r.count && c.count ? r.first * W + c.first : -1;
  for (int64_t i = 0, h = r.first; i < r.count; ++i, h += r.step) {
    const T* row = xp + h * W;
    const int64_t base = h * W;
    if (c.step == 1 && c.count == 3) {  // 3-wide windows, unrolled
      const int64_t w = c.first;
      take(row[w], base + w, best, bi);
      take(row[w + 1], base + w + 1, best, bi);
      take(row[w + 2], base + w + 2, best, bi);
      continue;
    }
    for (int64_t j = 0, w = c.first; j < c.count; ++j, w += c.step) take(row[w], base + w, best, bi);
  }
  y = best;
  idx = bi;
}

template <class T> void max_fwd(const Pool2dParams& p) {
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  const int64_t H = p.H, W = p.W, OH = p.OH, OW = p.OW;
  const Windows win(p);
  parallel_for(0, p.planes, plane_grain(p), [&](int64_t p0, int64_t p1) {
    for (int64_t q = p0; q < p1; ++q) {
      const T* xp = x + q * H * W;
      T* yp = y + q * OH * OW;
      int64_t* ip = p.idx + q * OH * OW;
      for (int64_t oh = 0; oh < OH; ++oh) {
        const Taps& r = win.rows[size_t(oh)];
        for (int64_t ow = 0; ow < OW; ++ow)
          max_window(xp, W, r, win.cols[size_t(ow)], yp[oh * OW + ow], ip[oh * OW + ow]);
      }
    }
  });
}

#if defined(FASTDL_ISA_avx2) || defined(FASTDL_ISA_avx512)
// Float32 fixed windows, kWf outputs of a row at a time (max_fwd_vec, avg_fwd_vec): each tap of
// the window is read for all lanes at once by load_cols, the lanes' running max or sum kept in
// registers. The scalar max loop's selects had compiled to branches that random data
// mispredicts: ResNet's stem pool (32 x 64 x 32 x 32, 3x3 stride 2) took 10 ms, PyTorch's 8.3.

// Lane l of the result: row[start + l * sw] for columns in [0, W), fill elsewhere (lane holds
// 0, 1, ... kWf - 1). Unit stride is one masked load, stride 2 two and a permute of the even
// lanes, others a gather. Masked lanes are never read.
inline vf load_run(const float* row, int64_t start, int64_t W, vi lane, float fill) {
  const vi pos = lane + int32_t(start), ok = (pos >= 0) & (pos < int32_t(W));
#if defined(FASTDL_ISA_avx512)
  return vf(_mm512_mask_loadu_ps(_mm512_set1_ps(fill), _mm512_test_epi32_mask(__m512i(ok), __m512i(ok)), row + start));
#else
  return vf(_mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(row + start, __m256i(ok)), __m256(ok)));
#endif
}
inline vf load_cols(const float* row, int64_t start, int64_t sw, int64_t W, vi lane, float fill) {
  if (sw == 1) return load_run(row, start, W, lane, fill);
  if (sw == 2) {
    const vf a = load_run(row, start, W, lane, fill), b = load_run(row, start + kWf, W, lane, fill);
#if defined(FASTDL_ISA_avx512)
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return vf(_mm512_permutex2var_ps(__m512(a), even, __m512(b)));
#else
    const __m256 t = _mm256_shuffle_ps(__m256(a), __m256(b), 0x88);  // a0 a2 b0 b2 a4 a6 b4 b6
    return vf(_mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), 0xD8)));
#endif
  }
  const vi col = lane * int32_t(sw) + int32_t(start), ok = (col >= 0) & (col < int32_t(W));
#if defined(FASTDL_ISA_avx512)
  const __mmask16 k = _mm512_test_epi32_mask(__m512i(ok), __m512i(ok));
  return vf(_mm512_mask_i32gather_ps(_mm512_set1_ps(fill), k, __m512i(col), row, 4));
#else
  return vf(_mm256_mask_i32gather_ps(_mm256_set1_ps(fill), row, __m256i(col), __m256(ok), 4));
#endif
}

inline vi lane_ids() {
  vi l;
  for (int i = 0; i < kWf; ++i) l[i] = i;
  return l;
}

// out(plane, oh, row taps, v, n): every vector v of kWf outputs of every output row, n of its
// lanes inside the row; planes in parallel.
template <class F> void each_output_vector(const Pool2dParams& p, const Windows& win, const F& out) {
  const int64_t nv = (p.OW + kWf - 1) / kWf;
  parallel_for(0, p.planes, plane_grain(p), [&](int64_t p0, int64_t p1) {
    for (int64_t q = p0; q < p1; ++q)
      for (int64_t oh = 0; oh < p.OH; ++oh)
        for (int64_t v = 0; v < nv; ++v) out(q, oh, win.rows[size_t(oh)], v, std::min<int64_t>(kWf, p.OW - v * kWf));
  });
}

// A column-per-output table padded to whole vectors, so lanes past OW read pad.
template <class U, class F> std::vector<U> per_column(const Pool2dParams& p, const Windows& win, U pad, const F& f) {
  std::vector<U> t(size_t((p.OW + kWf - 1) / kWf * kWf), pad);
  for (int64_t o = 0; o < p.OW; ++o) t[size_t(o)] = f(win.cols[size_t(o)]);
  return t;
}

// max_window's answers exactly: NaN wins, the first max on ties, a window of -inf points at its
// first valid tap (taps outside the input read -inf, which never wins).
void max_fwd_vec(const Pool2dParams& p) {
  const float* x = static_cast<const float*>(p.x);
  float* y = static_cast<float*>(p.y);
  const int64_t H = p.H, W = p.W, OW = p.OW;
  const Windows win(p);
  // each output column's first valid input column, or -1
  const std::vector<int32_t> cfirst = per_column<int32_t>(p, win, -1, [](const Taps& c) { return c.count ? int32_t(c.first) : -1; });
  const vi lane = lane_ids();
  each_output_vector(p, win, [&](int64_t q, int64_t oh, const Taps& r, int64_t v, int64_t n) {
    const float* xp = x + q * H * W;
    vi cf;
    std::memcpy(&cf, cfirst.data() + v * kWf, sizeof cf);
    vf best = vf{} - INFINITY;
    vi bi = r.count ? (cf >= 0 ? cf + int32_t(r.first * W) : cf) : vi{} - 1;
    const vi col0 = (lane + int32_t(v * kWf)) * int32_t(p.sw) - int32_t(p.pw);  // each lane's column at tap 0
    const int64_t start0 = v * kWf * p.sw - p.pw;
    for (int64_t i = 0, h = r.first; i < r.count; ++i, h += r.step)
      for (int64_t j = 0; j < p.kw; ++j) {
        const vf t = load_cols(xp + h * W, start0 + j * p.dw, p.sw, W, lane, -INFINITY);
        const vi w = (t > best) | (t != t);
        best = w ? t : best;
        bi = w ? col0 + int32_t(j * p.dw + h * W) : bi;
      }
    alignas(64) float yb[kWf];
    alignas(64) int32_t ib[kWf];
    std::memcpy(yb, &best, sizeof best);
    std::memcpy(ib, &bi, sizeof bi);
    const int64_t o = (q * p.OH + oh) * OW + v * kWf;
    std::memcpy(y + o, yb, size_t(n) * sizeof(float));
    for (int64_t l = 0; l < n; ++l) p.idx[o + l] = ib[l];
  });
}

// Taps outside the input read 0, which leaves each lane's sum (taken in the scalar loop's order)
// bit for bit the same; then one division by the lane's divisor.
void avg_fwd_vec(const Pool2dParams& p) {
  const float* x = static_cast<const float*>(p.x);
  float* y = static_cast<float*>(p.y);
  const int64_t H = p.H, W = p.W, OW = p.OW;
  const Windows win(p);
  const std::vector<float> cspan = per_column<float>(p, win, 1.f, [](const Taps& c) { return float(c.span); });
  const std::vector<float> ccount = per_column<float>(p, win, 1.f, [](const Taps& c) { return float(c.count); });
  const vi lane = lane_ids();
  each_output_vector(p, win, [&](int64_t q, int64_t oh, const Taps& r, int64_t v, int64_t n) {
    const float* xp = x + q * H * W;
    vf acc = vf{};
    const int64_t start0 = v * kWf * p.sw - p.pw;
    for (int64_t h = r.first; h < r.first + r.count; ++h)
      for (int64_t j = 0; j < p.kw; ++j) acc += load_cols(xp + h * W, start0 + j, p.sw, W, lane, 0.f);
    vf d;
    if (p.divisor_override != 0) d = vf{} + float(p.divisor_override);
    else if (p.count_include_pad) d = ldv(cspan.data() + v * kWf) * float(r.span);
    else d = ldv(ccount.data() + v * kWf) * float(r.count);
    const vf out = d != 0 ? acc / d : vf{};
    alignas(64) float yb[kWf];
    std::memcpy(yb, &out, sizeof out);
    std::memcpy(y + (q * p.OH + oh) * OW + v * kWf, yb, size_t(n) * sizeof(float));
  });
}
#endif

// Sum of a run of n elements: in several vector sums where the run is long (adaptive pooling
// to 1 x 1 sums whole planes: one add chain was 16x slower than PyTorch's global pooling).
template <class T> inline T run_sum(const T* r, int64_t n) {
#if defined(FASTDL_ISA_avx2) || defined(FASTDL_ISA_avx512)
  if constexpr (std::is_same_v<T, float>) {
    if (n >= 4 * kWf) {
      vf a0{}, a1{}, a2{}, a3{};
      int64_t j = 0;
      for (; j + 4 * kWf <= n; j += 4 * kWf) {
        a0 += ldv(r + j); a1 += ldv(r + j + kWf); a2 += ldv(r + j + 2 * kWf); a3 += ldv(r + j + 3 * kWf);
      }
      const vf a = (a0 + a1) + (a2 + a3);
      T s = 0;
      for (int l = 0; l < kWf; ++l) s += a[l];
      for (; j < n; ++j) s += r[j];
      return s;
    }
  }
#endif
  T s = 0;
  for (int64_t j = 0; j < n; ++j) s += r[j];
  return s;
}

template <class T> void max_bwd(const Pool2dParams& p) {
  const T* gy = static_cast<const T*>(p.gy);
  T* gx = static_cast<T*>(p.gx);
  const int64_t HW = p.H * p.W, O = p.OH * p.OW;
  parallel_for(0, p.planes, plane_grain(p), [&](int64_t p0, int64_t p1) {
    for (int64_t q = p0; q < p1; ++q) {
      T* gp = gx + q * HW;
      std::memset(static_cast<void*>(gp), 0, size_t(HW) * sizeof(T));
      const T* g = gy + q * O;
      const int64_t* ip = p.idx + q * O;
      for (int64_t k = 0; k < O; ++k)
        if (ip[k] >= 0) gp[ip[k]] += g[k];
    }
  });
}

inline int64_t avg_divisor(const Pool2dParams& p, const Taps& r, const Taps& c) {
  if (p.divisor_override != 0) return p.divisor_override;
  if (p.kind == PoolKind::avg && p.count_include_pad) return r.span * c.span;
  return r.count * c.count;
}

template <class T> void avg_fwd(const Pool2dParams& p) {
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  const int64_t H = p.H, W = p.W, OH = p.OH, OW = p.OW;
  const Windows win(p);
  parallel_for(0, p.planes, plane_grain(p), [&](int64_t p0, int64_t p1) {
    for (int64_t q = p0; q < p1; ++q) {
      const T* xp = x + q * H * W;
      T* yp = y + q * OH * OW;
      for (int64_t oh = 0; oh < OH; ++oh) {
        const Taps& r = win.rows[size_t(oh)];
        for (int64_t ow = 0; ow < OW; ++ow) {
          const Taps& c = win.cols[size_t(ow)];
          T s = 0;
          if (c.first == 0 && c.count == W) s = run_sum(xp + r.first * W, r.count * W);  // whole rows: one run
          else
            for (int64_t h = r.first; h < r.first + r.count; ++h) s += run_sum(xp + h * W + c.first, c.count);
          const int64_t d = avg_divisor(p, r, c);
          yp[oh * OW + ow] = d != 0 ? s / T(d) : T(0);
        }
      }
    }
  });
}

template <class T> void avg_bwd(const Pool2dParams& p) {
  const T* gy = static_cast<const T*>(p.gy);
  T* gx = static_cast<T*>(p.gx);
  const int64_t H = p.H, W = p.W, OH = p.OH, OW = p.OW;
  const Windows win(p);
  parallel_for(0, p.planes, plane_grain(p), [&](int64_t p0, int64_t p1) {
    for (int64_t q = p0; q < p1; ++q) {
      T* gp = gx + q * H * W;
      std::memset(static_cast<void*>(gp), 0, size_t(H * W) * sizeof(T));
      const T* g = gy + q * OH * OW;
      for (int64_t oh = 0; oh < OH; ++oh) {
        const Taps& r = win.rows[size_t(oh)];
        for (int64_t ow = 0; ow < OW; ++ow) {
          const Taps& c = win.cols[size_t(ow)];
          const int64_t d = avg_divisor(p, r, c);
          if (d == 0) continue;
          const T v = g[oh * OW + ow] / T(d);
          for (int64_t h = r.first; h < r.first + r.count; ++h) {
            T* row = gp + h * W + c.first;
            for (int64_t j = 0; j < c.count; ++j) row[j] += v;
          }
        }
      }
    }
  });
}

template <class T> void fwd_t(const Pool2dParams& p0) {
  Pool2dParams p = p0;
  if (p.kind == PoolKind::adaptive_max && p.H % p.OH == 0 && p.W % p.OW == 0) {
    // equal windows that tile the input: the fixed window of that size and stride, same taps
    p.kind = PoolKind::max;
    p.kh = p.sh = p.H / p.OH; p.kw = p.sw = p.W / p.OW;
    p.ph = p.pw = 0; p.dh = p.dw = 1;
  }
#if defined(FASTDL_ISA_avx2) || defined(FASTDL_ISA_avx512)
  // int32 lane indices: a plane below 2^31 elements
  if (std::is_same_v<T, float> && p.kind == PoolKind::max && p.sw <= 2 && p.H * p.W < (int64_t(1) << 31)) {
    max_fwd_vec(p);
    return;
  }
  if (std::is_same_v<T, float> && p.kind == PoolKind::avg && p.kw < 4 * kWf) {  // wider windows: run_sum
    avg_fwd_vec(p);
    return;
  }
#endif
  if (p.kind == PoolKind::max || p.kind == PoolKind::adaptive_max) max_fwd<T>(p);
  else avg_fwd<T>(p);
}
template <class T> void bwd_t(const Pool2dParams& p) {
  if (p.kind == PoolKind::max || p.kind == PoolKind::adaptive_max) max_bwd<T>(p);
  else avg_bwd<T>(p);
}

void fwd(const Pool2dParams& p) { if (p.dt == DType::f64) fwd_t<double>(p); else fwd_t<float>(p); }
void bwd(const Pool2dParams& p) { if (p.dt == DType::f64) bwd_t<double>(p); else bwd_t<float>(p); }

}  // namespace

const PoolKernels& pool_table() {
  static const PoolKernels t{fwd, bwd};
  return t;
}

}  // namespace fastdl::cpu::FASTDL_ISA_NS
