// Reductions over any set of dims (keepdim), var/std, logsumexp, cumsum, and sum_to for
// broadcast gradients.
#include <algorithm>
#include <cmath>

#include "autograd/node.h"
#include "cpu/nn.h"
#include "cpu/reduce.h"
#include "ops/dispatch.h"
#include "core/profiler.h"
#include "ops/ops.h"

namespace fastdl {

namespace {

const char* rname(ReduceOp op) {
  static const char* n[] = {"sum", "prod", "max", "min", "argmax", "argmin"};
  return n[int(op)];
}

// Sorted, unique, wrapped dims; empty means all.
std::vector<int> norm_dims(const Tensor& a, const IntList& dims, const char* op) {
  std::vector<bool> seen(static_cast<size_t>(std::max(a.ndim(), 1)), false);
  std::vector<int> out;
  if (dims.empty()) { for (int d = 0; d < a.ndim(); ++d) out.push_back(d); return out; }
  for (int64_t d : dims) {
    int w = wrap_dim(d, a.ndim(), op);
    FASTDL_CHECK(!seen[size_t(w)], ValueError, op, ": dim ", w, " appears multiple times in the list of dims");
    seen[size_t(w)] = true;
    if (a.ndim() > 0) out.push_back(w);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Dims reduced_shape(const Tensor& a, const std::vector<int>& rd, bool keepdim) {
  Dims s;
  for (int d = 0; d < a.ndim(); ++d) {
    bool r = std::binary_search(rd.begin(), rd.end(), d);
    if (!r) s.push_back(a.shape()[d]);
    else if (keepdim) s.push_back(1);
  }
  return s;
}

// Run the kernel; returns the keepdim-shaped result reshaped to `keepdim` or not.
Tensor reduce_raw(ReduceOp op, const Tensor& a, const std::vector<int>& rd, bool keepdim, DType kt) {
  Tensor x = a.dtype() == kt ? a : to_dtype(detach(a), kt);
  int nd = x.ndim();
  bool run = !rd.empty() && rd.back() - rd.front() + 1 == int(rd.size());
  int64_t outer = 1, n = 1, inner = 1;
  if (run && x.is_contiguous()) {
    for (int d = 0; d < rd.front(); ++d) outer *= x.shape()[d];
    for (int d : rd) n *= x.shape()[d];
    for (int d = rd.back() + 1; d < nd; ++d) inner *= x.shape()[d];
  } else {
    IntList perm;
    for (int d = 0; d < nd; ++d) if (!std::binary_search(rd.begin(), rd.end(), d)) { perm.push_back(d); outer *= x.shape()[d]; }
    for (int d : rd) { perm.push_back(d); n *= x.shape()[d]; }
    x = contiguous(permute(detach(x), perm));
  }
  bool arg = op == ReduceOp::argmax || op == ReduceOp::argmin;
  Dims os = reduced_shape(a, rd, keepdim);
  // max/min/arg* have no identity: an empty reduced dim is an error even when the output is empty
  FASTDL_CHECK(n > 0 || op == ReduceOp::sum || op == ReduceOp::prod, ValueError, rname(op),
               ": cannot reduce over a zero-size dimension; got input shape ", shape_str(a.shape()));
  Tensor out = empty(os, arg ? DType::i64 : kt, a.device());
  if (out.numel() == 0) return out;
  if (n == 0) {
    fill_(out, op == ReduceOp::sum ? 0.0 : 1.0);
    return out;
  }
  if (a.device().is_cuda()) cuda::reduce(op, kt, out.data_ptr(), x.data_ptr(), outer, n, inner, a.device().index);
  else cpu::reduce_kernels().reduce(op, kt, static_cast<char*>(out.data_ptr()), static_cast<const char*>(x.data_ptr()), outer, n, inner);
  return out;
}

DType acc_dtype(DType dt) {
  if (is_half(dt)) return DType::f32;
  if (dt == DType::b8 || is_integral(dt)) return DType::i64;
  return dt;
}

// Expand a reduced gradient back over the reduced dims.
Tensor expand_back(const Tensor& g, const Dims& in_shape, const std::vector<int>& rd, bool keepdim) {
  Tensor t = g;
  if (!keepdim) for (int d : rd) t = unsqueeze(t, d);
  return expand(t, in_shape.vec());
}

// Sum over rd where `a` is broadcast (stride 0) along some reduced dims, as upstream
// gradients of expanded tensors are: those dims hold one value repeated, so they are summed
// as value * size without a pass over (or a copy of) the expanded tensor.
Tensor sum_collapsed(const Tensor& a, const std::vector<int>& rd, bool keepdim, DType kt) {
  Dims s = a.shape();
  double factor = 1;
  bool rest = false;
  for (int d : rd) {
    if (a.strides()[d] == 0 && s[d] > 1) { factor *= double(s[d]); s[d] = 1; }
    rest |= s[d] > 1;
  }
  if (factor == 1 || a.numel() == 0) return reduce_raw(ReduceOp::sum, a, rd, keepdim, kt);
  Tensor x = make_view(detach(a), s, a.strides(), a.offset());
  Tensor out = rest ? reduce_raw(ReduceOp::sum, x, rd, keepdim, kt) : to_dtype(x, kt);
  out = mul_s(out, factor);  // a fresh contiguous tensor either way
  return reshape(out, reduced_shape(a, rd, keepdim).vec());
}

}  // namespace

Tensor sum(const Tensor& a, const IntList& dims, bool keepdim, std::optional<DType> dt) {
  FASTDL_PROFILE("sum", a);
  auto rd = norm_dims(a, dims, "sum");
  DType out_dt = dt ? *dt : acc_dtype(a.dtype());
  if (is_half(a.dtype()) && !dt) out_dt = a.dtype();
  DType kt = is_half(out_dt) ? DType::f32 : out_dt;
  Tensor out;
  if (rd.empty()) out = a.ndim() == 0 ? clone(detach(to_dtype(detach(a), kt))) : clone(detach(to_dtype(detach(a), kt)));
  else out = sum_collapsed(a, rd, keepdim, kt);
  if (out.dtype() != out_dt) out = to_dtype(out, out_dt);
  if (autograd::any_requires_grad(a)) {
    Dims shape = a.shape();
    DType adt = a.dtype();
    autograd::record("SumBackward1", {a}, out, [shape, rd, keepdim, adt](std::vector<Tensor>& g) {
      return std::vector<Tensor>{to_dtype(expand_back(g[0], shape, rd, keepdim), adt)};
    });
  }
  return out;
}

Tensor mean(const Tensor& a, const IntList& dims, bool keepdim) {
  FASTDL_PROFILE("mean", a);
  FASTDL_CHECK(is_floating(a.dtype()), TypeError, "mean: could not infer output dtype; input dtype must be floating point; got ",
               dtype_name(a.dtype()));
  auto rd = norm_dims(a, dims, "mean");
  int64_t n = 1;
  for (int d : rd) n *= a.shape()[d];
  return mul_s(sum(a, dims, keepdim), 1.0 / double(n));
}

namespace {
// create_graph with zeros: d_i = prod_{j != i} a_j exactly, each the product of a row of an (n, n)
// matrix of a's slice with ones on the diagonal (the reduced dims moved last and flattened).
Tensor prod_others_graph(const Tensor& a, const std::vector<int>& rd) {
  IntList perm, flat;
  for (int i = 0; i < a.ndim(); ++i)
    if (std::find(rd.begin(), rd.end(), i) == rd.end()) { perm.push_back(i); flat.push_back(a.shape()[i]); }
  int64_t n = 1;
  for (int d : rd) { perm.push_back(d); n *= a.shape()[d]; }
  Tensor at = permute(a, perm);
  IntList sq = flat;
  flat.push_back(n);
  sq.push_back(n);
  sq.push_back(n);
  Tensor diag = binary_scalar(BinaryOp::ne, eye(n, n, a.dtype(), a.device()), 0.0);
  Tensor d = prod(where(diag, ones(Dims(), a.dtype(), a.device()), expand(unsqueeze(reshape(at, flat), -2), sq)), {-1}, false);
  IntList inv(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inv[size_t(perm[i])] = int64_t(i);
  return permute(reshape(d, at.shape().vec()), inv);
}
}  // namespace

Tensor prod(const Tensor& a, const IntList& dims, bool keepdim) {
  FASTDL_PROFILE("prod", a);
  auto rd = norm_dims(a, dims, "prod");
  DType kt = acc_dtype(a.dtype());
  Tensor out = rd.empty() ? clone(detach(to_dtype(detach(a), kt))) : reduce_raw(ReduceOp::prod, a, rd, keepdim, kt);
  if (is_half(a.dtype())) out = to_dtype(out, a.dtype());
  if (autograd::any_requires_grad(a)) {
    Dims shape = a.shape();
    Tensor o = detach(out);
    autograd::record("ProdBackward1", {a}, out, [a, o_ = o, shape, rd, keepdim](std::vector<Tensor>& g) {
      Tensor o = autograd::saved_output(o_);  // create_graph: joined to this node, so the second derivative sees it
      Tensor ge = expand_back(g[0], shape, rd, keepdim);
      Tensor zero = binary_scalar(BinaryOp::eq, a, 0.0);
      if (item(any(zero, {}, false)) == 0)  // no zeros: d prod / d a_i = prod / a_i
        return std::vector<Tensor>{div(mul(ge, expand_back(o, shape, rd, keepdim)), a)};
      if (autograd::grad_enabled()) return std::vector<Tensor>{mul(ge, prod_others_graph(a, rd))};
      // A slice with one zero: its gradient there is the product of the others; two or more: 0.
      IntList rdl(rd.begin(), rd.end());
      Tensor safe = where(zero, ones_like(a), a);
      Tensor nz = expand_back(sum(zero, rdl, keepdim, DType::i64), shape, rd, keepdim);
      Tensor others = expand_back(prod(detach(safe), rdl, keepdim), shape, rd, keepdim);  // product of nonzeros
      Tensor none = binary_scalar(BinaryOp::eq, nz, 0.0);
      Tensor only = binary(BinaryOp::logical_and, zero, binary_scalar(BinaryOp::eq, nz, 1.0));
      Tensor d = where(none, div(expand_back(o, shape, rd, keepdim), safe), where(only, others, zeros_like(a)));
      return std::vector<Tensor>{mul(ge, d)};
    }, {a, out});
  }
  return out;
}

namespace {
// nan_ties (max() / min() over the whole tensor, PyTorch's evenly_distribute_backward): a NaN result
// shares the gradient among the input's NaNs; amax / amin compare equal to the result only (a NaN
// result gives NaN gradients, as PyTorch's).
Tensor amaxmin(ReduceOp op, const Tensor& a, const IntList& dims, bool keepdim, const char* name, bool nan_ties = false) {
  FASTDL_PROFILE(name, a);
  auto rd = norm_dims(a, dims, name);
  DType kt = is_half(a.dtype()) ? DType::f32 : a.dtype();
  Tensor out = rd.empty() ? clone(detach(a)) : reduce_raw(op, a, rd, keepdim, kt);
  if (out.dtype() != a.dtype()) out = to_dtype(out, a.dtype());
  if (autograd::any_requires_grad(a)) {
    Dims shape = a.shape();
    Tensor o = detach(out);
    const char* node = nan_ties ? (op == ReduceOp::max ? "MaxBackward1" : "MinBackward1")
                                : (op == ReduceOp::max ? "AmaxBackward0" : "AminBackward0");
    autograd::record(node, {a}, out, [a, o, shape, rd, keepdim, nan_ties](std::vector<Tensor>& g) {
      Tensor oe = expand_back(o, shape, rd, keepdim);
      Tensor hit = binary(BinaryOp::eq, a, oe);
      if (nan_ties)
        hit = binary(BinaryOp::logical_or, hit,
                     binary(BinaryOp::logical_and, unary(UnaryOp::isnan, a), unary(UnaryOp::isnan, oe)));
      Tensor mask = to_dtype(hit, g[0].dtype());
      Tensor cnt = sum(mask, IntList(rd.begin(), rd.end()), true);
      Tensor gk = keepdim ? g[0] : expand_back(g[0], shape, rd, false);
      return std::vector<Tensor>{div(mul(mask, gk), cnt)};
    }, {a, out});
  }
  return out;
}

std::pair<Tensor, Tensor> dim_maxmin(bool mx, const Tensor& a, int64_t dim, bool keepdim) {
  FASTDL_PROFILE(mx ? "max" : "min", a);
  const char* name = mx ? "max" : "min";
  int d = wrap_dim(dim, a.ndim(), name);
  std::vector<int> rd;
  if (a.ndim() > 0) rd.push_back(d);
  DType kt = is_half(a.dtype()) ? DType::f32 : a.dtype();
  Tensor idx = rd.empty() ? zeros(Dims(), DType::i64, a.device()) : reduce_raw(mx ? ReduceOp::argmax : ReduceOp::argmin, a, rd, keepdim, kt);
  Tensor ik = keepdim || rd.empty() ? idx : unsqueeze(idx, d);
  Tensor vals = rd.empty() ? clone(detach(a)) : gather(detach(a), d, ik);
  if (!keepdim && !rd.empty()) vals = squeeze(vals, IntList{d});
  if (autograd::any_requires_grad(a)) {
    Dims shape = a.shape();
    autograd::record(mx ? "MaxBackward0" : "MinBackward0", {a}, vals, [ik, shape, d, keepdim, rd](std::vector<Tensor>& g) {
      if (rd.empty()) return std::vector<Tensor>{g[0]};
      Tensor gk = keepdim ? g[0] : unsqueeze(g[0], d);
      Tensor z = zeros(shape, g[0].dtype(), g[0].device());
      return std::vector<Tensor>{scatter_add(z, d, ik, gk)};
    });
  }
  return {vals, idx};
}
}  // namespace

Tensor amax(const Tensor& a, const IntList& dims, bool keepdim) { return amaxmin(ReduceOp::max, a, dims, keepdim, "amax"); }
Tensor amin(const Tensor& a, const IntList& dims, bool keepdim) { return amaxmin(ReduceOp::min, a, dims, keepdim, "amin"); }
Tensor max_all(const Tensor& a) { return amaxmin(ReduceOp::max, a, {}, false, "max", true); }
Tensor min_all(const Tensor& a) { return amaxmin(ReduceOp::min, a, {}, false, "min", true); }
std::pair<Tensor, Tensor> max_dim(const Tensor& a, int64_t dim, bool keepdim) { return dim_maxmin(true, a, dim, keepdim); }
std::pair<Tensor, Tensor> min_dim(const Tensor& a, int64_t dim, bool keepdim) { return dim_maxmin(false, a, dim, keepdim); }

namespace {
Tensor argext(bool mx, const Tensor& a, std::optional<int64_t> dim, bool keepdim) {
  FASTDL_PROFILE(mx ? "argmax" : "argmin", a);
  const char* name = mx ? "argmax" : "argmin";
  FASTDL_CHECK(a.dtype() != DType::b8, TypeError, name, ": bool input is not supported; got shape ", shape_str(a.shape()));
  FASTDL_CHECK(a.numel() > 0 || dim, ValueError, name, ": expected a non-empty tensor; got shape ", shape_str(a.shape()));
  DType kt = is_half(a.dtype()) ? DType::f32 : a.dtype();
  ReduceOp op = mx ? ReduceOp::argmax : ReduceOp::argmin;
  if (!dim) {
    Tensor flat = reshape(detach(a), {-1});
    Tensor r = reduce_raw(op, flat, {0}, false, kt);
    if (keepdim) r = reshape(r, IntList(size_t(a.ndim()), 1));
    return r;
  }
  int d = wrap_dim(*dim, a.ndim(), name);
  if (a.ndim() == 0) return zeros(Dims(), DType::i64, a.device());
  return reduce_raw(op, a, {d}, keepdim, kt);
}
}  // namespace

Tensor argmax(const Tensor& a, std::optional<int64_t> dim, bool keepdim) { return argext(true, a, dim, keepdim); }
Tensor argmin(const Tensor& a, std::optional<int64_t> dim, bool keepdim) { return argext(false, a, dim, keepdim); }

Tensor var(const Tensor& a, const IntList& dims, double correction, bool keepdim) {
  FASTDL_PROFILE("var", a);
  FASTDL_CHECK(is_floating(a.dtype()), TypeError, "var: input dtype must be floating point; got ", dtype_name(a.dtype()));
  auto rd = norm_dims(a, dims, "var");
  int64_t n = 1;
  for (int d : rd) n *= a.shape()[d];
  double denom = std::max(0.0, double(n) - correction);
  Tensor m, out;
  {
    autograd::NoGradGuard ng;
    m = mean(a, dims, true);
    Tensor dev = sub(a, m);
    out = mul_s(sum(mul(dev, dev), dims, keepdim), 1.0 / denom);  // denom 0: inf, or nan for a zero sum (PyTorch)
  }
  if (autograd::any_requires_grad(a)) {
    // d var / d a = 2 (a - mean) / denom: one node, two passes over a (the composed graph took
    // six); create_graph recomputes the mean from a, so its own derivative is kept
    const Dims shape = a.shape();
    autograd::record("VarBackward0", {a}, out, [a, m, rd, dims, keepdim, shape, denom](std::vector<Tensor>& g) {
      Tensor mm = autograd::grad_enabled() ? mean(a, dims, true) : m;
      Tensor gs = expand_back(mul_s(g[0], 2.0 / denom), shape, rd, keepdim);  // scaled before it is expanded
      return std::vector<Tensor>{mul(sub(a, mm), gs)};
    });
  }
  return out;
}

Tensor std_(const Tensor& a, const IntList& dims, double correction, bool keepdim) {
  return unary(UnaryOp::sqrt, var(a, dims, correction, keepdim));
}

Tensor logsumexp(const Tensor& a, const IntList& dims, bool keepdim) {
  FASTDL_PROFILE("logsumexp", a);
  if (!is_floating(a.dtype())) return logsumexp(to_dtype(a, DType::f32), dims, keepdim);
  auto rd = norm_dims(a, dims, "logsumexp");
  int64_t n = 1;
  for (int d : rd) n *= a.shape()[d];
  if (n == 0) return full(reduced_shape(a, rd, keepdim), -INFINITY, a.dtype(), a.device());  // log(0)
  Tensor m = detach(amax(a, dims, true));
  m = where(unary(UnaryOp::isinf, m), zeros_like(m), m);
  Tensor s = unary(UnaryOp::log, sum(unary(UnaryOp::exp, sub(a, m)), dims, true));
  Tensor r = add(s, m);
  if (!keepdim) {
    for (int i = int(rd.size()) - 1; i >= 0; --i) r = squeeze(r, IntList{rd[size_t(i)]});
  }
  return r;
}

Tensor all(const Tensor& a, const IntList& dims, bool keepdim) {
  Tensor b = a.dtype() == DType::b8 ? a : binary_scalar(BinaryOp::ne, a, 0.0);
  Tensor s = sum(unary(UnaryOp::logical_not, b), dims, keepdim, DType::i64);
  Tensor r = binary_scalar(BinaryOp::eq, s, 0.0);
  return a.dtype() == DType::u8 ? to_dtype(r, DType::u8) : r;  // uint8 in, uint8 out (PyTorch)
}

Tensor any(const Tensor& a, const IntList& dims, bool keepdim) {
  Tensor b = a.dtype() == DType::b8 ? a : binary_scalar(BinaryOp::ne, a, 0.0);
  Tensor s = sum(b, dims, keepdim, DType::i64);
  Tensor r = binary_scalar(BinaryOp::gt, s, 0.0);
  return a.dtype() == DType::u8 ? to_dtype(r, DType::u8) : r;
}

Tensor norm(const Tensor& a, double p, const IntList& dims, bool keepdim) {
  FASTDL_PROFILE("norm", a);
  // half precision: the powers and their sum in float32 (|x|^p overflows float16 early), as PyTorch
  if (is_half(a.dtype())) return to_dtype(norm(to_dtype(a, DType::f32), p, dims, keepdim), a.dtype());
  if (p == 0) return to_dtype(sum(binary_scalar(BinaryOp::ne, a, 0.0), dims, keepdim), a.dtype());  // count of nonzeros
  if (p == 1) return sum(unary(UnaryOp::abs, a), dims, keepdim);
  if (std::isinf(p)) return p > 0 ? amax(unary(UnaryOp::abs, a), dims, keepdim) : amin(unary(UnaryOp::abs, a), dims, keepdim);
  const bool grad = autograd::any_requires_grad(a);
  if (!grad) {  // the values; the branch below has the same ones
    if (p == 2) {
      const auto rd = norm_dims(a, dims, "norm");
      const bool trailing = !rd.empty() && rd.back() == a.ndim() - 1 && rd.front() == a.ndim() - int(rd.size());
      if (trailing && a.device().is_cpu() && (a.dtype() == DType::f32 || a.dtype() == DType::f64) && a.numel() > 0) {
        // the trailing dims of a contiguous copy are rows: one fused pass, no squared temporary
        const Tensor x = contiguous(a);
        const int64_t n = x.numel() / reduced_shape(a, rd, false).numel();
        Tensor out = empty(reduced_shape(a, rd, keepdim), a.dtype());
        cpu::nn_kernels().row_norm2(a.dtype(), x.data_ptr(), out.data_ptr(), x.numel() / n, n);
        return out;
      }
      return unary(UnaryOp::sqrt, sum(mul(a, a), dims, keepdim));
    }
    return binary_scalar(BinaryOp::pow, sum(binary_scalar(BinaryOp::pow, unary(UnaryOp::abs, a), p), dims, keepdim), 1.0 / p);
  }
  // With autograd, the root and the powers are taken only where they are non-zero, so a zero
  // slice (or a zero entry, for p < 1) has gradient 0 (PyTorch's subgradient) instead of 0 inf =
  // NaN; p = 2 squares a itself, not |a|, so the second derivative at a zero entry is 2, not 0.
  Tensor terms;
  if (p == 2) {
    terms = mul(a, a);
  } else {
    Tensor z = binary_scalar(BinaryOp::eq, a, 0.0), ab = unary(UnaryOp::abs, a);
    Tensor powered = binary_scalar(BinaryOp::pow, where(z, ones_like(ab), ab), p);
    terms = where(z, binary_scalar(BinaryOp::mul, ones_like(ab), p > 0 ? 0.0 : INFINITY), powered);
  }
  Tensor s = sum(terms, dims, keepdim);
  Tensor zero = binary_scalar(BinaryOp::eq, s, 0.0);
  Tensor safe = where(zero, ones_like(s), s);
  Tensor root = p == 2 ? unary(UnaryOp::sqrt, safe) : binary_scalar(BinaryOp::pow, safe, 1.0 / p);
  return where(zero, zeros_like(s), root);
}

namespace {
// Inclusive running sums of a along dim d (from the end when rev), no autograd.
Tensor cumsum_values(const Tensor& a, int d, bool rev) {
  DType kt = is_floating(a.dtype()) ? (is_half(a.dtype()) ? DType::f32 : a.dtype()) : DType::i64;
  Tensor x = to_device(contiguous(to_dtype(detach(a), kt)), Device());
  Tensor out = empty(x.shape(), kt);
  const int64_t n = a.ndim() ? a.shape()[d] : 1;
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < d; ++i) outer *= a.shape()[i];
  for (int i = d + 1; i < a.ndim(); ++i) inner *= a.shape()[i];
  if (x.numel() > 0) {
    cpu::reduce_kernels().cumsum(kt, static_cast<char*>(out.data_ptr()), static_cast<const char*>(x.data_ptr()), outer,
                                 n, inner, rev);
  }
  Tensor res = to_device(out, a.device());
  return is_half(a.dtype()) ? to_dtype(res, a.dtype()) : res;
}
}  // namespace

Tensor cumsum(const Tensor& a, int64_t dim) {
  FASTDL_PROFILE("cumsum", a);
  const int d = wrap_dim(dim, a.ndim(), "cumsum");
  Tensor res = cumsum_values(a, d, false);
  if (autograd::any_requires_grad(a)) {
    autograd::record("CumsumBackward0", {a}, res, [d](std::vector<Tensor>& g) {
      // the gradient is the running sum from the end; create_graph composes it from cumsum
      if (autograd::grad_enabled()) return std::vector<Tensor>{flip(cumsum(flip(g[0], {d}), d), {d})};
      return std::vector<Tensor>{cumsum_values(g[0], d, true)};
    });
  }
  return res;
}

Tensor sum_to(const Tensor& g, const Dims& shape) {
  FASTDL_PROFILE("sum_to", g);
  if (g.shape() == shape) return g;
  int lead = g.ndim() - shape.size();
  IntList dims;
  for (int i = 0; i < lead; ++i) dims.push_back(i);
  for (int i = 0; i < shape.size(); ++i)
    if (shape[i] == 1 && g.shape()[lead + i] != 1) dims.push_back(lead + i);
  Tensor r = dims.empty() ? g : sum(g, dims, true);
  return reshape(r, shape.vec());
}

}  // namespace fastdl
