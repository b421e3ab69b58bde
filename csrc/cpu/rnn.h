// Recurrent layers (Elman RNN tanh/relu, LSTM with optional projection, GRU; PyTorch's gate
// order and formulas), one layer and one direction per call, over a packed sequence: the rows
// of step t are data[off_t, off_t + bs_t) with batch sizes bs_t non-increasing (a padded
// (T, B, I) input is the packing with every bs_t = B). Shorter sequences simply drop out of
// the active row prefix, so their state stops updating.
//   forward:  gx = x W_ih^T (one GEMM over all steps), then per step gh = h W_hh^T (GEMM) and
//             one fused gate kernel; LSTM with proj: h = (o tanh c) W_hr^T (GEMM)
//   backward: the whole reverse loop: per step the fused gate backward and dh = dG W_hh (GEMM);
//             the weight / input gradients are single GEMMs over all steps done by the op.
// The op (ops/rnn.cpp) checks shapes and allocates every buffer; the drivers never allocate
// but for per-call packing scratch.
#pragma once
#include <cstdint>

#include "core/cpu_info.h"
#include "core/dtype.h"

namespace fastdl::cpu {

enum class RnnMode : int { tanh = 0, relu = 1, lstm = 2, gru = 3 };
inline int rnn_gates(RnnMode m) { return m == RnnMode::lstm ? 4 : m == RnnMode::gru ? 3 : 1; }
// Width (in units of H) of a step's saved gate row: LSTM i,f,g,o; GRU r,z,n and W_hn h + b_hn;
// plain RNN only its input projection (the output h is what its backward needs).
inline int rnn_saved(RnnMode m) { return m == RnnMode::lstm || m == RnnMode::gru ? 4 : 1; }

// One step's fused gate arithmetic over `rows` rows; pointers at row 0, row strides in elements.
struct RnnCellArgs {
  RnnMode mode = RnnMode::lstm;
  int64_t rows = 0, H = 0;
  void* g = nullptr; int64_t ldg = 0;            // fwd: pre-activations x W_ih^T in, saved gates out; bwd: saved gates
  const void* gh = nullptr; int64_t ldgh = 0;    // fwd: h_{t-1} W_hh^T (rows, G H)
  const void* bi = nullptr; const void* bh = nullptr;  // (G H) biases (zeros when the layer has none)
  void* c = nullptr;                             // LSTM fwd: c_{t-1} in, c_t out (rows, H), ld H
  void* cprev = nullptr;                         // LSTM: c_{t-1} saved by fwd (rows, H) ld H, or null; read by bwd
  const void* hprev = nullptr; int64_t ldhp = 0; // GRU: h_{t-1}; RNN bwd: h_t (its own output)
  void* h1 = nullptr; int64_t ld1 = 0;           // fwd: new h (LSTM with proj: o tanh c) written here
  void* h2 = nullptr; int64_t ld2 = 0;           //      ... and here when not null (the state)
  // backward: dh = da + db (db may be null); writes dgx (and dgh for GRU), updates the LSTM
  // carry dc (rows, H) in place, and for GRU writes dh z into dz_out (the direct h_{t-1} term).
  const void* da = nullptr; int64_t ldda = 0;
  const void* db = nullptr; int64_t lddb = 0;
  void* dc = nullptr;
  void* dgx = nullptr; void* dgh = nullptr; int64_t lddg = 0;
  void* dz_out = nullptr; int64_t lddz = 0;
};

struct RnnKernels {
  void (*cell_fwd)(DType dt, const RnnCellArgs& a, int64_t r0, int64_t r1);  // rows [r0, r1)
  void (*cell_bwd)(DType dt, const RnnCellArgs& a, int64_t r0, int64_t r1);
};

struct RnnParams {
  RnnMode mode = RnnMode::lstm;
  DType dt = DType::f32;
  bool reverse = false;
  int64_t T = 0, B = 0, I = 0, H = 0, P = 0;  // P: output width (proj_size, or H)
  const int64_t* batch_sizes = nullptr;      // (T) host, non-increasing, bs_0 = B
  const int64_t* offsets = nullptr;          // (T) host: first row of step t
  int64_t N = 0;                             // total rows = sum of batch sizes
  const void* x = nullptr;                   // (N, I)
  const void *w_ih = nullptr, *w_hh = nullptr, *w_hr = nullptr;  // (G H, I), (G H, P), (P, H) or null
  const void *b_ih = nullptr, *b_hh = nullptr;                   // (G H) each, never null
  // forward
  void* out = nullptr;      // (N, P)
  void* hst = nullptr;      // (B, P): h0 in, h_n out
  void* cst = nullptr;      // (B, H): c0 in, c_n out (LSTM)
  void* gates = nullptr;    // (N, S H), S = rnn_saved(mode)
  void* cprev = nullptr;    // (N, H) LSTM, or null (no grad)
  void* hprev = nullptr;    // (N, P) h_{t-1} of every row, or null (no grad)
  void* m = nullptr;        // (N, H) o tanh c before the projection (proj only)
  void* gh = nullptr;       // (B, G H) scratch
  // backward
  const void* dout = nullptr;  // (N, P) or null
  void* dh = nullptr;          // (B, P): dL/dh_n in, dL/dh_0 out
  void* dc = nullptr;          // (B, H): dL/dc_n in, dL/dc_0 out (LSTM)
  void* dgx = nullptr;         // (N, G H): gradient of the input-side pre-activations
  void* dgh = nullptr;         // (N, G H): recurrent side (GRU only; others share dgx)
  void* dhs = nullptr;         // (N, P): dL/dh_t of every row (proj only)
  void* dm = nullptr;          // (B, H) scratch (proj only)
};

// Fills p.offsets' storage from batch sizes (off[t] = sum of bs before t); returns N.
int64_t rnn_offsets(const int64_t* bs, int64_t T, int64_t* off);

void rnn_fwd(const RnnParams& p);  // CPU drivers over the ISA's cell kernels and cpu::gemm
void rnn_bwd(const RnnParams& p);

// Plain scalar cell kernels: the oracle, and the `ref` ISA's path.
void rnn_cell_fwd_ref(DType dt, const RnnCellArgs& a, int64_t r0, int64_t r1);
void rnn_cell_bwd_ref(DType dt, const RnnCellArgs& a, int64_t r0, int64_t r1);

namespace avx2 { const RnnKernels& rnn_table(); }
namespace avx512 { const RnnKernels& rnn_table(); }
const RnnKernels& rnn_kernels();

}  // namespace fastdl::cpu
