// copy_ (the one strided cast-copy everything else reuses), fill_, contiguous, clone, casts
// and device transfers.
#include <cmath>
#include <cstring>

#include "autograd/node.h"
#include "ops/dispatch.h"
#include "core/profiler.h"
#include "ops/ops.h"

namespace fastdl {

void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
  FASTDL_CHECK(a.device() == b.device(), DeviceError, op, ": expected all tensors on the same device; got ",
               a.device().str(), " and ", b.device().str());
}

namespace {

// Tiled copy for the transposed pattern (the destination runs along the last dim, the source
// along the one before), in bands of 64 destination rows; the ISA's transpose kernel walks a
// band in 8-column tiles: the 8 source lines of a tile are reused across the band, and 8 stays
// under the L1's associativity when the source stride is a power of two (measured best of 8
// shapes here). Returns false otherwise.
constexpr int64_t kBand = 64;
bool copy_transposed(const cpu::Loop& L, char* dst, const char* src, size_t es) {
  int nd = L.ndim;
  if (nd < 2 || L.numel < 4096) return false;
  int a = nd - 2, b = nd - 1;  // dst: b contiguous; src: a contiguous
  if (L.strides[0][b] != 1 || L.strides[1][a] != 1 || L.strides[1][b] == 1 || L.strides[1][b] == 0) return false;  // not a broadcast
  int64_t rows = L.shape[a], cols = L.shape[b], dr = L.strides[0][a], sc = L.strides[1][b];
  int64_t outer = L.numel / (rows * cols);
  int64_t grain = std::max<int64_t>(1, (int64_t(1) << 16) / (rows * cols));
  int64_t bands = (rows + kBand - 1) / kBand;
  parallel_for(0, outer * bands, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      int64_t o = t / bands, r0 = (t % bands) * kBand, r1 = std::min(rows, r0 + kBand);
      int64_t od = 0, os = 0, rem = o;
      for (int d = nd - 3; d >= 0; --d) {
        int64_t k = rem % L.shape[d];
        rem /= L.shape[d];
        od += k * L.strides[0][d];
        os += k * L.strides[1][d];
      }
      cpu::elementwise_kernels().transpose(es, dst + (od + r0 * dr) * int64_t(es), src + (os + r0) * int64_t(es), r1 - r0,
                                           cols, dr, sc);
    }
  });
  return true;
}

// Copy of n rows of RB bytes (a fixed size the compiler turns into vector moves).
template <size_t RB> void rows_fixed(char* d, const char* s, int64_t n, int64_t ds, int64_t ss) {
  for (int64_t i = 0; i < n; ++i) std::memcpy(d + i * ds, s + i * ss, RB);
}

// Same-dtype copy whose rows are contiguous on both sides (a permuted or sliced copy). Short
// rows (heads split out of (B, T, H, D): 32 floats) go two dims at a time: the loop hands out
// blocks of rows and each block is copied with a fixed-size memcpy per row.
void copy_rows(const cpu::Loop& L, char* const* base, size_t es) {
  const int nd = L.ndim;
  const int64_t inner = L.shape[nd - 1];
  const size_t rb = size_t(inner) * es;
  int64_t e[2] = {int64_t(es), int64_t(es)};
  if (nd < 2 || rb > 512) {
    cpu::for_each_row(L, base, e, [&](char* const* p, int64_t n, const int64_t*) { std::memcpy(p[0], p[1], size_t(n) * es); });
    return;
  }
  cpu::Loop R = L;  // the row loop: L without its innermost dim
  R.ndim = nd - 1;
  R.numel = L.numel / inner;
  cpu::for_each_row(R, base, e, [&](char* const* p, int64_t n, const int64_t* s) {
    const int64_t ds = s[0] * int64_t(es), ss = s[1] * int64_t(es);
    switch (rb) {
      case 64: return rows_fixed<64>(p[0], p[1], n, ds, ss);
      case 128: return rows_fixed<128>(p[0], p[1], n, ds, ss);
      case 256: return rows_fixed<256>(p[0], p[1], n, ds, ss);
      case 512: return rows_fixed<512>(p[0], p[1], n, ds, ss);
      default: for (int64_t i = 0; i < n; ++i) std::memcpy(p[0] + i * ds, p[1] + i * ss, rb);
    }
  }, std::max<int64_t>(1, cpu::kParallelGrain / inner));
}

}  // namespace

void copy_(const Tensor& dst, const Tensor& src) {
  FASTDL_PROFILE("copy_", dst, src);
  FASTDL_CHECK(dst.defined() && src.defined(), ValueError, "copy_: undefined tensor");
  Dims bs = broadcast_shapes(dst.shape(), src.shape(), "copy_");
  FASTDL_CHECK(bs == dst.shape(), ValueError, "copy_: source of shape ", shape_str(src.shape()),
               " cannot be broadcast to destination of shape ", shape_str(dst.shape()));
  if (dst.numel() == 0) return;
  Device dd = dst.device(), sd = src.device();
  if (dd != sd) {
    // Cross-device: stage a contiguous copy in the destination dtype, move the bytes, then
    // scatter into the destination's layout.
    Tensor s = contiguous(to_dtype(expand(src, dst.shape().vec()), dst.dtype()));
    Tensor stage = dst.is_contiguous() ? dst : empty(dst.shape(), dst.dtype(), dd);
    size_t nb = size_t(s.numel()) * s.itemsize();
    if (dd.is_cuda() && sd.is_cpu()) cuda::copy_h2d(stage.data_ptr(), s.data_ptr(), nb, dd.index);
    else if (dd.is_cpu() && sd.is_cuda()) cuda::copy_d2h(stage.data_ptr(), s.data_ptr(), nb, sd.index);
    else { Tensor t = to_device(s, Device()); copy_(stage, t); }
    if (!stage.same(dst)) copy_(dst, stage);
    return;
  }
  Dims s1 = dst.strides(), s2 = bstrides(src, dst.shape());
  const Dims* st[2] = {&s1, &s2};
  cpu::Loop L = cpu::make_loop(dst.shape(), st, 2);
  if (dd.is_cuda()) {
    cuda::copy_strided(dst.data_ptr(), dst.dtype(), src.data_ptr(), src.dtype(), to_cuda_loop(L), dd.index);
    return;
  }
  if (dst.dtype() == src.dtype() && copy_transposed(L, static_cast<char*>(dst.data_ptr()),
                                                    static_cast<const char*>(src.data_ptr()), dst.itemsize()))
    return;
  auto cast = cpu::elementwise_kernels().cast;
  DType dto = dst.dtype(), dti = src.dtype();
  char* base[2] = {static_cast<char*>(dst.data_ptr()), static_cast<char*>(src.data_ptr())};
  int64_t es[2] = {int64_t(dst.itemsize()), int64_t(src.itemsize())};
  if (dto == dti && L.strides[0][L.ndim - 1] == 1 && L.strides[1][L.ndim - 1] == 1) {
    copy_rows(L, base, dst.itemsize());
    return;
  }
  cpu::for_each_row(L, base, es, [&](char* const* p, int64_t n, const int64_t* s) { cast(dto, dti, p[0], p[1], n, s[0], s[1]); });
}

void fill_(const Tensor& t, double v) {
  FASTDL_PROFILE("fill_", t);
  if (t.dtype() == DType::u8 || t.dtype() == DType::i8 || t.dtype() == DType::i16) {  // PyTorch refuses to wrap these
    const double lo = t.dtype() == DType::u8 ? 0 : t.dtype() == DType::i8 ? -128 : -32768;
    const double hi = t.dtype() == DType::u8 ? 255 : t.dtype() == DType::i8 ? 127 : 32767;
    FASTDL_CHECK(std::isnan(v) || (v > lo - 1 && v < hi + 1), ValueError, "fill: value ", v, " cannot be converted to ",
                 dtype_name(t.dtype()), " without overflow");
  }
  if (t.numel() == 0) return;
  if (t.device().is_cuda()) {
    Dims s1 = t.strides();
    const Dims* st[1] = {&s1};
    cuda::fill(t.data_ptr(), t.dtype(), v, to_cuda_loop(cpu::make_loop(t.shape(), st, 1)), t.device().index);
    return;
  }
  alignas(8) char buf[8];
  auto& k = cpu::elementwise_kernels();
  k.cast(t.dtype(), DType::f64, buf, reinterpret_cast<const char*>(&v), 1, 1, 1);
  Dims s1 = t.strides(), s2(t.ndim(), 0);
  const Dims* st[2] = {&s1, &s2};
  cpu::Loop L = cpu::make_loop(t.shape(), st, 2);
  DType dt = t.dtype();
  char* base[2] = {static_cast<char*>(t.data_ptr()), buf};
  int64_t es[2] = {int64_t(t.itemsize()), 0};
  cpu::for_each_row(L, base, es, [&](char* const* p, int64_t n, const int64_t* s) {
    k.cast(dt, dt, p[0], buf, n, s[0], 0);
  });
}

Tensor contiguous(const Tensor& t) {
  FASTDL_PROFILE("contiguous", t);
  if (t.is_contiguous()) return t;
  return clone(t);
}

Tensor clone(const Tensor& t) {
  FASTDL_PROFILE("clone", t);
  Tensor out = empty(t.shape(), t.dtype(), t.device());
  copy_(out, t);
  if (autograd::any_requires_grad(t))
    autograd::record("CloneBackward0", {t}, out, [](std::vector<Tensor>& g) { return std::vector<Tensor>{g[0]}; });
  return out;
}

Tensor to_dtype(const Tensor& t, DType dt) {
  FASTDL_PROFILE("to", t);
  if (t.dtype() == dt) return t;
  Tensor out = empty(t.shape(), dt, t.device());
  copy_(out, t);
  if (autograd::any_requires_grad(t) && is_floating(dt)) {
    DType src = t.dtype();
    autograd::record("ToCopyBackward0", {t}, out, [src](std::vector<Tensor>& g) { return std::vector<Tensor>{to_dtype(g[0], src)}; });
  }
  return out;
}

Tensor to_device(const Tensor& t, Device d) {
  FASTDL_PROFILE("to", t);
  if (t.device() == d) return t;
  Tensor out = empty(t.shape(), t.dtype(), d);
  copy_(out, t);
  if (autograd::any_requires_grad(t)) {
    Device src = t.device();
    autograd::record("ToCopyBackward0", {t}, out, [src](std::vector<Tensor>& g) { return std::vector<Tensor>{to_device(g[0], src)}; });
  }
  return out;
}

Tensor detach(const Tensor& t) {
  // the counter shared, as PyTorch's detach(); `.data` gets its own
  return from_storage(t.storage(), t.shape(), t.strides(), t.offset(), t.dtype(), t.impl()->version);
}

double item(const Tensor& t) {
  FASTDL_CHECK(t.numel() == 1, ValueError, "item: a Tensor with ", t.numel(), " elements cannot be converted to a scalar; got shape ",
               shape_str(t.shape()));
  Tensor c = to_dtype(to_device(detach(t), Device()), DType::f64);
  return *static_cast<const double*>(c.data_ptr());
}

int64_t item_int(const Tensor& t) {  // exact for every int64 (a double rounds above 2^53)
  FASTDL_CHECK(t.numel() == 1, ValueError, "item: a Tensor with ", t.numel(), " elements cannot be converted to a scalar; got shape ",
               shape_str(t.shape()));
  Tensor c = to_dtype(to_device(detach(t), Device()), DType::i64);
  return *static_cast<const int64_t*>(c.data_ptr());
}

Tensor assign_(const Tensor& dst, const Tensor& src) {
  bool need = autograd::any_requires_grad(src) || (autograd::grad_enabled() && dst.requires_grad());
  if (need) FASTDL_CHECK(!(dst.is_leaf() && dst.requires_grad()), ValueError,
                         "copy_: a leaf Variable that requires grad is being used in an in-place operation");
  if (need) check_inplace_view(dst);
  copy_(dst, src);
  bump_version(dst);
  if (need) {
    Dims sshape = src.shape();
    DType sdt = src.dtype();
    autograd::record("CopyBackwards", {Tensor(), src}, const_cast<Tensor&>(dst), [sshape, sdt](std::vector<Tensor>& g) {
      return std::vector<Tensor>{Tensor(), to_dtype(sum_to(g[0], sshape), sdt)};
    });
    rebase_view_history(dst);
  }
  return dst;
}

}  // namespace fastdl
