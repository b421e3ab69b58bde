"""Sorting and selection: argsort / sort on the host (stable), topk and kthvalue gathered from them
(their gradients flow through the native gather)."""
import collections

from fastdl import _C
from fastdl._lazy import np


_sort_result = collections.namedtuple("return_types_sort", ["values", "indices"])


def _host(t):
    x = t.detach().cpu()
    if x.dtype in (_C.dtype.float16, _C.dtype.bfloat16):
        x = x._to_dtype(_C.dtype.float32)
    return x.numpy()


def argsort(t, dim=-1, descending=False, stable=False):
    a = _host(t)
    if a.ndim == 0:  # numpy gives shape (1,) here; torch keeps 0-dim
        return _C.full((), 0.0, _C.dtype.int64, t.device)
    if descending:
        # Stable descending without negating (negation breaks bool, the int64 minimum and NaN, which
        # PyTorch sorts as the largest value): a stable ascending sort of the reversed array, read
        # backwards, lists equal values in their original order; j there is n - 1 - j here.
        n = a.shape[dim]
        idx = (n - 1) - np.flip(np.argsort(np.flip(a, axis=dim), axis=dim, kind="stable"), axis=dim)
    else:
        idx = np.argsort(a, axis=dim, kind="stable")
    return _C.from_numpy(np.array(idx, dtype=np.int64, order="C")).to(t.device)


def sort(t, dim=-1, descending=False, stable=False):
    idx = argsort(t, dim, descending, stable)
    return _sort_result(_C.gather(t, dim, idx) if t.ndim else t, idx)


def _check_dim0(t, dim, op):
    """A 0-dim tensor takes dim 0 or -1 and acts as one element (PyTorch)."""
    if dim not in (0, -1):
        raise IndexError(f"{op}: dim {dim} is out of range for a 0-dim tensor (expected 0 or -1)")


def topk(t, k, dim=-1, largest=True, sorted=True):
    n = t.shape[dim] if t.ndim else 1
    if not 0 <= k <= n:
        raise ValueError(f"topk: k ({k}) is out of range for dimension of size {n}")
    if t.ndim == 0:
        _check_dim0(t, dim, "topk")
        r = topk(t.reshape(1), k, 0, largest, sorted)
        return _sort_result(r.values.reshape(()), r.indices.reshape(())) if k == 1 else r
    idx = argsort(t, dim, descending=largest).narrow(dim, 0, k)
    return _sort_result(_C.gather(t, dim, idx), idx)


def kthvalue(t, k, dim=-1, keepdim=False):
    n = t.shape[dim] if t.ndim else 1
    if not 1 <= k <= n:
        raise ValueError(f"kthvalue: k ({k}) is out of range for dimension of size {n}")
    if t.ndim == 0:
        _check_dim0(t, dim, "kthvalue")
        r = kthvalue(t.reshape(1), k, 0, True)
        return _sort_result(r.values.reshape(()), r.indices.reshape(()))
    idx = argsort(t, dim).narrow(dim, k - 1, 1)
    v = _C.gather(t, dim, idx)
    return _sort_result(v if keepdim else v.squeeze(dim), idx if keepdim else idx.squeeze(dim))


def msort(input):
    """input sorted along its first dim."""
    return sort(input, 0).values
