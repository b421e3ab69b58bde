// C[b] = alpha * A[b] @ B[b] + beta * C[b] over strided, batched operands (batch stride 0
// broadcasts); beta == 0 never reads C.
//  - bf16: tensor-core kernel (mma.sync m16n8k16, fp32 accumulation). 128x128x32 block tile,
//    8 warps of 64x32, 4-stage cp.async pipeline into padded shared memory, fragments via
//    ldmatrix (.trans for M-contiguous A / N-contiguous B), one instantiation per operand
//    layout (4). Needs each operand contiguous along M or K (A) / K or N (B), 16-byte aligned
//    rows; anything else takes the SIMT kernel.
//  - f32 (no TF32), f64, and bf16 fallback: SIMT tiled kernel (cuda/gemm_simt.cuh), 256
//    threads, register block TMxTN per thread, register prefetch of the next tile, any strides;
//    split over K when the output tiles cannot fill the device; f32 products too small for
//    128 x 128 tiles run on 64 x 64 (small_product).
#include <algorithm>
#include <atomic>

#include "cuda/common.cuh"
#include "cuda/gemm_simt.cuh"

namespace fastdl::cuda {
namespace {

using bf16 = __nv_bfloat16;

// ---------------------------------------------------------------- bf16 tensor-core kernel
namespace tc {
constexpr int BM = 128, BN = 128, BK = 32, STAGES = 4, PAD = 8, THREADS = 256;
template <bool KMajor, int MN> __host__ __device__ constexpr int tile_elems() { return KMajor ? MN * (BK + PAD) : BK * (MN + PAD); }
template <bool AK, bool BK_> __host__ __device__ constexpr int smem_bytes() {
  return STAGES * (tile_elems<AK, BM>() + tile_elems<BK_, BN>()) * int(sizeof(bf16));
}
}  // namespace tc

__device__ __forceinline__ unsigned smem_addr(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}
// 16-byte async copy global -> shared; bytes < 16 zero-fills the rest (0: all zeros).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, int bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)),
               "l"(__cvta_generic_to_global(src)), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
// d (16x8 f32) += a (16x16 bf16, row) * b (16x8 bf16, col).
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
// Bytes of a 8-element vector starting `left` elements before the edge.
__device__ __forceinline__ int vec_bytes(int64_t left) { return left <= 0 ? 0 : (left >= 8 ? 16 : int(left) * 2); }

// AK: A is K-contiguous (smem [m][k]) else M-contiguous (smem [k][m]);
// BKm: B is K-contiguous (smem [n][k]) else N-contiguous (smem [k][n]).
template <bool AK, bool BKm>
__global__ void __launch_bounds__(tc::THREADS, 2) gemm_bf16_tc_kernel(GemmArgs p) {
  using namespace tc;
  constexpr int A_ELEMS = tile_elems<AK, BM>(), B_ELEMS = tile_elems<BKm, BN>(), STAGE = A_ELEMS + B_ELEMS;
  constexpr int LDA = AK ? BK + PAD : BM + PAD, LDB = BKm ? BK + PAD : BN + PAD;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* smem = reinterpret_cast<bf16*>(smem_raw);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp % 2, wn = warp / 2;  // warp tile origin (wm * 64, wn * 32)
  const int64_t tiles_m = (p.M + BM - 1) / BM;
  const int64_t m0 = (blockIdx.x % tiles_m) * BM, n0 = (blockIdx.x / tiles_m) * BN;
  const int64_t b = p.batch0 + blockIdx.y;
  const bf16* A = static_cast<const bf16*>(p.A) + b * p.sa_b;
  const bf16* B = static_cast<const bf16*>(p.B) + b * p.sb_b;
  const int64_t ktiles = (p.K + BK - 1) / BK;

  // 512 16-byte vectors per operand tile, two per thread; out-of-range parts read as zero.
  auto load_tile = [&](int stage, int64_t kt) {
    bf16* As = smem + stage * STAGE;
    bf16* Bs = As + A_ELEMS;
    const int64_t k0 = kt * BK;
#pragma unroll
    for (int l = 0; l < 2; ++l) {
      const int v = tid + l * THREADS;
      if constexpr (AK) {
        const int r = v / (BK / 8), c = (v % (BK / 8)) * 8;
        const int64_t gm = m0 + r, gk = k0 + c;
        const int bytes = gm < p.M ? vec_bytes(p.K - gk) : 0;
        cp_async16(As + r * LDA + c, bytes ? A + gm * p.sa_m + gk : A, bytes);
      } else {
        const int r = v / (BM / 8), c = (v % (BM / 8)) * 8;
        const int64_t gk = k0 + r, gm = m0 + c;
        const int bytes = gk < p.K ? vec_bytes(p.M - gm) : 0;
        cp_async16(As + r * LDA + c, bytes ? A + gk * p.sa_k + gm : A, bytes);
      }
      if constexpr (BKm) {
        const int r = v / (BK / 8), c = (v % (BK / 8)) * 8;
        const int64_t gn = n0 + r, gk = k0 + c;
        const int bytes = gn < p.N ? vec_bytes(p.K - gk) : 0;
        cp_async16(Bs + r * LDB + c, bytes ? B + gn * p.sb_n + gk : B, bytes);
      } else {
        const int r = v / (BN / 8), c = (v % (BN / 8)) * 8;
        const int64_t gk = k0 + r, gn = n0 + c;
        const int bytes = gk < p.K ? vec_bytes(p.N - gn) : 0;
        cp_async16(Bs + r * LDB + c, bytes ? B + gk * p.sb_k + gn : B, bytes);
      }
    }
  };

  float acc[4][4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;

#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < ktiles) load_tile(s, s);
    cp_async_commit();  // one group per tile, empty past the end, so the count stays exact
  }
  const int mi = lane >> 3, mr = lane & 7;  // which 8x8 matrix this lane addresses, and its row
  for (int64_t kt = 0; kt < ktiles; ++kt) {
    cp_async_wait<STAGES - 2>();  // tile kt has landed (for this thread) ...
    __syncthreads();              // ... for all threads, and stage (kt-1) % STAGES is free
    const int64_t next = kt + STAGES - 1;
    if (next < ktiles) load_tile(int(next % STAGES), next);
    cp_async_commit();
    const bf16* As = smem + int(kt % STAGES) * STAGE;
    const bf16* Bs = As + A_ELEMS;
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      uint32_t af[4][4], bfr[4][2];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int mb = wm * 64 + i * 16;
        if constexpr (AK) ldmatrix_x4(af[i], As + (mb + mr + (mi & 1) * 8) * LDA + kk + (mi >> 1) * 8);
        else ldmatrix_x4_trans(af[i], As + (kk + mr + (mi >> 1) * 8) * LDA + mb + (mi & 1) * 8);
      }
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int nb = wn * 32 + h * 16;
        uint32_t t[4];
        if constexpr (BKm) ldmatrix_x4(t, Bs + (nb + mr + (mi >> 1) * 8) * LDB + kk + (mi & 1) * 8);
        else ldmatrix_x4_trans(t, Bs + (kk + mr + (mi & 1) * 8) * LDB + nb + (mi >> 1) * 8);
        bfr[2 * h][0] = t[0];
        bfr[2 * h][1] = t[1];
        bfr[2 * h + 1][0] = t[2];
        bfr[2 * h + 1][1] = t[3];
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) mma_bf16(acc[i][j], af[i], bfr[j]);
    }
  }
  cp_async_wait<0>();

  // Accumulator (i, j, e): row g (+8 for e >= 2), column 2t + (e & 1) of the 16x8 tile.
  bf16* C = static_cast<bf16*>(p.C) + b * p.sc_b;
  const float alpha = float(p.alpha), beta = float(p.beta);
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t m = m0 + wm * 64 + i * 16 + g + (e >> 1) * 8;
        const int64_t n = n0 + wn * 32 + j * 8 + 2 * t + (e & 1);
        if (m >= p.M || n >= p.N) continue;
        bf16* c = C + m * p.sc_m + n * p.sc_n;
        float v = alpha * acc[i][j][e];
        if (p.beta != 0.0) v += beta * __bfloat162float(*c);
        *c = __float2bfloat16_rn(v);
      }
}

// ---------------------------------------------------------------- host side
template <class Kernel>
void launch_batches(Kernel kernel, GemmArgs a, int64_t batch, int64_t tiles, int threads, int smem) {
  for (int64_t b0 = 0; b0 < batch; b0 += 65535) {
    a.batch0 = b0;
    const dim3 grid(unsigned(tiles), unsigned(std::min<int64_t>(65535, batch - b0)));
    kernel<<<grid, threads, smem, stream()>>>(a);
    check_launch("gemm");
  }
}

// K parts for a single product whose output tiles cannot fill the device (a weight gradient:
// M, N the layer's widths, K the batch x sequence): about two blocks per multiprocessor, each
// part at least kmin deep, the partials within kSplitKBytes. 1: no split.
constexpr int64_t kSplitKBytes = int64_t(128) << 20;
int64_t split_k_parts(int64_t tiles, int64_t M, int64_t N, int64_t K, size_t acc_bytes, int64_t kmin, int device) {
  const int64_t want = 2 * int64_t(sm_count(device));
  if (tiles >= want / 2 || K < 2 * kmin) return 1;
  int64_t parts = std::min<int64_t>({cdiv(want, tiles), K / kmin, 64});
  while (parts > 1 && parts * M * N * int64_t(acc_bytes) > kSplitKBytes) --parts;
  return std::max<int64_t>(1, parts);
}

template <class T, class Acc, int BM, int BN, int BK, int TM, int TN>
void launch_simt(const GemmArgs& a, int64_t batch, int device) {
  const int64_t tiles = ((a.M + BM - 1) / BM) * ((a.N + BN - 1) / BN);
  const int64_t kmin = BM * BN >= 128 * 128 ? 256 : 128;  // deep enough to hide a part's prologue
  const int64_t parts = batch == 1 ? split_k_parts(tiles, a.M, a.N, a.K, sizeof(Acc), kmin, device) : 1;
  if (parts == 1) {
    launch_batches(gemm_simt_kernel<T, Acc, BM, BN, BK, TM, TN>, a, batch, tiles, 256, 0);
    return;
  }
  GemmArgs s = a;
  s.kper = cdiv(cdiv(a.K, parts), BK) * BK;  // whole BK steps per part
  const int64_t n = cdiv(a.K, s.kper);
  Scratch ws(size_t(n * a.M * a.N) * sizeof(Acc), device);
  s.ws = ws.ptr;
  gemm_simt_kernel<T, Acc, BM, BN, BK, TM, TN><<<dim3(unsigned(tiles), 1, unsigned(n)), 256, 0, stream()>>>(s);
  check_launch("gemm (split K)");
  gemm_splitk_reduce_kernel<T, Acc><<<grid_for(a.M * a.N, device), kThreads, 0, stream()>>>(s, int(n));
  check_launch("gemm (split-K sum)");
}

// A product too small to fill the device with 128 x 128 tiles and too shallow (K) for split K
// to make up for it: the per-step products of a recurrent layer (M = batch), a small batched
// product. It runs on 64 x 64 tiles (4 x 4 per thread): four times the blocks, and split K
// from K = 256 (parts of 128 or more). Weight gradients (K = batch x sequence) keep the large tiles and split K.
bool small_product(const GemmArgs& a, int64_t batch, int device) {
  const int64_t tiles = cdiv(a.M, 128) * cdiv(a.N, 128) * batch;
  return tiles < sm_count(device) && a.K < 2048;
}

template <bool AK, bool BKm>
void launch_tc(const GemmArgs& a, int64_t batch, int device) {
  constexpr int bytes = tc::smem_bytes<AK, BKm>();
  static std::atomic<uint64_t> configured{0};  // bit d: attribute set on device d
  const uint64_t bit = device < 64 ? (uint64_t(1) << device) : 0;
  if (!bit || !(configured.load() & bit)) {
    check(cudaFuncSetAttribute(gemm_bf16_tc_kernel<AK, BKm>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
          "cudaFuncSetAttribute (gemm)");
    configured.fetch_or(bit);
  }
  const int64_t tiles = ((a.M + tc::BM - 1) / tc::BM) * ((a.N + tc::BN - 1) / tc::BN);
  launch_batches(gemm_bf16_tc_kernel<AK, BKm>, a, batch, tiles, tc::THREADS, bytes);
}

bool unit(int64_t s, int64_t extent) { return extent <= 1 || s == 1; }
bool lead(int64_t s, int64_t extent) { return extent <= 1 || s % 8 == 0; }
bool align16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Runs the tensor-core kernel when the layouts allow; false otherwise.
bool try_tc(const GemmParams& p, const GemmArgs& a, int device) {
  if (!align16(p.A) || !align16(p.B) || !lead(p.sa_b, p.batch) || !lead(p.sb_b, p.batch)) return false;
  int ak = -1, bk = -1;  // 1: K-contiguous, 0: M- / N-contiguous
  if (unit(p.sa_k, p.K) && lead(p.sa_m, p.M)) ak = 1;
  else if (unit(p.sa_m, p.M) && lead(p.sa_k, p.K)) ak = 0;
  if (unit(p.sb_k, p.K) && lead(p.sb_n, p.N)) bk = 1;
  else if (unit(p.sb_n, p.N) && lead(p.sb_k, p.K)) bk = 0;
  if (ak < 0 || bk < 0) return false;
  if (ak && bk) launch_tc<true, true>(a, p.batch, device);
  else if (ak) launch_tc<true, false>(a, p.batch, device);
  else if (bk) launch_tc<false, true>(a, p.batch, device);
  else launch_tc<false, false>(a, p.batch, device);
  return true;
}

}  // namespace

void gemm(const GemmParams& p, int device) {
  if (p.M <= 0 || p.N <= 0 || p.batch <= 0 || p.batch2 <= 0) return;
  if (p.batch2 > 1) {  // the outer batch level: one launch per outer index
    const int64_t e = int64_t(dtype_size(p.dtype));
    for (int64_t o = 0; o < p.batch2; ++o) {
      GemmParams q = p;
      q.batch2 = 1;
      q.A = static_cast<const char*>(p.A) + o * p.sa_b2 * e;
      q.B = static_cast<const char*>(p.B) + o * p.sb_b2 * e;
      q.C = static_cast<char*>(p.C) + o * p.sc_b2 * e;
      gemm(q, device);
    }
    return;
  }
  use_device(device);
  const GemmArgs a{p.M, p.N, p.K, p.A, p.sa_b, p.sa_m, p.sa_k, p.B, p.sb_b, p.sb_k, p.sb_n,
                   p.C, p.sc_b, p.sc_m, p.sc_n, p.alpha, p.beta, 0};
  switch (p.dtype) {
    case DType::bf16:
      if (!try_tc(p, a, device)) launch_simt<bf16, float, 128, 128, 8, 8, 8>(a, p.batch, device);
      return;
    case DType::f32:
      if (small_product(a, p.batch, device)) launch_simt<float, float, 64, 64, 8, 4, 4>(a, p.batch, device);
      else launch_simt<float, float, 128, 128, 8, 8, 8>(a, p.batch, device);
      return;
    case DType::f64: launch_simt<double, double, 64, 64, 8, 4, 4>(a, p.batch, device); return;
    default: throw DeviceError(str_cat("cuda: gemm: unsupported dtype ", dtype_str(p.dtype)));
  }
}

}  // namespace fastdl::cuda
