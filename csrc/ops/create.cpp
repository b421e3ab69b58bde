// Creation ops and the global random generator (xoshiro256**, seeded by manual_seed).
#include <cmath>

#include "core/parallel.h"
#include "cpu/elementwise.h"
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
  FASTDL_CHECK((end - start) / step >= 0 || start == end, ValueError, "arange: upper bound and larger bound inconsistent with step sign; got start=", start, " end=", end, " step=", step);
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

Tensor rand(const Dims& shape, DType dt, Device dev) {
  FASTDL_PROFILE("rand");
  FASTDL_CHECK(is_floating(dt), TypeError, "rand: dtype must be floating point; got ", dtype_name(dt));
  return generate(shape, dt, dev, "rand", [](int64_t) { return rng().uniform(); });
}
Tensor randn(const Dims& shape, DType dt, Device dev) {
  FASTDL_PROFILE("randn");
  FASTDL_CHECK(is_floating(dt), TypeError, "randn: dtype must be floating point; got ", dtype_name(dt));
  return generate(shape, dt, dev, "randn", [](int64_t) { return rng().normal(); });
}
Tensor randint(int64_t low, int64_t high, const Dims& shape, DType dt, Device dev) {
  FASTDL_PROFILE("randint");
  FASTDL_CHECK(high > low, ValueError, "randint: high must be greater than low; got low=", low, " high=", high);
  uint64_t span = uint64_t(high - low);
  return generate(shape, dt, dev, "randint", [&](int64_t) { return double(low + int64_t(rng().next() % span)); });
}
Tensor randperm(int64_t n, DType dt, Device dev) {
  FASTDL_CHECK(n >= 0, ValueError, "randperm: n must be non-negative; got ", n);
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[size_t(i)] = i;
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[size_t(i)], p[size_t(rng().next() % uint64_t(i + 1))]);
  return generate(Dims{n}, dt, dev, "randperm", [&](int64_t i) { return double(p[size_t(i)]); });
}
Tensor bernoulli(const Tensor& p) {
  FASTDL_PROFILE("bernoulli", p);
  Tensor pc = to_dtype(to_device(p, Device()), DType::f64);
  pc = contiguous(pc);
  const double* pp = pc.data<double>();
  return generate(p.shape(), p.dtype(), p.device(), "bernoulli", [&](int64_t i) { return rng().uniform() < pp[i] ? 1.0 : 0.0; });
}
void uniform_(Tensor& t, double lo, double hi) {
  copy_(t, generate(t.shape(), DType::f64, Device(), "uniform_", [&](int64_t) { return lo + (hi - lo) * rng().uniform(); }));
}
void normal_(Tensor& t, double mean, double std) {
  copy_(t, generate(t.shape(), DType::f64, Device(), "normal_", [&](int64_t) { return mean + std * rng().normal(); }));
}

}  // namespace fastdl
