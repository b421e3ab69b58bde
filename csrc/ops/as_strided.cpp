// as_strided: a view with any size / stride / storage offset over a tensor's storage, and its
// backward, which (as PyTorch's) goes through a zero buffer shaped like the storage region both
// geometries touch, so overlapping views (stride 0, windows that share elements) get the sum of
// their gradients.
#include <algorithm>

#include "autograd/node.h"
#include "core/profiler.h"
#include "ops/ops.h"

namespace fastdl {

namespace {

// Storage positions of every element of the geometry (shape, strides, offset), flat, int64.
Tensor positions(const Dims& shape, const Dims& strides, int64_t offset, Device dev) {
  Tensor pos = full(Dims(), double(offset), DType::i64, dev);
  int n = shape.size();
  for (int d = 0; d < n; ++d) {
    IntList view(static_cast<size_t>(n), 1);
    view[size_t(d)] = shape[d];
    Tensor r = arange(0, double(shape[d]), 1, DType::i64, dev);
    pos = binary(BinaryOp::add, pos, reshape(binary_scalar(BinaryOp::mul, r, double(strides[d])), view));
  }
  return reshape(expand(pos, shape.vec()), {-1});
}

// True when two elements of the geometry may share a storage position (PyTorch's
// maybe_overlapping_memory): the dims of size > 1, by stride, each step past the span of
// the smaller ones.
bool may_overlap(const Dims& shape, const Dims& strides) {
  std::vector<std::pair<int64_t, int64_t>> dims;  // (stride, size)
  for (int d = 0; d < shape.size(); ++d)
    if (shape[d] > 1) dims.emplace_back(strides[d], shape[d]);
  std::sort(dims.begin(), dims.end());
  int64_t span = 0;  // the largest offset the smaller dims reach
  for (auto [st, n] : dims) {
    if (st <= span) return true;
    span += st * (n - 1);
  }
  return false;
}

int64_t last_position(const Dims& shape, const Dims& strides, int64_t offset) {
  for (int d = 0; d < shape.size(); ++d) offset += (shape[d] - 1) * strides[d];
  return offset;
}

}  // namespace

Tensor as_strided(const Tensor& a, const IntList& size, const IntList& stride, std::optional<int64_t> storage_offset) {
  FASTDL_PROFILE("as_strided", a);
  FASTDL_CHECK(size.size() == stride.size(), ValueError, "as_strided: size ", shape_str(size), " and stride ",
               shape_str(stride), " must have the same length");
  int64_t off = storage_offset.value_or(a.offset());
  FASTDL_CHECK(off >= 0, ValueError, "as_strided: storage_offset must be >= 0; got ", off);
  int64_t numel = 1;
  for (size_t d = 0; d < size.size(); ++d) {
    FASTDL_CHECK(size[d] >= 0, ValueError, "as_strided: size ", shape_str(size), " has a negative dimension");
    FASTDL_CHECK(stride[d] >= 0, ValueError, "as_strided: stride ", shape_str(stride), " has a negative entry");
    numel *= size[d];
  }
  Dims s(size), st(stride);
  int64_t storage_numel = int64_t(a.storage()->nbytes / dtype_size(a.dtype()));
  if (numel > 0) {
    int64_t last = last_position(s, st, off);
    FASTDL_CHECK(last < storage_numel, ValueError, "as_strided: size ", shape_str(size), ", stride ",
                 shape_str(stride), " and storage_offset ", off, " reach element ", last, " of a storage of ",
                 storage_numel, " elements (input shape ", shape_str(a.shape()), ")");
  }
  Tensor v = make_view(a, s, st, off);
  if (!autograd::any_requires_grad(a)) return v;
  Dims in_shape = a.shape(), in_strides = a.strides();
  int64_t in_off = a.offset();
  autograd::record("AsStridedBackward0", {a}, v, [=](std::vector<Tensor>& g) {
    const Tensor& go = g[0];
    Device dev = go.device();
    int64_t in_numel = 1;
    for (int d = 0; d < in_shape.size(); ++d) in_numel *= in_shape[d];
    if (go.numel() == 0 || in_numel == 0)
      return std::vector<Tensor>{zeros(in_shape, go.dtype(), dev)};
    int64_t lo = std::min(in_off, off);
    int64_t hi = std::max(last_position(in_shape, in_strides, in_off), last_position(s, st, off)) + 1;
    Tensor out_pos = binary_scalar(BinaryOp::sub, positions(s, st, off, dev), double(lo));
    Tensor in_pos = binary_scalar(BinaryOp::sub, positions(in_shape, in_strides, in_off, dev), double(lo));
    Tensor buf = scatter_add(zeros({hi - lo}, go.dtype(), dev), 0, out_pos, reshape(go, {-1}));
    if (may_overlap(in_shape, in_strides)) {  // an element the input holds n times gets 1/n of its gradient each
      Tensor count = scatter_add(zeros({hi - lo}, go.dtype(), dev), 0, in_pos, ones({in_pos.numel()}, go.dtype(), dev));
      buf = binary(BinaryOp::div, buf, clamp(count, 1.0, std::nullopt));
    }
    return std::vector<Tensor>{reshape(gather(buf, 0, in_pos), in_shape.vec())};
  });
  return v;
}

namespace {
// Whether t's elements are distinct and fill [data, data + numel) with no gap, strides positive
// (PyTorch's is_non_overlapping_and_dense).
bool dense(const Tensor& t) {
  std::vector<std::pair<int64_t, int64_t>> d;  // (stride, size) of the dims that move
  for (int64_t i = 0; i < t.ndim(); ++i)
    if (t.shape()[i] > 1) d.emplace_back(t.strides()[i], t.shape()[i]);
  std::sort(d.begin(), d.end());
  int64_t expect = 1;
  for (const auto& [st, n] : d) {
    if (st != expect) return false;
    expect *= n;
  }
  return true;
}
}  // namespace

void check_no_internal_overlap(const char* op, const Tensor& out, const char* suffix) {
  if (out.numel() == 0) return;  // nothing written (an empty tensor's strides may be anything)
  for (int64_t i = 0; i < out.ndim(); ++i)
    FASTDL_CHECK(!(out.strides()[i] == 0 && out.shape()[i] > 1), RuntimeError, op, suffix,
                 ": unsupported operation: more than one element of the written-to tensor (shape ", shape_str(out.shape()),
                 ", strides ", shape_str(out.strides()), ") refers to a single memory location; clone() it first");
}

namespace {
// Raises when in shares memory with out, except (full_ok) all of it in out's own layout.
void overlap_check(const char* op, const Tensor& out, const Tensor& in, const char* suffix, bool full_ok) {
  if (!in.defined() || out.numel() == 0 || in.numel() == 0 || out.storage().get() != in.storage().get()) return;
  bool full = out.same(in), shared = full;
  if (!full) {
    if (!dense(out) || !dense(in)) return;  // too hard to decide: let it through
    const char* ob = static_cast<const char*>(out.data_ptr());
    const char* ib = static_cast<const char*>(in.data_ptr());
    const char* oe = ob + out.numel() * int64_t(out.itemsize());
    const char* ie = ib + in.numel() * int64_t(in.itemsize());
    full = ob == ib && oe == ie && out.strides() == in.strides();
    shared = ob < ie && ib < oe;
  }
  FASTDL_CHECK(!shared || (full && full_ok), RuntimeError, op, suffix,
               ": unsupported operation: some elements of the input tensor (shape ", shape_str(in.shape()), ", strides ",
               shape_str(in.strides()), ") and the written-to tensor (shape ", shape_str(out.shape()), ", strides ",
               shape_str(out.strides()), ") refer to a single memory location; clone() the input first");
}
}  // namespace

void check_no_partial_overlap(const char* op, const Tensor& out, const Tensor& in, const char* suffix) {
  overlap_check(op, out, in, suffix, true);
}
void check_no_overlap(const char* op, const Tensor& out, const Tensor& in) { overlap_check(op, out, in, "", false); }

void check_inplace_view(const Tensor& view) {
  const TensorImpl* bi = view.impl()->view_base();
  if (!bi || !autograd::grad_enabled()) return;
  FASTDL_CHECK(!(!bi->grad_fn && bi->requires_grad), ValueError,
               "a view of a leaf Variable that requires grad is being used in an in-place operation");
}

void rebase_view_history(const Tensor& view) {
  TensorImpl* vi = view.impl();
  TensorImpl* bi = vi->view_base();
  if (!bi || !vi->requires_grad || !autograd::grad_enabled()) return;  // no base alive: no one sees its history
  check_inplace_view(view);
  Tensor base{Ref<TensorImpl>(bi)};
  const Dims bshape = base.shape(), bstrides = base.strides(), vshape = view.shape(), vstrides = view.strides();
  const int64_t boff = base.offset(), voff = view.offset();
  // g (the base's gradient) splits by storage position: the view's elements go to the view's new
  // history, the rest to the base's old one.
  autograd::record("CopySlices", {base, view}, base, [=](std::vector<Tensor>& g) {
    const Tensor& go = g[0];
    Device dev = go.device();
    if (go.numel() == 0) return std::vector<Tensor>{go, zeros(vshape, go.dtype(), dev)};
    int64_t vnumel = 1;
    for (int d = 0; d < vshape.size(); ++d) vnumel *= vshape[d];
    if (vnumel == 0) return std::vector<Tensor>{go, zeros(vshape, go.dtype(), dev)};
    const int64_t lo = std::min(boff, voff);
    const int64_t hi = std::max(last_position(bshape, bstrides, boff), last_position(vshape, vstrides, voff)) + 1;
    Tensor bpos = binary_scalar(BinaryOp::sub, positions(bshape, bstrides, boff, dev), double(lo));
    Tensor vpos = binary_scalar(BinaryOp::sub, positions(vshape, vstrides, voff, dev), double(lo));
    Tensor buf = scatter_add(zeros({hi - lo}, go.dtype(), dev), 0, bpos, reshape(go, {-1}));
    Tensor gview = reshape(gather(buf, 0, vpos), vshape.vec());
    Tensor inside = scatter_add(zeros({hi - lo}, go.dtype(), dev), 0, vpos, ones({vpos.numel()}, go.dtype(), dev));
    Tensor keep = reshape(binary_scalar(BinaryOp::eq, gather(inside, 0, bpos), 0.0), bshape.vec());
    return std::vector<Tensor>{binary(BinaryOp::mul, go, to_dtype(keep, go.dtype())), gview};
  });
  // the view is now a view of the base's new history
  Tensor nv = as_strided(base, vshape.vec(), vstrides.vec(), voff);
  vi->grad_fn = nv.grad_fn();
  vi->output_nr = nv.impl()->output_nr;
}

}  // namespace fastdl
