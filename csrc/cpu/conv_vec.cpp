// 2-D convolution fast paths, compiled per ISA (avx2, avx512); the ref ISA runs the scalar
// reference (conv.cpp). All three passes are implicit GEMMs on the GEMM micro-kernels
// (gemm_kernel.h), one group at a time, without an im2col buffer:
//   forward      y[g]  (Kg x P)   = W[g] (Kg x Cg R S) @ col(x)[g] (Cg R S x P),  P = N OH OW
//                W is packed once; each (k block x column block) of col(x) is packed straight
//                from x into the micro-kernel's panels (masked vector loads cover the borders).
//   weight grad  gW[g] (Kg x Cg R S) = sum over images and pixel blocks of gy[n, g] @ col(x)^T:
//                threads own column ranges of gW (no (N, ...) temporary, no reduction).
//   input grad   stride 1: a forward convolution of gy with the flipped, transposed weight;
//                strided: col = W^T @ gy per image, scattered back (col2im) per thread.
// Layers with few channels per group (depthwise; LeNet c1: one input channel, 25 weight columns)
// run direct loops vectorised along output rows.
#if defined(FASTDL_ISA_avx2) || defined(FASTDL_ISA_avx512)
#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include <immintrin.h>

#include "core/allocator.h"
#include "core/cpu_info.h"
#include "core/parallel.h"
#include "cpu/conv.h"
#include "cpu/gemm.h"

namespace fastdl::cpu::FASTDL_ISA_NS {
bool gemm_get_kernel(DType dt, detail::GemmKernel* k);  // gemm_vec.cpp, this ISA

namespace {
using detail::GemmKernel;

// Vector loads for packing: full, or lanes [lo, hi) with the rest zero (masked lanes are
// never touched, so the pointer may run past either end of a row).
template <class T> struct PV;
#if defined(FASTDL_ISA_avx512)
template <> struct PV<float> {
  using R = __m512; static constexpr int W = 16;
  static R zero() { return _mm512_setzero_ps(); }
  static R load(const float* p) { return _mm512_loadu_ps(p); }
  using M = __mmask16;
  static M mask(int lo, int hi) { return M(((1u << hi) - 1) & ~((1u << lo) - 1)); }
  static R loadm(const float* p, M m) { return _mm512_maskz_loadu_ps(m, p); }
  static R loadm(const float* p, int lo, int hi) { return loadm(p, mask(lo, hi)); }
  static R add(R a, R b) { return _mm512_add_ps(a, b); }
  static R set1(float v) { return _mm512_set1_ps(v); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static float sum(R v) { return _mm512_reduce_add_ps(v); }
  static void store(float* p, R v) { _mm512_storeu_ps(p, v); }
};
template <> struct PV<double> {
  using R = __m512d; static constexpr int W = 8;
  static R zero() { return _mm512_setzero_pd(); }
  static R load(const double* p) { return _mm512_loadu_pd(p); }
  using M = __mmask8;
  static M mask(int lo, int hi) { return M(((1u << hi) - 1) & ~((1u << lo) - 1)); }
  static R loadm(const double* p, M m) { return _mm512_maskz_loadu_pd(m, p); }
  static R loadm(const double* p, int lo, int hi) { return loadm(p, mask(lo, hi)); }
  static R add(R a, R b) { return _mm512_add_pd(a, b); }
  static R set1(double v) { return _mm512_set1_pd(v); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_pd(a, b, c); }
  static double sum(R v) { return _mm512_reduce_add_pd(v); }
  static void store(double* p, R v) { _mm512_storeu_pd(p, v); }
};
#else
template <> struct PV<float> {
  using R = __m256; static constexpr int W = 8;
  static R zero() { return _mm256_setzero_ps(); }
  static R load(const float* p) { return _mm256_loadu_ps(p); }
  using M = __m256i;
  static M mask(int lo, int hi) {
    const __m256i i = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_and_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(hi), i), _mm256_cmpgt_epi32(i, _mm256_set1_epi32(lo - 1)));
  }
  static R loadm(const float* p, M m) { return _mm256_maskload_ps(p, m); }
  static R loadm(const float* p, int lo, int hi) { return loadm(p, mask(lo, hi)); }
  static R add(R a, R b) { return _mm256_add_ps(a, b); }
  static R set1(float v) { return _mm256_set1_ps(v); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
  static float sum(R v) {
    alignas(32) float t[8];
    _mm256_store_ps(t, v);
    return ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
  }
  static void store(float* p, R v) { _mm256_storeu_ps(p, v); }
};
template <> struct PV<double> {
  using R = __m256d; static constexpr int W = 4;
  static R zero() { return _mm256_setzero_pd(); }
  static R load(const double* p) { return _mm256_loadu_pd(p); }
  using M = __m256i;
  static M mask(int lo, int hi) {
    const __m256i i = _mm256_setr_epi64x(0, 1, 2, 3);
    return _mm256_and_si256(_mm256_cmpgt_epi64(_mm256_set1_epi64x(hi), i),
                            _mm256_cmpgt_epi64(i, _mm256_set1_epi64x(lo - 1)));
  }
  static R loadm(const double* p, M m) { return _mm256_maskload_pd(p, m); }
  static R loadm(const double* p, int lo, int hi) { return loadm(p, mask(lo, hi)); }
  static R add(R a, R b) { return _mm256_add_pd(a, b); }
  static R set1(double v) { return _mm256_set1_pd(v); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_pd(a, b, c); }
  static double sum(R v) {
    alignas(32) double t[4];
    _mm256_store_pd(t, v);
    return (t[0] + t[1]) + (t[2] + t[3]);
  }
  static void store(double* p, R v) { _mm256_storeu_pd(p, v); }
};
#endif

template <class T> const GemmKernel& kernel() {
  static const GemmKernel k = [] { GemmKernel g; gemm_get_kernel(sizeof(T) == 8 ? DType::f64 : DType::f32, &g); return g; }();
  return k;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Scratch memory from the caching allocator, freed on scope exit.
struct Scratch {
  void* p = nullptr; size_t n = 0;
  explicit Scratch(size_t bytes) : p(bytes ? cpu_alloc(bytes) : nullptr), n(bytes) {}
  ~Scratch() { if (p) cpu_free(p, n); }
  template <class T> T* as() const { return static_cast<T*>(p); }
};

// Runs f(task, thread) for tasks [0, n) handed out dynamically over the pool (a preempted
// thread on a shared machine does not hold the others idle); nt threads, each with its index.
template <class F> void run_tasks(int64_t n, int nt, const F& f) {
  if (nt <= 1 || n <= 1) { for (int64_t i = 0; i < n; ++i) f(i, 0); return; }
  std::atomic<int64_t> next{0};
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num();
    for (int64_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;) f(i, t);
  }
}
int threads_for(int64_t tasks) {
  if (in_parallel_region()) return 1;
  return int(std::max<int64_t>(1, std::min<int64_t>(get_num_threads(), tasks)));
}

// Cache blocking: a packed B micro-panel (kc x nr) in half of L1, an A block (mc x kc) in
// half of L2, a column block (kc x nc) in a quarter of L2.
struct Blocking { int64_t kc, mc, nc; };
Blocking blocking(const GemmKernel& k, int64_t M, int64_t Kd, int64_t esz) {
  const CpuInfo& ci = cpu_info();
  const int64_t kmax = std::max<int64_t>(32, int64_t(ci.l1d) / 2 / (k.nr * esz));
  const int64_t kc = ceil_div(Kd, ceil_div(Kd, kmax));
  const int64_t mc = std::max<int64_t>(k.mr, int64_t(ci.l2) / 2 / (kc * esz) / k.mr * k.mr);
  const int64_t nc = std::clamp<int64_t>(int64_t(ci.l2) / 4 / (kc * esz) / k.nr * k.nr, 4 * k.nr, 64 * k.nr);
  return {kc, std::min(mc, round_up(M, k.mr)), nc};
}

// A run of a column panel's lanes [a, b) that lie on one output row of one image: lane j
// reads input column ows + (j - a) sw + s dw of input row ohs + r dh, in image plane `base`.
struct Seg { int a, b; int64_t base, ohs, ows; };

// Splits columns [J0, J0 + ncur) of the implied im2col matrix into per-panel runs.
void make_segs(const Conv2dParams& p, int64_t J0, int64_t ncur, int nr, std::vector<Seg>& segs, std::vector<int>& off) {
  segs.clear(); off.clear();
  const int64_t OHW = p.OH * p.OW;
  for (int64_t j = 0; j < ncur; ++j) {
    const int lane = int(j % nr);
    const int64_t J = J0 + j, n = J / OHW, pix = J % OHW, oh = pix / p.OW, ow = pix % p.OW;
    if (lane == 0) off.push_back(int(segs.size()));
    if (lane == 0 || ow == 0)
      segs.push_back({lane, lane + 1, n * p.C * p.H * p.W, oh * p.sh - p.ph, ow * p.sw - p.pw});
    else
      segs.back().b = lane + 1;
  }
  off.push_back(int(segs.size()));
}

// Packs rows [k0, k0 + kc) of the im2col matrix (row = (c, r, s) of group g) over the block's
// column panels into dst[panel][k][lane] (the GEMM's packed-B layout); pad lanes are zero.
// Stride 1 walks (r, s) outside and channels inside: a run's lane masks depend on (r, s) only,
// so the inner loop is one masked load and store per vector, HW elements apart in x.
template <class T>
void pack_cols(const Conv2dParams& p, const T* xg, const std::vector<Seg>& segs, const std::vector<int>& off,
               int64_t k0, int64_t kc, int nr, T* dst) {
  using V = PV<T>;
  constexpr int W = V::W;
  const int nq = nr / W;
  const int64_t RS = p.R * p.S, HW = p.H * p.W;
  const int64_t npan = int64_t(off.size()) - 1;
  for (int64_t pi = 0; pi < npan; ++pi) {
    const Seg* s0 = segs.data() + off[size_t(pi)];
    const Seg* s1 = segs.data() + off[size_t(pi) + 1];
    T* d = dst + pi * nr * kc;
    if (p.sw != 1) {
      int64_t c = k0 / RS, r = (k0 % RS) / p.S, s = k0 % p.S;
      for (int64_t kk = 0; kk < kc; ++kk, d += nr) {
        std::fill(d, d + nr, T(0));
        for (const Seg* sg = s0; sg < s1; ++sg) {
          const int64_t ih = sg->ohs + r * p.dh;
          if (ih < 0 || ih >= p.H) continue;
          const T* row = xg + c * HW + sg->base + ih * p.W;
          for (int j = sg->a; j < sg->b; ++j) {
            const int64_t iw = sg->ows + (j - sg->a) * p.sw + s * p.dw;
            if (iw >= 0 && iw < p.W) d[j] = row[iw];
          }
        }
        if (++s == p.S) { s = 0; if (++r == p.R) { r = 0; ++c; } }
      }
      continue;
    }
    for (int64_t r = 0; r < p.R; ++r)
      for (int64_t s = 0; s < p.S; ++s) {
        const int64_t rs = r * p.S + s;
        const int64_t c0 = k0 > rs ? (k0 - rs + RS - 1) / RS : 0, c1 = (k0 + kc - rs + RS - 1) / RS;
        if (c0 >= c1) continue;
        T* dk = d + (c0 * RS + rs - k0) * nr;  // row c0's lanes; row c + 1 is RS rows further
        const int64_t dstep = RS * nr;
        for (const Seg* sg = s0; sg < s1; ++sg) {
          const bool first = sg == s0;
          const int64_t ih = sg->ohs + r * p.dh, iw = sg->ows + s * p.dw;  // iw: input column of lane a
          const int lo = int(std::max<int64_t>(sg->a, sg->a - iw)), hi = int(std::min<int64_t>(sg->b, sg->a + p.W - iw));
          if (ih < 0 || ih >= p.H || lo >= hi) {
            if (first)
              for (int64_t c = c0; c < c1; ++c)
                for (int q = 0; q < nq; ++q) V::store(dk + (c - c0) * dstep + q * W, V::zero());
            continue;
          }
          const T* src = xg + c0 * HW + sg->base + ih * p.W + iw - sg->a;  // lane j reads src[j]
          for (int q = 0; q < nq; ++q) {
            const int l = std::clamp(lo - q * W, 0, W), h = std::clamp(hi - q * W, 0, W);
            T* dq = dk + q * W;
            const T* sq = src + q * W;
            if (l >= h) {
              if (first) for (int64_t c = c0; c < c1; ++c, dq += dstep) V::store(dq, V::zero());
            } else if (l == 0 && h == W) {
              if (first) for (int64_t c = c0; c < c1; ++c, dq += dstep, sq += HW) V::store(dq, V::load(sq));
              else for (int64_t c = c0; c < c1; ++c, dq += dstep, sq += HW) V::store(dq, V::add(V::load(dq), V::load(sq)));
            } else {
              const typename V::M m = V::mask(l, h);
              if (first) for (int64_t c = c0; c < c1; ++c, dq += dstep, sq += HW) V::store(dq, V::loadm(sq, m));
              else for (int64_t c = c0; c < c1; ++c, dq += dstep, sq += HW) V::store(dq, V::add(V::load(dq), V::loadm(sq, m)));
            }
          }
        }
      }
  }
}

// y = conv(x, w) + b as implicit GEMM (see the file comment).
template <class T>
void fwd_gemm(const Conv2dParams& p) {
  const GemmKernel& gk = kernel<T>();
  const int nr = gk.nr;
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G, Kd = Cg * p.R * p.S, OHW = p.OH * p.OW, P = p.N * OHW;
  const Blocking bl = blocking(gk, Kg, Kd, sizeof(T));
  const int64_t Mp = round_up(Kg, gk.mr), npc = ceil_div(Kd, bl.kc);
  const T* w = static_cast<const T*>(p.w);
  const T* b = static_cast<const T*>(p.b);
  T* y = static_cast<T*>(p.y);
  // Packed W: per group, per k block of kcur columns, Mp rows (panel layout of pack_a).
  Scratch ap(size_t(G * Mp * Kd) * sizeof(T));
  T* Ap = ap.as<T>();
  run_tasks(G * npc, threads_for(G * npc / 4), [&](int64_t t, int) {
    const int64_t g = t / npc, pc = (t % npc) * bl.kc, kcur = std::min(bl.kc, Kd - pc);
    gk.pack_a(w + g * Kg * Kd + pc, Kd, 1, Kg, kcur, Ap + g * Mp * Kd + Mp * pc);
  });
  const int64_t nc = std::min(bl.nc, std::max<int64_t>(4 * nr, round_up(ceil_div(P, 4 * get_num_threads()), nr)));
  const int64_t nblk = ceil_div(P, nc), ntask = G * nblk;
  const int nt = threads_for(ntask);
  const size_t bbytes = size_t(bl.kc * round_up(nc, nr)) * sizeof(T), cbytes = size_t(Kg * nc) * sizeof(T);
  Scratch scratch((bbytes + cbytes) * size_t(nt));
  std::vector<std::vector<Seg>> segs(static_cast<size_t>(nt));
  std::vector<std::vector<int>> offs(static_cast<size_t>(nt));
  run_tasks(ntask, nt, [&](int64_t task, int t) {
    const int64_t g = task / nblk, J0 = (task % nblk) * nc, ncur = std::min(nc, P - J0), npan = ceil_div(ncur, nr);
    T* Bp = reinterpret_cast<T*>(scratch.as<char>() + (bbytes + cbytes) * size_t(t));
    T* Ct = reinterpret_cast<T*>(reinterpret_cast<char*>(Bp) + bbytes);
    make_segs(p, J0, ncur, nr, segs[size_t(t)], offs[size_t(t)]);
    const int64_t n0 = J0 / OHW, n1 = (J0 + ncur - 1) / OHW;
    const bool direct = n0 == n1;  // the block lies in one image: write y in place
    T* C = direct ? y + (n0 * p.K + g * Kg) * OHW + (J0 - n0 * OHW) : Ct;
    const int64_t rs = direct ? OHW : nc;
    const T* xg = static_cast<const T*>(p.x) + g * Cg * p.H * p.W;
    for (int64_t pc = 0; pc < Kd; pc += bl.kc) {
      const int64_t kcur = std::min(bl.kc, Kd - pc);
      pack_cols<T>(p, xg, segs[size_t(t)], offs[size_t(t)], pc, kcur, nr, Bp);
      const T* Ag = Ap + g * Mp * Kd + Mp * pc;
      for (int64_t ic = 0; ic < Kg; ic += bl.mc)
        gk.macro(std::min(bl.mc, Kg - ic), ncur, kcur, Ag + ic * kcur, Bp, C + ic * rs, rs, 1, 1.0, pc == 0 ? 0.0 : 1.0,
                 0, npan);
    }
    if (b)
      for (int64_t i = 0; i < Kg; ++i) {
        const T v = b[g * Kg + i];
        T* ci = C + i * rs;
        for (int64_t j = 0; j < ncur; ++j) ci[j] += v;
      }
    if (!direct)  // scatter the block's columns image by image
      for (int64_t J = J0; J < J0 + ncur;) {
        const int64_t n = J / OHW, pix = J % OHW, len = std::min(OHW - pix, J0 + ncur - J);
        for (int64_t i = 0; i < Kg; ++i)
          std::memcpy(y + (n * p.K + g * Kg + i) * OHW + pix, Ct + i * nc + (J - J0), size_t(len) * sizeof(T));
        J += len;
      }
  });
}

// Builds rows[j][q] = x[n, g Cg + c, oh sh - ph + r dh, ow sw - pw + s dw] for the im2col
// rows j0 + j = (c, r, s), j < nrows, and the pixels q0 + q = (oh, ow), q < len, of image n.
template <class T>
void im2col_rows(const Conv2dParams& p, const T* xg, int64_t j0, int64_t nrows, int64_t q0, int64_t len, T* rows) {
  const int64_t RS = p.R * p.S, HW = p.H * p.W;
  for (int64_t j = 0; j < nrows; ++j) {
    const int64_t col = j0 + j, c = col / RS, r = (col % RS) / p.S, s = col % p.S;
    const T* xc = xg + c * HW;
    T* dst = rows + j * len;
    for (int64_t q = q0; q < q0 + len;) {
      const int64_t oh = q / p.OW, ow0 = q % p.OW, run = std::min(p.OW - ow0, q0 + len - q);
      T* d = dst + (q - q0);
      const int64_t ih = oh * p.sh - p.ph + r * p.dh;
      if (ih < 0 || ih >= p.H) {
        std::fill(d, d + run, T(0));
      } else {
        const T* row = xc + ih * p.W;
        const int64_t base = ow0 * p.sw - p.pw + s * p.dw;
        if (p.sw == 1) {
          const int64_t lo = std::clamp<int64_t>(-base, 0, run), hi = std::clamp<int64_t>(p.W - base, lo, run);
          std::fill(d, d + lo, T(0));
          std::memcpy(d + lo, row + base + lo, size_t(hi - lo) * sizeof(T));
          std::fill(d + hi, d + run, T(0));
        } else {
          for (int64_t i = 0; i < run; ++i) {
            const int64_t iw = base + i * p.sw;
            d[i] = iw >= 0 && iw < p.W ? row[iw] : T(0);
          }
        }
      }
      q += run;
    }
  }
}

// gW = sum over images and pixel blocks of gy @ col(x)^T (see the file comment); gb too.
// A task owns a column range of one group's gW; per pixel block it packs gy's rows once and
// sweeps its columns in L2-sized blocks (im2col rows, then the transposing pack).
template <class T>
void bwd_weight_gemm(const Conv2dParams& p) {
  const GemmKernel& gk = kernel<T>();
  const int nr = gk.nr;
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G, Kd = Cg * p.R * p.S, OHW = p.OH * p.OW;
  const Blocking bl = blocking(gk, Kg, OHW, sizeof(T));  // k runs over an image's pixels
  const int64_t kc = bl.kc, Mp = round_up(Kg, gk.mr);
  const int64_t nparts = std::max<int64_t>(1, std::min(ceil_div(Kd, nr), ceil_div(get_num_threads(), G)));
  const int64_t part = round_up(ceil_div(Kd, nparts), nr), ntask = G * ceil_div(Kd, part);
  const int64_t ncb = Kg <= bl.mc ? std::min<int64_t>(part, 1024) : std::min(part, bl.nc);
  const int nt = threads_for(ntask);
  const size_t rbytes = size_t(ncb * kc) * sizeof(T), bbytes = size_t(round_up(ncb, nr) * kc) * sizeof(T);
  const size_t abytes = size_t(Mp * kc) * sizeof(T), per = rbytes + bbytes + abytes;
  Scratch scratch(per * size_t(nt));
  const T* gy = static_cast<const T*>(p.gy);
  T* gw = static_cast<T*>(p.gw);
  const int64_t nparts_g = ceil_div(Kd, part);
  run_tasks(ntask, nt, [&](int64_t task, int t) {
    const int64_t g = task / nparts_g, jA = (task % nparts_g) * part, jB = std::min(Kd, jA + part);
    T* rows = reinterpret_cast<T*>(scratch.as<char>() + per * size_t(t));
    T* Bp = reinterpret_cast<T*>(reinterpret_cast<char*>(rows) + rbytes);
    T* Ap = reinterpret_cast<T*>(reinterpret_cast<char*>(Bp) + bbytes);
    const T* xg0 = static_cast<const T*>(p.x) + g * Cg * p.H * p.W;
    bool first = true;
    for (int64_t n = 0; n < p.N; ++n)
      for (int64_t q0 = 0; q0 < OHW; q0 += kc) {
        const int64_t kcur = std::min(kc, OHW - q0);
        gk.pack_a(gy + (n * p.K + g * Kg) * OHW + q0, OHW, 1, Kg, kcur, Ap);
        for (int64_t j0 = jA; j0 < jB; j0 += ncb) {
          const int64_t ncur = std::min(ncb, jB - j0);
          im2col_rows<T>(p, xg0 + n * p.C * p.H * p.W, j0, ncur, q0, kcur, rows);
          gk.pack_b(rows, 1, kcur, kcur, ncur, Bp);
          for (int64_t ic = 0; ic < Kg; ic += bl.mc)
            gk.macro(std::min(bl.mc, Kg - ic), ncur, kcur, Ap + ic * kcur, Bp, gw + (g * Kg + ic) * Kd + j0, Kd, 1,
                     1.0, first ? 0.0 : 1.0, 0, ceil_div(ncur, nr));
        }
        first = false;
      }
  });
  if (p.gb) conv_bias_grad(p.dt, p.gy, p.gb, p.N, p.K, OHW);
}

// Strided input gradient: per image and group, col = W^T @ gy (Cg R S x OH OW), then each
// col row is added back to the input pixels it was read from. Threads own whole images.
template <class T>
void bwd_input_col2im(const Conv2dParams& p) {
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G, RS = p.R * p.S, Kd = Cg * RS, OHW = p.OH * p.OW;
  const int64_t HW = p.H * p.W;
  const int64_t chunk = std::max<int64_t>(1, std::min(OHW, (int64_t(1) << 18) / std::max<int64_t>(Kd, 1)));
  const int nt = threads_for(p.N);
  Scratch scratch(size_t(Kd * chunk) * sizeof(T) * size_t(nt));
  const T* w = static_cast<const T*>(p.w);
  const T* gy = static_cast<const T*>(p.gy);
  T* gx = static_cast<T*>(p.gx);
  run_tasks(p.N, nt, [&](int64_t n, int t) {
    T* col = scratch.as<T>() + Kd * chunk * t;
    std::fill(gx + n * p.C * HW, gx + (n + 1) * p.C * HW, T(0));
    for (int64_t g = 0; g < G; ++g)
      for (int64_t q0 = 0; q0 < OHW; q0 += chunk) {
        const int64_t len = std::min(chunk, OHW - q0);
        GemmParams gp;
        gp.M = Kd; gp.N = len; gp.K = Kg; gp.dtype = p.dt;
        gp.A = w + g * Kg * Kd; gp.sa_m = 1; gp.sa_k = Kd;
        gp.B = gy + (n * p.K + g * Kg) * OHW + q0; gp.sb_k = OHW; gp.sb_n = 1;
        gp.C = col; gp.sc_m = len; gp.sc_n = 1;
        gemm(gp);
        for (int64_t row = 0; row < Kd; ++row) {
          const int64_t c = row / RS, r = (row % RS) / p.S, s = row % p.S;
          T* xc = gx + (n * p.C + g * Cg + c) * HW;
          const T* cr = col + row * len;
          for (int64_t q = q0; q < q0 + len; ++q) {
            const int64_t ih = (q / p.OW) * p.sh - p.ph + r * p.dh, iw = (q % p.OW) * p.sw - p.pw + s * p.dw;
            if (ih >= 0 && ih < p.H && iw >= 0 && iw < p.W) xc[ih * p.W + iw] += cr[q - q0];
          }
        }
      }
  });
}

// Stride 1: gx = conv(gy, w') with w'[g Cg + c, k, r, s] = w[g Kg + k, c, R-1-r, S-1-s] and
// padding d (k - 1) - p (which may be negative: those rows are simply never read).
template <class T>
void bwd_input_as_fwd(const Conv2dParams& p) {
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G, RS = p.R * p.S;
  Scratch wt(size_t(p.K * Cg * RS) * sizeof(T));
  const T* w = static_cast<const T*>(p.w);
  T* w2 = wt.as<T>();
  for (int64_t g = 0; g < G; ++g)
    for (int64_t k = 0; k < Kg; ++k)
      for (int64_t c = 0; c < Cg; ++c)
        for (int64_t i = 0; i < RS; ++i)
          w2[((g * Cg + c) * Kg + k) * RS + (RS - 1 - i)] = w[((g * Kg + k) * Cg + c) * RS + i];
  Conv2dParams q = p;
  q.C = p.K; q.H = p.OH; q.W = p.OW; q.K = p.C; q.OH = p.H; q.OW = p.W;
  q.ph = p.dh * (p.R - 1) - p.ph; q.pw = p.dw * (p.S - 1) - p.pw;
  q.x = p.gy; q.w = w2; q.b = nullptr; q.y = p.gx;
  fwd_gemm<T>(q);
}

// ---- direct loops for layers with few channels per group (depthwise, LeNet's first layer),
// where the GEMM's 6-16 row tiles would run mostly empty. Rows are walked with unit stride
// where the layer's stride is 1, so the compiler vectorises them for this ISA.

// [lo, hi): output positions o < O whose input o s - p + t lies in [0, I).
void span(int64_t O, int64_t I, int64_t s, int64_t p, int64_t t, int64_t& lo, int64_t& hi) {
  const int64_t off = t - p;
  lo = off >= 0 ? 0 : (-off + s - 1) / s;
  hi = I - off <= 0 ? 0 : std::min(O, (I - off + s - 1) / s);
  if (hi < lo) hi = lo;
}

// dst (Hp x Wp) = the plane x (H x W) placed at row ph, column pw, zeros around (stride 1's
// direct loops then read every tap of a whole vector run without bounds checks).
template <class T>
void pad_plane(const T* x, int64_t H, int64_t W, int64_t ph, int64_t pw, int64_t Hp, int64_t Wp, T* dst) {
  for (int64_t i = 0; i < Hp; ++i) {
    T* d = dst + i * Wp;
    const int64_t ih = i - ph;
    if (ih < 0 || ih >= H) { std::fill(d, d + Wp, T(0)); continue; }
    const int64_t lo = std::clamp<int64_t>(pw, 0, Wp), hi = std::clamp<int64_t>(pw + W, lo, Wp);
    std::fill(d, d + lo, T(0));
    std::memcpy(d + lo, x + ih * W + (lo - pw), size_t(hi - lo) * sizeof(T));
    std::fill(d + hi, d + Wp, T(0));
  }
}

// One run of NQ vectors of an output row: y[0 : left) = bias + sum over taps of w * the padded
// input xr (its row 0 / column 0 is the run's first tap), in registers throughout.
template <class V, int NQ, class T>
inline void direct_run(const Conv2dParams& p, const T* xr, int64_t Wp, int64_t plane, const T* wk, T bias, T* yr,
                       int64_t left) {
  constexpr int W = V::W;
  const int64_t Cg = p.C / p.groups, RS = p.R * p.S;
  typename V::R acc[NQ];
#pragma GCC unroll 4
  for (int q = 0; q < NQ; ++q) acc[q] = V::set1(bias);
  for (int64_t c = 0; c < Cg; ++c)
    for (int64_t r = 0; r < p.R; ++r) {
      const T* xs = xr + c * plane + r * p.dh * Wp;
      const T* wr = wk + c * RS + r * p.S;
      for (int64_t s = 0; s < p.S; ++s, xs += p.dw) {
        const typename V::R wv = V::set1(wr[s]);
#pragma GCC unroll 4
        for (int q = 0; q < NQ; ++q) acc[q] = V::fma(wv, V::load(xs + q * W), acc[q]);
      }
    }
#pragma GCC unroll 4
  for (int q = 0; q < NQ; ++q) {
    if (left >= (q + 1) * W) {
      V::store(yr + q * W, acc[q]);
    } else {
      alignas(64) T tmp[W];
      V::store(tmp, acc[q]);
      std::memcpy(yr + q * W, tmp, size_t(left - q * W) * sizeof(T));
    }
  }
}

// One (n, group) per task: y[n, k] = b + sum_{c, r, s} w x shifted for the group's channels.
// Stride 1: the group's input planes are copied zero-padded, then each run of up to 4 vectors
// of an output row stays in registers across every tap (c, r, s).
template <class T>
void fwd_direct(const Conv2dParams& p) {
  using V = PV<T>;
  constexpr int W = V::W, NB = 4;
  const T* x = static_cast<const T*>(p.x);
  const T* w = static_cast<const T*>(p.w);
  const T* b = static_cast<const T*>(p.b);
  T* y = static_cast<T*>(p.y);
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G, HW = p.H * p.W, OHW = p.OH * p.OW, RS = p.R * p.S;
  const int64_t Hp = (p.OH - 1) * p.sh + (p.R - 1) * p.dh + 1, Wp = round_up(p.OW, W) + (p.S - 1) * p.dw;
  const int64_t plane = Hp * Wp;
  const int nt = threads_for(p.N * p.K * OHW * Cg * RS >> 15);
  Scratch scratch(p.sw == 1 ? size_t(Cg * plane) * sizeof(T) * size_t(nt) : 0);
  run_tasks(p.N * G, nt, [&](int64_t t, int th) {
    const int64_t n = t / G, g = t % G;
    const T* xg = x + (n * p.C + g * Cg) * HW;
    if (p.sw != 1) {
      for (int64_t k = g * Kg; k < (g + 1) * Kg; ++k) {
        T* yp = y + (n * p.K + k) * OHW;
        std::fill(yp, yp + OHW, b ? b[k] : T(0));
        for (int64_t c = 0; c < Cg; ++c)
          for (int64_t r = 0; r < p.R; ++r) {
            int64_t oh0, oh1;
            span(p.OH, p.H, p.sh, p.ph, r * p.dh, oh0, oh1);
            for (int64_t s = 0; s < p.S; ++s) {
              int64_t ow0, ow1;
              span(p.OW, p.W, p.sw, p.pw, s * p.dw, ow0, ow1);
              const T wv = w[(k * Cg + c) * RS + r * p.S + s];
              for (int64_t oh = oh0; oh < oh1; ++oh) {
                const T* xr = xg + c * HW + (oh * p.sh - p.ph + r * p.dh) * p.W - p.pw + s * p.dw;
                for (int64_t ow = ow0; ow < ow1; ++ow) yp[oh * p.OW + ow] += wv * xr[ow * p.sw];
              }
            }
          }
      }
      return;
    }
    T* xp = scratch.as<T>() + Cg * plane * th;
    for (int64_t c = 0; c < Cg; ++c) pad_plane(xg + c * HW, p.H, p.W, p.ph, p.pw, Hp, Wp, xp + c * plane);
    for (int64_t k = g * Kg; k < (g + 1) * Kg; ++k) {
      const T* wk = w + k * Cg * RS;
      T* yp = y + (n * p.K + k) * OHW;
      const T bias = b ? b[k] : T(0);
      for (int64_t oh = 0; oh < p.OH; ++oh)
        for (int64_t o0 = 0; o0 < p.OW; o0 += NB * W) {
          const int nq = int(std::min<int64_t>(NB, ceil_div(p.OW - o0, W)));
          const T* xr = xp + oh * p.sh * Wp + o0;
          T* yr = yp + oh * p.OW + o0;
          const int64_t left = p.OW - o0;
          switch (nq) {  // the run's vectors as compile-time counts keep them in registers
            case 4: direct_run<V, 4>(p, xr, Wp, plane, wk, bias, yr, left); break;
            case 3: direct_run<V, 3>(p, xr, Wp, plane, wk, bias, yr, left); break;
            case 2: direct_run<V, 2>(p, xr, Wp, plane, wk, bias, yr, left); break;
            default: direct_run<V, 1>(p, xr, Wp, plane, wk, bias, yr, left); break;
          }
        }
    }
  });
}

// One (n, c) input-gradient plane per task: gx = sum_{k, r, s} w gy scattered back.
template <class T>
void bwd_input_direct(const Conv2dParams& p) {
  const T* gy = static_cast<const T*>(p.gy);
  const T* w = static_cast<const T*>(p.w);
  T* gx = static_cast<T*>(p.gx);
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, HW = p.H * p.W, OHW = p.OH * p.OW;
  run_tasks(p.N * p.C, threads_for(p.N * p.C * OHW * Kg * p.R * p.S >> 15), [&](int64_t t, int) {
    const int64_t n = t / p.C, ci = t % p.C, g = ci / Cg, c = ci % Cg;
    T* xp = gx + t * HW;
    std::fill(xp, xp + HW, T(0));
    for (int64_t k = g * Kg; k < (g + 1) * Kg; ++k)
      for (int64_t r = 0; r < p.R; ++r) {
        int64_t oh0, oh1;
        span(p.OH, p.H, p.sh, p.ph, r * p.dh, oh0, oh1);
        for (int64_t s = 0; s < p.S; ++s) {
          int64_t ow0, ow1;
          span(p.OW, p.W, p.sw, p.pw, s * p.dw, ow0, ow1);
          const T wv = w[((k * Cg + c) * p.R + r) * p.S + s];
          for (int64_t oh = oh0; oh < oh1; ++oh) {
            T* xr = xp + (oh * p.sh - p.ph + r * p.dh) * p.W - p.pw + s * p.dw;
            const T* yr = gy + (n * p.K + k) * OHW + oh * p.OW;
            if (p.sw == 1) for (int64_t ow = ow0; ow < ow1; ++ow) xr[ow] += wv * yr[ow];
            else for (int64_t ow = ow0; ow < ow1; ++ow) xr[ow * p.sw] += wv * yr[ow];
          }
        }
      }
  });
}

// acc[q] += a[q W : (q + 1) W) * b[q W : (q + 1) W) for q < NQ (compile-time: registers).
template <class V, int NQ, class T>
inline void dot_run(const T* a, const T* b, typename V::R* acc) {
#pragma GCC unroll 4
  for (int q = 0; q < NQ; ++q) acc[q] = V::fma(V::load(a + q * V::W), V::load(b + q * V::W), acc[q]);
}

// One (k, c) pair per task: gw[k, c, r, s] = sum over images and pixels of gy x shifted. Stride
// 1: per image, the x and gy planes are copied zero-padded (they stay in L1 across the taps)
// and each tap sums whole vector runs in four accumulators, added into the tap's vector
// partial. Other strides sum rows of lane partials.
template <class T>
void bwd_weight_direct(const Conv2dParams& p) {
  using V = PV<T>;
  constexpr int W = V::W;
  const T* gy = static_cast<const T*>(p.gy);
  const T* x = static_cast<const T*>(p.x);
  T* gw = static_cast<T*>(p.gw);
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, HW = p.H * p.W, OHW = p.OH * p.OW, RS = p.R * p.S;
  const int64_t OWp = round_up(p.OW, W), Hp = (p.OH - 1) * p.sh + (p.R - 1) * p.dh + 1, Wp = OWp + (p.S - 1) * p.dw;
  const int nt = threads_for(p.K * Cg * p.N * OHW * RS >> 15);
  const int64_t per = std::max<int64_t>(RS * W + Hp * Wp + p.OH * OWp, p.OW);
  Scratch scratch(size_t(per) * sizeof(T) * size_t(nt));
  run_tasks(p.K * Cg, nt, [&](int64_t t, int th) {
    const int64_t k = t / Cg, c = t % Cg, g = k / Kg;
    const T* x0 = x + (g * Cg + c) * HW;
    const T* y0 = gy + k * OHW;
    T* part = scratch.as<T>() + per * th;
    if (p.sw == 1) {
      T* xp = part + RS * W;
      T* yp = xp + Hp * Wp;
      std::fill(part, part + RS * W, T(0));
      for (int64_t n = 0; n < p.N; ++n) {
        pad_plane(x0 + n * p.C * HW, p.H, p.W, p.ph, p.pw, Hp, Wp, xp);
        pad_plane(y0 + n * p.K * OHW, p.OH, p.OW, 0, 0, p.OH, OWp, yp);
        for (int64_t r = 0; r < p.R; ++r)
          for (int64_t s = 0; s < p.S; ++s) {
            typename V::R acc[4] = {V::zero(), V::zero(), V::zero(), V::zero()};
            for (int64_t oh = 0; oh < p.OH; ++oh) {
              const T* xr = xp + (oh * p.sh + r * p.dh) * Wp + s * p.dw;
              const T* yr = yp + oh * OWp;
              int64_t o = 0;
              for (; o + 4 * W <= OWp; o += 4 * W) dot_run<V, 4>(yr + o, xr + o, acc);
              switch ((OWp - o) / W) {
                case 3: dot_run<V, 3>(yr + o, xr + o, acc); break;
                case 2: dot_run<V, 2>(yr + o, xr + o, acc); break;
                case 1: dot_run<V, 1>(yr + o, xr + o, acc); break;
                default: break;
              }
            }
            T* pt = part + (r * p.S + s) * W;
            V::store(pt, V::add(V::load(pt), V::add(V::add(acc[0], acc[1]), V::add(acc[2], acc[3]))));
          }
      }
      for (int64_t i = 0; i < RS; ++i) gw[(k * Cg + c) * RS + i] = V::sum(V::load(part + i * W));
      return;
    }
    for (int64_t r = 0; r < p.R; ++r) {
      int64_t oh0, oh1;
      span(p.OH, p.H, p.sh, p.ph, r * p.dh, oh0, oh1);
      for (int64_t s = 0; s < p.S; ++s) {
        int64_t ow0, ow1;
        span(p.OW, p.W, p.sw, p.pw, s * p.dw, ow0, ow1);
        std::fill(part, part + p.OW, T(0));
        for (int64_t n = 0; n < p.N; ++n)
          for (int64_t oh = oh0; oh < oh1; ++oh) {
            const T* xr = x0 + n * p.C * HW + (oh * p.sh - p.ph + r * p.dh) * p.W - p.pw + s * p.dw;
            const T* yr = y0 + n * p.K * OHW + oh * p.OW;
            for (int64_t ow = ow0; ow < ow1; ++ow) part[ow] += yr[ow] * xr[ow * p.sw];
          }
        T total = 0;
        for (int64_t ow = 0; ow < p.OW; ++ow) total += part[ow];
        gw[(k * Cg + c) * RS + r * p.S + s] = total;
      }
    }
  });
  if (p.gb) conv_bias_grad(p.dt, p.gy, p.gb, p.N, p.K, OHW);
}

// The GEMM paths want at least a few rows per tile: M is Kg (forward, weight gradient) or
// Cg (input gradient); a weight gradient with fewer than two panels of columns runs direct too.
constexpr int64_t kMinRows = 4;

void fwd(const Conv2dParams& p) {
  const bool direct = p.K / p.groups < kMinRows || (p.K / p.groups) * (p.C / p.groups) <= 8;
  if (p.dt == DType::f64) { if (direct) fwd_direct<double>(p); else fwd_gemm<double>(p); }
  else if (direct) fwd_direct<float>(p);
  else fwd_gemm<float>(p);
}
void bwd_input(const Conv2dParams& p) {
  const bool direct = p.C / p.groups < kMinRows, s1 = p.sh == 1 && p.sw == 1;
  if (p.dt == DType::f64) {
    if (direct) bwd_input_direct<double>(p); else if (s1) bwd_input_as_fwd<double>(p); else bwd_input_col2im<double>(p);
  } else {
    if (direct) bwd_input_direct<float>(p); else if (s1) bwd_input_as_fwd<float>(p); else bwd_input_col2im<float>(p);
  }
}
void bwd_weight(const Conv2dParams& p) {
  const bool direct = p.K / p.groups < kMinRows || (p.C / p.groups) * p.R * p.S < 2 * kernel<float>().nr;
  if (p.dt == DType::f64) { if (direct) bwd_weight_direct<double>(p); else bwd_weight_gemm<double>(p); }
  else if (direct) bwd_weight_direct<float>(p);
  else bwd_weight_gemm<float>(p);
}

#define FASTDL_STR2(x) #x
#define FASTDL_STR(x) FASTDL_STR2(x)

}  // namespace

const ConvKernels& conv_table() {
  static const ConvKernels k{fwd, bwd_input, bwd_weight, FASTDL_STR(FASTDL_ISA_NS) "/implicit-gemm"};
  return k;
}

}  // namespace fastdl::cpu::FASTDL_ISA_NS
#endif
