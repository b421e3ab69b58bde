"""Selection by masks and flat or per-dim indices, composed from native indexing and gather."""
import builtins

from fastdl import _C
from fastdl._lazy import np


def masked_select(t, mask):
    """The elements of t (broadcast with mask) where mask is True, as a 1-D tensor in row-major order."""
    if mask.dtype != _C.dtype.bool:
        raise TypeError(f"masked_select: mask must be a bool tensor; got dtype {mask.dtype}")
    shape = _bshape(t, mask)
    return _C.broadcast_to(t, shape).reshape(-1)[_C.broadcast_to(mask, shape).reshape(-1)]


def _bshape(a, b):
    return tuple(np.broadcast_shapes(tuple(a.shape), tuple(b.shape)))


def take(t, index):
    return t.reshape(-1)[index]


def _wrap(indices, n):
    """Negative indices count from the end (PyTorch's take_along_dim / take)."""
    return _C.where(indices < 0, indices + n, indices)


def take_along_dim(t, indices, dim=None):
    if dim is None:
        return t.reshape(-1).gather(0, _wrap(indices.reshape(-1), t.numel()))
    indices = _wrap(indices, t.shape[dim])
    shape = np.broadcast_shapes(tuple(s if i != (dim % t.ndim) else 1 for i, s in enumerate(t.shape)),
                                tuple(s if i != (dim % t.ndim) else 1 for i, s in enumerate(indices.shape)))
    ts = list(shape)
    ts[dim % t.ndim] = t.shape[dim]
    ist = list(shape)
    ist[dim % t.ndim] = indices.shape[dim]
    return t.expand(*ts).gather(dim, indices.expand(*ist))


def argwhere(t):
    return _C.nonzero(t)


def nonzero(input, *, as_tuple=False):
    """Indices of the nonzero elements: (n, ndim) int64, or with as_tuple one (n,) tensor per dim
    (a 0-dim input counts as 1-D)."""
    idx = _C.nonzero(input)
    if not as_tuple:
        return idx
    if input.ndim == 0:
        return (_C.full((1 if builtins.bool(input.item()) else 0,), 0.0, _C.dtype.int64, input.device),)
    return tuple(idx.select(1, d) for d in builtins.range(input.ndim))
