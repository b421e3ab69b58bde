// 2-D convolution fast paths, compiled per ISA (avx2, avx512); the ref ISA runs the scalar
// reference (conv.cpp). All three passes are implicit GEMMs on the GEMM micro-kernels
// (gemm_kernel.h), one group at a time, without an im2col buffer:
//   forward      y[g]  (Kg x P)   = W[g] (Kg x Cg R S) @ col(x)[g] (Cg R S x P),  P = N OH OW
//                W is packed once; each (k block x column block) of col(x) is packed straight
//                from x into the micro-kernel's panels (masked vector loads split the panels
//                at output-row ends; padding and column strides read a zero-padded copy of x
//                split into column phases).
//   weight grad  gW[g] (Kg x Cg R S) = sum over images and pixel blocks of gy[n, g] @ col(x)^T:
//                threads own column ranges of gW (no (N, ...) temporary, no reduction).
//   input grad   stride 1: a forward convolution of gy with the flipped, transposed weight;
//                strided: col = W^T @ gy per image, scattered back (col2im) per thread.
// Layers with few channels per group (depthwise; LeNet c1: one input channel, 25 weight columns)
// run the direct loops of conv_direct_vec.cpp.
#if defined(FASTDL_ISA_avx2) || defined(FASTDL_ISA_avx512)
#include <vector>

#include "core/cpu_info.h"
#include "cpu/conv_vec.h"

namespace fastdl::cpu::FASTDL_ISA_NS {
namespace {
using detail::GemmKernel;
using namespace cv;

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

// The input as the packing reads it, in one of two forms.
// Padded: the rows and columns the taps reach, from -ph and -pw on, zero outside x (a negative
// padding crops; callers may ask for outputs whose taps run past the padded edge, conv1d's
// asymmetric 'same'), so no tap ever falls outside the view (pack_cols). Unpadded: x's own rows
// and columns, the taps clipped at its borders while packing (pack_cols_clipped).
// A column stride sw > 1 splits either into sw column phases (phase f holds view columns f,
// f + sw, ...; Wq columns each), so every tap reads one phase at unit stride, like stride 1.
// Without padding and column stride the view is x itself; otherwise a copy. The copy is small
// beside the im2col rows packed from it (R S times larger), but it is one pass over the whole
// input: forward takes the padded view only where the clipped packing's per-run setup costs
// more (kShortChannelRun); the weight gradient always (its pixel blocks span many rows).
template <class T>
struct InputView {
  const T* x;  // (phases, N, C, Hv, Wq)
  bool padded;
  int64_t Hv, Wq, phase_stride;
  Scratch buf;
  static int64_t reach(int64_t out, int64_t stride, int64_t taps, int64_t dil) { return (out - 1) * stride + (taps - 1) * dil + 1; }
  static bool copied(const Conv2dParams& p, bool pad) {
    return p.sw > 1 || (pad && (p.ph != 0 || p.pw != 0 || reach(p.OH, p.sh, p.R, p.dh) > p.H ||
                                reach(p.OW, p.sw, p.S, p.dw) > p.W));
  }
  InputView(const Conv2dParams& p, bool pad)
      : x(static_cast<const T*>(p.x)), padded(pad), Hv(copied(p, pad) && pad ? reach(p.OH, p.sh, p.R, p.dh) : p.H),
        Wq(!copied(p, pad) ? p.W : ceil_div(pad ? reach(p.OW, p.sw, p.S, p.dw) : p.W, p.sw)),
        phase_stride(p.N * p.C * Hv * Wq), buf(copied(p, pad) ? size_t(p.sw * phase_stride) * sizeof(T) : 0) {
    if (!copied(p, pad)) return;
    const T* src = x;
    T* d0 = buf.as<T>();
    x = d0;
    const int64_t rows = p.N * p.C * Hv, oh = pad ? p.ph : 0, ow = pad ? p.pw : 0;
    parallel_for(0, rows, std::max<int64_t>(1, 16384 / (Wq * p.sw)), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t ih = i % Hv - oh;
        const T* xr = src + ((i / Hv) * p.H + ih) * p.W;
        for (int64_t f = 0; f < p.sw; ++f) {
          T* d = d0 + f * phase_stride + i * Wq;
          if (ih < 0 || ih >= p.H) { std::fill(d, d + Wq, T(0)); continue; }
          if (p.sw == 1) {  // view columns [lo, hi) are input columns [lo - ow, hi - ow)
            const int64_t lo = std::clamp<int64_t>(ow, 0, Wq), hi = std::clamp<int64_t>(p.W + ow, lo, Wq);
            std::fill(d, d + lo, T(0));
            std::memcpy(d + lo, xr + lo - ow, size_t(hi - lo) * sizeof(T));
            std::fill(d + hi, d + Wq, T(0));
            continue;
          }
          for (int64_t j = 0; j < Wq; ++j) {  // view column f + j sw is input column f + j sw - ow
            const int64_t iw = f + j * p.sw - ow;
            d[j] = iw >= 0 && iw < p.W ? xr[iw] : T(0);
          }
        }
      }
    });
  }
};

// A run of a column panel's lanes [a, b) that lie on one output row of one image: lane j is
// output column ow + (j - a) of output row oh of image n.
struct Seg { int a, b; int64_t n, oh, ow; };

// Splits columns [J0, J0 + ncur) of the implied im2col matrix into per-panel runs.
void make_segs(const Conv2dParams& p, int64_t J0, int64_t ncur, int nr, std::vector<Seg>& segs, std::vector<int>& off) {
  segs.clear(); off.clear();
  const int64_t OHW = p.OH * p.OW;
  int64_t n = J0 / OHW, oh = (J0 % OHW) / p.OW, ow = J0 % p.OW;
  for (int64_t j = 0; j < ncur; ++j) {
    const int lane = int(j % nr);
    if (lane == 0) off.push_back(int(segs.size()));
    if (lane == 0 || ow == 0) segs.push_back({lane, lane + 1, n, oh, ow});
    else segs.back().b = lane + 1;
    if (++ow == p.OW) { ow = 0; if (++oh == p.OH) { oh = 0; ++n; } }
  }
  off.push_back(int(segs.size()));
}

// Packs rows [k0, k0 + kc) of the im2col matrix (row = (c, r, s) of group g) over the block's
// column panels into dst[panel][k][lane] (the GEMM's packed-B layout); lanes past the block
// are zero. In the view a row is one offset (roff, kc entries of scratch) added to every lane,
// so a panel vector's pieces (one per output-row run it meets: several when rows are narrower
// than a vector, LeNet's 10 pixels) are found once and every row is a few masked loads merged
// in a register and one store.
template <class T>
void pack_cols(const Conv2dParams& p, const InputView<T>& in, int64_t g, const std::vector<Seg>& segs,
               const std::vector<int>& off, int64_t k0, int64_t kc, int nr, T* dst, int64_t* roff) {
  using V = PV<T>;
  using M = typename V::M;
  constexpr int W = V::W;
  const int64_t RS = p.R * p.S, HWq = in.Hv * in.Wq, Cg = p.C / p.groups;
  for (int64_t kk = 0; kk < kc; ++kk) {
    const int64_t row = k0 + kk, c = row / RS, r = (row % RS) / p.S, t = (row % p.S) * p.dw;
    roff[kk] = (t % p.sw) * in.phase_stride + (g * Cg + c) * HWq + r * p.dh * in.Wq + t / p.sw;
  }
  const int64_t npan = int64_t(off.size()) - 1;
  for (int64_t pi = 0; pi < npan; ++pi)
    for (int q = 0; q < nr / W; ++q) {
      M m[W];
      const T* src[W];
      int n = 0;
      for (int i = off[size_t(pi)]; i < off[size_t(pi) + 1]; ++i) {
        const Seg& sg = segs[size_t(i)];
        const int l = std::clamp(sg.a - q * W, 0, W), h = std::clamp(sg.b - q * W, 0, W);
        if (l < h) { m[n] = V::mask(l, h); src[n++] = in.x + (sg.n * p.C * in.Hv + sg.oh * p.sh) * in.Wq + sg.ow - sg.a + q * W; }
      }
      T* d = dst + pi * nr * kc + q * W;
      const auto rows = [&](auto pieces) {  // n == pieces, a compile-time count
        constexpr int np = decltype(pieces)::value;
        for (int64_t kk = 0; kk < kc; ++kk) {
          typename V::R v = V::zero();
          for (int i = 0; i < np; ++i) v = V::merge(v, src[i] + roff[kk], m[i]);
          V::store(d + kk * nr, v);
        }
      };
      if (n == 1 && V::full(m[0])) {
        for (int64_t kk = 0; kk < kc; ++kk) V::store(d + kk * nr, V::load(src[0] + roff[kk]));
      } else if (n == 0) rows(std::integral_constant<int, 0>{});
      else if (n == 1) rows(std::integral_constant<int, 1>{});
      else if (n == 2) rows(std::integral_constant<int, 2>{});
      else if (n == 3) rows(std::integral_constant<int, 3>{});
      else
        for (int64_t kk = 0; kk < kc; ++kk) {
          typename V::R v = V::zero();
          for (int i = 0; i < n; ++i) v = V::merge(v, src[i] + roff[kk], m[i]);
          V::store(d + kk * nr, v);
        }
    }
}

// pack_cols on the unpadded view, for rows at least a panel wide: walks (r, s) outside and
// channels inside; a run's lane masks depend on (r, s) only, so the inner loop is one masked
// load and store per vector, H Wq elements apart in the input.
template <class T>
void pack_cols_clipped(const Conv2dParams& p, const InputView<T>& in, int64_t g, const std::vector<Seg>& segs,
               const std::vector<int>& off, int64_t k0, int64_t kc, int nr, T* dst) {
  using V = PV<T>;
  constexpr int W = V::W;
  const int nq = nr / W;
  const int64_t RS = p.R * p.S, Wq = in.Wq, HWq = p.H * Wq, Cg = p.C / p.groups;
  const int64_t npan = int64_t(off.size()) - 1;
  for (int64_t pi = 0; pi < npan; ++pi) {
    const Seg* s0 = segs.data() + off[size_t(pi)];
    const Seg* s1 = segs.data() + off[size_t(pi) + 1];
    T* d = dst + pi * nr * kc;
    for (int64_t r = 0; r < p.R; ++r)
      for (int64_t s = 0; s < p.S; ++s) {
        const int64_t rs = r * p.S + s;
        const int64_t c0 = k0 > rs ? (k0 - rs + RS - 1) / RS : 0, c1 = (k0 + kc - rs + RS - 1) / RS;
        if (c0 >= c1) continue;
        const int64_t t = s * p.dw - p.pw, phase = ((t % p.sw) + p.sw) % p.sw, shift = (t - phase) / p.sw;
        const T* xs = in.x + phase * in.phase_stride + (g * Cg + c0) * HWq;
        T* dk = d + (c0 * RS + rs - k0) * nr;  // row c0's lanes; row c + 1 is RS rows further
        const int64_t dstep = RS * nr;
        for (const Seg* sg = s0; sg < s1; ++sg) {
          const bool first = sg == s0;
          const int64_t ih = sg->oh * p.sh - p.ph + r * p.dh, iw = sg->ow + shift;  // iw: view column of lane a
          const int lo = int(std::max<int64_t>(sg->a, sg->a - iw)), hi = int(std::min<int64_t>(sg->b, sg->a + Wq - iw));
          if (ih < 0 || ih >= p.H || lo >= hi) {
            if (first)
              for (int64_t c = c0; c < c1; ++c)
                for (int q = 0; q < nq; ++q) V::store(dk + (c - c0) * dstep + q * W, V::zero());
            continue;
          }
          const T* src = xs + sg->n * p.C * HWq + ih * Wq + iw - sg->a;  // lane j reads src[j]
          for (int q = 0; q < nq; ++q) {
            const int l = std::clamp(lo - q * W, 0, W), h = std::clamp(hi - q * W, 0, W);
            T* dq = dk + q * W;
            const T* sq = src + q * W;
            if (l >= h) {
              if (first) for (int64_t c = c0; c < c1; ++c, dq += dstep) V::store(dq, V::zero());
            } else if (l == 0 && h == W) {
              if (first) for (int64_t c = c0; c < c1; ++c, dq += dstep, sq += HWq) V::store(dq, V::load(sq));
              else for (int64_t c = c0; c < c1; ++c, dq += dstep, sq += HWq) V::store(dq, V::add(V::load(dq), V::load(sq)));
            } else {
              const typename V::M m = V::mask(l, h);
              if (first) for (int64_t c = c0; c < c1; ++c, dq += dstep, sq += HWq) V::store(dq, V::loadm(sq, m));
              else for (int64_t c = c0; c < c1; ++c, dq += dstep, sq += HWq) V::store(dq, V::add(V::load(dq), V::loadm(sq, m)));
            }
          }
        }
      }
  }
}

// Forward packs from the padded view when rows are narrower than a panel and the channel run
// is short; with many channels the clipped packing's per-tap setup is spread over them and the
// view's copy is the larger cost (Xeon, 2 threads, batch 32: 64 -> 64 on 16x16 1.93 ms clipped
// against 2.20 padded, 256 -> 256 on 4x4 1.69 against 1.92; LeNet's 6 -> 16 on 14x14 0.72
// padded against 1.11 clipped).
constexpr int64_t kShortChannelRun = 16;

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
  const InputView<T> in(p, p.OW < nr && p.C / p.groups < kShortChannelRun);
  // Packed W: per group, per k block of kcur columns, Mp rows (panel layout of pack_a).
  Scratch ap(size_t(G * Mp * Kd) * sizeof(T));
  T* Ap = ap.as<T>();
  run_tasks(G * npc, threads_for(G * npc / 4), [&](int64_t t, int) {
    const int64_t g = t / npc, pc = (t % npc) * bl.kc, kcur = std::min(bl.kc, Kd - pc);
    gk.pack_a(w + g * Kg * Kd + pc, Kd, 1, Kg, kcur, Ap + g * Mp * Kd + Mp * pc);
  });
  const int64_t nc = std::min(bl.nc, std::max<int64_t>(4 * nr, round_up(ceil_div(P, 4 * get_num_threads()), nr)));
  const int64_t nblk = ceil_div(P, nc);
  // Fewer column blocks than threads (small images deep in a network: ResNet's 512 x 2 x 2
  // layers at batch 32 are one block of 128 pixels): the rows (output channels) are split too,
  // each part packing the block's columns for itself, so no thread idles.
  const int64_t msplit = G * nblk >= get_num_threads() ? 1
      : std::max<int64_t>(1, std::min(ceil_div(get_num_threads(), G * nblk), ceil_div(Kg, 4 * gk.mr)));
  const int64_t mpart = round_up(ceil_div(Kg, msplit), gk.mr), ntask = G * nblk * msplit;
  const int nt = threads_for(ntask);
  const size_t bbytes = size_t(bl.kc * round_up(nc, nr)) * sizeof(T), cbytes = size_t(Kg * nc) * sizeof(T);
  const size_t obytes = size_t(bl.kc) * sizeof(int64_t);
  Scratch scratch((bbytes + cbytes + obytes) * size_t(nt));
  std::vector<std::vector<Seg>> segs(static_cast<size_t>(nt));
  std::vector<std::vector<int>> offs(static_cast<size_t>(nt));
  run_tasks(ntask, nt, [&](int64_t task, int t) {
    const int64_t ms = task % msplit, g = task / msplit / nblk, J0 = (task / msplit % nblk) * nc;
    const int64_t ncur = std::min(nc, P - J0), npan = ceil_div(ncur, nr);
    const int64_t m0 = ms * mpart, m1 = std::min(Kg, m0 + mpart);  // this part's output channels
    if (m0 >= m1) return;
    T* Bp = reinterpret_cast<T*>(scratch.as<char>() + (bbytes + cbytes + obytes) * size_t(t));
    T* Ct = reinterpret_cast<T*>(reinterpret_cast<char*>(Bp) + bbytes);
    int64_t* roff = reinterpret_cast<int64_t*>(reinterpret_cast<char*>(Ct) + cbytes);
    make_segs(p, J0, ncur, nr, segs[size_t(t)], offs[size_t(t)]);
    const int64_t n0 = J0 / OHW, n1 = (J0 + ncur - 1) / OHW;
    const bool direct = n0 == n1;  // the block lies in one image: write y in place
    T* C = direct ? y + (n0 * p.K + g * Kg) * OHW + (J0 - n0 * OHW) : Ct;
    const int64_t rs = direct ? OHW : nc;
    for (int64_t pc = 0; pc < Kd; pc += bl.kc) {
      const int64_t kcur = std::min(bl.kc, Kd - pc);
      if (in.padded) pack_cols<T>(p, in, g, segs[size_t(t)], offs[size_t(t)], pc, kcur, nr, Bp, roff);
      else pack_cols_clipped<T>(p, in, g, segs[size_t(t)], offs[size_t(t)], pc, kcur, nr, Bp);
      const T* Ag = Ap + g * Mp * Kd + Mp * pc;
      for (int64_t ic = m0; ic < m1; ic += bl.mc)
        gk.macro(std::min(bl.mc, m1 - ic), ncur, kcur, Ag + ic * kcur, Bp, C + ic * rs, rs, 1, 1.0, pc == 0 ? 0.0 : 1.0,
                 0, npan);
    }
    if (b)
      for (int64_t i = m0; i < m1; ++i) {
        const T v = b[g * Kg + i];
        T* ci = C + i * rs;
        for (int64_t j = 0; j < ncur; ++j) ci[j] += v;
      }
    if (!direct)  // scatter the block's columns image by image
      for (int64_t J = J0; J < J0 + ncur;) {
        const int64_t n = J / OHW, pix = J % OHW, len = std::min(OHW - pix, J0 + ncur - J);
        for (int64_t i = m0; i < m1; ++i)
          std::memcpy(y + (n * p.K + g * Kg + i) * OHW + pix, Ct + i * nc + (J - J0), size_t(len) * sizeof(T));
        J += len;
      }
  });
}

// gW = sum over images and pixel blocks of gy @ col(x)^T (see the file comment); gb too.
// A task owns a column range of one group's gW; per pixel block it packs gy's rows once and
// sweeps its columns in L2-sized blocks: im2col rows packed from the input view as one panel
// as wide as the pixel block (pack_cols), then the transposing pack.
template <class T>
void bwd_weight_gemm(const Conv2dParams& p) {
  const GemmKernel& gk = kernel<T>();
  const int nr = gk.nr;
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G, Kd = Cg * p.R * p.S, OHW = p.OH * p.OW;
  const int64_t P = p.N * OHW;
  const Blocking bl = blocking(gk, Kg, P, sizeof(T));  // k runs over the pixels of all images
  const int64_t kc = bl.kc, Mp = round_up(Kg, gk.mr);
  const int64_t nparts = std::max<int64_t>(1, std::min(ceil_div(Kd, nr), ceil_div(get_num_threads(), G)));
  const int64_t part = round_up(ceil_div(Kd, nparts), nr), ntask = G * ceil_div(Kd, part);
  const int64_t ncb = Kg <= bl.mc ? std::min<int64_t>(part, 1024) : std::min(part, bl.nc);
  const int nt = threads_for(ntask);
  const int64_t ldr = round_up(kc, PV<T>::W);  // im2col rows, pixels padded to whole vectors
  const size_t rbytes = size_t(ncb * ldr) * sizeof(T), bbytes = size_t(round_up(ncb, nr) * kc) * sizeof(T);
  const size_t abytes = size_t(Mp * kc) * sizeof(T), obytes = size_t(ncb) * sizeof(int64_t);
  const size_t per = rbytes + bbytes + 2 * abytes + obytes;
  const InputView<T> in(p, true);
  std::vector<std::vector<Seg>> segs(static_cast<size_t>(nt));
  std::vector<std::vector<int>> offs(static_cast<size_t>(nt));
  Scratch scratch(per * size_t(nt));
  const T* gy = static_cast<const T*>(p.gy);
  T* gw = static_cast<T*>(p.gw);
  const int64_t nparts_g = ceil_div(Kd, part);
  run_tasks(ntask, nt, [&](int64_t task, int t) {
    const int64_t g = task / nparts_g, jA = (task % nparts_g) * part, jB = std::min(Kd, jA + part);
    T* rows = reinterpret_cast<T*>(scratch.as<char>() + per * size_t(t));
    T* Bp = reinterpret_cast<T*>(reinterpret_cast<char*>(rows) + rbytes);
    T* Ap = reinterpret_cast<T*>(reinterpret_cast<char*>(Bp) + bbytes);
    T* gtmp = reinterpret_cast<T*>(reinterpret_cast<char*>(Ap) + abytes);
    int64_t* roff = reinterpret_cast<int64_t*>(reinterpret_cast<char*>(gtmp) + abytes);
    for (int64_t Q0 = 0; Q0 < P; Q0 += kc) {  // pixel blocks over all images (small images share one)
      const int64_t kcur = std::min(kc, P - Q0), n0 = Q0 / OHW, n1 = (Q0 + kcur - 1) / OHW;
      make_segs(p, Q0, kcur, int(ldr), segs[size_t(t)], offs[size_t(t)]);  // the block as one panel
      if (n0 == n1) {
        gk.pack_a(gy + (n0 * p.K + g * Kg) * OHW + Q0 - n0 * OHW, OHW, 1, Kg, kcur, Ap);
      } else {  // gather the block's gy rows image by image, then pack
        for (int64_t Q = Q0; Q < Q0 + kcur;) {
          const int64_t n = Q / OHW, q = Q % OHW, len = std::min(OHW - q, Q0 + kcur - Q);
          for (int64_t i = 0; i < Kg; ++i)
            std::memcpy(gtmp + i * kcur + (Q - Q0), gy + (n * p.K + g * Kg + i) * OHW + q, size_t(len) * sizeof(T));
          Q += len;
        }
        gk.pack_a(gtmp, kcur, 1, Kg, kcur, Ap);
      }
      for (int64_t j0 = jA; j0 < jB; j0 += ncb) {
        const int64_t ncur = std::min(ncb, jB - j0);
        pack_cols<T>(p, in, g, segs[size_t(t)], offs[size_t(t)], j0, ncur, int(ldr), rows, roff);  // rows[j][pixel]
        gk.pack_b(rows, 1, ldr, kcur, ncur, Bp);
        for (int64_t ic = 0; ic < Kg; ic += bl.mc)
          gk.macro(std::min(bl.mc, Kg - ic), ncur, kcur, Ap + ic * kcur, Bp, gw + (g * Kg + ic) * Kd + j0, Kd, 1,
                   1.0, Q0 == 0 ? 0.0 : 1.0, 0, ceil_div(ncur, nr));
      }
    }
  });
  if (p.gb) conv_bias_grad(p.dt, p.gy, p.gb, p.N, p.K, OHW);
}

// Input gradient of strided layers and of few input channels: per image and group, col = W^T @ gy
// over a block of whole output rows
// (Cg R S x rows OW), then each col row is added back to the input pixels it was read from.
// Threads own whole images.
// col2im for one tap: adds the col row of tap rs = r S + s, output rows [oh0, oh0 + nrow)
// (cr's row oh0 first, OW apart), into the input plane xc at the pixels the tap read.
template <class T>
void col2im_tap(const Conv2dParams& p, const T* cr, T* xc, int64_t rs, int64_t oh0, int64_t nrow) {
  const int64_t r = rs / p.S, s = rs % p.S;
  int64_t ow0, ow1;
  conv_out_span(p.OW, p.W, p.sw, p.pw, s * p.dw, ow0, ow1);
  for (int64_t oh = oh0; oh < oh0 + nrow; ++oh, cr += p.OW) {
    const int64_t ih = oh * p.sh - p.ph + r * p.dh;
    if (ih < 0 || ih >= p.H) continue;
    T* xr = xc + ih * p.W - p.pw + s * p.dw;
    for (int64_t ow = ow0; ow < ow1; ++ow) xr[ow * p.sw] += cr[ow];
  }
}

// Small images go several at a time: a task takes a group of images and runs one GEMM over
// their pixels (their gy rows gathered side by side), then the adds. One image at a time, the
// GEMMs of ResNet's layer-4 input gradient at batch 32 had 4 columns each: 14.2 -> 2.2 ms for
// a 256 -> 512 3x3 stride-2 layer on 4x4 inputs (Xeon, 2 threads). Groups stay L2-sized and
// at least one per thread.
constexpr int64_t kColGroupElems = int64_t(1) << 18;  // col elements of a group of images (1 MiB in f32)

template <class T>
void bwd_input_col2im_grouped(const Conv2dParams& p, int64_t ng) {
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G, RS = p.R * p.S, Kd = Cg * RS, OHW = p.OH * p.OW;
  const int64_t HW = p.H * p.W, len = ng * OHW, ngroups = ceil_div(p.N, ng);
  const int nt = threads_for(ngroups);
  const size_t per = size_t((Kd + Kg) * len);
  Scratch scratch(per * sizeof(T) * size_t(nt));
  const T* w = static_cast<const T*>(p.w);
  const T* gy = static_cast<const T*>(p.gy);
  T* gx = static_cast<T*>(p.gx);
  run_tasks(ngroups, nt, [&](int64_t grp, int t) {
    T* col = scratch.as<T>() + per * size_t(t);
    T* gyg = col + Kd * len;
    const int64_t n0 = grp * ng, ni = std::min(ng, p.N - n0), cols = ni * OHW;
    std::fill(gx + n0 * p.C * HW, gx + (n0 + ni) * p.C * HW, T(0));
    for (int64_t g = 0; g < G; ++g) {
      for (int64_t k = 0; k < Kg; ++k)  // gy rows of the group's images, side by side
        for (int64_t i = 0; i < ni; ++i)
          std::memcpy(gyg + k * cols + i * OHW, gy + ((n0 + i) * p.K + g * Kg + k) * OHW, size_t(OHW) * sizeof(T));
      GemmParams gp;
      gp.M = Kd; gp.N = cols; gp.K = Kg; gp.dtype = p.dt;
      gp.A = w + g * Kg * Kd; gp.sa_m = 1; gp.sa_k = Kd;
      gp.B = gyg; gp.sb_k = cols; gp.sb_n = 1;
      gp.C = col; gp.sc_m = cols; gp.sc_n = 1;
      gemm(gp);
      for (int64_t i = 0; i < ni; ++i)
        for (int64_t c = 0; c < Cg; ++c) {  // each (image, channel) plane gets its R S rows
          T* xc = gx + ((n0 + i) * p.C + g * Cg + c) * HW;
          for (int64_t rs = 0; rs < RS; ++rs)
            col2im_tap<T>(p, col + (c * RS + rs) * cols + i * OHW, xc, rs, 0, p.OH);
        }
    }
  });
}

template <class T>
void bwd_input_col2im(const Conv2dParams& p) {
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G, RS = p.R * p.S, Kd = Cg * RS, OHW = p.OH * p.OW;
  const int64_t HW = p.H * p.W;
  const int64_t per_thread = ceil_div(p.N, std::max<int64_t>(1, get_num_threads()));
  if (const int64_t ng = std::min(per_thread, kColGroupElems / std::max<int64_t>(Kd * OHW, 1)); ng > 1) {
    bwd_input_col2im_grouped<T>(p, ng);
    return;
  }
  const int64_t rows = std::clamp<int64_t>((int64_t(1) << 18) / std::max<int64_t>(Kd * p.OW, 1), 1, p.OH);
  const int nt = threads_for(p.N);
  Scratch scratch(size_t(Kd * rows * p.OW) * sizeof(T) * size_t(nt));
  const T* w = static_cast<const T*>(p.w);
  const T* gy = static_cast<const T*>(p.gy);
  T* gx = static_cast<T*>(p.gx);
  run_tasks(p.N, nt, [&](int64_t n, int t) {
    T* col = scratch.as<T>() + Kd * rows * p.OW * t;
    std::fill(gx + n * p.C * HW, gx + (n + 1) * p.C * HW, T(0));
    for (int64_t g = 0; g < G; ++g)
      for (int64_t oh0 = 0; oh0 < p.OH; oh0 += rows) {
        const int64_t nrow = std::min(rows, p.OH - oh0), len = nrow * p.OW;
        GemmParams gp;
        gp.M = Kd; gp.N = len; gp.K = Kg; gp.dtype = p.dt;
        gp.A = w + g * Kg * Kd; gp.sa_m = 1; gp.sa_k = Kd;
        gp.B = gy + (n * p.K + g * Kg) * OHW + oh0 * p.OW; gp.sb_k = OHW; gp.sb_n = 1;
        gp.C = col; gp.sc_m = len; gp.sc_n = 1;
        gemm(gp);
        for (int64_t row = 0; row < Kd; ++row)
          col2im_tap<T>(p, col + row * len, gx + (n * p.C + g * Cg + row / RS) * HW, row % RS, oh0, nrow);
      }
  });
}

// Stride 1: gx = conv(gy, w') (cv::input_grad_as_forward).
template <class T>
void bwd_input_as_fwd(const Conv2dParams& p) {
  Conv2dParams q = input_grad_as_forward(p);
  if (conv_taps_pays(q)) {  // packs its weight blocks straight from w, flipped
    q.w = p.w;
    conv_fwd_taps(q, true);
    return;
  }
  Scratch wt(size_t(p.K * (p.C / p.groups) * p.R * p.S) * sizeof(T));
  flipped_weight<T>(p, wt.as<T>());
  q.w = wt.as<T>();
  fwd_gemm<T>(q);
}

// The GEMM paths want at least a few rows per tile: M is Kg (forward, weight gradient), Cg
// (stride-1 input gradient) or Cg R S (strided). Depthwise-like layers (Cg Kg <= 8) run direct,
// and so does a weight gradient with fewer than two panels of columns (Cg R S < 2 nr) when it
// has taps to share the direct loops' per-plane copies over (R S >= 4, LeNet's c1) and unit
// column stride (the direct loops' vector form); a 1x1 or 1x3 layer with few channels stays on
// the GEMM, where the direct loops would spend most of their time copying planes (5 ms against
// 0.2 for a 16 -> 48 1x1 layer on 64 4x4 images), and so does a strided one (ConvNeXt's 4x4
// stride-4 stem, 3 -> 96 on 16 64x64 images: 3.9 ms direct, scalar, against 0.6 in PyTorch).
constexpr int64_t kMinRows = 4;

void fwd(const Conv2dParams& p) {
  const bool direct = p.K / p.groups < kMinRows || (p.K / p.groups) * (p.C / p.groups) <= 8;
  if (!direct && conv_lanes_pays(p, ConvPass::forward)) conv_fwd_lanes(p);
  else if (!direct && conv_taps_pays(p)) conv_fwd_taps(p, false);
  else if (p.dt == DType::f64) { if (direct) conv_fwd_direct(p); else fwd_gemm<double>(p); }
  else if (direct) conv_fwd_direct(p);
  else fwd_gemm<float>(p);
}
// The stride-1 input gradient as a forward convolution is a GEMM with Cg rows whose packing
// copies Kg R S values per pixel: with few input channels that copy dominates, and col2im (a
// GEMM over Kg, then Cg R S adds per pixel) wins. On a Xeon, 2 threads, input gradient as
// forward -> col2im: LeNet c2 (6 -> 16, 5x5, batch 256) 2.96 -> 1.48 ms, a 3 -> 32 3x3 layer
// (batch 64, 32x32) 1.69 -> 1.23; but 16 -> 16 on 32x32 1.57 -> 1.96, 256 -> 256 24 -> 35.
constexpr int64_t kColMaxC = 16;

void bwd_input(const Conv2dParams& p) {
  const bool direct = (p.C / p.groups) * (p.K / p.groups) <= 8;
  const bool as_fwd = p.sh == 1 && p.sw == 1 && p.C / p.groups >= kColMaxC;
  if (!direct && conv_lanes_pays(p, ConvPass::input)) conv_bwd_input_lanes(p);
  else if (p.dt == DType::f64) {
    if (direct) conv_bwd_input_direct(p); else if (as_fwd) bwd_input_as_fwd<double>(p); else bwd_input_col2im<double>(p);
  } else {
    if (direct) conv_bwd_input_direct(p); else if (as_fwd) bwd_input_as_fwd<float>(p); else bwd_input_col2im<float>(p);
  }
}
void bwd_weight(const Conv2dParams& p) {
  const bool direct = p.K / p.groups < kMinRows ||
                      ((p.C / p.groups) * p.R * p.S < 2 * kernel<float>().nr && p.R * p.S >= 4 && p.sw == 1);
  if (conv_lanes_pays(p, ConvPass::weight)) conv_bwd_weight_lanes(p);
  else if (!direct && conv_taps_pays(p, 0.8)) conv_bwd_weight_taps(p);
  else if (p.dt == DType::f64) { if (direct) conv_bwd_weight_direct(p); else bwd_weight_gemm<double>(p); }
  else if (direct) conv_bwd_weight_direct(p);
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
