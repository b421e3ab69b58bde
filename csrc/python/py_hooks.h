// Python callables that C++ autograd state owns (tensor hooks), as named function objects, so
// that the Tensor type's garbage-collector support (tensor_gc.cpp) can find them inside a
// std::function (std::function::target) and report them to Python's cycle collector.
//
// Why: `t.register_hook(lambda g: g * t)` stores the lambda in t's TensorImpl (or in its
// grad_fn node), and the lambda refers back to t's Python object. Python cannot see the
// C++ edge, so without tp_traverse that cycle is never collected and t leaks with its storage.
#pragma once
#include <memory>

#include "python/common.h"

namespace fastdl::py {

// Owns one reference to a Python callable; the last copy drops it under the GIL (copies share
// it: the engine copies hooks while it runs them). RemovableHandle.remove() replaces the
// callable with None: the hook then passes its gradient through.
struct PyCallable {
  std::shared_ptr<nb::object> held;
  explicit PyCallable(nb::object fn)
      : held(new nb::object(std::move(fn)), [](nb::object* p) {
          nb::gil_scoped_acquire g;
          delete p;
        }) {}
};

// A gradient hook (Tensor.register_hook): returns a replacement gradient or None.
struct PyGradHook {
  PyCallable fn;
  Tensor operator()(const Tensor& grad) const {
    nb::gil_scoped_acquire g;
    if (fn.held->is_none()) return Tensor();  // removed
    nb::object r = (*fn.held)(grad);
    return r.is_none() ? Tensor() : nb::cast<Tensor>(r);
  }
};

// A post-accumulate-grad hook (Tensor.register_post_accumulate_grad_hook): called with the leaf.
struct PyPostHook {
  PyCallable fn;
  void operator()(const Tensor& leaf) const {
    nb::gil_scoped_acquire g;
    if (!fn.held->is_none()) (*fn.held)(leaf);
  }
};

// tp_traverse / tp_clear for fastdl._C.Tensor (tensor_gc.cpp), passed to its nb::class_.
extern PyType_Slot tensor_type_slots[];

}  // namespace fastdl::py
