// The recurrent cells' gate arithmetic (kernels/rnn.h) with float32 units in the W lanes of an
// explicit vector (sigmoid and tanh through the vector exp of simd/vec.h); the last H % W units
// and float64 run the same formulas one unit at a time. Compiled per ISA (avx2, avx512); the
// ref ISA runs the scalar reference in rnn.cpp.
#if defined(FASTDL_ISA_avx2) || defined(FASTDL_ISA_avx512)
#include <cmath>

#include <immintrin.h>

#include "cpu/rnn.h"
#include "cpu/simd/vec.h"
#include "cpu/simd/vmath.h"

namespace fastdl::cpu::FASTDL_ISA_NS {
namespace {

inline vf select(vi mask, vf a, vf b) { return (vf)(((vi)a & mask) | ((vi)b & ~mask)); }

// tanh: an odd series below 0.3 (no cancellation in 1 - e), (1 - e) / (1 + e) with e = exp(-2|x|)
// above, as vm::tanh_f does one lane at a time.
inline vf tanh_v(vf x) {
  const vf a = (vf)((vi)x & 0x7fffffff);
  const vf z = x * x;
  vf s = vf{} - 0.0088632355299021966f;
  s = s * z + 0.021869488536155203f;
  s = s * z - 0.053968253968253968f;
  s = s * z + 0.13333333333333333f;
  s = s * z - 0.33333333333333333f;
  const vf small = x + x * z * s;
  const vf e = exp_v(-2.0f * a);
  const vf big = (vf)((vi)((1.0f - e) / (1.0f + e)) | ((vi)x & (int32_t)0x80000000));
  return select(a < 0.3f, small, big);
}

struct VecLanes {
  using V = vf;
  static V ld(const float* p) { return ldv(p); }
  static void st(float* p, V v) { stv(p, v); }
  static V ld1() { return vf{} + 1.0f; }
  static V sig(V x) { return 1.0f / (1.0f + exp_v(-x)); }
  static V tanh(V x) { return tanh_v(x); }
  static V pos(V h, V x) { return (vf)((vi)x & (h > 0.0f)); }
};

template <class T> struct ScalarLanes {
  using V = T;
  static V ld(const T* p) { return *p; }
  static void st(T* p, V v) { *p = v; }
  static V ld1() { return T(1); }
  static V sig(V x) {
    if constexpr (sizeof(T) == 4) return vm::sigmoid_f(x); else return T(1) / (T(1) + std::exp(-x));
  }
  static V tanh(V x) { if constexpr (sizeof(T) == 4) return vm::tanh_f(x); else return std::tanh(x); }
  static V pos(V h, V x) { return h > T(0) ? x : T(0); }
};

template <bool Fwd>
void rows_f32(const RnnCellArgs& a, int64_t r0, int64_t r1) {
  const int64_t full = a.H / kWf * kWf;
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t j = 0; j < full; j += kWf) {
      if constexpr (Fwd) rnn_cell::fwd_at<VecLanes, float>(a, r, j);
      else rnn_cell::bwd_at<VecLanes, float>(a, r, j);
    }
    for (int64_t j = full; j < a.H; ++j) {
      if constexpr (Fwd) rnn_cell::fwd_at<ScalarLanes<float>, float>(a, r, j);
      else rnn_cell::bwd_at<ScalarLanes<float>, float>(a, r, j);
    }
  }
}

template <bool Fwd>
void rows_f64(const RnnCellArgs& a, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t j = 0; j < a.H; ++j) {
      if constexpr (Fwd) rnn_cell::fwd_at<ScalarLanes<double>, double>(a, r, j);
      else rnn_cell::bwd_at<ScalarLanes<double>, double>(a, r, j);
    }
}

void cell_fwd(DType dt, const RnnCellArgs& a, int64_t r0, int64_t r1) {
  if (dt == DType::f64) rows_f64<true>(a, r0, r1); else rows_f32<true>(a, r0, r1);
}
void cell_bwd(DType dt, const RnnCellArgs& a, int64_t r0, int64_t r1) {
  if (dt == DType::f64) rows_f64<false>(a, r0, r1); else rows_f32<false>(a, r0, r1);
}

}  // namespace

const RnnKernels& rnn_table() {
  static const RnnKernels k{cell_fwd, cell_bwd};
  return k;
}

}  // namespace fastdl::cpu::FASTDL_ISA_NS
#endif
