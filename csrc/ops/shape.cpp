// Shape ops: views (no copy) where strides allow, with their backward, plus cat/stack/split.
#include <algorithm>

#include "autograd/node.h"
#include "ops/dispatch.h"
#include "core/profiler.h"
#include "ops/ops.h"

namespace fastdl {

using V = std::vector<Tensor>;

namespace {

Dims infer_shape(const IntList& shape, int64_t numel, const char* op) {
  Dims s(shape);
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      FASTDL_CHECK(infer < 0, ValueError, op, ": only one dimension can be inferred; got shape ", shape_str(s));
      infer = i;
    } else {
      FASTDL_CHECK(s[i] >= 0, ValueError, op, ": invalid shape dimension ", s[i], " in ", shape_str(s));
      known *= s[i];
    }
  }
  if (infer >= 0) {
    FASTDL_CHECK(known != 0 && numel % known == 0, ValueError, op, ": shape ", shape_str(s), " is invalid for input of size ", numel);
    s[infer] = numel / known;
  } else {
    FASTDL_CHECK(known == numel, ValueError, op, ": shape ", shape_str(s), " is invalid for input of size ", numel);
  }
  return s;
}

// Strides for viewing `a` as `shape` without a copy, or false (PyTorch's computeStride): the
// old dims split into chunks that are each contiguous with their own base stride (the stride of
// the chunk's innermost dim); each chunk must map onto a run of new dims.
bool view_strides(const Tensor& a, const Dims& shape, Dims& out) {
  out = Dims(shape.size());
  if (a.numel() == 0 || a.is_contiguous()) { out = contiguous_strides(shape); return true; }
  const Dims& os = a.shape(); const Dims& ost = a.strides();
  int view_d = int(shape.size()) - 1;
  int64_t chunk = os.size() ? ost[os.size() - 1] : 1;
  int64_t tensor_numel = 1, view_numel = 1;
  for (int d = int(os.size()) - 1; d >= 0; --d) {
    tensor_numel *= os[d];
    if (d == 0 || (os[d - 1] != 1 && ost[d - 1] != tensor_numel * chunk)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk;
        view_numel *= shape[view_d];
        view_d--;
      }
      if (view_numel != tensor_numel) return false;
      if (d > 0) { chunk = ost[d - 1]; tensor_numel = 1; view_numel = 1; }
    }
  }
  return view_d == -1;
}

// create_graph: g placed at [start, stop) (every step-th index) along d of zeros of shape in,
// with differentiable ops (cat, scatter_add) instead of copy_ into a buffer, which records no graph.
Tensor embed_graph(const Tensor& g, const Dims& in, int d, int64_t start, int64_t stop, int64_t step) {
  if (step > 1) {
    IntList s(size_t(g.ndim()), 1);
    s[size_t(d)] = -1;
    Tensor idx = reshape(arange(double(start), double(stop), double(step), DType::i64, g.device()), s);
    return scatter_add(zeros(in, g.dtype(), g.device()), d, contiguous(expand(idx, g.shape().vec())), g);
  }
  V parts;
  auto zero = [&](int64_t n) { Dims z = in; z[d] = n; parts.push_back(zeros(z, g.dtype(), g.device())); };
  if (start > 0) zero(start);
  parts.push_back(g);
  if (stop < in[d]) zero(in[d] - stop);
  return parts.size() == 1 ? g : cat(parts, d);
}

Tensor view_of(const Tensor& a, Dims shape, Dims strides, int64_t offset, const char* name, autograd::BackwardFn fn) {
  Tensor v = make_view(a, std::move(shape), std::move(strides), offset);
  if (autograd::any_requires_grad(a)) autograd::record(name, {a}, v, std::move(fn));
  return v;
}

}  // namespace

Tensor view(const Tensor& a, const IntList& shape) {
  FASTDL_PROFILE("view", a);
  Dims s = infer_shape(shape, a.numel(), "view");
  Dims st;
  FASTDL_CHECK(view_strides(a, s, st), ValueError, "view: size ", shape_str(s), " is not compatible with input of shape ",
               shape_str(a.shape()), " and strides ", shape_str(a.strides()), "; use reshape() instead");
  Dims in = a.shape();
  return view_of(a, s, st, a.offset(), "ViewBackward0", [in](V& g) { return V{reshape(g[0], in.vec())}; });
}

Tensor reshape(const Tensor& a, const IntList& shape) {
  FASTDL_PROFILE("reshape", a);
  Dims s = infer_shape(shape, a.numel(), "reshape");
  if (s == a.shape()) return a;
  Dims st;
  if (view_strides(a, s, st)) {
    Dims in = a.shape();
    return view_of(a, s, st, a.offset(), "ViewBackward0", [in](V& g) { return V{reshape(g[0], in.vec())}; });
  }
  return view(clone(a), shape);
}

Tensor permute(const Tensor& a, const IntList& dims) {
  FASTDL_PROFILE("permute", a);
  int n = a.ndim();
  FASTDL_CHECK(int(dims.size()) == n, ValueError, "permute: number of dims in the permutation (", dims.size(),
               ") doesn't match the tensor's ", n, " dims");
  Dims s(n), st(n);
  std::vector<bool> seen(static_cast<size_t>(n), false);
  IntList inv(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    int d = wrap_dim(dims[size_t(i)], n, "permute");
    FASTDL_CHECK(!seen[size_t(d)], ValueError, "permute: repeated dim ", d, " in permutation");
    seen[size_t(d)] = true;
    s[i] = a.shape()[d]; st[i] = a.strides()[d];
    inv[size_t(d)] = i;
  }
  return view_of(a, s, st, a.offset(), "PermuteBackward0", [inv](V& g) { return V{permute(g[0], inv)}; });
}

Tensor transpose(const Tensor& a, int64_t d0, int64_t d1) {
  FASTDL_PROFILE("transpose", a);
  int n = a.ndim();
  if (n == 0) return a;
  int x = wrap_dim(d0, n, "transpose"), y = wrap_dim(d1, n, "transpose");
  IntList p(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) p[size_t(i)] = i;
  std::swap(p[size_t(x)], p[size_t(y)]);
  return permute(a, p);
}

Tensor expand(const Tensor& a, const IntList& shape) {
  FASTDL_PROFILE("expand", a);
  int n = int(shape.size());
  FASTDL_CHECK(n >= a.ndim(), ValueError, "expand: the number of sizes provided (", n,
               ") must be greater or equal to the number of dimensions in the tensor (", a.ndim(), ")");
  Dims s(n), st(n);
  int off = n - a.ndim();
  for (int i = 0; i < n; ++i) {
    int64_t want = shape[size_t(i)];
    if (i < off) {
      FASTDL_CHECK(want >= 0, ValueError, "expand: the expanded size ", want, " is not allowed in a leading, non-existing dimension");
      s[i] = want; st[i] = 0;
      continue;
    }
    int64_t have = a.shape()[i - off];
    if (want == -1) want = have;
    FASTDL_CHECK(have == want || have == 1, ValueError, "expand: the expanded size of the tensor (", want,
                 ") must match the existing size (", have, ") at non-singleton dimension ", i, "; target sizes ",
                 shape_str(Dims(shape)), ", tensor shape ", shape_str(a.shape()));
    s[i] = want;
    st[i] = have == want ? a.strides()[i - off] : 0;
  }
  if (s == a.shape()) return a;
  Dims in = a.shape();
  return view_of(a, s, st, a.offset(), "ExpandBackward0", [in](V& g) { return V{sum_to(g[0], in)}; });
}

Tensor broadcast_to(const Tensor& a, const Dims& shape) { return expand(a, shape.vec()); }

Tensor squeeze(const Tensor& a, std::optional<IntList> dims) {
  FASTDL_PROFILE("squeeze", a);
  std::vector<bool> drop(static_cast<size_t>(a.ndim()), false);
  if (!dims) { for (int i = 0; i < a.ndim(); ++i) drop[size_t(i)] = a.shape()[i] == 1; }
  else for (int64_t d : *dims) {
    if (a.ndim() == 0) { wrap_dim(d, 0, "squeeze"); continue; }
    int w = wrap_dim(d, a.ndim(), "squeeze");
    drop[size_t(w)] = a.shape()[w] == 1;
  }
  Dims s, st;
  for (int i = 0; i < a.ndim(); ++i) if (!drop[size_t(i)]) { s.push_back(a.shape()[i]); st.push_back(a.strides()[i]); }
  if (s.size() == a.ndim()) return a;
  Dims in = a.shape();
  return view_of(a, s, st, a.offset(), "SqueezeBackward0", [in](V& g) { return V{reshape(g[0], in.vec())}; });
}

Tensor unsqueeze(const Tensor& a, int64_t dim) {
  FASTDL_PROFILE("unsqueeze", a);
  int d = wrap_dim(dim, a.ndim() + 1, "unsqueeze");
  Dims s = a.shape(), st = a.strides();
  int64_t inner = d < a.ndim() ? a.strides()[d] * a.shape()[d] : 1;
  s.insert(d, 1);
  st.insert(d, inner);
  return view_of(a, s, st, a.offset(), "UnsqueezeBackward0", [d](V& g) { return V{squeeze(g[0], IntList{d})}; });
}

Tensor flatten(const Tensor& a, int64_t start, int64_t end) {
  if (a.ndim() == 0) return reshape(a, {1});
  int s = wrap_dim(start, a.ndim(), "flatten"), e = wrap_dim(end, a.ndim(), "flatten");
  FASTDL_CHECK(s <= e, ValueError, "flatten: start_dim (", s, ") cannot come after end_dim (", e, ")");
  IntList shape;
  int64_t m = 1;
  for (int i = 0; i < a.ndim(); ++i) {
    if (i < s || i > e) shape.push_back(a.shape()[i]);
    else { m *= a.shape()[i]; if (i == e) shape.push_back(m); }
  }
  return reshape(a, shape);
}

Tensor slice(const Tensor& a, int64_t dim, int64_t start, int64_t stop, int64_t step) {
  FASTDL_PROFILE("slice", a);
  FASTDL_CHECK(a.ndim() > 0, IndexError, "slice: cannot slice a 0-dim tensor");
  int d = wrap_dim(dim, a.ndim(), "slice");
  FASTDL_CHECK(step > 0, ValueError, "slice: step must be positive; got ", step);
  int64_t n = a.shape()[d];
  if (start < 0) start += n;
  if (stop < 0) stop += n;
  start = std::clamp<int64_t>(start, 0, n);
  stop = std::clamp<int64_t>(stop, start, n);
  int64_t len = (stop - start + step - 1) / step;
  Dims s = a.shape(), st = a.strides();
  s[d] = len;
  st[d] = a.strides()[d] * step;
  Dims in = a.shape();
  return view_of(a, s, st, a.offset() + start * a.strides()[d], "SliceBackward0", [in, d, start, stop, step](V& g) {
    if (autograd::grad_enabled()) return V{embed_graph(g[0], in, d, start, stop, step)};
    // zeros only where the slice did not reach: the slice itself is overwritten
    Tensor z = empty(in, g[0].dtype(), g[0].device());
    if (step == 1) {
      if (start > 0) fill_(slice(z, d, 0, start, 1), 0.0);
      if (stop < in[d]) fill_(slice(z, d, stop, in[d], 1), 0.0);
    } else {
      fill_(z, 0.0);
    }
    copy_(slice(z, d, start, stop, step), g[0]);
    return V{z};
  });
}

Tensor narrow(const Tensor& a, int64_t dim, int64_t start, int64_t length) {
  FASTDL_CHECK(a.ndim() > 0, IndexError, "narrow: cannot be applied to a 0-dim tensor");
  int d = wrap_dim(dim, a.ndim(), "narrow");
  int64_t n = a.shape()[d];
  if (start < 0) start += n;
  FASTDL_CHECK(start >= 0 && length >= 0 && start + length <= n, IndexError, "narrow: start (", start, ") + length (", length,
               ") exceeds dimension size (", n, ")");
  return slice(a, d, start, start + length, 1);
}

Tensor select(const Tensor& a, int64_t dim, int64_t index) {
  FASTDL_PROFILE("select", a);
  FASTDL_CHECK(a.ndim() > 0, IndexError, "select: invalid index of a 0-dim tensor");
  int d = wrap_dim(dim, a.ndim(), "select");
  int64_t n = a.shape()[d];
  FASTDL_CHECK(index >= -n && index < n, IndexError, "index ", index, " is out of bounds for dimension ", d, " with size ", n);
  if (index < 0) index += n;
  Dims s = a.shape(), st = a.strides();
  s.erase(d); st.erase(d);
  Dims in = a.shape();
  return view_of(a, s, st, a.offset() + index * a.strides()[d], "SelectBackward0", [in, d, index](V& g) {
    if (autograd::grad_enabled()) return V{embed_graph(unsqueeze(g[0], d), in, d, index, index + 1, 1)};
    Tensor z = zeros(in, g[0].dtype(), g[0].device());
    copy_(select(z, d, index), g[0]);
    return V{z};
  });
}

Tensor cat(const std::vector<Tensor>& ts, int64_t dim) {
  FASTDL_PROFILE("cat", ts);
  FASTDL_CHECK(!ts.empty(), ValueError, "cat: expected a non-empty list of tensors");
  // Legacy rule: 1-D empty tensors are skipped.
  const Tensor* ref = nullptr;
  for (auto& t : ts) if (!(t.ndim() == 1 && t.numel() == 0)) { ref = &t; break; }
  if (!ref) {  // all 1-D and empty: an empty result of the promoted dtype
    DType dt = ts[0].dtype();
    for (auto& t : ts) dt = promote(dt, t.dtype());
    return empty(Dims{0}, dt, ts[0].device());
  }
  FASTDL_CHECK(ref->ndim() > 0, ValueError, "cat: zero-dimensional tensor cannot be concatenated");
  int d = wrap_dim(dim, ref->ndim(), "cat");
  DType dt = ref->dtype();
  for (auto& t : ts) dt = promote(dt, t.dtype());  // skipped empty tensors still promote (PyTorch)
  Dims shape = ref->shape();
  int64_t total = 0;
  for (size_t i = 0; i < ts.size(); ++i) {
    const Tensor& t = ts[i];
    if (t.ndim() == 1 && t.numel() == 0) continue;
    check_same_device(*ref, t, "cat");
    FASTDL_CHECK(t.ndim() == ref->ndim(), ValueError, "cat: tensors must have the same number of dims; got ", ref->ndim(),
                 " and ", t.ndim(), " (tensor ", i, ")");
    for (int k = 0; k < t.ndim(); ++k)
      FASTDL_CHECK(k == d || t.shape()[k] == shape[k], ValueError, "cat: sizes of tensors must match except in dimension ", d,
                   "; got ", shape_str(shape), " and ", shape_str(t.shape()), " (tensor ", i, ")");
    total += t.shape()[d];
  }
  shape[d] = total;
  Tensor out = empty(shape, dt, ref->device());
  int64_t pos = 0;
  std::vector<int64_t> sizes;
  for (auto& t : ts) {
    if (t.ndim() == 1 && t.numel() == 0) { sizes.push_back(0); continue; }
    int64_t n = t.shape()[d];
    sizes.push_back(n);
    {
      autograd::NoGradGuard ng;
      copy_(slice(out, d, pos, pos + n, 1), t);
    }
    pos += n;
  }
  if (autograd::any_requires_grad(ts)) {
    std::vector<DType> dts;
    std::vector<bool> skipped;  // legacy 1-D empty inputs: no gradient
    for (auto& t : ts) { dts.push_back(t.dtype()); skipped.push_back(t.ndim() == 1 && t.numel() == 0); }
    autograd::record("CatBackward0", ts, out, [sizes, d, dts, skipped](V& g) {
      V r;
      int64_t p = 0;
      for (size_t i = 0; i < sizes.size(); ++i) {
        if (skipped[i] || (sizes[i] == 0 && dts[i] != g[0].dtype())) { r.push_back(Tensor()); continue; }
        r.push_back(to_dtype(slice(g[0], d, p, p + sizes[i], 1), dts[i]));
        p += sizes[i];
      }
      return r;
    });
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& ts, int64_t dim) {
  FASTDL_PROFILE("stack", ts);
  FASTDL_CHECK(!ts.empty(), ValueError, "stack: expected a non-empty list of tensors");
  int d = wrap_dim(dim, ts[0].ndim() + 1, "stack");
  V us;
  for (size_t i = 0; i < ts.size(); ++i) {
    FASTDL_CHECK(ts[i].shape() == ts[0].shape(), ValueError, "stack: expects each tensor to be equal size, but got ",
                 shape_str(ts[0].shape()), " at entry 0 and ", shape_str(ts[i].shape()), " at entry ", i);
    us.push_back(unsqueeze(ts[i], d));
  }
  return cat(us, d);
}

std::vector<Tensor> split(const Tensor& a, const IntList& sizes, int64_t dim) {
  FASTDL_PROFILE("split", a);
  FASTDL_CHECK(a.ndim() > 0, ValueError, "split: expected at least a 1-dimensional tensor; got a 0-dim tensor");
  int d = wrap_dim(dim, a.ndim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) { FASTDL_CHECK(s >= 0, ValueError, "split: split sizes must be non-negative"); total += s; }
  FASTDL_CHECK(total == a.shape()[d], ValueError, "split: split sizes sum to ", total, " but dimension ", d, " has size ", a.shape()[d]);
  // One node for all pieces (PyTorch's SplitBackward0): backward writes each piece's gradient
  // into its part of one buffer, zero-filling only the parts that got none.
  V r;
  int64_t p = 0;
  for (int64_t n : sizes) {
    Dims sh = a.shape();
    sh[d] = n;
    r.push_back(make_view(a, sh, a.strides(), a.offset() + p * a.strides()[d]));
    p += n;
  }
  if (autograd::any_requires_grad(a)) {
    std::vector<Tensor*> outs;
    for (auto& t : r) outs.push_back(&t);
    Dims in = a.shape();
    autograd::record("SplitBackward0", {a}, outs, [in, d, sizes](V& g) {
      const Tensor& any = *std::find_if(g.begin(), g.end(), [](const Tensor& t) { return t.defined(); });
      if (autograd::grad_enabled()) {  // create_graph: a differentiable cat of the pieces
        V parts;
        for (size_t i = 0; i < sizes.size(); ++i) {
          Dims s = in;
          s[d] = sizes[i];
          parts.push_back(g[i].defined() ? g[i] : zeros(s, any.dtype(), any.device()));
        }
        return V{cat(parts, d)};
      }
      Tensor z = empty(in, any.dtype(), any.device());  // the engine calls this with >= 1 gradient
      int64_t q = 0;
      for (size_t i = 0; i < sizes.size(); ++i) {
        Tensor part = slice(z, d, q, q + sizes[i], 1);
        if (g[i].defined()) copy_(part, g[i]); else fill_(part, 0.0);
        q += sizes[i];
      }
      return V{z};
    });
  }
  return r;
}

std::vector<Tensor> split_size(const Tensor& a, int64_t size, int64_t dim) {
  FASTDL_CHECK(a.ndim() > 0, ValueError, "split: expected at least a 1-dimensional tensor; got a 0-dim tensor");
  FASTDL_CHECK(size > 0, ValueError, "split: split_size must be positive; got ", size);
  int d = wrap_dim(dim, a.ndim(), "split");
  IntList sizes;
  for (int64_t p = 0; p < a.shape()[d]; p += size) sizes.push_back(std::min(size, a.shape()[d] - p));
  if (sizes.empty()) sizes.push_back(0);
  return split(a, sizes, d);
}

std::vector<Tensor> chunk(const Tensor& a, int64_t chunks, int64_t dim) {
  FASTDL_CHECK(a.ndim() > 0, ValueError, "chunk: expected at least a 1-dimensional tensor; got a 0-dim tensor");
  FASTDL_CHECK(chunks > 0, ValueError, "chunk: number of chunks must be positive; got ", chunks);
  int d = wrap_dim(dim, a.ndim(), "chunk");
  int64_t n = a.shape()[d], size = (n + chunks - 1) / chunks;
  if (n == 0) return split(a, IntList(size_t(chunks), 0), d);  // `chunks` empty pieces (PyTorch)
  return split_size(a, size > 0 ? size : 1, d);
}

std::vector<Tensor> unbind(const Tensor& a, int64_t dim) {
  FASTDL_CHECK(a.ndim() > 0, ValueError, "unbind: expected at least a 1-dimensional tensor; got a 0-dim tensor");
  int d = wrap_dim(dim, a.ndim(), "unbind");
  V r;
  for (int64_t i = 0; i < a.shape()[d]; ++i) r.push_back(select(a, d, i));
  return r;
}

Tensor movedim(const Tensor& a, int64_t src, int64_t dst) {
  int n = a.ndim();
  if (n == 0) return a;
  int s = wrap_dim(src, n, "movedim"), t = wrap_dim(dst, n, "movedim");
  IntList order;
  for (int i = 0; i < n; ++i) if (i != s) order.push_back(i);
  order.insert(order.begin() + t, s);
  return permute(a, order);
}

Tensor flip(const Tensor& a, const IntList& dims) {
  FASTDL_PROFILE("flip", a);
  Tensor x = a;
  Dims s = a.shape(), st = a.strides();
  int64_t off = a.offset();
  std::vector<int> ds;
  std::vector<bool> seen(size_t(std::max(a.ndim(), 1)), false);
  for (int64_t d0 : dims) {
    int d = wrap_dim(d0, a.ndim(), "flip");
    FASTDL_CHECK(!seen[size_t(d)], ValueError, "flip: dim ", d, " appears multiple times in the list of dims");
    seen[size_t(d)] = true;
    if (a.ndim() == 0) continue;  // a 0-dim tensor flips to itself
    if (s[d] > 0) off += (s[d] - 1) * st[d];
    st[d] = -st[d];
    ds.push_back(d);
  }
  // Negative strides stay internal: materialise at once.
  Tensor v = make_view(detach(a), s, st, off);
  Tensor out = empty(s, a.dtype(), a.device());
  copy_(out, v);
  if (autograd::any_requires_grad(a)) {
    IntList fd(ds.begin(), ds.end());
    autograd::record("FlipBackward0", {a}, out, [fd](V& g) { return V{flip(g[0], fd)}; });
  }
  return out;
}

Tensor repeat(const Tensor& a, const IntList& reps) {
  FASTDL_PROFILE("repeat", a);
  FASTDL_CHECK(int(reps.size()) >= a.ndim(), ValueError, "repeat: number of repeat dims (", reps.size(),
               ") can not be smaller than number of tensor dims (", a.ndim(), ")");
  int n = int(reps.size()), off = n - a.ndim();
  IntList xs, es, out;
  Tensor x = a;
  for (int i = 0; i < off; ++i) x = unsqueeze(x, 0);
  // view as (1, s0, 1, s1, ...) expanded to (r0, s0, r1, s1, ...), then reshape
  for (int i = n - 1; i >= 0; --i) x = unsqueeze(x, i);
  IntList target;
  for (int i = 0; i < n; ++i) { target.push_back(reps[size_t(i)]); target.push_back(x.shape()[2 * i + 1]); out.push_back(reps[size_t(i)] * x.shape()[2 * i + 1]); }
  return reshape(contiguous(expand(x, target)), out);
}

namespace {
// Keep the elements whose diagonal offset (column - row) satisfies `cmp` against k.
Tensor triangle(const Tensor& a, int64_t k, BinaryOp cmp, const char* op) {
  FASTDL_CHECK(a.ndim() >= 2, ValueError, op, ": input tensor must have at least 2 dimensions; got shape ", shape_str(a.shape()));
  int64_t r = a.shape()[a.ndim() - 2], c = a.shape()[a.ndim() - 1];
  Tensor i = reshape(arange(0, double(r), 1, DType::i64, a.device()), {r, 1});
  Tensor j = reshape(arange(0, double(c), 1, DType::i64, a.device()), {1, c});
  Tensor keep = binary(cmp, sub(j, i), scalar_tensor(double(k), DType::i64, a.device()));
  return where(keep, a, zeros(Dims(), a.dtype(), a.device()));
}
}  // namespace

Tensor tril(const Tensor& a, int64_t k) { return triangle(a, k, BinaryOp::le, "tril"); }
Tensor triu(const Tensor& a, int64_t k) { return triangle(a, k, BinaryOp::ge, "triu"); }

}  // namespace fastdl
