// max_pool2d, avg_pool2d, adaptive_avg_pool2d, adaptive_max_pool2d (ops/pool.h): checks, output
// shapes with PyTorch's ceil_mode rule, and the fused backward nodes. Halves compute in float32;
// non-contiguous inputs are made contiguous once. CUDA kernels are not written yet: a CUDA
// input raises RuntimeError naming the op.
#include "ops/pool.h"

#include "autograd/node.h"
#include "core/profiler.h"
#include "cuda/cuda_api.h"
#include "cpu/pool.h"
#include "ops/dispatch.h"

namespace fastdl {

using V = std::vector<Tensor>;
using cpu::Pool2dParams;
using cpu::PoolKind;

namespace {

DType compute_dtype(DType dt) { return dt == DType::f64 ? DType::f64 : DType::f32; }

// 1 or 2 values -> (h, w); `dflt` when empty and allowed.
std::pair<int64_t, int64_t> pair_arg(const IntList& v, const char* op, const char* name, const IntList* dflt = nullptr) {
  if (v.empty() && dflt) return pair_arg(*dflt, op, name);
  FASTDL_CHECK(v.size() == 1 || v.size() == 2, ValueError, op, ": ", name,
               " must be an int or a tuple of two ints; got ", v.size(), " values");
  return {v[0], v.size() == 2 ? v[1] : v[0]};
}

void check_input(const Tensor& x, const char* op) {
  FASTDL_CHECK(x.defined(), ValueError, op, ": input is required");
  FASTDL_CHECK(is_floating(x.dtype()), TypeError, op, ": input must be floating point; got ", dtype_name(x.dtype()),
               " of shape ", shape_str(x.shape()));
  FASTDL_CHECK(x.ndim() == 3 || x.ndim() == 4, ValueError, op, ": input must have shape (N, C, H, W) or (C, H, W); got ",
               shape_str(x.shape()));
  for (int d = x.ndim() - 2; d < x.ndim(); ++d)
    FASTDL_CHECK(x.shape()[d] > 0, ValueError, op,
                 ": input must have non-zero spatial sizes; got ", shape_str(x.shape()));
}

// PyTorch's pooling output size: floor or ceil, the last window starting inside the input or its left padding.
int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  const int64_t num = in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  int64_t o = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
  if (ceil_mode && (o - 1) * s >= in + p) --o;
  return o;
}

struct Pool {
  Pool2dParams p;
  Dims in_shape, out_shape;  // the caller's (3-D or 4-D)
  DType dt;                  // the caller's dtype
  Device dev;
  Tensor xc;                 // contiguous compute-dtype input
};

Pool prepare(const Tensor& x, PoolKind kind, int64_t OH, int64_t OW) {
  Pool P;
  P.p.kind = kind;
  P.dt = x.dtype();
  P.dev = x.device();
  P.p.dt = compute_dtype(x.dtype());
  P.in_shape = x.shape();
  const int nd = x.ndim();
  P.p.H = x.shape()[nd - 2];
  P.p.W = x.shape()[nd - 1];
  P.p.planes = x.numel() / std::max<int64_t>(1, P.p.H * P.p.W);
  P.p.OH = OH;
  P.p.OW = OW;
  P.out_shape = x.shape();
  P.out_shape[nd - 2] = OH;
  P.out_shape[nd - 1] = OW;
  P.xc = contiguous(to_dtype(detach(x), P.p.dt));
  P.p.x = P.xc.data_ptr();
  return P;
}

V run(Pool P, const Tensor& x, const char* node_name);

// The pooling's own map applied to a gradient t of x's shape: the input gradient's derivative.
// Max kinds gather t at the saved argmax indices; average kinds average t (differentiable both).
Tensor pool_of_grad(const Pool& P, const Tensor& idx, const Tensor& t, const char* node_name) {
  if (idx.defined()) {
    Tensor flat = reshape(t, {P.p.planes, P.p.H * P.p.W});
    return reshape(gather(flat, 1, reshape(idx, {P.p.planes, P.p.OH * P.p.OW})), P.out_shape.vec());
  }
  Pool Q = P;
  Q.xc = contiguous(to_dtype(detach(t), Q.p.dt));
  Q.p.x = Q.xc.data_ptr();
  return run(Q, t, node_name)[0];
}

// Runs the forward; records the backward when x requires grad. Returns {out, idx (max kinds)}.
V run(Pool P, const Tensor& x, const char* node_name) {
  Tensor y = empty(P.out_shape, P.p.dt, P.dev);
  Tensor idx;
  const bool is_max = P.p.kind == PoolKind::max || P.p.kind == PoolKind::adaptive_max;
  if (is_max) {
    idx = empty(P.out_shape, DType::i64, P.dev);
    P.p.idx = idx.data<int64_t>();
  }
  P.p.y = y.data_ptr();
  if (P.p.planes > 0 && P.p.OH > 0 && P.p.OW > 0) {
    if (P.dev.is_cpu()) cpu::pool_kernels().fwd(P.p);
    else cuda::pool2d_fwd(P.p, P.dev.index);
  }
  Tensor out = P.dt == P.p.dt ? y : to_dtype(y, P.dt);
  if (autograd::any_requires_grad(x)) {
    P.p.x = nullptr;
    P.xc = Tensor();  // backward needs only the indices (max) or nothing (avg)
    // a max pool's gradient is a routing of gy chosen by x: zero second derivative in x
    autograd::Edge xe = is_max ? autograd::edge_of(x) : autograd::Edge{};
    autograd::record(node_name, {x}, out, [P, idx, is_max, node_name, xe, xdt = x.dtype()](V& g) {
      Pool2dParams q = P.p;
      Tensor gy = contiguous(to_dtype(g[0], q.dt));
      Tensor gx = empty(P.in_shape, q.dt, P.dev);
      q.idx = idx.defined() ? idx.data<int64_t>() : nullptr;
      q.gy = gy.data_ptr();
      q.gx = gx.data_ptr();
      if (q.planes > 0 && q.H > 0 && q.W > 0) {
        if (P.dev.is_cpu()) cpu::pool_kernels().bwd(q);
        else cuda::pool2d_bwd(q, P.dev.index);
      }
      Tensor r = P.dt == q.dt ? gx : to_dtype(gx, P.dt);
      // create_graph: gx is linear in gy; its derivative routes ggx back as the pooling did
      if (autograd::any_requires_grad(g[0]))
        autograd::record(is_max ? "MaxPool2DWithIndicesBackwardBackward0" : "AvgPool2DBackwardBackward0", {g[0]}, r,
                         [P, idx, node_name](V& gg) { return V{pool_of_grad(P, idx, gg[0], node_name)}; });
      if (is_max) r = autograd::zero_derivative("MaxPool2DWithIndicesBackwardBackward0", r, xe, P.in_shape, xdt, P.dev);
      return V{r};
    }, {x});
  }
  return is_max ? V{out, idx} : V{out};
}

// Checks of the fixed-window kinds: positive sizes, padding at most half the (effective)
// window, and a non-empty output. Fills the window fields of P.p.
void fixed_window(Pool2dParams& p, const Tensor& x, const char* op, std::pair<int64_t, int64_t> k,
                  std::pair<int64_t, int64_t> s, std::pair<int64_t, int64_t> pad, std::pair<int64_t, int64_t> d) {
  FASTDL_CHECK(k.first > 0 && k.second > 0, ValueError, op, ": kernel_size must be positive; got (", k.first, ", ",
               k.second, ")");
  FASTDL_CHECK(s.first > 0 && s.second > 0, ValueError, op, ": stride must be positive; got (", s.first, ", ",
               s.second, ")");
  FASTDL_CHECK(d.first > 0 && d.second > 0, ValueError, op, ": dilation must be positive; got (", d.first, ", ",
               d.second, ")");
  const int64_t ekh = (k.first - 1) * d.first + 1, ekw = (k.second - 1) * d.second + 1;
  FASTDL_CHECK(pad.first >= 0 && pad.second >= 0 && pad.first <= ekh / 2 && pad.second <= ekw / 2, ValueError, op,
               ": padding must be >= 0 and at most half the (dilated) kernel size; got padding (", pad.first, ", ",
               pad.second, ") for kernel_size (", k.first, ", ", k.second, ")");
  p.kh = k.first; p.kw = k.second;
  p.sh = s.first; p.sw = s.second;
  p.ph = pad.first; p.pw = pad.second;
  p.dh = d.first; p.dw = d.second;
}

}  // namespace

V max_pool2d(const Tensor& x, const IntList& kernel_size, const IntList& stride, const IntList& padding,
             const IntList& dilation, bool ceil_mode) {
  FASTDL_PROFILE("max_pool2d", x);
  const char* op = "max_pool2d";
  check_input(x, op);
  auto k = pair_arg(kernel_size, op, "kernel_size");
  auto s = pair_arg(stride, op, "stride", &kernel_size);
  auto pad = pair_arg(padding, op, "padding"), d = pair_arg(dilation, op, "dilation");
  Pool2dParams w;
  fixed_window(w, x, op, k, s, pad, d);
  const int nd = x.ndim();
  const int64_t H = x.shape()[nd - 2], W = x.shape()[nd - 1];
  const int64_t OH = out_size(H, w.kh, w.sh, w.ph, w.dh, ceil_mode), OW = out_size(W, w.kw, w.sw, w.pw, w.dw, ceil_mode);
  FASTDL_CHECK(OH > 0 && OW > 0, ValueError, op, ": output size is too small: input ", shape_str(x.shape()),
               " with kernel_size (", w.kh, ", ", w.kw, "), padding (", w.ph, ", ", w.pw, ") and dilation (", w.dh,
               ", ", w.dw, ") gives (", OH, ", ", OW, ")");
  Pool P = prepare(x, PoolKind::max, OH, OW);
  w.kind = P.p.kind; w.dt = P.p.dt; w.planes = P.p.planes; w.H = H; w.W = W; w.OH = OH; w.OW = OW; w.x = P.p.x;
  P.p = w;
  return run(std::move(P), x, "MaxPool2DWithIndicesBackward0");
}

Tensor avg_pool2d(const Tensor& x, const IntList& kernel_size, const IntList& stride, const IntList& padding,
                  bool ceil_mode, bool count_include_pad, std::optional<int64_t> divisor_override) {
  FASTDL_PROFILE("avg_pool2d", x);
  const char* op = "avg_pool2d";
  check_input(x, op);
  auto k = pair_arg(kernel_size, op, "kernel_size");
  auto s = pair_arg(stride, op, "stride", &kernel_size);
  auto pad = pair_arg(padding, op, "padding");
  FASTDL_CHECK(!divisor_override || *divisor_override != 0, ValueError, op, ": divisor_override must be non-zero");
  Pool2dParams w;
  fixed_window(w, x, op, k, s, pad, {1, 1});
  const int nd = x.ndim();
  const int64_t H = x.shape()[nd - 2], W = x.shape()[nd - 1];
  const int64_t OH = out_size(H, w.kh, w.sh, w.ph, 1, ceil_mode), OW = out_size(W, w.kw, w.sw, w.pw, 1, ceil_mode);
  FASTDL_CHECK(OH > 0 && OW > 0, ValueError, op, ": output size is too small: input ", shape_str(x.shape()),
               " with kernel_size (", w.kh, ", ", w.kw, ") and padding (", w.ph, ", ", w.pw, ") gives (", OH, ", ",
               OW, ")");
  Pool P = prepare(x, PoolKind::avg, OH, OW);
  w.kind = P.p.kind; w.dt = P.p.dt; w.planes = P.p.planes; w.H = H; w.W = W; w.OH = OH; w.OW = OW; w.x = P.p.x;
  w.count_include_pad = count_include_pad;
  w.divisor_override = divisor_override ? *divisor_override : 0;
  P.p = w;
  return run(std::move(P), x, "AvgPool2DBackward0")[0];
}

namespace {

V adaptive(const Tensor& x, const IntList& output_size, PoolKind kind, const char* op, const char* node) {
  check_input(x, op);
  auto o = pair_arg(output_size, op, "output_size");
  const int nd = x.ndim();
  const int64_t OH = o.first < 0 ? x.shape()[nd - 2] : o.first, OW = o.second < 0 ? x.shape()[nd - 1] : o.second;
  FASTDL_CHECK(OH > 0 && OW > 0, ValueError, op, ": output_size must be positive; got (", o.first, ", ", o.second,
               ") for input ", shape_str(x.shape()));
  return run(prepare(x, kind, OH, OW), x, node);
}

}  // namespace

Tensor adaptive_avg_pool2d(const Tensor& x, const IntList& output_size) {
  FASTDL_PROFILE("adaptive_avg_pool2d", x);
  return adaptive(x, output_size, PoolKind::adaptive_avg, "adaptive_avg_pool2d", "AdaptiveAvgPool2DBackward0")[0];
}

V adaptive_max_pool2d(const Tensor& x, const IntList& output_size) {
  FASTDL_PROFILE("adaptive_max_pool2d", x);
  return adaptive(x, output_size, PoolKind::adaptive_max, "adaptive_max_pool2d", "AdaptiveMaxPool2DBackward0");
}

}  // namespace fastdl
