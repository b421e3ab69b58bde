// Scalar semantics of every BinaryOp and UnaryOp on a compute type (float, double, int32,
// int64), shared by the elementwise kernels. Half types arrive here as float; bool as int32.
#pragma once
#include <type_traits>

#include "cuda/common.cuh"

namespace fastdl::cuda {

template <class C> struct FloatOf { using type = float; };
template <> struct FloatOf<double> { using type = double; };
template <> struct FloatOf<int64_t> { using type = double; };

// Python's modulo: the result takes the sign of the divisor.
template <class C> __device__ __forceinline__ C py_remainder(C a, C b) {
  if constexpr (std::is_integral<C>::value) {
    if (b == 0 || b == C(-1)) return 0;  // the op refuses zero divisors; MIN % -1 is undefined
    C r = a % b;
    return (r != 0 && ((r < 0) != (b < 0))) ? C(r + b) : r;
  } else {
    C r = fmod(a, b);
    if (r != C(0) && ((r < C(0)) != (b < C(0)))) r += b;
    return r;
  }
}

// Python's floor division (for floats the CPython algorithm: exact quotient of a - fmod).
template <class C> __device__ __forceinline__ C py_floor_divide(C a, C b) {
  if constexpr (std::is_integral<C>::value) {
    if (b == 0) return 0;
    using U = typename std::make_unsigned<C>::type;
    if (b == C(-1)) return C(U(0) - U(a));  // MIN / -1 overflows: wrap, as the CPU kernel
    C q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? C(q - 1) : q;
  } else {
    if (b == C(0)) return a / b;
    C mod = fmod(a, b), div = (a - mod) / b;
    if (mod != C(0) && ((b < C(0)) != (mod < C(0)))) div -= C(1);
    if (div == C(0)) return copysign(C(0), a / b);
    C fl = floor(div);
    return (div - fl > C(0.5)) ? C(fl + C(1)) : fl;
  }
}

template <class C> __device__ __forceinline__ C int_pow(C a, C b) {
  if (b < 0) return a == 1 ? C(1) : (a == -1 ? C((b & 1) ? -1 : 1) : C(0));
  using U = typename std::make_unsigned<C>::type;
  U r = 1, base = U(a);
  while (b) {
    if (b & 1) r *= base;
    base *= base;
    b >>= 1;
  }
  return C(r);
}

template <class F> __device__ __forceinline__ F sigmoid_f(F x) { return F(1) / (F(1) + exp(-x)); }

// Arithmetic ops and the *_bwd helpers (a = forward input/output, b = upstream grad).
template <class C> __device__ __forceinline__ C binary_value(BinaryOp op, C a, C b) {
  constexpr bool kInt = std::is_integral<C>::value;
  using F = typename FloatOf<C>::type;
  using U = typename std::conditional<kInt, typename std::make_unsigned<
      typename std::conditional<kInt, C, int>::type>::type, C>::type;
  const F x = F(a), g = F(b);
  switch (op) {
    case BinaryOp::add: return C(U(a) + U(b));  // unsigned wrap for ints, as PyTorch
    case BinaryOp::sub: return C(U(a) - U(b));
    case BinaryOp::mul: return C(U(a) * U(b));
    case BinaryOp::div:
      if constexpr (kInt) return py_floor_divide(a, b);  // as the CPU kernel (the op promotes to float)
      else return a / b;
    case BinaryOp::pow:
      if constexpr (kInt) return int_pow(a, b);
      else return pow(a, b);
    case BinaryOp::maximum: return a != a ? a : (b != b ? b : (a > b ? a : b));
    case BinaryOp::minimum: return a != a ? a : (b != b ? b : (a < b ? a : b));
    case BinaryOp::atan2: return C(atan2(x, g));
    case BinaryOp::remainder: return py_remainder(a, b);
    case BinaryOp::floor_divide: return py_floor_divide(a, b);
    case BinaryOp::fmod:
      if constexpr (kInt) return (b == 0 || b == C(-1)) ? C(0) : C(a % b);  // zero divisors refused; MIN % -1
      else return fmod(a, b);
    case BinaryOp::bitwise_and:
      if constexpr (kInt) return C(a & b);
      else return C(0);  // the op refuses floating dtypes
    case BinaryOp::bitwise_or:
      if constexpr (kInt) return C(a | b);
      else return C(0);
    case BinaryOp::bitwise_xor:
      if constexpr (kInt) return C(a ^ b);
      else return C(0);
    case BinaryOp::relu_bwd: return x <= F(0) ? C(0) : b;
    case BinaryOp::sigmoid_bwd: return C(g * (F(1) - x) * x);
    case BinaryOp::tanh_bwd: return C(g * (F(1) - x * x));
    case BinaryOp::gelu_bwd: {
      const F cdf = F(0.5) * (F(1) + erf(x * F(0.70710678118654752440)));
      const F pdf = F(0.39894228040143267794) * exp(F(-0.5) * x * x);
      return C(g * (cdf + x * pdf));
    }
    case BinaryOp::gelu_tanh_bwd: {
      const F k0 = F(0.79788456080286535588), k1 = F(0.044715);
      const F t = tanh(k0 * (x + k1 * x * x * x));
      const F dinner = k0 * (F(1) + F(3) * k1 * x * x);
      return C(g * (F(0.5) * (F(1) + t) + F(0.5) * x * (F(1) - t * t) * dinner));
    }
    case BinaryOp::silu_bwd: {
      const F s = sigmoid_f(x);
      return C(g * s * (F(1) + x * (F(1) - s)));
    }
    case BinaryOp::softplus_bwd: {  // beta 1, threshold 20, as F.softplus
      if (x > F(20)) return b;
      const F z = exp(x);
      return C(g * z / (z + F(1)));
    }
    default: return C(0);
  }
}

// Comparisons and logical ops (write bool).
template <class C> __device__ __forceinline__ bool compare_value(BinaryOp op, C a, C b) {
  switch (op) {
    case BinaryOp::eq: return a == b;
    case BinaryOp::ne: return a != b;
    case BinaryOp::lt: return a < b;
    case BinaryOp::le: return a <= b;
    case BinaryOp::gt: return a > b;
    case BinaryOp::ge: return a >= b;
    case BinaryOp::logical_and: return (a != C(0)) && (b != C(0));
    case BinaryOp::logical_or: return (a != C(0)) || (b != C(0));
    case BinaryOp::logical_xor: return (a != C(0)) != (b != C(0));
    default: return false;
  }
}

template <class F> __device__ __forceinline__ F unary_float(UnaryOp op, F x) {
  switch (op) {
    case UnaryOp::neg: return -x;
    case UnaryOp::exp: return exp(x);
    case UnaryOp::log: return log(x);
    case UnaryOp::sqrt: return sqrt(x);
    case UnaryOp::rsqrt: return rsqrt(x);
    case UnaryOp::abs: return fabs(x);
    case UnaryOp::sin: return sin(x);
    case UnaryOp::cos: return cos(x);
    case UnaryOp::tan: return tan(x);
    case UnaryOp::tanh: return tanh(x);
    case UnaryOp::sigmoid: return sigmoid_f(x);
    case UnaryOp::relu: return x < F(0) ? F(0) : x;  // NaN passes through, as clamp_min
    case UnaryOp::gelu: return F(0.5) * x * (F(1) + erf(x * F(0.70710678118654752440)));
    case UnaryOp::gelu_tanh: {
      const F k0 = F(0.79788456080286535588), k1 = F(0.044715);
      return F(0.5) * x * (F(1) + tanh(k0 * (x + k1 * x * x * x)));
    }
    case UnaryOp::silu: return x / (F(1) + exp(-x));
    case UnaryOp::softplus: return x > F(20) ? x : log1p(exp(x));
    case UnaryOp::log1p: return log1p(x);
    case UnaryOp::expm1: return expm1(x);
    case UnaryOp::sign: return F(int(F(0) < x) - int(x < F(0)));  // sign(NaN) = 0, as PyTorch
    case UnaryOp::floor: return floor(x);
    case UnaryOp::ceil: return ceil(x);
    case UnaryOp::round: return rint(x);  // half to even
    case UnaryOp::trunc: return trunc(x);
    case UnaryOp::reciprocal: return F(1) / x;
    case UnaryOp::square: return x * x;
    case UnaryOp::cube: return x * x * x;
    case UnaryOp::erf: return erf(x);
    case UnaryOp::exp2: return exp2(x);
    case UnaryOp::log2: return log2(x);
    case UnaryOp::log10: return log10(x);
    case UnaryOp::asin: return asin(x);
    case UnaryOp::acos: return acos(x);
    case UnaryOp::atan: return atan(x);
    case UnaryOp::sinh: return sinh(x);
    case UnaryOp::cosh: return cosh(x);
    default: return x;
  }
}

template <class C> __device__ __forceinline__ C unary_value(UnaryOp op, C x) {
  if constexpr (std::is_integral<C>::value) {
    switch (op) {  // exact integer forms; the rest go through floating point
      case UnaryOp::neg: return C(-x);
      case UnaryOp::abs: return x < 0 ? C(-x) : x;
      case UnaryOp::sign: return C((0 < x) - (x < 0));
      case UnaryOp::square: return C(x * x);
      case UnaryOp::cube: return C(x * x * x);
      case UnaryOp::relu: return x < 0 ? C(0) : x;
      case UnaryOp::floor: case UnaryOp::ceil: case UnaryOp::round: case UnaryOp::trunc: return x;
      default: {
        using F = typename FloatOf<C>::type;
        return C(unary_float<F>(op, F(x)));
      }
    }
  } else {
    return unary_float<C>(op, x);
  }
}

template <class C> __device__ __forceinline__ bool predicate_value(UnaryOp op, C x) {
  if constexpr (std::is_integral<C>::value) {
    return op == UnaryOp::logical_not ? x == 0 : op == UnaryOp::isfinite;
  } else {
    switch (op) {
      case UnaryOp::logical_not: return x == C(0);
      case UnaryOp::isnan: return x != x;
      case UnaryOp::isinf: return isinf(x);
      case UnaryOp::isfinite: return isfinite(x);
      default: return false;
    }
  }
}

}  // namespace fastdl::cuda
