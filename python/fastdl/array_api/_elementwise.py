"""Array API element-wise functions: fastdl's own ops under the standard's names, and shims
composed from fastdl ops where fastdl lacks one (acosh, asinh, atanh, copysign, signbit, shifts)."""
import builtins
import math
import operator

import fastdl as fd
from fastdl._C import Tensor

from ._dtypes import _INTS, result_type

_SCALARS = (builtins.bool, builtins.int, builtins.float)


def _pair(x1, x2):
    """Both operands as tensors; a Python scalar takes the other operand's dtype (weak scalar)."""
    if isinstance(x1, _SCALARS):
        x1 = fd.full((), x1, dtype=result_type(x2, x1), device=x2.device)
    if isinstance(x2, _SCALARS):
        x2 = fd.full((), x2, dtype=result_type(x1, x2), device=x1.device)
    if not isinstance(x1, Tensor) or not isinstance(x2, Tensor):
        raise TypeError(f"expected arrays or Python scalars; got {type(x1).__name__} and {type(x2).__name__}")
    return x1, x2


def _unary(fn):
    def f(x, /):
        return fn(x)
    f.__name__ = fn.__name__
    return f


def _binary(fn, name):
    def f(x1, x2, /):
        return fn(*_pair(x1, x2))
    f.__name__ = name
    return f


abs = _unary(fd.abs)  # noqa: A001
acos, asin, atan = _unary(fd.acos), _unary(fd.asin), _unary(fd.atan)
ceil, floor, trunc, round = _unary(fd.ceil), _unary(fd.floor), _unary(fd.trunc), _unary(fd.round)  # noqa: A001
cos, cosh, sin, sinh, tan, tanh = (_unary(getattr(fd, n)) for n in ("cos", "cosh", "sin", "sinh", "tan", "tanh"))
exp, expm1, log, log1p, log2, log10 = (_unary(getattr(fd, n)) for n in ("exp", "expm1", "log", "log1p", "log2", "log10"))
isfinite, isinf, isnan = _unary(fd.isfinite), _unary(fd.isinf), _unary(fd.isnan)
sqrt, square, sign = _unary(fd.sqrt), _unary(fd.square), _unary(fd.sign)
negative = _unary(fd.neg)
logical_not = _unary(fd.logical_not)


def positive(x, /):
    return x.clone()


add = _binary(operator.add, "add")
subtract = _binary(operator.sub, "subtract")
multiply = _binary(operator.mul, "multiply")
divide = _binary(operator.truediv, "divide")
floor_divide = _binary(operator.floordiv, "floor_divide")
remainder = _binary(operator.mod, "remainder")
pow = _binary(operator.pow, "pow")  # noqa: A001
equal = _binary(operator.eq, "equal")
not_equal = _binary(operator.ne, "not_equal")
greater = _binary(operator.gt, "greater")
greater_equal = _binary(operator.ge, "greater_equal")
less = _binary(operator.lt, "less")
less_equal = _binary(operator.le, "less_equal")
atan2 = _binary(fd.atan2, "atan2")
hypot = _binary(fd.hypot, "hypot")
logaddexp = _binary(fd.logaddexp, "logaddexp")
maximum = _binary(fd.maximum, "maximum")
minimum = _binary(fd.minimum, "minimum")
logical_and = _binary(fd.logical_and, "logical_and")
logical_or = _binary(fd.logical_or, "logical_or")
logical_xor = _binary(fd.logical_xor, "logical_xor")


def acosh(x, /):
    return fd.log(x + fd.sqrt(x * x - 1))


def asinh(x, /):  # odd function, computed on |x| so large negative x keeps its precision
    a = fd.abs(x)
    return fd.sign(x) * fd.log(a + fd.sqrt(a * a + 1))


def atanh(x, /):
    return 0.5 * (fd.log1p(x) - fd.log1p(-x))


def signbit(x, /):
    """x < 0, and True for -0.0 (1 / -0.0 is -inf). NaN's sign bit is not visible to fastdl's
    ops: NaN gives False."""
    if x.dtype == fd.bool or x.dtype in _INTS:
        return x < 0
    return (x < 0) | ((x == 0) & (1.0 / x < 0))


def copysign(x1, x2, /):
    x1, x2 = _pair(x1, x2)
    return fd.where(signbit(x2), -fd.abs(x1), fd.abs(x1))


_INT_BITWISE = []


def _int_bitwise():
    """Whether fastdl's & | ^ ~ are bitwise on integers (older builds made them logical)."""
    if not _INT_BITWISE:
        one, two = fd.tensor([1]), fd.tensor([2])
        try:
            r = one & two
            _INT_BITWISE.append(r.dtype == fd.int64 and r.item() == 0 and (~two).item() == -3)
        except TypeError:
            _INT_BITWISE.append(False)
    return _INT_BITWISE[0]


def _bitwise(name, logical, op):
    def f(x1, x2, /):
        x1, x2 = _pair(x1, x2)
        if x1.dtype == fd.bool and x2.dtype == fd.bool:
            return logical(x1, x2)
        if x1.dtype in _INTS and x2.dtype in _INTS and _int_bitwise():
            return op(x1, x2)
        raise TypeError(f"{name}: expected bool or integer arrays (integers need a fastdl with bitwise integer "
                        f"ops); got {x1.dtype} and {x2.dtype}")
    f.__name__ = name
    return f


bitwise_and = _bitwise("bitwise_and", fd.logical_and, operator.and_)
bitwise_or = _bitwise("bitwise_or", fd.logical_or, operator.or_)
bitwise_xor = _bitwise("bitwise_xor", fd.logical_xor, operator.xor)


def bitwise_invert(x, /):
    if x.dtype == fd.bool:
        return fd.logical_not(x)
    if x.dtype in _INTS and _int_bitwise():
        return ~x
    raise TypeError(f"bitwise_invert: expected a bool or integer array (integers need a fastdl with bitwise "
                    f"integer ops); got {x.dtype}")


def _shift_check(name, x1, x2):
    x1, x2 = _pair(x1, x2)
    if x1.dtype not in _INTS or x2.dtype not in _INTS:
        raise TypeError(f"{name}: expected integer arrays; got {x1.dtype} and {x2.dtype}")
    if builtins.bool((x2 < 0).any()):
        raise ValueError(f"{name}: shift amounts must be non-negative")
    return x1, x2


def bitwise_left_shift(x1, x2, /):
    x1, x2 = _shift_check("bitwise_left_shift", x1, x2)
    return x1 * fd.pow(fd.full((), 2, dtype=x2.dtype), x2)


def bitwise_right_shift(x1, x2, /):  # arithmetic shift: floor division by 2**x2
    x1, x2 = _shift_check("bitwise_right_shift", x1, x2)
    bits = result_type(x1, x2).itemsize * 8
    big = x2 >= bits - 1  # 2**63 overflows int64: shifting that far leaves only the sign
    p = fd.pow(fd.full((), 2, dtype=x2.dtype), fd.clamp(x2, max=bits - 2))
    return fd.where(big, fd.where(x1 < 0, -1, 0).to(x1.dtype), x1 // p)


def clip(x, /, min=None, max=None):  # noqa: A002
    if min is None and max is None:
        return x.clone()
    out = fd.clamp(x, min=min, max=max)
    return out if out.dtype == x.dtype else out.to(x.dtype)


def conj(x, /):  # fastdl has no complex dtypes: every array is real
    return x.clone()


def real(x, /):
    return x.clone()


def imag(x, /):
    return fd.zeros_like(x)


e, inf, nan, pi = math.e, math.inf, math.nan, math.pi
