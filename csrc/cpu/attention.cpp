// Fused attention on the CPU, the parts that are not per-ISA: the scalar reference (one query
// row at a time, double accumulation, O(S) scratch per row) and picking the kernel table.
#include "cpu/attention.h"

#include <cmath>
#include <limits>
#include <vector>

#include "core/parallel.h"
#include "cpu/elementwise.h"

namespace fastdl::cpu {

#ifdef FASTDL_NO_X86_ISA
namespace avx2 { const AttentionKernels& attention_table() { static const AttentionKernels t{attention_fwd_ref, attention_bwd_ref}; return t; } }
namespace avx512 { const AttentionKernels& attention_table() { return avx2::attention_table(); } }
#endif

const AttentionKernels& attention_kernels() {
  static const AttentionKernels ref{attention_fwd_ref, attention_bwd_ref};
  return pick_isa(cpu_isa(), ref, avx2::attention_table(), avx512::attention_table());
}

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

template <class T>
struct Ref {
  const AttentionParams& p;
  int64_t group() const { return p.heads / p.kv_heads; }
  const T* q(int64_t b, int64_t h, int64_t i) const {
    return static_cast<const T*>(p.q) + b * p.q_sb + h * p.q_sh + i * p.q_sl;
  }
  const T* k(int64_t b, int64_t g, int64_t j) const {
    return static_cast<const T*>(p.k) + b * p.k_sb + g * p.k_sh + j * p.k_sl;
  }
  const T* v(int64_t b, int64_t g, int64_t j) const {
    return static_cast<const T*>(p.v) + b * p.v_sb + g * p.v_sh + j * p.v_sl;
  }
  // Scores of query row (b, h, i) into s[0, S): scale q.k + additive mask, -inf where masked.
  // Returns the row maximum (-inf when every key is masked).
  double scores(int64_t b, int64_t h, int64_t i, double* s) const {
    const T* qi = q(b, h, i);
    const int64_t g = h / group();
    double mx = -kInf;
    for (int64_t j = 0; j < p.S; ++j) {
      double x = -kInf;
      bool keep = !(p.causal && j > i);
      if (keep && p.mask_kind == MaskKind::boolean)
        keep = static_cast<const uint8_t*>(p.mask)[b * p.m_sb + h * p.m_sh + i * p.m_sl + j * p.m_ss] != 0;
      if (keep) {
        const T* kj = k(b, g, j);
        double d = 0;
        for (int64_t e = 0; e < p.E; ++e) d += double(qi[e]) * double(kj[e]);
        x = d * p.scale;
        if (p.mask_kind == MaskKind::additive)
          x += double(static_cast<const T*>(p.mask)[b * p.m_sb + h * p.m_sh + i * p.m_sl + j * p.m_ss]);
      }
      s[j] = x;
      if (x > mx) mx = x;
    }
    return mx;
  }
  // Dropout keep factor of element (b, h, i, j): 0 or 1 / (1 - p).
  double keep(int64_t b, int64_t h, int64_t i, int64_t j) const {
    if (p.dropout_p <= 0) return 1.0;
    const uint64_t c = uint64_t(((b * p.heads + h) * p.L + i) * p.S + j);
    return dropout_uniform(p.seed, c) >= float(p.dropout_p) ? 1.0 / (1.0 - p.dropout_p) : 0.0;
  }

  void fwd() const {
    T* out = static_cast<T*>(p.out);
    T* lse = static_cast<T*>(p.lse);
    const int64_t rows = p.batch * p.heads * p.L;
    parallel_for(0, rows, 16, [&](int64_t r0, int64_t r1) {
      std::vector<double> s(size_t(p.S)), o(size_t(p.Ev));
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t i = r % p.L, h = (r / p.L) % p.heads, b = r / (p.L * p.heads), g = h / group();
        const double mx = scores(b, h, i, s.data());
        std::fill(o.begin(), o.end(), 0.0);
        if (mx == -kInf) {  // nothing to attend to
          for (int64_t e = 0; e < p.Ev; ++e) out[r * p.Ev + e] = T(0);
          lse[r] = T(kInf);
          continue;
        }
        double sum = 0;
        for (int64_t j = 0; j < p.S; ++j) {
          const double w = std::exp(s[j] - mx);
          sum += w;
          const double wd = w * keep(b, h, i, j);
          if (wd == 0) continue;
          const T* vj = v(b, g, j);
          for (int64_t e = 0; e < p.Ev; ++e) o[e] += wd * double(vj[e]);
        }
        for (int64_t e = 0; e < p.Ev; ++e) out[r * p.Ev + e] = T(o[e] / sum);
        lse[r] = T(mx + std::log(sum));
      }
    });
  }

  // One task per (batch, kv head): it owns that head's dk, dv and its query heads' dq rows.
  void bwd() const {
    const T* go = static_cast<const T*>(p.gout);
    const T* out = static_cast<const T*>(p.out);
    const T* lse = static_cast<const T*>(p.lse);
    parallel_for(0, p.batch * p.kv_heads, 1, [&](int64_t t0, int64_t t1) {
      std::vector<double> s(size_t(p.S)), dq(size_t(p.E));
      std::vector<double> dk(size_t(p.S * p.E)), dv(size_t(p.S * p.Ev));
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t b = t / p.kv_heads, g = t % p.kv_heads;
        std::fill(dk.begin(), dk.end(), 0.0);
        std::fill(dv.begin(), dv.end(), 0.0);
        for (int64_t h = g * group(); h < (g + 1) * group(); ++h)
          for (int64_t i = 0; i < p.L; ++i) {
            const int64_t r = (b * p.heads + h) * p.L + i;
            const T* gi = go + r * p.Ev;
            const T* oi = out + r * p.Ev;
            double D = 0;
            for (int64_t e = 0; e < p.Ev; ++e) D += double(gi[e]) * double(oi[e]);
            std::fill(dq.begin(), dq.end(), 0.0);
            const double l = double(lse[r]);
            if (l != kInf) {
              scores(b, h, i, s.data());
              const T* qi = q(b, h, i);
              for (int64_t j = 0; j < p.S; ++j) {
                if (s[j] == -kInf) continue;
                const double P = std::exp(s[j] - l), z = keep(b, h, i, j);
                const T* vj = v(b, g, j);
                double dp = 0;
                for (int64_t e = 0; e < p.Ev; ++e) dp += double(gi[e]) * double(vj[e]);
                const double ds = P * (dp * z - D) * p.scale;
                const T* kj = k(b, g, j);
                for (int64_t e = 0; e < p.E; ++e) {
                  dq[size_t(e)] += ds * double(kj[e]);
                  dk[size_t(j * p.E + e)] += ds * double(qi[e]);
                }
                if (z != 0)
                  for (int64_t e = 0; e < p.Ev; ++e) dv[size_t(j * p.Ev + e)] += P * z * double(gi[e]);
              }
            }
            T* dqr = static_cast<T*>(p.dq) + r * p.E;
            for (int64_t e = 0; e < p.E; ++e) dqr[e] = T(dq[size_t(e)]);
          }
        T* dkt = static_cast<T*>(p.dk) + t * p.S * p.E;
        T* dvt = static_cast<T*>(p.dv) + t * p.S * p.Ev;
        for (int64_t x = 0; x < p.S * p.E; ++x) dkt[x] = T(dk[size_t(x)]);
        for (int64_t x = 0; x < p.S * p.Ev; ++x) dvt[x] = T(dv[size_t(x)]);
      }
    });
  }
};

}  // namespace

void attention_fwd_ref(const AttentionParams& p) {
  if (p.dt == DType::f64) Ref<double>{p}.fwd(); else Ref<float>{p}.fwd();
}
void attention_bwd_ref(const AttentionParams& p) {
  if (p.dt == DType::f64) Ref<double>{p}.bwd(); else Ref<float>{p}.bwd();
}

}  // namespace fastdl::cpu
