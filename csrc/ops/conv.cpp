// F.conv2d and F.conv_transpose2d: checks, output shape, dispatch to the conv kernels by device
// (cpu/conv.h; CUDA through cuda_api.h), and the backward nodes. A transposed convolution is a
// conv2d's input gradient, so both ops run the same three kernels with x and y swapped.
#include "cpu/conv.h"

#include "autograd/node.h"
#include "core/profiler.h"
#include "cuda/cuda_api.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace fastdl {

namespace {

using V = std::vector<Tensor>;

// The layer's geometry after the argument checks.
struct Geometry {
  int64_t sh, sw, ph0, ph1, pw0, pw1, dh, dw;
};

void pair_arg(const IntList& v, const char* op, const char* name, int64_t& a, int64_t& b) {
  FASTDL_CHECK(v.size() == 1 || v.size() == 2, ValueError, op, ": ", name, " must be an int or a pair; got ", v.size(),
               " values");
  a = v[0];
  b = v.size() == 2 ? v[1] : v[0];
}

Geometry geometry(const char* op, const IntList& stride, const IntList& padding, const IntList& dilation) {
  Geometry g{};
  pair_arg(stride, op, "stride", g.sh, g.sw);
  pair_arg(dilation, op, "dilation", g.dh, g.dw);
  FASTDL_CHECK(padding.size() == 1 || padding.size() == 2 || padding.size() == 4, ValueError, op,
               ": padding must be an int, a pair or (top, bottom, left, right); got ", padding.size(), " values");
  if (padding.size() == 4) {
    g.ph0 = padding[0]; g.ph1 = padding[1]; g.pw0 = padding[2]; g.pw1 = padding[3];
  } else {
    pair_arg(padding, op, "padding", g.ph0, g.pw0);
    g.ph1 = g.ph0; g.pw1 = g.pw0;
  }
  FASTDL_CHECK(g.sh >= 1 && g.sw >= 1, ValueError, op, ": stride must be positive; got (", g.sh, ", ", g.sw, ")");
  FASTDL_CHECK(g.dh >= 1 && g.dw >= 1, ValueError, op, ": dilation must be positive; got (", g.dh, ", ", g.dw, ")");
  FASTDL_CHECK(g.ph0 >= 0 && g.ph1 >= 0 && g.pw0 >= 0 && g.pw1 >= 0, ValueError, op,
               ": padding must be non-negative; got (", g.ph0, ", ", g.ph1, ", ", g.pw0, ", ", g.pw1, ")");
  return g;
}

// dtype the kernels run in: float64 stays; bfloat16 / float16 on CUDA stay too (the tensor-core
// kernels, fp32 accumulation, outputs and gradients in the operand dtype); every other floating
// type (halves on the CPU included) runs in float32.
DType check_dtypes(const char* op, const Tensor& x, const Tensor& w, const Tensor& b) {
  FASTDL_CHECK(is_floating(x.dtype()), TypeError, op, ": input must be floating point; got dtype ", dtype_name(x.dtype()));
  FASTDL_CHECK(x.dtype() == w.dtype(), TypeError, op, ": input and weight must have the same dtype; got ",
               dtype_name(x.dtype()), " and ", dtype_name(w.dtype()));
  FASTDL_CHECK(!b.defined() || b.dtype() == x.dtype(), TypeError, op, ": bias must have the input's dtype ",
               dtype_name(x.dtype()), "; got ", dtype_name(b.dtype()));
  check_same_device(x, w, op);
  if (b.defined()) check_same_device(x, b, op);
  if (x.device().is_cuda() && is_half(x.dtype())) return x.dtype();
  return x.dtype() == DType::f64 ? DType::f64 : DType::f32;
}

// Dispatch by device: the CPU table for the ISA in force, or the CUDA kernels.
void run_fwd(const cpu::Conv2dParams& p, Device d) {
  if (d.is_cpu()) cpu::conv_kernels().fwd(p); else cuda::conv2d_fwd(p, d.index);
}
void run_bwd_input(const cpu::Conv2dParams& p, Device d) {
  if (d.is_cpu()) cpu::conv_kernels().bwd_input(p); else cuda::conv2d_bwd_input(p, d.index);
}
void run_bwd_weight(const cpu::Conv2dParams& p, Device d) {
  if (d.is_cpu()) cpu::conv_kernels().bwd_weight(p); else cuda::conv2d_bwd_weight(p, d.index);
}
void bias_add(DType dt, void* y, const void* b, int64_t N, int64_t K, int64_t HW, Device d) {
  if (d.is_cpu()) cpu::conv_bias_add(dt, y, b, N, K, HW); else cuda::conv_bias_add(dt, y, b, N, K, HW, d.index);
}
void bias_grad(DType dt, const void* gy, void* gb, int64_t N, int64_t K, int64_t HW, Device d) {
  if (d.is_cpu()) cpu::conv_bias_grad(dt, gy, gb, N, K, HW); else cuda::conv_bias_grad(dt, gy, gb, N, K, HW, d.index);
}

Tensor prep(const Tensor& t, DType kt) { return t.defined() ? contiguous(to_dtype(detach(t), kt)) : Tensor(); }
const void* ptr(const Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; }
Tensor back(const Tensor& t, DType dt) { return t.defined() && t.dtype() != dt ? to_dtype(t, dt) : t; }

// Params for a conv2d whose input is (N, C, H, W) and output (N, K, OH, OW), weight (K, C/G, R, S).
cpu::Conv2dParams params(const Geometry& g, DType kt, int64_t N, int64_t C, int64_t H, int64_t W, const Tensor& w,
                         int64_t OH, int64_t OW, int64_t groups) {
  cpu::Conv2dParams p;
  p.N = N; p.C = C; p.H = H; p.W = W;
  p.K = w.shape()[0]; p.R = w.shape()[2]; p.S = w.shape()[3];
  p.OH = OH; p.OW = OW;
  p.sh = g.sh; p.sw = g.sw; p.ph = g.ph0; p.pw = g.pw0; p.dh = g.dh; p.dw = g.dw;
  p.groups = groups; p.dt = kt;
  return p;
}

// Runs fn on the batched (4-D) form of x and squeezes an unbatched (3-D) input back.
template <class F> Tensor batched(const char* op, const Tensor& x, F&& fn) {
  FASTDL_CHECK(x.ndim() == 3 || x.ndim() == 4, ValueError, op,
               ": input must be (N, C, H, W) or unbatched (C, H, W); got shape ", shape_str(x.shape()));
  if (x.ndim() == 4) return fn(x);
  return squeeze(fn(unsqueeze(x, 0)), IntList{0});
}

void check_weight(const char* op, const Tensor& x, const Tensor& w, int64_t groups, bool transposed) {
  FASTDL_CHECK(w.ndim() == 4, ValueError, op, ": weight must be 4-D ", transposed ? "(C_in, C_out / groups, kH, kW)"
               : "(C_out, C_in / groups, kH, kW)", "; got shape ", shape_str(w.shape()));
  FASTDL_CHECK(groups >= 1, ValueError, op, ": groups must be positive; got ", groups);
  const int64_t C = x.shape()[1];
  FASTDL_CHECK(w.shape()[2] >= 1 && w.shape()[3] >= 1, ValueError, op, ": kernel size must be positive; got weight shape ",
               shape_str(w.shape()));
  if (!transposed) {
    FASTDL_CHECK(w.shape()[0] % groups == 0, ValueError, op, ": out channels (weight shape ", shape_str(w.shape()),
                 ") must be divisible by groups=", groups);
    FASTDL_CHECK(w.shape()[1] * groups == C, ValueError, op, ": weight of shape ", shape_str(w.shape()), " with groups=",
                 groups, " expects ", w.shape()[1] * groups, " input channels; got input of shape ", shape_str(x.shape()));
  } else {
    FASTDL_CHECK(C % groups == 0, ValueError, op, ": input channels ", C, " (input shape ", shape_str(x.shape()),
                 ") must be divisible by groups=", groups);
    FASTDL_CHECK(w.shape()[0] == C, ValueError, op, ": weight of shape ", shape_str(w.shape()), " expects ", w.shape()[0],
                 " input channels; got input of shape ", shape_str(x.shape()));
  }
}

V conv2d_backward_graph(const Tensor& x, const Tensor& w, const Tensor& gy, const Geometry& g, const cpu::Conv2dParams& p,
                        bool need_x, bool need_w, bool need_b);

Tensor conv2d4(const Tensor& x, const Tensor& w, const Tensor& b, const Geometry& g, int64_t groups) {
  const char* op = "conv2d";
  check_weight(op, x, w, groups, false);
  const DType kt = check_dtypes(op, x, w, b);
  const Device dev = x.device();
  const int64_t N = x.shape()[0], C = x.shape()[1], H = x.shape()[2], W = x.shape()[3];
  const int64_t K = w.shape()[0], R = w.shape()[2], S = w.shape()[3];
  FASTDL_CHECK(!b.defined() || (b.ndim() == 1 && b.shape()[0] == K), ValueError, op, ": bias must have shape (", K,
               ",); got shape ", shape_str(b.shape()));
  const int64_t eh = g.dh * (R - 1) + 1, ew = g.dw * (S - 1) + 1;  // dilated kernel extent
  const int64_t Hp = H + g.ph0 + g.ph1, Wp = W + g.pw0 + g.pw1;
  FASTDL_CHECK(Hp >= eh && Wp >= ew, ValueError, op, ": the (dilated) kernel ", eh, "x", ew,
               " is larger than the padded input ", Hp, "x", Wp, "; input shape ", shape_str(x.shape()), ", weight shape ",
               shape_str(w.shape()));
  const int64_t OH = (Hp - eh) / g.sh + 1, OW = (Wp - ew) / g.sw + 1;
  Tensor xc = prep(x, kt), wc = prep(w, kt), bc = prep(b, kt);
  Tensor y = empty(Dims{N, K, OH, OW}, kt, x.device());
  cpu::Conv2dParams p = params(g, kt, N, C, H, W, wc, OH, OW, groups);
  if (y.numel() > 0) {
    if (C == 0) {
      fill_(y, 0.0);
      if (bc.defined()) bias_add(kt, y.data_ptr(), bc.data_ptr(), N, K, OH * OW, dev);
    } else {
      p.x = xc.data_ptr(); p.w = wc.data_ptr(); p.b = ptr(bc); p.y = y.data_ptr();
      run_fwd(p, dev);
    }
  }
  Tensor res = back(y, x.dtype());
  if (!autograd::any_requires_grad({x, w, b})) return res;
  const bool need_x = x.requires_grad(), need_w = w.requires_grad(), need_b = b.defined() && b.requires_grad();
  const DType dx = x.dtype(), dw = w.dtype();
  autograd::record("ConvolutionBackward0", {x, w, b}, res,
                   [p, xs = need_w ? xc : Tensor(), ws = need_x ? wc : Tensor(), need_x, need_w, need_b, kt, dx,
                    dw, dev, xg = need_w ? x : Tensor(), wg = need_x ? w : Tensor(), g](V& gr) mutable {
    if (autograd::grad_enabled()) return conv2d_backward_graph(xg, wg, gr[0], g, p, need_x, need_w, need_b);
    Tensor gy = contiguous(to_dtype(gr[0], kt));
    Tensor gx, gw, gb;
    p.gy = gy.data_ptr();
    if (need_x) {
      gx = empty(Dims{p.N, p.C, p.H, p.W}, kt, gy.device());
      if (gx.numel() > 0) {
        if (gy.numel() == 0) fill_(gx, 0.0);
        else { p.w = ws.data_ptr(); p.gx = gx.data_ptr(); run_bwd_input(p, dev); }
      }
    }
    if (need_b) gb = empty(Dims{p.K}, kt, gy.device());
    if (need_w) {
      gw = empty(Dims{p.K, p.C / p.groups, p.R, p.S}, kt, gy.device());
      if (gw.numel() > 0) {
        if (gy.numel() == 0 || p.N == 0) fill_(gw, 0.0);
        else {
          p.x = xs.data_ptr(); p.gw = gw.data_ptr(); p.gb = gb.defined() ? gb.data_ptr() : nullptr;
          run_bwd_weight(p, dev);
        }
      }
    }
    if (need_b && (!need_w || gw.numel() == 0 || p.N == 0)) {
      if (p.N * p.OH * p.OW == 0) fill_(gb, 0.0);
      else bias_grad(kt, gy.data_ptr(), gb.data_ptr(), p.N, p.K, p.OH * p.OW, dev);
    }
    return V{back(gx, dx), back(gw, dw), back(gb, dw)};
  }, {need_w ? x : Tensor(), need_x ? w : Tensor()});
  return res;
}

// create_graph: conv2d's backward as differentiable ops. gx: a transposed conv of gy, unpadded,
// then cropped to x (rows no window reached get zeros); gw: per group, a conv2d of x (channels
// as batch) with gy as the kernel, stride and dilation swapped, cropped to the kernel size.
// x is read only for gw, w only for gx (the fast path saves no more); shapes come from p.
V conv2d_backward_graph(const Tensor& x, const Tensor& w, const Tensor& gy, const Geometry& g, const cpu::Conv2dParams& p,
                        bool need_x, bool need_w, bool need_b) {
  const int64_t C = p.C, H = p.H, W = p.W, K = p.K, R = p.R, S = p.S, groups = p.groups;
  Tensor gx, gw, gb;
  if (need_x) {
    gx = conv_transpose2d(gy, w, Tensor(), {g.sh, g.sw}, {0, 0}, {0, 0}, groups, {g.dh, g.dw});
    auto fit = [&](Tensor t, int d, int64_t p0, int64_t n) {  // padded-input extent -> x's rows
      int64_t need = p0 + n - t.shape()[d];
      if (need > 0) {
        Dims z = t.shape();
        z[d] = need;
        t = cat({t, zeros(z, t.dtype(), t.device())}, d);
      }
      return narrow(t, d, p0, n);
    };
    gx = fit(fit(gx, 2, g.ph0, H), 3, g.pw0, W);
  }
  if (need_w) {
    const int64_t Cg = C / groups, Kg = K / groups;
    V parts;
    for (int64_t i = 0; i < groups; ++i) {
      Tensor xi = transpose(narrow(x, 1, i * Cg, Cg), 0, 1), gi = transpose(narrow(gy, 1, i * Kg, Kg), 0, 1);
      Tensor r = conv2d(xi, gi, Tensor(), {g.dh, g.dw}, {g.ph0, g.ph1, g.pw0, g.pw1}, {g.sh, g.sw}, 1);
      parts.push_back(transpose(narrow(narrow(r, 2, 0, R), 3, 0, S), 0, 1));
    }
    gw = groups == 1 ? parts[0] : cat(parts, 0);
  }
  if (need_b) gb = sum(gy, {0, 2, 3}, false);
  return V{gx, gw, gb};
}

Tensor conv_transpose2d4(const Tensor& x, const Tensor& w, const Tensor& b, const Geometry& g, int64_t oph, int64_t opw,
                         int64_t groups) {
  const char* op = "conv_transpose2d";
  check_weight(op, x, w, groups, true);
  const DType kt = check_dtypes(op, x, w, b);
  const Device dev = x.device();
  FASTDL_CHECK(g.ph0 == g.ph1 && g.pw0 == g.pw1, ValueError, op, ": padding must be symmetric");
  FASTDL_CHECK(oph >= 0 && opw >= 0 && (oph < g.sh || oph < g.dh) && (opw < g.sw || opw < g.dw), ValueError, op,
               ": output_padding (", oph, ", ", opw, ") must be non-negative and smaller than either stride (", g.sh, ", ",
               g.sw, ") or dilation (", g.dh, ", ", g.dw, ")");
  const int64_t N = x.shape()[0], Cin = x.shape()[1], H = x.shape()[2], W = x.shape()[3];
  const int64_t Cout = w.shape()[1] * groups, R = w.shape()[2], S = w.shape()[3];
  FASTDL_CHECK(!b.defined() || (b.ndim() == 1 && b.shape()[0] == Cout), ValueError, op, ": bias must have shape (", Cout,
               ",); got shape ", shape_str(b.shape()));
  const int64_t OH = (H - 1) * g.sh - 2 * g.ph0 + g.dh * (R - 1) + oph + 1;
  const int64_t OW = (W - 1) * g.sw - 2 * g.pw0 + g.dw * (S - 1) + opw + 1;
  FASTDL_CHECK(OH >= 1 && OW >= 1 && H >= 1 && W >= 1, ValueError, op, ": the output size ", OH, "x", OW,
               " is too small; input shape ", shape_str(x.shape()), ", weight shape ", shape_str(w.shape()));
  Tensor xc = prep(x, kt), wc = prep(w, kt), bc = prep(b, kt);
  Tensor y = empty(Dims{N, Cout, OH, OW}, kt, x.device());
  // The equivalent conv2d: input (N, Cout, OH, OW) -> output (N, Cin, H, W), weight (Cin, Cout/G, R, S).
  cpu::Conv2dParams p = params(g, kt, N, Cout, OH, OW, wc, H, W, groups);
  if (y.numel() > 0) {
    if (Cin == 0) fill_(y, 0.0);
    else { p.gy = xc.data_ptr(); p.w = wc.data_ptr(); p.gx = y.data_ptr(); run_bwd_input(p, dev); }
    if (bc.defined()) bias_add(kt, y.data_ptr(), bc.data_ptr(), N, Cout, OH * OW, dev);
  }
  Tensor res = back(y, x.dtype());
  if (!autograd::any_requires_grad({x, w, b})) return res;
  const bool need_x = x.requires_grad(), need_w = w.requires_grad(), need_b = b.defined() && b.requires_grad();
  const DType dx = x.dtype(), dw = w.dtype();
  autograd::record("ConvolutionBackward0", {x, w, b}, res,
                   [p, xs = need_w ? xc : Tensor(), ws = need_x ? wc : Tensor(), need_x, need_w, need_b, kt, dx,
                    dw, dev, xg = need_w ? x : Tensor(), wg = need_x ? w : Tensor(), g](V& gr) mutable {
    if (autograd::grad_enabled()) {  // create_graph: gx a conv2d of go; gw conv2d's weight gradient, x as gy
      const Tensor& go = gr[0];
      Tensor gx = need_x ? conv2d(go, wg, Tensor(), {g.sh, g.sw}, {g.ph0, g.pw0}, {g.dh, g.dw}, p.groups) : Tensor();
      if (gx.defined()) gx = narrow(narrow(gx, 2, 0, p.OH), 3, 0, p.OW);
      Tensor gw = need_w ? conv2d_backward_graph(go, Tensor(), xg, g, p, false, true, false)[1] : Tensor();
      return V{gx, gw, need_b ? sum(go, {0, 2, 3}, false) : Tensor()};
    }
    Tensor go = contiguous(to_dtype(gr[0], kt));  // the equivalent conv2d's input
    Tensor gx, gw, gb;
    if (need_x) {  // a conv2d forward of the output gradient
      gx = empty(Dims{p.N, p.K, p.OH, p.OW}, kt, go.device());
      if (gx.numel() > 0) {
        if (go.numel() == 0) fill_(gx, 0.0);
        else { p.x = go.data_ptr(); p.w = ws.data_ptr(); p.b = nullptr; p.y = gx.data_ptr(); run_fwd(p, dev); }
      }
    }
    if (need_w) {
      gw = empty(Dims{p.K, p.C / p.groups, p.R, p.S}, kt, go.device());
      if (gw.numel() > 0) {
        if (go.numel() == 0 || xs.numel() == 0) fill_(gw, 0.0);
        else {
          p.x = go.data_ptr(); p.gy = xs.data_ptr(); p.gw = gw.data_ptr(); p.gb = nullptr;
          run_bwd_weight(p, dev);
        }
      }
    }
    if (need_b) {
      gb = empty(Dims{p.C}, kt, go.device());
      if (go.numel() == 0) fill_(gb, 0.0);
      else bias_grad(kt, go.data_ptr(), gb.data_ptr(), p.N, p.C, p.H * p.W, dev);
    }
    return V{back(gx, dx), back(gw, dw), back(gb, dw)};
  }, {need_w ? x : Tensor(), need_x ? w : Tensor()});
  return res;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const IntList& stride, const IntList& padding,
              const IntList& dilation, int64_t groups) {
  FASTDL_PROFILE("conv2d", x, w, b);
  const Geometry g = geometry("conv2d", stride, padding, dilation);
  return batched("conv2d", x, [&](const Tensor& x4) { return conv2d4(x4, w, b, g, groups); });
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b, const IntList& stride, const IntList& padding,
                        const IntList& output_padding, int64_t groups, const IntList& dilation) {
  FASTDL_PROFILE("conv_transpose2d", x, w, b);
  const Geometry g = geometry("conv_transpose2d", stride, padding, dilation);
  int64_t oph, opw;
  pair_arg(output_padding, "conv_transpose2d", "output_padding", oph, opw);
  return batched("conv_transpose2d", x, [&](const Tensor& x4) { return conv_transpose2d4(x4, w, b, g, oph, opw, groups); });
}

}  // namespace fastdl
