// Autograd entry points: grad mode, backward/grad over several roots, grad_fn views, and
// the node behind fastdl.autograd.Function (a backward written in Python).
#include <memory>
#include <mutex>
#include <set>

#include "autograd/hooks.h"
#include "python/common.h"
#include "python/py_hooks.h"

namespace fastdl::py {

namespace {

// Node names must outlive every node; a custom Function's name is interned once.
const char* intern(const std::string& s) {
  static std::mutex mu;
  static std::set<std::string> names;
  std::lock_guard<std::mutex> g(mu);
  return names.insert(s).first->c_str();
}

// Record a node whose backward calls `fn(grads) -> sequence of (Tensor | None)` in Python.
// once_differentiable: the backward's gradients have no second derivative (FnNode::no_double_backward).
std::vector<Tensor> record_function(const std::string& name, const std::vector<Tensor>& inputs,
                                    const std::vector<Tensor>& outputs, nb::object fn, bool once_differentiable) {
  std::vector<Tensor> outs;
  for (auto& o : outputs) outs.push_back(detach(o));  // fresh handles: never rebase an input
  std::vector<Tensor*> ptrs;
  std::vector<Dims> shapes;
  std::vector<DType> dts;
  std::vector<Device> devs;
  for (auto& o : outs) { ptrs.push_back(&o); shapes.push_back(o.shape()); dts.push_back(o.dtype()); devs.push_back(o.device()); }
  // The callable is released under the GIL whenever the node dies.
  std::shared_ptr<nb::object> held(new nb::object(std::move(fn)), [](nb::object* p) {
    nb::gil_scoped_acquire g;
    delete p;
  });
  size_t n_in = inputs.size();
  autograd::record(intern(name), inputs, ptrs, [held, shapes, dts, devs, n_in, name](std::vector<Tensor>& g) {
    nb::gil_scoped_acquire gil;
    nb::list gl;
    for (size_t i = 0; i < g.size(); ++i)
      gl.append(nb::cast(g[i].defined() ? g[i] : zeros(shapes[i], dts[i], devs[i])));
    nb::object r = (*held)(gl);
    std::vector<Tensor> res;
    for (nb::handle h : r) res.push_back(h.is_none() ? Tensor() : nb::cast<Tensor>(h));
    FASTDL_CHECK(res.size() == n_in, ValueError, name, ": backward returned ", res.size(), " gradients; expected ", n_in);
    return res;
  });
  if (once_differentiable && !outs.empty()) autograd::mark_no_double_backward(outs[0]);
  return outs;
}

// Under create_graph, the node on `out` runs `fn(grads) -> sequence of (Tensor | None)` instead
// of its fused backward (grads: one per output, None where it got none): a differentiable
// recomputation, so second derivatives exist (autograd/composite.py).
bool set_double_backward(const Tensor& out, nb::object fn) {
  std::shared_ptr<nb::object> held(new nb::object(std::move(fn)), [](nb::object* p) {
    nb::gil_scoped_acquire g;
    delete p;
  });
  return autograd::set_double_backward(out, [held](std::vector<Tensor>& g) {
    nb::gil_scoped_acquire gil;
    nb::list gl;
    for (const Tensor& t : g) gl.append(t.defined() ? nb::cast(t) : nb::none());
    nb::object r = (*held)(gl);
    std::vector<Tensor> res;
    for (nb::handle h : r) res.push_back(h.is_none() ? Tensor() : nb::cast<Tensor>(h));
    return res;
  });
}

// What t.register_hook returns. It refers to the hook's callable weakly (as PyTorch's handle
// refers weakly to the hook dict): remove() drops the callable, which leaves a pass-through hook
// in its slot, and is a no-op once the tensor and its hooks are gone. A strong reference to the
// tensor here would hide a cycle from the collector: a hook whose closure keeps its own handle
// (`h = t.register_hook(lambda g: h.remove())`) would keep the tensor alive forever.
struct HookHandle {
  std::weak_ptr<nb::object> fn;
  void remove() {
    if (auto held = fn.lock()) *held = nb::none();  // under the GIL: called from Python
  }
};
}  // namespace

void init_autograd(nb::module_& m) {
  nb::class_<GradFn>(m, "Node")
      .def("name", [](const GradFn& g) { return std::string(g.node->name()); })
      .def_prop_ro("next_functions", [](const GradFn& g) {
        nb::list l;
        for (auto& e : g.node->next) {
          if (e.fn) l.append(nb::make_tuple(GradFn{e.fn}, e.input_nr));
          else l.append(nb::make_tuple(nb::none(), 0));
        }
        return nb::tuple(l);
      })
      .def_prop_ro("variable", [](const GradFn& g) -> nb::object {  // the leaf of an AccumulateGrad node
        auto* acc = dynamic_cast<autograd::AccumulateGrad*>(g.node.get());
        return acc ? nb::cast(Tensor(acc->leaf)) : nb::none();
      })
      .def("__repr__", [](const GradFn& g) { return std::string("<") + g.node->name() + " object>"; })
      .def("__eq__", [](const GradFn& a, const GradFn& b) { return a.node == b.node; })
      .def("__hash__", [](const GradFn& g) { return reinterpret_cast<uintptr_t>(g.node.get()); });

  nb::class_<HookHandle>(m, "RemovableHandle").def("remove", &HookHandle::remove);
  m.def("_register_hook", [](const Tensor& t, nb::object fn) {
    FASTDL_CHECK(t.requires_grad(), ValueError, "register_hook: cannot register a hook on a tensor that doesn't require gradient");
    PyCallable c(std::move(fn));
    HookHandle h{c.held};
    if (t.grad_fn()) t.grad_fn()->hooks.push_back({t.impl()->output_nr, PyGradHook{std::move(c)}});
    else t.impl()->hooks.push_back(PyGradHook{std::move(c)});
    return h;
  }, "tensor"_a, "hook"_a);
  m.def("_register_post_accumulate_grad_hook", [](const Tensor& t, nb::object fn) {
    PyCallable c(std::move(fn));
    HookHandle h{c.held};
    autograd::add_post_accumulate_hook(t, PyPostHook{std::move(c)});
    return h;
  }, "tensor"_a, "hook"_a);
  m.def("_set_double_backward", &set_double_backward, "out"_a, "fn"_a);
  m.def("_record_function", &record_function, "name"_a, "inputs"_a, "outputs"_a, "backward"_a,
        "once_differentiable"_a = false);
  // A Function's saved output inside its backward under create_graph: joined to the running node,
  // so a second derivative through it reaches the Function's inputs (autograd::saved_output).
  m.def("_saved_output", [](const Tensor& y, uint32_t output_nr) { return autograd::saved_output(y, output_nr); },
        "y"_a, "output_nr"_a = 0);
  m.def("is_grad_enabled", &autograd::grad_enabled);
  m.def("set_grad_enabled", &autograd::set_grad_enabled, "mode"_a);
  m.def("_set_detect_anomaly", &autograd::set_detect_anomaly, "mode"_a);
  m.def("_is_anomaly_enabled", &autograd::detect_anomaly_enabled);
  m.def("_backward", [](const std::vector<Tensor>& roots, std::vector<std::optional<Tensor>> grads, bool retain, bool create) {
    std::vector<Tensor> g;
    for (auto& x : grads) g.push_back(x ? *x : Tensor());
    autograd::backward(roots, g, retain, create);
  }, "tensors"_a, "grad_tensors"_a, "retain_graph"_a = false, "create_graph"_a = false);
  m.def("_grad", [](const std::vector<Tensor>& roots, std::vector<std::optional<Tensor>> grads, const std::vector<Tensor>& inputs,
                    bool retain, bool create, bool allow_unused) {
    std::vector<Tensor> g;
    for (auto& x : grads) g.push_back(x ? *x : Tensor());
    auto r = autograd::grad(roots, g, inputs, retain, create, allow_unused);
    nb::list out;
    for (auto& t : r) out.append(t.defined() ? nb::cast(t) : nb::none());
    return nb::tuple(out);
  }, "outputs"_a, "grad_outputs"_a, "inputs"_a, "retain_graph"_a = false, "create_graph"_a = false, "allow_unused"_a = false);
}

}  // namespace fastdl::py
