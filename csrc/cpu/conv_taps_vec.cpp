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
// The class's columns (pixels of many images) are packed from x by ColMap (a vector load, a few
// masked loads, or a gather, as each vector's lanes allow), the products go to a C buffer that
// is then scattered to y. The padding skipped more than pays for the scatter when the layer has
// channels enough (conv_taps_pays).
#if defined(FASTDL_ISA_avx2) || defined(FASTDL_ISA_avx512)
#include <cstdlib>
#include <limits>
#include <vector>

#include "core/cpu_info.h"
#include "cpu/conv_vec.h"

namespace fastdl::cpu::FASTDL_ISA_NS {
namespace {
using detail::GemmKernel;
using namespace cv;

// Share of the nominal work (every pixel times every tap) that lands inside the image.
double valid_share(const Conv2dParams& p) {
  const auto span = [](const std::vector<Band>& b) { int64_t v = 0; for (const Band& x : b) v += (x.o1 - x.o0) * (x.t1 - x.t0); return v; };
  const double all = double(p.OH * p.R) * double(p.OW * p.S);
  return all > 0 ? double(span(tap_bands(p.OH, p.H, p.sh, p.ph, p.R, p.dh))) * double(span(tap_bands(p.OW, p.W, p.sw, p.pw, p.S, p.dw))) / all : 1.0;
}

// One class: pixels (n, oh, ow) for every image n, oh in the row band, ow in the column band.
struct Class { Band rows, cols; int64_t count; };

// The classes of a layer (pixels that see at least one tap); fill(band rows, band cols) is
// called on the pixels that see padding only.
template <class F>
std::vector<Class> make_classes(const Conv2dParams& p, const F& fill) {
  const auto rb = tap_bands(p.OH, p.H, p.sh, p.ph, p.R, p.dh), cb = tap_bands(p.OW, p.W, p.sw, p.pw, p.S, p.dw);
  std::vector<Class> classes;
  for (const Band& r : rb)
    for (const Band& c : cb) {
      if (r.t0 < r.t1 && c.t0 < c.t1) classes.push_back({r, c, p.N * (r.o1 - r.o0) * (c.o1 - c.o0)});
      else fill(r, c);
    }
  return classes;
}

// Offsets of pixels [j0, j0 + n) of a class: in x, of tap (0, 0) and channel 0 of group g
// (xo); in y or gy, of channel 0 of group g (yo).
inline void class_offsets(const Conv2dParams& p, const Class& cl, int64_t g, int64_t j0, int64_t n, int64_t* xo, int64_t* yo) {
  const int64_t ch = cl.cols.o1 - cl.cols.o0, hh = cl.rows.o1 - cl.rows.o0, HW = p.H * p.W, OHW = p.OH * p.OW;
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups;
  for (int64_t j = 0; j < n; ++j) {
    const int64_t q = j0 + j, img = q / (hh * ch), oh = cl.rows.o0 + (q / ch) % hh, ow = cl.cols.o0 + q % ch;
    xo[j] = img * p.C * HW + (oh * p.sh - p.ph) * p.W + (ow * p.sw - p.pw) + g * Cg * HW;
    yo[j] = img * p.K * OHW + oh * p.OW + ow + g * Kg * OHW;
  }
}

// Copies rows of a tensor read at a list of element offsets into vector-wide lanes:
// dst row k, lane j = src[off[j] + k * rstride]. build() looks at the offsets once; pack() then
// reads each vector of W lanes in the cheapest way its offsets allow: kLoad (one contiguous
// run), kPieces (up to kMaxPieces runs, one masked load each, merged: a 16-lane gather cost
// more than 3 of them on Zen 4, 10% of a 512-channel 7x7 layer's time), kGather, kScalar
// (offsets too far apart for 32-bit gather indices); lanes past n are zero.
template <class T>
struct ColMap {
  using V = PV<T>;
  static constexpr int W = V::W, kMaxPieces = 8;
  enum : uint8_t { kZero, kLoad, kPieces, kGather, kScalar };
  std::vector<int64_t> off, prel;  // lane offsets; piece starts (lane j of a piece reads off[j0] + prel + j)
  std::vector<int32_t> idx;        // gather offsets from the vector's first lane
  std::vector<uint8_t> plo, phi;   // piece lanes [lo, hi)
  std::vector<uint8_t> kind, np;
  int64_t n = 0, nvec = 0;
  explicit ColMap(int64_t cap) {
    const int64_t nv = ceil_div(cap, W);
    off.resize(size_t(nv * W)); idx.resize(size_t(nv * W));
    prel.resize(size_t(nv * kMaxPieces)); plo.resize(size_t(nv * kMaxPieces)); phi.resize(size_t(nv * kMaxPieces));
    kind.resize(size_t(nv)); np.resize(size_t(nv));
  }
  // off[0, n) set by the caller; vectors up to nvec_ (lanes past n zero)
  void build(int64_t n_, int64_t nvec_) {
    n = n_; nvec = nvec_;
    for (int64_t v = 0; v < nvec; ++v) {
      const int64_t j0 = v * W, nl = std::clamp<int64_t>(n - j0, 0, W);
      if (nl == 0) { kind[size_t(v)] = kZero; continue; }
      bool fits = true;
      int npc = 0;
      for (int64_t l = 0; l < nl; ++l) {
        const int64_t d = off[size_t(j0 + l)] - off[size_t(j0)];
        fits &= d >= std::numeric_limits<int32_t>::min() / 2 && d <= std::numeric_limits<int32_t>::max() / 2;
        idx[size_t(j0 + l)] = int32_t(d);
        if (l > 0 && off[size_t(j0 + l)] == off[size_t(j0 + l - 1)] + 1) continue;  // extends the current piece
        int64_t e = l + 1;
        while (e < nl && off[size_t(j0 + e)] == off[size_t(j0 + e - 1)] + 1) ++e;
        if (npc < kMaxPieces) {
          prel[size_t(v * kMaxPieces + npc)] = d - l;
          plo[size_t(v * kMaxPieces + npc)] = uint8_t(l);
          phi[size_t(v * kMaxPieces + npc)] = uint8_t(e);
        }
        ++npc;
      }
      for (int64_t l = nl; l < W; ++l) idx[size_t(j0 + l)] = 0;
      np[size_t(v)] = uint8_t(std::min(npc, kMaxPieces));
      kind[size_t(v)] = npc == 1 && nl == W ? kLoad : npc <= kMaxPieces ? kPieces : fits ? kGather : kScalar;
    }
  }
  // rows [0, rows) of src (rstride apart) into panels nrw lanes wide: vector v's row k at
  // dst + (v / (nrw / W)) nrw rows + (v % (nrw / W)) W + k nrw. With nrw a whole block's width,
  // one row-major matrix (rows x nrw).
  void pack(const T* src, int64_t rows, int64_t rstride, int64_t nrw, T* dst) const {
    const int64_t vpp = nrw / W;
    for (int64_t v = 0; v < nvec; ++v) {
      T* d = dst + (v / vpp) * nrw * rows + (v % vpp) * W;
      const int64_t j0 = v * W;
      const uint8_t kd = kind[size_t(v)];
      if (kd == kZero) {
        for (int64_t k = 0; k < rows; ++k) V::store(d + k * nrw, V::zero());
        continue;
      }
      const T* s = src + off[size_t(j0)];
      if (kd == kLoad) {
        for (int64_t k = 0; k < rows; ++k) V::store(d + k * nrw, V::load(s + k * rstride));
      } else if (kd == kPieces) {
        const int64_t* pr = prel.data() + v * kMaxPieces;
        const int npc = np[size_t(v)];
        typename V::M m[kMaxPieces];
        for (int i = 0; i < npc; ++i) m[i] = V::mask(plo[size_t(v * kMaxPieces + i)], phi[size_t(v * kMaxPieces + i)]);
        for (int64_t k = 0; k < rows; ++k) {
          const T* sk = s + k * rstride;
          typename V::R a = V::loadm(sk + pr[0], m[0]);
          for (int i = 1; i < npc; ++i) a = V::merge(a, sk + pr[i], m[i]);
          V::store(d + k * nrw, a);
        }
      } else if (kd == kGather) {
        const typename V::M m = V::mask(0, int(std::min<int64_t>(W, n - j0)));
        for (int64_t k = 0; k < rows; ++k) V::store(d + k * nrw, V::gather(s + k * rstride, idx.data() + j0, m));
      } else {
        const int64_t nl = std::min<int64_t>(W, n - j0);
        for (int64_t k = 0; k < rows; ++k)
          for (int64_t l = 0; l < W; ++l) d[k * nrw + l] = l < nl ? src[off[size_t(j0 + l)] + k * rstride] : T(0);
      }
    }
  }
};
// rows runs of n elements, src rows sstride apart, to dst rows n apart (one contiguous block),
// a masked vector load and store per vector of a run.
template <class T> void copy_runs(const T* src, int64_t sstride, int64_t rows, int64_t n, T* dst) {
  using V = PV<T>;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; j += V::W) {
      const typename V::M m = V::mask(0, int(std::min<int64_t>(V::W, n - j)));
      V::storem(dst + r * n + j, V::loadm(src + r * sstride + j, m), m);
    }
}

// A task: columns [j0, j0 + ncur) of class c's pixel list, output channels [m0, m1) of group g.
struct Task { int64_t g, c, j0, ncur, m0, m1, work; };

template <class T>
void fwd_taps(const Conv2dParams& p, bool flipped) {
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
  // (Mp x ccur) at Ap + g Mp Kd + Mp (rs Cg + c0); one task per micro-panel of mr rows.
  // Plain: the panel's rows of w are packed as the (c, r, s)-ordered matrix they are (a
  // contiguous read), then its runs of mr are dealt to the blocks. Flipped (an input gradient):
  // row i, column c of tap rs is w[c][i][RS - 1 - rs]; each c's span of the panel's rows is one
  // contiguous read dealt to every tap.
  Scratch ap(size_t(G * Mp * Kd) * sizeof(T));
  T* Ap = ap.as<T>();
  const int64_t npanel = ceil_div(Kg, mr);
  {
    const int nt = threads_for(G * npanel / 2);
    Scratch tmp(size_t(mr * (flipped ? RS : Kd)) * sizeof(T) * size_t(nt));
    run_tasks(G * npanel, nt, [&](int64_t t, int lane) {
      const int64_t g = t / npanel, i0 = (t % npanel) * mr, m = std::min<int64_t>(mr, Kg - i0);
      T* const Ag = Ap + g * Mp * Kd;
      if (flipped) {
        T* tp = tmp.as<T>() + int64_t(lane) * mr * RS;
        for (int64_t c = 0; c < Cg; ++c) {
          // tp[rs' mr + i] = w[g Cg + c][i0 + i][rs'] (rows past m zero), dealt to tap RS - 1 - rs'
          gk.pack_a(w + ((g * Cg + c) * Kg + i0) * RS, RS, 1, m, RS, tp);
          const int64_t c0 = c / kc * kc, ccur = std::min(kc, Cg - c0);
          for (int64_t rs = 0; rs < RS; ++rs)
            copy_runs(tp + (RS - 1 - rs) * mr, 0, 1, mr, Ag + Mp * (rs * Cg + c0) + i0 * ccur + (c - c0) * mr);
        }
        return;
      }
      T* tp = tmp.as<T>() + int64_t(lane) * mr * Kd;
      gk.pack_a(w + (g * Kg + i0) * Kd, Kd, 1, m, Kd, tp);  // tp[(c RS + rs) mr + i]
      for (int64_t rs = 0; rs < RS; ++rs)
        for (int64_t c0 = 0; c0 < Cg; c0 += kc) {
          const int64_t ccur = std::min(kc, Cg - c0);
          copy_runs(tp + (c0 * RS + rs) * mr, RS * mr, ccur, mr, Ag + Mp * (rs * Cg + c0) + i0 * ccur);
        }
    });
  }

  // Classes and tasks. Pixels that see padding only get the bias.
  const std::vector<Class> classes = make_classes(p, [&](const Band& r, const Band& c) {
    for (int64_t n = 0; n < p.N; ++n)
      for (int64_t k = 0; k < p.K; ++k)
        for (int64_t oh = r.o0; oh < r.o1; ++oh)
          std::fill(y + (n * p.K + k) * OHW + oh * p.OW + c.o0, y + (n * p.K + k) * OHW + oh * p.OW + c.o1, b ? b[k] : T(0));
  });
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
  const int64_t ncp = round_up(nc, nr);
  const size_t bbytes = size_t(round_up(kc * ncp * int64_t(sizeof(T)), 64)), cbytes = size_t(round_up(Kg * nc * int64_t(sizeof(T)), 64));
  Scratch scratch((bbytes + cbytes) * size_t(nt));
  std::vector<ColMap<T>> maps(static_cast<size_t>(nt), ColMap<T>(ncp));
  std::vector<std::vector<int64_t>> yofs(static_cast<size_t>(nt), std::vector<int64_t>(size_t(ncp)));
  run_tasks(int64_t(tasks.size()), nt, [&](int64_t ti, int lane) {
    const Task& tk = tasks[size_t(ti)];
    const Class& cl = classes[size_t(tk.c)];
    char* base = scratch.as<char>() + (bbytes + cbytes) * size_t(lane);
    T* Bp = reinterpret_cast<T*>(base);
    T* Ct = reinterpret_cast<T*>(base + bbytes);
    ColMap<T>& cm = maps[size_t(lane)];
    int64_t* yof = yofs[size_t(lane)].data();
    class_offsets(p, cl, tk.g, tk.j0, tk.ncur, cm.off.data(), yof);
    const int64_t npan = ceil_div(tk.ncur, nr);
    cm.build(tk.ncur, npan * (nr / W));
    bool first = true;
    for (int64_t r = cl.rows.t0; r < cl.rows.t1; ++r)
      for (int64_t s = cl.cols.t0; s < cl.cols.t1; ++s) {
        const int64_t rs = r * p.S + s, toff = r * p.dh * p.W + s * p.dw;
        for (int64_t c0 = 0; c0 < Cg; c0 += kc) {
          const int64_t ccur = std::min(kc, Cg - c0);
          cm.pack(x + toff + c0 * HW, ccur, HW, nr, Bp);  // B panels: row k, lane j = x[off[j] + toff + (c0 + k) HW]
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
      for (int64_t j = 0; j < tk.ncur; ++j) yi[yof[j]] = ci_[j] + bias;
    }
  });
}

// The weight gradient, padding skipped the same way:
//   gW[g][:, :, r, s] = gy[g][:, pixels that see tap (r, s)] @ x_rs[g][:, those pixels]^T
// the pixels being the classes whose bands hold the tap. A task owns one (group, tap, channel
// range) of gW and sums over those classes in blocks of kc pixels: A = gy's rows at the block's
// pixels (Kg x kc), B = the shifted input's rows (channels x kc, transposed by the B pack), C a
// dense Kg x channels buffer that is written to gW's strided columns once at the end.
template <class T>
void bwd_weight_taps(const Conv2dParams& p) {
  constexpr int W = PV<T>::W;
  const GemmKernel& gk = kernel<T>();
  const int nr = gk.nr, mr = gk.mr;
  const int64_t G = p.groups, Cg = p.C / G, Kg = p.K / G, RS = p.R * p.S, Kd = Cg * RS;
  const int64_t HW = p.H * p.W, OHW = p.OH * p.OW, Mp = round_up(Kg, mr);
  const CpuInfo& ci = cpu_info();
  const int64_t kc = round_up(std::max<int64_t>(32, int64_t(ci.l1d) / 2 / (nr * int64_t(sizeof(T)))), W);  // pixels per block
  const int64_t mc = std::max<int64_t>(mr, int64_t(ci.l2) / 2 / (kc * int64_t(sizeof(T))) / mr * mr);
  const T* x = static_cast<const T*>(p.x);
  const T* gy = static_cast<const T*>(p.gy);
  T* gw = static_cast<T*>(p.gw);
  const std::vector<Class> classes = make_classes(p, [](const Band&, const Band&) {});
  // Tasks: (group, tap, channel range), at least two per thread where the channels allow.
  const int nthreads = get_num_threads();
  const int64_t cparts = std::max<int64_t>(1, std::min(ceil_div(Cg, nr), ceil_div(2 * nthreads, G * RS)));
  const int64_t cpart = round_up(ceil_div(Cg, cparts), nr);
  struct WTask { int64_t g, rs, c0, c1, work; };
  std::vector<WTask> tasks;
  for (int64_t g = 0; g < G; ++g)
    for (int64_t rs = 0; rs < RS; ++rs) {
      const int64_t r = rs / p.S, sc = rs % p.S;
      int64_t pixels = 0;
      for (const Class& cl : classes)
        if (r >= cl.rows.t0 && r < cl.rows.t1 && sc >= cl.cols.t0 && sc < cl.cols.t1) pixels += cl.count;
      for (int64_t c0 = 0; c0 < Cg; c0 += cpart) tasks.push_back({g, rs, c0, std::min(Cg, c0 + cpart), pixels * std::min(cpart, Cg - c0)});
    }
  std::stable_sort(tasks.begin(), tasks.end(), [](const WTask& a, const WTask& c) { return a.work > c.work; });
  const int nt = threads_for(int64_t(tasks.size()));
  const size_t rbytes = size_t(round_up(std::max(Kg, cpart) * kc * int64_t(sizeof(T)), 64));
  const size_t abytes = size_t(round_up(Mp * kc * int64_t(sizeof(T)), 64)), bbytes = size_t(round_up(cpart * kc * int64_t(sizeof(T)), 64));
  const size_t cbytes = size_t(round_up(Kg * cpart * int64_t(sizeof(T)), 64)), per = rbytes + abytes + bbytes + cbytes;
  Scratch scratch(per * size_t(nt));
  std::vector<ColMap<T>> xmaps(static_cast<size_t>(nt), ColMap<T>(kc)), ymaps(static_cast<size_t>(nt), ColMap<T>(kc));
  run_tasks(int64_t(tasks.size()), nt, [&](int64_t ti, int lane) {
    const WTask& tk = tasks[size_t(ti)];
    char* base = scratch.as<char>() + per * size_t(lane);
    T* rows = reinterpret_cast<T*>(base);
    T* Ap = reinterpret_cast<T*>(base + rbytes);
    T* Bp = reinterpret_cast<T*>(base + rbytes + abytes);
    T* Ct = reinterpret_cast<T*>(base + rbytes + abytes + bbytes);
    ColMap<T>&cx = xmaps[size_t(lane)], &cy = ymaps[size_t(lane)];
    const int64_t r = tk.rs / p.S, sc = tk.rs % p.S, toff = r * p.dh * p.W + sc * p.dw, ccur = tk.c1 - tk.c0;
    bool first = true;
    for (const Class& cl : classes) {
      if (r < cl.rows.t0 || r >= cl.rows.t1 || sc < cl.cols.t0 || sc >= cl.cols.t1) continue;
      for (int64_t j0 = 0; j0 < cl.count; j0 += kc) {
        const int64_t kcur = std::min(kc, cl.count - j0);
        class_offsets(p, cl, tk.g, j0, kcur, cx.off.data(), cy.off.data());
        cx.build(kcur, kc / W);
        cy.build(kcur, kc / W);
        cy.pack(gy, Kg, OHW, kc, rows);  // rows[m][j] = gy[off[j] + m OHW]
        gk.pack_a(rows, kc, 1, Kg, kcur, Ap);
        cx.pack(x + toff + tk.c0 * HW, ccur, HW, kc, rows);  // rows[c][j] = x[off[j] + toff + (c0 + c) HW]
        gk.pack_b(rows, 1, kc, kcur, ccur, Bp);
        for (int64_t ic = 0; ic < Kg; ic += mc)
          gk.macro(std::min(mc, Kg - ic), ccur, kcur, Ap + ic * kcur, Bp, Ct + ic * ccur, ccur, 1, 1.0, first ? 0.0 : 1.0,
                   0, ceil_div(ccur, nr));
        first = false;
      }
    }
    if (first) std::fill(Ct, Ct + Kg * ccur, T(0));  // the tap sees padding only
    for (int64_t m = 0; m < Kg; ++m) {
      T* g = gw + (tk.g * Kg + m) * Kd + tk.c0 * RS + tk.rs;
      const T* c = Ct + m * ccur;
      for (int64_t j = 0; j < ccur; ++j) g[j * RS] = c[j];
    }
  });
  if (p.gb) conv_bias_grad(p.dt, p.gy, p.gb, p.N, p.K, OHW);
}

}  // namespace

// Worth it when about a tenth or more of the nominal work is padding (a 3x3 layer with padding
// 1 on images of 14 x 14 or less) and the layer has channels enough that the per-tap GEMMs run
// long k loops and the scatter of y is small beside them. Forward against the implicit GEMM,
// batch 32, 2 threads, Zen 4: 512 ch 7x7 41.5 -> 32.8 ms, 256 ch 4x4 3.27 -> 2.58, 512 ch 2x2
// 3.98 -> 2.65, 128 ch 8x8 3.31 -> 3.05, 256 ch 14x14 37.3 -> 36.7; 64 ch 16x16 (8% padding)
// 3.50 -> 3.87, so it stays on the GEMM. The weight gradient gains less (the implicit GEMM's
// is already level with PyTorch's): 256 ch 4x4 3.84 -> 3.40 ms, 512 ch 2x2 4.81 -> 4.20, but
// 128 ch 8x8 3.74 -> 3.90 and 512 ch 7x7 37.7 -> 39.7, so it asks for less than 0.8 (callers
// pass max_share). FASTDL_CONV_TAPS=0 turns the path off, =1 takes it for every layer it can
// run (tests and benches compare the two).
bool conv_taps_pays(const Conv2dParams& p, double max_share) {
  const char* e = std::getenv("FASTDL_CONV_TAPS");  // read per call: a bench flips it in-process
  const int mode = e ? std::atoi(e) : -1;
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups;
  if (mode == 0 || Kg < 1) return false;
  if (mode == 1) return true;
  return Cg >= 32 && Kg >= 16 && p.R * p.S > 1 && valid_share(p) < max_share;
}

void conv_fwd_taps(const Conv2dParams& p, bool flipped) {
  if (p.dt == DType::f64) fwd_taps<double>(p, flipped); else fwd_taps<float>(p, flipped);
}
void conv_bwd_weight_taps(const Conv2dParams& p) {
  if (p.dt == DType::f64) bwd_weight_taps<double>(p); else bwd_weight_taps<float>(p);
}

}  // namespace fastdl::cpu::FASTDL_ISA_NS
#endif
