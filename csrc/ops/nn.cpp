// Neural-network functions with fused CPU row kernels (cpu/nn_vec.cpp): softmax/log_softmax,
// layer_norm (saving mean/rstd) and cross entropy from logits (saving the log-sum-exp), each
// with a fused backward; plus dropout. CUDA tensors take composed paths over the native ops.
#include <cmath>

#include "autograd/node.h"
#include "core/parallel.h"
#include "cpu/nn.h"
#include "cuda/cuda_api.h"
#include "kernels/norm.h"
#include "kernels/random.h"
#include "ops/dispatch.h"
#include "core/profiler.h"
#include "ops/norm.h"
#include "ops/ops.h"

namespace fastdl {

using V = std::vector<Tensor>;

namespace {

DType compute_dtype(DType dt) { return dt == DType::f64 ? DType::f64 : DType::f32; }

// Backward of softmax/log_softmax along d given the output y: fused on CPU; composed on CUDA and
// under create_graph, where y is joined to this node again (saved_output) so the second derivative sees it.
Tensor softmax_backward(Tensor y, const Tensor& g, int d, bool log) {
  if (autograd::grad_enabled()) y = autograd::saved_output(y);
  else if (y.device().is_cpu()) {
    DType kt = compute_dtype(y.dtype());
    Tensor yc = contiguous(movedim(to_dtype(y, kt), d, -1));
    Tensor gc = contiguous(movedim(to_dtype(g, kt), d, -1));
    Tensor gx = empty(yc.shape(), kt);
    int64_t n = yc.ndim() ? yc.shape()[yc.ndim() - 1] : 1;
    int64_t rows = n ? yc.numel() / n : 0;
    cpu::nn_kernels().softmax_bwd(kt, yc.data_ptr(), gc.data_ptr(), gx.data_ptr(), rows, n, log);
    return to_dtype(movedim(gx, -1, d), y.dtype());
  }
  if (log) return sub(g, mul(unary(UnaryOp::exp, y), sum(g, {d}, true)));
  return mul(y, sub(g, sum(mul(g, y), {d}, true)));
}

Tensor softmax_impl(const Tensor& a, int64_t dim, bool log) {
  FASTDL_PROFILE(log ? "log_softmax" : "softmax", a);
  const char* name = log ? "log_softmax" : "softmax";
  int d = wrap_dim(dim, std::max(a.ndim(), 1), name);
  DType dt = is_floating(a.dtype()) ? a.dtype() : DType::f32;
  DType kt = compute_dtype(dt);
  Tensor out;
  if (a.device().is_cpu()) {
    Tensor x = contiguous(movedim(to_dtype(detach(a), kt), d, -1));
    Tensor y = empty(x.shape(), kt);
    int64_t n = a.ndim() ? a.shape()[d] : 1;
    int64_t rows = n ? x.numel() / n : 0;
    cpu::nn_kernels().softmax_fwd(kt, x.data_ptr(), y.data_ptr(), rows, n, log);
    out = contiguous(movedim(y, -1, d));
  } else {
    Tensor x = to_dtype(detach(a), kt);
    Tensor m = amax(x, {d}, true);
    Tensor z = sub(x, m);
    Tensor lse = unary(UnaryOp::log, sum(unary(UnaryOp::exp, z), {d}, true));
    out = log ? sub(z, lse) : unary(UnaryOp::exp, sub(z, lse));
  }
  if (kt != dt) out = to_dtype(out, dt);
  if (autograd::any_requires_grad(a)) {
    Tensor y = detach(out);
    autograd::record(log ? "LogSoftmaxBackward0" : "SoftmaxBackward0", {a}, out,
                     [y, d, log](V& g) { return V{softmax_backward(y, g[0], d, log)}; }, {out});
  }
  return out;
}

// create_graph: layer_norm's backward composed from the inputs; gw, gb sum g xh, g over leading dims.
V layer_norm_backward_graph(const Tensor& x, const Tensor& w, const Tensor& g, const IntList& dims, double eps,
                            bool need_w, bool need_b) {
  auto [gx, xh] = normalize_backward_graph(x, w.defined() ? mul(g, w) : g, dims, eps);
  IntList lead;
  for (int i = 0; i < x.ndim() - int(dims.size()); ++i) lead.push_back(i);
  auto lsum = [&](const Tensor& t) { return lead.empty() ? t : sum(t, lead, false); };
  return V{gx, need_w ? lsum(mul(g, xh)) : Tensor(), need_b ? lsum(g) : Tensor()};
}

// layer_norm's and rms_norm's arguments: normalized_shape the input's trailing dims, weight and
// bias of that shape on the input's device, a float input; the normalised dims, and the input
// seen as rows of n elements.
struct NormRows {
  IntList dims;
  int64_t n = 1, rows = 0;
};
NormRows norm_rows(const char* op, const Tensor& x, const IntList& normalized_shape, const Tensor& w, const Tensor& b) {
  const int k = int(normalized_shape.size());
  FASTDL_CHECK(k >= 1 && k <= x.ndim(), ValueError, op, ": normalized_shape ", shape_str(Dims(normalized_shape)),
               " does not fit input of shape ", shape_str(x.shape()));
  for (int i = 0; i < k; ++i)
    FASTDL_CHECK(x.shape()[x.ndim() - k + i] == normalized_shape[size_t(i)], ValueError, op,
                 ": expected input with shape (*, ", shape_str(Dims(normalized_shape)), "); got ", shape_str(x.shape()));
  const char* names[] = {"weight", "bias"};
  const Tensor* params[] = {&w, &b};
  for (int i = 0; i < 2; ++i)
    if (params[i]->defined()) {
      FASTDL_CHECK(params[i]->shape() == Dims(normalized_shape), ValueError, op, ": ", names[i], " must have shape ",
                   shape_str(Dims(normalized_shape)), "; got ", shape_str(params[i]->shape()));
      check_same_device(x, *params[i], op);
    }
  FASTDL_CHECK(is_floating(x.dtype()), TypeError, op, ": input must be floating point; got ", dtype_name(x.dtype()));
  NormRows r;
  for (int i = x.ndim() - k; i < x.ndim(); ++i) r.dims.push_back(i);
  for (int64_t s : normalized_shape) r.n *= s;
  r.rows = r.n ? x.numel() / r.n : 0;
  return r;
}

}  // namespace

Tensor softmax(const Tensor& a, int64_t dim) { return softmax_impl(a, dim, false); }
Tensor log_softmax(const Tensor& a, int64_t dim) { return softmax_impl(a, dim, true); }

Tensor layer_norm(const Tensor& x, const IntList& normalized_shape, const Tensor& w, const Tensor& b, double eps) {
  FASTDL_PROFILE("layer_norm", x, w, b);
  const NormRows nr = norm_rows("layer_norm", x, normalized_shape, w, b);
  const IntList& dims = nr.dims;
  const int64_t n = nr.n, rows = nr.rows;
  // The CPU's fused kernels; on CUDA, group norm's forward with one group per row (rows of n
  // contiguous elements, weight and bias per element) and layer norm's own backward.
  const Device dev = x.device();
  const DType kt = compute_dtype(x.dtype());
  Tensor xc = contiguous(to_dtype(detach(x), kt));
  Tensor wc = w.defined() ? contiguous(to_dtype(detach(w), kt)) : Tensor();
  Tensor bc = b.defined() ? contiguous(to_dtype(detach(b), kt)) : Tensor();
  Tensor y = empty(x.shape(), kt, dev), mu = empty(Dims{rows}, kt, dev), rs = empty(Dims{rows}, kt, dev);
  if (dev.is_cpu()) {
    cpu::nn_kernels().layer_norm_fwd(kt, xc.data_ptr(), wc.defined() ? wc.data_ptr() : nullptr,
                                     bc.defined() ? bc.data_ptr() : nullptr, y.data_ptr(), mu.data_ptr(), rs.data_ptr(),
                                     rows, n, eps, false);
  } else if (rows && n) {
    GroupNormParams q;
    q.dt = kt; q.N = rows; q.C = n; q.S = 1; q.G = 1; q.eps = eps;
    q.x = xc.data_ptr(); q.w = wc.defined() ? wc.data_ptr() : nullptr; q.b = bc.defined() ? bc.data_ptr() : nullptr;
    q.y = y.data_ptr(); q.mean = mu.data_ptr(); q.invstd = rs.data_ptr();
    cuda::group_norm_fwd(q, dev.index);
  }
  Tensor out = kt == x.dtype() ? y : to_dtype(y, x.dtype());
  if (autograd::any_requires_grad(x) || autograd::any_requires_grad(w, b)) {
    const bool need_w = w.defined() && w.requires_grad(), need_b = b.defined() && b.requires_grad();
    DType xdt = x.dtype(), wdt = w.defined() ? w.dtype() : kt, bdt = b.defined() ? b.dtype() : kt;
    Dims wshape(normalized_shape);
    autograd::record("NativeLayerNormBackward0", {x, w, b}, out,
                     [x, w, dims, eps, xc, wc, mu, rs, rows, n, kt, need_w, need_b, xdt, wdt, bdt, wshape, dev](V& g) {
      if (autograd::grad_enabled()) return layer_norm_backward_graph(x, w, g[0], dims, eps, need_w, need_b);
      Tensor gy = contiguous(to_dtype(g[0], kt));
      Tensor gx = empty(xc.shape(), kt, dev);
      Tensor gw = need_w ? empty(wshape, kt, dev) : Tensor(), gb = need_b ? empty(wshape, kt, dev) : Tensor();
      if (dev.is_cpu()) {
        cpu::nn_kernels().layer_norm_bwd(kt, xc.data_ptr(), wc.defined() ? wc.data_ptr() : nullptr, mu.data_ptr(),
                                         rs.data_ptr(), gy.data_ptr(), gx.data_ptr(), need_w ? gw.data_ptr() : nullptr,
                                         need_b ? gb.data_ptr() : nullptr, rows, n, false);
      } else {
        LayerNormParams q;
        q.dt = kt; q.rows = rows; q.n = n;
        q.x = xc.data_ptr(); q.w = wc.defined() ? wc.data_ptr() : nullptr; q.mean = mu.data_ptr(); q.invstd = rs.data_ptr();
        q.gy = gy.data_ptr(); q.gx = gx.data_ptr();
        q.gw = need_w ? gw.data_ptr() : nullptr; q.gb = need_b ? gb.data_ptr() : nullptr;
        cuda::layer_norm_bwd(q, dev.index);
      }
      return V{to_dtype(gx, xdt), need_w ? to_dtype(gw, wdt) : Tensor(), need_b ? to_dtype(gb, bdt) : Tensor()};
    }, {x, w});
  }
  return out;
}

// RMSNorm over the trailing normalized_shape dims on the CPU: layer_norm's fused kernels without
// the centring (y = x rstd w, rstd = 1 / sqrt(mean(x^2) + eps)). Other devices compose it
// (nn.functional.rms_norm). create_graph: the backward composed from the inputs.
Tensor rms_norm(const Tensor& x, const IntList& normalized_shape, const Tensor& w, double eps) {
  FASTDL_PROFILE("rms_norm", x, w);
  const NormRows nr = norm_rows("rms_norm", x, normalized_shape, w, Tensor());
  FASTDL_CHECK(x.device().is_cpu(), DeviceError,
               "rms_norm: the fused kernel takes CPU tensors (nn.functional.rms_norm composes it elsewhere)");
  const IntList& dims = nr.dims;
  const int64_t n = nr.n, rows = nr.rows;
  const DType kt = compute_dtype(x.dtype());
  Tensor xc = contiguous(to_dtype(detach(x), kt));
  Tensor wc = w.defined() ? contiguous(to_dtype(detach(w), kt)) : Tensor();
  Tensor y = empty(x.shape(), kt), mu = empty(Dims{rows}, kt), rs = empty(Dims{rows}, kt);
  cpu::nn_kernels().layer_norm_fwd(kt, xc.data_ptr(), wc.defined() ? wc.data_ptr() : nullptr, nullptr, y.data_ptr(),
                                   mu.data_ptr(), rs.data_ptr(), rows, n, eps, true);
  Tensor out = kt == x.dtype() ? y : to_dtype(y, x.dtype());
  if (autograd::any_requires_grad(x) || autograd::any_requires_grad(w)) {
    const bool need_w = w.defined() && w.requires_grad();
    DType xdt = x.dtype(), wdt = w.defined() ? w.dtype() : kt;
    Dims wshape(normalized_shape);
    autograd::record("RmsNormBackward0", {x, w}, out,
                     [x, w, dims, eps, xc, wc, mu, rs, rows, n, kt, need_w, xdt, wdt, wshape](V& g) {
      if (autograd::grad_enabled()) {
        Tensor xk = to_dtype(x, kt);
        Tensor r = unary(UnaryOp::rsqrt, add_s(mean(mul(xk, xk), dims, true), eps));
        Tensor xh = mul(xk, r), gk = to_dtype(g[0], kt);
        Tensor gh = w.defined() ? mul(gk, to_dtype(w, kt)) : gk;
        Tensor gx = mul(r, sub(gh, mul(xh, mean(mul(gh, xh), dims, true))));
        IntList lead;
        for (int i = 0; i < x.ndim() - int(dims.size()); ++i) lead.push_back(i);
        Tensor gw = need_w ? (lead.empty() ? mul(gk, xh) : sum(mul(gk, xh), lead, false)) : Tensor();
        return V{to_dtype(gx, xdt), need_w ? to_dtype(gw, wdt) : Tensor()};
      }
      Tensor gy = contiguous(to_dtype(g[0], kt));
      Tensor gx = empty(xc.shape(), kt), gw = need_w ? empty(wshape, kt) : Tensor();
      cpu::nn_kernels().layer_norm_bwd(kt, xc.data_ptr(), wc.defined() ? wc.data_ptr() : nullptr, mu.data_ptr(),
                                       rs.data_ptr(), gy.data_ptr(), gx.data_ptr(), need_w ? gw.data_ptr() : nullptr,
                                       nullptr, rows, n, true);
      return V{to_dtype(gx, xdt), need_w ? to_dtype(gw, wdt) : Tensor()};
    }, {x, w});
  }
  return out;
}

// Element dropout. On the CPU one fused pass: the keep mask comes from a counter-based hash of
// (seed, element index) (kernels/random.h), with the seed drawn once from the global generator,
// so the pass runs in parallel and backward regenerates the mask instead of storing it.
// Elsewhere: a Bernoulli mask, composed.
Tensor dropout(const Tensor& a, double p, bool train) {
  FASTDL_PROFILE("dropout", a);
  FASTDL_CHECK(p >= 0 && p <= 1, ValueError, "dropout: probability has to be between 0 and 1; got ", p);
  if (!train || p == 0) return a;
  FASTDL_CHECK(is_floating(a.dtype()), TypeError, "dropout: input must be floating point; got ", dtype_name(a.dtype()));
  if (p == 1) return mul(a, zeros(Dims(), a.dtype(), a.device()));
  if (!a.device().is_cpu()) {
    Tensor keep = bernoulli(full(a.shape(), 1.0 - p, a.dtype(), a.device()));
    return mul(a, mul_s(keep, 1.0 / (1.0 - p)));
  }
  const uint64_t seed = random_u64();
  const uint32_t drop24 = dropout_threshold24(p);
  const double scale = 1.0 / (1.0 - p);
  const DType kt = compute_dtype(a.dtype());
  auto apply = [seed, drop24, scale, kt](const Tensor& x) {  // x * mask * scale, x's shape and dtype
    Tensor xc = contiguous(to_dtype(detach(x), kt));
    Tensor y = empty(x.shape(), kt);
    cpu::nn_kernels().dropout(kt, xc.data_ptr(), y.data_ptr(), xc.numel(), seed, drop24, scale);
    return kt == x.dtype() ? y : to_dtype(y, x.dtype());
  };
  Tensor out = apply(a);
  if (autograd::any_requires_grad(a))
    autograd::record("NativeDropoutBackward0", {a}, out, [apply](V& g) {  // create_graph: g times the constant mask
      return V{autograd::grad_enabled() ? mul(g[0], apply(ones_like(g[0]))) : apply(g[0])};
    });
  return out;
}

namespace {

// Composed cross entropy (CUDA path): per-row losses before reduction.
Tensor cross_entropy_rows_composed(const Tensor& logits, const Tensor& safe, const Tensor& valid, const Tensor& weight,
                                   double label_smoothing) {
  int64_t C = logits.shape()[1];
  Tensor lp = log_softmax(logits, 1);
  Tensor nll = unary(UnaryOp::neg, squeeze(gather(lp, 1, unsqueeze(safe, 1)), IntList{1}));
  if (weight.defined()) nll = mul(nll, index_select(weight, 0, safe));
  if (label_smoothing > 0) {
    Tensor smooth = unary(UnaryOp::neg, weight.defined() ? sum(mul(lp, weight), {1}, false) : sum(lp, {1}, false));
    nll = add(mul_s(nll, 1.0 - label_smoothing), mul_s(smooth, label_smoothing / double(C)));
  }
  return mul(nll, to_dtype(valid, nll.dtype()));
}

// create_graph: d loss_i / d x_ij = v_i (p_ij a_i - B_ij), p = softmax(x), a_i = (1-e) w_ti + e W / C,
// B_ij = (1-e) w_ti [j = t_i] + e w_j / C (W = sum w, v_i = 0 on ignored rows), times the loss grad.
Tensor cross_entropy_backward_graph(const Tensor& logits, const Tensor& th, const Tensor& wc, const Tensor& g,
                                    double scale, int64_t reduction, int64_t ignore_index, double eps) {
  const int64_t C = logits.shape()[1];
  const DType dt = logits.dtype();
  const Device dev = logits.device();
  Tensor valid = binary_scalar(BinaryOp::ne, th, double(ignore_index));
  Tensor safe = where(valid, th, zeros(Dims(), DType::i64));
  Tensor v = unsqueeze(to_device(to_dtype(valid, dt), dev), 1);
  Tensor w = wc.defined() ? to_device(to_dtype(wc, dt), dev) : ones(Dims{C}, dt, dev);
  Tensor wt = unsqueeze(index_select(w, 0, to_device(safe, dev)), 1);  // (N, 1)
  Tensor hot = to_dtype(one_hot(to_device(safe, dev), C), dt);
  Tensor a = mul(v, add_s(mul_s(wt, 1.0 - eps), eps * item(sum(w, {}, false)) / double(C)));
  Tensor B = mul(v, add(mul(hot, mul_s(wt, 1.0 - eps)), mul_s(unsqueeze(w, 0), eps / double(C))));
  Tensor go = mul_s(reduction == 0 ? unsqueeze(g, 1) : g, scale);
  return mul(go, sub(mul(softmax(logits, 1), a), B));
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                     double label_smoothing, int64_t reduction) {
  FASTDL_PROFILE("cross_entropy", logits, target, weight);
  FASTDL_CHECK(logits.ndim() == 2, ValueError, "cross_entropy: expected logits of shape (N, C); got ", shape_str(logits.shape()));
  FASTDL_CHECK(target.ndim() == 1 && target.shape()[0] == logits.shape()[0], ValueError,
               "cross_entropy: expected target of shape (", logits.shape()[0], ",); got ", shape_str(target.shape()));
  FASTDL_CHECK(is_index(target.dtype()), TypeError, "cross_entropy: target must be an integer class-index tensor; got ",
               dtype_name(target.dtype()));
  FASTDL_CHECK(is_floating(logits.dtype()), TypeError, "cross_entropy: logits must be floating point; got ",
               dtype_name(logits.dtype()));
  FASTDL_CHECK(label_smoothing >= 0 && label_smoothing <= 1, ValueError,
               "cross_entropy: label_smoothing must be between 0.0 and 1.0; got ", label_smoothing);
  FASTDL_CHECK(reduction >= 0 && reduction <= 2, ValueError, "cross_entropy: reduction must be 0 (none), 1 (mean) or 2 (sum)");
  const int64_t N = logits.shape()[0], C = logits.shape()[1];
  if (weight.defined())
    FASTDL_CHECK(weight.ndim() == 1 && weight.shape()[0] == C, ValueError, "cross_entropy: weight must have shape (", C,
                 ",); got ", shape_str(weight.shape()));
  check_same_device(logits, target, "cross_entropy");
  // Targets on the host: bounds-checked here so kernels never read out of range.
  Tensor th = contiguous(to_dtype(to_device(target, Device()), DType::i64));
  const int64_t* tp = th.data<int64_t>();
  for (int64_t i = 0; i < N; ++i)
    if (tp[i] != ignore_index && (tp[i] < 0 || tp[i] >= C))
      throw IndexError(str_cat("cross_entropy: target ", tp[i], " is out of bounds for ", C, " classes"));
  const DType kt = compute_dtype(logits.dtype());
  Tensor wc = weight.defined() ? contiguous(to_dtype(to_device(detach(weight), Device()), kt)) : Tensor();
  double denom = 0;  // mean: the summed weight of the counted rows (PyTorch's normalisation)
  for (int64_t i = 0; i < N; ++i)
    if (tp[i] != ignore_index) denom += wc.defined() ? (kt == DType::f32 ? double(wc.data<float>()[tp[i]]) : wc.data<double>()[tp[i]]) : 1.0;

  if (!logits.device().is_cpu()) {
    Tensor valid = binary_scalar(BinaryOp::ne, target, double(ignore_index), false, 1);
    Tensor safe = where(valid, to_dtype(target, DType::i64), zeros(Dims(), DType::i64, target.device()));
    Tensor rows = cross_entropy_rows_composed(logits, safe, valid, weight, label_smoothing);
    if (reduction == 0) return rows;
    Tensor s = sum(rows, {}, false);
    return reduction == 2 ? s : mul_s(s, 1.0 / denom);
  }
  cpu::CrossEntropyParams p;
  Tensor x = contiguous(to_dtype(detach(logits), kt));
  Tensor lse = empty(Dims{N}, kt), rows = empty(Dims{N}, kt);
  p.x = x.data_ptr(); p.t = tp; p.w = wc.defined() ? wc.data_ptr() : nullptr;
  p.rows = N; p.C = C; p.ignore_index = ignore_index; p.smoothing = label_smoothing;
  p.lse = lse.data_ptr(); p.loss = rows.data_ptr();
  cpu::nn_kernels().cross_entropy_fwd(kt, p);
  Tensor out = rows;
  if (reduction != 0) {
    Tensor s = sum(rows, {}, false);
    out = reduction == 2 ? s : mul_s(s, 1.0 / denom);
  }
  if (kt != logits.dtype()) out = to_dtype(out, logits.dtype());
  if (autograd::any_requires_grad(logits)) {
    const double scale = reduction == 1 ? 1.0 / denom : 1.0;
    const DType ldt = logits.dtype();
    autograd::record("CrossEntropyLossBackward0", {logits}, out,
                     [logits, p, x, th, wc, lse, kt, ldt, scale, reduction, ignore_index, label_smoothing](V& g) {
      if (autograd::grad_enabled())
        return V{cross_entropy_backward_graph(logits, th, wc, g[0], scale, reduction, ignore_index, label_smoothing)};
      Tensor go = contiguous(to_dtype(g[0], kt));
      Tensor gx = empty(x.shape(), kt);
      cpu::CrossEntropyParams q = p;
      q.gloss = go.data_ptr();
      q.gstride = reduction == 0 ? 1 : 0;
      q.gscale = scale;
      q.gx = gx.data_ptr();
      cpu::nn_kernels().cross_entropy_bwd(kt, q);
      return V{kt == ldt ? gx : to_dtype(gx, ldt)};
    }, {logits});
  }
  return out;
}

Tensor cross_entropy_rows(const Tensor& logits, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                          double label_smoothing) {
  FASTDL_PROFILE("cross_entropy", logits, target, weight);
  return cross_entropy(logits, target, weight, ignore_index, label_smoothing, 0);
}

}  // namespace fastdl
