// Fused scaled-dot-product attention on CUDA (FlashAttention-2, Dao 2023); semantics and params
// in kernels/attention.h. SIMT FMA in the operand precision (float32, float64).
//   fwd   one block (8 warps) per (batch*head, 32 query rows): warp w owns rows 4w..4w+3, lane j
//         the key j of each 32-key tile (K staged transposed in shared memory, V row-major);
//         online softmax per row, O in registers (lane owns columns lane + 32c); writes out, lse.
//   bwd   dsum = rowsum(dO * O) per row; then one block per (batch, kv head, 32-key block) walks
//         its group's query heads and query blocks (causal: from the diagonal on), recomputing
//         P = exp(S - lse): dK, dV accumulate in registers (warp w owns keys 4w..4w+3, lane owns
//         columns) and are written once; dQ is summed with atomicAdd into the zeroed dq.
//   fwd   bf16 / f16 (tensor cores, fp32 accumulation, lse in float32): below, before the host side.
// Tiles above the causal diagonal are skipped. Dropout regenerates the counter-based mask.
#include <algorithm>

#include <mma.h>

#include "cuda/common.cuh"
#include "kernels/attention.h"

namespace fastdl::cuda {
namespace {


constexpr int kWarp = 32;
constexpr int kWarps = 8;                 // warps per block
constexpr int kBlock = kWarps * kWarp;    // threads per block
constexpr int kBc = 32;                   // keys per tile: one per lane
constexpr int kPad = kBc + 1;             // row length of transposed tiles (no bank conflicts)
constexpr int kRows = 4;                  // forward: query rows per warp
constexpr int kBr = kWarps * kRows;       // forward: query rows per block
constexpr int kKeys = kBc / kWarps;       // backward: keys per warp while accumulating dK, dV
constexpr int kMaxDim = 8 * kWarp;        // E, Ev <= 256 (8 columns per lane)
constexpr unsigned kFull = 0xffffffffu;


template <class T> __device__ __forceinline__ T ex(T v) { return exp(v); }
template <> __device__ __forceinline__ float ex<float>(float v) { return expf(v); }
template <class T> __device__ __forceinline__ T lg(T v) { return log(v); }
template <> __device__ __forceinline__ float lg<float>(float v) { return logf(v); }
template <class T> __device__ __forceinline__ T inf() { return T(INFINITY); }

template <class T> __device__ __forceinline__ T warp_max(T v) {
  for (int o = kWarp / 2; o > 0; o >>= 1) v = fmax(v, __shfl_xor_sync(kFull, v, o));
  return v;
}
template <class T> __device__ __forceinline__ T warp_sum(T v) {
  for (int o = kWarp / 2; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
  return v;
}

// The logit of (b, h, i, j) from its dot product: scale * dot + mask, or -inf where the key or
// query is out of range, above the causal diagonal or masked out.
// The additive mask is stored as MT (dt).
template <class T, class MT = T>
__device__ __forceinline__ T logit(const AttentionParams& p, int64_t b, int64_t h, int64_t i, int64_t j, T dot) {
  if (i >= p.L || j >= p.S || (p.causal && j > i)) return -inf<T>();
  T s = dot * T(p.scale);
  if (p.mask_kind != MaskKind::none) {
    const int64_t off = b * p.m_sb + h * p.m_sh + i * p.m_sl + j * p.m_ss;
    if (p.mask_kind == MaskKind::boolean) {
      if (!static_cast<const uint8_t*>(p.mask)[off]) return -inf<T>();
    } else {
      s += cvt<T>(static_cast<const MT*>(p.mask)[off]);
    }
  }
  return s;
}

// Dropout keeps (b, h, i, j) iff its counter-based uniform is >= p (kernels/attention.h).
__device__ __forceinline__ bool kept(const AttentionParams& p, int64_t b, int64_t h, int64_t i, int64_t j) {
  const uint64_t ctr = uint64_t(((b * p.heads + h) * p.L + i) * p.S + j);
  return dropout_uniform(p.seed, ctr) >= float(p.dropout_p);  // the CPU kernels' comparison
}

// K (kBc keys from j0, width E) into dst[e*kPad + j]; zero past S.
template <class T>
__device__ __forceinline__ void load_keys_t(T* dst, const T* src, int64_t sl, int64_t j0, int64_t S, int E) {
  for (int x = threadIdx.x; x < kBc * E; x += kBlock) {
    const int j = x / E, e = x % E;
    dst[e * kPad + j] = j0 + j < S ? src[(j0 + j) * sl + e] : T(0);
  }
}
// `rows` rows of width W from i0 into dst[r*W + e]; zero past n.
template <class T>
__device__ __forceinline__ void load_rows(T* dst, const T* src, int64_t sl, int64_t i0, int64_t n, int rows, int W) {
  for (int x = threadIdx.x; x < rows * W; x += kBlock) {
    const int r = x / W, e = x % W;
    dst[x] = i0 + r < n ? src[(i0 + r) * sl + e] : T(0);
  }
}

// q (batch, heads, L, E), k (batch, kv_heads, S, E), v (batch, kv_heads, S, Ev) strided;
// out (batch, heads, L, Ev), lse (batch, heads, L) contiguous. Grid: batch*heads*nqb blocks.
template <class T, int DV>
__global__ void __launch_bounds__(kBlock) attn_fwd_kernel(const AttentionParams p, int64_t nqb) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int E = int(p.E), Ev = int(p.Ev);
  T* s_q = reinterpret_cast<T*>(smem_raw);  // [kBr][E]
  T* s_k = s_q + kBr * E;                   // [E][kPad]
  T* s_v = s_k + E * kPad;                  // [kBc][Ev]
  const int64_t bh = blockIdx.x / nqb, i0 = (blockIdx.x % nqb) * kBr;
  const int64_t b = bh / p.heads, h = bh % p.heads, g = h / (p.heads / p.kv_heads);
  const int lane = threadIdx.x % kWarp, w = threadIdx.x / kWarp;
  const T* q = static_cast<const T*>(p.q) + b * p.q_sb + h * p.q_sh;
  const T* k = static_cast<const T*>(p.k) + b * p.k_sb + g * p.k_sh;
  const T* v = static_cast<const T*>(p.v) + b * p.v_sb + g * p.v_sh;
  load_rows(s_q, q, p.q_sl, i0, p.L, kBr, E);
  T m[kRows], l[kRows], o[kRows][DV];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    m[r] = -inf<T>();
    l[r] = 0;
#pragma unroll
    for (int c = 0; c < DV; ++c) o[r][c] = 0;
  }
  const T rkeep = p.dropout_p > 0 ? T(1.0 / (1.0 - p.dropout_p)) : T(1);
  const int64_t kend = p.causal ? imin(p.S, i0 + kBr) : p.S;  // keys past the diagonal: skipped
  for (int64_t j0 = 0; j0 < kend; j0 += kBc) {
    __syncthreads();  // the previous tile is consumed
    load_keys_t(s_k, k, p.k_sl, j0, p.S, E);
    load_rows(s_v, v, p.v_sl, j0, p.S, kBc, Ev);
    __syncthreads();
    T s[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) s[r] = 0;
    for (int e = 0; e < E; ++e) {
      const T kv = s_k[e * kPad + lane];
#pragma unroll
      for (int r = 0; r < kRows; ++r) s[r] += s_q[(w * kRows + r) * E + e] * kv;
    }
    const int64_t j = j0 + lane;
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int64_t i = i0 + w * kRows + r;
      const T sc = logit(p, b, h, i, j, s[r]);
      const T mx = fmax(m[r], warp_max(sc));  // warp-uniform
      T pr = 0, alpha = 1;
      if (mx != -inf<T>()) {  // -inf: every key so far masked; the row stays empty
        pr = ex(sc - mx);
        alpha = ex(m[r] - mx);
      }
      l[r] = l[r] * alpha + warp_sum(pr);  // the softmax denominator ignores dropout
      m[r] = mx;
      if (p.dropout_p > 0) pr = pr != T(0) && kept(p, b, h, i, j) ? pr * rkeep : T(0);
      s[r] = pr;
#pragma unroll
      for (int c = 0; c < DV; ++c) o[r][c] *= alpha;
    }
    const int jn = int(imin(kBc, p.S - j0));
    for (int jj = 0; jj < jn; ++jj) {
      T vv[DV];
#pragma unroll
      for (int c = 0; c < DV; ++c) {
        const int e = lane + c * kWarp;
        vv[c] = e < Ev ? s_v[jj * Ev + e] : T(0);
      }
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        const T pj = __shfl_sync(kFull, s[r], jj);
#pragma unroll
        for (int c = 0; c < DV; ++c) o[r][c] += pj * vv[c];
      }
    }
  }
  T* out = static_cast<T*>(p.out);
  T* lse = static_cast<T*>(p.lse);
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int64_t i = i0 + w * kRows + r;
    if (i >= p.L) continue;
    const bool empty = m[r] == -inf<T>();  // no key left: out = 0, lse = +inf
    const T inv = empty ? T(0) : T(1) / l[r];
#pragma unroll
    for (int c = 0; c < DV; ++c) {
      const int e = lane + c * kWarp;
      if (e < Ev) out[(bh * p.L + i) * Ev + e] = o[r][c] * inv;
    }
    if (lane == 0) lse[bh * p.L + i] = empty ? inf<T>() : m[r] + lg(l[r]);
  }
}

// dsum[row] = <gout[row], out[row]> over rows of width Ev, one warp per row.
template <class T>
__global__ void attn_rowdot_kernel(T* dsum, const T* gout, const T* out, int64_t rows, int64_t Ev) {
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x / kWarp);
  const int lane = threadIdx.x % kWarp;
  for (int64_t row = blockIdx.x * int64_t(blockDim.x / kWarp) + threadIdx.x / kWarp; row < rows; row += warps) {
    T s = 0;
    for (int64_t e = lane; e < Ev; e += kWarp) s += gout[row * Ev + e] * out[row * Ev + e];
    s = warp_sum(s);
    if (lane == 0) dsum[row] = s;
  }
}

// Reads q, k, v (strided), gout, lse, dsum (contiguous); writes dk, dv (batch, kv_heads, S, E|Ev)
// and adds into dq (batch, heads, L, E), which starts zeroed. Grid: batch*kv_heads*nkb blocks;
// br query rows per step (32, 16 or 8: whatever fits in shared memory).
template <class T, int DV>
__global__ void __launch_bounds__(kBlock) attn_bwd_kernel(const AttentionParams p, const T* dsum, T* dq,
                                                          int64_t nkb, int br) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int E = int(p.E), Ev = int(p.Ev);
  T* s_k = reinterpret_cast<T*>(smem_raw);  // [E][kPad]
  T* s_v = s_k + E * kPad;                  // [Ev][kPad]
  T* s_q = s_v + Ev * kPad;                 // [br][E]
  T* s_go = s_q + br * E;                   // [br][Ev]
  T* s_p = s_go + br * Ev;                  // [br][kPad]: P after dropout
  T* s_ds = s_p + br * kPad;                // [br][kPad]: dS * scale
  T* s_lse = s_ds + br * kPad;              // [br]
  T* s_d = s_lse + br;                      // [br]
  const int64_t bg = blockIdx.x / nkb, j0 = (blockIdx.x % nkb) * kBc;
  const int64_t b = bg / p.kv_heads, g = bg % p.kv_heads, group = p.heads / p.kv_heads;
  const int lane = threadIdx.x % kWarp, w = threadIdx.x / kWarp;
  load_keys_t(s_k, static_cast<const T*>(p.k) + b * p.k_sb + g * p.k_sh, p.k_sl, j0, p.S, E);
  load_keys_t(s_v, static_cast<const T*>(p.v) + b * p.v_sb + g * p.v_sh, p.v_sl, j0, p.S, Ev);
  T dk[kKeys][DV], dv[kKeys][DV];
#pragma unroll
  for (int kk = 0; kk < kKeys; ++kk)
#pragma unroll
    for (int c = 0; c < DV; ++c) dk[kk][c] = dv[kk][c] = 0;
  const T scale = T(p.scale);
  const T rkeep = p.dropout_p > 0 ? T(1.0 / (1.0 - p.dropout_p)) : T(1);
  const int64_t ibeg = p.causal ? (j0 / br) * br : 0;  // rows above the diagonal: skipped
  const int64_t j = j0 + lane;
  for (int64_t h = g * group; h < (g + 1) * group; ++h) {
    const int64_t bh = b * p.heads + h;
    const T* q = static_cast<const T*>(p.q) + b * p.q_sb + h * p.q_sh;
    const T* go = static_cast<const T*>(p.gout) + bh * p.L * Ev;
    const T* lse = static_cast<const T*>(p.lse) + bh * p.L;
    for (int64_t i0 = ibeg; i0 < p.L; i0 += br) {
      __syncthreads();  // the previous step's tiles are consumed
      load_rows(s_q, q, p.q_sl, i0, p.L, br, E);
      load_rows(s_go, go, int64_t(Ev), i0, p.L, br, Ev);
      for (int r = threadIdx.x; r < br; r += kBlock) {
        const bool in = i0 + r < p.L;
        s_lse[r] = in ? lse[i0 + r] : inf<T>();
        s_d[r] = in ? dsum[bh * p.L + i0 + r] : T(0);
      }
      __syncthreads();
      // P and dS for this tile: warp w rows w, w + 8, ...; lane = key.
      for (int r = w; r < br; r += kWarps) {
        const int64_t i = i0 + r;
        T sq = 0, dp = 0;
        for (int e = 0; e < E; ++e) sq += s_q[r * E + e] * s_k[e * kPad + lane];
        for (int e = 0; e < Ev; ++e) dp += s_go[r * Ev + e] * s_v[e * kPad + lane];
        const T sc = logit(p, b, h, i, j, sq);
        const T pr = sc == -inf<T>() ? T(0) : ex(sc - s_lse[r]);  // lse = +inf (empty row) gives 0
        T pd = pr;
        if (p.dropout_p > 0) {
          const T z = pr != T(0) && kept(p, b, h, i, j) ? rkeep : T(0);
          pd = pr * z;
          dp *= z;
        }
        s_p[r * kPad + lane] = pd;
        s_ds[r * kPad + lane] = pr * (dp - s_d[r]) * scale;
      }
      __syncthreads();
      // dV += P^T dO, dK += dS^T Q: warp w keys w*kKeys.., lane columns.
      for (int r = 0; r < br; ++r) {
        T gv[DV], qv[DV];
#pragma unroll
        for (int c = 0; c < DV; ++c) {
          const int e = lane + c * kWarp;
          gv[c] = e < Ev ? s_go[r * Ev + e] : T(0);
          qv[c] = e < E ? s_q[r * E + e] : T(0);
        }
#pragma unroll
        for (int kk = 0; kk < kKeys; ++kk) {
          const T pj = s_p[r * kPad + w * kKeys + kk], dj = s_ds[r * kPad + w * kKeys + kk];
#pragma unroll
          for (int c = 0; c < DV; ++c) {
            dv[kk][c] += pj * gv[c];
            dk[kk][c] += dj * qv[c];
          }
        }
      }
      // dQ += dS K: warp w rows w, w + 8, ...; lane columns; one atomicAdd per element.
      const int jn = int(imin(kBc, p.S - j0));
      for (int r = w; r < br && i0 + r < p.L; r += kWarps) {
        T acc[DV];
#pragma unroll
        for (int c = 0; c < DV; ++c) acc[c] = 0;
        for (int jj = 0; jj < jn; ++jj) {
          const T dj = s_ds[r * kPad + jj];
#pragma unroll
          for (int c = 0; c < DV; ++c) {
            const int e = lane + c * kWarp;
            if (e < E) acc[c] += dj * s_k[e * kPad + jj];
          }
        }
        T* dst = dq + (bh * p.L + i0 + r) * E;
#pragma unroll
        for (int c = 0; c < DV; ++c) {
          const int e = lane + c * kWarp;
          if (e < E) atomicAdd(dst + e, acc[c]);
        }
      }
    }
  }
  T* dkp = static_cast<T*>(p.dk) + bg * p.S * E;
  T* dvp = static_cast<T*>(p.dv) + bg * p.S * Ev;
#pragma unroll
  for (int kk = 0; kk < kKeys; ++kk) {
    const int64_t jk = j0 + w * kKeys + kk;
    if (jk >= p.S) continue;
#pragma unroll
    for (int c = 0; c < DV; ++c) {
      const int e = lane + c * kWarp;
      if (e < E) dkp[jk * E + e] = dk[kk][c];
      if (e < Ev) dvp[jk * Ev + e] = dv[kk][c];
    }
  }
}


// ---------------------------------------------------------------- bf16 / f16 forward, tensor cores
// One block (4 warps) per (batch*head, 64 query rows); warp w owns rows 16w..16w+15. Per 64-key
// tile: S = Q K^T on tensor cores (16x16x16 bf16/f16 tiles, fp32 accumulation) into shared
// memory; the online softmax runs on it row by row (masks, causal, dropout as above) and leaves
// P in the operand precision; O += P V on tensor cores, with O kept in fp32 shared memory so the
// softmax rescales it by row. E and Ev multiples of 16, at most 128; lse is float32.
constexpr int kHRows = 64, kHKeys = 64, kHWarps = 4, kHBlock = kHWarps * kWarp;

struct HalfLayout {  // leading dims (elements) and byte offsets of the shared-memory tiles
  int lq, lv, ls, lp, lo;
  size_t q, k, v, s, p, o, m, l, bytes;
};
inline HalfLayout half_layout(int64_t E, int64_t Ev) {
  HalfLayout t;
  t.lq = int(E) + 8, t.lv = int(Ev) + 8, t.ls = kHKeys + 4, t.lp = kHKeys + 8, t.lo = int(Ev) + 4;
  auto up = [](size_t b) { return (b + 31) & ~size_t(31); };  // wmma pointers: 256-bit aligned
  t.q = 0;
  t.k = up(t.q + size_t(kHRows) * t.lq * 2);
  t.v = up(t.k + size_t(kHKeys) * t.lq * 2);
  t.s = up(t.v + size_t(kHKeys) * t.lv * 2);
  t.p = up(t.s + size_t(kHRows) * t.ls * 4);
  t.o = up(t.p + size_t(kHRows) * t.lp * 2);
  t.m = up(t.o + size_t(kHRows) * t.lo * 4);
  t.l = t.m + kHRows * 4;
  t.bytes = t.l + kHRows * 4;
  return t;
}

// q, k, v, out, the additive mask in H (__half or __nv_bfloat16); lse float32.
template <class H>
__global__ void __launch_bounds__(kHBlock) attn_fwd_half_kernel(const AttentionParams p, int64_t nqb, HalfLayout t) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800  // bf16 WMMA needs sm_80; the default archs are 80 and 90
  __trap();
#else
  namespace wm = nvcuda::wmma;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  H* s_q = reinterpret_cast<H*>(smem_raw + t.q);
  H* s_k = reinterpret_cast<H*>(smem_raw + t.k);
  H* s_v = reinterpret_cast<H*>(smem_raw + t.v);
  float* s_s = reinterpret_cast<float*>(smem_raw + t.s);
  H* s_p = reinterpret_cast<H*>(smem_raw + t.p);
  float* s_o = reinterpret_cast<float*>(smem_raw + t.o);
  float* s_m = reinterpret_cast<float*>(smem_raw + t.m);
  float* s_l = reinterpret_cast<float*>(smem_raw + t.l);
  const int E = int(p.E), Ev = int(p.Ev);
  const int64_t bh = blockIdx.x / nqb, i0 = (blockIdx.x % nqb) * kHRows;
  const int64_t b = bh / p.heads, h = bh % p.heads, g = h / (p.heads / p.kv_heads);
  const int tid = threadIdx.x, lane = tid % kWarp, w = tid / kWarp, r0 = w * 16;
  const H* q = static_cast<const H*>(p.q) + b * p.q_sb + h * p.q_sh;
  const H* k = static_cast<const H*>(p.k) + b * p.k_sb + g * p.k_sh;
  const H* v = static_cast<const H*>(p.v) + b * p.v_sb + g * p.v_sh;
  const H zero = cvt<H>(0.0f);
  for (int x = tid; x < kHRows * E; x += kHBlock) {
    const int r = x / E, e = x % E;
    s_q[r * t.lq + e] = i0 + r < p.L ? q[(i0 + r) * p.q_sl + e] : zero;
  }
  for (int x = tid; x < kHRows * Ev; x += kHBlock) s_o[(x / Ev) * t.lo + x % Ev] = 0.f;
  for (int x = tid; x < kHRows; x += kHBlock) s_m[x] = -INFINITY, s_l[x] = 0.f;
  const float rkeep = p.dropout_p > 0 ? float(1.0 / (1.0 - p.dropout_p)) : 1.f;
  const int64_t kend = p.causal ? imin(p.S, i0 + kHRows) : p.S;
  for (int64_t j0 = 0; j0 < kend; j0 += kHKeys) {
    __syncthreads();  // the previous tile is consumed (and the block's setup is visible)
    for (int x = tid; x < kHKeys * E; x += kHBlock) {
      const int j = x / E, e = x % E;
      s_k[j * t.lq + e] = j0 + j < p.S ? k[(j0 + j) * p.k_sl + e] : zero;
    }
    for (int x = tid; x < kHKeys * Ev; x += kHBlock) {
      const int j = x / Ev, e = x % Ev;
      s_v[j * t.lv + e] = j0 + j < p.S ? v[(j0 + j) * p.v_sl + e] : zero;
    }
    __syncthreads();
    // S (16 x 64) of this warp's rows.
    for (int nt = 0; nt < kHKeys / 16; ++nt) {
      wm::fragment<wm::accumulator, 16, 16, 16, float> acc;
      wm::fill_fragment(acc, 0.f);
      for (int kk = 0; kk < E; kk += 16) {
        wm::fragment<wm::matrix_a, 16, 16, 16, H, wm::row_major> fa;
        wm::fragment<wm::matrix_b, 16, 16, 16, H, wm::col_major> fb;
        wm::load_matrix_sync(fa, s_q + r0 * t.lq + kk, t.lq);
        wm::load_matrix_sync(fb, s_k + nt * 16 * t.lq + kk, t.lq);  // K^T: column j is key j
        wm::mma_sync(acc, fa, fb, acc);
      }
      wm::store_matrix_sync(s_s + r0 * t.ls + nt * 16, acc, t.ls, wm::mem_row_major);
    }
    __syncwarp();
    // Online softmax over the tile, row by row; lanes take keys lane and lane + 32.
    for (int r = r0; r < r0 + 16; ++r) {
      const int64_t i = i0 + r;
      float sc[2];
#pragma unroll
      for (int u = 0; u < 2; ++u) sc[u] = logit<float, H>(p, b, h, i, j0 + lane + u * kWarp, s_s[r * t.ls + lane + u * kWarp]);
      const float mo = s_m[r], mx = fmaxf(mo, warp_max(fmaxf(sc[0], sc[1])));
      float pr[2] = {0.f, 0.f}, alpha = 1.f;
      if (mx != -INFINITY) {
        pr[0] = expf(sc[0] - mx), pr[1] = expf(sc[1] - mx);
        alpha = expf(mo - mx);
      }
      const float lsum = warp_sum(pr[0] + pr[1]);
#pragma unroll
      for (int u = 0; u < 2; ++u) {
        const int64_t j = j0 + lane + u * kWarp;
        if (p.dropout_p > 0) pr[u] = pr[u] != 0.f && kept(p, b, h, i, j) ? pr[u] * rkeep : 0.f;
        s_p[r * t.lp + lane + u * kWarp] = cvt<H>(pr[u]);
      }
      for (int e = lane; e < Ev; e += kWarp) s_o[r * t.lo + e] *= alpha;
      __syncwarp();  // every lane has read s_m[r]
      if (lane == 0) s_m[r] = mx, s_l[r] = s_l[r] * alpha + lsum;
    }
    __syncwarp();
    // O (16 x Ev) += P (16 x 64) V (64 x Ev).
    for (int nt = 0; nt < Ev / 16; ++nt) {
      wm::fragment<wm::accumulator, 16, 16, 16, float> acc;
      wm::load_matrix_sync(acc, s_o + r0 * t.lo + nt * 16, t.lo, wm::mem_row_major);
      for (int kk = 0; kk < kHKeys; kk += 16) {
        wm::fragment<wm::matrix_a, 16, 16, 16, H, wm::row_major> fa;
        wm::fragment<wm::matrix_b, 16, 16, 16, H, wm::row_major> fb;
        wm::load_matrix_sync(fa, s_p + r0 * t.lp + kk, t.lp);
        wm::load_matrix_sync(fb, s_v + kk * t.lv + nt * 16, t.lv);
        wm::mma_sync(acc, fa, fb, acc);
      }
      wm::store_matrix_sync(s_o + r0 * t.lo + nt * 16, acc, t.lo, wm::mem_row_major);
    }
  }
  __syncthreads();
  H* out = static_cast<H*>(p.out);
  for (int x = tid; x < kHRows * Ev; x += kHBlock) {
    const int r = x / Ev, e = x % Ev;
    if (i0 + r >= p.L) continue;
    const bool empty = s_m[r] == -INFINITY;
    out[(bh * p.L + i0 + r) * Ev + e] = cvt<H>(empty ? 0.f : s_o[r * t.lo + e] / s_l[r]);
  }
  float* lse = static_cast<float*>(p.lse);
  for (int r = tid; r < kHRows; r += kHBlock)
    if (i0 + r < p.L) lse[bh * p.L + i0 + r] = s_m[r] == -INFINITY ? INFINITY : s_m[r] + logf(s_l[r]);
#endif
}

// ---------------------------------------------------------------- host side

int cols_per_lane(const AttentionParams& p) {
  const int64_t d = std::max(p.E, p.Ev);
  return d <= 2 * kWarp ? 2 : d <= 4 * kWarp ? 4 : 8;
}

int smem_limit(int device) {
  int limit = 48 << 10;
  check(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
        "cudaDeviceGetAttribute (attention)");
  return limit;
}

template <class Kernel, class... Args>
void launch(Kernel k, int64_t grid, size_t smem, const char* what, Args... args) {
  FASTDL_CHECK(grid < (int64_t(1) << 31), DeviceError, what, ": too many blocks for one launch (", grid, ")");
  if (smem > (48u << 10)) check(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)), what);
  k<<<unsigned(grid), kBlock, smem, stream()>>>(args...);
  check_launch(what);
}

template <class T, int DV>
void fwd_typed(const AttentionParams& p, int device) {
  const int64_t nqb = cdiv(p.L, kBr);
  const size_t smem = sizeof(T) * size_t(kBr * p.E + p.E * kPad + kBc * p.Ev);
  const int limit = smem_limit(device);
  FASTDL_CHECK(smem <= size_t(limit), DeviceError, "scaled_dot_product_attention: needs ", smem,
               " bytes of shared memory per block (E = ", p.E, ", Ev = ", p.Ev, "); the device allows ", limit);
  launch(attn_fwd_kernel<T, DV>, p.batch * p.heads * nqb, smem, "scaled_dot_product_attention forward", p, nqb);
}

size_t bwd_smem(const AttentionParams& p, int br, size_t sz) {
  return sz * size_t((p.E + p.Ev) * kPad + br * (p.E + p.Ev) + 2 * br * kPad + 2 * br);
}

template <class T, int DV>
void bwd_typed(const AttentionParams& p, int device) {
  const int64_t rows = p.batch * p.heads * p.L;
  T* dq = static_cast<T*>(p.dq);
  check(cudaMemsetAsync(dq, 0, sizeof(T) * size_t(rows * p.E), stream()), "scaled_dot_product_attention backward");
  if (p.S == 0) return;
  Scratch ws(sizeof(T) * size_t(rows), device);
  T* dsum = static_cast<T*>(ws.ptr);
  if (rows > 0) {
    attn_rowdot_kernel<T><<<grid_for(rows * kWarp, device), kThreads, 0, stream()>>>(
        dsum, static_cast<const T*>(p.gout), static_cast<const T*>(p.out), rows, p.Ev);
    check_launch("scaled_dot_product_attention backward (rowsum)");
  }
  const int limit = smem_limit(device);
  int br = 32;
  while (br > 8 && bwd_smem(p, br, sizeof(T)) > size_t(limit)) br >>= 1;
  const size_t smem = bwd_smem(p, br, sizeof(T));
  FASTDL_CHECK(smem <= size_t(limit), DeviceError, "scaled_dot_product_attention backward: needs ", smem,
               " bytes of shared memory per block (E = ", p.E, ", Ev = ", p.Ev, "); the device allows ", limit);
  const int64_t nkb = cdiv(p.S, kBc);
  launch(attn_bwd_kernel<T, DV>, p.batch * p.kv_heads * nkb, smem, "scaled_dot_product_attention backward", p,
         static_cast<const T*>(dsum), dq, nkb, br);
}

template <class H>
void fwd_half(const AttentionParams& p, int device) {
  const HalfLayout t = half_layout(p.E, p.Ev);
  const int limit = smem_limit(device);
  FASTDL_CHECK(t.bytes <= size_t(limit), DeviceError, "scaled_dot_product_attention: needs ", t.bytes,
               " bytes of shared memory per block; the device allows ", limit);
  const int64_t nqb = cdiv(p.L, kHRows), grid = p.batch * p.heads * nqb;
  FASTDL_CHECK(grid < (int64_t(1) << 31), DeviceError, "scaled_dot_product_attention: too many blocks (", grid, ")");
  const char* what = "scaled_dot_product_attention forward (tensor cores)";
  if (t.bytes > (48u << 10))
    check(cudaFuncSetAttribute(attn_fwd_half_kernel<H>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(t.bytes)), what);
  attn_fwd_half_kernel<H><<<unsigned(grid), kHBlock, t.bytes, stream()>>>(p, nqb, t);
  check_launch(what);
}

template <class T>
void dispatch(const AttentionParams& p, bool bwd, int device) {
  switch (cols_per_lane(p)) {
    case 2: return bwd ? bwd_typed<T, 2>(p, device) : fwd_typed<T, 2>(p, device);
    case 4: return bwd ? bwd_typed<T, 4>(p, device) : fwd_typed<T, 4>(p, device);
    default: return bwd ? bwd_typed<T, 8>(p, device) : fwd_typed<T, 8>(p, device);
  }
}

void check_params(const AttentionParams& p, bool bwd) {
  if (is_half(p.dt)) {
    FASTDL_CHECK(!bwd, TypeError, "scaled_dot_product_attention backward: the CUDA kernel takes float32 or float64; got ",
                 dtype_str(p.dt));
    FASTDL_CHECK(p.E % 16 == 0 && p.Ev % 16 == 0 && p.E <= 128 && p.Ev <= 128, ValueError,
                 "scaled_dot_product_attention: the ", dtype_str(p.dt), " CUDA kernel takes head dims that are multiples of ",
                 "16 up to 128; got E = ", p.E, ", Ev = ", p.Ev);
  } else {
    FASTDL_CHECK(p.dt == DType::f32 || p.dt == DType::f64, TypeError,
                 "scaled_dot_product_attention: the CUDA kernel takes float32, float64, bfloat16 or float16; got ",
                 dtype_str(p.dt));
  }
  FASTDL_CHECK(p.E <= kMaxDim && p.Ev <= kMaxDim, ValueError,
               "scaled_dot_product_attention: the CUDA kernel takes head dims up to ", kMaxDim, "; got E = ", p.E,
               ", Ev = ", p.Ev);
  FASTDL_CHECK(p.kv_heads > 0 && p.heads % p.kv_heads == 0, ValueError,
               "scaled_dot_product_attention: heads (", p.heads, ") must be a multiple of kv_heads (", p.kv_heads, ")");
}

}  // namespace

void attention_fwd(const AttentionParams& p, int device) {
  if (p.batch == 0 || p.heads == 0 || p.L == 0) return;
  check_params(p, false);
  use_device(device);
  if (p.dt == DType::bf16) fwd_half<__nv_bfloat16>(p, device);
  else if (p.dt == DType::f16) fwd_half<__half>(p, device);
  else if (p.dt == DType::f64) dispatch<double>(p, false, device);
  else dispatch<float>(p, false, device);
}

void attention_bwd(const AttentionParams& p, int device) {
  if (p.batch == 0 || p.heads == 0) return;
  check_params(p, true);
  use_device(device);
  if (p.L == 0) {  // no query: dk, dv are zero
    const size_t sz = dtype_size(p.dt), n = size_t(p.batch * p.kv_heads * p.S);
    check(cudaMemsetAsync(p.dk, 0, sz * n * size_t(p.E), stream()), "scaled_dot_product_attention backward");
    check(cudaMemsetAsync(p.dv, 0, sz * n * size_t(p.Ev), stream()), "scaled_dot_product_attention backward");
    return;
  }
  if (p.dt == DType::f64) dispatch<double>(p, true, device);
  else dispatch<float>(p, true, device);
}

}  // namespace fastdl::cuda
