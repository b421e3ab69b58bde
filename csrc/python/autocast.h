// Automatic mixed precision (torch.autocast; fastdl/amp.py opens and closes the regions). Inside
// a region for a device type, the bindings of the lower-precision ops (the products: matmul, mm,
// bmm, addmm, linear, the convolutions, attention) run on their floating inputs of that device
// type cast to the region's dtype. The cast is the differentiable to_dtype, so float32 parameters
// get float32 gradients; float64 inputs are never cast (PyTorch's eligibility rule). The state is
// per thread, and only bindings consult it: ops that C++ calls (backward included) never cast.
#pragma once
#include "ops/ops.h"

namespace fastdl::py {

struct Autocast {
  bool on;
  DType dt;
};
inline Autocast& autocast_state(bool cuda) {
  static thread_local Autocast s[2] = {{false, DType::bf16}, {false, DType::f16}};
  return s[cuda ? 1 : 0];
}
// t in the region's dtype when a region for t's device type is open and t is eligible.
inline Tensor autocast_lower(const Tensor& t) {
  if (!t.defined() || !is_floating(t.dtype()) || t.dtype() == DType::f64) return t;
  const Autocast& a = autocast_state(!t.device().is_cpu());
  return a.on && t.dtype() != a.dt ? to_dtype(t, a.dt) : t;
}
inline std::optional<Tensor> autocast_lower(const std::optional<Tensor>& t) {
  return t ? std::optional<Tensor>(autocast_lower(*t)) : t;
}

}  // namespace fastdl::py
