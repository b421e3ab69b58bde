// Standalone validation of the CUDA backend (csrc/cuda/*.cu) against plain CPU loops in double.
// Built by bench/gpu.sh with nvcc directly (no Python, no core library):
//   nvcc -std=c++17 -O2 -arch=sm_90 -I csrc bench/native/cuda_check.cu csrc/cuda/*.cu -o cuda_check
// Prints one PASS/FAIL line per case and exits non-zero when anything fails.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cuda_timing.cuh"
#include "core/error.h"
#include "cuda/cuda_api.h"
#include "kernels/selective_scan.h"

using namespace fastdl;
namespace cu = fastdl::cuda;

namespace {

int g_pass = 0, g_fail = 0;
void report(const std::string& name, bool ok, const std::string& detail = "") {
  std::printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", name.c_str(), detail.empty() ? "" : "  ", detail.c_str());
  (ok ? g_pass : g_fail)++;
}

const char* dname(DType t) {
  static const char* n[] = {"f32", "f64", "f16", "bf16", "i32", "i64", "bool"};
  return n[int(t)];
}
const DType kAll[] = {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i32, DType::i64, DType::b8};
bool is_float(DType t) { return t == DType::f32 || t == DType::f64 || t == DType::f16 || t == DType::bf16; }

// ---- host storage <-> double (the CPU side of every comparison)
double load(DType t, const void* p, int64_t i) {
  switch (t) {
    case DType::f32: return static_cast<const float*>(p)[i];
    case DType::f64: return static_cast<const double*>(p)[i];
    case DType::f16: return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::bf16: return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::i32: return static_cast<const int32_t*>(p)[i];
    case DType::i64: return double(static_cast<const int64_t*>(p)[i]);
    case DType::b8: return static_cast<const uint8_t*>(p)[i];
  }
  return 0;
}
void store(DType t, void* p, int64_t i, double v) {
  switch (t) {
    case DType::f32: static_cast<float*>(p)[i] = float(v); break;
    case DType::f64: static_cast<double*>(p)[i] = v; break;
    case DType::f16: static_cast<uint16_t*>(p)[i] = f32_to_f16(float(v)); break;
    case DType::bf16: static_cast<uint16_t*>(p)[i] = f32_to_bf16(float(v)); break;
    case DType::i32: static_cast<int32_t*>(p)[i] = int32_t(v); break;
    case DType::i64: static_cast<int64_t*>(p)[i] = int64_t(v); break;
    case DType::b8: static_cast<uint8_t*>(p)[i] = v != 0; break;
  }
}

struct Host {
  DType dt;
  std::vector<uint8_t> bytes;
  Host(DType t, int64_t n) : dt(t), bytes(size_t(n) * dtype_size(t)) {}
  double get(int64_t i) const { return load(dt, bytes.data(), i); }
  void set(int64_t i, double v) { store(dt, bytes.data(), i, v); }
  int64_t size() const { return int64_t(bytes.size() / dtype_size(dt)); }
};

struct Dev {
  void* p;
  size_t n;
  explicit Dev(size_t nbytes) : p(cu::alloc(nbytes, 0)), n(nbytes) {}
  Dev(const Host& h) : Dev(h.bytes.size()) { cu::copy_h2d(p, h.bytes.data(), n, 0); }
  ~Dev() { cu::free(p, n, 0); }
  Dev(const Dev&) = delete;
  Host to_host(DType t) const {
    Host h(t, int64_t(n / dtype_size(t)));
    cu::copy_d2h(h.bytes.data(), p, n, 0);
    return h;
  }
};

std::mt19937_64 rng(1234);
double uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); }
// Values exactly representable in `t`, drawn from [lo, hi] (integers for integer types).
Host random_host(DType t, int64_t n, double lo, double hi) {
  Host h(t, n);
  for (int64_t i = 0; i < n; ++i) {
    double v = uniform(lo, hi);
    if (!is_float(t)) v = std::floor(v);
    if (t == DType::b8) v = uniform(0, 1) < 0.5;
    h.set(i, v);
  }
  return h;
}

cu::Strided strided(int ndim, const int64_t* shape, std::initializer_list<std::vector<int64_t>> strides) {
  cu::Strided it;
  it.ndim = ndim;
  it.numel = 1;
  for (int d = 0; d < ndim; ++d) it.shape[d] = shape[d], it.numel *= shape[d];
  int k = 0;
  for (const auto& s : strides) {
    for (int d = 0; d < ndim; ++d) it.strides[k][d] = s[size_t(d)];
    ++k;
  }
  return it;
}

void tolerance(DType t, double& rtol, double& atol) {
  switch (t) {
    case DType::f32: rtol = 2e-5; atol = 1e-6; break;
    case DType::f64: rtol = 1e-11; atol = 1e-13; break;
    case DType::f16: rtol = 3e-3; atol = 1e-4; break;
    case DType::bf16: rtol = 1.6e-2; atol = 1e-3; break;
    default: rtol = 0; atol = 0; break;
  }
}
bool close(double got, double ref, DType t) {
  if (std::isnan(ref)) return std::isnan(got);
  if (std::isinf(ref)) return got == ref;
  double rtol, atol;
  tolerance(t, rtol, atol);
  return std::fabs(got - ref) <= atol + rtol * std::fabs(ref);
}
std::string mismatch(int64_t i, double got, double ref) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "first mismatch at %lld: got %.9g want %.9g", (long long)i, got, ref);
  return buf;
}
// Rounds a double result into dtype t the way a store would, back to double.
double round_to(DType t, double v) {
  Host h(t, 1);
  h.set(0, v);
  return h.get(0);
}

// ---- CPU references in double, written from the op definitions (PyTorch semantics)
double py_mod(double a, double b) {
  double r = std::fmod(a, b);
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}
double py_floordiv(double a, double b) {
  if (b == 0) return a / b;
  double mod = std::fmod(a, b), div = (a - mod) / b;
  if (mod != 0 && ((b < 0) != (mod < 0))) div -= 1;
  if (div == 0) return std::copysign(0.0, a / b);
  double fl = std::floor(div);
  return div - fl > 0.5 ? fl + 1 : fl;
}
// Integer division by zero gives 0 on the device (no trap); mirror that here.
int64_t int_mod(int64_t a, int64_t b) {
  if (b == 0) return 0;
  int64_t r = a % b;
  return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}
int64_t int_floordiv(int64_t a, int64_t b) {
  if (b == 0) return 0;
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}
double sigm(double x) { return 1 / (1 + std::exp(-x)); }

double ref_binary(BinaryOp op, double a, double b, bool integral) {
  const double k0 = std::sqrt(2 / M_PI), k1 = 0.044715;
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div: return a / b;
    case BinaryOp::pow: return std::pow(a, b);
    case BinaryOp::maximum: return (std::isnan(a) || std::isnan(b)) ? NAN : std::max(a, b);
    case BinaryOp::minimum: return (std::isnan(a) || std::isnan(b)) ? NAN : std::min(a, b);
    case BinaryOp::atan2: return std::atan2(a, b);
    case BinaryOp::remainder: return integral ? double(int_mod(int64_t(a), int64_t(b))) : py_mod(a, b);
    case BinaryOp::floor_divide: return integral ? double(int_floordiv(int64_t(a), int64_t(b))) : py_floordiv(a, b);
    case BinaryOp::eq: return a == b;
    case BinaryOp::ne: return a != b;
    case BinaryOp::lt: return a < b;
    case BinaryOp::le: return a <= b;
    case BinaryOp::gt: return a > b;
    case BinaryOp::ge: return a >= b;
    case BinaryOp::logical_and: return (a != 0) && (b != 0);
    case BinaryOp::logical_or: return (a != 0) || (b != 0);
    case BinaryOp::logical_xor: return (a != 0) != (b != 0);
    case BinaryOp::relu_bwd: return a > 0 ? b : 0;
    case BinaryOp::sigmoid_bwd: return b * a * (1 - a);
    case BinaryOp::tanh_bwd: return b * (1 - a * a);
    case BinaryOp::gelu_bwd:
      return b * (0.5 * (1 + std::erf(a / std::sqrt(2.0))) + a * std::exp(-0.5 * a * a) / std::sqrt(2 * M_PI));
    case BinaryOp::gelu_tanh_bwd: {
      double u = k0 * (a + k1 * a * a * a), t = std::tanh(u);
      return b * (0.5 * (1 + t) + 0.5 * a * (1 - t * t) * k0 * (1 + 3 * k1 * a * a));
    }
    case BinaryOp::silu_bwd: {
      double s = sigm(a);
      return b * s * (1 + a * (1 - s));
    }
    case BinaryOp::softplus_bwd: return a > 20 ? b : b * sigm(a);
    case BinaryOp::bitwise_and: return double(int64_t(a) & int64_t(b));
    case BinaryOp::bitwise_or: return double(int64_t(a) | int64_t(b));
    case BinaryOp::bitwise_xor: return double(int64_t(a) ^ int64_t(b));
    default: return NAN;
  }
}

double ref_unary(UnaryOp op, double x) {
  const double k0 = std::sqrt(2 / M_PI), k1 = 0.044715;
  switch (op) {
    case UnaryOp::neg: return -x;
    case UnaryOp::exp: return std::exp(x);
    case UnaryOp::log: return std::log(x);
    case UnaryOp::sqrt: return std::sqrt(x);
    case UnaryOp::rsqrt: return 1 / std::sqrt(x);
    case UnaryOp::abs: return std::fabs(x);
    case UnaryOp::sin: return std::sin(x);
    case UnaryOp::cos: return std::cos(x);
    case UnaryOp::tan: return std::tan(x);
    case UnaryOp::tanh: return std::tanh(x);
    case UnaryOp::sigmoid: return sigm(x);
    case UnaryOp::relu: return x < 0 ? 0 : x;
    case UnaryOp::gelu: return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    case UnaryOp::gelu_tanh: return 0.5 * x * (1 + std::tanh(k0 * (x + k1 * x * x * x)));
    case UnaryOp::silu: return x * sigm(x);
    case UnaryOp::softplus: return x > 20 ? x : std::log1p(std::exp(x));
    case UnaryOp::log1p: return std::log1p(x);
    case UnaryOp::expm1: return std::expm1(x);
    case UnaryOp::sign: return (x > 0) - (x < 0);
    case UnaryOp::floor: return std::floor(x);
    case UnaryOp::ceil: return std::ceil(x);
    case UnaryOp::round: return std::nearbyint(x);
    case UnaryOp::trunc: return std::trunc(x);
    case UnaryOp::reciprocal: return 1 / x;
    case UnaryOp::square: return x * x;
    case UnaryOp::cube: return x * x * x;
    case UnaryOp::erf: return std::erf(x);
    case UnaryOp::exp2: return std::exp2(x);
    case UnaryOp::log2: return std::log2(x);
    case UnaryOp::log10: return std::log10(x);
    case UnaryOp::asin: return std::asin(x);
    case UnaryOp::acos: return std::acos(x);
    case UnaryOp::atan: return std::atan(x);
    case UnaryOp::sinh: return std::sinh(x);
    case UnaryOp::cosh: return std::cosh(x);
    case UnaryOp::logical_not: return x == 0;
    case UnaryOp::isnan: return std::isnan(x);
    case UnaryOp::isinf: return std::isinf(x);
    case UnaryOp::isfinite: return std::isfinite(x);
    default: return NAN;
  }
}

// ---------------------------------------------------------------- device and allocator
void test_device() {
  void* p1 = cu::alloc(3000, 0);
  cu::free(p1, 3000, 0);
  void* p2 = cu::alloc(2900, 0);
  report("allocator: small block reused from its size class", p1 == p2);
  cu::free(p2, 2900, 0);
  void* q1 = cu::alloc(size_t(5) << 20, 0);
  cu::free(q1, size_t(5) << 20, 0);
  void* q2 = cu::alloc((size_t(5) << 20) + 1000, 0);
  report("allocator: large block reused (2 MiB classes)", q1 == q2);
  cu::free(q2, (size_t(5) << 20) + 1000, 0);
  try {
    cu::alloc(size_t(1) << 50, 0);
    report("allocator: 1 PiB request throws OutOfMemory", false, "no exception");
  } catch (const OutOfMemory& e) {
    report("allocator: 1 PiB request throws OutOfMemory", true, e.what());
  }
  try {
    cu::set_device(cu::device_count());
    report("set_device out of range throws DeviceError", false);
  } catch (const DeviceError&) {
    report("set_device out of range throws DeviceError", true);
  }
  cu::empty_cache();
  Host h = random_host(DType::f32, 4099, -1, 1);
  Dev a(h), b(h.bytes.size());
  cu::copy_d2d(b.p, a.p, h.bytes.size(), 0);
  Host back = b.to_host(DType::f32);
  report("copy h2d -> d2d -> d2h round trip", back.bytes == h.bytes);
  cu::synchronize(0);
}

// ---------------------------------------------------------------- copy_strided and fill
void test_copy() {
  const int64_t R = 37, Cn = 53;
  for (DType to : kAll)
    for (DType from : kAll) {
      Host in = random_host(from, R * Cn, -100, 100);
      Dev din(in), dout(size_t(R * Cn) * dtype_size(to)), dcont(size_t(R * Cn) * dtype_size(to));
      const int64_t shape[2] = {Cn, R};  // out (Cn, R) = in (R, Cn) transposed
      cu::copy_strided(dout.p, to, din.p, from, strided(2, shape, {{R, 1}, {1, Cn}}), 0);
      const int64_t flat[1] = {R * Cn};
      cu::copy_strided(dcont.p, to, din.p, from, strided(1, flat, {{1}, {1}}), 0);
      Host out = dout.to_host(to), cont = dcont.to_host(to);
      std::string bad;
      for (int64_t i = 0; i < Cn && bad.empty(); ++i)
        for (int64_t j = 0; j < R && bad.empty(); ++j) {
          const double want = round_to(to, in.get(j * Cn + i)), got = out.get(i * R + j);
          if (got != want) bad = "strided " + mismatch(i * R + j, got, want);
        }
      for (int64_t i = 0; i < R * Cn && bad.empty(); ++i)
        if (cont.get(i) != round_to(to, in.get(i))) bad = "contiguous " + mismatch(i, cont.get(i), round_to(to, in.get(i)));
      report(std::string("copy_strided ") + dname(from) + " -> " + dname(to), bad.empty(), bad);
    }
}

void test_fill() {
  for (DType t : kAll) {
    const int64_t n = 1001;
    Host init(t, 2 * n);
    for (int64_t i = 0; i < 2 * n; ++i) init.set(i, 7);
    Dev d(init);
    const int64_t shape[1] = {n};
    cu::fill(d.p, t, 3.75, strided(1, shape, {{2}}), 0);  // every other element
    Host out = d.to_host(t);
    bool ok = true;
    for (int64_t i = 0; i < 2 * n; ++i) ok &= out.get(i) == (i % 2 ? round_to(t, 7) : round_to(t, 3.75));
    Dev c(size_t(n) * dtype_size(t));
    cu::fill(c.p, t, -2.5, strided(1, shape, {{1}}), 0);
    Host outc = c.to_host(t);
    for (int64_t i = 0; i < n; ++i) ok &= outc.get(i) == round_to(t, -2.5);
    report(std::string("fill ") + dname(t) + " (strided with sentinels, contiguous)", ok);
  }
}

// ---------------------------------------------------------------- binary
bool float_only(BinaryOp op) {
  return op == BinaryOp::div || op == BinaryOp::atan2 || (op >= BinaryOp::relu_bwd && op <= BinaryOp::softplus_bwd);
}
bool bool_ok(BinaryOp op) {
  return op == BinaryOp::add || op == BinaryOp::mul || op == BinaryOp::maximum || op == BinaryOp::minimum ||
         is_comparison(op);
}

// Checks out[i] against ref(x[i], y[i]) for n elements.
std::string check_binary(BinaryOp op, DType t, const Host& out, const std::vector<double>& x,
                         const std::vector<double>& y, const char* layout) {
  const DType ot = is_comparison(op) ? DType::b8 : t;
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = round_to(ot, ref_binary(op, x[i], y[i], !is_float(t))), got = out.get(int64_t(i));
    if (!close(got, want, ot)) return std::string(layout) + " " + mismatch(int64_t(i), got, want);
  }
  return "";
}

void test_binary() {
  const DType types[] = {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i32, DType::i64, DType::b8};
  for (int o = 0; o < int(BinaryOp::count); ++o) {
    const BinaryOp op = BinaryOp(o);
    for (DType t : types) {
      if (!is_float(t) && float_only(op)) continue;
      if (t == DType::b8 && !bool_ok(op)) continue;
      if (is_bitwise(op) && (is_float(t) || t == DType::b8)) continue;  // integers only (bool: logical ops)
      const DType ot = is_comparison(op) ? DType::b8 : t;
      const int64_t n = 1003, R = 31, Cn = 29;
      Host a(t, n), b(t, n);
      for (int64_t i = 0; i < n; ++i) {
        double x = uniform(-3, 3), y = (uniform(0, 1) < 0.5 ? -1 : 1) * uniform(0.25, 3);
        if (!is_float(t)) {
          x = std::floor(uniform(-20, 21));
          y = (uniform(0, 1) < 0.5 ? -1 : 1) * std::floor(uniform(1, 8));
          if (op == BinaryOp::pow) x = std::floor(uniform(-4, 5)), y = std::floor(uniform(0, 7));
          if (t == DType::b8) x = uniform(0, 1) < 0.5, y = uniform(0, 1) < 0.5;
        }
        if (i % 7 == 0 && is_comparison(op)) y = x;  // exercise equality
        a.set(i, x);
        b.set(i, y);
      }
      std::vector<double> xs(static_cast<size_t>(n)), ys(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) xs[size_t(i)] = a.get(i), ys[size_t(i)] = b.get(i);
      Dev da(a), db(b), dout(size_t(n) * dtype_size(ot));
      std::string bad;
      // 1. contiguous (vector path plus tail)
      const int64_t flat[1] = {n};
      cu::binary(op, t, dout.p, da.p, db.p, strided(1, flat, {{1}, {1}, {1}}), 0);
      bad = check_binary(op, t, dout.to_host(ot), xs, ys, "contiguous");
      // 2. broadcast: a (R, 1) op b (1, Cn) -> out (R, Cn)
      if (bad.empty()) {
        const int64_t shape[2] = {R, Cn};
        cu::binary(op, t, dout.p, da.p, db.p, strided(2, shape, {{Cn, 1}, {1, 0}, {0, 1}}), 0);
        std::vector<double> bx, by;
        for (int64_t i = 0; i < R; ++i)
          for (int64_t j = 0; j < Cn; ++j) bx.push_back(xs[size_t(i)]), by.push_back(ys[size_t(j)]);
        bad = check_binary(op, t, dout.to_host(ot), bx, by, "broadcast");
      }
      // 3. tensor op scalar (contiguous) and scalar op tensor (strided: every other element)
      const double s = is_float(t) ? 1.75 : (t == DType::b8 ? 1 : 3);
      if (bad.empty()) {
        cu::binary_scalar(op, t, dout.p, da.p, s, false, strided(1, flat, {{1}, {1}}), 0);
        bad = check_binary(op, t, dout.to_host(ot), xs, std::vector<double>(size_t(n), s), "tensor-scalar");
      }
      if (bad.empty() && !(op == BinaryOp::pow && !is_float(t))) {
        const int64_t half[1] = {n / 2};
        cu::binary_scalar(op, t, dout.p, da.p, s, true, strided(1, half, {{1}, {2}}), 0);
        std::vector<double> ev;
        for (int64_t i = 0; i < n / 2; ++i) ev.push_back(xs[size_t(2 * i)]);
        Host out = dout.to_host(ot);
        for (size_t i = 0; i < ev.size() && bad.empty(); ++i) {
          const double want = round_to(ot, ref_binary(op, s, ev[i], !is_float(t))), got = out.get(int64_t(i));
          if (!close(got, want, ot)) bad = "scalar-tensor " + mismatch(int64_t(i), got, want);
        }
      }
      report(std::string("binary op ") + std::to_string(o) + " " + dname(t), bad.empty(), bad);
    }
  }
  // NaN propagation in maximum / minimum
  Host a(DType::f32, 8), b(DType::f32, 8);
  for (int i = 0; i < 8; ++i) a.set(i, i % 3 == 0 ? NAN : i), b.set(i, i % 4 == 1 ? NAN : 8 - i);
  Dev da(a), db(b), dout(8 * 4);
  const int64_t flat[1] = {8};
  bool ok = true;
  for (BinaryOp op : {BinaryOp::maximum, BinaryOp::minimum}) {
    cu::binary(op, DType::f32, dout.p, da.p, db.p, strided(1, flat, {{1}, {1}, {1}}), 0);
    Host out = dout.to_host(DType::f32);
    for (int i = 0; i < 8; ++i) ok &= close(out.get(i), ref_binary(op, a.get(i), b.get(i), false), DType::f32);
  }
  report("binary maximum/minimum propagate NaN", ok);
}

// ---------------------------------------------------------------- unary
bool int_unary(UnaryOp op) {
  switch (op) {
    case UnaryOp::neg: case UnaryOp::abs: case UnaryOp::sign: case UnaryOp::square: case UnaryOp::relu:
    case UnaryOp::floor: case UnaryOp::ceil: case UnaryOp::round: case UnaryOp::trunc: return true;
    default: return is_predicate(op);
  }
}

void test_unary() {
  const DType types[] = {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i32, DType::i64};
  for (int o = 0; o < int(UnaryOp::count); ++o) {
    const UnaryOp op = UnaryOp(o);
    const DType* end = types + 6;
    for (const DType* tp = types; tp != end; ++tp) {
      const DType t = *tp;
      if (!is_float(t) && !int_unary(op)) continue;
      const DType ot = is_predicate(op) ? DType::b8 : t;
      double lo = -4, hi = 4;
      if (op == UnaryOp::log || op == UnaryOp::sqrt || op == UnaryOp::rsqrt || op == UnaryOp::log2 ||
          op == UnaryOp::log10 || op == UnaryOp::log1p || op == UnaryOp::reciprocal)
        lo = 0.1;
      if (op == UnaryOp::asin || op == UnaryOp::acos) lo = -0.95, hi = 0.95;
      if (op == UnaryOp::tan) lo = -1.4, hi = 1.4;
      const int64_t R = 33, Cn = 31, n = R * Cn;
      Host a(t, n + 1);
      for (int64_t i = 0; i < n + 1; ++i) {
        double x = uniform(lo, hi);
        if (op == UnaryOp::round) x = std::floor(x * 2) / 2;  // exact halves: ties to even
        if (!is_float(t)) x = std::floor(uniform(-20, 21));
        if (is_float(t) && is_predicate(op) && i % 5 == 0) x = (i % 3 == 0) ? NAN : (i % 3 == 1 ? INFINITY : -INFINITY);
        if (op == UnaryOp::logical_not && i % 4 == 0) x = 0;
        a.set(i, x);
      }
      Dev da(a), dout(size_t(n + 1) * dtype_size(ot));
      std::string bad;
      // mode 0: out[i] = op(in[i + in_off]); 1: transposed; 2: reversed (in[n - 1 - i]).
      auto check_all = [&](const char* layout, int64_t in_off, int mode) {
        Host out = dout.to_host(ot);
        for (int64_t i = 0; i < R && bad.empty(); ++i)
          for (int64_t j = 0; j < Cn && bad.empty(); ++j) {
            const int64_t oi = i * Cn + j, ii = mode == 1 ? j * R + i : (mode == 2 ? n - 1 - oi : oi);
            const double want = round_to(ot, ref_unary(op, a.get(ii + in_off))), got = out.get(oi);
            if (!close(got, want, ot)) bad = std::string(layout) + " " + mismatch(oi, got, want);
          }
      };
      const int64_t flat[1] = {n}, shape[2] = {R, Cn};
      cu::unary(op, t, dout.p, da.p, strided(1, flat, {{1}, {1}}), 0);
      check_all("contiguous", 0, 0);
      if (bad.empty()) {  // misaligned input: the scalar contiguous path
        cu::unary(op, t, dout.p, static_cast<const char*>(da.p) + dtype_size(t), strided(1, flat, {{1}, {1}}), 0);
        check_all("misaligned", 1, 0);
      }
      if (bad.empty()) {
        cu::unary(op, t, dout.p, da.p, strided(2, shape, {{Cn, 1}, {1, R}}), 0);
        check_all("transposed", 0, 1);
      }
      if (bad.empty()) {  // negative stride: base pointer at the last element
        cu::unary(op, t, dout.p, static_cast<const char*>(da.p) + (n - 1) * int64_t(dtype_size(t)),
                  strided(1, flat, {{1}, {-1}}), 0);
        check_all("reversed", 0, 2);
      }
      report(std::string("unary op ") + std::to_string(o) + " " + dname(t), bad.empty(), bad);
    }
  }
}

// ---------------------------------------------------------------- reduce
void test_reduce() {
  struct Case { int64_t outer, n, inner; };
  const Case cases[] = {{7, 1000, 1}, {5, 5000, 1}, {2, 300000, 1}, {300, 40, 1}, {3, 777, 5},
                        {1, 100000, 3}, {2, 3000, 64}, {4, 1, 9}, {1, 1, 1}, {100003, 3, 1},
                        {1, 70001, 1}, {3, 5, 40000}, {70001, 2, 2}};
  const DType types[] = {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i32, DType::i64};
  for (int o = 0; o < int(ReduceOp::count); ++o) {
    const ReduceOp op = ReduceOp(o);
    const bool arg = op == ReduceOp::argmax || op == ReduceOp::argmin;
    for (DType t : types) {
      std::string bad;
      for (const Case& c : cases) {
        if (!bad.empty()) break;
        if (op == ReduceOp::prod && c.n > (is_float(t) && dtype_size(t) == 2 ? 1000 : 5000)) continue;
        const int64_t total = c.outer * c.n * c.inner;
        Host in(t, total);
        for (int64_t i = 0; i < total; ++i) {
          double v;
          if (op == ReduceOp::sum) v = is_float(t) ? uniform(-1, 1) : std::floor(uniform(-50, 51));
          else if (op == ReduceOp::prod) v = is_float(t) ? uniform(0.9, 1.1) : (uniform(0, 1) < 0.5 ? -1 : 1);
          else v = is_float(t) ? std::floor(uniform(-32, 32)) / 8 : std::floor(uniform(-20, 21));  // ties
          in.set(i, v);
        }
        const DType ot = arg ? DType::i64 : t;
        Dev din(in), dout(size_t(c.outer * c.inner) * dtype_size(ot));
        cu::reduce(op, t, dout.p, din.p, c.outer, c.n, c.inner, 0);
        Host out = dout.to_host(ot);
        for (int64_t r = 0; r < c.outer && bad.empty(); ++r)
          for (int64_t i = 0; i < c.inner && bad.empty(); ++i) {
            double acc = op == ReduceOp::prod ? 1 : 0, absum = 0;
            int64_t best = 0;
            for (int64_t j = 0; j < c.n; ++j) {
              const double v = in.get((r * c.n + j) * c.inner + i);
              absum += std::fabs(v);
              if (op == ReduceOp::sum) acc += v;
              else if (op == ReduceOp::prod) acc *= v;
              else if (j == 0) acc = v, best = 0;
              else if ((op == ReduceOp::max || op == ReduceOp::argmax) ? v > acc : v < acc) acc = v, best = j;
            }
            const double got = out.get(r * c.inner + i);
            bool ok;
            if (arg) ok = got == double(best);
            else if (!is_float(t)) ok = got == round_to(t, acc);
            else {
              double rtol, atol;
              tolerance(t, rtol, atol);
              if (op == ReduceOp::prod && t == DType::f32) rtol = 1e-3;
              const double want = round_to(t, acc);
              ok = std::fabs(got - want) <= atol + rtol * std::fabs(want) + (t == DType::f64 ? 1e-12 : 1e-5) * absum;
            }
            if (!ok) {
              char buf[96];
              std::snprintf(buf, sizeof buf, "(outer %lld, n %lld, inner %lld) ", (long long)c.outer,
                            (long long)c.n, (long long)c.inner);
              bad = buf + mismatch(r * c.inner + i, got, arg ? double(best) : acc);
            }
          }
      }
      report(std::string("reduce op ") + std::to_string(o) + " " + dname(t), bad.empty(), bad);
    }
  }
  // NaN: max/min give NaN, argmax/argmin give the first NaN.
  for (int64_t inner : {int64_t(1), int64_t(4)}) {
    const int64_t outer = 3, n = 5000;
    Host in = random_host(DType::f32, outer * n * inner, -1, 1);
    in.set((1 * n + 1234) * inner, NAN);
    in.set((1 * n + 4000) * inner, NAN);
    Dev din(in), dv(size_t(outer * inner) * 4), di(size_t(outer * inner) * 8);
    bool ok = true;
    for (ReduceOp op : {ReduceOp::max, ReduceOp::min}) {
      cu::reduce(op, DType::f32, dv.p, din.p, outer, n, inner, 0);
      Host v = dv.to_host(DType::f32);
      ok &= std::isnan(v.get(1 * inner)) && !std::isnan(v.get(0)) && !std::isnan(v.get(2 * inner));
    }
    for (ReduceOp op : {ReduceOp::argmax, ReduceOp::argmin}) {
      cu::reduce(op, DType::f32, di.p, din.p, outer, n, inner, 0);
      ok &= di.to_host(DType::i64).get(1 * inner) == 1234;
    }
    report("reduce NaN propagation, inner " + std::to_string(inner), ok);
  }
}

// ---------------------------------------------------------------- gemm
struct GemmCase {
  const char* name;
  DType dt;
  int64_t M, N, K, batch;
  char a_layout, b_layout;  // 'k': K-contiguous; 'm' / 'n': M- / N-contiguous
  int64_t a_step;           // element step along the contiguous dim of A (2: not TC-eligible)
  bool a_bcast;
  double alpha, beta;
  int64_t a_off = 0;        // A's base pointer this many elements into its buffer (1: unaligned)
  int64_t a_ld = 0;         // A's leading stride; 0: the contiguous extent rounded up to 8
  bool b_bcast = false;     // B batch stride 0
  bool c_trans = false;     // C column-major (sc_m = 1)
};

int64_t round8(int64_t x) { return (x + 7) / 8 * 8; }

void gemm_case(const GemmCase& g) {
  GemmParams p;
  p.M = g.M, p.N = g.N, p.K = g.K, p.batch = g.batch, p.dtype = g.dt, p.alpha = g.alpha, p.beta = g.beta;
  int64_t a_size;
  if (g.a_layout == 'k') p.sa_k = g.a_step, p.sa_m = g.a_ld ? g.a_ld : round8(g.K * g.a_step), a_size = g.M * p.sa_m;
  else p.sa_m = g.a_step, p.sa_k = g.a_ld ? g.a_ld : round8(g.M * g.a_step), a_size = g.K * p.sa_k;
  p.sa_b = g.a_bcast ? 0 : a_size;
  int64_t b_size;
  if (g.b_layout == 'n') p.sb_n = 1, p.sb_k = round8(g.N), b_size = g.K * p.sb_k;
  else p.sb_k = 1, p.sb_n = round8(g.K), b_size = g.N * p.sb_n;
  p.sb_b = g.b_bcast ? 0 : b_size;
  // 3 padding rows or columns per matrix must stay untouched.
  if (g.c_trans) p.sc_m = 1, p.sc_n = g.M + 3, p.sc_b = g.N * p.sc_n;
  else p.sc_n = 1, p.sc_m = g.N + 3, p.sc_b = g.M * p.sc_m;
  Host A = random_host(g.dt, g.a_off + a_size * (g.a_bcast ? 1 : g.batch), -1, 1);
  Host B = random_host(g.dt, b_size * (g.b_bcast ? 1 : g.batch), -1, 1);
  Host C(g.dt, p.sc_b * g.batch);
  std::vector<uint8_t> used(size_t(C.size()), 0);
  for (int64_t b = 0; b < g.batch; ++b)
    for (int64_t m = 0; m < g.M; ++m)
      for (int64_t n = 0; n < g.N; ++n) used[size_t(b * p.sc_b + m * p.sc_m + n * p.sc_n)] = 1;
  for (int64_t i = 0; i < C.size(); ++i) C.set(i, !used[size_t(i)] ? 12345.0 : (g.beta == 0 ? NAN : uniform(-1, 1)));
  Dev dA(A), dB(B), dC(C);
  p.A = static_cast<const char*>(dA.p) + g.a_off * int64_t(dtype_size(g.dt)), p.B = dB.p, p.C = dC.p;
  cu::gemm(p, 0);
  Host out = dC.to_host(g.dt);
  double rtol, atol;
  tolerance(g.dt, rtol, atol);
  std::string bad;
  for (int64_t i = 0; i < C.size() && bad.empty(); ++i)
    if (!used[size_t(i)] && out.get(i) != C.get(i)) bad = "padding overwritten at " + std::to_string(i);  // 12345 as stored (bf16: 12352)
  for (int64_t b = 0; b < g.batch && bad.empty(); ++b)
    for (int64_t m = 0; m < g.M && bad.empty(); ++m)
      for (int64_t n = 0; n < g.N && bad.empty(); ++n) {
        const int64_t ci = b * p.sc_b + m * p.sc_m + n * p.sc_n;
        const double got = out.get(ci);
        double acc = 0, absum = 0;
        for (int64_t k = 0; k < g.K; ++k) {
          const double x = A.get(g.a_off + b * p.sa_b + m * p.sa_m + k * p.sa_k),
                       y = B.get(b * p.sb_b + k * p.sb_k + n * p.sb_n);
          acc += x * y, absum += std::fabs(x * y);
        }
        double want = g.alpha * acc;
        if (g.beta != 0) want += g.beta * C.get(ci);
        const double tol = atol + rtol * std::fabs(want) + (g.dt == DType::f64 ? 1e-13 : 2e-5) * absum;
        if (!(std::fabs(got - want) <= tol)) bad = mismatch(ci, got, want);
      }
  char buf[200];
  std::snprintf(buf, sizeof buf, "gemm %s %s M=%lld N=%lld K=%lld batch=%lld", g.name, dname(g.dt), (long long)g.M,
                (long long)g.N, (long long)g.K, (long long)g.batch);
  report(buf, bad.empty(), bad);
}

void test_gemm() {
  using D = DType;
  const GemmCase cases[] = {
      {"tc A[k] B[n]", D::bf16, 130, 201, 77, 1, 'k', 'n', 1, false, 1, 0},
      {"tc A[k] B[k]", D::bf16, 130, 201, 77, 1, 'k', 'k', 1, false, 1, 0},
      {"tc A[m] B[n]", D::bf16, 130, 201, 77, 1, 'm', 'n', 1, false, 1, 0},
      {"tc A[m] B[k]", D::bf16, 130, 201, 77, 1, 'm', 'k', 1, false, 1, 0},
      {"tc pipeline", D::bf16, 256, 256, 512, 1, 'k', 'n', 1, false, 1, 0},
      {"tc pipeline, K not a multiple of the tile", D::bf16, 129, 136, 200, 2, 'k', 'k', 1, false, 0.75, 0.5},
      {"tc batch bcast alpha beta", D::bf16, 64, 72, 1000, 3, 'm', 'k', 1, true, 0.5, 0.25},
      {"tc B batch stride 0", D::bf16, 70, 90, 40, 3, 'k', 'n', 1, false, 1, 0, 0, 0, true},
      {"tc A base 16-byte aligned offset", D::bf16, 33, 47, 64, 2, 'k', 'n', 1, false, 1, 0, 8},
      {"tc C column-major", D::bf16, 130, 70, 48, 2, 'm', 'n', 1, false, 1, 0.5, 0, 0, false, true},
      {"tc M=1", D::bf16, 1, 300, 64, 2, 'k', 'k', 1, false, 1, 0},
      {"tc N=1 K=1", D::bf16, 300, 1, 1, 2, 'm', 'k', 1, false, 1, 0},
      {"tc K=0 beta", D::bf16, 5, 7, 0, 1, 'k', 'n', 1, false, 1, 0.5},
      {"tc batch > 65535 (grid.y chunks)", D::bf16, 3, 5, 9, 70000, 'k', 'n', 1, false, 1, 0},
      {"fallback: A base not 16-byte aligned", D::bf16, 130, 201, 77, 2, 'k', 'n', 1, false, 1, 0, 1},
      {"fallback: odd lda", D::bf16, 130, 201, 77, 1, 'k', 'k', 1, false, 1, 0, 0, 77},
      {"fallback: odd lda M-contiguous", D::bf16, 77, 50, 130, 1, 'm', 'n', 1, false, 1, 0, 0, 77},
      {"simt fallback (A step 2)", D::bf16, 130, 201, 77, 2, 'k', 'n', 2, false, 1.5, -1},
      {"simt", D::f32, 130, 201, 77, 1, 'k', 'n', 1, false, 1, 0},
      {"simt transposed bcast alpha beta", D::f32, 130, 201, 77, 2, 'm', 'k', 1, true, 0.5, 0.25},
      {"simt large", D::f32, 300, 300, 300, 1, 'k', 'k', 1, false, 1, 0},
      {"simt odd everything", D::f32, 129, 67, 131, 3, 'm', 'n', 1, false, 1, 0, 1, 131, true, true},
      {"simt batch > 65535", D::f32, 2, 3, 4, 70000, 'k', 'k', 1, false, 1, 0},
      {"simt K=0 beta", D::f32, 5, 7, 0, 1, 'k', 'n', 1, false, 1, 0.5},
      {"simt", D::f64, 130, 201, 77, 1, 'k', 'n', 1, false, 1, 0},
      {"simt transposed alpha beta", D::f64, 130, 201, 77, 2, 'm', 'k', 2, false, -1, 2},
      {"simt C column-major", D::f64, 65, 70, 9, 2, 'k', 'n', 1, false, 1, 0, 0, 0, false, true},
      // few output tiles, long K: split over K, partials summed in order (gemm_splitk_reduce_kernel)
      {"simt split K (weight-gradient form)", D::f32, 200, 72, 5000, 1, 'm', 'n', 1, false, 1, 0},
      {"simt split K alpha beta C column-major", D::f32, 130, 150, 3000, 1, 'k', 'k', 1, false, 0.5, 0.25, 0, 0, false, true},
      {"simt split K", D::f64, 100, 90, 2100, 1, 'm', 'n', 1, false, 1, 0.5},
      {"simt fallback split K (A step 2)", D::bf16, 64, 70, 3000, 1, 'k', 'n', 2, false, 1, 0},
  };
  for (const GemmCase& g : cases) gemm_case(g);
}

// ---------------------------------------------------------------- where
void test_where() {
  const int64_t n = 1001;
  Host cond = random_host(DType::b8, n, 0, 1);
  for (DType t : {DType::b8, DType::bf16, DType::f32, DType::f64}) {
    Host a = random_host(t, n, -5, 5), b = random_host(t, n, -5, 5);
    if (is_float(t)) a.set(3, NAN), b.set(4, INFINITY);  // never leak from the unselected side
    Dev dc(cond), da(a), db(b), dout(size_t(n) * dtype_size(t));
    cu::where(dtype_size(t), dout.p, dc.p, da.p, db.p, n, 0);
    Host out = dout.to_host(t);
    bool ok = true;
    for (int64_t i = 0; i < n; ++i) {
      const double want = cond.get(i) ? a.get(i) : b.get(i), got = out.get(i);
      ok &= (std::isnan(want) && std::isnan(got)) || got == want;
    }
    report(std::string("where ") + dname(t), ok);
  }
}

// ---------------------------------------------------------------- 64-bit index path
// Over 2^31 elements the strided kernels switch to 64-bit index math: a transposed broadcast
// copy out[c + r*C] = in[r] (f16, 4 GiB) must reach every element with the right value.
void test_large_index() {
  const int64_t R = 65537, Cn = 32768, N = R * Cn;  // 2^31 + 2^15
  size_t free_b = 0, total_b = 0;
  cudaMemGetInfo(&free_b, &total_b);
  if (free_b < size_t(N) * 2 + (size_t(1) << 30)) {
    report("64-bit index copy (skipped: not enough device memory)", true);
    return;
  }
  Host in(DType::f16, R);
  for (int64_t r = 0; r < R; ++r) in.set(r, double(r % 2048));
  Dev din(in), dout(size_t(N) * 2);
  const int64_t flat[1] = {N}, shape[2] = {Cn, R};
  cu::fill(dout.p, DType::f16, -1.0, strided(1, flat, {{1}}), 0);
  cu::copy_strided(dout.p, DType::f16, din.p, DType::f16, strided(2, shape, {{1, Cn}, {0, 1}}), 0);
  std::vector<uint16_t> out(static_cast<size_t>(N));
  cu::copy_d2h(out.data(), dout.p, size_t(N) * 2, 0);
  std::vector<uint16_t> want(2048);
  for (int v = 0; v < 2048; ++v) want[size_t(v)] = f32_to_f16(float(v));
  std::string bad;
  for (int64_t r = 0; r < R && bad.empty(); ++r) {
    const uint16_t w = want[size_t(r % 2048)];
    const uint16_t* row = out.data() + r * Cn;
    for (int64_t c = 0; c < Cn; ++c)
      if (row[c] != w) { bad = mismatch(r * Cn + c, f16_to_f32(row[c]), double(r % 2048)); break; }
  }
  report("64-bit index strided copy, 2^31 + 2^15 f16 elements", bad.empty(), bad);
}

// ---------------------------------------------------------------- optimizers
// Host reference in double of one fused step (PyTorch's update rules, as kernels/optim.h).
struct OptParam {
  std::vector<double> p, g, s0, s1, s2;
  double step;
};

void ref_step(OptimKind kind, const OptimHyper& h, std::vector<OptParam>& ps) {
  for (OptParam& q : ps) {
    const size_t n = q.p.size();
    const double bc1 = 1 - std::pow(h.beta1, q.step), bc2 = 1 - std::pow(h.beta2, q.step);
    double pp = 0, uu = 0;
    std::vector<double> u(kind == OptimKind::lamb ? n : 0);
    for (size_t i = 0; i < n; ++i) {
      double g = (h.maximize ? -1 : 1) * q.g[i], &p = q.p[i];
      switch (kind) {
        case OptimKind::sgd:
          if (h.weight_decay != 0) g += h.weight_decay * p;
          if (!q.s0.empty()) {
            q.s0[i] = q.step <= 1 ? g : h.momentum * q.s0[i] + (1 - h.dampening) * g;
            g = h.nesterov ? g + h.momentum * q.s0[i] : q.s0[i];
          }
          p -= h.lr * g;
          break;
        case OptimKind::adam: {
          if (h.weight_decay != 0 && h.decoupled) p *= 1 - h.lr * h.weight_decay;
          if (h.weight_decay != 0 && !h.decoupled) g += h.weight_decay * p;
          q.s0[i] = h.beta1 * q.s0[i] + (1 - h.beta1) * g;
          q.s1[i] = h.beta2 * q.s1[i] + (1 - h.beta2) * g * g;
          double v = q.s1[i];
          if (h.amsgrad) v = q.s2[i] = std::max(q.s2[i], v);
          p -= h.lr / bc1 * q.s0[i] / (std::sqrt(v) / std::sqrt(bc2) + h.eps);
          break;
        }
        case OptimKind::adagrad: {
          if (h.weight_decay != 0) g += h.weight_decay * p;
          q.s0[i] += g * g;
          p -= h.lr / (1 + (q.step - 1) * h.lr_decay) * g / (std::sqrt(q.s0[i]) + h.eps);
          break;
        }
        case OptimKind::rmsprop: {
          if (h.weight_decay != 0) g += h.weight_decay * p;
          q.s0[i] = h.alpha * q.s0[i] + (1 - h.alpha) * g * g;
          double avg;
          if (h.centered) {
            q.s2[i] = q.s2[i] + (1 - h.alpha) * (g - q.s2[i]);
            avg = std::sqrt(q.s0[i] - q.s2[i] * q.s2[i]) + h.eps;
          } else {
            avg = std::sqrt(q.s0[i]) + h.eps;
          }
          if (h.momentum > 0) q.s1[i] = h.momentum * q.s1[i] + g / avg, p -= h.lr * q.s1[i];
          else p -= h.lr * g / avg;
          break;
        }
        case OptimKind::lamb: {
          const double c1 = h.bias_correction ? bc1 : 1, c2 = h.bias_correction ? bc2 : 1;
          q.s0[i] = h.beta1 * q.s0[i] + (1 - h.beta1) * g;
          q.s1[i] = h.beta2 * q.s1[i] + (1 - h.beta2) * g * g;
          u[i] = (q.s0[i] / c1) / (std::sqrt(q.s1[i] / c2) + h.eps) + h.weight_decay * p;
          pp += p * p, uu += u[i] * u[i];
          break;
        }
      }
    }
    if (kind == OptimKind::lamb) {
      const double pn = std::sqrt(pp), un = std::sqrt(uu), trust = pn > 0 && un > 0 ? pn / un : 1.0;
      for (size_t i = 0; i < n; ++i) q.p[i] -= h.lr * trust * u[i];
    }
  }
}

void optim_case(const char* name, OptimKind kind, const OptimHyper& h, int nslots, DType dt) {
  const int count = 50;  // more than one launch chunk (48 parameters)
  std::vector<OptParam> ps(count);
  for (int j = 0; j < count; ++j) {
    const size_t n = j == 7 ? 300001 : size_t(1 + (j * j * 37) % 5000);
    OptParam& q = ps[size_t(j)];
    q.step = j % 3 == 0 ? 1 : 2 + j % 5;
    auto fill = [&](std::vector<double>& v, double lo, double hi) {
      v.resize(n);
      for (double& x : v) x = round_to(dt, uniform(lo, hi));
    };
    fill(q.p, -1, 1);
    fill(q.g, -1, 1);
    if (j == 11) std::fill(q.p.begin(), q.p.end(), 0.0);  // LAMB: ||p|| = 0 gives trust 1
    if (nslots > 0) fill(q.s0, kind == OptimKind::sgd || kind == OptimKind::lamb ? -0.5 : 0.5, 1);
    if (nslots > 1) fill(q.s1, kind == OptimKind::rmsprop ? -0.5 : 0.5, 1);
    if (nslots > 2) fill(q.s2, kind == OptimKind::rmsprop ? -0.1 : 0.5, kind == OptimKind::rmsprop ? 0.1 : 1);
  }
  // Upload, run the fused step, compare p and every state buffer.
  std::vector<std::unique_ptr<Dev>> bufs;
  auto up = [&](const std::vector<double>& v) -> void* {
    if (v.empty()) return nullptr;
    Host hb(dt, int64_t(v.size()));
    for (size_t i = 0; i < v.size(); ++i) hb.set(int64_t(i), v[i]);
    bufs.emplace_back(new Dev(hb));
    return bufs.back()->p;
  };
  std::vector<OptimTensor> ts(static_cast<size_t>(count));
  for (int j = 0; j < count; ++j) {
    const OptParam& q = ps[size_t(j)];
    OptimTensor& t = ts[size_t(j)];
    t.p = up(q.p), t.g = up(q.g), t.s0 = up(q.s0), t.s1 = up(q.s1), t.s2 = up(q.s2);
    t.n = int64_t(q.p.size()), t.step = q.step;
  }
  cu::optim_step(kind, dt, h, ts.data(), count, 0);
  ref_step(kind, h, ps);
  const double rtol = dt == DType::f32 ? 2e-5 : 1e-11, atol = dt == DType::f32 ? 2e-6 : 1e-13;
  std::string bad;
  for (int j = 0; j < count && bad.empty(); ++j) {
    const OptParam& q = ps[size_t(j)];
    const OptimTensor& t = ts[size_t(j)];
    const std::vector<double>* want[4] = {&q.p, &q.s0, &q.s1, &q.s2};
    void* got_p[4] = {t.p, t.s0, t.s1, t.s2};
    for (int k = 0; k < 4 && bad.empty(); ++k) {
      if (!got_p[k]) continue;
      Host got(dt, int64_t(want[k]->size()));
      cu::copy_d2h(got.bytes.data(), got_p[k], got.bytes.size(), 0);
      for (size_t i = 0; i < want[k]->size(); ++i) {
        const double w = (*want[k])[i], v = got.get(int64_t(i));
        if (!(std::fabs(v - w) <= atol + rtol * std::fabs(w))) {
          bad = "param " + std::to_string(j) + (k ? " state s" + std::to_string(k - 1) : std::string(" p")) + " " +
                mismatch(int64_t(i), v, w);
          break;
        }
      }
    }
  }
  report(std::string("optim ") + name + " " + dname(dt), bad.empty(), bad);
}

void test_optim() {
  for (DType dt : {DType::f32, DType::f64}) {
    OptimHyper h;
    h.lr = 0.1, h.momentum = 0.9, h.dampening = 0.1, h.nesterov = true, h.weight_decay = 0.01;
    optim_case("sgd momentum nesterov wd", OptimKind::sgd, h, 1, dt);
    h = OptimHyper();
    h.lr = 0.05, h.maximize = true;
    optim_case("sgd plain maximize", OptimKind::sgd, h, 0, dt);
    h = OptimHyper();
    h.lr = 1e-3, h.beta1 = 0.9, h.beta2 = 0.999, h.eps = 1e-8, h.weight_decay = 0.01, h.decoupled = true, h.amsgrad = true;
    optim_case("adamw amsgrad", OptimKind::adam, h, 3, dt);
    h.decoupled = false, h.amsgrad = false, h.maximize = true;
    optim_case("adam l2 maximize", OptimKind::adam, h, 2, dt);
    h = OptimHyper();
    h.lr = 0.1, h.lr_decay = 0.01, h.weight_decay = 0.01, h.eps = 1e-10;
    optim_case("adagrad", OptimKind::adagrad, h, 1, dt);
    h = OptimHyper();
    h.lr = 0.01, h.alpha = 0.99, h.eps = 1e-8, h.weight_decay = 0.01, h.momentum = 0.9, h.centered = true;
    optim_case("rmsprop centered momentum", OptimKind::rmsprop, h, 3, dt);
    h = OptimHyper();
    h.lr = 1e-3, h.beta1 = 0.9, h.beta2 = 0.999, h.eps = 1e-6, h.weight_decay = 0.01;
    optim_case("lamb", OptimKind::lamb, h, 2, dt);
  }
}

// ---------------------------------------------------------------- selective scan
// The definition in double (every state kept: small sizes only), forward with the chunk
// checkpoints and the backward of every input, against cu::selective_scan_fwd / _bwd with
// NaN-filled outputs (unwritten elements fail).
struct ScanCase {
  const char* name;
  int64_t batch, dim, L, N, G;
  bool D, z, bias, softplus;
  int64_t chunk = 64;
};
struct ScanData {
  std::vector<double> u, delta, A, B, C, D, z, bias, gout;                   // inputs
  std::vector<double> out, last, ckpt, du, ddelta, dA, dB, dC, dD, dz, dbias;  // reference
};

std::vector<double> draw(int64_t n, double lo, double hi) {
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) x = uniform(lo, hi);
  return v;
}

void scan_reference(const ScanCase& c, ScanData& s) {
  const int64_t L = c.L, N = c.N, dpg = c.dim / c.G, nch = (L + c.chunk - 1) / c.chunk;
  s.out.assign(size_t(c.batch * c.dim * L), 0); s.last.assign(size_t(c.batch * c.dim * N), 0);
  s.ckpt.assign(size_t(c.batch * c.dim * nch * N), 0);
  s.du = s.ddelta = s.dz = s.out;
  s.dA.assign(size_t(c.dim * N), 0); s.dB.assign(size_t(c.batch * c.G * N * L), 0); s.dC = s.dB;
  s.dD.assign(size_t(c.dim), 0); s.dbias = s.dD;
  std::vector<double> xs(static_cast<size_t>((L + 1) * N)), dl(static_cast<size_t>(L)), raw(static_cast<size_t>(L)),
      gy(static_cast<size_t>(L)), h(static_cast<size_t>(N));
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t d = 0; d < c.dim; ++d) {
      const int64_t row = (b * c.dim + d) * L, bc = (b * c.G + d / dpg) * N * L;
      const double Dd = c.D ? s.D[size_t(d)] : 0;
      for (int64_t n = 0; n < N; ++n) xs[size_t(n)] = 0;
      for (int64_t l = 0; l < L; ++l) {
        if (l % c.chunk == 0)
          for (int64_t n = 0; n < N; ++n) s.ckpt[size_t(((b * c.dim + d) * nch + l / c.chunk) * N + n)] = xs[size_t(l * N + n)];
        raw[size_t(l)] = s.delta[size_t(row + l)] + (c.bias ? s.bias[size_t(d)] : 0);
        dl[size_t(l)] = c.softplus ? (raw[size_t(l)] > 20 ? raw[size_t(l)] : std::log1p(std::exp(raw[size_t(l)]))) : raw[size_t(l)];
        double y = 0;
        for (int64_t n = 0; n < N; ++n) {
          const double x = std::exp(dl[size_t(l)] * s.A[size_t(d * N + n)]) * xs[size_t(l * N + n)] +
                           dl[size_t(l)] * s.B[size_t(bc + n * L + l)] * s.u[size_t(row + l)];
          xs[size_t((l + 1) * N + n)] = x;
          y += x * s.C[size_t(bc + n * L + l)];
        }
        const double pre = y + Dd * s.u[size_t(row + l)], g = s.gout[size_t(row + l)];
        double o = pre, gg = g;
        if (c.z) {
          const double zz = s.z[size_t(row + l)], sg = 1 / (1 + std::exp(-zz));
          o = pre * zz * sg;
          s.dz[size_t(row + l)] = g * pre * sg * (1 + zz * (1 - sg));
          gg = g * zz * sg;
        }
        s.out[size_t(row + l)] = o;
        gy[size_t(l)] = gg;
        s.du[size_t(row + l)] = gg * Dd;
        s.dD[size_t(d)] += gg * s.u[size_t(row + l)];
      }
      for (int64_t n = 0; n < N; ++n) s.last[size_t((b * c.dim + d) * N + n)] = xs[size_t(L * N + n)], h[size_t(n)] = 0;
      for (int64_t l = L - 1; l >= 0; --l) {
        double gd = 0;
        const double uu = s.u[size_t(row + l)], dt = dl[size_t(l)];
        for (int64_t n = 0; n < N; ++n) {
          const double a = s.A[size_t(d * N + n)], Bn = s.B[size_t(bc + n * L + l)], Cn = s.C[size_t(bc + n * L + l)];
          const double e = std::exp(dt * a), hn = h[size_t(n)] + gy[size_t(l)] * Cn, t = hn * xs[size_t(l * N + n)] * e;
          s.dC[size_t(bc + n * L + l)] += gy[size_t(l)] * xs[size_t((l + 1) * N + n)];
          s.dB[size_t(bc + n * L + l)] += hn * dt * uu;
          s.dA[size_t(d * N + n)] += t * dt;
          s.du[size_t(row + l)] += hn * dt * Bn;
          gd += t * a + hn * Bn * uu;
          h[size_t(n)] = hn * e;
        }
        if (c.softplus) gd *= raw[size_t(l)] > 20 ? 1 : 1 / (1 + std::exp(-raw[size_t(l)]));
        s.ddelta[size_t(row + l)] = gd;
        s.dbias[size_t(d)] += gd;
      }
    }
}

// Inputs rounded to `t` and back, so the reference sees exactly what the kernel reads.
Host to_dtype_host(DType t, std::vector<double>& v) {
  Host h(t, int64_t(v.size()));
  for (size_t i = 0; i < v.size(); ++i) h.set(int64_t(i), v[i]), v[i] = h.get(int64_t(i));
  return h;
}
Host nan_host(DType t, int64_t n) {
  Host h(t, n);
  for (int64_t i = 0; i < n; ++i) h.set(i, NAN);
  return h;
}
// Largest error relative to the largest reference magnitude; NaN (unwritten) fails.
std::string scan_compare(const char* what, const Dev& got_d, DType t, const std::vector<double>& want) {
  const Host got = got_d.to_host(t);
  double scale = 0;
  for (double w : want) scale = std::max(scale, std::fabs(w));
  const double tol = (t == DType::f64 ? 1e-9 : 1e-3) * std::max(scale, 1e-30);
  for (size_t i = 0; i < want.size(); ++i) {
    const double g = got.get(int64_t(i));
    if (!(std::fabs(g - want[i]) <= tol)) return std::string(what) + ": " + mismatch(int64_t(i), g, want[i]);
  }
  return "";
}

void scan_case(const ScanCase& c, DType t) {
  ScanData s;
  const int64_t row = c.batch * c.dim * c.L, bcn = c.batch * c.G * c.N * c.L;
  const int64_t nch = (c.L + c.chunk - 1) / c.chunk;
  s.u = draw(row, -1, 1);
  s.delta = c.softplus ? draw(row, -2, 1) : draw(row, 0.01, 0.5);
  s.A = draw(c.dim * c.N, -0.5, 0.5);
  for (double& a : s.A) a = -std::exp(a);
  s.B = draw(bcn, -1, 1), s.C = draw(bcn, -1, 1), s.gout = draw(row, -1, 1);
  s.D = draw(c.dim, -1, 1), s.z = draw(row, -2, 2), s.bias = draw(c.dim, -0.3, 0.3);
  Dev u(to_dtype_host(t, s.u)), delta(to_dtype_host(t, s.delta)), A(to_dtype_host(t, s.A)), B(to_dtype_host(t, s.B)),
      C(to_dtype_host(t, s.C)), g(to_dtype_host(t, s.gout)), D(to_dtype_host(t, s.D)), z(to_dtype_host(t, s.z)),
      bias(to_dtype_host(t, s.bias));
  scan_reference(c, s);
  Dev out(nan_host(t, row)), last(nan_host(t, c.batch * c.dim * c.N)), ck(nan_host(t, c.batch * c.dim * nch * c.N));
  Dev du(nan_host(t, row)), dd(nan_host(t, row)), dz(nan_host(t, row)), dA(nan_host(t, c.dim * c.N));
  Dev dB(nan_host(t, bcn)), dC(nan_host(t, bcn)), dD(nan_host(t, c.dim)), db(nan_host(t, c.dim));
  SelectiveScanParams p;
  p.batch = c.batch, p.dim = c.dim, p.L = c.L, p.N = c.N, p.groups = c.G, p.dt = t, p.chunk = c.chunk;
  p.u = u.p, p.delta = delta.p, p.A = A.p, p.B = B.p, p.C = C.p, p.softplus = c.softplus;
  p.D = c.D ? D.p : nullptr, p.z = c.z ? z.p : nullptr, p.delta_bias = c.bias ? bias.p : nullptr;
  p.out = out.p, p.last_state = last.p, p.checkpoints = ck.p;
  std::string bad;
  try {
    cu::selective_scan_fwd(p, 0);
    p.out = nullptr, p.last_state = nullptr, p.gout = g.p;
    p.du = du.p, p.ddelta = dd.p, p.dA = dA.p, p.dB = dB.p, p.dC = dC.p;
    p.dD = c.D ? dD.p : nullptr, p.dz = c.z ? dz.p : nullptr, p.ddelta_bias = c.bias ? db.p : nullptr;
    cu::selective_scan_bwd(p, 0);
    cu::synchronize(0);
  } catch (const std::exception& e) {
    bad = e.what();
  }
  const std::pair<const char*, std::pair<const Dev*, const std::vector<double>*>> checks[] = {
      {"out", {&out, &s.out}}, {"last_state", {&last, &s.last}}, {"checkpoints", {&ck, &s.ckpt}},
      {"du", {&du, &s.du}}, {"ddelta", {&dd, &s.ddelta}}, {"dA", {&dA, &s.dA}}, {"dB", {&dB, &s.dB}},
      {"dC", {&dC, &s.dC}}, {"dD", {c.D ? &dD : nullptr, &s.dD}}, {"dz", {c.z ? &dz : nullptr, &s.dz}},
      {"ddelta_bias", {c.bias ? &db : nullptr, &s.dbias}}};
  for (const auto& k : checks)
    if (bad.empty() && k.second.first) bad = scan_compare(k.first, *k.second.first, t, *k.second.second);
  // Deterministic: a second backward gives the same bits.
  if (bad.empty()) {
    const Host dB1 = dB.to_host(t), dA1 = dA.to_host(t);
    cu::selective_scan_bwd(p, 0);
    if (dB1.bytes != dB.to_host(t).bytes || dA1.bytes != dA.to_host(t).bytes) bad = "backward not bitwise reproducible";
  }
  char buf[200];
  std::snprintf(buf, sizeof buf, "selective_scan %s %s (b=%lld dim=%lld L=%lld N=%lld G=%lld chunk=%lld)", c.name, dname(t),
                (long long)c.batch, (long long)c.dim, (long long)c.L, (long long)c.N, (long long)c.G, (long long)c.chunk);
  report(buf, bad.empty(), bad);
}

void test_selective_scan() {
  const ScanCase cases[] = {
      {"plain", 2, 5, 7, 3, 1, false, false, false, false},
      {"all options, L over one chunk", 1, 19, 70, 4, 1, true, true, true, true},
      {"grouped, chunk boundary + 1", 2, 12, 129, 5, 3, true, false, true, true},
      {"N 16, many blocks per group", 2, 300, 150, 16, 1, true, true, true, true},
      {"one channel per group", 3, 6, 65, 7, 6, false, true, false, true},
      {"N 100", 2, 10, 90, 100, 2, true, true, true, false},
      {"N 256", 1, 4, 40, 256, 1, true, false, true, true},
      {"chunk 20 (not a tile multiple)", 2, 9, 77, 6, 1, true, true, true, true, 20},
      {"chunk 150 (several scan tiles a chunk)", 2, 9, 300, 6, 1, true, true, true, true, 150},
      {"9 channels a group (a block with one)", 1, 18, 70, 3, 2, true, true, true, true},
  };
  for (const ScanCase& c : cases)
    for (DType t : {DType::f32, DType::f64}) scan_case(c, t);
}

// ---------------------------------------------------------------- timing (--bench)
// Mamba's shape (batch, dim, L, N) = (2, 768, 1024, 16), float32: forward (with checkpoints)
// and forward + backward; GB/s over the operands each must read and write once.
void bench_selective_scan() {
  const int64_t b = 2, dim = 768, L = 1024, N = 16, nch = L / 64, row = b * dim * L, bcn = b * N * L;
  auto filled = [](int64_t n, double v) {
    auto d = std::make_unique<Dev>(size_t(n) * 4);
    const int64_t flat[1] = {n};
    cu::fill(d->p, DType::f32, v, strided(1, flat, {{1}}), 0);
    return d;
  };
  auto u = filled(row, 0.5), delta = filled(row, 0.05), A = filled(dim * N, -1.0), B = filled(bcn, 0.1),
       C = filled(bcn, 0.1), g = filled(row, 1.0), out = filled(row, 0), ck = filled(b * dim * nch * N, 0);
  auto du = filled(row, 0), dd = filled(row, 0), dA = filled(dim * N, 0), dB = filled(bcn, 0), dC = filled(bcn, 0);
  SelectiveScanParams p;
  p.batch = b, p.dim = dim, p.L = L, p.N = N, p.dt = DType::f32, p.softplus = true;
  p.u = u->p, p.delta = delta->p, p.A = A->p, p.B = B->p, p.C = C->p, p.out = out->p, p.checkpoints = ck->p;
  p.gout = g->p, p.du = du->p, p.ddelta = dd->p, p.dA = dA->p, p.dB = dB->p, p.dC = dC->p;
  const double fwd_bytes = 4.0 * (3 * row + 2 * bcn), bwd_bytes = 4.0 * (6 * row + 4 * bcn);
  double ms = time_ms([&] { cu::selective_scan_fwd(p, 0); }, 20);
  std::printf("BENCH scan_fwd_f32 %.3f ms %.1f GB/s\n", ms, fwd_bytes / ms / 1e6);
  ms = time_ms([&] { cu::selective_scan_fwd(p, 0); cu::selective_scan_bwd(p, 0); }, 20);
  std::printf("BENCH scan_fwdbwd_f32 %.3f ms %.1f GB/s\n", ms, (fwd_bytes + bwd_bytes) / ms / 1e6);
}

void bench() {
  const int64_t S = 4096;
  for (DType t : {DType::bf16, DType::f32}) {
    Dev A(size_t(S * S) * dtype_size(t)), B(size_t(S * S) * dtype_size(t)), C(size_t(S * S) * dtype_size(t));
    const int64_t flat[1] = {S * S};
    cu::fill(A.p, t, 0.01, strided(1, flat, {{1}}), 0);
    cu::fill(B.p, t, 0.01, strided(1, flat, {{1}}), 0);
    GemmParams p;
    p.M = p.N = p.K = S, p.dtype = t, p.A = A.p, p.B = B.p, p.C = C.p;
    p.sa_m = S, p.sa_k = 1, p.sb_k = S, p.sb_n = 1, p.sc_m = S, p.sc_n = 1;
    const double ms = time_ms([&] { cu::gemm(p, 0); }, 10);
    std::printf("BENCH gemm_%s_4096 %.3f ms %.1f TFLOP/s\n", t == DType::bf16 ? "bf16" : "f32", ms,
                2.0 * S * S * S / ms / 1e9);
  }
  const int64_t n = int64_t(1) << 28;  // 1 GiB per f32 operand
  Dev a(size_t(n) * 4), b(size_t(n) * 4), c(size_t(n) * 4), s(4);
  const int64_t flat[1] = {n};
  cu::fill(a.p, DType::f32, 1.0, strided(1, flat, {{1}}), 0);
  cu::fill(b.p, DType::f32, 2.0, strided(1, flat, {{1}}), 0);
  double ms = time_ms([&] { cu::binary(BinaryOp::add, DType::f32, c.p, a.p, b.p, strided(1, flat, {{1}, {1}, {1}}), 0); }, 10);
  std::printf("BENCH add_f32_2^28 %.3f ms %.1f GB/s\n", ms, 12.0 * n / ms / 1e6);
  ms = time_ms([&] { cu::reduce(ReduceOp::sum, DType::f32, s.p, a.p, 1, n, 1, 0); }, 10);
  std::printf("BENCH sum_f32_2^28 %.3f ms %.1f GB/s\n", ms, 4.0 * n / ms / 1e6);
  bench_selective_scan();
}

void run_all() {
  test_device();
  test_copy();
  test_fill();
  test_binary();
  test_unary();
  test_reduce();
  test_gemm();
  test_where();
  test_optim();
  test_selective_scan();
  test_large_index();
}

}  // namespace

// cuda_check [--bench] [selective_scan]: everything, or only the selective scan's cases / timing.
int main(int argc, char** argv) {
  const bool do_bench = argc > 1 && std::strcmp(argv[1], "--bench") == 0;
  const char* only = argc > 1 + int(do_bench) ? argv[1 + int(do_bench)] : nullptr;
  if (only && std::strcmp(only, "selective_scan") != 0) {
    std::printf("usage: cuda_check [--bench] [selective_scan]\n");
    return 2;
  }
  std::printf("cuda_check: is_available=%d device_count=%d\n", int(cu::is_available()), cu::device_count());
  if (!cu::is_available()) {
    std::printf("FAIL no CUDA device\n");
    return 1;
  }
  try {
    if (only) do_bench ? bench_selective_scan() : test_selective_scan();
    else if (do_bench) bench();
    else run_all();
  } catch (const std::exception& e) {
    report("exception", false, e.what());
  }
  std::printf("cuda_check: %d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
