// GEMM benchmark and correctness check.
//   gemm --check [--seed S] [--cases N]   every ISA present x f32/f64/bf16 against gemm_ref on
//        random shapes 1..300, random transposes/strides, beta 0 over NaN-filled C, beta != 0,
//        batches with batch strides (0 = broadcast operand), sentinels in C's gaps; exits 1 on
//        any mismatch.
//   gemm [--impl ref|avx2|avx512] [--threads N] [--dtype f32|f64|bf16] [--sizes MxNxK,...]
//        [--layout nn|nt|both] [--peak GFLOPS] [--min-time S]
//        validates the sweep sizes once, then prints GFLOP/s and % of the measured FMA peak.
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "common.h"
#include "core/cpu_info.h"
#include "core/dtype.h"
#include "core/parallel.h"
#include "cpu/gemm.h"

using namespace fastdl;
using namespace fastdl::bench;
using cpu::GemmParams;

namespace {

const char* dname(DType t) { return t == DType::f64 ? "f64" : t == DType::bf16 ? "bf16" : "f32"; }
DType parse_dtype(const char* s) {
  return !std::strcmp(s, "f64") ? DType::f64 : !std::strcmp(s, "bf16") ? DType::bf16 : DType::f32;
}
double get(DType t, const void* p, int64_t i) {
  if (t == DType::f64) return static_cast<const double*>(p)[i];
  if (t == DType::bf16) return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
  return static_cast<const float*>(p)[i];
}
void put(DType t, void* p, int64_t i, double v) {
  if (t == DType::f64) static_cast<double*>(p)[i] = v;
  else if (t == DType::bf16) static_cast<uint16_t*>(p)[i] = f32_to_bf16(float(v));
  else static_cast<float*>(p)[i] = float(v);
}
bool same_bits(DType t, const void* a, const void* b, int64_t i) {
  size_t e = dtype_size(t);
  return std::memcmp(static_cast<const char*>(a) + i * e, static_cast<const char*>(b) + i * e, e) == 0;
}

// A strided view of a (batch, R, C) operand inside a buffer: layout 0 row-major,
// 1 column-major (transposed), 2 row-major with padded rows, 3 element stride 2.
struct View {
  int64_t sb = 0, sr = 0, sc = 0, span = 0;
};
View make_view(std::mt19937& g, int64_t batch, int64_t R, int64_t C, bool allow_bcast) {
  View v;
  const int layout = int(g() % 4);
  const int64_t pad = g() % 3 == 0 ? int64_t(g() % 5) : 0;
  if (layout == 0) { v.sr = C; v.sc = 1; }
  else if (layout == 1) { v.sr = 1; v.sc = R + pad; }
  else if (layout == 2) { v.sr = C + 1 + pad; v.sc = 1; }
  else { v.sr = 2 * C + pad; v.sc = 2; }
  const int64_t one = (R - 1) * v.sr + (C - 1) * v.sc + 1;
  v.sb = allow_bcast && batch > 1 && g() % 3 == 0 ? 0 : one + int64_t(g() % 3);
  v.span = (batch - 1) * v.sb + one;
  return v;
}

struct Buf {
  std::vector<char> b;
  Buf(DType t, int64_t n) : b(size_t(n) * dtype_size(t)) {}
  void* p() { return b.data(); }
};

// One random (or given) case; returns false on mismatch.
bool check_case(std::mt19937& g, DType dt, int64_t M, int64_t N, int64_t K, int64_t batch, bool verbose) {
  std::uniform_real_distribution<double> u(-1, 1);
  View va = make_view(g, batch, M, K, true), vb = make_view(g, batch, K, N, true);
  View vc = make_view(g, batch, M, N, false);
  Buf A(dt, va.span), B(dt, vb.span), C(dt, vc.span), R(dt, vc.span);
  for (int64_t i = 0; i < va.span; ++i) put(dt, A.p(), i, u(g));
  for (int64_t i = 0; i < vb.span; ++i) put(dt, B.p(), i, u(g));
  const int bmode = int(g() % 3);
  const double beta = bmode == 0 ? 0.0 : bmode == 1 ? 1.0 : u(g);
  const double alpha = g() % 2 ? 1.0 : u(g) * 2;
  // Gaps get a sentinel; the view gets NaN when beta == 0 (must never be read).
  for (int64_t i = 0; i < vc.span; ++i) put(dt, C.p(), i, 777.0);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) put(dt, C.p(), b * vc.sb + i * vc.sr + j * vc.sc, beta == 0 ? NAN : u(g));
  R.b = C.b;
  GemmParams p;
  p.M = M; p.N = N; p.K = K; p.batch = batch; p.dtype = dt;
  p.A = A.p(); p.sa_b = va.sb; p.sa_m = va.sr; p.sa_k = va.sc;
  p.B = B.p(); p.sb_b = vb.sb; p.sb_k = vb.sr; p.sb_n = vb.sc;
  p.C = C.p(); p.sc_b = vc.sb; p.sc_m = vc.sr; p.sc_n = vc.sc;
  p.alpha = alpha; p.beta = beta;
  cpu::gemm(p);
  p.C = R.p();
  cpu::gemm_ref(p);
  const double eps = dt == DType::f64 ? 1.2e-16 : 6e-8;
  const double tol_out = dt == DType::bf16 ? 1.0 / 128 : 0;  // one bf16 rounding on each side
  int64_t bad = 0;
  std::vector<char> inview(size_t(vc.span), 0);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        const int64_t c = b * vc.sb + i * vc.sr + j * vc.sc;
        inview[size_t(c)] = 1;
        double mag = 0;  // |alpha| sum |a||b| + |beta c|: the scale of rounding error
        for (int64_t k = 0; k < K; ++k)
          mag += std::fabs(get(dt, A.p(), b * va.sb + i * va.sr + k * va.sc) * get(dt, B.p(), b * vb.sb + k * vb.sr + j * vb.sc));
        mag = std::fabs(alpha) * mag + (beta == 0 ? 0 : std::fabs(beta * 1.0));
        const double got = get(dt, C.p(), c), want = get(dt, R.p(), c);
        const double tol = (4 * eps * double(K + 4) + tol_out) * mag + 1e-30;
        if (!(std::fabs(got - want) <= tol)) {
          if (verbose && bad < 3)
            std::printf("  mismatch b=%ld i=%ld j=%ld got %.9g want %.9g (tol %.3g)\n", long(b), long(i), long(j), got, want, tol);
          ++bad;
        }
      }
  for (int64_t i = 0; i < vc.span; ++i)
    if (!inview[size_t(i)] && !same_bits(dt, C.p(), R.p(), i)) {
      if (verbose && bad < 3) std::printf("  sentinel overwritten at %ld\n", long(i));
      ++bad;
    }
  if (bad && verbose)
    std::printf("FAIL %s %s M=%ld N=%ld K=%ld batch=%ld alpha=%g beta=%g A(%ld,%ld,%ld) B(%ld,%ld,%ld) C(%ld,%ld,%ld) threads=%d: %ld bad\n",
                isa_name(cpu_isa()), dname(dt), long(M), long(N), long(K), long(batch), alpha, beta,
                long(va.sb), long(va.sr), long(va.sc), long(vb.sb), long(vb.sr), long(vb.sc), long(vc.sb), long(vc.sr),
                long(vc.sc), get_num_threads(), long(bad));
  return bad == 0;
}

}  // namespace

namespace {

int run_check(const Args& a) {
  std::mt19937 g(unsigned(a.geti("--seed", 1)));
  const int cases = int(a.geti("--cases", 60));
  const Isa best = cpu_isa();
  const int max_threads = std::max(2, get_num_threads());
  int fails = 0, total = 0;
  // Fixed shapes that reach the threaded paths (split M with shared B, split N) and edges.
  const int64_t fixed[][4] = {{1, 1, 1, 1}, {1, 300, 7, 1}, {300, 1, 9, 1}, {13, 31, 1, 1}, {29, 33, 300, 2},
                              {700, 40, 300, 1}, {20, 1500, 300, 1}, {301, 517, 260, 1}, {64, 64, 64, 5},
                              {15, 2049, 130, 1}, {600, 200, 100, 1}, {250, 64, 300, 3}};
  for (int isa = 0; isa <= int(best); ++isa) {
    set_cpu_isa(Isa(isa));
    for (DType dt : {DType::f32, DType::f64, DType::bf16}) {
      int f0 = fails;
      auto one = [&](int64_t M, int64_t N, int64_t K, int64_t batch) {
        set_num_threads(1 + int(g() % unsigned(max_threads)));
        ++total;
        if (!check_case(g, dt, M, N, K, batch, true)) ++fails;
      };
      for (auto& f : fixed) one(f[0], f[1], f[2], f[3]);
      for (int c = 0; c < cases; ++c) {
        auto dim = [&] { return g() % 4 == 0 ? int64_t(1 + g() % 16) : int64_t(1 + g() % 300); };
        const int64_t M = dim(), N = dim(), K = dim(), batch = g() % 4 == 0 ? int64_t(2 + g() % 3) : 1;
        one(M, N, K, batch);
      }
      std::printf("check %-6s %-4s kernel %-22s %s\n", isa_name(Isa(isa)), dname(dt), cpu::gemm_kernel(dt).name,
                  fails == f0 ? "ok" : "FAILED");
    }
  }
  set_cpu_isa(best);
  set_num_threads(max_threads);
  std::printf("%d/%d cases passed\n", total - fails, total);
  return fails ? 1 : 0;
}

struct Size { int64_t M, N, K; };

std::vector<Size> parse_sizes(const char* s) {
  std::vector<Size> v;
  while (s && *s) {
    long m, n, k; int used = 0;
    if (std::sscanf(s, "%ldx%ldx%ld%n", &m, &n, &k, &used) != 3) break;
    v.push_back({m, n, k});
    s += used;
    if (*s == ',') ++s;
  }
  return v;
}

int run_sweep(const Args& a) {
  const DType dt = parse_dtype(a.get("--dtype", "f32"));
  const int threads = get_num_threads();
  const std::string layout = a.get("--layout", "both");
  std::vector<Size> sizes = parse_sizes(a.get("--sizes", ""));
  if (sizes.empty())
    sizes = {{64, 64, 64}, {256, 256, 256}, {1024, 1024, 1024}, {2048, 2048, 2048}, {4096, 4096, 4096},
             {8192, 768, 768}, {8192, 768, 3072}, {128, 4096, 4096}};
  const PeakKind pk = dt == DType::f64 ? PeakKind::f64
                    : dt == DType::bf16 && cpu::gemm_kernel(dt).kpack == 2 ? PeakKind::bf16dot : PeakKind::f32;
  double peak = std::atof(a.get("--peak", "0"));
  if (peak <= 0) peak = fma_peak_gflops(cpu_isa(), pk, threads);
  const double min_time = std::atof(a.get("--min-time", "1.0"));
  std::printf("gemm %s isa=%s kernel=%s threads=%d peak=%.1f GFLOP/s (l1d %zu KiB, l2 %zu KiB, l3 %zu MiB)\n",
              dname(dt), isa_name(cpu_isa()), cpu::gemm_kernel(dt).name, threads, peak, cpu_info().l1d >> 10,
              cpu_info().l2 >> 10, cpu_info().l3 >> 20);
  std::printf("%-20s %-6s %10s %10s %8s\n", "MxNxK", "layout", "ms", "GFLOP/s", "%peak");
  std::mt19937 g(7);
  std::uniform_real_distribution<double> u(-1, 1);
  for (const Size& s : sizes) {
    for (int tb = 0; tb < 2; ++tb) {
      if ((tb == 0 && layout == "nt") || (tb == 1 && layout == "nn")) continue;
      // A (M,K) row-major; B (K,N) row-major ("nn") or B = W^T with W (N,K) row-major ("nt").
      Buf A(dt, s.M * s.K), B(dt, s.K * s.N), C(dt, s.M * s.N);
      for (int64_t i = 0; i < s.M * s.K; ++i) put(dt, A.p(), i, u(g));
      for (int64_t i = 0; i < s.K * s.N; ++i) put(dt, B.p(), i, u(g));
      GemmParams p;
      p.M = s.M; p.N = s.N; p.K = s.K; p.dtype = dt;
      p.A = A.p(); p.sa_m = s.K; p.sa_k = 1;
      p.B = B.p(); p.sb_k = tb ? 1 : s.N; p.sb_n = tb ? s.K : 1;
      p.C = C.p(); p.sc_m = s.N; p.sc_n = 1;
      // Validate a corner block against the reference (full check is --check).
      cpu::gemm(p);
      {
        const int64_t m = std::min<int64_t>(s.M, 37), n = std::min<int64_t>(s.N, 41);
        Buf R(dt, m * n);
        GemmParams q = p; q.M = m; q.N = n; q.C = R.p(); q.sc_m = n;
        cpu::gemm_ref(q);
        const double tol = (dt == DType::bf16 ? 2e-2 : dt == DType::f32 ? 1e-5 * std::sqrt(double(s.K)) : 1e-12) * std::sqrt(double(s.K));
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j)
            if (!(std::fabs(get(dt, C.p(), i * s.N + j) - get(dt, R.p(), i * n + j)) <= tol)) {
              std::printf("VALIDATION FAILED at %ld,%ld\n", long(i), long(j));
              return 1;
            }
      }
      const double t = time_median([&] { cpu::gemm(p); }, 3, min_time);
      const double gf = 2.0 * double(s.M) * double(s.N) * double(s.K) / t * 1e-9;
      char name[64];
      std::snprintf(name, sizeof name, "%ldx%ldx%ld", long(s.M), long(s.N), long(s.K));
      std::printf("%-20s %-6s %10.3f %10.1f %7.1f%%\n", name, tb ? "nt" : "nn", t * 1e3, gf, 100 * gf / peak);
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a{argc, argv};
  if (!apply_impl_threads(a)) return 2;
  if (a.has("--check")) return run_check(a);
  return run_sweep(a);
}
