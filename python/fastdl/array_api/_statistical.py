"""Array API reductions, searching, sorting and set functions over fastdl's ops (axis tuples,
keepdims, correction, values-only max/min, stable sorts, unique_* built from sort + cumsum)."""
import builtins
from collections import namedtuple

import fastdl as fd

from ._dtypes import _INTS, result_type
from ._elementwise import _pair


def _axis(x, axis):
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, builtins.int) else tuple(axis)
    for a in axes:
        if not -x.ndim <= a < builtins.max(x.ndim, 1):
            raise IndexError(f"axis {a} is out of range for an array of {x.ndim} dimensions")
    return axes


def _int_default(x, dtype):
    if dtype is None and (x.dtype in _INTS or x.dtype == fd.bool):
        return fd.int64
    return dtype


def _reduce(fn, x, axis, keepdims, **kw):
    axes = _axis(x, axis)
    if axes == ():
        return x.clone()
    return fn(x, dim=axes, keepdim=keepdims, **kw)


def sum(x, /, *, axis=None, dtype=None, keepdims=False):  # noqa: A001
    dtype = _int_default(x, dtype)
    out = _reduce(fd.sum, x.to(dtype) if dtype and x.dtype != dtype else x, axis, keepdims)
    return out


def prod(x, /, *, axis=None, dtype=None, keepdims=False):
    dtype = _int_default(x, dtype)
    return _reduce(fd.prod, x.to(dtype) if dtype and x.dtype != dtype else x, axis, keepdims)


def mean(x, /, *, axis=None, keepdims=False):
    return _reduce(fd.mean, x, axis, keepdims)


def max(x, /, *, axis=None, keepdims=False):  # noqa: A001
    return _reduce(fd.amax, x, axis, keepdims)


def min(x, /, *, axis=None, keepdims=False):  # noqa: A001
    return _reduce(fd.amin, x, axis, keepdims)


def var(x, /, *, axis=None, correction=0.0, keepdims=False):
    if _axis(x, axis) == ():  # each element alone: 0 / (1 - correction), NaN from correction 1 up
        return fd.zeros_like(x) / builtins.max(1.0 - correction, 0.0)
    return _reduce(fd.var, x, axis, keepdims, correction=correction)


def std(x, /, *, axis=None, correction=0.0, keepdims=False):
    if _axis(x, axis) == ():
        return fd.sqrt(var(x, axis=(), correction=correction))
    return _reduce(fd.std, x, axis, keepdims, correction=correction)


def all(x, /, *, axis=None, keepdims=False):  # noqa: A001
    return x != 0 if _axis(x, axis) == () else _reduce(fd.all, x, axis, keepdims)


def any(x, /, *, axis=None, keepdims=False):  # noqa: A001
    return x != 0 if _axis(x, axis) == () else _reduce(fd.any, x, axis, keepdims)


def cumulative_sum(x, /, *, axis=None, dtype=None, include_initial=False):
    if axis is None:
        if x.ndim > 1:
            raise ValueError(f"cumulative_sum: axis is required for arrays of {x.ndim} dimensions")
        axis = 0
    dtype = _int_default(x, dtype) or x.dtype
    out = fd.cumsum(x.to(dtype) if x.dtype != dtype else x, axis)
    if include_initial:
        shape = list(out.shape)
        shape[axis] = 1
        out = fd.cat([fd.zeros(*shape, dtype=out.dtype, device=out.device), out], axis)
    return out


def _arg(fn, x, axis, keepdims):
    if axis is None:
        out = fn(x.reshape(-1), dim=0)
        return out.reshape((1,) * x.ndim) if keepdims else out
    return fn(x, dim=axis, keepdim=keepdims)


def argmax(x, /, *, axis=None, keepdims=False):
    return _arg(fd.argmax, x, axis, keepdims)


def argmin(x, /, *, axis=None, keepdims=False):
    return _arg(fd.argmin, x, axis, keepdims)


def nonzero(x, /):
    if x.ndim == 0:
        raise ValueError("nonzero: zero-dimensional arrays are not allowed")
    return tuple(fd.unbind(fd.nonzero(x), 1))


def where(condition, x1, x2, /):
    if not isinstance(x1, fd.Tensor) and not isinstance(x2, fd.Tensor):
        raise TypeError("where: at least one of x1, x2 must be an array")
    x1, x2 = _pair(x1, x2)
    dt = result_type(x1, x2)
    return fd.where(condition, x1.to(dt), x2.to(dt))


def searchsorted(x1, x2, /, *, side="left", sorter=None):
    """Insertion points of x2 in the sorted 1-D x1: a count of smaller (or not larger) entries.
    Composed from a broadcast comparison, so it takes O(len(x1) * x2.size) memory."""
    if side not in ("left", "right"):
        raise ValueError(f"searchsorted: side must be 'left' or 'right'; got {side!r}")
    if x1.ndim != 1:
        raise ValueError(f"searchsorted: x1 must be one-dimensional; got shape {tuple(x1.shape)}")
    if sorter is not None:
        x1 = fd.index_select(x1, 0, sorter)
    x1, x2 = _pair(x1, x2)
    v = x2.unsqueeze(-1)
    hit = x1 < v if side == "left" else x1 <= v
    return fd.sum(hit, dim=-1).to(fd.int64)


def sort(x, /, *, axis=-1, descending=False, stable=True):
    return fd.sort(x, dim=axis, descending=descending, stable=True).values


def argsort(x, /, *, axis=-1, descending=False, stable=True):
    return fd.argsort(x, dim=axis, descending=descending, stable=True)


UniqueAllResult = namedtuple("UniqueAllResult", ["values", "indices", "inverse_indices", "counts"])
UniqueCountsResult = namedtuple("UniqueCountsResult", ["values", "counts"])
UniqueInverseResult = namedtuple("UniqueInverseResult", ["values", "inverse_indices"])


def _unique(x):
    """Sorted distinct values, first-occurrence indices, inverse indices (shape of x) and counts.
    NaNs compare unequal, so each is its own value, as the standard asks."""
    flat = x.reshape(-1)
    n = flat.shape[0]
    order = fd.argsort(flat, stable=True)
    s = flat[order]
    if n == 0:
        empty = fd.zeros(0, dtype=fd.int64, device=x.device)
        return s, empty, empty.reshape(tuple(x.shape)), empty
    new = fd.ones(n, dtype=fd.bool, device=x.device)
    if n > 1:
        new[1:] = s[1:] != s[:-1]
    group = fd.cumsum(new.to(fd.int64), 0) - 1          # group of each sorted element
    starts = fd.nonzero(new).reshape(-1)                # first sorted position of each group
    values = s[starts]
    inverse = fd.zeros(n, dtype=fd.int64, device=x.device)
    inverse[order] = group
    ends = fd.cat([starts[1:], fd.full((1,), n, dtype=fd.int64, device=x.device)])
    return values, order[starts], inverse.reshape(tuple(x.shape)), ends - starts


def unique_all(x, /):
    return UniqueAllResult(*_unique(x))


def unique_counts(x, /):
    v, _, _, c = _unique(x)
    return UniqueCountsResult(v, c)


def unique_inverse(x, /):
    v, _, inv, _ = _unique(x)
    return UniqueInverseResult(v, inv)


def unique_values(x, /):
    return _unique(x)[0]
