// CPU reductions over a contiguous (outer, n, inner) block into (outer, inner), and running sums.
// sum/prod accumulate float32 in float64; max/min propagate NaN; arg* return the first
// index (int64). Each ISA build of reduce_vec.cpp provides the table.
#pragma once
#include <cstdint>

#include "cpu/elementwise.h"

namespace fastdl::cpu {

struct ReduceKernels {
  // out: dtype dt (sum/prod/max/min) or int64 (argmax/argmin); in: dtype dt.
  void (*reduce)(ReduceOp op, DType dt, char* out, const char* in, int64_t outer, int64_t n, int64_t inner);
  // Inclusive running sums along n (from the end when rev): dt f32 / f64 (accumulated in f64) or
  // i64; out has in's dtype and shape.
  void (*cumsum)(DType dt, char* out, const char* in, int64_t outer, int64_t n, int64_t inner, bool rev);
};
FASTDL_DECLARE_ISA_TABLE(reduce_table, ReduceKernels)
const ReduceKernels& reduce_kernels();

}  // namespace fastdl::cpu
