// layer_norm on CUDA (csrc/cuda/norm_kernels.cuh: group norm's forward with one group per row,
// layer norm's backward and its parameter sums) run on the host's emulated threads (emu.h)
// against a float64 reference, with the chunking the host side (cuda/norm.cu) chooses.
// Built and run by tests/test_cuda_emulated.py; a GPU runs the same cases in cuda_check.
#include <cstdio>
#include <random>

#include "emu.h"
#include "cuda/norm_kernels.cuh"
using namespace fastdl;
using namespace fastdl::cuda::norm_detail;

int fails = 0;
template <class T> void run(int64_t rows, int64_t n, bool affine, int64_t chunks, unsigned bwd_blocks) {
  std::mt19937 g(unsigned(rows * 1000 + n));
  std::uniform_real_distribution<double> u(-2, 2);
  std::vector<T> x(static_cast<size_t>(rows * n)), w(static_cast<size_t>(n)), b(static_cast<size_t>(n)), gy(x.size());
  for (auto& v : x) v = T(u(g) + 0.5);
  for (auto& v : w) v = T(u(g));
  for (auto& v : b) v = T(u(g));
  for (auto& v : gy) v = T(u(g));
  std::vector<T> y(x.size(), T(NAN)), mean(size_t(rows), T(NAN)), invstd(size_t(rows), T(NAN));
  std::vector<T> gx(x.size(), T(NAN)), gw(size_t(n), T(NAN)), gb(size_t(n), T(NAN));
  GroupNormParams f;
  f.dt = sizeof(T) == 8 ? DType::f64 : DType::f32;
  f.N = rows; f.C = n; f.S = 1; f.G = 1; f.eps = 1e-5;
  f.x = x.data(); f.w = affine ? w.data() : nullptr; f.b = affine ? b.data() : nullptr;
  f.y = y.data(); f.mean = mean.data(); f.invstd = invstd.data();
  emu_launch(dim3{unsigned(rows), 1, 1}, kNormThreads, [&] { gn_fwd_kernel<T>(f); });
  LayerNormParams p;
  p.dt = f.dt; p.rows = rows; p.n = n;
  p.x = x.data(); p.w = f.w; p.mean = mean.data(); p.invstd = invstd.data(); p.gy = gy.data();
  p.gx = gx.data(); p.gw = gw.data(); p.gb = gb.data();
  emu_launch(dim3{bwd_blocks, 1, 1}, kNormThreads, [&] { ln_bwd_kernel<T>(p); });
  const int64_t cblocks = (n + kNormThreads - 1) / kNormThreads, rpc = (rows + chunks - 1) / chunks;
  chunks = (rows + rpc - 1) / rpc;
  std::vector<double> ws(size_t(2 * chunks * n), NAN);
  emu_launch(dim3{unsigned(cblocks), unsigned(chunks), 1}, kNormThreads, [&] { ln_param_partial_kernel<T>(p, rpc, ws.data()); });
  emu_launch(dim3{unsigned(cblocks), 1, 1}, kNormThreads, [&] { ln_param_reduce_kernel<T>(p, chunks, ws.data()); });
  // float64 reference
  double err = 0;
  std::vector<double> rgw(size_t(n), 0), rgb(size_t(n), 0);
  for (int64_t r = 0; r < rows; ++r) {
    double m = 0, v = 0;
    for (int64_t e = 0; e < n; ++e) m += double(x[size_t(r * n + e)]);
    m /= double(n);
    for (int64_t e = 0; e < n; ++e) v += (double(x[size_t(r * n + e)]) - m) * (double(x[size_t(r * n + e)]) - m);
    const double is = 1 / std::sqrt(v / double(n) + 1e-5);
    double sd = 0, sdx = 0;
    for (int64_t e = 0; e < n; ++e) {
      const size_t i = size_t(r * n + e);
      const double xh = (double(x[i]) - m) * is, d = double(gy[i]) * (affine ? double(w[size_t(e)]) : 1.0);
      const double want = affine ? xh * double(w[size_t(e)]) + double(b[size_t(e)]) : xh;
      err = std::max(err, std::fabs(double(y[i]) - want) / (1 + std::fabs(want)));
      sd += d, sdx += d * xh;
      rgw[size_t(e)] += double(gy[i]) * xh, rgb[size_t(e)] += double(gy[i]);
    }
    for (int64_t e = 0; e < n; ++e) {
      const size_t i = size_t(r * n + e);
      const double xh = (double(x[i]) - m) * is, d = double(gy[i]) * (affine ? double(w[size_t(e)]) : 1.0);
      const double want = is * (d - sd / double(n) - xh * sdx / double(n));
      err = std::max(err, std::fabs(double(gx[i]) - want) / (1 + std::fabs(want)));
    }
    err = std::max(err, std::fabs(double(mean[size_t(r)]) - m) + std::fabs(double(invstd[size_t(r)]) - is) / is);
  }
  for (int64_t e = 0; e < n; ++e) {
    err = std::max(err, std::fabs(double(gw[size_t(e)]) - rgw[size_t(e)]) / (1 + std::fabs(rgw[size_t(e)])));
    err = std::max(err, std::fabs(double(gb[size_t(e)]) - rgb[size_t(e)]) / (1 + std::fabs(rgb[size_t(e)])));
  }
  const bool ok = std::isfinite(err) && err < (sizeof(T) == 8 ? 1e-10 : 2e-4);
  fails += !ok;
  std::printf("%s layer_norm %s rows=%ld n=%ld affine=%d chunks=%ld bwd_blocks=%u err=%.2g\n", ok ? "PASS" : "FAIL",
              sizeof(T) == 8 ? "f64" : "f32", long(rows), long(n), int(affine), long(chunks), bwd_blocks, err);
}

int main() {
  run<float>(13, 300, true, 5, 7);
  run<float>(5, 1000, false, 2, 3);
  run<double>(20, 65, true, 9, 6);
  run<double>(3, 1, true, 1, 2);
  run<float>(24, 7, true, 24, 5);
  std::printf("%d failed\n", fails);
  return fails ? 1 : 0;
}
