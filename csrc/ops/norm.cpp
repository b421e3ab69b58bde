// batch_norm and group_norm (ops/norm.h): checks, the fused CPU kernels of cpu/norm.h (forward
// saving mean / invstd, one fused backward for input, weight and bias) or their CUDA twins
// (cuda/norm.cu). Halves compute in float32. Running statistics are
// updated in place by the forward kernel (a compute-dtype copy is written back when the
// buffers are strided or of another dtype). Under create_graph (a differentiable backward for
// second derivatives) the backward is composed of ops instead.
#include "ops/norm.h"

#include "autograd/node.h"
#include "core/profiler.h"
#include "cuda/cuda_api.h"
#include "cpu/norm.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace fastdl {

using V = std::vector<Tensor>;

namespace {

DType compute_dtype(DType dt) { return dt == DType::f64 ? DType::f64 : DType::f32; }

void check_channel_vec(const Tensor& t, const Tensor& x, int64_t C, const char* op, const char* name) {
  if (!t.defined()) return;
  FASTDL_CHECK(is_floating(t.dtype()), TypeError, op, ": ", name, " must be floating point; got ",
               dtype_name(t.dtype()));
  FASTDL_CHECK(t.ndim() == 1 && t.shape()[0] == C, ValueError, op, ": ", name, " must have shape (", C,
               ",) for input of shape ", shape_str(x.shape()), "; got ", shape_str(t.shape()));
  check_same_device(x, t, op);
}

Tensor as_compute(const Tensor& t, DType kt) { return t.defined() ? contiguous(to_dtype(detach(t), kt)) : Tensor(); }
const void* ptr(const Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; }
Tensor to_caller(const Tensor& t, DType dt) { return t.dtype() == dt ? t : to_dtype(t, dt); }

// (1, C, 1, ...) view of a (C,) vector for broadcasting against x.
Tensor channel_view(const Tensor& t, const Tensor& x) {
  IntList s(size_t(x.ndim()), 1);
  s[1] = x.shape()[1];
  return reshape(t, s);
}

// Every dim of (N, C, *) but the channel dim.
IntList non_channel_dims(const Tensor& x) {
  IntList d{0};
  for (int i = 2; i < x.ndim(); ++i) d.push_back(i);
  return d;
}

// create_graph: the weight and bias gradients sum g xh and g over every dim but the channels.
V affine_grads_graph(const Tensor& g, const Tensor& xh, const Tensor& gx, bool gw, bool gb) {
  IntList d = non_channel_dims(g);
  return V{gx, gw ? sum(mul(g, xh), d, false) : Tensor(), gb ? sum(g, d, false) : Tensor()};
}

}  // namespace

// gx = rstd (gxh - mean(gxh) - xh mean(gxh xh)), the usual normalisation backward.
std::pair<Tensor, Tensor> normalize_backward_graph(const Tensor& x, const Tensor& gxh, const IntList& dims, double eps) {
  Tensor c = sub(x, mean(x, dims, true));
  Tensor rstd = unary(UnaryOp::rsqrt, add_s(mean(mul(c, c), dims, true), eps));
  Tensor xh = mul(c, rstd);
  Tensor gx = mul(rstd, sub(sub(gxh, mean(gxh, dims, true)), mul(xh, mean(mul(gxh, xh), dims, true))));
  return {gx, xh};
}

Tensor batch_norm(const Tensor& x, const Tensor& rm, const Tensor& rv, const Tensor& w, const Tensor& b, bool training,
                  double momentum, double eps) {
  FASTDL_PROFILE("batch_norm", x, w, b);
  const char* op = "batch_norm";
  FASTDL_CHECK(x.defined(), ValueError, op, ": input is required");
  FASTDL_CHECK(is_floating(x.dtype()), TypeError, op, ": input must be floating point; got ", dtype_name(x.dtype()),
               " of shape ", shape_str(x.shape()));
  if (x.numel() == 0 && x.ndim() < 2) return clone(x);  // PyTorch passes an empty 1-D batch through
  FASTDL_CHECK(x.ndim() >= 2, ValueError, op, ": input must have shape (N, C, ...); got ", shape_str(x.shape()));
  const int64_t N = x.shape()[0], C = x.shape()[1];
  check_channel_vec(rm, x, C, op, "running_mean");
  check_channel_vec(rv, x, C, op, "running_var");
  check_channel_vec(w, x, C, op, "weight");
  check_channel_vec(b, x, C, op, "bias");
  FASTDL_CHECK(rm.defined() == rv.defined(), ValueError, op, ": running_mean and running_var must be given together");
  FASTDL_CHECK(training || rm.defined(), ValueError, op,
               ": running_mean and running_var are required when training=False");
  const int64_t S = N * C != 0 ? x.numel() / (N * C) : 0, M = N * S;
  FASTDL_CHECK(!training || M != 1, ValueError, op, ": expected more than 1 value per channel when training; got input "
               "of shape ", shape_str(x.shape()));
  FASTDL_CHECK(eps >= 0, ValueError, op, ": eps must be >= 0; got ", eps);
  FASTDL_CHECK(!training || eps > 0, ValueError, op, ": eps must be positive during training; got ", eps);
  if (x.numel() == 0) return clone(x);  // an empty batch: empty output, running stats untouched
  const Device dev = x.device();

  cpu::BatchNormParams p;
  p.dt = compute_dtype(x.dtype());
  p.N = N; p.C = C; p.S = S;
  p.training = training;
  p.eps = eps;
  p.momentum = momentum;
  Tensor xc = as_compute(x, p.dt), wc = as_compute(w, p.dt), bc = as_compute(b, p.dt);
  Tensor rmc = as_compute(rm, p.dt), rvc = as_compute(rv, p.dt);
  Tensor y = empty(x.shape(), p.dt, dev), mu = empty(Dims{C}, p.dt, dev), is = empty(Dims{C}, p.dt, dev);
  p.x = xc.data_ptr(); p.w = ptr(wc); p.b = ptr(bc);
  p.y = y.data_ptr(); p.mean = mu.data_ptr(); p.invstd = is.data_ptr();
  p.running_mean = rmc.defined() ? rmc.data_ptr() : nullptr;
  p.running_var = rvc.defined() ? rvc.data_ptr() : nullptr;
  if (dev.is_cpu()) cpu::norm_kernels().batch_norm_fwd(p);
  else cuda::batch_norm_fwd(p, dev.index);
  if (training && rm.defined()) {  // the kernel updated the compute copies; write them back unless they are the buffers
    if (rmc.data_ptr() != rm.data_ptr() || rmc.dtype() != rm.dtype()) copy_(rm, rmc);
    if (rvc.data_ptr() != rv.data_ptr() || rvc.dtype() != rv.dtype()) copy_(rv, rvc);
  }
  Tensor out = to_caller(y, x.dtype());
  const bool gx = autograd::any_requires_grad(x), gw = autograd::any_requires_grad(w), gb = autograd::any_requires_grad(b);
  if (gx || gw || gb) {
    const DType xdt = x.dtype(), wdt = w.defined() ? w.dtype() : p.dt, bdt = b.defined() ? b.dtype() : p.dt;
    p.y = p.running_mean = p.running_var = nullptr;
    p.b = nullptr;
    autograd::record("NativeBatchNormBackward0", {x, w, b}, out,
                     [x, w, p, xc, wc, mu, is, gx, gw, gb, xdt, wdt, bdt, dev](V& g) {
      if (autograd::grad_enabled()) {  // create_graph; eval: xh = (x - mu) is with the constant running stats
        Tensor gxh = w.defined() ? mul(g[0], channel_view(w, x)) : g[0];
        if (p.training) {
          auto [dx, xh] = normalize_backward_graph(x, gxh, non_channel_dims(x), p.eps);
          return affine_grads_graph(g[0], xh, gx ? dx : Tensor(), gw, gb);
        }
        Tensor isv = channel_view(to_dtype(is, xdt), x);
        Tensor xh = mul(sub(x, channel_view(to_dtype(mu, xdt), x)), isv);
        return affine_grads_graph(g[0], xh, gx ? mul(gxh, isv) : Tensor(), gw, gb);
      }
      cpu::BatchNormParams q = p;
      Tensor gy = contiguous(to_dtype(g[0], q.dt));
      Tensor dx = gx ? empty(xc.shape(), q.dt, dev) : Tensor();
      Tensor dw = gw ? empty(Dims{q.C}, q.dt, dev) : Tensor(), db = gb ? empty(Dims{q.C}, q.dt, dev) : Tensor();
      q.x = xc.data_ptr(); q.w = ptr(wc); q.mean = const_cast<void*>(ptr(mu)); q.invstd = const_cast<void*>(ptr(is));
      q.gy = gy.data_ptr();
      q.gx = gx ? dx.data_ptr() : nullptr;
      q.gw = gw ? dw.data_ptr() : nullptr;
      q.gb = gb ? db.data_ptr() : nullptr;
      if (dev.is_cpu()) cpu::norm_kernels().batch_norm_bwd(q);
      else cuda::batch_norm_bwd(q, dev.index);
      return V{gx ? to_caller(dx, xdt) : Tensor(), gw ? to_caller(dw, wdt) : Tensor(), gb ? to_caller(db, bdt) : Tensor()};
    }, {x, w});
  }
  return out;
}

Tensor group_norm(const Tensor& x, int64_t G, const Tensor& w, const Tensor& b, double eps) {
  FASTDL_PROFILE("group_norm", x, w, b);
  const char* op = "group_norm";
  FASTDL_CHECK(x.defined(), ValueError, op, ": input is required");
  FASTDL_CHECK(is_floating(x.dtype()), TypeError, op, ": input must be floating point; got ", dtype_name(x.dtype()),
               " of shape ", shape_str(x.shape()));
  FASTDL_CHECK(x.ndim() >= 2, ValueError, op, ": input must have shape (N, C, ...); got ", shape_str(x.shape()));
  const int64_t N = x.shape()[0], C = x.shape()[1];
  FASTDL_CHECK(G > 0 && C % G == 0, ValueError, op, ": num_channels ", C, " must be divisible by num_groups ", G,
               " (input of shape ", shape_str(x.shape()), ")");
  check_channel_vec(w, x, C, op, "weight");
  check_channel_vec(b, x, C, op, "bias");
  const int64_t S = N * C != 0 ? x.numel() / (N * C) : 0;
  FASTDL_CHECK(N * C / G * S != 1, ValueError, op,  // PyTorch's check: (N C / G) S values per group
               ": expected more than 1 value per group; got input of shape ", shape_str(x.shape()));
  const Device dev = x.device();

  cpu::GroupNormParams p;
  p.dt = compute_dtype(x.dtype());
  p.N = N; p.C = C; p.S = S; p.G = G;
  p.eps = eps;
  Tensor xc = as_compute(x, p.dt), wc = as_compute(w, p.dt), bc = as_compute(b, p.dt);
  Tensor y = empty(x.shape(), p.dt, dev), mu = empty(Dims{N, G}, p.dt, dev), is = empty(Dims{N, G}, p.dt, dev);
  p.x = xc.data_ptr(); p.w = ptr(wc); p.b = ptr(bc);
  p.y = y.data_ptr(); p.mean = mu.data_ptr(); p.invstd = is.data_ptr();
  if (x.numel()) {
    if (dev.is_cpu()) cpu::norm_kernels().group_norm_fwd(p);
    else cuda::group_norm_fwd(p, dev.index);
  }
  Tensor out = to_caller(y, x.dtype());
  const bool gx = autograd::any_requires_grad(x), gw = autograd::any_requires_grad(w), gb = autograd::any_requires_grad(b);
  if (gx || gw || gb) {
    const DType xdt = x.dtype(), wdt = w.defined() ? w.dtype() : p.dt, bdt = b.defined() ? b.dtype() : p.dt;
    p.y = nullptr;
    p.b = nullptr;
    autograd::record("NativeGroupNormBackward0", {x, w, b}, out,
                     [x, w, p, xc, wc, mu, is, gx, gw, gb, xdt, wdt, bdt, dev](V& g) {
      if (autograd::grad_enabled() && xc.numel()) {  // create_graph: normalise (N, G, C/G * S) rows, composed
        Tensor gxh = w.defined() ? mul(g[0], channel_view(w, x)) : g[0];
        IntList grouped{p.N, p.G, -1}, shape = x.shape().vec();
        auto [dx, xh] = normalize_backward_graph(reshape(x, grouped), reshape(gxh, grouped), {2}, p.eps);
        return affine_grads_graph(g[0], reshape(xh, shape), gx ? reshape(dx, shape) : Tensor(), gw, gb);
      }
      cpu::GroupNormParams q = p;
      Tensor gy = contiguous(to_dtype(g[0], q.dt));
      Tensor dx = gx ? empty(xc.shape(), q.dt, dev) : Tensor();
      Tensor dw = gw ? empty(Dims{q.C}, q.dt, dev) : Tensor(), db = gb ? empty(Dims{q.C}, q.dt, dev) : Tensor();
      Tensor scratch = empty(Dims{2 * q.N * q.C}, q.dt, dev);
      q.x = xc.data_ptr(); q.w = ptr(wc); q.mean = const_cast<void*>(ptr(mu)); q.invstd = const_cast<void*>(ptr(is));
      q.gy = gy.data_ptr();
      q.gx = gx ? dx.data_ptr() : nullptr;
      q.gw = gw ? dw.data_ptr() : nullptr;
      q.gb = gb ? db.data_ptr() : nullptr;
      q.scratch = scratch.data_ptr();
      if (xc.numel()) {
        if (dev.is_cpu()) cpu::norm_kernels().group_norm_bwd(q);
        else cuda::group_norm_bwd(q, dev.index);
      }
      else { if (gw) fill_(dw, 0); if (gb) fill_(db, 0); }
      return V{gx ? to_caller(dx, xdt) : Tensor(), gw ? to_caller(dw, wdt) : Tensor(), gb ? to_caller(db, bdt) : Tensor()};
    }, {x, w});
  }
  return out;
}

}  // namespace fastdl
