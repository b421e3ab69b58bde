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
// Shared by the CPU (cpu/rnn.h) and CUDA (cuda/rnn.cu) drivers: the parameter structs, and
// below them the cells' gate arithmetic both backends run.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "kernels/common.h"

namespace fastdl {

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

// Element `elems` of a buffer of esz-byte elements.
inline char* rnn_at(const void* base, int64_t elems, int64_t esz) {
  return static_cast<char*>(const_cast<void*>(base)) + elems * esz;
}

// The cell arguments of time step t, the same for both backends' step loops (host code).
// Forward: gates and gh in, c / h state updated; h lands in out (or m before the projection).
inline RnnCellArgs rnn_fwd_step_args(const RnnParams& p, int64_t t) {
  const int64_t H = p.H, P = p.P, GH = rnn_gates(p.mode) * H, SH = rnn_saved(p.mode) * H;
  const int64_t e = int64_t(dtype_size(p.dt)), off = p.offsets[t];
  RnnCellArgs a;
  a.mode = p.mode; a.rows = p.batch_sizes[t]; a.H = H;
  a.g = rnn_at(p.gates, off * SH, e); a.ldg = SH;
  a.gh = p.gh; a.ldgh = GH;
  a.bi = p.b_ih; a.bh = p.b_hh;
  a.c = p.cst; a.cprev = p.cprev ? rnn_at(p.cprev, off * H, e) : nullptr;
  a.hprev = p.hst; a.ldhp = P;
  if (p.w_hr) { a.h1 = rnn_at(p.m, off * H, e); a.ld1 = H; }
  else { a.h1 = rnn_at(p.out, off * P, e); a.ld1 = P; a.h2 = p.hst; a.ld2 = P; }
  return a;
}
// Backward: the saved gates and previous states of step t in, the pre-activation gradients out
// (GRU keeps its recurrent side in dgh; the others share dgx); dz_out is dh.
inline RnnCellArgs rnn_bwd_step_args(const RnnParams& p, int64_t t) {
  const int64_t H = p.H, P = p.P, GH = rnn_gates(p.mode) * H, SH = rnn_saved(p.mode) * H;
  const int64_t e = int64_t(dtype_size(p.dt)), off = p.offsets[t];
  const bool gru = p.mode == RnnMode::gru;
  RnnCellArgs a;
  a.mode = p.mode; a.rows = p.batch_sizes[t]; a.H = H;
  a.g = rnn_at(p.gates, off * SH, e); a.ldg = SH;
  a.cprev = p.cprev ? rnn_at(p.cprev, off * H, e) : nullptr;
  a.hprev = gru ? rnn_at(p.hprev, off * P, e) : rnn_at(p.out, off * P, e); a.ldhp = P;
  a.dc = p.dc;
  a.dgx = rnn_at(p.dgx, off * GH, e); a.dgh = rnn_at(gru ? p.dgh : p.dgx, off * GH, e); a.lddg = GH;
  a.dz_out = p.dh; a.lddz = P;
  return a;
}

// The recurrent cells' gate arithmetic written once over a lane policy M (a scalar type, or an
// explicit float vector in cpu/rnn_vec.cpp, a CUDA thread in cuda/rnn.cu): M::V the lane type,
// ld / st, sig, tanh, and pos(h, x) = h > 0 ? x : 0. Used by cpu/rnn.cpp (scalar reference),
// cpu/rnn_vec.cpp and cuda/rnn.cu.
// Formulas and gate order are PyTorch's:
//   LSTM  i, f, g, o = sig, sig, tanh, sig of (x W_ih^T + b_ih + h W_hh^T + b_hh)
//         c' = f c + i g;  h' = o tanh(c')
//   GRU   r, z = sig(..);  n = tanh(x W_in^T + b_in + r (h W_hn^T + b_hn));  h' = (1 - z) n + z h
//   RNN   h' = tanh or relu of (x W_ih^T + b_ih + h W_hh^T + b_hh)

namespace rnn_cell {

// Units [j0, j0 + lanes) of row r. All loads of one element come before its stores, so the
// in-place operands (gates over pre-activations, the state h2 over hprev) are safe.
template <class M, class T>
FASTDL_HD void fwd_at(const RnnCellArgs& a, int64_t r, int64_t j) {
  using V = typename M::V;
  const int64_t H = a.H;
  T* g = static_cast<T*>(a.g) + r * a.ldg + j;
  const T* gh = static_cast<const T*>(a.gh) + r * a.ldgh + j;
  const T* bi = static_cast<const T*>(a.bi) + j;
  const T* bh = static_cast<const T*>(a.bh) + j;
  T* h1 = static_cast<T*>(a.h1) + r * a.ld1 + j;
  T* h2 = a.h2 ? static_cast<T*>(a.h2) + r * a.ld2 + j : nullptr;
  V h;
  if (a.mode == RnnMode::lstm) {
    const V i = M::sig(M::ld(g) + M::ld(gh) + M::ld(bi) + M::ld(bh));
    const V f = M::sig(M::ld(g + H) + M::ld(gh + H) + M::ld(bi + H) + M::ld(bh + H));
    const V gg = M::tanh(M::ld(g + 2 * H) + M::ld(gh + 2 * H) + M::ld(bi + 2 * H) + M::ld(bh + 2 * H));
    const V o = M::sig(M::ld(g + 3 * H) + M::ld(gh + 3 * H) + M::ld(bi + 3 * H) + M::ld(bh + 3 * H));
    T* c = static_cast<T*>(a.c) + r * H + j;
    const V cp = M::ld(c);
    if (a.cprev) M::st(static_cast<T*>(a.cprev) + r * H + j, cp);
    const V cn = f * cp + i * gg;
    M::st(c, cn);
    M::st(g, i); M::st(g + H, f); M::st(g + 2 * H, gg); M::st(g + 3 * H, o);
    h = o * M::tanh(cn);
  } else if (a.mode == RnnMode::gru) {
    const V rr = M::sig(M::ld(g) + M::ld(bi) + M::ld(gh) + M::ld(bh));
    const V z = M::sig(M::ld(g + H) + M::ld(bi + H) + M::ld(gh + H) + M::ld(bh + H));
    const V hn = M::ld(gh + 2 * H) + M::ld(bh + 2 * H);
    const V n = M::tanh(M::ld(g + 2 * H) + M::ld(bi + 2 * H) + rr * hn);
    const V hp = M::ld(static_cast<const T*>(a.hprev) + r * a.ldhp + j);
    M::st(g, rr); M::st(g + H, z); M::st(g + 2 * H, n); M::st(g + 3 * H, hn);
    h = n + z * (hp - n);
  } else {
    const V pre = M::ld(g) + M::ld(gh) + M::ld(bi) + M::ld(bh);
    h = a.mode == RnnMode::tanh ? M::tanh(pre) : M::pos(pre, pre);
  }
  M::st(h1, h);
  if (h2) M::st(h2, h);
}

template <class M, class T>
FASTDL_HD void bwd_at(const RnnCellArgs& a, int64_t r, int64_t j) {
  using V = typename M::V;
  const int64_t H = a.H;
  V dh = M::ld(static_cast<const T*>(a.da) + r * a.ldda + j);
  if (a.db) dh = dh + M::ld(static_cast<const T*>(a.db) + r * a.lddb + j);
  const T* g = static_cast<const T*>(a.g) + r * a.ldg + j;
  T* dgx = static_cast<T*>(a.dgx) + r * a.lddg + j;
  const V one = M::ld1();
  if (a.mode == RnnMode::lstm) {
    const V i = M::ld(g), f = M::ld(g + H), gg = M::ld(g + 2 * H), o = M::ld(g + 3 * H);
    const V cp = M::ld(static_cast<const T*>(a.cprev) + r * H + j);
    const V tc = M::tanh(f * cp + i * gg);
    T* dcp = static_cast<T*>(a.dc) + r * H + j;
    const V dc = M::ld(dcp) + dh * o * (one - tc * tc);
    M::st(dgx, dc * gg * i * (one - i));
    M::st(dgx + H, dc * cp * f * (one - f));
    M::st(dgx + 2 * H, dc * i * (one - gg * gg));
    M::st(dgx + 3 * H, dh * tc * o * (one - o));
    M::st(dcp, dc * f);
  } else if (a.mode == RnnMode::gru) {
    const V rr = M::ld(g), z = M::ld(g + H), n = M::ld(g + 2 * H), hn = M::ld(g + 3 * H);
    const V hp = M::ld(static_cast<const T*>(a.hprev) + r * a.ldhp + j);
    const V dnp = dh * (one - z) * (one - n * n);
    const V drp = dnp * hn * rr * (one - rr);
    const V dzp = dh * (hp - n) * z * (one - z);
    T* dgh = static_cast<T*>(a.dgh) + r * a.lddg + j;
    M::st(dgx, drp); M::st(dgx + H, dzp); M::st(dgx + 2 * H, dnp);
    M::st(dgh, drp); M::st(dgh + H, dzp); M::st(dgh + 2 * H, dnp * rr);
    M::st(static_cast<T*>(a.dz_out) + r * a.lddz + j, dh * z);
  } else {
    const V h = M::ld(static_cast<const T*>(a.hprev) + r * a.ldhp + j);
    M::st(dgx, a.mode == RnnMode::tanh ? dh * (one - h * h) : M::pos(h, dh));
  }
}

}  // namespace rnn_cell

}  // namespace fastdl
