// Native benchmark of the selective scan (cpu/selective_scan.h), without Python: random
// Mamba-like inputs, the chosen ISA validated against the scalar reference (forward output,
// last state, every gradient), then forward and forward + backward timed, with the useful
// bytes per second (u, delta, z, out once each way; B, C) and the state updates per second.
//   selective_scan [--batch 2] [--dim 768] [--len 1024] [--state 16] [--groups 1]
//                  [--threads N] [--impl ref|avx2|avx512] [--dtype f32|f64] [--chunk 64]
#include <random>

#include "common.h"
#include "cpu/selective_scan.h"

using namespace fastdl;
using namespace fastdl::bench;

namespace {

template <class T>
struct Problem {
  int64_t batch, dim, L, N, G;
  std::vector<T> u, delta, A, B, C, D, z, bias, gout;
  Problem(int64_t b, int64_t d, int64_t l, int64_t n, int64_t g) : batch(b), dim(d), L(l), N(n), G(g) {
    std::mt19937 rng(7);
    std::normal_distribution<double> nd;
    std::uniform_real_distribution<double> ud(-0.5, 0.5);
    auto fill = [&](std::vector<T>& v, size_t n_, auto gen) { v.resize(n_); for (auto& x : v) x = T(gen()); };
    const size_t bdl = size_t(b * d * l), bc = size_t(b * g * n * l);
    fill(u, bdl, [&] { return nd(rng); });
    fill(delta, bdl, [&] { return ud(rng); });
    fill(A, size_t(d * n), [&] { return -std::exp(0.5 * nd(rng)); });
    fill(B, bc, [&] { return nd(rng); });
    fill(C, bc, [&] { return nd(rng); });
    fill(D, size_t(d), [&] { return nd(rng); });
    fill(z, bdl, [&] { return nd(rng); });
    fill(bias, size_t(d), [&] { return 0.1 * nd(rng); });
    fill(gout, bdl, [&] { return nd(rng); });
  }
};

template <class T>
struct Outputs {
  std::vector<T> out, last, ckpt, du, dd, dA, dB, dC, dD, dz, db;
};

template <class T>
cpu::SelectiveScanParams params(Problem<T>& q, Outputs<T>& o, int64_t chunk) {
  cpu::SelectiveScanParams p;
  p.chunk = chunk;
  p.batch = q.batch; p.dim = q.dim; p.L = q.L; p.N = q.N; p.groups = q.G;
  p.dt = sizeof(T) == 8 ? DType::f64 : DType::f32;
  p.u = q.u.data(); p.delta = q.delta.data(); p.A = q.A.data(); p.B = q.B.data(); p.C = q.C.data();
  p.D = q.D.data(); p.z = q.z.data(); p.delta_bias = q.bias.data(); p.softplus = true;
  const size_t bdl = q.u.size();
  o.out.assign(bdl, T(0)); o.last.assign(size_t(q.batch * q.dim * q.N), T(0));
  o.ckpt.assign(size_t(q.batch * q.dim * cpu::scan_chunks(p) * q.N), T(0));
  o.du.assign(bdl, T(0)); o.dd.assign(bdl, T(0)); o.dz.assign(bdl, T(0));
  o.dA.assign(q.A.size(), T(0)); o.dB.assign(q.B.size(), T(0)); o.dC.assign(q.C.size(), T(0));
  o.dD.assign(q.D.size(), T(0)); o.db.assign(q.D.size(), T(0));
  p.out = o.out.data(); p.last_state = o.last.data(); p.checkpoints = o.ckpt.data();
  p.gout = q.gout.data();
  p.du = o.du.data(); p.ddelta = o.dd.data(); p.dA = o.dA.data(); p.dB = o.dB.data(); p.dC = o.dC.data();
  p.dD = o.dD.data(); p.dz = o.dz.data(); p.ddelta_bias = o.db.data();
  return p;
}

template <class T>
double max_rel(const std::vector<T>& a, const std::vector<T>& b) {
  double scale = 0, err = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    scale = std::max(scale, std::fabs(double(b[i])));
    err = std::max(err, std::fabs(double(a[i]) - double(b[i])));
  }
  return err / std::max(scale, 1e-30);
}

template <class T>
int run(const Args& a) {
  Problem<T> q(a.geti("--batch", 2), a.geti("--dim", 768), a.geti("--len", 1024), a.geti("--state", 16),
               a.geti("--groups", 1));
  Outputs<T> got, ref;
  const int64_t chunk = a.geti("--chunk", 64);
  cpu::SelectiveScanParams p = params(q, got, chunk), r = params(q, ref, chunk);
  const cpu::ScanKernels& k = cpu::scan_kernels();
  // validate against the scalar reference
  k.fwd(p); k.bwd(p);
  cpu::selective_scan_fwd_ref(r); cpu::selective_scan_bwd_ref(r);
  const double tol = sizeof(T) == 8 ? 1e-10 : 2e-3;
  struct { const char* name; double err; } checks[] = {
      {"out", max_rel(got.out, ref.out)}, {"last_state", max_rel(got.last, ref.last)}, {"du", max_rel(got.du, ref.du)},
      {"ddelta", max_rel(got.dd, ref.dd)}, {"dA", max_rel(got.dA, ref.dA)}, {"dB", max_rel(got.dB, ref.dB)},
      {"dC", max_rel(got.dC, ref.dC)}, {"dD", max_rel(got.dD, ref.dD)}, {"dz", max_rel(got.dz, ref.dz)},
      {"ddelta_bias", max_rel(got.db, ref.db)}};
  bool ok = true;
  for (auto& c : checks) {
    ok &= c.err <= tol;
    if (c.err > tol) std::printf("FAIL %s: max relative error %.3g > %.3g\n", c.name, c.err, tol);
  }
  std::printf("selective_scan %s isa=%s threads=%d (batch, dim, L, N, groups) = (%lld, %lld, %lld, %lld, %lld): "
              "validation vs scalar reference %s\n", sizeof(T) == 8 ? "f64" : "f32", isa_name(cpu_isa()),
              get_num_threads(), (long long)q.batch, (long long)q.dim, (long long)q.L, (long long)q.N, (long long)q.G,
              ok ? "PASS" : "FAIL");
  const double min_s = std::atof(a.get("--min-time", "1.0"));
  cpu::SelectiveScanParams pf = p;
  pf.checkpoints = nullptr;  // inference: no checkpoints
  const double tf = time_median([&] { k.fwd(pf); }, 5, min_s);
  const double tb = time_median([&] { k.fwd(p); k.bwd(p); }, 3, min_s);
  const double io = double(sizeof(T)) * double(4 * q.u.size() + 2 * q.B.size());
  const double updates = double(q.batch * q.dim * q.L * q.N);
  std::printf("  forward          %9.3f ms  %6.2f GB/s useful  %7.2f G state updates/s\n", tf * 1e3, io / tf / 1e9,
              updates / tf / 1e9);
  std::printf("  forward+backward %9.3f ms  %6.2f GB/s useful  %7.2f G state updates/s (forward counted once)\n",
              tb * 1e3, 3 * io / tb / 1e9, updates / tb / 1e9);
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args a{argc, argv};
  if (!apply_impl_threads(a)) return 2;
  const char* dt = a.get("--dtype", "f32");
  return std::strcmp(dt, "f64") == 0 ? run<double>(a) : run<float>(a);
}
