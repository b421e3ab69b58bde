// The recurrent cells' gate arithmetic written once over a lane policy M (a scalar type, or an
// explicit float vector in rnn_vec.cpp, a CUDA thread in cuda/rnn.cu): M::V the lane type, ld / st, sig, tanh, and
// pos(h, x) = h > 0 ? x : 0. Included by rnn.cpp (scalar reference), rnn_vec.cpp and cuda/rnn.cu.
// Formulas and gate order are PyTorch's:
//   LSTM  i, f, g, o = sig, sig, tanh, sig of (x W_ih^T + b_ih + h W_hh^T + b_hh)
//         c' = f c + i g;  h' = o tanh(c')
//   GRU   r, z = sig(..);  n = tanh(x W_in^T + b_in + r (h W_hn^T + b_hn));  h' = (1 - z) n + z h
//   RNN   h' = tanh or relu of (x W_ih^T + b_ih + h W_hh^T + b_hh)
#pragma once
#include <cstdint>

#include "cpu/rnn.h"

#ifdef __CUDACC__
#define FASTDL_RNN_HD __host__ __device__
#else
#define FASTDL_RNN_HD
#endif

namespace fastdl::cpu::rnn_cell {

// Units [j0, j0 + lanes) of row r. All loads of one element come before its stores, so the
// in-place operands (gates over pre-activations, the state h2 over hprev) are safe.
template <class M, class T>
FASTDL_RNN_HD inline void fwd_at(const RnnCellArgs& a, int64_t r, int64_t j) {
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
FASTDL_RNN_HD inline void bwd_at(const RnnCellArgs& a, int64_t r, int64_t j) {
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

}  // namespace fastdl::cpu::rnn_cell
