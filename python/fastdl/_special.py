"""Special functions composed from native elementwise ops in float64-grade series: lgamma (Lanczos,
reflection below 1/2), digamma (shifted up to 10, then its asymptotic series; reflection below
1/2) and polygamma (Hurwitz zeta by shifting the argument up, then its Euler-Maclaurin tail), each
with the next one as its gradient (autograd Functions, as PyTorch defines them); erfc, and erfinv
(a closed-form first guess refined by Halley steps on erf), whose gradients come from the
composition."""
import builtins
import math

from fastdl import _C
from fastdl._C import Tensor

# Lanczos approximation, g = 7, 9 terms: relative error ~1e-15 for x >= 1/2.
_LANCZOS_G = 7.0
_LANCZOS = (0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
            -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
            1.5056327351493116e-7)
# Bernoulli numbers B_2k / (2k)! for the Euler-Maclaurin tail of the Hurwitz zeta function.
_B2K = (1.0 / 12, -1.0 / 720, 1.0 / 30240, -1.0 / 1209600, 1.0 / 47900160, -691.0 / 1307674368000)


def _float(t, op):
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: expected a Tensor; got {type(t).__name__}")
    if t.dtype.is_floating_point:
        return t
    from fastdl._tensor import get_default_dtype
    return t.to(get_default_dtype())


def _as64(x):
    """Series run in float64 (float32 inputs would lose digits in the sums), cast back after."""
    return x if x.dtype == _C.dtype.float64 else x.to(_C.dtype.float64)


def _nonpos_int(x):
    return _C.logical_and(x <= 0, x == _C.floor(x))


def _lanczos_lgamma(x):  # x >= 1/2
    z = x - 1.0
    a = _C.full((), _LANCZOS[0], x.dtype, x.device) + z * 0.0
    for i, p in enumerate(_LANCZOS[1:], start=1):
        a = a + p / (z + builtins.float(i))
    t = z + (_LANCZOS_G + 0.5)
    return 0.5 * math.log(2 * math.pi) + (z + 0.5) * _C.log(t) - t + _C.log(a)


def _shift(x):
    """How far to shift arguments up so every finite x + shift >= 10 (the tail is then accurate to
    ~1e-15). Non-finite entries take no part: a NaN or an infinity elsewhere in the tensor must not
    change anyone else's value."""
    fin = _C.where(_C.isfinite(x), x, 10.0).detach()
    lo = builtins.float(fin.amin().item()) if x.numel() else 10.0
    return builtins.int(builtins.min(builtins.max(0.0, math.ceil(10.0 - lo)), 4000.0))


def _native(fn, composite, s=0):
    """fn's value on a float64 tensor: the native scalar code on the cpu (cpu/special.cpp), the
    composite of tensor ops elsewhere."""
    def value(x):
        if x.device.type == "cpu" and x.dtype == _C.dtype.float64:
            return _C._special_value(fn, x, s)
        return composite(x)
    return value


def _hurwitz_zeta(s, x):
    """zeta(s, x) = sum_j (x + j)^-s for integer s >= 2: the first terms summed, the rest by
    Euler-Maclaurin."""
    return _native("zeta", lambda t: _hurwitz_zeta_ops(s, t), s)(x)


def _hurwitz_zeta_ops(s, x):
    n = _shift(x)
    total = 0.0
    for j in builtins.range(n):
        total = total + _C.pow(x + builtins.float(j), -builtins.float(s))
    y = x + builtins.float(n)
    total = total + _C.pow(y, builtins.float(1 - s)) / (s - 1) + 0.5 * _C.pow(y, -builtins.float(s))
    rising = builtins.float(s)  # s (s + 1) ... (s + 2k - 2)
    for k, b in enumerate(_B2K, start=1):
        total = total + b * rising * _C.pow(y, -builtins.float(s + 2 * k - 1))
        rising *= (s + 2 * k - 1) * (s + 2 * k)
    return total


def _cot_poly(n):
    """Coefficients (lowest first) of P_n with d^n/dz^n cot(pi z) = pi^n P_n(cot(pi z)):
    P_0(u) = u, P_{k+1}(u) = -(1 + u^2) P_k'(u)."""
    c = [0.0, 1.0]
    for _ in builtins.range(n):
        d = [i * c[i] for i in builtins.range(1, len(c))]  # P_k'
        nxt = [0.0] * (len(d) + 2)
        for i, v in enumerate(d):
            nxt[i] -= v
            nxt[i + 2] -= v
        c = nxt
    return c


def _cot_pi(x):
    """cot(pi x), its argument reduced to x - round(x) in [-1/2, 1/2] first (exact in floating point),
    so a large |x| keeps its digits and a small one is left as it is; past |f| = 1/4 as
    sign(f) tan(pi (1/2 - |f|)), exactly 0 at the half-integers."""
    f = x - _C.round(x)
    g = 0.5 - f.abs()
    near = g < 0.25
    return _C.where(near, _C.sign(f) * _C.tan(math.pi * _C.where(near, g, 0.0)),
                    1.0 / _C.tan(math.pi * _C.where(near, 0.25, f)))


def _reflect_term(n, x):
    """pi^(n+1) P_n(cot(pi x)): the reflection psi^(n)(x) = (-1)^n psi^(n)(1 - x) - this."""
    u = _cot_pi(x)
    c = _cot_poly(n)
    acc = c[-1]
    for v in reversed(c[:-1]):
        acc = acc * u + v
    return (math.pi ** (n + 1)) * acc


def _lgamma64(x):
    """log |Gamma(x)| in float64, no autograd: Lanczos from 1/2 up, the reflection
    log pi - log |sin(pi x)| - lgamma(1 - x) below (-log |x| - lgamma(1 - x) for |x| < 1e-8, where
    pi x would round in the subnormals); +inf at the poles and at +-inf."""
    low = x < 0.5
    right = _lanczos_lgamma(_C.where(low, 1.0 - x, _C.where(_C.isinf(x), 2.0, x)))
    xs = _C.where(low, x, 0.25)
    tiny = _C.abs(xs) < 1e-8
    refl = _C.where(tiny, -_C.log(_C.abs(_C.where(tiny, xs, 1.0))),
                    math.log(math.pi) - _C.log(_C.abs(_C.sin(math.pi * _C.where(tiny, 0.25, xs)))))
    out = _C.where(low, refl - right, right)
    return _C.where(_C.logical_or(_nonpos_int(x), _C.isinf(x)), builtins.float("inf"), out)


def _digamma64(x):
    """psi(x) in float64, no autograd: for x >= 1/2, psi(x + n) - sum_j 1 / (x + j) with x + n >= 10
    and the asymptotic series there (n <= 10); below 1/2 the reflection psi(1 - x) - pi / tan(pi x).
    -inf at 0, +inf at -0 and +inf, NaN at the negative integers and -inf (PyTorch)."""
    low = x < 0.5
    xr = _C.where(low, 1.0 - x, x)  # >= 1/2 (or +inf / NaN)
    n = _shift(xr)
    acc = 0.0
    for j in builtins.range(n):
        acc = acc - 1.0 / (xr + builtins.float(j))
    y = xr + builtins.float(n)
    tail = _C.log(y) - 0.5 / y
    y2 = y * y
    inv = 1.0 / y2
    for k, b in enumerate(_B2K, start=1):  # - sum B_2k / (2k y^2k)
        tail = tail - (b * math.factorial(2 * k) / (2 * k)) * inv
        inv = inv / y2
    right = acc + tail
    out = _C.where(low, right - _reflect_term(0, _C.where(low, x, 0.25)), right)
    zero = _C.where(_C.reciprocal(x) < 0, builtins.float("inf"), builtins.float("-inf"))  # -0: +inf
    return _C.where(_nonpos_int(x), _C.where(x == 0, zero, builtins.float("nan")), out)


def _polygamma64(n, x):
    """The n-th derivative of digamma (n >= 1) in float64, no autograd: (-1)^(n+1) n! zeta(n + 1, x)
    from 1/2 up; below, the reflection (-1)^n psi^(n)(1 - x) - pi^(n+1) P_n(cot(pi x)) (DLMF 5.15.6)."""
    pole = _nonpos_int(x)
    low = _C.logical_and(x < 0.5, _C.logical_not(pole))
    xr = _C.where(pole, 0.5, _C.where(low, 1.0 - x, x))  # >= 1/2
    right = _hurwitz_zeta(n + 1, xr) * builtins.float((-1) ** (n + 1) * math.factorial(n))
    out = _C.where(low, (-1.0) ** n * right - _reflect_term(n, _C.where(low, x, 0.25)), right)
    inf, nan = builtins.float("inf"), builtins.float("nan")
    sign_inf = (-1.0) ** (n + 1) * inf  # the zeta form's limit at the poles, as PyTorch (and SciPy)
    out = _C.where(pole, sign_inf, out)
    # PyTorch's values at the infinities (its zeta series): +inf -> 0 for n = 1, NaN above;
    # -inf -> NaN for n = 1, the pole's infinity above
    out = _C.where(x == inf, 0.0 if n == 1 else nan, out)
    return _C.where(x == -inf, nan if n == 1 else sign_inf, out)


def _apply(name, value, deriv, input):
    """An elementwise function whose value is value(x) computed in float64 (the series would lose
    digits in float32) and cast back, and whose derivative is deriv(x), itself a differentiable
    fastdl function (lgamma' = digamma, digamma' = polygamma(1), ...), as PyTorch defines them."""
    from fastdl.autograd.composite import unary_with_derivative  # autograd imports this package

    def val(t):
        out = value(_as64(t))
        return out if out.dtype == t.dtype else out.to(t.dtype)
    return unary_with_derivative(name, val, deriv, _float(input, name))


def lgamma(input):
    """log |Gamma(x)|; +inf at the poles 0, -1, -2, ... and at +-inf. Gradient: digamma."""
    return _apply("lgamma", _native("lgamma", _lgamma64), digamma, input)


def digamma(input):
    """d/dx log Gamma(x); -inf at 0, NaN at the negative integers (PyTorch). Gradient: polygamma(1)."""
    return _apply("digamma", _native("digamma", _digamma64), lambda x: polygamma(1, x), input)


def polygamma(n, input):
    """The n-th derivative of digamma: (-1)^(n+1) n! zeta(n + 1, x) for n >= 1. Gradient:
    polygamma(n + 1)."""
    if not isinstance(n, builtins.int) or n < 0:
        raise ValueError(f"polygamma: n must be a non-negative integer; got {n!r}")
    if n == 0:
        return digamma(input)
    return _apply(f"polygamma_{n}", lambda x: _polygamma64(n, x), lambda x: polygamma(n + 1, x), input)


def erfc(input):
    """1 - erf(x). Gradient: -2 / sqrt(pi) exp(-x^2) (0 at +-inf, not 0 * inf)."""
    return _apply("erfc", _native("erfc", _erfc_value), lambda x: _C.exp(-x * x) * (-2.0 / math.sqrt(math.pi)), input)


def _erfc_value(input):
    """1 - erf(x); from x = 1.5 on (erfc < 0.034, where 1 - erf would lose digits) the continued
    fraction exp(-x^2) / sqrt(pi) / (x + (1/2) / (x + 1 / (x + (3/2) / (x + ...)))), 120 levels deep
    (relative error 2e-16 at x = 1.5, against mpmath; 60 levels left 2e-13 there)."""
    x0 = _float(input, "erfc")
    x = _as64(x0)
    tail = x >= 1.5
    xs = _C.where(tail, x, 3.0)  # the unused branch sees a safe argument
    f = xs
    for k in builtins.range(120, 0, -1):
        f = xs + (k / 2.0) / f
    cf = _C.exp(-xs * xs) / (math.sqrt(math.pi) * f)
    out = _C.where(tail, cf, 1.0 - _C.erf(_C.where(tail, 0.0, x)))
    return out if out.dtype == x0.dtype else out.to(x0.dtype)


def erfinv(input):
    """The y with erf(y) = x on (-1, 1), +-inf at +-1, NaN outside. Gradient: sqrt(pi) / 2 exp(y^2),
    PyTorch's, so inf at +-1 and NaN outside."""
    return _apply("erfinv", _native("erfinv", _erfinv_value), lambda x: _C.exp(_C.square(erfinv(x))) * (math.sqrt(math.pi) / 2.0), input)


def _erfinv_value(input):
    """erfinv's value (erfinv gives it PyTorch's gradient): Winitzki's closed form (~2e-3) refined by
    two Halley steps and a last step of the inverse's Taylor series. Near +-1 digits go (erf's
    rounding over erf'(y)): relative error ~1e-9 at 1 - 1e-7, ~1e-6 at 1 - 1e-12."""
    x0 = _float(input, "erfinv")
    x = _as64(x0)
    a = 0.147
    inside = _C.abs(x) < 1.0
    xs = _C.where(inside, x, 0.0).detach()
    ln = _C.log((1.0 - xs) * (1.0 + xs))
    b = 2.0 / (math.pi * a) + 0.5 * ln
    y = _C.sign(xs) * _C.sqrt(_C.sqrt(b * b - ln / a) - b)
    two_over_sqrt_pi = 2.0 / math.sqrt(math.pi)
    for _ in builtins.range(2):
        f = _C.erf(y) - xs
        d = two_over_sqrt_pi * _C.exp(-y * y)
        y = y - (f / d) / (1.0 + y * f / d)
    # the inverse's Taylor series about y, to second order in delta = x - erf(y) (d = erf'(y))
    d = two_over_sqrt_pi * _C.exp(-y * y)
    delta = _C.where(inside, x, 0.0) - _C.erf(y)
    out = y + delta / d + y * (delta * delta) / (d * d)
    edge = _C.where(x > 0, builtins.float("inf"), builtins.float("-inf"))
    out = _C.where(inside, out, _C.where(_C.abs(x) == 1.0, edge, builtins.float("nan")))
    return out if out.dtype == x0.dtype else out.to(x0.dtype)


def mvlgamma(input, p):
    """Multivariate log-gamma of dimension p: sum_i lgamma(x - i / 2) + p (p - 1) / 4 log(pi)."""
    if p < 1:
        raise ValueError(f"mvlgamma: p must be >= 1; got {p}")
    x = _float(input, "mvlgamma")  # no domain check (PyTorch 2.13 has none either): lgamma's values
    out = lgamma(x)
    for i in builtins.range(1, p):
        out = out + lgamma(x - i / 2)
    return out + p * (p - 1) / 4 * math.log(math.pi)
