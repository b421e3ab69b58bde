// Fused optimizer steps: check every parameter of a group (dtype, device, shape of grad and
// state), then hand the whole group to one kernel call for its device.
#include "ops/optim.h"

#include "cuda/cuda_api.h"
#include "core/profiler.h"
#include "ops/ops.h"

namespace fastdl {

namespace {

void check_like(const char* name, size_t i, const char* what, const Tensor& t, const Tensor& p) {
  FASTDL_CHECK(t.dtype() == p.dtype(), TypeError, name, ": parameter ", i, ": ", what, " has dtype ", dtype_name(t.dtype()),
               " but the parameter has dtype ", dtype_name(p.dtype()));
  FASTDL_CHECK(t.device() == p.device(), DeviceError, name, ": parameter ", i, ": ", what, " is on ", t.device().str(),
               " but the parameter is on ", p.device().str());
  FASTDL_CHECK(t.shape() == p.shape(), ValueError, name, ": parameter ", i, ": ", what, " has shape ", shape_str(t.shape()),
               " but the parameter has shape ", shape_str(p.shape()));
}

// The state slots (bit s: s<s>) a kind's kernel reads unconditionally; the others are optional
// (sgd's momentum buffer, adam's max_exp_avg_sq, rmsprop's momentum and grad_avg buffers).
unsigned required_slots(OptimKind kind) {
  switch (kind) {
    case OptimKind::sgd: return 0;
    case OptimKind::adagrad: case OptimKind::rmsprop: case OptimKind::asgd: return 1;
    default: return 3;  // adam, lamb, nadam, radam, adamax, adadelta, rprop: s0 and s1
  }
}

}  // namespace

void optim_step(const char* name, OptimKind kind, const OptimHyper& h, const std::vector<Tensor>& params,
                const std::vector<Tensor>& grads, const std::vector<std::vector<Tensor>>& state,
                const std::vector<double>& steps, const std::vector<double>& c0,
                const std::vector<double>& c1) {
  FASTDL_PROFILE(name);
  const size_t n = params.size();
  FASTDL_CHECK(grads.size() == n, ValueError, name, ": got ", n, " parameters but ", grads.size(), " gradients");
  FASTDL_CHECK(state.size() <= 3, ValueError, name, ": at most 3 state lists; got ", state.size());
  for (size_t s = 0; s < state.size(); ++s)
    FASTDL_CHECK(state[s].empty() || state[s].size() == n, ValueError, name, ": state list ", s, " has ", state[s].size(),
                 " tensors for ", n, " parameters");
  FASTDL_CHECK(steps.empty() || steps.size() == n, ValueError, name, ": got ", steps.size(), " step counts for ", n,
               " parameters");
  FASTDL_CHECK((c0.empty() || c0.size() == n) && (c1.empty() || c1.size() == n), ValueError, name, ": got ",
               c0.size(), " and ", c1.size(), " per-parameter scalars for ", n, " parameters");
  const bool scalars = kind == OptimKind::nadam || kind == OptimKind::asgd;  // c0, c1 carry their state
  FASTDL_CHECK(!scalars || n == 0 || (c0.size() == n && c1.size() == n), ValueError, name,
               ": needs its two per-parameter scalars for each of the ", n, " parameters; got ", c0.size(), " and ",
               c1.size());
  if (n == 0) return;
  const DType dt = params[0].dtype();
  const Device dev = params[0].device();
  std::vector<OptimTensor> ts(n);
  std::vector<Tensor> keep;                       // contiguous copies of strided grads
  std::vector<std::pair<Tensor, Tensor>> back;    // (param, contiguous copy) to write back
  for (size_t i = 0; i < n; ++i) {
    const Tensor& p = params[i];
    FASTDL_CHECK(p.defined(), ValueError, name, ": parameter ", i, " is undefined");
    FASTDL_CHECK(p.dtype() == DType::f32 || p.dtype() == DType::f64, TypeError, name, ": parameter ", i,
                 " has dtype ", dtype_name(p.dtype()), "; the fused step supports float32 and float64");
    FASTDL_CHECK(p.dtype() == dt && p.device() == dev, TypeError, name, ": parameter ", i, " (", dtype_name(p.dtype()),
                 ", ", p.device().str(), ") differs from parameter 0 (", dtype_name(dt), ", ", dev.str(),
                 "); one group steps one dtype and device");
    FASTDL_CHECK(grads[i].defined(), ValueError, name, ": parameter ", i, " has no gradient");
    check_like(name, i, "grad", grads[i], p);
    void* slots[3] = {nullptr, nullptr, nullptr};
    for (size_t s = 0; s < state.size(); ++s) {
      if (state[s].empty() || !state[s][i].defined()) continue;
      const Tensor& st = state[s][i];
      check_like(name, i, "state buffer", st, p);
      FASTDL_CHECK(st.is_contiguous(), ValueError, name, ": parameter ", i, ": state buffers must be contiguous");
      FASTDL_CHECK(!st.same(p), ValueError, name, ": parameter ", i, ": a state buffer aliases the parameter");
      slots[s] = st.data_ptr();
    }
    for (unsigned sl = 0; sl < 3; ++sl)
      FASTDL_CHECK(!(required_slots(kind) >> sl & 1) || slots[sl], ValueError, name, ": parameter ", i, ": state list ",
                   sl, " is missing or has no tensor for it");
    Tensor g = grads[i].is_contiguous() ? grads[i] : contiguous(grads[i]);
    if (!g.same(grads[i])) keep.push_back(g);
    Tensor pc = p;
    if (!p.is_contiguous()) { pc = contiguous(p); back.emplace_back(p, pc); }
    OptimTensor& t = ts[i];
    t.p = pc.data_ptr();
    t.g = g.data_ptr();
    t.s0 = slots[0]; t.s1 = slots[1]; t.s2 = slots[2];
    t.n = p.numel();
    t.step = steps.empty() ? 1.0 : steps[i];
    t.c0 = c0.empty() ? 0.0 : c0[i];
    t.c1 = c1.empty() ? 0.0 : c1[i];
  }
  if (dev.is_cpu()) cpu::optim_kernels().step(kind, dt, h, ts.data(), int64_t(n));
  else cuda::optim_step(kind, dt, h, ts.data(), int64_t(n), dev.index);
  for (auto& [p, pc] : back) copy_(p, pc);
}

}  // namespace fastdl
