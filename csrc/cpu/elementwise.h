// CPU elementwise kernels (binary, unary, cast-copy, fill) over one strided row: n elements,
// strides in elements. The op layer flattens N-d loops into rows (cpu/loops.h). Each ISA
// build of elementwise_vec.cpp provides these; elementwise.cpp picks one at run time.
#pragma once
#include <cstdint>

#include "core/cpu_info.h"
#include "core/dtype.h"
#include "kernels/kinds.h"

namespace fastdl::cpu {

struct ElementwiseKernels {
  // out = op(a, b); a, b in dtype dt; out dt or bool (comparisons/logical).
  void (*binary)(BinaryOp op, DType dt, char* out, const char* a, const char* b, int64_t n,
                 int64_t so, int64_t sa, int64_t sb);
  void (*unary)(UnaryOp op, DType dt, char* out, const char* a, int64_t n, int64_t so, int64_t sa);
  // out (dtype dto) = cast(a (dtype dta)).
  void (*cast)(DType dto, DType dta, char* out, const char* a, int64_t n, int64_t so, int64_t sa);
  // out = cond ? a : b (cond bool, a/b/out dtype dt)
  void (*where)(DType dt, char* out, const char* c, const char* a, const char* b, int64_t n, int64_t so,
                int64_t sc, int64_t sa, int64_t sb);
  // out = clamp(a, lo, hi) with scalar bounds (NaN propagates)
  void (*clamp)(DType dt, char* out, const char* a, int64_t n, int64_t so, int64_t sa, double lo, double hi);
  // activations with parameters p (ActOp), float32 / float64: out = f(a), or for the *_bwd ops
  // out = g f'(a) (g read at stride sg; unused, may be null, in forward)
  void (*act)(ActOp op, DType dt, char* out, const char* a, const char* g, int64_t n, int64_t so, int64_t sa,
              int64_t sg, const double* p);
  // binary over `rows` rows of n elements, row k at k * (ro, ra, rb) elements from the first
  // (broadcast patterns with short rows: a bias added to every row), one dispatch per block.
  void (*binary_rows)(BinaryOp op, DType dt, char* out, const char* a, const char* b, int64_t n, int64_t so,
                      int64_t sa, int64_t sb, int64_t rows, int64_t ro, int64_t ra, int64_t rb);
  // A transposing copy of es-byte elements: dst[i dr + j] = src[i + j sc] for i < rows, j < cols
  // (the destination runs along j, the source along i); 8x8 float / 4x4 double register
  // transposes on the AVX builds.
  void (*transpose)(size_t es, char* dst, const char* src, int64_t rows, int64_t cols, int64_t dr, int64_t sc);
};

const ElementwiseKernels& elementwise_kernels();                // for the ISA in force
const ElementwiseKernels& elementwise_kernels_for(Isa isa);

#define FASTDL_DECLARE_ISA_TABLE(fn, Type) \
  namespace ref { const Type& fn(); }      \
  namespace avx2 { const Type& fn(); }     \
  namespace avx512 { const Type& fn(); }

FASTDL_DECLARE_ISA_TABLE(elementwise_table, ElementwiseKernels)

template <class T> const T& pick_isa(Isa isa, const T& r, const T& a2, const T& a5) {
#ifdef FASTDL_NO_X86_ISA
  return r;
#else
  return isa == Isa::avx512 ? a5 : isa == Isa::avx2 ? a2 : r;
#endif
}

}  // namespace fastdl::cpu
