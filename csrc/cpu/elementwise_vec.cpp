// Elementwise row kernels, compiled once per ISA (see cmake/fastdl_isa.cmake). Plain loops
// over restrict pointers with the contiguous and broadcast-scalar cases split out, so the
// compiler vectorises them for the ISA at hand; float32 transcendental math is vm::*.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "core/cpu_info.h"
#include "core/parallel.h"
#include "cpu/elementwise.h"
#include "cpu/simd/vmath.h"
#include "cpu/wrap.h"

#if defined(FASTDL_ISA_avx512) || defined(FASTDL_ISA_avx2)
#include <immintrin.h>

#include "cpu/simd/transpose.h"
#include "cpu/simd/vec.h"
#endif

namespace fastdl::cpu::FASTDL_ISA_NS {
namespace {

constexpr double kSqrt1_2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;
constexpr double kSqrt2OverPi = 0.79788456080286535588;

template <class T> inline T t_exp(T x) { if constexpr (std::is_same_v<T, float>) return vm::exp_f(x); else return std::exp(x); }
// exp whose results below FLT_MIN are 0 (no denormal arithmetic; see vm::exp_ftz_f).
template <class T> inline T t_exp_ftz(T x) { if constexpr (std::is_same_v<T, float>) return vm::exp_ftz_f(x); else return std::exp(x); }
template <class T> inline T t_log(T x) { if constexpr (std::is_same_v<T, float>) return vm::log_f(x); else return std::log(x); }
template <class T> inline T t_tanh(T x) { if constexpr (std::is_same_v<T, float>) return vm::tanh_f(x); else return std::tanh(x); }
template <class T> inline T t_sigmoid(T x) { return T(1) / (T(1) + t_exp_ftz(-x)); }
// f(x) as a lambda: float32 by fastdl's vectorisable form (vm::f_f), float64 by libm.
// (A lambda, never a function pointer: vm's functions live outside the ISA namespace, so an
// out-of-line copy would be whichever ISA build the linker kept.)
#define FASTDL_VM_OR_LIBM(f) \
  [](T x) { if constexpr (std::is_same_v<T, float>) return vm::f##_f(x); else return std::f(x); }
template <class T> inline T t_erf_fast(T x) { if constexpr (std::is_same_v<T, float>) return vm::erf_f(x); else return std::erf(x); }
template <class T> inline T t_softplus(T x) {  // log(1 + e^x), stable; PyTorch's threshold 20
  if constexpr (std::is_same_v<T, float>) return x > 20.f ? x : vm::log1p_f(vm::exp_f(x));
  else return x > T(20) ? x : std::log1p(std::exp(x));
}
template <class T> inline T t_gelu(T x) { return T(0.5) * x * (T(1) + t_erf_fast(x * T(kSqrt1_2))); }
template <class T> inline T t_gelu_tanh(T x) {
  return T(0.5) * x * (T(1) + t_tanh(T(kSqrt2OverPi) * (x + T(0.044715) * x * x * x)));
}

// Python's floor division. Floats: CPython's algorithm, the exact quotient of a - fmod(a, b) rounded
// to the floor (floor(a / b) rounds a / b first: 1.5 // -inf is -1, inf // 2 is NaN).
template <class T> inline T floor_div(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    if (b == 0) return a / b;
    T mod = std::fmod(a, b), div = (a - mod) / b;
    if (mod != 0 && ((b < 0) != (mod < 0))) div -= T(1);
    if (div == 0) return std::copysign(T(0), a / b);
    T fl = std::floor(div);
    return div - fl > T(0.5) ? T(fl + T(1)) : fl;
  } else {
    if (b == 0) return 0;  // the op refuses zero divisors; never trap
    if constexpr (std::is_signed_v<T>)  // MIN / -1 overflows (and traps on x86): wrap like PyTorch
      if (b == T(-1)) return T(std::make_unsigned_t<T>(0) - std::make_unsigned_t<T>(a));
    T q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
  }
}
template <class T> inline T py_mod(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    T r = std::fmod(a, b);
    return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
  } else {
    if (b == 0) return 0;
    if constexpr (std::is_signed_v<T>) if (b == T(-1)) return 0;  // MIN % -1 traps on x86
    T r = a % b;
    return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
  }
}
// C's remainder (the dividend's sign), exact for floats.
template <class T> inline T c_fmod(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) return std::fmod(a, b);
  else {
    if (b == 0) return 0;
    if constexpr (std::is_signed_v<T>) if (b == T(-1)) return 0;  // MIN % -1 traps on x86
    return a % b;
  }
}
// float32 fmod without libm's loop: q = trunc(a / b) in float, off by at most one while |a / b| <
// 2^22; r = a - q b in double, exact (q b fits in 46 bits, and r spans at most 25); a q one off
// leaves r past 0 or at |b|, and one step of |b| brings it back. fmod_fast_ok: b finite and
// nonzero, a finite, |a| < 2^22 |b|; other elements go to libm (fmod_rows, checked_rows).
inline bool fmod_fast_ok(float a, float b) {
  const float ab = std::fabs(b);
  return (std::fabs(a) < 4194304.f * ab) & (ab < INFINITY);  // NaN: false
}
inline float fmod_fast(float a, float b) {
  const double da = a, ab = std::fabs(double(b)), q = double(std::trunc(a / b));
  double r = da - q * double(b);
  const double step = da < 0 ? -ab : ab;  // toward a's side
  r = (r != 0 && ((r < 0) != (da < 0))) ? r + step : r;
  r = std::fabs(r) >= ab ? r - step : r;
  return r == 0 ? std::copysign(0.f, a) : float(r);
}
// Python's floor division and modulo given an fmod (CPython's algorithm, as floor_div / py_mod
// below), written as selects: with fmod_fast they vectorise. b != 0.
inline float floor_div_fast(float a, float b) {
  const float mod = fmod_fast(a, b);
  float div = (a - mod) / b;
  div = (mod != 0 && ((b < 0) != (mod < 0))) ? div - 1.f : div;
  const float fl = std::floor(div), rounded = div - fl > 0.5f ? fl + 1.f : fl;
  return div == 0 ? std::copysign(0.f, a / b) : rounded;
}
inline float py_mod_fast(float a, float b) {
  const float r = fmod_fast(a, b);
  return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}
template <class T> inline T ipow(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) return std::pow(a, b);
  else {
    if (b < 0) return a == 1 ? 1 : (a == -1 ? ((b & 1) ? -1 : 1) : 0);
    // Unsigned arithmetic: an overflowing power wraps (as PyTorch's does) instead of being
    // undefined behaviour, and so does the last squaring of the base, which is never used.
    using U = std::make_unsigned_t<T>;
    U r = 1, x = U(a);
    while (b) { if (b & 1) r *= x; x *= x; b >>= 1; }
    return T(r);
  }
}
template <class T> inline T nanmax(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) return (a != a || a > b) ? a : (b != b ? b : (a > b ? a : b));
  else return a > b ? a : b;
}
template <class T> inline T nanmin(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) return (a != a || a < b) ? a : (b != b ? b : (a < b ? a : b));
  else return a < b ? a : b;
}

// A block of `rows` strided rows (row k starts ro/ra/rb elements after row k-1): the op is
// dispatched once per block, and the contiguous and scalar-broadcast rows get their own loops.
struct Rows { int64_t n, so, sa, sb, rows = 1, ro = 0, ra = 0, rb = 0; };

template <class O, class T, class F>
__attribute__((flatten)) inline void row2(O* __restrict o, const T* __restrict a, const T* __restrict b, const Rows& r, F f) {
  const int64_t n = r.n, so = r.so, sa = r.sa, sb = r.sb;
  for (int64_t k = 0; k < r.rows; ++k, o += r.ro, a += r.ra, b += r.rb) {
    if (so == 1 && sa == 1 && sb == 1) { for (int64_t i = 0; i < n; ++i) o[i] = f(a[i], b[i]); }
    else if (so == 1 && sa == 1 && sb == 0) { const T bv = *b; for (int64_t i = 0; i < n; ++i) o[i] = f(a[i], bv); }
    else if (so == 1 && sa == 0 && sb == 1) { const T av = *a; for (int64_t i = 0; i < n; ++i) o[i] = f(av, b[i]); }
    else { for (int64_t i = 0; i < n; ++i) o[i * so] = f(a[i * sa], b[i * sb]); }
  }
}
// row1 / row2 are flattened: f (vm's math, always-inlined bodies) goes into the loop, which
// then vectorises; left to the inliner's budget a large f stayed a call per element (gelu tanh
// 10x slower).
template <class O, class T, class F>
__attribute__((flatten)) inline void row1(O* __restrict o, const T* __restrict a, int64_t n, int64_t so, int64_t sa, F f) {
  if (so == 1 && sa == 1) { for (int64_t i = 0; i < n; ++i) o[i] = f(a[i]); }
  else if (so == 1 && sa == 0) { const O v = f(*a); for (int64_t i = 0; i < n; ++i) o[i] = v; }  // broadcast source
  else { for (int64_t i = 0; i < n; ++i) o[i * so] = f(a[i * sa]); }
}

// Large contiguous float32 add/sub/mul/div: streaming stores keep the output out of cache,
// so a+b moves 12 bytes per element instead of 16, once the output passes half the shared
// cache (the operands with it, 3x, could not stay there). Below that they were a loss: the
// store went to DRAM and the next op read it back. Zen 4, 32 MB L3, 2 threads, a * b alone /
// in a chain of four, us, streamed vs cached: 6 MB out 104 / 446 vs 102 / 449 (a slow-memory
// moment: 222 / 936 vs 110 / 586); 8 MB 163 / 963 vs 156 / 690; 16 MB 340 / 1944 vs 472 / 2391.
// n: this thread's share.
inline bool stream_worth(int64_t n) {
  const int64_t total = n * int64_t(sizeof(float)) * std::max(1, get_num_threads());
  return n >= (int64_t(1) << 18) && total >= int64_t(cpu_info().l3 / 2);
}
#if defined(FASTDL_ISA_avx512)
template <class F>
bool stream_f32(float* o, const float* a, const float* b, int64_t n, F f) {
  if (!stream_worth(n) || (reinterpret_cast<uintptr_t>(o) & 63)) return false;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_stream_ps(o + i, f(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
  for (; i < n; ++i) { __m512 r = f(_mm512_set1_ps(a[i]), _mm512_set1_ps(b[i])); o[i] = _mm512_cvtss_f32(r); }
  _mm_sfence();
  return true;
}
#define FASTDL_STREAM(op, intr) \
  if (op_ == BinaryOp::op && r.rows == 1 && r.so == 1 && r.sa == 1 && r.sb == 1 && \
      stream_f32(o, a, b, r.n, [](__m512 x, __m512 y) { return intr(x, y); })) return;
#elif defined(FASTDL_ISA_avx2)
template <class F>
bool stream_f32(float* o, const float* a, const float* b, int64_t n, F f) {
  if (!stream_worth(n) || (reinterpret_cast<uintptr_t>(o) & 31)) return false;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_stream_ps(o + i, f(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  for (; i < n; ++i) { __m256 r = f(_mm256_set1_ps(a[i]), _mm256_set1_ps(b[i])); o[i] = _mm256_cvtss_f32(r); }
  _mm_sfence();
  return true;
}
#define FASTDL_STREAM(op, intr) \
  if (op_ == BinaryOp::op && r.rows == 1 && r.so == 1 && r.sa == 1 && r.sb == 1 && \
      stream_f32(o, a, b, r.n, [](__m256 x, __m256 y) { return intr(x, y); })) return;
#endif

// Activation backward formulas (a: the saved input or output, b: the upstream gradient), kept
// out of binary_t so the vector math inlines into each loop and it vectorises.
template <class T>
__attribute__((noinline)) void activation_bwd_t(BinaryOp op_, T* __restrict o, const T* __restrict a, const T* __restrict b,
                                                const Rows& r) {
  switch (op_) {
    case BinaryOp::relu_bwd: return row2(o, a, b, r, [](T x, T g) { return x <= T(0) ? T(0) : g; });
    case BinaryOp::sigmoid_bwd: return row2(o, a, b, r, [](T y, T g) { return g * y * (T(1) - y); });
    case BinaryOp::tanh_bwd: return row2(o, a, b, r, [](T y, T g) { return g * (T(1) - y * y); });
    case BinaryOp::gelu_bwd:
      return row2(o, a, b, r, [](T x, T g) {
        T e = t_exp_ftz(T(-0.5) * x * x);  // the density's exponential, also erf's (float32)
        T erf;
        if constexpr (std::is_same_v<T, float>) erf = vm::erf_with_exp_f(x * T(kSqrt1_2), e);
        else erf = std::erf(x * T(kSqrt1_2));
        return g * (T(0.5) * (T(1) + erf) + x * T(kInvSqrt2Pi) * e);
      });
    case BinaryOp::gelu_tanh_bwd:
      return row2(o, a, b, r, [](T x, T g) {
        T u = T(kSqrt2OverPi) * (x + T(0.044715) * x * x * x);
        T th = t_tanh(u);
        T du = T(kSqrt2OverPi) * (T(1) + T(3 * 0.044715) * x * x);
        return g * (T(0.5) * (T(1) + th) + T(0.5) * x * (T(1) - th * th) * du);
      });
    case BinaryOp::silu_bwd:
      return row2(o, a, b, r, [](T x, T g) { T s = t_sigmoid(x); return g * s * (T(1) + x * (T(1) - s)); });
    case BinaryOp::softplus_bwd:
      return row2(o, a, b, r, [](T x, T g) { return x > T(20) ? g : g * t_sigmoid(x); });
    default: break;
  }
}

// Blocks of 256 elements of each row: a block whose elements all pass ok(a, b) takes the
// vectorised form (fast), any other the exact one (slow, libm); each block is checked whole
// before any of it is written, so o == a (in place, same strides) works. Strides 1 or 0 are
// template constants where they are (a loop on runtime strides compiles to gathers: fmod 4x
// slower); SB < 0: the runtime strides. Unary functions pass b = a and ignore it (the loads
// are dead). float32 fmod / remainder / floor_divide and sin / cos / tan use it.
template <int SB, class Ok, class Fast, class Slow>
inline void checked_block(float* o, const float* a, const float* b, int64_t s, int64_t e, const Rows& r, Ok ok, Fast fast, Slow slow) {
  const int64_t so = SB >= 0 ? 1 : r.so, sa = SB >= 0 ? 1 : r.sa, sb = SB >= 0 ? SB : r.sb;
  int bad = 0;  // an int, not a bool: the check loop vectorises
  if constexpr (SB == 0) {  // b one value, held in a register (o's stores might alias it)
    const float bv = *b;
    for (int64_t i = s; i < e; ++i) bad |= int(!ok(a[i], bv));
    if (!bad) for (int64_t i = s; i < e; ++i) o[i] = fast(a[i], bv);
    else for (int64_t i = s; i < e; ++i) o[i] = slow(a[i], bv);
    return;
  }
  for (int64_t i = s; i < e; ++i) bad |= int(!ok(a[i * sa], b[i * sb]));
  if (!bad) for (int64_t i = s; i < e; ++i) o[i * so] = fast(a[i * sa], b[i * sb]);
  else for (int64_t i = s; i < e; ++i) o[i * so] = slow(a[i * sa], b[i * sb]);
}
template <class Ok, class Fast, class Slow>
__attribute__((flatten)) void checked_rows(float* o, const float* a, const float* b, const Rows& r, Ok ok, Fast fast, Slow slow) {
  constexpr int64_t B = 256;
  for (int64_t k = 0; k < r.rows; ++k, o += r.ro, a += r.ra, b += r.rb) {
    for (int64_t s = 0; s < r.n; s += B) {
      const int64_t e = std::min(r.n, s + B);
      if (r.so == 1 && r.sa == 1 && r.sb == 1) checked_block<1>(o, a, b, s, e, r, ok, fast, slow);
      else if (r.so == 1 && r.sa == 1 && r.sb == 0) checked_block<0>(o, a, b, s, e, r, ok, fast, slow);
      else checked_block<-1>(o, a, b, s, e, r, ok, fast, slow);
    }
  }
}
// float32 fmod / remainder / floor_divide: the vectorised form where fmod_fast_ok holds.
template <class FF, class FS>
inline void fmod_rows(float* o, const float* a, const float* b, const Rows& r, FF fast, FS slow) {
  checked_rows(o, a, b, r, [](float x, float y) { return fmod_fast_ok(x, y); }, fast, slow);
}

template <class T>
void binary_t(BinaryOp op_, char* out, const char* ca, const char* cb, const Rows& r) {
  const T* a = reinterpret_cast<const T*>(ca);
  const T* b = reinterpret_cast<const T*>(cb);
  T* o = reinterpret_cast<T*>(out);
  bool* ob = reinterpret_cast<bool*>(out);
#if defined(FASTDL_ISA_avx512)
  if constexpr (std::is_same_v<T, float>) {
    FASTDL_STREAM(add, _mm512_add_ps) FASTDL_STREAM(sub, _mm512_sub_ps)
    FASTDL_STREAM(mul, _mm512_mul_ps) FASTDL_STREAM(div, _mm512_div_ps)
  }
#elif defined(FASTDL_ISA_avx2)
  if constexpr (std::is_same_v<T, float>) {
    FASTDL_STREAM(add, _mm256_add_ps) FASTDL_STREAM(sub, _mm256_sub_ps)
    FASTDL_STREAM(mul, _mm256_mul_ps) FASTDL_STREAM(div, _mm256_div_ps)
  }
#endif
  switch (op_) {
    case BinaryOp::add: return row2(o, a, b, r, [](T x, T y) { return wrap_add(x, y); });
    case BinaryOp::sub: return row2(o, a, b, r, [](T x, T y) { return wrap_sub(x, y); });
    case BinaryOp::mul: return row2(o, a, b, r, [](T x, T y) { return wrap_mul(x, y); });
    case BinaryOp::div:
      if constexpr (std::is_floating_point_v<T>) return row2(o, a, b, r, [](T x, T y) { return x / y; });
      else return row2(o, a, b, r, [](T x, T y) { return floor_div(x, y); });
    case BinaryOp::pow: return row2(o, a, b, r, [](T x, T y) { return ipow(x, y); });
    case BinaryOp::maximum: return row2(o, a, b, r, [](T x, T y) { return nanmax(x, y); });
    case BinaryOp::minimum: return row2(o, a, b, r, [](T x, T y) { return nanmin(x, y); });
    case BinaryOp::atan2: return row2(o, a, b, r, [](T x, T y) { return T(std::atan2(double(x), double(y))); });
    case BinaryOp::remainder:
      if constexpr (std::is_same_v<T, float>) return fmod_rows(o, a, b, r, [](float x, float y) { return py_mod_fast(x, y); }, [](float x, float y) { return py_mod<float>(x, y); });
      else return row2(o, a, b, r, [](T x, T y) { return py_mod(x, y); });
    case BinaryOp::floor_divide:
      if constexpr (std::is_same_v<T, float>) return fmod_rows(o, a, b, r, [](float x, float y) { return floor_div_fast(x, y); }, [](float x, float y) { return floor_div<float>(x, y); });
      else return row2(o, a, b, r, [](T x, T y) { return floor_div(x, y); });
    case BinaryOp::fmod:
      if constexpr (std::is_same_v<T, float>) return fmod_rows(o, a, b, r, [](float x, float y) { return fmod_fast(x, y); }, [](float x, float y) { return c_fmod<float>(x, y); });
      else return row2(o, a, b, r, [](T x, T y) { return c_fmod(x, y); });
    case BinaryOp::eq: return row2(ob, a, b, r, [](T x, T y) { return x == y; });
    case BinaryOp::ne: return row2(ob, a, b, r, [](T x, T y) { return x != y; });
    case BinaryOp::lt: return row2(ob, a, b, r, [](T x, T y) { return x < y; });
    case BinaryOp::le: return row2(ob, a, b, r, [](T x, T y) { return x <= y; });
    case BinaryOp::gt: return row2(ob, a, b, r, [](T x, T y) { return x > y; });
    case BinaryOp::ge: return row2(ob, a, b, r, [](T x, T y) { return x >= y; });
    case BinaryOp::logical_and: return row2(ob, a, b, r, [](T x, T y) { return x != T(0) && y != T(0); });
    case BinaryOp::logical_or: return row2(ob, a, b, r, [](T x, T y) { return x != T(0) || y != T(0); });
    case BinaryOp::logical_xor: return row2(ob, a, b, r, [](T x, T y) { return (x != T(0)) != (y != T(0)); });
    case BinaryOp::bitwise_and:
      if constexpr (std::is_integral_v<T>) return row2(o, a, b, r, [](T x, T y) { return T(x & y); });
      break;
    case BinaryOp::bitwise_or:
      if constexpr (std::is_integral_v<T>) return row2(o, a, b, r, [](T x, T y) { return T(x | y); });
      break;
    case BinaryOp::bitwise_xor:
      if constexpr (std::is_integral_v<T>) return row2(o, a, b, r, [](T x, T y) { return T(x ^ y); });
      break;
    default: break;
  }
  if constexpr (std::is_floating_point_v<T>) activation_bwd_t<T>(op_, o, a, b, r);
}

void binary_rows_k(BinaryOp op, DType dt, char* out, const char* a, const char* b, int64_t n, int64_t so, int64_t sa,
                   int64_t sb, int64_t rows, int64_t ro, int64_t ra, int64_t rb) {
  const Rows r{n, so, sa, sb, rows, ro, ra, rb};
  switch (dt) {
    case DType::f32: return binary_t<float>(op, out, a, b, r);
    case DType::f64: return binary_t<double>(op, out, a, b, r);
    case DType::i32: return binary_t<int32_t>(op, out, a, b, r);
    case DType::i64: return binary_t<int64_t>(op, out, a, b, r);
    case DType::b8: case DType::u8: return binary_t<uint8_t>(op, out, a, b, r);
    case DType::i8: return binary_t<int8_t>(op, out, a, b, r);
    case DType::i16: return binary_t<int16_t>(op, out, a, b, r);
    default: return;
  }
}

void binary_k(BinaryOp op, DType dt, char* out, const char* a, const char* b, int64_t n, int64_t so, int64_t sa, int64_t sb) {
  binary_rows_k(op, dt, out, a, b, n, so, sa, sb, 1, 0, 0, 0);
}

#if defined(FASTDL_ISA_avx512) || defined(FASTDL_ISA_avx2)
// Explicit-vector exp, tanh, sigmoid and SiLU for contiguous float32 rows (GELU's auto-vectorised
// form measured faster than an explicit one: 0.50 against 0.67 cycles an element). Left to the
// auto-vectoriser, the scalar forms (vm::exp_f, tanh_f) cost 2-3x PyTorch's per element on a
// Xeon (8192 elements in L1, one thread: exp 0.84 against 0.30 cycles an element, tanh 1.9
// against 0.69): their clamps and selects become blends, and the divisions run on the divider.
// Here 2^n is applied by one scale instruction (AVX-512 vscalefps: exact overflow to inf,
// underflow through the denormals to 0, NaN through) or by two exponent-field products (AVX2),
// and 1 / d is a reciprocal estimate refined by one Newton step (rel. error < 2^-22 on AVX2,
// 2^-28 on AVX-512). Results match the scalar forms to a few ulp, edge values exactly.
#if defined(FASTDL_ISA_avx512)
inline vf vscale2(vf p, vf n) { return _mm512_scalef_ps(p, n); }  // p 2^n
inline vf vrcp_nr(vf d) { const vf r = _mm512_rcp14_ps(d); return r * (2.f - d * r); }
inline vf vround(vf x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
#else
inline vf vscale2(vf p, vf n) {  // n in [-150, 128]: two factors 2^(n/2), each a normal float
  const vi ni = __builtin_convertvector(n, vi), e1 = ni >> 1, e2 = ni - e1;
  return p * (vf)((e1 + 127) << 23) * (vf)((e2 + 127) << 23);
}
inline vf vrcp_nr(vf d) { const vf r = _mm256_rcp_ps(d); return r * (2.f - d * r); }
inline vf vround(vf x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
#endif
// e^x over the whole float range: denormal results kept, inf above 88.7, NaN through (max and
// min return their second operand on NaN).
inline vf exp_full_v(vf x) {
  x = vmin(vf{} + 89.f, vmax(vf{} - 104.f, x));
  const vf n = vround(x * 1.44269504088896341f);
  return vscale2(vm::exp_poly(vm::exp_reduce(x, n)), n);
}
inline vf vabs(vf x) { return (vf)((vi)x & 0x7fffffff); }
inline vf vsel(vi m, vf a, vf b) { return (vf)(((vi)a & m) | ((vi)b & ~m)); }  // m ? a : b
// 1 / d, exactly 1 at d == 1 (where 1 + e^-|x| has rounded to 1: tanh and sigmoid far out).
inline vf vrcp(vf d) { return vsel((vi)(d == 1.f), vf{} + 1.f, vrcp_nr(d)); }
// tanh(|x|) = -u / (u + 2) with u = expm1(-2|x|): accurate near 0 without a series branch.
// expm1(y) = 2^n (e^r - 1) + (2^n - 1), y = n ln2 + r, e^r - 1 = r + r^2 (1/2 + r/6 + ... +
// r^5/5040) (Taylor; the next term is 1.5e-8 of r). y is clamped at -40, where u is -1 and
// the quotient exactly 1.
inline vf tanh_v(vf x) {
  const vf y = vmax(vf{} - 40.f, -2.f * vabs(x));
  const vf n = vround(y * 1.44269504088896341f);
  const vf r = (y - n * 0.693145751953125f) - n * 1.42860682030941723212e-6f;
  vf q = vf{} + 1.f / 5040.f;
  q = q * r + 1.f / 720.f;
  q = q * r + 1.f / 120.f;
  q = q * r + 1.f / 24.f;
  q = q * r + 1.f / 6.f;
  q = q * r + 0.5f;
  const vf em1 = r + r * r * q, s = (vf)((__builtin_convertvector(n, vi) + 127) << 23);
  const vf u = s * em1 + (s - 1.f);
  const vf t = (0.f - u) * vrcp(u + 2.f);
  return (vf)((vi)t | ((vi)x & int32_t(0x80000000u)));  // NaN stays NaN
}
inline vf sigmoid_v(vf x) {  // 0 below -87.3 (as vm::sigmoid_f); NaN through
  const vf y = vrcp(1.f + exp_v(-x));  // exp_v: clamped, always a normal float
  return vsel((vi)(x < -87.33654f), vf{}, vsel((vi)(x != x), x, y));
}

// The vector loop over n (contiguous) elements, the tail by the scalar form.
template <class FV, class FS> inline void row1_v(float* o, const float* a, int64_t n, FV fv, FS fs) {
  int64_t i = 0;
  for (; i + kWf <= n; i += kWf) stv(o + i, fv(ldv(a + i)));
  for (; i < n; ++i) o[i] = fs(a[i]);
}
bool unary_vec_f32(UnaryOp op, float* o, const float* a, int64_t n) {
  switch (op) {
    case UnaryOp::exp: row1_v(o, a, n, exp_full_v, [](float v) { return vm::exp_f(v); }); return true;
    case UnaryOp::tanh: row1_v(o, a, n, tanh_v, [](float v) { return vm::tanh_f(v); }); return true;
    case UnaryOp::sigmoid: row1_v(o, a, n, sigmoid_v, [](float v) { return vm::sigmoid_f(v); }); return true;
    case UnaryOp::silu:
      row1_v(o, a, n, [](vf x) { return x * sigmoid_v(x); }, [](float x) { return x * vm::sigmoid_f(x); });
      return true;
    default: return false;
  }
}
#endif

// float32 sin / cos / tan: the vector form where |x| lies within vm::kTrigMax (its range
// reduction's), libm on blocks with others (huge arguments, inf, NaN).
template <class FV, class FL>
inline void trig_rows(float* o, const float* a, int64_t n, int64_t so, int64_t sa, FV fv, FL fl) {
  checked_rows(o, a, a, Rows{n, so, sa, sa},
               [](float x, float) { return std::fabs(x) <= vm::kTrigMax; },  // NaN: false
               [fv](float x, float) { return fv(x); }, [fl](float x, float) { return fl(x); });
}

template <class T>
void unary_float(UnaryOp op, T* o, const T* a, int64_t n, int64_t so, int64_t sa) {
#if defined(FASTDL_ISA_avx512) || defined(FASTDL_ISA_avx2)
  if constexpr (std::is_same_v<T, float>)
    if (so == 1 && sa == 1 && unary_vec_f32(op, o, a, n)) return;
#endif
  switch (op) {
    case UnaryOp::exp: return row1(o, a, n, so, sa, [](T x) { return t_exp(x); });
    case UnaryOp::log: return row1(o, a, n, so, sa, [](T x) { return t_log(x); });
    case UnaryOp::sqrt: return row1(o, a, n, so, sa, [](T x) { return std::sqrt(x); });
    case UnaryOp::rsqrt: return row1(o, a, n, so, sa, [](T x) { return T(1) / std::sqrt(x); });
    case UnaryOp::sin:
      if constexpr (std::is_same_v<T, float>) return trig_rows(o, a, n, so, sa, [](float v) { return vm::sin_f(v); }, [](float v) { return std::sin(v); });
      else return row1(o, a, n, so, sa, [](T x) { return std::sin(x); });
    case UnaryOp::cos:
      if constexpr (std::is_same_v<T, float>) return trig_rows(o, a, n, so, sa, [](float v) { return vm::cos_f(v); }, [](float v) { return std::cos(v); });
      else return row1(o, a, n, so, sa, [](T x) { return std::cos(x); });
    case UnaryOp::tan:
      if constexpr (std::is_same_v<T, float>) return trig_rows(o, a, n, so, sa, [](float v) { return vm::tan_f(v); }, [](float v) { return std::tan(v); });
      else return row1(o, a, n, so, sa, [](T x) { return std::tan(x); });
    case UnaryOp::tanh: return row1(o, a, n, so, sa, [](T x) { return t_tanh(x); });
    case UnaryOp::sigmoid: return row1(o, a, n, so, sa, [](T x) { return t_sigmoid(x); });
    case UnaryOp::gelu:
      if constexpr (std::is_same_v<T, float>) return row1(o, a, n, so, sa, [](T x) { return t_gelu(x); });
      else return row1(o, a, n, so, sa, [](T x) { return T(0.5) * x * (T(1) + std::erf(x * T(kSqrt1_2))); });
    case UnaryOp::gelu_tanh: return row1(o, a, n, so, sa, [](T x) { return t_gelu_tanh(x); });
    case UnaryOp::silu: return row1(o, a, n, so, sa, [](T x) { return x * t_sigmoid(x); });
    case UnaryOp::softplus: return row1(o, a, n, so, sa, [](T x) { return t_softplus(x); });
    case UnaryOp::log1p: return row1(o, a, n, so, sa, FASTDL_VM_OR_LIBM(log1p));
    case UnaryOp::expm1: return row1(o, a, n, so, sa, FASTDL_VM_OR_LIBM(expm1));
    case UnaryOp::floor: return row1(o, a, n, so, sa, [](T x) { return std::floor(x); });
    case UnaryOp::ceil: return row1(o, a, n, so, sa, [](T x) { return std::ceil(x); });
    case UnaryOp::round: return row1(o, a, n, so, sa, [](T x) { return std::nearbyint(x); });
    case UnaryOp::trunc: return row1(o, a, n, so, sa, [](T x) { return std::trunc(x); });
    case UnaryOp::reciprocal: return row1(o, a, n, so, sa, [](T x) { return T(1) / x; });
    case UnaryOp::erf:
      if constexpr (std::is_same_v<T, float>) return row1(o, a, n, so, sa, [](T x) { return vm::erf_acc_f(x); });
      else return row1(o, a, n, so, sa, [](T x) { return std::erf(x); });
    case UnaryOp::exp2: return row1(o, a, n, so, sa, FASTDL_VM_OR_LIBM(exp2));
    case UnaryOp::log2: return row1(o, a, n, so, sa, FASTDL_VM_OR_LIBM(log2));
    case UnaryOp::log10: return row1(o, a, n, so, sa, FASTDL_VM_OR_LIBM(log10));
    case UnaryOp::asin: return row1(o, a, n, so, sa, FASTDL_VM_OR_LIBM(asin));
    case UnaryOp::acos: return row1(o, a, n, so, sa, FASTDL_VM_OR_LIBM(acos));
    case UnaryOp::atan: return row1(o, a, n, so, sa, FASTDL_VM_OR_LIBM(atan));
    case UnaryOp::sinh: return row1(o, a, n, so, sa, FASTDL_VM_OR_LIBM(sinh));
    case UnaryOp::cosh: return row1(o, a, n, so, sa, FASTDL_VM_OR_LIBM(cosh));
    default: return;
  }
}

template <class T>
void unary_t(UnaryOp op, char* out, const char* ca, int64_t n, int64_t so, int64_t sa) {
  const T* a = reinterpret_cast<const T*>(ca);
  T* o = reinterpret_cast<T*>(out);
  bool* ob = reinterpret_cast<bool*>(out);
  switch (op) {
    case UnaryOp::neg: return row1(o, a, n, so, sa, [](T x) { return T(-x); });
    case UnaryOp::abs:  // floats: clear the sign bit (abs(-0.0) is +0.0)
      if constexpr (std::is_floating_point_v<T>) return row1(o, a, n, so, sa, [](T x) { return std::fabs(x); });
      else return row1(o, a, n, so, sa, [](T x) { return x < T(0) ? T(-x) : x; });
    case UnaryOp::relu: return row1(o, a, n, so, sa, [](T x) { return x > T(0) ? x : (x != x ? x : T(0)); });
    case UnaryOp::sign: return row1(o, a, n, so, sa, [](T x) { return T((x > T(0)) - (x < T(0))); });
    case UnaryOp::square: return row1(o, a, n, so, sa, [](T x) { return T(x * x); });
    case UnaryOp::cube: return row1(o, a, n, so, sa, [](T x) { return T(x * x * x); });
    case UnaryOp::logical_not: return row1(ob, a, n, so, sa, [](T x) { return x == T(0); });
    case UnaryOp::isnan: return row1(ob, a, n, so, sa, [](T x) { return x != x; });
    case UnaryOp::isinf:
      if constexpr (std::is_floating_point_v<T>) return row1(ob, a, n, so, sa, [](T x) { return std::isinf(x); });
      else return row1(ob, a, n, so, sa, [](T) { return false; });
    case UnaryOp::isfinite:
      if constexpr (std::is_floating_point_v<T>) return row1(ob, a, n, so, sa, [](T x) { return std::isfinite(x); });
      else return row1(ob, a, n, so, sa, [](T) { return true; });
    default: break;
  }
  if constexpr (std::is_floating_point_v<T>) unary_float<T>(op, o, a, n, so, sa);
}

void unary_k(UnaryOp op, DType dt, char* out, const char* a, int64_t n, int64_t so, int64_t sa) {
  switch (dt) {
    case DType::f32: return unary_t<float>(op, out, a, n, so, sa);
    case DType::f64: return unary_t<double>(op, out, a, n, so, sa);
    case DType::i32: return unary_t<int32_t>(op, out, a, n, so, sa);
    case DType::i64: return unary_t<int64_t>(op, out, a, n, so, sa);
    case DType::b8: case DType::u8: return unary_t<uint8_t>(op, out, a, n, so, sa);
    case DType::i8: return unary_t<int8_t>(op, out, a, n, so, sa);
    case DType::i16: return unary_t<int16_t>(op, out, a, n, so, sa);
    default: return;
  }
}

// ---- casts: every pair of the 10 dtypes through a common double/int64 path for the rare
// pairs and direct loops for the common ones.
template <class T> inline T load_as(const char* p, DType dt) {
  switch (dt) {
    case DType::f32: return T(*reinterpret_cast<const float*>(p));
    case DType::f64: return T(*reinterpret_cast<const double*>(p));
    case DType::f16: return T(f16_to_f32(*reinterpret_cast<const uint16_t*>(p)));
    case DType::bf16: return T(bf16_to_f32(*reinterpret_cast<const uint16_t*>(p)));
    case DType::i32: return T(*reinterpret_cast<const int32_t*>(p));
    case DType::i64: return T(*reinterpret_cast<const int64_t*>(p));
    case DType::b8: return T(*reinterpret_cast<const uint8_t*>(p) != 0);
    case DType::u8: return T(*reinterpret_cast<const uint8_t*>(p));
    case DType::i8: return T(*reinterpret_cast<const int8_t*>(p));
    case DType::i16: return T(*reinterpret_cast<const int16_t*>(p));
  }
  return T(0);
}

template <class O, class I>
void cast_row(char* out, const char* in, int64_t n, int64_t so, int64_t sa) {
  O* o = reinterpret_cast<O*>(out);
  const I* a = reinterpret_cast<const I*>(in);
  if constexpr (std::is_same_v<O, bool>) row1(o, a, n, so, sa, [](I x) { return x != I(0); });
  else if constexpr (std::is_integral_v<O> && sizeof(O) < 4 && std::is_floating_point_v<I>)
    row1(o, a, n, so, sa, [](I x) { return O(int64_t(x)); });  // wraps as PyTorch's casts do
  else row1(o, a, n, so, sa, [](I x) { return O(x); });
}

template <class I>
void cast_from(DType dto, char* out, const char* in, int64_t n, int64_t so, int64_t sa) {
  switch (dto) {
    case DType::f32: return cast_row<float, I>(out, in, n, so, sa);
    case DType::f64: return cast_row<double, I>(out, in, n, so, sa);
    case DType::i32: return cast_row<int32_t, I>(out, in, n, so, sa);
    case DType::i64: return cast_row<int64_t, I>(out, in, n, so, sa);
    case DType::b8: return cast_row<bool, I>(out, in, n, so, sa);
    case DType::u8: return cast_row<uint8_t, I>(out, in, n, so, sa);
    case DType::i8: return cast_row<int8_t, I>(out, in, n, so, sa);
    case DType::i16: return cast_row<int16_t, I>(out, in, n, so, sa);
    default: return;
  }
}

void cast_k(DType dto, DType dta, char* out, const char* in, int64_t n, int64_t so, int64_t sa) {
  if (dto == dta) {
    size_t es = dtype_size(dto);
    if (so == 1 && sa == 1) { std::memcpy(out, in, size_t(n) * es); return; }
    switch (es) {
      case 1: return row1(reinterpret_cast<uint8_t*>(out), reinterpret_cast<const uint8_t*>(in), n, so, sa, [](uint8_t x) { return x; });
      case 2: return row1(reinterpret_cast<uint16_t*>(out), reinterpret_cast<const uint16_t*>(in), n, so, sa, [](uint16_t x) { return x; });
      case 4: return row1(reinterpret_cast<uint32_t*>(out), reinterpret_cast<const uint32_t*>(in), n, so, sa, [](uint32_t x) { return x; });
      default: return row1(reinterpret_cast<uint64_t*>(out), reinterpret_cast<const uint64_t*>(in), n, so, sa, [](uint64_t x) { return x; });
    }
  }
  if (dto == DType::f16 || dto == DType::bf16) {
    uint16_t* o = reinterpret_cast<uint16_t*>(out);
    int64_t es = int64_t(dtype_size(dta));
    if (dta == DType::f32) {
      const float* a = reinterpret_cast<const float*>(in);
      if (dto == DType::bf16) row1(o, a, n, so, sa, [](float x) { return f32_to_bf16(x); });
      else row1(o, a, n, so, sa, [](float x) { return f32_to_f16(x); });
      return;
    }
    for (int64_t i = 0; i < n; ++i) {
      float x = load_as<float>(in + i * sa * es, dta);
      o[i * so] = dto == DType::bf16 ? f32_to_bf16(x) : f32_to_f16(x);
    }
    return;
  }
  switch (dta) {
    case DType::f32: return cast_from<float>(dto, out, in, n, so, sa);
    case DType::f64: return cast_from<double>(dto, out, in, n, so, sa);
    case DType::i32: return cast_from<int32_t>(dto, out, in, n, so, sa);
    case DType::i64: return cast_from<int64_t>(dto, out, in, n, so, sa);
    case DType::b8: return cast_from<uint8_t>(dto, out, in, n, so, sa);
    case DType::u8: return cast_from<uint8_t>(dto, out, in, n, so, sa);
    case DType::i8: return cast_from<int8_t>(dto, out, in, n, so, sa);
    case DType::i16: return cast_from<int16_t>(dto, out, in, n, so, sa);
    case DType::f16: case DType::bf16: {
      const uint16_t* a = reinterpret_cast<const uint16_t*>(in);
      if (dto == DType::f32) {
        float* o = reinterpret_cast<float*>(out);
        if (dta == DType::bf16) row1(o, a, n, so, sa, [](uint16_t x) { return bf16_to_f32(x); });
        else row1(o, a, n, so, sa, [](uint16_t x) { return f16_to_f32(x); });
        return;
      }
      int64_t eo = int64_t(dtype_size(dto));
      for (int64_t i = 0; i < n; ++i) {
        float x = dta == DType::bf16 ? bf16_to_f32(a[i * sa]) : f16_to_f32(a[i * sa]);
        cast_k(dto, DType::f32, out + i * so * eo, reinterpret_cast<const char*>(&x), 1, 1, 1);
      }
      return;
    }
  }
}

template <class T>
void where_t(char* out, const char* c, const char* ca, const char* cb, int64_t n, int64_t so, int64_t sc, int64_t sa, int64_t sb) {
  T* o = reinterpret_cast<T*>(out);
  const T* a = reinterpret_cast<const T*>(ca);
  const T* b = reinterpret_cast<const T*>(cb);
  const uint8_t* m = reinterpret_cast<const uint8_t*>(c);
  // Contiguous rows, and a scalar (broadcast) branch, get loops of their own that vectorise;
  // the strided form branched on the mask (where (12, 64, 512), random mask: 450 us, 13x
  // PyTorch's time).
  if (so == 1 && sc == 1 && sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) {  // both loaded: a conditional load stays a branch
      const T x = a[i], y = b[i];
      o[i] = m[i] ? x : y;
    }
  } else if (so == 1 && sc == 1 && sa == 1 && sb == 0) {
    const T bv = *b;
    for (int64_t i = 0; i < n; ++i) o[i] = m[i] ? a[i] : bv;
  } else if (so == 1 && sc == 1 && sa == 0 && sb == 1) {
    const T av = *a;
    for (int64_t i = 0; i < n; ++i) o[i] = m[i] ? av : b[i];
  } else {
    for (int64_t i = 0; i < n; ++i) o[i * so] = m[i * sc] ? a[i * sa] : b[i * sb];
  }
}

void where_k(DType dt, char* out, const char* c, const char* a, const char* b, int64_t n, int64_t so, int64_t sc,
             int64_t sa, int64_t sb) {
  switch (dtype_size(dt)) {
    case 1: return where_t<uint8_t>(out, c, a, b, n, so, sc, sa, sb);
    case 2: return where_t<uint16_t>(out, c, a, b, n, so, sc, sa, sb);
    case 4: return where_t<uint32_t>(out, c, a, b, n, so, sc, sa, sb);
    default: return where_t<uint64_t>(out, c, a, b, n, so, sc, sa, sb);
  }
}

template <class T>
void clamp_t(char* out, const char* ca, int64_t n, int64_t so, int64_t sa, double lo, double hi) {
  // bounds beyond T's range (infinities included) saturate
  constexpr double kLo = double(std::numeric_limits<T>::lowest()), kHi = double(std::numeric_limits<T>::max());
  const auto bound = [&](double v) { return v <= kLo ? std::numeric_limits<T>::lowest() : v >= kHi ? std::numeric_limits<T>::max() : T(v); };
  const T l = bound(lo), h = bound(hi);
  row1(reinterpret_cast<T*>(out), reinterpret_cast<const T*>(ca), n, so, sa, [l, h](T x) {
    T y = x < l ? l : x;
    y = y > h ? h : y;
    return x != x ? x : y;
  });
}

void clamp_k(DType dt, char* out, const char* a, int64_t n, int64_t so, int64_t sa, double lo, double hi) {
  switch (dt) {
    case DType::f32: return clamp_t<float>(out, a, n, so, sa, lo, hi);
    case DType::f64: return clamp_t<double>(out, a, n, so, sa, lo, hi);
    case DType::i32: return clamp_t<int32_t>(out, a, n, so, sa, lo, hi);
    case DType::i64: return clamp_t<int64_t>(out, a, n, so, sa, lo, hi);
    case DType::u8: return clamp_t<uint8_t>(out, a, n, so, sa, lo, hi);
    case DType::i8: return clamp_t<int8_t>(out, a, n, so, sa, lo, hi);
    case DType::i16: return clamp_t<int16_t>(out, a, n, so, sa, lo, hi);
    default: return;
  }
}

// Activations with parameters: PyTorch's formulas, its comparisons deciding the sides (a NaN
// takes the side the comparison sends it to, and stays NaN there but in the gradient selects).
template <class T>
void act_t(ActOp op, char* out, const char* ca, const char* cg, int64_t n, int64_t so, int64_t sa, int64_t sg,
           const double* p) {
  T* o = reinterpret_cast<T*>(out);
  const T* a = reinterpret_cast<const T*>(ca);
  const T* g = reinterpret_cast<const T*>(cg);
  const Rows r{n, so, sa, sg};
  const T p0 = T(p[0]), p1 = T(p[1]), p2 = T(p[2]);
  const T three = T(3), six = T(6);
  switch (op) {
    case ActOp::leaky_relu: return row1(o, a, n, so, sa, [p0](T x) { return x > T(0) ? x : x * p0; });
    case ActOp::leaky_relu_bwd: return row2(o, a, g, r, [p0](T x, T d) { return x > T(0) ? d : d * p0; });
    case ActOp::elu: {  // alpha scale, scale, input_scale
      const T neg = p0 * p1;
      return row1(o, a, n, so, sa, [neg, p1, p2](T x) {
        const T m = FASTDL_VM_OR_LIBM(expm1)(x * p2);  // used on the x <= 0 side only
        return x <= T(0) ? m * neg : x * p1;
      });
    }
    case ActOp::elu_bwd: {
      const T neg = p0 * p1 * p2;
      return row2(o, a, g, r, [neg, p1, p2](T x, T d) {
        const T e = t_exp(x * p2);  // used on the x <= 0 side only
        return x <= T(0) ? d * neg * e : d * p1;
      });
    }
    case ActOp::hardswish:
      return row1(o, a, n, so, sa, [three, six](T x) {
        const T c = x + three, h = c < T(0) ? T(0) : c > six ? six : c;  // a NaN stays (ATen's max / min)
        return x * h / six;
      });
    case ActOp::hardswish_bwd:  // PyTorch's sides: 0 at -3, g at 3, and g at a NaN (its scalar path's;
                                // its vector path gives NaN there, so tensors of 64+ elements)
      return row2(o, a, g, r, [three](T x, T d) {
        return x <= -three ? T(0) : x < three ? d * (x / three + T(0.5)) : d;
      });
    case ActOp::hardsigmoid:
      return row1(o, a, n, so, sa, [three, six](T x) {
        const T c = x + three;
        return (c < T(0) ? T(0) : c > six ? six : c) / six;
      });
    case ActOp::hardsigmoid_bwd: {
      const T sixth = T(1.0f / 6.0f);  // PyTorch's one_sixth: a float, in float64 too
      return row2(o, a, g, r, [three, sixth](T x, T d) { return x > -three && x < three ? d * sixth : T(0); });
    }
    case ActOp::nan_to_num:
      return row1(o, a, n, so, sa, [p0, p1, p2](T x) {
        return x != x ? p0 : x == std::numeric_limits<T>::infinity() ? p1 : x == -std::numeric_limits<T>::infinity() ? p2 : x;
      });
    case ActOp::nan_to_num_bwd:  // the gradient where x is finite, 0 elsewhere (PyTorch's)
      return row2(o, a, g, r, [](T x, T d) { return x - x == T(0) ? d : T(0); });
    case ActOp::hardtanh: return clamp_t<T>(out, ca, n, so, sa, p[0], p[1]);
    case ActOp::hardtanh_bwd:
      return row2(o, a, g, r, [p0, p1](T x, T d) { return x > p0 && x < p1 ? d : T(0); });
    case ActOp::threshold: return row1(o, a, n, so, sa, [p0, p1](T x) { return x <= p0 ? p1 : x; });
    case ActOp::threshold_bwd: return row2(o, a, g, r, [p0](T x, T d) { return x <= p0 ? T(0) : d; });
    case ActOp::hardshrink: return row1(o, a, n, so, sa, [p0](T x) { return x >= -p0 && x <= p0 ? T(0) : x; });
    case ActOp::softshrink:
      return row1(o, a, n, so, sa, [p0](T x) { return x > p0 ? x - p0 : x < -p0 ? x + p0 : x != x ? x : T(0); });
    case ActOp::hardshrink_bwd:  // both: g outside [-lambd, lambd], 0 inside and at a NaN (PyTorch's vector path)
    case ActOp::softshrink_bwd:
      return row2(o, a, g, r, [p0](T x, T d) { return x < -p0 || x > p0 ? d : T(0); });
    default: return;
  }
}

void act_k(ActOp op, DType dt, char* out, const char* a, const char* g, int64_t n, int64_t so, int64_t sa, int64_t sg,
           const double* p) {
  if (dt == DType::f64) act_t<double>(op, out, a, g, n, so, sa, sg, p);
  else act_t<float>(op, out, a, g, n, so, sa, sg, p);
}

template <class T>
void transpose_t(T* dst, const T* src, int64_t rows, int64_t cols, int64_t dr, int64_t sc) {
  int64_t i0 = 0;
#if defined(FASTDL_ISA_avx512) || defined(FASTDL_ISA_avx2)
  if constexpr (sizeof(T) == 4 || sizeof(T) == 8) {  // blocks of B source rows (j) by B elements (i)
    using F = std::conditional_t<sizeof(T) == 4, float, double>;
    constexpr int64_t B = 32 / sizeof(T);
    const F* s = reinterpret_cast<const F*>(src);
    F* d = reinterpret_cast<F*>(dst);
    for (; i0 + B <= rows; i0 += B)
      for (int64_t j0 = 0; j0 < cols; j0 += B)
        tr_block(s + i0 + j0 * sc, sc, d + i0 * dr + j0, dr, int(std::min(B, cols - j0)));
  }
#endif
  for (int64_t j0 = 0; j0 < cols; j0 += 8) {  // the rows left, 8 source lines at a time
    const int64_t j1 = std::min(cols, j0 + 8);
    for (int64_t i = i0; i < rows; ++i)
      for (int64_t j = j0; j < j1; ++j) dst[i * dr + j] = src[i + j * sc];
  }
}

void transpose_k(size_t es, char* dst, const char* src, int64_t rows, int64_t cols, int64_t dr, int64_t sc) {
  switch (es) {
    case 8: return transpose_t(reinterpret_cast<int64_t*>(dst), reinterpret_cast<const int64_t*>(src), rows, cols, dr, sc);
    case 4: return transpose_t(reinterpret_cast<int32_t*>(dst), reinterpret_cast<const int32_t*>(src), rows, cols, dr, sc);
    case 2: return transpose_t(reinterpret_cast<int16_t*>(dst), reinterpret_cast<const int16_t*>(src), rows, cols, dr, sc);
    default: return transpose_t(reinterpret_cast<int8_t*>(dst), reinterpret_cast<const int8_t*>(src), rows, cols, dr, sc);
  }
}

}  // namespace

const ElementwiseKernels& elementwise_table() {
  static const ElementwiseKernels k{binary_k, unary_k, cast_k, where_k, clamp_k, act_k, binary_rows_k, transpose_k};
  return k;
}

}  // namespace fastdl::cpu::FASTDL_ISA_NS
