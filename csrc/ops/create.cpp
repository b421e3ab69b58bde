// Creation ops and the global random generator (xoshiro256**, seeded by manual_seed). A random
// fill draws one 64-bit key from it per call; its elements are then counter-based Philox words of
// that key (cpu/random.h), so a fill is the same on any thread count and runs vectorised.
#include <cmath>
#include <cstring>

#include "core/parallel.h"
#include "cpu/elementwise.h"
#include "cpu/random.h"
#include "core/profiler.h"
#include "ops/ops.h"

namespace fastdl {

namespace {
struct Rng {
  uint64_t s[4];
  static uint64_t splitmix(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  void seed(uint64_t x) { for (auto& v : s) v = splitmix(x); }
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t next() {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45);
    return r;
  }
  double uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1)
  double normal() {
    double u1 = uniform(), u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
};
Rng& rng() { static Rng r = [] { Rng x; x.seed(0x5eed); return x; }(); return r; }

void check_shape(const Dims& shape, const char* op) {
  for (int i = 0; i < shape.size(); ++i)
    FASTDL_CHECK(shape[i] >= 0, ValueError, op, ": negative dimension in size ", shape_str(shape));
}

// Fill a fresh CPU float64 buffer with f(i), then cast to the target dtype/device.
template <class F> Tensor generate(const Dims& shape, DType dt, Device dev, const char* op, F f) {
  check_shape(shape, op);
  Tensor tmp = empty(shape, DType::f64);
  double* p = tmp.data<double>();
  for (int64_t i = 0; i < tmp.numel(); ++i) p[i] = f(i);
  if (dt == DType::f64 && dev.is_cpu()) return tmp;
  return to_device(to_dtype(tmp, dt), dev);
}
}  // namespace

void manual_seed(uint64_t seed) { rng().seed(seed); }
uint64_t random_u64() { return rng().next(); }
void rng_state(uint64_t out[4]) { std::memcpy(out, rng().s, sizeof(rng().s)); }
void set_rng_state(const uint64_t in[4]) {
  FASTDL_CHECK(in[0] | in[1] | in[2] | in[3], ValueError, "set_rng_state: an all-zero state is not a valid generator state");
  std::memcpy(rng().s, in, sizeof(rng().s));
}

Tensor full(const Dims& shape, double value, DType dt, Device dev) {
  FASTDL_PROFILE("full");
  check_shape(shape, "full");
  Tensor t = empty(shape, dt, dev);
  fill_(t, value);
  return t;
}
Tensor zeros(const Dims& shape, DType dt, Device dev) { return full(shape, 0.0, dt, dev); }
Tensor ones(const Dims& shape, DType dt, Device dev) { return full(shape, 1.0, dt, dev); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype(), t.device()); }
Tensor scalar_tensor(double v, DType dt, Device dev) { return full(Dims(), v, dt, dev); }

Tensor arange(double start, double end, double step, DType dt, Device dev) {
  FASTDL_PROFILE("arange");
  FASTDL_CHECK(step != 0, ValueError, "arange: step must be nonzero");
  FASTDL_CHECK(std::isfinite(start) && std::isfinite(end), ValueError, "arange: start and end must be finite");
  FASTDL_CHECK((end - start) / step >= 0 || start == end, ValueError, "arange: upper bound and lower bound inconsistent with step sign; got start=", start, " end=", end, " step=", step);
  double len = std::ceil((end - start) / step);
  FASTDL_CHECK(len < 9.2e18, OutOfMemory, "arange: ", len, " elements is too many (start=", start, " end=", end,
               " step=", step, ")");
  int64_t n = len > 0 ? int64_t(len) : 0;
  return generate(Dims{n}, dt, dev, "arange", [&](int64_t i) { return start + double(i) * step; });
}

Tensor linspace(double start, double end, int64_t steps, DType dt, Device dev) {
  FASTDL_CHECK(steps >= 0, ValueError, "linspace: number of steps must be non-negative; got ", steps);
  double d = steps > 1 ? (end - start) / double(steps - 1) : 0.0;
  return generate(Dims{steps}, dt, dev, "linspace", [&](int64_t i) {
    return steps == 1 ? start : i < steps / 2 ? start + d * double(i) : end - d * double(steps - 1 - i);
  });
}

Tensor eye(int64_t n, int64_t m, DType dt, Device dev) {
  FASTDL_CHECK(n >= 0 && m >= 0, ValueError, "eye: n and m must be non-negative; got ", n, ", ", m);
  return generate(Dims{n, m}, dt, dev, "eye", [&](int64_t i) { return (i / m) == (i % m) ? 1.0 : 0.0; });
}

namespace {
// The largest value of dt below hi (a uniform fill's cap: rounding to dt must never give hi).
// Half floats step by their sign-magnitude bit patterns: down from +x is bits - 1, from -x bits + 1.
uint16_t half_below(uint16_t b) {
  return (b & 0x7fff) == 0 ? 0x8001 : (b & 0x8000) ? uint16_t(b + 1) : uint16_t(b - 1);
}
double below(DType dt, double hi) {
  if (dt == DType::f64) return std::nextafter(hi, -INFINITY);
  if (dt == DType::f32) {
    float c = float(hi);
    return double(c) < hi ? c : std::nextafter(c, -INFINITY);
  }
  const bool bf = dt == DType::bf16;
  uint16_t b = bf ? f32_to_bf16(float(hi)) : f32_to_f16(float(hi));
  auto val = [&](uint16_t x) { return double(bf ? bf16_to_f32(x) : f16_to_f32(x)); };
  return val(b) < hi ? val(b) : val(half_below(b));
}

// A float tensor of `shape` and dt on dev filled by kernel(kdt, data, n): in place when the kernel
// writes dt (f32, f64, bf16) on the CPU, else through a float32 buffer (f16) and a copy.
template <class K> Tensor fill_float(const Dims& shape, DType dt, Device dev, const char* op, K kernel) {
  check_shape(shape, op);
  const DType kdt = (dt == DType::f64 || dt == DType::bf16) ? dt : DType::f32;
  Tensor t = empty(shape, kdt);
  if (t.numel() > 0) kernel(kdt, t.data_ptr(), t.numel());
  if (kdt != dt) t = to_dtype(t, dt);
  return dev.is_cpu() ? t : to_device(t, dev);
}
// Fill t (any layout, dtype, device) in place: directly when the CPU kernel writes its layout.
template <class K> void fill_inplace(Tensor& t, const char* op, K kernel) {
  const DType dt = t.dtype();
  if (t.device().is_cpu() && t.is_contiguous() && (dt == DType::f32 || dt == DType::f64 || dt == DType::bf16)) {
    if (t.numel() > 0) kernel(dt, t.data_ptr(), t.numel());
    return;
  }
  copy_(t, fill_float(t.shape(), is_floating(dt) ? dt : DType::f64, Device(), op, kernel));
}
}  // namespace

Tensor rand(const Dims& shape, DType dt, Device dev) {
  FASTDL_PROFILE("rand");
  FASTDL_CHECK(is_floating(dt), TypeError, "rand: dtype must be floating point; got ", dtype_name(dt));
  const uint64_t key = rng().next();
  const double cap = below(dt, 1.0);
  return fill_float(shape, dt, dev, "rand", [&](DType kdt, void* p, int64_t n) {
    cpu::random_kernels().uniform(kdt, p, n, key, 0.0, 1.0, cap);
  });
}
Tensor randn(const Dims& shape, DType dt, Device dev) {
  FASTDL_PROFILE("randn");
  FASTDL_CHECK(is_floating(dt), TypeError, "randn: dtype must be floating point; got ", dtype_name(dt));
  const uint64_t key = rng().next();
  return fill_float(shape, dt, dev, "randn", [&](DType kdt, void* p, int64_t n) {
    cpu::random_kernels().normal(kdt, p, n, key, 0.0, 1.0);
  });
}
// 64-bit draws per element scaled into [0, span) (span = 0: all 64 bits), from one key.
static std::vector<uint64_t> draw_bits(int64_t n, uint64_t span) {
  std::vector<uint64_t> b(size_t(std::max<int64_t>(n, 0)));
  const uint64_t key = rng().next();
  if (n > 0) cpu::random_kernels().bits64(b.data(), n, key, span);
  return b;
}
Tensor randint(int64_t low, int64_t high, const Dims& shape, DType dt, Device dev) {
  FASTDL_PROFILE("randint");
  FASTDL_CHECK(high > low, ValueError, "randint: high must be greater than low; got low=", low, " high=", high);
  check_shape(shape, "randint");
  const uint64_t span = uint64_t(high) - uint64_t(low);
  Tensor t = empty(shape, DType::i64);
  const std::vector<uint64_t> b = draw_bits(t.numel(), span);
  int64_t* p = t.data<int64_t>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = int64_t(uint64_t(low) + b[size_t(i)]);
  if (dt != DType::i64) t = to_dtype(t, dt);
  return dev.is_cpu() ? t : to_device(t, dev);
}
Tensor randperm(int64_t n, DType dt, Device dev) {
  FASTDL_CHECK(n >= 0, ValueError, "randperm: n must be non-negative; got ", n);
  Tensor t = empty(Dims{n}, DType::i64);
  int64_t* p = t.data<int64_t>();
  const std::vector<uint64_t> b = draw_bits(n, 0);
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  // Fisher-Yates: swap i with j uniform in [0, i] (the high half of b_i (i + 1)).
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(p[i], p[uint64_t((unsigned __int128)b[size_t(i)] * uint64_t(i + 1) >> 64)]);
  if (dt != DType::i64) t = to_dtype(t, dt);
  return dev.is_cpu() ? t : to_device(t, dev);
}
Tensor bernoulli(const Tensor& p) {
  FASTDL_PROFILE("bernoulli", p);
  const DType kdt = p.dtype() == DType::f32 || is_half(p.dtype()) ? DType::f32 : DType::f64;
  Tensor pc = contiguous(to_dtype(to_device(p, Device()), kdt));
  Tensor out = empty(p.shape(), kdt);
  const uint64_t key = rng().next();
  if (out.numel() > 0) cpu::random_kernels().bernoulli(kdt, pc.data_ptr(), out.data_ptr(), out.numel(), key);
  if (kdt != p.dtype()) out = to_dtype(out, p.dtype());
  return p.device().is_cpu() ? out : to_device(out, p.device());
}
void uniform_(Tensor& t, double lo, double hi) {
  FASTDL_PROFILE("uniform_", t);
  FASTDL_CHECK(lo <= hi, ValueError, "uniform_: expects from <= to; got from=", lo, " to=", hi);
  FASTDL_CHECK(std::isfinite(hi - lo), ValueError, "uniform_: to - from must be finite; got from=", lo, " to=", hi);
  const uint64_t key = rng().next();
  const double cap = lo < hi ? std::max(lo, below(is_floating(t.dtype()) ? t.dtype() : DType::f64, hi)) : lo;
  fill_inplace(t, "uniform_", [&](DType kdt, void* p, int64_t n) {
    cpu::random_kernels().uniform(kdt, p, n, key, lo, hi, cap);
  });
}
void normal_(Tensor& t, double mean, double std) {
  FASTDL_PROFILE("normal_", t);
  FASTDL_CHECK(std >= 0, ValueError, "normal_: std must be non-negative; got ", std);
  const uint64_t key = rng().next();
  fill_inplace(t, "normal_", [&](DType kdt, void* p, int64_t n) {
    cpu::random_kernels().normal(kdt, p, n, key, mean, std);
  });
}

}  // namespace fastdl
