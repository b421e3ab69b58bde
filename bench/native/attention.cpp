// Native benchmark of fused attention (cpu/attention.h), without Python: random q, k, v, the
// chosen ISA validated against the scalar reference (out, lse, dq, dk, dv), then forward and
// forward + backward timed, in useful GFLOP/s (causal counts the visible half) and % of the
// machine's measured FMA peak. The shapes by default; --no-check skips the validation
// (the scalar reference takes longer than the timing at L 2048):
//   attention [--shape B,H,L,D ...] [--causal] [--threads N] [--impl ref|avx2|avx512]
//             [--dtype f32|f64] [--min-time S] [--no-check]
#include <array>
#include <random>

#include "common.h"
#include "cpu/attention.h"

using namespace fastdl;
using namespace fastdl::bench;

namespace {

template <class T>
struct Buffers {
  std::vector<T> q, k, v, g, out, lse, dq, dk, dv;
};

template <class T>
cpu::AttentionParams make(int64_t B, int64_t H, int64_t L, int64_t D, bool causal, Buffers<T>& b, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> nd;
  const size_t n = size_t(B * H * L * D);
  for (auto* v : {&b.q, &b.k, &b.v, &b.g}) {
    v->resize(n);
    for (auto& x : *v) x = T(nd(rng));
  }
  b.out.assign(n, T(0)); b.dq.assign(n, T(0)); b.dk.assign(n, T(0)); b.dv.assign(n, T(0));
  b.lse.assign(size_t(B * H * L), T(0));
  cpu::AttentionParams p;
  p.batch = B; p.heads = H; p.kv_heads = H; p.L = L; p.S = L; p.E = D; p.Ev = D;
  p.dt = sizeof(T) == 8 ? DType::f64 : DType::f32;
  p.scale = 1.0 / std::sqrt(double(D));
  p.causal = causal;
  p.q = b.q.data(); p.q_sb = H * L * D; p.q_sh = L * D; p.q_sl = D;
  p.k = b.k.data(); p.k_sb = H * L * D; p.k_sh = L * D; p.k_sl = D;
  p.v = b.v.data(); p.v_sb = H * L * D; p.v_sh = L * D; p.v_sl = D;
  p.out = b.out.data(); p.lse = b.lse.data(); p.gout = b.g.data();
  p.dq = b.dq.data(); p.dk = b.dk.data(); p.dv = b.dv.data();
  return p;
}

template <class T>
double max_rel(const std::vector<T>& a, const std::vector<T>& b) {
  double scale = 0, err = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(double(b[i]))) continue;  // +inf lse of a fully masked row
    scale = std::max(scale, std::fabs(double(b[i])));
    err = std::max(err, std::fabs(double(a[i]) - double(b[i])));
  }
  return err / std::max(scale, 1e-30);
}

template <class T>
bool run_shape(int64_t B, int64_t H, int64_t L, int64_t D, bool causal, double min_s, double peak, bool check) {
  Buffers<T> got, ref;
  cpu::AttentionParams p = make(B, H, L, D, causal, got, 11), r = make(B, H, L, D, causal, ref, 11);
  const cpu::AttentionKernels& k = cpu::attention_kernels();
  bool ok = true;
  check &= L <= 2048;
  if (check) {  // the reference is O(L^2 D) per head in double: validate the smaller shapes
    k.fwd(p); k.bwd(p);
    cpu::attention_fwd_ref(r); cpu::attention_bwd_ref(r);
    const double tol = sizeof(T) == 8 ? 1e-10 : 2e-4;
    struct { const char* name; double err; } checks[] = {{"out", max_rel(got.out, ref.out)}, {"lse", max_rel(got.lse, ref.lse)},
        {"dq", max_rel(got.dq, ref.dq)}, {"dk", max_rel(got.dk, ref.dk)}, {"dv", max_rel(got.dv, ref.dv)}};
    for (auto& c : checks)
      if (c.err > tol) { ok = false; std::printf("FAIL %s: max relative error %.3g > %.3g\n", c.name, c.err, tol); }
  }
  const double tf = time_median([&] { k.fwd(p); }, 3, min_s);
  const double tb = time_median([&] { k.fwd(p); k.bwd(p); }, 3, min_s);
  // useful flops: forward 2 GEMMs (QK^T, PV), backward 5 (S again, dV, dP, dQ, dK)
  const double f = 2.0 * double(B * H) * double(L) * double(L) * double(D) * (causal ? 0.5 : 1.0);
  std::printf("  (%lld,%lld,%lld,%lld) %-6s %s  fwd %8.2f ms %6.1f GF/s %5.1f%%   fwd+bwd %8.2f ms %6.1f GF/s %5.1f%%\n",
              (long long)B, (long long)H, (long long)L, (long long)D, causal ? "causal" : "full",
              check ? (ok ? "valid" : "WRONG") : "     ", tf * 1e3, 2 * f / tf / 1e9, 100 * 2 * f / tf / 1e9 / peak,
              tb * 1e3, 7 * f / tb / 1e9, 100 * 7 * f / tb / 1e9 / peak);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  Args a{argc, argv};
  if (!apply_impl_threads(a)) return 2;
  const bool f64 = std::strcmp(a.get("--dtype", "f32"), "f64") == 0;
  const double min_s = std::atof(a.get("--min-time", "1.0"));
  std::vector<std::array<int64_t, 4>> shapes;
  for (int i = 1; i + 1 < argc; ++i)
    if (!std::strcmp(argv[i], "--shape")) {
      std::array<int64_t, 4> s{};
      if (std::sscanf(argv[i + 1], "%ld,%ld,%ld,%ld", &s[0], &s[1], &s[2], &s[3]) == 4) shapes.push_back(s);
    }
  if (shapes.empty()) shapes = {{4, 8, 1024, 64}, {2, 8, 2048, 64}, {1, 8, 4096, 64}};
  const double peak = fma_peak_gflops(cpu_isa(), f64 ? PeakKind::f64 : PeakKind::f32, get_num_threads());
  std::printf("attention %s isa=%s threads=%d, FMA peak %.1f GFLOP/s (useful flops; %% of peak)\n", f64 ? "f64" : "f32",
              isa_name(cpu_isa()), get_num_threads(), peak);
  bool ok = true;
  for (auto& s : shapes)
    for (bool causal : {false, true}) {
      if (a.has("--causal") && !causal) continue;
      const bool check = !a.has("--no-check");
      ok &= f64 ? run_shape<double>(s[0], s[1], s[2], s[3], causal, min_s, peak, check)
                : run_shape<float>(s[0], s[1], s[2], s[3], causal, min_s, peak, check);
    }
  return ok ? 0 : 1;
}
