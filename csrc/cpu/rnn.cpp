// Recurrent layers on the CPU: the scalar reference cells, the ISA selection, and the drivers
// that walk the time steps (forward, and backward through time) around GEMMs. The recurrent
// weight is packed once per call and each step's h W_hh^T runs the GEMM tile kernel on the
// packed panels, split over threads by column panel; the gate arithmetic is one fused pass.
#include "cpu/rnn.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "core/allocator.h"
#include "core/parallel.h"
#include "cpu/elementwise.h"
#include "cpu/gemm.h"

namespace fastdl::cpu {

namespace {

constexpr int64_t kRnnMinRows = 8;  // batch rows per thread for the row split

template <class T> struct ScalarLanes {
  using V = T;
  static V ld(const T* p) { return *p; }
  static void st(T* p, V v) { *p = v; }
  static V ld1() { return T(1); }
  static V sig(V x) { return T(1) / (T(1) + std::exp(-x)); }
  static V tanh(V x) { return std::tanh(x); }
  static V pos(V h, V x) { return h > T(0) ? x : T(0); }
};

template <class T> void fwd_ref(const RnnCellArgs& a, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t j = 0; j < a.H; ++j) rnn_cell::fwd_at<ScalarLanes<T>, T>(a, r, j);
}
template <class T> void bwd_ref(const RnnCellArgs& a, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t j = 0; j < a.H; ++j) rnn_cell::bwd_at<ScalarLanes<T>, T>(a, r, j);
}

// C (M, N) = A (M, K) @ B (K, N) + beta C for a B that is the same at every step: packed once
// into the tile kernel's column panels, then each call runs the kernel on A where it lies.
struct StepGemm {
  const detail::GemmKernel& k;
  DType dt;
  int64_t K, N, esz;
  const void* B;
  int64_t sk, sn;
  char* packed = nullptr;
  size_t bytes = 0;
  StepGemm(DType d, const void* b, int64_t sk_, int64_t sn_, int64_t K_, int64_t N_)
      : k(gemm_kernel(d)), dt(d), K(K_), N(N_), esz(int64_t(dtype_size(d))), B(b), sk(sk_), sn(sn_) {
    if (k.direct && k.kpack == 1 && K > 0 && N % k.nr == 0) {
      bytes = size_t(K * N * esz);
      packed = static_cast<char*>(cpu_alloc(bytes));
      k.pack_b(B, sk, sn, K, N, packed);
    }
  }
  ~StepGemm() { if (packed) cpu_free(packed, bytes); }
  StepGemm(const StepGemm&) = delete;
  StepGemm& operator=(const StepGemm&) = delete;

  // All N columns on the calling thread (the batch-split loops run it inside their own region).
  void run_serial(int64_t M, const void* A, int64_t lda, void* C, int64_t ldc, double beta) const {
    if (M <= 0) return;
    if (!packed) { run(M, A, lda, C, ldc, beta); return; }  // gemm() runs serially inside a region
    k.direct(M, N, K, A, lda, packed, k.nr, K * k.nr, C, ldc, 1.0, beta);
  }
  void run(int64_t M, const void* A, int64_t lda, void* C, int64_t ldc, double beta) const {
    if (M <= 0) return;
    if (!packed) {
      GemmParams g;
      g.M = M; g.N = N; g.K = K; g.dtype = dt;
      g.A = A; g.sa_m = lda; g.sa_k = 1;
      g.B = B; g.sb_k = sk; g.sb_n = sn;
      g.C = C; g.sc_m = ldc; g.sc_n = 1;
      g.beta = beta;
      gemm(g);
      return;
    }
    const int64_t nr = k.nr, panels = N / nr;
    const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 17) / std::max<int64_t>(1, M * K * nr));
    parallel_for(0, panels, grain, [&](int64_t p0, int64_t p1) {
      k.direct(M, (p1 - p0) * nr, K, A, lda, packed + p0 * K * nr * esz, nr, K * nr,
               static_cast<char*>(C) + p0 * nr * esz, ldc, 1.0, beta);
    });
  }
};

void cells(void (*f)(DType, const RnnCellArgs&, int64_t, int64_t), DType dt, const RnnCellArgs& a) {
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, a.H * rnn_gates(a.mode)));
  parallel_for(0, a.rows, grain, [&](int64_t r0, int64_t r1) { f(dt, a, r0, r1); });
}

// How a step's work is split over threads. By columns (each step's GEMM over column panels,
// the gate pass over rows: two parallel regions and their joins per step), or by batch rows:
// each thread runs the whole time loop on its own rows, since row r of h_t depends on row r of
// h_{t-1} only. No join per step, at the cost of every thread reading all of W_hh each step.
// Rows win once each thread has a few: a char-level LM (embedding 256, one layer of 256, batch 32,
// 64 steps; 2 threads, Zen 4), forward + backward, columns -> rows: LSTM 44.9 -> 41.8 ms
// (forward 15.6 -> 13.5), GRU 36.3 -> 31.0. FASTDL_RNN_SPLIT=rows / cols forces one (tests run both).
int64_t rnn_row_chunks(int64_t B) {
  const char* e = std::getenv("FASTDL_RNN_SPLIT");
  const int64_t nt = in_parallel_region() ? 1 : get_num_threads();
  if (e && std::strcmp(e, "cols") == 0) return 1;
  const int64_t chunks = std::min<int64_t>(nt, e && std::strcmp(e, "rows") == 0 ? B : B / kRnnMinRows);
  return chunks >= 2 ? chunks : 1;
}

template <class T> void add_rows(const void* a, const void* b, void* out, int64_t n) {
  const T* x = static_cast<const T*>(a);
  const T* y = static_cast<const T*>(b);
  T* o = static_cast<T*>(out);
  for (int64_t i = 0; i < n; ++i) o[i] = x[i] + y[i];
}


}  // namespace

void rnn_cell_fwd_ref(DType dt, const RnnCellArgs& a, int64_t r0, int64_t r1) {
  if (dt == DType::f64) fwd_ref<double>(a, r0, r1); else fwd_ref<float>(a, r0, r1);
}
void rnn_cell_bwd_ref(DType dt, const RnnCellArgs& a, int64_t r0, int64_t r1) {
  if (dt == DType::f64) bwd_ref<double>(a, r0, r1); else bwd_ref<float>(a, r0, r1);
}

int64_t rnn_offsets(const int64_t* bs, int64_t T, int64_t* off) {
  int64_t n = 0;
  for (int64_t t = 0; t < T; ++t) { off[t] = n; n += bs[t]; }
  return n;
}

namespace {

// Runs step(t, r0, r1, serial) over the time steps in order (backward: reversed): one call per
// step over all its rows, the step's GEMM and gate pass splitting themselves over threads; or,
// split by rows (rnn_row_chunks), each thread calling it on its own rows of every step.
template <class F> void for_row_chunks(const RnnParams& p, const F& step, bool backward) {
  const auto t_of = [&](int64_t s) { const int64_t u = backward ? p.T - 1 - s : s; return p.reverse ? p.T - 1 - u : u; };
  const int64_t chunks = rnn_row_chunks(p.B);
  if (chunks == 1) {
    for (int64_t s = 0; s < p.T; ++s) step(t_of(s), 0, p.batch_sizes[t_of(s)], false);
    return;
  }
  parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t r0 = p.B * c / chunks, r1 = p.B * (c + 1) / chunks;
      for (int64_t s = 0; s < p.T; ++s) {
        const int64_t t = t_of(s), e1 = std::min(r1, p.batch_sizes[t]);
        if (e1 > r0) step(t, r0, e1, true);
      }
    }
  });
}

void step_gemm(const StepGemm& g, bool serial, int64_t M, const void* A, int64_t lda, void* C, int64_t ldc, double beta) {
  if (serial) g.run_serial(M, A, lda, C, ldc, beta); else g.run(M, A, lda, C, ldc, beta);
}

// Rows [r0, r1) of forward step t (all of its rows when not serial).
void fwd_step(const RnnParams& p, const RnnKernels& kern, const StepGemm& rec, const StepGemm* prj, int64_t t,
              int64_t r0, int64_t r1, bool serial) {
  const int64_t H = p.H, P = p.P, GH = rnn_gates(p.mode) * H, e = int64_t(dtype_size(p.dt));
  const int64_t off = p.offsets[t], n = r1 - r0;
  if (p.hprev) std::memcpy(rnn_at(p.hprev, (off + r0) * P, e), rnn_at(p.hst, r0 * P, e), size_t(n * P * e));
  step_gemm(rec, serial, n, rnn_at(p.hst, r0 * P, e), P, rnn_at(p.gh, r0 * GH, e), GH, 0.0);
  RnnCellArgs a = rnn_fwd_step_args(p, t);
  if (serial) kern.cell_fwd(p.dt, a, r0, r1); else cells(kern.cell_fwd, p.dt, a);
  if (prj) {
    step_gemm(*prj, serial, n, rnn_at(a.h1, r0 * H, e), H, rnn_at(p.out, (off + r0) * P, e), P, 0.0);
    std::memcpy(rnn_at(p.hst, r0 * P, e), rnn_at(p.out, (off + r0) * P, e), size_t(n * P * e));
  }
}

// Rows [r0, r1) of backward step t.
void bwd_step(const RnnParams& p, const RnnKernels& kern, const StepGemm& rec, const StepGemm* prj, int64_t t,
              int64_t r0, int64_t r1, bool serial) {
  const int64_t H = p.H, P = p.P, GH = rnn_gates(p.mode) * H, e = int64_t(dtype_size(p.dt));
  const int64_t off = p.offsets[t], n = r1 - r0;
  RnnCellArgs a = rnn_bwd_step_args(p, t);
  if (prj) {
    void* dhs = rnn_at(p.dhs, (off + r0) * P, e);
    void* dh = rnn_at(p.dh, r0 * P, e);
    if (p.dout) {
      if (p.dt == DType::f64) add_rows<double>(rnn_at(p.dout, (off + r0) * P, e), dh, dhs, n * P);
      else add_rows<float>(rnn_at(p.dout, (off + r0) * P, e), dh, dhs, n * P);
    } else {
      std::memcpy(dhs, dh, size_t(n * P * e));
    }
    step_gemm(*prj, serial, n, dhs, P, rnn_at(p.dm, r0 * H, e), H, 0.0);
    a.da = p.dm; a.ldda = H;
  } else if (p.dout) {
    a.da = rnn_at(p.dout, off * P, e); a.ldda = P;
    a.db = p.dh; a.lddb = P;
  } else {
    a.da = p.dh; a.ldda = P;
  }
  if (serial) kern.cell_bwd(p.dt, a, r0, r1); else cells(kern.cell_bwd, p.dt, a);
  step_gemm(rec, serial, n, rnn_at(a.dgh, r0 * GH, e), GH, rnn_at(p.dh, r0 * P, e), P, p.mode == RnnMode::gru ? 1.0 : 0.0);
}

}  // namespace

void rnn_fwd(const RnnParams& p) {
  const RnnKernels& kern = rnn_kernels();
  const int64_t H = p.H, P = p.P, GH = rnn_gates(p.mode) * H, SH = rnn_saved(p.mode) * H;
  const bool proj = p.w_hr != nullptr;
  {  // every step's input projection in one GEMM: gates[:, :GH] = x W_ih^T
    GemmParams g;
    g.M = p.N; g.N = GH; g.K = p.I; g.dtype = p.dt;
    g.A = p.x; g.sa_m = p.I; g.sa_k = 1;
    g.B = p.w_ih; g.sb_k = 1; g.sb_n = p.I;
    g.C = p.gates; g.sc_m = SH; g.sc_n = 1;
    gemm(g);
  }
  const StepGemm rec(p.dt, p.w_hh, 1, P, P, GH);
  std::unique_ptr<StepGemm> prj;
  if (proj) prj.reset(new StepGemm(p.dt, p.w_hr, 1, H, H, P));
  for_row_chunks(p, [&](int64_t t, int64_t r0, int64_t r1, bool serial) { fwd_step(p, kern, rec, prj.get(), t, r0, r1, serial); },
                 false);
}

void rnn_bwd(const RnnParams& p) {
  const RnnKernels& kern = rnn_kernels();
  const int64_t H = p.H, P = p.P, GH = rnn_gates(p.mode) * H;
  const bool proj = p.w_hr != nullptr;
  const StepGemm rec(p.dt, p.w_hh, P, 1, GH, P);  // dh_{t-1} = dG_h W_hh
  std::unique_ptr<StepGemm> prj;
  if (proj) prj.reset(new StepGemm(p.dt, p.w_hr, H, 1, P, H));  // dm = dh W_hr
  for_row_chunks(p, [&](int64_t t, int64_t r0, int64_t r1, bool serial) { bwd_step(p, kern, rec, prj.get(), t, r0, r1, serial); },
                 true);
}

#ifdef FASTDL_NO_X86_ISA
namespace avx2 { const RnnKernels& rnn_table() { static const RnnKernels k{rnn_cell_fwd_ref, rnn_cell_bwd_ref}; return k; } }
namespace avx512 { const RnnKernels& rnn_table() { return avx2::rnn_table(); } }
#endif

const RnnKernels& rnn_kernels() {
  static const RnnKernels ref{rnn_cell_fwd_ref, rnn_cell_bwd_ref};
  return pick_isa(cpu_isa(), ref, avx2::rnn_table(), avx512::rnn_table());
}

}  // namespace fastdl::cpu
