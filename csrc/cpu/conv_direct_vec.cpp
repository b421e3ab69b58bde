// 2-D convolution, direct loops for layers with few channels per group (depthwise; LeNet's
// c1 with one input channel), where the GEMM's 6-16 row tiles would run mostly empty. Unit
// stride runs on zero-padded copies of the planes with whole vectors in registers; other
// strides walk rows the compiler vectorises. Compiled per ISA (avx2, avx512); conv_vec.cpp
// picks these or the implicit GEMM.
#if defined(FASTDL_ISA_avx2) || defined(FASTDL_ISA_avx512)
#include <type_traits>

#include "cpu/conv_vec.h"
#include "cpu/simd/transpose.h"

namespace fastdl::cpu::FASTDL_ISA_NS {
namespace {
using namespace cv;

// f(std::integral_constant<int, n>) for a run length n in [1, N]: the length as a compile-time
// count keeps a run's accumulators in registers.
template <int N, class F>
inline void with_count(int n, const F& f) {
  if constexpr (N > 1) {
    if (n < N) return with_count<N - 1>(n, f);
  }
  f(std::integral_constant<int, N>{});
}

// dst (Hp x Wp) = the plane x (H x W) placed at row ph, column pw, zeros around (stride 1's
// direct loops then read every tap of a whole vector run without bounds checks).
template <class T>
void pad_plane(const T* x, int64_t H, int64_t W, int64_t ph, int64_t pw, int64_t Hp, int64_t Wp, T* dst) {
  for (int64_t i = 0; i < Hp; ++i) {
    T* d = dst + i * Wp;
    const int64_t ih = i - ph;
    if (ih < 0 || ih >= H) { std::fill(d, d + Wp, T(0)); continue; }
    const int64_t lo = std::clamp<int64_t>(pw, 0, Wp), hi = std::clamp<int64_t>(pw + W, lo, Wp);
    std::fill(d, d + lo, T(0));
    std::memcpy(d + lo, x + ih * W + (lo - pw), size_t(hi - lo) * sizeof(T));
    std::fill(d + hi, d + Wp, T(0));
  }
}

// One run of NQ vectors of an output row: y[0 : left) = bias + sum over taps of w * the padded
// input xr (its row 0 / column 0 is the run's first tap), in registers throughout.
template <class V, int NQ, class T>
inline void direct_run(const Conv2dParams& p, const T* xr, int64_t Wp, int64_t plane, const T* wk, T bias, T* yr,
                       int64_t left) {
  constexpr int W = V::W;
  const int64_t Cg = p.C / p.groups, RS = p.R * p.S;
  typename V::R acc[NQ];
#pragma GCC unroll 4
  for (int q = 0; q < NQ; ++q) acc[q] = V::set1(bias);
  for (int64_t c = 0; c < Cg; ++c)
    for (int64_t r = 0; r < p.R; ++r) {
      const T* xs = xr + c * plane + r * p.dh * Wp;
      const T* wr = wk + c * RS + r * p.S;
      for (int64_t s = 0; s < p.S; ++s, xs += p.dw) {
        const typename V::R wv = V::set1(wr[s]);
#pragma GCC unroll 4
        for (int q = 0; q < NQ; ++q) acc[q] = V::fma(wv, V::load(xs + q * W), acc[q]);
      }
    }
#pragma GCC unroll 4
  for (int q = 0; q < NQ; ++q) {
    if (left >= (q + 1) * W) {
      V::store(yr + q * W, acc[q]);
    } else {
      alignas(64) T tmp[W];
      V::store(tmp, acc[q]);
      std::memcpy(yr + q * W, tmp, size_t(left - q * W) * sizeof(T));
    }
  }
}

// Stride 1, the flat form. Each padded input plane (Hp x Wp, Wp = OW + (S - 1) dw, not rounded
// up) lies flat at a plane stride P (a multiple of W, zeros past Hp Wp), so output position
// i = oh Wp + ow of the flat grid reads tap (r, s) at i + r dh Wp + s dw: whole vectors at unit
// stride for any plane width, the grid's columns past OW computed and dropped. A task's output
// planes (nv vectors each) are walked as one sequence in runs of up to NQ vectors, independent
// accumulators in registers across every tap; a run spans several planes where planes are
// small (a 4x4 plane of a 7x7 depthwise layer is 3 vectors), so FMA chains never wait on each
// other (one vector per output row did: a 7x7 depthwise layer on 8x8 planes ran at 0.17x
// PyTorch). Same: the whole run lies in one output plane (one weight per tap for all of it).
template <class V, int NQ, bool Same, class T>
inline void flat_run(const Conv2dParams& p, int64_t Wp, int64_t P, const T* const* xq, const T* const* wq,
                     const T* bq, T* yr) {
  constexpr int W = V::W;
  const int64_t Cg = p.C / p.groups, RS = p.R * p.S;
  typename V::R acc[NQ];
#pragma GCC unroll 8
  for (int q = 0; q < NQ; ++q) acc[q] = V::set1(bq[Same ? 0 : q]);
  for (int64_t c = 0; c < Cg; ++c)
    for (int64_t r = 0; r < p.R; ++r)
      for (int64_t s = 0; s < p.S; ++s) {
        const int64_t off = c * P + r * p.dh * Wp + s * p.dw, wi = c * RS + r * p.S + s;
        if constexpr (Same) {
          const typename V::R wv = V::set1(wq[0][wi]);
#pragma GCC unroll 8
          for (int q = 0; q < NQ; ++q) acc[q] = V::fma(wv, V::load(xq[0] + off + q * W), acc[q]);
        } else {
#pragma GCC unroll 8
          for (int q = 0; q < NQ; ++q) acc[q] = V::fma(V::set1(wq[q][wi]), V::load(xq[q] + off), acc[q]);
        }
      }
#pragma GCC unroll 8
  for (int q = 0; q < NQ; ++q) V::store(yr + q * W, acc[q]);
}

template <class T>
void fwd_flat(const Conv2dParams& p) {
  using V = PV<T>;
  constexpr int W = V::W, NQ = 6;
  const T* x = static_cast<const T*>(p.x);
  const T* w = static_cast<const T*>(p.w);
  const T* b = static_cast<const T*>(p.b);
  T* y = static_cast<T*>(p.y);
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G, HW = p.H * p.W, OHW = p.OH * p.OW, RS = p.R * p.S;
  const int64_t Hp = p.OH + (p.R - 1) * p.dh, Wp = p.OW + (p.S - 1) * p.dw;
  const int64_t P = round_up(Hp * Wp + W + (p.S - 1) * p.dw, W);  // the last vector's taps stay inside
  const int64_t nv = ceil_div(p.OH * Wp, W);                      // output vectors per plane
  // Groups per task: their padded input planes within ~24 KiB (L1), at least one.
  const int64_t gb = std::clamp<int64_t>(24576 / int64_t(Cg * P * sizeof(T)), 1, G);
  const int64_t blocks = ceil_div(G, gb), per = gb * (Cg * P + Kg * nv * W);
  const int nt = threads_for(p.N * p.K * OHW * Cg * RS >> 15);
  Scratch scratch(size_t(per) * sizeof(T) * size_t(nt));
  run_tasks(p.N * blocks, nt, [&](int64_t t, int th) {
    const int64_t n = t / blocks, g0 = t % blocks * gb, ng = std::min(gb, G - g0);
    T* xp = scratch.as<T>() + per * th;
    T* yp = xp + gb * Cg * P;
    for (int64_t c = 0; c < ng * Cg; ++c) {
      T* d = xp + c * P;
      pad_plane(x + (n * p.C + g0 * Cg + c) * HW, p.H, p.W, p.ph, p.pw, Hp, Wp, d);
      std::fill(d + Hp * Wp, d + P, T(0));
    }
    const int64_t nvec = ng * Kg * nv;
    for (int64_t v0 = 0; v0 < nvec; v0 += NQ) {
      const int nq = int(std::min<int64_t>(NQ, nvec - v0));
      const T* xq[NQ];
      const T* wq[NQ];
      T bq[NQ];
      for (int q = 0; q < nq; ++q) {
        const int64_t o = (v0 + q) / nv, j = (v0 + q) % nv, k = g0 * Kg + o;  // output plane o of the task
        xq[q] = xp + (o / Kg) * Cg * P + j * W;
        wq[q] = w + k * Cg * RS;
        bq[q] = b ? b[k] : T(0);
      }
      const bool same = nq == NQ && v0 / nv == (v0 + NQ - 1) / nv;
      T* yr = yp + v0 * W;
      if (same) { flat_run<V, NQ, true>(p, Wp, P, xq, wq, bq, yr); continue; }
      with_count<NQ>(nq, [&](auto k) { flat_run<V, decltype(k)::value, false>(p, Wp, P, xq, wq, bq, yr); });
    }
    for (int64_t o = 0; o < ng * Kg; ++o)  // the flat grid's rows without their extra columns
      for (int64_t oh = 0; oh < p.OH; ++oh)
        std::memcpy(y + (n * p.K + g0 * Kg + o) * OHW + oh * p.OW, yp + o * nv * W + oh * Wp, size_t(p.OW) * sizeof(T));
  });
}

// Depthwise (one input and one output channel per group), channels in the vector lanes: a task
// transposes W channels of one image into a (H, halo + W + halo, W channels) tile, walks the
// output in runs of up to NP pixels of a row (independent accumulators) over only the taps
// whose input row lies inside the plane and whose column lies inside it for some pixel of the
// run (the halo's zeros cover the others), then transposes the (OH, OW, W) result back. Every
// lane does useful work whatever the plane's size, padding taps on small planes are skipped
// (a 7x7 layer on 4x4 planes: 16 taps of 49 are inside), and any stride walks the tile the same
// way (the planes-in-lanes loops only vectorise unit column stride).
// [lo, hi): the taps t < T of one axis whose input index o s - pad + t d lies in [0, I).
inline void taps_inside(int64_t o, int64_t s, int64_t pad, int64_t d, int64_t I, int64_t T, int64_t& lo, int64_t& hi) {
  const int64_t base = o * s - pad;  // input index of tap 0
  lo = base >= 0 ? 0 : std::min<int64_t>(T, (-base + d - 1) / d);
  hi = base > I - 1 ? 0 : std::min<int64_t>(T, (I - 1 - base) / d + 1);
  if (hi < lo) hi = lo;  // none: an empty range within [0, T]
}

// One run of NP output pixels (channel vectors) at yt: nr x ns taps from x0 (the run's first
// pixel at the first tap; rstep, sstep: the next tap row / column; pstep: the next pixel) with
// weight vectors from w0 (the same tap; a row of taps wrow further on).
template <class V, int NP, class T>
inline void dw_run(const T* x0, int64_t nr, int64_t ns, int64_t rstep, int64_t sstep, int64_t pstep, const T* w0,
                   int64_t wrow, typename V::R bias, T* yt) {
  typename V::R acc[NP];
#pragma GCC unroll 8
  for (int q = 0; q < NP; ++q) acc[q] = bias;
  for (int64_t r = 0; r < nr; ++r)
    for (int64_t s = 0; s < ns; ++s) {
      const typename V::R wv = V::load(w0 + r * wrow + s * V::W);
      const T* xs = x0 + r * rstep + s * sstep;
#pragma GCC unroll 8
      for (int q = 0; q < NP; ++q) acc[q] = V::fma(wv, V::load(xs + q * pstep), acc[q]);
    }
#pragma GCC unroll 8
  for (int q = 0; q < NP; ++q) V::store(yt + q * V::W, acc[q]);
}

// Channels into lanes and back, in register-transposed blocks of TB x TB (simd/transpose.h:
// 8 floats, 4 doubles; scalar at the edges). to_lanes: d[i W + l] = x[l HW + i] for the
// channels l < nc and pixels i < HW (lanes past nc untouched). from_lanes: the inverse.
template <class T> constexpr int kTrBlock = sizeof(T) == 4 ? 8 : 4;
template <class T, int W>
void to_lanes(const T* x, int64_t HW, int64_t nc, T* d) {
  constexpr int TB = kTrBlock<T>;
  for (int64_t l0 = 0; l0 < nc; l0 += TB) {
    const int rows = int(std::min<int64_t>(TB, nc - l0));
    int64_t i = 0;
    for (; i + TB <= HW; i += TB) tr_block(x + l0 * HW + i, HW, d + i * W + l0, W, rows);
    for (; i < HW; ++i)
      for (int l = 0; l < rows; ++l) d[i * W + l0 + l] = x[(l0 + l) * HW + i];
  }
}
template <class T, int W>
void from_lanes(const T* s, int64_t HW, int64_t nc, T* y) {
  constexpr int TB = kTrBlock<T>;
  int64_t l0 = 0;
  for (; l0 + TB <= nc; l0 += TB) {  // whole blocks of channels: every output row written is a channel < nc
    int64_t i = 0;
    for (; i < HW; i += TB) tr_block(s + i * W + l0, W, y + l0 * HW + i, HW, int(std::min<int64_t>(TB, HW - i)));
  }
  for (; l0 < nc; ++l0)
    for (int64_t i = 0; i < HW; ++i) y[l0 * HW + i] = s[i * W + l0];
}

constexpr int kDwRun = 6;  // output pixels per run of fwd_dw_blocked (its tile's halo: kDwRun - 1 strides)

template <class T>
void fwd_dw_blocked(const Conv2dParams& p) {
  using V = PV<T>;
  constexpr int W = V::W, NP = kDwRun;
  const T* x = static_cast<const T*>(p.x);
  const T* w = static_cast<const T*>(p.w);
  const T* b = static_cast<const T*>(p.b);
  T* y = static_cast<T*>(p.y);
  const int64_t C = p.C, HW = p.H * p.W, OHW = p.OH * p.OW, RS = p.R * p.S;
  const int64_t halo = (NP - 1) * p.sw, Wt = p.W + 2 * halo, blocks = ceil_div(C, W);
  const int64_t per = (p.H * Wt + std::max(OHW, HW)) * W;  // the tile, then the input or output in lanes
  const int nt = threads_for(p.N * C * OHW * RS >> 15);
  // The weights and biases as (block, tap, W channels), zeros past C, made once.
  Scratch wscratch(size_t((RS + 1) * blocks * W) * sizeof(T));
  T* wall = wscratch.as<T>();
  for (int64_t cb = 0; cb < blocks; ++cb)
    for (int64_t i = 0; i <= RS; ++i)
      for (int64_t l = 0; l < W; ++l) {
        const int64_t c = cb * W + l;
        wall[(cb * (RS + 1) + i) * W + l] = c >= C ? T(0) : i < RS ? w[c * RS + i] : b ? b[c] : T(0);
      }
  Scratch scratch(size_t(per) * sizeof(T) * size_t(nt));
  run_tasks(p.N * blocks, nt, [&](int64_t t, int th) {
    const int64_t n = t / blocks, cb = t % blocks, c0 = cb * W, nc = std::min<int64_t>(W, C - c0);
    T* xt = scratch.as<T>() + per * th;
    T* yt = xt + p.H * Wt * W;
    const T* wt = wall + cb * (RS + 1) * W;
    const T* xn = x + (n * C + c0) * HW;
    to_lanes<T, W>(xn, HW, nc, yt);  // the planes with channels in lanes, then row by row into the tile
    for (int64_t h = 0; h < p.H; ++h) {
      T* d = xt + h * Wt * W;
      std::fill(d, d + halo * W, T(0));
      std::fill(d + (halo + p.W) * W, d + Wt * W, T(0));
      T* row = d + halo * W;
      const T* src = yt + h * p.W * W;
      for (int64_t i = 0; i < p.W; ++i) {
        const int64_t o = i * W;
        for (int64_t l = 0; l < nc; ++l) row[o + l] = src[o + l];
        for (int64_t l = nc; l < W; ++l) row[o + l] = T(0);
      }
    }
    const typename V::R bias = V::load(wt + RS * W);
    const int64_t rstep = p.dh * Wt * W, sstep = p.dw * W, pstep = p.sw * W;
    for (int64_t oh = 0; oh < p.OH; ++oh) {
      int64_t r0, r1;
      taps_inside(oh, p.sh, p.ph, p.dh, p.H, p.R, r0, r1);
      for (int64_t ow0 = 0; ow0 < p.OW; ow0 += NP) {
        const int np = int(std::min<int64_t>(NP, p.OW - ow0));
        int64_t s0, s1, unused;
        taps_inside(ow0 + np - 1, p.sw, p.pw, p.dw, p.W, p.S, s0, unused);  // the run's last pixel starts the earliest tap
        taps_inside(ow0, p.sw, p.pw, p.dw, p.W, p.S, unused, s1);           // its first ends the latest
        const int64_t nr = r1 - r0, ns = std::max<int64_t>(0, s1 - s0);
        // the run's first pixel at tap (r0, s0): inside the tile (its halo) whenever taps are run
        const T* x0 = nr > 0 && ns > 0 ? xt + ((oh * p.sh - p.ph + r0 * p.dh) * Wt + halo + ow0 * p.sw - p.pw + s0 * p.dw) * W : xt;
        const T* w0 = nr > 0 && ns > 0 ? wt + (r0 * p.S + s0) * W : wt;  // r0 may be R: no taps
        T* yr = yt + (oh * p.OW + ow0) * W;
        with_count<NP>(np, [&](auto k) {
          dw_run<V, decltype(k)::value>(x0, nr, ns, rstep, sstep, pstep, w0, p.S * W, bias, yr);
        });
      }
    }
    from_lanes<T, W>(yt, OHW, nc, y + (n * C + c0) * OHW);
  });
}

// Whether the channels-in-lanes loops serve p (a depthwise layer whose tile fits in L2) better
// than the planes-in-lanes ones, by a cost per channel in vector FMAs: theirs the taps inside the
// plane over the lanes in use (C below W leaves lanes idle) plus about half a cycle per element
// transposed in and out; fwd_flat's (unit stride) its vectors times the taps; the row-strided
// loops' whole-row vectors times the taps; the column-strided ones' about one scalar FMA per tap
// and pixel (a single channel, 7x7, stride 2: 0.15 ms there against 0.39 in lanes).
inline bool dw_blocked_pays(const Conv2dParams& p, int W) {
  if (p.groups != p.C || p.K != p.C) return false;
  const int64_t Wt = p.W + 2 * (kDwRun - 1) * p.sw;  // fwd_dw_blocked's tile
  if ((p.H * Wt + p.OH * p.OW) * W * int64_t(dtype_size(p.dt)) > int64_t(cpu_info().l2) / 2) return false;
  const auto inside = [](int64_t O, int64_t s, int64_t I, int64_t pad, int64_t d, int64_t T) {  // taps inside, all outputs
    int64_t n = 0;
    for (int64_t o = 0; o < O; ++o) {
      int64_t lo, hi;
      taps_inside(o, s, pad, d, I, T, lo, hi);
      n += hi - lo;
    }
    return n;
  };
  const double f = double(ceil_div(p.C, W) * W) / double(p.C), RS = double(p.R * p.S);
  const double blocked = double(inside(p.OH, p.sh, p.H, p.ph, p.dh, p.R)) * double(inside(p.OW, p.sw, p.W, p.pw, p.dw, p.S)) /
                             W * f + 0.5 * double(p.H * p.W + p.OH * p.OW) * f;
  const double other = p.sw > 1 ? double(p.OH * p.OW) * RS
                       : p.sh > 1 ? double(p.OH * ceil_div(p.OW, W)) * RS
                                  : double(ceil_div(p.OH * (p.OW + (p.S - 1) * p.dw), W)) * RS;
  return blocked < other;
}

// One (n, group) per task: y[n, k] = b + sum_{c, r, s} w x shifted for the group's channels.
// Stride 1: fwd_flat. Row stride > 1, unit column stride: the group's input planes are copied
// zero-padded, then each run of up to 4 vectors of an output row stays in registers across
// every tap (c, r, s).
template <class T>
void fwd_direct(const Conv2dParams& p) {
  if (dw_blocked_pays(p, PV<T>::W)) return fwd_dw_blocked<T>(p);
  if (p.sh == 1 && p.sw == 1) return fwd_flat<T>(p);
  using V = PV<T>;
  constexpr int W = V::W, NB = 4;
  const T* x = static_cast<const T*>(p.x);
  const T* w = static_cast<const T*>(p.w);
  const T* b = static_cast<const T*>(p.b);
  T* y = static_cast<T*>(p.y);
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G, HW = p.H * p.W, OHW = p.OH * p.OW, RS = p.R * p.S;
  const int64_t Hp = (p.OH - 1) * p.sh + (p.R - 1) * p.dh + 1, Wp = round_up(p.OW, W) + (p.S - 1) * p.dw;
  const int64_t plane = Hp * Wp;
  const int nt = threads_for(p.N * p.K * OHW * Cg * RS >> 15);
  Scratch scratch(p.sw == 1 ? size_t(Cg * plane) * sizeof(T) * size_t(nt) : 0);
  run_tasks(p.N * G, nt, [&](int64_t t, int th) {
    const int64_t n = t / G, g = t % G;
    const T* xg = x + (n * p.C + g * Cg) * HW;
    if (p.sw != 1) {
      for (int64_t k = g * Kg; k < (g + 1) * Kg; ++k) {
        T* yp = y + (n * p.K + k) * OHW;
        std::fill(yp, yp + OHW, b ? b[k] : T(0));
        for (int64_t c = 0; c < Cg; ++c)
          for (int64_t r = 0; r < p.R; ++r) {
            int64_t oh0, oh1;
            conv_out_span(p.OH, p.H, p.sh, p.ph, r * p.dh, oh0, oh1);
            for (int64_t s = 0; s < p.S; ++s) {
              int64_t ow0, ow1;
              conv_out_span(p.OW, p.W, p.sw, p.pw, s * p.dw, ow0, ow1);
              const T wv = w[(k * Cg + c) * RS + r * p.S + s];
              for (int64_t oh = oh0; oh < oh1; ++oh) {
                const T* xr = xg + c * HW + (oh * p.sh - p.ph + r * p.dh) * p.W - p.pw + s * p.dw;
                for (int64_t ow = ow0; ow < ow1; ++ow) yp[oh * p.OW + ow] += wv * xr[ow * p.sw];
              }
            }
          }
      }
      return;
    }
    T* xp = scratch.as<T>() + Cg * plane * th;
    for (int64_t c = 0; c < Cg; ++c) pad_plane(xg + c * HW, p.H, p.W, p.ph, p.pw, Hp, Wp, xp + c * plane);
    for (int64_t k = g * Kg; k < (g + 1) * Kg; ++k) {
      const T* wk = w + k * Cg * RS;
      T* yp = y + (n * p.K + k) * OHW;
      const T bias = b ? b[k] : T(0);
      for (int64_t oh = 0; oh < p.OH; ++oh)
        for (int64_t o0 = 0; o0 < p.OW; o0 += NB * W) {
          const int nq = int(std::min<int64_t>(NB, ceil_div(p.OW - o0, W)));
          const T* xr = xp + oh * p.sh * Wp + o0;
          T* yr = yp + oh * p.OW + o0;
          const int64_t left = p.OW - o0;
          with_count<NB>(nq, [&](auto k) { direct_run<V, decltype(k)::value>(p, xr, Wp, plane, wk, bias, yr, left); });
        }
    }
  });
}

// One (n, c) input-gradient plane per task: gx = sum_{k, r, s} w gy scattered back. Stride 1:
// the forward convolution of gy with the flipped weight (cv::input_grad_as_forward) on the
// lanes or flat forms (the scatter's short rows: 0.16x PyTorch on 8x8 planes of a 7x7
// depthwise layer).
template <class T>
void bwd_input_direct(const Conv2dParams& p) {
  if (p.sh == 1 && p.sw == 1) {
    Scratch flipped(size_t(p.K * (p.C / p.groups) * p.R * p.S) * sizeof(T));
    flipped_weight<T>(p, flipped.as<T>());
    Conv2dParams q = input_grad_as_forward(p);
    q.w = flipped.as<T>();
    return dw_blocked_pays(q, PV<T>::W) ? fwd_dw_blocked<T>(q) : fwd_flat<T>(q);
  }
  const T* gy = static_cast<const T*>(p.gy);
  const T* w = static_cast<const T*>(p.w);
  T* gx = static_cast<T*>(p.gx);
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, HW = p.H * p.W, OHW = p.OH * p.OW;
  run_tasks(p.N * p.C, threads_for(p.N * p.C * OHW * Kg * p.R * p.S >> 15), [&](int64_t t, int) {
    const int64_t n = t / p.C, ci = t % p.C, g = ci / Cg, c = ci % Cg;
    T* xp = gx + t * HW;
    std::fill(xp, xp + HW, T(0));
    for (int64_t k = g * Kg; k < (g + 1) * Kg; ++k)
      for (int64_t r = 0; r < p.R; ++r) {
        int64_t oh0, oh1;
        conv_out_span(p.OH, p.H, p.sh, p.ph, r * p.dh, oh0, oh1);
        for (int64_t s = 0; s < p.S; ++s) {
          int64_t ow0, ow1;
          conv_out_span(p.OW, p.W, p.sw, p.pw, s * p.dw, ow0, ow1);
          const T wv = w[((k * Cg + c) * p.R + r) * p.S + s];
          for (int64_t oh = oh0; oh < oh1; ++oh) {
            T* xr = xp + (oh * p.sh - p.ph + r * p.dh) * p.W - p.pw + s * p.dw;
            const T* yr = gy + (n * p.K + k) * OHW + oh * p.OW;
            if (p.sw == 1) for (int64_t ow = ow0; ow < ow1; ++ow) xr[ow] += wv * yr[ow];
            else for (int64_t ow = ow0; ow < ow1; ++ow) xr[ow * p.sw] += wv * yr[ow];
          }
        }
      }
  });
}

// acc[q] += a[q W : (q + 1) W) * b[q W : (q + 1) W) for q < NQ (compile-time: registers).
template <class V, int NQ, class T>
inline void dot_run(const T* a, const T* b, typename V::R* acc) {
#pragma GCC unroll 4
  for (int q = 0; q < NQ; ++q) acc[q] = V::fma(V::load(a + q * V::W), V::load(b + q * V::W), acc[q]);
}

// Depthwise weight gradient with channels in the lanes: a task owns W channels and runs every
// image: x and gy transposed into lanes, then per tap (r, s) the dot product of gy with x shifted
// over exactly the output pixels whose input lies inside the plane, in runs of NP pixels with
// independent accumulators (the planes-in-lanes loops below pay two plane copies and a reduction
// per (channel, image): 1.7 ms for a 7x7 layer on 16 x 384 4x4 planes, most of a ConvNeXt step's
// depthwise time).
template <class V, int NP, class T>
inline void dot_runs(const T* gyr, const T* xr, int64_t n, int64_t pstep, typename V::R& acc) {
  typename V::R a[NP];
#pragma GCC unroll 8
  for (int q = 0; q < NP; ++q) a[q] = V::zero();
  int64_t i = 0;
  for (; i + NP <= n; i += NP)
#pragma GCC unroll 8
    for (int q = 0; q < NP; ++q) a[q] = V::fma(V::load(gyr + (i + q) * V::W), V::load(xr + (i + q) * pstep), a[q]);
  for (; i < n; ++i) a[0] = V::fma(V::load(gyr + i * V::W), V::load(xr + i * pstep), a[0]);
#pragma GCC unroll 8
  for (int q = 0; q < NP; ++q) acc = V::add(acc, a[q]);
}

template <class T>
void bwd_weight_dw_blocked(const Conv2dParams& p) {
  using V = PV<T>;
  constexpr int W = V::W, NP = 4;
  const T* gy = static_cast<const T*>(p.gy);
  const T* x = static_cast<const T*>(p.x);
  T* gw = static_cast<T*>(p.gw);
  const int64_t C = p.C, HW = p.H * p.W, OHW = p.OH * p.OW, RS = p.R * p.S, blocks = ceil_div(C, W);
  const int nt = threads_for(p.N * C * OHW * RS >> 15);
  // Fewer channel blocks than two per thread: the images split into chunks too, each (block,
  // chunk) summing into its own partial, added in chunk order after (deterministic).
  const int64_t chunks = blocks >= 2 * nt ? 1 : std::min<int64_t>(p.N, ceil_div(2 * nt, blocks));
  const int64_t per = (HW + OHW) * W;
  Scratch scratch(size_t(per) * sizeof(T) * size_t(nt));
  Scratch partial(size_t(blocks * chunks * RS * W) * sizeof(T));
  run_tasks(blocks * chunks, nt, [&](int64_t t, int th) {
    const int64_t cb = t / chunks, ck = t % chunks, c0 = cb * W, nc = std::min<int64_t>(W, C - c0);
    const int64_t n0 = p.N * ck / chunks, n1 = p.N * (ck + 1) / chunks;
    T* xt = scratch.as<T>() + per * th;
    T* gt = xt + HW * W;
    T* acc = partial.as<T>() + t * RS * W;
    std::fill(acc, acc + RS * W, T(0));
    if (nc < W) {  // lanes past C stay zero
      std::fill(xt, xt + HW * W, T(0));
      std::fill(gt, gt + OHW * W, T(0));
    }
    for (int64_t n = n0; n < n1; ++n) {
      to_lanes<T, W>(x + (n * C + c0) * HW, HW, nc, xt);
      to_lanes<T, W>(gy + (n * C + c0) * OHW, OHW, nc, gt);
      for (int64_t r = 0; r < p.R; ++r) {
        int64_t oh0, oh1;
        conv_out_span(p.OH, p.H, p.sh, p.ph, r * p.dh, oh0, oh1);
        for (int64_t s = 0; s < p.S; ++s) {
          int64_t ow0, ow1;
          conv_out_span(p.OW, p.W, p.sw, p.pw, s * p.dw, ow0, ow1);
          typename V::R a = V::load(acc + (r * p.S + s) * W);
          for (int64_t oh = oh0; oh < oh1 && ow1 > ow0; ++oh) {
            const int64_t ih = oh * p.sh - p.ph + r * p.dh, iw = ow0 * p.sw - p.pw + s * p.dw;
            dot_runs<V, NP>(gt + (oh * p.OW + ow0) * W, xt + (ih * p.W + iw) * W, ow1 - ow0, p.sw * W, a);
          }
          V::store(acc + (r * p.S + s) * W, a);
        }
      }
    }
  });
  const T* part = partial.as<T>();
  for (int64_t cb = 0; cb < blocks; ++cb)
    for (int64_t l = 0; l < std::min<int64_t>(W, C - cb * W); ++l)
      for (int64_t i = 0; i < RS; ++i) {
        T v = T(0);
        for (int64_t ck = 0; ck < chunks; ++ck) v += part[((cb * chunks + ck) * RS + i) * W + l];
        gw[(cb * W + l) * RS + i] = v;
      }
  if (p.gb) conv_bias_grad(p.dt, p.gy, p.gb, p.N, p.K, OHW);
}

// One (k, c) pair per task: gw[k, c, r, s] = sum over images and pixels of gy x shifted. Stride
// 1: per image, the x and gy planes are copied zero-padded (they stay in L1 across the taps)
// and each tap sums whole vector runs in four accumulators, added into the tap's vector
// partial. Other strides sum rows of lane partials.
template <class T>
void bwd_weight_direct(const Conv2dParams& p) {
  if (dw_blocked_pays(p, PV<T>::W)) return bwd_weight_dw_blocked<T>(p);
  using V = PV<T>;
  constexpr int W = V::W;
  const T* gy = static_cast<const T*>(p.gy);
  const T* x = static_cast<const T*>(p.x);
  T* gw = static_cast<T*>(p.gw);
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, HW = p.H * p.W, OHW = p.OH * p.OW, RS = p.R * p.S;
  const int64_t OWp = round_up(p.OW, W), Hp = (p.OH - 1) * p.sh + (p.R - 1) * p.dh + 1, Wp = OWp + (p.S - 1) * p.dw;
  const int nt = threads_for(p.K * Cg * p.N * OHW * RS >> 15);
  const int64_t per = std::max<int64_t>(RS * W + Hp * Wp + p.OH * OWp, p.OW);
  Scratch scratch(size_t(per) * sizeof(T) * size_t(nt));
  run_tasks(p.K * Cg, nt, [&](int64_t t, int th) {
    const int64_t k = t / Cg, c = t % Cg, g = k / Kg;
    const T* x0 = x + (g * Cg + c) * HW;
    const T* y0 = gy + k * OHW;
    T* part = scratch.as<T>() + per * th;
    if (p.sw == 1) {
      T* xp = part + RS * W;
      T* yp = xp + Hp * Wp;
      std::fill(part, part + RS * W, T(0));
      for (int64_t n = 0; n < p.N; ++n) {
        pad_plane(x0 + n * p.C * HW, p.H, p.W, p.ph, p.pw, Hp, Wp, xp);
        pad_plane(y0 + n * p.K * OHW, p.OH, p.OW, 0, 0, p.OH, OWp, yp);
        for (int64_t r = 0; r < p.R; ++r)
          for (int64_t s = 0; s < p.S; ++s) {
            typename V::R acc[4] = {V::zero(), V::zero(), V::zero(), V::zero()};
            for (int64_t oh = 0; oh < p.OH; ++oh) {
              const T* xr = xp + (oh * p.sh + r * p.dh) * Wp + s * p.dw;
              const T* yr = yp + oh * OWp;
              int64_t o = 0;
              for (; o + 4 * W <= OWp; o += 4 * W) dot_run<V, 4>(yr + o, xr + o, acc);
              switch ((OWp - o) / W) {
                case 3: dot_run<V, 3>(yr + o, xr + o, acc); break;
                case 2: dot_run<V, 2>(yr + o, xr + o, acc); break;
                case 1: dot_run<V, 1>(yr + o, xr + o, acc); break;
                default: break;
              }
            }
            T* pt = part + (r * p.S + s) * W;
            V::store(pt, V::add(V::load(pt), V::add(V::add(acc[0], acc[1]), V::add(acc[2], acc[3]))));
          }
      }
      for (int64_t i = 0; i < RS; ++i) gw[(k * Cg + c) * RS + i] = V::sum(V::load(part + i * W));
      return;
    }
    for (int64_t r = 0; r < p.R; ++r) {
      int64_t oh0, oh1;
      conv_out_span(p.OH, p.H, p.sh, p.ph, r * p.dh, oh0, oh1);
      for (int64_t s = 0; s < p.S; ++s) {
        int64_t ow0, ow1;
        conv_out_span(p.OW, p.W, p.sw, p.pw, s * p.dw, ow0, ow1);
        std::fill(part, part + p.OW, T(0));
        for (int64_t n = 0; n < p.N; ++n)
          for (int64_t oh = oh0; oh < oh1; ++oh) {
            const T* xr = x0 + n * p.C * HW + (oh * p.sh - p.ph + r * p.dh) * p.W - p.pw + s * p.dw;
            const T* yr = y0 + n * p.K * OHW + oh * p.OW;
            for (int64_t ow = ow0; ow < ow1; ++ow) part[ow] += yr[ow] * xr[ow * p.sw];
          }
        T total = 0;
        for (int64_t ow = 0; ow < p.OW; ++ow) total += part[ow];
        gw[(k * Cg + c) * RS + r * p.S + s] = total;
      }
    }
  });
  if (p.gb) conv_bias_grad(p.dt, p.gy, p.gb, p.N, p.K, OHW);
}

}  // namespace

void conv_fwd_direct(const Conv2dParams& p) {
  if (p.dt == DType::f64) fwd_direct<double>(p); else fwd_direct<float>(p);
}
void conv_bwd_input_direct(const Conv2dParams& p) {
  if (p.dt == DType::f64) bwd_input_direct<double>(p); else bwd_input_direct<float>(p);
}
void conv_bwd_weight_direct(const Conv2dParams& p) {
  if (p.dt == DType::f64) bwd_weight_direct<double>(p); else bwd_weight_direct<float>(p);
}

}  // namespace fastdl::cpu::FASTDL_ISA_NS
#endif
