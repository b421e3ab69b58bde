// 2-D convolution forward with the padding taps skipped, compiled per ISA (avx2, avx512).
//
// The implicit GEMM of conv_vec.cpp multiplies every output pixel by every tap, the ones that
// fall on padding included: zeros in its im2col matrix. On small images they are much of the
// work: a 3x3 layer with padding 1 on n x n images has 1 - ((3n - 2) / 3n)^2 of its taps on
// padding, 9% on 14x14, 18% on 7x7, 31% on 4x4 and 56% on 2x2 (a ResNet's last stage on 64x64
// inputs; oneDNN's direct convolution skips them).
//
// Here output positions are split into bands along each axis: the rows oh that see the same
// range of kernel rows [r0, r1), the columns likewise (a 3x3 layer with padding 1: the first
// row, the inner rows, the last row). A class, one row band times one column band, is a set of
// pixels that see the same taps, every one of them inside the image. Per class and group,
//   y[g][:, class pixels] = sum over its taps (r, s) of W[g][:, :, r, s] @ x_rs[:, class pixels]
// with x_rs the input shifted by the tap: a GEMM over the class's taps times Cg channels, the
// padding never packed nor multiplied. W is packed once, tap-major (k = (r, s, c)), in blocks
// of one tap and at most an L1-sized run of channels, so each class walks its own taps' blocks.
// The class's columns (pixels of many images) are packed from x with a vector load where a
// vector's lanes are one contiguous run and a gather elsewhere, into a C buffer that is then
// scattered to y. The padding skipped more than pays for the scatter when the layer has
// channels enough (conv_taps_pays).
#if defined(FASTDL_ISA_avx2) || defined(FASTDL_ISA_avx512)
#include <cstdlib>
#include <limits>
#include <vector>

#include "core/cpu_info.h"
#include "cpu/conv_vec.h"
#include "cpu/gemm.h"

namespace fastdl::cpu::FASTDL_ISA_NS {
bool gemm_get_kernel(DType dt, detail::GemmKernel* k);  // gemm_vec.cpp, this ISA

namespace {
using detail::GemmKernel;
using namespace cv;

// Outputs [o0, o1) along one axis that see the taps [t0, t1) (t0 == t1: padding only).
struct Band { int64_t o0, o1, t0, t1; };

// The taps of output o are those t with 0 <= o s - p + t d < I, an interval whose ends do not
// increase with o, so equal intervals are runs of outputs.
std::vector<Band> bands(int64_t O, int64_t I, int64_t s, int64_t p, int64_t taps, int64_t d) {
  std::vector<Band> out;
  for (int64_t o = 0; o < O; ++o) {
    int64_t t0 = 0, t1 = 0;
    for (int64_t t = 0; t < taps; ++t) {
      const int64_t i = o * s - p + t * d;
      if (i >= 0 && i < I) { if (t1 == t0) t0 = t; t1 = t + 1; }
    }
    if (!out.empty() && out.back().t0 == t0 && out.back().t1 == t1) out.back().o1 = o + 1;
    else out.push_back({o, o + 1, t0, t1});
  }
  return out;
}

// Share of the nominal work (every pixel times every tap) that lands inside the image.
double valid_share(const Conv2dParams& p) {
  const auto span = [](const std::vector<Band>& b) { int64_t v = 0; for (const Band& x : b) v += (x.o1 - x.o0) * (x.t1 - x.t0); return v; };
  const double all = double(p.OH * p.R) * double(p.OW * p.S);
  return all > 0 ? double(span(bands(p.OH, p.H, p.sh, p.ph, p.R, p.dh))) * double(span(bands(p.OW, p.W, p.sw, p.pw, p.S, p.dw))) / all : 1.0;
}

template <class T> const GemmKernel& kernel() {
  static const GemmKernel k = [] { GemmKernel g; gemm_get_kernel(sizeof(T) == 8 ? DType::f64 : DType::f32, &g); return g; }();
  return k;
}

// One class: pixels (n, oh, ow) for every image n, oh in the row band, ow in the column band.
struct Class { Band rows, cols; int64_t count; };
// A task: columns [j0, j0 + ncur) of class c's pixel list, output channels [m0, m1) of group g.
struct Task { int64_t g, c, j0, ncur, m0, m1, work; };

template <class T>
void fwd_taps(const Conv2dParams& p) {
  using V = PV<T>;
  constexpr int W = V::W;
  const GemmKernel& gk = kernel<T>();
  const int nr = gk.nr, mr = gk.mr;
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G, RS = p.R * p.S, Kd = Cg * RS;
  const int64_t HW = p.H * p.W, OHW = p.OH * p.OW, Mp = round_up(Kg, mr);
  const CpuInfo& ci = cpu_info();
  // Channel chunks: a packed B micro-panel (kc x nr) in half of L1; A blocks of mc rows in half of L2.
  const int64_t kmax = std::max<int64_t>(32, int64_t(ci.l1d) / 2 / (nr * int64_t(sizeof(T))));
  const int64_t kc = ceil_div(Cg, ceil_div(Cg, kmax));
  const int64_t mc = std::max<int64_t>(mr, int64_t(ci.l2) / 2 / (kc * int64_t(sizeof(T))) / mr * mr);
  const T* x = static_cast<const T*>(p.x);
  const T* w = static_cast<const T*>(p.w);
  const T* b = static_cast<const T*>(p.b);
  T* y = static_cast<T*>(p.y);

  // W, tap-major: the block of tap rs and channels [c0, c0 + ccur) of group g is a packed A
  // (Mp x ccur) at Ap + g Mp Kd + Mp (rs Cg + c0). Each micro-panel of mr rows is packed as the
  // (c, r, s)-ordered matrix it is (a contiguous read), then its runs of mr are dealt to the blocks.
  Scratch ap(size_t(G * Mp * Kd) * sizeof(T));
  T* Ap = ap.as<T>();
  const int64_t npanel = ceil_div(Kg, mr);
  {
    const int nt = threads_for(G * npanel / 2);
    Scratch tmp(size_t(mr * Kd) * sizeof(T) * size_t(nt));
    run_tasks(G * npanel, nt, [&](int64_t t, int lane) {
      const int64_t g = t / npanel, i0 = (t % npanel) * mr;
      T* tp = tmp.as<T>() + int64_t(lane) * mr * Kd;
      gk.pack_a(w + (g * Kg + i0) * Kd, Kd, 1, std::min<int64_t>(mr, Kg - i0), Kd, tp);  // tp[(c RS + rs) mr + i]
      for (int64_t rs = 0; rs < RS; ++rs)
        for (int64_t c0 = 0; c0 < Cg; c0 += kc) {
          const int64_t ccur = std::min(kc, Cg - c0);
          T* d = Ap + g * Mp * Kd + Mp * (rs * Cg + c0) + i0 * ccur;
          for (int64_t c = 0; c < ccur; ++c) {
            const T* src = tp + ((c0 + c) * RS + rs) * mr;
            for (int i = 0; i < mr; ++i) d[c * mr + i] = src[i];
          }
        }
    });
  }

  // Classes and tasks. Pixels that see padding only get the bias.
  const auto rb = bands(p.OH, p.H, p.sh, p.ph, p.R, p.dh), cb = bands(p.OW, p.W, p.sw, p.pw, p.S, p.dw);
  std::vector<Class> classes;
  for (const Band& r : rb)
    for (const Band& c : cb) {
      if (r.t0 < r.t1 && c.t0 < c.t1) { classes.push_back({r, c, p.N * (r.o1 - r.o0) * (c.o1 - c.o0)}); continue; }
      for (int64_t n = 0; n < p.N; ++n)
        for (int64_t k = 0; k < p.K; ++k)
          for (int64_t oh = r.o0; oh < r.o1; ++oh)
            std::fill(y + (n * p.K + k) * OHW + oh * p.OW + c.o0, y + (n * p.K + k) * OHW + oh * p.OW + c.o1, b ? b[k] : T(0));
    }
  const int nthreads = get_num_threads();
  int64_t total = 0;
  for (const Class& c : classes) total += c.count;
  // Column blocks: L2-sized, and at least ~4 per thread over the whole layer.
  const int64_t ncmax = std::clamp<int64_t>(int64_t(ci.l2) / 4 / (kc * int64_t(sizeof(T))) / nr * nr, 4 * nr, 64 * nr);
  const int64_t nc = std::min(ncmax, std::max<int64_t>(4 * nr, round_up(ceil_div(total, 4 * nthreads), nr)));
  int64_t nblocks = 0;
  for (const Class& c : classes) nblocks += G * ceil_div(c.count, nc);
  const int64_t msplit = nblocks >= nthreads ? 1 : std::max<int64_t>(1, std::min(ceil_div(nthreads, nblocks), ceil_div(Kg, 4 * mr)));
  const int64_t mpart = round_up(ceil_div(Kg, msplit), mr);
  std::vector<Task> tasks;
  for (int64_t g = 0; g < G; ++g)
    for (int64_t ci2 = 0; ci2 < int64_t(classes.size()); ++ci2) {
      const Class& c = classes[size_t(ci2)];
      const int64_t taps = (c.rows.t1 - c.rows.t0) * (c.cols.t1 - c.cols.t0);
      for (int64_t j0 = 0; j0 < c.count; j0 += nc)
        for (int64_t m0 = 0; m0 < Kg; m0 += mpart) {
          const int64_t ncur = std::min(nc, c.count - j0), m1 = std::min(Kg, m0 + mpart);
          tasks.push_back({g, ci2, j0, ncur, m0, m1, ncur * taps * (m1 - m0)});
        }
    }
  std::stable_sort(tasks.begin(), tasks.end(), [](const Task& a, const Task& c) { return a.work > c.work; });

  const int nt = threads_for(int64_t(tasks.size()));
  const int64_t ncp = round_up(nc, nr), nvec = ncp / W;
  const size_t bbytes = size_t(round_up(kc * ncp * int64_t(sizeof(T)), 64)), cbytes = size_t(round_up(Kg * nc * int64_t(sizeof(T)), 64));
  Scratch scratch((bbytes + cbytes) * size_t(nt));
  // A lane's column bookkeeping. Per vector of W lanes, how its packing reads x: kZero (past
  // the block), kLoad (one contiguous run), kPieces (up to kMaxPieces runs, one masked load
  // each, merged: a 16-lane gather cost more than 3 of them on Zen 4, 10% of a 512-channel 7x7
  // layer's time), kGather, kScalar (offsets too far apart for 32-bit gather indices).
  enum : uint8_t { kZero, kLoad, kPieces, kGather, kScalar };
  constexpr int kMaxPieces = 8;
  struct Lane {
    std::vector<int64_t> pix, yof, prel;  // x offset of tap (0, 0) channel 0; y offset; piece starts
    std::vector<int32_t> idx;             // gather offsets from the vector's first lane
    std::vector<typename V::M> pm;        // piece lane masks
    std::vector<uint8_t> kind, np;
  };
  std::vector<Lane> lanes(static_cast<size_t>(nt));
  for (Lane& l : lanes) {
    l.pix.resize(size_t(ncp)); l.yof.resize(size_t(ncp)); l.idx.resize(size_t(ncp));
    l.prel.resize(size_t(nvec * kMaxPieces)); l.pm.resize(size_t(nvec * kMaxPieces));
    l.kind.resize(size_t(nvec)); l.np.resize(size_t(nvec));
  }
  run_tasks(int64_t(tasks.size()), nt, [&](int64_t ti, int lane) {
    const Task& tk = tasks[size_t(ti)];
    const Class& cl = classes[size_t(tk.c)];
    char* base = scratch.as<char>() + (bbytes + cbytes) * size_t(lane);
    T* Bp = reinterpret_cast<T*>(base);
    T* Ct = reinterpret_cast<T*>(base + bbytes);
    Lane& L = lanes[size_t(lane)];
    int64_t* pix = L.pix.data();
    const int64_t ch = cl.cols.o1 - cl.cols.o0, hh = cl.rows.o1 - cl.rows.o0;
    for (int64_t j = 0; j < tk.ncur; ++j) {
      const int64_t q = tk.j0 + j, n = q / (hh * ch), oh = cl.rows.o0 + (q / ch) % hh, ow = cl.cols.o0 + q % ch;
      pix[j] = n * p.C * HW + (oh * p.sh - p.ph) * p.W + (ow * p.sw - p.pw) + tk.g * Cg * HW;
      L.yof[size_t(j)] = n * p.K * OHW + oh * p.OW + ow + tk.g * Kg * OHW;
    }
    for (int64_t v = 0; v < nvec; ++v) {
      const int64_t j0 = v * W, nl = std::clamp<int64_t>(tk.ncur - j0, 0, W);
      if (nl == 0) { L.kind[size_t(v)] = kZero; continue; }
      bool fits = true;
      int npc = 0;
      for (int64_t l = 0; l < nl; ++l) {
        const int64_t d = pix[j0 + l] - pix[j0];
        fits &= d >= std::numeric_limits<int32_t>::min() / 2 && d <= std::numeric_limits<int32_t>::max() / 2;
        L.idx[size_t(j0 + l)] = int32_t(d);
        if (l > 0 && pix[j0 + l] == pix[j0 + l - 1] + 1) continue;  // extends the current piece
        if (npc < kMaxPieces) L.prel[size_t(v * kMaxPieces + npc)] = d - l;  // lane j of the piece reads x[pix[j0] + prel + j]
        int64_t e = l + 1;
        while (e < nl && pix[j0 + e] == pix[j0 + e - 1] + 1) ++e;
        if (npc < kMaxPieces) L.pm[size_t(v * kMaxPieces + npc)] = V::mask(int(l), int(e));
        ++npc;
      }
      for (int64_t l = nl; l < W; ++l) L.idx[size_t(j0 + l)] = 0;
      L.np[size_t(v)] = uint8_t(npc);
      L.kind[size_t(v)] = npc == 1 && nl == W ? kLoad : npc <= kMaxPieces ? kPieces : fits ? kGather : kScalar;
    }
    const int64_t npan = ceil_div(tk.ncur, nr);
    bool first = true;
    for (int64_t r = cl.rows.t0; r < cl.rows.t1; ++r)
      for (int64_t s = cl.cols.t0; s < cl.cols.t1; ++s) {
        const int64_t rs = r * p.S + s, toff = r * p.dh * p.W + s * p.dw;
        for (int64_t c0 = 0; c0 < Cg; c0 += kc) {
          const int64_t ccur = std::min(kc, Cg - c0);
          // B panels: dst[panel][k][lane] = x[pix[lane] + toff + (c0 + k) HW]
          for (int64_t v = 0; v < npan * (nr / W); ++v) {
            T* d = Bp + (v / (nr / W)) * nr * ccur + (v % (nr / W)) * W;
            const int64_t j0 = v * W;
            const uint8_t kind = L.kind[size_t(v)];
            if (kind == kZero) {
              for (int64_t k = 0; k < ccur; ++k) V::store(d + k * nr, V::zero());
              continue;
            }
            const T* src = x + pix[j0] + toff + c0 * HW;
            if (kind == kLoad) {
              for (int64_t k = 0; k < ccur; ++k) V::store(d + k * nr, V::load(src + k * HW));
            } else if (kind == kPieces) {
              const int64_t* pr = L.prel.data() + v * kMaxPieces;
              const typename V::M* pm = L.pm.data() + v * kMaxPieces;
              const int npc = L.np[size_t(v)];
              for (int64_t k = 0; k < ccur; ++k) {
                const T* sk = src + k * HW;
                typename V::R a = V::loadm(sk + pr[0], pm[0]);
                for (int i = 1; i < npc; ++i) a = V::merge(a, sk + pr[i], pm[i]);
                V::store(d + k * nr, a);
              }
            } else if (kind == kGather) {
              const typename V::M m = V::mask(0, int(std::min<int64_t>(W, tk.ncur - j0)));
              for (int64_t k = 0; k < ccur; ++k) V::store(d + k * nr, V::gather(src + k * HW, L.idx.data() + j0, m));
            } else {
              const int64_t nl = std::min<int64_t>(W, tk.ncur - j0);
              for (int64_t k = 0; k < ccur; ++k)
                for (int64_t l = 0; l < W; ++l) d[k * nr + l] = l < nl ? x[pix[j0 + l] + toff + (c0 + k) * HW] : T(0);
            }
          }
          const T* Ab = Ap + tk.g * Mp * Kd + Mp * (rs * Cg + c0);
          for (int64_t ic = tk.m0; ic < tk.m1; ic += mc)
            gk.macro(std::min(mc, tk.m1 - ic), tk.ncur, ccur, Ab + ic * ccur, Bp, Ct + ic * nc, nc, 1, 1.0,
                     first ? 0.0 : 1.0, 0, npan);
          first = false;
        }
      }
    for (int64_t i = tk.m0; i < tk.m1; ++i) {
      const T bias = b ? b[tk.g * Kg + i] : T(0);
      const T* ci_ = Ct + i * nc;
      T* yi = y + i * OHW;
      for (int64_t j = 0; j < tk.ncur; ++j) yi[L.yof[size_t(j)]] = ci_[j] + bias;
    }
  });
}

}  // namespace

// Worth it when about a tenth or more of the nominal work is padding (a 3x3 layer with padding
// 1 on images of 14 x 14 or less) and the layer has channels enough that the per-tap GEMMs run
// long k loops and the scatter of y is small beside them. Forward against the implicit GEMM,
// batch 32, 2 threads, Zen 4: 512 ch 7x7 41.5 -> 32.8 ms, 256 ch 4x4 3.27 -> 2.58, 512 ch 2x2
// 3.98 -> 2.65, 128 ch 8x8 3.31 -> 3.05, 256 ch 14x14 37.3 -> 36.7; 64 ch 16x16 (8% padding)
// 3.50 -> 3.87, so it stays on the GEMM. FASTDL_CONV_TAPS=0 turns the path
// off, =1 takes it for every layer it can run (tests and benches compare the two).
bool conv_taps_pays(const Conv2dParams& p) {
  const char* e = std::getenv("FASTDL_CONV_TAPS");  // read per call: a bench flips it in-process
  const int mode = e ? std::atoi(e) : -1;
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups;
  if (mode == 0 || Kg < 1) return false;
  if (mode == 1) return true;
  return Cg >= 32 && Kg >= 16 && p.R * p.S > 1 && valid_share(p) < 0.91;
}

void conv_fwd_taps(const Conv2dParams& p) {
  if (p.dt == DType::f64) fwd_taps<double>(p); else fwd_taps<float>(p);
}

}  // namespace fastdl::cpu::FASTDL_ISA_NS
#endif
