// Cycle-collector support for fastdl._C.Tensor: the Python callables that a tensor's C++ state
// owns (gradient and post-accumulate hooks on the TensorImpl, gradient hooks on its grad_fn
// node) are reported to Python's garbage collector, and cleared when the tensor is garbage.
//
// Without this, `t.register_hook(lambda g: g * t)` is a cycle Python cannot see:
//   Tensor object -> TensorImpl -> hook -> lambda -> closure cell -> Tensor object
// and t leaks with its storage (LeakSanitizer reported such leaks; tests/test_autograd.py has
// the regression tests).
//
// A Python object may only report references that it owns, i.e. that die with it. A
// TensorImpl is shared by every handle on it (other Python objects, saved tensors of graph
// nodes, a hook handle), so the hooks count as this object's only while this object holds the
// sole reference to the impl (and, for the grad_fn's hooks, the impl the sole one to its node):
// PyTorch's rule for its Tensor type too. A tensor that something else keeps alive is
// reachable through that owner anyway, so leaving it out never frees anything live.
#include "autograd/hooks.h"
#include "python/py_hooks.h"

namespace fastdl::py {

namespace {

// The Python callable that hook `h` owns alone, or null: a C++ hook, or a Python one whose
// callable another copy shares (the engine copies hooks while it runs them).
PyObject* owned_callable(const autograd::GradHook& h) {
  const PyCallable* c = nullptr;
  if (!h) return nullptr;
  if (auto* g = h.target<PyGradHook>()) c = &g->fn;
  else if (auto* p = h.target<autograd::PostAccumulateHook>())
    if (auto* q = p->fn.target<PyPostHook>()) c = &q->fn;
  return c && c->held.use_count() == 1 ? c->held->ptr() : nullptr;
}

// The impl whose hooks `self` owns (see the top of the file), or null.
TensorImpl* owned_impl(PyObject* self) {
  // Before __init__ completes there is no C++ object yet; an instance that only refers to a
  // Tensor owned by C++ (destruct == false) owns nothing.
  auto [ready, destruct] = nb::inst_state(nb::handle(self));
  if (!ready || !destruct) return nullptr;
  const Tensor* t = nb::inst_ptr<Tensor>(nb::handle(self));
  return t->defined() && t->ref().use_count() == 1 ? t->impl() : nullptr;
}

autograd::Node* owned_node(TensorImpl* impl) {
  return impl->grad_fn && impl->grad_fn.use_count() == 1 ? impl->grad_fn.get() : nullptr;
}

int tensor_traverse(PyObject* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));  // an instance of a heap type refers to its type
  TensorImpl* impl = owned_impl(self);
  if (!impl) return 0;
  for (const auto& h : impl->hooks) Py_VISIT(owned_callable(h));
  if (autograd::Node* n = owned_node(impl))
    for (const auto& nh : n->hooks) Py_VISIT(owned_callable(nh.second));
  return 0;
}

// Called on a tensor the collector found unreachable: drop the Python hooks it owns, which
// breaks the cycle. A dropped slot becomes an empty hook (as RemovableHandle.remove leaves
// it), so hook indices stay valid.
int tensor_clear(PyObject* self) {
  TensorImpl* impl = owned_impl(self);
  if (!impl) return 0;
  std::vector<autograd::GradHook> dropped;  // released last, once the lists are consistent
  for (auto& h : impl->hooks)
    if (owned_callable(h)) { dropped.push_back(std::move(h)); h = nullptr; }
  if (autograd::Node* n = owned_node(impl))
    for (auto& nh : n->hooks)
      if (owned_callable(nh.second)) { dropped.push_back(std::move(nh.second)); nh.second = nullptr; }
  return 0;
}

}  // namespace

PyType_Slot tensor_type_slots[] = {
    {Py_tp_traverse, reinterpret_cast<void*>(&tensor_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(&tensor_clear)},
    {0, nullptr},
};

}  // namespace fastdl::py
