// Flash attention on the CPU (FlashAttention-2's loop structure, Dao 2023) on the GEMM
// micro-kernels: every product is a GEMM macro- or direct-kernel call (cpu/gemm_kernel.h,
// gemm_vec.cpp), so the tile math runs at the GEMM's speed, and only Br x Bc tiles of scores
// ever exist.
//
// forward, one task per (batch, head, block of Br queries), balanced by the key blocks it
// visits (causal rows visit fewer):
//   S = scale Q_i K_j^T (+ mask), m' = max(m, rowmax S), P = exp(S - m'),
//   l = l e^(m - m') + rowsum P, O = O e^(m - m') + P V_j;  out = O / l, lse = m + log l
// backward, one task per (batch, kv head), which owns its dk, dv and its query heads' dq:
//   P = exp(S - lse), dV_j += P^T dO_i, dP = dO_i V_j^T, dS = P (dP - D_i) scale,
//   dQ_i += dS K_j, dK_j += dS^T Q_i,   D_i = rowsum(dO_i O_i)
// Causal tiles above the diagonal are never visited. K and V are packed once per (batch, kv
// head) and task; Q^T and dO^T are transposed once per head in backward. Dropout multiplies P by the counter-based
// keep mask after the row sums (cpu/attention.h), in both directions.
// Compiled per ISA (avx2, avx512); the ref ISA runs the row-at-a-time reference.
#if defined(FASTDL_ISA_avx2) || defined(FASTDL_ISA_avx512)
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/allocator.h"
#include "core/parallel.h"
#include "cpu/attention.h"
#include "cpu/gemm.h"
#include "cpu/simd/vec.h"

namespace fastdl::cpu::FASTDL_ISA_NS {

bool gemm_get_kernel(DType dt, detail::GemmKernel* k);  // gemm_vec.cpp, this ISA

namespace {

using detail::GemmKernel;

constexpr double kLog2e = 1.4426950408889634, kLn2 = 0.6931471805599453;
// The lazy rescale's slack, in base 2: P may reach 2^8 before the reference maximum moves.
constexpr int kSlack = 8;

// Scores are kept in base 2 (the GEMM's alpha folds in log2(e)), so P = 2^(s - m) runs on the
// cheaper exp2. 2^d is flushed to exactly 0 below d = -125 (the -inf of masked scores
// included): every softmax row has a term equal to 1, so nothing that small counts.
template <class T> inline T exp2s(T d) { return d > T(-125) ? T(std::exp2(d)) : T(0); }

// Row map over n elements (n a multiple of the vector width for float32): x = 2^(x - m).
template <class T> void exp2_row(T* x, int64_t n, T m) {
  if constexpr (std::is_same_v<T, float>) {
    for (int64_t i = 0; i < n; i += kWf) {
      stv(x + i, exp2_neg_v(ldv(x + i) - m));
    }
  } else {
    for (int64_t i = 0; i < n; ++i) x[i] = exp2s(x[i] - m);
  }
}
// Backward's row pass without dropout, one read of both tiles: p = 2^(s - m) into s and
// dS = p (d - Di) sc into d, over n elements (a multiple of the vector width for float32).
template <class T> void exp2_ds_row(T* s, T* d, int64_t n, T m, T Di, T sc) {
  if constexpr (std::is_same_v<T, float>) {
    for (int64_t i = 0; i < n; i += kWf) {
      const vf e = exp2_neg_v(ldv(s + i) - m);
      stv(s + i, e);
      stv(d + i, e * (ldv(d + i) - Di) * sc);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      s[i] = exp2s(s[i] - m);
      d[i] = s[i] * (d[i] - Di) * sc;
    }
  }
}
// Column maps over a rows x n tile (row stride ld, n a multiple of the float vector width):
// m[j] = max(m[j], max_i x[i][j]); and x = 2^(x - mu[j]) with the column sums added into
// sum[j]. Columns are queries here, so both run as vertical vector operations with no
// horizontal reduction.
template <class T> void col_max(const T* x, int64_t rows, int64_t ld, int64_t n, T* m) {
  if constexpr (std::is_same_v<T, float>) {
    // Two columns vectors and two rows at a time: four independent max chains.
    int64_t j = 0;
    for (; j + 2 * kWf <= n; j += 2 * kWf) {
      vf a0 = ldv(m + j), a1 = ldv(m + j + kWf), b0 = a0, b1 = a1;
      int64_t i = 0;
      for (; i + 2 <= rows; i += 2) {
        const float* r = x + i * ld + j;
        const vf y0 = ldv(r), y1 = ldv(r + kWf), z0 = ldv(r + ld), z1 = ldv(r + ld + kWf);
        a0 = y0 > a0 ? y0 : a0; a1 = y1 > a1 ? y1 : a1;
        b0 = z0 > b0 ? z0 : b0; b1 = z1 > b1 ? z1 : b1;
      }
      if (i < rows) {
        const vf y0 = ldv(x + i * ld + j), y1 = ldv(x + i * ld + j + kWf);
        a0 = y0 > a0 ? y0 : a0; a1 = y1 > a1 ? y1 : a1;
      }
      stv(m + j, b0 > a0 ? b0 : a0);
      stv(m + j + kWf, b1 > a1 ? b1 : a1);
    }
    for (; j < n; j += kWf) {
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
// x = 2^(x - mu[j]) with the column sums added into sum[j]; with TrackMax, top[j] also becomes
// max(top[j], max_i x[i][j]) of the scores read (the lazy rescale's check, in the same pass).
template <bool TrackMax = false, class T>
void exp2_cols(T* x, int64_t rows, int64_t ld, int64_t n, const T* mu, T* sum, T* top = nullptr) {
  if constexpr (std::is_same_v<T, float>) {
    const auto ex = exp2_neg_v;
    int64_t j = 0;
    for (; j + 2 * kWf <= n; j += 2 * kWf) {  // two column vectors: two independent sums
      const vf m0 = ldv(mu + j), m1 = ldv(mu + j + kWf);
      vf s0 = ldv(sum + j), s1 = ldv(sum + j + kWf), t0{}, t1{};
      if constexpr (TrackMax) t0 = ldv(top + j), t1 = ldv(top + j + kWf);
      for (int64_t i = 0; i < rows; ++i) {
        float* r = x + i * ld + j;
        const vf y0 = ldv(r), y1 = ldv(r + kWf);
        if constexpr (TrackMax) t0 = y0 > t0 ? y0 : t0, t1 = y1 > t1 ? y1 : t1;
        const vf e0 = ex(y0 - m0), e1 = ex(y1 - m1);
        stv(r, e0);
        stv(r + kWf, e1);
        s0 += e0;
        s1 += e1;
      }
      stv(sum + j, s0);
      stv(sum + j + kWf, s1);
      if constexpr (TrackMax) stv(top + j, t0), stv(top + j + kWf, t1);
    }
    for (; j < n; j += kWf) {
      const vf m = ldv(mu + j);
      vf s = ldv(sum + j), t{};
      if constexpr (TrackMax) t = ldv(top + j);
      for (int64_t i = 0; i < rows; ++i) {
        const vf y = ldv(x + i * ld + j);
        if constexpr (TrackMax) t = y > t ? y : t;
        const vf e = ex(y - m);
        stv(x + i * ld + j, e);
        s += e;
      }
      stv(sum + j, s);
      if constexpr (TrackMax) stv(top + j, t);
    }
  } else {
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < n; ++j) {
        if constexpr (TrackMax) top[j] = std::max(top[j], x[i * ld + j]);
        x[i * ld + j] = exp2s(x[i * ld + j] - mu[j]);
        sum[j] += x[i * ld + j];
      }
  }
}
// x[i][j] *= a[j] over rows x n (row stride ld).
template <class T> void scale_cols(T* x, int64_t rows, int64_t ld, int64_t n, const T* a) {
  for (int64_t i = 0; i < rows; ++i) {
    T* xi = x + i * ld;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) xi[j] *= a[j];
  }
}

// Forward tiles are one query panel of S^T (keys x nr queries, key c and query r at c nr + r):
// a packed GEMM B panel, so it is the B operand of O^T += V^T P^T as it lies and P is never
// packed; O^T is transposed once when a query block is finished.
// Backward tiles are row-major and run on the direct kernel (see bwd_unit).
template <class T>
struct Flash {
  const AttentionParams& p;
  GemmKernel gk{};
  int64_t mr = 1, nr = 1, Br = 64, Bc = 64, Brn = 64, Bcm = 64;
  int64_t Ep = 0, Evm = 0, group = 1, nib = 0, njb = 0;
  static constexpr T kInf = std::numeric_limits<T>::infinity();

  // The two passes block differently. Forward: query panels are the nr-wide B operand and keys
  // the mr-row A operand of S^T = K Q^T, so Br is a multiple of nr and Bc of mr. Backward: query
  // rows are the M of the direct kernel and keys its nr-wide panels, so the reverse. Backward,
  // ~96 queries x ~128 keys: the score tiles (48 KiB in float) and the packed K / V blocks stay
  // in L2 while the micro-kernels run k loops of 64-128 (CPU-time sweep on Zen 3). Forward keeps
  // one query panel's scores in L1 whatever Bc is, and ~256 keys halve the per-panel softmax
  // bookkeeping (fwd (4,8,1024,64) 29-30 -> 26-27 ms against 128 keys, Xeon, 2 threads).
  // FASTDL_ATTENTION_BLOCK = "Br,Bc" overrides both (tests run odd blockings on every ISA).
  Flash(const AttentionParams& pp, bool backward) : p(pp) {
    gemm_get_kernel(p.dt, &gk);
    mr = gk.mr; nr = gk.nr;
    int64_t br = 96, bc = backward ? 128 : 256;
    if (const char* e = std::getenv("FASTDL_ATTENTION_BLOCK")) {
      long a = 0, c = 0;
      if (std::sscanf(e, "%ld,%ld", &a, &c) == 2 && a > 0 && c > 0) { br = a; bc = c; }
    }
    const int64_t rq = backward ? mr : nr, rk = backward ? nr : mr;  // query / key granules
    Br = (br + rq - 1) / rq * rq;
    Bc = std::max<int64_t>(rk, bc / rk * rk);
    Brn = (Br + nr - 1) / nr * nr;  // query columns of a transposed score tile
    Bcm = (Bc + mr - 1) / mr * mr;
    Ep = (p.E + nr - 1) / nr * nr;
    Evm = (p.Ev + mr - 1) / mr * mr;
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
  // Causal tiles skip the keys and queries that the diagonal hides from the whole tile or panel.
  bool trim() const { return p.causal; }
  bool tile_needs_mask(int64_t i0, int64_t j0, int64_t bc) const {
    return p.mask_kind != MaskKind::none || (p.causal && j0 + bc - 1 > i0);
  }

  // C[0:m, 0:n] = alpha A B + beta C over packed A (m x k) and packed B (k x n).
  void mm(int64_t m, int64_t n, int64_t k, const T* Ap, const T* Bp, T* C, int64_t ldc, double alpha, double beta) const {
    gk.macro(m, n, k, Ap, Bp, C, ldc, 1, alpha, beta, 0, panels(n));
  }
  // Masking of a score tile, query i0 + r and key j0 + c at s[at(r, c)], scores in base 2.
  template <class At> void mask_tile(T* s, At at, int64_t br, int64_t bc, int64_t b, int64_t h, int64_t i0, int64_t j0) const {
    for (int64_t r = 0; r < br; ++r) {
      const int64_t i = i0 + r;
      const int64_t end = p.causal ? std::max<int64_t>(0, std::min(bc, i + 1 - j0)) : bc;  // keys j <= i
      if (p.mask_kind == MaskKind::boolean) {
        const uint8_t* m = static_cast<const uint8_t*>(p.mask) + b * p.m_sb + h * p.m_sh + i * p.m_sl + j0 * p.m_ss;
        for (int64_t c = 0; c < end; ++c)
          if (!m[c * p.m_ss]) s[at(r, c)] = -kInf;
      } else if (p.mask_kind == MaskKind::additive) {
        const T* m = static_cast<const T*>(p.mask) + b * p.m_sb + h * p.m_sh + i * p.m_sl + j0 * p.m_ss;
        for (int64_t c = 0; c < end; ++c) s[at(r, c)] += m[c * p.m_ss] * T(kLog2e);
      }
      for (int64_t c = end; c < bc; ++c) s[at(r, c)] = -kInf;
    }
  }
  // mask_tile on a forward panel (key c, query r at s[c nr + r]); a causal mask alone fills each
  // key's hidden queries, a prefix of its row.
  void mask_tile_t(T* s, int64_t nq, int64_t mq, int64_t b, int64_t h, int64_t i0, int64_t j0) const {
    if (p.mask_kind != MaskKind::none) {
      mask_tile(s, [&](int64_t r, int64_t c) { return c * nr + r; }, nq, mq, b, h, i0, j0);
      return;
    }
    for (int64_t c = 0; c < mq; ++c) {
      const int64_t e = std::min(nq, j0 + c - i0);  // queries r < e precede key j0 + c
      if (e > 0) std::fill(s + c * nr, s + c * nr + e, -kInf);
    }
  }
  // dst = P times the dropout keep factor, element (r, c) (query i0 + r, key j0 + c) at at(r, c)
  // in both.
  template <class At> void dropout_tile(const T* P, T* dst, At at, int64_t br, int64_t bc, int64_t b, int64_t h,
                                        int64_t i0, int64_t j0) const {
    const float pd = float(p.dropout_p);
    const T inv = T(1.0 / (1.0 - p.dropout_p));
    for (int64_t r = 0; r < br; ++r) {
      const uint64_t base = uint64_t(((b * p.heads + h) * p.L + i0 + r) * p.S + j0);
      for (int64_t c = 0; c < bc; ++c) {
        const int64_t x = at(r, c);
        dst[x] = dropout_uniform(p.seed, base + uint64_t(c)) >= pd ? P[x] * inv : T(0);
      }
    }
  }

  // Packed K / V of one (batch, kv head), block by block on first use.
  struct KV {
    int64_t b = -1, g = -1;
    cpu_vector<T> ka, va, kc, kr, vc;  // K as A (k = E), V^T as A (k = keys), K^T, K rows, V^T panels
    std::vector<char> done;
  };
  void kv_bind(KV& c, int64_t b, int64_t g) const {
    if (c.b == b && c.g == g) return;
    c.b = b; c.g = g;
    c.done.assign(size_t(njb), 0);
  }
  // Forward needs ka and va; backward kc, kr and vc.
  void kv_pack(KV& c, int64_t jb, bool bwd) const {
    if (c.done[size_t(jb)]) return;
    const int64_t j0 = jb * Bc, bc = std::min(Bc, p.S - j0);
    const T* K = krow(c.b, c.g, j0);
    const T* Vm = vrow(c.b, c.g, j0);
    if (!bwd) {
      gk.pack_a(K, p.k_sl, 1, bc, p.E, c.ka.data() + jb * Bcm * p.E);
      gk.pack_a(Vm, 1, p.v_sl, p.Ev, bc, c.va.data() + jb * Evm * Bc);
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

  // Per key block and query panel: S^T = K_j Q_panel^T (the softmax statistics are vertical
  // vector ops over queries), then O^T[:, panel] = O^T[:, panel] diag(alpha) + V_j^T P^T while
  // the panel's P^T is still in L1.
  void fwd_items(int64_t lo, int64_t hi) const {
    if (lo >= hi) return;
    KV c;
    c.ka.resize(size_t(njb * Bcm * p.E));
    c.va.resize(size_t(njb * Evm * Bc));
    cpu_vector<T> qb(size_t(Brn * p.E)), st(size_t(nr * Bc)), ot(size_t(p.Ev * Brn)), pdrop;
    if (p.dropout_p > 0) pdrop.resize(st.size());
    const size_t nl = size_t(Brn);
    cpu_vector<T> m(nl), mn(nl), mu(nl), l(nl), sum(nl), alpha(nl);
    T* out = static_cast<T*>(p.out);
    T* lse = static_cast<T*>(p.lse);
    for (int64_t it = lo; it < hi; ++it) {
      const int64_t ib = it % nib, bh = it / nib, h = bh % p.heads, b = bh / p.heads, g = h / group;
      const int64_t i0 = ib * Br, br = std::min(Br, p.L - i0), kend = key_end(ib);
      const int64_t nqp = panels(br);  // query panels; columns past br hold scores of 0
      kv_bind(c, b, g);
      gk.pack_b(qrow(b, h, i0), 1, p.q_sl, p.E, br, qb.data());
      std::fill(ot.begin(), ot.end(), T(0));
      std::fill(m.begin(), m.end(), -kInf);
      std::fill(l.begin(), l.end(), T(0));
      for (int64_t jb = 0; jb * Bc < kend; ++jb) {
        // bc keys as packed; a causal block's last key block ends at its last query (bk keys),
        // and each query panel computes only the keys its last query sees (the rest is -inf).
        const int64_t j0 = jb * Bc, bc = std::min(Bc, p.S - j0), bk = trim() ? std::min(bc, kend - j0) : bc;
        kv_pack(c, jb, false);
        const T* va = c.va.data() + jb * Evm * Bc;
        for (int64_t q = 0; q < nqp; ++q) {  // one query panel at a time: its bk x nr scores stay in L1
          T* Sq = st.data();
          const int64_t c0 = q * nr, nq = std::min(nr, br - c0);
          const int64_t mq = trim() ? std::clamp<int64_t>(i0 + c0 + nq - j0, 0, bk) : bk;
          auto scores = [&] {
            if (mq > 0)
              gk.macro(mq, nr, p.E, c.ka.data() + jb * Bcm * p.E, qb.data() + q * nr * p.E, Sq, nr, 1,
                       p.scale * kLog2e, 0.0, 0, 1);
            std::fill(Sq + mq * nr, Sq + bk * nr, -kInf);
            if (tile_needs_mask(i0 + c0, j0, bk)) mask_tile_t(Sq, nq, mq, b, h, i0 + c0, j0);
          };
          scores();
          // Lazy rescale (FlashAttention-4's): once the panel's columns have reference maxima m,
          // P = 2^(S - m) against them while the same pass finds the tile's maxima. Only if a
          // column's maximum passes m + kSlack (P above 2^kSlack) is the tile computed again and
          // renormalised as below, every column's m moving to its running maximum. m need not be
          // the running maximum: l and O are sums of 2^(s - m) for any one m, and lse = m + log2 l.
          // This skips the max pass and most rescales of O^T (random scores: a new maximum in a
          // 16-query panel at most key blocks). A column with nothing visible yet (m = -inf) gets
          // P = 2^NaN = 0 where its tile is hidden too, else fails the check.
          bool has_ref = false, lazy_ok = false;  // some column has a reference max; the check passed
          for (int64_t r = c0; r < c0 + nr; ++r) has_ref |= m[size_t(r)] != -kInf;
          if (has_ref) {
            std::fill(sum.begin() + c0, sum.begin() + c0 + nr, T(0));
            std::fill(mn.begin() + c0, mn.begin() + c0 + nr, -kInf);
            exp2_cols<true>(Sq, bk, nr, nr, m.data() + c0, sum.data() + c0, mn.data() + c0);
            lazy_ok = true;
            for (int64_t r = c0; r < c0 + nr; ++r) lazy_ok &= mn[size_t(r)] <= m[size_t(r)] + kSlack;
            if (lazy_ok)
              for (int64_t r = c0; r < c0 + nr; ++r) l[size_t(r)] += sum[size_t(r)];
            else
              scores();  // P was taken against a stale m: the scores again, renormalised below
          }
          if (!lazy_ok) {
            std::copy(m.begin() + c0, m.begin() + c0 + nr, mn.begin() + c0);
            col_max(Sq, bk, nr, nr, mn.data() + c0);
            bool rescale = false;
            for (int64_t r = c0; r < c0 + nr; ++r) {  // a column with nothing visible yet keeps P = 0
              const size_t x = size_t(r);
              mu[x] = mn[x] == -kInf ? T(0) : mn[x];
              alpha[x] = m[x] == -kInf ? T(0) : exp2s(m[x] - mu[x]);
              rescale |= alpha[x] != T(1);
              sum[x] = T(0);
            }
            exp2_cols(Sq, bk, nr, nr, mu.data() + c0, sum.data() + c0);
            for (int64_t r = c0; r < c0 + nr; ++r) {
              l[size_t(r)] = l[size_t(r)] * alpha[size_t(r)] + sum[size_t(r)];
              m[size_t(r)] = mn[size_t(r)];
            }
            if (rescale) scale_cols(ot.data() + c0, p.Ev, Brn, nr, alpha.data() + c0);
          }
          // O^T[:, panel] = O^T[:, panel] diag(alpha) + V_j^T P_q^T, the panel's P^T still in L1.
          // V^T was packed with k = bc, so a shorter k goes one row panel of V^T at a time.
          const T* P = Sq;
          if (p.dropout_p > 0) {
            dropout_tile(Sq, pdrop.data(), [&](int64_t r, int64_t cc) { return cc * nr + r; }, nq, bk, b, h, i0 + c0, j0);
            P = pdrop.data();
          }
          T* oq = ot.data() + c0;
          if (bk == bc) gk.macro(p.Ev, nq, bk, va, P, oq, Brn, 1, 1.0, 1.0, 0, 1);
          else
            for (int64_t e = 0; e < p.Ev; e += mr)
              gk.macro(std::min(mr, p.Ev - e), nq, bk, va + e * bc, P, oq + e * Brn, Brn, 1, 1.0, 1.0, 0, 1);
        }
      }
      T* o = out + (bh * p.L + i0) * p.Ev;
      for (int64_t r = 0; r < br; ++r) {
        const T lr = l[size_t(r)];
        T* orow = o + r * p.Ev;
        if (lr > T(0)) {
          const T inv = T(1) / lr;
          for (int64_t e = 0; e < p.Ev; ++e) orow[e] = ot[size_t(e * Brn + r)] * inv;
          lse[bh * p.L + i0 + r] = T((double(m[size_t(r)]) + std::log2(double(lr))) * kLn2);
        } else {
          std::fill(orow, orow + p.Ev, T(0));
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
        BwdWork w(*this, njb);
        for (int64_t u = u0; u < u1; ++u) {
          const int64_t b = u / p.kv_heads, g = u % p.kv_heads;
          bwd_unit(w, b, g, 0, njb, static_cast<T*>(p.dq) + (b * p.heads + g * group) * p.L * p.E);
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
    cpu_vector<T> buf(size_t(units * parts * qsize));
    int64_t span = 0;  // the most key blocks a part owns
    for (int64_t q = 0; q < parts; ++q) span = std::max(span, cut[size_t(q) + 1] - cut[size_t(q)]);
    parallel_for(0, units * parts, 1, [&](int64_t t0, int64_t t1) {
      BwdWork w(*this, span);
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t u = t / parts, q = t % parts;
        bwd_unit(w, u / p.kv_heads, u % p.kv_heads, cut[size_t(q)], cut[size_t(q) + 1], buf.data() + t * qsize);
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

  // A backward task's buffers, made once per thread's run of tasks (tiny heads, a ViT's 17
  // tokens, are thousands of tasks: allocating and zeroing per task cost more than the math).
  // Every buffer is written before it is read in each task, but for the sums dvt, dkt and dql,
  // which bwd_unit clears.
  static constexpr int64_t kTilePad = 16;  // tile row stride Bc + kTilePad, off powers of two
  struct BwdWork {
    KV c;
    cpu_vector<T> qt, gt, D, s, dp, dql, pdrop, dvt, dkt;
    BwdWork(const Flash& f, int64_t span) {  // span: the most key blocks one task owns
      const AttentionParams& p = f.p;
      const int64_t lds = f.Bc + kTilePad, rows = std::min(f.Br, p.L);  // a tile's rows at most
      c.kc.resize(size_t(f.njb * f.Bc * p.E));
      c.kr.resize(size_t(f.njb * f.Bc * f.Ep));
      c.vc.resize(size_t(f.njb * f.Bc * p.Ev));
      qt.resize(size_t(f.nib * p.E * f.Br));
      gt.resize(size_t(f.nib * p.Ev * f.Br));
      D.resize(size_t(p.L));
      s.resize(size_t(rows * lds));
      dp.resize(s.size());
      if (p.dropout_p > 0) pdrop.resize(s.size());
      dql.resize(size_t(p.L * f.Ep));
      dvt.resize(size_t(span * p.Ev * lds));
      dkt.resize(size_t(span * p.E * lds));
    }
  };

  // Key blocks [jb0, jb1) of (batch b, kv head g): writes those rows of dk and dv, and the
  // group's dq contributions into dqg ((group, L, E), written here).
  // Every tile is row-major (queries x keys, row stride lds) and every product runs the GEMM's
  // direct kernel, which reads A rows in place and B as row panels: S = Q K^T and dP = dO V^T
  // read Q and dO where they lie; dV^T += dO^T P and dK^T += Q^T dS read P and dS as B panels;
  // dQ += dS K reads dS as A. Only Q^T and dO^T are transposed, once per query block and head.
  void bwd_unit(BwdWork& w, int64_t b, int64_t g, int64_t jb0, int64_t jb1, T* dqg) const {
    KV& c = w.c;
    kv_bind(c, b, g);
    for (int64_t jb = jb0; jb < jb1; ++jb) kv_pack(c, jb, true);
    const int64_t lds = Bc + kTilePad;
    cpu_vector<T>&qt = w.qt, &gt = w.gt, &D = w.D, &s = w.s, &dp = w.dp, &dql = w.dql, &pdrop = w.pdrop;
    const T* out = static_cast<const T*>(p.out);
    const T* go = static_cast<const T*>(p.gout);
    const T* lse = static_cast<const T*>(p.lse);
    // dV^T and dK^T of this part's keys, one (Ev or E) x Bc block per key block (rows lds
    // apart): a block's accumulation touches a few pages, not one per row of a (E, S) matrix.
    const int64_t r0 = jb0 * Bc, r1 = std::min(p.S, jb1 * Bc);
    cpu_vector<T>&dvt = w.dvt, &dkt = w.dkt;
    std::fill(dvt.begin(), dvt.begin() + (jb1 - jb0) * p.Ev * lds, T(0));
    std::fill(dkt.begin(), dkt.begin() + (jb1 - jb0) * p.E * lds, T(0));
    const T sc = T(p.scale);
    for (int64_t h = g * group; h < (g + 1) * group; ++h) {
      const int64_t bh = b * p.heads + h;
      const T* gh = go + bh * p.L * p.Ev;
      const T* oh = out + bh * p.L * p.Ev;
      const T* lh = lse + bh * p.L;
      for (int64_t i = 0; i < p.L; ++i) {
        T d = 0;
#pragma omp simd reduction(+ : d)
        for (int64_t e = 0; e < p.Ev; ++e) d += gh[i * p.Ev + e] * oh[i * p.Ev + e];
        D[size_t(i)] = d;
      }
      for (int64_t ib = 0; ib < nib; ++ib) {  // Q_i^T and dO_i^T, row-major (E x Br), (Ev x Br)
        const int64_t i0 = ib * Br, br = std::min(Br, p.L - i0);
        T* qti = qt.data() + ib * p.E * Br;
        T* gti = gt.data() + ib * p.Ev * Br;
        for (int64_t r = 0; r < br; ++r) {
          const T* q = qrow(b, h, i0 + r);
          const T* gr = gh + (i0 + r) * p.Ev;
          for (int64_t e = 0; e < p.E; ++e) qti[e * Br + r] = q[e];
          for (int64_t e = 0; e < p.Ev; ++e) gti[e * Br + r] = gr[e];
        }
      }
      std::fill(dql.begin(), dql.end(), T(0));
      for (int64_t jb = jb0; jb < jb1; ++jb) {
        const int64_t j0 = jb * Bc, bc = std::min(Bc, p.S - j0);
        const int64_t ib0 = p.causal ? j0 / Br : 0;  // causal: blocks whose last row reaches j0
        for (int64_t ib = ib0; ib < nib; ++ib) {
          // Rows [i0, i0 + br) of query block ib against keys [j0, j0 + bk); on the causal
          // diagonal, the rows above j0 and the keys past the block's last query see nothing.
          const int64_t rs = trim() ? std::max<int64_t>(0, j0 - (ib * Br)) : 0;
          const int64_t i0 = ib * Br + rs, br = std::min(Br, p.L - ib * Br) - rs;
          const int64_t bk = trim() ? std::min(bc, i0 + br - j0) : bc, bkp = panels(bk) * nr;
          const T* qti = qt.data() + ib * p.E * Br + rs;
          const T* gti = gt.data() + ib * p.Ev * Br + rs;
          // S and P = 2^(S - lse log2 e): masked entries and the padding past bk are 0
          gk.direct(br, bkp, p.E, qrow(b, h, i0), p.q_sl, c.kc.data() + jb * Bc * p.E, nr, nr * p.E, s.data(), lds,
                    p.scale * kLog2e, 0.0);
          if (tile_needs_mask(i0, j0, bk))
            mask_tile(s.data(), [&](int64_t r, int64_t cc) { return r * lds + cc; }, br, bk, b, h, i0, j0);
          // dP = dO_i V_j^T
          gk.direct(br, bkp, p.Ev, gh + i0 * p.Ev, p.Ev, c.vc.data() + jb * Bc * p.Ev, nr, nr * p.Ev, dp.data(), lds,
                    1.0, 0.0);
          // P, and dS = P (dP z - D) scale with z the keep factor; without dropout, P and dS
          // in one pass over the two tiles (they outgrow L1) instead of two
          const T* Pd = s.data();
          for (int64_t r = 0; r < br; ++r) {
            T* sr = s.data() + r * lds;
            T* dr = dp.data() + r * lds;
            const T lr = lh[i0 + r];
            if (lr == kInf) {  // a fully masked row: P = dS = 0
              std::fill(sr, sr + bkp, T(0));
              std::fill(dr, dr + bkp, T(0));
              continue;
            }
            if (p.dropout_p > 0) exp2_row(sr, bkp, T(lr * T(kLog2e)));
            else {
              exp2_ds_row(sr, dr, bkp, T(lr * T(kLog2e)), D[size_t(i0 + r)], sc);
              std::fill(dr + bk, dr + bkp, T(0));
            }
            std::fill(sr + bk, sr + bkp, T(0));
          }
          if (p.dropout_p > 0) {
            dropout_tile(s.data(), pdrop.data(), [&](int64_t r, int64_t cc) { return r * lds + cc; }, br, bk, b, h, i0, j0);
            for (int64_t r = 0; r < br; ++r) {
              T* dr = dp.data() + r * lds;
              const T* pr = s.data() + r * lds;
              T* zr = pdrop.data() + r * lds;  // P z: dP z P = (P z) dP
              const T Di = D[size_t(i0 + r)];
              std::fill(zr + bk, zr + bkp, T(0));
#pragma omp simd
              for (int64_t x = 0; x < bkp; ++x) dr[x] = (zr[x] * dr[x] - pr[x] * Di) * sc;
            }
            Pd = pdrop.data();
          }
          // dV_j^T += dO_i^T Pd
          gk.direct(p.Ev, bkp, br, gti, Br, Pd, lds, nr, dvt.data() + (jb - jb0) * p.Ev * lds, lds, 1.0, 1.0);
          // dK_j^T += Q_i^T dS; dQ_i += dS K_j (K's row panels were packed with k = bc)
          gk.direct(p.E, bkp, br, qti, Br, dp.data(), lds, nr, dkt.data() + (jb - jb0) * p.E * lds, lds, 1.0, 1.0);
          gk.direct(br, Ep, bk, dp.data(), lds, c.kr.data() + jb * Bc * Ep, nr, nr * bc, dql.data() + i0 * Ep, Ep, 1.0, 1.0);
        }
      }
      T* dq = dqg + (h - g * group) * p.L * p.E;
      for (int64_t i = 0; i < p.L; ++i) std::copy(dql.data() + i * Ep, dql.data() + i * Ep + p.E, dq + i * p.E);
    }
    T* dk = static_cast<T*>(p.dk) + (b * p.kv_heads + g) * p.S * p.E;
    T* dv = static_cast<T*>(p.dv) + (b * p.kv_heads + g) * p.S * p.Ev;
    for (int64_t j = r0; j < r1; ++j) {
      const int64_t blk = (j - r0) / Bc, c = (j - r0) % Bc;
      for (int64_t e = 0; e < p.E; ++e) dk[j * p.E + e] = dkt[size_t((blk * p.E + e) * lds + c)];
      for (int64_t e = 0; e < p.Ev; ++e) dv[j * p.Ev + e] = dvt[size_t((blk * p.Ev + e) * lds + c)];
    }
  }
};

void fwd(const AttentionParams& p) {
  if (p.dt == DType::f64) Flash<double>(p, false).fwd(); else Flash<float>(p, false).fwd();
}
void bwd(const AttentionParams& p) {
  if (p.dt == DType::f64) Flash<double>(p, true).bwd(); else Flash<float>(p, true).bwd();
}

}  // namespace

const AttentionKernels& attention_table() {
  static const AttentionKernels t{fwd, bwd};
  return t;
}

}  // namespace fastdl::cpu::FASTDL_ISA_NS
#endif
