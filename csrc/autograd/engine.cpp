#include <algorithm>
#include <atomic>
#include <unordered_map>
#include <unordered_set>

#include "autograd/hooks.h"
#include "autograd/node.h"
#include "core/profiler.h"
#include "ops/ops.h"

namespace fastdl::autograd {

namespace { thread_local bool t_grad_enabled = true; }
bool grad_enabled() { return t_grad_enabled; }
void set_grad_enabled(bool on) { t_grad_enabled = on; }

bool any_requires_grad(const std::vector<Tensor>& ts) {
  if (!grad_enabled()) return false;
  for (auto& t : ts) if (t.defined() && t.requires_grad()) return true;
  return false;
}

namespace {
thread_local Node* g_applying = nullptr;  // the node whose closure runs on this thread
std::atomic<bool> g_detect_anomaly{false};

// Anomaly mode: a backward function whose gradient holds a NaN stops the backward, naming it.
void check_anomaly(Node* n, const std::vector<Tensor>& out) {
  for (size_t i = 0; i < out.size(); ++i) {
    const Tensor& t = out[i];
    if (!t.defined() || !is_floating(t.dtype()) || !t.numel()) continue;
    NoGradGuard ng;
    if (item(fastdl::any(unary(UnaryOp::isnan, t), {}, false)))  // RuntimeError in Python, as PyTorch's
      throw std::runtime_error(str_cat("Function '", n->name(), "' returned nan values in its ", i, "th output."));
  }
}
}  // namespace

void set_detect_anomaly(bool on) { g_detect_anomaly = on; }
bool detect_anomaly_enabled() { return g_detect_anomaly; }

std::vector<Tensor> FnNode::apply(std::vector<Tensor>& g) {
  FASTDL_CHECK(fn, ValueError, "backward: trying to backward through the graph a second time (", name_,
               "); its saved tensors were freed. Pass retain_graph=True the first time");
  for (const SavedVersion& s : saved)
    if (s.counter->value.load(std::memory_order_relaxed) != s.version)  // RuntimeError in Python, as PyTorch's
      throw std::runtime_error(str_cat(
          "one of the variables needed for gradient computation has been modified by an inplace operation: [",
          dtype_name(s.dtype), " ", shape_str(s.shape), "], saved by ", name_, ", is at version ", s.counter->value.load(),
          "; expected version ", s.version, " instead. Hint: the tensor was written in place (a method ending in "
          "'_', an index assignment, copy_, an optimizer step) after the forward used it; write to a clone() "
          "instead, or run the step after backward()"));
  struct Current { Node* prev; explicit Current(Node* n) : prev(g_applying) { g_applying = n; }
                   ~Current() { g_applying = prev; } } cur(this);
  if (double_backward && grad_enabled()) return double_backward(g);
  std::vector<Tensor> r = fn(g);
  if (no_double_backward && grad_enabled()) {
    const char* nm = name_;
    for (Tensor& t : r) {
      if (!t.defined() || !is_floating(t.dtype())) continue;
      Tensor w = detach(t);
      record("NotImplementedDoubleBackward", {t}, w, [nm](std::vector<Tensor>&) -> std::vector<Tensor> {
        throw std::runtime_error(str_cat("the derivative of ", nm, "'s gradient (a second derivative, through a "
                                         "backward taken with create_graph=True) is not implemented"));
      });
      t = w;
    }
  }
  return r;
}

void mark_no_double_backward(const Tensor& out) {
  if (auto* n = dynamic_cast<FnNode*>(out.grad_fn().get())) n->no_double_backward = true;
}

bool set_double_backward(const Tensor& out, BackwardFn fn) {
  auto* n = dynamic_cast<FnNode*>(out.grad_fn().get());
  if (!n) return false;
  n->double_backward = std::move(fn);
  return true;
}

Tensor saved_output(const Tensor& y, uint32_t output_nr) {
  if (!grad_enabled() || !g_applying) return y;
  Tensor t = detach(y);
  TensorImpl* o = t.impl();
  o->grad_fn = Ref<Node>(g_applying);
  o->output_nr = output_nr;
  o->requires_grad = true;
  return t;
}

Tensor zero_derivative(const char* name, const Tensor& gi, const Edge& x, const Dims& shape, DType dt, Device dev) {
  if (!grad_enabled() || !x.fn || !gi.defined()) return gi;
  Tensor r = detach(gi);
  record(name, {gi}, r, [shape, dt, dev](std::vector<Tensor>& g) {
    return std::vector<Tensor>{g[0], zeros(shape, dt, dev)};
  });
  r.grad_fn()->next.push_back(x);
  return r;
}

Tensor zero_derivative(const char* name, const Tensor& gi, const Tensor& x) {
  if (!grad_enabled() || !x.defined() || !x.requires_grad()) return gi;
  return zero_derivative(name, gi, edge_of(x), x.shape(), x.dtype(), x.device());
}

// True when nothing but this handle can see t's memory: no other handle, no view sharing its
// storage, no graph. Such a gradient can be taken over or accumulated into in place.
bool sole_owner(const Tensor& t) {
  return t.defined() && t.ref().use_count() == 1 && t.storage().use_count() == 1 && t.is_contiguous() &&
         !t.requires_grad();
}

std::vector<Tensor> AccumulateGrad::apply(std::vector<Tensor>& g) {
  Tensor gr = std::move(g[0]);
  if (!gr.defined()) return {};
  for (auto& h : leaf->hooks)
    if (h && !is_post_accumulate(h)) { Tensor r = h(gr); if (r.defined()) gr = r; }
  Tensor l(leaf);
  if (gr.dtype() != l.dtype()) gr = to_dtype(gr, l.dtype());
  Tensor cur = l.grad();
  if (cur.defined()) {
    if (grad_enabled()) l.set_grad(add(cur, gr));   // create_graph: keep the graph
    else add_(cur, gr);
  } else if (grad_enabled()) {
    l.set_grad(gr);
  } else {
    // Take the buffer over when no one else can see it (PyTorch does the same); otherwise own a
    // copy: an incoming gradient may alias another leaf's or be a broadcast view.
    l.set_grad(sole_owner(gr) && gr.shape() == l.shape() ? gr : clone(gr));
  }
  return {};
}

namespace { std::atomic<bool> g_any_post_hooks{false}; }  // skip the bookkeeping until one is registered

size_t add_post_accumulate_hook(const Tensor& t, std::function<void(const Tensor&)> fn) {
  FASTDL_CHECK(t.requires_grad() && !t.grad_fn(), ValueError,
               "register_post_accumulate_grad_hook: only leaf tensors that require grad accept one");
  t.impl()->hooks.push_back(PostAccumulateHook{std::move(fn)});
  g_any_post_hooks = true;
  return t.impl()->hooks.size() - 1;
}

Edge edge_of(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return {};
  if (t.grad_fn()) return {t.grad_fn(), t.impl()->output_nr};
  return {Ref<Node>(new AccumulateGrad(t.ref())), 0};
}

void record(const char* name, const std::vector<Tensor>& inputs, std::vector<Tensor*> outs, BackwardFn fn,
            const std::vector<Tensor>& saved) {
  FnNode* fnode = new FnNode(name, std::move(fn));
  Ref<Node> node(fnode);
  for (const Tensor& t : saved)
    if (t.defined()) fnode->saved.push_back({t.impl()->version, t.impl()->version->value.load(std::memory_order_relaxed), t.shape(), t.dtype()});
  node->num_outputs = int(outs.size());
  node->next.reserve(inputs.size());
  for (auto& t : inputs) node->next.push_back(edge_of(t));
  for (size_t i = 0; i < outs.size(); ++i) {
    TensorImpl* o = outs[i]->impl();
    o->grad_fn = node;
    o->output_nr = uint32_t(i);
    o->requires_grad = true;
  }
}

namespace {

struct Run {
  // For autograd.grad: capture instead of accumulate.
  std::unordered_map<TensorImpl*, size_t> leaf_slot;              // leaf inputs
  std::unordered_map<Node*, std::vector<std::pair<uint32_t, size_t>>> node_slot;  // non-leaf inputs
  std::vector<Tensor> captured;
  bool capture = false;
};

// Sum gradients arriving for one output; in place into a buffer no one else can see (never
// while recording a graph for create_graph).
void accumulate(Tensor& slot, Tensor g) {
  if (!slot.defined()) { slot = std::move(g); return; }
  const bool same = slot.shape() == g.shape() && slot.dtype() == g.dtype() && !grad_enabled();
  if (same && sole_owner(slot)) add_(slot, g);
  else if (same && sole_owner(g)) { add_(g, slot); slot = std::move(g); }
  else slot = add(slot, g);
}

void run_engine(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph,
                bool create_graph, Run& run) {
  FASTDL_CHECK(roots.size() == grads.size(), ValueError, "backward: got ", roots.size(), " tensors and ",
               grads.size(), " gradients");
  struct ModeGuard { bool prev; explicit ModeGuard(bool on) : prev(grad_enabled()) { set_grad_enabled(on); }
                     ~ModeGuard() { set_grad_enabled(prev); } } guard(create_graph);
  std::vector<std::pair<Edge, Tensor>> seeds;
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    FASTDL_CHECK(r.requires_grad(), ValueError,
                 "backward: element ", i, " of tensors does not require grad and does not have a grad_fn");
    Tensor g = grads[i];
    if (!g.defined()) {
      FASTDL_CHECK(r.numel() == 1, ValueError, "backward: grad can be implicitly created only for scalar outputs; got shape ",
                   shape_str(r.shape()));
      g = ones_like(r);
    } else {
      FASTDL_CHECK(g.shape() == r.shape(), ValueError, "backward: gradient has shape ", shape_str(g.shape()),
                   " but the tensor has shape ", shape_str(r.shape()));
    }
    seeds.push_back({edge_of(r), g});
  }
  // Count, for every node reachable from the roots, how many edges point at it.
  std::unordered_set<Node*> seen;
  std::vector<Node*> stack;
  std::vector<Ref<Node>> keep;  // hold seed nodes (fresh AccumulateGrad) alive
  for (auto& s : seeds) {
    Node* n = s.first.fn.get();
    keep.push_back(s.first.fn);
    if (seen.insert(n).second) stack.push_back(n);
  }
  while (!stack.empty()) {
    Node* n = stack.back(); stack.pop_back();
    for (auto& e : n->next) {
      if (!e.fn) continue;
      e.fn->deps++;
      if (seen.insert(e.fn.get()).second) stack.push_back(e.fn.get());
    }
  }
  for (auto& s : seeds) {
    Node* n = s.first.fn.get();
    if (n->pending.size() < size_t(n->num_outputs)) n->pending.resize(n->num_outputs);
    accumulate(n->pending[s.first.input_nr], s.second);
  }
  // If a backward throws (a hook, a bad gradient), leave the graph as it was: no stale
  // dependency counts or half-summed gradients for the next backward to trip over.
  struct Reset {
    std::unordered_set<Node*>& nodes;
    bool armed = true;
    ~Reset() {
      if (armed) for (Node* n : nodes) { n->deps = 0; n->pending.clear(); }
    }
  } reset{seen};
  // Leaves with post-accumulate hooks: how many AccumulateGrad nodes of this run feed each one.
  struct PostState { int left = 0; bool got = false; };
  std::unordered_map<TensorImpl*, PostState> post;
  if (g_any_post_hooks && !run.capture)
    for (Node* n : seen)
      if (auto* acc = dynamic_cast<AccumulateGrad*>(n))
        for (auto& h : acc->leaf->hooks)
          if (is_post_accumulate(h)) { post[acc->leaf.get()].left++; break; }
  std::vector<Node*> ready;
  for (auto& s : seeds) {
    Node* n = s.first.fn.get();
    if (n->deps == 0 && std::find(ready.begin(), ready.end(), n) == ready.end()) ready.push_back(n);
  }
  while (!ready.empty()) {
    Node* n = ready.back(); ready.pop_back();
    std::vector<Tensor> g = std::move(n->pending);
    n->pending.clear();
    g.resize(n->num_outputs);
    std::vector<Tensor> out;
    for (auto& [nr, h] : n->hooks)
      if (h && nr < g.size() && g[nr].defined()) { Tensor r = h(g[nr]); if (r.defined()) g[nr] = r; }
    bool any = false;
    for (auto& t : g) any |= t.defined();
    if (run.capture) {
      auto it = run.node_slot.find(n);
      if (it != run.node_slot.end())
        for (auto& [nr, slot] : it->second) if (g[nr].defined()) accumulate(run.captured[slot], g[nr]);
      if (auto* acc = dynamic_cast<AccumulateGrad*>(n)) {
        auto jt = run.leaf_slot.find(acc->leaf.get());
        if (jt != run.leaf_slot.end() && g[0].defined()) accumulate(run.captured[jt->second], g[0]);
        any = false;  // autograd.grad never touches .grad
      }
    }
    if (any) {
      profiler::Scope scope(n->name(), 1, g);
      out = n->apply(g);
      if (g_detect_anomaly) check_anomaly(n, out);
    }
    if (!post.empty())
      if (auto* acc = dynamic_cast<AccumulateGrad*>(n)) {
        auto it = post.find(acc->leaf.get());
        if (it != post.end()) {
          it->second.got |= any;
          if (--it->second.left == 0 && it->second.got) {
            Tensor leaf(acc->leaf);
            for (size_t k = 0; k < acc->leaf->hooks.size(); ++k) {  // by index: a hook may register another
              GradHook h = acc->leaf->hooks[k];
              if (is_post_accumulate(h)) h.target<PostAccumulateHook>()->fn(leaf);
            }
          }
        }
      }
    if (!retain_graph) n->release();
    for (size_t i = 0; i < n->next.size(); ++i) {
      Edge& e = n->next[i];
      if (!e.fn) continue;
      Node* c = e.fn.get();
      if (i < out.size() && out[i].defined()) {
        if (c->pending.size() < size_t(c->num_outputs)) c->pending.resize(c->num_outputs);
        accumulate(c->pending[e.input_nr], std::move(out[i]));
      }
      if (--c->deps == 0) ready.push_back(c);
    }
  }
}

}  // namespace

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph,
              bool create_graph) {
  Run run;
  run_engine(roots, grads, retain_graph, create_graph, run);
}

std::vector<Tensor> grad(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
                         const std::vector<Tensor>& inputs, bool retain_graph, bool create_graph,
                         bool allow_unused) {
  Run run;
  run.capture = true;
  run.captured.resize(inputs.size());
  std::vector<std::pair<size_t, size_t>> repeats;  // (i, j): input i is input j again, j < i
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    FASTDL_CHECK(t.requires_grad(), ValueError, "grad: input ", i, " does not require grad");
    if (t.grad_fn()) {
      auto& slots = run.node_slot[t.grad_fn().get()];
      auto same = std::find_if(slots.begin(), slots.end(), [&](const auto& s) { return s.first == t.impl()->output_nr; });
      if (same != slots.end()) repeats.push_back({i, same->second});
      else slots.push_back({t.impl()->output_nr, i});
    } else {
      auto [it, fresh] = run.leaf_slot.emplace(t.impl(), i);
      if (!fresh) repeats.push_back({i, it->second});
    }
  }
  run_engine(roots, grads, retain_graph, create_graph, run);
  for (auto [i, j] : repeats) run.captured[i] = run.captured[j];  // the same gradient, as PyTorch's
  for (size_t i = 0; i < inputs.size(); ++i)
    FASTDL_CHECK(allow_unused || run.captured[i].defined(), ValueError, "grad: input ", i,
                 " was not used in the graph; pass allow_unused=True");
  return run.captured;
}

}  // namespace fastdl::autograd
