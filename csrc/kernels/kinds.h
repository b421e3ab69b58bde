// The elementwise and reduction operator kinds: the ops (csrc/ops) pick one, and every backend's
// kernels (csrc/cpu tables, csrc/cuda launchers) switch on it. See kernels/common.h for the folder.
#pragma once
#include <cstdint>

namespace fastdl {

enum class BinaryOp : uint8_t {
  add, sub, mul, div, pow, maximum, minimum, atan2, remainder, floor_divide, fmod,
  eq, ne, lt, le, gt, ge, logical_and, logical_or, logical_xor,
  // backward helpers (a = forward input or output, b = upstream gradient)
  relu_bwd, sigmoid_bwd, tanh_bwd, gelu_bwd, gelu_tanh_bwd, silu_bwd, softplus_bwd,
  // integer bit operations (bool operands go to the logical ops)
  bitwise_and, bitwise_or, bitwise_xor,
  count
};
inline bool is_comparison(BinaryOp op) { return op >= BinaryOp::eq && op <= BinaryOp::logical_xor; }
inline bool is_bitwise(BinaryOp op) { return op >= BinaryOp::bitwise_and && op <= BinaryOp::bitwise_xor; }

enum class UnaryOp : uint8_t {
  neg, exp, log, sqrt, rsqrt, abs, sin, cos, tan, tanh, sigmoid, relu, gelu, gelu_tanh, silu,
  softplus, log1p, expm1, sign, floor, ceil, round, trunc, reciprocal, square, erf, exp2, log2,
  log10, asin, acos, atan, sinh, cosh, cube, logical_not, isnan, isinf, isfinite,
  count
};
inline bool is_predicate(UnaryOp op) { return op >= UnaryOp::logical_not; }

// Activations with parameters p[] (the CPU elementwise table's `act`; other backends compose
// them): forward out = f(x), and the *_bwd forms out = g f'(x) from the forward input x, with
// PyTorch's formulas (see ops/unary.cpp).
//   leaky_relu      p = {slope}
//   elu             p = {alpha, scale, input_scale}: x > 0 ? scale x : alpha scale (e^(input_scale x) - 1)
//   hardswish       x min(max(x + 3, 0), 6) / 6
//   hardsigmoid     min(max(x + 3, 0), 6) / 6
//   nan_to_num      p = {nan, posinf, neginf}: those values in place of NaN, +inf, -inf
//   hardtanh        p = {lo, hi}: clamp (a NaN stays); the gradient only strictly inside (lo, hi)
//   threshold       p = {threshold, value}: x <= threshold ? value : x
//   hardshrink      p = {lambd}: 0 on [-lambd, lambd], x elsewhere
//   softshrink      p = {lambd}: x - lambd above lambd, x + lambd below -lambd, +0 between (a NaN stays)
enum class ActOp : uint8_t {
  leaky_relu, leaky_relu_bwd, elu, elu_bwd, hardswish, hardswish_bwd, hardsigmoid, hardsigmoid_bwd,
  nan_to_num, nan_to_num_bwd, hardtanh, hardtanh_bwd, threshold, threshold_bwd, hardshrink, hardshrink_bwd,
  softshrink, softshrink_bwd, count
};
// Each forward op is followed by its _bwd form (ops/unary.cpp takes op + 1 for the backward).
inline bool is_act_bwd(ActOp op) { return (int(op) & 1) != 0; }
inline ActOp act_bwd(ActOp op) { return ActOp(int(op) + 1); }

enum class ReduceOp : uint8_t { sum, prod, max, min, argmax, argmin, count };

}  // namespace fastdl
