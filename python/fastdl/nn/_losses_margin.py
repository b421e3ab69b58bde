"""Multi-class margin losses (multi_margin_loss, multilabel_margin_loss),
triplet_margin_with_distance_loss and pdist, each with PyTorch's formula, composed from native ops."""
import numpy as np

from fastdl import _C
from fastdl.nn._distance import pairwise_distance
from fastdl.nn._reduction import _legacy, _reduce


def _dev(a, like):
    """A host (numpy) table as a tensor on like's device."""
    return _C.from_numpy(np.ascontiguousarray(a)).to(like.device)


def _as_batch(input, target, op):
    """(C,) / (N, C) input -> (N, C), with the target as (N,) class indices."""
    if input.ndim > 2 or input.ndim == 2 and input.shape[1] == 0:
        raise ValueError(f"{op}: expected a non-empty 0D, 1D (C,) or 2D (N, C) input; got shape {tuple(input.shape)}")
    x = input.reshape(1, -1) if input.ndim < 2 else input
    t = target.reshape(-1)
    if target.ndim > 1 or t.shape[0] != x.shape[0]:
        raise ValueError(f"{op}: target shape {tuple(target.shape)} must be ({x.shape[0]},) for input shape "
                         f"{tuple(input.shape)}")
    return x, t


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None, reduce=None, reduction="mean"):
    """sum over i != y of max(0, margin - x[y] + x[i])^p (times weight[y]), over C, per sample."""
    op = "multi_margin_loss"
    reduction = _legacy(size_average, reduce, reduction)
    if p not in (1, 2):
        raise ValueError(f"{op}: only p == 1 and p == 2 supported; got {p}")
    x, t = _as_batch(input, target, op)
    N, C = x.shape
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= C):
        raise IndexError(f"{op}: target values must lie in [0, {C}); got input shape {tuple(input.shape)}")
    if weight is not None and (weight.ndim != 1 or weight.shape[0] != C):
        raise ValueError(f"{op}: weight must be ({C},); got shape {tuple(weight.shape)}")
    xy = _C.gather(x, 1, t.unsqueeze(1))
    h = _C.relu(margin - xy + x)
    if p == 2:
        h = h * h
    h = h * (1 - _C.one_hot(t, C).to(x.dtype))
    if weight is not None:
        h = h * _C.index_select(weight, 0, t).unsqueeze(1)
    loss = h.sum(1) / C
    if input.ndim < 2:  # one sample: the loss takes the target's shape, () or (1,) (PyTorch)
        loss = loss.reshape(tuple(target.shape))
    return _reduce(loss, reduction, op)


def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """sum over the target classes j (target's entries before the first -1) and the non-target
    classes i of max(0, 1 - (x[j] - x[i])), over C, per sample."""
    op = "multilabel_margin_loss"
    reduction = _legacy(size_average, reduce, reduction)
    if input.ndim not in (0, 1, 2) or tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"{op}: input (C,) or (N, C) and target of the same shape expected; got input "
                         f"{tuple(input.shape)} and target {tuple(target.shape)}")
    if input.shape[-1:] == (0,) and input.ndim < 2 or input.ndim == 2 and input.shape[1] == 0:
        raise ValueError(f"{op}: expected a non-empty vector or matrix with optional 0-dim batch size; got "
                         f"{tuple(input.shape)}")
    x = input.reshape(1, -1) if input.ndim < 2 else input
    N, C = x.shape
    tn = np.asarray(target.reshape(N, C).numpy()).astype(np.int64)
    valid = np.cumprod(tn >= 0, axis=1).astype(bool)  # entries before the first -1
    if (tn[valid] >= C).any():
        raise IndexError(f"{op}: target values must lie in [-1, {C}); got input shape {tuple(input.shape)}")
    is_target = np.zeros((N, C), dtype=bool)
    rows = np.nonzero(valid)[0]
    is_target[rows, tn[valid]] = True
    xt = _C.gather(x, 1, _dev(np.where(valid, tn, 0), x))  # (N, C): x at each listed target
    z = _C.relu(1 - xt.unsqueeze(2) + x.unsqueeze(1))  # (N, j, i)
    mask = (valid[:, :, None] & ~is_target[:, None, :]).astype(np.float64)
    loss = (z * _dev(mask, x).to(x.dtype)).sum([1, 2]) / C
    if input.ndim < 2:
        loss = loss.squeeze(0)
    return _reduce(loss, reduction, op)


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None, margin=1.0, swap=False,
                                      reduction="mean"):
    """max(d(a, p) - d(a, n) + margin, 0) with d pairwise_distance unless given; with swap, d(a, n)
    becomes min(d(a, n), d(p, n))."""
    op = "triplet_margin_with_distance_loss"
    if margin <= 0:
        raise ValueError(f"{op}: margin must be greater than 0; got {margin}")
    if not (anchor.ndim == positive.ndim == negative.ndim):
        raise ValueError(f"{op}: anchor, positive and negative must have the same number of dims; got shapes "
                         f"{tuple(anchor.shape)}, {tuple(positive.shape)}, {tuple(negative.shape)}")
    d = distance_function if distance_function is not None else pairwise_distance
    d_pos, d_neg = d(anchor, positive), d(anchor, negative)
    if swap:
        d_neg = _C.minimum(d_neg, d(positive, negative))
    return _reduce(_C.relu(d_pos - d_neg + margin), reduction, op)


def pdist(input, p=2):
    """p-norm distances between the rows of an (N, M) input: the N (N - 1) / 2 pairs i < j in
    row-major order."""
    if input.ndim != 2:
        raise ValueError(f"pdist: input must be 2D (N, M); got shape {tuple(input.shape)}")
    if p < 0:
        raise ValueError(f"pdist: p must be non-negative; got {p}")
    N = input.shape[0]
    i, j = np.triu_indices(N, 1)
    if i.size == 0:
        return _C.full((0,), 0.0, input.dtype, input.device) + input.sum() * 0
    diff = _C.index_select(input, 0, _dev(i.astype(np.int64), input)) - \
        _C.index_select(input, 0, _dev(j.astype(np.int64), input))
    if p == 0:
        return (diff != 0).to(input.dtype).sum(1)
    a = diff.abs()
    if p == float("inf"):
        return a.amax(1) if hasattr(a, "amax") else a.max(1)[0]
    if p == 1:
        return a.sum(1)
    # PyTorch's backward gives 0 where a pair's distance is 0 (the norm's own gradient would be NaN)
    dist = _C.norm(diff.detach(), float(p), 1, False)
    safe = _C.where(dist == 0, 1.0, dist).to(input.dtype)
    if p == 2:
        g = diff / safe.unsqueeze(1)
    else:
        g = diff.detach().sign() * a.detach().pow(p - 1) / safe.unsqueeze(1).pow(p - 1)
    sur = (diff * g.detach()).sum(1)
    return dist + (sur - sur.detach())
