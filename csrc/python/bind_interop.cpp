// Zero-copy interop: numpy (buffer protocol / DLPack through nanobind's ndarray) and DLPack
// both ways. Foreign memory stays owned by its producer; our Storage holds a reference.
#include <nanobind/ndarray.h>

#include "python/common.h"

namespace fastdl::py {

namespace {

nb::dlpack::dtype to_dl(DType t) {
  using nb::dlpack::dtype_code;
  switch (t) {
    case DType::f32: return {uint8_t(dtype_code::Float), 32, 1};
    case DType::f64: return {uint8_t(dtype_code::Float), 64, 1};
    case DType::f16: return {uint8_t(dtype_code::Float), 16, 1};
    case DType::bf16: return {uint8_t(dtype_code::Bfloat), 16, 1};
    case DType::i32: return {uint8_t(dtype_code::Int), 32, 1};
    case DType::i64: return {uint8_t(dtype_code::Int), 64, 1};
    case DType::b8: return {uint8_t(dtype_code::Bool), 8, 1};
    case DType::u8: return {uint8_t(dtype_code::UInt), 8, 1};
    case DType::i8: return {uint8_t(dtype_code::Int), 8, 1};
    case DType::i16: return {uint8_t(dtype_code::Int), 16, 1};
  }
  return {};
}

DType from_dl(nb::dlpack::dtype d) {
  using nb::dlpack::dtype_code;
  if (d.lanes == 1) {
    if (d.code == uint8_t(dtype_code::Float)) {
      if (d.bits == 32) return DType::f32;
      if (d.bits == 64) return DType::f64;
      if (d.bits == 16) return DType::f16;
    }
    if (d.code == uint8_t(dtype_code::Bfloat) && d.bits == 16) return DType::bf16;
    if (d.code == uint8_t(dtype_code::Int)) {
      if (d.bits == 32) return DType::i32;
      if (d.bits == 64) return DType::i64;
      if (d.bits == 16) return DType::i16;
      if (d.bits == 8) return DType::i8;
    }
    if (d.code == uint8_t(dtype_code::Bool) && d.bits == 8) return DType::b8;
    if (d.code == uint8_t(dtype_code::UInt) && d.bits == 8) return DType::u8;
  }
  throw TypeError(str_cat("from_numpy: unsupported array dtype (code ", int(d.code), ", ", int(d.bits), " bits); fastdl supports float16/32/64, bfloat16, uint8, int8/16/32/64 and bool"));
}

void release_ndarray(void* p) {
  nb::gil_scoped_acquire g;
  delete static_cast<nb::ndarray<>*>(p);
}

Tensor wrap(nb::ndarray<> a) {
  DType dt = from_dl(a.dtype());
  Device dev;
  if (a.device_type() == nb::device::cuda::value) dev = Device{DeviceType::cuda, int8_t(a.device_id())};
  else FASTDL_CHECK(a.device_type() == nb::device::cpu::value, DeviceError, "from_dlpack: unsupported device type ", a.device_type());
  int nd = int(a.ndim());
  Dims shape(nd), strides(nd);
  int64_t lo = 0, hi = 0;
  bool empty_arr = false;
  for (int i = 0; i < nd; ++i) {
    shape[i] = int64_t(a.shape(size_t(i)));
    strides[i] = a.stride(size_t(i));
    empty_arr |= shape[i] == 0;
    if (strides[i] < 0) lo += strides[i] * (shape[i] - 1); else hi += strides[i] * (shape[i] - 1);
  }
  if (empty_arr) lo = hi = 0;
  // Negative strides have no place in fastdl's views: copy those arrays.
  FASTDL_CHECK(lo == 0, ValueError, "from_numpy: arrays with negative strides are not supported; pass a.copy()");
  size_t es = dtype_size(dt);
  void* data = const_cast<void*>(a.data());
  // Kernels read whole items: a buffer at an address that is not a multiple of the item size
  // (a numpy view at an odd byte offset) would be misaligned loads, undefined behaviour.
  FASTDL_CHECK(empty_arr || reinterpret_cast<uintptr_t>(data) % es == 0, ValueError,
               "from_numpy: the array's data is not aligned to its ", es, "-byte items; pass a.copy()");
  auto* keep = new nb::ndarray<>(a);
  Ref<Storage> s = Storage::wrap(data, size_t(hi + 1) * es, dev, release_ndarray, keep);
  return from_storage(s, shape, strides, 0, dt);
}

nb::ndarray<> export_view(const Tensor& t) {
  auto* owner = new Ref<Storage>(t.storage());
  nb::capsule cap(owner, [](void* p) noexcept { delete static_cast<Ref<Storage>*>(p); });
  std::vector<size_t> shape(size_t(t.ndim()));
  std::vector<int64_t> strides(size_t(t.ndim()));
  for (int i = 0; i < t.ndim(); ++i) { shape[size_t(i)] = size_t(t.shape()[i]); strides[size_t(i)] = t.strides()[i]; }
  int dev_type = t.device().is_cuda() ? nb::device::cuda::value : nb::device::cpu::value;
  return nb::ndarray<>(t.data_ptr(), size_t(t.ndim()), shape.data(), cap, strides.data(), to_dl(t.dtype()), dev_type,
                       t.device().is_cuda() ? t.device().index : 0);
}

}  // namespace

void init_interop(nb::module_& m, nb::class_<Tensor>& cls) {
  m.def("from_numpy", [](nb::ndarray<> a) { return wrap(a); }, "array"_a,
        "Zero-copy view of a CPU array (any strides); the array stays alive while the tensor does.");
  m.def("_from_dlpack", [](nb::ndarray<> a) { return wrap(a); }, "x"_a);
  cls.def("numpy", [](const Tensor& t, bool force) {
    FASTDL_CHECK(t.device().is_cpu() || force, TypeError, "numpy: can't convert ", t.device().str(),
                 " tensor to numpy; use Tensor.cpu() to copy the tensor to host memory first");
    FASTDL_CHECK(!t.requires_grad() || force, ValueError, "numpy: can't call numpy() on a Tensor that requires grad; use tensor.detach().numpy() instead");
    FASTDL_CHECK(t.dtype() != DType::bf16, TypeError, "numpy: numpy has no bfloat16; convert with .float() first");
    Tensor c = t.device().is_cpu() ? t : to_device(detach(t), Device());
    nb::ndarray<nb::numpy> a(export_view(c));
    return a.cast();
  }, "force"_a = false);
  cls.def("__dlpack__", [](const Tensor& t, nb::kwargs) {
    FASTDL_CHECK(!t.requires_grad(), ValueError, "__dlpack__: can't export a tensor that requires grad; call detach() first");
    return export_view(t);
  });
  cls.def("__dlpack_device__", [](const Tensor& t) {
    return nb::make_tuple(t.device().is_cuda() ? 2 : 1, t.device().is_cuda() ? int(t.device().index) : 0);
  });
}

}  // namespace fastdl::py
