"""torch.special: special functions composed from native elementwise ops (so they run on any
device), evaluated in float64 and cast back.

Bessel functions (formulas from Abramowitz & Stegun and NIST DLMF chapter 10):
- I0, I1: the power series (DLMF 10.25.2) up to |x| = 30, then the large-argument expansion
  e^x / sqrt(2 pi x) sum (-1)^k a_k(nu) / x^k (DLMF 10.40.1), a_k(nu) = prod_{j<=k} (4 nu^2 - (2j-1)^2) / (k! 8^k);
- K0, K1: the series with logarithm (DLMF 10.31.1) up to x = 2; beyond, the integral
  K_nu(x) = sqrt(pi / 2x) e^-x / Gamma(nu + 1/2) int_0^inf e^-u u^(nu-1/2) (1 + u / 2x)^(nu-1/2) du
  (DLMF 10.32.8 with t = 1 + u / x), u = s^2, by the trapezoidal rule on the whole line (the
  integrand is even and analytic in a strip |Im s| < sqrt(2x), so the rule converges geometrically:
  step 0.18 leaves ~1e-17);
- J0, J1, Y0, Y1: the series (DLMF 10.2.2, 10.8.1) up to |x| = 2; beyond, the Hankel function's
  form of the same integral, H^(1)_nu(x) = sqrt(2 / pi x) e^(i chi) / Gamma(nu + 1/2)
  int_0^inf e^-u u^(nu-1/2) (1 + i u / 2x)^(nu-1/2) du, chi = x - (nu / 2 + 1 / 4) pi (the integral
  behind Hankel's asymptotic expansion; Watson, Theory of Bessel Functions, ch. 7), whose real and
  imaginary parts are J and Y; cos(x - c) is taken as cos x cos c + sin x sin c so that large x keep
  their digits;
- Ai: the Maclaurin series (DLMF 9.4.1) on [-2, 1]; below -2, J_{1/3} and Y_{1/3} (DLMF 9.6.6) from
  the Hankel integral above (u = s^6); Ai(x) = sqrt(x / 3) K_{1/3}(zeta) / pi (DLMF 9.6.1) with K by
  the trapezoidal rule on int_0^inf e^(-zeta cosh t) cosh(t / 3) dt (DLMF 10.32.9) for
  1 < x <= 9.65, and the asymptotic expansion (DLMF 9.7.5) beyond.
Derivatives are given where PyTorch defines them (i0, i0e, i1, i1e, ndtr, ndtri, log_ndtr, erfcx,
entr, xlog1py, gammainc / gammaincc in x, polygamma and the aliases); the others are forward-only, as in PyTorch."""
import builtins
import math

from fastdl import _C, _special
from fastdl._C import Tensor
from fastdl.autograd import Function, _C_no_grad

_GAMMA_E = 0.57721566490153286061
_SQRT_PI = math.sqrt(math.pi)
_INF = builtins.float("inf")
_NAN = builtins.float("nan")


def _default_float():
    from fastdl._tensor import get_default_dtype
    return get_default_dtype()


def _arg(x, op, name="input", like=None):
    """x as a tensor; a number becomes a 0-dim tensor on like's device, of like's dtype when that is
    floating (a float64 tensor keeps the number's digits, as PyTorch's wrapped numbers), else of the
    default dtype."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (builtins.int, builtins.float, builtins.bool)):
        dev = like.device if isinstance(like, Tensor) else "cpu"
        dt = like.dtype if isinstance(like, Tensor) and like.dtype.is_floating_point else _default_float()
        return _C.full((), builtins.float(x), dt, dev)
    raise TypeError(f"special.{op}: {name} must be a Tensor or a number; got {type(x).__name__}")


def _args2(a, b, op, name_b="other"):
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        _arg(a, op), _arg(b, op, name_b)  # type errors first
    return _arg(a, op, "input", b), _arg(b, op, name_b, a)


def _out_dtype(*ts):
    fl = [t.dtype for t in ts if isinstance(t, Tensor) and t.dtype.is_floating_point]
    if not fl:
        return _default_float()
    if _C.dtype.float64 in fl:
        return _C.dtype.float64
    return fl[0] if builtins.all(d == fl[0] for d in fl) else _C.dtype.float32


def _f64(x):
    return x if x.dtype == _C.dtype.float64 else x.to(_C.dtype.float64)


def _cast(y, dt):
    return y if y.dtype == dt else y.to(dt)


def _amax_abs(x):
    if x.numel() == 0:
        return 0.0
    m = _C.where(_C.isfinite(x), _C.abs(x), 0.0)
    return builtins.float(m.amax().item())


def _zero(v):
    return _C.clamp(v, -1.0, 1.0) * 0.0  # 0 for +-inf too


def _piecewise(x, pieces):
    """out[i] = fn(x[i]) for the first (mask, fn) whose mask holds at i (mask None: every element
    left), each fn evaluated on its own elements only (gathered, then scattered back), so a branch
    costs nothing where it is not taken. Forward only (no autograd through the scatter)."""
    from fastdl._indexing import index_copy
    shape = list(x.shape)
    flat = x.reshape([-1])
    out = _zero(flat)
    left = flat == flat
    left = _C.logical_or(left, _C.logical_not(left))  # all True (NaN included)
    for mask, fn in pieces:
        m = left if mask is None else _C.logical_and(mask.reshape([-1]), left)
        idx = _C.nonzero(m).reshape([-1])
        if idx.shape[0] == 0:
            continue
        out = index_copy(out, 0, idx, fn(_C.index_select(flat, 0, idx)))
        left = _C.logical_and(left, _C.logical_not(m))
    return out.reshape(shape)


class _Unary(Function):
    """y = f(x) in float64 with dy/dx = df(x, y), both given as float64 tensor functions."""

    @staticmethod
    def forward(ctx, x, f, df):
        x64 = _f64(x)
        y = f(x64)
        out = _cast(y, x.dtype)
        if x.dtype == _C.dtype.float64:  # x64 is x and y the output: both are what backward needs
            ctx.save_for_backward(x64, y)
        else:  # float64 copies for backward, and x and the output for a create_graph one
            ctx.save_for_backward(x64, y, x, out)
        ctx.df, ctx.dtype = df, x.dtype
        return out

    @staticmethod
    def backward(ctx, g):
        saved = ctx.saved_tensors
        x64, y = saved[:2]
        if len(saved) > 2 and _C.is_grad_enabled():  # create_graph: the float64 values as functions of x
            x64, y = _f64(saved[2]), _f64(saved[3])
        return _cast(_f64(g) * ctx.df(x64, y), ctx.dtype), None, None


def _unary(x, op, f, df=None):
    x = _arg(x, op)
    if not x.dtype.is_floating_point:
        x = x.to(_default_float())
    g = (lambda t: _C.where(_C.isnan(t), t, f(t)))  # NaN in, NaN out
    if df is None:
        with _C_no_grad():
            return _cast(g(_f64(x)), x.dtype)
    return _Unary.apply(x, g, df)


# ---------------------------------------------------------------- modified Bessel I

def _series_terms(q, n, tol=1e-18):
    """Terms of sum_k q^k / (k! (k + n)!) until a term is below tol of the sum."""
    term, total, k = 1.0, 1.0, 0
    while True:
        k += 1
        term *= q / (k * (k + n))
        total += term
        if term < tol * total or k > 400:
            return k + 1


def _i_series(ax, n):
    """sum_k (x^2/4)^k / (k! (k+n)!) (times (x/2)^n outside), |x| <= 30."""
    m = builtins.min(_amax_abs(ax), 30.0)
    q = ax * ax * 0.25
    term = ax * 0.0 + 1.0 / math.factorial(n)
    total = term
    for k in builtins.range(1, _series_terms(m * m / 4, n)):
        term = term * q / builtins.float(k * (k + n))
        total = total + term
    return total


def _i_asym_scaled(ax, nu):
    """e^-x I_nu(x) for x >= 30: e^-x I ~ (2 pi x)^-1/2 sum (-1)^k a_k(nu) / x^k."""
    inv = 1.0 / ax
    term = ax * 0.0 + 1.0
    total = term
    mu = 4.0 * nu * nu
    for k in builtins.range(1, 40):
        term = term * (-(mu - (2 * k - 1) ** 2) / (8.0 * k)) * inv
        total = total + term
    return total / _C.sqrt(2 * math.pi * ax)


_I_SPLIT = 30.0


def _i0e64(x):
    ax = _C.abs(x)
    big = _C.logical_and(ax > _I_SPLIT, _C.isfinite(ax))
    small = _C.exp(-_C.where(big, 0.0, ax)) * _i_series(_C.where(big, 0.0, ax), 0)
    large = _i_asym_scaled(_C.where(big, ax, _I_SPLIT + 1.0), 0)
    return _C.where(_C.isinf(x), 0.0, _C.where(big, large, small))


def _i1e64(x):
    ax = _C.abs(x)
    big = _C.logical_and(ax > _I_SPLIT, _C.isfinite(ax))
    xs = _C.where(big, 0.0, ax)
    small = _C.exp(-xs) * (xs * 0.5) * _i_series(xs, 1)
    large = _i_asym_scaled(_C.where(big, ax, _I_SPLIT + 1.0), 1)
    return _C.sign(x) * _C.where(_C.isinf(x), 0.0, _C.where(big, large, small))


def _i0_64(x):
    ax = _C.abs(x)
    big = ax > _I_SPLIT
    small = _i_series(_C.where(big, 0.0, ax), 0)
    # e^x split in two so the scaled value times e^x overflows only where I0 itself does
    half = _C.exp(0.5 * ax)
    large = _i_asym_scaled(_C.where(big, ax, _I_SPLIT + 1.0), 0) * half * half
    return _C.where(big, large, small)


def _i1_64(x):
    ax = _C.abs(x)
    big = ax > _I_SPLIT
    xs = _C.where(big, 0.0, ax)
    small = xs * 0.5 * _i_series(xs, 1)
    half = _C.exp(0.5 * ax)
    large = _i_asym_scaled(_C.where(big, ax, _I_SPLIT + 1.0), 1) * half * half
    return _C.sign(x) * _C.where(big, large, small)


def _i1_over_x_fix(x, i1, i0):
    """dI1/dx = I0 - I1 / x, 1/2 at 0."""
    xs = _C.where(x == 0, 1.0, x)
    return _C.where(x == 0, 0.5, i0 - i1 / xs)


def i0(input):
    """Modified Bessel function of the first kind, order 0; d/dx = I1."""
    return _unary(input, "i0", _i0_64, lambda x, y: i1(x))  # i1 itself: its derivative is 1/2 at 0


def i0e(input):
    """e^-|x| I0(x); d/dx = i1e(x) - sign(x) i0e(x)."""
    return _unary(input, "i0e", _i0e64, lambda x, y: i1e(x) - _C.sign(x) * y)


def i1(input):
    """Modified Bessel function of the first kind, order 1; d/dx = I0 - I1 / x."""
    return _unary(input, "i1", _i1_64, lambda x, y: _i1_over_x_fix(x, y, _i0_64(x)))


def i1e(input):
    """e^-|x| I1(x); d/dx = i0e - i1e (sign(x) + 1 / x)."""
    def d(x, y):
        xs = _C.where(x == 0, 1.0, x)
        return _C.where(x == 0, 0.5, _i0e64(x) - y * (_C.sign(x) + 1.0 / xs))
    return _unary(input, "i1e", _i1e64, d)


def modified_bessel_i0(input):
    return _unary(input, "modified_bessel_i0", _i0_64)


def modified_bessel_i1(input):
    return _unary(input, "modified_bessel_i1", _i1_64)


# ---------------------------------------------------------------- Gauss-type trapezoidal integrals

_H = 0.18
_NODES = [j * _H for j in builtins.range(0, 38)]  # s up to 6.66: e^-s^2 s^2 < 1e-17


def _k_scaled_int(x, nu):
    """e^x K_nu(x) for x >= 2 (nu = 0, 1), by the trapezoidal rule on the even integrand."""
    inv2x = 0.5 / x
    total = x * 0.0
    for j, s in enumerate(_NODES):
        w = (1.0 if j == 0 else 2.0) * _H * math.exp(-s * s)
        if nu == 0:
            total = total + w * _C.rsqrt(1.0 + (s * s) * inv2x)
        else:
            total = total + (w * s * s) * _C.sqrt(1.0 + (s * s) * inv2x)
    c = 1.0 / _SQRT_PI if nu == 0 else 2.0 / _SQRT_PI
    return c * total * _C.sqrt(math.pi * inv2x)


def _k_small(x, nu):
    """K_nu(x) for 0 < x <= 2 from the logarithmic series (DLMF 10.31.1)."""
    q = x * x * 0.25
    lg = _C.log(x * 0.5)
    if nu == 0:
        term = x * 0.0 + 1.0
        i0s, acc = term, x * 0.0
        h = 0.0
        for k in builtins.range(1, 26):
            term = term * q / builtins.float(k * k)
            h += 1.0 / k
            i0s = i0s + term
            acc = acc + h * term
        return -(lg + _GAMMA_E) * i0s + acc
    term = x * 0.0 + 1.0  # q^k / (k! (k+1)!)
    i1s = term
    psi_sum = 2.0 * (-_GAMMA_E) + 1.0  # psi(1) + psi(2)
    acc = term * psi_sum
    hk, hk1 = 0.0, 1.0
    for k in builtins.range(1, 26):
        term = term * q / builtins.float(k * (k + 1))
        hk += 1.0 / k
        hk1 += 1.0 / (k + 1)
        i1s = i1s + term
        acc = acc + term * (hk + hk1 - 2.0 * _GAMMA_E)
    return 1.0 / x + lg * (x * 0.5) * i1s - (x * 0.25) * acc


def _k64(x, nu, scaled):
    return _piecewise(x, [
        (_C.logical_not(x > 0), lambda v: _C.where(v == 0, _INF, _NAN)),
        (_C.isinf(x), _zero),
        (x > 2.0, lambda v: _k_scaled_int(v, nu) * (1.0 if scaled else _C.exp(-v))),
        (None, lambda v: _k_small(v, nu) * (_C.exp(v) if scaled else 1.0)),
    ])


def modified_bessel_k0(input):
    return _unary(input, "modified_bessel_k0", lambda x: _k64(x, 0, False))


def modified_bessel_k1(input):
    return _unary(input, "modified_bessel_k1", lambda x: _k64(x, 1, False))


def scaled_modified_bessel_k0(input):
    return _unary(input, "scaled_modified_bessel_k0", lambda x: _k64(x, 0, True))


def scaled_modified_bessel_k1(input):
    return _unary(input, "scaled_modified_bessel_k1", lambda x: _k64(x, 1, True))


# ---------------------------------------------------------------- Bessel J, Y

def _hankel_parts(x, nu):
    """(A, B) with H^(1)_nu(x) = sqrt(2 / pi x) e^(i chi) (A + i B), chi = x - (nu/2 + 1/4) pi, x >= 2."""
    inv2x = 0.5 / x
    a_sum, b_sum = x * 0.0, x * 0.0
    for j, s in enumerate(_NODES):
        w = (1.0 if j == 0 else 2.0) * _H * math.exp(-s * s)
        if j == 0:
            a_sum = a_sum + w * (1.0 if nu == 0 else 0.0)
            continue
        a = (s * s) * inv2x
        # sqrt(1 + i a) = p + i a / (2 p), p = sqrt((|1 + i a| + 1) / 2): no trigonometry, no cancellation
        m = _C.sqrt(1.0 + a * a)
        p = _C.sqrt(0.5 * m + 0.5)
        if nu == 0:  # (1 + i a)^-1/2 = conj(sqrt(1 + i a)) / |1 + i a|
            r = w / m
            a_sum = a_sum + r * p
            b_sum = b_sum - (0.5 * r) * a / p
        else:  # s^2 (1 + i a)^1/2
            ws = w * s * s
            a_sum = a_sum + ws * p
            b_sum = b_sum + (0.5 * ws) * a / p
    c = 1.0 / _SQRT_PI if nu == 0 else 2.0 / _SQRT_PI
    return a_sum * c, b_sum * c


def _jy_large(x, nu):
    """(J_nu(x), Y_nu(x)) for x >= 2."""
    a, b = _hankel_parts(x, nu)
    cx, sx = _C.cos(x), _C.sin(x)
    r2 = math.sqrt(0.5)
    if nu == 0:  # chi = x - pi/4
        cc, sc = (cx + sx) * r2, (sx - cx) * r2
    else:  # chi = x - 3 pi / 4
        cc, sc = (sx - cx) * r2, -(sx + cx) * r2
    amp = _C.sqrt(2.0 / (math.pi * x))
    return amp * (a * cc - b * sc), amp * (a * sc + b * cc)


def _j_small(x, nu):
    q = -x * x * 0.25
    term = x * 0.0 + 1.0
    total = term
    for k in builtins.range(1, 26):
        term = term * q / builtins.float(k * (k + nu))
        total = total + term
    return total if nu == 0 else total * (x * 0.5)


def _y_small(x, nu):
    q = -x * x * 0.25
    lg = _C.log(x * 0.5)
    if nu == 0:
        term = x * 0.0 + 1.0
        j0, acc = term, term * (-_GAMMA_E)
        psi = -_GAMMA_E
        for k in builtins.range(1, 26):
            term = term * q / builtins.float(k * k)
            psi += 1.0 / k
            j0 = j0 + term
            acc = acc + term * psi
        return (2.0 / math.pi) * (lg * j0 - acc)
    term = x * 0.0 + 1.0
    j1s = term
    ps = 1.0 - 2.0 * _GAMMA_E
    acc = term * ps
    hk, hk1 = 0.0, 1.0
    for k in builtins.range(1, 26):
        term = term * q / builtins.float(k * (k + 1))
        hk += 1.0 / k
        hk1 += 1.0 / (k + 1)
        j1s = j1s + term
        acc = acc + term * (hk + hk1 - 2.0 * _GAMMA_E)
    return -2.0 / (math.pi * x) + (2.0 / math.pi) * lg * (x * 0.5) * j1s - (x / (2.0 * math.pi)) * acc


def _j64(x, nu):
    ax = _C.abs(x)
    out = _piecewise(ax, [
        (_C.isinf(ax), _zero),
        (ax > 2.0, lambda v: _jy_large(v, nu)[0]),
        (None, lambda v: _j_small(v, nu)),
    ])
    return out if nu == 0 else _C.sign(x) * out


def _y64(x, nu):
    return _piecewise(x, [
        (_C.logical_not(x > 0), lambda v: _C.where(v == 0, -_INF, _NAN)),
        (_C.isinf(x), _zero),
        (x > 2.0, lambda v: _jy_large(v, nu)[1]),
        (None, lambda v: _y_small(v, nu)),
    ])


def bessel_j0(input):
    return _unary(input, "bessel_j0", lambda x: _j64(x, 0))


def bessel_j1(input):
    return _unary(input, "bessel_j1", lambda x: _j64(x, 1))


def bessel_y0(input):
    return _unary(input, "bessel_y0", lambda x: _y64(x, 0))


def bessel_y1(input):
    return _unary(input, "bessel_y1", lambda x: _y64(x, 1))


def spherical_bessel_j0(input):
    """sin(x) / x, 1 at 0."""
    def f(x):
        xs = _C.where(x == 0, 1.0, _C.where(_C.isinf(x), 1.0, x))
        out = _C.where(x == 0, 1.0, _C.sin(xs) / xs)
        return _C.where(_C.isinf(x), 0.0, out)
    return _unary(input, "spherical_bessel_j0", f)


# ---------------------------------------------------------------- Airy Ai

_AI0 = 0.355028053887817239260  # Ai(0) = 3^(-2/3) / Gamma(2/3)
_AIP0 = 0.258819403792806798405  # -Ai'(0) = 3^(-1/3) / Gamma(1/3)


def _airy_series(x):
    x3 = x * x * x
    f = x * 0.0 + 1.0
    g = x * 1.0
    tf, tg = f, g
    for k in builtins.range(1, 60):
        tf = tf * x3 / builtins.float((3 * k - 1) * (3 * k))
        tg = tg * x3 / builtins.float((3 * k) * (3 * k + 1))
        f = f + tf
        g = g + tg
    return _AI0 * f - _AIP0 * g


def _airy_u(k_max):
    u = [1.0]
    for k in builtins.range(1, k_max):
        u.append(u[-1] * (6 * k - 5) * (6 * k - 3) * (6 * k - 1) / ((2 * k - 1) * 216.0 * k))
    return u


_AIRY_U = _airy_u(30)


def _airy_pos_asym(x):
    zeta = (2.0 / 3.0) * x * _C.sqrt(x)
    inv = 1.0 / zeta
    total, p = x * 0.0 + 1.0, x * 0.0 + 1.0
    for k in builtins.range(1, 30):
        p = p * inv
        total = total + ((-1.0) ** k * _AIRY_U[k]) * p
    return _C.exp(-zeta) / (2.0 * _SQRT_PI * _C.sqrt(_C.sqrt(x))) * total


_AIRY_NEG_H = 0.05
_AIRY_NEG_S = [j * _AIRY_NEG_H for j in builtins.range(1, 38)]  # e^-s^6 < 1e-17 past s = 1.85


def _airy_neg(t):
    """Ai(-t) for t >= 2: (sqrt t / 2) (J_{1/3}(zeta) - Y_{1/3}(zeta) / sqrt 3) (DLMF 9.6.6), with
    H^(1)_{1/3} = J + i Y from the Hankel integral (module docstring), u = s^6 making its integrand
    6 s^4 e^(-s^6) (1 + i s^6 / 2 zeta)^(-1/6) even and smooth, summed by the trapezoidal rule."""
    zeta = (2.0 / 3.0) * t * _C.sqrt(t)
    inv2z = 0.5 / zeta
    a_sum, b_sum = t * 0.0, t * 0.0
    for s in _AIRY_NEG_S:
        w = _AIRY_NEG_H * 6.0 * s ** 4 * math.exp(-s ** 6)
        a = (s ** 6) * inv2z
        r = w * _C.pow(1.0 + a * a, -1.0 / 12.0)
        ph = _C.atan(a) * (1.0 / 6.0)
        a_sum = a_sum + r * _C.cos(ph)
        b_sum = b_sum + r * _C.sin(ph)
    cz, sz = _C.cos(zeta), _C.sin(zeta)
    c0, s0 = math.cos(5 * math.pi / 12), math.sin(5 * math.pi / 12)
    cchi, schi = cz * c0 + sz * s0, sz * c0 - cz * s0  # chi = zeta - 5 pi / 12
    k = _C.sqrt(2.0 / (math.pi * zeta)) / math.gamma(5.0 / 6.0)
    re = k * (a_sum * cchi + b_sum * schi)
    im = k * (a_sum * schi - b_sum * cchi)
    return 0.5 * _C.sqrt(t) * (re - im / math.sqrt(3.0))


_AIRY_H = 0.05
_AIRY_T = [j * _AIRY_H for j in builtins.range(0, 110)]


def _airy_mid(x):
    """Ai(x) for 1 <= x <= 10: sqrt(x/3)/pi e^-zeta int_0^inf e^(-2 zeta sinh^2(t/2)) cosh(t/3) dt."""
    zeta = (2.0 / 3.0) * x * _C.sqrt(x)
    total = x * 0.0
    for j, t in enumerate(_AIRY_T):
        w = (0.5 if j == 0 else 1.0) * _AIRY_H * math.cosh(t / 3.0)
        sh = math.sinh(t / 2.0)
        total = total + w * _C.exp(zeta * (-2.0 * sh * sh))
    return _C.sqrt(x / 3.0) / math.pi * _C.exp(-zeta) * total


def _airy64(x):
    return _piecewise(x, [
        (_C.logical_not(_C.isfinite(x)), lambda v: _C.where(v == _INF, 0.0, _NAN)),
        (x > 9.65, _airy_pos_asym),
        (x > 1.0, _airy_mid),
        (x < -2.0, lambda v: _airy_neg(-v)),
        (None, _airy_series),
    ])


def airy_ai(input):
    return _unary(input, "airy_ai", _airy64)


# ---------------------------------------------------------------- error-function family

_SQRT1_2 = math.sqrt(0.5)


def _erfc_cf_den(z, levels=60):
    """The continued fraction f with erfc(z) = e^-z^2 / (sqrt(pi) f): 60 levels for z >= 2, 120 for
    z >= 1.5 (see _special.erfc)."""
    f = z
    for k in builtins.range(levels, 0, -1):
        f = z + (k / 2.0) / f
    return f


def ndtr(input):
    """The standard normal CDF: erfc(-x / sqrt 2) / 2."""
    x = _arg(input, "ndtr")
    x = x if x.dtype.is_floating_point else x.to(_default_float())
    return 0.5 * _special.erfc(x * (-_SQRT1_2))


def log_ndtr(input):
    """log of the normal CDF; below x = -3 from the continued fraction, so it does not underflow."""
    x0 = _arg(input, "log_ndtr")
    x0 = x0 if x0.dtype.is_floating_point else x0.to(_default_float())
    x = _f64(x0)
    low = x < -4.25
    z = _C.where(low, x, -5.0) * (-_SQRT1_2)
    lo = -z * z - _C.log((2.0 * _SQRT_PI) * _erfc_cf_den(z))
    xh = _C.where(low, 0.0, x)
    hi = _C.where(xh > 0, _C.log1p(-0.5 * _special.erfc(xh * _SQRT1_2)),
                  _C.log(0.5 * _special.erfc(xh * (-_SQRT1_2))))
    return _cast(_C.where(low, lo, hi), x0.dtype)


def erfcx(input):
    """e^(x^2) erfc(x)."""
    def f(x):
        tail = x >= 1.5
        z = _C.where(tail, _C.where(_C.isinf(x), 3.0, x), 3.0)
        cf = 1.0 / (_SQRT_PI * _erfc_cf_den(z, 120))
        xs = _C.where(tail, 0.0, x)
        near = _C.exp(xs * xs) * _special.erfc(xs)
        out = _C.where(tail, cf, near)
        return _C.where(x == _INF, 0.0, out)
    return _unary(input, "erfcx", f, lambda x, y: 2.0 * x * y - 2.0 / _SQRT_PI)


def _log_ndtr64(x):
    """(log ndtr(x), ndtr(x) / pdf(x)) for ndtri's Newton steps (forward only)."""
    def low(v):  # v < -4.25: the continued fraction, which does not underflow
        z = v * (-_SQRT1_2)
        f = _erfc_cf_den(z)
        return _C.stack([-z * z - _C.log((2.0 * _SQRT_PI) * f), 1.0 / (math.sqrt(2.0) * f)])

    def high(v):
        c = 0.5 * _special.erfc(v * (-_SQRT1_2))
        return _C.stack([_C.log(c), c * math.sqrt(2 * math.pi) * _C.exp(0.5 * v * v)])
    flat = x.reshape([-1])
    n = flat.shape[0]
    both = _piecewise(_C.cat([flat, flat]), [
        (_C.cat([flat < -4.25, flat < -4.25]), lambda v: _pair(v, low)),
        (None, lambda v: _pair(v, high)),
    ])
    return both[:n].reshape(list(x.shape)), both[n:].reshape(list(x.shape))


def _pair(v, fn):
    """fn on the first half of v (the second half repeats it), its two results laid out as halves."""
    h = v.shape[0] // 2
    r = fn(v[:h])
    return _C.cat([r[0], r[1]])


def ndtri(input):
    """The inverse of ndtr. By symmetry only the lower tail q = min(p, 1 - p) is solved (1 - p is
    exact for p >= 1/2): a first guess from erfinv (or the tail's asymptotic form below 1e-10),
    then Newton steps on log ndtr(y) = log q, which keep their digits down to p = 1e-300."""
    def f(p):
        inside = _C.logical_and(p > 0, p < 1)
        ps = _C.where(inside, p, 0.25)
        upper = ps > 0.5
        q = _C.where(upper, 1.0 - ps, ps)
        lq = _C.log(q)
        guess = math.sqrt(2.0) * _special.erfinv(2.0 * _C.where(q > 1e-10, q, 0.25) - 1.0)
        t = -2.0 * lq
        tail = -_C.sqrt(t - _C.log(t) - math.log(2 * math.pi))
        y = _C.where(q > 1e-10, guess, tail)
        for _ in builtins.range(3):
            ln, ratio = _log_ndtr64(y)
            y = y - (ln - lq) * ratio
        y = _C.where(upper, -y, y)
        out = _C.where(inside, y, _NAN)
        out = _C.where(p == 0, -_INF, out)
        return _C.where(p == 1, _INF, out)
    return _unary(input, "ndtri", f, lambda p, y: math.sqrt(2 * math.pi) * _C.exp(0.5 * y * y))


def entr(input):
    """-x log x for x > 0, 0 at 0, -inf below."""
    def f(x):
        xs = _C.where(x > 0, x, 1.0)
        out = _C.where(x > 0, -x * _C.log(xs), _C.where(x == 0, 0.0, -_INF))
        return _C.where(_C.isnan(x), _NAN, out)
    return _unary(input, "entr", f, lambda x, y: -(1.0 + _C.log(x)))


def xlog1py(input, other):
    """x log1p(y), 0 where x is 0 (unless y is NaN)."""
    x, y = _args2(input, other, "xlog1py")
    dt = _out_dtype(x, y)
    x, y = _cast(x, dt), _cast(y, dt)
    zero = _C.logical_and(x == 0, _C.logical_not(_C.isnan(y)))
    l1p = _C.log1p(y)
    # as xlogy: 0 where x == 0, with the gradient in x still log1p(y) there (PyTorch's)
    val = x * _C.where(_C.logical_and(zero, _C.logical_not(_C.isfinite(l1p))), 0.0, l1p)
    return _C.where(zero, val - val.detach(), val)


def xlogy(input, other):
    x, y = _args2(input, other, "xlogy")
    dt = _out_dtype(x, y)
    x, y = _cast(x, dt), _cast(y, dt)
    zero = _C.logical_and(x == 0, _C.logical_not(_C.isnan(y)))
    log_y = _C.log(y)
    # where x == 0 the value is 0 and the gradient in x is still log(y) (0 where that is infinite), as
    # PyTorch's; x times an infinite log there would be NaN
    val = x * _C.where(_C.logical_and(zero, _C.logical_not(_C.isfinite(log_y))), 0.0, log_y)
    return _C.where(zero, val - val.detach(), val)


# ---------------------------------------------------------------- zeta, gamma family

_B2K = _special._B2K


def zeta(input, other):
    """The Hurwitz zeta function sum_k (q + k)^-x (x > 1): the first terms summed until q + k >= 10
    + max(x), the rest by Euler-Maclaurin; q < 0 folded onto q > 0 (_zeta_value); inf at x = 1 and
    at q a non-positive integer, NaN for x < 1 and for q < 0 with non-integer x (PyTorch / Cephes)."""
    s0, q0 = _args2(input, other, "zeta")
    if isinstance(q0, Tensor) and q0.requires_grad and _C.is_grad_enabled():
        from fastdl.autograd.composite import elementwise_function  # d/dq = -s zeta(s + 1, q); none in s (PyTorch)
        return elementwise_function("Zeta", _zeta_value,
                                    lambda g, s, q: (None, g * (-s * zeta(s + 1.0, q)))).apply(s0.detach(), q0)
    return _zeta_value(s0, q0)


def _zeta_value(s0, q0):
    dt = _out_dtype(s0, q0)
    with _C_no_grad():
        s, q = _f64(s0), _f64(q0)
        s, q = _bcast(s, q)
        bad = _C.logical_or(_C.isnan(s), _C.isnan(q))
        ss = _C.where(s > 1.0, s, 2.0)
        ss = _C.where(_C.isinf(ss), 2.0, ss)
        qs = _C.where(_C.logical_and(q > 0, _C.isfinite(q)), q, 1.0)
        total = _zeta_positive(ss, qs)
        # q < 0 (not an integer; an integer s, else NaN below): with m = ceil(-q) and r = q + m in
        # (0, 1), the terms (q + k)^-s for k < m are (-1)^s (i - r)^-s, i = 1 .. m, so
        # zeta(s, q) = zeta(s, r) + (-1)^s (zeta(s, 1 - r) - zeta(s, m + 1 - r)), all at q > 0
        neg = _C.logical_and(_C.logical_and(q < 0, _C.isfinite(q)), q != _C.floor(q))
        if builtins.bool(_C.any(neg)):
            m = _C.where(neg, _C.ceil(-q), 1.0)
            r = _C.where(neg, q + m, 0.5)
            sign = _C.where(_C.fmod(ss, 2.0) == 0.0, 1.0, -1.0)  # (-1)^s
            folded = _zeta_positive(ss, r) + sign * (_zeta_positive(ss, 1.0 - r) - _zeta_positive(ss, m + 1.0 - r))
            total = _C.where(neg, folded, total)
        out = _C.where(s == 1.0, _INF, total)
        out = _C.where(s < 1.0, _NAN, out)
        out = _C.where(s == _INF, _C.where(q == 1.0, 1.0, _C.where(q > 1.0, 0.0, out)), out)
        qint = _C.logical_and(q <= 0, q == _C.floor(q))
        out = _C.where(_C.logical_and(s > 1.0, qint), _INF, out)
        out = _C.where(_C.logical_and(_C.logical_and(q < 0, _C.logical_not(qint)), s != _C.floor(s)), _NAN, out)
        out = _C.where(_C.logical_or(bad, q == _INF), _NAN, out)  # PyTorch's NaN at q = +inf
        return _cast(out, dt)


def _zeta_positive(ss, qs):
    """zeta(s, q) for s > 1 and q > 0: the terms summed until q + k >= 10 + max(s), the rest by
    Euler-Maclaurin."""
    smax = _amax_abs(ss)
    lo = builtins.float(qs.amin().item()) if qs.numel() else 10.0
    n = builtins.int(builtins.max(0.0, math.ceil(10.0 + builtins.min(smax, 60.0) - lo)))
    total = qs * 0.0
    for j in builtins.range(n):
        total = total + _C.pow(qs + builtins.float(j), -ss)
    y = qs + builtins.float(n)
    total = total + _C.pow(y, 1.0 - ss) / (ss - 1.0) + 0.5 * _C.pow(y, -ss)
    rising = ss * 1.0
    ypow = _C.pow(y, -ss - 1.0)
    for k, b in enumerate(_B2K, start=1):
        total = total + b * rising * ypow
        rising = rising * (ss + (2 * k - 1)) * (ss + 2 * k)
        ypow = ypow / (y * y)
    return total


def _bcast(a, b):
    if tuple(a.shape) == tuple(b.shape):
        return a, b
    from fastdl._shaping import broadcast_shapes
    shape = list(broadcast_shapes(tuple(a.shape), tuple(b.shape)))
    return _C.broadcast_to(a, shape), _C.broadcast_to(b, shape)


def gammainc(input, other):
    """The regularized lower incomplete gamma function P(a, x) (igamma): the series
    x^a e^-x / Gamma(a + 1) sum_k x^k / ((a + 1) ... (a + k)) for x < a + 1, else 1 - Q by the
    continued fraction for Q (modified Lentz, fixed depth); for a > 20 with x within 30% of a,
    Temme's uniform asymptotic expansion (_igamma_temme)."""
    return _igamma(input, other, "gammainc", upper=False)


def gammaincc(input, other):
    """The regularized upper incomplete gamma function Q(a, x) = 1 - P(a, x) (igammac)."""
    return _igamma(input, other, "gammaincc", upper=True)


class _IGamma(Function):
    """P(a, x) or Q(a, x); d/dx P = x^(a-1) e^-x / Gamma(a) (no derivative in a, as in PyTorch)."""

    @staticmethod
    def forward(ctx, a, x, upper, op, dt):
        ctx.save_for_backward(a, x)
        ctx.upper, ctx.op = upper, op
        return _cast(_igamma64(_f64(a), _f64(x), upper), dt)

    @staticmethod
    def backward(ctx, g):
        a, x = ctx.saved_tensors
        if ctx.needs_input_grad[0]:
            raise NotImplementedError(f"special.{ctx.op}: the derivative with respect to input (a) is not "
                                      "implemented (as in PyTorch); only other (x) is differentiable")
        a64, x64 = _f64(a), _f64(x)
        d = _C.exp((a64 - 1.0) * _C.log(x64) - x64 - _special.lgamma(a64))
        d = -d if ctx.upper else d
        gx = _f64(g) * d
        shape = tuple(x.shape)
        if tuple(gx.shape) != shape:  # x was broadcast: sum the gradient back to its shape
            lead = gx.dim() - len(shape)
            dims = list(builtins.range(lead)) + [lead + i for i, n in enumerate(shape)
                                                 if n == 1 and gx.shape[lead + i] != 1]
            if dims:
                gx = gx.sum(dims, keepdim=True)
            gx = gx.reshape(list(shape))
        return None, _cast(gx, x.dtype), None, None, None


def _igamma(input, other, op, upper):
    a0, x0 = _args2(input, other, op)
    dt = _out_dtype(a0, x0)
    return _IGamma.apply(a0, x0, upper, op, dt)


def _igamma64(a, x, upper):
    with _C_no_grad():
        a, x = _bcast(a, x)
        ok = _C.logical_and(_C.logical_and(a > 0, x > 0), _C.logical_and(_C.isfinite(a), _C.isfinite(x)))
        aa = _C.where(ok, a, 1.0)
        xx = _C.where(ok, x, 1.0)
        log_pref = aa * _C.log(xx) - xx - _special.lgamma(aa)
        use_series = xx < aa + 1.0
        # large a with x near a: Temme's expansion, where the series and the continued fraction
        # need ~sqrt(a) terms and their prefactor loses the digits that cancel in a log x - x - lgamma(a)
        temme = _C.logical_and(aa > _TEMME_MIN_A, _C.abs(xx - aa) < _TEMME_MAX_MU * aa)
        # series for P
        xs = _C.where(_C.logical_and(use_series, _C.logical_not(temme)), xx, 0.5)
        xmax = _amax_abs(_C.where(use_series, xs, 0.0))
        n = builtins.int(builtins.min(3000, 60 + 12 * math.sqrt(xmax + 1.0) + 0.1 * xmax))
        term = 1.0 / aa
        total = term
        for k in builtins.range(1, n):
            term = term * xs / (aa + builtins.float(k))
            total = total + term
        p_series = _C.exp(log_pref) * total
        # continued fraction for Q: Q = e^(log_pref) / (x + 1 - a - 1 (1 - a) / (x + 3 - a - ...))
        xc = _C.where(use_series, aa + 2.0, xx)
        tiny = 1e-300
        b = xc + 1.0 - aa
        c = 1.0 / tiny + b * 0.0
        d = 1.0 / b
        h = d
        for i in builtins.range(1, 300):
            an = -builtins.float(i) * (builtins.float(i) - aa)
            b = b + 2.0
            d = an * d + b
            d = _C.where(_C.abs(d) < tiny, tiny, d)
            c = b + an / c
            c = _C.where(_C.abs(c) < tiny, tiny, c)
            d = 1.0 / d
            h = h * d * c
        q_cf = _C.exp(log_pref) * h
        p = _C.where(use_series, p_series, 1.0 - q_cf)
        q = _C.where(use_series, 1.0 - p_series, q_cf)
        if builtins.bool(_C.any(temme)):
            pt, qt = _igamma_temme(_C.where(temme, aa, 100.0), _C.where(temme, xx, 100.0))
            p, q = _C.where(temme, pt, p), _C.where(temme, qt, q)
        out = q if upper else p
        # edges in PyTorch's order of tests (so a NaN beside an infinity gives its value, not NaN):
        # a < 0 or x < 0 -> NaN; a == 0 -> P = 1 (x > 0) or NaN; x == 0 -> P = 0; a == inf -> P = 0
        # (NaN if x == inf too); x == inf -> P = 1; else NaN in, NaN out
        p_one, p_zero = (0.0, 1.0) if upper else (1.0, 0.0)  # the result where P = 1, P = 0
        out = _C.where(ok, out, _NAN)
        out = _C.where(_C.isinf(x), p_one, out)
        out = _C.where(_C.isinf(a), _C.where(_C.isinf(x), _NAN, p_zero), out)
        out = _C.where(x == 0, p_zero, out)
        out = _C.where(a == 0, _C.where(x > 0, p_one, _NAN), out)
        return _C.where(_C.logical_or(a < 0, x < 0), _NAN, out)


_TEMME_MIN_A, _TEMME_MAX_MU = 20.0, 0.3  # DiDonato and Morris's region for the expansion


def _igamma_temme(a, x):
    """P(a, x) and Q(a, x) by Temme's uniform asymptotic expansion (DLMF 8.12.3-8.12.7), for
    a > 20 and |x / a - 1| < 0.3: mu = x / a - 1, eta^2 / 2 = mu - log(1 + mu) with mu's sign,
    Q = erfc(eta sqrt(a / 2)) / 2 + S, P = erfc(-eta sqrt(a / 2)) / 2 - S,
    S = exp(-a eta^2 / 2) / sqrt(2 pi a) sum_k c_k(eta) a^-k, c_k from _temme.D."""
    from fastdl._temme import D
    mu = (x - a) / a
    # mu - log(1 + mu) = mu^2 sum_{n >= 2} (-mu)^(n - 2) / n: no cancellation near mu = 0
    s = mu * 0.0
    for n in builtins.range(41, 1, -1):
        s = s * (-mu) + 1.0 / n
    half_eta2 = mu * mu * s
    eta = _C.sign(mu) * _C.sqrt(2.0 * half_eta2)
    inv_a = 1.0 / a
    total = mu * 0.0
    for ck in reversed(D):
        c = mu * 0.0
        for d in reversed(ck):
            c = c * eta + d
        total = total * inv_a + c
    s_term = _C.exp(-a * half_eta2) / _C.sqrt((2.0 * math.pi) * a) * total
    z = eta * _C.sqrt(0.5 * a)
    return 0.5 * _special.erfc(-z) - s_term, 0.5 * _special.erfc(z) + s_term


def multigammaln(input, p):
    return _special.mvlgamma(input, p)


def gammaln(input):
    return _special.lgamma(input)


def psi(input):
    return _special.digamma(input)


digamma = psi


def polygamma(n, input):
    return _special.polygamma(n, input)


def erf(input):
    return _C.erf(_float_in(input))


def erfc(input):
    return _special.erfc(_float_in(input))


def erfinv(input):
    return _special.erfinv(_float_in(input))


def _float_in(x):
    x = _arg(x, "special")
    return x if x.dtype.is_floating_point else x.to(_default_float())


def expit(input):
    return _C.sigmoid(_float_in(input))


def logit(input, eps=None):
    from fastdl._pointwise import logit as _logit
    return _logit(input, eps)


def sinc(input):
    from fastdl._pointwise import sinc as _sinc
    return _sinc(input)


def round(input, decimals=0):
    from fastdl._pointwise import round as _round
    return _round(input, decimals=decimals)


def exp2(input):
    return _C.exp2(_float_in(input))


def expm1(input):
    return _C.expm1(_float_in(input))


def log1p(input):
    return _C.log1p(_float_in(input))


def softmax(input, dim, dtype=None):
    from fastdl._reductions import softmax as _softmax
    return _softmax(input, dim, dtype=dtype)


def log_softmax(input, dim, dtype=None):
    from fastdl._reductions import log_softmax as _log_softmax
    return _log_softmax(input, dim, dtype=dtype)


def logsumexp(input, dim, keepdim=False):
    return _C.logsumexp(input, dim, keepdim)


# ---------------------------------------------------------------- orthogonal polynomials

def _poly(x, n, op, kind):
    x0, n0 = _args2(x, n, op, "n")
    dt = _out_dtype(x0, n0)
    with _C_no_grad():
        xf = _f64(x0)
        nf = n0 if n0.dtype == _C.dtype.int64 else _C.trunc(_f64(n0)).to(_C.dtype.int64) \
            if n0.dtype.is_floating_point else n0.to(_C.dtype.int64)
        xf, nf = _bcast_mixed(xf, nf)
        nmax = builtins.int(nf.amax().item()) if nf.numel() else 0
        nmax = builtins.max(nmax, 0)
        if kind in ("T", "U", "V", "W", "sT", "sU", "sV", "sW"):
            z = xf if kind[0] != "s" else 2.0 * xf - 1.0
            base = kind[-1]
            p0 = z * 0.0 + 1.0
            p1 = {"T": z, "U": 2.0 * z, "V": 2.0 * z - 1.0, "W": 2.0 * z + 1.0}[base]
            step = lambda k, p, q: 2.0 * z * q - p  # noqa: E731
        elif kind == "H":
            p0, p1 = xf * 0.0 + 1.0, 2.0 * xf
            step = lambda k, p, q: 2.0 * xf * q - (2.0 * k) * p  # noqa: E731
        elif kind == "He":
            p0, p1 = xf * 0.0 + 1.0, xf * 1.0
            step = lambda k, p, q: xf * q - builtins.float(k) * p  # noqa: E731
        elif kind == "L":
            p0, p1 = xf * 0.0 + 1.0, 1.0 - xf
            step = lambda k, p, q: ((2 * k + 1.0 - xf) * q - builtins.float(k) * p) / (k + 1.0)  # noqa: E731
        else:  # Legendre P
            p0, p1 = xf * 0.0 + 1.0, xf * 1.0
            step = lambda k, p, q: ((2 * k + 1.0) * xf * q - builtins.float(k) * p) / (k + 1.0)  # noqa: E731
        out = _C.where(nf == 0, p0, 0.0)
        out = _C.where(nf == 1, p1, out)
        p, q = p0, p1
        for k in builtins.range(1, nmax):
            p, q = q, step(k, p, q)
            out = _C.where(nf == k + 1, q, out)
        out = _edges(kind, xf, nf, out)
        return _cast(out, dt)


def _bcast_mixed(x, n):
    return _bcast(x, n)


def _edges(kind, x, n, out):
    """PyTorch's special cases: |x| = 1 values of the Chebyshev and Legendre families, shifted
    ones at 0 and 1, closed forms cos(n acos x) for large n in (-1, 1), and n < 0 -> 0."""
    nd = n.to(_C.dtype.float64)
    even = _C.remainder(n, 2) == 0
    sgn = _C.where(even, 1.0, -1.0)
    if kind in ("T", "U", "V", "W"):
        one, mone = x == 1.0, x == -1.0
        if kind == "T":
            out = _C.where(one, 1.0, _C.where(mone, sgn, out))
        elif kind == "U":
            out = _C.where(one, nd + 1.0, _C.where(mone, sgn * (nd + 1.0), out))
        elif kind == "V":
            out = _C.where(one, 1.0, _C.where(mone, sgn * (2.0 * nd + 1.0), out))
        else:
            out = _C.where(one, 2.0 * nd + 1.0, _C.where(mone, sgn, out))
    elif kind in ("sT", "sU", "sV", "sW"):
        one, zero = x == 1.0, x == 0.0
        if kind == "sT":
            out = _C.where(one, 1.0, _C.where(zero, sgn, out))
        elif kind == "sU":
            out = _C.where(one, nd + 1.0, _C.where(zero, sgn * (nd + 1.0), out))
        elif kind == "sV":
            out = _C.where(one, 1.0, _C.where(zero, sgn * (2.0 * nd + 1.0), out))
        else:
            out = _C.where(one, 2.0 * nd + 1.0, _C.where(zero, sgn, out))
    elif kind == "P":
        out = _C.where(x == 1.0, 1.0, _C.where(x == -1.0, sgn, out))
    elif kind == "L":
        out = _C.where(_C.logical_and(x == 0.0, n >= 0), 1.0, out)
    return _C.where(n < 0, 0.0, out)


def chebyshev_polynomial_t(input, n):
    return _poly(input, n, "chebyshev_polynomial_t", "T")


def chebyshev_polynomial_u(input, n):
    return _poly(input, n, "chebyshev_polynomial_u", "U")


def chebyshev_polynomial_v(input, n):
    return _poly(input, n, "chebyshev_polynomial_v", "V")


def chebyshev_polynomial_w(input, n):
    return _poly(input, n, "chebyshev_polynomial_w", "W")


def shifted_chebyshev_polynomial_t(input, n):
    return _poly(input, n, "shifted_chebyshev_polynomial_t", "sT")


def shifted_chebyshev_polynomial_u(input, n):
    return _poly(input, n, "shifted_chebyshev_polynomial_u", "sU")


def shifted_chebyshev_polynomial_v(input, n):
    return _poly(input, n, "shifted_chebyshev_polynomial_v", "sV")


def shifted_chebyshev_polynomial_w(input, n):
    return _poly(input, n, "shifted_chebyshev_polynomial_w", "sW")


def hermite_polynomial_h(input, n):
    return _poly(input, n, "hermite_polynomial_h", "H")


def hermite_polynomial_he(input, n):
    return _poly(input, n, "hermite_polynomial_he", "He")


def laguerre_polynomial_l(input, n):
    return _poly(input, n, "laguerre_polynomial_l", "L")


def legendre_polynomial_p(input, n):
    return _poly(input, n, "legendre_polynomial_p", "P")
