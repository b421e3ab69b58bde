// Tensor: a handle to a TensorImpl, which is a strided view (shape, strides, offset in
// elements) over a shared Storage, plus the autograd fields.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/ref.h"
#include "core/small_vec.h"
#include "core/storage.h"

namespace fastdl {

namespace autograd { struct Node; }
struct TensorImpl;

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(Ref<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return bool(impl_); }
  TensorImpl* impl() const { return impl_.get(); }
  const Ref<TensorImpl>& ref() const { return impl_; }

  const Dims& shape() const;
  const Dims& strides() const;
  int ndim() const;
  int64_t size(int d) const;     // negative d counts from the end
  int64_t stride(int d) const;
  int64_t numel() const;
  int64_t offset() const;
  DType dtype() const;
  Device device() const;
  size_t itemsize() const { return dtype_size(dtype()); }
  bool is_contiguous() const;
  const Ref<Storage>& storage() const;
  void* data_ptr() const;  // storage data + offset * itemsize
  template <class T> T* data() const { return static_cast<T*>(data_ptr()); }

  // autograd fields
  bool requires_grad() const;
  void set_requires_grad(bool r);
  Tensor grad() const;
  void set_grad(const Tensor& g);
  const Ref<autograd::Node>& grad_fn() const;
  bool is_leaf() const;

  bool same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  Ref<TensorImpl> impl_;
};

// In-place writes through the user-facing ops (x.add_(), x[i] = v, copy_, optimizer steps)
// count here (Tensor._version). Views and detach() share their base's counter; `.data` and
// tensors over the same memory made otherwise get their own, as in PyTorch. A backward node
// checks that the tensors it saved are still at the version it saw.
struct VersionCounter : RefCounted {
  std::atomic<uint32_t> value{0};
};

struct TensorImpl;
// The link from views to their root base, shared by the base and every view of it: `base` points to
// the base while it lives (its destructor clears it). Views hold the link, not the base, so a node
// that saves a view never keeps the base (and through its history, itself) alive: no cycles.
struct BaseLink : RefCounted {
  TensorImpl* base = nullptr;
};

struct TensorImpl : RefCounted {
  Ref<Storage> storage;
  Ref<VersionCounter> version;  // never null
  Dims shape, strides;
  int64_t offset = 0;
  int64_t numel = 1;
  DType dtype = DType::f32;
  bool contiguous = true;
  // autograd
  bool requires_grad = false;
  bool retains_grad = false;
  uint32_t output_nr = 0;
  Ref<autograd::Node> grad_fn;
  Ref<TensorImpl> grad;
  // Views: the link to the root base (make_view), through which an in-place write with autograd
  // rebases the base's history too (rebase_view_history, as PyTorch's CopySlices). Bases: the link
  // their views share, made with the first view. Null otherwise.
  Ref<BaseLink> view_of, as_base;
  TensorImpl* view_base() const { return view_of ? view_of->base : nullptr; }
  std::vector<std::function<Tensor(const Tensor&)>> hooks;  // leaf gradient hooks (register_hook)
  void refresh();        // recompute numel and contiguity after shape/strides change
  ~TensorImpl() override;
};

inline const Dims& Tensor::shape() const { return impl_->shape; }
inline const Dims& Tensor::strides() const { return impl_->strides; }
inline int Tensor::ndim() const { return impl_->shape.size(); }
inline int64_t Tensor::numel() const { return impl_->numel; }
inline int64_t Tensor::offset() const { return impl_->offset; }
inline DType Tensor::dtype() const { return impl_->dtype; }
inline Device Tensor::device() const { return impl_->storage->device; }
inline bool Tensor::is_contiguous() const { return impl_->contiguous; }
inline const Ref<Storage>& Tensor::storage() const { return impl_->storage; }
inline void* Tensor::data_ptr() const {
  return static_cast<char*>(impl_->storage->data) + impl_->offset * int64_t(dtype_size(impl_->dtype));
}
inline bool Tensor::requires_grad() const { return impl_->requires_grad; }
inline const Ref<autograd::Node>& Tensor::grad_fn() const { return impl_->grad_fn; }
inline bool Tensor::is_leaf() const { return !impl_->grad_fn; }

// An in-place write to t's memory (see VersionCounter).
inline void bump_version(const Tensor& t) {
  if (t.defined()) t.impl()->version->value.fetch_add(1, std::memory_order_relaxed);
}

Dims contiguous_strides(const Dims& shape);
int wrap_dim(int64_t d, int ndim, const char* op);  // raises IndexError naming op

// Creation (no autograd; storage uninitialised for empty()).
Tensor empty(const Dims& shape, DType dt, Device dev = Device());
Tensor empty_like(const Tensor& t);  // contiguous, same dtype/device
// An empty tensor of `shape` laid out as `like` when like has that shape and is a dense,
// non-overlapping permutation of a contiguous tensor (a transpose, a permute): elementwise results
// keep their operands' layout, as PyTorch's do, so that all of them walk memory in order.
// Contiguous otherwise. Not a view.
Tensor empty_in_layout(const Tensor& like, const Dims& shape, DType dt, Device dev);
Tensor make_view(const Tensor& base, Dims shape, Dims strides, int64_t offset);
// A tensor over s; it counts its in-place writes on `version` (a view's or alias's base's), or on a
// fresh counter when none is given.
Tensor from_storage(Ref<Storage> s, Dims shape, Dims strides, int64_t offset, DType dt,
                    Ref<VersionCounter> version = Ref<VersionCounter>());

}  // namespace fastdl
