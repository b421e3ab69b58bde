// 2-D convolution, direct loops for layers with few channels per group (depthwise; LeNet's
// c1 with one input channel), where the GEMM's 6-16 row tiles would run mostly empty. Unit
// stride runs on zero-padded copies of the planes with whole vectors in registers; other
// strides walk rows the compiler vectorises. Compiled per ISA (avx2, avx512); conv_vec.cpp
// picks these or the implicit GEMM.
#if defined(FASTDL_ISA_avx2) || defined(FASTDL_ISA_avx512)
#include "cpu/conv_vec.h"

namespace fastdl::cpu::FASTDL_ISA_NS {
namespace {
using namespace cv;

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

// One (n, group) per task: y[n, k] = b + sum_{c, r, s} w x shifted for the group's channels.
// Stride 1: the group's input planes are copied zero-padded, then each run of up to 4 vectors
// of an output row stays in registers across every tap (c, r, s).
template <class T>
void fwd_direct(const Conv2dParams& p) {
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
          switch (nq) {  // the run's vectors as compile-time counts keep them in registers
            case 4: direct_run<V, 4>(p, xr, Wp, plane, wk, bias, yr, left); break;
            case 3: direct_run<V, 3>(p, xr, Wp, plane, wk, bias, yr, left); break;
            case 2: direct_run<V, 2>(p, xr, Wp, plane, wk, bias, yr, left); break;
            default: direct_run<V, 1>(p, xr, Wp, plane, wk, bias, yr, left); break;
          }
        }
    }
  });
}

// One (n, c) input-gradient plane per task: gx = sum_{k, r, s} w gy scattered back.
template <class T>
void bwd_input_direct(const Conv2dParams& p) {
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

// One (k, c) pair per task: gw[k, c, r, s] = sum over images and pixels of gy x shifted. Stride
// 1: per image, the x and gy planes are copied zero-padded (they stay in L1 across the taps)
// and each tap sums whole vector runs in four accumulators, added into the tap's vector
// partial. Other strides sum rows of lane partials.
template <class T>
void bwd_weight_direct(const Conv2dParams& p) {
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
