// CPU GEMM entry point: C[b] = alpha * A[b] @ B[b] + beta * C[b] for every batch b, over the
// strided views of GemmParams (kernels/gemm.h, shared with CUDA). beta == 0 means C is
// write-only (never read, NaN-safe).
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "kernels/gemm.h"

namespace fastdl::cpu {

using fastdl::GemmParams;  // kernels/gemm.h; keeps the spelling cpu::GemmParams valid

// Threads over the library pool; picks the kernel for the ISA in force (cpu_isa()).
void gemm(const GemmParams& p);
// C = alpha A B + bias (bias[j] added to every row of C; C's dtype, contiguous), one matrix,
// p.beta 0: the blocked loops add the bias as each C block is first written (linear).
void gemm_bias(const GemmParams& p, const void* bias);
// Plain triple loop in double accumulation: the oracle for tests and benchmarks.
void gemm_ref(const GemmParams& p);

// ---- internals shared by gemm.cpp (driver) and gemm*_vec.cpp (per-ISA kernels) ----
namespace detail {

constexpr int kDotRows = 8;  // rows of A per pass of GemmKernel::gemv_dot / gemv_axpy over B

// One register-tiled kernel family for one ISA and dtype (BLIS structure). Packing absorbs
// strides and dtype widening; the macro-kernel runs the jr/ir loops over packed panels.
// Packed A: ceil(mc/mr) micro-panels of mr rows x kcp (kcp = kc rounded up to kpack), each
// k unit holding mr*kpack elements; packed B likewise with nr columns. Padding is zero.
struct GemmKernel {
  int mr = 0, nr = 0;
  int kpack = 1;        // 2 for bf16 pair-dot kernels (VDPBF16PS): k padded to even
  int elem = 4;         // bytes per packed element
  bool full_k = false;  // C is low precision: the whole K must be one block (no partial sums in C)
  // A rows [0, mc) x k [0, kc) with strides (sm, sk) -> dst.
  void (*pack_a)(const void* A, int64_t sm, int64_t sk, int64_t mc, int64_t kc, void* dst) = nullptr;
  // B k [0, kc) x columns [0, nc) with strides (sk, sn) -> dst.
  void (*pack_b)(const void* B, int64_t sk, int64_t sn, int64_t kc, int64_t nc, void* dst) = nullptr;
  // C[0:mc, cols of B micro-panels jr0..jr1) = alpha * Ap @ Bp + beta * C (beta 0: C unread).
  void (*macro)(int64_t mc, int64_t nc, int64_t kc, const void* Ap, const void* Bp, void* C,
                int64_t rs, int64_t cs, double alpha, double beta, int64_t jr0, int64_t jr1) = nullptr;
  // Small problems with row-major A and C and N a multiple of nr: the tile kernel reads A where
  // it lies; B column panel q (nr wide) starts at B + q * bps with rows ldb apart (row-major B:
  // bps = nr, ldb = its row stride; packed B: bps = K * nr, ldb = nr). C = alpha A @ B + beta C.
  void (*direct)(int64_t M, int64_t N, int64_t K, const void* A, int64_t lda, const void* B, int64_t ldb,
                 int64_t bps, void* C, int64_t ldc, double alpha, double beta) = nullptr;
  // The same on panels half as wide (nr / 2 columns of B and C per panel, rows of B still ldb
  // apart): a last partial panel of at most nr / 2 columns (a GCN's 16 channels) at half the work.
  void (*direct_half)(int64_t M, int64_t N, int64_t K, const void* A, int64_t lda, const void* B, int64_t ldb,
                      int64_t bps, void* C, int64_t ldc, double alpha, double beta) = nullptr;
  // Matrix-vector and few-row products, bound by reading B once where it lies: C[i][j] (C's rows
  // ldc apart, columns sc apart) for the m rows of A (lda apart), each column range of B read once
  // for up to kDotRows rows.
  //   dot:  C[i][j] = alpha <A[i, :], B[:, j]> + beta C[i][j], A's rows and B's columns contiguous
  //         along k (X @ W^T's W rows)
  //   axpy: C[i, :] = alpha sum_k A[i][k] B[k, :] + beta C[i, :], A's k sa apart, B's rows
  //         contiguous (row-major B)
  // Both cover columns [j0, j1) so threads can split them.
  void (*gemv_dot)(int64_t j0, int64_t j1, int64_t K, int m, const void* a, int64_t lda, const void* B,
                   int64_t ldb, void* c, int64_t ldc, int64_t sc, double alpha, double beta) = nullptr;
  void (*gemv_axpy)(int64_t j0, int64_t j1, int64_t K, int m, const void* a, int64_t lda, int64_t sa, const void* B,
                    int64_t ldb, void* c, int64_t ldc, int64_t sc, double alpha, double beta) = nullptr;
  const char* name = "";
};

}  // namespace detail

// The kernel gemm() uses for dtype under the ISA in force (benchmarks print it).
const detail::GemmKernel& gemm_kernel(DType dtype);
// Chooses the bf16 kernel: "auto" (the best the CPU has: AMX, else the faster of VDPBF16PS pair
// dots and widening to f32, measured once per machine), "widen", "dot", "amx", or "amx-emulated"
// (the AMX layouts on an emulated tile unit, for tests). Returns the kernel's name, or nullptr
// when the CPU lacks the path (the choice is then unchanged). FASTDL_GEMM_BF16 sets the initial
// choice.
const char* gemm_set_bf16_path(const char* path);
// Times bf16 paths a and b (gemm_set_bf16_path's names) against each other as "auto" times the
// dots against widening: thread CPU seconds of each on one 256 x 1024 x 1024 product, best of
// three. False when the CPU lacks either path.
bool gemm_race_bf16(const char* a, const char* b, double* ta, double* tb);
// The blocking (mc, kc, nc) gemm() uses for one M x N x K product of dtype, after the measured
// kc (see gemm.cpp: FASTDL_GEMM_TUNE) and the FASTDL_GEMM_MC/KC/NC overrides.
void gemm_blocking(DType dtype, int64_t M, int64_t N, int64_t K, int64_t* mc, int64_t* kc, int64_t* nc);

}  // namespace fastdl::cpu
