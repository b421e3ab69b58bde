// Register-tiled GEMM micro-kernels for f32/f64 (and bf16 widened to f32 while packing),
// compiled once per ISA (ref / avx2 / avx512). The tile is MR rows of A (broadcast) by
// NR = NV vectors of B, so a row-major C is written with full-width vector stores.
//   avx512: f32 14x32, f64 14x16  (28 accumulators + 2 B vectors + 1 broadcast = 31 zmm)
//   avx2:   f32  6x16, f64  6x8   (12 accumulators + 2 B vectors + 1 broadcast = 15 ymm)
//   ref:    f32/f64 4x8 plain scalar loops (portable fallback and aarch64 path)
#include <array>
#include <type_traits>
#include <utility>

#include "cpu/gemm_kernel.h"

#if defined(FASTDL_ISA_avx512) || defined(FASTDL_ISA_avx2)
#include <immintrin.h>
#endif

namespace fastdl::cpu::FASTDL_ISA_NS {
namespace {
using detail::GemmKernel;
using detail::kDotRows;

#if defined(FASTDL_ISA_avx512)
struct VF {
  using T = float; using R = __m512; static constexpr int W = 16;
  static R zero() { return _mm512_setzero_ps(); }
  static R load(const T* p) { return _mm512_loadu_ps(p); }
  static void store(T* p, R v) { _mm512_storeu_ps(p, v); }
  static R set1(T v) { return _mm512_set1_ps(v); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
  static R add(R a, R b) { return _mm512_add_ps(a, b); }
};
struct VD {
  using T = double; using R = __m512d; static constexpr int W = 8;
  static R zero() { return _mm512_setzero_pd(); }
  static R load(const T* p) { return _mm512_loadu_pd(p); }
  static void store(T* p, R v) { _mm512_storeu_pd(p, v); }
  static R set1(T v) { return _mm512_set1_pd(v); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_pd(a, b, c); }
  static R mul(R a, R b) { return _mm512_mul_pd(a, b); }
  static R add(R a, R b) { return _mm512_add_pd(a, b); }
};
constexpr int kMR = 14, kNV = 2;
#elif defined(FASTDL_ISA_avx2)
struct VF {
  using T = float; using R = __m256; static constexpr int W = 8;
  static R zero() { return _mm256_setzero_ps(); }
  static R load(const T* p) { return _mm256_loadu_ps(p); }
  static void store(T* p, R v) { _mm256_storeu_ps(p, v); }
  static R set1(T v) { return _mm256_set1_ps(v); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
  static R mul(R a, R b) { return _mm256_mul_ps(a, b); }
  static R add(R a, R b) { return _mm256_add_ps(a, b); }
};
struct VD {
  using T = double; using R = __m256d; static constexpr int W = 4;
  static R zero() { return _mm256_setzero_pd(); }
  static R load(const T* p) { return _mm256_loadu_pd(p); }
  static void store(T* p, R v) { _mm256_storeu_pd(p, v); }
  static R set1(T v) { return _mm256_set1_pd(v); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_pd(a, b, c); }
  static R mul(R a, R b) { return _mm256_mul_pd(a, b); }
  static R add(R a, R b) { return _mm256_add_pd(a, b); }
};
constexpr int kMR = 6, kNV = 2;
#endif

#if defined(FASTDL_ISA_avx512) || defined(FASTDL_ISA_avx2)
// A tile of fewer than 8 accumulators (the last one to three rows of an M that is not a multiple
// of MR: 128 = 21 x 6 + 2) cannot hide the FMA latency (4 cycles on 2 pipes: 8 chains in flight),
// so it sums even and odd k into two sets and adds them at the end. (Zen 3, 2 threads: the 2-row
// tile of 128 x 4096 x 4096 ran at ~43% of peak and took 3% of the product's time for 1.6% of
// its work.)
template <int MRUN, int NV> constexpr bool kDualChains = MRUN * NV < 8;

// acc (zeroed here) = the sum over p < k of step(sums, p), which adds k step p into sums: in two
// sets for even and odd p where kDualChains, then added.
template <class R, int MRUN, int NV, class Step>
inline void sum_steps(R (&acc)[MRUN][NV], int64_t k, R zero, Step step) {
#pragma GCC unroll 32
  for (int i = 0; i < MRUN; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[i][j] = zero;
  int64_t p = 0;
  if constexpr (kDualChains<MRUN, NV>) {
    R acc2[MRUN][NV];
#pragma GCC unroll 32
    for (int i = 0; i < MRUN; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc2[i][j] = zero;
#pragma GCC unroll 2
    for (; p + 2 <= k; p += 2) {
      step(acc, p);
      step(acc2, p + 1);
    }
#pragma GCC unroll 32
    for (int i = 0; i < MRUN; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[i][j] = acc[i][j] + acc2[i][j];
  }
#pragma GCC unroll 4
  for (; p < k; ++p) step(acc, p);
}

// One MRUN x (NV*W) tile over k steps of packed A (MR per step, MRUN <= MR used) and packed
// B (NV*W per step). MRUN < MR serves the last, partial row panel at proportional cost.
template <class V, int MR, int NV, class CT, int MRUN>
void ukernel(int64_t k, const typename V::T* a, const typename V::T* b, CT* c, int64_t rs, int64_t cs,
             int mr, int nr, typename V::T alpha, typename V::T beta) {
  using T = typename V::T;
  using R = typename V::R;
  constexpr int NR = NV * V::W;
  R acc[MRUN][NV];
  if (cs == 1)  // C rows are needed after the k loop: fetch every line of the tile now
    for (int i = 0; i < mr; ++i)
      for (int j = 0; j < int(NR * sizeof(CT)); j += 64)
        _mm_prefetch(reinterpret_cast<const char*>(c + i * rs) + j, _MM_HINT_T0);
  sum_steps(acc, k, V::zero(), [&](R(&s)[MRUN][NV], int64_t p) {
    const T* ap = a + p * MR;
    R bv[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) bv[j] = V::load(b + p * NR + j * V::W);
    _mm_prefetch(reinterpret_cast<const char*>(ap + 8 * MR), _MM_HINT_T0);
#pragma GCC unroll 32
    for (int i = 0; i < MRUN; ++i) {
      R av = V::set1(ap[i]);
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) s[i][j] = V::fma(av, bv[j], s[i][j]);
    }
  });
  if constexpr (std::is_same_v<CT, T>) {
    if (cs == 1 && nr == NR) {  // full-width rows: vector write-back
      const R va = V::set1(alpha), vb = V::set1(beta);
#pragma GCC unroll 32
      for (int i = 0; i < MRUN; ++i) {
        if (i >= mr) break;
        T* ci = c + i * rs;
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) {
          R r = V::mul(acc[i][j], va);
          if (beta == T(1)) r = V::add(r, V::load(ci + j * V::W));
          else if (beta != T(0)) r = V::fma(V::load(ci + j * V::W), vb, r);
          V::store(ci + j * V::W, r);
        }
      }
      return;
    }
  }
  alignas(64) T tile[MRUN * NR];
#pragma GCC unroll 32
  for (int i = 0; i < MRUN; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) V::store(tile + i * NR + j * V::W, acc[i][j]);
  gk::write_tile<T, CT, NR>(tile, c, rs, cs, mr, nr, alpha, beta);
}

template <class V, int MR, int NV, class CT, size_t... I>
constexpr auto ukernel_table(std::index_sequence<I...>) {
  return std::array{&ukernel<V, MR, NV, CT, int(I) + 1>...};
}

// Picks the kernel instance that runs exactly the rows present (mr of MR).
template <class V, int MR, int NV, class CT>
struct Ukernel {
  using T = typename V::T;
  static constexpr auto table = ukernel_table<V, MR, NV, CT>(std::make_index_sequence<MR>{});
  void operator()(int64_t k, const T* a, const T* b, CT* c, int64_t rs, int64_t cs, int mr,
                  int nr, T alpha, T beta) const {
    table[mr - 1](k, a, b, c, rs, cs, mr, nr, alpha, beta);
  }
};
// Unpacked tile for small problems: A rows are read in place (one broadcast per row and k),
// B rows are read in place (NV vectors per k), so nothing is copied first.
template <class V, int MR, int NV, int MRUN>
void direct_tile(int64_t k, const typename V::T* a, int64_t lda, const typename V::T* b, int64_t ldb,
                 typename V::T* c, int64_t ldc, typename V::T alpha, typename V::T beta) {
  using T = typename V::T;
  using R = typename V::R;
  R acc[MRUN][NV];
  sum_steps(acc, k, V::zero(), [&](R(&s)[MRUN][NV], int64_t p) {
    R bv[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) bv[j] = V::load(b + p * ldb + j * V::W);
#pragma GCC unroll 32
    for (int i = 0; i < MRUN; ++i) {
      R av = V::set1(a[i * lda + p]);
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) s[i][j] = V::fma(av, bv[j], s[i][j]);
    }
  });
  const R va = V::set1(alpha), vb = V::set1(beta);
#pragma GCC unroll 32
  for (int i = 0; i < MRUN; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) {
      T* ci = c + i * ldc + j * V::W;
      R r = V::mul(acc[i][j], va);
      if (beta != T(0)) r = V::fma(V::load(ci), vb, r);
      V::store(ci, r);
    }
}

// Matrix-vector products and few-row products against B's contiguous columns (see
// GemmKernel::gemv_dot / gemv_axpy). Each column of B is read once for all MROWS rows of A (from
// L1 / L2); two vector accumulators a row (four for one row) hide the FMA latency; lanes and
// accumulators are summed in a fixed order.
template <class V, int MROWS>
void dot_rows(int64_t j0, int64_t j1, int64_t K, const typename V::T* a, int64_t lda, const typename V::T* B,
              int64_t ldb, typename V::T* c, int64_t ldc, int64_t sc, double alpha, double beta) {
  using T = typename V::T;
  using R = typename V::R;
  constexpr int W = V::W, NA = MROWS == 1 ? 4 : 2;  // accumulators a row
  for (int64_t j = j0; j < j1; ++j) {
    const T* b = B + j * ldb;
    R s[MROWS][NA];
#pragma GCC unroll 8
    for (int i = 0; i < MROWS; ++i)
#pragma GCC unroll 4
      for (int u = 0; u < NA; ++u) s[i][u] = V::zero();
    int64_t k = 0;
    for (; k + NA * W <= K; k += NA * W) {
      R bv[NA];
#pragma GCC unroll 4
      for (int u = 0; u < NA; ++u) bv[u] = V::load(b + k + u * W);
#pragma GCC unroll 8
      for (int i = 0; i < MROWS; ++i)
#pragma GCC unroll 4
        for (int u = 0; u < NA; ++u) s[i][u] = V::fma(V::load(a + i * lda + k + u * W), bv[u], s[i][u]);
    }
    for (; k + W <= K; k += W) {
      const R bv = V::load(b + k);
#pragma GCC unroll 8
      for (int i = 0; i < MROWS; ++i) s[i][0] = V::fma(V::load(a + i * lda + k), bv, s[i][0]);
    }
#pragma GCC unroll 8
    for (int i = 0; i < MROWS; ++i) {
      R r = s[i][0];
#pragma GCC unroll 4
      for (int u = 1; u < NA; ++u) r = V::add(r, s[i][u]);
      alignas(64) T lanes[W];
      V::store(lanes, r);
      T sum = 0;
      for (int q = 0; q < W; ++q) sum += lanes[q];
      for (int64_t kk = k; kk < K; ++kk) sum += a[i * lda + kk] * b[kk];
      T* cj = c + i * ldc + j * sc;
      *cj = T(alpha) * sum + (beta == 0 ? T(0) : T(beta) * *cj);
    }
  }
}

template <class V, size_t... I>
constexpr auto dot_rows_table(std::index_sequence<I...>) {
  return std::array{&dot_rows<V, int(I) + 1>...};
}

template <class V>
void gemv_dot(int64_t j0, int64_t j1, int64_t K, int m, const void* a, int64_t lda, const void* B, int64_t ldb,
              void* c, int64_t ldc, int64_t sc, double alpha, double beta) {
  using T = typename V::T;
  static constexpr auto table = dot_rows_table<V>(std::make_index_sequence<kDotRows>{});
  for (int i0 = 0; i0 < m; i0 += kDotRows) {
    const int rows = std::min(kDotRows, m - i0);
    table[rows - 1](j0, j1, K, static_cast<const T*>(a) + i0 * lda, lda, static_cast<const T*>(B), ldb,
                    static_cast<T*>(c) + i0 * ldc, ldc, sc, alpha, beta);
  }
}

// Rows of B are streamed in order (four at a time) into L1-resident strips of sums, one strip per
// row of A: B is read sequentially, which the prefetchers follow, instead of down column strips
// ldb apart, and once for all MROWS rows.
template <class V, int MROWS>
void axpy_rows(int64_t j0, int64_t j1, int64_t K, const typename V::T* a, int64_t lda, int64_t sa,
               const typename V::T* B, int64_t ldb, typename V::T* c, int64_t ldc, int64_t sc, double alpha,
               double beta) {
  using T = typename V::T;
  using R = typename V::R;
  constexpr int W = V::W;
  constexpr int64_t kStrip = MROWS == 1 ? 1024 : 512;  // columns per strip: 4 KiB of float sums a row (2 KiB)
  alignas(64) T acc[MROWS][kStrip];
  for (int64_t jc = j0; jc < j1; jc += kStrip) {
    const int64_t m = std::min(kStrip, j1 - jc), mv = m / W * W;
    for (int i = 0; i < MROWS; ++i) std::fill(acc[i], acc[i] + m, T(0));
    int64_t k = 0;
    for (; k + 4 <= K; k += 4) {  // four rows a pass: one load and store of the sums per four FMAs
      const T* b0 = B + k * ldb + jc;
      const T* b1 = b0 + ldb;
      const T* b2 = b1 + ldb;
      const T* b3 = b2 + ldb;
      for (int64_t q = 0; q < mv; q += W) {
        const R w0 = V::load(b0 + q), w1 = V::load(b1 + q), w2 = V::load(b2 + q), w3 = V::load(b3 + q);
#pragma GCC unroll 8
        for (int i = 0; i < MROWS; ++i) {
          const T* x = a + i * lda + k * sa;
          V::store(acc[i] + q,
                   V::fma(V::set1(x[3 * sa]), w3,
                          V::fma(V::set1(x[2 * sa]), w2,
                                 V::fma(V::set1(x[sa]), w1, V::fma(V::set1(x[0]), w0, V::load(acc[i] + q))))));
        }
      }
      for (int i = 0; i < MROWS; ++i) {
        const T* x = a + i * lda + k * sa;
        for (int64_t q = mv; q < m; ++q) acc[i][q] += x[0] * b0[q] + x[sa] * b1[q] + x[2 * sa] * b2[q] + x[3 * sa] * b3[q];
      }
    }
    for (; k < K; ++k) {
      const T* b0 = B + k * ldb + jc;
      for (int i = 0; i < MROWS; ++i) {
        const T x0 = a[i * lda + k * sa];
        for (int64_t q = 0; q < m; ++q) acc[i][q] += x0 * b0[q];
      }
    }
    for (int i = 0; i < MROWS; ++i)
      for (int64_t q = 0; q < m; ++q) {
        T* cj = c + i * ldc + (jc + q) * sc;
        *cj = T(alpha) * acc[i][q] + (beta == 0 ? T(0) : T(beta) * *cj);
      }
  }
}

template <class V, size_t... I>
constexpr auto axpy_rows_table(std::index_sequence<I...>) {
  return std::array{&axpy_rows<V, int(I) + 1>...};
}

template <class V>
void gemv_axpy(int64_t j0, int64_t j1, int64_t K, int m, const void* a, int64_t lda, int64_t sa, const void* B,
               int64_t ldb, void* c, int64_t ldc, int64_t sc, double alpha, double beta) {
  using T = typename V::T;
  static constexpr auto table = axpy_rows_table<V>(std::make_index_sequence<kDotRows>{});
  for (int i0 = 0; i0 < m; i0 += kDotRows) {
    const int rows = std::min(kDotRows, m - i0);
    table[rows - 1](j0, j1, K, static_cast<const T*>(a) + i0 * lda, lda, sa, static_cast<const T*>(B), ldb,
                    static_cast<T*>(c) + i0 * ldc, ldc, sc, alpha, beta);
  }
}

template <class V, int MR, int NV, size_t... I>
constexpr auto direct_table(std::index_sequence<I...>) {
  return std::array{&direct_tile<V, MR, NV, int(I) + 1>...};
}

template <class V, int MR, int NV>
void direct_gemm(int64_t M, int64_t N, int64_t K, const void* A, int64_t lda, const void* B, int64_t ldb, int64_t bps,
                 void* C, int64_t ldc, double alpha, double beta) {
  using T = typename V::T;
  static constexpr auto table = direct_table<V, MR, NV>(std::make_index_sequence<MR>{});
  constexpr int NR = NV * V::W;
  const T* a = static_cast<const T*>(A);
  const T* b = static_cast<const T*>(B);
  T* c = static_cast<T*>(C);
  for (int64_t j0 = 0; j0 < N; j0 += NR)  // one B column panel stays in L1 across the row tiles
    for (int64_t i0 = 0; i0 < M; i0 += MR) {
      int mr = int(std::min<int64_t>(MR, M - i0));
      table[mr - 1](K, a + i0 * lda, lda, b + (j0 / NR) * bps, ldb, c + i0 * ldc + j0, ldc, T(alpha), T(beta));
    }
}
#else
constexpr int kMR = 4, kNV = 1;
// Portable scalar tile (the ref ISA): MR x NR accumulators in plain arrays.
template <class T, int MR, int NR, class CT>
struct UkernelRef {
  void operator()(int64_t k, const T* a, const T* b, CT* c, int64_t rs, int64_t cs, int mr,
                  int nr, T alpha, T beta) const {
    T acc[MR * NR] = {};
    for (int64_t p = 0; p < k; ++p, a += MR, b += NR)
      for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NR; ++j) acc[i * NR + j] += a[i] * b[j];
    gk::write_tile<T, CT, NR>(acc, c, rs, cs, mr, nr, alpha, beta);
  }
};
#endif

// Fills k with the tile kernel for T (packed type) writing CT (C's type), reading S.
template <class S, class T, class CT>
void make_kernel(GemmKernel* k, const char* name) {
#if defined(FASTDL_ISA_avx512) || defined(FASTDL_ISA_avx2)
  using V = std::conditional_t<std::is_same_v<T, float>, VF, VD>;
  constexpr int MR = kMR, NR = kNV * V::W;
  using UK = Ukernel<V, MR, kNV, CT>;
#else
  constexpr int MR = kMR, NR = 8;
  using UK = UkernelRef<T, MR, NR, CT>;
#endif
  k->mr = MR; k->nr = NR; k->kpack = 1; k->elem = sizeof(T);
  k->full_k = !std::is_same_v<CT, T>;
  k->pack_a = &gk::pack_a<S, T, MR>;
  k->pack_b = &gk::pack_b<S, T, NR>;
  k->macro = [](int64_t mc, int64_t nc, int64_t kc, const void* Ap, const void* Bp, void* C,
                int64_t rs, int64_t cs, double alpha, double beta, int64_t jr0, int64_t jr1) {
    gk::macro<MR, NR, 1, T, CT, T>(mc, nc, kc, Ap, Bp, C, rs, cs, alpha, beta, jr0, jr1, UK{});
  };
#if defined(FASTDL_ISA_avx512) || defined(FASTDL_ISA_avx2)
  if constexpr (std::is_same_v<S, T> && std::is_same_v<CT, T>) {
    k->direct = &direct_gemm<V, MR, kNV>;
    if constexpr (kNV % 2 == 0) k->direct_half = &direct_gemm<V, MR, kNV / 2>;
    k->gemv_dot = &gemv_dot<V>;
    k->gemv_axpy = &gemv_axpy<V>;
  }
#endif
  k->name = name;
}

#define FASTDL_STR2(x) #x
#define FASTDL_STR(x) FASTDL_STR2(x)

}  // namespace

// f32, f64, and bf16 widened to f32 (the path for CPUs without AVX512-BF16).
bool gemm_get_kernel(DType dt, GemmKernel* k) {
  switch (dt) {
    case DType::f32: make_kernel<float, float, float>(k, FASTDL_STR(FASTDL_ISA_NS) "/f32"); return true;
    case DType::f64: make_kernel<double, double, double>(k, FASTDL_STR(FASTDL_ISA_NS) "/f64"); return true;
    case DType::bf16:
      make_kernel<uint16_t, float, uint16_t>(k, FASTDL_STR(FASTDL_ISA_NS) "/bf16-widen-f32");
      return true;
    default: return false;
  }
}

}  // namespace fastdl::cpu::FASTDL_ISA_NS
