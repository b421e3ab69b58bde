// Validates the CUDA fused attention (csrc/cuda/attention.cu) against the definition in double
// (scores materialised: small sizes only), forward (out, lse) and backward (dq, dk, dv) with
// NaN-filled outputs (unwritten elements fail), then times it (--bench). Built by bench/gpu.sh:
//   nvcc -std=c++17 -O2 -arch=sm_90 -I csrc bench/native/attention_cuda.cu csrc/cuda/*.cu -o attention_cuda
// Prints one PASS/FAIL line per case and exits non-zero when anything fails.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cuda_timing.cuh"
#include "core/error.h"
#include "cuda/cuda_api.h"
#include "kernels/attention.h"

using namespace fastdl;
namespace cu = fastdl::cuda;

namespace {

int g_pass = 0, g_fail = 0;
void report(const std::string& name, bool ok, const std::string& detail = "") {
  std::printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", name.c_str(), detail.empty() ? "" : "  ", detail.c_str());
  (ok ? g_pass : g_fail)++;
}

std::mt19937_64 rng(4321);
double uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); }

// Device buffer of n elements of dt (float32 or float64 here); values go through double.
struct Buf {
  DType dt;
  int64_t n;
  void* p = nullptr;
  Buf(DType t, int64_t count) : dt(t), n(count) { p = cu::alloc(bytes() ? bytes() : 1, 0); }
  ~Buf() { cu::free(p, bytes() ? bytes() : 1, 0); }
  Buf(const Buf&) = delete;
  size_t bytes() const { return size_t(n) * dtype_size(dt); }
  // Rounds v to dt in place (the reference then sees what the kernel reads) and uploads it.
  void upload(std::vector<double>& v) {
    std::vector<unsigned char> h(bytes());
    for (int64_t i = 0; i < n; ++i) {
      double& x = v[size_t(i)];
      uint16_t* h16 = reinterpret_cast<uint16_t*>(h.data());
      if (dt == DType::f32) x = reinterpret_cast<float*>(h.data())[i] = float(x);
      else if (dt == DType::f64) reinterpret_cast<double*>(h.data())[i] = x;
      else if (dt == DType::bf16) x = bf16_to_f32(h16[i] = f32_to_bf16(float(x)));
      else x = f16_to_f32(h16[i] = f32_to_f16(float(x)));
    }
    if (n) cu::copy_h2d(p, h.data(), bytes(), 0);
  }
  void fill_nan() {
    std::vector<double> v(static_cast<size_t>(n), NAN);
    upload(v);
  }
  std::vector<double> download() const {
    std::vector<unsigned char> h(bytes());
    if (n) cu::copy_d2h(h.data(), p, bytes(), 0);
    std::vector<double> v(static_cast<size_t>(n));
    const uint16_t* h16 = reinterpret_cast<const uint16_t*>(h.data());
    for (int64_t i = 0; i < n; ++i)
      v[size_t(i)] = dt == DType::f32    ? reinterpret_cast<float*>(h.data())[i]
                     : dt == DType::f64  ? reinterpret_cast<double*>(h.data())[i]
                     : dt == DType::bf16 ? bf16_to_f32(h16[i])
                                         : f16_to_f32(h16[i]);
    return v;
  }
};

struct AttnCase {
  const char* name;
  int64_t batch, H, Hkv, L, S, E, Ev;
  bool causal = false;
  int mask = 0;             // 0 none, 1 boolean (shared over batch, with fully masked rows), 2 additive (per head)
  double dropout = 0;
  bool blhe = false;        // q, k, v laid out (batch, L, heads, E): strided heads and rows
};

// Logits of one (b, h) row i in double, -inf where dropped; the definition of kernels/attention.h.
struct Ref {
  const AttnCase& c;
  double scale;
  const std::vector<double> &q, &k, &v, &mask;
  std::vector<uint8_t> bmask;
  int64_t qi(int64_t b, int64_t h, int64_t i, int64_t e) const {
    return c.blhe ? ((b * c.L + i) * c.H + h) * c.E + e : ((b * c.H + h) * c.L + i) * c.E + e;
  }
  int64_t ki(int64_t b, int64_t g, int64_t j, int64_t e, int64_t W) const {
    return c.blhe ? ((b * c.S + j) * c.Hkv + g) * W + e : ((b * c.Hkv + g) * c.S + j) * W + e;
  }
  double logit(int64_t b, int64_t h, int64_t i, int64_t j) const {
    if (c.causal && j > i) return -INFINITY;
    if (c.mask == 1 && !bmask[size_t(i * c.S + j)]) return -INFINITY;
    const int64_t g = h / (c.H / c.Hkv);
    double s = 0;
    for (int64_t e = 0; e < c.E; ++e) s += q[size_t(qi(b, h, i, e))] * k[size_t(ki(b, g, j, e, c.E))];
    s *= scale;
    if (c.mask == 2) s += mask[size_t((h * c.L + i) * c.S + j)];
    return s;
  }
  double keep(int64_t b, int64_t h, int64_t i, int64_t j, uint64_t seed) const {
    if (c.dropout == 0) return 1;
    const uint64_t ctr = uint64_t(((b * c.H + h) * c.L + i) * c.S + j);
    return dropout_uniform(seed, ctr) >= float(c.dropout) ? 1 / (1 - c.dropout) : 0;
  }
};

std::string compare(const char* what, const Buf& got_d, const std::vector<double>& want) {
  const std::vector<double> got = got_d.download();
  double scale = 0;
  for (double w : want) if (std::isfinite(w)) scale = std::max(scale, std::fabs(w));
  const double rel = got_d.dt == DType::f64 ? 1e-10 : got_d.dt == DType::f32 ? 2e-4 : got_d.dt == DType::f16 ? 4e-3 : 2e-2;
  const double tol = rel * std::max(scale, 1e-30);
  for (size_t i = 0; i < want.size(); ++i) {
    const double g = got[i], w = want[i];
    const bool ok = std::isinf(w) ? g == w : std::fabs(g - w) <= tol;
    if (!ok) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "%s: element %zu got %.10g want %.10g (tol %.3g)", what, i, g, w, tol);
      return buf;
    }
  }
  return "";
}

void attn_case(const AttnCase& c, DType t) {
  const int64_t nq = c.batch * c.H * c.L * c.E, nk = c.batch * c.Hkv * c.S * c.E, nv = c.batch * c.Hkv * c.S * c.Ev;
  const int64_t no = c.batch * c.H * c.L * c.Ev, rows = c.batch * c.H * c.L;
  auto draw = [](int64_t n, double lo, double hi) {
    std::vector<double> v(static_cast<size_t>(n));
    for (double& x : v) x = uniform(lo, hi);
    return v;
  };
  std::vector<double> q = draw(nq, -1, 1), k = draw(nk, -1, 1), v = draw(nv, -1, 1), go = draw(no, -1, 1);
  std::vector<double> mask = c.mask == 2 ? draw(c.H * c.L * c.S, -2, 2) : std::vector<double>();
  const uint64_t seed = 0x5eedULL + uint64_t(c.L);
  const bool half = t == DType::bf16 || t == DType::f16;  // forward only; lse in float32
  Buf dq_(t, nq), dk_(t, nk), dv_(t, nv), q_(t, nq), k_(t, nk), v_(t, nv), go_(t, no), out_(t, no),
      lse_(half ? DType::f32 : t, rows);
  Buf madd(t, int64_t(mask.size()));
  q_.upload(q), k_.upload(k), v_.upload(v), go_.upload(go), madd.upload(mask);
  Ref ref{c, 1 / std::sqrt(double(c.E)), q, k, v, mask, {}};
  ref.bmask.assign(size_t(c.L * c.S), 1);
  if (c.mask == 1) {
    for (auto& m : ref.bmask) m = uniform(0, 1) < 0.7;
    for (int64_t j = 0; j < c.S; ++j) ref.bmask[size_t(3 * c.S + j)] = 0;  // row 3 fully masked
  }
  void* bm = cu::alloc(ref.bmask.size() + 1, 0);
  cu::copy_h2d(bm, ref.bmask.data(), ref.bmask.size(), 0);
  // Reference: P row by row, then every gradient.
  std::vector<double> out(static_cast<size_t>(no), 0), lse(static_cast<size_t>(rows));
  std::vector<double> dq(static_cast<size_t>(nq), 0), dk(static_cast<size_t>(nk), 0), dv(static_cast<size_t>(nv), 0);
  std::vector<double> s(static_cast<size_t>(c.S)), pr(static_cast<size_t>(c.S)), dp(static_cast<size_t>(c.S));
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t h = 0; h < c.H; ++h) {
      const int64_t g = h / (c.H / c.Hkv);
      for (int64_t i = 0; i < c.L; ++i) {
        const int64_t r = (b * c.H + h) * c.L + i;
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < c.S; ++j) mx = std::max(mx, s[size_t(j)] = ref.logit(b, h, i, j));
        if (mx == -INFINITY) {
          lse[size_t(r)] = INFINITY;
          continue;  // out 0, no gradient
        }
        for (int64_t j = 0; j < c.S; ++j) sum += std::exp(s[size_t(j)] - mx);
        lse[size_t(r)] = mx + std::log(sum);
        double dsum = 0;
        for (int64_t j = 0; j < c.S; ++j) {
          pr[size_t(j)] = std::exp(s[size_t(j)] - lse[size_t(r)]);
          const double z = ref.keep(b, h, i, j, seed);
          double d = 0;
          for (int64_t e = 0; e < c.Ev; ++e) {
            out[size_t(r * c.Ev + e)] += z * pr[size_t(j)] * v[size_t(ref.ki(b, g, j, e, c.Ev))];
            d += go[size_t(r * c.Ev + e)] * v[size_t(ref.ki(b, g, j, e, c.Ev))];
          }
          dp[size_t(j)] = z * d;
          dsum += pr[size_t(j)] * dp[size_t(j)];
        }
        for (int64_t j = 0; j < c.S; ++j) {
          const double z = ref.keep(b, h, i, j, seed), ds = pr[size_t(j)] * (dp[size_t(j)] - dsum) * ref.scale;
          const int64_t kv = (b * c.Hkv + g) * c.S + j;  // dk, dv are contiguous (batch, kv_heads, S, .)
          for (int64_t e = 0; e < c.E; ++e) {
            dq[size_t(r * c.E + e)] += ds * k[size_t(ref.ki(b, g, j, e, c.E))];
            dk[size_t(kv * c.E + e)] += ds * q[size_t(ref.qi(b, h, i, e))];
          }
          for (int64_t e = 0; e < c.Ev; ++e) dv[size_t(kv * c.Ev + e)] += z * pr[size_t(j)] * go[size_t(r * c.Ev + e)];
        }
      }
    }
  AttentionParams p;
  p.batch = c.batch, p.heads = c.H, p.kv_heads = c.Hkv, p.L = c.L, p.S = c.S, p.E = c.E, p.Ev = c.Ev, p.dt = t;
  p.scale = ref.scale, p.causal = c.causal, p.dropout_p = c.dropout, p.seed = seed;
  p.q = q_.p, p.k = k_.p, p.v = v_.p;
  if (c.blhe) {
    p.q_sb = c.L * c.H * c.E, p.q_sh = c.E, p.q_sl = c.H * c.E;
    p.k_sb = c.S * c.Hkv * c.E, p.k_sh = c.E, p.k_sl = c.Hkv * c.E;
    p.v_sb = c.S * c.Hkv * c.Ev, p.v_sh = c.Ev, p.v_sl = c.Hkv * c.Ev;
  } else {
    p.q_sb = c.H * c.L * c.E, p.q_sh = c.L * c.E, p.q_sl = c.E;
    p.k_sb = c.Hkv * c.S * c.E, p.k_sh = c.S * c.E, p.k_sl = c.E;
    p.v_sb = c.Hkv * c.S * c.Ev, p.v_sh = c.S * c.Ev, p.v_sl = c.Ev;
  }
  if (c.mask == 1) p.mask_kind = MaskKind::boolean, p.mask = bm, p.m_sl = c.S, p.m_ss = 1;  // m_sb = m_sh = 0
  if (c.mask == 2) p.mask_kind = MaskKind::additive, p.mask = madd.p, p.m_sh = c.L * c.S, p.m_sl = c.S, p.m_ss = 1;
  out_.fill_nan(), lse_.fill_nan(), dq_.fill_nan(), dk_.fill_nan(), dv_.fill_nan();
  p.out = out_.p, p.lse = lse_.p, p.gout = go_.p, p.dq = dq_.p, p.dk = dk_.p, p.dv = dv_.p;
  std::string bad;
  try {
    cu::attention_fwd(p, 0);
    if (!half) cu::attention_bwd(p, 0);
    cu::synchronize(0);
  } catch (const std::exception& e) {
    bad = e.what();
  }
  const std::pair<const char*, std::pair<const Buf*, const std::vector<double>*>> checks[] = {
      {"out", {&out_, &out}}, {"lse", {&lse_, &lse}}, {"dq", {&dq_, &dq}}, {"dk", {&dk_, &dk}}, {"dv", {&dv_, &dv}}};
  for (const auto& ck : checks)
    if (bad.empty() && (!half || ck.second.first == &out_ || ck.second.first == &lse_))
      bad = compare(ck.first, *ck.second.first, *ck.second.second);
  cu::free(bm, ref.bmask.size() + 1, 0);
  char buf[220];
  std::snprintf(buf, sizeof buf, "attention %s %s (b=%lld H=%lld Hkv=%lld L=%lld S=%lld E=%lld Ev=%lld)", c.name,
                t == DType::f32 ? "f32" : t == DType::f64 ? "f64" : t == DType::bf16 ? "bf16" : "f16", (long long)c.batch, (long long)c.H, (long long)c.Hkv, (long long)c.L,
                (long long)c.S, (long long)c.E, (long long)c.Ev);
  report(buf, bad.empty(), bad);
}

void test_attention() {
  const AttnCase cases[] = {
      {"plain, L != S", 2, 3, 3, 37, 45, 24, 40},
      {"causal, L < S", 1, 2, 2, 20, 50, 16, 16, true},
      {"causal, L > S", 1, 2, 2, 70, 33, 32, 32, true},
      {"GQA 6/2, causal", 2, 6, 2, 40, 40, 64, 64, true},
      {"boolean mask over batch, a fully masked row", 2, 2, 2, 33, 47, 20, 28, false, 1},
      {"additive mask per head, GQA", 1, 4, 2, 50, 31, 48, 48, false, 2},
      {"dropout 0.3, GQA", 2, 2, 1, 45, 60, 32, 32, false, 0, 0.3},
      {"dropout 0.2, causal", 1, 2, 2, 40, 40, 16, 16, true, 0, 0.2},
      {"(batch, L, heads, E) strides", 2, 4, 4, 41, 39, 64, 64, false, 0, 0, true},
      {"E 128, Ev 96", 1, 2, 2, 65, 70, 128, 96, true},
      {"E 200, Ev 256", 1, 1, 1, 40, 35, 200, 256},
      {"no keys", 1, 2, 2, 5, 0, 8, 8},
      {"one query", 3, 2, 1, 1, 77, 8, 8},
  };
  for (const AttnCase& c : cases)
    for (DType t : {DType::f32, DType::f64}) attn_case(c, t);
  // Tensor-core forward (bf16 / f16): head dims multiples of 16 up to 128.
  const AttnCase half_cases[] = {
      {"plain, L != S", 2, 3, 3, 37, 45, 32, 48},
      {"causal, L > S, GQA", 1, 4, 2, 130, 70, 64, 64, true},
      {"boolean mask over batch, a fully masked row", 2, 2, 2, 33, 47, 16, 16, false, 1},
      {"additive mask per head", 1, 4, 2, 50, 31, 48, 48, false, 2},
      {"dropout 0.3, strided", 2, 2, 2, 45, 60, 64, 32, false, 0, 0.3, true},
      {"E 128", 1, 2, 2, 100, 129, 128, 128, true},
  };
  for (const AttnCase& c : half_cases)
    for (DType t : {DType::bf16, DType::f16}) attn_case(c, t);
}

// The issue's shapes, float32, full and causal: TFLOP/s of useful work (fwd 4*L*S*E per head,
// backward 2.5x that; causal counts half).
void bench_attention() {
  const int64_t shapes[][4] = {{4, 8, 1024, 64}, {2, 8, 2048, 64}, {1, 8, 4096, 64}};
  for (const auto& sh : shapes)
    for (bool causal : {false, true}) {
      const int64_t B = sh[0], H = sh[1], L = sh[2], E = sh[3], n = B * H * L * E;
      Buf q(DType::f32, n), k(DType::f32, n), v(DType::f32, n), o(DType::f32, n), go(DType::f32, n),
          lse(DType::f32, B * H * L), dq(DType::f32, n), dk(DType::f32, n), dv(DType::f32, n);
      std::vector<double> x(static_cast<size_t>(n));
      for (double& e : x) e = uniform(-1, 1);
      q.upload(x), k.upload(x), v.upload(x), go.upload(x);
      AttentionParams p;
      p.batch = B, p.heads = p.kv_heads = H, p.L = p.S = L, p.E = p.Ev = E, p.dt = DType::f32;
      p.scale = 1 / std::sqrt(double(E)), p.causal = causal;
      p.q = q.p, p.k = k.p, p.v = v.p, p.out = o.p, p.lse = lse.p, p.gout = go.p, p.dq = dq.p, p.dk = dk.p, p.dv = dv.p;
      p.q_sb = p.k_sb = p.v_sb = H * L * E, p.q_sh = p.k_sh = p.v_sh = L * E, p.q_sl = p.k_sl = p.v_sl = E;
      const double f = 4.0 * B * H * L * L * E * (causal ? 0.5 : 1.0);
      const double fwd = time_ms([&] { cu::attention_fwd(p, 0); }, 5);
      const double both = time_ms([&] { cu::attention_fwd(p, 0); cu::attention_bwd(p, 0); }, 5);
      std::printf("BENCH attn_f32_%lldx%lldx%lldx%lld%s fwd %.3f ms %.2f TFLOP/s, fwd+bwd %.3f ms %.2f TFLOP/s\n",
                  (long long)B, (long long)H, (long long)L, (long long)E, causal ? "_causal" : "", fwd, f / fwd / 1e9,
                  both, 3.5 * f / both / 1e9);
    }
}

}  // namespace

// attention_cuda [--bench]
int main(int argc, char** argv) {
  const bool do_bench = argc > 1 && std::strcmp(argv[1], "--bench") == 0;
  if (!cu::is_available()) {
    std::printf("FAIL no CUDA device\n");
    return 1;
  }
  try {
    do_bench ? bench_attention() : test_attention();
  } catch (const std::exception& e) {
    report("exception", false, e.what());
  }
  std::printf("attention_cuda: %d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
