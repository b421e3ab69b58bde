"""Pointwise ops with PyTorch signatures the native bindings do not take directly (rounding modes,
alpha, scalar first operands) and the composed ones (fmod, hypot, logaddexp, ...)."""
import builtins

from fastdl import _C
from fastdl._C import Tensor


def _scalar_tensor(x, like):
    return x if isinstance(x, Tensor) else _C.full((), builtins.float(x) if not isinstance(x, builtins.bool) else x,
                                                   like.dtype if like.dtype.is_floating_point or isinstance(x, builtins.int)
                                                   else _C.dtype.float32, like.device)


def div(input, other, *, rounding_mode=None):
    """input / other; rounding_mode 'trunc' or 'floor' rounds the quotient (PyTorch's div)."""
    if rounding_mode is None:
        return _C.div(input, other) if isinstance(input, Tensor) else _C.div(_scalar_tensor(input, other), other)
    if rounding_mode == "floor":
        return _C.floor_divide(input, other)
    if rounding_mode == "trunc":
        a = input if isinstance(input, Tensor) else _scalar_tensor(input, other)
        if not a.dtype.is_floating_point and not (isinstance(other, Tensor) and other.dtype.is_floating_point) \
                and not isinstance(other, builtins.float):
            q = _C.floor_divide(a, other)  # floor, then one step toward zero where it rounded down
            inexact = _C.remainder(a, other) != 0
            return _C.where(_C.logical_and(inexact, q < 0), q + 1, q)
        return _C.trunc(_C.div(a, other))
    raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor'; got {rounding_mode!r}")


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
    if a.dtype.is_floating_point or (isinstance(b, Tensor) and b.dtype.is_floating_point) or isinstance(b, builtins.float):
        q = a / b
        return a - q.trunc() * b
    r = a.remainder(b)  # integers: python-style, then move to the dividend's sign
    return _C.where((r != 0) & ((r < 0) != (a < 0)), r - b, r)


def frac(t):
    return t - t.trunc()


def addcmul(t, t1, t2, value=1):
    return t + value * (t1 * t2) if value != 1 else t + t1 * t2


def addcdiv(t, t1, t2, value=1):
    return t + value * (t1 / t2) if value != 1 else t + t1 / t2


def hypot(a, b):
    return (a * a + b * b).sqrt()


def logaddexp(a, b):
    m = _C.maximum(a, b).detach()
    m = _C.where(m.isinf(), 0.0, m)
    return ((a - m).exp() + (b - m).exp()).log() + m


def xlogy(a, b):
    return _C.where(a == 0, 0.0, a * _C.log(b)) if isinstance(a, Tensor) else a * _C.log(b)


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


def clamp_min(input, min):  # noqa: A002
    if isinstance(min, Tensor):
        # where, not maximum: an element equal to its bound keeps the whole gradient, as in PyTorch
        # (maximum splits ties evenly); a NaN bound gives NaN, as maximum would
        return _C.where(_C.logical_or(input < min, min.isnan()), min, input)
    return input.clamp(min=min)


def clamp_max(input, max):  # noqa: A002
    if isinstance(max, Tensor):  # see clamp_min
        return _C.where(_C.logical_or(input > max, max.isnan()), max, input)
    return input.clamp(max=max)
