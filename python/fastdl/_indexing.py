"""Selection by masks and flat or per-dim indices, composed from native indexing and gather."""
from fastdl import _C
from fastdl._lazy import np


def masked_select(t, mask):
    return t[mask.expand(*_C.broadcast_to(mask, tuple(_bshape(t, mask))).shape)] if False else \
        _C.broadcast_to(t, _bshape(t, mask))[_C.broadcast_to(mask, _bshape(t, mask))]


def _bshape(a, b):
    return tuple(np.broadcast_shapes(tuple(a.shape), tuple(b.shape)))


def take(t, index):
    return t.reshape(-1)[index]


def take_along_dim(t, indices, dim=None):
    if dim is None:
        return t.reshape(-1).gather(0, indices.reshape(-1))
    shape = np.broadcast_shapes(tuple(s if i != (dim % t.ndim) else 1 for i, s in enumerate(t.shape)),
                                tuple(s if i != (dim % t.ndim) else 1 for i, s in enumerate(indices.shape)))
    ts = list(shape)
    ts[dim % t.ndim] = t.shape[dim]
    ist = list(shape)
    ist[dim % t.ndim] = indices.shape[dim]
    return t.expand(*ts).gather(dim, indices.expand(*ist))


def argwhere(t):
    return _C.nonzero(t)
