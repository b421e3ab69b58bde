// Binary elementwise ops: type promotion and broadcasting as PyTorch, one kernel call over
// a coalesced strided loop, and the backward formulas beside the forward.
#include <cmath>

#include "autograd/node.h"
#include "ops/dispatch.h"
#include "core/profiler.h"
#include "ops/ops.h"

namespace fastdl {

const char* op_name(BinaryOp op) {
  static const char* n[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "atan2", "remainder",
                            "floor_divide", "fmod", "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or",
                            "logical_xor", "relu_backward", "sigmoid_backward", "tanh_backward", "gelu_backward",
                            "gelu_backward", "silu_backward", "softplus_backward", "bitwise_and", "bitwise_or",
                            "bitwise_xor"};
  return n[int(op)];
}

Dims broadcast_shapes(const Dims& a, const Dims& b, const char* op) {
  if (a == b) return a;
  int n = std::max(a.size(), b.size());
  Dims out(n);
  for (int i = 0; i < n; ++i) {
    int ia = a.size() - n + i, ib = b.size() - n + i;
    int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    FASTDL_CHECK(da == db || da == 1 || db == 1, ValueError, op, ": shapes ", shape_str(a), " and ", shape_str(b),
                 " are not broadcastable (dim ", i - n, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// Zero-dim tensors take part in promotion only when they raise the category (PyTorch).
DType result_type(const Tensor& a, const Tensor& b) {
  DType x = a.dtype(), y = b.dtype();
  if (x == y) return x;
  bool za = a.ndim() == 0, zb = b.ndim() == 0;
  if (za != zb) {
    const DType dim_t = za ? y : x, zero_t = za ? x : y;
    auto cat_of = [](DType t) { return is_floating(t) ? 2 : is_integral(t) ? 1 : 0; };
    if (cat_of(zero_t) <= cat_of(dim_t)) return dim_t;
    return zero_t;
  }
  return promote(x, y);
}

DType result_type_scalar(const Tensor& a, double s, bool s_is_int) {
  DType t = a.dtype();
  if (is_floating(t)) return t;
  if (!s_is_int) return DType::f32;         // int tensor * 1.5 -> default float
  if (t == DType::b8) return DType::i64;    // bool tensor + int -> int64
  return t;
}

namespace {

DType compute_dtype(BinaryOp op, DType ct) {
  if ((op == BinaryOp::div || op == BinaryOp::atan2) && !is_floating(ct)) return DType::f32;  // true division
  if (ct == DType::b8 && !is_comparison(op)) return DType::i64;
  return ct;
}

void run_binary(BinaryOp op, DType ct, const Tensor& out, const Tensor& a, const Tensor& b) {
  const Dims& shape = out.shape();
  if (out.device().is_cuda()) {
    Dims s0 = out.strides(), s1 = bstrides(a, shape), s2 = bstrides(b, shape);
    const Dims* st[3] = {&s0, &s1, &s2};
    cuda::binary(op, ct, out.data_ptr(), a.data_ptr(), b.data_ptr(), to_cuda_loop(cpu::make_loop(shape, st, 3)), out.device().index);
    return;
  }
  auto kern = cpu::elementwise_kernels().binary;
  char* base[3] = {static_cast<char*>(out.data_ptr()), static_cast<char*>(a.data_ptr()), static_cast<char*>(b.data_ptr())};
  int64_t es[3] = {int64_t(out.itemsize()), int64_t(a.itemsize()), int64_t(b.itemsize())};
  if (a.is_contiguous() && b.is_contiguous() && out.is_contiguous() && a.shape() == shape && b.shape() == shape) {
    int64_t n = out.numel();  // fast path: one flat row
    parallel_for(0, n, cpu::kParallelGrain, [&](int64_t lo, int64_t hi) {
      kern(op, ct, base[0] + lo * es[0], base[1] + lo * es[1], base[2] + lo * es[2], hi - lo, 1, 1, 1);
    });
    return;
  }
  Dims s0 = out.strides(), s1 = bstrides(a, shape), s2 = bstrides(b, shape);
  const Dims* st[3] = {&s0, &s1, &s2};
  cpu::Loop L = cpu::make_loop(shape, st, 3);
  if (L.ndim < 2) {
    cpu::for_each_row(L, base, es, [&](char* const* p, int64_t n, const int64_t* s) { kern(op, ct, p[0], p[1], p[2], n, s[0], s[1], s[2]); });
    return;
  }
  // Blocks of rows per kernel call: the loop without its innermost dim hands out row blocks.
  const int nd = L.ndim;
  const int64_t n = L.shape[nd - 1], in0 = L.strides[0][nd - 1], in1 = L.strides[1][nd - 1], in2 = L.strides[2][nd - 1];
  cpu::Loop R = L;
  R.ndim = nd - 1;
  R.numel = L.numel / n;
  auto rows = cpu::elementwise_kernels().binary_rows;
  cpu::for_each_row(R, base, es, [&](char* const* p, int64_t nr, const int64_t* s) {
    rows(op, ct, p[0], p[1], p[2], n, in0, in1, in2, nr, s[0], s[1], s[2]);
  }, std::max<int64_t>(1, cpu::kParallelGrain / n));
}

Tensor grad_for(const Tensor& g, const Tensor& input) {
  Tensor r = sum_to(g, input.shape());
  return r.dtype() == input.dtype() ? r : to_dtype(r, input.dtype());
}

void record_binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  using V = std::vector<Tensor>;
  bool ga = a.requires_grad(), gb = b.requires_grad();
  switch (op) {
    case BinaryOp::add:
      autograd::record("AddBackward0", {a, b}, out, [a, b, ga, gb](V& g) {
        return V{ga ? grad_for(g[0], a) : Tensor(), gb ? grad_for(g[0], b) : Tensor()};
      });
      return;
    case BinaryOp::sub:
      autograd::record("SubBackward0", {a, b}, out, [a, b, ga, gb](V& g) {
        return V{ga ? grad_for(g[0], a) : Tensor(), gb ? unary(UnaryOp::neg, grad_for(g[0], b)) : Tensor()};
      });
      return;
    case BinaryOp::mul:
      autograd::record("MulBackward0", {a, b}, out, [a, b, ga, gb](V& g) {
        return V{ga ? grad_for(mul(g[0], b), a) : Tensor(), gb ? grad_for(mul(g[0], a), b) : Tensor()};
      }, {gb ? a : Tensor(), ga ? b : Tensor()});
      return;
    case BinaryOp::div:
      autograd::record("DivBackward0", {a, b}, out, [a, b, ga, gb](V& g) {
        Tensor gq = div(g[0], b);
        return V{ga ? grad_for(gq, a) : Tensor(), gb ? grad_for(unary(UnaryOp::neg, mul(gq, div(a, b))), b) : Tensor()};
      }, {gb ? a : Tensor(), b});
      return;
    case BinaryOp::pow:
      autograd::record("PowBackward1", {a, b}, out, [a, b, ga, gb](V& g) {
        // PyTorch's conventions: no gradient to the base where the exponent is 0 (x^0 is 1 even at
        // x = 0 or NaN), none to the exponent where the base is 0 and the exponent >= 0; a negative
        // base's exponent gradient is NaN (its log)
        Tensor da, db;
        if (ga) {
          Tensor d = mul(b, binary(BinaryOp::pow, a, binary_scalar(BinaryOp::sub, b, 1.0)));
          d = where(binary_scalar(BinaryOp::eq, b, 0.0), zeros_like(d), d);
          da = grad_for(mul(g[0], d), a);
        }
        if (gb) {
          Tensor d = mul(binary(BinaryOp::pow, a, b), unary(UnaryOp::log, a));
          Tensor skip = binary(BinaryOp::logical_and, binary_scalar(BinaryOp::eq, a, 0.0), binary_scalar(BinaryOp::ge, b, 0.0));
          d = where(skip, zeros_like(d), d);
          db = grad_for(mul(g[0], d), b);
        }
        return V{da, db};
      }, {a, b});
      return;
    case BinaryOp::maximum: case BinaryOp::minimum:
      autograd::record(op == BinaryOp::maximum ? "MaximumBackward0" : "MinimumBackward0", {a, b}, out, [a, b, op](V& g) {
        // PyTorch's weights: 1/2 at a tie, 0 on the losing side, 1 otherwise (a NaN included)
        BinaryOp lose = op == BinaryOp::maximum ? BinaryOp::lt : BinaryOp::gt;
        DType t = g[0].dtype();
        Tensor half = binary_scalar(BinaryOp::mul, to_dtype(binary(BinaryOp::eq, a, b), t), 0.5);
        Tensor wa = binary_scalar(BinaryOp::sub, add(to_dtype(binary(lose, a, b), t), half), 1.0, true);
        Tensor wb = binary_scalar(BinaryOp::sub, add(to_dtype(binary(lose, b, a), t), half), 1.0, true);
        return V{grad_for(mul(g[0], wa), a), grad_for(mul(g[0], wb), b)};
      }, {a, b});
      return;
    case BinaryOp::atan2:
      autograd::record("Atan2Backward0", {a, b}, out, [a, b](V& g) {
        Tensor den = add(mul(a, a), mul(b, b));
        Tensor r = unary(UnaryOp::reciprocal, den);
        r = where(unary(UnaryOp::isinf, r), zeros_like(r), r);  // 0 at the origin, as PyTorch
        return V{grad_for(mul(mul(g[0], b), r), a), grad_for(unary(UnaryOp::neg, mul(mul(g[0], a), r)), b)};
      }, {a, b});
      return;
    case BinaryOp::remainder:
      autograd::record("RemainderBackward0", {a, b}, out, [a, b](V& g) {
        return V{grad_for(g[0], a), b.requires_grad() ? grad_for(unary(UnaryOp::neg, mul(g[0],
                                                       binary(BinaryOp::floor_divide, a, b))), b) : Tensor()};
      }, {a, b});
      return;
    case BinaryOp::fmod:  // a - trunc(a / b) b (PyTorch's formula)
      autograd::record("FmodBackward1", {a, b}, out, [a, b](V& g) {
        return V{grad_for(g[0], a), b.requires_grad() ? grad_for(unary(UnaryOp::neg, mul(g[0],
                                                       unary(UnaryOp::trunc, div(a, b)))), b) : Tensor()};
      }, {a, b});
      return;
    default:
      return;  // comparisons, floor_divide: not differentiable
  }
}

}  // namespace

namespace {

// Bool arithmetic as PyTorch: + and maximum are `or`, * and minimum are `and`; `-` refuses.
BinaryOp check_bool_op(BinaryOp op, DType rt, DType x, DType y) {
  FASTDL_CHECK(!(op == BinaryOp::sub && (x == DType::b8 || y == DType::b8)), TypeError,
               "sub: subtraction, the `-` operator, with a bool tensor is not supported; use ^ or logical_xor()");
  if (rt != DType::b8) return op;
  if (is_bitwise(op))  // bits of bools are their truth values
    return op == BinaryOp::bitwise_and ? BinaryOp::logical_and : op == BinaryOp::bitwise_or ? BinaryOp::logical_or
                                                                                             : BinaryOp::logical_xor;
  if (op == BinaryOp::add || op == BinaryOp::maximum) return BinaryOp::logical_or;
  if (op == BinaryOp::mul || op == BinaryOp::minimum) return BinaryOp::logical_and;
  FASTDL_CHECK(op != BinaryOp::remainder && op != BinaryOp::floor_divide && op != BinaryOp::fmod, TypeError, op_name(op),
               ": not supported for bool tensors");
  return op;
}

// Integer division by zero has no value: refuse it before anything is written.
void check_int_divisor(BinaryOp op, DType ct, const Tensor& a, const Tensor& b) {
  if ((op != BinaryOp::remainder && op != BinaryOp::floor_divide && op != BinaryOp::fmod) || is_floating(ct) || b.numel() == 0 || a.numel() == 0) return;
  Tensor z = binary_scalar(BinaryOp::eq, b, 0.0, false, 1);
  FASTDL_CHECK(item(any(z, {}, false)) == 0, ValueError, op_name(op), ": integer division by zero (divisor of shape ",
               shape_str(b.shape()), " and dtype ", dtype_name(b.dtype()), ")");
}

}  // namespace

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  FASTDL_PROFILE(op_name(op), a, b);
  FASTDL_CHECK(a.defined() && b.defined(), ValueError, op_name(op), ": got an undefined tensor");
  check_same_device(a, b, op_name(op));
  DType rt = result_type(a, b);
  FASTDL_CHECK(!is_bitwise(op) || !is_floating(rt), TypeError, op_name(op), ": only integer and bool tensors have bits; got ",
               dtype_name(a.dtype()), " and ", dtype_name(b.dtype()));
  if (rt == DType::b8 || a.dtype() == DType::b8 || b.dtype() == DType::b8) op = check_bool_op(op, rt, a.dtype(), b.dtype());
  check_int_divisor(op, rt, a, b);
  DType ct = compute_dtype(op, rt);
  bool half = is_half(ct);
  DType kt = half ? DType::f32 : ct;  // half types compute in float32
  Tensor A = a.dtype() == kt ? a : to_dtype(detach(a), kt);
  Tensor B = b.dtype() == kt ? b : to_dtype(detach(b), kt);
  Dims shape = a.shape() == b.shape() ? a.shape() : broadcast_shapes(a.shape(), b.shape(), op_name(op));
  DType odt = is_comparison(op) ? DType::b8 : kt;
  // the operands' layout when they share it (or one is a single element): PyTorch's, and every
  // operand then walks memory in order (x.T + y.T into a contiguous result: 0.03x PyTorch)
  const bool same = A.shape() == B.shape() && A.strides() == B.strides();
  const Tensor& like = same || B.numel() == 1 ? A : B;
  Tensor out = same || A.numel() == 1 || B.numel() == 1 ? empty_in_layout(like, shape, odt, a.device())
                                                        : empty(shape, odt, a.device());
  if (out.numel()) run_binary(op, kt, out, A, B);
  if (half && !is_comparison(op)) out = to_dtype(out, ct);
  if (autograd::any_requires_grad(a, b) && is_floating(out.dtype())) record_binary(op, a, b, out);
  return out;
}

Tensor binary_scalar(BinaryOp op, const Tensor& a, double s, bool scalar_first, int kind) {
  // kind: 0 float, 1 int (the binding tells Python ints from floats); -1 infers from the value.
  // kind 2: a Python bool, which keeps bool tensors bool
  bool s_int = kind >= 0 ? kind >= 1 : (std::floor(s) == s && std::fabs(s) < 9.2e18);
  DType rt = kind == 2 && a.dtype() == DType::b8 ? DType::b8 : result_type_scalar(a, s, s_int);
  if (kind == 2) check_bool_op(op, rt, a.dtype(), DType::b8);
  FASTDL_CHECK(!(op == BinaryOp::pow && !scalar_first && !is_floating(rt) && s < 0), ValueError,
               "pow: integers to negative integer powers are not allowed; got base dtype ", dtype_name(a.dtype()),
               " and exponent ", s);
  // Common exponents of a float tensor run as their one-pass unary kernels (and gradients)
  // rather than std::pow per element: x ** 2 ran 16x slower than PyTorch's.
  if (op == BinaryOp::pow && !scalar_first && is_floating(a.dtype())) {
    if (s == 2) return unary(UnaryOp::square, a);
    if (s == 0.5) return unary(UnaryOp::sqrt, a);
    if (s == -1) return unary(UnaryOp::reciprocal, a);
    if (s == -0.5) return unary(UnaryOp::rsqrt, a);
    if (s == 3) return unary(UnaryOp::cube, a);
  }
  if (rt == DType::b8) {
    Tensor st = scalar_tensor(s, DType::b8, a.device());
    return scalar_first ? binary(op, st, a) : binary(op, a, st);
  }
  Tensor st = scalar_tensor(s, is_floating(rt) ? rt : (s_int ? rt : DType::f32), a.device());
  if (st.dtype() != rt) st = to_dtype(st, rt);
  return scalar_first ? binary(op, st, a) : binary(op, a, st);
}

Tensor binary_(BinaryOp op, const Tensor& a, const Tensor& b) {
  FASTDL_PROFILE(op_name(op), a, b);
  check_same_device(a, b, op_name(op));
  Dims shape = broadcast_shapes(a.shape(), b.shape(), op_name(op));
  FASTDL_CHECK(shape == a.shape(), ValueError, op_name(op), "_: output with shape ", shape_str(a.shape()),
               " doesn't match the broadcast shape ", shape_str(shape));
  check_no_internal_overlap(op_name(op), a, "_");
  check_no_partial_overlap(op_name(op), a, b, "_");
  DType rt = result_type(a, b);
  DType ct = rt == DType::b8 ? rt : compute_dtype(op, rt);  // bool algebra stays bool
  auto category = [](DType t) { return is_floating(t) ? 2 : is_integral(t) ? 1 : 0; };
  FASTDL_CHECK(is_comparison(op) || category(ct) <= category(a.dtype()), TypeError, op_name(op), "_: result type ",
               dtype_name(ct), " can't be cast to the desired output type ", dtype_name(a.dtype()));
  bool need = autograd::any_requires_grad(a, b);
  if (need) {
    FASTDL_CHECK(!(a.is_leaf() && a.requires_grad()), ValueError, op_name(op),
                 "_: a leaf Variable that requires grad is being used in an in-place operation");
    check_inplace_view(a);
    // Compute out of place on a clone (so backward sees the old value), then rebase `a`.
    Tensor r = binary(op, clone(a), b.storage() == a.storage() ? clone(b) : b);  // b may alias a
    copy_(a, r);
    bump_version(a);
    TensorImpl* ai = a.impl();
    ai->grad_fn = r.grad_fn();
    ai->output_nr = r.impl()->output_nr;
    ai->requires_grad = true;
    rebase_view_history(a);
    return a;
  }
  bump_version(a);
  DType kt = a.dtype();
  // Only the plain float/int arithmetic runs in place; everything with special rules (half
  // types, comparisons, bool algebra, integer division checks) goes through binary().
  bool direct = !is_half(kt) && !is_comparison(op) && kt != DType::b8 &&
                (is_floating(kt) || op == BinaryOp::add || op == BinaryOp::sub || op == BinaryOp::mul);
  if (!direct) { copy_(a, binary(op, a, b)); return a; }
  Tensor B = b.dtype() == kt ? b : to_dtype(b, kt);
  if (a.numel()) run_binary(op, kt, a, a, B);
  return a;
}

Tensor binary_scalar_(BinaryOp op, const Tensor& a, double s) {
  return binary_(op, a, scalar_tensor(s, is_floating(a.dtype()) ? a.dtype() : DType::i64, a.device()));
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  FASTDL_PROFILE("where", cond, a, b);
  check_same_device(a, b, "where");
  check_same_device(cond, a, "where");
  FASTDL_CHECK(cond.dtype() == DType::b8, TypeError, "where: condition must be a bool tensor; got dtype ", dtype_name(cond.dtype()));
  DType ct = result_type(a, b);
  Tensor A = a.dtype() == ct ? a : to_dtype(detach(a), ct);
  Tensor B = b.dtype() == ct ? b : to_dtype(detach(b), ct);
  Dims shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  // a's layout when the others share it or are one element (as binary's); on CUDA contiguous (its
  // select kernel writes out as one flat array)
  auto fits = [&](const Tensor& t) { return t.numel() == 1 || (t.shape() == A.shape() && t.strides() == A.strides()); };
  Tensor out = !a.device().is_cuda() && fits(B) && fits(cond) ? empty_in_layout(A, shape, ct, a.device())
                                                              : empty(shape, ct, a.device());
  if (out.numel()) {
    if (out.device().is_cuda()) {
      // Broadcast each operand into a contiguous buffer, then one select kernel.
      IntList s = shape.vec();
      Tensor c = contiguous(expand(detach(cond), s)), x = contiguous(expand(detach(A), s)), y = contiguous(expand(detach(B), s));
      cuda::where(out.itemsize(), out.data_ptr(), c.data_ptr(), x.data_ptr(), y.data_ptr(), out.numel(), out.device().index);
    } else {
      Dims s0 = out.strides(), s1 = bstrides(cond, shape), s2 = bstrides(A, shape), s3 = bstrides(B, shape);
      const Dims* st[4] = {&s0, &s1, &s2, &s3};
      cpu::Loop L = cpu::make_loop(shape, st, 4);
      char* base[4] = {static_cast<char*>(out.data_ptr()), static_cast<char*>(cond.data_ptr()),
                       static_cast<char*>(A.data_ptr()), static_cast<char*>(B.data_ptr())};
      int64_t es[4] = {int64_t(out.itemsize()), 1, int64_t(A.itemsize()), int64_t(B.itemsize())};
      auto k = cpu::elementwise_kernels().where;
      cpu::for_each_row(L, base, es, [&](char* const* p, int64_t n, const int64_t* s) {
        k(ct, p[0], p[1], p[2], p[3], n, s[0], s[1], s[2], s[3]);
      });
    }
  }
  if (autograd::any_requires_grad(a, b) && is_floating(ct)) {
    autograd::record("WhereBackward0", {Tensor(), a, b}, out, [cond, a, b](std::vector<Tensor>& g) {
      Tensor z = zeros(Dims(), g[0].dtype(), g[0].device());
      return std::vector<Tensor>{Tensor(), a.requires_grad() ? grad_for(where(cond, g[0], z), a) : Tensor(),
                                 b.requires_grad() ? grad_for(where(cond, z, g[0]), b) : Tensor()};
    }, {cond});
  }
  return out;
}

Tensor clamp(const Tensor& a, std::optional<double> lo, std::optional<double> hi) {
  FASTDL_PROFILE("clamp", a);
  FASTDL_CHECK(lo || hi, ValueError, "clamp: at least one of min or max must not be None");
  double l = lo ? *lo : -INFINITY, h = hi ? *hi : INFINITY;
  DType dt = a.dtype();
  if (!is_floating(dt) && ((lo && std::floor(l) != l) || (hi && std::floor(h) != h))) dt = DType::f32;
  Tensor A = a.dtype() == dt && !is_half(dt) ? a : to_dtype(detach(a), is_half(dt) ? DType::f32 : dt);
  Tensor out = empty_in_layout(A, a.shape(), A.dtype(), a.device());  // a transpose stays one (copy_ below keeps it)
  if (out.numel()) {
    if (a.device().is_cuda()) {
      Tensor t = A;
      if (lo) t = binary(BinaryOp::maximum, t, scalar_tensor(l, A.dtype(), a.device()));
      if (hi) t = binary(BinaryOp::minimum, t, scalar_tensor(h, A.dtype(), a.device()));
      copy_(out, t);
    } else {
      Dims s0 = out.strides(), s1 = A.strides();
      const Dims* st[2] = {&s0, &s1};
      cpu::Loop L = cpu::make_loop(out.shape(), st, 2);
      char* base[2] = {static_cast<char*>(out.data_ptr()), static_cast<char*>(A.data_ptr())};
      int64_t es[2] = {int64_t(out.itemsize()), int64_t(A.itemsize())};
      auto k = cpu::elementwise_kernels().clamp;
      DType kt = A.dtype();
      cpu::for_each_row(L, base, es, [&](char* const* p, int64_t n, const int64_t* s) { k(kt, p[0], p[1], n, s[0], s[1], l, h); });
    }
  }
  if (is_half(dt)) out = to_dtype(out, dt);
  if (autograd::any_requires_grad(a)) {
    autograd::record("ClampBackward1", {a}, out, [a, l, h](std::vector<Tensor>& g) {
      Tensor m = binary(BinaryOp::logical_and, binary_scalar(BinaryOp::ge, a, l), binary_scalar(BinaryOp::le, a, h));
      return std::vector<Tensor>{mul(g[0], to_dtype(m, g[0].dtype()))};
    }, {a});
  }
  return out;
}

Tensor clamp_t(const Tensor& a, const Tensor& lo, const Tensor& hi) {
  Tensor r = a;
  if (lo.defined()) r = binary(BinaryOp::maximum, r, lo);
  if (hi.defined()) r = binary(BinaryOp::minimum, r, hi);
  return r;
}

Tensor lerp(const Tensor& a, const Tensor& b, double w) { return add(a, mul_s(sub(b, a), w)); }

}  // namespace fastdl
