#include "core/tensor.h"

#include <algorithm>

#include "autograd/node.h"
#include "core/allocator.h"
#include "cuda/cuda_api.h"

namespace fastdl {

DType promote(DType a, DType b) {
  if (a == b) return a;
  auto rank = [](DType t) {
    switch (t) {
      case DType::b8: return 0;
      case DType::u8: case DType::i8: return 1;
      case DType::i16: return 2;
      case DType::i32: return 3;
      case DType::i64: return 4;
      case DType::f16: case DType::bf16: return 5;
      case DType::f32: return 6;
      case DType::f64: return 7;
    }
    return 0;
  };
  if (is_half(a) && is_half(b)) return DType::f32;
  if ((a == DType::u8 && b == DType::i8) || (a == DType::i8 && b == DType::u8)) return DType::i16;
  return rank(a) >= rank(b) ? a : b;
}

std::string Device::str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(int(index)); }

Device parse_device(const std::string& s) {
  if (s == "cpu") return Device{};
  if (s.rfind("cuda", 0) == 0) {
    Device d{DeviceType::cuda, 0};
    if (s.size() > 4) {
      FASTDL_CHECK(s[4] == ':' && s.size() > 5, ValueError, "device: expected 'cpu', 'cuda' or 'cuda:N'; got '", s, "'");
      try { d.index = int8_t(std::stoi(s.substr(5))); } catch (...) {
        throw ValueError(str_cat("device: expected 'cpu', 'cuda' or 'cuda:N'; got '", s, "'"));
      }
    }
    return d;
  }
  throw ValueError(str_cat("device: expected 'cpu', 'cuda' or 'cuda:N'; got '", s, "'"));
}

std::string shape_str(const int64_t* d, int n) {
  std::string s = "(";
  for (int i = 0; i < n; ++i) { if (i) s += ", "; s += std::to_string(d[i]); }
  if (n == 1) s += ",";
  return s + ")";
}

Ref<Storage> Storage::allocate(size_t nbytes, Device d) {
  Ref<Storage> s(new Storage());
  s->nbytes = nbytes;
  s->device = d;
  if (d.is_cpu()) s->data = cpu_alloc(nbytes);
  else s->data = cuda::alloc(nbytes, d.index);
  return s;
}

Ref<Storage> Storage::wrap(void* data, size_t nbytes, Device d, void (*del)(void*), void* ctx) {
  Ref<Storage> s(new Storage());
  s->data = data; s->nbytes = nbytes; s->device = d; s->deleter = del; s->ctx = ctx;
  return s;
}

Storage::~Storage() {
  if (deleter) { deleter(ctx); return; }
  if (!data) return;
  if (device.is_cpu()) cpu_free(data, nbytes);
  else cuda::free(data, nbytes, device.index);
}

TensorImpl::~TensorImpl() {
  if (as_base) as_base->base = nullptr;  // its views can no longer reach it
}

void TensorImpl::refresh() {
  int64_t n = 1;
  for (int i = 0; i < shape.size(); ++i) n *= shape[i];
  numel = n;
  bool c = true;
  int64_t expect = 1;
  for (int i = shape.size() - 1; i >= 0; --i) {
    if (shape[i] == 1) continue;
    if (strides[i] != expect) { c = false; break; }
    expect *= shape[i];
  }
  contiguous = c;
}

int64_t Tensor::size(int d) const { return impl_->shape[wrap_dim(d, ndim(), "size")]; }
int64_t Tensor::stride(int d) const { return impl_->strides[wrap_dim(d, ndim(), "stride")]; }

void Tensor::set_requires_grad(bool r) {
  if (r) FASTDL_CHECK(is_floating(dtype()), TypeError,
                      "requires_grad_: only floating point tensors can require gradients; got dtype ", dtype_name(dtype()));
  FASTDL_CHECK(r || is_leaf(), ValueError,
               "requires_grad_: you can only change requires_grad of leaf tensors; use detach() on a non-leaf");
  impl_->requires_grad = r;
}
Tensor Tensor::grad() const { return impl_->grad ? Tensor(impl_->grad) : Tensor(); }
void Tensor::set_grad(const Tensor& g) { impl_->grad = g.defined() ? g.ref() : Ref<TensorImpl>(); }

Dims contiguous_strides(const Dims& shape) {
  Dims s(shape.size());
  int64_t acc = 1;
  for (int i = shape.size() - 1; i >= 0; --i) { s[i] = acc; acc *= shape[i] > 0 ? shape[i] : 1; }
  return s;
}

int wrap_dim(int64_t d, int ndim, const char* op) {
  int n = ndim > 0 ? ndim : 1;
  if (d < -n || d >= n)
    throw IndexError(str_cat(op, ": dim ", d, " is out of range for a tensor of ", ndim, " dims (expected [", -n, ", ", n - 1, "])"));
  return int(d < 0 ? d + n : d);
}

Tensor empty(const Dims& shape, DType dt, Device dev) {
  int64_t n = 1;
  bool overflow = false;
  for (int i = 0; i < shape.size(); ++i) {
    FASTDL_CHECK(shape[i] >= 0, ValueError, "empty: negative dimension in shape ", shape_str(shape));
    overflow |= __builtin_mul_overflow(n, shape[i], &n);
  }
  int64_t nbytes = 0;
  overflow |= __builtin_mul_overflow(n, int64_t(dtype_size(dt)), &nbytes);
  if (overflow || nbytes > (int64_t(1) << 56))
    throw OutOfMemory(str_cat("empty: cannot allocate a tensor of shape ", shape_str(shape), " and dtype ", dtype_name(dt),
                              " (", overflow ? "size overflows" : "too large", ")"));
  Ref<TensorImpl> t(new TensorImpl());
  t->storage = Storage::allocate(size_t(n) * dtype_size(dt), dev);
  t->version = Ref<VersionCounter>(new VersionCounter());
  t->shape = shape;
  t->strides = contiguous_strides(shape);
  t->numel = n;
  t->dtype = dt;
  t->contiguous = true;
  return Tensor(std::move(t));
}

Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.dtype(), t.device()); }

Tensor empty_in_layout(const Tensor& like, const Dims& shape, DType dt, Device dev) {
  const int nd = like.ndim();
  if (like.is_contiguous() || like.numel() <= 1 || like.shape() != shape) return empty(shape, dt, dev);
  // dims outermost first by stride; dense if each stride is the product of the sizes inside it
  // (size-1 dims go anywhere)
  std::vector<int> p(size_t(nd), 0);
  for (int i = 0; i < nd; ++i) p[size_t(i)] = i;
  const Dims& st = like.strides();
  std::stable_sort(p.begin(), p.end(), [&](int i, int j) { return st[i] > st[j]; });
  int64_t expect = 1;
  for (int k = nd - 1; k >= 0; --k) {
    const int d = p[size_t(k)];
    if (shape[d] != 1 && st[d] != expect) return empty(shape, dt, dev);
    expect *= shape[d];
  }
  Dims ps, strides = shape;
  for (int k = 0; k < nd; ++k) ps.push_back(shape[p[size_t(k)]]);
  Tensor base = empty(ps, dt, dev);
  for (int k = 0; k < nd; ++k) strides[p[size_t(k)]] = base.strides()[k];
  return from_storage(base.storage(), shape, std::move(strides), 0, dt);
}

Tensor from_storage(Ref<Storage> s, Dims shape, Dims strides, int64_t offset, DType dt,
                    Ref<VersionCounter> version) {
  Ref<TensorImpl> t(new TensorImpl());
  t->storage = std::move(s);
  t->version = version ? std::move(version) : Ref<VersionCounter>(new VersionCounter());
  t->shape = std::move(shape);
  t->strides = std::move(strides);
  t->offset = offset;
  t->dtype = dt;
  t->refresh();
  return Tensor(std::move(t));
}

Tensor make_view(const Tensor& base, Dims shape, Dims strides, int64_t offset) {
  // a view's writes count for its base, and back
  Tensor v = from_storage(base.storage(), std::move(shape), std::move(strides), offset, base.dtype(), base.impl()->version);
  TensorImpl* bi = base.impl();
  if (bi->view_of) {
    v.impl()->view_of = bi->view_of;
  } else {
    if (!bi->as_base) {
      bi->as_base = Ref<BaseLink>(new BaseLink());
      bi->as_base->base = bi;
    }
    v.impl()->view_of = bi->as_base;
  }
  return v;
}

}  // namespace fastdl
