// conv2d's CUDA kernels (csrc/cuda/conv_kernels.cuh: the three implicit-GEMM gathers, the SIMT
// kernel with its incremental k digits, split k and the split sums) run on the host's emulated
// threads (emu.h) against a float64 direct convolution, over strides, padding, dilation, groups,
// odd sizes and the split choices the host side (cuda/conv.cu) makes for a small and a large GPU.
// Built and run by tests/test_cuda_emulated.py; a GPU runs the same kernels in nn_cuda.
#include <algorithm>
#include <cstdio>
#include <random>
#include <string>

#include "emu.h"
#include "cuda/conv_kernels.cuh"
using namespace fastdl;
using namespace fastdl::cuda::conv_detail;

int fails = 0;

// One GEMM (Op) as cuda/conv.cu launches it on a device with `sms` multiprocessors.
template <class T, class Op> int64_t launch(const Conv2dParams& p, int64_t sms) {
  const int64_t M = Op::rows(p), cols = Op::cols(p), gx = (cols + kBN - 1) / kBN, gy = (M + kBM - 1) / kBM;
  const Split sp = choose_split(Op::depth(p), gx * gy * p.groups, sms, kBK, p.groups);
  const int64_t n = p.groups * M * cols;
  std::vector<Acc<T>> ws(sp.splits > 1 ? size_t(sp.splits * n) : 0, Acc<T>(NAN));
  Acc<T>* part = ws.empty() ? nullptr : ws.data();
  emu_launch(dim3{unsigned(gx), unsigned(gy), unsigned(p.groups * sp.splits)}, kGemmThreads,
             [&] { conv_gemm_kernel<T, Op>(p, sp.splits, sp.kspan, part); });
  if (part) emu_launch(dim3{2, 1, 1}, 64, [&] { splits_finish_kernel<T, Op>(p, part, sp.splits); });
  return sp.splits;
}

template <class T>
void run(const char* name, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S, int64_t st,
         int64_t pad, int64_t dil, int64_t groups, bool bias, int64_t sms) {
  Conv2dParams p;
  p.N = N; p.C = C; p.H = H; p.W = W; p.K = K; p.R = R; p.S = S;
  p.sh = st; p.sw = st == 1 ? 1 : st + 1;  // unequal strides along h and w when strided
  p.ph = pad; p.pw = pad;
  p.dh = dil; p.dw = 1;
  p.groups = groups;
  p.OH = (H + 2 * p.ph - p.dh * (R - 1) - 1) / p.sh + 1;
  p.OW = (W + 2 * p.pw - p.dw * (S - 1) - 1) / p.sw + 1;
  p.dt = sizeof(T) == 8 ? DType::f64 : DType::f32;
  const int64_t Cg = C / groups, Kg = K / groups;
  std::mt19937 g(unsigned(N * 977 + C * 131 + H * 17 + K + sms));
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<T> x(size_t(N * C * H * W)), w(size_t(K * Cg * R * S)), b(static_cast<size_t>(K)), gy(size_t(N * K * p.OH * p.OW));
  for (auto* v : {&x, &w, &b, &gy})
    for (auto& e : *v) e = T(u(g));
  std::vector<T> y(gy.size(), T(NAN)), gx(x.size(), T(NAN)), gw(w.size(), T(NAN));
  p.x = x.data(); p.w = w.data(); p.b = bias ? b.data() : nullptr; p.y = y.data();
  p.gy = gy.data(); p.gx = gx.data(); p.gw = gw.data();
  const int64_t s0 = launch<T, FwdOp<T>>(p, sms), s1 = launch<T, BwdInputOp<T>>(p, sms),
                s2 = launch<T, BwdWeightOp<T>>(p, sms);
  // float64 reference: the definition in kernels/conv.h and its two adjoints
  std::vector<double> ry(y.size(), 0), rgx(x.size(), 0), rgw(w.size(), 0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t oh = 0; oh < p.OH; ++oh)
        for (int64_t ow = 0; ow < p.OW; ++ow) {
          const size_t yi = size_t(((n * K + k) * p.OH + oh) * p.OW + ow);
          double acc = bias ? double(b[size_t(k)]) : 0;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t r = 0; r < R; ++r)
              for (int64_t s = 0; s < S; ++s) {
                const int64_t ih = oh * p.sh - p.ph + r * p.dh, iw = ow * p.sw - p.pw + s * p.dw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const size_t xi = size_t(((n * C + (k / Kg) * Cg + c) * H + ih) * W + iw);
                const size_t wi = size_t(((k * Cg + c) * R + r) * S + s);
                acc += double(w[wi]) * double(x[xi]);
                rgx[xi] += double(w[wi]) * double(gy[yi]);
                rgw[wi] += double(x[xi]) * double(gy[yi]);
              }
          ry[yi] = acc;
        }
  auto err = [](const std::vector<T>& got, const std::vector<double>& want) {
    double e = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      const double d = std::fabs(double(got[i]) - want[i]) / (1 + std::fabs(want[i]));
      e = std::isnan(d) ? INFINITY : std::max(e, d);
    }
    return e;
  };
  const double tol = sizeof(T) == 8 ? 1e-12 : 2e-5;
  const double ey = err(y, ry), ex = err(gx, rgx), ew = err(gw, rgw);
  const bool ok = ey < tol && ex < tol && ew < tol;
  fails += !ok;
  std::printf("%s %s %s (splits fwd %lld, dx %lld, dw %lld): err y %.2e gx %.2e gw %.2e\n", ok ? "PASS" : "FAIL", name,
              sizeof(T) == 8 ? "f64" : "f32", (long long)s0, (long long)s1, (long long)s2, ey, ex, ew);
}

int main() {
  // name, N, C, H, W, K, R, S, stride, pad, dilation, groups, bias, multiprocessors
  run<float>("3x3 same", 2, 5, 7, 9, 6, 3, 3, 1, 1, 1, 1, true, 132);
  run<double>("3x3 same", 2, 5, 7, 9, 6, 3, 3, 1, 1, 1, 1, true, 132);
  run<float>("deep c, split k", 1, 70, 6, 5, 9, 3, 3, 1, 1, 1, 1, true, 132);
  run<double>("deep c, split k", 1, 70, 6, 5, 9, 3, 3, 1, 1, 1, 1, false, 132);
  run<float>("long n*h*w, split dw", 3, 4, 15, 14, 5, 3, 2, 1, 0, 1, 1, false, 132);
  run<float>("long n*h*w, one split", 3, 4, 15, 14, 5, 3, 2, 1, 0, 1, 1, true, 1);
  run<float>("strided", 2, 6, 11, 13, 4, 3, 3, 2, 1, 1, 1, true, 132);
  run<double>("strided 1x1", 3, 7, 9, 8, 5, 1, 1, 2, 0, 1, 1, false, 132);
  run<float>("dilated", 2, 3, 12, 10, 4, 3, 3, 1, 2, 2, 1, true, 132);
  run<float>("groups", 2, 6, 8, 7, 9, 3, 3, 1, 1, 1, 3, true, 132);
  run<double>("depthwise strided", 2, 4, 9, 9, 4, 5, 3, 3, 2, 1, 4, true, 132);
  run<float>("wide k over 64 rows", 1, 3, 5, 6, 70, 2, 2, 1, 0, 1, 1, true, 132);
  std::printf("%d failed\n", fails);
  return fails != 0;
}
