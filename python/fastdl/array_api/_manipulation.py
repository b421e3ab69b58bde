"""Array API manipulation, indexing and linear-algebra functions: the standard's names and
argument conventions (axis / axes / keepdims, arrays promoted together) over fastdl's ops."""
import builtins

import fastdl as fd

from ._dtypes import result_type


def _common(arrays):
    arrays = list(arrays)
    if not arrays:
        raise ValueError("expected at least one array")
    dt = result_type(*arrays)
    return [a if a.dtype == dt else a.to(dt) for a in arrays]


def broadcast_arrays(*arrays):
    return list(fd.broadcast_tensors(*arrays))


def broadcast_to(x, /, shape):
    return fd.broadcast_to(x, tuple(shape))


def concat(arrays, /, *, axis=0):
    arrays = _common(arrays)
    if axis is None:
        return fd.cat([a.reshape(-1) for a in arrays], 0)
    return fd.cat(arrays, axis)


def stack(arrays, /, *, axis=0):
    return fd.stack(_common(arrays), axis)


def expand_dims(x, /, *, axis=0):
    if not -x.ndim - 1 <= axis <= x.ndim:
        raise IndexError(f"expand_dims: axis {axis} is out of range for an array of {x.ndim} dimensions")
    return fd.unsqueeze(x, axis)


def flip(x, /, *, axis=None):
    dims = tuple(range(x.ndim)) if axis is None else (axis,) if isinstance(axis, builtins.int) else tuple(axis)
    return fd.flip(x, dims)


def moveaxis(x, source, destination, /):
    return fd.movedim(x, source, destination)


def permute_dims(x, /, axes):
    return fd.permute(x, tuple(axes))


def repeat(x, repeats, /, *, axis=None):
    if axis is None:
        x, axis = x.reshape(-1), 0
    return fd.repeat_interleave(x, repeats, dim=axis)


def reshape(x, /, shape, *, copy=None):
    shape = tuple(shape)
    if copy:
        return fd.reshape(x, shape).clone()
    if copy is False:
        try:
            return x.view(*shape)
        except (ValueError, RuntimeError) as e:
            raise ValueError(f"reshape: copy=False but the array cannot be reshaped without a copy ({e})") from None
    return fd.reshape(x, shape)


def roll(x, /, shift, *, axis=None):
    if axis is None:
        return fd.roll(x.reshape(-1), shift).reshape(tuple(x.shape))
    return fd.roll(x, shift, axis)


def squeeze(x, /, axis):
    axes = (axis,) if isinstance(axis, builtins.int) else tuple(axis)
    for a in axes:
        if not -x.ndim <= a < x.ndim:
            raise IndexError(f"squeeze: axis {a} is out of range for an array of {x.ndim} dimensions")
        if x.shape[a] != 1:
            raise ValueError(f"squeeze: axis {a} has size {x.shape[a]}, not 1; shape {tuple(x.shape)}")
    keep = [s for i, s in enumerate(x.shape) if i not in {a % x.ndim for a in axes}]
    return x.reshape(tuple(keep))


def tile(x, repetitions, /):
    return fd.tile(x, tuple(repetitions))


def unstack(x, /, *, axis=0):
    return tuple(fd.unbind(x, axis))


def take(x, indices, /, *, axis=None):
    if axis is None:
        if x.ndim != 1:
            raise ValueError(f"take: axis is required for arrays of {x.ndim} dimensions")
        axis = 0
    if indices.ndim != 1:
        raise ValueError(f"take: indices must be one-dimensional; got shape {tuple(indices.shape)}")
    n = x.shape[axis]
    idx = fd.where(indices < 0, indices + n, indices)
    return fd.index_select(x, axis, idx)


def matmul(x1, x2, /):
    return fd.matmul(*_common((x1, x2)))


def matrix_transpose(x, /):
    if x.ndim < 2:
        raise ValueError(f"matrix_transpose: expected at least 2 dimensions; got shape {tuple(x.shape)}")
    return x.mT


def tensordot(x1, x2, /, *, axes=2):
    x1, x2 = _common((x1, x2))
    if isinstance(axes, builtins.int):
        if axes < 0 or axes > builtins.min(x1.ndim, x2.ndim):
            raise ValueError(f"tensordot: axes={axes} exceeds the arrays' dimensions")
        a1, a2 = list(range(x1.ndim - axes, x1.ndim)), list(range(axes))
    else:
        a1, a2 = [a % x1.ndim for a in axes[0]], [a % x2.ndim for a in axes[1]]
    free1 = [d for d in range(x1.ndim) if d not in a1]
    free2 = [d for d in range(x2.ndim) if d not in a2]
    k = 1
    for d1, d2 in zip(a1, a2):
        if x1.shape[d1] != x2.shape[d2]:
            raise ValueError(f"tensordot: contracted sizes differ ({x1.shape[d1]} and {x2.shape[d2]})")
        k *= x1.shape[d1]
    m = 1
    for d in free1:
        m *= x1.shape[d]
    n = 1
    for d in free2:
        n *= x2.shape[d]
    a = fd.permute(x1, tuple(free1 + a1)).reshape((m, k))
    b = fd.permute(x2, tuple(a2 + free2)).reshape((k, n))
    return fd.matmul(a, b).reshape(tuple(x1.shape[d] for d in free1) + tuple(x2.shape[d] for d in free2))


def vecdot(x1, x2, /, *, axis=-1):
    x1, x2 = _common((x1, x2))
    if x1.ndim == 0 or x2.ndim == 0 or x1.shape[axis] != x2.shape[axis]:
        raise ValueError(f"vecdot: axis {axis} differs in size; shapes {tuple(x1.shape)} and {tuple(x2.shape)}")
    return fd.sum(x1 * x2, dim=axis)
