// Reductions over the middle axis of a contiguous (outer, n, inner) input into (outer, inner):
// sum, prod (float accumulation for f32/f16/bf16, double for f64, int64 for integers and bool),
// max, min (NaN propagates), argmax, argmin (int64 out, first occurrence; NaN counts as the
// extreme, as PyTorch). inner == 1: a warp or a block per row; inner > 1: 32 columns per block
// with 8 threads splitting n. When rows are too few to fill the device, n is split across
// blocks and a second kernel combines the partial states in a fixed order (deterministic).
#include <algorithm>

#include "cuda/common.cuh"

namespace fastdl::cuda {
namespace {

template <DType D> struct AccOf { using type = int64_t; };
template <> struct AccOf<DType::f32> { using type = float; };
template <> struct AccOf<DType::f16> { using type = float; };
template <> struct AccOf<DType::bf16> { using type = float; };
template <> struct AccOf<DType::f64> { using type = double; };

// A partial result: the value so far and, for arg ops, its index (-1: nothing seen yet).
template <class A> struct State {
  A v;
  int64_t i;
};

template <class A> __device__ __forceinline__ A lowest() {
  if constexpr (std::is_floating_point<A>::value) return -INFINITY;
  else return A(INT64_MIN);
}
template <class A> __device__ __forceinline__ A highest() {
  if constexpr (std::is_floating_point<A>::value) return INFINITY;
  else return A(INT64_MAX);
}

template <class A> __device__ __forceinline__ State<A> init_state(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum: return {A(0), -1};
    case ReduceOp::prod: return {A(1), -1};
    case ReduceOp::max: case ReduceOp::argmax: return {lowest<A>(), -1};
    default: return {highest<A>(), -1};
  }
}

template <class A> __device__ __forceinline__ bool is_nan(A v) { return v != v; }

// Combines partial b into a; for arg ops, partials from lower indices must win ties, so the
// index decides ties explicitly instead of relying on the order of arguments.
template <class A> __device__ __forceinline__ State<A> combine(ReduceOp op, State<A> a, State<A> b) {
  switch (op) {
    case ReduceOp::sum: return {A(a.v + b.v), 0};
    case ReduceOp::prod: return {A(a.v * b.v), 0};
    case ReduceOp::max: return {(is_nan(a.v) || !(is_nan(b.v) || b.v > a.v)) ? a.v : b.v, 0};
    case ReduceOp::min: return {(is_nan(a.v) || !(is_nan(b.v) || b.v < a.v)) ? a.v : b.v, 0};
    default: {
      if (b.i < 0) return a;
      if (a.i < 0) return b;
      const bool an = is_nan(a.v), bn = is_nan(b.v);
      if (an || bn) return (an && bn) ? (b.i < a.i ? b : a) : (an ? a : b);
      const bool better = op == ReduceOp::argmax ? b.v > a.v : b.v < a.v;
      return (better || (b.v == a.v && b.i < a.i)) ? b : a;
    }
  }
}

template <DType D>
__device__ __forceinline__ State<typename AccOf<D>::type> load_state(const void* in, int64_t off, int64_t j) {
  using A = typename AccOf<D>::type;
  using S = typename Traits<D>::S;
  return {cvt<A>(static_cast<const S*>(in)[off]), j};
}

template <DType D>
__device__ __forceinline__ void write_out(ReduceOp op, void* out, int64_t o, State<typename AccOf<D>::type> s) {
  using S = typename Traits<D>::S;
  if (op == ReduceOp::argmax || op == ReduceOp::argmin) static_cast<int64_t*>(out)[o] = s.i < 0 ? 0 : s.i;
  else static_cast<S*>(out)[o] = cvt<S>(s.v);
}

template <class A> __device__ __forceinline__ State<A> shfl_down(State<A> s, int delta) {
  State<A> r;
  if constexpr (std::is_same<A, int64_t>::value)
    r.v = A(__shfl_down_sync(0xffffffffu, (long long)s.v, delta));
  else
    r.v = __shfl_down_sync(0xffffffffu, s.v, delta);
  r.i = int64_t(__shfl_down_sync(0xffffffffu, (long long)s.i, delta));
  return r;
}

template <class A> __device__ __forceinline__ State<A> warp_reduce(ReduceOp op, State<A> s) {
#pragma unroll
  for (int d = 16; d > 0; d >>= 1) s = combine(op, s, shfl_down(s, d));
  return s;  // lane 0 holds the result
}

// inner == 1. Segment `seg` = (row, split) covers in[row, s*chunk : (s+1)*chunk]. A group of
// `group` threads (32: one warp, or the whole block) reduces one segment. Lane 0 writes the
// final value (splits == 1) or the partial state ws[seg].
template <DType D>
__global__ void reduce_rows_kernel(ReduceOp op, const void* in, void* out, State<typename AccOf<D>::type>* ws,
                                   int64_t outer, int64_t n, int64_t splits, int64_t chunk, int group) {
  using A = typename AccOf<D>::type;
  __shared__ State<A> sh[32];
  const int gpb = blockDim.x / group, lane = threadIdx.x % group, gid = threadIdx.x / group;
  const int64_t segs = outer * splits;
  // Every thread of a block runs the same number of iterations (the block barrier below).
  for (int64_t base = int64_t(blockIdx.x) * gpb; base < segs; base += int64_t(gridDim.x) * gpb) {
    const int64_t seg = base + gid;
    State<A> st = init_state<A>(op);
    if (seg < segs) {
      const int64_t row = seg / splits, begin = (seg % splits) * chunk, end = min(n, begin + chunk);
      const int64_t off = row * n;
      int64_t j = begin + lane;
      for (; j + 3 * group < end; j += 4 * group) {  // four loads in flight per thread
        State<A> x0 = load_state<D>(in, off + j, j), x1 = load_state<D>(in, off + j + group, j + group);
        State<A> x2 = load_state<D>(in, off + j + 2 * group, j + 2 * group);
        State<A> x3 = load_state<D>(in, off + j + 3 * group, j + 3 * group);
        st = combine(op, combine(op, combine(op, combine(op, st, x0), x1), x2), x3);
      }
      for (; j < end; j += group) st = combine(op, st, load_state<D>(in, off + j, j));
    }
    st = warp_reduce(op, st);
    if (group > 32) {
      const int warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
      if (threadIdx.x % 32 == 0) sh[warp] = st;
      __syncthreads();
      if (warp == 0) {
        st = threadIdx.x < nwarps ? sh[threadIdx.x] : init_state<A>(op);
        st = warp_reduce(op, st);
      }
      __syncthreads();
    }
    if (lane == 0 && seg < segs) {
      if (splits == 1) write_out<D>(op, out, seg, st);
      else ws[seg] = st;
    }
  }
}

constexpr int kColX = 32, kColY = 8;

// inner > 1. Tile t = (row, split, 32 columns); threads (x: column, y: strided walk over n).
template <DType D>
__global__ void reduce_cols_kernel(ReduceOp op, const void* in, void* out, State<typename AccOf<D>::type>* ws,
                                   int64_t outer, int64_t n, int64_t inner, int64_t splits, int64_t chunk) {
  using A = typename AccOf<D>::type;
  __shared__ State<A> sh[kColY][kColX];
  const int64_t tiles_i = (inner + kColX - 1) / kColX, total = outer * splits * tiles_i;
  for (int64_t t = blockIdx.x; t < total; t += gridDim.x) {
    const int64_t seg = t / tiles_i, i = (t % tiles_i) * kColX + threadIdx.x;
    const int64_t row = seg / splits, begin = (seg % splits) * chunk, end = min(n, begin + chunk);
    State<A> st = init_state<A>(op);
    if (i < inner)
      for (int64_t j = begin + threadIdx.y; j < end; j += kColY)
        st = combine(op, st, load_state<D>(in, (row * n + j) * inner + i, j));
    sh[threadIdx.y][threadIdx.x] = st;
    __syncthreads();
    if (threadIdx.y == 0 && i < inner) {
      for (int y = 1; y < kColY; ++y) st = combine(op, st, sh[y][threadIdx.x]);
      if (splits == 1) write_out<D>(op, out, row * inner + i, st);
      else ws[seg * inner + i] = st;
    }
    __syncthreads();
  }
}

// Combines the partial states ws (outer, splits, inner) in split order into out (outer, inner).
template <DType D>
__global__ void reduce_finish_kernel(ReduceOp op, const State<typename AccOf<D>::type>* ws, void* out,
                                     int64_t outer, int64_t splits, int64_t inner) {
  using A = typename AccOf<D>::type;
  for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < outer * inner;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = idx / inner, i = idx % inner;
    State<A> st = init_state<A>(op);
    for (int64_t s = 0; s < splits; ++s) st = combine(op, st, ws[(row * splits + s) * inner + i]);
    write_out<D>(op, out, idx, st);
  }
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

void reduce(ReduceOp op, DType dt, void* out, const void* in, int64_t outer, int64_t n, int64_t inner,
            int device) {
  if (outer <= 0 || inner <= 0) return;
  use_device(device);
  const int64_t want_blocks = int64_t(sm_count(device)) * 8;
  const int64_t cap = int64_t(sm_count(device)) * 32;
  visit(dt, [&](auto tag) {
    constexpr DType D = decltype(tag)::value;
    using St = State<typename AccOf<D>::type>;
    int64_t splits = 1;
    int group = 0;
    if (inner == 1) {
      group = n >= 1024 ? kThreads : 32;
      if (group == kThreads && outer < want_blocks)
        splits = std::max<int64_t>(1, std::min(ceil_div(n, 16384), ceil_div(want_blocks, outer)));
    } else {
      const int64_t tiles = outer * ceil_div(inner, kColX);
      if (tiles < want_blocks && n >= 512)
        splits = std::max<int64_t>(1, std::min(ceil_div(n, 256), ceil_div(want_blocks, tiles)));
    }
    const int64_t chunk = ceil_div(std::max<int64_t>(n, 1), splits);
    splits = std::max<int64_t>(1, ceil_div(n, chunk));  // no empty trailing split
    St* ws = nullptr;
    const size_t ws_bytes = size_t(outer * splits * inner) * sizeof(St);
    if (splits > 1) ws = static_cast<St*>(alloc(ws_bytes, device));
    if (inner == 1) {
      const int64_t gpb = kThreads / group;
      const unsigned grid = unsigned(std::min(cap, ceil_div(outer * splits, gpb)));
      reduce_rows_kernel<D><<<grid, kThreads, 0, stream()>>>(op, in, out, ws, outer, n, splits, chunk, group);
    } else {
      const unsigned grid = unsigned(std::min(cap, outer * splits * ceil_div(inner, kColX)));
      reduce_cols_kernel<D><<<grid, dim3(kColX, kColY), 0, stream()>>>(op, in, out, ws, outer, n, inner, splits,
                                                                       chunk);
    }
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess && splits > 1)
      reduce_finish_kernel<D><<<grid_for(outer * inner, device), kThreads, 0, stream()>>>(op, ws, out, outer,
                                                                                         splits, inner);
    if (ws) free(ws, ws_bytes, device);  // stream-ordered reuse: safe without a sync
    check(e, "reduce");
    check_launch("reduce");
  });
}

}  // namespace fastdl::cuda
