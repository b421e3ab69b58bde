// scatter, message_passing and segment_softmax: checks (naming the op, the argument and the
// shapes), the cached CSR of the indices (ops/csr.cpp), dispatch to the CPU or CUDA
// kernel, and the backward nodes. Backward runs over the transposed CSR in one fused pass that
// writes grad x and grad edge_weight; nothing (E, F) is ever materialised. Half inputs compute
// in float32. Double backward (create_graph) through these ops is not supported.
#include "ops/message_passing.h"

#include <algorithm>

#include "autograd/node.h"
#include "core/profiler.h"
#include "cpu/message_passing.h"
#include "cuda/cuda_api.h"
#include "ops/csr.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace fastdl {

using V = std::vector<Tensor>;
using cpu::MpReduce;

namespace {

DType compute_dtype(DType dt) { return dt == DType::f64 ? DType::f64 : DType::f32; }

MpReduce parse_reduce(const std::string& r, const char* op) {
  if (r == "sum" || r == "add") return MpReduce::sum;
  if (r == "mean") return MpReduce::mean;
  if (r == "max" || r == "amax") return MpReduce::max;
  if (r == "min" || r == "amin") return MpReduce::min;
  throw ValueError(str_cat(op, ": reduce must be 'sum', 'mean', 'max' or 'min'; got '", r, "'"));
}

void check_float(const Tensor& t, const char* op, const char* name) {
  FASTDL_CHECK(t.defined(), ValueError, op, ": ", name, " is required");
  FASTDL_CHECK(is_floating(t.dtype()), TypeError, op, ": ", name, " must be floating point; got ",
               dtype_name(t.dtype()), " of shape ", shape_str(t.shape()));
}

// A 1-D int64 CPU copy of an index tensor (int32 accepted).
Tensor index_on_cpu(const Tensor& t, const char* op, const char* name) {
  FASTDL_CHECK(t.defined(), ValueError, op, ": ", name, " is required");
  FASTDL_CHECK(is_index(t.dtype()), TypeError, op, ": ", name, " must be int64 (or int32); got ",
               dtype_name(t.dtype()), " of shape ", shape_str(t.shape()));
  Tensor c = detach(t);
  if (!c.device().is_cpu()) c = to_device(c, Device());
  return contiguous(to_dtype(c, DType::i64));
}

cpu::CsrView view_on(const Ref<Csr>& c, Device d) {
  if (d.is_cpu()) return c->view();
  const Tensor* t = c->on_device(d);
  return {t[0].data<int64_t>(), t[1].data<int64_t>(), t[2].data<int64_t>(), c->rows, c->nnz};
}

void run_fwd(DType kt, const cpu::MpParams& p, Device d) {
  if (d.is_cpu()) cpu::mp_kernels().gather_fwd(kt, p);
  else cuda::mp_gather_fwd(kt, p, d.index);
}
void run_bwd(DType kt, const cpu::MpParams& p, Device d) {
  if (d.is_cpu()) cpu::mp_kernels().gather_bwd(kt, p);
  else cuda::mp_gather_bwd(kt, p, d.index);
}

// 1 / degree per row of the forward CSR (0 for empty rows), for the mean's backward.
Tensor inv_degree(const Ref<Csr>& c, DType kt, Device d) {
  Tensor s = empty(Dims{c->rows}, DType::f64);
  const int64_t* rp = c->rowptr.data<int64_t>();
  double* o = s.data<double>();
  for (int64_t r = 0; r < c->rows; ++r) o[r] = rp[r + 1] > rp[r] ? 1.0 / double(rp[r + 1] - rp[r]) : 0.0;
  s = to_dtype(s, kt);
  return d.is_cpu() ? s : to_device(s, d);
}

// The shared forward + backward of scatter and message_passing, on x (N, F) viewed rows.
struct Gather {
  Ref<Csr> csr;
  MpReduce reduce;
  DType kt;
  Device dev;
  int64_t F, H;
  Tensor xc, wc, arg;  // contiguous compute-dtype copies; arg (rows, F) for max/min

  Tensor forward(const Dims& out_shape, const char* op) {
    Tensor out = empty(out_shape, kt, dev);
    const bool ext = reduce == MpReduce::max || reduce == MpReduce::min;
    if (ext) {
      FASTDL_CHECK(csr->nnz < (int64_t(1) << 31), ValueError, op, ": reduce='max'/'min' supports fewer than 2^31 "
                   "edges; got ", csr->nnz);
      arg = empty(Dims{csr->rows, F}, DType::i32, dev);
    }
    cpu::MpParams p;
    p.csr = view_on(csr, dev);
    p.F = F;
    p.H = H;
    p.reduce = reduce;
    p.src = xc.data_ptr();
    p.w = wc.defined() ? wc.data_ptr() : nullptr;
    p.out = out.data_ptr();
    p.arg = ext ? arg.data<int32_t>() : nullptr;
    run_fwd(kt, p, dev);
    return out;
  }

  // -> (gx (N, F) or undefined, gw (E, H) or undefined)
  std::pair<Tensor, Tensor> backward(const Tensor& grad, bool need_x, bool need_w) const {
    Tensor g = contiguous(to_dtype(grad, kt));
    Ref<Csr> t = csr->transposed();
    Tensor scale = reduce == MpReduce::mean ? inv_degree(csr, kt, dev) : Tensor();
    Tensor gx = need_x ? empty(Dims{csr->cols, F}, kt, dev) : Tensor();
    Tensor gw = need_w ? empty(Dims{csr->nnz, H}, kt, dev) : Tensor();
    cpu::MpParams p;
    p.csr = view_on(t, dev);
    p.F = F;
    p.H = H;
    p.reduce = reduce;
    p.src = g.data_ptr();
    p.w = wc.defined() ? wc.data_ptr() : nullptr;
    p.out = need_x ? gx.data_ptr() : nullptr;
    p.arg = arg.defined() ? arg.data<int32_t>() : nullptr;
    p.scale = scale.defined() ? scale.data_ptr() : nullptr;
    p.x = need_w ? xc.data_ptr() : nullptr;
    p.gw = need_w ? gw.data_ptr() : nullptr;
    run_bwd(kt, p, dev);
    return {gx, gw};
  }
};

// inv_degree of each entry's row, idx (E,) naming the rows: 'mean''s divisor, a constant for the
// create_graph gradients below, shaped (E, 1, ...) of rank dims to broadcast against (E, ...).
Tensor inv_degree_per_entry(const Ref<Csr>& c, const Tensor& idx, DType kt, Device d, int dims) {
  IntList sh{idx.numel()};
  while (int(sh.size()) < dims) sh.push_back(1);
  return reshape(index_select(inv_degree(c, kt, d), 0, idx), sh);
}

// message_passing's gradients for create_graph, from differentiable ops: out[d] = sum over edges
// e = (s -> d) of c_e x[s] with c_e = w_e (1 without weights), over the in-degree of d for 'mean';
// so gx[s] = sum_e c_e g[d], and gw_e = <x[s], g[d]> (over the in-degree for 'mean'), summed
// over the feature dims past the weight's (E,) or (E, heads). mean_csr: the forward CSR (its
// in-degrees) for 'mean', null for 'sum'.
std::vector<Tensor> message_passing_backward_graph(const Tensor& g, const Tensor& x, const Tensor& w,
                                                   const Tensor& edge_index, const Dims& xs, const Ref<Csr>& mean_csr,
                                                   bool need_x, bool need_w) {
  const bool mean = bool(mean_csr);
  const int nd = int(xs.size());
  const Tensor src = to_dtype(select(edge_index, 0, 0), DType::i64), dst = to_dtype(select(edge_index, 0, 1), DType::i64);
  Tensor gd = index_select(g, 0, dst);  // (E, ...)
  auto edge_col = [&](const Tensor& t) {  // (E,) or (E, H) -> broadcastable against gd
    IntList sh = t.shape().vec();
    while (int(sh.size()) < nd) sh.push_back(1);
    return reshape(t, sh);
  };
  const Tensor inv_deg = mean ? inv_degree_per_entry(mean_csr, dst, g.dtype(), g.device(), nd) : Tensor();
  Tensor gx, gw;
  if (need_x) {
    Tensor m = gd;
    if (w.defined()) m = mul(m, edge_col(w));
    if (mean) m = mul(m, inv_deg);
    Tensor idx = expand(edge_col(src), m.shape().vec());
    gx = scatter_add(zeros(xs, m.dtype(), m.device()), 0, idx, m);
  }
  if (need_w) {
    Tensor p = mul(index_select(x, 0, src), gd);
    if (mean) p = mul(p, inv_deg);
    IntList rest;
    for (int d = w.ndim(); d < p.ndim(); ++d) rest.push_back(d);
    gw = rest.empty() ? p : sum(p, rest, false);
  }
  return {gx, gw};
}

int64_t index_max_plus_one(const Tensor& idx) {
  const int64_t* p = idx.data<int64_t>();
  int64_t m = -1;
  for (int64_t k = 0; k < idx.numel(); ++k) m = std::max(m, p[k]);
  return m + 1;
}

}  // namespace

Tensor message_passing(const Tensor& x, const Tensor& edge_index, const Tensor& w, const std::string& reduce,
                       std::optional<int64_t> num_nodes) {
  FASTDL_PROFILE("message_passing", x, edge_index, w);
  const char* op = "message_passing";
  const MpReduce R = parse_reduce(reduce, op);
  check_float(x, op, "x");
  FASTDL_CHECK(x.ndim() >= 1, ValueError, op, ": x must have shape (num_nodes, ...); got ", shape_str(x.shape()));
  FASTDL_CHECK(edge_index.defined() && edge_index.ndim() == 2 && edge_index.shape()[0] == 2, ValueError, op,
               ": edge_index must have shape (2, E); got ",
               edge_index.defined() ? shape_str(edge_index.shape()) : std::string("None"));
  check_same_device(x, edge_index, op);
  const int64_t N = x.shape()[0], E = edge_index.shape()[1];
  const int64_t M = num_nodes ? *num_nodes : N;
  FASTDL_CHECK(M >= 0, ValueError, op, ": num_nodes must be >= 0; got ", M);
  int64_t F = 1;
  for (int d = 1; d < x.ndim(); ++d) F *= x.shape()[d];
  int64_t H = 1;
  if (w.defined()) {
    check_float(w, op, "edge_weight");
    check_same_device(x, w, op);
    const bool ok1 = w.ndim() == 1 && w.shape()[0] == E;
    const bool okh = w.ndim() == 2 && w.shape()[0] == E && x.ndim() >= 2 && x.shape()[1] == w.shape()[1];
    FASTDL_CHECK(ok1 || okh, ValueError, op, ": edge_weight must have shape (E,) = (", E,
                 ",) or (E, heads) with x of shape (N, heads, ...); got edge_weight ", shape_str(w.shape()),
                 ", x ", shape_str(x.shape()), ", edge_index ", shape_str(edge_index.shape()));
    if (okh) H = w.shape()[1];
  }
  Tensor ei = index_on_cpu(edge_index, op, "edge_index");
  Ref<Csr> csr = csr_for(select(ei, 0, 0), select(ei, 0, 1), N, M, op, "edge_index[0]", "edge_index[1]");

  Gather G{csr, R, compute_dtype(x.dtype()), x.device(), F, H, {}, {}, {}};
  G.xc = contiguous(to_dtype(detach(x), G.kt));
  if (w.defined()) G.wc = contiguous(to_dtype(detach(w), G.kt));
  Dims oshape = x.shape();
  oshape[0] = M;
  Tensor out = G.forward(oshape, op);
  if (out.dtype() != x.dtype()) out = to_dtype(out, x.dtype());
  const bool need_x = autograd::any_requires_grad(x), need_w = autograd::any_requires_grad(w);
  if (need_x || need_w) {
    if (!need_w) G.xc = Tensor();  // x is only needed for the weight gradient
    const Dims xs = x.shape(), ws = w.defined() ? w.shape() : Dims();
    const DType xdt = x.dtype(), wdt = w.defined() ? w.dtype() : x.dtype();
    const bool linear = R == MpReduce::sum || R == MpReduce::mean;
    // create_graph (sum / mean): the gradients composed from differentiable ops on the edge list
    Tensor ei = linear ? edge_index : Tensor(), xg = need_w && linear ? x : Tensor(), wg = linear ? w : Tensor();
    autograd::record("MessagePassingBackward0", {x, w}, out,
                     [G, xs, ws, xdt, wdt, need_x, need_w, ei, xg, wg, linear](V& g) {
      if (linear && autograd::grad_enabled()) {
        V r = message_passing_backward_graph(g[0], xg, wg, ei, xs, G.reduce == MpReduce::mean ? G.csr : Ref<Csr>(),
                                             need_x, need_w);
        return V{need_x ? to_dtype(r[0], xdt) : Tensor(),
                 need_w ? to_dtype(reshape(r[1], IntList(ws.begin(), ws.end())), wdt) : Tensor()};
      }
      auto [gx, gw] = G.backward(g[0], need_x, need_w);
      return V{need_x ? to_dtype(reshape(gx, IntList(xs.begin(), xs.end())), xdt) : Tensor(),
               need_w ? to_dtype(reshape(gw, IntList(ws.begin(), ws.end())), wdt) : Tensor()};
    }, {need_w ? x : Tensor(), need_x ? w : Tensor()});
    if (!linear) autograd::mark_no_double_backward(out);
  }
  return out;
}

Tensor scatter(const Tensor& src, const Tensor& index, int64_t dim, std::optional<int64_t> dim_size,
               const std::string& reduce) {
  FASTDL_PROFILE("scatter", src, index);
  const char* op = "scatter";
  const MpReduce R = parse_reduce(reduce, op);
  check_float(src, op, "src");
  FASTDL_CHECK(index.defined(), ValueError, op, ": index is required");
  check_same_device(src, index, op);
  const int nd = std::max(src.ndim(), 1);
  const int d = wrap_dim(dim, nd, op);
  const int64_t n = src.ndim() ? src.shape()[d] : 1;
  bool ok = index.ndim() == 1 && index.shape()[0] == n;
  if (!ok && index.ndim() == src.ndim() && src.ndim() > 1) {
    ok = true;
    for (int k = 0; k < src.ndim(); ++k) ok = ok && (k == d ? index.shape()[k] == n : index.shape()[k] == 1);
  }
  FASTDL_CHECK(ok, ValueError, op, ": index must have shape (", n, ",) (src.shape[", d, "]) or broadcast to src "
               "along dim ", d, "; got index ", shape_str(index.shape()), ", src ", shape_str(src.shape()));
  Tensor idx = reshape(index_on_cpu(index, op, "index"), {n});
  const int64_t M = dim_size ? *dim_size : std::max<int64_t>(index_max_plus_one(idx), 0);
  FASTDL_CHECK(M >= 0, ValueError, op, ": dim_size must be >= 0; got ", M);
  Ref<Csr> csr = csr_for(Tensor(), idx, n, M, op, "", "index");

  const DType kt = compute_dtype(src.dtype());
  Tensor s0 = src.ndim() ? movedim(to_dtype(detach(src), kt), d, 0) : reshape(to_dtype(detach(src), kt), {1});
  int64_t F = 1;  // the row width from the shape: with no rows (n == 0) numel() cannot give it
  for (size_t k = 1; k < s0.shape().size(); ++k) F *= s0.shape()[k];
  Dims oshape = s0.shape();
  oshape[0] = M;
  Gather G{csr, R, kt, src.device(), F, 1, contiguous(s0), {}, {}};
  Tensor out = G.forward(oshape, op);
  if (src.ndim()) out = contiguous(movedim(out, 0, d));
  if (out.dtype() != src.dtype()) out = to_dtype(out, src.dtype());
  if (autograd::any_requires_grad(src)) {
    G.xc = Tensor();
    const Dims ss = s0.shape();
    const DType sdt = src.dtype();
    const bool scalar = src.ndim() == 0;
    const bool linear = R == MpReduce::sum || R == MpReduce::mean;
    const Tensor index_g = linear ? index : Tensor();  // on src's device
    autograd::record("ScatterBackward0", {src}, out, [G, ss, sdt, d, scalar, index_g, n, linear](V& g) {
      Tensor go = scalar ? g[0] : movedim(g[0], d, 0);
      Tensor gx;
      if (linear && autograd::grad_enabled()) {  // create_graph: gx[e] = g[index[e]] (over its count for 'mean')
        const Tensor idx = to_dtype(reshape(index_g, {n}), DType::i64);
        gx = index_select(go, 0, idx);
        if (G.reduce == MpReduce::mean) gx = mul(gx, inv_degree_per_entry(G.csr, idx, go.dtype(), go.device(), gx.ndim()));
        gx = reshape(gx, IntList(ss.begin(), ss.end()));
      } else {
        gx = reshape(G.backward(go, true, false).first, IntList(ss.begin(), ss.end()));
      }
      gx = scalar ? reshape(gx, {}) : movedim(gx, 0, d);
      return V{to_dtype(gx, sdt)};
    });
    if (!linear) autograd::mark_no_double_backward(out);
  }
  return out;
}

Tensor segment_softmax(const Tensor& src, const Tensor& index, std::optional<int64_t> num_nodes) {
  FASTDL_PROFILE("segment_softmax", src, index);
  const char* op = "segment_softmax";
  check_float(src, op, "src");
  FASTDL_CHECK(src.ndim() >= 1, ValueError, op, ": src must have shape (E, ...); got ", shape_str(src.shape()));
  FASTDL_CHECK(index.defined() && index.ndim() == 1 && index.shape()[0] == src.shape()[0], ValueError, op,
               ": index must have shape (E,) = (", src.shape()[0], ",); got ",
               index.defined() ? shape_str(index.shape()) : std::string("None"), " for src ", shape_str(src.shape()));
  check_same_device(src, index, op);
  const int64_t E = src.shape()[0];
  Tensor idx = index_on_cpu(index, op, "index");
  const int64_t M = num_nodes ? *num_nodes : index_max_plus_one(idx);
  FASTDL_CHECK(M >= 0, ValueError, op, ": num_nodes must be >= 0; got ", M);
  Ref<Csr> csr = csr_for(Tensor(), idx, E, M, op, "", "index");
  const DType kt = compute_dtype(src.dtype());
  const Device dev = src.device();
  const int64_t H = E ? src.numel() / E : 1;
  Tensor sc = contiguous(to_dtype(detach(src), kt));
  Tensor y = empty(src.shape(), kt, dev);
  cpu::SegSoftmaxParams p;
  p.csr = view_on(csr, dev);
  p.H = H;
  p.s = sc.data_ptr();
  p.y = y.data_ptr();
  if (dev.is_cpu()) cpu::mp_kernels().seg_softmax_fwd(kt, p);
  else cuda::seg_softmax_fwd(kt, p, dev.index);
  Tensor out = y.dtype() == src.dtype() ? y : to_dtype(y, src.dtype());
  if (autograd::any_requires_grad(src)) {
    const DType sdt = src.dtype();
    // The backward needs the softmax itself; for float32 / float64 `out` is `y` (one impl), and
    // a node holding its own output's impl is a cycle (impl -> grad_fn -> node -> impl) that is
    // never freed. Save a separate handle on the same storage instead.
    Tensor ys = detach(y);
    autograd::record("SegmentSoftmaxBackward0", {src}, out, [csr, y = std::move(ys), kt, H, dev, sdt](V& g) {
      Tensor gc = contiguous(to_dtype(g[0], kt));
      Tensor gs = empty(y.shape(), kt, dev);
      cpu::SegSoftmaxParams q;
      q.csr = view_on(csr, dev);
      q.H = H;
      q.y = const_cast<void*>(static_cast<const void*>(y.data_ptr()));
      q.g = gc.data_ptr();
      q.gs = gs.data_ptr();
      if (dev.is_cpu()) cpu::mp_kernels().seg_softmax_bwd(kt, q);
      else cuda::seg_softmax_bwd(kt, q, dev.index);
      return V{to_dtype(gs, sdt)};
    }, {out});
    autograd::mark_no_double_backward(out);
  }
  return out;
}

}  // namespace fastdl
