// CPU GEMM driver: the scalar reference, ISA dispatch, cache blocking and threading.
// Structure (Goto & van de Geijn 2008; BLIS, Van Zee & van de Geijn 2015):
//   for jc in N by NC:            B panel KC x NC packed once, lives in L3 (shared by threads)
//     for pc in K by KC:
//       pack B(pc, jc)
//       for ic in M by MC:        A block MC x KC packed per thread, lives in L2
//         for jr in NC by NR:     B micro-panel KC x NR stays in L1 across the ir loop
//           for ir in MC by MR:   micro-kernel: MR x NR tile of C in registers
// Threads split either the M loop (ic: each thread packs its own A, B is packed jointly and
// shared; tall problems) or the N loop (each thread owns whole column ranges; see gemm_one).
#include "cpu/gemm.h"

#include <algorithm>
#include <atomic>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/allocator.h"
#include "core/cpu_info.h"
#include "core/parallel.h"

#include <sys/stat.h>
#include <unistd.h>

namespace fastdl::cpu {

namespace ref { bool gemm_get_kernel(DType, detail::GemmKernel*); bool gemm_get_bf16_dot_kernel(detail::GemmKernel*); }
namespace amx { bool usable(); bool get_kernel(detail::GemmKernel*, bool hardware); }
#ifndef FASTDL_NO_X86_ISA
namespace avx2 { bool gemm_get_kernel(DType, detail::GemmKernel*); bool gemm_get_bf16_dot_kernel(detail::GemmKernel*); }
namespace avx512 { bool gemm_get_kernel(DType, detail::GemmKernel*); bool gemm_get_bf16_dot_kernel(detail::GemmKernel*); }
#endif

namespace {
using detail::GemmKernel;

// ---- scalar reference ---------------------------------------------------------------------

template <class T> double ld(const T* p, int64_t i) { return double(p[i]); }
template <> double ld<uint16_t>(const uint16_t* p, int64_t i) { return double(bf16_to_f32(p[i])); }
template <class T> void st(T* p, int64_t i, double v) { p[i] = T(v); }
template <> void st<uint16_t>(uint16_t* p, int64_t i, double v) { p[i] = f32_to_bf16(float(v)); }

template <class T>
void gemm_ref_t(const GemmParams& p) {
  for (int64_t bb = 0; bb < p.batch * p.batch2; ++bb) {
    const int64_t o = bb / p.batch, b = bb % p.batch;
    const T* A = static_cast<const T*>(p.A) + o * p.sa_b2 + b * p.sa_b;
    const T* B = static_cast<const T*>(p.B) + o * p.sb_b2 + b * p.sb_b;
    T* C = static_cast<T*>(p.C) + o * p.sc_b2 + b * p.sc_b;
    for (int64_t i = 0; i < p.M; ++i)
      for (int64_t j = 0; j < p.N; ++j) {
        double acc = 0;
        for (int64_t k = 0; k < p.K; ++k) acc += ld(A, i * p.sa_m + k * p.sa_k) * ld(B, k * p.sb_k + j * p.sb_n);
        const int64_t c = i * p.sc_m + j * p.sc_n;
        st(C, c, p.alpha * acc + (p.beta == 0 ? 0.0 : p.beta * ld(C, c)));
      }
  }
}

// ---- kernel selection -----------------------------------------------------------------------

// bf16 has up to three kernels: widening to f32 FMAs (every ISA), VDPBF16PS pair dots
// (AVX512-BF16) and AMX tiles (cpu/gemm_amx.cpp). "auto" takes AMX where the CPU grants it;
// otherwise, where the CPU has pair dots, the faster of dots and widening as measured once per
// machine (bf16_dot_wins, below: a pair dot does twice the work per instruction, but on a core that
// splits 512-bit operations, or runs VDPBF16PS on one port, widening can win); the
// others stay selectable (FASTDL_GEMM_BF16=widen|dot|amx, or gemm_set_bf16_path at run time) so
// that tests and benchmarks reach every path on the machine at hand.
enum class Bf16Path : int { automatic = 0, widen = 1, dot = 2, amx = 3, amx_emulated = 4 };

// The AMX unit against the reference once, on a problem with partial tiles in M, N and K and
// both B layouts, before any user data goes through it: exact small operands, so the only error
// is the final rounding to bf16.
bool amx_checks_out(const GemmKernel& k) {
  const int64_t M = 45, N = 50, K = 77, kcp = (K + k.kpack - 1) / k.kpack * k.kpack;
  std::vector<uint16_t> A(size_t(M * K)), B(size_t(K * N)), Bt(size_t(K * N)), C(size_t(M * N));
  auto val = [](int64_t i) { return f32_to_bf16(float((i * 37 + 11) % 17 - 8) / 8.0f); };
  for (int64_t i = 0; i < M * K; ++i) A[size_t(i)] = val(i);
  for (int64_t i = 0; i < K * N; ++i) B[size_t(i)] = val(i * 5 + 3);
  for (int64_t r = 0; r < K; ++r)
    for (int64_t c = 0; c < N; ++c) Bt[size_t(c * K + r)] = B[size_t(r * N + c)];
  std::vector<uint16_t> Ap(size_t((M + k.mr - 1) / k.mr * k.mr * kcp)), Bp(size_t((N + k.nr - 1) / k.nr * k.nr * kcp));
  k.pack_a(A.data(), K, 1, M, K, Ap.data());
  for (int layout = 0; layout < 2; ++layout) {
    if (layout == 0) k.pack_b(B.data(), N, 1, K, N, Bp.data());
    else k.pack_b(Bt.data(), 1, K, K, N, Bp.data());
    k.macro(M, N, K, Ap.data(), Bp.data(), C.data(), N, 1, 1.0, 0.0, 0, (N + k.nr - 1) / k.nr);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double ref = 0;
        for (int64_t q = 0; q < K; ++q) ref += double(bf16_to_f32(A[size_t(i * K + q)])) * bf16_to_f32(B[size_t(q * N + j)]);
        const double got = bf16_to_f32(C[size_t(i * N + j)]);
        if (!(std::abs(got - ref) <= std::abs(ref) / 256 + 1e-6)) return false;
      }
  }
  return true;
}

bool bf16_dot_wins(int isa, const GemmKernel& dot, const GemmKernel& widen);  // measured, below

struct KernelTable {
  GemmKernel k[3][3];  // [isa][f32, f64, bf16 widened]
  GemmKernel dot[3];   // [isa] bf16 pair dots, where has_dot
  bool has_dot[3] = {false, false, false};
  GemmKernel amx, amx_emulated;
  bool has_amx = false;
  KernelTable() {
    const bool bf16dot = cpu_info().avx512bf16;
    auto fill = [&](int isa, auto get, auto getdot) {
      get(DType::f32, &k[isa][0]);
      get(DType::f64, &k[isa][1]);
      get(DType::bf16, &k[isa][2]);
      has_dot[isa] = bf16dot && getdot(&dot[isa]);
    };
    fill(0, ref::gemm_get_kernel, ref::gemm_get_bf16_dot_kernel);
#ifndef FASTDL_NO_X86_ISA
    fill(1, avx2::gemm_get_kernel, avx2::gemm_get_bf16_dot_kernel);
    fill(2, avx512::gemm_get_kernel, avx512::gemm_get_bf16_dot_kernel);
#else
    for (int i = 1; i < 3; ++i) for (int d = 0; d < 3; ++d) k[i][d] = k[0][d];
#endif
    amx::get_kernel(&amx_emulated, false);
    has_amx = amx::get_kernel(&amx, true) && amx_checks_out(amx);
    if (amx::usable() && !has_amx)
      std::fprintf(stderr, "fastdl: the AMX bf16 GEMM failed its self-check on this CPU; using %s instead\n",
                   has_dot[2] ? dot[2].name : k[2][2].name);
  }
  // The bf16 kernel for `path` under ISA slot isa; nullptr when the CPU lacks it.
  const GemmKernel* bf16(int isa, Bf16Path path) const {
    switch (path) {
      case Bf16Path::widen: return &k[isa][2];
      case Bf16Path::dot: return has_dot[isa] ? &dot[isa] : nullptr;
      case Bf16Path::amx: return has_amx && isa == 2 ? &amx : nullptr;
      case Bf16Path::amx_emulated: return &amx_emulated;
      default:
        if (has_amx && isa == 2) return &amx;
        return has_dot[isa] && bf16_dot_wins(isa, dot[isa], k[isa][2]) ? &dot[isa] : &k[isa][2];
    }
  }
};
const KernelTable& kernel_table() { static const KernelTable t; return t; }

Bf16Path parse_bf16_path(const char* s) {
  if (!s || !*s || !std::strcmp(s, "auto")) return Bf16Path::automatic;
  if (!std::strcmp(s, "widen")) return Bf16Path::widen;
  if (!std::strcmp(s, "dot")) return Bf16Path::dot;
  if (!std::strcmp(s, "amx")) return Bf16Path::amx;
  if (!std::strcmp(s, "amx-emulated")) return Bf16Path::amx_emulated;
  return Bf16Path(-1);
}
std::atomic<int> g_bf16_path{[] {
  const Bf16Path p = parse_bf16_path(std::getenv("FASTDL_GEMM_BF16"));
  return int(p) < 0 ? 0 : int(p);
}()};

int dtype_slot(DType t) { return t == DType::f64 ? 1 : t == DType::bf16 ? 2 : 0; }

// ---- blocking (after Low et al. 2016, "Analytical modeling is enough") ----------------------

// Tuning overrides FASTDL_GEMM_MC/KC/NC/SPLIT/SPAN (benchmarks and tests only), read once.
struct EnvBlocking {
  int64_t mc = 0, kc = 0, nc = 0, span = 0;  // span: kc blocks per span of the short-M path
  char split = 0;  // FASTDL_GEMM_SPLIT=m|n|k forces the threaded loop; a: M or N as chosen, never K
  EnvBlocking() {
    if (const char* e = std::getenv("FASTDL_GEMM_SPLIT")) split = e[0];
    auto get = [](const char* n) { const char* e = std::getenv(n); return e ? int64_t(std::atoll(e)) : int64_t(0); };
    mc = get("FASTDL_GEMM_MC"); kc = get("FASTDL_GEMM_KC"); nc = get("FASTDL_GEMM_NC");
    span = get("FASTDL_GEMM_SPAN");
  }
};
const EnvBlocking& env_blocking() { static const EnvBlocking e; return e; }
int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
int64_t ceil_div(int64_t x, int64_t m) { return (x + m - 1) / m; }
// Split n into ceil(n/target) near-equal blocks, each a multiple of unit (no tiny tail).
int64_t balance(int64_t n, int64_t target, int64_t unit) {
  if (n <= target) return n;
  return round_up(ceil_div(n, ceil_div(n, target)), unit);
}

struct Blocking { int64_t mc, kc, nc; };

// The model of Low et al. puts the B micro-panel (kc x nr) in L1 and the A block (mc x kc)
// in L2. Measured on Zen 5 that choice (kc = 216 for f32 14x32) loses ~10%: the cost that
// matters is re-reading and re-writing the C tile once per kc block (C lives in L3/DRAM),
// while L2 easily feeds the kernel ((mr + nr) * elem bytes per mr*nr/(2W) cycles, ~13 B/cycle
// of the ~64 available). So we apply the same analysis one level up: the B micro-panel and
// the A block share L2, kc is as large as that allows, and mc is a few micro-panels:
//   L2 budget  = 3/4 of L2 (the rest for C tiles and the stream of the next B micro-panel)
//   kc         = budget / ((rows + nr) * elem)   rows: the A block's rows it must leave room for
//   mc         = budget / (kc * elem) - nr, a multiple of mr   (at least kMcPanels * mr)
//   nc         = half the L3 / (kc * elem): the shared B panel (kc x nc) stays in L3.
// Every block size is then balanced over its dimension so no block is a tiny remainder.
// rows is kMinMcRows (or all of M when M is shorter), at least kMcPanels micro-panels: every A
// block streams the whole B panel past it from L3 or DRAM, and each B element then feeds mc
// multiply-adds; at mc = 56 that is ~7 GB/s a core at 200 GFLOP/s, more than a loaded memory
// system gives two cores (Xeon, Sapphire Rapids class, 2 threads: 128 x 4096 x 4096 X @ W at
// kc 4096 / mc 56 ran 0.73x PyTorch, 0.92x at kc 2048 / mc 154; 2048^3 keeps kc 2048, mc 154).
constexpr int64_t kMcPanels = 4, kMinMcRows = 128;

int64_t tuned_kc(const GemmKernel& k);  // the measured kc for k's kind, 0 for the model's (below)

Blocking choose_blocking(const GemmKernel& k, int64_t M, int64_t N, int64_t K) {
  const CpuInfo& ci = cpu_info();
  const int64_t e = k.elem * k.kpack;  // bytes per (row, k unit) of a packed panel
  const int64_t budget = int64_t(ci.l2) * 3 / 4;
  const int64_t rows = std::max(kMcPanels * k.mr, std::min(round_up(M, k.mr), round_up(kMinMcRows, k.mr)));
  int64_t kc = budget / ((rows + k.nr) * e) * k.kpack;
  kc = std::max<int64_t>(64, kc / 64 * 64);
  if (int64_t v = tuned_kc(k)) kc = v;
  if (int64_t v = env_blocking().kc) kc = v;
  if (k.full_k) kc = K;  // low-precision C: one K block, partial sums stay in f32 registers
  kc = std::max<int64_t>(1, std::min(kc, K));
  if (!k.full_k) kc = balance(K, kc, std::min<int64_t>(8, K));
  const int64_t kcp = round_up(kc, k.kpack);

  int64_t mc = (budget / (kcp * k.elem) - k.nr) / k.mr * k.mr;
  if (int64_t v = env_blocking().mc) mc = v / k.mr * k.mr;
  mc = std::max<int64_t>(k.full_k ? k.mr : kMcPanels * k.mr, mc);

  int64_t nc = (int64_t(ci.l3) / 2 / (kcp * k.elem)) / k.nr * k.nr;
  if (int64_t v = env_blocking().nc) nc = v / k.nr * k.nr;
  nc = std::max<int64_t>(k.nr, nc);
  nc = balance(N, nc, k.nr);
  return {mc, kc, nc};
}

// ---- the blocked loops for one matrix ------------------------------------------------------

struct Problem {
  const GemmKernel* k;
  int64_t M, N, K;
  const char* A; int64_t sa_m, sa_k;
  const char* B; int64_t sb_k, sb_n;
  char* C; int64_t sc_m, sc_n;
  double alpha, beta;
  size_t esz;  // element size of A, B, C
  // C[i][j] += bias[j] (C's type, contiguous), added by the blocked loops as each C block is
  // first written (beta is 0 then): the block is in cache when the kernel accumulates onto it.
  const char* bias = nullptr;
};

// C[0:rows, 0:cols] = bias[0:cols] (element size esz, C rows sc_m apart, columns sc_n).
void fill_bias(char* C, int64_t sc_m, int64_t sc_n, int64_t rows, int64_t cols, const char* bias, size_t esz) {
  for (int64_t i = 0; i < rows; ++i) {
    char* c = C + i * sc_m * int64_t(esz);
    if (sc_n == 1) std::memcpy(c, bias, size_t(cols) * esz);
    else
      for (int64_t j = 0; j < cols; ++j) std::memcpy(c + j * sc_n * int64_t(esz), bias + j * int64_t(esz), esz);
  }
}
// The unfused form, for the paths that write C in one go (tiny, narrow, split-K): the bias
// first, then the product accumulates onto it.
Problem with_bias_filled(Problem q) {
  if (q.bias) {
    fill_bias(q.C, q.sc_m, q.sc_n, q.M, q.N, q.bias, q.esz);
    q.beta = 1.0;
    q.bias = nullptr;
  }
  return q;
}

struct Split { int64_t b, e; };
Split split(int64_t n, int t, int nt) {  // contiguous near-equal share of [0, n) for thread t
  return {n * t / nt, n * (t + 1) / nt};
}

// Member t of nt (alone when nt == 1). split_m: threads own their rows and, given a team's bar,
// share the packed B panel (bbuf, packed jointly, barriers around it; without, each packs the
// whole panel into its own bbuf); else each thread owns columns.
void run_blocked(const Problem& p, const Blocking& bl, bool split_m, int t, int nt, char* bbuf,
                 char* abuf, TeamBarrier* bar = nullptr) {
  const GemmKernel& k = *p.k;
  const int64_t mr = k.mr, nr = k.nr;
  int64_t m0 = 0, m1 = p.M, n0 = 0, n1 = p.N;
  if (nt > 1 && split_m) {  // exact rows: a partial last panel costs only its own rows
    Split s = split(p.M, t, nt);
    m0 = s.b; m1 = s.e;
  } else if (nt > 1) {
    Split s = split(ceil_div(p.N, nr), t, nt);
    n0 = s.b * nr; n1 = std::min(p.N, s.e * nr);
  }
  const int64_t mc = balance(std::max<int64_t>(1, m1 - m0), bl.mc, mr);
  const int64_t nspan = split_m ? p.N : n1 - n0;
  for (int64_t jc = 0; jc < nspan; jc += bl.nc) {
    const int64_t ncur = std::min(bl.nc, nspan - jc);
    const int64_t npan = ceil_div(ncur, nr);
    const int64_t col = (split_m ? 0 : n0) + jc;
    for (int64_t pc = 0; pc < p.K; pc += bl.kc) {
      const int64_t kcur = std::min(bl.kc, p.K - pc);
      const int64_t kcp = round_up(kcur, k.kpack);
      const double beta = pc == 0 && !p.bias ? p.beta : 1.0;
      // Pack B: jointly (each thread a share of the micro-panels) when shared.
      Split bs = split_m && bar ? split(npan, t, nt) : Split{0, npan};
      if (bs.b < bs.e)
        k.pack_b(p.B + (pc * p.sb_k + (col + bs.b * nr) * p.sb_n) * p.esz, p.sb_k, p.sb_n, kcur,
                 std::min(ncur - bs.b * nr, (bs.e - bs.b) * nr), bbuf + bs.b * nr * kcp * k.elem);
      if (split_m && bar) bar->wait();
      for (int64_t ic = m0; ic < m1; ic += mc) {
        const int64_t mcur = std::min(mc, m1 - ic);
        k.pack_a(p.A + (ic * p.sa_m + pc * p.sa_k) * p.esz, p.sa_m, p.sa_k, mcur, kcur, abuf);
        char* cblk = p.C + (ic * p.sc_m + col * p.sc_n) * p.esz;
        if (pc == 0 && p.bias) fill_bias(cblk, p.sc_m, p.sc_n, mcur, ncur, p.bias + col * p.esz, p.esz);
        k.macro(mcur, ncur, kcur, abuf, bbuf, cblk, p.sc_m, p.sc_n, p.alpha, beta, 0, npan);
      }
      if (split_m && bar) bar->wait();
    }
  }
}

// Short M (one A block, M <= mc) split over N: column chunks are claimed dynamically, and a
// chunk runs every kc block of a span of K in order on the thread that claimed it, so no thread
// waits for another inside a span. Each thread packs the span's A blocks once (all of A unless K
// is long or the threads many), after it has claimed its first chunk: a thread that starts late
// finds the chunks taken and packs nothing. Spans meet only where packed A would outgrow
// kSpanBytes: a chunk's next span waits for that chunk's previous one (done[] flags), wherever it
// ran, so C accumulates in k order. A pool worker can start hundreds of microseconds late (woken
// after idle on a VM: core/parallel.cpp), and a barrier per kc block (later a done flag per chunk
// and kc block) held the caller until it came. Native gemm, 2 threads, warm, against the flag per
// kc block: level (128 x 784 x 256, 200 x 2048 x 2048), 128 x 4096 x 4096 164-165 -> 166-168 GF/s.
constexpr int64_t kSpanBytes = int64_t(32) << 20;  // the threads' packed A spans together, at most

struct ChunkedPlan {
  int64_t chunk_pan, nchunks, kc, nkc, span;  // span: kc blocks per span
  int64_t ablk;                               // bytes of one packed A block (M rows x kc)
  int64_t nspans() const { return ceil_div(nkc, span); }
};

void run_chunked(const Problem& p, const ChunkedPlan& cp, std::atomic<int64_t>* next, std::atomic<int8_t>* done,
                 char* bbuf, char* abuf) {
  const GemmKernel& k = *p.k;
  const int64_t nr = k.nr, chunk = cp.chunk_pan * nr, ablk = cp.ablk;
  for (int64_t sp = 0; sp < cp.nspans(); ++sp) {
    const int64_t b0 = sp * cp.span, b1 = std::min(cp.nkc, b0 + cp.span);
    int64_t c = next[sp].fetch_add(1, std::memory_order_relaxed);
    if (c >= cp.nchunks) continue;
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t pc = b * cp.kc;
      k.pack_a(p.A + pc * p.sa_k * p.esz, p.sa_m, p.sa_k, p.M, std::min(cp.kc, p.K - pc), abuf + (b - b0) * ablk);
    }
    for (; c < cp.nchunks; c = next[sp].fetch_add(1, std::memory_order_relaxed)) {
      const int64_t j0 = c * chunk, ncur = std::min(chunk, p.N - j0);
      char* cc = p.C + j0 * p.sc_n * p.esz;
      if (sp > 0)  // this chunk's previous span, perhaps on another thread, adds first
        for (int r = 0; !done[(sp - 1) * cp.nchunks + c].load(std::memory_order_acquire); ++r)
          fastdl::detail::spin_pause(r);
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t pc = b * cp.kc, kcur = std::min(cp.kc, p.K - pc);
        k.pack_b(p.B + (pc * p.sb_k + j0 * p.sb_n) * p.esz, p.sb_k, p.sb_n, kcur, ncur, bbuf);
        if (pc == 0 && p.bias) fill_bias(cc, p.sc_m, p.sc_n, p.M, ncur, p.bias + j0 * p.esz, p.esz);
        k.macro(p.M, ncur, kcur, abuf + (b - b0) * ablk, bbuf, cc, p.sc_m, p.sc_n, p.alpha,
                pc == 0 && !p.bias ? p.beta : 1.0, 0, ceil_div(ncur, nr));
      }
      done[sp * cp.nchunks + c].store(1, std::memory_order_release);
    }
  }
}

// Work below which a thread is not worth waking (multiply-adds per thread, ~5 us of a core;
// 2^21 kept 128^3 on one thread, 0.61x PyTorch on two threads, 0.99x now on a Xeon).
constexpr int64_t kMinWorkPerThread = int64_t(1) << 19;
// The unpacked path: K bounded so the A rows of a tile and a B panel stay in L1; up to 2^21
// multiply-adds a matrix (Xeon, Emerald Rapids class, one thread, unpacked against packed: 128^3
// 198 -> 225 GFLOP/s, 96 x 128 x 160 195 -> 235; (64, 128, 128)^2 on two threads 0.78x -> 0.94x
// PyTorch; at 2^22, (32, 256, 64) @ (32, 64, 256) fell from 0.95x to 0.89x).
constexpr int64_t kDirectMaxK = 256, kDirectMaxWork = int64_t(1) << 21;
// Batched products of matrices below this work (M N K) run whole matrices per thread.
constexpr int64_t kWholeMatrixMaxWork = int64_t(1) << 25;

void maybe_tune(const GemmKernel& k, int64_t work);

// Deep products (K well beyond M and N: a weight gradient over a long batch, tensordot, a
// 256 x 256 x 8192 product) split K over threads instead of M or N. Split over N, every thread
// packs all of A once per kc block; split over M, every thread reads the jointly packed B
// panels. Split over K, each thread runs the one-thread loops on its own K range (nothing packed
// twice, no barrier until the end) into its own partial C, and the partials are summed into C in
// thread order (deterministic).
// A/B on Zen 3, 2 threads, median of 6 alternated solo runs (GFLOP/s, old choice -> split K; PyTorch):
// 64 x 80 x 12288 75 -> 88 (93), 128 x 128 x 4096 83 -> 108 (135), 256 x 256 x 8192 108 -> 120 (133),
// 256 x 256 x 1024 112 -> 125 (140).
constexpr int64_t kSplitKMinPerThread = 512;              // K per thread
constexpr size_t kSplitKMaxPartialBytes = size_t(16) << 20;  // the partial C tiles together

bool use_split_k(const GemmKernel& k, const Problem& p, int nt) {
  if (nt == 1 || k.full_k) return false;
  if (const char s = env_blocking().split) return s == 'k';
  return p.K >= nt * kSplitKMinPerThread && p.K >= 2 * std::max(p.M, p.N) &&
         size_t(p.M * p.N) * p.esz * size_t(nt - 1) <= kSplitKMaxPartialBytes;
}

// C[rows] += the partial C tiles of threads 1 .. nt-1, in that order.
template <class T> void add_partials(const Problem& p, const char* partial, size_t cbytes, int nt, Split rows) {
  const int64_t N = p.N, sc_n = p.sc_n;
  for (int64_t i = rows.b; i < rows.e; ++i) {
    T* c = reinterpret_cast<T*>(p.C) + i * p.sc_m;
    for (int u = 1; u < nt; ++u) {
      const T* w = reinterpret_cast<const T*>(partial + (u - 1) * cbytes) + i * N;
      if (sc_n == 1) {
        for (int64_t j = 0; j < N; ++j) c[j] += w[j];
      } else {
        for (int64_t j = 0; j < N; ++j) c[j * sc_n] += w[j];
      }
    }
  }
}

void gemm_split_k(const GemmKernel& k, const Problem& p, int nt) {
  const int64_t unit = std::max<int64_t>(8, k.kpack);  // K ranges start on whole k units
  const int64_t units = ceil_div(p.K, unit);
  Blocking bl = choose_blocking(k, p.M, p.N, ceil_div(p.K, nt));
  const int64_t kcp = round_up(bl.kc, k.kpack);
  const size_t abytes = round_up(round_up(std::min(bl.mc, p.M), k.mr) * kcp * k.elem, 4096);
  const size_t bbytes = round_up(round_up(std::min(bl.nc, p.N), k.nr) * kcp * k.elem, 4096);
  const size_t cbytes = round_up(size_t(p.M * p.N) * p.esz, 4096);  // a partial C, rows of N
  const size_t total = (abytes + bbytes) * nt + cbytes * (nt - 1);
  char* buf = static_cast<char*>(cpu_alloc(total));
  char* partial = buf + (abytes + bbytes) * nt;  // part t >= 1 writes partial + (t - 1) * cbytes
  // The parts are claimed like any parallel_for's chunks, with no barrier between them: a thread
  // the OS has not scheduled yet (a busy machine; a peer library's threads still spinning) leaves
  // its part to the others instead of holding them at a barrier. The partial sums are then added
  // into C by rows.
  parallel_for(0, nt, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const Split s = split(units, int(t), nt);
      Problem q = p;
      q.K = std::min(p.K, s.e * unit) - s.b * unit;
      q.A = p.A + s.b * unit * p.sa_k * p.esz;
      q.B = p.B + s.b * unit * p.sb_k * p.esz;
      if (t > 0) {  // alpha applies in every partial; beta only once, in part 0's pass over C
        q.C = partial + (t - 1) * cbytes;
        q.sc_m = p.N;
        q.sc_n = 1;
        q.beta = 0.0;
      }
      char* mine = buf + (abytes + bbytes) * t;
      if (q.K > 0) {
        run_blocked(q, bl, true, 0, 1, mine + abytes, mine);
      } else if (t > 0) {
        std::memset(q.C, 0, size_t(p.M * p.N) * p.esz);
      }
    }
  });
  parallel_for(0, p.M, std::max<int64_t>(1, p.M / nt), [&](int64_t i0, int64_t i1) {
    if (p.esz == 8) add_partials<double>(p, partial, cbytes, nt, Split{i0, i1});
    else add_partials<float>(p, partial, cbytes, nt, Split{i0, i1});
  });
  cpu_free(buf, total);
}

// Mid-size row-major products on several threads (A, B and C row-major; B within a quarter
// of L2, K short enough that a tile's A rows stay in L1) are not packed at all: each thread
// takes a share of the mr-row tiles and runs the direct kernel across every column panel, the
// tile's A rows from L1 and B's rows from L2 where they lie. The packed path split these over
// N, and each thread packed all of A for itself (panels another core packed come through
// cross-core transfers). Xeon (Sapphire Rapids class), 2 threads, interleaved in one process,
// unpacked against packed: 160^3 1.31x, 192^3 1.23x, 224^3 1.21x, 256^3 1.06x, 128 x 256 x
// 256 1.09x (0.89-1.00x PyTorch -> 1.03-1.16x); past 2^24 multiply-adds the packed path is
// level or ahead (384 x 384 x 256 0.97x), and on one thread, with nothing duplicated, the
// direct kernel streaming B's rows from L2 ran up to 5% behind packed panels.
constexpr int64_t kInplaceMaxK = 256, kInplaceMaxWork = int64_t(1) << 24;
bool gemm_inplace(const GemmKernel& k, const Problem& q, int nt) {
  const int64_t e = int64_t(q.esz), tiles = ceil_div(q.M, k.mr), work = q.M * q.N * q.K;
  nt = int(std::max<int64_t>(1, std::min<int64_t>({int64_t(nt), work / kMinWorkPerThread, tiles})));
  nt = available_threads(nt);
  if (nt == 1 || !k.direct || q.sa_k != 1 || q.sb_n != 1 || q.sc_n != 1 || q.N % k.nr != 0 || q.K > kInplaceMaxK ||
      work > kInplaceMaxWork || q.K * q.N * e > int64_t(cpu_info().l2 / 4))
    return false;
  parallel_for(0, nt, 1, [&](int64_t t0, int64_t t1) {  // no barrier: a late thread's share is claimed
    const Split s{split(tiles, int(t0), nt).b, split(tiles, int(t1) - 1, nt).e};
    const int64_t i0 = s.b * k.mr, rows = std::min(q.M, s.e * k.mr) - i0;
    if (rows > 0) {
      const char* A = q.A + i0 * q.sa_m * e;
      char* C = q.C + i0 * q.sc_m * e;
      double beta = q.beta;
      if (q.bias) {  // this thread's rows, just before the kernel adds onto them
        fill_bias(C, q.sc_m, 1, rows, q.N, q.bias, q.esz);
        beta = 1.0;
      }
      k.direct(rows, q.N, q.K, A, q.sa_m, q.B, q.sb_k, k.nr, C, q.sc_m, q.alpha, beta);
    }
  });
  return true;
}

void gemm_one(const GemmKernel& k, const Problem& p, int nt) {
  if (gemm_inplace(k, p, nt)) return;
  maybe_tune(k, p.M * p.N * p.K);
  Blocking bl = choose_blocking(k, p.M, p.N, p.K);
  const int64_t work = p.M * p.N * p.K;
  nt = int(std::max<int64_t>(1, std::min<int64_t>(nt, work / kMinWorkPerThread)));
  nt = available_threads(nt);
  if (use_split_k(k, p, nt)) return gemm_split_k(k, with_bias_filled(p), nt);
  // Split M (A blocks per thread, B packed jointly and shared) for tall problems, where
  // duplicating A would cost most. Otherwise split N: each thread packs its own B columns and
  // a private copy of A, with no barriers at all; measured faster up to square sizes (B packed
  // by another core is read through cross-core transfers) and robust on busy machines, down
  // to one panel a thread (Xeon, 2 threads, split M -> N: 96^3 0.58x -> 0.89x PyTorch, 144^3
  // 0.54x -> 0.77x, 192^3 0.67x -> 0.95x; it used to take M below 4 panels a thread).
  bool split_m = nt == 1 || (p.M > p.N && p.M >= nt * kMcPanels * k.mr) || p.N < nt * k.nr;
  if (env_blocking().split == 'm' || env_blocking().split == 'n') split_m = nt == 1 || env_blocking().split == 'm';
  if (!split_m) bl.nc = balance(ceil_div(p.N, nt), bl.nc, k.nr);
  const int64_t kcp = round_up(bl.kc, k.kpack);
  if (!split_m && nt > 1 && p.M <= bl.mc) {
    // Up to 4 chunks per thread (a preempted thread's chunks go to the others), sized so the
    // busiest thread has the fewest panels: 12 panels as 3 chunks of 4 left one of two threads
    // idle a third of the time (384^3, Xeon: 0.63x PyTorch, 0.94x as chunks of 2).
    const int64_t panels = ceil_div(p.N, k.nr);
    int64_t chunk_pan = panels, worst = panels;
    for (int64_t q = 1; q <= 4; ++q) {
      const int64_t cp = ceil_div(panels, nt * q), busiest = ceil_div(ceil_div(panels, cp), nt) * cp;
      if (busiest <= worst) { worst = busiest; chunk_pan = cp; }
    }
    ChunkedPlan plan{chunk_pan, ceil_div(p.N, chunk_pan * k.nr), bl.kc, ceil_div(p.K, bl.kc), 1,
                     round_up(p.M, k.mr) * kcp * k.elem};
    plan.span = std::max<int64_t>(1, std::min(plan.nkc, env_blocking().span ? env_blocking().span
                                                                             : kSpanBytes / nt / plan.ablk));
    const int64_t nsp = plan.nspans();
    const size_t abytes = round_up(plan.span * plan.ablk, 4096);
    const size_t bbytes = round_up(chunk_pan * k.nr * kcp * k.elem, 4096);
    const size_t nbytes = round_up(nsp * sizeof(std::atomic<int64_t>), 64);
    const size_t total = (abytes + bbytes) * nt + nbytes + nsp * plan.nchunks;
    char* buf = static_cast<char*>(cpu_alloc(total));
    std::atomic<int64_t>* next = reinterpret_cast<std::atomic<int64_t>*>(buf + (abytes + bbytes) * nt);
    std::atomic<int8_t>* done = reinterpret_cast<std::atomic<int8_t>*>(buf + (abytes + bbytes) * nt + nbytes);
    for (int64_t i = 0; i < nsp; ++i) new (next + i) std::atomic<int64_t>(0);
    for (int64_t i = 0; i < nsp * plan.nchunks; ++i) new (done + i) std::atomic<int8_t>(0);
    // The members are claimed like parallel_for chunks: a thread that is late (asleep, or its
    // core taken) finds its member done instead of holding the caller until it wakes.
    parallel_for(0, nt, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        char* mine = buf + (abytes + bbytes) * t;
        run_chunked(p, plan, next, done, mine + abytes, mine);
      }
    });
    cpu_free(buf, total);
    return;
  }
  const int64_t mcap = std::min(bl.mc, ceil_div(p.M, split_m ? nt : 1) + k.mr);
  const size_t abytes = round_up(round_up(mcap, k.mr) * kcp * k.elem, 4096);
  const size_t bbytes = round_up(round_up(std::min(bl.nc, p.N), k.nr) * kcp * k.elem, 4096);
  // Split over M, the threads share one packed B panel (each packs a share, barriers between)
  // when it is large; a small one each thread packs whole for itself: reading panels another
  // core packed went through cross-core transfers, a fixed cost that small products could not
  // hide (Xeon VM, 2 threads, vs PyTorch: 768 x 384 x 128 0.89x -> 1.01x, 768 x 512 x 128 0.91x
  // -> 1.01x; 8192 x 768 x 768, a 2.4 MB panel, stays shared: 1.18x against 1.04x private).
  const bool shared_b = round_up(std::min(bl.nc, p.N), k.nr) * kcp * k.elem > int64_t(cpu_info().l2 / 4);
  const int nbbuf = split_m && shared_b ? 1 : nt;
  const size_t total = abytes * nt + bbytes * nbbuf;
  char* buf = static_cast<char*>(cpu_alloc(total));
  if (nt == 1) {
    run_blocked(p, bl, true, 0, 1, buf + abytes, buf);
  } else if (split_m && shared_b) {  // the shared B panel: a team, barriers around each packing
    TeamBarrier bar(nt);
    parallel_team(nt, [&](int t) { run_blocked(p, bl, true, t, nt, buf + abytes * nt, buf + abytes * t, &bar); });
  } else {  // no barrier: the members are claimed, so a late thread's share goes to the others
    parallel_for(0, nt, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t)
        run_blocked(p, bl, split_m, int(t), nt, buf + abytes * nt + bbytes * t, buf + abytes * t);
    });
  }
  cpu_free(buf, total);
}

// Narrow products (few output columns, row-major A: X @ W^T into a GCN's 16 channels) are bound
// by reading A: each element of A feeds only N multiply-adds, so packing A (a read and a write
// of all of it, then a second read) would triple the memory traffic. They run the tile kernel
// on A where it lies, with B packed by each thread and groups of rows claimed (gemm_narrow). A
// last partial panel of nr columns goes through a temporary tile, since the kernel writes whole
// panels.
// (Few rows, g^T @ X, stays packed: reading row-major B in place down its columns strides
// over pages and measured 2x slower than packing it.)
constexpr int64_t kNarrowMinWork = int64_t(1) << 22;
// Up to kNarrowPanels panels of output columns; up to kNarrowWidePanels (a GPT block's
// 768 x 128 x 128 products and their gradients) when K <= kNarrowWideMaxK, or when N <= 128
// and the packed B is at most 2 MiB (the range measured: nr = 16, Zen 3). With row groups the
// unpacked path wins at long K too (Zen 3, native GFLOP/s, packed -> unpacked, one thread:
// 768 x 128 x 512 90 -> 97, 768 x 64 x 2048 81 -> 96; the commit log has the rest).
constexpr int kNarrowPanels = 2, kNarrowWidePanels = 8;
constexpr int64_t kNarrowWideMaxK = 256, kNarrowWideMaxB = int64_t(2) << 20, kNarrowLongKMaxN = 128;

// C[:, j0:j0+n) (n < nr) = alpha A @ Bpanel + beta C, through a temporary of rows x w, where w
// is nr, or nr / 2 when the tail fits the half-width tile (half the multiply-adds: a GCN's
// 2708 x 16 x 1433 X @ W on a Xeon, 2 threads, 830 -> 613-649 us, 0.73x -> 1.08x PyTorch).
void narrow_tail(const GemmKernel& k, const Problem& q, int64_t rows, const char* A, int64_t lda, const char* bpanel,
                 char* C, int64_t j0, int64_t n) {
  const bool half = k.direct_half && 2 * n <= k.nr;
  const int64_t w = half ? k.nr / 2 : k.nr;
  const size_t bytes = size_t(rows * w) * q.esz;
  char* tmp = static_cast<char*>(cpu_alloc(bytes));
  (half ? k.direct_half : k.direct)(rows, w, q.K, A, lda, bpanel, k.nr, q.K * k.nr, tmp, w, q.alpha, 0.0);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < n; ++j) {
      char* c = C + (i * q.sc_m + (j0 + j)) * int64_t(q.esz);
      const char* t = tmp + (i * w + j) * int64_t(q.esz);
      if (q.esz == 8) *reinterpret_cast<double*>(c) = *reinterpret_cast<const double*>(t) +
                      (q.beta == 0 ? 0.0 : q.beta * *reinterpret_cast<double*>(c));
      else *reinterpret_cast<float*>(c) = *reinterpret_cast<const float*>(t) +
                 (q.beta == 0 ? 0.f : float(q.beta) * *reinterpret_cast<float*>(c));
    }
  cpu_free(tmp, bytes);
}

// ---- measured blocking: the model's kc, checked once per machine ---------------------------
// The analytic kc above is right where it was measured (Zen 5: as large as L2 allows), but the
// best kc is a property of the core (Low et al.'s L1-sized kc may win where L1 is larger or L2
// slower). So the first float32 or float64 product of at least kTuneWork multiply-adds times
// the model's kc against a few others on one thread (512 x 2048 x 2048, five interleaved
// rounds, in thread CPU time; ~2 s on a 2021 core) and keeps a candidate only when it beats the
// model by 3% (medians) and in four rounds of five. Each candidate is timed on its second of two
// runs in a row: timed cold, right after the others, the model's 16 MiB packed B came back from
// DRAM and read 24 ms against kc 512's 22 (Xeon, Emerald Rapids class), where back to back, as a
// layer's products repeat, it ran 20.3-20.9 against 21.0 and 2048^3 at 89% of peak against 86%. The result is cached per CPU (vendor, family, model, cache
// sizes, ISA, kernel) in $FASTDL_CACHE_DIR (default $XDG_CACHE_HOME/fastdl or ~/.cache/fastdl),
// so each machine measures once.
// FASTDL_GEMM_TUNE=0 keeps the model; FASTDL_GEMM_TUNE=redo measures again. The scalar `ref`
// ISA (an oracle, not a fast path) is never tuned.
constexpr int64_t kTuneWork = int64_t(1) << 27;  // 512^3
// B as large as a real layer's (16 MiB in f32): with a small mc, B streams from L3 or DRAM once per
// A block, the cost the model misses on 512 KiB L2 cores (Zen 3: 2048^3 at kc 2048 ran 10% below kc
// 256-512, while 768 x 768 x 1536 showed no difference); M small enough to time fast.
constexpr int64_t kTuneM = 512, kTuneN = 2048, kTuneK = 2048;
thread_local int64_t t_tune_kc = -1;            // the candidate under test (tuning thread)
// The cache key names the model the candidates raced and how: "kc2" since the model bounds kc by
// kMinMcRows, "kc3" since the race runs on normal numbers back to back: older caches are measured again.
constexpr const char* kKcKey = "kc3";

char tune_mode() {  // '0' off, 'r' redo, 'c' use the cache (default)
  static const char m = [] {
    const char* e = std::getenv("FASTDL_GEMM_TUNE");
    if (!e || !*e) return 'c';
    if (!std::strcmp(e, "0") || !std::strcmp(e, "off")) return '0';
    return !std::strcmp(e, "redo") ? 'r' : 'c';
  }();
  return m;
}

std::string tune_cache_path(const GemmKernel& k) {
  std::string dir;
  if (const char* d = std::getenv("FASTDL_CACHE_DIR")) dir = d;
  else if (const char* x = std::getenv("XDG_CACHE_HOME")) dir = std::string(x) + "/fastdl";
  else if (const char* h = std::getenv("HOME")) dir = std::string(h) + "/.cache/fastdl";
  else return "";
  const CpuInfo& c = cpu_info();
  char name[256];
  std::snprintf(name, sizeof name, "/gemm-%s-%d-%d-l1_%zu-l2_%zu-l3_%zu-%s.txt", c.vendor[0] ? c.vendor : "cpu",
                c.family, c.model, c.l1d, c.l2, c.l3, k.name);
  for (char* q = name + 1; *q; ++q)
    if (*q == '/' || *q == ' ') *q = '_';
  return dir + name;
}

// The number after `key` in a cache file (FASTDL_GEMM_TUNE unset), or -1.
long long read_tune_cache(const std::string& path, const char* key) {
  long long v = -1;
  if (tune_mode() != 'c' || path.empty()) return v;
  if (FILE* f = std::fopen(path.c_str(), "r")) {
    char k[32] = {};
    if (std::fscanf(f, "%31s %lld", k, &v) != 2 || std::strcmp(k, key) != 0 || v < 0) v = -1;
    std::fclose(f);
  }
  return v;
}

void mkdirs(const std::string& dir) {
  for (size_t i = 1; i <= dir.size(); ++i)
    if (i == dir.size() || dir[i] == '/') ::mkdir(dir.substr(0, i).c_str(), 0755);
}

// Writes "key value" and a comment line to the cache file, atomically (a temporary file renamed
// over it), so concurrent processes read either nothing or a whole file.
void write_tune_cache(const std::string& path, const char* key, long long value, const std::string& comment) {
  if (path.empty()) return;
  mkdirs(path.substr(0, path.rfind('/')));
  const std::string tmp = path + "." + std::to_string(::getpid());
  if (FILE* f = std::fopen(tmp.c_str(), "w")) {
    std::fprintf(f, "%s %lld\n# %s Delete this file or set FASTDL_GEMM_TUNE=redo to measure again.\n", key, value,
                 comment.c_str());
    const bool ok = std::fclose(f) == 0;
    if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) std::remove(tmp.c_str());
  }
}

// CPU seconds of this thread for one single-threaded M x N x K product with kernel k on
// row-major operands of esz-byte elements (buffers of at least M x K, K x N, M x N of them).
// Thread CPU time, not wall time: a busy machine preempts the run but does not stretch it.
double time_product(const GemmKernel& k, int64_t M, int64_t N, int64_t K, size_t esz, std::vector<char>& a,
                    std::vector<char>& b, std::vector<char>& c) {
  const Problem q{&k, M, N, K, a.data(), K, 1, b.data(), N, 1, c.data(), N, 1, 1.0, 0.0, esz};
  auto cpu_now = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
  };
  const double t0 = cpu_now();
  gemm_one(k, q, 1);
  return cpu_now() - t0;
}

// ... and the tuning product (kTuneM x kTuneN x kTuneK) at kc (0: the model's).
double time_kc(const GemmKernel& k, int64_t kc, std::vector<char>& a, std::vector<char>& b, std::vector<char>& c) {
  t_tune_kc = kc;
  const double s = time_product(k, kTuneM, kTuneN, kTuneK, size_t(k.elem), a, b, c);
  t_tune_kc = -1;
  return s;
}

int64_t measure_kc(const GemmKernel& k) {
  const int64_t M = kTuneM, N = kTuneN, K = kTuneK;
  std::vector<char> a(size_t(M * K * k.elem)), b(size_t(K * N * k.elem)), c(size_t(M * N * k.elem));
  // Normal numbers of the kernel's type, as a layer's: the bytes this once set (every 16th float a
  // denormal, the rest zeros) timed Intel's microcode assists, not the blocking (a Xeon of the
  // Emerald Rapids class cached kc 512, 3% slower than the model's at 512 x 2048 x 2048 and 3-4%
  // at 2048^3 on two threads).
  auto fill = [&](std::vector<char>& v, int period, double step) {
    for (size_t i = 0; i < v.size() / size_t(k.elem); ++i) {
      const double x = double(int(i % size_t(period)) + 1) * step - 0.5;
      if (k.elem == 8) std::memcpy(&v[i * 8], &x, 8);
      else { const float f = float(x); std::memcpy(&v[i * 4], &f, 4); }
    }
  };
  fill(a, 13, 0.0625);
  fill(b, 7, 0.125);
  const CpuInfo& ci = cpu_info();
  const int64_t l1 = std::max<int64_t>(64, int64_t(ci.l1d) / 2 / (int64_t(k.nr) * k.elem) / 16 * 16);
  std::vector<int64_t> cand{0, l1};  // the model, then Low et al.'s L1-sized B micro-panel
  for (int64_t v : {384, 512, 1024})
    if (std::find(cand.begin(), cand.end(), v) == cand.end()) cand.push_back(v);
  constexpr int kRounds = 5;
  std::vector<std::vector<double>> t(cand.size());
  for (int round = 0; round < kRounds; ++round)
    for (size_t i = 0; i < cand.size(); ++i) {
      time_kc(k, cand[i], a, b, c);  // its own packing buffers into the caches, then timed
      t[i].push_back(time_kc(k, cand[i], a, b, c));
    }
  auto median = [](std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  };
  // A candidate replaces the model only when its median is 3% faster and it won at least four of
  // the five interleaved rounds: a neighbour on the other core (a build, a test run) slows
  // whichever candidate it overlaps, and thread CPU time does not hide the shared caches and
  // memory (a cache written that way kept kc 384 on a Xeon where the model's kc ran 8-10% faster).
  size_t win = 0;
  for (size_t i = 1; i < cand.size(); ++i)
    if (median(t[i]) < median(t[win])) win = i;
  int rounds_won = 0;
  for (int r = 0; r < kRounds; ++r) rounds_won += t[win][size_t(r)] * 1.03 < t[0][size_t(r)];
  return win != 0 && median(t[win]) * 1.03 < median(t[0]) && rounds_won >= kRounds - 1 ? cand[win] : 0;
}

// One slot per ISA and f32 / f64: kc (0: the model's), -1 until known.
struct TunedKc {
  std::once_flag once;
  std::atomic<int64_t> kc{-1};
};
TunedKc& tune_slot(const GemmKernel& k) {
  static TunedKc slots[3][2];
  return slots[int(cpu_isa())][k.elem == 8 ? 1 : 0];
}

int64_t tuned_kc(const GemmKernel& k) {
  if (t_tune_kc >= 0) return t_tune_kc;  // inside the tuner
  if (k.full_k || k.elem < 4 || cpu_isa() == Isa::ref || tune_mode() == '0') return 0;
  TunedKc& t = tune_slot(k);
  std::call_once(t.once, [&] {
    if (const long long v = read_tune_cache(tune_cache_path(k), kKcKey); v >= 0) t.kc = v;
  });
  return std::max<int64_t>(0, t.kc.load());
}

// Called by gemm_one: at the first large product of a kind with no cached kc, measure it (once
// per process; other threads wait on the mutex) and write the cache (atomically, by rename).
void maybe_tune(const GemmKernel& k, int64_t work) {
  if (work < kTuneWork || t_tune_kc >= 0 || k.full_k || k.elem < 4 || cpu_isa() == Isa::ref || tune_mode() == '0')
    return;
  tuned_kc(k);  // read the cache first
  TunedKc& t = tune_slot(k);
  if (t.kc.load() >= 0) return;
  static std::mutex mu;
  std::lock_guard<std::mutex> g(mu);
  if (t.kc.load() >= 0) return;
  const int64_t kc = measure_kc(k);
  t.kc = kc;
  write_tune_cache(tune_cache_path(k), kKcKey, kc,
                   "fastdl GEMM blocking measured on this CPU (0: the analytic model's kc).");
}

// ---- bf16 on AVX512-BF16 without AMX: pair dots or widening, measured -----------------------
// Both kernels run one 256 x 1024 x 1024 product (8 ms widened on a Zen 3 core) on this thread,
// interleaved, best of three in thread CPU time; the dot kernel must win by 3% to be chosen
// (its model's favourite, but the widened kernel is the one every ISA tests). Cached beside the
// measured kc (same file naming, FASTDL_GEMM_TUNE=0 skips it and takes the dots, redo measures).
std::pair<double, double> race_bf16(const GemmKernel& x, const GemmKernel& y) {
  const int64_t M = 256, N = 1024, K = 1024;
  std::vector<char> a(size_t(M * K * 2)), b(size_t(K * N * 2)), c(size_t(M * N * 2));
  auto fill = [](std::vector<char>& v, int period, float step) {  // small exact nonzero bf16 values
    for (size_t i = 0; i < v.size(); i += 2) {
      const uint16_t x = f32_to_bf16(float(int(i / 2) % period) * step - 0.75f);
      std::memcpy(&v[i], &x, 2);
    }
  };
  fill(a, 13, 0.125f);
  fill(b, 7, 0.25f);
  time_product(x, M, N, K, 2, a, b, c);  // warm caches and the allocator
  time_product(y, M, N, K, 2, a, b, c);
  double tx = 1e30, ty = 1e30;
  for (int round = 0; round < 3; ++round) {
    tx = std::min(tx, time_product(x, M, N, K, 2, a, b, c));
    ty = std::min(ty, time_product(y, M, N, K, 2, a, b, c));
  }
  return {tx, ty};
}

// Measured once per process and ISA (the kernel table asks on every bf16 product).
bool bf16_dot_wins(int isa, const GemmKernel& dot, const GemmKernel& widen) {
  static std::once_flag once[3];
  static bool wins[3];
  std::call_once(once[isa], [&] {
    wins[isa] = true;  // FASTDL_GEMM_TUNE=0: the model's choice
    if (tune_mode() == '0') return;
    const std::string path = tune_cache_path(dot);
    if (const long long v = read_tune_cache(path, "dot_wins"); v >= 0) {
      wins[isa] = v != 0;
      return;
    }
    const auto [td, tw] = race_bf16(dot, widen);
    wins[isa] = td * 1.03 < tw;
    char what[200];
    std::snprintf(what, sizeof what, "fastdl bf16 GEMM on this CPU: VDPBF16PS pair dots %.3f ms, widening to f32 "
                  "%.3f ms (256 x 1024 x 1024, one thread).", td * 1e3, tw * 1e3);
    write_tune_cache(path, "dot_wins", wins[isa], what);
  });
  return wins[isa];
}

bool gemm_narrow(const GemmKernel& k, const Problem& q, int nt) {
  if (!k.direct || q.sc_n != 1 || q.M * q.N * q.K < kNarrowMinWork) return false;
  const int64_t nr = k.nr, full = q.N / nr * nr, e = int64_t(q.esz), npan = ceil_div(q.N, nr);
  const size_t bbytes = size_t(npan * nr * q.K) * q.esz;
  const bool wide = q.K <= kNarrowWideMaxK || (int64_t(bbytes) <= kNarrowWideMaxB && q.N <= kNarrowLongKMaxN);
  const int64_t max_panels = wide ? kNarrowWidePanels : kNarrowPanels;
  // Tall only (M >= 2N): at 256^3 the unpacked tiles re-read A from L2 once per column panel
  // and ran at half the packed path's speed on two threads (Xeon: 0.21 -> 0.12 ms).
  if (q.sa_k != 1 || q.N > max_panels * nr || q.M < 2 * q.N) return false;
  // Each thread packs B for itself: B packed by one core and read by the other came through
  // cross-core transfers, a fixed ~15-20 us a product on a Xeon VM (256 x 128 x 128 ran as
  // slow on two threads as on one). Then it claims groups of rows until none is left (a late
  // thread packs nothing). A group's A rows fill half of L1 (or a quarter of a thread's share,
  // if less: short K still spreads over the threads), and the kernel runs them across every
  // column panel: A is read from memory once, B's panels stream from L2.
  const int64_t l1rows = std::max<int64_t>(1, int64_t(cpu_info().l1d) / 2 / (q.K * e * k.mr)) * k.mr;
  const int64_t grp = std::min(l1rows, round_up(ceil_div(q.M, 4 * int64_t(nt)), k.mr));
  std::atomic<int64_t> next{0};
  parallel_for(0, std::min<int64_t>(nt, ceil_div(q.M, grp)), 1, [&](int64_t, int64_t) {
    int64_t i0 = next.fetch_add(grp, std::memory_order_relaxed);
    if (i0 >= q.M) return;
    char* bp = static_cast<char*>(cpu_alloc(bbytes));
    k.pack_b(q.B, q.sb_k, q.sb_n, q.K, q.N, bp);
    for (; i0 < q.M; i0 = next.fetch_add(grp, std::memory_order_relaxed)) {
      const int64_t rows = std::min(grp, q.M - i0);
      const char* A = q.A + i0 * q.sa_m * e;
      char* C = q.C + i0 * q.sc_m * e;
      Problem qb = q;  // a bias goes into these rows just before the kernels add onto them
      if (q.bias) {
        fill_bias(C, q.sc_m, 1, rows, q.N, q.bias, q.esz);
        qb.beta = 1.0;
        qb.bias = nullptr;
      }
      if (full) k.direct(rows, full, q.K, A, q.sa_m, bp, nr, q.K * nr, C, q.sc_m, qb.alpha, qb.beta);
      if (full < q.N) narrow_tail(k, qb, rows, A, q.sa_m, bp + full * q.K * e, C, full, q.N - full);
    }
    cpu_free(bp, bbytes);
  });
  return true;
}

// One output row (M == 1: a single token through a linear layer) is a matrix-vector product
// bound by reading B: B is read once where it lies (dot products down contiguous columns, or
// axpy along contiguous rows), never packed, with the columns split over threads. A few rows (a
// small batch of tokens) go the same way from K = 256, every part of B read once for all the rows;
// the packed path read B, wrote it packed and read it again. Xeon, Emerald Rapids class, 2 threads,
// GFLOP/s packed -> here:
//   X @ W^T (dot): linear 4 x 4096 -> 4096 37 -> 86 (0.60x -> 1.31x PyTorch), 8 x 3072 -> 768
//     77 -> 131, 8 x 1024 -> 4096 78 -> 163, 2 x 768 -> 768 45 -> 107, 3 x 256 -> 512 38 -> 77
//   X @ W (axpy): 4 x 4096 @ 4096 x 4096 25 -> 78 (0.64x -> 1.95x), 8 x 1024 @ 1024 x 1024 74 ->
//     156, 4 x 768 @ 768 x 768 62 -> 134, 3 x 512 @ 512 x 64 30 -> 73
// Below K = 256 packing wins: the dots' sums across lanes, the axpys' strips of sums cost more
// (dot 5 x 64 -> 128 48 -> 20, 8 x 96 -> 128 76 -> 45; axpy 8 x 128 @ 128 x 128 166 -> 129).
constexpr int64_t kFewRows = 8, kFewRowsMinK = 256;
bool gemm_vector(const GemmKernel& k, const Problem& q0, int nt) {
  if (!k.gemv_dot || (q0.sb_k != 1 && q0.sb_n != 1)) return false;
  if (q0.M != 1 && !(q0.M <= kFewRows && q0.K >= kFewRowsMinK)) return false;
  const Problem q = with_bias_filled(q0);
  const int64_t e = int64_t(q.esz);
  if (q.sb_k == 1) {
    const char* a = q.A;
    int64_t lda = q.sa_m;
    char* tmp = nullptr;
    if (q.sa_k != 1) {  // the dot kernel reads A's rows contiguously: gather them (M x K elements)
      tmp = static_cast<char*>(cpu_alloc(size_t(q.M * q.K * e)));
      for (int64_t i = 0; i < q.M; ++i)
        for (int64_t kk = 0; kk < q.K; ++kk)
          std::memcpy(tmp + (i * q.K + kk) * e, q.A + (i * q.sa_m + kk * q.sa_k) * e, size_t(e));
      a = tmp;
      lda = q.K;
    }
    const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 15) / std::max<int64_t>(q.K * q.M, 1));
    parallel_for(0, q.N, nt > 1 ? grain : q.N, [&](int64_t j0, int64_t j1) {
      k.gemv_dot(j0, j1, q.K, int(q.M), a, lda, q.B, q.sb_n, q.C, q.sc_m, q.sc_n, q.alpha, q.beta);
    });
    if (tmp) cpu_free(tmp, size_t(q.M * q.K * e));
    return true;
  }
  if (q.sb_n == 1) {  // one contiguous column range per thread, B's rows streamed in order
    const int64_t work = q.N * q.K, parts = std::max<int64_t>(1, std::min<int64_t>(nt, work >> 15));
    const int64_t block = ((q.N + parts - 1) / parts + 15) & ~int64_t(15);
    parallel_for(0, parts, 1, [&](int64_t t0, int64_t t1) {
      k.gemv_axpy(std::min(q.N, t0 * block), std::min(q.N, t1 * block), q.K, int(q.M), q.A, q.sa_m, q.sa_k, q.B,
                  q.sb_k, q.C, q.sc_m, q.sc_n, q.alpha, q.beta);
    });
    return true;
  }
  return false;
}

// C = beta * C (beta 0 writes zeros) when there is nothing to multiply.
template <class T>
void scale_c(const GemmParams& p) {
  for (int64_t bb = 0; bb < p.batch * p.batch2; ++bb)
    for (int64_t i = 0; i < p.M; ++i)
      for (int64_t j = 0; j < p.N; ++j) {
        T* c = static_cast<T*>(p.C) + (bb / p.batch) * p.sc_b2 + (bb % p.batch) * p.sc_b + i * p.sc_m + j * p.sc_n;
        st(c, 0, p.beta == 0 ? 0.0 : p.beta * ld(c, 0));
      }
}

}  // namespace

const GemmKernel& gemm_kernel(DType dtype) {
  const KernelTable& t = kernel_table();
  const int isa = int(cpu_isa()), slot = dtype_slot(dtype);
  if (slot != 2) return t.k[isa][slot];
  const GemmKernel* k = t.bf16(isa, Bf16Path(g_bf16_path.load(std::memory_order_relaxed)));
  return k ? *k : *t.bf16(isa, Bf16Path::automatic);  // a path the CPU lacks: the best it has
}

void gemm_blocking(DType dtype, int64_t M, int64_t N, int64_t K, int64_t* mc, int64_t* kc, int64_t* nc) {
  const GemmKernel& k = gemm_kernel(dtype);
  maybe_tune(k, M * N * K);
  const Blocking b = choose_blocking(k, M, N, K);
  *mc = b.mc; *kc = b.kc; *nc = b.nc;
}

const char* gemm_set_bf16_path(const char* path) {
  const Bf16Path p = parse_bf16_path(path);
  if (int(p) < 0) return nullptr;
  const GemmKernel* k = kernel_table().bf16(int(cpu_isa()), p);
  if (!k) return nullptr;
  g_bf16_path.store(int(p));
  return k->name;
}

bool gemm_race_bf16(const char* a, const char* b, double* ta, double* tb) {
  const Bf16Path pa = parse_bf16_path(a), pb = parse_bf16_path(b);
  if (int(pa) < 0 || int(pb) < 0) return false;
  const KernelTable& t = kernel_table();
  const GemmKernel *ka = t.bf16(int(cpu_isa()), pa), *kb = t.bf16(int(cpu_isa()), pb);
  if (!ka || !kb) return false;
  std::tie(*ta, *tb) = race_bf16(*ka, *kb);
  return true;
}

void gemm_ref(const GemmParams& p) {
  switch (p.dtype) {
    case DType::f64: gemm_ref_t<double>(p); break;
    case DType::bf16: gemm_ref_t<uint16_t>(p); break;
    default: gemm_ref_t<float>(p); break;
  }
}

namespace {
void gemm_impl(const GemmParams& p0, const void* bias) {
  if (p0.M <= 0 || p0.N <= 0 || p0.batch <= 0 || p0.batch2 <= 0) return;
  const size_t esz = dtype_size(p0.dtype);
  const bool one_column = p0.N == 1 && p0.M > 1 && p0.batch * p0.batch2 == 1;  // A @ v: transposed below
  if (bias && ((p0.sc_n != 1 && p0.sc_m == 1) || one_column || p0.K <= 0 || p0.alpha == 0)) {
    // Outside the fused form's case (a row-major C and a product to run): the bias first, then
    // C = alpha A B + C.
    fill_bias(static_cast<char*>(p0.C), p0.sc_m, p0.sc_n, p0.M, p0.N, static_cast<const char*>(bias), esz);
    GemmParams q = p0;
    q.beta = 1.0;
    return gemm_impl(q, nullptr);
  }
  if (p0.K <= 0 || p0.alpha == 0) {
    if (p0.dtype == DType::f64) scale_c<double>(p0);
    else if (p0.dtype == DType::bf16) scale_c<uint16_t>(p0);
    else scale_c<float>(p0);
    return;
  }
  GemmParams p = p0;
  // A column-major C is the transpose of a row-major one: C^T = B^T A^T keeps the
  // micro-kernel's vector stores along C's contiguous dimension. One column (a matrix times a
  // vector) transposed is one row, the matrix-vector kernels' case (gemm_vector).
  if ((p.sc_n != 1 && p.sc_m == 1) || one_column) {
    std::swap(p.M, p.N);
    std::swap(p.A, p.B);
    std::swap(p.sa_b, p.sb_b);
    std::swap(p.sa_b2, p.sb_b2);
    int64_t am = p.sa_m, ak = p.sa_k;
    p.sa_m = p.sb_n; p.sa_k = p.sb_k;
    p.sb_k = ak; p.sb_n = am;
    std::swap(p.sc_m, p.sc_n);
  }
  const GemmKernel& k = gemm_kernel(p.dtype);
  int nt = in_parallel_region() ? 1 : get_num_threads();
  const int64_t nmat = p.batch * p.batch2;
  auto problem = [&](int64_t bb) {  // matrix bb of the flattened (batch2, batch) grid
    const int64_t o = bb / p.batch, b = bb % p.batch, e = int64_t(esz);
    return Problem{&k, p.M, p.N, p.K,
                   static_cast<const char*>(p.A) + (o * p.sa_b2 + b * p.sa_b) * e, p.sa_m, p.sa_k,
                   static_cast<const char*>(p.B) + (o * p.sb_b2 + b * p.sb_b) * e, p.sb_k, p.sb_n,
                   static_cast<char*>(p.C) + (o * p.sc_b2 + b * p.sc_b) * e, p.sc_m, p.sc_n,
                   p.alpha, p.beta, esz, static_cast<const char*>(bias)};  // a bias: one matrix
  };
  if (nmat == 1 && gemm_vector(k, problem(0), nt)) return;  // one row or a few: B read in place, never packed
  // Small row-major problems skip packing: a B column panel and the A rows fit in L1, so the
  // tile kernel reads them in place (packing would cost ~15% at 64^3).
  // Any other B layout (X @ W^T) is packed once, which is cheap next to packing A as well.
  // A batch of them (attention heads) runs the same way with the matrices split over threads.
  if (k.direct && p.sa_k == 1 && p.sc_n == 1 && p.N % k.nr == 0 && p.K <= kDirectMaxK &&
      p.M * p.N * p.K <= kDirectMaxWork && (nmat * p.M * p.N * p.K <= kMinWorkPerThread || nmat >= nt)) {
    if (bias) {  // small enough to stay in cache: the bias first
      fill_bias(static_cast<char*>(p.C), p.sc_m, 1, p.M, p.N, static_cast<const char*>(bias), esz);
      p.beta = 1.0;
    }
    const bool pack = p.sb_n != 1;
    const size_t bytes = pack ? size_t(p.K * p.N) * esz : 0;
    // Matrices this small are whole tasks: no packing, nothing shared, so a thread pays off
    // from a quarter of the usual work (12 heads of 64^3 split over two cores: 1.5x).
    const int64_t grain = std::max<int64_t>(1, kMinWorkPerThread / 4 / (p.M * p.N * p.K));
    parallel_for(0, nmat, grain, [&](int64_t b0, int64_t b1) {
      void* buf = pack ? cpu_alloc(bytes) : nullptr;
      for (int64_t b = b0; b < b1; ++b) {
        const Problem q = problem(b);
        if (pack) {
          k.pack_b(q.B, q.sb_k, q.sb_n, q.K, q.N, buf);
          k.direct(q.M, q.N, q.K, q.A, q.sa_m, buf, k.nr, q.K * k.nr, q.C, q.sc_m, p.alpha, p.beta);
        } else {
          k.direct(q.M, q.N, q.K, q.A, q.sa_m, q.B, q.sb_k, k.nr, q.C, q.sc_m, p.alpha, p.beta);
        }
      }
      if (pack) cpu_free(buf, bytes);
    });
    return;
  }
  // A batch of at least one matrix per thread: whole matrices per thread, each on one core with
  // its own packing and no synchronisation (threads inside every matrix of (32, 256, 64) @
  // (32, 64, 256) synchronised per matrix: 1.5x from the second core, 0.78x PyTorch; 1.0x
  // whole). Small matrices all go this way; mid-size ones only as many as divide evenly, the
  // remainder (fewer than the threads) threaded inside each matrix; large ones (512^3: 195
  // GFLOP/s threaded inside, 175 whole, Zen 4) are threaded inside.
  const int64_t work = p.M * p.N * p.K;
  int64_t whole = 0;
  if (nmat >= nt && nt > 1 && work < kWholeMatrixMaxWork)
    whole = work < kMinWorkPerThread * nt * 4 ? nmat : nmat / nt * nt;
  if (whole > 0) {
    parallel_for(0, whole, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const Problem q = problem(b);
        if (!gemm_vector(k, q, 1) && !gemm_narrow(k, q, 1)) gemm_one(k, q, 1);
      }
    });
  }
  for (int64_t b = whole; b < nmat; ++b) {
    const Problem q = problem(b);
    if (!gemm_vector(k, q, nt) && !gemm_narrow(k, q, nt)) gemm_one(k, q, nt);
  }
}
}  // namespace

void gemm(const GemmParams& p) { gemm_impl(p, nullptr); }

void gemm_bias(const GemmParams& p, const void* bias) {
  if (p.beta != 0 || p.batch * p.batch2 != 1) throw std::invalid_argument("gemm_bias: one matrix and beta 0 only");
  gemm_impl(p, bias);
}

}  // namespace fastdl::cpu
