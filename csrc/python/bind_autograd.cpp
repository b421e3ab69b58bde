// Autograd entry points: grad mode, backward/grad over several roots, and grad_fn views.
#include "python/common.h"

namespace fastdl::py {

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
      .def("__repr__", [](const GradFn& g) { return std::string("<") + g.node->name() + " object>"; })
      .def("__eq__", [](const GradFn& a, const GradFn& b) { return a.node == b.node; })
      .def("__hash__", [](const GradFn& g) { return reinterpret_cast<uintptr_t>(g.node.get()); });

  m.def("is_grad_enabled", &autograd::grad_enabled);
  m.def("set_grad_enabled", &autograd::set_grad_enabled, "mode"_a);
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
