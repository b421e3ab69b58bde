// Reduction kernels, compiled per ISA. Rows (inner == 1) use 16 independent accumulators
// so the compiler vectorises without reassociating a single chain; columns (inner > 1)
// accumulate whole rows of `inner` at a time.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/parallel.h"
#include "cpu/loops.h"
#include "cpu/reduce.h"
#include "cpu/simd/rows.h"
#include "cpu/wrap.h"

namespace fastdl::cpu::FASTDL_ISA_NS {
namespace {

template <class T> using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

template <class T> Acc<T> row_sum(const T* __restrict x, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    double total = 0;
    for (int64_t b = 0; b < n; b += 4096) {
      int64_t e = b + 4096 < n ? b + 4096 : n, i = b;
      float acc[16] = {};
      for (; i + 16 <= e; i += 16)
        for (int j = 0; j < 16; ++j) acc[j] += x[i + j];
      double s = 0;
      for (int j = 0; j < 16; ++j) s += acc[j];
      for (; i < e; ++i) s += x[i];
      total += s;
    }
    return total;
  } else {
    Acc<T> acc[8] = {};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
      for (int j = 0; j < 8; ++j) acc[j] += Acc<T>(x[i + j]);
    Acc<T> s = 0;
    for (int j = 0; j < 8; ++j) s += acc[j];
    for (; i < n; ++i) s += Acc<T>(x[i]);
    return s;
  }
}

// Product of a row in 8 independent lanes (one serial chain ran 10x PyTorch's time); integers
// wrap, which is associative too.
template <class T> Acc<T> row_prod(const T* __restrict x, int64_t n) {
  Acc<T> acc[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] = wrap_mul(acc[j], Acc<T>(x[i + j]));
  Acc<T> p = 1;
  for (int j = 0; j < 8; ++j) p = wrap_mul(p, acc[j]);
  for (; i < n; ++i) p = wrap_mul(p, Acc<T>(x[i]));
  return p;
}

template <class T> inline bool isnan_t(T v) { if constexpr (std::is_floating_point_v<T>) return v != v; else return false; }

// Index of the first max (MX) or min; a NaN counts as the extreme (first NaN wins).
template <class T, bool MX> int64_t row_arg_extreme(const T* __restrict x, int64_t n);

// max (MX) or min of a row with NaN propagating: 16 independent lanes (explicit vectors for
// float/double on the SIMD builds), then a NaN flag per lane.
template <class T, bool MX> T row_extreme(const T* __restrict x, int64_t n) {
#if defined(FASTDL_ISA_avx512) || defined(FASTDL_ISA_avx2)
  if constexpr (std::is_same_v<T, float>) return rows::simd_extreme<rows::XF, MX>(x, n);
  if constexpr (std::is_same_v<T, double>) return rows::simd_extreme<rows::XD, MX>(x, n);
#endif
  T acc[16];
  bool nan[16] = {};
  const int64_t head = n < 16 ? n : 16;
  for (int j = 0; j < 16; ++j) acc[j] = x[j < head ? j : 0];
  int64_t i = head;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) {
      T v = x[i + j];
      acc[j] = (MX ? v > acc[j] : v < acc[j]) ? v : acc[j];
      nan[j] |= isnan_t(v);
    }
  T m = acc[0];
  bool any = isnan_t(acc[0]);
  for (int j = 1; j < 16; ++j) { m = (MX ? acc[j] > m : acc[j] < m) ? acc[j] : m; any |= nan[j] || isnan_t(acc[j]); }
  for (; i < n; ++i) { m = (MX ? x[i] > m : x[i] < m) ? x[i] : m; any |= isnan_t(x[i]); }
  if constexpr (std::is_floating_point_v<T>) return any ? T(NAN) : m;
  else return m;
}

template <class T, bool MX> int64_t row_arg_extreme(const T* __restrict x, int64_t n) {
#if defined(FASTDL_ISA_avx512) || defined(FASTDL_ISA_avx2)
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    using X = std::conditional_t<std::is_same_v<T, float>, rows::XF, rows::XD>;
    T m = rows::simd_extreme<X, MX>(x, n);  // vector pass for the value, then find its first index
    if (m == m) return rows::simd_find<X>(x, n, m);
    for (int64_t i = 0; i < n; ++i) if (x[i] != x[i]) return i;
  }
#endif
  T m = x[0];
  int64_t k = 0;
  for (int64_t i = 1; i < n && !isnan_t(m); ++i) {
    T v = x[i];
    if ((MX ? v > m : v < m) || isnan_t(v)) { m = v; k = i; }
  }
  return k;
}

template <class T>
void reduce_t(ReduceOp op, char* cout, const char* cin, int64_t outer, int64_t n, int64_t inner) {
  const T* in = reinterpret_cast<const T*>(cin);
  T* out = reinterpret_cast<T*>(cout);
  int64_t* iout = reinterpret_cast<int64_t*>(cout);
  int64_t work = outer * n * inner;
  int64_t grain = work > 0 ? std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(1, n * inner)) : 1;
  if (inner == 1 && outer < get_num_threads() && n >= 4 * kParallelGrain && !in_parallel_region()) {
    // Few long rows (a full reduction): split each row across the pool, then combine the
    // per-chunk results in chunk order (deterministic, first index wins for arg*).
    const int C = get_num_threads();
    const int64_t chunk = (n + C - 1) / C;
    std::vector<Acc<T>> acc(C);
    std::vector<T> best(C);
    std::vector<int64_t> bi(C);
    for (int64_t o = 0; o < outer; ++o) {
      const T* x = in + o * n;
      parallel_for(0, C, 1, [&](int64_t cb, int64_t ce) {
        for (int64_t c = cb; c < ce; ++c) {
          int64_t lo = c * chunk, hi = std::min(n, lo + chunk);
          if (lo >= hi) { bi[c] = -1; acc[c] = op == ReduceOp::prod ? 1 : 0; continue; }
          if (op == ReduceOp::sum) { acc[c] = row_sum(x + lo, hi - lo); continue; }
          if (op == ReduceOp::prod) { Acc<T> p = 1; for (int64_t i = lo; i < hi; ++i) p = wrap_mul(p, Acc<T>(x[i])); acc[c] = p; continue; }
          int64_t k = lo + (op == ReduceOp::max || op == ReduceOp::argmax ? row_arg_extreme<T, true>(x + lo, hi - lo)
                                                                          : row_arg_extreme<T, false>(x + lo, hi - lo));
          best[c] = x[k]; bi[c] = k;
        }
      });
      if (op == ReduceOp::sum || op == ReduceOp::prod) {
        Acc<T> r = op == ReduceOp::sum ? 0 : 1;
        for (int c = 0; c < C; ++c) { if (op == ReduceOp::sum) r += acc[c]; else if (c * chunk < n) r = wrap_mul(r, acc[c]); }
        out[o] = T(r);
        continue;
      }
      bool mx = op == ReduceOp::max || op == ReduceOp::argmax;
      T m = best[0];
      int64_t k = bi[0];
      for (int c = 1; c < C; ++c) {
        if (bi[c] < 0 || isnan_t(m)) continue;
        T v = best[c];
        if ((mx ? v > m : v < m) || isnan_t(v)) { m = v; k = bi[c]; }
      }
      if (op == ReduceOp::argmax || op == ReduceOp::argmin) iout[o] = k;
      else out[o] = m;
    }
    return;
  }
  if (inner == 1) {
    parallel_for(0, outer, grain, [&](int64_t ob, int64_t oe) {
      for (int64_t o = ob; o < oe; ++o) {
        const T* x = in + o * n;
        switch (op) {
          case ReduceOp::sum: out[o] = T(row_sum(x, n)); break;
          case ReduceOp::prod: out[o] = T(row_prod(x, n)); break;
          case ReduceOp::max: out[o] = row_extreme<T, true>(x, n); break;
          case ReduceOp::min: out[o] = row_extreme<T, false>(x, n); break;
          case ReduceOp::argmax: iout[o] = row_arg_extreme<T, true>(x, n); break;
          case ReduceOp::argmin: iout[o] = row_arg_extreme<T, false>(x, n); break;
          default: break;
        }
      }
    });
    return;
  }
  // Column reductions: split over outer x inner-chunks, narrower chunks when there are few
  // (a bias gradient: one block of rows) so every thread gets a share.
  int64_t chunk = 256;
  if (outer * ((inner + chunk - 1) / chunk) < 2 * get_num_threads()) {
    int64_t parts = (2 * get_num_threads() + outer - 1) / outer;
    chunk = std::min<int64_t>(256, std::max<int64_t>(32, ((inner + parts - 1) / parts + 15) / 16 * 16));
  }
  int64_t nchunks = (inner + chunk - 1) / chunk;
  parallel_for(0, outer * nchunks, std::max<int64_t>(1, grain / nchunks), [&](int64_t tb, int64_t te) {
    std::vector<Acc<T>> acc(chunk);
    std::vector<T> best(chunk);
    std::vector<int64_t> bi(chunk);
    for (int64_t t = tb; t < te; ++t) {
      int64_t o = t / nchunks, j0 = (t % nchunks) * chunk, w = std::min(chunk, inner - j0);
      const T* base = in + o * n * inner + j0;
      if (std::is_same_v<T, float> && op == ReduceOp::sum) {
        // float32: blocks of 8 rows summed in float (in L1), each block added in double
        T blk[256];
        for (int64_t j = 0; j < w; ++j) acc[j] = 0;
        for (int64_t i0 = 0; i0 < n; i0 += 8) {
          const int64_t i1 = std::min(n, i0 + 8);
          const T* x = base + i0 * inner;
          for (int64_t j = 0; j < w; ++j) blk[j] = x[j];
          for (int64_t i = i0 + 1; i < i1; ++i) {
            x = base + i * inner;
            for (int64_t j = 0; j < w; ++j) blk[j] += x[j];
          }
          for (int64_t j = 0; j < w; ++j) acc[j] += Acc<T>(blk[j]);
        }
        for (int64_t j = 0; j < w; ++j) out[o * inner + j0 + j] = T(acc[j]);
      } else if (op == ReduceOp::sum || op == ReduceOp::prod) {
        Acc<T> init = op == ReduceOp::sum ? 0 : 1;
        for (int64_t j = 0; j < w; ++j) acc[j] = init;
        for (int64_t i = 0; i < n; ++i) {
          const T* x = base + i * inner;
          if (op == ReduceOp::sum) for (int64_t j = 0; j < w; ++j) acc[j] += Acc<T>(x[j]);
          else for (int64_t j = 0; j < w; ++j) acc[j] = wrap_mul(acc[j], Acc<T>(x[j]));
        }
        for (int64_t j = 0; j < w; ++j) out[o * inner + j0 + j] = T(acc[j]);
      } else {
        bool mx = op == ReduceOp::max || op == ReduceOp::argmax;
        for (int64_t j = 0; j < w; ++j) { best[j] = base[j]; bi[j] = 0; }
        for (int64_t i = 1; i < n; ++i) {
          const T* x = base + i * inner;
          for (int64_t j = 0; j < w; ++j) {
            T v = x[j], m = best[j];
            bool take = !isnan_t(m) && ((mx ? v > m : v < m) || isnan_t(v));
            best[j] = take ? v : m;
            bi[j] = take ? i : bi[j];
          }
        }
        if (op == ReduceOp::argmax || op == ReduceOp::argmin)
          for (int64_t j = 0; j < w; ++j) iout[o * inner + j0 + j] = bi[j];
        else
          for (int64_t j = 0; j < w; ++j) out[o * inner + j0 + j] = best[j];
      }
    }
  });
}

void reduce_k(ReduceOp op, DType dt, char* out, const char* in, int64_t outer, int64_t n, int64_t inner) {
  switch (dt) {
    case DType::f32: return reduce_t<float>(op, out, in, outer, n, inner);
    case DType::f64: return reduce_t<double>(op, out, in, outer, n, inner);
    case DType::i32: return reduce_t<int32_t>(op, out, in, outer, n, inner);
    case DType::i64: return reduce_t<int64_t>(op, out, in, outer, n, inner);
    case DType::b8: case DType::u8: return reduce_t<uint8_t>(op, out, in, outer, n, inner);
    case DType::i8: return reduce_t<int8_t>(op, out, in, outer, n, inner);
    case DType::i16: return reduce_t<int16_t>(op, out, in, outer, n, inner);
    default: return;
  }
}

// Running sums along the middle dim of a contiguous (outer, n, inner) block, accumulating in Acc
// (double for floats, as PyTorch's CPU accumulate type). Each sum is a serial chain, so a task
// carries many at once: a chunk of up to 256 columns (inner > 1), or 8 rows walked side by side
// (inner == 1), keeping the adds' latency hidden. Tasks run in parallel.
template <class T, class Acc> void cumsum_t(const char* cx, char* cy, int64_t outer, int64_t n, int64_t inner, bool rev) {
  const T* x = reinterpret_cast<const T*>(cx);
  T* y = reinterpret_cast<T*>(cy);
  if (inner == 1) {
    // Rows of R walked side by side through a transposed buffer, C columns at a time: the chains
    // read the buffer, never x and y directly, whose rows lie n elements apart (with n a multiple
    // of 1024 floats every load aliased a pending store 4 KB away: 9x slower, on the allocator's
    // luck).
    constexpr int64_t R = 8, C = 64;
    parallel_for(0, (outer + R - 1) / R, std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(n * R, 1)),
                 [&](int64_t g0, int64_t g1) {
      alignas(64) Acc buf[C][R];
      for (int64_t g = g0; g < g1; ++g) {
        const int64_t r0 = g * R, rows = std::min(R, outer - r0);
        Acc acc[R] = {};
        if (rows < R) for (int64_t j = 0; j < C; ++j) for (int64_t r = rows; r < R; ++r) buf[j][r] = Acc(0);
        for (int64_t k = 0; k * C < n; ++k) {  // column chunk [b, e), from the end when rev
          const int64_t e = rev ? n - k * C : std::min(n, (k + 1) * C), b = rev ? std::max<int64_t>(0, e - C) : k * C;
          const int64_t w = e - b;
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t j = 0; j < w; ++j) buf[j][r] = Acc(x[(r0 + r) * n + b + j]);
          for (int64_t s = 0; s < w; ++s) {
            const int64_t j = rev ? w - 1 - s : s;
            for (int64_t r = 0; r < R; ++r) { acc[r] += buf[j][r]; buf[j][r] = acc[r]; }
          }
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t j = 0; j < w; ++j) y[(r0 + r) * n + b + j] = T(buf[j][r]);
        }
      }
    });
    return;
  }
  const int64_t chunk = 256, nchunks = (inner + chunk - 1) / chunk;
  parallel_for(0, outer * nchunks, std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(n * std::min(inner, chunk), 1)),
               [&](int64_t t0, int64_t t1) {
    Acc acc[256];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t o = t / nchunks, c0 = (t % nchunks) * chunk, w = std::min(chunk, inner - c0);
      const T* xs = x + o * n * inner + c0;
      T* ys = y + o * n * inner + c0;
      for (int64_t c = 0; c < w; ++c) acc[c] = 0;
      for (int64_t s = 0; s < n; ++s) {
        const int64_t i = rev ? n - 1 - s : s;
        for (int64_t c = 0; c < w; ++c) { acc[c] += Acc(xs[i * inner + c]); ys[i * inner + c] = T(acc[c]); }
      }
    }
  });
}

void cumsum_k(DType dt, char* out, const char* in, int64_t outer, int64_t n, int64_t inner, bool rev) {
  switch (dt) {
    case DType::f32: return cumsum_t<float, double>(in, out, outer, n, inner, rev);
    case DType::f64: return cumsum_t<double, double>(in, out, outer, n, inner, rev);
    case DType::i64: return cumsum_t<int64_t, int64_t>(in, out, outer, n, inner, rev);
    default: return;
  }
}

}  // namespace

const ReduceKernels& reduce_table() {
  static const ReduceKernels k{reduce_k, cumsum_k};
  return k;
}

}  // namespace fastdl::cpu::FASTDL_ISA_NS
