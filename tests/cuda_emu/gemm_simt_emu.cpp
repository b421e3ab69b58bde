// The SIMT GEMM kernel of csrc/cuda/gemm_simt.cuh run on the host, to check its index arithmetic
// (thread mapping, shared-memory tiles, split K and its reduction, padding left untouched)
// where no GPU is, on the emulated threads of emu.h.
// Built and run by tests/test_cuda_emulated.py; a GPU runs the same cases in cuda_check.
#include <cstdio>
#include <random>

#include "emu.h"
#include "cuda/gemm_simt.cuh"
using namespace fastdl::cuda;

int fails = 0;
template <class T, int BM, int BN, int BK, int TM, int TN>
void run(int64_t M, int64_t N, int64_t K, int64_t batch, bool at, bool bt, bool ct, int64_t kper, double alpha, double beta) {
  std::mt19937 g(M * 131 + N * 7 + K);
  std::uniform_real_distribution<double> u(-1, 1);
  const int64_t lda = at ? M + 3 : K + 2, ldb = bt ? K + 1 : N + 5, ldc = ct ? M + 2 : N + 3;
  const int64_t sa_b = (at ? K : M) * lda, sb_b = (bt ? N : K) * ldb, sc_b = (ct ? N : M) * ldc;
  std::vector<T> A(size_t(sa_b * batch)), B(size_t(sb_b * batch)), C(size_t(sc_b * batch)), C0;
  for (auto& v : A) v = T(u(g));
  for (auto& v : B) v = T(u(g));
  for (auto& v : C) v = T(u(g));
  C0 = C;
  GemmArgs a{M, N, K, A.data(), sa_b, at ? 1 : lda, at ? lda : 1, B.data(), sb_b, bt ? 1 : ldb, bt ? ldb : 1,
             C.data(), sc_b, ct ? 1 : ldc, ct ? ldc : 1, alpha, beta, 0};
  const int64_t tiles = (M + BM - 1) / BM * ((N + BN - 1) / BN);
  std::vector<T> ws;
  if (kper) {
    const int64_t n = (K + kper - 1) / kper;
    ws.assign(size_t(n * M * N), T(NAN));
    a.kper = kper; a.ws = ws.data();
    emu_launch(dim3{unsigned(tiles), 1, unsigned(n)}, 256, [&] { gemm_simt_kernel<T, T, BM, BN, BK, TM, TN>(a); });
    emu_launch(dim3{3, 1, 1}, 256, [&] { gemm_splitk_reduce_kernel<T, T>(a, int(n)); });
  } else {
    emu_launch(dim3{unsigned(tiles), unsigned(batch), 1}, 256, [&] { gemm_simt_kernel<T, T, BM, BN, BK, TM, TN>(a); });
  }
  double worst = 0;
  int bad_pad = 0;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < (ct ? N : M); ++i)
      for (int64_t j = 0; j < ldc; ++j) {
        const int64_t m = ct ? j : i, n = ct ? i : j;
        const size_t ci = size_t(b * sc_b + i * ldc + j);
        if (m >= M || n >= N) { bad_pad += C[ci] != C0[ci]; continue; }
        double acc = 0;
        for (int64_t k = 0; k < K; ++k)
          acc += double(A[size_t(b * sa_b + (at ? k * lda + m : m * lda + k))]) * double(B[size_t(b * sb_b + (bt ? n * ldb + k : k * ldb + n))]);
        const double want = alpha * acc + (beta != 0 ? beta * double(C0[ci]) : 0);
        worst = std::max(worst, std::fabs(want - double(C[ci])) / (1 + std::fabs(want)));
      }
  const bool ok = worst < (sizeof(T) == 4 ? 1e-4 : 1e-10) && !bad_pad && std::isfinite(worst);
  fails += !ok;
  std::printf("%s %s M=%ld N=%ld K=%ld batch=%ld at=%d bt=%d ct=%d kper=%ld err=%.2g pad=%d\n", ok ? "PASS" : "FAIL",
              sizeof(T) == 4 ? "f32" : "f64", long(M), long(N), long(K), long(batch), at, bt, ct, long(kper), worst, bad_pad);
}

int main() {
  run<float, 128, 128, 8, 8, 8>(130, 201, 77, 1, false, false, false, 0, 1, 0);
  run<float, 128, 128, 8, 8, 8>(130, 201, 77, 2, true, true, false, 0, 0.5, 0.25);
  run<float, 128, 128, 8, 8, 8>(70, 90, 40, 1, false, true, true, 0, 1, 0.5);
  run<float, 128, 128, 8, 8, 8>(1, 300, 64, 1, true, false, false, 0, 1, 0);
  run<float, 128, 128, 8, 8, 8>(257, 129, 33, 1, false, false, false, 0, 1, 0);
  run<float, 128, 128, 8, 8, 8>(130, 150, 600, 1, false, false, false, 256, 1, 0);
  run<float, 128, 128, 8, 8, 8>(64, 72, 1000, 1, true, false, false, 264, 0.75, 0.5);
  run<float, 128, 128, 8, 8, 8>(129, 136, 530, 1, false, true, true, 512, 1, 0.25);
  // f32 on 64 x 64 tiles (cuda/gemm.cu's small_product): a recurrent step's products, split K
  run<float, 64, 64, 8, 4, 4>(32, 1030, 256, 1, false, true, false, 0, 1, 0);
  run<float, 64, 64, 8, 4, 4>(33, 256, 1024, 1, false, false, false, 128, 1, 0);
  run<float, 64, 64, 8, 4, 4>(70, 67, 45, 3, true, true, true, 0, 0.5, 1);
  run<double, 64, 64, 8, 4, 4>(70, 67, 77, 2, true, false, false, 0, 1, 0.5);
  run<double, 64, 64, 8, 4, 4>(65, 130, 700, 1, false, true, false, 256, 1, 0);
  std::printf("%d failed\n", fails);
  return fails ? 1 : 0;
}
