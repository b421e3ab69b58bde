// Ops as module functions and as Tensor methods (same C++ function, self first).
#include "ops/sort.h"
#include "python/autocast.h"
#include "python/common.h"

namespace fastdl::py {

namespace {

std::optional<DType> opt_dtype(nb::handle h) {
  if (h.is_none()) return std::nullopt;
  return nb::cast<DType>(h);
}

nb::object max_like(bool mx, const Tensor& a, nb::handle dim, bool keepdim) {
  if (dim.is_none()) return nb::cast(mx ? max_all(a) : min_all(a));
  if (nb::isinstance<Tensor>(dim))
    return nb::cast(binary(mx ? BinaryOp::maximum : BinaryOp::minimum, a, nb::cast<Tensor>(dim)));
  auto r = mx ? max_dim(a, nb::cast<int64_t>(dim), keepdim) : min_dim(a, nb::cast<int64_t>(dim), keepdim);
  nb::object mod = nb::module_::import_("fastdl");
  return mod.attr("_minmax_result")(r.first, r.second);
}

// The tensors of a Python sequence (cat, stack); a Tensor itself is refused, as PyTorch does.
std::vector<Tensor> tensor_seq(nb::handle ts, const char* op) {
  FASTDL_CHECK(!nb::isinstance<Tensor>(ts), TypeError, op, ": expected a sequence of Tensors; got a Tensor of shape ",
               shape_str(nb::cast<const Tensor&>(ts).shape()));
  std::vector<Tensor> v;
  FASTDL_CHECK(nb::try_cast(ts, v), TypeError, op, ": expected a sequence of Tensors; got ",
               nb::cast<std::string>(nb::str(ts.type().attr("__name__"))));
  return v;
}

// How binary_scalar treats a Python number: 0 float, 1 int, 2 bool.
int scalar_kind(nb::handle s) { return PyFloat_Check(s.ptr()) ? 0 : PyBool_Check(s.ptr()) ? 2 : 1; }

// A Python number as a 0-dim tensor typed the way PyTorch types a wrapped number beside
// `other` (undefined: alone): it never raises the other operand's category.
Tensor wrapped_scalar(nb::handle s, const Tensor& other, Device dev) {
  FASTDL_CHECK(PyFloat_Check(s.ptr()) || PyLong_Check(s.ptr()), TypeError, "expected a Tensor or a Python number; got ",
               nb::cast<std::string>(nb::str(s.type().attr("__name__"))));
  if (other.defined()) {
    Tensor e = exact_int(s, other);
    if (e.defined()) return dev == other.device() ? e : to_device(e, dev);
  }
  double v = nb::cast<double>(s);
  int kind = scalar_kind(s);
  DType dt = kind == 0 ? DType::f32 : kind == 2 ? DType::b8 : DType::i64;
  if (other.defined()) dt = kind == 2 && other.dtype() == DType::b8 ? DType::b8 : result_type_scalar(other, v, kind >= 1);
  return scalar_tensor(v, dt, dev);
}

std::vector<Tensor> split_any(const Tensor& a, nb::handle s, int64_t dim) {
  if (PyLong_Check(s.ptr())) return split_size(a, nb::cast<int64_t>(s), dim);
  return split(a, dims_arg(s), dim);
}

// The same function as fastdl.<name>(input, ...) and as Tensor.<name>(...): the method
// drops the leading "input" annotation (self).
template <class F> void def_both(nb::module_& m, nb::class_<Tensor>& c, const char* n, F f) { m.def(n, f); c.def(n, f); }
template <class F, class... A>
void def_both(nb::module_& m, nb::class_<Tensor>& c, const char* n, F f, nb::arg first, A... rest) {
  m.def(n, f, first, rest...);
  c.def(n, f, rest...);
}

}  // namespace

void init_ops(nb::module_& m, nb::class_<Tensor>& cls) {
  // ---- creation
  m.def("empty", [](nb::handle shape, DType dt, nb::handle dev) { return empty(shape_arg(shape), dt, device_arg(dev)); },
        "shape"_a, "dtype"_a, "device"_a = nb::none());
  m.def("full", [](nb::handle shape, double v, DType dt, nb::handle dev) { return full(shape_arg(shape), v, dt, device_arg(dev)); },
        "shape"_a, "fill_value"_a, "dtype"_a, "device"_a = nb::none());
  m.def("arange", [](double s, double e, double st, DType dt, nb::handle dev) { return arange(s, e, st, dt, device_arg(dev)); },
        "start"_a, "end"_a, "step"_a, "dtype"_a, "device"_a = nb::none());
  m.def("linspace", [](double s, double e, int64_t n, DType dt, nb::handle dev) { return linspace(s, e, n, dt, device_arg(dev)); },
        "start"_a, "end"_a, "steps"_a, "dtype"_a, "device"_a = nb::none());
  m.def("eye", [](int64_t n, int64_t k, DType dt, nb::handle dev) { return eye(n, k, dt, device_arg(dev)); },
        "n"_a, "m"_a, "dtype"_a, "device"_a = nb::none());
  m.def("rand", [](nb::handle shape, DType dt, nb::handle dev) { return rand(shape_arg(shape), dt, device_arg(dev)); },
        "shape"_a, "dtype"_a, "device"_a = nb::none());
  m.def("randn", [](nb::handle shape, DType dt, nb::handle dev) { return randn(shape_arg(shape), dt, device_arg(dev)); },
        "shape"_a, "dtype"_a, "device"_a = nb::none());
  m.def("randint", [](int64_t lo, int64_t hi, nb::handle shape, DType dt, nb::handle dev) {
    return randint(lo, hi, shape_arg(shape), dt, device_arg(dev));
  }, "low"_a, "high"_a, "shape"_a, "dtype"_a, "device"_a = nb::none());
  m.def("randperm", [](int64_t n, DType dt, nb::handle dev) { return randperm(n, dt, device_arg(dev)); },
        "n"_a, "dtype"_a, "device"_a = nb::none());
  m.def("bernoulli", &bernoulli, "p"_a);

  // ---- functions that are also methods
#define DEF(name, ...) def_both(m, cls, name, __VA_ARGS__);

  DEF("contiguous", [](const Tensor& a) { return contiguous(a); })
  DEF("clone", [](const Tensor& a) { return clone(a); })
  DEF("item", [](const Tensor& a) -> nb::object {
    if (is_floating(a.dtype())) return nb::float_(item(a));
    if (a.dtype() == DType::b8) return nb::bool_(item(a) != 0);
    return nb::int_(item_int(a));
  })
  DEF("_to_dtype", [](const Tensor& a, DType dt) { return to_dtype(a, dt); })
  DEF("_to_device", [](const Tensor& a, nb::handle d) { return to_device(a, device_arg(d)); })
  // In-place writes count in the tensor's version (bump_version, Tensor._version): assign_,
  // binary_ and unary_ count their own; fill_ and the random fills are counted here.
  cls.def("copy_", [](const Tensor& a, const Tensor& src) {
    check_no_internal_overlap("copy_", a);
    check_no_partial_overlap("copy_", a, src);
    return assign_(a, src);
  }, "src"_a);
  // On a non-leaf in a graph, fill_ / zero_ go through copy_ so the old history gets no gradient.
  auto fill = [](const Tensor& a, double v) {
    if (autograd::grad_enabled() && a.requires_grad() && !a.is_leaf()) return assign_(a, scalar_tensor(v, a.dtype(), a.device()));
    fill_(a, v);
    bump_version(a);
    return a;
  };
  cls.def("fill_", fill, "value"_a);
  cls.def("zero_", [fill](const Tensor& a) { return fill(a, 0.0); });
  cls.def("uniform_", [](Tensor& a, double lo, double hi) { uniform_(a, lo, hi); bump_version(a); return a; }, "a"_a = 0.0, "b"_a = 1.0);
  cls.def("normal_", [](Tensor& a, double mean, double std) { normal_(a, mean, std); bump_version(a); return a; }, "mean"_a = 0.0, "std"_a = 1.0);

#define UN(name, op) DEF(name, [](const Tensor& a) { return unary(UnaryOp::op, a); }) \
  cls.def(name "_", [](const Tensor& a) { return unary_(UnaryOp::op, a); });
  UN("neg", neg) UN("exp", exp) UN("log", log) UN("sqrt", sqrt) UN("rsqrt", rsqrt) UN("abs", abs) UN("sin", sin)
  UN("cos", cos) UN("tan", tan) UN("tanh", tanh) UN("sigmoid", sigmoid) UN("relu", relu) UN("silu", silu)
  UN("softplus", softplus) UN("log1p", log1p) UN("expm1", expm1) UN("sign", sign) UN("floor", floor) UN("ceil", ceil)
  UN("round", round) UN("trunc", trunc) UN("reciprocal", reciprocal) UN("square", square) UN("erf", erf)
  UN("exp2", exp2) UN("log2", log2) UN("log10", log10) UN("asin", asin) UN("acos", acos) UN("atan", atan)
  UN("sinh", sinh) UN("cosh", cosh) UN("logical_not", logical_not) UN("isnan", isnan) UN("isinf", isinf)
  UN("isfinite", isfinite)
#undef UN
  DEF("gelu", [](const Tensor& a, const std::string& approx) {
    FASTDL_CHECK(approx == "none" || approx == "tanh", ValueError, "gelu: approximate must be 'none' or 'tanh'; got '", approx, "'");
    return unary(approx == "tanh" ? UnaryOp::gelu_tanh : UnaryOp::gelu, a);
  }, "input"_a, "approximate"_a = "none")

#define BIN(name, op) DEF(name, [](const Tensor& a, nb::handle b) -> Tensor { \
    if (nb::isinstance<Tensor>(b)) return binary(BinaryOp::op, a, nb::cast<const Tensor&>(b)); \
    if (Tensor e = exact_int(b, a); e.defined()) return binary(BinaryOp::op, a, e); \
    return binary_scalar(BinaryOp::op, a, nb::cast<double>(b), false, scalar_kind(b)); }, "input"_a, "other"_a) \
  cls.def(name "_", [](const Tensor& a, nb::handle b) -> Tensor { \
    if (nb::isinstance<Tensor>(b)) return binary_(BinaryOp::op, a, nb::cast<const Tensor&>(b)); \
    if (Tensor e = exact_int(b, a); e.defined()) return binary_(BinaryOp::op, a, e); \
    return binary_scalar_(BinaryOp::op, a, nb::cast<double>(b)); }, "other"_a);
  BIN("sub", sub) BIN("mul", mul) BIN("div", div) BIN("pow", pow) BIN("maximum", maximum)
  BIN("minimum", minimum) BIN("atan2", atan2) BIN("remainder", remainder) BIN("floor_divide", floor_divide) BIN("fmod", fmod)
  BIN("eq", eq) BIN("ne", ne) BIN("lt", lt) BIN("le", le) BIN("gt", gt) BIN("ge", ge)
  BIN("logical_and", logical_and) BIN("logical_or", logical_or) BIN("logical_xor", logical_xor)
  BIN("bitwise_and", bitwise_and) BIN("bitwise_or", bitwise_or) BIN("bitwise_xor", bitwise_xor)
#undef BIN
  // alpha times a Python number is taken in Python, so int * int stays an int (add(t, 2, alpha=3)
  // on an integer tensor is an integer tensor, as in PyTorch).
  const auto times = [](nb::handle b, nb::handle alpha) -> nb::object {
    if (nb::cast<double>(alpha) == 1) return nb::borrow(b);
    PyObject* r = PyNumber_Multiply(b.ptr(), alpha.ptr());
    if (!r) throw nb::python_error();
    return nb::steal(r);
  };
  // alpha c for a tensor c (c itself when alpha is 1)
  const auto scaled = [](nb::handle c, nb::handle alpha) {
    const double al = nb::cast<double>(alpha);
    const Tensor t = nb::cast<Tensor>(c);
    return al == 1 ? t : mul_s(t, al);
  };
  DEF("add", [times, scaled](const Tensor& a, nb::handle b, nb::handle alpha) -> Tensor {
    if (nb::isinstance<Tensor>(b)) return binary(BinaryOp::add, a, scaled(b, alpha));
    const nb::object s = times(b, alpha);
    if (Tensor e = exact_int(s, a); e.defined()) return binary(BinaryOp::add, a, e);
    return binary_scalar(BinaryOp::add, a, nb::cast<double>(s), false, scalar_kind(s));
  }, "input"_a, "other"_a, "alpha"_a = 1)
  cls.def("add_", [times, scaled](const Tensor& a, nb::handle b, nb::handle alpha) -> Tensor {
    if (nb::isinstance<Tensor>(b)) return binary_(BinaryOp::add, a, scaled(b, alpha));
    const nb::object s = times(b, alpha);
    if (Tensor e = exact_int(s, a); e.defined()) return binary_(BinaryOp::add, a, e);
    return binary_scalar_(BinaryOp::add, a, nb::cast<double>(s));
  }, "other"_a, "alpha"_a = 1);
  // A Python number as the first operand of the module functions PyTorch lets take one (add(2, t),
  // remainder(5, t), ...): an overload tried after the Tensor-first one.
  // Two numbers: the first becomes a 0-dim tensor as fastdl.tensor() makes it (default dtype).
  auto number = [](nb::handle a) {
    if (!PyFloat_Check(a.ptr()) && !PyLong_Check(a.ptr())) throw nb::next_overload();  // bools are ints
  };
  auto wrap = [](nb::handle a) { return nb::cast<Tensor>(nb::module_::import_("fastdl").attr("tensor")(a)); };
#define SCALAR_FIRST(name, op) m.def(name, [number](nb::handle a, const Tensor& b) -> Tensor { \
    number(a); \
    if (Tensor e = exact_int(a, b); e.defined()) return binary(BinaryOp::op, e, b); \
    return binary_scalar(BinaryOp::op, b, nb::cast<double>(a), true, scalar_kind(a)); }, "input"_a, "other"_a);
#define TWO_NUMBERS(name, op) m.def(name, [number, wrap](nb::handle a, nb::handle b) -> Tensor { \
    number(a); number(b); \
    return binary_scalar(BinaryOp::op, wrap(a), nb::cast<double>(b), false, scalar_kind(b)); }, "input"_a, "other"_a);
  SCALAR_FIRST("sub", sub) SCALAR_FIRST("mul", mul) SCALAR_FIRST("floor_divide", floor_divide)
  SCALAR_FIRST("remainder", remainder) SCALAR_FIRST("bitwise_and", bitwise_and) SCALAR_FIRST("bitwise_or", bitwise_or)
  SCALAR_FIRST("bitwise_xor", bitwise_xor)
  TWO_NUMBERS("sub", sub) TWO_NUMBERS("mul", mul) TWO_NUMBERS("floor_divide", floor_divide)  // as PyTorch (not remainder)
#undef SCALAR_FIRST
#undef TWO_NUMBERS
  m.def("add", [number](nb::handle a, const Tensor& b, double alpha) -> Tensor {
    number(a);
    Tensor bb = alpha == 1 ? b : mul_s(b, alpha);
    if (Tensor e = exact_int(a, b); e.defined()) return binary(BinaryOp::add, e, bb);
    return binary_scalar(BinaryOp::add, bb, nb::cast<double>(a), true, scalar_kind(a));
  }, "input"_a, "other"_a, "alpha"_a = 1.0);
  m.def("add", [number, wrap, times](nb::handle a, nb::handle b, nb::handle alpha) -> Tensor {
    number(a); number(b);
    const nb::object s = times(b, alpha);
    return binary_scalar(BinaryOp::add, wrap(a), nb::cast<double>(s), false, scalar_kind(s));
  }, "input"_a, "other"_a, "alpha"_a = 1);
  DEF("where", [](const Tensor& c, nb::handle a, nb::handle b) {
    Tensor ta = nb::isinstance<Tensor>(a) ? nb::cast<Tensor>(a) : Tensor();
    Tensor tb = nb::isinstance<Tensor>(b) ? nb::cast<Tensor>(b) : Tensor();
    if (!ta.defined() && !tb.defined()) {  // two numbers: the wider kind wins
      ta = wrapped_scalar(a, Tensor(), c.device());
      tb = wrapped_scalar(b, ta, c.device());
      ta = wrapped_scalar(a, tb, c.device());
    }
    if (!ta.defined()) ta = wrapped_scalar(a, tb, c.device());
    if (!tb.defined()) tb = wrapped_scalar(b, ta, c.device());
    return where(c, ta, tb);
  }, "condition"_a, "input"_a, "other"_a)
  DEF("clamp", [](const Tensor& a, nb::handle lo, nb::handle hi) {
    if (nb::isinstance<Tensor>(lo) || nb::isinstance<Tensor>(hi)) {
      Tensor l = nb::isinstance<Tensor>(lo) ? nb::cast<Tensor>(lo) : lo.is_none() ? Tensor() : scalar_tensor(nb::cast<double>(lo), a.dtype(), a.device());
      Tensor h = nb::isinstance<Tensor>(hi) ? nb::cast<Tensor>(hi) : hi.is_none() ? Tensor() : scalar_tensor(nb::cast<double>(hi), a.dtype(), a.device());
      return clamp_t(a, l, h);
    }
    return clamp(a, lo.is_none() ? std::nullopt : std::optional<double>(nb::cast<double>(lo)),
                 hi.is_none() ? std::nullopt : std::optional<double>(nb::cast<double>(hi)));
  }, "input"_a, "min"_a = nb::none(), "max"_a = nb::none())
  DEF("clip", [](const Tensor& a, nb::handle lo, nb::handle hi) {
    return clamp(a, lo.is_none() ? std::nullopt : std::optional<double>(nb::cast<double>(lo)),
                 hi.is_none() ? std::nullopt : std::optional<double>(nb::cast<double>(hi)));
  }, "input"_a, "min"_a = nb::none(), "max"_a = nb::none())
  DEF("leaky_relu", &leaky_relu, "input"_a, "negative_slope"_a = 0.01)
  DEF("elu", &elu, "input"_a, "alpha"_a = 1.0, "scale"_a = 1.0, "input_scale"_a = 1.0)
  DEF("hardswish", &hardswish, "input"_a)
  DEF("hardsigmoid", &hardsigmoid, "input"_a)
  DEF("hardtanh", &hardtanh, "input"_a, "min_val"_a = -1.0, "max_val"_a = 1.0)
  DEF("threshold", &threshold, "input"_a, "threshold"_a, "value"_a)
  DEF("_special_value", &special_value, "fn"_a, "input"_a, "s"_a = 0.0)
  DEF("hardshrink", &hardshrink, "input"_a, "lambd"_a = 0.5)
  DEF("softshrink", &softshrink, "input"_a, "lambd"_a = 0.5)
  DEF("nan_to_num", [](const Tensor& a, double nan, nb::handle pinf, nb::handle ninf) {
    // the dtype's largest finite value (a half type's own: float32's would round to inf there)
    const DType d = a.dtype();
    double big = d == DType::f64 ? 1.7976931348623157e308 : d == DType::f16 ? 65504.0
                 : d == DType::bf16 ? 3.3895313892515355e38 : 3.4028234663852886e38;
    return nan_to_num(a, nan, pinf.is_none() ? big : nb::cast<double>(pinf), ninf.is_none() ? -big : nb::cast<double>(ninf));
  }, "input"_a, "nan"_a = 0.0, "posinf"_a = nb::none(), "neginf"_a = nb::none())
  DEF("lerp", [](const Tensor& a, const Tensor& b, double w) { return lerp(a, b, w); }, "input"_a, "end"_a, "weight"_a)

  // ---- reductions
  DEF("sum", [](const Tensor& a, nb::handle dim, bool keepdim, nb::handle dt) { return sum(a, dims_arg(dim), keepdim, opt_dtype(dt)); },
      "input"_a, "dim"_a = nb::none(), "keepdim"_a = false, "dtype"_a = nb::none())
  DEF("mean", [](const Tensor& a, nb::handle dim, bool keepdim, nb::handle dt) {
    Tensor x = dt.is_none() ? a : to_dtype(a, nb::cast<DType>(dt));
    return mean(x, dims_arg(dim), keepdim);
  }, "input"_a, "dim"_a = nb::none(), "keepdim"_a = false, "dtype"_a = nb::none())
  DEF("prod", [](const Tensor& a, nb::handle dim, bool keepdim, nb::handle dt) {
    return prod(dt.is_none() ? a : to_dtype(a, nb::cast<DType>(dt)), dims_arg(dim), keepdim);
  }, "input"_a, "dim"_a = nb::none(), "keepdim"_a = false, "dtype"_a = nb::none())
  DEF("amax", [](const Tensor& a, nb::handle dim, bool keepdim) { return amax(a, dims_arg(dim), keepdim); },
      "input"_a, "dim"_a = nb::none(), "keepdim"_a = false)
  DEF("amin", [](const Tensor& a, nb::handle dim, bool keepdim) { return amin(a, dims_arg(dim), keepdim); },
      "input"_a, "dim"_a = nb::none(), "keepdim"_a = false)
  DEF("max", [](const Tensor& a, nb::handle dim, bool keepdim) { return max_like(true, a, dim, keepdim); },
      "input"_a, "dim"_a = nb::none(), "keepdim"_a = false)
  DEF("min", [](const Tensor& a, nb::handle dim, bool keepdim) { return max_like(false, a, dim, keepdim); },
      "input"_a, "dim"_a = nb::none(), "keepdim"_a = false)
  DEF("argmax", [](const Tensor& a, std::optional<int64_t> dim, bool keepdim) { return argmax(a, dim, keepdim); },
      "input"_a, "dim"_a = nb::none(), "keepdim"_a = false)
  DEF("argmin", [](const Tensor& a, std::optional<int64_t> dim, bool keepdim) { return argmin(a, dim, keepdim); },
      "input"_a, "dim"_a = nb::none(), "keepdim"_a = false)
  DEF("var", [](const Tensor& a, nb::handle dim, nb::handle unbiased, bool keepdim, nb::handle correction) {
    if (nb::isinstance<nb::bool_>(dim)) { unbiased = dim; dim = nb::none(); }  // torch.var(input, unbiased)
    double c = !correction.is_none() ? nb::cast<double>(correction) : (unbiased.is_none() || nb::cast<bool>(unbiased) ? 1.0 : 0.0);
    return var(a, dims_arg(dim), c, keepdim);
  }, "input"_a, "dim"_a = nb::none(), "unbiased"_a = nb::none(), "keepdim"_a = false, "correction"_a = nb::none())
  DEF("std", [](const Tensor& a, nb::handle dim, nb::handle unbiased, bool keepdim, nb::handle correction) {
    if (nb::isinstance<nb::bool_>(dim)) { unbiased = dim; dim = nb::none(); }  // torch.std(input, unbiased)
    double c = !correction.is_none() ? nb::cast<double>(correction) : (unbiased.is_none() || nb::cast<bool>(unbiased) ? 1.0 : 0.0);
    return std_(a, dims_arg(dim), c, keepdim);
  }, "input"_a, "dim"_a = nb::none(), "unbiased"_a = nb::none(), "keepdim"_a = false, "correction"_a = nb::none())
  DEF("logsumexp", [](const Tensor& a, nb::handle dim, bool keepdim) { return logsumexp(a, dims_arg(dim), keepdim); },
      "input"_a, "dim"_a, "keepdim"_a = false)
  DEF("all", [](const Tensor& a, nb::handle dim, bool keepdim) { return all(a, dims_arg(dim), keepdim); },
      "input"_a, "dim"_a = nb::none(), "keepdim"_a = false)
  DEF("any", [](const Tensor& a, nb::handle dim, bool keepdim) { return any(a, dims_arg(dim), keepdim); },
      "input"_a, "dim"_a = nb::none(), "keepdim"_a = false)
  DEF("norm", [](const Tensor& a, nb::handle p, nb::handle dim, bool keepdim, nb::handle dt) {
    double pv = 2.0;  // None and 'fro' are the 2-norm over the dims
    if (nb::isinstance<nb::str>(p)) {
      std::string ps = nb::cast<std::string>(p);
      FASTDL_CHECK(ps == "fro", ValueError, "norm: p must be a number or 'fro'; got '", ps, "' (the nuclear norm needs an SVD)");
    } else if (!p.is_none()) {
      pv = nb::cast<double>(p);
    }
    return norm(dt.is_none() ? a : to_dtype(a, nb::cast<DType>(dt)), pv, dims_arg(dim), keepdim);
  }, "input"_a, "p"_a = 2.0, "dim"_a = nb::none(), "keepdim"_a = false, "dtype"_a = nb::none())
  DEF("cumsum", [](const Tensor& a, int64_t dim) { return cumsum(a, dim); }, "input"_a, "dim"_a)
  // sorting: (values, indices) pairs; fastdl/_sorting.py names them
  m.def("_sort", [](const Tensor& a, int64_t dim, bool descending) {
    return maybe_release(a.numel(), [&] { return sort(a, dim, descending); });
  }, "input"_a, "dim"_a, "descending"_a);
  m.def("_topk", [](const Tensor& a, int64_t k, int64_t dim, bool largest, bool sorted) {
    return maybe_release(a.numel(), [&] { return topk(a, k, dim, largest, sorted); });
  }, "input"_a, "k"_a, "dim"_a, "largest"_a, "sorted"_a);
  m.def("_kthvalue", [](const Tensor& a, int64_t k, int64_t dim, bool keepdim) {
    return maybe_release(a.numel(), [&] { return kthvalue(a, k, dim, keepdim); });
  }, "input"_a, "k"_a, "dim"_a, "keepdim"_a);

  // ---- shape
  DEF("reshape", [](const Tensor& a, nb::args shape) { return reshape(a, shape_args(shape, "reshape").vec()); })
  DEF("view", [](const Tensor& a, nb::args shape) {
    if (shape.size() == 1 && nb::isinstance<DType>(shape[0])) {
      FASTDL_CHECK(nb::cast<DType>(shape[0]) == a.dtype(), TypeError, "view: reinterpreting dtypes is not supported");
      return a;
    }
    return view(a, shape_args(shape, "view").vec());
  })
  DEF("permute", [](const Tensor& a, nb::args dims) { return permute(a, shape_args(dims, "permute").vec()); })
  DEF("transpose", [](const Tensor& a, int64_t d0, int64_t d1) { return transpose(a, d0, d1); }, "input"_a, "dim0"_a, "dim1"_a)
  DEF("swapaxes", [](const Tensor& a, int64_t d0, int64_t d1) { return transpose(a, d0, d1); }, "input"_a, "axis0"_a, "axis1"_a)
  DEF("expand", [](const Tensor& a, nb::args shape) { return expand(a, shape_args(shape, "expand").vec()); })
  DEF("broadcast_to", [](const Tensor& a, nb::handle shape) { return broadcast_to(a, shape_arg(shape)); }, "input"_a, "size"_a)
  DEF("squeeze", [](const Tensor& a, nb::handle dim) {
    return squeeze(a, dim.is_none() ? std::nullopt : std::optional<IntList>(dims_arg(dim)));
  }, "input"_a, "dim"_a = nb::none())
  DEF("unsqueeze", [](const Tensor& a, int64_t d) { return unsqueeze(a, d); }, "input"_a, "dim"_a)
  DEF("flatten", [](const Tensor& a, int64_t s, int64_t e) { return flatten(a, s, e); }, "input"_a, "start_dim"_a = 0, "end_dim"_a = -1)
  DEF("narrow", [](const Tensor& a, int64_t d, int64_t s, int64_t l) { return narrow(a, d, s, l); }, "input"_a, "dim"_a, "start"_a, "length"_a)
  DEF("select", [](const Tensor& a, int64_t d, int64_t i) { return select(a, d, i); }, "input"_a, "dim"_a, "index"_a)
  DEF("as_strided", [](const Tensor& a, nb::handle size, nb::handle stride, std::optional<int64_t> off) {
    return as_strided(a, shape_arg(size).vec(), dims_arg(stride), off);
  }, "input"_a, "size"_a, "stride"_a, "storage_offset"_a = nb::none())
  DEF("split", [](const Tensor& a, nb::handle s, int64_t d) { return split_any(a, s, d); }, "input"_a, "split_size_or_sections"_a, "dim"_a = 0)
  DEF("chunk", [](const Tensor& a, int64_t c, int64_t d) { return chunk(a, c, d); }, "input"_a, "chunks"_a, "dim"_a = 0)
  DEF("unbind", [](const Tensor& a, int64_t d) { return unbind(a, d); }, "input"_a, "dim"_a = 0)
  DEF("movedim", [](const Tensor& a, int64_t s, int64_t d) { return movedim(a, s, d); }, "input"_a, "source"_a, "destination"_a)
  DEF("flip", [](const Tensor& a, nb::handle dims) { return flip(a, dims_arg(dims)); }, "input"_a, "dims"_a)
  DEF("repeat", [](const Tensor& a, nb::args reps) { return repeat(a, shape_args(reps, "repeat").vec()); })
  DEF("tril", [](const Tensor& a, int64_t k) { return tril(a, k); }, "input"_a, "diagonal"_a = 0)
  DEF("triu", [](const Tensor& a, int64_t k) { return triu(a, k); }, "input"_a, "diagonal"_a = 0)
  // A Tensor is a sequence too (of its slices); PyTorch refuses one here, and so does fastdl.
  m.def("cat", [](nb::handle ts, int64_t d) { return cat(tensor_seq(ts, "cat"), d); }, "tensors"_a, "dim"_a = 0);
  m.def("stack", [](nb::handle ts, int64_t d) { return stack(tensor_seq(ts, "stack"), d); }, "tensors"_a, "dim"_a = 0);

  // ---- indexing
  DEF("gather", [](const Tensor& a, int64_t d, const Tensor& i) { return gather(a, d, i); }, "input"_a, "dim"_a, "index"_a)
  DEF("scatter_add", [](const Tensor& a, int64_t d, const Tensor& i, const Tensor& s) { return scatter_add(a, d, i, s); },
      "input"_a, "dim"_a, "index"_a, "src"_a)
  DEF("scatter_src", [](const Tensor& a, int64_t d, const Tensor& i, const Tensor& s) { return scatter_src(a, d, i, s); },
      "input"_a, "dim"_a, "index"_a, "src"_a)
  DEF("index_select", [](const Tensor& a, int64_t d, const Tensor& i) { return index_select(a, d, i); }, "input"_a, "dim"_a, "index"_a)
  DEF("masked_fill", [](const Tensor& a, const Tensor& m, nb::handle v) {
    if (!nb::isinstance<Tensor>(v)) return masked_fill(a, m, nb::cast<double>(v));
    Tensor vt = nb::cast<Tensor>(v);
    FASTDL_CHECK(vt.ndim() == 0, ValueError, "masked_fill: value must be a number or a 0-dim tensor; got shape ",
                 shape_str(vt.shape()));
    if (!autograd::any_requires_grad(vt)) return masked_fill(a, m, item(vt));
    FASTDL_CHECK(m.dtype() == DType::b8, TypeError, "masked_fill: mask must be a bool tensor; got ", dtype_name(m.dtype()));
    return where(m, to_dtype(vt, a.dtype()), a);  // the value's gradient: the sum of g where mask is set
  }, "input"_a, "mask"_a, "value"_a)
  DEF("nonzero", [](const Tensor& a) { return nonzero(a); })
  DEF("index_put", [](const Tensor& a, const std::vector<Tensor>& idx, const Tensor& v, bool acc) { return index_put(a, idx, v, acc); },
      "input"_a, "indices"_a, "values"_a, "accumulate"_a = false)
  m.def("embedding", &embedding, "weight"_a, "input"_a);
  m.def("one_hot", &one_hot, "tensor"_a, "num_classes"_a = -1);

  // ---- linear algebra and nn
  DEF("matmul", [](const Tensor& a, const Tensor& b) {
    return maybe_release(a.numel() + b.numel(), [&] { return matmul(autocast_lower(a), autocast_lower(b)); });
  },
      "input"_a, "other"_a)
  DEF("mm", [](const Tensor& a, const Tensor& b) {
    FASTDL_CHECK(a.ndim() == 2 && b.ndim() == 2, ValueError, "mm: expected 2-D tensors; got ", shape_str(a.shape()), " and ", shape_str(b.shape()));
    return matmul(autocast_lower(a), autocast_lower(b));
  }, "input"_a, "mat2"_a)
  DEF("bmm", [](const Tensor& a, const Tensor& b) {
    FASTDL_CHECK(a.ndim() == 3 && b.ndim() == 3, ValueError, "bmm: expected 3-D tensors; got ", shape_str(a.shape()), " and ", shape_str(b.shape()));
    return matmul(autocast_lower(a), autocast_lower(b));
  }, "input"_a, "mat2"_a)
  m.def("linear", [](const Tensor& x, const Tensor& w, std::optional<Tensor> b) {
    return maybe_release(x.numel() + w.numel(), [&] {
      return linear(autocast_lower(x), autocast_lower(w), b ? autocast_lower(*b) : Tensor());
    });
  },
        "input"_a, "weight"_a, "bias"_a = nb::none());
  m.def("addmm", [](const Tensor& c, const Tensor& a, const Tensor& b, double beta, double alpha) {
    return addmm(autocast_lower(c), autocast_lower(a), autocast_lower(b), beta, alpha);
  }, "input"_a, "mat1"_a, "mat2"_a, "beta"_a = 1.0, "alpha"_a = 1.0);
  DEF("softmax", [](const Tensor& a, int64_t d) { return softmax(a, d); }, "input"_a, "dim"_a)
  DEF("log_softmax", [](const Tensor& a, int64_t d) { return log_softmax(a, d); }, "input"_a, "dim"_a)
  m.def("layer_norm", [](const Tensor& x, nb::handle shape, std::optional<Tensor> w, std::optional<Tensor> b, double eps) {
    return layer_norm(x, shape_arg(shape).vec(), w ? *w : Tensor(), b ? *b : Tensor(), eps);
  }, "input"_a, "normalized_shape"_a, "weight"_a = nb::none(), "bias"_a = nb::none(), "eps"_a = 1e-5);
  m.def("rms_norm", [](const Tensor& x, nb::handle shape, std::optional<Tensor> w, double eps) {
    return rms_norm(x, shape_arg(shape).vec(), w ? *w : Tensor(), eps);
  }, "input"_a, "normalized_shape"_a, "weight"_a = nb::none(), "eps"_a);
  m.def("dropout", &dropout, "input"_a, "p"_a = 0.5, "training"_a = true);
  m.def("cross_entropy_rows", [](const Tensor& x, const Tensor& t, std::optional<Tensor> w, int64_t ii, double ls) {
    return cross_entropy_rows(x, t, w ? *w : Tensor(), ii, ls);
  }, "input"_a, "target"_a, "weight"_a = nb::none(), "ignore_index"_a = -100, "label_smoothing"_a = 0.0);
  m.def("sum_to", [](const Tensor& g, nb::handle shape) { return sum_to(g, shape_arg(shape)); }, "input"_a, "shape"_a);
#undef DEF
}

}  // namespace fastdl::py
