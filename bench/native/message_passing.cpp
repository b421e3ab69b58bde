// Native benchmark of the message-passing kernels (cpu/message_passing.h), without Python:
// builds a random graph, validates the chosen ISA against the scalar reference (forward sum /
// mean / max, backward gx + gw) and checks the results are bitwise the same on 1 and N
// threads, then times forward and backward and prints ms and useful GB/s (one gathered row of
// F floats per edge) next to the machine's measured read bandwidth.
//   message_passing [--nodes 100000] [--edges 1000000] [--features 64] [--threads N] [--impl ref|avx2|avx512]
#include "common.h"
#include "cpu/message_passing.h"
#include "ops/csr.h"
#include "ops/ops.h"

using namespace fastdl;
using namespace fastdl::bench;

namespace {

struct Run {
  std::vector<float> out, gx, gw;
  std::vector<int32_t> arg;
};

Run run_once(const cpu::MpKernels& k, cpu::MpReduce red, const Ref<Csr>& c, const Ref<Csr>& t,
             const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& g,
             const std::vector<float>& scale, int64_t F) {
  Run r;
  r.out.resize(size_t(c->rows * F));
  r.arg.resize(size_t(c->rows * F));
  r.gx.resize(size_t(c->cols * F));
  r.gw.resize(size_t(c->nnz));
  cpu::MpParams p;
  p.csr = c->view();
  p.F = F;
  p.reduce = red;
  p.src = x.data();
  p.w = w.data();
  p.out = r.out.data();
  p.arg = r.arg.data();
  k.gather_fwd(DType::f32, p);
  cpu::MpParams b = p;
  b.csr = t->view();
  b.src = g.data();
  b.out = r.gx.data();
  b.scale = red == cpu::MpReduce::mean ? scale.data() : nullptr;
  b.x = x.data();
  b.gw = r.gw.data();
  k.gather_bwd(DType::f32, b);
  return r;
}

double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - b[i]) / (1.0 + std::abs(double(b[i]))));
  return m;
}

bool same_bits(const Run& a, const Run& b) {
  return !std::memcmp(a.out.data(), b.out.data(), a.out.size() * 4) && !std::memcmp(a.gx.data(), b.gx.data(), a.gx.size() * 4) &&
         !std::memcmp(a.gw.data(), b.gw.data(), a.gw.size() * 4);
}

}  // namespace

int main(int argc, char** argv) {
  Args a{argc, argv};
  if (!apply_impl_threads(a)) return 2;
  const int64_t N = a.geti("--nodes", 100000), E = a.geti("--edges", 1000000), F = a.geti("--features", 64);
  const int threads = get_num_threads();
  std::printf("message passing: %lld nodes, %lld edges, %lld features, float32, %d threads, kernel %s\n",
              (long long)N, (long long)E, (long long)F, threads, isa_name(cpu_isa()));

  uint64_t s = 42;
  auto rnd = [&] { s = s * 6364136223846793005ull + 1442695040888963407ull; return s >> 33; };
  Tensor src = empty(Dims{E}, DType::i64), dst = empty(Dims{E}, DType::i64);
  for (int64_t e = 0; e < E; ++e) { src.data<int64_t>()[e] = int64_t(rnd() % uint64_t(N)); dst.data<int64_t>()[e] = int64_t(rnd() % uint64_t(N)); }
  std::vector<float> x(static_cast<size_t>(N * F)), g(static_cast<size_t>(N * F)), w(static_cast<size_t>(E)),
      scale(static_cast<size_t>(N));
  for (auto& v : x) v = float(rnd() % 20001) * 1e-4f - 1.f;
  for (auto& v : g) v = float(rnd() % 20001) * 1e-4f - 1.f;
  for (auto& v : w) v = 0.5f + float(rnd() % 10001) * 1e-4f;

  double t0 = now_s();
  Ref<Csr> c = csr_for(src, dst, N, N, "bench", "src", "dst");
  const double t_csr = now_s() - t0;
  t0 = now_s();
  Ref<Csr> t = c->transposed();
  const double t_tr = now_s() - t0;
  for (int64_t r = 0; r < N; ++r) {
    const int64_t d = c->rowptr.data<int64_t>()[r + 1] - c->rowptr.data<int64_t>()[r];
    scale[size_t(r)] = d ? 1.f / float(d) : 0.f;
  }
  std::printf("  CSR build %.1f ms, transposed %.1f ms (once per edge_index, cached)\n", t_csr * 1e3, t_tr * 1e3);

  const cpu::MpKernels& fast = cpu::mp_kernels();
  const cpu::MpKernels& ref = cpu::ref::mp_table();
  bool ok = true;
  const char* names[] = {"sum", "mean", "max"};
  for (int ri = 0; ri < 3; ++ri) {
    const auto red = cpu::MpReduce(ri);
    Run want = run_once(ref, red, c, t, x, w, g, scale, F);
    Run got = run_once(fast, red, c, t, x, w, g, scale, F);
    set_num_threads(1);
    Run one = run_once(fast, red, c, t, x, w, g, scale, F);
    set_num_threads(threads);
    const double d = std::max({max_rel_diff(got.out, want.out), max_rel_diff(got.gx, want.gx), max_rel_diff(got.gw, want.gw)});
    const bool bits = same_bits(got, one);
    ok = ok && d < 1e-4 && bits;
    std::printf("  check %-4s vs reference: max rel diff %.2e, 1 vs %d threads bitwise %s\n", names[ri], d, threads,
                bits ? "equal" : "DIFFERENT");
  }

  const Bandwidth bw = memory_bandwidth(threads, size_t(256) << 20);
  const double useful = double(E) * double(F) * 4 * 1e-9;
  for (int ri = 0; ri < 3; ++ri) {
    const auto red = cpu::MpReduce(ri);
    Run r = run_once(fast, red, c, t, x, w, g, scale, F);
    cpu::MpParams p;
    p.csr = c->view();
    p.F = F;
    p.reduce = red;
    p.src = x.data();
    p.w = w.data();
    p.out = r.out.data();
    p.arg = r.arg.data();
    cpu::MpParams b = p;
    b.csr = t->view();
    b.src = g.data();
    b.out = r.gx.data();
    b.scale = red == cpu::MpReduce::mean ? scale.data() : nullptr;
    b.x = x.data();
    b.gw = r.gw.data();
    const double tf = time_median([&] { fast.gather_fwd(DType::f32, p); }, 5, 0.5);
    const double tb = time_median([&] { fast.gather_bwd(DType::f32, b); }, 5, 0.5);
    std::printf("  %-4s forward %8.2f ms %6.1f GB/s | backward (gx + gw) %8.2f ms %6.1f GB/s | fwd+bwd %8.2f ms\n",
                names[ri], tf * 1e3, useful / tf, tb * 1e3, useful / tb, (tf + tb) * 1e3);
  }
  std::printf("  machine: read %.1f GB/s, copy %.1f GB/s (%d threads)\n", bw.read_gbs, bw.copy_gbs, threads);
  return ok ? 0 : 1;
}
