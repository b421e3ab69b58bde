// Flash attention on the CPU (FlashAttention-2's loop structure, Dao 2023) on the GEMM
// micro-kernels: every product is a packed macro-kernel call (cpu/gemm_kernel.h), so the
// tile math runs at the GEMM's speed, and only Br x Bc tiles of scores ever exist.
//
// forward, one task per (batch, head, block of Br queries), balanced by the key blocks it
// visits (causal rows visit fewer):
//   S = scale Q_i K_j^T (+ mask), m' = max(m, rowmax S), P = exp(S - m'),
//   l = l e^(m - m') + rowsum P, O = O e^(m - m') + P V_j;  out = O / l, lse = m + log l
// backward, one task per (batch, kv head), which owns its dk, dv and its query heads' dq:
//   P = exp(S - lse), dV_j += P^T dO_i, dP = dO_i V_j^T, dS = P (dP - D_i) scale,
//   dQ_i += dS K_j, dK_j += dS^T Q_i,   D_i = rowsum(dO_i O_i)
// Causal tiles above the diagonal are never visited. K and V are packed once per (batch, kv
// head) and task; Q and dO once per head in backward. Dropout multiplies P by the counter-based
// keep mask after the row sums (cpu/attention.h), in both directions.
// Compiled per ISA (avx2, avx512); the ref ISA runs the row-at-a-time reference.
#if defined(FASTDL_ISA_avx2) || defined(FASTDL_ISA_avx512)
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/parallel.h"
#include "cpu/attention.h"
#include "cpu/gemm.h"
#include "cpu/simd/vec.h"

namespace fastdl::cpu::FASTDL_ISA_NS {

bool gemm_get_kernel(DType dt, detail::GemmKernel* k);  // gemm_vec.cpp, this ISA

namespace {

using detail::GemmKernel;

// Row map over n elements (n a multiple of the vector width for float32):
// x = exp(x - m), exactly 0 where x is -inf; returns the sum.
template <class T> T exp_sub_sum(T* x, int64_t n, T m) {
  if constexpr (std::is_same_v<T, float>) {
    vf s = vf{};
    for (int64_t i = 0; i < n; i += kWf) {
      const vf d = ldv(x + i) - m;
      const vf e = (vf)((vi)exp_v(d) & (vi)(d > -87.0f));
      stv(x + i, e);
      s += e;
    }
    alignas(64) float t[kWf];
    stv(t, s);
    float r = 0;
    for (int i = 0; i < kWf; ++i) r += t[i];
    return r;
  } else {
    T s = 0;
    for (int64_t i = 0; i < n; ++i) { x[i] = std::exp(x[i] - m); s += x[i]; }
    return s;
  }
}
// Column maps over a rows x n tile (row stride ld, n a multiple of the float vector width):
// m[j] = max(m[j], max_i x[i][j]); and x = exp(x - mu[j]), exactly 0 where x is -inf, with
// the column sums added into sum[j]. Columns are queries here, so both run as vertical vector
// operations with no horizontal reduction.
template <class T> void col_max(const T* x, int64_t rows, int64_t ld, int64_t n, T* m) {
  if constexpr (std::is_same_v<T, float>) {
    for (int64_t j = 0; j < n; j += kWf) {
      vf v = ldv(m + j);
      for (int64_t i = 0; i < rows; ++i) {
        const vf y = ldv(x + i * ld + j);
        v = y > v ? y : v;
      }
      stv(m + j, v);
    }
  } else {
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < n; ++j) m[j] = std::max(m[j], x[i * ld + j]);
  }
}
template <class T> void exp_cols(T* x, int64_t rows, int64_t ld, int64_t n, const T* mu, T* sum) {
  if constexpr (std::is_same_v<T, float>) {
    for (int64_t j = 0; j < n; j += kWf) {
      const vf m = ldv(mu + j);
      vf s = ldv(sum + j);
      for (int64_t i = 0; i < rows; ++i) {
        const vf d = ldv(x + i * ld + j) - m;
        const vf e = (vf)((vi)exp_v(d) & (vi)(d > -87.0f));
        stv(x + i * ld + j, e);
        s += e;
      }
      stv(sum + j, s);
    }
  } else {
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < n; ++j) {
        x[i * ld + j] = std::exp(x[i * ld + j] - mu[j]);
        sum[j] += x[i * ld + j];
      }
  }
}
template <class T> void scale_row(T* x, int64_t n, T a) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) x[i] *= a;
}

template <class T>
struct Flash {
  const AttentionParams& p;
  GemmKernel gk{};
  int64_t mr = 1, nr = 1, Br = 64, Bc = 64, Brp = 64, Brn = 64, Bcm = 64;
  int64_t Ep = 0, Evp = 0, group = 1, nib = 0, njb = 0;
  static constexpr T kInf = std::numeric_limits<T>::infinity();
  static constexpr int64_t kW = std::is_same_v<T, float> ? kWf : 1;  // column-map vector width

  explicit Flash(const AttentionParams& pp) : p(pp) {
    gemm_get_kernel(p.dt, &gk);
    mr = gk.mr; nr = gk.nr;
    // ~96 query rows x 128 keys: the score tile (48 KiB in float) and the packed K / V blocks
    // stay in L2 while the micro-kernels run k loops of 64-128 (CPU-time sweep on Zen 3).
    Bc = std::max<int64_t>(nr, 128 / nr * nr);
    Br = (96 + mr - 1) / mr * mr;
    Brp = Br;
    Brn = (Br + nr - 1) / nr * nr;  // query columns of a transposed score tile
    Bcm = (Bc + mr - 1) / mr * mr;
    Ep = (p.E + nr - 1) / nr * nr;
    Evp = (p.Ev + nr - 1) / nr * nr;
    group = p.heads / p.kv_heads;
    nib = (p.L + Br - 1) / Br;
    njb = (p.S + Bc - 1) / Bc;
  }

  const T* qrow(int64_t b, int64_t h, int64_t i) const { return static_cast<const T*>(p.q) + b * p.q_sb + h * p.q_sh + i * p.q_sl; }
  const T* krow(int64_t b, int64_t g, int64_t j) const { return static_cast<const T*>(p.k) + b * p.k_sb + g * p.k_sh + j * p.k_sl; }
  const T* vrow(int64_t b, int64_t g, int64_t j) const { return static_cast<const T*>(p.v) + b * p.v_sb + g * p.v_sh + j * p.v_sl; }
  // Keys visible to query block ib: causal blocks stop at the diagonal.
  int64_t key_end(int64_t ib) const { return p.causal ? std::min(p.S, std::min(p.L, (ib + 1) * Br)) : p.S; }
  int64_t panels(int64_t n) const { return (n + nr - 1) / nr; }

  // C[0:m, 0:n] = alpha A B + beta C over packed A (m x k) and packed B (k x n).
  void mm(int64_t m, int64_t n, int64_t k, const T* Ap, const T* Bp, T* C, int64_t ldc, double alpha, double beta) const {
    gk.macro(m, n, k, Ap, Bp, C, ldc, 1, alpha, beta, 0, panels(n));
  }

  // Score-tile masking for rows i0.. (br) and keys j0.. (bc) of (b, h); row stride ld. Padding
  // columns [bc, ld) become -inf so row maps can run over whole vectors.
  void mask_tile(T* s, int64_t ld, int64_t br, int64_t bc, int64_t b, int64_t h, int64_t i0, int64_t j0) const {
    for (int64_t r = 0; r < br; ++r) {
      T* sr = s + r * ld;
      const int64_t i = i0 + r;
      int64_t end = bc;
      if (p.causal) end = std::max<int64_t>(0, std::min(bc, i + 1 - j0));
      if (p.mask_kind == MaskKind::boolean) {
        const uint8_t* m = static_cast<const uint8_t*>(p.mask) + b * p.m_sb + h * p.m_sh + i * p.m_sl + j0 * p.m_ss;
        for (int64_t c = 0; c < end; ++c)
          if (!m[c * p.m_ss]) sr[c] = -kInf;
      } else if (p.mask_kind == MaskKind::additive) {
        const T* m = static_cast<const T*>(p.mask) + b * p.m_sb + h * p.m_sh + i * p.m_sl + j0 * p.m_ss;
        for (int64_t c = 0; c < end; ++c) sr[c] += m[c * p.m_ss];
      }
      for (int64_t c = end; c < ld; ++c) sr[c] = -kInf;
    }
  }
  bool tile_needs_mask(int64_t i0, int64_t br, int64_t j0, int64_t bc) const {
    return p.mask_kind != MaskKind::none || (p.causal && j0 + bc - 1 > i0) || bc != Bc;
  }
  // dst = P times the dropout keep factor, element (r, c) (query i0 + r, key j0 + c) at
  // r * sr + c * sc in both.
  void dropout_tile(const T* P, T* dst, int64_t sr, int64_t sc, int64_t br, int64_t bc, int64_t b, int64_t h,
                    int64_t i0, int64_t j0) const {
    const float pd = float(p.dropout_p);
    const T inv = T(1.0 / (1.0 - p.dropout_p));
    for (int64_t r = 0; r < br; ++r) {
      const uint64_t base = uint64_t(((b * p.heads + h) * p.L + i0 + r) * p.S + j0);
      for (int64_t c = 0; c < bc; ++c) {
        const int64_t x = r * sr + c * sc;
        dst[x] = dropout_uniform(p.seed, base + uint64_t(c)) >= pd ? P[x] * inv : T(0);
      }
    }
  }
  // Masking of a transposed score tile (keys j0 + c in rows, queries i0 + r in columns).
  void mask_tile_t(T* s, int64_t ld, int64_t bc, int64_t br, int64_t b, int64_t h, int64_t i0, int64_t j0) const {
    for (int64_t c = 0; c < bc; ++c) {
      T* sc = s + c * ld;
      const int64_t j = j0 + c;
      const int64_t r0 = p.causal ? std::min(br, std::max<int64_t>(0, j - i0)) : 0;  // rows i < j can't see j
      for (int64_t r = 0; r < r0; ++r) sc[r] = -kInf;
      if (p.mask_kind == MaskKind::boolean) {
        const uint8_t* m = static_cast<const uint8_t*>(p.mask) + b * p.m_sb + h * p.m_sh + i0 * p.m_sl + j * p.m_ss;
        for (int64_t r = r0; r < br; ++r)
          if (!m[r * p.m_sl]) sc[r] = -kInf;
      } else if (p.mask_kind == MaskKind::additive) {
        const T* m = static_cast<const T*>(p.mask) + b * p.m_sb + h * p.m_sh + i0 * p.m_sl + j * p.m_ss;
        for (int64_t r = r0; r < br; ++r) sc[r] += m[r * p.m_sl];
      }
    }
  }

  // Packed K / V of one (batch, kv head), block by block on first use.
  struct KV {
    int64_t b = -1, g = -1;
    std::vector<T> ka, kc, vr, kr, vc;  // K as A (k = E), K^T, V rows, K rows, V^T panels
    std::vector<char> done;
  };
  void kv_bind(KV& c, int64_t b, int64_t g) const {
    if (c.b == b && c.g == g) return;
    c.b = b; c.g = g;
    c.done.assign(size_t(njb), 0);
  }
  // Forward needs ka and vr; backward kc, kr and vc.
  void kv_pack(KV& c, int64_t jb, bool bwd) const {
    if (c.done[size_t(jb)]) return;
    const int64_t j0 = jb * Bc, bc = std::min(Bc, p.S - j0);
    const T* K = krow(c.b, c.g, j0);
    const T* Vm = vrow(c.b, c.g, j0);
    if (!bwd) {
      gk.pack_a(K, p.k_sl, 1, bc, p.E, c.ka.data() + jb * Bcm * p.E);
      gk.pack_b(Vm, p.v_sl, 1, bc, p.Ev, c.vr.data() + jb * Bc * Evp);
    } else {
      gk.pack_b(K, 1, p.k_sl, p.E, bc, c.kc.data() + jb * Bc * p.E);
      gk.pack_b(K, p.k_sl, 1, bc, p.E, c.kr.data() + jb * Bc * Ep);
      gk.pack_b(Vm, 1, p.v_sl, p.Ev, bc, c.vc.data() + jb * Bc * p.Ev);
    }
    c.done[size_t(jb)] = 1;
  }

  void fwd() const {
    const int64_t items = p.batch * p.heads * nib;
    std::vector<int64_t> cum(size_t(items) + 1, 0);  // balanced split by key blocks visited
    for (int64_t t = 0; t < items; ++t) cum[size_t(t) + 1] = cum[size_t(t)] + 1 + (key_end(t % nib) + Bc - 1) / Bc;
    const int nt = int(std::max<int64_t>(1, std::min<int64_t>(get_num_threads(), items)));
    parallel_for(0, nt, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t lo = std::lower_bound(cum.begin(), cum.end(), cum.back() * t / nt) - cum.begin();
        const int64_t hi = std::lower_bound(cum.begin(), cum.end(), cum.back() * (t + 1) / nt) - cum.begin();
        fwd_items(lo, std::min(hi, items));
      }
    });
  }

  // Scores are computed transposed, S^T = K_j Q_i^T (keys in rows, queries in columns): the
  // softmax statistics become vertical vector ops, and P packs as the A operand of P V by a
  // plain copy instead of a transpose.
  void fwd_items(int64_t lo, int64_t hi) const {
    if (lo >= hi) return;
    KV c;
    c.ka.resize(size_t(njb * Bcm * p.E));
    c.vr.resize(size_t(njb * Bc * Evp));
    const int64_t ld = Brn;
    std::vector<T> qb(size_t(Brn * p.E)), st(size_t(Bc * ld), T(0)), pa(size_t(Brp * Bc)), pdrop;
    if (p.dropout_p > 0) pdrop.resize(size_t(Bc * ld));
    const size_t nl = size_t(ld);
    std::vector<T> m(nl), mn(nl), mu(nl), l(nl), sum(nl);
    T* out = static_cast<T*>(p.out);
    T* lse = static_cast<T*>(p.lse);
    for (int64_t it = lo; it < hi; ++it) {
      const int64_t ib = it % nib, bh = it / nib, h = bh % p.heads, b = bh / p.heads, g = h / group;
      const int64_t i0 = ib * Br, br = std::min(Br, p.L - i0), kend = key_end(ib);
      const int64_t nq = (br + kW - 1) / kW * kW;  // query columns the column maps cover
      kv_bind(c, b, g);
      gk.pack_b(qrow(b, h, i0), 1, p.q_sl, p.E, br, qb.data());
      T* o = out + (bh * p.L + i0) * p.Ev;
      std::fill(o, o + br * p.Ev, T(0));
      std::fill(m.begin(), m.end(), -kInf);
      std::fill(l.begin(), l.end(), T(0));
      for (int64_t jb = 0; jb * Bc < kend; ++jb) {
        const int64_t j0 = jb * Bc, bc = std::min(Bc, p.S - j0);  // as packed; causal masks the rest
        kv_pack(c, jb, false);
        mm(bc, br, p.E, c.ka.data() + jb * Bcm * p.E, qb.data(), st.data(), ld, p.scale, 0.0);
        if (p.mask_kind != MaskKind::none || (p.causal && j0 + bc - 1 > i0))
          mask_tile_t(st.data(), ld, bc, br, b, h, i0, j0);
        std::copy(m.begin(), m.end(), mn.begin());
        col_max(st.data(), bc, ld, nq, mn.data());
        for (int64_t r = 0; r < nq; ++r) {  // a column with nothing visible yet keeps P = 0
          mu[size_t(r)] = mn[size_t(r)] == -kInf ? T(0) : mn[size_t(r)];
          sum[size_t(r)] = T(0);
        }
        exp_cols(st.data(), bc, ld, nq, mu.data(), sum.data());
        for (int64_t r = 0; r < br; ++r) {
          const T alpha = m[size_t(r)] == -kInf ? T(0) : T(std::exp(m[size_t(r)] - mu[size_t(r)]));
          l[size_t(r)] = l[size_t(r)] * alpha + sum[size_t(r)];
          if (alpha != T(1)) scale_row(o + r * p.Ev, p.Ev, alpha);
          m[size_t(r)] = mn[size_t(r)];
        }
        const T* P = st.data();
        if (p.dropout_p > 0) { dropout_tile(st.data(), pdrop.data(), 1, ld, br, bc, b, h, i0, j0); P = pdrop.data(); }
        gk.pack_a(P, 1, ld, br, bc, pa.data());
        mm(br, p.Ev, bc, pa.data(), c.vr.data() + jb * Bc * Evp, o, p.Ev, 1.0, 1.0);
      }
      for (int64_t r = 0; r < br; ++r) {
        const T lr = l[size_t(r)];
        if (lr > T(0)) {
          scale_row(o + r * p.Ev, p.Ev, T(1) / lr);
          lse[bh * p.L + i0 + r] = m[size_t(r)] + std::log(lr);
        } else {
          std::fill(o + r * p.Ev, o + (r + 1) * p.Ev, T(0));
          lse[bh * p.L + i0 + r] = kInf;
        }
      }
    }
  }

  // Work of key block jb in backward: the query blocks that see it.
  int64_t key_block_work(int64_t jb) const { return p.causal ? nib - std::min(nib, jb * Bc / Br) : nib; }

  // One task per (batch, kv head). With fewer of those than threads, each unit's key blocks are
  // split into parts of equal work: a part owns its rows of dk and dv, and sums its dq into a
  // private buffer; the buffers are added in part order afterwards (deterministic).
  void bwd() const {
    const int64_t units = p.batch * p.kv_heads, nt = get_num_threads();
    const int64_t parts = units >= nt ? 1 : std::min(njb, (nt + units - 1) / units);
    const int64_t qsize = group * p.L * p.E;  // dq of one unit's query heads
    if (parts == 1) {
      parallel_for(0, units, 1, [&](int64_t u0, int64_t u1) {
        for (int64_t u = u0; u < u1; ++u) {
          const int64_t b = u / p.kv_heads, g = u % p.kv_heads;
          bwd_unit(b, g, 0, njb, static_cast<T*>(p.dq) + (b * p.heads + g * group) * p.L * p.E);
        }
      });
      return;
    }
    std::vector<int64_t> cut(size_t(parts) + 1, njb);  // key-block bounds of the parts
    int64_t total = 0;
    for (int64_t jb = 0; jb < njb; ++jb) total += key_block_work(jb);
    cut[0] = 0;
    for (int64_t jb = 0, acc = 0, q = 1; jb < njb && q < parts; ++jb) {
      acc += key_block_work(jb);
      if (acc * parts >= total * q) cut[size_t(q++)] = jb + 1;
    }
    std::vector<T> buf(size_t(units * parts * qsize));
    parallel_for(0, units * parts, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t u = t / parts, q = t % parts;
        bwd_unit(u / p.kv_heads, u % p.kv_heads, cut[size_t(q)], cut[size_t(q) + 1], buf.data() + t * qsize);
      }
    });
    parallel_for(0, units * qsize, 1 << 14, [&](int64_t x0, int64_t x1) {
      for (int64_t x = x0; x < x1; ++x) {
        const int64_t u = x / qsize, e = x % qsize, b = u / p.kv_heads, g = u % p.kv_heads;
        T acc = 0;
        for (int64_t q = 0; q < parts; ++q) acc += buf[size_t((u * parts + q) * qsize + e)];
        static_cast<T*>(p.dq)[(b * p.heads + g * group) * p.L * p.E + e] = acc;
      }
    });
  }

  // Key blocks [jb0, jb1) of (batch b, kv head g): writes those rows of dk and dv, and the
  // group's dq contributions into dqg ((group, L, E), zeroed here).
  void bwd_unit(int64_t b, int64_t g, int64_t jb0, int64_t jb1, T* dqg) const {
    KV c;
    c.kc.resize(size_t(njb * Bc * p.E));
    c.kr.resize(size_t(njb * Bc * Ep));
    c.vc.resize(size_t(njb * Bc * p.Ev));
    kv_bind(c, b, g);
    for (int64_t jb = jb0; jb < jb1; ++jb) kv_pack(c, jb, true);
    // Per query head: Q and dO packed as A (k = E / Ev) and as B rows, D = rowsum(dO O).
    std::vector<T> qa(size_t(nib * Brp * p.E)), qr(size_t(nib * Br * Ep));
    std::vector<T> ga(size_t(nib * Brp * p.Ev)), D(size_t(p.L));
    std::vector<T> s(size_t(Br * Bc)), dp(size_t(Br * Bc)), ta(size_t(std::max(Brp, Bc) * std::max(Br, Bc))), pdrop;
    if (p.dropout_p > 0) pdrop.resize(size_t(Br * Bc));
    std::vector<T> gr(size_t(nib * Br * Evp));
    const T* out = static_cast<const T*>(p.out);
    const T* go = static_cast<const T*>(p.gout);
    const T* lse = static_cast<const T*>(p.lse);
    T* dk = static_cast<T*>(p.dk) + (b * p.kv_heads + g) * p.S * p.E;
    T* dv = static_cast<T*>(p.dv) + (b * p.kv_heads + g) * p.S * p.Ev;
    const int64_t r0 = jb0 * Bc, r1 = std::min(p.S, jb1 * Bc);
    std::fill(dk + r0 * p.E, dk + r1 * p.E, T(0));
    std::fill(dv + r0 * p.Ev, dv + r1 * p.Ev, T(0));
    for (int64_t h = g * group; h < (g + 1) * group; ++h) {
      const int64_t bh = b * p.heads + h;
      const T* gh = go + bh * p.L * p.Ev;
      const T* oh = out + bh * p.L * p.Ev;
      const T* lh = lse + bh * p.L;
      T* dq = dqg + (h - g * group) * p.L * p.E;
      std::fill(dq, dq + p.L * p.E, T(0));
      for (int64_t i = 0; i < p.L; ++i) {
        T d = 0;
#pragma omp simd reduction(+ : d)
        for (int64_t e = 0; e < p.Ev; ++e) d += gh[i * p.Ev + e] * oh[i * p.Ev + e];
        D[size_t(i)] = d;
      }
      for (int64_t ib = 0; ib < nib; ++ib) {
        const int64_t i0 = ib * Br, br = std::min(Br, p.L - i0);
        gk.pack_a(qrow(b, h, i0), p.q_sl, 1, br, p.E, qa.data() + ib * Brp * p.E);
        gk.pack_b(qrow(b, h, i0), p.q_sl, 1, br, p.E, qr.data() + ib * Br * Ep);
        gk.pack_a(gh + i0 * p.Ev, p.Ev, 1, br, p.Ev, ga.data() + ib * Brp * p.Ev);
        gk.pack_b(gh + i0 * p.Ev, p.Ev, 1, br, p.Ev, gr.data() + ib * Br * Evp);
      }
      for (int64_t jb = jb0; jb < jb1; ++jb) {
        const int64_t j0 = jb * Bc, bc = std::min(Bc, p.S - j0);
        const int64_t ib0 = p.causal ? j0 / Br : 0;  // causal: blocks whose last row reaches j0
        for (int64_t ib = ib0; ib < nib; ++ib) {
          const int64_t i0 = ib * Br, br = std::min(Br, p.L - i0);
          // S and P = exp(S - lse), masked entries 0
          mm(br, bc, p.E, qa.data() + ib * Brp * p.E, c.kc.data() + jb * Bc * p.E, s.data(), Bc, p.scale, 0.0);
          if (tile_needs_mask(i0, br, j0, bc)) mask_tile(s.data(), Bc, br, bc, b, h, i0, j0);
          for (int64_t r = 0; r < br; ++r) {
            T* sr = s.data() + r * Bc;
            const T lr = lh[i0 + r];
            if (lr == kInf) std::fill(sr, sr + Bc, T(0));
            else exp_sub_sum(sr, Bc, lr);
          }
          const T* Pd = s.data();
          if (p.dropout_p > 0) { dropout_tile(s.data(), pdrop.data(), Bc, 1, br, bc, b, h, i0, j0); Pd = pdrop.data(); }
          // dV_j += Pd^T dO_i
          gk.pack_a(Pd, 1, Bc, bc, br, ta.data());
          mm(bc, p.Ev, br, ta.data(), gr.data() + ib * Br * Evp, dv + j0 * p.Ev, p.Ev, 1.0, 1.0);
          // dP = dO_i V_j^T; dS = P (dP z - D) scale, z the keep factor
          mm(br, bc, p.Ev, ga.data() + ib * Brp * p.Ev, c.vc.data() + jb * Bc * p.Ev, dp.data(), Bc, 1.0, 0.0);
          const T sc = T(p.scale);
          for (int64_t r = 0; r < br; ++r) {
            T* dr = dp.data() + r * Bc;
            const T* pr = s.data() + r * Bc;
            const T Di = D[size_t(i0 + r)];
            if (p.dropout_p > 0) {
              const T* zr = pdrop.data() + r * Bc;  // P z: dP z P = (P z) dP
#pragma omp simd
              for (int64_t q = 0; q < bc; ++q) dr[q] = (zr[q] * dr[q] - pr[q] * Di) * sc;
            } else {
#pragma omp simd
              for (int64_t q = 0; q < bc; ++q) dr[q] = pr[q] * (dr[q] - Di) * sc;
            }
          }
          // dQ_i += dS K_j; dK_j += dS^T Q_i
          gk.pack_a(dp.data(), Bc, 1, br, bc, ta.data());
          mm(br, p.E, bc, ta.data(), c.kr.data() + jb * Bc * Ep, dq + i0 * p.E, p.E, 1.0, 1.0);
          gk.pack_a(dp.data(), 1, Bc, bc, br, ta.data());
          mm(bc, p.E, br, ta.data(), qr.data() + ib * Br * Ep, dk + j0 * p.E, p.E, 1.0, 1.0);
        }
      }
    }
  }
};

void fwd(const AttentionParams& p) {
  if (p.dt == DType::f64) Flash<double>(p).fwd(); else Flash<float>(p).fwd();
}
void bwd(const AttentionParams& p) {
  if (p.dt == DType::f64) Flash<double>(p).bwd(); else Flash<float>(p).bwd();
}

}  // namespace

const AttentionKernels& attention_table() {
  static const AttentionKernels t{fwd, bwd};
  return t;
}

}  // namespace fastdl::cpu::FASTDL_ISA_NS
#endif
