// Argument parsing shared by the binding files.
#include "python/common.h"

namespace fastdl::py {

namespace {
std::string py_type_name(nb::handle h) { return nb::cast<std::string>(nb::str(h.type().attr("__name__"))); }

// One Python int as int64, or TypeError naming what was expected.
int64_t int_item(nb::handle x, const char* what) {
  if (!PyLong_Check(x.ptr()) && !PyIndex_Check(x.ptr()))
    throw TypeError(str_cat(what, " must be an int or a sequence of ints; got ", py_type_name(x)));
  if (PyBool_Check(x.ptr())) throw TypeError(str_cat(what, " must be an int or a sequence of ints; got bool"));
  int overflow = 0;
  nb::object i = nb::steal(PyNumber_Index(x.ptr()));
  if (!i.is_valid()) { PyErr_Clear(); throw TypeError(str_cat(what, " must be an int; got ", py_type_name(x))); }
  long long v = PyLong_AsLongLongAndOverflow(i.ptr(), &overflow);
  if (overflow) throw ValueError(str_cat(what, ": value does not fit in int64"));
  return int64_t(v);
}

template <class Out> Out ints_of(nb::handle h, const char* what) {
  Out r;
  if (PyLong_Check(h.ptr()) || (PyIndex_Check(h.ptr()) && !PySequence_Check(h.ptr()))) { r.push_back(int_item(h, what)); return r; }
  if (!PySequence_Check(h.ptr())) throw TypeError(str_cat(what, " must be an int or a sequence of ints; got ", py_type_name(h)));
  for (nb::handle x : h) r.push_back(int_item(x, what));
  return r;
}
}  // namespace

IntList dims_arg(nb::handle h) {
  if (h.is_none()) return IntList();
  return ints_of<IntList>(h, "dim");
}

Dims shape_arg(nb::handle h) { return ints_of<Dims>(h, "size"); }

// A Python int beyond 2^53 (a double would round it) beside an integer tensor: such a scalar
// goes in as an exact 0-dim int64 tensor; null otherwise (the double path is exact).
Tensor exact_int(nb::handle s, const Tensor& other) {
  if (!PyLong_Check(s.ptr()) || PyBool_Check(s.ptr()) || !is_integral(other.dtype())) return Tensor();
  int overflow = 0;
  long long v = PyLong_AsLongLongAndOverflow(s.ptr(), &overflow);
  if (overflow || (v >= -(1LL << 53) && v <= (1LL << 53))) return Tensor();  // overflow: the double path raises/wraps as before
  Tensor t = empty(Dims(), DType::i64, Device());
  *static_cast<int64_t*>(t.data_ptr()) = v;
  return to_device(to_dtype(t, other.dtype()), other.device());
}

Dims shape_args(nb::args args, const char* op) {
  if (args.size() == 0) throw TypeError(str_cat(op, ": expected a shape (ints or one sequence of ints); got no arguments"));
  if (args.size() == 1 && !PyLong_Check(args[0].ptr())) return shape_arg(args[0]);
  Dims s;
  for (nb::handle x : args) s.push_back(int_item(x, op));
  return s;
}

Device device_arg(nb::handle h) {
  if (h.is_none()) return Device();
  if (nb::isinstance<Device>(h)) return nb::cast<Device>(h);
  if (nb::isinstance<nb::str>(h)) return parse_device(nb::cast<std::string>(h));
  if (PyLong_Check(h.ptr())) return Device{DeviceType::cuda, int8_t(nb::cast<int>(h))};
  throw TypeError("device: expected a str, fastdl.device or int");
}

namespace {
IndexItem item_of(nb::handle k) {
  IndexItem it{IndexItem::Int};
  if (k.is_none()) { it.kind = IndexItem::NewAxis; return it; }
  if (k.ptr() == Py_Ellipsis) { it.kind = IndexItem::Ellipsis; return it; }
  if (PyBool_Check(k.ptr())) {
    it.kind = IndexItem::TensorIdx;
    it.tensor = full(Dims(), k.ptr() == Py_True ? 1.0 : 0.0, DType::b8);
    return it;
  }
  if (PyLong_Check(k.ptr())) { it.start = nb::cast<int64_t>(k); return it; }
  if (PySlice_Check(k.ptr())) {
    it.kind = IndexItem::Slice;
    PySliceObject* s = reinterpret_cast<PySliceObject*>(k.ptr());
    if (s->start != Py_None) { it.has_start = true; it.start = nb::cast<int64_t>(nb::handle(s->start)); }
    if (s->stop != Py_None) { it.has_stop = true; it.stop = nb::cast<int64_t>(nb::handle(s->stop)); }
    if (s->step != Py_None) it.step = nb::cast<int64_t>(nb::handle(s->step));
    return it;
  }
  if (nb::isinstance<Tensor>(k)) {
    it.kind = IndexItem::TensorIdx;
    it.tensor = nb::cast<Tensor>(k);
    if (it.tensor.dtype() == DType::u8) it.tensor = to_dtype(it.tensor, DType::b8);  // a byte mask (PyTorch)
    return it;
  }
  const bool array = nb::hasattr(k, "ndim") && nb::cast<int64_t>(k.attr("ndim")) > 0;  // numpy arrays have __index__
  if (PyIndex_Check(k.ptr()) && !array) { it.start = PyNumber_AsSsize_t(k.ptr(), PyExc_IndexError); return it; }
  // lists, numpy arrays: through fastdl.tensor
  nb::object mod = nb::module_::import_("fastdl");
  it.kind = IndexItem::TensorIdx;
  it.tensor = nb::cast<Tensor>(mod.attr("tensor")(k));
  if (is_integral(it.tensor.dtype()) && !is_index(it.tensor.dtype())) it.tensor = to_dtype(it.tensor, DType::i64);  // numpy's small ints
  FASTDL_CHECK(it.tensor.dtype() == DType::b8 || is_index(it.tensor.dtype()), IndexError,
               "index: only integers, slices, ellipsis, None, and integer or boolean tensors are valid indices");
  return it;
}
}  // namespace

std::vector<IndexItem> index_items(nb::handle key) {
  std::vector<IndexItem> items;
  if (PyTuple_Check(key.ptr())) {
    for (nb::handle k : key) items.push_back(item_of(k));
  } else {
    items.push_back(item_of(key));
  }
  return items;
}

}  // namespace fastdl::py
