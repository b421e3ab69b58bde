// DType, Device and the half-precision conversions shared by every backend.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

namespace fastdl {

enum class DType : uint8_t { f32 = 0, f64, f16, bf16, i32, i64, b8, u8, i8, i16 };
constexpr int kNumDTypes = 10;

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: case DType::i32: return 4;
    case DType::f64: case DType::i64: return 8;
    case DType::f16: case DType::bf16: return 2;
    case DType::b8: case DType::u8: case DType::i8: return 1;
    case DType::i16: return 2;
  }
  return 0;
}
inline bool is_floating(DType t) { return t == DType::f32 || t == DType::f64 || t == DType::f16 || t == DType::bf16; }
inline bool is_integral(DType t) {
  return t == DType::i32 || t == DType::i64 || t == DType::u8 || t == DType::i8 || t == DType::i16;
}
// Dtypes that index (gather, index_select, embedding, class targets): int64 and int32.
inline bool is_index(DType t) { return t == DType::i32 || t == DType::i64; }
inline bool is_half(DType t) { return t == DType::f16 || t == DType::bf16; }
inline const char* dtype_name(DType t) {  // "float32", ...
  switch (t) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::f16: return "float16";
    case DType::bf16: return "bfloat16";
    case DType::i32: return "int32";
    case DType::i64: return "int64";
    case DType::b8: return "bool";
    case DType::u8: return "uint8";
    case DType::i8: return "int8";
    case DType::i16: return "int16";
  }
  return "?";
}

// Binary promotion following PyTorch's lattice (bool < uint8, int8 < int16 < int32 < int64 <
// f16/bf16 < f32 < f64; uint8 with int8 gives int16, f16 with bf16 gives f32).
DType promote(DType a, DType b);

enum class DeviceType : uint8_t { cpu = 0, cuda = 1 };
struct Device {
  DeviceType type = DeviceType::cpu;
  int8_t index = 0;
  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const;  // "cpu", "cuda:0"
};
Device parse_device(const std::string& s);

// IEEE half and bfloat16 <-> float (round to nearest even).
inline float bf16_to_f32(uint16_t h) { uint32_t u = uint32_t(h) << 16; float f; std::memcpy(&f, &u, 4); return f; }
inline uint16_t f32_to_bf16(float f) {
  uint32_t u; std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
inline float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
  if (exp == 0) {
    if (man == 0) u = sign;
    else {  // subnormal: normalise
      int e = -1;
      do { man <<= 1; ++e; } while (!(man & 0x400));
      u = sign | uint32_t(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
    }
  } else if (exp == 31) u = sign | 0x7f800000u | man << 13;
  else u = sign | (exp + 112) << 23 | man << 13;
  float f; std::memcpy(&f, &u, 4); return f;
}
inline uint16_t f32_to_f16(float f) {
  uint32_t u; std::memcpy(&u, &f, 4);
  uint32_t sign = (u >> 16) & 0x8000, au = u & 0x7fffffffu;
  if (au > 0x7f800000u) return uint16_t(sign | 0x7e00);
  if (au >= 0x477ff000u) return uint16_t(sign | 0x7c00);  // overflow to inf (after rounding)
  if (au < 0x38800000u) {  // subnormal or zero in half
    if (au < 0x33000000u) return uint16_t(sign);
    uint32_t man = (au & 0x7fffff) | 0x800000; int shift = 113 - int(au >> 23) + 13;
    uint32_t r = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1))) ++r;
    return uint16_t(sign | r);
  }
  uint32_t r = au - 0x38000000u;  // rebias exponent
  r += 0xfffu + ((r >> 13) & 1u);
  return uint16_t(sign | (r >> 13));
}

}  // namespace fastdl
