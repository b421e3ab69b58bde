// rnn_layer: one recurrent layer-direction over a padded or packed sequence. Checks, buffers,
// dispatch to cpu/rnn.h (or cuda::rnn_*), and RnnBackward: the reverse time loop runs natively
// and leaves the pre-activation gradients of every step, from which the input and weight
// gradients are single GEMMs over all steps.
#include "ops/rnn.h"

#include "autograd/node.h"
#include "core/profiler.h"
#include "cpu/rnn.h"
#include "cuda/cuda_api.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace fastdl {

namespace {

using V = std::vector<Tensor>;
using cpu::RnnMode;

const char* mode_name(int64_t m) {
  static const char* names[] = {"rnn_tanh", "rnn_relu", "lstm", "gru"};
  return m >= 0 && m < 4 ? names[m] : "rnn";
}

void expect(const char* op, const Tensor& t, const char* name, const Dims& shape) {
  FASTDL_CHECK(t.shape() == shape, ValueError, op, ": ", name, " must have shape ", shape_str(shape), "; got ",
               shape_str(t.shape()));
}

Tensor prep(const Tensor& t) { return t.defined() ? contiguous(detach(t)) : Tensor(); }

void run(bool fwd, const cpu::RnnParams& p, Device dev) {
  if (dev.is_cpu()) { if (fwd) cpu::rnn_fwd(p); else cpu::rnn_bwd(p); }
  else if (fwd) cuda::rnn_fwd(p, dev.index);
  else cuda::rnn_bwd(p, dev.index);
}

void* ptr(const Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; }

}  // namespace

std::vector<Tensor> rnn_layer(const Tensor& x, const Tensor& batch_sizes, const Tensor& h0, const Tensor& c0,
                              const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh,
                              const Tensor& w_hr, int64_t mode, bool reverse) {
  FASTDL_PROFILE("rnn_layer", x, w_ih, w_hh);
  const char* op = mode_name(mode);
  FASTDL_CHECK(mode >= 0 && mode < 4, ValueError, "rnn: mode must be 0 (RNN_TANH), 1 (RNN_RELU), 2 (LSTM) or 3 (GRU); got ", mode);
  FASTDL_CHECK(x.defined() && w_ih.defined() && w_hh.defined(), ValueError, op, ": input, weight_ih and weight_hh are required");
  const RnnMode m = RnnMode(mode);
  const int64_t G = cpu::rnn_gates(m);
  // Sequence layout: batch sizes per step, padded (every step B) or packed.
  std::vector<int64_t> bs;
  int64_t I = 0;
  if (!batch_sizes.defined()) {
    FASTDL_CHECK(x.ndim() == 3, ValueError, op, ": input must be (seq_len, batch, input_size); got shape ", shape_str(x.shape()));
    FASTDL_CHECK(x.shape()[0] > 0 && x.shape()[1] > 0, ValueError, op,
                 ": input needs at least one step and one batch element; got shape ", shape_str(x.shape()));
    bs.assign(size_t(x.shape()[0]), x.shape()[1]);
    I = x.shape()[2];
  } else {
    FASTDL_CHECK(batch_sizes.dtype() == DType::i64 && batch_sizes.ndim() == 1 && batch_sizes.device().is_cpu(), TypeError, op,
                 ": batch_sizes must be a 1-d int64 CPU tensor; got dtype ", dtype_name(batch_sizes.dtype()), " shape ",
                 shape_str(batch_sizes.shape()));
    FASTDL_CHECK(x.ndim() == 2, ValueError, op, ": packed input data must be (sum(batch_sizes), input_size); got shape ",
                 shape_str(x.shape()));
    const Tensor b = contiguous(batch_sizes);
    bs.assign(b.data<int64_t>(), b.data<int64_t>() + b.numel());
    FASTDL_CHECK(!bs.empty(), ValueError, op, ": batch_sizes must not be empty");
    int64_t n = 0;
    for (size_t t = 0; t < bs.size(); ++t) {
      FASTDL_CHECK(bs[t] > 0 && (t == 0 || bs[t] <= bs[t - 1]), ValueError, op,
                   ": batch_sizes must be positive and non-increasing; got ", bs[t], " at step ", t);
      n += bs[t];
    }
    FASTDL_CHECK(n == x.shape()[0], ValueError, op, ": packed input has ", x.shape()[0], " rows but batch_sizes sum to ", n);
    I = x.shape()[1];
  }
  const int64_t T = int64_t(bs.size()), B = bs[0];
  FASTDL_CHECK(w_ih.ndim() == 2 && w_ih.shape()[0] % G == 0 && w_ih.shape()[0] > 0 && w_ih.shape()[1] == I, ValueError, op,
               ": weight_ih must be (", G, " * hidden_size, input_size = ", I, "); got shape ", shape_str(w_ih.shape()),
               " with input ", shape_str(x.shape()));
  const int64_t H = w_ih.shape()[0] / G;
  FASTDL_CHECK(!w_hr.defined() || m == RnnMode::lstm, ValueError, op, ": weight_hr (proj_size) is only for LSTM");
  if (w_hr.defined())
    FASTDL_CHECK(w_hr.ndim() == 2 && w_hr.shape()[1] == H && w_hr.shape()[0] > 0, ValueError, op,
                 ": weight_hr must be (proj_size, hidden_size = ", H, "); got shape ", shape_str(w_hr.shape()));
  const int64_t P = w_hr.defined() ? w_hr.shape()[0] : H;
  expect(op, w_hh, "weight_hh", Dims{G * H, P});
  if (b_ih.defined()) expect(op, b_ih, "bias_ih", Dims{G * H});
  if (b_hh.defined()) expect(op, b_hh, "bias_hh", Dims{G * H});
  if (h0.defined()) expect(op, h0, "hx", Dims{B, P});
  FASTDL_CHECK(!c0.defined() || m == RnnMode::lstm, ValueError, op, ": a cell state c0 is only for LSTM");
  if (c0.defined()) expect(op, c0, "cx", Dims{B, H});
  const DType dt = x.dtype();
  FASTDL_CHECK(dt == DType::f32 || dt == DType::f64, TypeError, op, ": input must be float32 or float64; got ", dtype_name(dt));
  const char* names[] = {"hx", "cx", "weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"};
  const Tensor* others[] = {&h0, &c0, &w_ih, &w_hh, &b_ih, &b_hh, &w_hr};
  for (int i = 0; i < 7; ++i)
    if (others[i]->defined()) {
      FASTDL_CHECK(others[i]->dtype() == dt, TypeError, op, ": ", names[i], " has dtype ", dtype_name(others[i]->dtype()),
                   " but input has ", dtype_name(dt));
      check_same_device(x, *others[i], op);
    }
  const Device dev = x.device();
  std::vector<int64_t> off(bs.size());
  const int64_t N = cpu::rnn_offsets(bs.data(), T, off.data());
  const int64_t GH = G * H;
  const bool grad = autograd::any_requires_grad({x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr});

  Tensor xc = reshape(prep(x), {N, I}), wi = prep(w_ih), wh = prep(w_hh), wr = prep(w_hr);
  Tensor bi = b_ih.defined() ? prep(b_ih) : zeros({GH}, dt, dev), bh = b_hh.defined() ? prep(b_hh) : zeros({GH}, dt, dev);
  Tensor out = empty({N, P}, dt, dev);
  Tensor hn = h0.defined() ? clone(detach(h0)) : zeros({B, P}, dt, dev);
  Tensor cn = m != RnnMode::lstm ? Tensor() : c0.defined() ? clone(detach(c0)) : zeros({B, H}, dt, dev);
  Tensor gates = empty({N, cpu::rnn_saved(m) * H}, dt, dev), gh = empty({B, GH}, dt, dev);
  Tensor cprev = grad && m == RnnMode::lstm ? empty({N, H}, dt, dev) : Tensor();
  Tensor hprev = grad ? empty({N, P}, dt, dev) : Tensor();
  Tensor mm = wr.defined() ? empty({N, H}, dt, dev) : Tensor();

  cpu::RnnParams p;
  p.mode = m; p.dt = dt; p.reverse = reverse;
  p.T = T; p.B = B; p.I = I; p.H = H; p.P = P; p.N = N;
  p.batch_sizes = bs.data(); p.offsets = off.data();
  p.x = xc.data_ptr(); p.w_ih = wi.data_ptr(); p.w_hh = wh.data_ptr(); p.w_hr = ptr(wr);
  p.b_ih = bi.data_ptr(); p.b_hh = bh.data_ptr();
  p.out = out.data_ptr(); p.hst = hn.data_ptr(); p.cst = ptr(cn);
  p.gates = gates.data_ptr(); p.cprev = ptr(cprev); p.hprev = ptr(hprev); p.m = ptr(mm); p.gh = gh.data_ptr();
  run(true, p, dev);

  if (!batch_sizes.defined()) out = reshape(out, {T, B, P});
  if (grad) {
    bool need[8];
    const Tensor* ins[8] = {&x, &h0, &c0, &w_ih, &w_hh, &b_ih, &b_hh, &w_hr};
    for (int i = 0; i < 8; ++i) need[i] = ins[i]->defined() && ins[i]->requires_grad();
    const IntList xshape(x.shape().data(), x.shape().data() + x.ndim());
    Tensor outd = reshape(detach(out), {N, P});  // not `out` itself: the node must not own its output
    std::vector<Tensor*> outs{&out, &hn};
    if (cn.defined()) outs.push_back(&cn);
    autograd::record(m == RnnMode::lstm ? "LstmBackward" : m == RnnMode::gru ? "GruBackward" : "RnnBackward",
                     {x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr}, outs,
                     [p, bs, off, xc, wi, wh, wr, bi, bh, gates, cprev, hprev, mm, outd, need, xshape, dev](V& g) mutable {
      const int64_t N = p.N, B = p.B, H = p.H, P = p.P, GH = cpu::rnn_gates(p.mode) * H;
      const DType dt = p.dt;
      const bool gru = p.mode == RnnMode::gru;
      Tensor dout = g[0].defined() ? reshape(contiguous(g[0]), {N, P}) : Tensor();
      Tensor dh = g[1].defined() ? clone(g[1]) : zeros({B, P}, dt, dev);
      Tensor dc = p.mode != RnnMode::lstm ? Tensor() : g.size() > 2 && g[2].defined() ? clone(g[2]) : zeros({B, H}, dt, dev);
      Tensor dgx = empty({N, GH}, dt, dev), dgh = gru ? empty({N, GH}, dt, dev) : dgx;
      Tensor dhs = wr.defined() ? empty({N, P}, dt, dev) : Tensor(), dm = wr.defined() ? empty({B, H}, dt, dev) : Tensor();
      p.batch_sizes = bs.data(); p.offsets = off.data();
      p.out = outd.data_ptr();
      p.dout = ptr(dout); p.dh = dh.data_ptr(); p.dc = ptr(dc);
      p.dgx = dgx.data_ptr(); p.dgh = gru ? dgh.data_ptr() : nullptr; p.dhs = ptr(dhs); p.dm = ptr(dm);
      run(false, p, dev);
      V r(8);
      if (need[0]) r[0] = reshape(matmul(dgx, wi), xshape);
      if (need[1]) r[1] = dh;
      if (need[2]) r[2] = dc;
      if (need[3]) r[3] = matmul(transpose(dgx, 0, 1), xc);
      if (need[4]) r[4] = matmul(transpose(dgh, 0, 1), hprev);
      // bias gradients: column sums as a matrix-vector product (a row of ones), far faster than
      // a reduction down the long dim
      Tensor ones_row = need[5] || need[6] ? ones({1, N}, dt, dev) : Tensor();
      if (need[5]) r[5] = reshape(matmul(ones_row, dgx), {GH});
      if (need[6]) r[6] = gru || !need[5] ? reshape(matmul(ones_row, dgh), {GH}) : clone(r[5]);  // same sum unless GRU
      if (need[7]) r[7] = matmul(transpose(dhs, 0, 1), mm);
      return r;
    }, {x, h0, c0, w_ih, w_hh, w_hr});
    autograd::mark_no_double_backward(out);
  }
  if (cn.defined()) return {out, hn, cn};
  return {out, hn};
}

}  // namespace fastdl
