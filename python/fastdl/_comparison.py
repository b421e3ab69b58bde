"""Whole-tensor comparisons composed from native ops: isclose, allclose, equal."""
import builtins

from fastdl import _C
from fastdl._C import Tensor


def isclose(a, b, rtol=1e-5, atol=1e-8, equal_nan=False):
    if rtol < 0 or atol < 0:
        raise ValueError(f"isclose: rtol and atol must be greater than or equal to zero; got rtol={rtol}, atol={atol}")
    b = b if isinstance(b, Tensor) else _C.full((), builtins.float(b), a.dtype, a.device)
    if a.dtype == _C.dtype.bool and b.dtype == _C.dtype.bool:  # no arithmetic on bools: close means equal
        return a == b
    close = (a - b).abs() <= atol + rtol * b.abs()
    if a.dtype.is_floating_point or b.dtype.is_floating_point:  # an infinity is close to itself only
        close = _C.logical_and(close, _C.logical_and(a.isfinite(), b.isfinite()))
    close = _C.logical_or(close, a == b)
    if equal_nan:
        close = _C.logical_or(close, _C.logical_and(a.isnan(), b.isnan()))
    return close


def allclose(a, b, rtol=1e-5, atol=1e-8, equal_nan=False):
    return builtins.bool(isclose(a, b, rtol, atol, equal_nan).all())


def equal(a, b):
    return tuple(a.shape) == tuple(b.shape) and builtins.bool((a == b).all())
