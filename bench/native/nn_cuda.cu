// Validates the CUDA conv2d, pooling and batch / group norm kernels (csrc/cuda/{conv,pool,norm}.cu)
// against their definitions in double (kernels/conv.h, pool.h, norm.h), every output and
// gradient, outputs pre-filled with NaN (unwritten elements fail), then times conv2d (--bench).
// Built by bench/gpu.sh like cuda_check:
//   nvcc -std=c++17 -O2 -arch=sm_90 -I csrc bench/native/nn_cuda.cu csrc/cuda/*.cu -o nn_cuda
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cuda_timing.cuh"
#include "core/error.h"
#include "cuda/cuda_api.h"
#include "kernels/conv.h"
#include "kernels/norm.h"
#include "kernels/pool.h"

namespace nn_check {

using namespace fastdl;
using Vec = std::vector<double>;
std::mt19937_64 rng(777);
Vec draw(int64_t n, double lo = -1, double hi = 1) {
  Vec v(static_cast<size_t>(n));
  for (double& x : v) x = std::uniform_real_distribution<double>(lo, hi)(rng);
  return v;
}

// ---------------------------------------------------------------- definitions in double
// y (and, with gy, gx gw gb) of a conv2d; x (N, C, H, W), w (K, C / G, R, S).
void conv_ref(const Conv2dParams& p, const Vec& x, const Vec& w, const Vec* b, const Vec& gy, Vec& y, Vec& gx,
              Vec& gw, Vec& gb) {
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups;
  y.assign(size_t(p.N * p.K * p.OH * p.OW), 0), gx.assign(size_t(p.N * p.C * p.H * p.W), 0);
  gw.assign(size_t(p.K * Cg * p.R * p.S), 0), gb.assign(size_t(p.K), 0);
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t k = 0; k < p.K; ++k)
      for (int64_t oh = 0; oh < p.OH; ++oh)
        for (int64_t ow = 0; ow < p.OW; ++ow) {
          const size_t yi = size_t(((n * p.K + k) * p.OH + oh) * p.OW + ow);
          double s = b ? (*b)[size_t(k)] : 0;
          const double g = gy[yi];
          gb[size_t(k)] += g;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t r = 0; r < p.R; ++r)
              for (int64_t q = 0; q < p.S; ++q) {
                const int64_t ih = oh * p.sh - p.ph + r * p.dh, iw = ow * p.sw - p.pw + q * p.dw;
                if (ih < 0 || ih >= p.H || iw < 0 || iw >= p.W) continue;
                const size_t xi = size_t(((n * p.C + (k / Kg) * Cg + c) * p.H + ih) * p.W + iw);
                const size_t wi = size_t(((k * Cg + c) * p.R + r) * p.S + q);
                s += w[wi] * x[xi];
                gx[xi] += w[wi] * g;
                gw[wi] += x[xi] * g;
              }
          y[yi] = s;
        }
}

// y, idx (fwd) and gx (bwd, from gy) of a pooling; x (planes, H, W).
void pool_ref(const Pool2dParams& p, const Vec& x, const Vec& gy, Vec& y, std::vector<int64_t>& idx, Vec& gx) {
  const bool is_max = p.kind == PoolKind::max || p.kind == PoolKind::adaptive_max;
  const bool adaptive = p.kind == PoolKind::adaptive_avg || p.kind == PoolKind::adaptive_max;
  y.assign(size_t(p.planes * p.OH * p.OW), 0), idx.assign(y.size(), -1), gx.assign(size_t(p.planes * p.H * p.W), 0);
  for (int64_t pl = 0; pl < p.planes; ++pl)
    for (int64_t oh = 0; oh < p.OH; ++oh)
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        const size_t o = size_t((pl * p.OH + oh) * p.OW + ow);
        std::vector<int64_t> taps;
        int64_t padded = 0;
        if (adaptive) {
          for (int64_t h = adaptive_begin(oh, p.H, p.OH); h < adaptive_end(oh, p.H, p.OH); ++h)
            for (int64_t w = adaptive_begin(ow, p.W, p.OW); w < adaptive_end(ow, p.W, p.OW); ++w)
              taps.push_back(h * p.W + w);
          padded = int64_t(taps.size());
        } else {
          const int64_t dh = is_max ? p.dh : 1, dw = is_max ? p.dw : 1;
          int64_t nh = 0, nw = 0;
          for (int64_t i = 0; i < p.kh; ++i) {
            const int64_t h = oh * p.sh - p.ph + i * dh;
            if (h < p.H + p.ph) ++nh;
            for (int64_t j = 0; j < p.kw; ++j) {
              const int64_t w = ow * p.sw - p.pw + j * dw;
              if (i == 0 && w < p.W + p.pw) ++nw;
              if (h >= 0 && h < p.H && w >= 0 && w < p.W) taps.push_back(h * p.W + w);
            }
          }
          padded = nh * nw;
        }
        const double* xp = x.data() + pl * p.H * p.W;
        double* gp = gx.data() + pl * p.H * p.W;
        if (is_max) {
          double best = -INFINITY;
          int64_t at = taps.empty() ? -1 : taps[0];
          for (int64_t t : taps)
            if (xp[t] > best || xp[t] != xp[t]) best = xp[t], at = t;
          y[o] = best, idx[o] = at;
          if (at >= 0) gp[at] += gy[o];
        } else {
          const int64_t div = p.divisor_override > 0 ? p.divisor_override
                              : p.count_include_pad && !adaptive ? padded : int64_t(taps.size());
          double s = 0;
          for (int64_t t : taps) s += xp[t];
          y[o] = div > 0 ? s / double(div) : 0;
          for (int64_t t : taps) gp[t] += div > 0 ? gy[o] / double(div) : 0;
        }
      }
}

// Normalisation of `rows` slices, each the elements e of sel(row, e) over `len` elements; the
// channel of element e of row r is chan(r, e). Writes y, mean, invstd and (from gy) gx, gw, gb.
template <class Sel, class Chan>
void norm_ref(int64_t rows, int64_t len, int64_t C, Sel sel, Chan chan, bool training, double eps, const Vec& x,
              const Vec* w, const Vec* b, const Vec& gy, const Vec* mean_in, const Vec* var_in, Vec& y, Vec& mean,
              Vec& invstd, Vec& gx, Vec& gw, Vec& gb) {
  y.assign(x.size(), 0), gx.assign(x.size(), 0), mean.assign(size_t(rows), 0), invstd.assign(size_t(rows), 0);
  gw.assign(size_t(C), 0), gb.assign(size_t(C), 0);
  for (int64_t r = 0; r < rows; ++r) {
    double mu = 0, var = 0;
    if (training) {
      for (int64_t e = 0; e < len; ++e) mu += x[size_t(sel(r, e))];
      mu /= double(len);
      for (int64_t e = 0; e < len; ++e) var += (x[size_t(sel(r, e))] - mu) * (x[size_t(sel(r, e))] - mu);
      var /= double(len);
    } else {
      mu = (*mean_in)[size_t(r)], var = (*var_in)[size_t(r)];
    }
    const double is = 1 / std::sqrt(var + eps);
    mean[size_t(r)] = mu, invstd[size_t(r)] = is;
    double md = 0, mdx = 0;
    for (int64_t e = 0; e < len; ++e) {
      const size_t i = size_t(sel(r, e));
      const int64_t c = chan(r, e);
      const double xh = (x[i] - mu) * is, wc = w ? (*w)[size_t(c)] : 1.0;
      y[i] = xh * wc + (b ? (*b)[size_t(c)] : 0.0);
      gw[size_t(c)] += gy[i] * xh, gb[size_t(c)] += gy[i];
      md += gy[i] * wc / double(len), mdx += gy[i] * wc * xh / double(len);
    }
    for (int64_t e = 0; e < len; ++e) {
      const size_t i = size_t(sel(r, e));
      const double xh = (x[i] - mu) * is, d = gy[i] * (w ? (*w)[size_t(chan(r, e))] : 1.0);
      gx[i] = training ? is * (d - md - xh * mdx) : is * d;
    }
  }
}

}  // namespace nn_check

#ifndef NN_CUDA_NO_MAIN
namespace {

using namespace fastdl;
using namespace nn_check;
namespace cu = fastdl::cuda;

int g_pass = 0, g_fail = 0;
void report(const std::string& name, const std::string& bad) {
  std::printf("%s %s%s%s\n", bad.empty() ? "PASS" : "FAIL", name.c_str(), bad.empty() ? "" : "  ", bad.c_str());
  (bad.empty() ? g_pass : g_fail)++;
}

// A device array of n elements of dt (f32 / f64 / bf16 / f16), or int64 when dt is i64.
struct Buf {
  DType dt;
  int64_t n;
  void* p;
  Buf(DType t, int64_t count) : dt(t), n(count), p(cu::alloc(bytes() + 8, 0)) {}
  Buf(DType t, Vec& v) : Buf(t, int64_t(v.size())) { put(v); }
  ~Buf() { cu::free(p, bytes() + 8, 0); }
  Buf(const Buf&) = delete;
  size_t bytes() const { return size_t(n) * dtype_size(dt); }
  void put(Vec& v) {  // rounds v to dt in place: the reference sees what the kernel reads
    std::vector<unsigned char> h(bytes());
    for (int64_t i = 0; i < n; ++i) {
      if (dt == DType::f32) v[size_t(i)] = reinterpret_cast<float*>(h.data())[i] = float(v[size_t(i)]);
      else if (dt == DType::bf16)
        v[size_t(i)] = __bfloat162float(reinterpret_cast<__nv_bfloat16*>(h.data())[i] = __float2bfloat16(float(v[size_t(i)])));
      else if (dt == DType::f16)
        v[size_t(i)] = __half2float(reinterpret_cast<__half*>(h.data())[i] = __float2half(float(v[size_t(i)])));
      else if (dt == DType::f64) reinterpret_cast<double*>(h.data())[i] = v[size_t(i)];
      else reinterpret_cast<int64_t*>(h.data())[i] = int64_t(v[size_t(i)]);
    }
    if (n) cu::copy_h2d(p, h.data(), bytes(), 0);
  }
  void nan() {
    Vec v(static_cast<size_t>(n), dt == DType::i64 ? -7.0 : NAN);
    put(v);
  }
  Vec get() const {
    std::vector<unsigned char> h(bytes());
    if (n) cu::copy_d2h(h.data(), p, bytes(), 0);
    Vec v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      v[size_t(i)] = dt == DType::f32    ? reinterpret_cast<float*>(h.data())[i]
                     : dt == DType::bf16 ? __bfloat162float(reinterpret_cast<__nv_bfloat16*>(h.data())[i])
                     : dt == DType::f16  ? __half2float(reinterpret_cast<__half*>(h.data())[i])
                     : dt == DType::f64  ? reinterpret_cast<double*>(h.data())[i]
                                        : double(reinterpret_cast<int64_t*>(h.data())[i]);
    return v;
  }
};

std::string compare(const char* what, const Buf& got_d, const Vec& want) {
  const Vec got = got_d.get();
  double scale = 1e-30;
  for (double w : want) scale = std::max(scale, std::fabs(w));
  // Halves: one rounding of an fp32-accumulated result (2^-9 bf16, 2^-12 f16), with margin.
  const double tol = (got_d.dt == DType::f32    ? 2e-5
                      : got_d.dt == DType::f64  ? 1e-11
                      : got_d.dt == DType::bf16 ? 1e-2
                      : got_d.dt == DType::f16  ? 2e-3
                                                : 0) *
                     scale;
  for (size_t i = 0; i < want.size(); ++i)
    if (!(std::fabs(got[i] - want[i]) <= tol)) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "%s: element %zu got %.10g want %.10g", what, i, got[i], want[i]);
      return buf;
    }
  return "";
}
std::string run(const std::function<void()>& f) {
  try {
    f();
    cu::synchronize(0);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

struct ConvCase {
  const char* name;
  int64_t N, C, H, W, K, R, S, sh, sw, ph, pw, dh, dw, groups;
  int64_t OH = 0, OW = 0;  // 0: symmetric padding
  bool bias = true;
};

void conv_case(const ConvCase& c, DType t) {
  Conv2dParams p;
  p.N = c.N, p.C = c.C, p.H = c.H, p.W = c.W, p.K = c.K, p.R = c.R, p.S = c.S, p.sh = c.sh, p.sw = c.sw;
  p.ph = c.ph, p.pw = c.pw, p.dh = c.dh, p.dw = c.dw, p.groups = c.groups, p.dt = t;
  p.OH = c.OH ? c.OH : (c.H + 2 * c.ph - c.dh * (c.R - 1) - 1) / c.sh + 1;
  p.OW = c.OW ? c.OW : (c.W + 2 * c.pw - c.dw * (c.S - 1) - 1) / c.sw + 1;
  Vec x = draw(p.N * p.C * p.H * p.W), w = draw(p.K * (p.C / p.groups) * p.R * p.S), b = draw(p.K);
  Vec gy = draw(p.N * p.K * p.OH * p.OW);
  Buf dx(t, x), dwt(t, w), db(t, b), dgy(t, gy), y(t, int64_t(gy.size())), gx(t, int64_t(x.size())),
      gw(t, int64_t(w.size())), gb(t, p.K);
  Vec ry, rgx, rgw, rgb;
  conv_ref(p, x, w, c.bias ? &b : nullptr, gy, ry, rgx, rgw, rgb);
  y.nan(), gx.nan(), gw.nan(), gb.nan();
  p.x = dx.p, p.w = dwt.p, p.b = c.bias ? db.p : nullptr, p.y = y.p, p.gy = dgy.p, p.gx = gx.p, p.gw = gw.p, p.gb = gb.p;
  std::string bad = run([&] {
    cu::conv2d_fwd(p, 0);
    cu::conv2d_bwd_input(p, 0);
    cu::conv2d_bwd_weight(p, 0);
  });
  if (bad.empty()) bad = compare("y", y, ry);
  if (bad.empty()) bad = compare("gx", gx, rgx);
  if (bad.empty()) bad = compare("gw", gw, rgw);
  if (bad.empty()) bad = compare("gb", gb, rgb);
  if (bad.empty()) {  // reproducible: the weight gradient's split sums run in a fixed order
    const Vec first = gw.get();
    bad = run([&] { cu::conv2d_bwd_weight(p, 0); });
    if (bad.empty() && first != gw.get()) bad = "weight gradient not bitwise reproducible";
  }
  const char* tn = t == DType::f32 ? " f32" : t == DType::f64 ? " f64" : t == DType::bf16 ? " bf16" : " f16";
  report(std::string("conv2d ") + c.name + tn, bad);
}

struct PoolCase {
  const char* name;
  PoolKind kind;
  int64_t planes, H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw;
  bool include_pad = true;
  int64_t divisor = 0;
};

void pool_case(const PoolCase& c, DType t) {
  Pool2dParams p;
  p.kind = c.kind, p.dt = t, p.planes = c.planes, p.H = c.H, p.W = c.W, p.OH = c.OH, p.OW = c.OW, p.kh = c.kh;
  p.kw = c.kw, p.sh = c.sh, p.sw = c.sw, p.ph = c.ph, p.pw = c.pw, p.dh = c.dh, p.dw = c.dw;
  p.count_include_pad = c.include_pad, p.divisor_override = c.divisor;
  Vec x = draw(p.planes * p.H * p.W), gy = draw(p.planes * p.OH * p.OW);
  for (size_t i = 0; i < x.size(); i += 7) x[i] = std::round(x[i]);  // ties
  Buf dx(t, x), dgy(t, gy), y(t, int64_t(gy.size())), idx(DType::i64, int64_t(gy.size())), gx(t, int64_t(x.size()));
  Vec ry, rgx;
  std::vector<int64_t> ridx;
  pool_ref(p, x, gy, ry, ridx, rgx);
  y.nan(), idx.nan(), gx.nan();
  p.x = dx.p, p.y = y.p, p.idx = static_cast<int64_t*>(idx.p), p.gy = dgy.p, p.gx = gx.p;
  std::string bad = run([&] {
    cu::pool2d_fwd(p, 0);
    cu::pool2d_bwd(p, 0);
  });
  if (bad.empty()) bad = compare("y", y, ry);
  const bool is_max = c.kind == PoolKind::max || c.kind == PoolKind::adaptive_max;
  if (bad.empty() && is_max) bad = compare("idx", idx, Vec(ridx.begin(), ridx.end()));
  if (bad.empty()) bad = compare("gx", gx, rgx);
  report(std::string("pool2d ") + c.name + (t == DType::f32 ? " f32" : " f64"), bad);
}

void bn_case(const char* name, int64_t N, int64_t C, int64_t S, bool training, bool affine, DType t,
             double offset = 0) {
  Vec x = draw(N * C * S, offset - 2, offset + 3), w = draw(C), b = draw(C), gy = draw(N * C * S), rm = draw(C), rv = draw(C, 0.5, 2);
  Buf dx(t, x), dw(t, w), db(t, b), dgy(t, gy), drm(t, rm), drv(t, rv), y(t, N * C * S), mean(t, C), invstd(t, C),
      gx(t, N * C * S), gw(t, C), gb(t, C);
  Vec ry, rmean, ris, rgx, rgw, rgb;
  norm_ref(C, N * S, C, [&](int64_t c, int64_t e) { return (e / S * C + c) * S + e % S; },
           [](int64_t c, int64_t) { return c; }, training, 1e-5, x, affine ? &w : nullptr, affine ? &b : nullptr, gy, &rm,
           &rv, ry, rmean, ris, rgx, rgw, rgb);
  Vec rm1 = rm, rv1 = rv;
  if (training)
    for (int64_t c = 0; c < C; ++c) {
      rm1[size_t(c)] = 0.9 * rm[size_t(c)] + 0.1 * rmean[size_t(c)];
      const double var = 1 / (ris[size_t(c)] * ris[size_t(c)]) - 1e-5;
      rv1[size_t(c)] = 0.9 * rv[size_t(c)] + 0.1 * var * double(N * S) / double(N * S - 1);
    }
  y.nan(), mean.nan(), invstd.nan(), gx.nan(), gw.nan(), gb.nan();
  BatchNormParams p;
  p.dt = t, p.N = N, p.C = C, p.S = S, p.training = training, p.x = dx.p, p.w = affine ? dw.p : nullptr;
  p.b = affine ? db.p : nullptr, p.y = y.p, p.mean = mean.p, p.invstd = invstd.p, p.running_mean = drm.p;
  p.running_var = drv.p, p.gy = dgy.p, p.gx = gx.p, p.gw = gw.p, p.gb = gb.p;
  std::string bad = run([&] {
    cu::batch_norm_fwd(p, 0);
    cu::batch_norm_bwd(p, 0);
  });
  const std::pair<const char*, std::pair<const Buf*, const Vec*>> checks[] = {
      {"y", {&y, &ry}}, {"mean", {&mean, &rmean}}, {"invstd", {&invstd, &ris}}, {"running_mean", {&drm, &rm1}},
      {"running_var", {&drv, &rv1}}, {"gx", {&gx, &rgx}}, {"gw", {&gw, &rgw}}, {"gb", {&gb, &rgb}}};
  for (const auto& k : checks)
    if (bad.empty()) bad = compare(k.first, *k.second.first, *k.second.second);
  report(std::string("batch_norm ") + name + (t == DType::f32 ? " f32" : " f64"), bad);
}

void gn_case(const char* name, int64_t N, int64_t C, int64_t S, int64_t G, bool affine, DType t) {
  const int64_t Cg = C / G;
  Vec x = draw(N * C * S, -2, 3), w = draw(C), b = draw(C), gy = draw(N * C * S);
  Buf dx(t, x), dw(t, w), db(t, b), dgy(t, gy), y(t, N * C * S), mean(t, N * G), invstd(t, N * G), gx(t, N * C * S),
      gw(t, C), gb(t, C), scratch(t, 2 * N * C);
  Vec ry, rmean, ris, rgx, rgw, rgb;
  norm_ref(N * G, Cg * S, C, [&](int64_t r, int64_t e) { return r * Cg * S + e; },
           [&](int64_t r, int64_t e) { return (r % G) * Cg + e / S; }, true, 1e-5, x, affine ? &w : nullptr,
           affine ? &b : nullptr, gy, nullptr, nullptr, ry, rmean, ris, rgx, rgw, rgb);
  y.nan(), mean.nan(), invstd.nan(), gx.nan(), gw.nan(), gb.nan();
  GroupNormParams p;
  p.dt = t, p.N = N, p.C = C, p.S = S, p.G = G, p.x = dx.p, p.w = affine ? dw.p : nullptr;
  p.b = affine ? db.p : nullptr, p.y = y.p, p.mean = mean.p, p.invstd = invstd.p, p.gy = dgy.p, p.gx = gx.p;
  p.gw = gw.p, p.gb = gb.p, p.scratch = scratch.p;
  std::string bad = run([&] {
    cu::group_norm_fwd(p, 0);
    cu::group_norm_bwd(p, 0);
  });
  const std::pair<const char*, std::pair<const Buf*, const Vec*>> checks[] = {
      {"y", {&y, &ry}}, {"mean", {&mean, &rmean}}, {"invstd", {&invstd, &ris}},
      {"gx", {&gx, &rgx}}, {"gw", {&gw, &rgw}}, {"gb", {&gb, &rgb}}};
  for (const auto& k : checks)
    if (bad.empty()) bad = compare(k.first, *k.second.first, *k.second.second);
  report(std::string("group_norm ") + name + (t == DType::f32 ? " f32" : " f64"), bad);
}

// layer_norm over rows of n: group norm's forward with one group per row (N = rows, C = n, S = 1,
// G = 1: the same reference) and layer norm's own backward.
void ln_case(const char* name, int64_t rows, int64_t n, bool affine, DType t) {
  Vec x = draw(rows * n, -2, 3), w = draw(n), b = draw(n), gy = draw(rows * n);
  Buf dx(t, x), dw(t, w), db(t, b), dgy(t, gy), y(t, rows * n), mean(t, rows), invstd(t, rows), gx(t, rows * n),
      gw(t, n), gb(t, n);
  Vec ry, rmean, ris, rgx, rgw, rgb;
  norm_ref(rows, n, n, [&](int64_t r, int64_t e) { return r * n + e; }, [](int64_t, int64_t e) { return e; }, true,
           1e-5, x, affine ? &w : nullptr, affine ? &b : nullptr, gy, nullptr, nullptr, ry, rmean, ris, rgx, rgw, rgb);
  y.nan(), mean.nan(), invstd.nan(), gx.nan(), gw.nan(), gb.nan();
  GroupNormParams f;
  f.dt = t, f.N = rows, f.C = n, f.S = 1, f.G = 1, f.x = dx.p, f.w = affine ? dw.p : nullptr;
  f.b = affine ? db.p : nullptr, f.y = y.p, f.mean = mean.p, f.invstd = invstd.p;
  LayerNormParams p;
  p.dt = t, p.rows = rows, p.n = n, p.x = dx.p, p.w = f.w, p.mean = mean.p, p.invstd = invstd.p, p.gy = dgy.p;
  p.gx = gx.p, p.gw = gw.p, p.gb = gb.p;
  std::string bad = run([&] {
    cu::group_norm_fwd(f, 0);
    cu::layer_norm_bwd(p, 0);
  });
  const std::pair<const char*, std::pair<const Buf*, const Vec*>> checks[] = {
      {"y", {&y, &ry}}, {"mean", {&mean, &rmean}}, {"invstd", {&invstd, &ris}},
      {"gx", {&gx, &rgx}}, {"gw", {&gw, &rgw}}, {"gb", {&gb, &rgb}}};
  for (const auto& k : checks)
    if (bad.empty()) bad = compare(k.first, *k.second.first, *k.second.second);
  report(std::string("layer_norm ") + name + (t == DType::f32 ? " f32" : " f64"), bad);
}

void test_all() {
  const ConvCase convs[] = {
      {"3x3 pad 1", 2, 3, 9, 11, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1},
      {"strided dilated grouped", 2, 4, 13, 10, 6, 3, 2, 2, 3, 2, 1, 2, 1, 2},
      {"depthwise", 1, 8, 7, 7, 8, 3, 3, 1, 1, 1, 1, 1, 1, 8},
      {"1x1, K over a tile", 2, 70, 5, 6, 130, 1, 1, 1, 1, 0, 0, 1, 1, 1},
      {"'same' even kernel (bottom pad implied)", 1, 2, 6, 6, 3, 2, 2, 1, 1, 0, 0, 1, 1, 1, 6, 6, false},
      {"long weight-grad depth (split)", 4, 16, 20, 20, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1},
      {"stride 2, no pad, no bias", 3, 5, 12, 9, 7, 3, 3, 2, 2, 0, 0, 1, 1, 1, 0, 0, false},
      {"deep C, 4x4 maps (split k in all three)", 1, 300, 4, 4, 70, 3, 3, 1, 1, 1, 1, 1, 1, 1},
  };
  const PoolCase pools[] = {
      {"max 3x3 s2 p1", PoolKind::max, 6, 9, 10, 5, 5, 3, 3, 2, 2, 1, 1, 1, 1},
      {"max dilated, ceil-mode row", PoolKind::max, 3, 11, 8, 4, 3, 2, 3, 3, 2, 0, 1, 2, 1},
      {"avg 3x3 s2 p1 include pad", PoolKind::avg, 4, 9, 10, 5, 5, 3, 3, 2, 2, 1, 1, 1, 1},
      {"avg exclude pad", PoolKind::avg, 4, 9, 10, 5, 5, 3, 3, 2, 2, 1, 1, 1, 1, false},
      {"avg divisor 5, ceil mode", PoolKind::avg, 2, 7, 7, 4, 4, 2, 2, 2, 2, 0, 0, 1, 1, true, 5},
      {"adaptive avg 7x9 -> 3x4", PoolKind::adaptive_avg, 5, 7, 9, 3, 4, 1, 1, 1, 1, 0, 0, 1, 1},
      {"adaptive max 7x9 -> 4x5", PoolKind::adaptive_max, 5, 7, 9, 4, 5, 1, 1, 1, 1, 0, 0, 1, 1},
      {"adaptive avg up 3x2 -> 5x4", PoolKind::adaptive_avg, 2, 3, 2, 5, 4, 1, 1, 1, 1, 0, 0, 1, 1},
  };
  for (DType t : {DType::bf16, DType::f16})  // tensor-core path (fp32 accumulation)
    for (const auto& c : convs) conv_case(c, t);
  for (DType t : {DType::f32, DType::f64}) {
    for (const auto& c : convs) conv_case(c, t);
    for (const auto& c : pools) pool_case(c, t);
    bn_case("training", 4, 5, 33, true, true, t);
    bn_case("training (N, C), no affine", 300, 3, 1, true, false, t);
    bn_case("eval", 2, 6, 17, false, true, t);
    bn_case("training, mean 1000 (centred affine)", 3, 4, 50, true, true, t, 1000);
    gn_case("G 3", 2, 6, 10, 3, true, t);
    gn_case("G 1, no affine", 3, 4, 7, 1, false, t);
    ln_case("rows 37, n 384 (chunked parameter sums)", 37, 384, true, t);
    ln_case("rows 5000, n 65, no affine", 5000, 65, false, t);
    ln_case("rows 3, n 1", 3, 1, true, t);
  }
}

// ResNet 3x3 layers at batch 32, float32: forward, input grad, weight grad in TFLOP/s; the last
// two are resnet18's deep layers on 64 x 64 images (bench/gpu_models.py), where k is split.
void bench_conv() {
  const int64_t layers[][3] = {{64, 56, 56}, {128, 28, 28}, {256, 14, 14}, {512, 7, 7}, {256, 4, 4}, {512, 2, 2}};
  for (const auto& l : layers) {
    Conv2dParams p;
    p.N = 32, p.C = p.K = l[0], p.H = p.W = p.OH = p.OW = l[1], p.R = p.S = 3, p.ph = p.pw = 1, p.dt = DType::f32;
    const int64_t nx = p.N * p.C * p.H * p.W, nw = p.K * p.C * 9;
    Vec x = draw(nx), w = draw(nw);
    Buf dx(DType::f32, x), dw(DType::f32, w), y(DType::f32, nx), gx(DType::f32, nx), gw(DType::f32, nw);
    p.x = dx.p, p.w = dw.p, p.y = y.p, p.gy = dx.p, p.gx = gx.p, p.gw = gw.p;
    const double f = 2.0 * p.N * p.K * p.OH * p.OW * p.C * 9;
    const double a = time_ms([&] { cu::conv2d_fwd(p, 0); }, 5), b = time_ms([&] { cu::conv2d_bwd_input(p, 0); }, 5),
                 c = time_ms([&] { cu::conv2d_bwd_weight(p, 0); }, 5);
    std::printf("BENCH conv2d_f32_32x%lldx%lldx%lld_3x3 fwd %.3f ms %.2f TFLOP/s, dx %.3f ms %.2f, dw %.3f ms %.2f\n",
                (long long)l[0], (long long)l[1], (long long)l[1], a, f / a / 1e9, b, f / b / 1e9, c, f / c / 1e9);
  }
}

}  // namespace

// nn_cuda [--bench]
int main(int argc, char** argv) {
  if (!cu::is_available()) {
    std::printf("FAIL no CUDA device\n");
    return 1;
  }
  try {
    argc > 1 && std::strcmp(argv[1], "--bench") == 0 ? bench_conv() : test_all();
  } catch (const std::exception& e) {
    report("exception", e.what());
  }
  std::printf("nn_cuda: %d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
#endif
