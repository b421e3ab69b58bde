// The selective scan vectorised across channels: W channels of one group run in the W lanes
// of a vector (8 float32 on AVX2, 16 on AVX-512), so B_t and C_t are scalars broadcast to
// every lane and the N states live in an L1-resident N x W block. Time is walked in chunks of
// p.chunk steps: a chunk's u / delta / z are transposed into (step, lane) tiles first.
//   forward:  x = exp(delta A) x + delta B u; y = <x, C>; out = (y + D u) silu(z)
//   backward: per chunk, last to first: recompute the chunk's states from its checkpoint,
//             then walk back with h = dL/dx (carried across chunks), accumulating dA, dD and
//             delta_bias per channel and dB, dC per task into partials summed in task order.
// Compiled per ISA (avx2, avx512); the ref ISA runs the scalar reference (selective_scan.cpp).
#if defined(FASTDL_ISA_avx2) || defined(FASTDL_ISA_avx512)
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include <immintrin.h>

#include "core/parallel.h"
#include "cpu/selective_scan.h"
#include "cpu/simd/transpose.h"
#include "cpu/simd/vec.h"
#include "cpu/simd/vmath.h"

namespace fastdl::cpu::FASTDL_ISA_NS {
namespace {

// exp with results below FLT_MIN flushed to 0: no denormal arithmetic (vm::exp_ftz_f).
template <class T> inline T e_exp(T x) { if constexpr (std::is_same_v<T, float>) return vm::exp_ftz_f(x); else return std::exp(x); }
template <class T> inline T e_sigmoid(T x) { return T(1) / (T(1) + e_exp(-x)); }
template <class T> inline T e_softplus(T x) {
  if constexpr (std::is_same_v<T, float>) return x > 20.f ? x : vm::log_f(1.f + vm::exp_f(x));
  else return x > 20.0 ? x : std::log1p(std::exp(x));
}

// log for x >= 1 (softplus's 1 + e^x): x = m 2^e with m in [sqrt(1/2), sqrt(2)), Cephes' logf
// polynomial in m - 1 (vm::log_f without the zero, negative, subnormal and infinite cases).
inline vf log_ge1_v(vf x) {
  const vi i = (vi)x;
  vi e = ((i >> 23) & 0xff) - 126;
  vf m = (vf)((i & 0x007fffff) | 0x3f000000);  // [0.5, 1)
  const vi small = m < 0.707106781186547524f;    // all ones where m must double
  e += small;
  m += (vf)((vi)m & small);
  return vm::log1p_poly(m - 1.0f) + __builtin_convertvector(e, vf) * 0.693147180559945309f;
}
inline vf sigmoid_v(vf x) { return 1.0f / (1.0f + exp_v(-x)); }
inline vf softplus_v(vf x) { return x > 20.0f ? x : log_ge1_v(1.0f + exp_v(x)); }  // PyTorch's threshold

// Whole-tile elementwise maps (n a multiple of W): out[i] = f(in[i]), float32 through the
// vector form vfn, anything else through the scalar form sfn (auto-vectorised).
template <class T, int W, class VFn, class SFn>
void map_tile(const T* in, T* out, int64_t n, VFn vfn, SFn sfn) {
  if constexpr (std::is_same_v<T, float> && W == kWf) {
    for (int64_t i = 0; i < n; i += W) stv(out + i, vfn(ldv(in + i)));
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) out[i] = sfn(in[i]);
  }
}
template <class T, int W>
void softplus_tile(T* d, int64_t n) { map_tile<T, W>(d, d, n, softplus_v, [](T x) { return e_softplus(x); }); }
template <class T, int W>
void sigmoid_tile(const T* x, T* out, int64_t n) {
  map_tile<T, W>(x, out, n, sigmoid_v, [](T v) { return e_sigmoid(v); });
}
template <class T, int W>
void softplus_grad_tile(T* x, int64_t n) {  // x <- d softplus / dx: sigmoid, exactly 1 past 20
  map_tile<T, W>(x, x, n, [](vf v) { return v > 20.0f ? vf{} + 1.0f : sigmoid_v(v); },
                 [](T v) { return v > T(20) ? T(1) : e_sigmoid(v); });
}
template <class T, int W>
void silu_gate_tile(T* y, const T* z, int64_t n) {  // y *= z sigmoid(z)
  if constexpr (std::is_same_v<T, float> && W == kWf) {
    for (int64_t i = 0; i < n; i += W) { const vf v = ldv(z + i); stv(y + i, ldv(y + i) * v * sigmoid_v(v)); }
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] *= z[i] * e_sigmoid(z[i]);
  }
}

// One task's view: channels d0 .. d0 + w (w <= W lanes, all in group g) of batch b.
template <class T, int W>
struct Lanes {
  const SelectiveScanParams& p;
  int64_t b, d0, g;
  int w;
  const T* row(const void* base, int lane) const {
    return static_cast<const T*>(base) + (b * p.dim + d0 + std::min(lane, w - 1)) * p.L;
  }
  // (step, lane) tile of a (batch, dim, L) operand over steps [l0, l0 + lc); idle lanes copy the
  // last real channel (finite values, never written back).
  // A full block moves in 8x8 (float) / 4x4 (double) register transposes; steps past the
  // last whole block, and blocks with idle lanes, element by element.
  static constexpr int TB = 32 / int(sizeof(T));
  int64_t vec_steps(int64_t lc) const { return w == W && W % TB == 0 ? lc / TB * TB : 0; }
  void load(const void* base, int64_t l0, int64_t lc, T* tile) const {
    const int64_t lv = vec_steps(lc);
    for (int k0 = 0; k0 < W && lv; k0 += TB)
      for (int64_t l = 0; l < lv; l += TB) tr_block(row(base, k0) + l0 + l, p.L, tile + l * W + k0, W, TB);
    for (int k = 0; k < W; ++k) {
      const T* r = row(base, k) + l0;
      for (int64_t l = lv; l < lc; ++l) tile[l * W + k] = r[l];
    }
  }
  void store(void* base, int64_t l0, int64_t lc, const T* tile) const {
    T* r0 = static_cast<T*>(base) + (b * p.dim + d0) * p.L + l0;
    const int64_t lv = vec_steps(lc);
    for (int k0 = 0; k0 < W && lv; k0 += TB)
      for (int64_t l = 0; l < lv; l += TB) tr_block(tile + l * W + k0, W, r0 + k0 * p.L + l, p.L, TB);
    for (int k = 0; k < w; ++k)
      for (int64_t l = lv; l < lc; ++l) r0[k * p.L + l] = tile[l * W + k];
  }
  // Fetch a later chunk's rows (steps [l0, l0 + lc)) into cache ahead of use: a task reads
  // W rows 4 KiB or more apart in short runs, which the hardware prefetchers do not follow.
  void prefetch(const void* base, int64_t l0, int64_t lc, bool for_write = false) const {
    if (!base || l0 < 0 || l0 >= p.L) return;
    lc = std::min(lc, p.L - l0);
    for (int k = 0; k < w; ++k) {
      const char* r = reinterpret_cast<const char*>(static_cast<const T*>(base) + (b * p.dim + d0 + k) * p.L + l0);
      for (int64_t i = 0; i < int64_t(lc * sizeof(T)); i += 64) {
        if (for_write) __builtin_prefetch(r + i, 1, 3); else __builtin_prefetch(r + i, 0, 3);
      }
    }
  }
  T* ckpt(int64_t c, int lane) const {  // state before chunk c of channel d0 + lane
    return static_cast<T*>(p.checkpoints) + ((b * p.dim + d0 + lane) * scan_chunks(p) + c) * p.N;
  }
  T chan(const void* v, int lane, T dflt) const {  // per-channel vector D / delta_bias
    return v ? static_cast<const T*>(v)[d0 + std::min(lane, w - 1)] : dflt;
  }
};

// delta' tile (after bias and softplus), keeping the pre-softplus value for backward.
template <class T, int W>
void load_delta(const Lanes<T, W>& s, int64_t l0, int64_t lc, T* dl, T* raw) {
  s.load(s.p.delta, l0, lc, dl);
  alignas(64) T bias[W];
  for (int k = 0; k < W; ++k) bias[k] = s.chan(s.p.delta_bias, k, T(0));
  // Flags are tested outside the vector loops (inside, both sides of a branch get computed),
  // and each loop runs over the whole tile (one long loop, not lc loops of one vector).
  for (int64_t l = 0; l < lc; ++l)
#pragma omp simd
    for (int k = 0; k < W; ++k) dl[l * W + k] += bias[k];
  if (raw) std::memcpy(raw, dl, sizeof(T) * size_t(lc * W));
  if (s.p.softplus) {
    softplus_tile<T, W>(dl, lc * W);
  }
}

// B or C as (batch, groups, L, N): one scalar per (step, n) shared by all lanes, read along n.
// Transposed once per call (every channel block of a group reads the same rows).
template <class T>
std::vector<T> transpose_bc(const SelectiveScanParams& p, const void* m_) {
  const T* m = static_cast<const T*>(m_);
  const int64_t N = p.N, L = p.L, mats = p.batch * p.groups;
  std::vector<T> t(size_t(mats * L * N));
  parallel_for(0, mats * L, 1 << 12, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t q = r / L, l = r % L;
      for (int64_t n = 0; n < N; ++n) t[size_t(r * N + n)] = m[(q * N + n) * L + l];
    }
  });
  return t;
}

template <class T, int W>
struct Scratch {  // per task, reused across tasks of one thread
  std::vector<T> buf;
  T *u, *dl, *raw, *z, *y, *a, *ea, *x, *x0, *xs, *es, *g, *h, *gd, *du;
  Scratch(int64_t chunk, int64_t N) {
    const size_t t = size_t(chunk * W), nw = size_t(N * W);
    buf.assign(6 * t + 5 * nw + 2 * size_t(chunk) * nw + 2 * t + 16 * W, T(0));
    T* q = buf.data();
    auto take = [&](size_t n) { T* r = q; q += (n + W - 1) / W * W; return r; };
    u = take(t); dl = take(t); raw = take(t); z = take(t); y = take(t); g = take(t);
    a = take(nw); ea = take(nw); x = take(nw); x0 = take(nw); h = take(nw); xs = take(size_t(chunk) * nw); es = take(size_t(chunk) * nw);
    gd = take(t); du = take(t);
  }
};

// Advance the state over steps [0, lc) of the loaded chunk. With xs / es (backward), every
// state and every exp(delta A) of the chunk is kept ((lc, N, W) each) for the walk back.
// y sums over n in two halves: a single chain of N dependent adds would bound the step.
template <class T, int W>
inline void scan_chunk(int64_t lc, int64_t N, const T* a, const T* u, const T* dl, const T* bt, const T* ct, T* x,
                       T* y, T* xs, T* es) {
  for (int64_t l = 0; l < lc; ++l) {
    alignas(64) T acc0[W] = {}, acc1[W] = {};
    alignas(64) T du_[W];
    const T* dlv = dl + l * W;
#pragma omp simd
    for (int k = 0; k < W; ++k) du_[k] = dlv[k] * u[l * W + k];
    T* el = es ? es + l * N * W : nullptr;
    for (int64_t n = 0; n < N; ++n) {
      const T bn = bt[l * N + n], cn = ct[l * N + n];
      T* xn = x + n * W;
      const T* an = a + n * W;
      T* acc = (n & 1) ? acc1 : acc0;
#pragma omp simd
      for (int k = 0; k < W; ++k) {
        const T e = e_exp(dlv[k] * an[k]);
        const T v = e * xn[k] + du_[k] * bn;
        xn[k] = v;
        acc[k] += v * cn;
        if (el) el[n * W + k] = e;
      }
    }
    if (xs) std::memcpy(xs + l * N * W, x, sizeof(T) * size_t(N * W));
#pragma omp simd
    for (int k = 0; k < W; ++k) y[l * W + k] = acc0[k] + acc1[k];
  }
}

// One step of the walk back, over the N states of W lanes: h = dL/dx_l (carried in h),
//   d(exp(delta A)) gives t = h x_{l-1} e: ddelta += t A + h B u, dA += t delta;
//   du += h delta B;  dB[n] += sum over lanes h delta u;  dC[n] += sum over lanes g x_l;
//   then h <- h e for step l - 1. dB, dC point at step l's N sums (partials are (L, N):
//   rows of an (N, L) layout lie 4 KiB apart and would fight over one L1 set).
template <class T, int W>
inline void back_step(int64_t N, int w, const T* gl, const T* dl, const T* ul, const T* xl, const T* el,
                      const T* xp, const T* bt, const T* ct, const T* a, T* h, T* dA, T* gd, T* du, T* dB, T* dC) {
  alignas(64) T gd2[2][W] = {}, du2[2][W] = {};  // two partial sums over n (shorter chains)
  for (int64_t n = 0; n < N; ++n) {
    const T bn = bt[n], cn = ct[n];
    T* hn = h + n * W;
    const T* an = a + n * W;
    T* dAn = dA + n * W;
    T* gdn = gd2[n & 1];
    T* dun = du2[n & 1];
    T sc = 0, sb = 0;
#pragma omp simd reduction(+ : sc, sb)
    for (int q = 0; q < W; ++q) {
      const T hv = hn[q] + gl[q] * cn;
      const T e = el[n * W + q];
      const T t = hv * xp[n * W + q] * e;
      const T live = q < w ? T(1) : T(0);  // idle lanes duplicate a channel: keep them out of sums
      sc += live * gl[q] * xl[n * W + q];
      sb += live * hv * dl[q] * ul[q];
      gdn[q] += t * an[q] + hv * bn * ul[q];
      dun[q] += hv * dl[q] * bn;
      dAn[q] += t * dl[q];
      hn[q] = hv * e;
    }
    dC[n] += sc;
    dB[n] += sb;
  }
#pragma omp simd
  for (int q = 0; q < W; ++q) { gd[q] = gd2[0][q] + gd2[1][q]; du[q] = du2[0][q] + du2[1][q]; }
}

// The float32 vector form: `a` holds A log2(e) (load_a), so exp(delta A) is exp2_v(delta a).
template <>
inline void scan_chunk<float, kWf>(int64_t lc, int64_t N, const float* a, const float* u, const float* dl,
                                   const float* bt, const float* ct, float* x, float* y, float* xs, float* es) {
  constexpr int W = kWf;
  for (int64_t l = 0; l < lc; ++l) {
    const vf dlv = ldv(dl + l * W), duv = dlv * ldv(u + l * W);
    const float *bl = bt + l * N, *cl = ct + l * N;
    float* el = es ? es + l * N * W : nullptr;
    vf acc0 = {}, acc1 = {};
    auto step = [&](int64_t n, vf& acc) {
      const vf e = exp2_v(dlv * ldv(a + n * W));
      const vf v = e * ldv(x + n * W) + duv * bl[n];
      stv(x + n * W, v);
      acc += v * cl[n];
      if (el) stv(el + n * W, e);
    };
    int64_t n = 0;
    for (; n + 1 < N; n += 2) { step(n, acc0); step(n + 1, acc1); }
    if (n < N) step(n, acc0);
    if (xs) std::memcpy(xs + l * N * W, x, sizeof(float) * size_t(N * W));
    stv(y + l * W, acc0 + acc1);
  }
}

template <>
inline void back_step<float, kWf>(int64_t N, int w, const float* gl, const float* dl, const float* ul,
                                  const float* xl, const float* el, const float* xp, const float* bt, const float* ct,
                                  const float* a, float* h, float* dA, float* gd, float* du, float* dB, float* dC) {
  constexpr int W = kWf;
  vf live = {};
  for (int k = 0; k < W; ++k) live[k] = k < w ? 1.f : 0.f;  // idle lanes stay out of the lane sums
  const vf g = ldv(gl), d = ldv(dl), uv = ldv(ul), gv = g * live, du_l = d * uv * live;
  vf gd0 = {}, gd1 = {}, du0 = {}, du1 = {};
  vf sc[8], sb[8];  // lane vectors of dC, dB for 8 states, summed 8 at a time
  auto step = [&](int64_t n, vf& gdn, vf& dun, vf& scn, vf& sbn) {
    const vf hv = ldv(h + n * W) + g * ct[n];
    const vf e = ldv(el + n * W);
    const vf t = hv * ldv(xp + n * W) * e;
    scn = gv * ldv(xl + n * W);
    sbn = hv * du_l;
    gdn += t * ldv(a + n * W) + hv * (uv * bt[n]);
    dun += hv * (d * bt[n]);
    stv(dA + n * W, ldv(dA + n * W) + t * d);
    stv(h + n * W, hv * e);
  };
  for (int64_t n0 = 0; n0 < N; n0 += 8) {
    const int cnt = int(std::min<int64_t>(8, N - n0));
    int j = 0;
    for (; j + 1 < cnt; j += 2) {
      step(n0 + j, gd0, du0, sc[j], sb[j]);
      step(n0 + j + 1, gd1, du1, sc[j + 1], sb[j + 1]);
    }
    if (j < cnt) step(n0 + j, gd0, du0, sc[j], sb[j]);
    for (int q = cnt; q < 8; ++q) sc[q] = sb[q] = vf{};
    add_sums8(sc, dC + n0, cnt);
    add_sums8(sb, dB + n0, cnt);
  }
  stv(gd, gd0 + gd1);
  stv(du, du0 + du1);
}

// A as N x W lanes, and the exponent's coefficients for scan_chunk: A log2(e) where the
// vector float32 kernel computes exp(delta A) as 2^(delta A log2(e)), A itself otherwise.
template <class T, int W>
void load_a(const Lanes<T, W>& s, T* a, T* ea) {
  const T* A = static_cast<const T*>(s.p.A);
  const T scale = std::is_same_v<T, float> && W == kWf ? T(1.4426950408889634) : T(1);
  for (int64_t n = 0; n < s.p.N; ++n)
    for (int k = 0; k < W; ++k) {
      a[n * W + k] = A[(s.d0 + std::min(k, s.w - 1)) * s.p.N + n];
      ea[n * W + k] = a[n * W + k] * scale;
    }
}

// Channel blocks of W lanes that never straddle a group.
struct Block { int64_t g, d0; int w; };
template <int W>
std::vector<Block> blocks(const SelectiveScanParams& p) {
  std::vector<Block> r;
  const int64_t dpg = p.dim / p.groups;
  for (int64_t g = 0; g < p.groups; ++g)
    for (int64_t d = 0; d < dpg; d += W) r.push_back({g, g * dpg + d, int(std::min<int64_t>(W, dpg - d))});
  return r;
}

template <class T, int W>
void fwd(const SelectiveScanParams& p) {
  const std::vector<Block> bl = blocks<W>(p);
  const int64_t nb = int64_t(bl.size()), N = p.N, CH = p.chunk;
  const std::vector<T> Bt = transpose_bc<T>(p, p.B), Ct = transpose_bc<T>(p, p.C);
  parallel_for(0, p.batch * nb, 1, [&](int64_t t0, int64_t t1) {
    Scratch<T, W> s(CH, N);
    for (int64_t t = t0; t < t1; ++t) {
      const Block& k = bl[size_t(t % nb)];
      Lanes<T, W> ln{p, t / nb, k.d0, k.g, k.w};
      load_a(ln, s.a, s.ea);
      std::fill(s.x, s.x + N * W, T(0));
      const T* Bm = Bt.data() + (ln.b * p.groups + ln.g) * p.L * N;
      const T* Cm = Ct.data() + (ln.b * p.groups + ln.g) * p.L * N;
      alignas(64) T Dv[W];
      for (int q = 0; q < W; ++q) Dv[q] = ln.chan(p.D, q, T(0));
      for (int64_t c = 0, l0 = 0; l0 < p.L; ++c, l0 += CH) {
        const int64_t lc = std::min(CH, p.L - l0);
        for (const void* src : {p.u, p.delta, p.z}) ln.prefetch(src, l0 + CH, CH);
        ln.prefetch(p.out, l0 + CH, CH, true);
        if (p.checkpoints)
          for (int q = 0; q < k.w; ++q)
            for (int64_t n = 0; n < N; ++n) ln.ckpt(c, q)[n] = s.x[n * W + q];
        ln.load(p.u, l0, lc, s.u);
        load_delta(ln, l0, lc, s.dl, static_cast<T*>(nullptr));
        scan_chunk<T, W>(lc, N, s.ea, s.u, s.dl, Bm + l0 * N, Cm + l0 * N, s.x, s.y, nullptr, nullptr);
        if (p.z) ln.load(p.z, l0, lc, s.z);
        for (int64_t l = 0; l < lc; ++l)
#pragma omp simd
          for (int q = 0; q < W; ++q) s.y[l * W + q] += Dv[q] * s.u[l * W + q];
        if (p.z) {
          silu_gate_tile<T, W>(s.y, s.z, lc * W);
        }
        ln.store(p.out, l0, lc, s.y);
      }
      if (p.last_state)
        for (int q = 0; q < k.w; ++q)
          for (int64_t n = 0; n < N; ++n)
            static_cast<T*>(p.last_state)[(ln.b * p.dim + k.d0 + q) * N + n] = s.x[n * W + q];
    }
  });
}

// Backward for one block of one batch: dA, dD, delta_bias accumulate into per-block rows
// (dA_b: N x W, dD_b / dbias_b: W); dB, dC into this task's partial (groups, N, L) of batch b.
template <class T, int W>
void bwd_block(const SelectiveScanParams& p, const Lanes<T, W>& ln, Scratch<T, W>& s, const T* Bm, const T* Cm,
               T* dA_b, T* dD_b, T* dbias_b, T* dBp, T* dCp) {
  const int64_t N = p.N, CH = p.chunk, L = p.L, nch = scan_chunks(p);
  T* dBg = dBp + ln.g * N * L;
  T* dCg = dCp + ln.g * N * L;
  alignas(64) T Dv[W];
  for (int q = 0; q < W; ++q) Dv[q] = ln.chan(p.D, q, T(0));
  load_a(ln, s.a, s.ea);
  std::fill(s.h, s.h + N * W, T(0));
  for (int64_t c = nch - 1; c >= 0; --c) {
    const int64_t l0 = c * CH, lc = std::min(CH, L - l0);
    for (const void* src : {p.u, p.delta, p.z, p.gout}) ln.prefetch(src, l0 - CH, CH);
    for (const void* dst : {static_cast<const void*>(p.du), static_cast<const void*>(p.ddelta),
                            static_cast<const void*>(p.dz)})
      ln.prefetch(dst, l0 - CH, CH, true);
    // the state before the chunk, then every state inside it
    std::fill(s.x, s.x + N * W, T(0));
    for (int q = 0; q < ln.w; ++q)
      for (int64_t n = 0; n < N; ++n) s.x[n * W + q] = ln.ckpt(c, q)[n];
    std::memcpy(s.x0, s.x, sizeof(T) * size_t(N * W));  // the scan moves x on
    ln.load(p.u, l0, lc, s.u);
    load_delta(ln, l0, lc, s.dl, s.raw);
    const T *bt = Bm + l0 * N, *ct = Cm + l0 * N;
    scan_chunk<T, W>(lc, N, s.ea, s.u, s.dl, bt, ct, s.x, s.y, s.xs, s.es);
    // gate: g = gout * silu(z) (dL/dy), dz, and the D u path
    ln.load(p.gout, l0, lc, s.g);
    if (p.z) ln.load(p.z, l0, lc, s.z);
    if (p.z) {
      for (int64_t l = 0; l < lc; ++l)  // y + D u, the gate's input
#pragma omp simd
        for (int q = 0; q < W; ++q) s.y[l * W + q] += Dv[q] * s.u[l * W + q];
      const int64_t n = lc * W;
      T* sig = s.gd;  // free until the walk back writes it
      sigmoid_tile<T, W>(s.z, sig, n);
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) {
        const T zz = s.z[i], sg = sig[i], g = s.g[i];
        s.z[i] = g * s.y[i] * sg * (T(1) + zz * (T(1) - sg));  // dz
        s.g[i] = g * zz * sg;
      }
    }
    for (int64_t i0 = 0; i0 < lc * W; i0 += W)
#pragma omp simd
      for (int q = 0; q < W; ++q) {
        const T g = s.g[i0 + q];
        s.du[i0 + q] = g * Dv[q];
        dD_b[q] += g * s.u[i0 + q];
      }
    if (p.z && p.dz) ln.store(p.dz, l0, lc, s.z);
    if (p.softplus) softplus_grad_tile<T, W>(s.raw, lc * W);  // raw now holds softplus'
    // walk back through the chunk
    for (int64_t l = lc - 1; l >= 0; --l) {
      alignas(64) T gd[W], du[W];
      const T* xp = l > 0 ? s.xs + (l - 1) * N * W : s.x0;
      back_step<T, W>(N, ln.w, s.g + l * W, s.dl + l * W, s.u + l * W, s.xs + l * N * W, s.es + l * N * W, xp,
                      bt + l * N, ct + l * N, s.a, s.h, dA_b, gd, du, dBg + (l0 + l) * N, dCg + (l0 + l) * N);
      T* gdl = s.gd + l * W;
#pragma omp simd
      for (int q = 0; q < W; ++q) {
        gdl[q] = gd[q];
        s.du[l * W + q] += du[q];
      }
      if (p.softplus) {  // raw holds d softplus(r) / dr (sigmoid, 1 past PyTorch's threshold 20)
        const T* r = s.raw + l * W;
#pragma omp simd
        for (int q = 0; q < W; ++q) gdl[q] *= r[q];
      }
#pragma omp simd
      for (int q = 0; q < W; ++q) dbias_b[q] += gdl[q];
    }
    ln.store(p.ddelta, l0, lc, s.gd);
    ln.store(p.du, l0, lc, s.du);
  }
}

// Tasks are runs of kTaskBlocks channel blocks: each owns its channels' dA / dD / delta_bias
// (summed over batch inside the task) and a dB / dC partial; partials are summed in task order,
// so results do not depend on the thread count.
constexpr int64_t kTaskBlocks = 8;

template <class T, int W>
void bwd(const SelectiveScanParams& p) {
  const std::vector<Block> bl = blocks<W>(p);
  const int64_t nb = int64_t(bl.size()), N = p.N, L = p.L;
  const int64_t ntask = (nb + kTaskBlocks - 1) / kTaskBlocks;
  const int64_t part = p.batch * p.groups * N * L;  // one dB (or dC) partial
  std::vector<T> partials(size_t(2 * ntask * part), T(0));
  const std::vector<T> Bt = transpose_bc<T>(p, p.B), Ct = transpose_bc<T>(p, p.C);
  parallel_for(0, ntask, 1, [&](int64_t t0, int64_t t1) {
    Scratch<T, W> s(p.chunk, N);
    std::vector<T> dA_b(size_t(N * W)), dD_b(W), dbias_b(W);
    for (int64_t t = t0; t < t1; ++t) {
      T* dBp = partials.data() + 2 * t * part;
      T* dCp = dBp + part;
      for (int64_t i = t * kTaskBlocks; i < std::min(nb, (t + 1) * kTaskBlocks); ++i) {
        const Block& k = bl[size_t(i)];
        std::fill(dA_b.begin(), dA_b.end(), T(0));
        std::fill(dD_b.begin(), dD_b.end(), T(0));
        std::fill(dbias_b.begin(), dbias_b.end(), T(0));
        for (int64_t b = 0; b < p.batch; ++b) {
          Lanes<T, W> ln{p, b, k.d0, k.g, k.w};
          const int64_t off = (b * p.groups + k.g) * L * N;
          bwd_block<T, W>(p, ln, s, Bt.data() + off, Ct.data() + off, dA_b.data(), dD_b.data(), dbias_b.data(),
                          dBp + b * p.groups * N * L, dCp + b * p.groups * N * L);
        }
        for (int q = 0; q < k.w; ++q) {
          for (int64_t n = 0; n < N; ++n) static_cast<T*>(p.dA)[(k.d0 + q) * N + n] = dA_b[size_t(n * W + q)];
          if (p.dD) static_cast<T*>(p.dD)[k.d0 + q] = dD_b[size_t(q)];
          if (p.ddelta_bias) static_cast<T*>(p.ddelta_bias)[k.d0 + q] = dbias_b[size_t(q)];
        }
      }
    }
  });
  // sum the partials in task order, transposing (L, N) back to (N, L)
  parallel_for(0, p.batch * p.groups * N, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t mat = r / N, n = r % N;
      T* ob = static_cast<T*>(p.dB) + r * L;
      T* oc = static_cast<T*>(p.dC) + r * L;
      for (int64_t l = 0; l < L; ++l) {
        const size_t i = size_t((mat * L + l) * N + n);
        T sb = 0, sc = 0;
        for (int64_t t = 0; t < ntask; ++t) { sb += partials[size_t(2 * t * part) + i]; sc += partials[size_t((2 * t + 1) * part) + i]; }
        ob[l] = sb;
        oc[l] = sc;
      }
    }
  });
}

void fwd_any(const SelectiveScanParams& p) {
  if (p.dt == DType::f64) fwd<double, kVecBytes / 8>(p); else fwd<float, kVecBytes / 4>(p);
}
void bwd_any(const SelectiveScanParams& p) {
  if (p.dt == DType::f64) bwd<double, kVecBytes / 8>(p); else bwd<float, kVecBytes / 4>(p);
}

}  // namespace

const ScanKernels& scan_table() {
  static const ScanKernels k{fwd_any, bwd_any};
  return k;
}

}  // namespace fastdl::cpu::FASTDL_ISA_NS
#endif
