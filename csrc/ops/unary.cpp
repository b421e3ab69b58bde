// Unary elementwise ops and their backward formulas.
#include <algorithm>
#include <array>
#include <cmath>
#include <functional>

#include "autograd/node.h"
#include "ops/dispatch.h"
#include "core/profiler.h"
#include "cpu/special.h"
#include "ops/ops.h"

namespace fastdl {

const char* op_name(UnaryOp op) {
  static const char* n[] = {"neg", "exp", "log", "sqrt", "rsqrt", "abs", "sin", "cos", "tan", "tanh", "sigmoid",
                            "relu", "gelu", "gelu", "silu", "softplus", "log1p", "expm1", "sign", "floor", "ceil",
                            "round", "trunc", "reciprocal", "square", "erf", "exp2", "log2", "log10", "asin", "acos",
                            "atan", "sinh", "cosh", "pow", "logical_not", "isnan", "isinf", "isfinite"};
  return n[int(op)];
}

namespace {

bool keeps_int(UnaryOp op) {
  return op == UnaryOp::neg || op == UnaryOp::abs || op == UnaryOp::relu || op == UnaryOp::sign || op == UnaryOp::square ||
         op == UnaryOp::cube ||
         op == UnaryOp::floor || op == UnaryOp::ceil || op == UnaryOp::round || op == UnaryOp::trunc;
}

void run_unary(UnaryOp op, DType kt, const Tensor& out, const Tensor& A) {
  if (out.device().is_cuda()) {
    Dims s0 = out.strides(), s1 = A.strides();
    const Dims* st[2] = {&s0, &s1};
    cuda::unary(op, kt, out.data_ptr(), A.data_ptr(), to_cuda_loop(cpu::make_loop(out.shape(), st, 2)), out.device().index);
    return;
  }
  auto k = cpu::elementwise_kernels().unary;
  char* base[2] = {static_cast<char*>(out.data_ptr()), static_cast<char*>(A.data_ptr())};
  int64_t es[2] = {int64_t(out.itemsize()), int64_t(A.itemsize())};
  if (A.is_contiguous() && out.is_contiguous()) {
    int64_t grain = op <= UnaryOp::abs || op >= UnaryOp::floor ? cpu::kParallelGrain : cpu::kParallelGrain / 8;
    parallel_for(0, out.numel(), grain, [&](int64_t lo, int64_t hi) {
      k(op, kt, base[0] + lo * es[0], base[1] + lo * es[1], hi - lo, 1, 1);
    });
    return;
  }
  Dims s0 = out.strides(), s1 = A.strides();
  const Dims* st[2] = {&s0, &s1};
  cpu::Loop L = cpu::make_loop(out.shape(), st, 2);
  cpu::for_each_row(L, base, es, [&](char* const* p, int64_t n, const int64_t* s) { k(op, kt, p[0], p[1], n, s[0], s[1]); });
}

Tensor bwd(BinaryOp op, const Tensor& x, const Tensor& g) { return binary(op, x, g); }

// create_graph: the derivative of op as a composite of differentiable ops of the input a or of
// the output y joined to this node again (autograd::saved_output), since the fused *_bwd kernels
// and the detached saved outputs of the fast closures have no derivative of their own.
Tensor unary_grad_graph(UnaryOp op, const Tensor& a, const Tensor& ys) {
  auto u = [](UnaryOp o, const Tensor& x) { return unary(o, x); };
  auto one_minus = [](const Tensor& x) { return binary_scalar(BinaryOp::sub, x, 1.0, true); };
  switch (op) {
    case UnaryOp::exp: case UnaryOp::expm1: { Tensor y = autograd::saved_output(ys); return op == UnaryOp::exp ? y : add_s(y, 1.0); }
    case UnaryOp::sqrt: return binary_scalar(BinaryOp::div, mul_s(autograd::saved_output(ys), 2.0), 1.0, true);
    case UnaryOp::rsqrt: { Tensor r = autograd::saved_output(ys); return mul_s(mul(r, mul(r, r)), -0.5); }
    case UnaryOp::tan: { Tensor t = autograd::saved_output(ys); return add_s(mul(t, t), 1.0); }
    case UnaryOp::tanh: { Tensor t = autograd::saved_output(ys); return one_minus(mul(t, t)); }
    case UnaryOp::sigmoid: { Tensor sg = autograd::saved_output(ys); return mul(sg, one_minus(sg)); }
    case UnaryOp::relu:  // a constant mask, 1 at a NaN (as relu_bwd)
      return to_dtype(unary(UnaryOp::logical_not, binary_scalar(BinaryOp::le, ys, 0.0)), ys.dtype());
    case UnaryOp::reciprocal: { Tensor r = autograd::saved_output(ys); return u(UnaryOp::neg, mul(r, r)); }
    case UnaryOp::exp2: return mul_s(autograd::saved_output(ys), M_LN2);
    case UnaryOp::gelu: {  // Phi(a) + a phi(a)
      Tensor cdf = mul_s(add_s(u(UnaryOp::erf, mul_s(a, M_SQRT1_2)), 1.0), 0.5);
      Tensor pdf = mul_s(u(UnaryOp::exp, mul_s(mul(a, a), -0.5)), 0.3989422804014327);
      return add(cdf, mul(a, pdf));
    }
    case UnaryOp::gelu_tanh: {  // 0.5 (1 + t) + 0.5 a (1 - t^2) k (1 + 3 c a^2), t = tanh(k (a + c a^3))
      const double k = 0.7978845608028654, c = 0.044715;
      Tensor a2 = mul(a, a);
      Tensor t = u(UnaryOp::tanh, mul_s(add(a, mul_s(mul(a2, a), c)), k));
      Tensor dt = mul(one_minus(mul(t, t)), mul_s(add_s(mul_s(a2, 3 * c), 1.0), k));
      return add(mul_s(add_s(t, 1.0), 0.5), mul_s(mul(a, dt), 0.5));
    }
    case UnaryOp::silu: { Tensor sg = u(UnaryOp::sigmoid, a); return mul(sg, add_s(mul(a, one_minus(sg)), 1.0)); }
    case UnaryOp::softplus: return u(UnaryOp::sigmoid, a);
    default: return Tensor();
  }
}

void record_unary(UnaryOp op, const Tensor& a, const Tensor& out) {
  using V = std::vector<Tensor>;
  Tensor& o = const_cast<Tensor&>(out);
  Tensor y = detach(out);  // saved output (no cycle through the graph)
  // For create_graph, each closure holds what its fast path already holds: the input or the output.
  const bool keeps_input = op == UnaryOp::gelu || op == UnaryOp::gelu_tanh || op == UnaryOp::silu ||
                           op == UnaryOp::softplus;
  auto rec = [&](const char* name, std::function<Tensor(const Tensor&)> f) {
    const bool keeps_output = op == UnaryOp::exp || op == UnaryOp::expm1 || op == UnaryOp::sqrt ||
                              op == UnaryOp::rsqrt || op == UnaryOp::tan || op == UnaryOp::tanh ||
                              op == UnaryOp::sigmoid || op == UnaryOp::relu || op == UnaryOp::reciprocal ||
                              op == UnaryOp::exp2;
    Tensor ai = keeps_input ? a : Tensor(), yo = keeps_output ? y : Tensor();
    // What f reads, for the in-place check: the output it keeps, else the input (but for the ops
    // whose derivative is a constant).
    const bool reads_nothing = op == UnaryOp::neg || op == UnaryOp::sign || op == UnaryOp::floor ||
                               op == UnaryOp::ceil || op == UnaryOp::round || op == UnaryOp::trunc;
    const V saved = keeps_output ? V{y} : reads_nothing ? V{} : V{a};
    autograd::record(name, {a}, o, [f, op, ai, yo](V& g) {
      if (autograd::grad_enabled()) {  // create_graph
        Tensor d = unary_grad_graph(op, ai, yo);
        if (op == UnaryOp::relu)  // a mask of y: zero second derivative, through y to the input
          return V{autograd::zero_derivative("ThresholdBackwardBackward0", mul(g[0], d), autograd::saved_output(yo))};
        if (d.defined()) return V{mul(g[0], d)};
      }
      return V{f(g[0])};
    }, saved);
  };
  switch (op) {
    case UnaryOp::neg: rec("NegBackward0", [](const Tensor& g) { return unary(UnaryOp::neg, g); }); return;
    case UnaryOp::exp: rec("ExpBackward0", [y](const Tensor& g) { return mul(g, y); }); return;
    case UnaryOp::log: rec("LogBackward0", [a](const Tensor& g) { return div(g, a); }); return;
    case UnaryOp::sqrt: rec("SqrtBackward0", [y](const Tensor& g) { return div(g, mul_s(y, 2.0)); }); return;
    case UnaryOp::rsqrt: rec("RsqrtBackward0", [y](const Tensor& g) { return mul(g, mul_s(mul(y, mul(y, y)), -0.5)); }); return;
    case UnaryOp::abs: rec("AbsBackward0", [a](const Tensor& g) { return mul(g, unary(UnaryOp::sign, a)); }); return;
    case UnaryOp::sin: rec("SinBackward0", [a](const Tensor& g) { return mul(g, unary(UnaryOp::cos, a)); }); return;
    case UnaryOp::cos: rec("CosBackward0", [a](const Tensor& g) { return mul(g, unary(UnaryOp::neg, unary(UnaryOp::sin, a))); }); return;
    case UnaryOp::tan: rec("TanBackward0", [y](const Tensor& g) { return mul(g, add_s(mul(y, y), 1.0)); }); return;
    case UnaryOp::tanh: rec("TanhBackward0", [y](const Tensor& g) { return bwd(BinaryOp::tanh_bwd, y, g); }); return;
    case UnaryOp::sigmoid: rec("SigmoidBackward0", [y](const Tensor& g) { return bwd(BinaryOp::sigmoid_bwd, y, g); }); return;
    case UnaryOp::relu: rec("ReluBackward0", [y](const Tensor& g) { return bwd(BinaryOp::relu_bwd, y, g); }); return;
    case UnaryOp::gelu: rec("GeluBackward0", [a](const Tensor& g) { return bwd(BinaryOp::gelu_bwd, a, g); }); return;
    case UnaryOp::gelu_tanh: rec("GeluBackward0", [a](const Tensor& g) { return bwd(BinaryOp::gelu_tanh_bwd, a, g); }); return;
    case UnaryOp::silu: rec("SiluBackward0", [a](const Tensor& g) { return bwd(BinaryOp::silu_bwd, a, g); }); return;
    case UnaryOp::softplus: rec("SoftplusBackward0", [a](const Tensor& g) { return bwd(BinaryOp::softplus_bwd, a, g); }); return;
    case UnaryOp::log1p: rec("Log1PBackward0", [a](const Tensor& g) { return div(g, add_s(a, 1.0)); }); return;
    case UnaryOp::expm1: rec("Expm1Backward0", [y](const Tensor& g) { return mul(g, add_s(y, 1.0)); }); return;
    case UnaryOp::reciprocal: rec("ReciprocalBackward0", [y](const Tensor& g) { return mul(g, unary(UnaryOp::neg, mul(y, y))); }); return;
    case UnaryOp::square: rec("PowBackward0", [a](const Tensor& g) { return mul(g, mul_s(a, 2.0)); }); return;
    case UnaryOp::erf:
      rec("ErfBackward0", [a](const Tensor& g) {
        return mul(g, mul_s(unary(UnaryOp::exp, unary(UnaryOp::neg, mul(a, a))), 1.1283791670955126));
      });
      return;
    case UnaryOp::exp2: rec("Exp2Backward0", [y](const Tensor& g) { return mul(g, mul_s(y, M_LN2)); }); return;
    case UnaryOp::log2: rec("Log2Backward0", [a](const Tensor& g) { return div(g, mul_s(a, M_LN2)); }); return;
    case UnaryOp::log10: rec("Log10Backward0", [a](const Tensor& g) { return div(g, mul_s(a, M_LN10)); }); return;
    case UnaryOp::asin:
      rec("AsinBackward0", [a](const Tensor& g) { return div(g, unary(UnaryOp::sqrt, binary_scalar(BinaryOp::sub, mul(a, a), 1.0, true))); });
      return;
    case UnaryOp::acos:
      rec("AcosBackward0", [a](const Tensor& g) {
        return unary(UnaryOp::neg, div(g, unary(UnaryOp::sqrt, binary_scalar(BinaryOp::sub, mul(a, a), 1.0, true))));
      });
      return;
    case UnaryOp::atan: rec("AtanBackward0", [a](const Tensor& g) { return div(g, add_s(mul(a, a), 1.0)); }); return;
    case UnaryOp::sinh: rec("SinhBackward0", [a](const Tensor& g) { return mul(g, unary(UnaryOp::cosh, a)); }); return;
    case UnaryOp::cosh: rec("CoshBackward0", [a](const Tensor& g) { return mul(g, unary(UnaryOp::sinh, a)); }); return;
    case UnaryOp::cube: rec("PowBackward0", [a](const Tensor& g) { return mul(g, mul_s(unary(UnaryOp::square, a), 3.0)); }); return;
    case UnaryOp::sign: case UnaryOp::floor: case UnaryOp::ceil: case UnaryOp::round: case UnaryOp::trunc:
      rec("ZeroBackward", [](const Tensor& g) { return zeros_like(g); });
      return;
    default: return;
  }
}

}  // namespace

Tensor unary(UnaryOp op, const Tensor& a) {
  FASTDL_PROFILE(op_name(op), a);
  FASTDL_CHECK(a.defined(), ValueError, op_name(op), ": got an undefined tensor");
  DType dt = a.dtype();
  bool pred = is_predicate(op);
  DType ct = pred ? dt : (is_floating(dt) || keeps_int(op) ? dt : DType::f32);
  FASTDL_CHECK(!(dt == DType::b8 && op == UnaryOp::neg), TypeError,
               "neg: negation, the `-` operator, on a bool tensor is not supported; use ~ or logical_not()");
  FASTDL_CHECK(!(dt == DType::b8 && op == UnaryOp::relu), TypeError, "relu: bool inputs are not supported");
  // rounding is the identity on integers, and so are abs/relu/sign on bools
  bool identity = (!is_floating(dt) && (op == UnaryOp::floor || op == UnaryOp::ceil || op == UnaryOp::round ||
                                        op == UnaryOp::trunc)) ||
                  (dt == DType::b8 && (op == UnaryOp::abs || op == UnaryOp::relu || op == UnaryOp::sign));
  if (ct == DType::b8 && !pred) ct = identity ? DType::b8 : op == UnaryOp::square ? DType::i64 : DType::f32;
  DType kt = is_half(ct) ? DType::f32 : ct;
  if (pred && is_half(dt)) kt = DType::f32;
  Tensor A = a.dtype() == kt ? a : to_dtype(detach(a), kt);
  Tensor out = empty_in_layout(A, a.shape(), pred ? DType::b8 : kt, a.device());  // a transpose stays one
  if (out.numel()) {
    if (identity) copy_(out, A);
    else run_unary(op, kt, out, A);
  }
  if (!pred && is_half(ct)) out = to_dtype(out, ct);
  if (autograd::any_requires_grad(a) && !pred) record_unary(op, a, out);
  return out;
}

Tensor unary_(UnaryOp op, const Tensor& a) {
  check_no_internal_overlap(op_name(op), a, "_");
  if (autograd::any_requires_grad(a)) {
    FASTDL_CHECK(!a.is_leaf(), ValueError, op_name(op), "_: a leaf Variable that requires grad is being used in an in-place operation");
    check_inplace_view(a);
    Tensor r = unary(op, clone(a));
    copy_(a, r);
    bump_version(a);
    a.impl()->grad_fn = r.grad_fn();
    a.impl()->output_nr = r.impl()->output_nr;
    rebase_view_history(a);
    return a;
  }
  Tensor r = unary(op, a);
  FASTDL_CHECK(r.dtype() == a.dtype() || is_predicate(op), TypeError, op_name(op), "_: result type ", dtype_name(r.dtype()),
               " can't be cast to the desired output type ", dtype_name(a.dtype()));
  copy_(a, r);
  bump_version(a);
  return a;
}

namespace {

using Prm = std::array<double, 3>;

// One pass of the CPU act kernel: out = f(a), or g f'(a) for a *_bwd op (g shaped as a).
// float32 / float64 (half types through float32); out keeps a's layout.
Tensor run_act(ActOp op, const Tensor& a_, const Tensor& g_, const Prm& p) {
  const DType dt = a_.dtype(), kt = dt == DType::f64 ? DType::f64 : DType::f32;
  const bool bwd = is_act_bwd(op);
  Tensor a = a_.dtype() == kt ? a_ : to_dtype(detach(a_), kt);
  Tensor g = !bwd ? Tensor() : g_.dtype() == kt ? g_ : to_dtype(detach(g_), kt);
  Tensor out = empty_in_layout(a, a.shape(), kt, a.device());
  if (out.numel()) {
    auto k = cpu::elementwise_kernels().act;
    const int nops = bwd ? 3 : 2;
    Dims s0 = out.strides(), s1 = a.strides(), s2 = bwd ? bstrides(g, a.shape()) : a.strides();
    const Dims* st[3] = {&s0, &s1, &s2};
    cpu::Loop L = cpu::make_loop(out.shape(), st, nops);
    char* base[3] = {static_cast<char*>(out.data_ptr()), static_cast<char*>(a.data_ptr()),
                     bwd ? static_cast<char*>(g.data_ptr()) : nullptr};
    int64_t es[3] = {int64_t(out.itemsize()), int64_t(out.itemsize()), int64_t(out.itemsize())};
    cpu::for_each_row(L, base, es, [&](char* const* q, int64_t n, const int64_t* s) {
      k(op, kt, q[0], q[1], bwd ? q[2] : nullptr, n, s[0], s[1], bwd ? s[2] : 0, p.data());
    }, cpu::kParallelGrain / 8);
  }
  return dt == kt ? out : to_dtype(out, dt);
}

bool act_fused(const Tensor& a) { return a.device().is_cpu() && is_floating(a.dtype()); }

using GradGraph = std::function<Tensor(const Tensor& g, const Tensor& x)>;

// Forward through the act kernel and a node whose backward runs its *_bwd form; under create_graph
// the gradient as differentiable ops of g and the input x instead (grad_graph). `piecewise_linear`:
// that gradient is a mask of x times g, tied to x with a zero derivative (autograd::zero_derivative).
Tensor act(const char* name, const char* node, ActOp op, const Tensor& a, const Prm& p, GradGraph grad_graph,
           const char* piecewise_linear = nullptr) {
  FASTDL_PROFILE(name, a);
  Tensor out = run_act(op, detach(a), Tensor(), p);
  if (autograd::any_requires_grad(a)) {
    const ActOp bop = act_bwd(op);
    autograd::record(node, {a}, out, [a, p, bop, grad_graph, piecewise_linear](std::vector<Tensor>& g) {
      if (autograd::grad_enabled()) {
        Tensor gi = grad_graph(g[0], a);
        return std::vector<Tensor>{piecewise_linear ? autograd::zero_derivative(piecewise_linear, gi, a) : gi};
      }
      return std::vector<Tensor>{run_act(bop, detach(a), g[0], p)};
    }, std::vector<Tensor>{a});
  }
  return out;
}
// grad_graph for an op whose derivative is a function of x alone: g f'(x)
GradGraph times(std::function<Tensor(const Tensor&)> deriv) {
  return [deriv](const Tensor& g, const Tensor& x) { return mul(g, deriv(x)); };
}

Tensor cst(double v, const Tensor& like) { return scalar_tensor(v, like.dtype(), like.device()); }
Tensor cmp(BinaryOp op, const Tensor& a, double v) { return binary_scalar(op, detach(a), v); }
Tensor inside(const Tensor& a, double lo, double hi) {  // lo < a < hi (false at a NaN)
  return binary(BinaryOp::logical_and, cmp(BinaryOp::gt, a, lo), cmp(BinaryOp::lt, a, hi));
}

}  // namespace

Tensor leaky_relu(const Tensor& a, double slope) {
  if (!act_fused(a)) return where(binary_scalar(BinaryOp::gt, a, 0.0), a, mul_s(a, slope));
  return act("leaky_relu", "LeakyReluBackward0", ActOp::leaky_relu, a, {slope, 0, 0}, times([slope](const Tensor& x) {
    return where(cmp(BinaryOp::gt, x, 0.0), cst(1.0, x), cst(slope, x));
  }), "LeakyReluBackwardBackward0");
}

Tensor elu(const Tensor& a, double alpha, double scale, double input_scale) {
  // PyTorch's sides: x <= 0 is exponential, everything else (a NaN too) the identity. The exponential
  // side sees 0 where unused, so that its zero gradient there stays 0 (not 0 * exp(inf)).
  if (!act_fused(a)) {
    Tensor neg = binary_scalar(BinaryOp::le, a, 0.0);
    Tensor an = mul_s(where(neg, a, zeros_like(a)), input_scale);
    return where(neg, mul_s(unary(UnaryOp::expm1, an), alpha * scale), mul_s(a, scale));
  }
  return act("elu", "EluBackward0", ActOp::elu, a, {alpha, scale, input_scale}, times([=](const Tensor& x) {
    // the derivative's value takes x <= 0's side, its own derivative x < 0's (PyTorch's
    // elu_double_backward masks x < 0: 0 at x = 0)
    Tensor neg = cmp(BinaryOp::lt, x, 0.0);
    Tensor e = unary(UnaryOp::exp, mul_s(where(neg, x, zeros_like(x)), input_scale));
    return where(cmp(BinaryOp::le, x, 0.0), mul_s(e, alpha * scale * input_scale), cst(scale, x));
  }));
}

Tensor hardswish(const Tensor& a) {
  if (!act_fused(a)) {  // x (x + 3) / 6 strictly inside (-3, 3) (the middle sees 0 elsewhere, so its zero
    // gradient there stays 0 at an infinity), x * 0 at or below -3, x at or above 3 and at a NaN
    Tensor mid = inside(a, -3.0, 3.0);
    Tensor xm = where(mid, a, zeros_like(a));
    return where(binary_scalar(BinaryOp::le, a, -3.0), mul_s(a, 0.0),
                 where(mid, mul_s(mul(xm, add_s(xm, 3.0)), 1.0 / 6.0), a));
  }
  return act("hardswish", "HardswishBackward0", ActOp::hardswish, a, {0, 0, 0}, times([](const Tensor& x) {
    return where(cmp(BinaryOp::le, x, -3.0), cst(0.0, x),
                 where(cmp(BinaryOp::lt, x, 3.0), add_s(mul_s(x, 1.0 / 3.0), 0.5), cst(1.0, x)));
  }));
}

Tensor hardsigmoid(const Tensor& a) {
  if (!act_fused(a)) {  // the value of clamp(x + 3, 0, 6) / 6; the gradient float(1/6) strictly inside (-3, 3)
    Tensor d = mul_s(where(inside(a, -3.0, 3.0), a, zeros_like(a)), double(1.0f / 6.0f));
    return add(detach(mul_s(clamp(add_s(a, 3.0), 0.0, 6.0), 1.0 / 6.0)), sub(d, detach(d)));
  }
  return act("hardsigmoid", "HardsigmoidBackward0", ActOp::hardsigmoid, a, {0, 0, 0}, times([](const Tensor& x) {
    return where(inside(x, -3.0, 3.0), cst(double(1.0f / 6.0f), x), cst(0.0, x));  // PyTorch's float one_sixth, in float64 too
  }));
}

Tensor hardtanh(const Tensor& a, double lo, double hi) {
  // clamp's value; the gradient only strictly inside (lo, hi), a select (an inf or NaN g gives 0
  // outside, and a NaN x 0: PyTorch's hardtanh_backward)
  if (!act_fused(a)) return clamp(a, lo, hi);
  return act("hardtanh", "HardtanhBackward0", ActOp::hardtanh, a, {lo, hi, 0}, [lo, hi](const Tensor& g, const Tensor& x) {
    return where(inside(x, lo, hi), g, cst(0.0, g));
  }, "HardtanhBackwardBackward0");
}

Tensor threshold(const Tensor& a, double th, double value) {
  if (!act_fused(a)) return where(binary_scalar(BinaryOp::le, a, th), scalar_tensor(value, a.dtype(), a.device()), a);
  return act("threshold", "ThresholdBackward0", ActOp::threshold, a, {th, value, 0}, [th](const Tensor& g, const Tensor& x) {
    return where(cmp(BinaryOp::le, x, th), cst(0.0, g), g);
  }, "ThresholdBackwardBackward0");
}

// The gradient of both shrinks: g outside [-lambd, lambd] (0 at a NaN)
GradGraph shrink_grad(double l) {
  return [l](const Tensor& g, const Tensor& x) {
    return where(binary(BinaryOp::logical_or, cmp(BinaryOp::lt, x, -l), cmp(BinaryOp::gt, x, l)), g, cst(0.0, g));
  };
}

Tensor hardshrink(const Tensor& a, double lambd) {
  FASTDL_CHECK(act_fused(a), TypeError, "hardshrink: expected a floating-point input on the cpu; got ",
               dtype_name(a.dtype()), " on ", a.device().str());
  return act("hardshrink", "HardshrinkBackward0", ActOp::hardshrink, a, {lambd, 0, 0}, shrink_grad(lambd),
             "HardshrinkBackwardBackward0");
}

Tensor softshrink(const Tensor& a, double lambd) {
  FASTDL_CHECK(lambd >= 0, ValueError, "softshrink: lambda must be in range [0, inf); found ", lambd);
  FASTDL_CHECK(act_fused(a), TypeError, "softshrink: expected a floating-point input on the cpu; got ",
               dtype_name(a.dtype()), " on ", a.device().str());
  return act("softshrink", "SoftshrinkBackward0", ActOp::softshrink, a, {lambd, 0, 0}, shrink_grad(lambd),
             "SoftshrinkBackwardBackward0");
}

Tensor special_value(const std::string& fn, const Tensor& x, double s) {
  static const std::pair<const char*, cpu::SpecialFn> kFns[] = {
      {"lgamma", cpu::SpecialFn::lgamma}, {"digamma", cpu::SpecialFn::digamma}, {"erfc", cpu::SpecialFn::erfc},
      {"erfinv", cpu::SpecialFn::erfinv}, {"zeta", cpu::SpecialFn::zeta}};
  const auto* it = std::find_if(std::begin(kFns), std::end(kFns), [&](const auto& e) { return fn == e.first; });
  FASTDL_CHECK(it != std::end(kFns), ValueError, "special_value: unknown function '", fn,
               "'; expected lgamma, digamma, erfc, erfinv or zeta");
  FASTDL_CHECK(x.device().is_cpu() && x.dtype() == DType::f64, TypeError, "special_value(", fn,
               "): expected a float64 cpu tensor; got ", dtype_name(x.dtype()), " on ", x.device().str());
  FASTDL_CHECK(fn != "zeta" || (s >= 2 && s == std::floor(s)), ValueError,
               "special_value(zeta): the order must be an integer >= 2; got ", s);
  Tensor xc = contiguous(detach(x));
  Tensor out = empty(x.shape(), DType::f64, x.device());
  cpu::special_rows(it->second, s, xc.data<double>(), out.data<double>(), out.numel());
  return out;
}

Tensor nan_to_num(const Tensor& a, double nan, double posinf, double neginf) {
  if (act_fused(a))
    return act("nan_to_num", "NanToNumBackward0", ActOp::nan_to_num, a, {nan, posinf, neginf}, [](const Tensor& g, const Tensor& x) {
      return where(unary(UnaryOp::isfinite, detach(x)), g, cst(0.0, g));  // a select (PyTorch's)
    });
  Tensor r = where(unary(UnaryOp::isnan, a), full(Dims(), nan, a.dtype(), a.device()), a);
  r = where(binary(BinaryOp::logical_and, unary(UnaryOp::isinf, r), binary_scalar(BinaryOp::gt, r, 0.0)),
            full(Dims(), posinf, a.dtype(), a.device()), r);
  return where(binary(BinaryOp::logical_and, unary(UnaryOp::isinf, r), binary_scalar(BinaryOp::lt, r, 0.0)),
               full(Dims(), neginf, a.dtype(), a.device()), r);
}

}  // namespace fastdl
