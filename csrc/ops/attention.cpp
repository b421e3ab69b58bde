// F.scaled_dot_product_attention: checks, broadcasting of batch dims and the mask, dtype, and
// the backward node; the kernels (cpu/attention.h) see one flat (batch, heads) index and strides.
#include "cpu/attention.h"

#include <cmath>

#include "autograd/node.h"
#include "core/profiler.h"
#include "cuda/cuda_api.h"
#include "ops/dispatch.h"
#include "ops/ops.h"

namespace fastdl {

namespace {

using V = std::vector<Tensor>;

Dims prefix(const Tensor& t) {  // batch dims: everything before (heads, L, E)
  Dims d;
  for (int i = 0; i + 3 < t.ndim(); ++i) d.push_back(t.shape()[i]);
  return d;
}
Dims concat(const Dims& a, std::initializer_list<int64_t> b) {
  Dims d = a;
  for (int64_t x : b) d.push_back(x);
  return d;
}

// t viewed as (batch, rows...) with its nb leading dims folded into one stride; copies when
// they don't fold (e.g. a batch broadcast in one dim only) or when the last dim is strided.
Tensor fold(Tensor t, int nb, int64_t& sb) {
  const int n = t.ndim();
  bool ok = n == 0 || t.shape()[n - 1] <= 1 || t.strides()[n - 1] == 1;
  int64_t s = 0;
  bool first = true;
  for (int d = nb - 1; d >= 0 && ok; --d) {
    if (t.shape()[d] == 1) continue;
    if (first) { s = t.strides()[d]; first = false; continue; }
    int64_t inner = 1;  // size of the folded dims after d that are not 1
    for (int e = d + 1; e < nb; ++e) inner *= t.shape()[e];
    ok = t.strides()[d] == s * inner;
  }
  if (!ok) {
    t = contiguous(t);
    int64_t inner = 1;
    for (int d = nb; d < n; ++d) inner *= t.shape()[d];
    s = inner;
  }
  sb = s;
  return t;
}

IntList list(const Dims& d) { return IntList(d.begin(), d.end()); }
int64_t at(const Tensor& t, int d) { return t.strides()[t.ndim() + d]; }  // stride of dim d < 0

void run(bool fwd, const cpu::AttentionParams& p, Device dev) {
  if (dev.is_cpu()) {
    if (fwd) cpu::attention_kernels().fwd(p);
    else cpu::attention_kernels().bwd(p);
  } else {
    if (fwd) cuda::attention_fwd(p, dev.index);
    else cuda::attention_bwd(p, dev.index);
  }
}

// The dropout keep factors of a forward, (batch..., heads, L, S) in dt on dev: 1 / (1 - p) where
// element (b, h, i, j) was kept (dropout_uniform(seed, ((b H + h) L + i) S + j) >= p), else 0.
Tensor dropout_keep(const AttentionParams& p, const Dims& score_shape, DType dt, Device dev) {
  Tensor z = empty(score_shape, DType::f64);
  double* d = z.data<double>();
  const double inv = 1.0 / (1.0 - p.dropout_p);
  const float pd = float(p.dropout_p);
  const int64_t n = p.batch * p.heads * p.L * p.S;
  for (int64_t x = 0; x < n; ++x) d[x] = dropout_uniform(p.seed, uint64_t(x)) >= pd ? inv : 0.0;
  return to_device(to_dtype(z, dt), dev);
}

// create_graph: attention's backward composed from q, k, v. P = softmax(q k^T s + mask), times the
// dropout keep factors z when `keep` is defined: dv = (P z)^T go, dP = (go v^T) z,
// dS = P (dP - rowsum(dP P)), dq = dS k s, dk = dS^T q s; GQA sums a kv head's group.
V attention_backward_graph(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, bool causal,
                           double scale, const Tensor& go, const Tensor& keep) {
  const int64_t Hq = q.ndim() >= 3 ? q.shape()[q.ndim() - 3] : 1, Hk = k.ndim() >= 3 ? k.shape()[k.ndim() - 3] : 1;
  auto widen = [&](const Tensor& t) {  // (..., Hk, S, E) -> (..., Hq, S, E)
    if (Hq == Hk) return t;
    IntList e = t.shape().vec(), r = e;
    e.insert(e.end() - 2, Hq / Hk);
    r[r.size() - 3] = Hq;
    return reshape(expand(unsqueeze(t, -3), e), r);
  };
  auto narrow_heads = [&](const Tensor& t) {  // sum each group back to its kv head
    if (Hq == Hk) return t;
    IntList e = t.shape().vec();
    e[e.size() - 3] = Hk;
    e.insert(e.end() - 2, Hq / Hk);
    return sum(reshape(t, e), {int64_t(e.size()) - 3}, false);
  };
  Tensor kk = widen(k), vv = widen(v);
  Tensor sc = mul_s(matmul(q, transpose(kk, -1, -2)), scale);
  const Tensor ninf = full(Dims(), -INFINITY, sc.dtype(), sc.device());
  if (mask.defined()) sc = mask.dtype() == DType::b8 ? where(mask, sc, ninf) : add(sc, to_dtype(mask, sc.dtype()));
  if (causal) {
    const int64_t L = sc.shape()[sc.ndim() - 2], S = sc.shape()[sc.ndim() - 1];
    sc = where(binary_scalar(BinaryOp::ne, tril(ones(Dims{L, S}, sc.dtype(), sc.device()), 0), 0.0), sc, ninf);
  }
  Tensor P = softmax(sc, -1);
  Tensor dP = matmul(go, transpose(vv, -1, -2));  // the gradient of P z, then of P
  if (keep.defined()) dP = mul(dP, keep);
  Tensor dS = mul(P, sub(dP, sum(mul(dP, P), {-1}, true)));
  Tensor dq = mul_s(matmul(dS, kk), scale), dk = mul_s(matmul(transpose(dS, -1, -2), q), scale);
  Tensor dv = matmul(transpose(keep.defined() ? mul(P, keep) : P, -1, -2), go);
  V r{dq, narrow_heads(dk), narrow_heads(dv)};
  const Tensor* in[3] = {&q, &k, &v};
  for (int i = 0; i < 3; ++i)
    if (r[size_t(i)].shape() != in[i]->shape()) r[size_t(i)] = sum_to(r[size_t(i)], in[i]->shape());
  return r;
}

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& attn_mask,
                                    double dropout_p, bool is_causal, std::optional<double> scale, bool enable_gqa) {
  FASTDL_PROFILE("scaled_dot_product_attention", q, k, v);
  const char* op = "scaled_dot_product_attention";
  for (auto [t, name] : {std::pair{&q, "query"}, {&k, "key"}, {&v, "value"}})
    FASTDL_CHECK(t->defined() && t->ndim() >= 2, ValueError, op, ": ", name,
                 " must have at least 2 dims (..., L, E); got shape ", t->defined() ? shape_str(t->shape()) : "None");
  FASTDL_CHECK(q.shape()[q.ndim() - 1] == k.shape()[k.ndim() - 1], ValueError, op,
               ": query and key must share the last dim E; got query ", shape_str(q.shape()), " and key ",
               shape_str(k.shape()));
  FASTDL_CHECK(k.ndim() == v.ndim() && k.shape()[k.ndim() - 2] == v.shape()[v.ndim() - 2] &&
                   prefix(k) == prefix(v) && (k.ndim() < 3 || k.shape()[k.ndim() - 3] == v.shape()[v.ndim() - 3]),
               ValueError, op, ": key and value must agree on (..., S); got key ", shape_str(k.shape()), " and value ",
               shape_str(v.shape()));
  FASTDL_CHECK(q.dtype() == k.dtype() && q.dtype() == v.dtype(), TypeError, op,
               ": query, key and value must share a dtype; got ", dtype_name(q.dtype()), ", ", dtype_name(k.dtype()),
               ", ", dtype_name(v.dtype()));
  FASTDL_CHECK(is_floating(q.dtype()), TypeError, op, ": expected floating point inputs; got ", dtype_name(q.dtype()));
  FASTDL_CHECK(dropout_p >= 0.0 && dropout_p < 1.0, ValueError, op, ": dropout_p must be in [0, 1); got ", dropout_p);
  FASTDL_CHECK(!(is_causal && attn_mask.defined()), ValueError, op, ": pass either attn_mask or is_causal, not both");
  check_same_device(q, k, op);
  check_same_device(q, v, op);
  if (attn_mask.defined()) check_same_device(q, attn_mask, op);

  const int64_t L = q.shape()[q.ndim() - 2], E = q.shape()[q.ndim() - 1];
  const int64_t S = k.shape()[k.ndim() - 2], Ev = v.shape()[v.ndim() - 1];
  const int64_t Hq = q.ndim() >= 3 ? q.shape()[q.ndim() - 3] : 1;
  const int64_t Hk = k.ndim() >= 3 ? k.shape()[k.ndim() - 3] : 1;
  FASTDL_CHECK(Hq == Hk || (enable_gqa && Hk > 0 && Hq % Hk == 0), ValueError, op, ": query heads (", Hq,
               ") must equal key/value heads (", Hk, ")", enable_gqa ? " or be a multiple of them" : " unless enable_gqa=True",
               "; got query ", shape_str(q.shape()), " and key ", shape_str(k.shape()));
  const Dims bshape = broadcast_shapes(prefix(q), prefix(k), op);
  const int nb = bshape.size();
  int64_t batch = 1;
  for (int64_t x : bshape) batch *= x;
  if (attn_mask.defined()) {
    FASTDL_CHECK(attn_mask.dtype() == DType::b8 || attn_mask.dtype() == q.dtype(), TypeError, op,
                 ": attn_mask must be bool or match the query's dtype (", dtype_name(q.dtype()), "); got ",
                 dtype_name(attn_mask.dtype()));
    const Dims full = concat(bshape, {Hq, L, S});
    bool ok = attn_mask.ndim() <= full.size();
    for (int i = 1; ok && i <= attn_mask.ndim(); ++i) {
      const int64_t m = attn_mask.shape()[attn_mask.ndim() - i];
      ok = m == 1 || m == full[full.size() - i];
    }
    FASTDL_CHECK(ok, ValueError, op, ": attn_mask of shape ", shape_str(attn_mask.shape()),
                 " does not broadcast to (..., heads, L, S) = ", shape_str(full));
  }

  const Device dev = q.device();
  FASTDL_CHECK(dev.is_cpu() || (E <= 256 && Ev <= 256), ValueError, op,
               ": the CUDA kernel takes head dims E, Ev <= 256; got query ", shape_str(q.shape()), " and value ",
               shape_str(v.shape()));
  const DType kt = q.dtype() == DType::f64 ? DType::f64 : DType::f32;
  auto prep = [&](const Tensor& t, int64_t heads, int64_t rows, int64_t width, int64_t& sb) {
    return fold(expand(to_dtype(detach(t), kt), list(concat(bshape, {heads, rows, width}))), nb, sb);
  };
  cpu::AttentionParams p;
  p.batch = batch; p.heads = Hq; p.kv_heads = Hk; p.L = L; p.S = S; p.E = E; p.Ev = Ev; p.dt = kt;
  p.scale = scale ? *scale : 1.0 / std::sqrt(double(E));
  p.causal = is_causal;
  Tensor qc = prep(q, Hq, L, E, p.q_sb), kc = prep(k, Hk, S, E, p.k_sb), vc = prep(v, Hk, S, Ev, p.v_sb);
  p.q = qc.data_ptr(); p.q_sh = at(qc, -3); p.q_sl = at(qc, -2);
  p.k = kc.data_ptr(); p.k_sh = at(kc, -3); p.k_sl = at(kc, -2);
  p.v = vc.data_ptr(); p.v_sh = at(vc, -3); p.v_sl = at(vc, -2);
  Tensor mc;
  if (attn_mask.defined()) {
    p.mask_kind = attn_mask.dtype() == DType::b8 ? cpu::MaskKind::boolean : cpu::MaskKind::additive;
    const Dims full = concat(bshape, {Hq, L, S});
    mc = expand(detach(attn_mask), list(full));
    mc = fold(mc, nb, p.m_sb);
    p.mask = mc.data_ptr(); p.m_sh = at(mc, -3); p.m_sl = at(mc, -2); p.m_ss = at(mc, -1);
  }
  p.dropout_p = dropout_p;
  if (dropout_p > 0) p.seed = random_u64();

  Tensor out = empty(concat(bshape, {Hq, L, Ev}), kt, dev);
  Tensor lse = empty(concat(bshape, {Hq, L}), kt, dev);
  p.out = out.data_ptr(); p.lse = lse.data_ptr();
  if (out.numel() > 0) {
    if (S == 0) {
      fill_(out, 0.0);
      fill_(lse, INFINITY);
    } else {
      run(true, p, dev);
    }
  }
  Tensor res = kt == q.dtype() ? out : to_dtype(out, q.dtype());
  if (q.ndim() == 2) res = reshape(res, {L, Ev});  // no heads dim in, none out
  if (autograd::any_requires_grad({q, k, v}) && out.numel() > 0) {
    const Tensor saved_out = detach(out);  // a separate impl: no cycle through res's grad_fn
    const Dims qs = q.shape(), ks = k.shape(), vs = v.shape();
    const DType dt = q.dtype();
    autograd::record("ScaledDotProductAttentionBackward0", {q, k, v}, res,
                     [p, qc, kc, vc, mc, saved_out, lse, qs, ks, vs, dt, bshape, kt, dev, q, k, v,
                      mask = attn_mask.defined() ? detach(attn_mask) : Tensor()](V& g) mutable {
      if (autograd::grad_enabled()) {  // create_graph: the same gradient from differentiable ops
        const Dims ss = q.ndim() == 2 ? Dims{p.L, p.S} : concat(bshape, {p.heads, p.L, p.S});
        const Tensor keep = p.dropout_p > 0 ? dropout_keep(p, ss, q.dtype(), q.device()) : Tensor();
        return attention_backward_graph(q, k, v, mask, p.causal, p.scale, g[0], keep);
      }
      Tensor go = contiguous(to_dtype(g[0], kt));
      Tensor dq = empty(concat(bshape, {p.heads, p.L, p.E}), kt, dev);
      Tensor dk = empty(concat(bshape, {p.kv_heads, p.S, p.E}), kt, dev);
      Tensor dv = empty(concat(bshape, {p.kv_heads, p.S, p.Ev}), kt, dev);
      p.out = saved_out.data_ptr(); p.lse = lse.data_ptr(); p.gout = go.data_ptr();
      p.dq = dq.data_ptr(); p.dk = dk.data_ptr(); p.dv = dv.data_ptr();
      if (p.S == 0) {
        for (Tensor* t : {&dq, &dk, &dv}) fill_(*t, 0.0);
      } else {
        run(false, p, dev);
      }
      V r{dq, dk, dv};
      const Dims* shapes[3] = {&qs, &ks, &vs};
      for (int i = 0; i < 3; ++i) {
        if (r[i].shape() != *shapes[i]) r[i] = reshape(sum_to(r[i], *shapes[i]), list(*shapes[i]));
        if (r[i].dtype() != dt) r[i] = to_dtype(r[i], dt);
      }
      return r;
    }, {q, k, v, out});
  }
  return res;
}

}  // namespace fastdl
