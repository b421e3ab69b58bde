// The Tensor class: properties, operators (bound straight to C++ for low per-op cost),
// indexing and autograd entry points.
#include "autograd/node.h"
#include "ops/dispatch.h"
#include "python/autocast.h"
#include "python/common.h"

namespace fastdl::py {

namespace {

// `a <op> other` where other is a Tensor or a Python scalar; NotImplemented otherwise.
nb::object binop(BinaryOp op, const Tensor& a, nb::handle b, bool reflected) {
  PyObject* o = b.ptr();
  if (nb::isinstance<Tensor>(b)) {
    const Tensor& t = nb::cast<const Tensor&>(b);
    return nb::cast(maybe_release(a.numel() + t.numel(), [&] { return reflected ? binary(op, t, a) : binary(op, a, t); }));
  }
  if (PyFloat_Check(o)) return nb::cast(binary_scalar(op, a, PyFloat_AS_DOUBLE(o), reflected, 0));
  if (PyBool_Check(o)) return nb::cast(binary_scalar(op, a, o == Py_True ? 1.0 : 0.0, reflected, 2));
  if (Tensor e = exact_int(b, a); e.defined()) return nb::cast(reflected ? binary(op, e, a) : binary(op, a, e));
  if (PyLong_Check(o)) return nb::cast(binary_scalar(op, a, PyLong_AsDouble(o), reflected, 1));
  return nb::borrow(Py_NotImplemented);
}

nb::object ibinop(BinaryOp op, const Tensor& a, nb::handle b) {
  PyObject* o = b.ptr();
  if (nb::isinstance<Tensor>(b)) { binary_(op, a, nb::cast<const Tensor&>(b)); return nb::cast(a); }
  if (Tensor e = exact_int(b, a); e.defined()) { binary_(op, a, e); return nb::cast(a); }
  if (PyFloat_Check(o) || PyLong_Check(o)) {
    double v = PyFloat_Check(o) ? PyFloat_AS_DOUBLE(o) : PyLong_AsDouble(o);
    FASTDL_CHECK(!(PyFloat_Check(o) && !is_floating(a.dtype())), TypeError, op_name(op), "_: result type float can't be cast to the desired output type ",
                 dtype_name(a.dtype()));
    binary_scalar_(op, a, v);
    return nb::cast(a);
  }
  return nb::borrow(Py_NotImplemented);
}

}  // namespace

void init_tensor(nb::module_& m, nb::class_<Tensor>& cls) {
  // Tensor(other): a new tensor sharing other's storage, detached (what Parameter builds on).
  cls.def("__init__", [](Tensor* self, const Tensor& other) { new (self) Tensor(detach(other)); }, "other"_a)
      .def_prop_ro("shape", [](const Tensor& t) {
        nb::tuple s = nb::steal<nb::tuple>(PyTuple_New(t.ndim()));
        for (int i = 0; i < t.ndim(); ++i) PyTuple_SET_ITEM(s.ptr(), i, PyLong_FromLongLong(t.shape()[i]));
        return s;
      })
      .def_prop_ro("ndim", &Tensor::ndim)
      .def_prop_ro("T", [](const Tensor& t) {  // all dims reversed (t.t() for matrices)
        IntList p;
        for (int i = t.ndim() - 1; i >= 0; --i) p.push_back(i);
        return permute(t, p);
      })
      .def_prop_ro("mT", [](const Tensor& t) {
        FASTDL_CHECK(t.ndim() >= 2, ValueError, "mT: tensor must have at least 2 dims; got shape ", shape_str(t.shape()));
        return transpose(t, -2, -1);
      })
      .def_prop_ro("dtype", &Tensor::dtype)
      .def_prop_ro("device", &Tensor::device)
      .def_prop_ro("is_cuda", [](const Tensor& t) { return t.device().is_cuda(); })
      .def_prop_ro("itemsize", &Tensor::itemsize)
      .def_prop_ro("is_leaf", &Tensor::is_leaf)
      .def_prop_ro("_version", [](const Tensor& t) { return t.impl()->version->value.load(); })
      // gradcheck's probes write and restore values in place: they set the count back after
      .def("_set_version", [](const Tensor& t, uint32_t v) { t.impl()->version->value.store(v); }, "version"_a)
      .def("_data_alias", [](const Tensor& t) {  // `.data`: the memory, with a version counter of its own
        return from_storage(t.storage(), t.shape(), t.strides(), t.offset(), t.dtype());
      })
      .def_prop_rw("requires_grad", &Tensor::requires_grad, &Tensor::set_requires_grad)
      .def_prop_rw("grad", [](const Tensor& t) -> nb::object {
            Tensor g = t.grad();
            return g.defined() ? nb::cast(g) : nb::none();
          },
          [](Tensor& t, nb::handle g) {
            if (g.is_none()) { t.set_grad(Tensor()); return; }
            Tensor gt = nb::cast<Tensor>(g);
            FASTDL_CHECK(gt.shape() == t.shape(), ValueError, "grad: assigned grad has shape ", shape_str(gt.shape()),
                         " but the tensor has shape ", shape_str(t.shape()));
            t.set_grad(gt);
          }, nb::arg("value").none())
      .def_prop_ro("grad_fn", [](const Tensor& t) -> nb::object {
        if (!t.grad_fn()) return nb::none();
        return nb::cast(GradFn{t.grad_fn()});
      })
      .def("numel", &Tensor::numel)
      .def("dim", &Tensor::ndim)
      .def("size", [](const Tensor& t, nb::handle d) -> nb::object {
        if (d.is_none()) return nb::module_::import_("fastdl").attr("Size")(nb::cast(t).attr("shape"));
        return nb::int_(t.size(nb::cast<int>(d)));
      }, "dim"_a = nb::none())
      .def("stride", [](const Tensor& t, nb::handle d) -> nb::object {
        if (d.is_none()) {
          nb::list l;
          for (int i = 0; i < t.ndim(); ++i) l.append(t.strides()[i]);
          return nb::tuple(l);
        }
        return nb::int_(t.stride(nb::cast<int>(d)));
      }, "dim"_a = nb::none())
      .def("storage_offset", &Tensor::offset)
      .def("_storage_numel", [](const Tensor& t) { return int64_t(t.storage()->nbytes / t.itemsize()); })  // resize_
      .def("element_size", &Tensor::itemsize)
      .def("is_contiguous", &Tensor::is_contiguous)
      .def("data_ptr", [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()); })
      .def("requires_grad_", [](Tensor& t, bool r) { t.set_requires_grad(r); return t; }, "requires_grad"_a = true)
      .def_prop_rw("_retains_grad", [](const Tensor& t) { return t.impl()->retains_grad; },
                   [](Tensor& t, bool v) { t.impl()->retains_grad = v; })
      .def("detach", &detach)
      .def("_set_data", [](Tensor& t, const Tensor& o) {  // p.data = x: same object, new contents
        TensorImpl* i = t.impl();
        i->storage = o.storage(); i->shape = o.shape(); i->strides = o.strides();
        i->offset = o.offset(); i->dtype = o.dtype(); i->refresh();
      }, "other"_a)
      .def("detach_", [](Tensor& t) {
        t.impl()->grad_fn.reset();
        t.impl()->requires_grad = false;
        return t;
      })
      .def("backward", [](const Tensor& t, nb::handle g, bool retain, bool create) {
        Tensor gt = g.is_none() ? Tensor() : nb::cast<Tensor>(g);
        autograd::backward({t}, {gt}, retain, create);
      }, "gradient"_a = nb::none(), "retain_graph"_a = false, "create_graph"_a = false)
      .def("__len__", [](const Tensor& t) {
        if (t.ndim() == 0) throw TypeError("len() of a 0-d tensor");
        return t.shape()[0];
      })
      .def("__getitem__", [](const Tensor& t, nb::handle k) {
        if (PyLong_Check(k.ptr())) return select(t, 0, nb::cast<int64_t>(k));
        return index(t, index_items(k));
      }, nb::arg("key").none())
      .def("__setitem__", [](const Tensor& t, nb::handle k, nb::handle v) {
        Tensor val;
        if (nb::isinstance<Tensor>(v)) val = nb::cast<Tensor>(v);
        else if (Tensor e = exact_int(v, t); e.defined()) val = e;
        else if (PyFloat_Check(v.ptr()) || PyLong_Check(v.ptr())) val = scalar_tensor(nb::cast<double>(v), t.dtype(), t.device());
        else val = nb::cast<Tensor>(nb::module_::import_("fastdl").attr("tensor")(v, "dtype"_a = t.dtype()));
        index_set(t, index_items(k), val);
        bump_version(t);
      }, nb::arg("key").none(), nb::arg("value").none())
      .def("__bool__", [](const Tensor& t) {
        FASTDL_CHECK(t.numel() == 1, ValueError, "Boolean value of Tensor with more than one value is ambiguous");
        return item(t) != 0;
      })
      .def("__float__", [](const Tensor& t) { return item(t); })
      .def("__int__", [](const Tensor& t) -> nb::object {  // int(nan) raises as Python's int(float) does
        if (is_integral(t.dtype())) return nb::int_(item_int(t));
        PyObject* r = PyNumber_Long(nb::float_(item(t)).ptr());
        if (!r) throw nb::python_error();
        return nb::steal(r);
      })
      .def("__index__", [](const Tensor& t) {
        FASTDL_CHECK(is_integral(t.dtype()) && t.numel() == 1, TypeError, "only integer tensors of a single element can be converted to an index");
        return item_int(t);
      })
      .def("__hash__", [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.impl()); })
      .def("_is", [](const Tensor& a, const Tensor& b) { return a.same(b); })
      .def("__neg__", [](const Tensor& a) { return unary(UnaryOp::neg, a); })
      .def("__pos__", [](const Tensor& a) { return a; })
      .def("__abs__", [](const Tensor& a) { return unary(UnaryOp::abs, a); })
      // __invert__: fastdl._pointwise (bitwise_not, every integer dtype)
      .def("__matmul__", [](const Tensor& a, const Tensor& b) {
        return maybe_release(a.numel() + b.numel(), [&] { return matmul(autocast_lower(a), autocast_lower(b)); });
      })
      .def("__rmatmul__", [](const Tensor& a, const Tensor& b) { return matmul(autocast_lower(b), autocast_lower(a)); });

#define FASTDL_BINOP(py, op)                                                                       \
  cls.def("__" py "__", [](const Tensor& a, nb::handle b) { return binop(BinaryOp::op, a, b, false); }); \
  cls.def("__r" py "__", [](const Tensor& a, nb::handle b) { return binop(BinaryOp::op, a, b, true); }); \
  cls.def("__i" py "__", [](const Tensor& a, nb::handle b) { return ibinop(BinaryOp::op, a, b); });
  FASTDL_BINOP("add", add)
  FASTDL_BINOP("sub", sub)
  FASTDL_BINOP("mul", mul)
  FASTDL_BINOP("truediv", div)
  FASTDL_BINOP("floordiv", floor_divide)
  FASTDL_BINOP("mod", remainder)
  FASTDL_BINOP("pow", pow)
  FASTDL_BINOP("and", bitwise_and)  // bitwise for integers, logical for bools (PyTorch)
  FASTDL_BINOP("or", bitwise_or)
  FASTDL_BINOP("xor", bitwise_xor)
#undef FASTDL_BINOP
  // PyTorch's __rfloordiv__, __rmod__ and __rpow__ are Python functions that also take a number
  // first when called as functions: Tensor.__rpow__(2.0, t) is t ** 2.0; its __rsub__ returns
  // NotImplemented there, and its other reflected ops raise TypeError, as nanobind does. Python's
  // own protocol only ever passes the tensor first.
  cls.def("__rfloordiv__", [](nb::handle a, const Tensor& b) { return binop(BinaryOp::floor_divide, b, a, false); });
  cls.def("__rmod__", [](nb::handle a, const Tensor& b) { return binop(BinaryOp::remainder, b, a, false); });
  cls.def("__rpow__", [](nb::handle a, const Tensor& b) { return binop(BinaryOp::pow, b, a, false); });
  cls.def("__rsub__", [](nb::handle, const Tensor&) { return nb::borrow(Py_NotImplemented); });
#define FASTDL_CMP(py, op) \
  cls.def("__" py "__", [](const Tensor& a, nb::handle b) { return binop(BinaryOp::op, a, b, false); });
  FASTDL_CMP("eq", eq) FASTDL_CMP("ne", ne) FASTDL_CMP("lt", lt) FASTDL_CMP("le", le) FASTDL_CMP("gt", gt) FASTDL_CMP("ge", ge)
#undef FASTDL_CMP
}

}  // namespace fastdl::py
