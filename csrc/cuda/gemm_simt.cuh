// The SIMT GEMM kernel of cuda/gemm.cu (f32 without TF32, f64, the bf16 fallback) and its
// split-K reduction, in a header of their own so that a host harness can run the same source
// with emulated threads (no GPU needed to check the index arithmetic). Needs cvt<> and fma
// (cuda/common.cuh on the device).
#pragma once
#include <cstdint>
#include <type_traits>

namespace fastdl::cuda {

struct GemmArgs {
  int64_t M, N, K;
  const void* A;
  int64_t sa_b, sa_m, sa_k;
  const void* B;
  int64_t sb_b, sb_k, sb_n;
  void* C;
  int64_t sc_b, sc_m, sc_n;
  double alpha, beta;
  int64_t batch0;     // first batch of this launch (grid.y covers at most 65535)
  int64_t kper = 0;   // split K (batch 1 only): block z sums K in [z kper, (z + 1) kper) and
  void* ws = nullptr; // writes alpha times it to ws[z][M][N] (the accumulator type); C untouched
};

// A (M, K), B (K, N), C (M, N) for batch p.batch0 + blockIdx.y; block tile BM x BN. With float
// accumulators thread (tx, ty) owns TM / 4 groups of 4 consecutive rows, TY * 4 rows apart
// (ty * 4 + 64 g + i for 128 rows), and likewise columns: each group is one 16-byte shared load
// (4 x LDS.128 instead of 16 x LDS.32 per k step; a warp's B reads are 256 contiguous bytes, its
// A reads two broadcasts). The scalar form issued one shared load per four FMAs and ran at 0.54x
// cuBLAS (H200, 4096^3); the vector form is untimed so far (bench/GPU_NOTES.md). Otherwise rows
// ty + i TY and columns tx + j TX (conflict-free scalar reads of doubles).
template <class T, class Acc, int BM, int BN, int BK, int TM, int TN>
__global__ void __launch_bounds__(256) gemm_simt_kernel(GemmArgs p) {
  constexpr int TX = BN / TN, TY = BM / TM, LA = BM * BK / 256, LB = BK * BN / 256;
  constexpr bool kVec = std::is_same<Acc, float>::value && TM % 4 == 0 && TN % 4 == 0;
  static_assert(TX * TY == 256 && LA * 256 == BM * BK && LB * 256 == BK * BN, "tile shape");
  static_assert(!kVec || (BM + 4) % 4 == 0, "16-byte shared rows");
  __shared__ __align__(16) Acc As[BK][BM + 4];
  __shared__ __align__(16) Acc Bs[BK][BN + 4];
  const int tid = threadIdx.x, tx = tid % TX, ty = tid / TX;
  const int64_t tiles_m = (p.M + BM - 1) / BM;
  const int64_t m0 = (blockIdx.x % tiles_m) * BM, n0 = (blockIdx.x / tiles_m) * BN;
  const int64_t b = p.batch0 + blockIdx.y;
  const int64_t k_begin = p.kper ? int64_t(blockIdx.z) * p.kper : 0;
  const int64_t k_end = p.kper ? (p.K < k_begin + p.kper ? p.K : k_begin + p.kper) : p.K;
  const T* A = static_cast<const T*>(p.A) + b * p.sa_b;
  const T* B = static_cast<const T*>(p.B) + b * p.sb_b;
  T* C = static_cast<T*>(p.C) + b * p.sc_b;
  auto row = [&](int i) { return kVec ? (i / 4) * (TY * 4) + ty * 4 + i % 4 : ty + i * TY; };
  auto col = [&](int j) { return kVec ? (j / 4) * (TX * 4) + tx * 4 + j % 4 : tx + j * TX; };
  // Walk the contiguous dimension with consecutive threads for coalesced loads.
  const bool a_kfast = p.sa_k == 1, b_nfast = p.sb_n == 1;
  Acc ra[LA], rb[LB];
  auto a_coord = [&](int l, int& m, int& k) {
    const int e = tid + l * 256;
    if (a_kfast) { k = e % BK; m = e / BK; } else { m = e % BM; k = e / BM; }
  };
  auto b_coord = [&](int l, int& k, int& n) {
    const int e = tid + l * 256;
    if (b_nfast) { n = e % BN; k = e / BN; } else { k = e % BK; n = e / BK; }
  };
  auto load = [&](int64_t k0) {
#pragma unroll
    for (int l = 0; l < LA; ++l) {
      int m, k;
      a_coord(l, m, k);
      const int64_t gm = m0 + m, gk = k0 + k;
      ra[l] = (gm < p.M && gk < k_end) ? cvt<Acc>(A[gm * p.sa_m + gk * p.sa_k]) : Acc(0);
    }
#pragma unroll
    for (int l = 0; l < LB; ++l) {
      int k, n;
      b_coord(l, k, n);
      const int64_t gk = k0 + k, gn = n0 + n;
      rb[l] = (gk < k_end && gn < p.N) ? cvt<Acc>(B[gk * p.sb_k + gn * p.sb_n]) : Acc(0);
    }
  };
  Acc acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = Acc(0);

  load(k_begin);
  for (int64_t k0 = k_begin; k0 < k_end; k0 += BK) {
#pragma unroll
    for (int l = 0; l < LA; ++l) { int m, k; a_coord(l, m, k); As[k][m] = ra[l]; }
#pragma unroll
    for (int l = 0; l < LB; ++l) { int k, n; b_coord(l, k, n); Bs[k][n] = rb[l]; }
    __syncthreads();
    if (k0 + BK < k_end) load(k0 + BK);  // next tile's loads overlap this tile's math
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      Acc av[TM], bv[TN];
      if constexpr (kVec) {
#pragma unroll
        for (int g = 0; g < TM / 4; ++g) {
          const float4 v = *reinterpret_cast<const float4*>(&As[k][g * TY * 4 + ty * 4]);
          av[4 * g] = v.x, av[4 * g + 1] = v.y, av[4 * g + 2] = v.z, av[4 * g + 3] = v.w;
        }
#pragma unroll
        for (int g = 0; g < TN / 4; ++g) {
          const float4 v = *reinterpret_cast<const float4*>(&Bs[k][g * TX * 4 + tx * 4]);
          bv[4 * g] = v.x, bv[4 * g + 1] = v.y, bv[4 * g + 2] = v.z, bv[4 * g + 3] = v.w;
        }
      } else {
#pragma unroll
        for (int i = 0; i < TM; ++i) av[i] = As[k][row(i)];
#pragma unroll
        for (int j = 0; j < TN; ++j) bv[j] = Bs[k][col(j)];
      }
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = fma(av[i], bv[j], acc[i][j]);
    }
    __syncthreads();
  }
  const Acc alpha = Acc(p.alpha), beta = Acc(p.beta);
  Acc* ws = p.kper ? static_cast<Acc*>(p.ws) + int64_t(blockIdx.z) * p.M * p.N : nullptr;
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int64_t m = m0 + row(i);
    if (m >= p.M) continue;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int64_t n = n0 + col(j);
      if (n >= p.N) continue;
      if (ws) {
        ws[m * p.N + n] = alpha * acc[i][j];
        continue;
      }
      T* c = C + m * p.sc_m + n * p.sc_n;
      Acc v = alpha * acc[i][j];
      if (p.beta != 0.0) v += beta * cvt<Acc>(*c);
      *c = cvt<T>(v);
    }
  }
}

// C = the sum of the split-K partials ws[0 .. splits) in order (+ beta C): deterministic.
template <class T, class Acc>
__global__ void gemm_splitk_reduce_kernel(GemmArgs p, int splits) {
  const int64_t mn = p.M * p.N;
  const Acc* ws = static_cast<const Acc*>(p.ws);
  T* C = static_cast<T*>(p.C);
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < mn; e += int64_t(gridDim.x) * blockDim.x) {
    Acc v = ws[e];
    for (int z = 1; z < splits; ++z) v += ws[int64_t(z) * mn + e];
    T* c = C + (e / p.N) * p.sc_m + (e % p.N) * p.sc_n;
    if (p.beta != 0.0) v += Acc(p.beta) * cvt<Acc>(*c);
    *c = cvt<T>(v);
  }
}

}  // namespace fastdl::cuda
