// Random fills (ops/create.cpp): counter-based, so element i is a function of (key, i) alone and
// the fills run vectorised on every thread with the same result for any thread count. Words come
// from Philox-4x32-10 in the slot layout of kernels/random.h. Outputs are n contiguous elements;
// float32 / bfloat16 element i takes word slot i, float64 element i takes two words (53 bits).
// Each ISA build of random_vec.cpp fills the table.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace fastdl::cpu {

struct RandomKernels {
  // lo + (hi - lo) u, u uniform in [0, 1) from 24 bits (float32, bfloat16) or 53 (float64), then
  // at most `cap` (the largest value of the output dtype below hi, so hi is never reached).
  // dt: f32, f64 or bf16 (rounded to nearest from the float32 value).
  void (*uniform)(DType dt, void* out, int64_t n, uint64_t key, double lo, double hi, double cap);
  // mean + std z, z standard normal by Box-Muller: pairs of elements share one (u1, u2) draw.
  void (*normal)(DType dt, void* out, int64_t n, uint64_t key, double mean, double std);
  // out[i] = u_i < p[i] ? 1 : 0, p and out of dt (f32 or f64, 24- or 53-bit u).
  void (*bernoulli)(DType dt, const void* p, void* out, int64_t n, uint64_t key);
  // out[i] = floor(b_i span / 2^64) for the 64-bit word b_i (two words per element, the float64
  // layout); span 0 gives b_i itself.
  void (*bits64)(uint64_t* out, int64_t n, uint64_t key, uint64_t span);
};

namespace ref { const RandomKernels& random_table(); }
namespace avx2 { const RandomKernels& random_table(); }
namespace avx512 { const RandomKernels& random_table(); }
const RandomKernels& random_kernels();

}  // namespace fastdl::cpu
