// Reverse-mode autograd: each differentiable op records one Node holding what its backward
// needs; the engine (engine.cpp) walks nodes in dependency order with an explicit stack.
#pragma once
#include <functional>
#include <vector>

#include "core/tensor.h"

namespace fastdl::autograd {

struct Node;
struct Edge {
  Ref<Node> fn;          // null: that input needs no gradient
  uint32_t input_nr = 0; // which output of fn this gradient flows into
};

// A gradient hook: returns a replacement gradient, or an undefined tensor to keep it.
using GradHook = std::function<Tensor(const Tensor&)>;

struct Node : RefCounted {
  static constexpr bool kDeferDelete = true;  // chains of any depth free without recursion (ref.h)
  std::vector<Edge> next;  // one per input of the forward op
  std::vector<std::pair<uint32_t, GradHook>> hooks;  // (output_nr, hook); removed hooks are empty
  // Grads w.r.t. this node's outputs -> grads w.r.t. its inputs (undefined = none).
  virtual std::vector<Tensor> apply(std::vector<Tensor>& grads) = 0;
  virtual const char* name() const = 0;
  virtual void release() {}  // drop saved tensors once backward ran (no retain_graph)
  int num_outputs = 1;
  // engine scratch
  std::vector<Tensor> pending;
  int deps = 0;
};

// A tensor a backward closure reads, as it was when the node was recorded: apply() raises
// PyTorch's "modified by an inplace operation" error if its memory was written in place since
// (VersionCounter), instead of returning a gradient computed from the changed values.
struct SavedVersion {
  Ref<VersionCounter> counter;
  uint32_t version = 0;
  Dims shape;
  DType dtype = DType::f32;
};

// A node whose backward is a closure over the tensors it saved.
using BackwardFn = std::function<std::vector<Tensor>(std::vector<Tensor>& grads)>;
struct FnNode : Node {
  const char* name_;
  BackwardFn fn;
  std::vector<SavedVersion> saved;
  // The closure's gradients are not differentiable (a fused kernel with no create_graph form):
  // under create_graph each one is handed on behind a node that raises if a second derivative
  // reaches it, instead of silently counting as a constant.
  bool no_double_backward = false;
  // A differentiable form of the backward (the op recomputed from differentiable ops), run
  // instead of fn under create_graph, so the gradients have second derivatives; it gets the same
  // grads (undefined where an output got none) and returns one gradient per input.
  BackwardFn double_backward;
  FnNode(const char* n, BackwardFn f) : name_(n), fn(std::move(f)) {}
  std::vector<Tensor> apply(std::vector<Tensor>& g) override;
  const char* name() const override { return name_; }
  void release() override { fn = nullptr; double_backward = nullptr; saved.clear(); }
};

// Sink for a leaf that requires grad: adds the incoming gradient into leaf.grad.
struct AccumulateGrad : Node {
  Ref<TensorImpl> leaf;
  explicit AccumulateGrad(Ref<TensorImpl> l) : leaf(std::move(l)) {}
  std::vector<Tensor> apply(std::vector<Tensor>& g) override;
  const char* name() const override { return "AccumulateGrad"; }
};

bool grad_enabled();
void set_grad_enabled(bool on);
// Anomaly mode (torch.autograd.detect_anomaly): backward checks each function's gradients for NaN.
void set_detect_anomaly(bool on);
bool detect_anomaly_enabled();
struct NoGradGuard {
  bool prev;
  NoGradGuard() : prev(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev); }
};

// True when grad mode is on and any input requires grad: the only cost on the fast path.
inline bool any_requires_grad(const Tensor& a) { return grad_enabled() && a.defined() && a.requires_grad(); }
inline bool any_requires_grad(const Tensor& a, const Tensor& b) {
  return grad_enabled() && ((a.defined() && a.requires_grad()) || (b.defined() && b.requires_grad()));
}
bool any_requires_grad(const std::vector<Tensor>& ts);

Edge edge_of(const Tensor& t);
// Attach a backward node to `outs`, with edges to `inputs`. `saved`: the tensors (inputs or
// outputs, undefined ones skipped) whose values the closure reads, as PyTorch's op saves them;
// an in-place write to any of them before the backward runs makes it raise (SavedVersion).
// Tensors the closure keeps only for their shape or dtype are not listed.
void record(const char* name, const std::vector<Tensor>& inputs, std::vector<Tensor*> outs, BackwardFn fn,
            const std::vector<Tensor>& saved = {});
inline void record(const char* name, const std::vector<Tensor>& inputs, Tensor& out, BackwardFn fn,
                   const std::vector<Tensor>& saved = {}) {
  record(name, inputs, std::vector<Tensor*>{&out}, std::move(fn), saved);
}

// Inside a running backward closure with create_graph: y (an output of that node, saved detached
// to avoid a reference cycle) joined to the node again, so a derivative through it reaches the
// node's inputs; otherwise y as it is.
Tensor saved_output(const Tensor& y, uint32_t output_nr = 0);

// Inside a backward closure with create_graph: gi, a gradient of a piecewise-linear function
// (relu, leaky_relu, hardtanh, max pooling: g times a mask of x), made to depend on x with a zero
// derivative, as PyTorch's *_backward ops are (`self: zeros_like(grad)`). A second derivative then
// reaches x as zeros, where a mask alone would leave gi not requiring grad when g does not.
// `name` is the node's, e.g. "LeakyReluBackwardBackward0". Otherwise gi as it is.
Tensor zero_derivative(const char* name, const Tensor& gi, const Tensor& x);
// The same for a closure that keeps x's edge (edge_of) and metadata but not x's memory (pooling).
Tensor zero_derivative(const char* name, const Tensor& gi, const Edge& x, const Dims& shape, DType dt, Device dev);

// Marks the node just recorded on `out` as having no second derivative (FnNode::no_double_backward).
void mark_no_double_backward(const Tensor& out);
// Gives the node just recorded on `out` a differentiable backward for create_graph
// (FnNode::double_backward); false if out has no such node.
bool set_double_backward(const Tensor& out, BackwardFn fn);

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph,
              bool create_graph);
// torch.autograd.grad: gradients of roots w.r.t. inputs, returned rather than accumulated.
std::vector<Tensor> grad(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
                         const std::vector<Tensor>& inputs, bool retain_graph, bool create_graph,
                         bool allow_unused);

}  // namespace fastdl::autograd
