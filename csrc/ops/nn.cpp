// Neural-network functions: softmax/log_softmax (fused row kernel on CPU), layer_norm,
// dropout and the per-row cross entropy the losses build on.
#include <cmath>

#include "autograd/node.h"
#include "core/parallel.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace fastdl {

using V = std::vector<Tensor>;

namespace {

// Rows of length n, contiguous: y = softmax(x) or log_softmax(x), stable (max subtracted).
template <class T> void softmax_rows(const T* x, T* y, int64_t rows, int64_t n, bool log) {
  parallel_for(0, rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* xr = x + r * n;
      T* yr = y + r * n;
      T m = -INFINITY;
      for (int64_t i = 0; i < n; ++i) m = xr[i] > m || xr[i] != xr[i] ? xr[i] : m;
      if (std::isinf(m) && m < 0) m = 0;
      double s = 0;
      for (int64_t i = 0; i < n; ++i) { T v = std::exp(xr[i] - m); if (!log) yr[i] = v; s += double(v); }
      if (log) { T ls = T(std::log(s)) + m; for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] - ls; }
      else { T inv = T(1.0 / s); for (int64_t i = 0; i < n; ++i) yr[i] *= inv; }
    }
  });
}

Tensor softmax_impl(const Tensor& a, int64_t dim, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  int d = wrap_dim(dim, a.ndim(), name);
  DType dt = is_floating(a.dtype()) ? a.dtype() : DType::f32;
  DType kt = is_half(dt) ? DType::f32 : dt;
  Tensor out;
  if (a.device().is_cpu()) {
    Tensor x = contiguous(movedim(to_dtype(detach(a), kt), d, -1));
    Tensor y = empty(x.shape(), kt);
    int64_t n = a.ndim() ? a.shape()[d] : 1;
    int64_t rows = n ? x.numel() / n : 0;
    if (kt == DType::f32) softmax_rows(x.data<float>(), y.data<float>(), rows, n, log);
    else softmax_rows(x.data<double>(), y.data<double>(), rows, n, log);
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
    autograd::record(log ? "LogSoftmaxBackward0" : "SoftmaxBackward0", {a}, out, [y, d, log](V& g) {
      if (log) return V{sub(g[0], mul(unary(UnaryOp::exp, y), sum(g[0], {d}, true)))};
      return V{mul(y, sub(g[0], sum(mul(g[0], y), {d}, true)))};
    });
  }
  return out;
}

}  // namespace

Tensor softmax(const Tensor& a, int64_t dim) { return softmax_impl(a, dim, false); }
Tensor log_softmax(const Tensor& a, int64_t dim) { return softmax_impl(a, dim, true); }

Tensor layer_norm(const Tensor& x, const IntList& normalized_shape, const Tensor& w, const Tensor& b, double eps) {
  int k = int(normalized_shape.size());
  FASTDL_CHECK(k >= 1 && k <= x.ndim(), ValueError, "layer_norm: normalized_shape ", shape_str(Dims(normalized_shape)),
               " does not fit input of shape ", shape_str(x.shape()));
  for (int i = 0; i < k; ++i)
    FASTDL_CHECK(x.shape()[x.ndim() - k + i] == normalized_shape[size_t(i)], ValueError, "layer_norm: expected input with shape (*, ",
                 shape_str(Dims(normalized_shape)), "); got ", shape_str(x.shape()));
  if (w.defined()) FASTDL_CHECK(w.shape() == Dims(normalized_shape), ValueError, "layer_norm: weight must have shape ",
                                shape_str(Dims(normalized_shape)), "; got ", shape_str(w.shape()));
  if (b.defined()) FASTDL_CHECK(b.shape() == Dims(normalized_shape), ValueError, "layer_norm: bias must have shape ",
                                shape_str(Dims(normalized_shape)), "; got ", shape_str(b.shape()));
  IntList dims;
  for (int i = x.ndim() - k; i < x.ndim(); ++i) dims.push_back(i);
  Tensor m = mean(x, dims, true);
  Tensor c = sub(x, m);
  Tensor v = mean(mul(c, c), dims, true);
  Tensor y = mul(c, unary(UnaryOp::rsqrt, add_s(v, eps)));
  if (w.defined()) y = mul(y, w);
  if (b.defined()) y = add(y, b);
  return y;
}

Tensor dropout(const Tensor& a, double p, bool train) {
  FASTDL_CHECK(p >= 0 && p <= 1, ValueError, "dropout: probability has to be between 0 and 1; got ", p);
  if (!train || p == 0) return a;
  if (p == 1) return mul(a, zeros(Dims(), a.dtype(), a.device()));
  Tensor keep = bernoulli(full(a.shape(), 1.0 - p, a.dtype(), a.device()));
  return mul(a, mul_s(keep, 1.0 / (1.0 - p)));
}

Tensor cross_entropy_rows(const Tensor& logits, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                          double label_smoothing) {
  FASTDL_CHECK(logits.ndim() == 2, ValueError, "cross_entropy: expected logits of shape (N, C); got ", shape_str(logits.shape()));
  FASTDL_CHECK(target.ndim() == 1 && target.shape()[0] == logits.shape()[0], ValueError,
               "cross_entropy: expected target of shape (", logits.shape()[0], ",); got ", shape_str(target.shape()));
  FASTDL_CHECK(is_integral(target.dtype()), TypeError, "cross_entropy: target must be an integer class-index tensor; got ",
               dtype_name(target.dtype()));
  int64_t C = logits.shape()[1];
  Tensor valid = binary_scalar(BinaryOp::ne, target, double(ignore_index), false, 1);
  Tensor safe = where(valid, to_dtype(target, DType::i64), zeros(Dims(), DType::i64, target.device()));
  {
    Tensor hs = to_device(safe, Device());
    const int64_t* p = contiguous(hs).data<int64_t>();
    for (int64_t i = 0; i < hs.numel(); ++i)
      if (p[i] < 0 || p[i] >= C)
        throw IndexError(str_cat("cross_entropy: target ", p[i], " is out of bounds for ", C, " classes"));
  }
  Tensor lp = log_softmax(logits, 1);
  Tensor nll = unary(UnaryOp::neg, squeeze(gather(lp, 1, unsqueeze(safe, 1)), IntList{1}));
  if (weight.defined()) nll = mul(nll, index_select(weight, 0, safe));
  if (label_smoothing > 0) {
    Tensor smooth = unary(UnaryOp::neg, weight.defined() ? sum(mul(lp, weight), {1}, false) : sum(lp, {1}, false));
    nll = add(mul_s(nll, 1.0 - label_smoothing), mul_s(smooth, label_smoothing / double(C)));
  }
  return mul(nll, to_dtype(valid, nll.dtype()));
}

}  // namespace fastdl
