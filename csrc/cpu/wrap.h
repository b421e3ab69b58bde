// Integer add / sub / mul that wrap on overflow, as PyTorch's do: in unsigned arithmetic, since
// the signed operators' overflow is undefined behaviour (UBSan reports it). Floats pass through.
// Internal linkage: the per-ISA kernel files each compile their own copy with their own flags.
#pragma once
#include <type_traits>

namespace fastdl::cpu {
namespace {

template <class T> inline T wrap_add(T x, T y) {
  if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) return T(std::make_unsigned_t<T>(x) + std::make_unsigned_t<T>(y));
  else return T(x + y);
}
template <class T> inline T wrap_sub(T x, T y) {
  if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) return T(std::make_unsigned_t<T>(x) - std::make_unsigned_t<T>(y));
  else return T(x - y);
}
template <class T> inline T wrap_mul(T x, T y) {
  if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) return T(std::make_unsigned_t<T>(x) * std::make_unsigned_t<T>(y));
  else return T(x * y);
}

}  // namespace
}  // namespace fastdl::cpu
