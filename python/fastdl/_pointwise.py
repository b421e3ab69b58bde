"""Pointwise ops with PyTorch signatures the native bindings do not take directly (rounding modes,
alpha, scalar first operands) and the composed ones (fmod, hypot, logaddexp, ...)."""
import builtins
import collections
import math

from fastdl import _C
from fastdl._C import Tensor


def _scalar_tensor(x, like):
    return x if isinstance(x, Tensor) else _C.full((), builtins.float(x) if not isinstance(x, builtins.bool) else x,
                                                   like.dtype if like.dtype.is_floating_point or isinstance(x, builtins.int)
                                                   else _C.dtype.float32, like.device)


def div(input, other, *, rounding_mode=None):
    """input / other; rounding_mode 'trunc' or 'floor' rounds the quotient (PyTorch's div)."""
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):  # two numbers: a 0-dim result
        from fastdl._tensor import tensor
        input = tensor(input)
    if rounding_mode is None:
        return _C.div(input, other) if isinstance(input, Tensor) else _C.div(_scalar_tensor(input, other), other)
    if rounding_mode == "floor":
        return _zero_grad(_C.floor_divide(input, other), input, other)
    if rounding_mode == "trunc":
        a = input if isinstance(input, Tensor) else _scalar_tensor(input, other)
        if not a.dtype.is_floating_point and not (isinstance(other, Tensor) and other.dtype.is_floating_point) \
                and not isinstance(other, builtins.float):
            q = _C.floor_divide(a, other)  # floor, then one step toward zero where it rounded down
            inexact = _C.remainder(a, other) != 0
            return _C.where(_C.logical_and(inexact, q < 0), q + 1, q)
        return _zero_grad(_C.trunc(_C.div(a, other)), a, other)
    raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor'; got {rounding_mode!r}")


def _zero_grad(out, *inputs):
    """out with PyTorch's zero gradient to the float inputs that require it (rounded quotients): no
    0 * inf from the unrounded quotient's gradient, and a graph even where nothing else needs one."""
    ts = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not ts or not _C.is_grad_enabled() or not out.dtype.is_floating_point:
        return out
    from fastdl.autograd.composite import value_with_grad_of
    sur = ts[0] * 0.0
    for t in ts[1:]:
        sur = sur + t * 0.0
    return value_with_grad_of(out, sur.expand(tuple(out.shape)) if tuple(sur.shape) != tuple(out.shape) else sur)


def pow(input, exponent=None, *, other=None):
    """input ** exponent, either may be a Python number (PyTorch's pow)."""
    exponent = other if exponent is None else exponent
    if not isinstance(input, Tensor):
        return _C.pow(_scalar_tensor(input, exponent), exponent)
    return _C.pow(input, exponent)


def sub(input, other, *, alpha=1):
    return _C.sub(input, other * alpha if alpha != 1 else other)


def lerp(input, end, weight):
    if isinstance(weight, Tensor):
        return input + weight * (end - input)
    return _C.lerp(input, end, builtins.float(weight))


def fmod(a, b):
    """C-style remainder: the sign of the dividend."""
    if not isinstance(a, Tensor):
        raise TypeError(f"fmod: expected a Tensor as input; got {type(a).__name__}")
    return _C.fmod(a, b)


def frac(t):
    return t - t.trunc()


def addcmul(t, t1, t2, value=1):
    return t + value * (t1 * t2) if value != 1 else t + t1 * t2


def addcdiv(t, t1, t2, value=1):
    return t + value * (t1 / t2) if value != 1 else t + t1 / t2


def hypot(a, b):
    """sqrt(a^2 + b^2) scaled by max(|a|, |b|), so neither square overflows or underflows
    (hypot(1, 1e300) = 1e300); +inf when either is infinite, NaN and all (IEEE, C's hypot)."""
    a = a if isinstance(a, Tensor) else _C.full((), builtins.float(a), b.dtype, b.device)
    b = b if isinstance(b, Tensor) else _C.full((), builtins.float(b), a.dtype, a.device)
    m = _C.maximum(a.abs(), b.abs()).detach()
    ms = _C.where(_C.logical_or(m == 0, _C.isinf(m)), 1.0, m)  # no 0 / 0; an infinity is set below
    r = ms * ((a / ms) ** 2 + (b / ms) ** 2).sqrt()
    return _C.where(_C.logical_or(_C.isinf(a), _C.isinf(b)), builtins.float("inf"), r)


def _logaddexp_value(a, b):
    m = _C.maximum(a, b).detach()
    m = _C.where(m.isinf(), 0.0, m)
    return ((a - m).exp() + (b - m).exp()).log() + m


def logaddexp(a, b):
    if _C.is_grad_enabled() and isinstance(a, Tensor) and isinstance(b, Tensor) and (a.requires_grad or b.requires_grad):
        # PyTorch's gradients g / (1 + e^(b - a)) and g / (1 + e^(a - b)): finite beside an infinite
        # operand, where the value's own graph would give inf / inf
        from fastdl.autograd.composite import elementwise_function
        return elementwise_function("Logaddexp", _logaddexp_value,
                                    lambda g, a, b: (g * _C.sigmoid(a - b), g * _C.sigmoid(b - a))).apply(a, b)
    return _logaddexp_value(a, b)


def xlogy(a, b):
    """a log(b), 0 where a == 0 unless b is NaN (PyTorch's xlogy)."""
    from fastdl.special import xlogy as _xlogy
    return _xlogy(a, b)


def rsub(a, b, alpha=1):
    return b - alpha * a if alpha != 1 else b - a


def round(input, *, decimals=0):
    """Round half to even; decimals > 0 rounds to that many decimal places, < 0 to tens, hundreds ..."""
    if decimals == 0:
        return _C.round(input)
    if decimals > 0:
        scale = 10.0 ** decimals
        return _C.round(input * scale) / scale
    scale = 10.0 ** -decimals
    return _C.round(input / scale) * scale


def _clamp_bound(input, bound, keep, take):
    """input where keep, bound where take, NaN where neither (a NaN on either side): PyTorch's
    values and gradients (an element equal to its bound keeps the whole gradient, where maximum
    would split it; a NaN passes none to either operand)."""
    if not (input.dtype.is_floating_point or bound.dtype.is_floating_point):
        return _C.where(keep, input, bound)
    return _C.where(keep, input, _C.where(take, bound, builtins.float("nan")))


def clamp_min(input, min):  # noqa: A002
    if isinstance(min, Tensor):
        return _clamp_bound(input, min, input >= min, input < min)
    return input.clamp(min=min)


def clamp_max(input, max):  # noqa: A002
    if isinstance(max, Tensor):
        return _clamp_bound(input, max, input <= max, input > max)
    return input.clamp(max=max)


# ---- composed elementwise math (PyTorch names); integer inputs of float-valued ops give the
# default float dtype, as in PyTorch ------------------------------------------------------------
def _float_tensor(t, op):
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: expected a Tensor; got {type(t).__name__}")
    return _float(t)


def _float(t):
    if not isinstance(t, Tensor):
        return t
    if t.dtype.is_floating_point:
        return t
    from fastdl._tensor import get_default_dtype
    return t.to(get_default_dtype())


def _pair(a, b, op):
    if not isinstance(a, Tensor):
        if not isinstance(b, Tensor):
            raise TypeError(f"{op}: expected at least one Tensor; got {type(a).__name__} and {type(b).__name__}")
        a = _scalar_tensor(a, b)
    return a, b


def signbit(input):
    """True where the sign bit is set (negative numbers and -0.0)."""
    if not input.dtype.is_floating_point:
        return input < 0
    return _C.logical_or(input < 0, _C.logical_and(input == 0, _C.reciprocal(input) < 0))


def copysign(input, other):
    a, b = _pair(input, other, "copysign")
    a = _float(a)
    neg = signbit(b) if isinstance(b, Tensor) else _C.full((), 1.0 if math.copysign(1.0, b) < 0 else 0.0,
                                                              _C.dtype.bool, a.device)
    if isinstance(b, Tensor) and b.dtype.is_floating_point and b.dtype != a.dtype:
        a = a.to(_C.add(_C.full((), 0.0, a.dtype, a.device), _C.full((), 0.0, b.dtype, a.device)).dtype)
    mag = _C.abs(a)
    out = _C.where(neg, -mag, mag)
    if not (a.requires_grad and _C.is_grad_enabled()):
        return out
    # PyTorch's gradient: g * result / input, 0 where input is 0 (so NaN at +-inf)
    from fastdl.autograd.composite import value_with_grad_of
    ad, od = a.detach(), out.detach()
    ratio = _C.where(ad == 0, 0.0, od / ad)
    return value_with_grad_of(out, a * ratio)


def heaviside(input, values):
    if input.dtype != values.dtype:
        raise TypeError(f"heaviside: input and values must have the same dtype; got {input.dtype} and {values.dtype}")
    step = (input > 0).to(input.dtype)
    return _C.where(input == 0, values, step)


def logaddexp2(a, b):
    ln2 = math.log(2.0)
    return logaddexp(_float(a) * ln2, _float(b) * ln2) / ln2


def _fminmax(a, b, ge):
    a, b = _pair(a, b, "fmax" if ge else "fmin")
    if not isinstance(b, Tensor):
        b = _scalar_tensor(b, a)
    if not (a.dtype.is_floating_point or b.dtype.is_floating_point):
        return _C.maximum(a, b) if ge else _C.minimum(a, b)
    # the gradient goes to a where a wins or ties, or b is NaN (PyTorch's fmax / fmin)
    take_a = _C.logical_or(a >= b if ge else a <= b, _C.isnan(b))
    return _C.where(take_a, a, b)


def fmax(input, other):
    """Elementwise maximum that ignores NaN (NaN only where both are)."""
    return _fminmax(input, other, True)


def fmin(input, other):
    return _fminmax(input, other, False)


def sinc(input):
    """sin(pi x) / (pi x), 1 at 0 (the 0 is swapped out first so its gradient stays finite)."""
    x = _float(input)
    zero = x == 0
    safe = _C.where(zero, 1.0, x) * math.pi
    return _C.where(zero, 1.0, _C.sin(safe) / safe)


def rad2deg(input):
    return _float(input) * (180.0 / math.pi)


def deg2rad(input):
    return _float(input) * (math.pi / 180.0)


def float_power(input, exponent):
    """input ** exponent computed in float64."""
    f64 = _C.dtype.float64
    a = input.to(f64) if isinstance(input, Tensor) else input
    e = exponent.to(f64) if isinstance(exponent, Tensor) else exponent
    if not isinstance(a, Tensor):
        a = _C.full((), builtins.float(a), f64, e.device)
    return _C.pow(a, e if isinstance(e, Tensor) else builtins.float(e))


def ldexp(input, other):
    """input * 2 ** other."""
    x = _float(input)
    return x * _C.pow(_C.full((), 2.0, x.dtype, x.device), _float(other).to(x.dtype) if isinstance(other, Tensor)
                      else builtins.float(other))


def frexp(input):
    """(mantissa, exponent) with input = mantissa * 2 ** exponent, 0.5 <= |mantissa| < 1."""
    from fastdl._lazy import np
    if not input.dtype.is_floating_point:
        raise TypeError(f"frexp: input must be a float tensor; got dtype {input.dtype}")
    a = input.detach().cpu()
    a = a.to(_C.dtype.float32) if a.dtype in (_C.dtype.float16, _C.dtype.bfloat16) else a
    _, e = np.frexp(a.numpy())
    exp = _C.from_numpy(np.ascontiguousarray(e.astype(np.int32))).reshape(tuple(input.shape)).to(input.device)
    scale = _C.pow(_C.full((), 2.0, input.dtype, input.device), (-exp).to(input.dtype))
    return collections.namedtuple("return_types_frexp", ["mantissa", "exponent"])(input * scale, exp)


def isneginf(input):
    return _C.logical_and(_C.isinf(input), input < 0) if input.dtype.is_floating_point else input != input


def isposinf(input):
    return _C.logical_and(_C.isinf(input), input > 0) if input.dtype.is_floating_point else input != input


def isreal(input):
    return _C.full(tuple(input.shape), 1.0, _C.dtype.bool, input.device)


def asinh(input):
    """log(x + sqrt(x^2 + 1)), as sign(x) * log1p(|x| + x^2 / (1 + sqrt(x^2 + 1))) for accuracy near 0
    and for negative x."""
    x = _float(input)
    s = _C.where(x < 0, -1.0, 1.0).to(x.dtype).detach()  # a constant sign: the gradient at 0 stays 1
    a = x * s
    big = a > 2.0 ** 28  # sqrt(a^2 + 1) = a to double precision: log(2 a), which a^2 would overflow
    small = _C.where(big, 1.0, a)
    return s * _C.where(big, _C.log(_C.where(big, a, 2.0)) + math.log(2.0),
                        _C.log1p(small + small * small / (1.0 + _C.sqrt(small * small + 1.0))))


def acosh(input):
    """Gradient: 1 / sqrt(x^2 - 1), PyTorch's (inf at +-1, NaN inside (-1, 1), 0 at +-inf)."""
    from fastdl.autograd.composite import unary_with_derivative
    return unary_with_derivative("acosh", _acosh_value, lambda x: _C.rsqrt(x * x - 1.0), _float_tensor(input, "acosh"))


def _acosh_value(input):
    x = _float(input)
    big = x > 2.0 ** 28  # log(2 x), where x^2 would overflow
    xs = _C.where(big, 2.0, x)
    t = xs - 1.0
    out = _C.where(big, _C.log(_C.where(big, x, 2.0)) + math.log(2.0), _C.log1p(t + _C.sqrt(t * (xs + 1.0))))
    return _C.where(x < 1.0, builtins.float("nan"), out)  # t (x + 1) > 0 again below -1


def atanh(input):
    """Gradient: 1 / (1 - x^2), PyTorch's (inf at +-1, -0 at +-inf)."""
    from fastdl.autograd.composite import unary_with_derivative
    return unary_with_derivative("atanh", _atanh_value, lambda x: 1.0 / (1.0 - x * x), _float_tensor(input, "atanh"))


def _atanh_value(x):
    # log1p(2|x| / (1 - |x|)) / 2 with x's sign: for x near -1 the signed form's argument sat next
    # to -1, where log1p magnifies its rounding (560 ulp at x = -0.99987 in float32).
    a = _C.abs(x)
    v = 0.5 * _C.log1p(2.0 * a / (1.0 - a))
    return _C.where(signbit(x), -v, v)


def _host_int(a, b, fn, op):
    from fastdl._lazy import np
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError(f"{op}: expected two tensors")
    if a.dtype.is_floating_point or b.dtype.is_floating_point:
        raise TypeError(f"{op}: expected integer tensors; got {a.dtype} and {b.dtype}")
    out = np.asarray(fn(a.detach().cpu().numpy(), b.detach().cpu().numpy()))
    dt = _C.add(_C.full((), 0.0, a.dtype, a.device), _C.full((), 0.0, b.dtype, a.device)).dtype
    return _C.from_numpy(np.ascontiguousarray(out)).reshape(out.shape).to(dt).to(a.device)


def gcd(input, other):
    from fastdl._lazy import np
    return _host_int(input, other, np.gcd, "gcd")


def lcm(input, other):
    from fastdl._lazy import np
    return _host_int(input, other, lambda x, y: np.abs(np.lcm(x, y)), "lcm")


def isin(elements, test_elements, *, assume_unique=False, invert=False):
    """True where an element of elements occurs in test_elements (either may be a scalar)."""
    from fastdl._lazy import np
    if not isinstance(elements, Tensor) and not isinstance(test_elements, Tensor):
        raise TypeError("isin: expected at least one Tensor")
    dev = elements.device if isinstance(elements, Tensor) else test_elements.device

    def host(v):
        if isinstance(v, Tensor):
            v = v.detach().cpu()
            return (v.to(_C.dtype.float32) if v.dtype in (_C.dtype.float16, _C.dtype.bfloat16) else v).numpy()
        return np.asarray(v)
    out = np.asarray(np.isin(host(elements), host(test_elements), invert=invert))
    return _C.from_numpy(np.ascontiguousarray(out)).reshape(out.shape).to(dev)


def _spacing(x, y, dim):
    """Differences of the sample points x along dim (a 1-D x lies along y's dim)."""
    if x.ndim == 1:
        d = x.narrow(0, 1, x.shape[0] - 1) - x.narrow(0, 0, x.shape[0] - 1)
        view = [1] * y.ndim
        view[dim % y.ndim] = -1
        return d.reshape(view)
    n = x.shape[dim]
    return x.narrow(dim, 1, n - 1) - x.narrow(dim, 0, n - 1)


def trapezoid(y, x=None, *, dx=None, dim=-1):
    """Integral of y along dim by the trapezoid rule, at spacing dx (1) or sample points x."""
    if x is not None and dx is not None:
        raise TypeError("trapezoid: give x or dx, not both")
    y = _float(y)
    n = y.shape[dim]
    if n == 0:
        return y.sum(dim)
    mid = (y.narrow(dim, 1, n - 1) + y.narrow(dim, 0, n - 1)) * 0.5
    if isinstance(x, Tensor):
        return (mid * _spacing(x, y, dim)).sum(dim)
    step = x if x is not None else (1.0 if dx is None else dx)
    return mid.sum(dim) * step


def cumulative_trapezoid(y, x=None, *, dx=None, dim=-1):
    if x is not None and dx is not None:
        raise TypeError("cumulative_trapezoid: give x or dx, not both")
    y = _float(y)
    n = y.shape[dim]
    if n == 0:
        return y.clone()
    mid = (y.narrow(dim, 1, n - 1) + y.narrow(dim, 0, n - 1)) * 0.5
    if isinstance(x, Tensor):
        mid = mid * _spacing(x, y, dim)
    else:
        mid = mid * (x if x is not None else (1.0 if dx is None else dx))
    return _C.cumsum(mid, dim)


def logit(input, eps=None):
    """log(p / (1 - p)), p clamped to [eps, 1 - eps] when eps is given."""
    p = _float(input)
    if eps is not None:
        p = p.clamp(eps, 1.0 - eps)
        return _C.log(p / (1.0 - p))
    from fastdl.autograd.composite import unary_with_derivative  # PyTorch's: NaN outside [0, 1], inf at 0, 1
    return unary_with_derivative("logit", lambda x: _C.log(x / (1.0 - x)),
                                 lambda x: _C.where((x < 0.0) | (x > 1.0), builtins.float("nan"),
                                                    1.0 / (x * (1.0 - x)).abs()), _float_tensor(p, "logit"))


def sgn(input):
    return _C.sign(input)


def bitwise_not(input):
    if input.dtype.is_floating_point:
        raise TypeError(f"bitwise_not: expected an integer or bool tensor; got dtype {input.dtype}")
    return _C.logical_not(input) if input.dtype == _C.dtype.bool else -input - 1  # ~x = -x - 1, wrapping


Tensor.__invert__ = bitwise_not


def nextafter(input, other):
    """The next float after input toward other (numpy's nextafter, on the host)."""
    from fastdl._lazy import np
    if not (input.dtype.is_floating_point and other.dtype.is_floating_point):
        raise TypeError(f"nextafter: expected float tensors; got {input.dtype} and {other.dtype}")
    if input.dtype != other.dtype:
        raise TypeError(f"nextafter: expected one dtype; got {input.dtype} and {other.dtype}")
    if input.dtype == _C.dtype.bfloat16:  # numpy has no bfloat16: one step of its 16-bit pattern
        a, b = np.broadcast_arrays(input.detach().cpu().float().numpy(), other.detach().cpu().float().numpy())
        bits = (a.view(np.uint32) >> 16).astype(np.int64)
        up = (b > a) == (a > 0)  # away from zero: the magnitude's pattern grows
        step = ((np.where(up, bits + 1, bits - 1) & 0xFFFF).astype(np.uint32) << 16).view(np.float32)
        tiny = np.copysign(np.float32(2.0 ** -133), b)  # from zero: the smallest subnormal toward other
        out = np.where(a == b, b, np.where(a == 0, tiny, step))
        out = np.where(np.isnan(a) | np.isnan(b), np.float32("nan"), out).astype(np.float32)
        out = _C.from_numpy(np.ascontiguousarray(out)).reshape(out.shape)._to_dtype(input.dtype).to(input.device)
    else:
        out = np.asarray(np.nextafter(input.detach().cpu().numpy(), other.detach().cpu().numpy()))
        out = _C.from_numpy(np.ascontiguousarray(out)).reshape(out.shape).to(input.device)
    if not (input.requires_grad and _C.is_grad_enabled()):
        return out
    # PyTorch passes the gradient straight through to input (a one-ulp step) where input != other,
    # none to other
    from fastdl.autograd.composite import value_with_grad_of
    return value_with_grad_of(out, input * (input != other).detach())
