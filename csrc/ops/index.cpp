// Indexing: Python subscripts (ints, slices, None, Ellipsis, integer and boolean tensors)
// as PyTorch does them, index assignment, gather/scatter_add, embedding. Every index value
// is bounds-checked before any output is written.
#include <algorithm>
#include <atomic>
#include <cstring>

#include "autograd/node.h"
#include "core/parallel.h"
#include "ops/dispatch.h"
#include "core/profiler.h"
#include "ops/ops.h"

namespace fastdl {

using V = std::vector<Tensor>;

namespace {

// Index tensors as int64 on the CPU, contiguous.
Tensor host_i64(const Tensor& t) { return contiguous(to_dtype(to_device(detach(t), Device()), DType::i64)); }

// Subscripts wrap negative indices; gather/scatter_add/index_select refuse them (PyTorch).
void check_bounds(const Tensor& idx, int64_t n, int dim, const char* op, bool negative_ok = true) {
  const int64_t* p = idx.data<int64_t>();
  const int64_t lo = negative_ok ? -n : 0, cnt = idx.numel();
  // Branch-free first (one unsigned compare per index, the flags or-ed, in parallel chunks); the
  // offender is looked for only when some index is out of range.
  const uint64_t range = uint64_t(n - lo);
  std::atomic<bool> bad{false};
  parallel_for(0, cnt, int64_t(1) << 16, [&](int64_t b, int64_t e) {
    uint64_t out = 0;
    for (int64_t i = b; i < e; ++i) out |= uint64_t(uint64_t(p[i]) - uint64_t(lo) >= range);  // unsigned: wraps
    if (out) bad.store(true, std::memory_order_relaxed);
  });
  if (!bad.load()) return;
  for (int64_t i = 0; i < cnt; ++i)
    if (p[i] < lo || p[i] >= n)
      throw IndexError(str_cat(op, ": index ", p[i], " is out of bounds for dimension ", dim, " with size ", n));
}

void copy_elem(char* dst, const char* src, size_t es) {
  switch (es) {
    case 1: *dst = *src; break;
    case 2: std::memcpy(dst, src, 2); break;
    case 4: std::memcpy(dst, src, 4); break;
    default: std::memcpy(dst, src, 8); break;
  }
}

// Advanced indexing plan over a (CPU) view: adv dims first, then the rest.
struct Plan {
  Dims bshape;                 // broadcast shape of the index tensors
  std::vector<int64_t> offs;   // element offset of each index tuple (relative to view offset)
  Dims rest_shape, rest_strides;
  int first = 0;               // where the index dims go in the result (PyTorch/numpy rule)
  bool adjacent = true;
};

Plan make_plan(const Tensor& v, const std::vector<int>& ds, const V& idx) {
  Plan p;
  Dims b = idx[0].shape();
  for (size_t k = 1; k < idx.size(); ++k) b = broadcast_shapes(b, idx[k].shape(), "index");
  p.bshape = b;
  for (size_t k = 1; k < ds.size(); ++k) p.adjacent &= ds[k] == ds[k - 1] + 1;
  p.first = p.adjacent ? ds[0] : 0;
  int64_t nb = b.numel();
  p.offs.assign(size_t(nb), 0);
  for (size_t k = 0; k < idx.size(); ++k) {
    int d = ds[k];
    int64_t n = v.shape()[d], st = v.strides()[d];
    Tensor e = host_i64(expand(host_i64(idx[k]), b.vec()));
    check_bounds(e, n, d, "index");
    const int64_t* q = e.data<int64_t>();
    for (int64_t i = 0; i < nb; ++i) p.offs[size_t(i)] += (q[i] < 0 ? q[i] + n : q[i]) * st;
  }
  for (int d = 0; d < v.ndim(); ++d)
    if (std::find(ds.begin(), ds.end(), d) == ds.end()) { p.rest_shape.push_back(v.shape()[d]); p.rest_strides.push_back(v.strides()[d]); }
  return p;
}

// Visit every (index tuple b, rest element) pair: f(b, src_offset, rest_linear).
template <class F> void walk(const Plan& p, const F& f) {
  int nr = p.rest_shape.size();
  int64_t rn = p.rest_shape.numel();
  std::vector<int64_t> ro(static_cast<size_t>(rn));
  Dims idx(nr, 0);
  for (int64_t r = 0; r < rn; ++r) {
    int64_t o = 0;
    for (int d = 0; d < nr; ++d) o += idx[d] * p.rest_strides[d];
    ro[size_t(r)] = o;
    for (int d = nr - 1; d >= 0; --d) { if (++idx[d] < p.rest_shape[d]) break; idx[d] = 0; }
  }
  for (size_t b = 0; b < p.offs.size(); ++b)
    for (int64_t r = 0; r < rn; ++r) f(int64_t(b), p.offs[b] + ro[size_t(r)], int64_t(b) * rn + r);
}

// Result laid out as (bshape..., rest...), moved to PyTorch's position; empty: no move.
IntList place_perm(const Plan& p) {
  int nb = p.bshape.size();
  if (!p.adjacent || p.first == 0 || nb == 0) return {};
  IntList perm;
  int nr = p.rest_shape.size();
  for (int i = 0; i < p.first; ++i) perm.push_back(nb + i);
  for (int i = 0; i < nb; ++i) perm.push_back(i);
  for (int i = p.first; i < nr; ++i) perm.push_back(nb + i);
  return perm;
}

Tensor place(const Tensor& flat, const Plan& p) {
  IntList perm = place_perm(p);
  return perm.empty() ? flat : permute(flat, perm);
}

Tensor unplace(const Tensor& g, const Plan& p) {  // inverse of place
  int nb = p.bshape.size();
  if (!p.adjacent || p.first == 0 || nb == 0) return g;
  IntList perm;
  int nr = p.rest_shape.size();
  for (int i = 0; i < nb; ++i) perm.push_back(p.first + i);
  for (int i = 0; i < p.first; ++i) perm.push_back(i);
  for (int i = p.first; i < nr; ++i) perm.push_back(nb + i);
  return permute(g, perm);
}

// True when the non-indexed dims are one contiguous run in the source (rows of an
// embedding table, say): then each index tuple moves one block.
bool rest_contiguous(const Plan& p) {
  int64_t expect = 1;
  for (int d = p.rest_shape.size() - 1; d >= 0; --d) {
    if (p.rest_shape[d] == 1) continue;
    if (p.rest_strides[d] != expect) return false;
    expect *= p.rest_shape[d];
  }
  return true;
}

Tensor gather_plan(const Tensor& v, const Plan& p) {
  Tensor src = to_device(detach(v), Device());
  Dims os = p.bshape;
  for (int i = 0; i < p.rest_shape.size(); ++i) os.push_back(p.rest_shape[i]);
  Tensor out = empty(os, v.dtype());
  const int64_t es = int64_t(v.itemsize());
  const char* base = static_cast<const char*>(src.data_ptr());
  char* o = static_cast<char*>(out.data_ptr());
  const int64_t rn = p.rest_shape.numel(), nb = int64_t(p.offs.size());
  if (rest_contiguous(p) && rn > 1) {
    parallel_for(0, nb, std::max<int64_t>(1, (int64_t(1) << 15) / rn), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) std::memcpy(o + b * rn * es, base + p.offs[size_t(b)] * es, size_t(rn * es));
    });
  } else {
    walk(p, [&](int64_t, int64_t off, int64_t lin) { copy_elem(o + lin * es, base + off * es, size_t(es)); });
  }
  return to_device(out, v.device());
}

// Contiguous rows: dst row offs[b] (+)= row b of src, rows in order per column so duplicate
// indices accumulate deterministically; threads split the columns, never the rows.
template <class T>
void scatter_rows(T* dst, const T* src, const std::vector<int64_t>& offs, int64_t rn, bool accumulate) {
  const int64_t nb = int64_t(offs.size());
  const int64_t nt = std::max<int64_t>(1, get_num_threads());  // one column range per thread (select_add_back)
  parallel_for(0, rn, std::max<int64_t>({int64_t(64), (int64_t(1) << 15) / std::max<int64_t>(nb, 1), (rn + nt - 1) / nt}),
               [&](int64_t c0, int64_t c1) {
    for (int64_t b = 0; b < nb; ++b) {
      T* __restrict d = dst + offs[size_t(b)];
      const T* __restrict s = src + b * rn;
      if (accumulate) for (int64_t c = c0; c < c1; ++c) d[c] += s[c];
      else for (int64_t c = c0; c < c1; ++c) d[c] = s[c];
    }
  });
}

// dst[plan] (+)= values, sequential so duplicates accumulate deterministically. `values`
// broadcasts against the result's shape as the user sees it (after place()).
void scatter_plan(const Tensor& dst, const Plan& p, const Tensor& values, bool accumulate) {
  FASTDL_CHECK(dst.device().is_cpu(), DeviceError, "index_put: CUDA tensors are not supported yet");
  Dims os = p.bshape;
  for (int i = 0; i < p.rest_shape.size(); ++i) os.push_back(p.rest_shape[i]);
  IntList perm = place_perm(p), ps;
  for (size_t i = 0; i < perm.size(); ++i) ps.push_back(os[int(perm[i])]);
  Tensor vals = contiguous(to_dtype(unplace(expand(detach(values), perm.empty() ? os.vec() : ps), p), dst.dtype()));
  char* base = static_cast<char*>(dst.data_ptr());
  const char* src = static_cast<const char*>(vals.data_ptr());
  size_t es = dst.itemsize();
  DType dt = dst.dtype();
  const int64_t rn = p.rest_shape.numel();
  if (rest_contiguous(p) && rn > 1 && (dt == DType::f32 || dt == DType::f64 || (!accumulate && es == 2))) {
    if (dt == DType::f32) scatter_rows(reinterpret_cast<float*>(base), reinterpret_cast<const float*>(src), p.offs, rn, accumulate);
    else if (dt == DType::f64) scatter_rows(reinterpret_cast<double*>(base), reinterpret_cast<const double*>(src), p.offs, rn, accumulate);
    else scatter_rows(reinterpret_cast<uint16_t*>(base), reinterpret_cast<const uint16_t*>(src), p.offs, rn, false);
    return;
  }
  if (!accumulate) {
    walk(p, [&](int64_t, int64_t off, int64_t lin) { copy_elem(base + off * int64_t(es), src + lin * int64_t(es), es); });
    return;
  }
  walk(p, [&](int64_t, int64_t off, int64_t lin) {
    char* d = base + off * int64_t(es);
    const char* s = src + lin * int64_t(es);
    switch (dt) {
      case DType::f32: *reinterpret_cast<float*>(d) += *reinterpret_cast<const float*>(s); break;
      case DType::f64: *reinterpret_cast<double*>(d) += *reinterpret_cast<const double*>(s); break;
      case DType::i32: *reinterpret_cast<int32_t*>(d) += *reinterpret_cast<const int32_t*>(s); break;
      case DType::i64: *reinterpret_cast<int64_t*>(d) += *reinterpret_cast<const int64_t*>(s); break;
      case DType::b8: *reinterpret_cast<uint8_t*>(d) |= *reinterpret_cast<const uint8_t*>(s); break;
      case DType::u8: *reinterpret_cast<uint8_t*>(d) += *reinterpret_cast<const uint8_t*>(s); break;
      case DType::i8: *reinterpret_cast<int8_t*>(d) += *reinterpret_cast<const int8_t*>(s); break;
      case DType::i16: *reinterpret_cast<int16_t*>(d) += *reinterpret_cast<const int16_t*>(s); break;
      case DType::f16: { uint16_t* h = reinterpret_cast<uint16_t*>(d);
        *h = f32_to_f16(f16_to_f32(*h) + f16_to_f32(*reinterpret_cast<const uint16_t*>(s))); break; }
      case DType::bf16: { uint16_t* h = reinterpret_cast<uint16_t*>(d);
        *h = f32_to_bf16(bf16_to_f32(*h) + bf16_to_f32(*reinterpret_cast<const uint16_t*>(s))); break; }
    }
  });
}

// Apply the basic part of a subscript; collect (dim, index tensor) pairs for the rest.
Tensor apply_basic(const Tensor& a, const std::vector<IndexItem>& items, std::vector<int>& ds, V& idx) {
  int consumed = 0, ell = 0;
  for (auto& it : items) {
    if (it.kind == IndexItem::Ellipsis) ++ell;
    else if (it.kind == IndexItem::TensorIdx) consumed += it.tensor.dtype() == DType::b8 ? std::max(it.tensor.ndim(), 1) : 1;
    else if (it.kind != IndexItem::NewAxis) ++consumed;
  }
  FASTDL_CHECK(ell <= 1, IndexError, "index: an index can only have a single ellipsis ('...')");
  FASTDL_CHECK(consumed <= a.ndim(), IndexError, "too many indices for tensor of dimension ", a.ndim(), " (got ", consumed, ")");
  Tensor v = a;
  int d = 0;
  for (auto& it : items) {
    switch (it.kind) {
      case IndexItem::Int: v = select(v, d, it.start); break;
      case IndexItem::Slice: {
        FASTDL_CHECK(it.step > 0, ValueError, "index: step must be greater than zero; got ", it.step);
        int64_t n = v.shape()[d];
        v = slice(v, d, it.has_start ? it.start : 0, it.has_stop ? it.stop : n, it.step);
        ++d;
        break;
      }
      case IndexItem::NewAxis: v = unsqueeze(v, d); ++d; break;
      case IndexItem::Ellipsis: d += a.ndim() - consumed; break;
      case IndexItem::TensorIdx: {
        const Tensor& t = it.tensor;
        if (t.dtype() == DType::b8) {
          int k = std::max(t.ndim(), 1);
          Tensor m = t.ndim() == 0 ? reshape(t, {1}) : t;
          if (t.ndim() == 0) { v = unsqueeze(v, d); }
          for (int j = 0; j < k; ++j)
            FASTDL_CHECK(m.shape()[j] == v.shape()[d + j], IndexError, "index: the shape of the mask ", shape_str(t.shape()),
                         " at index ", j, " does not match the shape of the indexed tensor ", shape_str(v.shape()), " at index ", d + j);
          Tensor nz = nonzero(m);
          for (int j = 0; j < k; ++j) { ds.push_back(d + j); idx.push_back(select(nz, 1, j)); }
          d += k;
        } else {
          FASTDL_CHECK(is_index(t.dtype()), IndexError, "index: tensors used as indices must be long, int or bool tensors; got ",
                       dtype_name(t.dtype()));
          ds.push_back(d); idx.push_back(t); ++d;
        }
        break;
      }
    }
  }
  return v;
}

}  // namespace

Tensor nonzero(const Tensor& a) {
  FASTDL_PROFILE("nonzero", a);
  Tensor c = contiguous(to_device(detach(a), Device()));
  Tensor b = c.dtype() == DType::b8 ? c : contiguous(binary_scalar(BinaryOp::ne, c, 0.0));
  const uint8_t* p = b.data<uint8_t>();
  int64_t n = b.numel(), cnt = 0;
  for (int64_t i = 0; i < n; ++i) cnt += p[i] != 0;
  int nd = a.ndim();
  Tensor out = empty(Dims{cnt, nd}, DType::i64);
  int64_t* o = out.data<int64_t>();
  Dims idx(nd, 0);
  for (int64_t i = 0; i < n; ++i) {
    if (p[i]) { for (int d = 0; d < nd; ++d) *o++ = idx[d]; }
    for (int d = nd - 1; d >= 0; --d) { if (++idx[d] < a.shape()[d]) break; idx[d] = 0; }
  }
  return to_device(out, a.device());
}

namespace {
Tensor index_put_items(const Tensor& a, const std::vector<IndexItem>& items, const Tensor& values, bool accumulate);
}  // namespace

Tensor index(const Tensor& a, const std::vector<IndexItem>& items) {
  FASTDL_PROFILE("index", a);
  std::vector<int> ds;
  V idx;
  Tensor v = apply_basic(a, items, ds, idx);
  if (ds.empty()) return v;
  Plan p = make_plan(v, ds, idx);
  Tensor out = place(gather_plan(v, p), p);
  if (autograd::any_requires_grad(v)) {
    Dims vs = v.shape();
    // the plan's offsets follow v's strides; the gradient buffer is contiguous: plan again
    autograd::record("IndexBackward0", {v}, out, [ds, idx, vs](V& g) {
      if (autograd::grad_enabled()) {  // create_graph: g accumulated into zeros by a differentiable index_put
        std::vector<IndexItem> items;
        for (int d = 0, k = 0; d < vs.size(); ++d) {
          bool adv = k < int(ds.size()) && ds[size_t(k)] == d;
          IndexItem it{adv ? IndexItem::TensorIdx : IndexItem::Slice};
          if (adv) it.tensor = idx[size_t(k++)];
          items.push_back(it);
        }
        return V{index_put_items(zeros(vs, g[0].dtype(), g[0].device()), items, g[0], true)};
      }
      Tensor z = zeros(vs, g[0].dtype(), Device());
      scatter_plan(z, make_plan(z, ds, idx), to_device(g[0], Device()), true);
      return V{to_device(z, g[0].device())};
    });
  }
  return out;
}

void index_set(const Tensor& a, const std::vector<IndexItem>& items, const Tensor& value) {
  FASTDL_PROFILE("index_put_", a, value);
  bool need = autograd::any_requires_grad(a, value);
  if (!need) {
    autograd::NoGradGuard ng;
    std::vector<int> ds;
    V idx;
    Tensor v = apply_basic(a, items, ds, idx);
    if (ds.empty()) {  // basic indexing: a view written by a copy
      check_no_internal_overlap("__setitem__", v);
      check_no_partial_overlap("__setitem__", v, value);
      copy_(v, value);
      return;
    }
    // advanced indexing scatters value element by element: no memory of it may be a's (PyTorch's
    // index_put_ raises there), nor may a's elements share memory
    check_no_internal_overlap("index_put_", a);
    check_no_overlap("index_put_", a, value);
    Plan p = make_plan(v, ds, idx);
    if (a.device().is_cuda()) {
      Tensor host = to_device(v, Device());
      Tensor hv = contiguous(host);
      // fall back through the host: gather whole view, scatter, copy back
      Plan hp = make_plan(hv, ds, idx);
      scatter_plan(hv, hp, to_device(value, Device()), false);
      copy_(v, hv);
      return;
    }
    scatter_plan(v, p, value, false);
    return;
  }
  FASTDL_CHECK(!(a.is_leaf() && a.requires_grad()), ValueError,
               "index_put_: a leaf Variable that requires grad is being used in an in-place operation");
  check_inplace_view(a);
  // Functional form, then rebase `a` onto it.
  Tensor out;
  {
    autograd::NoGradGuard ng;
    out = clone(a);
    index_set(out, items, value);
  }
  Dims vshape = value.shape();
  DType vdt = value.dtype();
  autograd::record("IndexPutBackward0", {a, value}, out, [items, vshape, vdt](V& g) {
    Tensor ga, gv;
    const bool graph = autograd::grad_enabled();  // create_graph: g times a constant 0/1 mask
    {
      autograd::NoGradGuard ng;
      ga = graph ? ones_like(g[0]) : clone(g[0]);
      index_set(ga, items, zeros(Dims(), ga.dtype(), ga.device()));
    }
    if (graph) ga = mul(g[0], ga);
    gv = to_dtype(sum_to(index(g[0], items), vshape), vdt);
    return V{ga, gv};
  });
  {
    autograd::NoGradGuard ng;
    copy_(a, out);
  }
  a.impl()->grad_fn = out.grad_fn();
  a.impl()->output_nr = 0;
  a.impl()->requires_grad = true;
  rebase_view_history(a);
}

namespace {
Tensor index_put_items(const Tensor& a, const std::vector<IndexItem>& items, const Tensor& values, bool accumulate) {
  Tensor out = clone(a);
  if (!accumulate) { index_set(out, items, values); return out; }
  std::vector<int> ds;
  V idx;
  Tensor v = apply_basic(detach(out), items, ds, idx);
  Plan p = make_plan(v, ds, idx);
  scatter_plan(v, p, values, true);
  if (autograd::any_requires_grad(a, values)) {  // out = a + scatter(values): a gets g, values get g[indices]
    Dims vshape = values.shape();
    DType vdt = values.dtype();
    autograd::record("IndexPutBackward0", {a, values}, out, [items, vshape, vdt](std::vector<Tensor>& g) {
      return std::vector<Tensor>{g[0], to_dtype(sum_to(index(g[0], items), vshape), vdt)};
    });
  }
  return out;
}
}  // namespace

Tensor index_put(const Tensor& a, const V& indices, const Tensor& values, bool accumulate) {
  FASTDL_PROFILE("index_put", a, indices, values);
  std::vector<IndexItem> items;
  for (auto& t : indices) { IndexItem it{IndexItem::TensorIdx}; it.tensor = t; items.push_back(it); }
  return index_put_items(a, items, values, accumulate);
}

namespace {

// A contiguous (outer, n, inner) array seen along its middle dim: out[o, j, :] = in[o, q[j], :]
// (select) and g_in[o, q[j], :] += g_out[o, j, :] (its adjoint, in index order so duplicates
// add deterministically).
struct Slabs {
  int64_t outer = 1, n = 1, inner = 1, m = 0;  // m: the number of indices
  const int64_t* q = nullptr;
};

Slabs slabs_of(const Dims& shape, int d, const Tensor& q) {
  Slabs s;
  for (int i = 0; i < d; ++i) s.outer *= shape[i];
  s.n = shape[d];
  for (int i = d + 1; i < int(shape.size()); ++i) s.inner *= shape[i];
  s.m = q.numel();
  s.q = q.data<int64_t>();
  return s;
}

template <class T> void select_elems(const Slabs& s, const T* src, T* dst) {  // inner == 1
  parallel_for(0, s.outer, std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(s.m, 1)), [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      const T* r = src + o * s.n;
      T* w = dst + o * s.m;
      for (int64_t j = 0; j < s.m; ++j) w[j] = r[s.q[j]];
    }
  });
}

void select_slabs(const Slabs& s, const char* src, char* dst, int64_t es) {
  if (s.inner == 1) {
    switch (es) {
      case 1: return select_elems(s, reinterpret_cast<const uint8_t*>(src), reinterpret_cast<uint8_t*>(dst));
      case 2: return select_elems(s, reinterpret_cast<const uint16_t*>(src), reinterpret_cast<uint16_t*>(dst));
      case 4: return select_elems(s, reinterpret_cast<const uint32_t*>(src), reinterpret_cast<uint32_t*>(dst));
      default: return select_elems(s, reinterpret_cast<const uint64_t*>(src), reinterpret_cast<uint64_t*>(dst));
    }
  }
  const int64_t row = s.inner * es;
  if (row == 0 || s.outer * s.m == 0) return;  // an empty slab (a zero-size trailing dim): nothing to copy
  parallel_for(0, s.outer * s.m, std::max<int64_t>(1, (int64_t(1) << 15) / row), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t o = r / s.m, j = r % s.m;
      std::memcpy(dst + r * row, src + (o * s.n + s.q[j]) * row, size_t(row));
    }
  });
}

template <class T> void select_add_back(const Slabs& s, const T* g, T* out) {
  // threads split the outer slabs, or (one slab) the columns; each walks the indices in order
  const bool by_outer = s.outer > 1 && s.outer >= s.inner;
  const int64_t tasks = by_outer ? s.outer : s.inner;
  const int64_t per = by_outer ? s.m * s.inner : s.m * s.outer;
  // one contiguous range per thread: column chunks stream whole row segments (short chunks
  // revisited every row with a 4 KB stride, which the prefetchers do not follow)
  const int64_t nt = std::max<int64_t>(1, get_num_threads());
  const int64_t grain = std::max<int64_t>({int64_t(1), (int64_t(1) << 15) / std::max<int64_t>(per, 1), (tasks + nt - 1) / nt});
  parallel_for(0, tasks, grain, [&](int64_t t0, int64_t t1) {
    const int64_t o0 = by_outer ? t0 : 0, o1 = by_outer ? t1 : s.outer;
    const int64_t c0 = by_outer ? 0 : t0, c1 = by_outer ? s.inner : t1;
    for (int64_t o = o0; o < o1; ++o)
      for (int64_t j = 0; j < s.m; ++j) {
        const T* __restrict src = g + (o * s.m + j) * s.inner;
        T* __restrict dst = out + (o * s.n + s.q[j]) * s.inner;
        for (int64_t c = c0; c < c1; ++c) dst[c] += src[c];
      }
  });
}

}  // namespace

Tensor index_select(const Tensor& a, int64_t dim, const Tensor& idx) {
  FASTDL_PROFILE("index_select", a, idx);
  FASTDL_CHECK(idx.ndim() <= 1, ValueError, "index_select: index must be 0-D or 1-D; got shape ", shape_str(idx.shape()));
  int d = wrap_dim(dim, a.ndim(), "index_select");
  FASTDL_CHECK(is_index(idx.dtype()), TypeError, "index_select: index must be an integer tensor; got ", dtype_name(idx.dtype()));
  const Tensor q = reshape(host_i64(idx), {idx.numel()});
  check_bounds(q, a.ndim() ? a.shape()[d] : 1, d, "index_select", false);
  if (a.ndim() == 0) return clone(a);  // the only valid index is 0
  if (a.device().is_cpu()) {  // a contiguous result, slab by slab (the general subscript walk below permutes)
    const Tensor src = contiguous(detach(a));
    Dims os = a.shape();
    os[size_t(d)] = q.numel();
    Tensor out = empty(os, a.dtype());
    const Slabs sl = slabs_of(a.shape(), d, q);
    select_slabs(sl, static_cast<const char*>(src.data_ptr()), static_cast<char*>(out.data_ptr()),
                 int64_t(a.itemsize()));
    if (autograd::any_requires_grad(a)) {
      const Dims shape = a.shape();
      autograd::record("IndexSelectBackward0", {a}, out, [q, d, shape](V& g) {
        const DType dt = g[0].dtype();
        if (autograd::grad_enabled() || (dt != DType::f32 && dt != DType::f64)) {  // create_graph, half types
          std::vector<IndexItem> items(size_t(d), IndexItem{IndexItem::Slice});
          IndexItem t{IndexItem::TensorIdx};
          t.tensor = q;
          items.push_back(t);
          return V{index_put_items(zeros(shape, dt, g[0].device()), items, g[0], true)};
        }
        Tensor gc = contiguous(g[0]);
        Tensor z = zeros(shape, dt, Device());
        const Slabs s = slabs_of(shape, d, q);
        if (dt == DType::f64) select_add_back(s, gc.data<double>(), z.data<double>());
        else select_add_back(s, gc.data<float>(), z.data<float>());
        return V{z};
      });
    }
    return out;
  }
  std::vector<IndexItem> items;
  for (int i = 0; i < d; ++i) { IndexItem s{IndexItem::Slice}; items.push_back(s); }
  IndexItem t{IndexItem::TensorIdx};
  t.tensor = idx.ndim() == 0 ? reshape(idx, {1}) : idx;
  items.push_back(t);
  return index(a, items);
}

namespace {
// gather / scatter_add address `a` (strides st) at every position of the index: the index's own
// coordinates, with dim d's replaced by the index value there. The walk goes row by row (rows: all
// dims but the last), the row's base offset from an odometer, the last dim a strided run:
//   f(i, off) for the flat index position i and a's element offset off.
// Rows [r0, r1) and columns [c0, c1) of the last dim; a range's first row is found by division.
// Index values outside [0, n) are skipped and set `bad` (the caller raises once the walk is done):
// the bounds check rides along with the walk instead of a pass of its own over the index.
template <class F>
void gs_walk(const Dims& ishape, int d, const Dims& st, const int64_t* q, int64_t r0, int64_t r1, int64_t c0,
             int64_t c1, int64_t n, std::atomic<bool>& bad, const F& f) {
  const int nd = int(ishape.size());
  if (r0 >= r1 || c0 >= c1) return;  // nothing (an empty index: some extent may be 0)
  const uint64_t un = uint64_t(n);
  if (nd == 0) {  // a 0-dim index addresses a 0-dim (or one-element) input
    if (uint64_t(q[0]) >= un) { bad.store(true, std::memory_order_relaxed); return; }
    f(0, q[0] * (st.empty() ? 0 : st[0]));
    return;
  }
  const int last = nd - 1;
  const int64_t cols = ishape[size_t(last)], sl = st[size_t(last)], sd = st[size_t(d)];
  Dims pos(size_t(nd), 0);
  int64_t rem = r0, base = 0;
  for (int k = last - 1; k >= 0; --k) {
    pos[size_t(k)] = rem % ishape[size_t(k)];
    rem /= ishape[size_t(k)];
    if (k != d) base += pos[size_t(k)] * st[size_t(k)];
  }
  bool out_of_range = false;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t* qr = q + r * cols;
    const int64_t i0 = r * cols;
    if (d == last) {
      for (int64_t c = c0; c < c1; ++c) {
        if (uint64_t(qr[c]) >= un) { out_of_range = true; continue; }
        f(i0 + c, base + qr[c] * sd);
      }
    } else {
      for (int64_t c = c0; c < c1; ++c) {
        if (uint64_t(qr[c]) >= un) { out_of_range = true; continue; }
        f(i0 + c, base + c * sl + qr[c] * sd);
      }
    }
    for (int k = last - 1; k >= 0; --k) {  // next row: the odometer, base updated incrementally
      if (k != d) base += st[size_t(k)];
      if (++pos[size_t(k)] < ishape[size_t(k)]) break;
      if (k != d) base -= pos[size_t(k)] * st[size_t(k)];
      pos[size_t(k)] = 0;
    }
  }
  if (out_of_range) bad.store(true, std::memory_order_relaxed);
}

// Shared setup of gather / scatter_add: shapes and bounds checked; the index as contiguous int64.
Tensor gs_index(const Tensor& a, int d, const Tensor& idx, const char* op) {
  FASTDL_CHECK(idx.ndim() == a.ndim(), ValueError, op, ": index tensor must have the same number of dimensions as input (",
               a.ndim(), "); got shape ", shape_str(idx.shape()));
  for (int k = 0; k < a.ndim(); ++k)
    FASTDL_CHECK(k == d || idx.shape()[k] <= a.shape()[k], ValueError, op, ": size of index ", shape_str(idx.shape()),
                 " does not fit input ", shape_str(a.shape()), " at dimension ", k);
  return host_i64(idx);  // bounds: checked by the walk (gs_walk), raised by gs_raise_if
}

// After a walk that met an index outside the input: PyTorch's error, naming the first one.
void gs_raise_if(const std::atomic<bool>& bad, const Tensor& hi, const Tensor& a, int d, const char* op) {
  if (bad.load()) check_bounds(hi, a.ndim() ? a.shape()[d] : 1, d, op, false);
}

// Work below which the walk stays on one thread (elements).
constexpr int64_t kGsGrain = 1 << 14;

template <class T> void gather_t(const Tensor& src, int d, const Tensor& hi, Tensor& out, std::atomic<bool>& bad) {
  const T* base = static_cast<const T*>(src.data_ptr());
  T* o = static_cast<T*>(out.data_ptr());
  const Dims& is = hi.shape();
  const int64_t cols = is.empty() ? 1 : is.back(), rows = cols ? hi.numel() / cols : 0;
  const int64_t n = src.ndim() ? src.shape()[d] : 1;
  // rows write disjoint parts of out: any split is safe
  parallel_for(0, rows, std::max<int64_t>(1, kGsGrain / std::max<int64_t>(1, cols)), [&](int64_t r0, int64_t r1) {
    gs_walk(is, d, src.strides(), hi.data<int64_t>(), r0, r1, 0, cols, n, bad,
            [&](int64_t i, int64_t off) { o[i] = base[off]; });
  });
}

// Walk of scatter / scatter_add over out at every index position, f(i, off) per element: two
// positions collide only if they differ in dim d alone, so with d the last dim rows are disjoint in
// out and otherwise columns of the last dim are; each thread owns one kind of range, and within a
// thread the index order decides (a repeated position's last write wins).
template <class F> void scatter_walk(Tensor& out, int d, const Tensor& hi, std::atomic<bool>& bad, const F& f) {
  const Dims& is = hi.shape();
  const int nd = int(is.size());
  const int64_t cols = nd ? is.back() : 1, rows = cols ? hi.numel() / cols : 0;
  const int64_t* q = hi.data<int64_t>();
  const int64_t n = out.ndim() ? out.shape()[d] : 1;
  if (nd >= 2 && d == nd - 1) {
    parallel_for(0, rows, std::max<int64_t>(1, kGsGrain / std::max<int64_t>(1, cols)), [&](int64_t r0, int64_t r1) {
      gs_walk(is, d, out.strides(), q, r0, r1, 0, cols, n, bad, f);
    });
  } else if (nd >= 2) {
    parallel_for(0, cols, std::max<int64_t>(1, kGsGrain / std::max<int64_t>(1, rows)), [&](int64_t c0, int64_t c1) {
      gs_walk(is, d, out.strides(), q, 0, rows, c0, c1, n, bad, f);
    });
  } else {
    gs_walk(is, d, out.strides(), q, 0, rows, 0, cols, n, bad, f);
  }
}

// out[index positions] += src, by dtype.
template <class T> void scatter_add_t(Tensor& out, int d, const Tensor& hi, const Tensor& sv, std::atomic<bool>& bad) {
  T* o = static_cast<T*>(out.data_ptr());
  const T* v = static_cast<const T*>(sv.data_ptr());
  scatter_walk(out, d, hi, bad, [&](int64_t i, int64_t off) { o[off] += v[i]; });
}

// out[index positions] = src, by element size (every dtype).
template <class T> void scatter_set_t(Tensor& out, int d, const Tensor& hi, const Tensor& sv, std::atomic<bool>& bad) {
  T* o = static_cast<T*>(out.data_ptr());
  const T* v = static_cast<const T*>(sv.data_ptr());
  scatter_walk(out, d, hi, bad, [&](int64_t i, int64_t off) { o[off] = v[i]; });
}
}  // namespace

Tensor gather(const Tensor& a, int64_t dim, const Tensor& idx) {
  FASTDL_PROFILE("gather", a, idx);
  int d = wrap_dim(dim, a.ndim(), "gather");
  // An empty index selects nothing: PyTorch takes it of any integer type and rank, and the
  // result has its shape.
  const bool empty_int = idx.numel() == 0 && is_integral(idx.dtype()) && idx.dtype() != DType::b8;
  FASTDL_CHECK(is_index(idx.dtype()) || empty_int, TypeError, "gather: index must be an int64 or int32 tensor; got ",
               dtype_name(idx.dtype()));
  if (idx.numel() == 0) {
    Tensor out = empty(idx.shape(), a.dtype(), a.device());
    if (autograd::any_requires_grad(a)) {
      Dims as = a.shape();
      autograd::record("GatherBackward0", {a}, out, [as](V& g) { return V{zeros(as, g[0].dtype(), g[0].device())}; });
    }
    return out;
  }
  if (a.ndim() == 0 && idx.ndim() == 1) return gather(reshape(a, {1}), 0, idx);  // a 0-dim input acts as 1-D (PyTorch)
  Tensor src = to_device(detach(a), Device());
  Tensor hi = gs_index(src, d, idx, "gather");
  Tensor out = empty(idx.shape(), a.dtype());
  std::atomic<bool> bad{false};
  switch (a.itemsize()) {
    case 1: gather_t<uint8_t>(src, d, hi, out, bad); break;
    case 2: gather_t<uint16_t>(src, d, hi, out, bad); break;
    case 4: gather_t<uint32_t>(src, d, hi, out, bad); break;
    default: gather_t<uint64_t>(src, d, hi, out, bad); break;
  }
  gs_raise_if(bad, hi, src, d, "gather");
  out = to_device(out, a.device());
  if (autograd::any_requires_grad(a)) {
    Dims as = a.shape();
    autograd::record("GatherBackward0", {a}, out, [as, d, idx](V& g) {
      return V{scatter_add(zeros(as, g[0].dtype(), g[0].device()), d, idx, g[0])};
    });
  }
  return out;
}

// scatter without a reduction: a copy of a with src's elements written where index points along
// dim. Gradients as PyTorch's: a's is g with the written positions zeroed, src's g gathered.
Tensor scatter_src(const Tensor& a, int64_t dim, const Tensor& idx, const Tensor& src) {
  FASTDL_PROFILE("scatter", a, idx, src);
  int d = wrap_dim(dim, a.ndim(), "scatter");
  FASTDL_CHECK(is_index(idx.dtype()), TypeError, "scatter: index must be an int64 tensor; got ", dtype_name(idx.dtype()));
  FASTDL_CHECK(src.ndim() == idx.ndim(), ValueError, "scatter: src must have the same number of dims as index; got src ",
               shape_str(src.shape()), " and index ", shape_str(idx.shape()));
  for (int k = 0; k < idx.ndim(); ++k)
    FASTDL_CHECK(idx.shape()[k] <= src.shape()[k], ValueError, "scatter: index ", shape_str(idx.shape()),
                 " is larger than src ", shape_str(src.shape()), " at dimension ", k);
  FASTDL_CHECK(src.dtype() == a.dtype(), TypeError, "scatter: expected self.dtype to be equal to src.dtype; got ",
               dtype_name(a.dtype()), " and ", dtype_name(src.dtype()));
  Tensor out = contiguous(to_device(clone(detach(a)), Device()));
  Tensor hi = gs_index(out, d, idx, "scatter");
  Tensor s = src;
  for (int k = 0; k < idx.ndim(); ++k) s = slice(detach(s), k, 0, idx.shape()[k], 1);
  Tensor sv = contiguous(to_device(s, Device()));
  std::atomic<bool> bad{false};
  switch (out.itemsize()) {
    case 1: scatter_set_t<uint8_t>(out, d, hi, sv, bad); break;
    case 2: scatter_set_t<uint16_t>(out, d, hi, sv, bad); break;
    case 4: scatter_set_t<uint32_t>(out, d, hi, sv, bad); break;
    default: scatter_set_t<uint64_t>(out, d, hi, sv, bad); break;
  }
  gs_raise_if(bad, hi, out, d, "scatter");
  out = to_device(out, a.device());
  if (autograd::any_requires_grad(a, src)) {
    const Dims sshape = src.shape();
    autograd::record("ScatterBackward0", {a, src}, out, [d, idx, sshape](V& g) {
      Tensor ga = scatter_src(g[0], d, idx, zeros(idx.shape(), g[0].dtype(), g[0].device()));
      Tensor gs = gather(g[0], d, idx);
      for (int k = 0; k < int(sshape.size()); ++k)  // src larger than index: the rest of it gets zeros
        if (gs.shape()[k] < sshape[size_t(k)]) {
          Dims zs = gs.shape();
          zs[size_t(k)] = sshape[size_t(k)] - gs.shape()[k];
          gs = cat({gs, zeros(zs, gs.dtype(), gs.device())}, k);
        }
      return V{ga, gs};
    });
  }
  return out;
}

Tensor scatter_add(const Tensor& a, int64_t dim, const Tensor& idx, const Tensor& src) {
  FASTDL_PROFILE("scatter_add", a, idx, src);
  int d = wrap_dim(dim, a.ndim(), "scatter_add");
  FASTDL_CHECK(is_index(idx.dtype()), TypeError, "scatter_add: index must be an int64 tensor; got ", dtype_name(idx.dtype()));
  FASTDL_CHECK(src.ndim() == idx.ndim(), ValueError, "scatter_add: src must have the same number of dims as index");
  for (int k = 0; k < idx.ndim(); ++k)
    FASTDL_CHECK(idx.shape()[k] <= src.shape()[k], ValueError, "scatter_add: index ", shape_str(idx.shape()),
                 " is larger than src ", shape_str(src.shape()), " at dimension ", k);
  FASTDL_CHECK(src.dtype() == a.dtype(), TypeError, "scatter_add: expected self.dtype to be equal to src.dtype; got ",
               dtype_name(a.dtype()), " and ", dtype_name(src.dtype()));
  // half types accumulate in float32
  Tensor base = is_half(a.dtype()) ? to_dtype(detach(a), DType::f32) : clone(detach(a));
  Tensor out = contiguous(to_device(base, Device()));
  Tensor hi = gs_index(out, d, idx, "scatter_add");
  // src restricted to index's shape
  Tensor s = src;
  for (int k = 0; k < idx.ndim(); ++k) s = slice(detach(s), k, 0, idx.shape()[k], 1);
  Tensor sv = contiguous(to_dtype(to_device(s, Device()), out.dtype()));
  std::atomic<bool> bad{false};
  switch (out.dtype()) {
    case DType::f32: scatter_add_t<float>(out, d, hi, sv, bad); break;
    case DType::f64: scatter_add_t<double>(out, d, hi, sv, bad); break;
    case DType::i32: scatter_add_t<int32_t>(out, d, hi, sv, bad); break;
    case DType::i64: scatter_add_t<int64_t>(out, d, hi, sv, bad); break;
    case DType::u8: scatter_add_t<uint8_t>(out, d, hi, sv, bad); break;
    case DType::i8: scatter_add_t<int8_t>(out, d, hi, sv, bad); break;
    case DType::i16: scatter_add_t<int16_t>(out, d, hi, sv, bad); break;
    default: throw TypeError(str_cat("scatter_add: unsupported dtype ", dtype_name(out.dtype())));
  }
  gs_raise_if(bad, hi, out, d, "scatter_add");
  if (out.dtype() != a.dtype()) out = to_dtype(out, a.dtype());
  out = to_device(out, a.device());
  if (autograd::any_requires_grad(a, src)) {
    autograd::record("ScatterAddBackward0", {a, src}, out, [d, idx](V& g) {
      return V{g[0], gather(g[0], d, idx)};
    });
  }
  return out;
}

Tensor masked_fill(const Tensor& a, const Tensor& mask, double v) {
  FASTDL_PROFILE("masked_fill", a, mask);
  FASTDL_CHECK(mask.dtype() == DType::b8, TypeError, "masked_fill: mask must be a bool tensor; got ", dtype_name(mask.dtype()));
  return where(mask, full(Dims(), v, a.dtype(), a.device()), a);
}

Tensor embedding(const Tensor& weight, const Tensor& idx) {
  FASTDL_PROFILE("embedding", weight, idx);
  FASTDL_CHECK(weight.ndim() == 2, ValueError, "embedding: weight must be 2-D; got shape ", shape_str(weight.shape()));
  FASTDL_CHECK(is_index(idx.dtype()), TypeError, "embedding: indices must be an integer tensor; got ", dtype_name(idx.dtype()));
  Tensor flat = reshape(idx, {-1});
  if (flat.numel()) {
    int64_t lo = int64_t(item(amin(flat, {}, false))), hi = int64_t(item(amax(flat, {}, false))), n = weight.shape()[0];
    FASTDL_CHECK(lo >= 0 && hi < n, IndexError, "embedding: index ", lo < 0 ? lo : hi, " is out of range for ", n,
                 " embeddings (weight of shape ", shape_str(weight.shape()), ")");
  }
  Tensor rows = index_select(weight, 0, flat);
  IntList shape = idx.shape().vec();
  shape.push_back(weight.shape()[1]);
  return reshape(rows, shape);
}

Tensor one_hot(const Tensor& idx, int64_t num_classes) {
  FASTDL_PROFILE("one_hot", idx);
  FASTDL_CHECK(is_index(idx.dtype()), TypeError, "one_hot: indices must be an integer tensor; got ", dtype_name(idx.dtype()));
  if (num_classes < 0) num_classes = idx.numel() ? int64_t(item(amax(idx, {}, false))) + 1 : 0;
  Tensor cls = arange(0, double(num_classes), 1, DType::i64, idx.device());
  Tensor hi = host_i64(idx);
  check_bounds(hi, num_classes, 0, "one_hot");
  return to_dtype(binary(BinaryOp::eq, unsqueeze(to_dtype(idx, DType::i64), -1), cls), DType::i64);
}

}  // namespace fastdl
