// Special functions of one float64 argument (lgamma, digamma, erfc, erfinv, Hurwitz zeta), as
// scalar code: the values behind fastdl.special's autograd functions (python/fastdl/_special.py
// composes the derivatives from them), with PyTorch's values at poles and infinities.
#pragma once
#include <cstdint>

namespace fastdl::cpu {

enum class SpecialFn : uint8_t { lgamma, digamma, erfc, erfinv, zeta };

// y[i] = f(x[i]) for a contiguous float64 run; `s` is zeta's order (an integer >= 2, x >= 1/2).
void special_rows(SpecialFn f, double s, const double* x, double* y, int64_t n);

}  // namespace fastdl::cpu
