// Post-accumulate-grad hooks (Tensor.register_post_accumulate_grad_hook, as PyTorch's): called
// once per backward with the leaf, after every gradient reaching it has been summed into
// leaf.grad (a leaf used by several ops gets one AccumulateGrad node per use; the engine counts
// them and fires after the last). Data-parallel training hangs its bucket all-reduces here.
//
// They live in TensorImpl::hooks beside the gradient hooks, as a GradHook whose target is
// PostAccumulateHook (told apart with std::function::target): no field on every tensor.
#pragma once
#include <functional>

#include "autograd/node.h"

namespace fastdl::autograd {

struct PostAccumulateHook {
  std::function<void(const Tensor&)> fn;
  Tensor operator()(const Tensor&) const { return Tensor(); }  // as a gradient hook: keep the gradient
};

inline bool is_post_accumulate(const GradHook& h) { return h && h.target<PostAccumulateHook>() != nullptr; }

// Registers `fn` on leaf `t`; returns its index in t's hook list (for removal).
size_t add_post_accumulate_hook(const Tensor& t, std::function<void(const Tensor&)> fn);

}  // namespace fastdl::autograd
