// 2-D convolution with channels in the vector lanes (NHWC inside), compiled per ISA (avx2,
// avx512), for the layers the implicit GEMM of conv_vec.cpp packs badly: small planes (a 4x4
// or 8x8 output row is shorter than the 16-pixel panels conv_vec.cpp packs pixels into, so every
// panel is split at row ends) and strides (its packing reads every tap of a strided layer
// through column phases or gathers). Here pixels are broadcast and channels fill the lanes:
//   forward      y[p, k]  = sum over taps t and channels c of x_t[p + off(t), c] w[k, c, t]
// A tile is kMR pixels times kNV vectors of output channels, accumulated in registers over every
// tap and channel. Each pixel's row of the input is a pointer into a zero-padded NHWC copy of x,
// so any stride, dilation and padding is pointer arithmetic (no im2col, no gathers). Pixels come
// in classes that see the same taps inside the image (tap_bands), each running only those, so
// padding taps are never multiplied. The weight is transposed once per call so that its lanes
// are read in place. The result is written NHWC and transposed to NCHW at the end; the copies
// in and out are one pass each over x and y.
//   input grad   the same kernel over an NHWC copy of gy, one stride phase of gx at a time:
//                gx[n, c, a + sh i, b + sw j] takes the taps (r, s) with (a + ph - r dh) % sh == 0
//                (likewise s), each reading gy at row i + (a + ph - r dh) / sh: a stride-1
//                convolution over gy per phase (stride 1: one phase, the flipped kernel), its
//                gx rows banded by the taps that land inside gy (no padded copy).
//   weight grad  gw[k, c, t] = sum over pixels p of gy[p, k] x_t[p + off(t), c]: a tile is kMR
//                output channels (broadcast from gy's NHWC row) times kNV vectors of input
//                channels (x's row), reduced in registers over the pixels whose tap lands inside
//                x; tiles are (group, tap, k block, c block), each summed in one order
//                (deterministic).
// conv_lanes_pays (conv_vec.h) says when a layer's pass takes these.
#if defined(FASTDL_ISA_avx2) || defined(FASTDL_ISA_avx512)
#include <cstdlib>
#include <vector>

#include "core/cpu_info.h"
#include "cpu/conv_vec.h"
#include "cpu/simd/transpose.h"

namespace fastdl::cpu::FASTDL_ISA_NS {
namespace {
using namespace cv;

#if defined(FASTDL_ISA_avx512)
constexpr int kMR = 12;  // broadcast rows per tile: 12 x 2 accumulators of 32 registers
#else
constexpr int kMR = 6;   // 6 x 2 of 16
#endif
constexpr int kNV = 2;   // vectors of lanes per tile

// A tile's accumulators, kMR rows of kNV vectors, in registers (every index a constant once the
// loops over them unroll).
template <class T>
struct Acc {
  using V = PV<T>;
  typename V::R r[kMR][kNV];
  Acc() {
    for (int i = 0; i < kMR; ++i)
      for (int j = 0; j < kNV; ++j) r[i][j] = V::zero();
  }
  // row i += b * (v0, v1)
  void fma(int i, typename V::R b, typename V::R v0, typename V::R v1) {
    r[i][0] = V::fma(b, v0, r[i][0]);
    r[i][1] = V::fma(b, v1, r[i][1]);
  }
  // rows [0, rows) to out, ld apart
  void store(T* out, int64_t ld, int rows) const {
    for (int i = 0; i < rows; ++i)
      for (int j = 0; j < kNV; ++j) V::store(out + i * ld + j * V::W, r[i][j]);
  }
};

// dst (N, Hd, Wd, G Cgp) = src (N, G Cg, H, W) placed at row top, column left, group g's
// channels at g Cgp, zeros around and in each group's channels past Cg. Blocks of 8 x 8 (4 x 4)
// go through registers (tr_block).
template <class T>
void to_nhwc(const T* src, int64_t N, int64_t G, int64_t Cg, int64_t Cgp, int64_t H, int64_t W, int64_t top,
             int64_t left, int64_t Hd, int64_t Wd, T* dst) {
  constexpr int TB = sizeof(T) == 4 ? 8 : 4;
  const int64_t HW = H * W, Cd = G * Cgp;
  parallel_for(0, N * Hd, std::max<int64_t>(1, 8192 / std::max<int64_t>(1, Wd * Cd)), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t n = i / Hd, ih = i % Hd - top;
      T* d = dst + i * Wd * Cd;
      const int64_t lo = std::clamp<int64_t>(left, 0, Wd), hi = std::clamp<int64_t>(left + W, lo, Wd);
      if (ih < 0 || ih >= H || hi == lo) { std::fill(d, d + Wd * Cd, T(0)); continue; }
      std::fill(d, d + lo * Cd, T(0));
      std::fill(d + hi * Cd, d + Wd * Cd, T(0));
      const int64_t len = hi - lo;
      for (int64_t g = 0; g < G; ++g) {
        const T* s = src + (n * G + g) * Cg * HW + ih * W + (lo - left);
        T* dr = d + lo * Cd + g * Cgp;
        if (Cgp > Cg)
          for (int64_t j = 0; j < len; ++j) std::fill(dr + j * Cd + Cg, dr + j * Cd + Cgp, T(0));
        int64_t c = 0;
        for (; c + TB <= Cg; c += TB) {
          int64_t j = 0;
          for (; j + TB <= len; j += TB) tr_block(s + c * HW + j, HW, dr + j * Cd + c, Cd, TB);
          for (; j < len; ++j)
            for (int l = 0; l < TB; ++l) dr[j * Cd + c + l] = s[(c + l) * HW + j];
        }
        for (; c < Cg; ++c)
          for (int64_t j = 0; j < len; ++j) dr[j * Cd + c] = s[c * HW + j];
      }
    }
  });
}

// dst (N, G Cg, HW) = src (N, HW, G Cgp), group g's channels at g Cgp (to_nhwc's inverse).
template <class T>
void from_nhwc(const T* src, int64_t N, int64_t G, int64_t Cg, int64_t Cgp, int64_t HW, T* dst) {
  constexpr int TB = sizeof(T) == 4 ? 8 : 4;
  const int64_t cb = ceil_div(Cg, TB), Cs = G * Cgp;
  parallel_for(0, N * G * cb, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, HW * TB)), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / (G * cb), g = t / cb % G, c = t % cb * TB;
      const T* s = src + n * HW * Cs + g * Cgp + c;
      T* d = dst + ((n * G + g) * Cg + c) * HW;
      if (c + TB <= Cg) {
        for (int64_t i = 0; i < HW; i += TB) tr_block(s + i * Cs, Cs, d + i, HW, int(std::min<int64_t>(TB, HW - i)));
      } else {
        for (int64_t l = 0; l < Cg - c; ++l)
          for (int64_t i = 0; i < HW; ++i) d[l * HW + i] = s[i * Cs + l];
      }
    }
  });
}

// The tile: out[i, 0 : kNV W] = sum over taps t < nt and c < Cr of a[i][toff[t] + c] wb[woff[t] + c ws + :]
// for rows i < rows (rows past it repeat row 0's pointer and are not stored).
template <class T>
inline void tile(const T* const* a, const int64_t* toff, const int64_t* woff, int64_t nt, int64_t Cr, const T* wb,
                 int64_t ws, T* out, int64_t ldo, int rows) {
  using V = PV<T>;
  constexpr int W = V::W;
  Acc<T> acc;
  for (int64_t t = 0; t < nt; ++t) {
    const T* ap[kMR];
    for (int i = 0; i < kMR; ++i) ap[i] = a[i] + toff[t];
    const T* wp = wb + woff[t];
    for (int64_t c = 0; c < Cr; ++c, wp += ws) {
      const typename V::R w0 = V::load(wp), w1 = V::load(wp + W);
      for (int i = 0; i < kMR; ++i) acc.fma(i, V::set1(ap[i][c]), w0, w1);
    }
  }
  acc.store(out, ldo, rows);
}

// A grid of pixels (n, i, j) < (N, PH, PW): pixel (n, i, j) reads a + n an + i ai + j aj and is
// written at out + n on + i oi + j oj (a row of lanes).
template <class T>
struct Grid {
  int64_t N, PH, PW;
  const T* a; int64_t an, ai, aj;
  T* out; int64_t on, oi, oj;
};

// Every tile of a grid for each lane block: taps toff[0, nt) with their weights at woff[0, nt)
// from lane block b's, wp + b * bstride, consecutive reduction channels ws apart; Cr of them.
template <class T>
void run_grid(const Grid<T>& g, const int64_t* toff, const int64_t* woff, int64_t nt, int64_t Cr, const T* wp,
              int64_t ws, int64_t bstride, int64_t blocks) {
  constexpr int NW = kNV * PV<T>::W;
  const int64_t P = g.N * g.PH * g.PW, tiles = ceil_div(P, kMR);
  if (P == 0 || blocks == 0) return;
  const int64_t per = std::max<int64_t>(1, std::min<int64_t>(8, tiles / (4 * std::max(1, get_num_threads()))));
  const int64_t chunks = ceil_div(tiles, per);
  run_tasks(chunks * blocks, threads_for(chunks * blocks), [&](int64_t task, int) {
    const int64_t b = task % blocks, ch = task / blocks;
    const T* wb = wp + b * bstride;
    for (int64_t tl = ch * per; tl < std::min(tiles, (ch + 1) * per); ++tl) {
      const int64_t p0 = tl * kMR;
      const int rows = int(std::min<int64_t>(kMR, P - p0));
      const T* a[kMR];
      T* o0 = nullptr;
      int64_t ldo = 0;
      bool uniform = true;  // the rows' outputs equally spaced (one store stride)
      T* outs[kMR];
      int64_t n = p0 / (g.PH * g.PW), pi = p0 % (g.PH * g.PW) / g.PW, pj = p0 % g.PW;  // pixel p0, then stepped
      for (int i = 0; i < kMR; ++i) {
        if (i >= rows) { a[i] = a[0]; outs[i] = outs[0]; continue; }
        a[i] = g.a + n * g.an + pi * g.ai + pj * g.aj;
        outs[i] = g.out + n * g.on + pi * g.oi + pj * g.oj + b * NW;
        if (++pj == g.PW) { pj = 0; if (++pi == g.PH) { pi = 0; ++n; } }
      }
      o0 = outs[0];
      ldo = rows > 1 ? outs[1] - outs[0] : 0;
      for (int i = 2; i < rows; ++i) uniform = uniform && outs[i] - outs[i - 1] == ldo;
      if (uniform) {
        tile<T>(a, toff, woff, nt, Cr, wb, ws, o0, ldo, rows);
      } else {
        alignas(64) T buf[kMR * NW];
        tile<T>(a, toff, woff, nt, Cr, wb, ws, buf, NW, rows);
        for (int i = 0; i < rows; ++i) std::memcpy(outs[i], buf + i * NW, NW * sizeof(T));
      }
    }
  });
}

// The padded NHWC copy of x that forward and the weight gradient read: every tap of every
// output pixel inside it.
struct XView {
  int64_t Hd, Wd;
  explicit XView(const Conv2dParams& p)
      : Hd(std::max((p.OH - 1) * p.sh + (p.R - 1) * p.dh + 1, p.H + p.ph)),
        Wd(std::max((p.OW - 1) * p.sw + (p.S - 1) * p.dw + 1, p.W + p.pw)) {}
};

template <class T>
void fwd_lanes(const Conv2dParams& p) {
  constexpr int NW = kNV * PV<T>::W;
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G, RS = p.R * p.S, OHW = p.OH * p.OW;
  // x's channels unpadded (forward only broadcasts them). The weight transposed to wk[c][tap][k]
  // through registers (to_nhwc, w read as one image of K channels), then packed as
  // ws[g][block][tap][c][lane] (lanes past a group's Kg zero, landing in y_t's padding): a tile's
  // channel steps read consecutive lines. Read in place from wk, the steps were RS K apart, beyond
  // the L1 prefetcher's stride and, at 256 or 512 channels, into a few L1 sets (Xeon, Emerald
  // Rapids class, 2 threads, forward GFLOP/s in place -> packed: 256 x 7x7 234 -> 436, 512 x 7x7
  // 272 -> 405, DCGAN's 128 -> 256 4x4 stride 2 on 8x8 217 -> 331). With few channels, one group
  // and unit column dilation, a row of taps (s, c) is merged into one run of S Cg channels (a
  // 3-channel 7x7 stem: 7 runs of 21 in place of 49 of 3).
  const int64_t Cgp = Cg, Kgp = round_up(Kg, NW), kb = Kgp / NW;
  const bool merge = G == 1 && p.dw == 1 && Cg < 32;
  const XView v(p);
  const int64_t Cx = G * Cgp, Ky = G * Kgp;
  Scratch xs(size_t(p.N * v.Hd * v.Wd * Cx) * sizeof(T)), ys(size_t(p.N * OHW * Ky) * sizeof(T));
  Scratch ks(size_t(Cg * RS * p.K) * sizeof(T)), ws(size_t(G * kb * RS * Cg * NW) * sizeof(T));
  T* xt = xs.as<T>();
  T* yt = ys.as<T>();
  T* wk = ks.as<T>();
  to_nhwc<T>(static_cast<const T*>(p.x), p.N, G, Cg, Cgp, p.H, p.W, p.ph, p.pw, v.Hd, v.Wd, xt);
  to_nhwc<T>(static_cast<const T*>(p.w), 1, 1, p.K, p.K, Cg, RS, 0, 0, Cg, RS, wk);
  parallel_for(0, G * kb * RS, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t g = t / (kb * RS), b = t / RS % kb, tap = t % RS, n = std::min<int64_t>(NW, Kg - b * NW);
      T* d = ws.as<T>() + t * Cg * NW;
      for (int64_t c = 0; c < Cg; ++c) {
        std::memcpy(d + c * NW, wk + (c * RS + tap) * p.K + g * Kg + b * NW, size_t(n) * sizeof(T));
        std::fill(d + c * NW + n, d + (c + 1) * NW, T(0));
      }
    }
  });
  // Pixels in classes that see the same taps inside the image (bands of rows times bands of
  // columns), each class running only those: the padding taps are never multiplied.
  const std::vector<Band> hb = tap_bands(p.OH, p.H, p.sh, p.ph, p.R, p.dh), wb = tap_bands(p.OW, p.W, p.sw, p.pw, p.S, p.dw);
  std::vector<int64_t> toff, woff;
  for (const Band& bh : hb)
    for (const Band& bw : wb) {
      toff.clear();
      woff.clear();
      for (int64_t r = bh.t0; r < bh.t1; ++r)
        for (int64_t s = bw.t0; s < bw.t1; s += merge ? bw.t1 - bw.t0 : 1) {
          toff.push_back((r * p.dh * v.Wd + s * p.dw) * Cx);
          woff.push_back((r * p.S + s) * Cg * NW);
        }
      const int64_t Cr = merge ? (bw.t1 - bw.t0) * Cg : Cg;
      for (int64_t g = 0; g < G; ++g) {
        T* out = yt + (bh.o0 * p.OW + bw.o0) * Ky + g * Kgp;
        if (toff.empty()) {  // padding only: zeros (then the bias)
          for (int64_t n = 0; n < p.N; ++n)
            for (int64_t i = 0; i < bh.o1 - bh.o0; ++i)
              for (int64_t j = 0; j < bw.o1 - bw.o0; ++j) std::fill_n(out + n * OHW * Ky + (i * p.OW + j) * Ky, Kgp, T(0));
          continue;
        }
        Grid<T> gr{p.N, bh.o1 - bh.o0, bw.o1 - bw.o0, xt + (bh.o0 * p.sh * v.Wd + bw.o0 * p.sw) * Cx + g * Cgp,
                   v.Hd * v.Wd * Cx, p.sh * v.Wd * Cx, p.sw * Cx, out, OHW * Ky, p.OW * Ky, Ky};
        run_grid<T>(gr, toff.data(), woff.data(), int64_t(toff.size()), Cr, ws.as<T>() + g * kb * RS * Cg * NW, NW,
                    RS * Cg * NW, kb);
      }
    }
  from_nhwc<T>(yt, p.N, G, Kg, Kgp, OHW, static_cast<T*>(p.y));
  if (p.b) conv_bias_add(p.dt, p.y, p.b, p.N, p.K, OHW);
}

// Input gradient, phase by phase (the header). For phase (a, b) the taps r with
// (a + ph - r dh) % sh == 0 read gy row i + (a + ph - r dh) / sh for gx row a + sh i.
template <class T>
void bwd_input_lanes(const Conv2dParams& p) {
  constexpr int NW = kNV * PV<T>::W;
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G, RS = p.R * p.S;
  const int64_t Kgp = round_up(Kg, PV<T>::W), Cgp = round_up(Cg, NW), cb = Cgp / NW;
  // Per axis and phase a: the taps (r, off) that reach gy rows i + off, and bands of gx rows i
  // seeing the same run of them inside gy (offsets fall with r, so those are runs).
  struct Phase { std::vector<std::pair<int64_t, int64_t>> taps; std::vector<Band> bands; };
  auto axis = [](int64_t I, int64_t O, int64_t st, int64_t pad, int64_t taps, int64_t dil) {
    std::vector<Phase> ph(size_t(std::min(st, I)));
    for (int64_t a = 0; a < int64_t(ph.size()); ++a) {
      Phase& f = ph[size_t(a)];
      for (int64_t r = 0; r < taps; ++r) {
        const int64_t q = a + pad - r * dil;
        if (((q % st) + st) % st == 0) f.taps.push_back({r, q / st});
      }
      for (int64_t i = 0; i < ceil_div(I - a, st); ++i) {
        int64_t t0 = 0, t1 = 0;
        for (int64_t t = 0; t < int64_t(f.taps.size()); ++t)
          if (const int64_t o = i + f.taps[size_t(t)].second; o >= 0 && o < O) { if (t1 == t0) t0 = t; t1 = t + 1; }
        if (!f.bands.empty() && f.bands.back().t0 == t0 && f.bands.back().t1 == t1) f.bands.back().o1 = i + 1;
        else f.bands.push_back({i, i + 1, t0, t1});
      }
    }
    return ph;
  };
  const std::vector<Phase> ah = axis(p.H, p.OH, p.sh, p.ph, p.R, p.dh), aw = axis(p.W, p.OW, p.sw, p.pw, p.S, p.dw);
  const int64_t Ky = G * Kgp, Cx = G * Cgp, HW = p.H * p.W, OHW = p.OH * p.OW;
  Scratch ys(size_t(p.N * OHW * Ky) * sizeof(T)), xs(size_t(p.N * HW * Cx) * sizeof(T));
  T* gyt = ys.as<T>();
  T* gxt = xs.as<T>();
  to_nhwc<T>(static_cast<const T*>(p.gy), p.N, G, Kg, Kgp, p.OH, p.OW, 0, 0, p.OH, p.OW, gyt);
  const T* w = static_cast<const T*>(p.w);
  // the weight as wc[k][tap][c] (w's K rows as images of Cg channels), then packed as
  // wp[g][c block][tap][k][lane] (lanes past Cg zero, landing in gx_t's padding) so a tile's
  // channel steps read consecutive lines, as in forward
  Scratch wcs(size_t(p.K * RS * Cg) * sizeof(T)), wps(size_t(G * cb * RS * Kg * NW) * sizeof(T));
  T* wc = wcs.as<T>();
  T* wp = wps.as<T>();
  to_nhwc<T>(w, p.K, 1, Cg, Cg, 1, RS, 0, 0, 1, RS, wc);
  parallel_for(0, G * cb * RS, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t g = t / (cb * RS), b = t / RS % cb, tap = t % RS, n = std::min<int64_t>(NW, Cg - b * NW);
      T* d = wp + t * Kg * NW;
      for (int64_t k = 0; k < Kg; ++k) {
        std::memcpy(d + k * NW, wc + ((g * Kg + k) * RS + tap) * Cg + b * NW, size_t(n) * sizeof(T));
        std::fill(d + k * NW + n, d + (k + 1) * NW, T(0));
      }
    }
  });
  std::vector<int64_t> toff, woff;
  for (int64_t a = 0; a < int64_t(ah.size()); ++a)
    for (int64_t b = 0; b < int64_t(aw.size()); ++b) {
      const auto& tr = ah[size_t(a)].taps;
      const auto& ts = aw[size_t(b)].taps;
      for (const Band& bh : ah[size_t(a)].bands)
        for (const Band& bw : aw[size_t(b)].bands) {
          toff.clear();
          woff.clear();
          for (int64_t i = bh.t0; i < bh.t1; ++i)
            for (int64_t j = bw.t0; j < bw.t1; ++j) {
              woff.push_back((tr[size_t(i)].first * p.S + ts[size_t(j)].first) * Kg * NW);
              toff.push_back((tr[size_t(i)].second * p.OW + ts[size_t(j)].second) * Ky);
            }
          for (int64_t g = 0; g < G; ++g) {
            T* out = gxt + ((a + bh.o0 * p.sh) * p.W + b + bw.o0 * p.sw) * Cx + g * Cgp;
            if (toff.empty()) {  // no tap reaches these gx pixels: zeros
              for (int64_t n = 0; n < p.N; ++n)
                for (int64_t i = 0; i < bh.o1 - bh.o0; ++i)
                  for (int64_t j = 0; j < bw.o1 - bw.o0; ++j)
                    std::fill_n(out + n * HW * Cx + (i * p.sh * p.W + j * p.sw) * Cx, Cgp, T(0));
              continue;
            }
            Grid<T> gr{p.N, bh.o1 - bh.o0, bw.o1 - bw.o0, gyt + (bh.o0 * p.OW + bw.o0) * Ky + g * Kgp, OHW * Ky,
                       p.OW * Ky, Ky, out, HW * Cx, p.sh * p.W * Cx, p.sw * Cx};
            run_grid<T>(gr, toff.data(), woff.data(), int64_t(toff.size()), Kg, wp + g * cb * RS * Kg * NW, NW,
                        RS * Kg * NW, cb);
          }
        }
    }
  from_nhwc<T>(gxt, p.N, G, Cg, Cgp, HW, static_cast<T*>(p.gx));
}

// Weight gradient (the header): one tile per (group, tap, k block of kMR, c block of kNV W).
template <class T>
void bwd_weight_lanes(const Conv2dParams& p) {
  using V = PV<T>;
  constexpr int W = V::W, NW = kNV * W;
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G, RS = p.R * p.S, OHW = p.OH * p.OW;
  const int64_t Cgp = round_up(Cg, NW), Kgp = round_up(Kg, kMR);
  const XView v(p);
  const int64_t Cx = G * Cgp, Ky = G * Kgp;
  Scratch xs(size_t(p.N * v.Hd * v.Wd * Cx) * sizeof(T)), ys(size_t(p.N * OHW * Ky) * sizeof(T));
  T* xt = xs.as<T>();
  T* gyt = ys.as<T>();
  to_nhwc<T>(static_cast<const T*>(p.x), p.N, G, Cg, Cgp, p.H, p.W, p.ph, p.pw, v.Hd, v.Wd, xt);
  to_nhwc<T>(static_cast<const T*>(p.gy), p.N, G, Kg, Kgp, p.OH, p.OW, 0, 0, p.OH, p.OW, gyt);
  T* gw = static_cast<T*>(p.gw);
  const int64_t kb = Kgp / kMR, cbk = Cgp / NW, tasks = G * RS * kb * cbk;
  run_tasks(tasks, threads_for(tasks), [&](int64_t t, int) {
    const int64_t g = t / (RS * kb * cbk), tap = t / (kb * cbk) % RS, k0 = t / cbk % kb * kMR, c0 = t % cbk * NW;
    const int64_t r = tap / p.S, s = tap % p.S;
    const T* xb = xt + (r * p.dh * v.Wd + s * p.dw) * Cx + g * Cgp + c0;
    const T* yb = gyt + g * Kgp + k0;
    Acc<T> acc;
    int64_t oh0, oh1, ow0, ow1;  // the outputs whose tap lands inside x (the rest read padding)
    conv_out_span(p.OH, p.H, p.sh, p.ph, r * p.dh, oh0, oh1);
    conv_out_span(p.OW, p.W, p.sw, p.pw, s * p.dw, ow0, ow1);
    for (int64_t n = 0; n < p.N; ++n)
      for (int64_t oh = oh0; oh < oh1; ++oh) {
        const T* xr = xb + ((n * v.Hd + oh * p.sh) * v.Wd + ow0 * p.sw) * Cx;
        const T* yr = yb + (n * OHW + oh * p.OW + ow0) * Ky;
        for (int64_t ow = ow0; ow < ow1; ++ow, xr += p.sw * Cx, yr += Ky) {
          const typename V::R x0 = V::load(xr), x1 = V::load(xr + W);
          for (int i = 0; i < kMR; ++i) acc.fma(i, V::set1(yr[i]), x0, x1);
        }
      }
    alignas(64) T buf[kMR * NW];
    acc.store(buf, NW, kMR);
    for (int64_t i = 0; i < std::min<int64_t>(kMR, Kg - k0); ++i)
      for (int64_t l = 0; l < std::min<int64_t>(NW, Cg - c0); ++l)
        gw[((g * Kg + k0 + i) * Cg + c0 + l) * RS + tap] = buf[i * NW + l];
  });
  if (p.gb) conv_bias_grad(p.dt, p.gy, p.gb, p.N, p.K, OHW);
}

// Weight gradient of a layer with few input channels (a 3-channel stem), lanes over output
// channels instead: gw[k, (c, t)] = sum over pixels p of x_t[p + off(t), c] gy[p, k], a tile
// kMR (c, tap) pairs (broadcast from x's NHWC rows) times kNV vectors of k (gy's row). A task
// takes a chunk of output rows and one k block through every (c, tap) block, so its rows of gy
// stay in cache, into its own partial sums; the chunks are then added in order (deterministic,
// the chunking fixed by the shape alone). The padding rows of x_t read zeros.
template <class T>
void bwd_weight_lanes_k(const Conv2dParams& p) {
  using V = PV<T>;
  constexpr int W = V::W, NW = kNV * W;
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G, RS = p.R * p.S, OHW = p.OH * p.OW, CT = Cg * RS;
  const int64_t Kgp = round_up(Kg, NW), kb = Kgp / NW, cbn = ceil_div(CT, kMR), CTp = cbn * kMR;
  const XView v(p);
  const int64_t Cx = G * Cg, Ky = G * Kgp;
  // chunks of ~512 pixels, at most 256 of them (the partial sums stay ~10 MB for an ImageNet stem
  // at batch 256, which would otherwise take 7168 chunks and 290 MB)
  const int64_t rows = std::max({int64_t(1), 512 / std::max<int64_t>(1, p.OW), ceil_div(p.N * p.OH, 256)});
  const int64_t chunks = ceil_div(p.N * p.OH, rows);
  Scratch xs(size_t(p.N * v.Hd * v.Wd * Cx) * sizeof(T)), ys(size_t(p.N * OHW * Ky) * sizeof(T));
  Scratch ps(size_t(G * kb * chunks * CTp * NW) * sizeof(T));
  T* xt = xs.as<T>();
  T* gyt = ys.as<T>();
  T* part = ps.as<T>();
  to_nhwc<T>(static_cast<const T*>(p.x), p.N, G, Cg, Cg, p.H, p.W, p.ph, p.pw, v.Hd, v.Wd, xt);
  to_nhwc<T>(static_cast<const T*>(p.gy), p.N, G, Kg, Kgp, p.OH, p.OW, 0, 0, p.OH, p.OW, gyt);
  std::vector<int64_t> offs(static_cast<size_t>(CTp));  // (c, tap) -> its offset in an x_t row
  for (int64_t j = 0; j < CTp; ++j) {
    const int64_t c = std::min(j, CT - 1) / RS, tap = std::min(j, CT - 1) % RS;
    offs[size_t(j)] = (tap / p.S * p.dh * v.Wd + tap % p.S * p.dw) * Cx + c;
  }
  const int64_t tasks = G * kb * chunks;
  run_tasks(tasks, threads_for(tasks), [&](int64_t t, int) {
    const int64_t g = t / (kb * chunks), b = t / chunks % kb, ch = t % chunks;
    T* pt = part + t * CTp * NW;
    const int64_t r0 = ch * rows, r1 = std::min(p.N * p.OH, r0 + rows);
    for (int64_t j0 = 0; j0 < CTp; j0 += kMR) {
      Acc<T> acc;
      for (int64_t row = r0; row < r1; ++row) {
        const int64_t n = row / p.OH, oh = row % p.OH;
        const T* xr = xt + (n * v.Hd + oh * p.sh) * v.Wd * Cx + g * Cg;
        const T* ap[kMR];
        for (int i = 0; i < kMR; ++i) ap[i] = xr + offs[size_t(j0 + i)];
        const T* yr = gyt + row * p.OW * Ky + g * Kgp + b * NW;
        for (int64_t ow = 0, xo = 0; ow < p.OW; ++ow, xo += p.sw * Cx, yr += Ky) {
          const typename V::R y0 = V::load(yr), y1 = V::load(yr + W);
          for (int i = 0; i < kMR; ++i) acc.fma(i, V::set1(ap[i][xo]), y0, y1);
        }
      }
      acc.store(pt + j0 * NW, NW, kMR);
    }
  });
  T* gw = static_cast<T*>(p.gw);
  parallel_for(0, G * kb, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t g = t / kb, b = t % kb, nl = std::min<int64_t>(NW, Kg - b * NW);
      const T* pt = part + t * chunks * CTp * NW;
      for (int64_t j = 0; j < CT; ++j)
        for (int64_t l = 0; l < nl; ++l) {
          T sum = 0;
          for (int64_t ch = 0; ch < chunks; ++ch) sum += pt[(ch * CTp + j) * NW + l];
          gw[(g * Kg + b * NW + l) * CT + j] = sum;
        }
    }
  });
  if (p.gb) conv_bias_grad(p.dt, p.gy, p.gb, p.N, p.K, OHW);
}

}  // namespace

bool conv_lanes_pays(const Conv2dParams& p, ConvPass pass) {
  const char* e = std::getenv("FASTDL_CONV_LANES");  // read per call: a bench flips it in-process
  const int mode = e ? std::atoi(e) : -1;
  if (mode == 0) return false;
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups;
  if (mode == 1) return true;
  constexpr int NW = kNV * PV<float>::W;
  // Lanes at least half used and a reduction long enough per tap. Measured against the implicit
  // GEMM (Zen 4, 2 threads, batch 32): strided layers with taps gain in every pass (DCGAN's 4x4
  // stride-2 64 -> 128 on 16x16: forward 0.67-0.75x -> 0.88-0.95x PyTorch, input gradient
  // 0.70-0.75 -> 0.88-1.0, weight gradient 0.77-0.81 -> 0.84-0.95); stride-1 layers with output
  // rows of up to 16 pixels gain in forward and input gradient (512 x 7x7: 0.82 -> 0.93, 128 x
  // 4x4: 0.78 -> 0.95 and 0.82 -> 1.05, 512 x 2x2 about even), but not
  // in the weight gradient, whose tiles stream gy once per tap (28x28: 0.84 -> 0.52). 1x1 layers
  // stay on the GEMM (no taps to share a pixel's row over). The lanes: output channels in
  // forward, input channels in the gradients.
  // A weight gradient with one to three output channels (a discriminator's last 4x4 layer onto
  // one logit) takes it too: its rows are mostly idle, but the direct loops it replaces pad every
  // plane and round 1-pixel outputs up to a vector (256 -> 1 on 4x4: 0.5x PyTorch).
  // A strided weight gradient takes it only while the padded NHWC copy of x fits in the threads'
  // L2s together: its tiles stream that copy once per (tap, k block, c block). On a Xeon of the
  // Emerald Rapids class (2 MiB L2, a shared L3) ResNet's 64 -> 128 3x3 stride-2 layer on 32x32
  // (a 9.5 MiB copy) ran forward + backward in 19.8 ms against the GEMM's 13.3, DCGAN's 64 -> 128
  // on 16x16 (2.6 MiB) 6.9 against 6.1, its 128 -> 256 on 8x8 (1.6 MiB) 6.4 against 6.8.
  // Forward's reduction per tap is a row of S Cg channels where fwd_lanes merges the row (a
  // ResNet's 3-channel 7x7 stride-2 stem: 0.61-0.68x -> 0.69-0.85x PyTorch); ConvNeXt's 4x4
  // stride-4 patchify (rows of 12) stays on the GEMM, which reads its taps without a copy.
  const bool strided = p.sh > 1 || p.sw > 1, small_rows = p.OW <= 16;
  if (p.R * p.S == 1) return false;
  if (pass == ConvPass::weight && Cg < NW / 2)  // lanes over output channels (bwd_weight_lanes_k): stems
    return Kg >= NW / 2;
  if (pass == ConvPass::weight) {
    const int64_t xbytes = p.N * (p.H + 2 * p.ph) * (p.W + 2 * p.pw) * p.C * int64_t(dtype_size(p.dt));
    const bool fits = xbytes <= int64_t(cpu_info().l2) * std::max(1, get_num_threads());
    return Cg >= 16 && (strided ? Kg >= 16 && fits : Kg < 4);
  }
  if (pass == ConvPass::input) return Cg >= 16 && Cg >= NW / 2 && Kg >= 16 && (strided || small_rows);
  const int64_t run = p.groups == 1 && p.dw == 1 ? p.S * Cg : Cg;
  return run >= 16 && Kg >= 16 && Kg >= NW / 2 && (strided || small_rows);
}

void conv_fwd_lanes(const Conv2dParams& p) {
  if (p.dt == DType::f64) fwd_lanes<double>(p); else fwd_lanes<float>(p);
}
void conv_bwd_input_lanes(const Conv2dParams& p) {
  if (p.dt == DType::f64) bwd_input_lanes<double>(p); else bwd_input_lanes<float>(p);
}
void conv_bwd_weight_lanes(const Conv2dParams& p) {
  constexpr int NW = kNV * PV<float>::W;
  if (p.C / p.groups < NW / 2) {  // few input channels: lanes over output channels
    if (p.dt == DType::f64) bwd_weight_lanes_k<double>(p); else bwd_weight_lanes_k<float>(p);
  } else if (p.dt == DType::f64) {
    bwd_weight_lanes<double>(p);
  } else {
    bwd_weight_lanes<float>(p);
  }
}

}  // namespace fastdl::cpu::FASTDL_ISA_NS
#endif
