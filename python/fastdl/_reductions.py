"""Reductions and scans composed from native ops: nan-aware sums, counts, aminmax, moments,
cumulative products, differences, and dtype= forms of cumsum / softmax."""
import builtins
import collections

from fastdl import _C
from fastdl._C import Tensor


_minmax = collections.namedtuple("return_types_aminmax", ["min", "max"])


def nansum(t, dim=None, keepdim=False, dtype=None):
    x = _C.where(t.isnan(), 0, t) if t.dtype.is_floating_point else t
    return x.sum(dim, keepdim=keepdim, dtype=dtype)


def count_nonzero(t, dim=None):
    return (t != 0).sum(dim)


def aminmax(t, dim=None, keepdim=False):
    return _minmax(t.amin(dim, keepdim=keepdim), t.amax(dim, keepdim=keepdim))


def var_mean(t, dim=None, unbiased=None, keepdim=False, *, correction=None):
    if isinstance(dim, builtins.bool):  # var_mean(input, unbiased)
        dim, unbiased = None, dim
    return (t.var(dim, correction=correction, unbiased=unbiased, keepdim=keepdim), t.mean(dim, keepdim=keepdim))


def std_mean(t, dim=None, unbiased=None, keepdim=False, *, correction=None):
    if isinstance(dim, builtins.bool):  # std_mean(input, unbiased)
        dim, unbiased = None, dim
    return (t.std(dim, correction=correction, unbiased=unbiased, keepdim=keepdim), t.mean(dim, keepdim=keepdim))


def cumprod(t, dim, *, dtype=None):
    # exact for any sign (zeros included): running products, composed so autograd comes with them
    if dtype is not None:
        t = t.to(dtype)
    elif not t.dtype.is_floating_point:  # integer and bool inputs accumulate in int64 (PyTorch)
        t = t.to(_C.dtype.int64)
    if t.ndim == 0:
        if dim not in (0, -1):
            raise IndexError(f"cumprod: dim {dim} is out of range for a 0-dim tensor (expected 0 or -1)")
        return t.clone()
    parts = t.unbind(dim)
    acc, out = None, []
    for p in parts:
        acc = p if acc is None else acc * p
        out.append(acc)
    return _C.stack(out, dim) if out else t.clone()


def diff(t, n=1, dim=-1, prepend=None, append=None):
    if t.ndim == 0:
        raise ValueError("diff: expects input to be at least one-dimensional; got a 0-dim tensor")
    if n == 0:  # PyTorch returns the input as is (prepend / append unused)
        return t
    if prepend is not None or append is not None:
        def side(v):  # a scalar is broadcast to size 1 along dim (PyTorch)
            if not isinstance(v, Tensor):
                shape = list(t.shape)
                shape[dim] = 1
                return _C.full(tuple(shape), builtins.float(v), t.dtype, t.device)
            return v
        t = _C.cat(([side(prepend)] if prepend is not None else []) + [t] +
                   ([side(append)] if append is not None else []), dim)
    sub = _C.logical_xor if t.dtype == _C.dtype.bool else _C.sub  # bool differences are xor (PyTorch)
    for _ in builtins.range(n):
        k = t.shape[dim]
        if k == 0:  # n beyond the length: PyTorch gives an empty result, not an error
            break
        t = sub(t.narrow(dim, 1, k - 1), t.narrow(dim, 0, k - 1))
    return t


def prod(input, dim=None, keepdim=False, *, dtype=None):
    out = _C.prod(input, dim, keepdim, dtype)
    # the native product widens integers and bools to int64 even under dtype=int32 / bool; PyTorch
    # returns dtype= (the same values: products agree modulo 2^32, and a bool product is nonzero-ness)
    return out if dtype is None or out.dtype == dtype else out.to(dtype)


def cumsum(input, dim, *, dtype=None):
    out = _C.cumsum(input if dtype is None else input.to(dtype), dim)
    # the native scan widens integers to int64; an explicit dtype= is the result's dtype (PyTorch)
    return out if dtype is None or out.dtype == dtype else out.to(dtype)


def softmax(input, dim, dtype=None):
    return _C.softmax(input if dtype is None else input.to(dtype), dim)


def log_softmax(input, dim, dtype=None):
    return _C.log_softmax(input if dtype is None else input.to(dtype), dim)
