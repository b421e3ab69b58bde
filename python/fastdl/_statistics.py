"""Order statistics, counting and moments: median / nanmedian / mode, quantile / nanquantile,
unique / unique_consecutive, bincount / histc, searchsorted / bucketize, cummax / cummin,
logcumsumexp, nanmean, cov / corrcoef. Orders and counts are found on the host (numpy); values are
read back with the native gather, so gradients flow to the chosen elements as in PyTorch."""
import builtins
import collections

from fastdl import _C
from fastdl._C import Tensor
from fastdl._lazy import np
from fastdl._sorting import _host, argsort

_values_indices = collections.namedtuple("return_types", ["values", "indices"])


def _to_t(a, device, dt=None):
    a = np.asarray(a)
    t = _C.from_numpy(np.ascontiguousarray(a)).reshape(a.shape)
    t = t if dt is None or t.dtype == dt else t.to(dt)
    return t if device.type == "cpu" else t.to(device)


def _vdim(t, dim, op):
    if t.ndim == 0:
        if dim not in (0, -1):
            raise IndexError(f"{op}: dim {dim} is out of range for a 0-dim tensor (expected 0 or -1)")
        return 0
    if not -t.ndim <= dim < t.ndim:
        raise IndexError(f"{op}: dim {dim} is out of range for a {t.ndim}-D tensor")
    return dim % t.ndim


def _median(t, dim, keepdim, ignore_nan, op):
    if dim is None:
        if t.numel() == 0:
            raise ValueError(f"{op}: cannot compute the median of an empty tensor without a dim")
        return _median(t.reshape(-1), 0, False, ignore_nan, op).values
    dim = _vdim(t, dim, op)
    x = t.reshape(1) if t.ndim == 0 else t
    n = x.shape[dim]
    if n == 0:
        raise IndexError(f"{op}: dim {dim} has size 0; cannot take a median")
    order = argsort(x, dim)  # NaN sorts last
    nans = _C.isnan(x).sum(dim, keepdim=True) if x.dtype.is_floating_point else None
    if nans is None:
        pos = _C.full(tuple(order.narrow(dim, 0, 1).shape), builtins.float((n - 1) // 2), _C.dtype.int64, x.device)
    elif ignore_nan:  # the lower median of the non-NaN values (index 0 when all are NaN)
        pos = _C.clamp(_C.floor_divide(n - nans - 1, 2), 0, None)
    else:  # any NaN makes the median NaN: the first NaN in sorted order
        pos = _C.where(nans > 0, n - nans, _C.full((), builtins.float((n - 1) // 2), _C.dtype.int64, x.device))
    idx = _C.gather(order, dim, pos)
    val = _C.gather(x, dim, idx)
    if not keepdim or t.ndim == 0:
        val, idx = val.squeeze(dim), idx.squeeze(dim)
    return _values_indices(val, idx)


def median(input, dim=None, keepdim=False):
    """The lower median (NaN if the slice holds a NaN); with dim, (values, indices)."""
    return _median(input, dim, keepdim, False, "median")


def nanmedian(input, dim=None, keepdim=False):
    """median ignoring NaN (NaN only for slices that are all NaN)."""
    return _median(input, dim, keepdim, True, "nanmedian")


def mode(input, dim=-1, keepdim=False):
    """The most frequent value of each slice (the smallest among equally frequent ones) and the index
    of its last occurrence."""
    dim = _vdim(input, dim, "mode")
    x = input.reshape(1) if input.ndim == 0 else input
    if x.shape[dim] == 0:
        raise IndexError(f"mode: dim {dim} has size 0")
    a = np.moveaxis(_host(x), dim, -1)
    rows = a.reshape(-1, a.shape[-1])
    best = np.empty(rows.shape[0], np.int64)
    for r, row in enumerate(rows):
        vals, counts = np.unique(row, return_counts=True)  # sorted: argmax picks the smallest tie
        v = vals[np.argmax(counts)]
        hit = np.nonzero((row == v) | (np.isnan(row) & np.isnan(v)) if row.dtype.kind == "f" else row == v)[0]
        best[r] = hit[-1]
    idx = _to_t(np.moveaxis(best.reshape(a.shape[:-1] + (1,)), -1, dim), x.device)
    val = _C.gather(x, dim, idx)
    if not keepdim or input.ndim == 0:
        val, idx = val.squeeze(dim), idx.squeeze(dim)
    return _values_indices(val, idx)


_INTERP = ("linear", "lower", "higher", "midpoint", "nearest")


def _quantile(t, q, dim, keepdim, interpolation, ignore_nan, op):
    if interpolation not in _INTERP:
        raise ValueError(f"{op}: interpolation must be one of {_INTERP}; got {interpolation!r}")
    if not t.dtype.is_floating_point:
        raise TypeError(f"{op}: input must be a float tensor; got dtype {t.dtype}")
    scalar_q = not isinstance(q, Tensor)
    qt = _C.full((), builtins.float(q), _C.dtype.float64, t.device) if scalar_q else q
    if not scalar_q and qt.dtype != t.dtype:
        raise TypeError(f"{op}: q must have the input's dtype {t.dtype}; got {qt.dtype}")
    if qt.ndim > 1:
        raise ValueError(f"{op}: q must be a scalar or 1-D tensor; got shape {tuple(qt.shape)}")
    qa = _host(qt).reshape(-1).astype(np.float64)
    if ((qa < 0) | (qa > 1)).any():
        raise ValueError(f"{op}: q values must be in [0, 1]")
    if t.numel() == 0 and dim is None:
        raise ValueError(f"{op}: input tensor must be non-empty")
    if dim is None:
        x, d = t.reshape(-1), 0
    else:
        d = _vdim(t, dim, op)
        x = t.reshape(1) if t.ndim == 0 else t
    x = x.movedim(d, -1)  # (..., n)
    n = x.shape[-1]
    if n == 0:
        raise ValueError(f"{op}: dim {d} has size 0")
    srt = _C.gather(x, -1, argsort(x, -1))  # NaN last
    nans = _C.isnan(x).sum(-1, keepdim=True).to(_C.dtype.float64)  # (..., 1)
    valid = (n - nans) if ignore_nan else _C.full(tuple(nans.shape), builtins.float(n), _C.dtype.float64, x.device)
    # ranks in the input's dtype, differentiable in a tensor q (linear interpolation moves with q)
    qv = (_to_t(qa, x.device, t.dtype) if scalar_q else qt.reshape(-1)).reshape((1,) * (x.ndim - 1) + (-1,))
    rank = _C.clamp(qv * (valid.to(t.dtype) - 1), 0, None)  # (..., nq)
    if not ignore_nan:  # a slice with NaN reads its last sorted element, a NaN (PyTorch: the gradient goes there)
        rank = _C.where(nans > 0, builtins.float(n - 1), rank)
    lo, hi = rank.detach().floor(), rank.detach().ceil()
    if interpolation == "lower":
        lo = hi = lo
    elif interpolation == "higher":
        lo = hi = hi
    elif interpolation == "nearest":
        lo = hi = _C.round(rank)
    lo_v = _C.gather(srt, -1, lo.to(_C.dtype.int64))
    hi_v = _C.gather(srt, -1, hi.to(_C.dtype.int64))
    if interpolation == "linear":
        out = lo_v + (hi_v - lo_v) * (rank - lo)
    elif interpolation == "midpoint":
        out = lo_v + (hi_v - lo_v) * 0.5
    else:
        out = lo_v
    if keepdim:
        if dim is None:
            out = out.reshape(tuple(out.shape[:-1]) + (1,) * builtins.max(t.ndim, 0) + (qa.size,))
        else:
            out = out.unsqueeze(-2).movedim(-2, d) if t.ndim else out
    out = out.movedim(-1, 0)  # q's dim first (PyTorch)
    return out.squeeze(0) if scalar_q or qt.ndim == 0 else out


def quantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    return _quantile(input, q, dim, keepdim, interpolation, False, "quantile")


def nanquantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    return _quantile(input, q, dim, keepdim, interpolation, True, "nanquantile")


def _np_unique(a, axis, consecutive):
    """(values, inverse, counts) of a along axis (flattened when None), sorted or run-length."""
    if axis is None:
        a = a.reshape(-1)
        axis = 0
    moved = np.moveaxis(a, axis, 0)
    rows = moved.reshape(moved.shape[0], int(np.prod(moved.shape[1:])))
    if consecutive:
        if rows.shape[0] == 0:
            return np.moveaxis(moved, 0, axis), np.zeros(0, np.int64), np.zeros(0, np.int64)
        change = np.ones(rows.shape[0], bool)
        change[1:] = (rows[1:] != rows[:-1]).any(axis=1)
        starts = np.nonzero(change)[0]
        inverse = np.cumsum(change) - 1
        counts = np.diff(np.append(starts, rows.shape[0]))
        return np.moveaxis(moved[starts], 0, axis), inverse, counts
    vals, inverse, counts = np.unique(moved, axis=0, return_inverse=True, return_counts=True)
    return np.moveaxis(vals, 0, axis), inverse.reshape(-1), counts


def _unique_result(input, dim, vals, inv, counts, return_inverse, return_counts):
    out = _to_t(vals, input.device, input.dtype)
    if not (return_inverse or return_counts):
        return out
    res = [out]
    if return_inverse:
        res.append(_to_t(inv.astype(np.int64).reshape(tuple(input.shape) if dim is None else (-1,)), input.device))
    if return_counts:
        res.append(_to_t(counts.astype(np.int64), input.device))
    return tuple(res)


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """The distinct values (or slices along dim), sorted; with the inverse map and counts on request."""
    d = None if dim is None else _vdim(input, dim, "unique")
    vals, inv, counts = _np_unique(_host(input), d, False)
    return _unique_result(input, d, vals, inv, counts, return_inverse, return_counts)


def unique_consecutive(input, return_inverse=False, return_counts=False, dim=None):
    d = None if dim is None else _vdim(input, dim, "unique_consecutive")
    vals, inv, counts = _np_unique(_host(input), d, True)
    return _unique_result(input, d, vals, inv, counts, return_inverse, return_counts)


def bincount(input, weights=None, minlength=0):
    """Counts of each value of a 1-D non-negative integer tensor (sums of weights when given)."""
    if input.ndim != 1 or input.dtype.is_floating_point or input.dtype == _C.dtype.bool:
        raise ValueError(f"bincount: input must be a 1-D integer tensor; got {input.ndim}-D {input.dtype}")
    a = _host(input)
    if a.size and a.min() < 0:
        raise ValueError("bincount: input must be non-negative")
    if minlength < 0:
        raise ValueError(f"bincount: minlength must be non-negative; got {minlength}")
    if weights is None:
        return _to_t(np.bincount(a, minlength=minlength).astype(np.int64), input.device)
    if tuple(weights.shape) != tuple(input.shape):
        raise ValueError(f"bincount: weights shape {tuple(weights.shape)} must match input shape {tuple(input.shape)}")
    # float32 weights give float32 counts; every other weight dtype gives float64 (PyTorch)
    out_dt = _C.dtype.float32 if weights.dtype == _C.dtype.float32 else _C.dtype.float64
    n = builtins.max(builtins.int(a.max()) + 1 if a.size else 0, minlength)
    return _C.scatter(weights.to(_C.dtype.float64), input.to(_C.dtype.int64), 0, n, "sum").to(out_dt)


def histc(input, bins=100, min=0, max=0):  # noqa: A002
    """Histogram of bins equal-width bins over [min, max] (the data's range when both are 0)."""
    if not input.dtype.is_floating_point:
        raise TypeError(f"histc: input must be a float tensor; got dtype {input.dtype}")
    if bins <= 0:
        raise ValueError(f"histc: bins must be > 0; got {bins}")
    a = _host(input).reshape(-1).astype(np.float64)
    lo, hi = builtins.float(min), builtins.float(max)
    if lo == hi and a.size:
        lo, hi = builtins.float(a.min()), builtins.float(a.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if lo > hi:
        raise ValueError(f"histc: max ({max}) must be larger than min ({min})")
    a = a[(a >= lo) & (a <= hi)]
    b = np.minimum(((a - lo) * bins / (hi - lo)).astype(np.int64), bins - 1)
    return _to_t(np.bincount(b, minlength=bins).astype(np.float64), input.device, input.dtype)


def searchsorted(sorted_sequence, input, *, out_int32=False, right=False, side=None, sorter=None):
    """Insertion points of input's values into the last dim of sorted_sequence (left: first place, right
    / side='right': after equal values); sorter gives the order of an unsorted sequence."""
    if side is not None:
        if side not in ("left", "right"):
            raise ValueError(f"searchsorted: side must be 'left' or 'right'; got {side!r}")
        if right and side == "left":
            raise ValueError("searchsorted: side='left' and right=True contradict each other")
        right = side == "right"
    seq = _host(sorted_sequence)
    scalar = not isinstance(input, Tensor)
    vals = np.asarray(input, dtype=seq.dtype) if scalar else _host(input)
    if sorter is not None:
        seq = np.take_along_axis(seq, _host(sorter).astype(np.int64), axis=-1)
    how = "right" if right else "left"
    if seq.ndim <= 1:
        out = np.searchsorted(seq, vals, side=how)
    else:
        if seq.shape[:-1] != vals.shape[:-1]:
            raise ValueError(f"searchsorted: sorted_sequence shape {seq.shape} and input shape {vals.shape} must "
                             "match in all but the last dim")
        lead = int(np.prod(seq.shape[:-1]))
        s2, v2 = seq.reshape(lead, seq.shape[-1]), vals.reshape(lead, vals.shape[-1])
        out = np.zeros(v2.shape, np.int64)
        for r in range(lead):
            out[r] = np.searchsorted(s2[r], v2[r], side=how)
        out = out.reshape(vals.shape)
    dev = sorted_sequence.device
    return _to_t(np.asarray(out, dtype=np.int32 if out_int32 else np.int64), dev)


def bucketize(input, boundaries, *, out_int32=False, right=False):
    """Bucket of each value given 1-D sorted boundaries (right=False: boundaries[i-1] < x <= boundaries[i])."""
    if boundaries.ndim != 1:
        raise ValueError(f"bucketize: boundaries must be 1-D; got shape {tuple(boundaries.shape)}")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


def _cum_ext(input, dim, take_new, op):
    dim = _vdim(input, dim, op)
    x = input.reshape(1) if input.ndim == 0 else input
    a = np.moveaxis(_host(x), dim, 0)
    idx = np.zeros(a.shape, np.int64)
    if a.shape[0]:
        best, bi = a[0].copy(), np.zeros(a.shape[1:], np.int64)
        for i in builtins.range(a.shape[0]):
            new = take_new(a[i], best) if i else np.ones(a.shape[1:], bool)
            if a.dtype.kind == "f":  # a NaN, once seen, stays (its index too)
                new = (new & ~np.isnan(best)) | np.isnan(a[i]) if i else new
            best, bi = np.where(new, a[i], best), np.where(new, i, bi)
            idx[i] = bi
    it = _to_t(np.moveaxis(idx, 0, dim), x.device)
    vals = _C.gather(x, dim, it)
    if input.ndim == 0:
        vals, it = vals.reshape(()), it.reshape(())
    return _values_indices(vals, it)


def cummax(input, dim):
    """Running maximum along dim and the index where it was attained (the latest among ties)."""
    return _cum_ext(input, dim, lambda v, best: v >= best, "cummax")


def cummin(input, dim):
    return _cum_ext(input, dim, lambda v, best: v <= best, "cummin")


def logcumsumexp(input, dim):
    """log(cumsum(exp(x))) along dim, shifted by the slice's maximum against overflow."""
    if not input.dtype.is_floating_point:
        raise TypeError(f"logcumsumexp: input must be a float tensor; got dtype {input.dtype}")
    dim = _vdim(input, dim, "logcumsumexp")
    if input.ndim == 0:
        return input.clone()
    if input.numel() == 0:
        return input.clone()
    x = input.to(_C.dtype.float64) if input.dtype != _C.dtype.float64 else input  # float64 inside: accuracy
    m = x.amax(dim, keepdim=True).detach()
    m = _C.where(m.isinf(), 0.0, m)
    out = _C.log(_C.cumsum(_C.exp(x - m), dim)) + m
    return out if out.dtype == input.dtype else out.to(input.dtype)


def nanmean(input, dim=None, keepdim=False, *, dtype=None):
    if not input.dtype.is_floating_point:
        raise TypeError(f"nanmean: input must be a float tensor; got dtype {input.dtype}")
    x = input if dtype is None else input.to(dtype)
    keep = _C.logical_not(x.isnan())
    total = _C.where(keep, x, 0.0).sum(dim, keepdim=keepdim)
    return total / keep.sum(dim, keepdim=keepdim).to(total.dtype)


def cov(input, *, correction=1, fweights=None, aweights=None):
    """Covariance of the variables in input's rows (observations in columns), PyTorch's weighting."""
    if input.ndim > 2:
        raise ValueError(f"cov: expected input with at most 2 dims; got {input.ndim}")
    x = input.reshape(1, -1) if input.ndim < 2 else input
    if not x.dtype.is_floating_point:
        x = x.to(_C.dtype.float32)
    n = x.shape[1]
    # weights stay in their own dtype until they meet x, as PyTorch computes them (float32 aweights
    # make a float32 normaliser there)
    w = None
    for name, wt, floating in (("fweights", fweights, False), ("aweights", aweights, True)):
        if wt is None:
            continue
        if wt.ndim > 1:
            raise ValueError(f"cov: expected {name} to have one or fewer dimensions; got shape {tuple(wt.shape)}")
        if wt.dtype.is_floating_point != floating:
            raise TypeError(f"cov: {name} must be {'a float' if floating else 'an integer'} tensor; got {wt.dtype}")
        if wt.numel() != n:
            raise ValueError(f"cov: expected {name} to have the same numel as there are observations in the input "
                             f"({n}); got shape {tuple(wt.shape)}")
        if builtins.bool((wt < 0).any()):
            raise ValueError(f"cov: {name} cannot be negative")
    if fweights is not None:
        w = fweights
    if aweights is not None:
        w = aweights if w is None else w * aweights
    if w is None:
        wsum = _C.full((), builtins.float(n), x.dtype, x.device)
        avg = x.mean(1, keepdim=True)
        norm = wsum - correction
    else:
        wsum = w.sum()
        avg = (x * w).sum(1, keepdim=True) / wsum
        if correction == 0 or aweights is None:
            norm = wsum - correction
        else:
            norm = wsum - correction * (w * aweights).sum() / wsum
    norm = _C.clamp(norm, 0, None)
    xc = x - avg
    xw = xc if w is None else xc * w
    c = _C.matmul(xw, xc.transpose(0, 1)) / norm
    return c.reshape(()) if c.shape[0] == 1 else c  # one variable: a 0-dim result (PyTorch squeezes)


def corrcoef(input):
    c = cov(input)
    if c.ndim == 0:
        return c / c
    d = _C.sqrt(_C.diagonal(c) if hasattr(_C, "diagonal") else c.diagonal())
    c = c / d.reshape(-1, 1) / d.reshape(1, -1)
    return _C.clamp(c, -1, 1)


_histogram = collections.namedtuple("return_types_histogram", ["hist", "bin_edges"])


def histogram(input, bins=100, *, range=None, weight=None, density=False):  # noqa: A002
    """(hist, bin_edges) of a float tensor: bins equal-width bins over range (the data's by default) or
    the given edges, weighted and / or normalised to a density on request."""
    if not input.dtype.is_floating_point:
        raise TypeError(f"histogram: input must be a float tensor; got dtype {input.dtype}")
    a = _host(input).reshape(-1)
    edges = _host(bins) if isinstance(bins, Tensor) else bins
    if not isinstance(bins, Tensor) and range is None and a.size:
        range = (builtins.float(a.min()), builtins.float(a.max()))
    w = None if weight is None else _host(weight).reshape(-1)
    hist, e = np.histogram(a, bins=edges, range=range, weights=w, density=density)
    return _histogram(_to_t(hist.astype(np.float64), input.device, input.dtype), _to_t(e, input.device, input.dtype))


_histogramdd = collections.namedtuple("return_types_histogramdd", ["hist", "bin_edges"])


def _upper_bound(edges, x):
    """std::upper_bound of each x in edges (a binary search that is defined, as PyTorch's, for
    unsorted edges too): the first position whose edge exceeds x."""
    first = np.zeros(x.shape, dtype=np.int64)
    length = np.full(x.shape, edges.shape[0], dtype=np.int64)
    while np.any(length > 0):
        half = length >> 1
        mid = first + half
        go_left = x < edges[np.minimum(mid, edges.shape[0] - 1)]
        active = length > 0
        first = np.where(active & ~go_left, mid + 1, first)
        length = np.where(active, np.where(go_left, half, length - half - 1), 0)
    return first


def histogramdd(input, bins=10, *, range=None, weight=None, density=False):  # noqa: A002
    """(hist, [bin_edges per dim]) of the points in the last dim of input (..., D): bins is one
    count, one count per dim or one edge tensor per dim; range a flat (min0, max0, min1, ...).
    Binning follows PyTorch's kernel: a point inside [first edge, last edge] of every dim falls in
    the bin its binary search finds (the last edge inclusive); equal-width edges come from
    linspace in the input's dtype, a zero-width range widened by 0.5 each side."""
    if not input.dtype.is_floating_point:
        raise TypeError(f"histogramdd: input must be a float tensor; got dtype {input.dtype}")
    if input.ndim < 1:
        raise ValueError("histogramdd: input must have at least 1 dimension (the last holds the coordinates)")
    D = input.shape[-1]
    a = _host(input).reshape(-1, D)
    if isinstance(bins, builtins.int):
        bins = [bins] * D
    bins = list(bins)
    if len(bins) != D:
        raise ValueError(f"histogramdd: expected {D} bin specifications for points of dimension {D}; "
                         f"got {len(bins)} (input shape {tuple(input.shape)})")
    if range is not None:
        if len(range) != 2 * D:
            raise ValueError(f"histogramdd: range must hold 2 * {D} numbers; got {len(range)}")
        range = [(builtins.float(range[2 * i]), builtins.float(range[2 * i + 1])) for i in builtins.range(D)]
    elif a.shape[0]:
        range = [(builtins.float(a[:, i].min()), builtins.float(a[:, i].max())) for i in builtins.range(D)]
    else:
        range = [(0.0, 1.0)] * D
    edges = []
    for b, (lo, hi) in zip(bins, range):
        if isinstance(b, Tensor):
            if b.ndim != 1 or b.shape[0] < 1:
                raise ValueError(f"histogramdd: bin edges must be 1-D and non-empty; got shape {tuple(b.shape)}")
            edges.append(b.detach().to(input.dtype))
            continue
        if builtins.int(b) <= 0:
            raise ValueError(f"histogramdd: bin counts must be positive; got {b}")
        if lo > hi:
            raise ValueError(f"histogramdd: range min ({lo}) must not exceed max ({hi})")
        lo, hi = (lo - 0.5, hi + 0.5) if lo == hi else (lo, hi)
        edges.append(_C.linspace(lo, hi, builtins.int(b) + 1, input.dtype, input.device))
    e_np = [_host(e) for e in edges]
    sizes = [builtins.max(e.shape[0] - 1, 0) for e in e_np]
    keep = np.ones(a.shape[0], dtype=bool)
    flat = np.zeros(a.shape[0], dtype=np.int64)
    for d, e in enumerate(e_np):
        x = a[:, d]
        keep &= (x >= e[0]) & (x <= e[-1]) & (sizes[d] > 0)
        pos = np.minimum(_upper_bound(e, x) - 1, sizes[d] - 1)
        flat = flat * sizes[d] + np.clip(pos, 0, None)
    w = np.ones(a.shape[0]) if weight is None else _host(weight).reshape(-1).astype(np.float64)
    total = builtins.int(np.prod(sizes))
    hist = np.bincount(flat[keep], weights=w[keep], minlength=total)[:total].reshape(sizes)
    if density:
        vol = np.ones(sizes)
        for d, e in enumerate(e_np):
            shape = [1] * D
            shape[d] = sizes[d]
            vol = vol * np.diff(e.astype(np.float64)).reshape(shape)
        with np.errstate(all="ignore"):
            hist = hist / (hist.sum() * vol)
    dev = input.device
    return _histogramdd(_to_t(hist.astype(np.float64), dev, input.dtype), [e.clone() for e in edges])
