// Native benchmark of 2-D convolution (cpu/conv.h), without Python: for each layer of the sweep
// (issue 9: the ResNet 3x3 layers at batch 32, LeNet's c1, the ResNet stem), the chosen ISA is
// validated against the scalar reference on a 2-image copy of the layer (output, input and
// weight gradients, bias gradient), then forward, input gradient and weight gradient are timed
// (median) and printed as GFLOP/s and % of the FMA peak measured on this machine.
//   conv2d [--layer N,C,H,K,k,stride,pad] [--threads N] [--impl ref|avx2|avx512] [--dtype f32|f64]
//          [--min-time S] [--no-check]
#include <random>

#include "common.h"
#include "cpu/conv.h"

using namespace fastdl;
using namespace fastdl::bench;

namespace {

struct Layer { const char* name; int64_t N, C, H, K, k, s, p; };

const Layer kLayers[] = {
    {"resnet 64x56x56", 32, 64, 56, 64, 3, 1, 1},   {"resnet 128x28x28", 32, 128, 28, 128, 3, 1, 1},
    {"resnet 256x14x14", 32, 256, 14, 256, 3, 1, 1}, {"resnet 512x7x7", 32, 512, 7, 512, 3, 1, 1},
    {"lenet c1", 256, 1, 28, 6, 5, 1, 0},             {"resnet stem k7 s2", 8, 3, 224, 64, 7, 2, 3},
};

template <class T>
struct Buffers {
  std::vector<T> x, w, b, gy, y, gx, gw, gb;
  cpu::Conv2dParams p;
  Buffers(const Layer& l, int64_t N, uint32_t seed) {
    p.N = N; p.C = l.C; p.H = p.W = l.H; p.K = l.K; p.R = p.S = l.k;
    p.sh = p.sw = l.s; p.ph = p.pw = l.p;
    p.OH = p.OW = (l.H + 2 * l.p - l.k) / l.s + 1;
    p.dt = sizeof(T) == 8 ? DType::f64 : DType::f32;
    std::mt19937 rng(seed);
    std::normal_distribution<double> nd;
    auto fill = [&](std::vector<T>& v, int64_t n, double scale) { v.resize(size_t(n)); for (auto& e : v) e = T(scale * nd(rng)); };
    fill(x, N * l.C * l.H * l.H, 1.0);
    fill(w, l.K * l.C * l.k * l.k, 1.0 / std::sqrt(double(l.C * l.k * l.k)));
    fill(b, l.K, 1.0);
    fill(gy, N * l.K * p.OH * p.OW, 1.0);
    y.assign(gy.size(), T(NAN)); gx.assign(x.size(), T(NAN)); gw.assign(w.size(), T(NAN)); gb.assign(b.size(), T(NAN));
    p.x = x.data(); p.w = w.data(); p.b = b.data(); p.y = y.data();
    p.gy = gy.data(); p.gx = gx.data(); p.gw = gw.data(); p.gb = gb.data();
  }
  double fwd_flops() const { return 2.0 * double(p.N * p.K * p.C * p.R * p.S * p.OH * p.OW); }
};

template <class T>
double max_rel(const std::vector<T>& a, const std::vector<T>& b) {
  double scale = 0, err = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    scale = std::max(scale, std::fabs(double(b[i])));
    const double d = std::fabs(double(a[i]) - double(b[i]));
    err = std::max(err, d == d ? d : INFINITY);  // NaN: an element never written
  }
  return err / std::max(scale, 1e-30);
}

template <class T>
bool validate(const Layer& l) {
  Buffers<T> got(l, 2, 11), ref(l, 2, 11);
  const cpu::ConvKernels& k = cpu::conv_kernels();
  k.fwd(got.p); k.bwd_input(got.p); k.bwd_weight(got.p);
  const cpu::ConvKernels& r = cpu::conv_ref_kernels();
  r.fwd(ref.p); r.bwd_input(ref.p); r.bwd_weight(ref.p);
  const double tol = sizeof(T) == 8 ? 1e-12 : 1e-5;
  struct { const char* name; double err; } c[] = {{"y", max_rel(got.y, ref.y)}, {"gx", max_rel(got.gx, ref.gx)},
                                                  {"gw", max_rel(got.gw, ref.gw)}, {"gb", max_rel(got.gb, ref.gb)}};
  bool ok = true;
  for (auto& e : c)
    if (!(e.err <= tol)) { ok = false; std::printf("  FAIL %s: max relative error %.3g > %.3g\n", e.name, e.err, tol); }
  return ok;
}

template <class T>
int run(const Args& a) {
  std::vector<Layer> layers(std::begin(kLayers), std::end(kLayers));
  if (const char* s = a.get("--layer")) {
    Layer l{"custom", 0, 0, 0, 0, 0, 0, 0};
    if (std::sscanf(s, "%ld,%ld,%ld,%ld,%ld,%ld,%ld", &l.N, &l.C, &l.H, &l.K, &l.k, &l.s, &l.p) != 7) {
      std::fprintf(stderr, "--layer wants N,C,H,K,k,stride,pad\n");
      return 2;
    }
    layers = {l};
  }
  const int nt = get_num_threads();
  const double peak = fma_peak_gflops(cpu_isa(), sizeof(T) == 8 ? PeakKind::f64 : PeakKind::f32, nt);
  const double min_s = std::atof(a.get("--min-time", "0.5"));
  std::printf("conv2d %s isa=%s (%s) threads=%d, measured FMA peak %.1f GFLOP/s\n", sizeof(T) == 8 ? "f64" : "f32",
              isa_name(cpu_isa()), cpu::conv_kernels().name, nt, peak);
  std::printf("%-20s %6s %21s %21s %21s %21s\n", "layer", "check", "forward", "input grad", "weight grad",
              "fwd+bwd");
  bool all_ok = true;
  for (const Layer& l : layers) {
    const bool ok = a.has("--no-check") || validate<T>(l);
    all_ok &= ok;
    Buffers<T> q(l, l.N, 3);
    const cpu::ConvKernels& k = cpu::conv_kernels();
    const double tf = time_median([&] { k.fwd(q.p); }, 3, min_s);
    const double ti = time_median([&] { k.bwd_input(q.p); }, 3, min_s);
    const double tw = time_median([&] { k.bwd_weight(q.p); }, 3, min_s);
    const double f = q.fwd_flops();
    auto cell = [&](double t, double fl) { std::printf(" %8.2fms %5.0fGF %3.0f%%", t * 1e3, fl / t / 1e9, 100 * fl / t / 1e9 / peak); };
    std::printf("%-20s %6s", l.name, a.has("--no-check") ? "-" : ok ? "PASS" : "FAIL");
    cell(tf, f); cell(ti, f); cell(tw, f); cell(tf + ti + tw, 3 * f);
    std::printf("\n");
  }
  return all_ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args a{argc, argv};
  if (!apply_impl_threads(a)) return 2;
  const char* dt = a.get("--dtype", "f32");
  return std::strcmp(dt, "f64") == 0 ? run<double>(a) : run<float>(a);
}
