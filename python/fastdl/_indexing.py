"""Selection by masks and flat or per-dim indices, composed from native indexing and gather."""
import builtins

from fastdl import _C
from fastdl._C import Tensor
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


def nonzero_static(input, *, size, fill_value=-1):
    """nonzero's (n, ndim) indices cut or padded (rows of fill_value) to exactly size rows."""
    if size < 0:
        raise ValueError(f"nonzero_static: size must be >= 0; got {size}")
    idx = _C.nonzero(input)
    n = idx.shape[0]
    if n >= size:
        return idx[:size]
    pad = _C.full((size - n, idx.shape[1]), builtins.float(fill_value), idx.dtype, idx.device)
    return _C.cat([idx, pad], 0)


# ---- scatter family -----------------------------------------------------------------------------
# Every op below turns its per-element (or per-slice) target into a flat position in the output and
# reduces through the native segment reduction _C.scatter (sum / mean / max / min, with autograd), so
# gradients come from composed native ops. Duplicate targets in scatter / index_copy / put follow
# the reduction of the add forms (PyTorch leaves which duplicate wins unspecified).

def _dim(dim, ndim, op):
    n = builtins.max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{op}: dim {dim} is out of range for a {ndim}-D tensor")
    return dim % n


def _check_index(index, op):
    if index.dtype not in (_C.dtype.int64, _C.dtype.int32):
        raise TypeError(f"{op}: index must be an int64 or int32 tensor; got dtype {index.dtype}")


def _flat_targets(input, dim, index, op):
    """Flat positions in input (row-major) that index's elements address along dim (scatter's rule:
    out[i][index[i][j]][k] ...), as an int64 tensor of index.numel() elements."""
    _check_index(index, op)
    if index.ndim != input.ndim and not (index.ndim <= 1 and input.ndim <= 1):
        raise ValueError(f"{op}: index must have as many dims as input; got index shape {tuple(index.shape)} "
                         f"and input shape {tuple(input.shape)}")
    shape = tuple(input.shape) or (1,)
    ishape = tuple(index.shape) or (1,)
    for d, (a, b) in enumerate(zip(ishape, shape)):
        if d != dim and a > b:
            raise ValueError(f"{op}: index shape {tuple(index.shape)} exceeds input shape {tuple(input.shape)} "
                             f"outside dim {dim}")
    idx = index.reshape(ishape).to(_C.dtype.int64)
    if idx.numel() and builtins.bool(((idx < 0) | (idx >= shape[dim])).any()):
        raise IndexError(f"{op}: index out of range for dim {dim} of size {shape[dim]}")
    strides = [1] * len(shape)
    for d in builtins.range(len(shape) - 2, -1, -1):
        strides[d] = strides[d + 1] * shape[d + 1]
    pos = idx * strides[dim]
    for d, n in enumerate(ishape):
        if d != dim:
            view = [1] * len(ishape)
            view[d] = n
            pos = pos + _C.arange(0, n, 1, _C.dtype.int64, input.device).reshape(view) * strides[d]
    return pos.reshape(-1)


def _src_like_index(src, index, input):
    """src's leading index.shape block (PyTorch reads only that much of src), or a scalar as a tensor."""
    if not isinstance(src, Tensor):
        return _C.full(tuple(index.shape), builtins.float(src), input.dtype, input.device)
    if src.ndim != index.ndim:
        raise ValueError(f"scatter: src must have as many dims as index; got {src.ndim} and {index.ndim}")
    for d, n in enumerate(index.shape):
        if src.shape[d] < n:
            raise ValueError(f"scatter: src shape {tuple(src.shape)} is smaller than index shape {tuple(index.shape)}")
        if src.shape[d] != n:
            src = src.narrow(d, 0, n)
    return src.to(input.dtype) if src.dtype != input.dtype else src


def _segment(vals, segs, n, red):
    """Reduce the 1-D vals into n groups segs names ('sum', 'mean', 'max', 'min'; empty groups 0): the
    native segment reduction for floats (with autograd), numpy's ufunc.at for integers and bools."""
    if vals.dtype.is_floating_point:
        return _C.scatter(vals, segs, 0, n, red)
    v, s = _np(vals), _np(segs)
    if red in ("sum", "mean"):
        out = np.zeros(n, np.int64)
        np.add.at(out, s, v.astype(np.int64))
        if red == "mean":
            out = out // np.maximum(np.bincount(s, minlength=n), 1)
    else:
        fill = np.iinfo(np.int64).min if red == "max" else np.iinfo(np.int64).max
        out = np.full(n, fill, np.int64)
        (np.maximum if red == "max" else np.minimum).at(out, s, v.astype(np.int64))
        out[np.bincount(s, minlength=n) == 0] = 0
    return _C.from_numpy(out).to(vals.dtype).to(vals.device)


def _hits(pos, n, device):
    """Bool (n,): which flat positions pos addresses."""
    ones = _C.full((pos.numel(),), 1.0, _C.dtype.float32, device)
    return _C.scatter(ones, pos, 0, n, "sum") > 0


def _same_dtype(input, src, op):
    if isinstance(src, Tensor) and src.dtype != input.dtype:
        raise TypeError(f"{op}: expected src to have input's dtype {input.dtype}; got {src.dtype} (src shape "
                        f"{tuple(src.shape)}, input shape {tuple(input.shape)})")


def scatter_reduce(input, dim, index, src, reduce, *, include_self=True):
    """input with src's elements reduced into the places index names along dim (PyTorch's
    scatter_reduce: 'sum', 'prod', 'mean', 'amax', 'amin'; include_self counts input's own value)."""
    if reduce not in ("sum", "prod", "mean", "amax", "amin"):
        raise ValueError(f"scatter_reduce: reduce must be 'sum', 'prod', 'mean', 'amax' or 'amin'; got {reduce!r}")
    dim = _dim(dim, input.ndim, "scatter_reduce")
    _same_dtype(input, src, "scatter_reduce")
    pos = _flat_targets(input, dim, index, "scatter_reduce")
    src = _src_like_index(src, index, input)
    n, flat = input.numel(), input.reshape(-1)
    if reduce == "prod":
        return _scatter_prod(input, pos, src.reshape(-1), include_self)
    if reduce in ("amax", "amin") and input.dtype.is_floating_point:
        return _scatter_extreme(input, pos, src.reshape(-1), "max" if reduce == "amax" else "min", include_self)
    red = {"sum": "sum", "mean": "mean", "amax": "max", "amin": "min"}[reduce]
    return _scatter_plain(input, pos, src.reshape(-1), red, include_self)


def _scatter_plain(input, pos, src, red, include_self):
    """scatter_reduce's value on flat positions: src (and input's own values, with include_self)
    reduced by the segment reduction; positions nothing hits keep input's value."""
    n, flat = input.numel(), input.reshape(-1)
    vals, segs = src, pos
    if include_self:
        vals = _C.cat([flat, vals], 0)
        segs = _C.cat([_C.arange(0, n, 1, _C.dtype.int64, input.device), pos], 0)
    out = _segment(vals, segs, n, red)  # integer means round down (PyTorch)
    if out.dtype != input.dtype:
        out = out.to(input.dtype)
    if not include_self:
        out = _C.where(_hits(pos, n, input.device), out, flat)
    return out.reshape(tuple(input.shape))


def _scatter_add_flat(base, pos, vals):
    """base (n,) plus vals (k,) added at the flat positions pos, differentiable in both."""
    return base + _C.scatter(vals, pos, 0, base.numel(), "sum")


def _scatter_extreme(input, pos, src, red, include_self):
    """scatter_reduce 'amax' / 'amin' with PyTorch's gradient: each target's gradient split evenly
    over the values equal to its result (input's own value counted whenever it equals the result),
    composed from differentiable ops so that it has a second derivative (0 in the values: the ties
    are a constant mask)."""
    from fastdl.autograd import Function  # autograd imports this package: import on first use

    class ScatterExtreme(Function):
        @staticmethod
        def forward(ctx, x, s):
            out = _scatter_plain(x, pos, s, red, include_self)
            ctx.save_for_backward(x, s, out)
            return out

        @staticmethod
        def backward(ctx, g):
            x, s, out = ctx.saved_tensors
            flat, res = x.detach().reshape(-1), out.detach().reshape(-1)
            self_is = (flat == res).to(x.dtype)
            src_is = (s.detach() == _C.index_select(res, 0, pos)).to(x.dtype)
            share = g.reshape(-1) / _scatter_add_flat(self_is, pos, src_is)
            g_self = self_is * share
            if not include_self:
                g_self = _C.where(_hits(pos, flat.numel(), x.device), _C.full((), 0.0, x.dtype, x.device), g_self)
            return g_self.reshape(tuple(x.shape)), src_is * _C.index_select(share, 0, pos)

    return ScatterExtreme.apply(input, src)


def _scatter_prod(input, pos, src, include_self):
    from fastdl.autograd import Function  # autograd imports this package: import on first use

    class ScatterProd(Function):
        """Products over each target's group on the host; the gradient of an element is the product of
        the rest of its group, exact with zeros (a group's zero count decides it). Under create_graph
        the gradient is PyTorch's composite (itself through scatter_reduce 'prod'), so it has a
        second derivative, except where two zeros of src share a target (PyTorch raises there too)."""
        @staticmethod
        def forward(ctx, x, s):
            xs, ss, p = _np(x).reshape(-1), _np(s), _np(pos)
            groups = np.concatenate([np.arange(xs.size), p]) if include_self else p
            vals = np.concatenate([xs, ss]) if include_self else ss
            out = xs.copy()
            hit = np.zeros(xs.size, bool)
            hit[p] = True
            prod = np.ones(xs.size, vals.dtype)
            np.multiply.at(prod, groups, vals)
            out[hit | include_self] = prod[hit | include_self]
            ctx.keep = (groups, vals, xs.size, hit, x.shape, x.dtype)
            res = _C.from_numpy(out.reshape(tuple(x.shape)).copy()).to(x.dtype)  # bfloat16 ran in float32
            ctx.save_for_backward(x, s, res)
            return res

        @staticmethod
        def backward(ctx, g):
            groups, vals, n, hit, shape, dt = ctx.keep
            zeros = np.zeros(n, np.int64)
            np.add.at(zeros, groups, vals == 0)
            if _C.is_grad_enabled():
                return _prod_backward_composite(ctx, g, zeros, include_self)
            nz = np.ones(n, vals.dtype)
            np.multiply.at(nz, groups, np.where(vals == 0, 1, vals))
            gz, grp = zeros[groups], groups
            others = np.where(vals == 0, np.where(gz == 1, nz[grp], 0),
                              np.where(gz == 0, nz[grp] / np.where(vals == 0, 1, vals), 0))
            gv = _np(g).reshape(-1)[grp] * others
            if include_self:
                gx, gs = gv[:n], gv[n:]
            else:
                gx, gs = np.where(hit, 0, _np(g).reshape(-1)), gv
            return (_C.from_numpy(np.ascontiguousarray(gx)).reshape(tuple(shape)).to(dt),
                    _C.from_numpy(np.ascontiguousarray(gs)).to(dt))

    def _prod_backward_composite(ctx, g, zeros, include_self):
        # PyTorch's scatter_reduce_backward for 'prod', on flat positions
        x, s, out = ctx.saved_tensors
        shape, flat, res, gf = tuple(x.shape), x.reshape(-1), out.reshape(-1), g.reshape(-1)
        one = _C.full((), 1.0, x.dtype, x.device)
        masked_self = _C.where(flat == 0, one, flat)
        g_self = gf * _scatter_prod(masked_self, pos, s, include_self).reshape(-1) / masked_self
        if not include_self:
            g_self = _C.where(_hits(pos, flat.numel(), x.device), _C.full((), 0.0, x.dtype, x.device), g_self)
        src_zero = s == 0
        zero_count = _C.from_numpy(zeros).to(x.device)
        single_zero = src_zero & (_C.index_select(zero_count, 0, pos) == 1)
        masked_src_res = _scatter_prod(x, pos, _C.where(single_zero, one, s), include_self).reshape(-1)
        g_src = _C.where(single_zero, _C.index_select(gf * masked_src_res, 0, pos),
                         _C.index_select(gf * res, 0, pos) / _C.where(src_zero, one, s))
        if builtins.bool((zero_count > 1).any()):
            g_self, g_src = _no_double_backward(g_self), _no_double_backward(g_src)
        return g_self.reshape(shape), g_src

    return ScatterProd.apply(input, src)


def _no_double_backward(t):
    """t, with a derivative that raises: PyTorch's double backward of scatter_reduce 'prod' is not
    defined where two zeros of src share a target."""
    from fastdl.autograd import Function  # autograd imports this package: import on first use

    class ScatterProdZeros(Function):
        @staticmethod
        def forward(ctx, a):
            return a.clone()

        @staticmethod
        def backward(ctx, ga):
            raise RuntimeError("scatter_reduce(): double backward is unsupported for src when more than one zero "
                               "in src is scattered to the same position")
    return ScatterProdZeros.apply(t)


def _np(t):
    t = t.detach().cpu()
    return (t.float() if t.dtype == _C.dtype.bfloat16 else t).numpy()  # numpy has no bfloat16: float32


def scatter(input, dim, index, src=None, value=None, *, reduce=None):
    """input with src's elements (or value) written where index points along dim; reduce 'add' or
    'multiply' combines with input instead (PyTorch's scatter)."""
    if src is None:
        src = value
    if src is None:
        raise TypeError("scatter: expected src or value")
    if reduce is not None:
        if reduce not in ("add", "multiply"):
            raise ValueError(f"scatter: reduce must be 'add' or 'multiply'; got {reduce!r}")
        return scatter_reduce(input, dim, index, src, "sum" if reduce == "add" else "prod", include_self=True)
    dim = _dim(dim, input.ndim, "scatter")
    _same_dtype(input, src, "scatter")
    if isinstance(index, Tensor) and index.ndim == input.ndim and input.ndim > 0:
        _check_index(index, "scatter")
        if not isinstance(src, Tensor):
            src = _C.full(tuple(index.shape), builtins.float(src), input.dtype, input.device)
        elif src.ndim != index.ndim:
            raise ValueError(f"scatter: src must have as many dims as index; got {src.ndim} and {index.ndim}")
        return _C.scatter_src(input, dim, index, src)  # native: a repeated position keeps its last write
    pos = _flat_targets(input, dim, index, "scatter")
    src = _src_like_index(src, index, input)
    n = input.numel()
    placed = _segment(src.reshape(-1), pos, n, "mean" if input.dtype.is_floating_point else "max")
    return _C.where(_hits(pos, n, input.device), placed.to(input.dtype), input.reshape(-1)).reshape(tuple(input.shape))


def scatter_add(input, dim, index, src):
    return scatter_reduce(input, dim, index, src, "sum")


def _slices(input, dim, index, source, op):
    """(moved input (n, rest...), source moved to (k, rest...), 1-D int64 index) for the index_* ops."""
    _check_index(index, op)
    if index.ndim > 1:
        raise ValueError(f"{op}: index must be 0-D or 1-D; got shape {tuple(index.shape)}")
    dim = _dim(dim, input.ndim, op)
    idx = index.reshape(-1).to(_C.dtype.int64)
    x = input.reshape(1) if input.ndim == 0 else input
    n = x.shape[dim]
    if idx.numel() and builtins.bool(((idx < -n) | (idx >= n)).any()):
        raise IndexError(f"{op}: index out of range for dim {dim} of size {n}")
    idx = _C.where(idx < 0, idx + n, idx)
    src = None
    if source is not None:
        s = source.reshape(1) if source.ndim == 0 else source
        want = list(x.shape)
        want[dim] = idx.numel()
        if list(s.shape) != want:
            raise ValueError(f"{op}: source shape {tuple(source.shape)} does not match {tuple(want)} "
                             f"(input shape with dim {dim} = len(index))")
        src = s.movedim(dim, 0)
    return x.movedim(dim, 0), src, idx, dim


def _segment2(s, idx, n, red):
    """_segment over whole slices: s (k, rest...) reduced into n slices by the 1-D idx, as (n, rest)."""
    rest = tuple(s.shape[1:])
    if s.dtype.is_floating_point:
        return _C.scatter(s.reshape(idx.numel(), -1), idx, 0, n, red).reshape((n,) + rest)
    m = builtins.max(1, s[0].numel() if s.shape[0] else _numel(rest))
    pos = (idx.reshape(-1, 1) * m + _C.arange(0, m, 1, _C.dtype.int64, s.device).reshape(1, -1)).reshape(-1)
    return _segment(s.reshape(-1), pos, n * m, red).reshape((n,) + rest)


def _numel(shape):
    k = 1
    for d in shape:
        k *= d
    return k


def _back(moved, dim, input):
    return moved.movedim(0, dim).reshape(tuple(input.shape))


def index_add(input, dim, index, source, *, alpha=1):
    x, s, idx, dim = _slices(input, dim, index, source, "index_add")
    if alpha != 1:
        s = s * alpha
    rest = tuple(x.shape[1:])
    added = _segment2(s, idx, x.shape[0], "sum").reshape((x.shape[0],) + rest)
    return _back(x + added.to(x.dtype), dim, input)


def index_copy(input, dim, index, source):
    x, s, idx, dim = _slices(input, dim, index, source, "index_copy")
    rest = tuple(x.shape[1:])
    red = "mean" if x.dtype.is_floating_point else "max"
    placed = _segment2(s, idx, x.shape[0], red).reshape((x.shape[0],) + rest)
    hit = _hits(idx, x.shape[0], x.device).reshape((-1,) + (1,) * len(rest))
    out = _C.where(hit, placed.to(x.dtype), x)
    if red == "mean" and s.requires_grad and _C.is_grad_enabled():
        # a duplicated index's slot holds the mean of its sources, and each source gets the slot's
        # whole gradient (PyTorch's index_select backward): the gradient of a scatter-sum
        from fastdl.autograd.composite import value_with_grad_of
        out = value_with_grad_of(out, _C.where(hit, _segment2(s, idx, x.shape[0], "sum").to(x.dtype), x))
    return _back(out, dim, input)


def index_fill(input, dim, index, value):
    x, _, idx, dim = _slices(input, dim, index, None, "index_fill")
    hit = _hits(idx, x.shape[0], x.device).reshape((-1,) + (1,) * (x.ndim - 1))
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise ValueError(f"index_fill: value must be a 0-dim tensor; got shape {tuple(value.shape)}")
        value = value.to(x.dtype)
    else:
        value = _C.full((), builtins.float(value), x.dtype, x.device)
    return _back(_C.where(hit, value, x), dim, input)


def masked_scatter(input, mask, source):
    """input with source's leading elements (row-major) written where mask (broadcast) is True."""
    if mask.dtype != _C.dtype.bool:
        raise TypeError(f"masked_scatter: mask must be a bool tensor; got dtype {mask.dtype}")
    shape = _bshape(input, mask)
    m = _C.broadcast_to(mask, shape).reshape(-1)
    input = _C.broadcast_to(input, shape)
    k = _C.cumsum(m.to(_C.dtype.int64), 0) - 1
    count = builtins.int(m.sum().item()) if m.numel() else 0
    if count > source.numel():
        raise ValueError(f"masked_scatter: mask has {count} True elements but source has only {source.numel()}")
    if count == 0:
        return input.clone()
    picked = source.reshape(-1)[_C.clamp(k, 0, None)]
    return _C.where(m, picked.to(input.dtype), input.reshape(-1)).reshape(shape)


def put(input, index, source, accumulate=False):
    """input with source written at the flat (row-major) positions index names; accumulate adds."""
    _check_index(index, "put")
    if index.numel() != source.numel():
        raise ValueError(f"put: index and source need the same number of elements; got {index.numel()} "
                         f"and {source.numel()}")
    n = input.numel()
    idx = index.reshape(-1).to(_C.dtype.int64)
    if idx.numel() and builtins.bool(((idx < -n) | (idx >= n)).any()):
        raise IndexError(f"put: index out of range for a tensor of {n} elements")
    idx = _C.where(idx < 0, idx + n, idx)
    if idx.numel() == 0:
        return input.clone()
    out = _C.index_put(input.reshape(-1), [idx], source.reshape(-1).to(input.dtype), accumulate)
    return out.reshape(tuple(input.shape))


def index_put(input, indices, values, accumulate=False):
    return _C.index_put(input, list(indices), values, accumulate)


# ---- *_scatter: a copy of input with one view of it replaced -------------------------------------
def _view_scatter(input, src, view, op):
    """input with view(input) replaced by src: positions found by viewing an index grid the same way."""
    pos = view(_C.arange(0, input.numel(), 1, _C.dtype.int64, input.device).reshape(tuple(input.shape)))
    if tuple(pos.shape) != tuple(src.shape):
        raise ValueError(f"{op}: src shape {tuple(src.shape)} must match the view's shape {tuple(pos.shape)}")
    if pos.numel() == 0:
        return input.clone()
    out = _C.index_put(input.reshape(-1), [pos.reshape(-1)], src.reshape(-1).to(input.dtype), False)
    return out.reshape(tuple(input.shape))


def slice_scatter(input, src, dim=0, start=None, end=None, step=1):
    d = _dim(dim, input.ndim, "slice_scatter")
    n = input.shape[d]
    if step <= 0:
        raise ValueError(f"slice_scatter: step must be positive; got {step}")
    idx = _C.from_numpy(np.arange(n, dtype=np.int64)[builtins.slice(start, end, step)].copy())
    return _view_scatter(input, src, lambda g: g.index_select(d, idx.to(input.device)), "slice_scatter")


def select_scatter(input, src, dim, index):
    d = _dim(dim, input.ndim, "select_scatter")
    return _view_scatter(input, src, lambda g: g.select(d, index), "select_scatter")


def diagonal_scatter(input, src, offset=0, dim1=0, dim2=1):
    from fastdl._shaping import diagonal
    return _view_scatter(input, src, lambda g: diagonal(g, offset, dim1, dim2), "diagonal_scatter")


def index_reduce(input, dim, index, source, reduce, *, include_self=True):
    """input with source's slices reduced ('prod', 'mean', 'amax', 'amin') into the slices index
    names along dim: scatter_reduce with index spread over each slice."""
    if reduce not in ("prod", "mean", "amax", "amin"):
        raise ValueError(f"index_reduce: reduce must be 'prod', 'mean', 'amax' or 'amin'; got {reduce!r}")
    x, s, idx, d = _slices(input, dim, index, source, "index_reduce")
    full = idx.reshape((-1,) + (1,) * (s.ndim - 1)).expand(*s.shape)
    return _back(scatter_reduce(x, 0, full, s, reduce, include_self=include_self), d, input)
