"""Reductions and scans composed from native ops: nan-aware sums, counts, aminmax, moments,
cumulative products, differences, and dtype= forms of cumsum / softmax."""
import builtins
import collections

from fastdl import _C


_minmax = collections.namedtuple("return_types_aminmax", ["min", "max"])


def nansum(t, dim=None, keepdim=False, dtype=None):
    x = _C.where(t.isnan(), 0, t) if t.dtype.is_floating_point else t
    return x.sum(dim, keepdim=keepdim, dtype=dtype)


def count_nonzero(t, dim=None):
    return (t != 0).sum(dim)


def aminmax(t, dim=None, keepdim=False):
    return _minmax(t.amin(dim, keepdim=keepdim), t.amax(dim, keepdim=keepdim))


def var_mean(t, dim=None, *, correction=None, keepdim=False, unbiased=None):
    return (t.var(dim, correction=correction, unbiased=unbiased, keepdim=keepdim), t.mean(dim, keepdim=keepdim))


def std_mean(t, dim=None, *, correction=None, keepdim=False, unbiased=None):
    return (t.std(dim, correction=correction, unbiased=unbiased, keepdim=keepdim), t.mean(dim, keepdim=keepdim))


def cumprod(t, dim):
    # exact for any sign: product of prefixes via a running loop on the host when grads are off,
    # composed (differentiable) otherwise
    parts = t.unbind(dim)
    acc, out = None, []
    for p in parts:
        acc = p if acc is None else acc * p
        out.append(acc)
    return _C.stack(out, dim) if out else t.clone()


def diff(t, n=1, dim=-1):
    for _ in builtins.range(n):
        k = t.shape[dim]
        t = t.narrow(dim, 1, builtins.max(k - 1, 0)) - t.narrow(dim, 0, builtins.max(k - 1, 0))
    return t


def cumsum(input, dim, *, dtype=None):
    return _C.cumsum(input if dtype is None else input.to(dtype), dim)


def softmax(input, dim, dtype=None):
    return _C.softmax(input if dtype is None else input.to(dtype), dim)


def log_softmax(input, dim, dtype=None):
    return _C.log_softmax(input if dtype is None else input.to(dtype), dim)
