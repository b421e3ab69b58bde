// Mamba's selective scan on CUDA; semantics, params and checkpoint layout in kernels/selective_scan.h.
// Parallel over time (Gu & Dao 2023, section 3.3): x_t = e_t x_{t-1} + b_t (e_t = exp(delta_t A),
// b_t = delta_t B_t u_t) is associative on pairs: (e2, b2) after (e1, b1) = (e2 e1, e2 b1 + b2).
//   fwd  one block of 8 warps per (batch, run of up to 8 channels of one group); warp w scans
//        channel d0 + w over L in tiles of 64 steps, 2 consecutive steps per lane. Per state n a
//        lane composes its steps, a warp scan (shuffles) gives each lane the state before its
//        steps, and the tile's last state carries to the next tile; y_t sums over n in registers.
//        Writes out, last_state and the state before every `chunk` steps (the checkpoints).
//   bwd  the same blocks walk the checkpoint chunks in reverse: a chunk's tile-start states are
//        rescanned from its checkpoint; then each tile, last to first, rescans its states forward
//        and dL/dx backward (a reverse scan on pairs (e_t, e_t gy_t C_t)), carrying both across
//        tiles. du, ddelta, dz stay in registers; dB, dC are summed over the block's channels in
//        a fixed order into per-block partials; dA, dD, ddelta_bias per channel; sum_parts adds
//        partials over blocks and batch in a fixed order. No atomics: bitwise reproducible.
// fp32 state for float32 operands (the op converts bf16/f16 to float32), fp64 for float64.
#include <algorithm>

#include "cuda/common.cuh"
#include "kernels/selective_scan.h"

namespace fastdl::cuda {
namespace {


constexpr int kWarp = 32;
constexpr int kWarps = 8;                // channels (one per warp) per block
constexpr int kBlock = kWarps * kWarp;
constexpr int kItems = 2;                // consecutive steps per lane
constexpr int kTile = kWarp * kItems;    // steps per warp scan
constexpr int64_t kMaxStates = 256;
constexpr unsigned kFull = 0xffffffffu;


template <class T> __device__ __forceinline__ T ex(T v) { return exp(v); }
template <> __device__ __forceinline__ float ex<float>(float v) { return expf(v); }
template <class T> __device__ __forceinline__ T lg1p(T v) { return log1p(v); }
template <> __device__ __forceinline__ float lg1p<float>(float v) { return log1pf(v); }
template <class T> __device__ __forceinline__ T sigm(T v) { return T(1) / (T(1) + ex(-v)); }
template <class T> __device__ __forceinline__ T softplus(T v) { return v > T(20) ? v : lg1p(ex(v)); }

template <class T> __device__ __forceinline__ T warp_sum(T v) {
  for (int o = kWarp / 2; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
  return v;
}
// Inclusive scan, lane 0 first, of lane maps x -> e x + b: afterwards (e, b) maps the state
// before lane 0's first step to the state after this lane's last step.
template <class T> __device__ __forceinline__ void scan_up(T& e, T& b, int lane) {
  for (int o = 1; o < kWarp; o <<= 1) {
    const T eo = __shfl_up_sync(kFull, e, o), bo = __shfl_up_sync(kFull, b, o);
    if (lane >= o) {
      b = e * bo + b;
      e = e * eo;
    }
  }
}
// The same from lane 31 down: afterwards (m, y) maps the carry after lane 31's last step to the
// carry before this lane's first step.
template <class T> __device__ __forceinline__ void scan_down(T& m, T& y, int lane) {
  for (int o = 1; o < kWarp; o <<= 1) {
    const T mo = __shfl_down_sync(kFull, m, o), yo = __shfl_down_sync(kFull, y, o);
    if (lane + o < kWarp) {
      y = m * yo + y;
      m = m * mo;
    }
  }
}

// Which channel this warp scans.
struct Place {
  int64_t b, g, k;  // batch, group, block within the group
  int64_t d;        // channel (clamped to the block's first one when the warp has none)
  int w, lane;
  bool valid;       // the warp has a channel
};
__device__ __forceinline__ Place locate(const SelectiveScanParams& p, int64_t cpb) {
  Place s;
  const int64_t bid = blockIdx.x, dpg = p.dim / p.groups;
  s.k = bid % cpb;
  s.g = (bid / cpb) % p.groups;
  s.b = bid / (cpb * p.groups);
  s.w = int(threadIdx.x) / kWarp;
  s.lane = int(threadIdx.x) % kWarp;
  s.valid = s.k * kWarps + s.w < dpg;
  s.d = s.g * dpg + s.k * kWarps + (s.valid ? s.w : 0);
  return s;
}

// A lane's steps of one tile [l0, l1): delta' (softplus'd), its pre-softplus value, u.
template <class T> struct Steps {
  int64_t t[kItems];
  bool ok[kItems];
  T dl[kItems], raw[kItems], u[kItems];
};
template <class T>
__device__ __forceinline__ Steps<T> load_steps(const SelectiveScanParams& p, const Place& s, int64_t l0, int64_t l1) {
  Steps<T> st;
  const int64_t row = (s.b * p.dim + s.d) * p.L;
  const T bias = p.delta_bias ? static_cast<const T*>(p.delta_bias)[s.d] : T(0);
#pragma unroll
  for (int k = 0; k < kItems; ++k) {
    st.t[k] = l0 + s.lane * kItems + k;
    st.ok[k] = s.valid && st.t[k] < l1;
    st.raw[k] = st.ok[k] ? static_cast<const T*>(p.delta)[row + st.t[k]] + bias : T(0);
    st.dl[k] = st.ok[k] && p.softplus ? softplus(st.raw[k]) : st.raw[k];
    st.u[k] = st.ok[k] ? static_cast<const T*>(p.u)[row + st.t[k]] : T(0);
  }
  return st;
}

// State n over a tile: each step's (e, b) (identity past the tile) and the lane's composed map.
template <class T> struct Maps {
  T e[kItems], bx[kItems], Bn[kItems];
  T E, X;  // after scan_up: inclusive over lanes
};
template <class T>
__device__ __forceinline__ Maps<T> tile_maps(const Steps<T>& st, const T* Bn_row, T a, int lane) {
  Maps<T> m;
  m.E = 1;
  m.X = 0;
#pragma unroll
  for (int k = 0; k < kItems; ++k) {
    m.Bn[k] = st.ok[k] ? Bn_row[st.t[k]] : T(0);
    m.e[k] = st.ok[k] ? ex(st.dl[k] * a) : T(1);
    m.bx[k] = st.dl[k] * m.Bn[k] * st.u[k];
    m.X = m.e[k] * m.X + m.bx[k];
    m.E = m.e[k] * m.E;
  }
  scan_up(m.E, m.X, lane);
  return m;
}
// The state before the lane's first step, given the state before the tile.
template <class T> __device__ __forceinline__ T state_before(const Maps<T>& m, T carry, int lane) {
  T ep = __shfl_up_sync(kFull, m.E, 1), xp = __shfl_up_sync(kFull, m.X, 1);
  if (lane == 0) ep = 1, xp = 0;
  return ep * carry + xp;
}

// u, delta, z, out (batch, dim, L); B, C (batch, groups, N, L); A (dim, N); D, delta_bias (dim);
// last_state (batch, dim, N); checkpoints (batch, dim, nch, N).
template <class T>
__global__ void __launch_bounds__(kBlock) scan_fwd_kernel(const SelectiveScanParams p, int64_t cpb, int64_t nch) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const Place s = locate(p, cpb);
  if (!s.valid) return;  // warps are independent in the forward
  const int64_t N = p.N, L = p.L, row = (s.b * p.dim + s.d) * L;
  T* carry = reinterpret_cast<T*>(smem_raw) + s.w * N;  // state before the tile, per n
  for (int64_t n = s.lane; n < N; n += kWarp) carry[n] = 0;
  __syncwarp();
  const T* A = static_cast<const T*>(p.A) + s.d * N;
  const T* B = static_cast<const T*>(p.B) + (s.b * p.groups + s.g) * N * L;
  const T* C = static_cast<const T*>(p.C) + (s.b * p.groups + s.g) * N * L;
  T* ck = static_cast<T*>(p.checkpoints);
  const T Dd = p.D ? static_cast<const T*>(p.D)[s.d] : T(0);
  for (int64_t l0 = 0; l0 < L; l0 += kTile) {
    const Steps<T> st = load_steps<T>(p, s, l0, L);
    T y[kItems];
#pragma unroll
    for (int k = 0; k < kItems; ++k) y[k] = 0;
    for (int64_t n = 0; n < N; ++n) {
      const Maps<T> m = tile_maps(st, B + n * L, A[n], s.lane);
      const T c = carry[n];
      T x = state_before(m, c, s.lane);
#pragma unroll
      for (int k = 0; k < kItems; ++k) {
        if (!st.ok[k]) continue;
        if (ck && st.t[k] % p.chunk == 0) ck[((s.b * p.dim + s.d) * nch + st.t[k] / p.chunk) * N + n] = x;
        x = m.e[k] * x + m.bx[k];
        y[k] += x * C[n * L + st.t[k]];
      }
      const T next = __shfl_sync(kFull, m.E * c + m.X, kWarp - 1);
      __syncwarp();  // every lane has read carry[n]
      if (s.lane == 0) carry[n] = next;
    }
    __syncwarp();
    const T* zp = static_cast<const T*>(p.z);
#pragma unroll
    for (int k = 0; k < kItems; ++k) {
      if (!st.ok[k]) continue;
      T o = y[k] + Dd * st.u[k];
      if (zp) {
        const T zz = zp[row + st.t[k]];
        o *= zz * sigm(zz);
      }
      static_cast<T*>(p.out)[row + st.t[k]] = o;
    }
  }
  if (p.last_state)
    for (int64_t n = s.lane; n < N; n += kWarp) static_cast<T*>(p.last_state)[(s.b * p.dim + s.d) * N + n] = carry[n];
}

// Where the backward's sums go before the fixed-order reduction (or the outputs themselves
// when there is nothing to reduce): dB, dC [(b*G + g)*cpb + k][N][L]; dA [b][dim][N];
// dD, dbias [b][dim].
template <class T> struct Parts { T *dB, *dC, *dA, *dD, *dbias; };

// Shared memory per warp: A row, dA, the carry of dL/dx, the chunk's tile-start states
// [ntile][N]; per block: the warps' dB, dC contributions of one state over a tile.
template <class T>
__global__ void __launch_bounds__(kBlock) scan_bwd_kernel(const SelectiveScanParams p, int64_t cpb, int64_t nch,
                                                          int ntile, const Parts<T> o) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const Place s = locate(p, cpb);
  const int64_t N = p.N, L = p.L, row = (s.b * p.dim + s.d) * L;
  T* s_A = reinterpret_cast<T*>(smem_raw) + s.w * (3 + ntile) * N;
  T* s_dA = s_A + N;
  T* s_h = s_dA + N;    // dL/dx carried into the tile from the right, times e (per n)
  T* s_ts = s_h + N;    // [ntile][N]
  T* s_rB = reinterpret_cast<T*>(smem_raw) + kWarps * (3 + ntile) * N;  // [kWarps][kTile]
  T* s_rC = s_rB + kWarps * kTile;
  for (int64_t n = s.lane; n < N; n += kWarp) {
    s_A[n] = s.valid ? static_cast<const T*>(p.A)[s.d * N + n] : T(0);
    s_dA[n] = 0;
    s_h[n] = 0;
  }
  __syncwarp();
  const T* B = static_cast<const T*>(p.B) + (s.b * p.groups + s.g) * N * L;
  const T* C = static_cast<const T*>(p.C) + (s.b * p.groups + s.g) * N * L;
  const T* ck = static_cast<const T*>(p.checkpoints);
  const T* zp = static_cast<const T*>(p.z);
  const T Dd = p.D && s.valid ? static_cast<const T*>(p.D)[s.d] : T(0);
  const int64_t prow = ((s.b * p.groups + s.g) * cpb + s.k) * N;
  T dD = 0, dbias = 0;
  for (int64_t ci = nch - 1; ci >= 0; --ci) {
    const int64_t c0 = ci * p.chunk, c1 = imin(L, c0 + p.chunk);
    const int nt = int(cdiv(c1 - c0, kTile));
    for (int64_t n = s.lane; n < N; n += kWarp)
      s_ts[n] = s.valid ? ck[((s.b * p.dim + s.d) * nch + ci) * N + n] : T(0);
    __syncwarp();
    for (int it = 0; it + 1 < nt; ++it) {  // the chunk's tile-start states
      const int64_t l0 = c0 + int64_t(it) * kTile;
      const Steps<T> st = load_steps<T>(p, s, l0, imin(c1, l0 + kTile));
      for (int64_t n = 0; n < N; ++n) {
        const Maps<T> m = tile_maps(st, B + n * L, s_A[n], s.lane);
        const T next = __shfl_sync(kFull, m.E * s_ts[it * N + n] + m.X, kWarp - 1);
        if (s.lane == 0) s_ts[(it + 1) * N + n] = next;
      }
      __syncwarp();
    }
    for (int it = nt - 1; it >= 0; --it) {
      const int64_t l0 = c0 + int64_t(it) * kTile, l1 = imin(c1, l0 + kTile);
      const Steps<T> st = load_steps<T>(p, s, l0, l1);
      T g[kItems], gy[kItems], zz[kItems], sg[kItems], du[kItems], dd[kItems], y[kItems];
#pragma unroll
      for (int k = 0; k < kItems; ++k) {
        g[k] = st.ok[k] ? static_cast<const T*>(p.gout)[row + st.t[k]] : T(0);
        gy[k] = g[k], zz[k] = 0, sg[k] = 0;
        if (zp && st.ok[k]) {
          zz[k] = zp[row + st.t[k]];
          sg[k] = sigm(zz[k]);
          gy[k] = g[k] * zz[k] * sg[k];
        }
        du[k] = gy[k] * Dd, dd[k] = 0, y[k] = 0;
      }
      for (int64_t n = 0; n < N; ++n) {
        const T a = s_A[n];
        const Maps<T> m = tile_maps(st, B + n * L, a, s.lane);
        T Cn[kItems], xp[kItems], xn[kItems];
        T x = state_before(m, s_ts[it * N + n], s.lane), M = 1, Y = 0;
#pragma unroll
        for (int k = 0; k < kItems; ++k) {
          Cn[k] = st.ok[k] ? C[n * L + st.t[k]] : T(0);
          xp[k] = x;
          x = m.e[k] * x + m.bx[k];
          xn[k] = x;
          y[k] += x * Cn[k];
        }
        // dL/dx_t = gy_t C_t + c_{t+1}, c_t = e_t dL/dx_t: lane maps c_after -> M c_after + Y.
#pragma unroll
        for (int k = kItems - 1; k >= 0; --k) {
          Y = m.e[k] * (Y + gy[k] * Cn[k]);
          M = m.e[k] * M;
        }
        scan_down(M, Y, s.lane);
        T mn = __shfl_down_sync(kFull, M, 1), yn = __shfl_down_sync(kFull, Y, 1);
        if (s.lane == kWarp - 1) mn = 1, yn = 0;
        T c = mn * s_h[n] + yn, dAl = 0;
#pragma unroll
        for (int k = kItems - 1; k >= 0; --k) {
          const T H = gy[k] * Cn[k] + c, he = H * xp[k] * m.e[k];
          c = m.e[k] * H;
          s_rC[s.w * kTile + s.lane * kItems + k] = gy[k] * xn[k];
          s_rB[s.w * kTile + s.lane * kItems + k] = H * st.dl[k] * st.u[k];
          dAl += he * st.dl[k];
          du[k] += H * st.dl[k] * m.Bn[k];
          dd[k] += he * a + H * m.Bn[k] * st.u[k];
        }
        const T before = __shfl_sync(kFull, c, 0);
        dAl = warp_sum(dAl);
        if (s.lane == 0) {  // only this warp touches its s_h, s_dA; every lane read s_h[n] above
          s_h[n] = before;
          s_dA[n] += dAl;
        }
        __syncthreads();
        for (int i = int(threadIdx.x); i < 2 * kTile; i += kBlock) {
          const int j = i % kTile;
          if (l0 + j >= l1) continue;
          const T* src = i < kTile ? s_rB : s_rC;
          T sum = 0;
          for (int v = 0; v < kWarps; ++v) sum += src[v * kTile + j];  // invalid warps add zeros
          (i < kTile ? o.dB : o.dC)[(prow + n) * L + l0 + j] = sum;
        }
        __syncthreads();
      }
#pragma unroll
      for (int k = 0; k < kItems; ++k) {
        if (!st.ok[k]) continue;
        T gd = dd[k];
        if (p.softplus) gd *= st.raw[k] > T(20) ? T(1) : sigm(st.raw[k]);
        dbias += gd;
        dD += gy[k] * st.u[k];
        static_cast<T*>(p.ddelta)[row + st.t[k]] = gd;
        static_cast<T*>(p.du)[row + st.t[k]] = du[k];
        if (zp) static_cast<T*>(p.dz)[row + st.t[k]] = g[k] * (y[k] + Dd * st.u[k]) * sg[k] * (T(1) + zz[k] * (T(1) - sg[k]));
      }
    }
  }
  dD = warp_sum(dD);
  dbias = warp_sum(dbias);
  __syncwarp();
  if (!s.valid) return;
  for (int64_t n = s.lane; n < N; n += kWarp) o.dA[(s.b * p.dim + s.d) * N + n] = s_dA[n];
  if (s.lane == 0) {
    if (o.dD) o.dD[s.b * p.dim + s.d] = dD;
    if (o.dbias) o.dbias[s.b * p.dim + s.d] = dbias;
  }
}

// out[o*cols + j] = sum over i < rows, ascending, of in[(o*rows + i)*cols + j].
template <class T>
__global__ void sum_parts_kernel(T* out, const T* in, int64_t outer, int64_t rows, int64_t cols) {
  const int64_t n = outer * cols;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = e / cols, j = e % cols;
    const T* src = in + o * rows * cols + j;
    T s = 0;
    for (int64_t i = 0; i < rows; ++i) s += src[i * cols];
    out[e] = s;
  }
}

struct Cfg {
  int64_t cpb = 1;   // blocks per group
  int64_t nch = 0;   // checkpoints per row
  int ntile = 1;     // backward: tiles per checkpoint chunk
  size_t smem = 0;   // dynamic shared memory, bytes
};

Cfg configure(const SelectiveScanParams& p, bool bwd, int device) {
  FASTDL_CHECK(p.N >= 1 && p.N <= kMaxStates, ValueError, "selective_scan: the CUDA kernel takes N <= ", kMaxStates,
               " states; got N = ", p.N);
  const size_t sz = dtype_size(p.dt);
  Cfg q;
  q.cpb = cdiv(p.dim / p.groups, kWarps);
  q.nch = scan_chunks(p);
  q.ntile = int(cdiv(imin(p.chunk, p.L), kTile));
  q.smem = bwd ? sz * size_t(kWarps * (3 + q.ntile) * p.N + 2 * kWarps * kTile) : sz * size_t(kWarps * p.N);
  int limit = 48 << 10;
  if (q.smem > size_t(limit))
    check(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
          "cudaDeviceGetAttribute (selective_scan)");
  FASTDL_CHECK(q.smem <= size_t(limit), DeviceError, "selective_scan: needs ", q.smem,
               " bytes of shared memory per block (N = ", p.N, ", chunk = ", p.chunk, "); the device allows ", limit);
  FASTDL_CHECK(p.batch * p.groups * q.cpb < (int64_t(1) << 31), DeviceError,
               "selective_scan: too many blocks for one launch (batch ", p.batch, ", dim ", p.dim, ")");
  return q;
}

template <class Kernel, class... Args>
void launch(Kernel k, const Cfg& q, const SelectiveScanParams& p, const char* what, Args... args) {
  if (q.smem > (48u << 10))
    check(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, int(q.smem)), what);
  const unsigned grid = unsigned(p.batch * p.groups * q.cpb);
  k<<<grid, kBlock, q.smem, stream()>>>(p, q.cpb, q.nch, args...);
  check_launch(what);
}

template <class T>
void sum_parts(T* out, const T* in, int64_t outer, int64_t rows, int64_t cols, int device) {
  sum_parts_kernel<T><<<grid_for(outer * cols, device), kThreads, 0, stream()>>>(out, in, outer, rows, cols);
  check_launch("selective_scan backward (sum_parts)");
}

void zero(void* ptr, int64_t n, size_t sz, const char* what) {
  if (ptr && n > 0) check(cudaMemsetAsync(ptr, 0, size_t(n) * sz, stream()), what);
}

template <class T>
void fwd_typed(const SelectiveScanParams& p, int device) {
  launch(scan_fwd_kernel<T>, configure(p, false, device), p, "selective_scan forward");
}

template <class T>
void bwd_typed(const SelectiveScanParams& p, int device) {
  const Cfg q = configure(p, true, device);
  const int64_t bg = p.batch * p.groups, bcn = p.N * p.L;
  const bool split_bc = q.cpb > 1, split_b = p.batch > 1;
  const int64_t nbc = split_bc ? bg * q.cpb * bcn : 0, na = split_b ? p.batch * p.dim * p.N : 0,
                nd = split_b ? p.batch * p.dim : 0;
  Scratch ws(sizeof(T) * size_t(2 * nbc + na + (p.dD ? nd : 0) + (p.ddelta_bias ? nd : 0)), device);
  T* cur = static_cast<T*>(ws.ptr);
  auto take = [&](void* final_ptr, bool split, int64_t n) -> T* {
    if (!split || !final_ptr) return static_cast<T*>(final_ptr);
    T* r = cur;
    cur += n;
    return r;
  };
  Parts<T> o;
  o.dB = take(p.dB, split_bc, nbc);
  o.dC = take(p.dC, split_bc, nbc);
  o.dA = take(p.dA, split_b, na);
  o.dD = take(p.dD, split_b, nd);
  o.dbias = take(p.ddelta_bias, split_b, nd);
  launch(scan_bwd_kernel<T>, q, p, "selective_scan backward", q.ntile, o);
  if (split_bc) {
    sum_parts(static_cast<T*>(p.dB), o.dB, bg, q.cpb, bcn, device);
    sum_parts(static_cast<T*>(p.dC), o.dC, bg, q.cpb, bcn, device);
  }
  if (split_b) {
    sum_parts(static_cast<T*>(p.dA), o.dA, 1, p.batch, p.dim * p.N, device);
    if (p.dD) sum_parts(static_cast<T*>(p.dD), o.dD, 1, p.batch, p.dim, device);
    if (p.ddelta_bias) sum_parts(static_cast<T*>(p.ddelta_bias), o.dbias, 1, p.batch, p.dim, device);
  }
}

void check_dtype(const SelectiveScanParams& p) {
  FASTDL_CHECK(p.dt == DType::f32 || p.dt == DType::f64, TypeError,
               "selective_scan: the CUDA kernel takes float32 or float64 operands; got ", dtype_str(p.dt));
}

}  // namespace

void selective_scan_fwd(const SelectiveScanParams& p, int device) {
  check_dtype(p);
  if (p.batch == 0 || p.dim == 0) return;
  use_device(device);
  const size_t sz = dtype_size(p.dt);
  if (p.L == 0) {
    zero(p.last_state, p.batch * p.dim * p.N, sz, "selective_scan forward (last_state)");
    return;
  }
  if (p.dt == DType::f64) fwd_typed<double>(p, device);
  else fwd_typed<float>(p, device);
}

void selective_scan_bwd(const SelectiveScanParams& p, int device) {
  check_dtype(p);
  use_device(device);
  const size_t sz = dtype_size(p.dt);
  if (p.batch == 0 || p.dim == 0 || p.L == 0) {  // nothing flows: every gradient is zero
    const int64_t row = p.batch * p.dim * p.L, bc = p.batch * p.groups * p.N * p.L;
    zero(p.du, row, sz, "selective_scan backward");
    zero(p.ddelta, row, sz, "selective_scan backward");
    zero(p.dz, row, sz, "selective_scan backward");
    zero(p.dB, bc, sz, "selective_scan backward");
    zero(p.dC, bc, sz, "selective_scan backward");
    zero(p.dA, p.dim * p.N, sz, "selective_scan backward");
    zero(p.dD, p.dim, sz, "selective_scan backward");
    zero(p.ddelta_bias, p.dim, sz, "selective_scan backward");
    return;
  }
  if (p.dt == DType::f64) bwd_typed<double>(p, device);
  else bwd_typed<float>(p, device);
}

}  // namespace fastdl::cuda
