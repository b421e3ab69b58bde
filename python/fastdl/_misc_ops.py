"""Creation and integer ops of PyTorch's API that fastdl composes in Python: logspace,
tril_indices / triu_indices, unravel_index, bitwise shifts (with the << and >> operators),
i0 / igamma / igammac as top-level names and Tensor methods."""
import builtins

import numpy as np

from fastdl import _C
from fastdl._C import Tensor


def _num(v, op, name):
    if isinstance(v, Tensor):
        if v.numel() != 1:
            raise ValueError(f"{op}: {name} must be a number or a one-element tensor; got shape {tuple(v.shape)}")
        return v.item()
    return v


def logspace(start, end, steps, base=10.0, *, dtype=None, layout=None, device=None, requires_grad=False):
    """base ** linspace(start, end, steps). Integer dtypes truncate start and end first, step the
    exponent in float64 (from start for the first half, back from end for the second) and truncate
    each power, as PyTorch does."""
    from fastdl._tensor import _finish, get_default_dtype
    start, end = _num(start, "logspace", "start"), _num(end, "logspace", "end")
    if not isinstance(steps, builtins.int) or steps < 0:
        raise ValueError(f"logspace: steps must be a non-negative int; got {steps!r}")
    dt = dtype or get_default_dtype()
    integer = not dt.is_floating_point
    s, e = (builtins.int(builtins.float(start)), builtins.int(builtins.float(end))) if integer else (start, end)
    i = np.arange(steps, dtype=np.float64)
    if steps > 1:
        delta = (builtins.float(e) - builtins.float(s)) / (steps - 1)
        expo = np.where(i < steps // 2, s + delta * i, e - delta * (steps - 1 - i))
    else:
        expo = np.full(steps, builtins.float(s))
    with np.errstate(over="ignore"):
        v = np.power(builtins.float(base), expo)
    if integer:
        v = np.trunc(v)
        t = _C.from_numpy(v.astype(np.int64))
        t = t if dt == _C.dtype.int64 else t.to(dt)
    else:
        t = _C.from_numpy(v).to(dt)
    return _finish(t, None, device, requires_grad)


def _tri_indices(op, fn, row, col, offset, dtype, device):
    from fastdl._tensor import _finish
    for name, v in (("row", row), ("col", col), ("offset", offset)):
        if not isinstance(v, builtins.int) or isinstance(v, builtins.bool):
            raise TypeError(f"{op}: {name} must be an int; got {type(v).__name__}")
    if row < 0 or col < 0:
        raise ValueError(f"{op}: row and col must be non-negative; got row={row}, col={col}")
    r, c = fn(row, offset, col)
    t = _C.from_numpy(np.stack([r, c]).astype(np.int64).reshape(2, -1))
    dt = dtype or _C.dtype.int64
    if dt not in (_C.dtype.int64, _C.dtype.int32):
        raise ValueError(f"{op}: dtype must be int32 or int64; got {dt}")
    return _finish(t if dt == _C.dtype.int64 else t.to(dt), None, device, False)


def tril_indices(row, col, offset=0, *, dtype=None, device=None, layout=None):
    """The (2, N) row and column indices of the lower triangle of a row x col matrix, row-major."""
    return _tri_indices("tril_indices", np.tril_indices, row, col, offset, dtype, device)


def triu_indices(row, col, offset=0, *, dtype=None, device=None, layout=None):
    """The (2, N) row and column indices of the upper triangle of a row x col matrix, row-major."""
    return _tri_indices("triu_indices", np.triu_indices, row, col, offset, dtype, device)


def unravel_index(indices, shape):
    """The coordinates of flat indices into shape, as a tuple of int64 tensors shaped like indices."""
    if isinstance(indices, (builtins.int, builtins.list, builtins.tuple)):
        from fastdl._tensor import tensor
        indices = tensor(indices, dtype=_C.dtype.int64)
    if not isinstance(indices, Tensor) or indices.dtype.is_floating_point or indices.dtype == _C.dtype.bool:
        raise TypeError(f"unravel_index: indices must be an integer tensor; got "
                        f"{getattr(indices, 'dtype', type(indices).__name__)}")
    shape = (shape,) if isinstance(shape, builtins.int) else tuple(builtins.int(d) for d in shape)
    if builtins.any(d < 0 for d in shape):
        raise ValueError(f"unravel_index: shape must hold non-negative sizes; got {shape}")
    total = 1
    for d in shape:
        total *= d
    idx = indices.to(_C.dtype.int64)
    if idx.numel() and (builtins.int(idx.amax().item()) >= total or builtins.int(idx.amin().item()) < -total):
        raise ValueError(f"unravel_index: indices must be in [-{total}, {total}) for shape {shape}")
    out = []
    for d in reversed(shape):
        out.append(_C.remainder(idx, d))
        idx = _C.floor_divide(idx, d)
    return tuple(reversed(out))


# ---- bit shifts: a << b = a * 2^b (wrapping), a >> b = floor(a / 2^b); shifts past the width
# (or negative) give 0, and -1 for negative a shifted right, as PyTorch's CPU kernels.
_POW2 = None


def _pow2():
    # The powers live in a numpy array; each call wraps it in a fresh zero-copy tensor, so no
    # tensor outlives its call (a module-level tensor would still be alive when the extension
    # module is torn down, which nanobind reports as a leak).
    global _POW2
    if _POW2 is None:
        _POW2 = np.array([1 << i for i in builtins.range(63)] + [-(1 << 63)], dtype=np.int64)
    return _C.from_numpy(_POW2)


def _shift_args(op, a, b):
    from fastdl._tensor import tensor
    ta, tb = isinstance(a, Tensor), isinstance(b, Tensor)
    if not ta and not tb:
        raise TypeError(f"{op}: expected a Tensor argument")
    for name, v in (("input", a), ("other", b)):
        if isinstance(v, Tensor) and (v.dtype.is_floating_point):
            raise TypeError(f"{op}: not implemented for floating point {name} ({v.dtype}); shifts take integers")
        if not isinstance(v, (Tensor, builtins.int)):
            raise TypeError(f"{op}: {name} must be an integer tensor or int; got {type(v).__name__}")
    if ta and tb:
        big = _C.dtype.int64 if _C.dtype.int64 in (a.dtype, b.dtype) else a.dtype
        dt = big if a.dtype != _C.dtype.bool or b.dtype != _C.dtype.bool else _C.dtype.bool
    else:
        dt = a.dtype if ta else b.dtype
        if dt == _C.dtype.bool:
            dt = _C.dtype.int64
    a = a if ta else tensor(a, dtype=dt)
    b = b if tb else tensor(b, dtype=dt)
    return a.to(_C.dtype.int64), b.to(_C.dtype.int64), dt


def _width(dt):
    return {_C.dtype.int32: 32, _C.dtype.int16: 16, _C.dtype.int8: 8, _C.dtype.uint8: 8, _C.dtype.bool: 8}.get(dt, 64)


def bitwise_left_shift(input, other):
    a, b, dt = _shift_args("bitwise_left_shift", input, other)
    w = _width(dt)
    ok = _C.logical_and(b >= 0, b < w)
    p = _C.index_select(_pow2(), 0, _C.where(ok, b, 0).reshape([-1])).reshape(list(b.shape))
    out = _C.where(ok, a * p, 0)
    return out if dt == _C.dtype.int64 else out.to(dt)


def bitwise_right_shift(input, other):
    a, b, dt = _shift_args("bitwise_right_shift", input, other)
    w = _width(dt)
    ok = _C.logical_and(b >= 0, b < builtins.min(w, 63))
    p = _C.index_select(_pow2(), 0, _C.where(ok, b, 0).reshape([-1])).reshape(list(b.shape))
    out = _C.where(ok, _C.floor_divide(a, p), _C.where(a < 0, -1, 0))
    return out if dt == _C.dtype.int64 else out.to(dt)


def i0(input):
    from fastdl.special import i0 as _i0
    return _i0(input)


def igamma(input, other):
    from fastdl.special import gammainc
    return gammainc(input, other)


def igammac(input, other):
    from fastdl.special import gammaincc
    return gammaincc(input, other)


def _install_methods():
    def inplace(fn):
        def method(self, *a, **k):
            r = fn(self, *a, **k)
            self.copy_(r)
            return self
        return method

    for name, fn in (("i0", i0), ("igamma", igamma), ("igammac", igammac), ("bitwise_left_shift", bitwise_left_shift),
                     ("bitwise_right_shift", bitwise_right_shift)):
        if not hasattr(Tensor, name):
            setattr(Tensor, name, fn)
        if not hasattr(Tensor, name + "_"):
            setattr(Tensor, name + "_", inplace(fn))
    if not hasattr(Tensor, "__lshift__"):
        Tensor.__lshift__ = bitwise_left_shift
        Tensor.__rshift__ = bitwise_right_shift
        Tensor.__rlshift__ = lambda self, other: bitwise_left_shift(other, self)
        Tensor.__rrshift__ = lambda self, other: bitwise_right_shift(other, self)
        Tensor.__ilshift__ = Tensor.bitwise_left_shift_
        Tensor.__irshift__ = Tensor.bitwise_right_shift_
