// Message passing kernels, compiled per ISA (the ref build is the scalar reference). A row's
// result is accumulated in place in its output row (which stays in L1) entry after entry, the
// feature loop vectorised; the source rows of the next entries are prefetched, since the
// gather is bound by memory latency. Rows are split over threads by balanced_bounds; each row
// is computed by exactly one thread in CSR order, so results are bitwise the same for any
// thread count, and nothing is written by two threads (the backward writes gw[eid] once per entry).
#include <cmath>
#include <type_traits>
#include <vector>

#include "core/parallel.h"
#include "cpu/message_passing.h"
#include "cpu/simd/vmath.h"

namespace fastdl::cpu::FASTDL_ISA_NS {
namespace {

constexpr int64_t kPrefetch = 8;  // entries ahead

// exp with results below FLT_MIN flushed to 0: no denormal arithmetic (vm::exp_ftz_f).
template <class T> inline T t_exp(T x) { if constexpr (std::is_same_v<T, float>) return vm::exp_ftz_f(x); else return std::exp(x); }

template <class T> inline void prefetch_row(const T* p, int64_t n) {
#if defined(__GNUC__)
  const char* c = reinterpret_cast<const char*>(p);
  for (int64_t b = 0; b < n * int64_t(sizeof(T)); b += 64) __builtin_prefetch(c + b, 0, 3);
#endif
}

// Runs f(r0, r1) over row ranges of about equal (entries + rows) work, one range per thread.
template <class Fn> void over_rows(const CsrView& c, int64_t F, const Fn& f) {
  const int64_t work = (c.nnz + c.rows) * std::max<int64_t>(F, 1);
  int parts = int(std::min<int64_t>(get_num_threads(), std::max<int64_t>(1, work / 32768)));
  if (parts <= 1 || in_parallel_region()) { f(int64_t(0), c.rows); return; }
  std::vector<int64_t> b(size_t(parts) + 1);
  balanced_bounds(c.rowptr, c.rows, parts, b.data());
  parallel_for(0, parts, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t q = p0; q < p1; ++q) f(b[size_t(q)], b[size_t(q) + 1]);
  });
}

// o[0:n] += a * x[0:n]
template <class T> inline void axpy(T* __restrict o, T a, const T* __restrict x, int64_t n) {
  for (int64_t f = 0; f < n; ++f) o[f] += a * x[f];
}
template <class T> inline void add_row(T* __restrict o, const T* __restrict x, int64_t n) {
  for (int64_t f = 0; f < n; ++f) o[f] += x[f];
}
// <a, b> with 16 independent partial sums (vectorises without reassociating one chain).
template <class T> inline T dot(const T* __restrict a, const T* __restrict b, int64_t n) {
  T acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += a[i + j] * b[i + j];
  for (int j = 0; i + j < n; ++j) acc[j] += a[i + j] * b[i + j];
  T s = 0;
  for (int j = 0; j < 16; ++j) s += acc[j];
  return s;
}

template <class T, bool Max> inline bool better(T v, T cur) {
  return (Max ? v > cur : v < cur) || (v != v && cur == cur);  // NaN wins and stays
}

template <class T, bool Max>
inline void extreme_update(T* __restrict o, int32_t* __restrict a, T w, const T* __restrict x, int64_t n, int32_t e) {
  for (int64_t f = 0; f < n; ++f) {
    const T v = w * x[f];
    const bool t = better<T, Max>(v, o[f]);
    o[f] = t ? v : o[f];
    a[f] = t ? e : a[f];
  }
}

template <class T> void gather_fwd_t(const MpParams& p) {
  const int64_t F = p.F, H = p.H, C = H ? F / H : F;
  const T* x = static_cast<const T*>(p.src);
  const T* w = static_cast<const T*>(p.w);
  T* out = static_cast<T*>(p.out);
  const int64_t *rp = p.csr.rowptr, *col = p.csr.col, *eid = p.csr.eid;
  const int64_t nnz = p.csr.nnz;
  over_rows(p.csr, F, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      T* __restrict o = out + r * F;
      const int64_t k0 = rp[r], k1 = rp[r + 1];
      if (p.reduce == MpReduce::sum || p.reduce == MpReduce::mean) {
        for (int64_t f = 0; f < F; ++f) o[f] = 0;
        for (int64_t k = k0; k < k1; ++k) {
          if (k + kPrefetch < nnz) {
            prefetch_row(x + col[k + kPrefetch] * F, F);
            if (w) __builtin_prefetch(w + eid[k + kPrefetch] * H, 0, 3);
          }
          const T* xr = x + col[k] * F;
          if (!w) add_row(o, xr, F);
          else if (H == 1) axpy(o, w[eid[k]], xr, F);
          else for (int64_t h = 0; h < H; ++h) axpy(o + h * C, w[eid[k] * H + h], xr + h * C, C);
        }
        if (p.reduce == MpReduce::mean && k1 > k0) {
          const T d = T(k1 - k0);
          for (int64_t f = 0; f < F; ++f) o[f] /= d;
        }
        continue;
      }
      int32_t* __restrict a = p.arg + r * F;
      if (k0 == k1) {
        for (int64_t f = 0; f < F; ++f) { o[f] = 0; a[f] = -1; }
        continue;
      }
      const T init = p.reduce == MpReduce::max ? -INFINITY : INFINITY;
      for (int64_t f = 0; f < F; ++f) { o[f] = init; a[f] = -1; }
      const bool mx = p.reduce == MpReduce::max;
      for (int64_t k = k0; k < k1; ++k) {
        if (k + kPrefetch < nnz) {
          prefetch_row(x + col[k + kPrefetch] * F, F);
          if (w) __builtin_prefetch(w + eid[k + kPrefetch] * H, 0, 3);
        }
        const T* xr = x + col[k] * F;
        const int32_t e = int32_t(eid[k]);
        for (int64_t h = 0; h < H; ++h) {
          const T wv = w ? w[e * H + h] : T(1);
          if (mx) extreme_update<T, true>(o + h * C, a + h * C, wv, xr + h * C, C, e);
          else extreme_update<T, false>(o + h * C, a + h * C, wv, xr + h * C, C, e);
        }
      }
      // a row whose values were all -inf (max) keeps arg -1 only if nothing beat the init:
      // give those features the first entry, as the value is then exactly the init
      for (int64_t f = 0; f < F; ++f)
        if (a[f] < 0) a[f] = int32_t(eid[k0]);
    }
  });
}

// Over the transposed CSR: row j = a forward source; entries = its out-edges (target col, eid).
template <class T> void gather_bwd_t(const MpParams& p) {
  const int64_t F = p.F, H = p.H, C = H ? F / H : F;
  const T* g = static_cast<const T*>(p.src);
  const T* w = static_cast<const T*>(p.w);
  const T* sc = static_cast<const T*>(p.scale);
  const T* x = static_cast<const T*>(p.x);
  T* gx = static_cast<T*>(p.out);
  T* gw = static_cast<T*>(p.gw);
  const int64_t *rp = p.csr.rowptr, *col = p.csr.col, *eid = p.csr.eid;
  const int64_t nnz = p.csr.nnz;
  const bool ext = p.reduce == MpReduce::max || p.reduce == MpReduce::min;
  over_rows(p.csr, F, [&](int64_t r0, int64_t r1) {
    for (int64_t j = r0; j < r1; ++j) {
      T* __restrict gxr = gx ? gx + j * F : nullptr;
      const T* xr = x ? x + j * F : nullptr;
      if (gxr) for (int64_t f = 0; f < F; ++f) gxr[f] = 0;
      for (int64_t k = rp[j]; k < rp[j + 1]; ++k) {
        if (k + kPrefetch < nnz) {
          prefetch_row(g + col[k + kPrefetch] * F, F);
          if (w) __builtin_prefetch(w + eid[k + kPrefetch] * H, 0, 3);
          if (gw) __builtin_prefetch(gw + eid[k + kPrefetch] * H, 1, 3);
          if (sc) __builtin_prefetch(sc + col[k + kPrefetch], 0, 3);
        }
        const int64_t i = col[k], e = eid[k];
        const T* gr = g + i * F;
        const T s = sc ? sc[i] : T(1);
        if (!ext) {
          for (int64_t h = 0; h < H; ++h) {
            const T wv = w ? w[e * H + h] : T(1);
            if (gxr) {
              if (!w && !sc) add_row(gxr + h * C, gr + h * C, C);
              else axpy(gxr + h * C, wv * s, gr + h * C, C);
            }
            if (gw) gw[e * H + h] = s * dot(gr + h * C, xr + h * C, C);
          }
          continue;
        }
        const int32_t* ar = p.arg + i * F;
        const int32_t e32 = int32_t(e);
        for (int64_t h = 0; h < H; ++h) {
          const T wv = w ? w[e * H + h] : T(1);
          const int64_t o = h * C;
          if (gxr)
            for (int64_t c = 0; c < C; ++c) gxr[o + c] += ar[o + c] == e32 ? wv * gr[o + c] : T(0);
          if (gw) {
            T acc = 0;
            for (int64_t c = 0; c < C; ++c) acc += ar[o + c] == e32 ? gr[o + c] * xr[o + c] : T(0);
            gw[e * H + h] = acc;
          }
        }
      }
    }
  });
}

template <class T> void seg_softmax_fwd_t(const SegSoftmaxParams& p) {
  const int64_t H = p.H;
  const T* s = static_cast<const T*>(p.s);
  T* y = static_cast<T*>(p.y);
  const int64_t *rp = p.csr.rowptr, *eid = p.csr.eid;
  over_rows(p.csr, H, [&](int64_t r0, int64_t r1) {
    std::vector<T> m(static_cast<size_t>(H)), z(static_cast<size_t>(H));
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t k0 = rp[r], k1 = rp[r + 1];
      if (k0 == k1) continue;
      for (int64_t h = 0; h < H; ++h) { m[size_t(h)] = -INFINITY; z[size_t(h)] = 0; }
      for (int64_t k = k0; k < k1; ++k) {
        const T* sr = s + eid[k] * H;
        for (int64_t h = 0; h < H; ++h) m[size_t(h)] = better<T, true>(sr[h], m[size_t(h)]) ? sr[h] : m[size_t(h)];
      }
      for (int64_t k = k0; k < k1; ++k) {
        const T* sr = s + eid[k] * H;
        T* yr = y + eid[k] * H;
        for (int64_t h = 0; h < H; ++h) { yr[h] = t_exp(sr[h] - m[size_t(h)]); z[size_t(h)] += yr[h]; }
      }
      for (int64_t k = k0; k < k1; ++k) {
        T* yr = y + eid[k] * H;
        for (int64_t h = 0; h < H; ++h) yr[h] /= z[size_t(h)];
      }
    }
  });
}

template <class T> void seg_softmax_bwd_t(const SegSoftmaxParams& p) {
  const int64_t H = p.H;
  const T* y = static_cast<const T*>(p.y);
  const T* g = static_cast<const T*>(p.g);
  T* gs = static_cast<T*>(p.gs);
  const int64_t *rp = p.csr.rowptr, *eid = p.csr.eid;
  over_rows(p.csr, H, [&](int64_t r0, int64_t r1) {
    std::vector<T> d(static_cast<size_t>(H));
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t k0 = rp[r], k1 = rp[r + 1];
      for (int64_t h = 0; h < H; ++h) d[size_t(h)] = 0;
      for (int64_t k = k0; k < k1; ++k) {
        const T *yr = y + eid[k] * H, *gr = g + eid[k] * H;
        for (int64_t h = 0; h < H; ++h) d[size_t(h)] += yr[h] * gr[h];
      }
      for (int64_t k = k0; k < k1; ++k) {
        const T *yr = y + eid[k] * H, *gr = g + eid[k] * H;
        T* o = gs + eid[k] * H;
        for (int64_t h = 0; h < H; ++h) o[h] = yr[h] * (gr[h] - d[size_t(h)]);
      }
    }
  });
}

void gather_fwd_k(DType dt, const MpParams& p) { if (dt == DType::f32) gather_fwd_t<float>(p); else gather_fwd_t<double>(p); }
void gather_bwd_k(DType dt, const MpParams& p) { if (dt == DType::f32) gather_bwd_t<float>(p); else gather_bwd_t<double>(p); }
void seg_fwd_k(DType dt, const SegSoftmaxParams& p) {
  if (dt == DType::f32) seg_softmax_fwd_t<float>(p); else seg_softmax_fwd_t<double>(p);
}
void seg_bwd_k(DType dt, const SegSoftmaxParams& p) {
  if (dt == DType::f32) seg_softmax_bwd_t<float>(p); else seg_softmax_bwd_t<double>(p);
}

}  // namespace

const MpKernels& mp_table() {
  static const MpKernels k{gather_fwd_k, gather_bwd_k, seg_fwd_k, seg_bwd_k};
  return k;
}

}  // namespace fastdl::cpu::FASTDL_ISA_NS
