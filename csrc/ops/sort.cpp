// Sorting ops (sort.h): checks, output shapes, the CPU kernels of cpu/sort.h, and the backward
// (scatter the values' gradient to the indices they came from).
#include "ops/sort.h"

#include <limits>

#include "autograd/node.h"
#include "core/profiler.h"
#include "cpu/sort.h"
#include "ops/ops.h"

namespace fastdl {

namespace {

enum class Kind { sort, topk, kth };

// Values and indices of `a` (ndim >= 1) with dim d cut to m per row, from the CPU kernel.
std::pair<Tensor, Tensor> run_rows(Kind kind, const Tensor& a, int d, int64_t m, int64_t k, bool desc, bool sorted,
                                   const char* op) {
  Tensor x = a.device().is_cpu() ? detach(a) : to_device(detach(a), Device());
  int64_t n = x.shape()[d];
  FASTDL_CHECK(n <= int64_t(std::numeric_limits<uint32_t>::max()), ValueError, op, ": dim ", d, " of shape ",
               shape_str(a.shape()), " is longer than 2^32 - 1");
  Dims shape = x.shape();
  shape[d] = m;
  Tensor v = empty(shape, x.dtype()), idx = empty(shape, DType::i64);
  if (v.numel() > 0) {
    cpu::SortParams p{};
    p.dt = x.dtype();
    p.in = static_cast<const char*>(x.data_ptr());
    p.values = static_cast<char*>(v.data_ptr());
    p.indices = idx.data<int64_t>();
    p.n = n;
    p.k = k;
    p.in_stride = x.strides()[d];
    p.out_stride = v.strides()[d];
    for (int i = 0; i < x.ndim(); ++i) {
      if (i == d) continue;
      p.shape.push_back(x.shape()[i]);
      p.in_strides.push_back(x.strides()[i]);
      p.out_strides.push_back(v.strides()[i]);
    }
    p.descending = desc;
    p.sorted = sorted;
    if (kind == Kind::sort) cpu::sort_fwd(p);
    else if (kind == Kind::topk) cpu::topk_fwd(p);
    else cpu::kthvalue_fwd(p);
  }
  if (!a.device().is_cpu()) { v = to_device(v, a.device()); idx = to_device(idx, a.device()); }
  return {v, idx};
}

// Gradient of values gathered along d by idx (same shape as the values) from `a`.
void record_scatter(const char* name, const Tensor& a, Tensor& vals, const Tensor& idx, int d) {
  if (!autograd::any_requires_grad(a)) return;
  Dims shape = a.shape();
  autograd::record(name, {a}, vals, [idx, shape, d](std::vector<Tensor>& g) {
    Tensor z = zeros(shape, g[0].dtype(), g[0].device());
    return std::vector<Tensor>{scatter_add(z, d, idx, g[0])};
  });
}

}  // namespace

std::pair<Tensor, Tensor> sort(const Tensor& a, int64_t dim, bool descending) {
  FASTDL_PROFILE("sort", a);
  int d = wrap_dim(dim, a.ndim(), "sort");
  if (a.ndim() == 0) {
    auto r = sort(reshape(a, {1}), 0, descending);
    return {reshape(r.first, {}), reshape(r.second, {})};
  }
  auto r = run_rows(Kind::sort, a, d, a.shape()[d], 0, descending, true, "sort");
  record_scatter("SortBackward0", a, r.first, r.second, d);
  return r;
}

std::pair<Tensor, Tensor> topk(const Tensor& a, int64_t k, int64_t dim, bool largest, bool sorted) {
  FASTDL_PROFILE("topk", a);
  int d = wrap_dim(dim, a.ndim(), "topk");
  int64_t n = a.ndim() ? a.shape()[d] : 1;
  FASTDL_CHECK(k >= 0 && k <= n, ValueError, "topk: k (", k, ") is out of range for dimension ", d,
               " of size ", n, "; input shape ", shape_str(a.shape()));
  if (a.ndim() == 0) {  // PyTorch: a 0-dim result for k 0 or 1
    auto r = topk(reshape(a, {1}), 1, 0, largest, sorted);
    return {reshape(r.first, {}), reshape(r.second, {})};
  }
  auto r = run_rows(Kind::topk, a, d, k, k, largest, sorted, "topk");
  record_scatter("TopkBackward0", a, r.first, r.second, d);
  return r;
}

std::pair<Tensor, Tensor> kthvalue(const Tensor& a, int64_t k, int64_t dim, bool keepdim) {
  FASTDL_PROFILE("kthvalue", a);
  int d = wrap_dim(dim, a.ndim(), "kthvalue");
  int64_t n = a.ndim() ? a.shape()[d] : 1;
  FASTDL_CHECK(k >= 1 && k <= n, ValueError, "kthvalue: k (", k, ") is out of range for dimension ", d,
               " of size ", n, "; input shape ", shape_str(a.shape()));
  if (a.ndim() == 0) {
    auto r = kthvalue(reshape(a, {1}), k, 0, true);
    return {reshape(r.first, {}), reshape(r.second, {})};
  }
  auto r = run_rows(Kind::kth, a, d, 1, k, false, true, "kthvalue");
  record_scatter("KthvalueBackward0", a, r.first, r.second, d);
  if (!keepdim) {
    r.first = squeeze(r.first, IntList{d});
    r.second = squeeze(r.second, IntList{d});
  }
  return r;
}

}  // namespace fastdl
