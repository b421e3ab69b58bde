"""F.pad with PyTorch's modes, pad-list convention and checks, composed from native ops.

pad lists (left, right) pairs starting from the last dim. 'constant' crops negative pads with
narrow and adds constant blocks with one cat per padded dim (any number of dims up to the
input's rank). 'reflect', 'replicate' and 'circular' pad the last 1-3 dims of a (batched or
unbatched) input: each padded dim is one cat of slices (flipped for reflect, broadcast edges for
replicate), whose backward sums the gradients of repeated border elements; a numpy table of
source indices (_source_index) is the reference the tests compare with."""
import numpy as np

from fastdl import _C

_MODES = ("constant", "reflect", "replicate", "circular")


def _pad_list(pad):
    if isinstance(pad, _C.Tensor) or not isinstance(pad, (tuple, list)):
        raise TypeError(f"pad: argument 'pad' must be a tuple of ints; got {type(pad).__name__}")
    for i, p in enumerate(pad):
        if isinstance(p, bool) or not isinstance(p, int) and not hasattr(p, "__index__"):
            raise TypeError(f"pad: argument 'pad' must be a tuple of ints; got {type(p).__name__} at position {i}")
    pad = [int(p) for p in pad]
    if len(pad) % 2:
        raise ValueError(f"pad: padding length must be divisible by 2; got {len(pad)} values {tuple(pad)}")
    return pad


def _fill_value(value, dtype):
    """value cast as PyTorch casts it to the input's dtype (bool, truncated int, or float)."""
    if dtype == _C.dtype.bool:
        return bool(value)
    return float(int(value)) if not dtype.is_floating_point else float(value)


def _constant(x, pad, value):
    pairs = len(pad) // 2
    if pairs > x.ndim:
        raise ValueError(f"pad: padding length {len(pad)} must be at most twice the input's rank; got input shape "
                         f"{tuple(x.shape)}")
    value = _fill_value(0.0 if value is None else value, x.dtype)
    out = x
    for k in range(pairs):
        dim, lo, hi = x.ndim - 1 - k, pad[2 * k], pad[2 * k + 1]
        size = out.shape[dim]
        if size + min(lo, 0) + min(hi, 0) < 0:  # PyTorch crops before it pads: the crop must fit
            raise ValueError(f"pad: negative padding ({lo}, {hi}) crops more than the size {size} of dim {dim}; got "
                             f"input shape {tuple(x.shape)}")
        if lo < 0 or hi < 0:  # negative padding crops
            start = max(-lo, 0)
            out = _C.narrow(out, dim, start, max(size - start - max(-hi, 0), 0))
        blocks = []
        for n in (max(lo, 0), max(hi, 0)):
            shape = list(out.shape)
            shape[dim] = n
            blocks.append(_C.full(tuple(shape), value, x.dtype, x.device) if n else None)
        if blocks[0] is not None or blocks[1] is not None:
            out = _C.cat([b for b in (blocks[0], out, blocks[1]) if b is not None], dim)
    return out.clone() if out is x else out


def _source_index(L, lo, hi, mode):
    """For each of the L + lo + hi output positions, the input position it copies along one dim."""
    j = np.arange(L + lo + hi, dtype=np.int64)
    if mode == "circular":  # crop first, then wrap around what is left (PyTorch)
        start = max(-lo, 0)
        kept = L - start - max(-hi, 0)
        return (j - max(lo, 0)) % kept + start if kept > 0 else j
    i = j - lo
    if mode == "replicate":
        return np.clip(i, 0, L - 1)
    i = np.abs(i)  # reflect about 0, then about L - 1
    return np.where(i > L - 1, 2 * (L - 1) - i, i)


def _nonconstant(x, pad, mode, value):
    if value is not None and value != 0:
        raise ValueError(f"pad: padding mode '{mode}' doesn't take a value argument; got value={value}")
    k = len(pad) // 2
    if k not in (1, 2, 3) or x.ndim not in (k + 1, k + 2):
        raise NotImplementedError(
            f"pad: padding size {len(pad)} is not supported for a {x.ndim}D input in mode '{mode}' (input shape "
            f"{tuple(x.shape)}); non-constant modes pad 2 values on 2D/3D, 4 on 3D/4D or 6 on 4D/5D inputs")
    first = x.ndim - k - (1 if x.ndim == k + 2 else 0)  # dims from here on must be non-empty (batch may be 0)
    if mode != "circular" and any(s == 0 for s in x.shape[first:]):
        raise ValueError(f"pad: mode '{mode}' needs non-empty dims apart from the batch dim; got input shape "
                         f"{tuple(x.shape)}")
    sizes = [x.shape[x.ndim - 1 - i] + pad[2 * i] + pad[2 * i + 1] for i in range(k)]
    if mode != "circular" and max(sizes) < 1:  # PyTorch: one padded dim may become empty, not all
        raise ValueError(f"pad: padding {tuple(pad)} leaves no padded dim of input shape {tuple(x.shape)} with an "
                         f"element; output sizes {tuple(sizes[::-1])}")
    out = x
    for i in range(k):
        dim, lo, hi = x.ndim - 1 - i, pad[2 * i], pad[2 * i + 1]
        L = x.shape[dim]
        n = L + lo + hi
        if mode == "reflect" and (lo >= L or hi >= L):
            raise ValueError(f"pad: reflect padding ({lo}, {hi}) must be below the size {L} of dim {dim}; got input "
                             f"shape {tuple(x.shape)}")
        if mode == "circular":
            if lo > L or hi > L:
                raise ValueError(f"pad: circular padding ({lo}, {hi}) wraps around dim {dim} (size {L}) more than "
                                 f"once; got input shape {tuple(x.shape)}")
            if n < 0:
                raise ValueError(f"pad: negative circular padding ({lo}, {hi}) leaves dim {dim} (size {L}) with "
                                 f"{n} elements")
            kept = L - max(-lo, 0) - max(-hi, 0)
            if max(lo, 0, -kept) > kept or max(hi, 0) > kept:  # PyTorch's values (and gradients) there are
                # an artefact of its copy order, so these pads are refused
                raise ValueError(f"pad: circular padding ({lo}, {hi}) wraps around the {max(kept, 0)} elements of dim "
                                 f"{dim} (size {L}) left after cropping more than once; got input shape "
                                 f"{tuple(x.shape)}")
        elif n < 0:
            raise ValueError(f"pad: padding ({lo}, {hi}) leaves dim {dim} (size {L}) of input shape "
                             f"{tuple(x.shape)} with {n} elements")
        if lo == 0 and hi == 0:
            continue
        if n == 0:  # circular cropping everything
            out = _C.narrow(out, dim, 0, 0)
            continue
        out = _pad_dim(out, dim, lo, hi, mode)
    return out.clone() if out is x else out


def _pad_dim(x, dim, lo, hi, mode):
    """One dim of a non-constant pad as a cat of slices of x (block copies, far faster than a
    gather of _source_index)."""
    L = x.shape[dim]
    start, n = max(-lo, 0), L + lo + hi
    if mode == "circular":  # crop, then wrap around what is left (at most once: checked)
        kept = L - start - max(-hi, 0)
        x = _C.narrow(x, dim, start, kept)
        parts = [_C.narrow(x, dim, kept - lo, lo) if lo > 0 else None, x, _C.narrow(x, dim, 0, hi) if hi > 0 else None]
        return _C.cat([q for q in parts if q is not None], dim)
    # reflect / replicate: pad the positive sides from the uncropped input, then crop (PyTorch's indices)
    left = right = None
    if lo > 0:
        left = _C.narrow(x, dim, 1, lo).flip([dim]) if mode == "reflect" else _edge(x, dim, 0, lo)
    if hi > 0:
        right = _C.narrow(x, dim, L - 1 - hi, hi).flip([dim]) if mode == "reflect" else _edge(x, dim, L - 1, hi)
    full = _C.cat([q for q in (left, x, right) if q is not None], dim) if left is not None or right is not None else x
    return _C.narrow(full, dim, start, n) if start or full.shape[dim] != n else full


def _edge(x, dim, i, n):
    """The slice at position i of dim, repeated n times along it (a broadcast view)."""
    e = _C.narrow(x, dim, i, 1)
    shape = list(e.shape)
    shape[dim] = n
    return e.expand(*shape)


def pad(input, pad, mode="constant", value=None):
    """Pad (or, with negative values, crop) input. pad = (left, right) for the last dim, then
    (top, bottom) for the one before, and so on; mode 'constant' (fill `value`, default 0),
    'reflect' (mirror without repeating the edge), 'replicate' (repeat the edge) or 'circular'
    (wrap around)."""
    pad = _pad_list(pad)
    if mode == "constant":
        return _constant(input, pad, value)
    if mode not in _MODES:
        raise NotImplementedError(f"pad: unrecognised padding mode '{mode}'; expected one of {_MODES}")
    return _nonconstant(input, pad, mode, value)
