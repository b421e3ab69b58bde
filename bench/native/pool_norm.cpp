// Native benchmark of the pooling and normalisation kernels (cpu/pool.h, cpu/norm.h), without
// Python: validates the chosen ISA against the scalar reference (max pool 3x3 s2 p1 with
// indices, average pool, adaptive average pool, batch norm in training, group norm; forward and
// backward), then times each forward + backward and prints ms and GB/s (bytes each pass must
// move: inputs read, outputs written) next to the machine's measured copy bandwidth.
//   pool_norm [--n 32] [--c 64] [--hw 32] [--groups 8] [--threads N] [--impl ref|avx2|avx512]
#include <random>

#include "common.h"
#include "cpu/norm.h"
#include "cpu/pool.h"

using namespace fastdl;
using namespace fastdl::bench;

namespace {

double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0, s = 1e-6;
  for (size_t i = 0; i < b.size(); ++i) s = std::max(s, double(std::fabs(b[i])));
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, double(std::fabs(a[i] - b[i])) / s);
  return m;
}

using Outs = std::vector<std::vector<float>>;
struct Case {
  const char* name;
  double bytes;                  // one forward + backward
  const Outs& (*run)(bool ref);  // outputs to compare (buffers kept across calls: no page faults timed)
};

// Output buffers of one case for the reference (ref = 1) or the chosen ISA (0), sized once.
Outs& buffers(int which, bool ref, std::initializer_list<size_t> sizes) {
  static Outs bufs[3][2];
  Outs& b = bufs[which][ref];
  if (b.empty())
    for (size_t n : sizes) b.emplace_back(n);
  return b;
}

int64_t N = 32, C = 64, HW = 32, G = 8;
std::vector<float> X, GY, W, B;

cpu::Pool2dParams pool_params(cpu::PoolKind kind) {
  cpu::Pool2dParams p;
  p.kind = kind;
  p.planes = N * C;
  p.H = p.W = HW;
  if (kind == cpu::PoolKind::adaptive_avg) { p.OH = p.OW = 1; return p; }
  p.kh = p.kw = 3;
  p.sh = p.sw = 2;
  p.ph = p.pw = 1;
  p.OH = p.OW = (HW + 2 - 3) / 2 + 1;
  return p;
}

const Outs& run_pool(cpu::PoolKind kind, bool ref) {
  const cpu::PoolKernels& k = ref ? cpu::ref::pool_table() : cpu::pool_kernels();
  cpu::Pool2dParams p = pool_params(kind);
  const size_t o = size_t(p.planes * p.OH * p.OW);
  Outs& b = buffers(0, ref, {o, X.size()});
  static std::vector<int64_t> idx[2];
  idx[ref].resize(o);
  p.x = X.data(); p.y = b[0].data(); p.idx = idx[ref].data(); p.gy = GY.data(); p.gx = b[1].data();
  k.fwd(p);
  k.bwd(p);
  return b;
}

const Outs& run_bn(bool ref) {
  const cpu::NormKernels& k = ref ? cpu::ref::norm_table() : cpu::norm_kernels();
  const size_t c = static_cast<size_t>(C);
  Outs& b = buffers(1, ref, {X.size(), X.size(), c, c, c, c});
  cpu::BatchNormParams p;
  p.N = N; p.C = C; p.S = HW * HW;
  p.x = X.data(); p.w = W.data(); p.b = B.data(); p.y = b[0].data(); p.mean = b[4].data(); p.invstd = b[5].data();
  p.gy = GY.data(); p.gx = b[1].data(); p.gw = b[2].data(); p.gb = b[3].data();
  k.batch_norm_fwd(p);
  k.batch_norm_bwd(p);
  return b;
}

const Outs& run_gn(bool ref) {
  const cpu::NormKernels& k = ref ? cpu::ref::norm_table() : cpu::norm_kernels();
  const size_t c = static_cast<size_t>(C), ng = static_cast<size_t>(N * G);
  Outs& b = buffers(2, ref, {X.size(), X.size(), c, c, ng, ng, 2 * static_cast<size_t>(N) * c});
  cpu::GroupNormParams p;
  p.N = N; p.C = C; p.S = HW * HW; p.G = G;
  p.x = X.data(); p.w = W.data(); p.b = B.data(); p.y = b[0].data(); p.mean = b[4].data(); p.invstd = b[5].data();
  p.gy = GY.data(); p.gx = b[1].data(); p.gw = b[2].data(); p.gb = b[3].data(); p.scratch = b[6].data();
  k.group_norm_fwd(p);
  k.group_norm_bwd(p);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  Args a{argc, argv};
  if (!apply_impl_threads(a)) return 2;
  N = a.geti("--n", 32); C = a.geti("--c", 64); HW = a.geti("--hw", 32); G = a.geti("--groups", 8);
  const size_t n = size_t(N * C * HW * HW);
  std::mt19937 gen(1);
  std::normal_distribution<float> nd;
  X.resize(n); GY.resize(n); W.resize(static_cast<size_t>(C)); B.resize(static_cast<size_t>(C));
  for (auto* v : {&X, &GY, &W, &B}) for (float& f : *v) f = nd(gen);
  const int64_t O = (HW + 2 - 3) / 2 + 1;
  const double f = 4.0, xb = double(n) * f, ob = double(N * C * O * O) * f;
  const Case cases[] = {
      {"max_pool2d 3x3 s2 p1", xb + ob * 3 + xb + ob * 2, [](bool r) -> const Outs& { return run_pool(cpu::PoolKind::max, r); }},
      {"avg_pool2d 3x3 s2 p1", xb + ob + ob + xb, [](bool r) -> const Outs& { return run_pool(cpu::PoolKind::avg, r); }},
      {"adaptive_avg_pool2d 1x1", xb + xb, [](bool r) -> const Outs& { return run_pool(cpu::PoolKind::adaptive_avg, r); }},
      {"batch_norm train", xb * 2 + xb * 5, run_bn},   // fwd: read x, write y; bwd: x, gy twice, write gx
      {"group_norm", xb * 3 + xb * 5, run_gn},
  };
  const Bandwidth bw = memory_bandwidth(get_num_threads());
  std::printf("pool / norm, N=%lld C=%lld H=W=%lld groups=%lld, float32, %s, %d threads; copy bandwidth %.1f GB/s\n",
              (long long)N, (long long)C, (long long)HW, (long long)G, isa_name(cpu_isa()), get_num_threads(), bw.copy_gbs);
  int bad = 0;
  for (const Case& c : cases) {
    const Outs want = c.run(true), got = c.run(false);
    double err = 0;
    for (size_t i = 0; i < 4 && i < want.size(); ++i) err = std::max(err, max_rel_diff(got[i], want[i]));
    const bool ok = err < 1e-4;
    bad += !ok;
    const double s = time_median([&] { c.run(false); });
    std::printf("  %-26s fwd+bwd %8.3f ms  %6.1f GB/s  (%4.0f%% of copy)  vs ref %.1e %s\n", c.name, s * 1e3,
                c.bytes / s * 1e-9, 100 * c.bytes / s * 1e-9 / bw.copy_gbs, err, ok ? "ok" : "MISMATCH");
  }
  return bad ? 1 : 0;
}
