"""Shape and layout conveniences composed from native views and copies: grids, diagonals, flips,
rolls, tiles, stacking, repeats."""
import builtins

from fastdl import _C
from fastdl._C import Tensor
from fastdl._lazy import np


def meshgrid(*tensors, indexing="ij"):
    ts = list(tensors[0]) if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)) else list(tensors)
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy'; got '{indexing}'")
    swap = indexing == "xy" and len(ts) >= 2
    if swap:
        ts[0], ts[1] = ts[1], ts[0]
    shape = [t.numel() for t in ts]
    out = []
    for i, t in enumerate(ts):
        view = [1] * len(ts)
        view[i] = -1
        out.append(t.reshape(*view).expand(*shape))
    if swap:  # xy: the ij grid of (y, x, ...) with the first two outputs swapped back
        out[0], out[1] = out[1], out[0]
    return tuple(out)


def broadcast_tensors(*tensors):
    shape = np.broadcast_shapes(*[tuple(t.shape) for t in tensors])
    return tuple(t.expand(*shape) for t in tensors)


def broadcast_shapes(*shapes):
    return tuple(np.broadcast_shapes(*[tuple(s) if not isinstance(s, builtins.int) else (s,) for s in shapes]))


def diagonal(t, offset=0, dim1=0, dim2=1):
    n1, n2 = t.shape[dim1], t.shape[dim2]
    length = builtins.max(0, builtins.min(n1, n2 - offset) if offset >= 0 else builtins.min(n1 + offset, n2))
    rows = _C.arange(0, length, 1, _C.dtype.int64, t.device) + builtins.max(0, -offset)
    cols = _C.arange(0, length, 1, _C.dtype.int64, t.device) + builtins.max(0, offset)
    x = t.movedim(dim1, 0).movedim(dim2 if dim2 > dim1 else dim2 + 1, 1)
    return x[rows, cols].movedim(0, -1)


def diag(t, diagonal_=0):
    if t.ndim == 1:
        n = t.numel() + abs(diagonal_)
        out = _C.full((n, n), 0.0, t.dtype, t.device)
        r = _C.arange(0, t.numel(), 1, _C.dtype.int64, t.device)
        i = r + builtins.max(0, -diagonal_)
        j = r + builtins.max(0, diagonal_)
        return _C.index_put(out, [i, j], t)
    if t.ndim == 2:
        return diagonal(t, diagonal_)
    raise ValueError(f"diag: expected a 1-D or 2-D tensor; got {t.ndim}-D")


def trace(t):
    return diagonal(t).sum()


def ravel(t):
    return t.reshape(-1)


def t_(t):  # torch.t: transpose of a <= 2-D tensor
    if t.ndim > 2:
        raise ValueError(f"t: expects a tensor with <= 2 dimensions; got {t.ndim}-D of shape {tuple(t.shape)}")
    return t.transpose(0, 1) if t.ndim == 2 else t


def fliplr(t):
    if t.ndim < 2:
        raise ValueError(f"fliplr: input must be >= 2-D; got shape {tuple(t.shape)}")
    return t.flip(1)


def flipud(t):
    if t.ndim < 1:
        raise ValueError("flipud: input must be >= 1-D; got a 0-dim tensor")
    return t.flip(0)


def roll(t, shifts, dims=None):
    if dims is None:
        return roll(t.reshape(-1), shifts, 0).reshape(tuple(t.shape))
    shifts = (shifts,) if isinstance(shifts, builtins.int) else tuple(shifts)
    dims = (dims,) if isinstance(dims, builtins.int) else tuple(dims)
    if len(shifts) != len(dims):
        raise ValueError(f"roll: shifts and dims must have the same length; got {len(shifts)} and {len(dims)}")
    for s, d in zip(shifts, dims):
        n = t.shape[d]
        if n == 0:
            continue
        s %= n
        if s:
            t = _C.cat([t.narrow(d, n - s, s), t.narrow(d, 0, n - s)], d)
    return t


def tile(t, dims):
    dims = (dims,) if isinstance(dims, builtins.int) else tuple(dims)
    if len(dims) < t.ndim:
        dims = (1,) * (t.ndim - len(dims)) + dims
    return t.repeat(*dims) if dims else t.clone()


def unflatten(t, dim, sizes):
    d = dim + t.ndim if dim < 0 else dim
    return t.reshape(*t.shape[:d], *sizes, *t.shape[d + 1:])


def atleast_1d(*ts):
    r = [t.reshape(1) if t.ndim == 0 else t for t in (ts[0] if len(ts) == 1 and isinstance(ts[0], (list, tuple)) else ts)]
    return r[0] if len(r) == 1 else tuple(r)


def atleast_2d(*ts):
    r = [t.reshape(1, -1) if t.ndim < 2 else t for t in (ts[0] if len(ts) == 1 and isinstance(ts[0], (list, tuple)) else ts)]
    return r[0] if len(r) == 1 else tuple(r)


def atleast_3d(*ts):
    def one(t):
        return t.reshape(1, 1, 1) if t.ndim == 0 else t.reshape(1, -1, 1) if t.ndim == 1 else t.unsqueeze(-1) if t.ndim == 2 else t
    r = [one(t) for t in (ts[0] if len(ts) == 1 and isinstance(ts[0], (list, tuple)) else ts)]
    return r[0] if len(r) == 1 else tuple(r)


def hstack(tensors):
    ts = atleast_1d(*tensors)
    ts = ts if isinstance(ts, tuple) else (ts,)
    return _C.cat(list(ts), 0 if ts[0].ndim == 1 else 1)


def vstack(tensors):
    ts = atleast_2d(*tensors)
    return _C.cat(list(ts if isinstance(ts, tuple) else (ts,)), 0)


def repeat_interleave(t, repeats, dim=None, *, output_size=None):
    if dim is None:
        t, dim = t.reshape(-1), 0
    n = t.shape[dim]
    if isinstance(repeats, Tensor):
        reps = repeats.tolist() if repeats.ndim else [repeats.item()] * n
    else:
        reps = [repeats] * n
    if len(reps) != n:
        raise ValueError(f"repeat_interleave: repeats must have {n} elements; got {len(reps)}")
    idx = [i for i, r in enumerate(reps) for _ in builtins.range(r)]
    if output_size is not None and output_size != len(idx):
        raise ValueError(f"repeat_interleave: output_size ({output_size}) must equal the sum of repeats ({len(idx)})")
    return t.index_select(dim, _C.from_numpy(np.array(idx, dtype=np.int64)).to(t.device))


def movedim(t, source, destination):
    """Move dims source to positions destination (ints or equal-length sequences); the rest keep
    their order."""
    if isinstance(source, builtins.int) and isinstance(destination, builtins.int):
        return _C.movedim(t, source, destination)
    src = [source] if isinstance(source, builtins.int) else list(source)
    dst = [destination] if isinstance(destination, builtins.int) else list(destination)
    if len(src) != len(dst):
        raise ValueError(f"movedim: source and destination must have the same number of dims; got {len(src)} and "
                         f"{len(dst)}")
    nd = builtins.max(t.ndim, 1)
    for d in src + dst:
        if not -nd <= d < nd:
            raise IndexError(f"movedim: dim {d} is out of range for a tensor of shape {tuple(t.shape)}")
    src = [d % nd for d in src]
    dst = [d % nd for d in dst]
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise ValueError(f"movedim: repeated dim in source {tuple(src)} or destination {tuple(dst)}")
    if t.ndim == 0:
        return t
    perm = [-1] * t.ndim
    for s, d in zip(src, dst):
        perm[d] = s
    rest = iter(d for d in builtins.range(t.ndim) if d not in src)
    perm = [p if p >= 0 else next(rest) for p in perm]
    return t.permute(*perm)
