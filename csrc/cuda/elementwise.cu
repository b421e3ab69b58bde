// Elementwise kernels: strided cast-copy, fill, binary (tensor-tensor and tensor-scalar),
// unary. Each family has a generic N-d strided kernel (64-bit offsets, 32-bit index math when
// the loop fits) and a contiguous kernel with 16-byte vector loads when every operand is
// contiguous and aligned. Kernels are templated on dtype only; the op is a runtime switch
// (uniform across the grid), which keeps the instantiation count at 2 per dtype per family
// (plus 2 x 49 for casts).
#include "cuda/elementwise.cuh"

namespace fastdl::cuda {
namespace {

template <class T, int N> struct alignas(sizeof(T) * N) Vec { T v[N]; };

__device__ __forceinline__ int64_t thread_index() { return int64_t(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ __forceinline__ int64_t grid_stride() { return int64_t(gridDim.x) * blockDim.x; }

bool aligned(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

// ---------------------------------------------------------------- copy with cast
// out (Strided operand 0) = cast(in (operand 1)).
template <DType DO, DType DI>
__global__ void copy_strided_kernel(void* out, const void* in, Strided it, bool small) {
  using SO = typename Traits<DO>::S;
  using SI = typename Traits<DI>::S;
  for (int64_t i = thread_index(); i < it.numel; i += grid_stride()) {
    Offsets<2> o = offsets<2>(it, i, small);
    static_cast<SO*>(out)[o.o[0]] = cvt<SO>(static_cast<const SI*>(in)[o.o[1]]);
  }
}

// out[0:n] = cast(in[0:n]).
template <DType DO, DType DI>
__global__ void copy_contig_kernel(void* out, const void* in, int64_t n) {
  using SO = typename Traits<DO>::S;
  using SI = typename Traits<DI>::S;
  for (int64_t i = thread_index(); i < n; i += grid_stride())
    static_cast<SO*>(out)[i] = cvt<SO>(static_cast<const SI*>(in)[i]);
}

// ---------------------------------------------------------------- fill
template <DType D>
__global__ void fill_kernel(void* out, double value, Strided it, bool small, bool contig) {
  using S = typename Traits<D>::S;
  const S v = cvt<S>(value);
  for (int64_t i = thread_index(); i < it.numel; i += grid_stride()) {
    int64_t off = contig ? i : offsets<1>(it, i, small).o[0];
    static_cast<S*>(out)[off] = v;
  }
}

// ---------------------------------------------------------------- binary
struct BinaryArgs {
  BinaryOp op;
  bool cmp;      // output is bool
  int mode;      // 0: a op b; 1: a op scalar; 2: scalar op a
  double scalar;
  void* out;
  const void* a;
  const void* b;
};

template <DType D>
__device__ __forceinline__ void binary_one(const BinaryArgs& p, typename Traits<D>::C x,
                                           typename Traits<D>::C y, int64_t o) {
  using S = typename Traits<D>::S;
  if (p.cmp) static_cast<uint8_t*>(p.out)[o] = compare_value(p.op, x, y);
  else static_cast<S*>(p.out)[o] = cvt<S>(binary_value(p.op, x, y));
}

// out (operand 0) = a (operand 1) op b (operand 2), or with a scalar per p.mode.
template <DType D>
__global__ void binary_strided_kernel(BinaryArgs p, Strided it, bool small) {
  using S = typename Traits<D>::S;
  using C = typename Traits<D>::C;
  const C s = C(p.scalar);
  for (int64_t i = thread_index(); i < it.numel; i += grid_stride()) {
    Offsets<3> o = offsets<3>(it, i, small);
    const C x = cvt<C>(static_cast<const S*>(p.a)[o.o[1]]);
    if (p.mode == 0) binary_one<D>(p, x, cvt<C>(static_cast<const S*>(p.b)[o.o[2]]), o.o[0]);
    else if (p.mode == 1) binary_one<D>(p, x, s, o.o[0]);
    else binary_one<D>(p, s, x, o.o[0]);
  }
}

// Contiguous operands of n elements; `vec`: pointers allow 16-byte vectors of the input.
template <DType D>
__global__ void binary_contig_kernel(BinaryArgs p, int64_t n, bool vec) {
  using S = typename Traits<D>::S;
  using C = typename Traits<D>::C;
  constexpr int V = 16 / sizeof(S);
  const C s = C(p.scalar);
  const int64_t nv = vec ? n / V : 0;
  for (int64_t v = thread_index(); v < nv; v += grid_stride()) {
    const Vec<S, V> av = static_cast<const Vec<S, V>*>(p.a)[v];
    Vec<S, V> bv;
    if (p.mode == 0) bv = static_cast<const Vec<S, V>*>(p.b)[v];
    C r[V];
    bool c[V];
#pragma unroll
    for (int j = 0; j < V; ++j) {
      C x = cvt<C>(av.v[j]), y = s;
      if (p.mode == 0) y = cvt<C>(bv.v[j]);
      else if (p.mode == 2) { y = x; x = s; }
      if (p.cmp) c[j] = compare_value(p.op, x, y);
      else r[j] = binary_value(p.op, x, y);
    }
    if (p.cmp) {
      Vec<uint8_t, V> ov;
#pragma unroll
      for (int j = 0; j < V; ++j) ov.v[j] = c[j];
      static_cast<Vec<uint8_t, V>*>(p.out)[v] = ov;
    } else {
      Vec<S, V> ov;
#pragma unroll
      for (int j = 0; j < V; ++j) ov.v[j] = cvt<S>(r[j]);
      static_cast<Vec<S, V>*>(p.out)[v] = ov;
    }
  }
  for (int64_t i = nv * V + thread_index(); i < n; i += grid_stride()) {
    const C x = cvt<C>(static_cast<const S*>(p.a)[i]);
    if (p.mode == 0) binary_one<D>(p, x, cvt<C>(static_cast<const S*>(p.b)[i]), i);
    else if (p.mode == 1) binary_one<D>(p, x, s, i);
    else binary_one<D>(p, s, x, i);
  }
}

void launch_binary(const BinaryArgs& p, DType dt, const Strided& it, int device, const char* name) {
  if (it.numel == 0) return;
  use_device(device);
  const bool contig = is_contiguous(it, 0) && is_contiguous(it, 1) && (p.mode != 0 || is_contiguous(it, 2));
  visit(dt, [&](auto tag) {
    constexpr DType D = decltype(tag)::value;
    using S = typename decltype(tag)::S;
    constexpr int V = 16 / sizeof(S);
    if (contig) {
      const bool vec = aligned(p.a, 16) && (p.mode != 0 || aligned(p.b, 16)) &&
                       aligned(p.out, p.cmp ? V : 16);
      binary_contig_kernel<D><<<grid_for(vec ? it.numel / V + 1 : it.numel, device), kThreads, 0, stream()>>>(
          p, it.numel, vec);
    } else {
      binary_strided_kernel<D><<<grid_for(it.numel, device), kThreads, 0, stream()>>>(p, it, fits32(it));
    }
  });
  check_launch(name);
}

// ---------------------------------------------------------------- unary
template <DType D>
__device__ __forceinline__ void unary_one(UnaryOp op, bool pred, void* out, typename Traits<D>::C x, int64_t o) {
  using S = typename Traits<D>::S;
  if (pred) static_cast<uint8_t*>(out)[o] = predicate_value(op, x);
  else static_cast<S*>(out)[o] = cvt<S>(unary_value(op, x));
}

// out (operand 0) = op(in (operand 1)); `contig`: both walk memory linearly.
template <DType D>
__global__ void unary_kernel(UnaryOp op, bool pred, void* out, const void* in, Strided it, bool small,
                             bool contig) {
  using S = typename Traits<D>::S;
  using C = typename Traits<D>::C;
  for (int64_t i = thread_index(); i < it.numel; i += grid_stride()) {
    if (contig) {
      unary_one<D>(op, pred, out, cvt<C>(static_cast<const S*>(in)[i]), i);
    } else {
      Offsets<2> o = offsets<2>(it, i, small);
      unary_one<D>(op, pred, out, cvt<C>(static_cast<const S*>(in)[o.o[1]]), o.o[0]);
    }
  }
}

// Contiguous and 16-byte aligned: V elements per vector, tail done by the first threads.
template <DType D>
__global__ void unary_vec_kernel(UnaryOp op, bool pred, void* out, const void* in, int64_t n) {
  using S = typename Traits<D>::S;
  using C = typename Traits<D>::C;
  constexpr int V = 16 / sizeof(S);
  const int64_t nv = n / V;
  for (int64_t v = thread_index(); v < nv; v += grid_stride()) {
    const Vec<S, V> xv = static_cast<const Vec<S, V>*>(in)[v];
    if (pred) {
      Vec<uint8_t, V> ov;
#pragma unroll
      for (int j = 0; j < V; ++j) ov.v[j] = predicate_value(op, cvt<C>(xv.v[j]));
      static_cast<Vec<uint8_t, V>*>(out)[v] = ov;
    } else {
      Vec<S, V> ov;
#pragma unroll
      for (int j = 0; j < V; ++j) ov.v[j] = cvt<S>(unary_value(op, cvt<C>(xv.v[j])));
      static_cast<Vec<S, V>*>(out)[v] = ov;
    }
  }
  for (int64_t i = nv * V + thread_index(); i < n; i += grid_stride())
    unary_one<D>(op, pred, out, cvt<C>(static_cast<const S*>(in)[i]), i);
}

}  // namespace

void copy_strided(void* out, DType out_dt, const void* in, DType in_dt, const Strided& it, int device) {
  if (it.numel == 0) return;
  use_device(device);
  const bool contig = is_contiguous(it, 0) && is_contiguous(it, 1);
  if (contig && out_dt == in_dt) {
    check(cudaMemcpyAsync(out, in, size_t(it.numel) * dtype_size(out_dt), cudaMemcpyDeviceToDevice, stream()),
          "cudaMemcpyAsync (copy_strided)");
    return;
  }
  const unsigned grid = grid_for(it.numel, device);
  const bool small = fits32(it);
  visit(out_dt, [&](auto to) {
    visit(in_dt, [&](auto from) {
      constexpr DType DO = decltype(to)::value, DI = decltype(from)::value;
      if (contig) copy_contig_kernel<DO, DI><<<grid, kThreads, 0, stream()>>>(out, in, it.numel);
      else copy_strided_kernel<DO, DI><<<grid, kThreads, 0, stream()>>>(out, in, it, small);
    });
  });
  check_launch("copy_strided");
}

void fill(void* out, DType dt, double value, const Strided& it, int device) {
  if (it.numel == 0) return;
  use_device(device);
  const bool contig = is_contiguous(it, 0);
  visit(dt, [&](auto tag) {
    constexpr DType D = decltype(tag)::value;
    fill_kernel<D><<<grid_for(it.numel, device), kThreads, 0, stream()>>>(out, value, it, fits32(it), contig);
  });
  check_launch("fill");
}

void binary(BinaryOp op, DType dt, void* out, const void* a, const void* b, const Strided& it, int device) {
  launch_binary(BinaryArgs{op, is_comparison(op), 0, 0.0, out, a, b}, dt, it, device, "binary");
}

void binary_scalar(BinaryOp op, DType dt, void* out, const void* a, double scalar, bool scalar_first,
                   const Strided& it, int device) {
  launch_binary(BinaryArgs{op, is_comparison(op), scalar_first ? 2 : 1, scalar, out, a, nullptr}, dt, it, device,
                "binary_scalar");
}

void unary(UnaryOp op, DType dt, void* out, const void* in, const Strided& it, int device) {
  if (it.numel == 0) return;
  use_device(device);
  const bool pred = is_predicate(op);
  const bool contig = is_contiguous(it, 0) && is_contiguous(it, 1);
  visit(dt, [&](auto tag) {
    constexpr DType D = decltype(tag)::value;
    constexpr int V = 16 / sizeof(typename decltype(tag)::S);
    if (contig && aligned(in, 16) && aligned(out, pred ? V : 16)) {
      unary_vec_kernel<D><<<grid_for(it.numel / V + 1, device), kThreads, 0, stream()>>>(op, pred, out, in,
                                                                                        it.numel);
    } else {
      unary_kernel<D><<<grid_for(it.numel, device), kThreads, 0, stream()>>>(op, pred, out, in, it, fits32(it),
                                                                            contig);
    }
  });
  check_launch("unary");
}

}  // namespace fastdl::cuda
