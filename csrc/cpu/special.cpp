// Scalar special functions (cpu/special.h). Formulas: the reflection and recurrence of digamma and
// its asymptotic series (DLMF 5.15, 5.11.2), Euler-Maclaurin summation for the Hurwitz zeta
// (DLMF 25.11.5 with 2.10), erfinv from Winitzki's closed form refined by Halley steps.
#include "cpu/special.h"

#include <cmath>
#include <limits>

#include "core/parallel.h"

namespace fastdl::cpu {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// B_2k / (2k)! for k = 1 .. 7 (the Euler-Maclaurin and Stirling coefficients)
constexpr double kB2kFact[] = {1.0 / 12, -1.0 / 720, 1.0 / 30240, -1.0 / 1209600, 1.0 / 47900160,
                               -691.0 / 1307674368000, 1.0 / 74724249600};

bool nonpos_int(double x) { return x <= 0 && x == std::floor(x); }

// cot(pi x) with x reduced to f = x - round(x) in [-1/2, 1/2] (exact), so a large |x| keeps its
// digits; past |f| = 1/4 as sign(f) tan(pi (1/2 - |f|)), exactly 0 at the half-integers.
double cot_pi(double x) {
  const double f = x - std::nearbyint(x), g = 0.5 - std::fabs(f);
  return g < 0.25 ? std::copysign(1.0, f) * std::tan(kPi * g) : 1.0 / std::tan(kPi * f);
}

// psi(x) for x >= 1/2: shifted up to y >= 10, then ln y - 1/(2y) - sum_k B_2k / (2k y^2k).
double digamma_right(double x) {
  double acc = 0;
  while (x < 10) { acc -= 1.0 / x; x += 1; }
  if (std::isinf(x)) return x;
  const double z = 1.0 / (x * x);
  double tail = 0, zk = z, fact = 1;  // fact = (2k - 1)!, so B_2k / (2k)! fact = B_2k / (2k)
  for (int k = 1; k <= 7; ++k) {
    tail += kB2kFact[k - 1] * fact * zk;
    zk *= z;
    fact *= double(2 * k) * double(2 * k + 1);
  }
  return acc + std::log(x) - 0.5 / x - tail;
}

double digamma(double x) {
  if (std::isnan(x)) return x;
  if (x == 0) return std::signbit(x) ? kInf : -kInf;  // -0: +inf (PyTorch)
  if (nonpos_int(x)) return kNaN;                       // the negative integers and -inf
  if (x < 0.5) return digamma_right(1.0 - x) - kPi * cot_pi(x);
  return digamma_right(x);
}

double lgamma(double x) {
  int sign;
  return ::lgamma_r(x, &sign);  // +inf at the poles and +-inf; reentrant (std::lgamma writes signgam)
}

// zeta(s, x) = sum_j (x + j)^-s, integer s >= 2, x >= 1/2: the terms below y = x + n >= 10 + 2s
// summed, the rest y^(1-s)/(s-1) + y^-s/2 + sum_k B_2k/(2k)! s (s+1) ... (s+2k-2) y^(-s-2k+1)
// (the series' first omitted term relative to the sum, ~(s + 2k)^(2k) / (2 pi y)^(2k), is below
// 1e-16 there; from y = 10 it was 1e-11 at s = 7).
double zeta(double s, double x) {
  if (std::isnan(x)) return x;
  if (std::isinf(x)) return 0;
  double total = 0;
  while (x < 10 + 2 * s) { total += std::pow(x, -s); x += 1; }
  total += std::pow(x, 1 - s) / (s - 1) + 0.5 * std::pow(x, -s);
  double rising = s, yk = std::pow(x, -s - 1);
  for (int k = 1; k <= 7; ++k) {
    total += kB2kFact[k - 1] * rising * yk;
    rising *= (s + 2 * k - 1) * (s + 2 * k);
    yk /= x * x;
  }
  return total;
}

// The y with erf(y) = x on (-1, 1): Winitzki's closed form (~2e-3), two Halley steps, then the
// inverse's Taylor series to second order in x - erf(y); +-inf at +-1, NaN outside.
double erfinv(double x) {
  if (!(std::fabs(x) < 1)) return std::fabs(x) == 1 ? std::copysign(kInf, x) : kNaN;
  constexpr double a = 0.147, two_over_sqrt_pi = 1.1283791670955126;
  const double ln = std::log((1 - x) * (1 + x)), b = 2 / (kPi * a) + 0.5 * ln;
  double y = std::copysign(std::sqrt(std::sqrt(b * b - ln / a) - b), x);
  for (int i = 0; i < 2; ++i) {
    const double f = std::erf(y) - x, d = two_over_sqrt_pi * std::exp(-y * y);
    y -= (f / d) / (1 + y * f / d);
  }
  const double d = two_over_sqrt_pi * std::exp(-y * y), delta = x - std::erf(y);
  return y + delta / d + y * (delta * delta) / (d * d);
}

template <class F> void rows(const double* x, double* y, int64_t n, const F& f) {
  parallel_for(0, n, 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) y[i] = f(x[i]);
  });
}

}  // namespace

void special_rows(SpecialFn f, double s, const double* x, double* y, int64_t n) {
  switch (f) {
    case SpecialFn::lgamma: return rows(x, y, n, [](double v) { return lgamma(v); });
    case SpecialFn::digamma: return rows(x, y, n, [](double v) { return digamma(v); });
    case SpecialFn::erfc: return rows(x, y, n, [](double v) { return std::erfc(v); });
    case SpecialFn::erfinv: return rows(x, y, n, [](double v) { return erfinv(v); });
    case SpecialFn::zeta: return rows(x, y, n, [s](double v) { return zeta(s, v); });
  }
}

}  // namespace fastdl::cpu
