// 2-D pooling kernels (cpu/pool.h), compiled per ISA; the ref build is the scalar reference.
// Planes (n, c) run in parallel over the pool, each plane written by one thread, so backward
// scatters into its own gx plane without atomics. Windows are clipped to the input once per
// output row / column once per call (no divisions per output), so the tap loops carry no bounds
// tests; 3-wide max windows (ResNet's stem pool) take an unrolled column loop.
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/parallel.h"
#include "cpu/pool.h"

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

template <class T> inline bool wins(T v, T best) { return v > best || v != v; }

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
          for (int64_t h = r.first; h < r.first + r.count; ++h) {
            const T* row = xp + h * W + c.first;
            for (int64_t j = 0; j < c.count; ++j) s += row[j];
          }
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

template <class T> void fwd_t(const Pool2dParams& p) {
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
