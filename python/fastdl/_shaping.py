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
    shape = tuple(np.broadcast_shapes(*[tuple(t.shape) for t in tensors]))
    return tuple(t.expand(shape) for t in tensors)  # one tuple: () too (all 0-d)


def broadcast_shapes(*shapes):
    return tuple(np.broadcast_shapes(*[tuple(s) if not isinstance(s, builtins.int) else (s,) for s in shapes]))


def diagonal(t, offset=0, dim1=0, dim2=1):
    """The diagonal `offset` of the (dim1, dim2) planes as the last dim: a view (writes reach t), as PyTorch's."""
    nd = t.ndim
    if nd < 2:
        raise ValueError(f"diagonal: expected a tensor of at least 2 dimensions; got {nd}-D")
    d1, d2 = dim1 + nd if dim1 < 0 else dim1, dim2 + nd if dim2 < 0 else dim2
    if not (0 <= d1 < nd and 0 <= d2 < nd):
        raise IndexError(f"diagonal: dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but got "
                         f"{dim1 if not 0 <= d1 < nd else dim2})")
    if d1 == d2:
        raise ValueError(f"diagonal: dim1 and dim2 cannot be identical; got {dim1} and {dim2}")
    n1, n2 = t.shape[d1], t.shape[d2]
    length = builtins.max(0, builtins.min(n1, n2 - offset) if offset >= 0 else builtins.min(n1 + offset, n2))
    st = t.stride()
    start = t.storage_offset()
    if length:
        start += offset * st[d2] if offset >= 0 else -offset * st[d1]
    keep = [k for k in builtins.range(nd) if k not in (d1, d2)]
    return _C.as_strided(t, [t.shape[k] for k in keep] + [length], [st[k] for k in keep] + [st[d1] + st[d2]], start)


def diag(t, diagonal_=0):
    if t.ndim == 1:
        n = t.numel() + abs(diagonal_)
        out = _C.full((n, n), 0.0, t.dtype, t.device)
        r = _C.arange(0, t.numel(), 1, _C.dtype.int64, t.device)
        i = r + builtins.max(0, -diagonal_)
        j = r + builtins.max(0, diagonal_)
        return _C.index_put(out, [i, j], t)
    if t.ndim == 2:
        return diagonal(t, diagonal_).clone()  # torch.diag copies (diagonal is the view)
    raise ValueError(f"diag: expected a 1-D or 2-D tensor; got {t.ndim}-D")


def trace(t):
    if t.ndim != 2:
        raise ValueError(f"trace: expected a matrix (2-D); got shape {tuple(t.shape)}")
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


def _seq(tensors, op):
    if isinstance(tensors, Tensor):
        raise TypeError(f"{op}: expected a sequence of Tensors; got a Tensor of shape {tuple(tensors.shape)}")


def hstack(tensors):
    _seq(tensors, "hstack")
    ts = atleast_1d(*tensors)
    ts = ts if isinstance(ts, tuple) else (ts,)
    return _C.cat(list(ts), 0 if ts[0].ndim == 1 else 1)


def vstack(tensors):
    _seq(tensors, "vstack")
    ts = atleast_2d(*tensors)
    return _C.cat(list(ts if isinstance(ts, tuple) else (ts,)), 0)


def dstack(tensors):
    """Stack along the third dim (inputs made at least 3-D: (n,) -> (1, n, 1), (m, n) -> (m, n, 1))."""
    _seq(tensors, "dstack")
    if not tensors:
        raise ValueError("dstack: expects a non-empty sequence of tensors")
    ts = atleast_3d(*tensors)
    return _C.cat(list(ts if isinstance(ts, tuple) else (ts,)), 2)


def column_stack(tensors):
    """Stack as columns: 0-D and 1-D inputs become (n, 1) columns, the rest concatenate along dim 1."""
    _seq(tensors, "column_stack")
    if not tensors:
        raise ValueError("column_stack: expects a non-empty sequence of tensors")
    cols = [t.reshape(t.numel(), 1) if t.ndim <= 1 else t for t in tensors]
    return _C.cat(cols, 1)


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


def _ndim_dim(dim, ndim, op):
    n = builtins.max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{op}: dim {dim} is out of range for a {ndim}-D tensor")
    return dim % n


def tensor_split(input, indices_or_sections, dim=0):
    """Views of input split along dim into n near-equal parts (the first size % n one longer) or at
    the given indices."""
    if input.ndim == 0:
        raise ValueError("tensor_split: expected at least a 1-dimensional tensor; got a 0-dim tensor")
    dim = _ndim_dim(dim, input.ndim, "tensor_split")
    size = input.shape[dim]
    ios = indices_or_sections
    if isinstance(ios, Tensor):
        if ios.dtype.is_floating_point or ios.ndim > 1:
            raise TypeError("tensor_split: a tensor indices_or_sections must be a 0-D or 1-D integer tensor")
        ios = ios.item() if ios.ndim == 0 else ios.tolist()
    if isinstance(ios, builtins.int):
        if ios <= 0:
            raise ValueError(f"tensor_split: number of sections must be larger than 0; got {ios}")
        q, r = divmod(size, ios)
        bounds, at = [], 0
        for i in builtins.range(ios - 1):
            at += q + (1 if i < r else 0)
            bounds.append(at)
    else:
        bounds = list(ios)
    out, start = [], 0
    for b in bounds + [size]:
        b = b + size if b < 0 else b
        b = builtins.min(builtins.max(b, start), size)
        out.append(input.narrow(dim, start, b - start))
        start = b
    return tuple(out)


def _split_even(input, ios, dim, op):
    if isinstance(ios, builtins.int) and (ios == 0 or input.shape[dim] % ios):
        raise ValueError(f"{op}: dim {dim} of size {input.shape[dim]} cannot be split evenly into {ios} parts")
    return tensor_split(input, ios, dim)


def hsplit(input, indices_or_sections):
    if input.ndim < 1:
        raise ValueError("hsplit: expected at least a 1-dimensional tensor; got a 0-dim tensor")
    return _split_even(input, indices_or_sections, 1 if input.ndim > 1 else 0, "hsplit")


def vsplit(input, indices_or_sections):
    if input.ndim < 2:
        raise ValueError(f"vsplit: expected at least a 2-dimensional tensor; got {input.ndim}-D")
    return _split_even(input, indices_or_sections, 0, "vsplit")


def dsplit(input, indices_or_sections):
    if input.ndim < 3:
        raise ValueError(f"dsplit: expected at least a 3-dimensional tensor; got {input.ndim}-D")
    return _split_even(input, indices_or_sections, 2, "dsplit")


def unfold(input, dimension, size, step):
    """Tensor.unfold: every window of size elements along dimension, step apart, in a new last dim; a view
    (windows overlap in memory when step < size), as PyTorch's."""
    if step <= 0:
        raise ValueError(f"unfold: step must be > 0; got {step}")
    if input.ndim == 0:
        if size > 1:
            raise ValueError(f"unfold: size {size} exceeds the 1 element of a 0-dim tensor")
        return input.reshape(size)
    d = _ndim_dim(dimension, input.ndim, "unfold")
    n = input.shape[d]
    if size > n or size < 0:
        raise ValueError(f"unfold: size {size} exceeds dim {d} of size {n}")
    windows = (n - size) // step + 1
    shape, st = list(input.shape), list(input.stride())
    sd = st[d]
    shape[d], st[d] = windows, sd * step
    return _C.as_strided(input, shape + [size], st + [sd], input.storage_offset())


def rot90(input, k=1, dims=(0, 1)):
    """Rotate by 90 degrees k times in the plane of dims, from dims[0] toward dims[1]."""
    dims = list(dims)
    if len(dims) != 2:
        raise ValueError(f"rot90: expected 2 dims; got {len(dims)}")
    if input.ndim < 2:
        raise ValueError(f"rot90: expected at least a 2-D tensor; got {input.ndim}-D")
    d0, d1 = (_ndim_dim(d, input.ndim, "rot90") for d in dims)
    if d0 == d1:
        raise ValueError(f"rot90: dims must differ; got {tuple(dims)}")
    k %= 4
    if k == 1:
        return input.flip([d1]).transpose(d0, d1)
    if k == 2:
        return input.flip([d0, d1])
    if k == 3:
        return input.flip([d0]).transpose(d0, d1)
    return input.clone()


def diag_embed(input, offset=0, dim1=-2, dim2=-1):
    """Tensors whose (dim1, dim2) diagonal at offset holds input's last dim; zero elsewhere."""
    nd = input.ndim + 1
    d1, d2 = _ndim_dim(dim1, nd, "diag_embed"), _ndim_dim(dim2, nd, "diag_embed")
    if d1 == d2:
        raise ValueError(f"diag_embed: dim1 and dim2 must differ; got {dim1} and {dim2}")
    x = input.reshape(1) if input.ndim == 0 else input
    n = x.shape[-1]
    m = n + builtins.abs(offset)
    r = _C.arange(0, m, 1, _C.dtype.int64, x.device)
    k = r - builtins.max(0, -offset)  # row r holds element k
    on = (r.reshape(1, -1) - r.reshape(-1, 1) == offset) & (k >= 0).reshape(-1, 1) & (k < n).reshape(-1, 1)
    vals = x.index_select(-1, _C.clamp(k, 0, builtins.max(n - 1, 0))) if n else x.new_zeros(*x.shape[:-1], m)
    out = _C.where(on, vals.unsqueeze(-1), _C.full((), 0.0, x.dtype, x.device))
    return movedim(out, [-2, -1], [d1, d2]) if (d1, d2) != (nd - 2, nd - 1) else out


def diagflat(input, offset=0):
    return diag(input.reshape(-1), offset)


def block_diag(*tensors):
    """The tensors (0-D, 1-D as a row, 2-D) along the diagonal of one 2-D tensor, zero elsewhere."""
    if not tensors:
        return _C.full((1, 0), 0.0, _C.dtype.float32, _C.device("cpu"))
    mats = []
    for i, t in enumerate(tensors):
        if t.ndim > 2:
            raise ValueError(f"block_diag: input {i} must have at most 2 dims; got {t.ndim}")
        mats.append(t.reshape(1, 1) if t.ndim == 0 else t.reshape(1, -1) if t.ndim == 1 else t)
    dt = mats[0].dtype
    for m in mats[1:]:  # the promoted dtype: what adding one element of each gives
        dt = _C.add(_C.full((), 0.0, dt, m.device), _C.full((), 0.0, m.dtype, m.device)).dtype
    width = builtins.sum(m.shape[1] for m in mats)
    rows, left = [], 0
    for m in mats:
        r, c = m.shape
        parts = [_C.full((r, left), 0.0, dt, m.device), m.to(dt), _C.full((r, width - left - c), 0.0, dt, m.device)]
        rows.append(_C.cat(parts, 1))
        left += c
    return _C.cat(rows, 0)


def cartesian_prod(*tensors):
    for i, t in enumerate(tensors):
        if t.ndim != 1:
            raise ValueError(f"cartesian_prod: expected 1-D tensors; input {i} is {t.ndim}-D")
    if len(tensors) == 1:
        return tensors[0]
    return _C.stack([g.reshape(-1) for g in meshgrid(*tensors, indexing="ij")], 1)


def combinations(input, r=2, with_replacement=False):
    """Rows of r elements of a 1-D tensor in lexicographic index order (itertools.combinations)."""
    import itertools
    if input.ndim != 1:
        raise ValueError(f"combinations: expected a 1-D tensor; got {input.ndim}-D")
    if r < 0:
        raise ValueError(f"combinations: r must be non-negative; got {r}")
    pick = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    idx = np.array(list(pick(builtins.range(input.shape[0]), r)), dtype=np.int64).reshape(-1, r)
    if r == 0:  # empty results stay views of input, in its graph
        return input.narrow(0, 0, 0)
    if idx.shape[0] == 0:
        return input.narrow(0, 0, 0).reshape(0, r)
    return input[_C.from_numpy(np.ascontiguousarray(idx.reshape(-1))).to(input.device)].reshape(-1, r)


def kron(input, other):
    """Kronecker product: every element of input times a copy of other, blocks laid out row-major."""
    nd = builtins.max(input.ndim, other.ndim)
    a = input.reshape((1,) * (nd - input.ndim) + tuple(input.shape))
    b = other.reshape((1,) * (nd - other.ndim) + tuple(other.shape))
    ai = [x for d in builtins.range(nd) for x in (a.shape[d], 1)]
    bi = [x for d in builtins.range(nd) for x in (1, b.shape[d])]
    return (a.reshape(ai) * b.reshape(bi)).reshape(tuple(a.shape[d] * b.shape[d] for d in builtins.range(nd)))


def cross(input, other, dim=None):
    """Cross product of 3-vectors along dim (the first dim of size 3 when None, as torch.cross)."""
    if input.ndim != other.ndim:
        raise ValueError(f"cross: inputs must have the same number of dimensions; got shapes {tuple(input.shape)} "
                         f"and {tuple(other.shape)}")
    shape = broadcast_shapes(tuple(input.shape), tuple(other.shape))
    if dim is None:
        dim = next((d for d, n in enumerate(shape) if n == 3), None)
        if dim is None:
            raise ValueError(f"cross: no dimension of size 3 in shape {shape}")
    dim = _ndim_dim(dim, len(shape), "cross")
    if input.shape[dim] != 3 or other.shape[dim] != 3:
        raise ValueError(f"cross: inputs dimension {dim} must have length 3; got shapes {tuple(input.shape)} and "
                         f"{tuple(other.shape)}")
    a, b = input.expand(*shape), other.expand(*shape)
    a0, a1, a2 = (a.narrow(dim, i, 1) for i in builtins.range(3))
    b0, b1, b2 = (b.narrow(dim, i, 1) for i in builtins.range(3))
    return _C.cat([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], dim)
