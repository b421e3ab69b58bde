// Mamba's selective scan on CUDA; semantics, params and checkpoint layout in cpu/selective_scan.h.
//   fwd   one block per (batch, group, run of kc channels of that group); thread (channel c,
//         lane s of tpc) keeps the P states n = s + j*tpc in registers and walks L in tiles
//         of T steps staged in shared memory (delta', u, the group's B and C); y_t comes from
//         a fixed butterfly over the channel's tpc lanes. Writes out, last_state and the
//         state before every `chunk` steps (the CPU kernel's checkpoints, same layout).
//   bwd   the same blocks walk the chunks in reverse: recompute the chunk's states from its
//         checkpoint into shared memory, then step back through it carrying dL/dx in
//         registers. du, ddelta, dz are rows of one block; dA, dD, ddelta_bias (over batch)
//         and dB, dC (over the group's blocks) leave per-block partials that sum_parts adds
//         in a fixed order. No atomics anywhere: results are bitwise reproducible.
// fp32 state for float32 operands (the op converts bf16/f16 to float32), fp64 for float64.
#include <algorithm>

#include "cpu/selective_scan.h"
#include "cuda/common.cuh"

namespace fastdl::cuda {
namespace {

using cpu::SelectiveScanParams;

constexpr int kWarp = 32;
constexpr int64_t kMaxStates = 256;  // P = 8 states per thread x 32 lanes

__host__ __device__ __forceinline__ int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

struct Cfg {
  int tpc = 1;       // threads per channel: a power of two <= 32, so a channel stays in one warp
  int kc = 1;        // channels per block (kc * tpc is a multiple of 32)
  int T = 1;         // steps per shared-memory tile
  int64_t dpg = 1;   // channels per group
  int64_t cpb = 1;   // blocks per group
  int64_t nch = 0;   // checkpoints per row
  size_t smem = 0;   // dynamic shared memory, bytes
};

template <class T> __device__ __forceinline__ T ex(T v) { return exp(v); }
template <> __device__ __forceinline__ float ex<float>(float v) { return expf(v); }
template <class T> __device__ __forceinline__ T lg1p(T v) { return log1p(v); }
template <> __device__ __forceinline__ float lg1p<float>(float v) { return log1pf(v); }
template <class T> __device__ __forceinline__ T sigm(T v) { return T(1) / (T(1) + ex(-v)); }
template <class T> __device__ __forceinline__ T softplus(T v) { return v > T(20) ? v : lg1p(ex(v)); }

// Sum over the `width` lanes of a channel (xor butterfly: every lane gets the same bits).
template <class T> __device__ __forceinline__ T lane_sum(T v, int width) {
  for (int o = width >> 1; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
// Sum over the channels of a warp for one lane position (offsets tpc .. 16).
template <class T> __device__ __forceinline__ T channel_sum(T v, int tpc) {
  for (int o = tpc; o < kWarp; o <<= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Which rows this block and thread own.
struct Place {
  int64_t b, g, k;  // batch, group, block within the group
  int c, s, nc;     // channel in block, lane in channel, valid channels in this block
  int64_t d0;       // first channel of the block
  bool valid;       // c < nc
};
__device__ __forceinline__ Place locate(const SelectiveScanParams& p, const Cfg& q) {
  Place w;
  const int64_t bid = blockIdx.x;
  w.k = bid % q.cpb;
  w.g = (bid / q.cpb) % p.groups;
  w.b = bid / (q.cpb * p.groups);
  w.c = int(threadIdx.x) / q.tpc;
  w.s = int(threadIdx.x) % q.tpc;
  w.d0 = w.g * q.dpg + w.k * q.kc;
  w.nc = int(imin(q.kc, q.dpg - w.k * q.kc));
  w.valid = w.c < w.nc;
  return w;
}

// delta' = softplus?(delta + bias) for the block's rows over [l0, l0 + T): dst[c*T + t]
// (and the pre-softplus value into raw when asked); zero outside the block's rows or L.
template <class T>
__device__ void load_delta(T* dst, T* raw, const SelectiveScanParams& p, const Cfg& q, const Place& w, int64_t l0,
                           int64_t l1) {
  const T* delta = static_cast<const T*>(p.delta);
  const T* bias = static_cast<const T*>(p.delta_bias);
  for (int i = threadIdx.x; i < q.kc * q.T; i += blockDim.x) {
    const int c = i / q.T;
    const int64_t l = l0 + i % q.T;
    T v = 0, r = 0;
    if (c < w.nc && l < l1) {
      const int64_t d = w.d0 + c;
      r = delta[(w.b * p.dim + d) * p.L + l] + (bias ? bias[d] : T(0));
      v = p.softplus ? softplus(r) : r;
    }
    dst[i] = v;
    if (raw) raw[i] = r;
  }
}
// A (batch, dim, L) operand's block rows over [l0, l1) into dst[c*T + t] (zero elsewhere).
template <class T>
__device__ void load_rows(T* dst, const void* src, const SelectiveScanParams& p, const Cfg& q, const Place& w,
                          int64_t l0, int64_t l1) {
  const T* x = static_cast<const T*>(src);
  for (int i = threadIdx.x; i < q.kc * q.T; i += blockDim.x) {
    const int c = i / q.T;
    const int64_t l = l0 + i % q.T;
    dst[i] = c < w.nc && l < l1 ? x[(w.b * p.dim + w.d0 + c) * p.L + l] : T(0);
  }
}
// The group's B or C (N, L) over [l0, l1) into dst[n*(T+1) + t] (padded row: no bank conflicts).
template <class T>
__device__ void load_bc(T* dst, const void* src, const SelectiveScanParams& p, const Cfg& q, const Place& w,
                        int64_t l0, int64_t l1) {
  const T* x = static_cast<const T*>(src) + (w.b * p.groups + w.g) * p.N * p.L;
  for (int i = threadIdx.x; i < p.N * q.T; i += blockDim.x) {
    const int64_t n = i / q.T, l = l0 + i % q.T;
    dst[n * (q.T + 1) + i % q.T] = l < l1 ? x[n * p.L + l] : T(0);
  }
}

// u, delta, z, out (batch, dim, L); B, C (batch, groups, N, L); A (dim, N); D, delta_bias (dim);
// last_state (batch, dim, N); checkpoints (batch, dim, nch, N).
template <class T, int P>
__global__ void scan_fwd_kernel(const SelectiveScanParams p, const Cfg q) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int KT = q.kc * q.T, TP = q.T + 1;
  T* s_dl = reinterpret_cast<T*>(smem_raw);
  T* s_u = s_dl + KT;
  T* s_y = s_u + KT;
  T* s_B = s_y + KT;
  T* s_C = s_B + p.N * TP;
  const Place w = locate(p, q);
  const int64_t d = w.d0 + w.c, N = p.N;
  T a[P], x[P];
#pragma unroll
  for (int j = 0; j < P; ++j) {
    const int64_t n = w.s + j * q.tpc;
    a[j] = w.valid && n < N ? static_cast<const T*>(p.A)[d * N + n] : T(0);
    x[j] = 0;
  }
  T* ck = static_cast<T*>(p.checkpoints);
  const T* Dp = static_cast<const T*>(p.D);
  const T* zp = static_cast<const T*>(p.z);
  T* out = static_cast<T*>(p.out);
  for (int64_t l0 = 0; l0 < p.L; l0 += q.T) {
    const int tn = int(imin(q.T, p.L - l0));
    load_delta<T>(s_dl, nullptr, p, q, w, l0, p.L);
    load_rows<T>(s_u, p.u, p, q, w, l0, p.L);
    load_bc<T>(s_B, p.B, p, q, w, l0, p.L);
    load_bc<T>(s_C, p.C, p, q, w, l0, p.L);
    __syncthreads();
    for (int t = 0; t < tn; ++t) {
      const int64_t l = l0 + t;
      if (ck && l % p.chunk == 0 && w.valid) {
#pragma unroll
        for (int j = 0; j < P; ++j) {
          const int64_t n = w.s + j * q.tpc;
          if (n < N) ck[((w.b * p.dim + d) * q.nch + l / p.chunk) * N + n] = x[j];
        }
      }
      const T dl = s_dl[w.c * q.T + t], bu = dl * s_u[w.c * q.T + t];
      T yp = 0;
#pragma unroll
      for (int j = 0; j < P; ++j) {
        const int64_t n = w.s + j * q.tpc;
        if (n < N) {
          x[j] = ex(dl * a[j]) * x[j] + bu * s_B[n * TP + t];
          yp += x[j] * s_C[n * TP + t];
        }
      }
      const T y = lane_sum(yp, q.tpc);
      if (w.s == 0) s_y[w.c * q.T + t] = y;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < KT; i += blockDim.x) {
      const int c = i / q.T, t = i % q.T;
      if (c >= w.nc || t >= tn) continue;
      const int64_t idx = (w.b * p.dim + w.d0 + c) * p.L + l0 + t;
      T o = s_y[i] + (Dp ? Dp[w.d0 + c] * s_u[i] : T(0));
      if (zp) o *= zp[idx] * sigm(zp[idx]);
      out[idx] = o;
    }
    __syncthreads();
  }
  if (p.last_state && w.valid) {
#pragma unroll
    for (int j = 0; j < P; ++j) {
      const int64_t n = w.s + j * q.tpc;
      if (n < N) static_cast<T*>(p.last_state)[(w.b * p.dim + d) * N + n] = x[j];
    }
  }
}

// Where the backward's sums go before the fixed-order reduction (or the outputs themselves
// when there is nothing to reduce): dB, dC [(b*G + g)*cpb + k][N][L]; dA [b][dim][N];
// dD, dbias [b][dim].
template <class T> struct Parts { T *dB, *dC, *dA, *dD, *dbias; };

template <class T, int P>
__global__ void scan_bwd_kernel(const SelectiveScanParams p, const Cfg q, const Parts<T> o) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int KT = q.kc * q.T, TP = q.T + 1, bd = int(blockDim.x), nw = bd / kWarp;
  const int64_t N = p.N;
  T* s_xp = reinterpret_cast<T*>(smem_raw);  // state before each step of the chunk: [t][j][thread]
  T* s_dl = s_xp + p.chunk * P * bd;
  T* s_raw = s_dl + KT;
  T* s_u = s_raw + KT;
  T* s_g = s_u + KT;
  T* s_z = s_g + KT;
  T* s_du = s_z + KT;
  T* s_dd = s_du + KT;
  T* s_dz = s_dd + KT;
  T* s_B = s_dz + KT;
  T* s_C = s_B + N * TP;
  T* s_wB = s_C + N * TP;  // per-warp sums over its channels: [warp][n][t]
  T* s_wC = s_wB + nw * N * q.T;
  const Place w = locate(p, q);
  const int64_t d = w.d0 + w.c;
  const int tid = int(threadIdx.x), lane = tid % kWarp, wid = tid / kWarp;
  const T Dd = p.D && w.valid ? static_cast<const T*>(p.D)[d] : T(0);
  T a[P], x[P], h[P], dA[P];
#pragma unroll
  for (int j = 0; j < P; ++j) {
    const int64_t n = w.s + j * q.tpc;
    a[j] = w.valid && n < N ? static_cast<const T*>(p.A)[d * N + n] : T(0);
    h[j] = 0;
    dA[j] = 0;
  }
  T dD = 0, dbias = 0;
  const T* ck = static_cast<const T*>(p.checkpoints);
  for (int64_t ci = q.nch - 1; ci >= 0; --ci) {
    const int64_t c0 = ci * p.chunk, c1 = imin(p.L, c0 + p.chunk);
#pragma unroll
    for (int j = 0; j < P; ++j) {
      const int64_t n = w.s + j * q.tpc;
      x[j] = w.valid && n < N ? ck[((w.b * p.dim + d) * q.nch + ci) * N + n] : T(0);
    }
    // Recompute the chunk forward, keeping the state before every step.
    for (int64_t l0 = c0; l0 < c1; l0 += q.T) {
      const int tn = int(imin(q.T, c1 - l0));
      load_delta<T>(s_dl, nullptr, p, q, w, l0, c1);
      load_rows<T>(s_u, p.u, p, q, w, l0, c1);
      load_bc<T>(s_B, p.B, p, q, w, l0, c1);
      __syncthreads();
      for (int t = 0; t < tn; ++t) {
        const T dl = s_dl[w.c * q.T + t], bu = dl * s_u[w.c * q.T + t];
        T* xs = s_xp + (l0 - c0 + t) * P * bd + tid;
#pragma unroll
        for (int j = 0; j < P; ++j) {
          xs[j * bd] = x[j];
          const int64_t n = w.s + j * q.tpc;
          if (n < N) x[j] = ex(dl * a[j]) * x[j] + bu * s_B[n * TP + t];
        }
      }
      __syncthreads();
    }
    // Walk the chunk backwards, tile by tile.
    const int64_t ntile = (c1 - c0 + q.T - 1) / q.T;
    for (int64_t it = ntile - 1; it >= 0; --it) {
      const int64_t l0 = c0 + it * q.T;
      const int tn = int(imin(q.T, c1 - l0));
      load_delta<T>(s_dl, p.softplus ? s_raw : nullptr, p, q, w, l0, c1);
      load_rows<T>(s_u, p.u, p, q, w, l0, c1);
      load_rows<T>(s_g, p.gout, p, q, w, l0, c1);
      if (p.z) load_rows<T>(s_z, p.z, p, q, w, l0, c1);
      load_bc<T>(s_B, p.B, p, q, w, l0, c1);
      load_bc<T>(s_C, p.C, p, q, w, l0, c1);
      __syncthreads();
      for (int t = tn - 1; t >= 0; --t) {
        const int r = w.c * q.T + t;
        const T dl = s_dl[r], uu = s_u[r], g = s_g[r], bu = dl * uu;
        T gy = g, zz = 0, sg = 0;
        if (p.z) {
          zz = s_z[r];
          sg = sigm(zz);
          gy = g * zz * sg;
        }
        const T* xs = s_xp + (l0 - c0 + t) * P * bd + tid;
        T yp = 0, pdu = 0, pgd = 0;
#pragma unroll
        for (int j = 0; j < P; ++j) {
          const int64_t n = w.s + j * q.tpc;
          T vB = 0, vC = 0;
          if (n < N) {
            const T xp = xs[j * bd], Bn = s_B[n * TP + t], Cn = s_C[n * TP + t];
            const T e = ex(dl * a[j]);
            const T xn = e * xp + bu * Bn;
            yp += xn * Cn;
            const T hn = h[j] + gy * Cn;
            vC = gy * xn;
            vB = hn * bu;
            const T tt = hn * xp * e;
            pgd += tt * a[j] + hn * Bn * uu;
            dA[j] += tt * dl;
            pdu += hn * Bn;
            h[j] = hn * e;
          }
          vB = channel_sum(vB, q.tpc);
          vC = channel_sum(vC, q.tpc);
          if (lane < q.tpc && n < N) {
            s_wB[(wid * N + n) * q.T + t] = vB;
            s_wC[(wid * N + n) * q.T + t] = vC;
          }
        }
        pdu = lane_sum(pdu, q.tpc);
        pgd = lane_sum(pgd, q.tpc);
        if (p.z) yp = lane_sum(yp, q.tpc);
        if (w.s == 0 && w.valid) {
          s_du[r] = gy * Dd + pdu * dl;
          T gd = pgd;
          if (p.softplus) gd *= s_raw[r] > T(20) ? T(1) : sigm(s_raw[r]);
          s_dd[r] = gd;
          dbias += gd;
          dD += gy * uu;
          if (p.z) s_dz[r] = g * (yp + Dd * uu) * sg * (T(1) + zz * (T(1) - sg));
        }
      }
      __syncthreads();
      for (int i = tid; i < KT; i += bd) {
        const int c = i / q.T, t = i % q.T;
        if (c >= w.nc || t >= tn) continue;
        const int64_t idx = (w.b * p.dim + w.d0 + c) * p.L + l0 + t;
        static_cast<T*>(p.du)[idx] = s_du[i];
        static_cast<T*>(p.ddelta)[idx] = s_dd[i];
        if (p.z) static_cast<T*>(p.dz)[idx] = s_dz[i];
      }
      const int64_t prow = ((w.b * p.groups + w.g) * q.cpb + w.k) * N;
      for (int i = tid; i < N * q.T; i += bd) {
        const int64_t n = i / q.T;
        const int t = i % q.T;
        if (t >= tn) continue;
        T sB = 0, sC = 0;
        for (int v = 0; v < nw; ++v) {
          sB += s_wB[(v * N + n) * q.T + t];
          sC += s_wC[(v * N + n) * q.T + t];
        }
        o.dB[(prow + n) * p.L + l0 + t] = sB;
        o.dC[(prow + n) * p.L + l0 + t] = sC;
      }
      __syncthreads();
    }
  }
  if (!w.valid) return;
#pragma unroll
  for (int j = 0; j < P; ++j) {
    const int64_t n = w.s + j * q.tpc;
    if (n < N) o.dA[(w.b * p.dim + d) * N + n] = dA[j];
  }
  if (w.s == 0) {
    if (o.dD) o.dD[w.b * p.dim + d] = dD;
    if (o.dbias) o.dbias[w.b * p.dim + d] = dbias;
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

int pow2_at_least(int64_t v) {
  int r = 1;
  while (r < v) r <<= 1;
  return r;
}
int states_per_thread(int64_t N) { return N <= 64 ? 2 : 8; }

size_t fwd_smem(const SelectiveScanParams& p, const Cfg& q, size_t sz) {
  return sz * size_t(3 * q.kc * q.T + 2 * p.N * (q.T + 1));
}
size_t bwd_smem(const SelectiveScanParams& p, const Cfg& q, size_t sz) {
  const int64_t bd = int64_t(q.kc) * q.tpc, nw = bd / kWarp;
  return sz * size_t(p.chunk * states_per_thread(p.N) * bd + 8 * q.kc * q.T + 2 * p.N * (q.T + 1) +
                     2 * nw * p.N * q.T);
}

Cfg configure(const SelectiveScanParams& p, bool bwd, int device) {
  FASTDL_CHECK(p.N >= 1 && p.N <= kMaxStates, ValueError, "selective_scan: the CUDA kernel takes N <= ", kMaxStates,
               " states; got N = ", p.N);
  const size_t sz = dtype_size(p.dt);
  const int P = states_per_thread(p.N);
  Cfg q;
  q.tpc = std::min(kWarp, pow2_at_least((p.N + P - 1) / P));
  q.dpg = p.dim / p.groups;
  // Up to 128 threads, no more channels than the group has, at least one warp.
  q.kc = std::max(kWarp / q.tpc, std::min(128 / q.tpc, pow2_at_least(q.dpg)));
  q.nch = cpu::scan_chunks(p);
  int limit = 48 << 10;
  if (bwd) {
    check(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
          "cudaDeviceGetAttribute (selective_scan)");
    // The chunk's states take chunk * P * threads elements: keep them within ~64 KiB.
    while (q.kc * q.tpc > kWarp && size_t(p.chunk) * P * q.kc * q.tpc * sz > (64u << 10)) q.kc >>= 1;
  }
  q.cpb = (q.dpg + q.kc - 1) / q.kc;
  q.T = bwd ? 16 : 32;
  auto smem = [&] { return bwd ? bwd_smem(p, q, sz) : fwd_smem(p, q, sz); };
  while (q.T > 1 && smem() > size_t(limit)) q.T >>= 1;
  q.smem = smem();
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
  k<<<grid, unsigned(q.kc * q.tpc), q.smem, stream()>>>(p, q, args...);
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
  const Cfg q = configure(p, false, device);
  if (states_per_thread(p.N) == 2) launch(scan_fwd_kernel<T, 2>, q, p, "selective_scan forward");
  else launch(scan_fwd_kernel<T, 8>, q, p, "selective_scan forward");
}

// Device scratch from the caching allocator, handed back (stream-ordered) on scope exit.
struct Scratch {
  void* ptr = nullptr;
  size_t bytes = 0;
  int device = 0;
  Scratch(size_t n, int dev) : bytes(n), device(dev) { if (n) ptr = alloc(n, dev); }
  ~Scratch() { if (ptr) free(ptr, bytes, device); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

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
  if (states_per_thread(p.N) == 2) launch(scan_bwd_kernel<T, 2>, q, p, "selective_scan backward", o);
  else launch(scan_bwd_kernel<T, 8>, q, p, "selective_scan backward", o);
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
