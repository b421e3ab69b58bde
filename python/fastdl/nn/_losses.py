"""The less common losses (margin, embedding, Poisson and Gaussian NLL), each with PyTorch's formula
(including where torch clamps without gradient)."""
import math

from fastdl import _C
from fastdl.nn._distance import _clamp_min_no_grad, pairwise_distance
from fastdl.nn._reduction import _legacy, _reduce


def margin_ranking_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"):
    reduction = _legacy(size_average, reduce, reduction)
    loss = _C.clamp(-target * (input1 - input2) + margin, 0.0, None)
    return _reduce(loss, reduction, "margin_ranking_loss")


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None, reduction="mean"):
    reduction = _legacy(size_average, reduce, reduction)
    loss = _C.where(target != 1, _C.clamp(margin - input, 0.0, None), 0.0) + _C.where(target != -1, input, 0.0)
    return _reduce(loss, reduction, "hinge_embedding_loss")


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    reduction = _legacy(size_average, reduce, reduction)
    # log(1 + exp(z)) as softplus: exp(z) would overflow (to an infinite gradient) in half precision
    from fastdl.nn.functional import softplus
    return _reduce(softplus(-target * input), reduction, "soft_margin_loss")


def cosine_embedding_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None, reduction="mean"):
    reduction = _legacy(size_average, reduce, reduction)
    d = input1.ndim - 1
    eps = 1e-12  # PyTorch's EPSILON inside the magnitudes
    cos = (input1 * input2).sum(d) / _C.sqrt(((input1 * input1).sum(d) + eps) * ((input2 * input2).sum(d) + eps))
    loss = _C.where(target == 1, 1.0 - cos, 0.0) + _C.where(target == -1, _C.clamp(cos - margin, 0.0, None), 0.0)
    return _reduce(loss, reduction, "cosine_embedding_loss")


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, size_average=None,
                        reduce=None, reduction="mean"):
    reduction = _legacy(size_average, reduce, reduction)
    if margin <= 0:
        raise ValueError(f"triplet_margin_loss: margin must be greater than 0; got {margin}")
    d_ap = pairwise_distance(anchor, positive, p, eps)
    d_an = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_an = _C.minimum(d_an, pairwise_distance(positive, negative, p, eps))
    return _reduce(_C.clamp(margin + d_ap - d_an, 0.0, None), reduction, "triplet_margin_loss")


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    reduction = _legacy(size_average, reduce, reduction)
    lsp, lsn = -_C.softplus(-input), -_C.softplus(input)  # log sigmoid(x), log sigmoid(-x)
    loss = -(target * lsp + (1 - target) * lsn)
    if weight is not None:
        loss = loss * weight
    d = input.ndim - 1
    loss = loss.sum(d) / input.shape[d]
    return _reduce(loss, reduction, "multilabel_soft_margin_loss")


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
                     reduction="mean"):
    reduction = _legacy(size_average, reduce, reduction)
    loss = _C.exp(input) - target * input if log_input else input - target * _C.log(input + eps)
    if full:  # Stirling's term for targets > 1
        safe = _C.where(target > 1, target, 2.0)
        stirling = safe * _C.log(safe) - safe + 0.5 * _C.log(2 * math.pi * safe)
        loss = loss + _C.where(target > 1, stirling, 0.0)
    return _reduce(loss, reduction, "poisson_nll_loss")


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """0.5 (log var + (input - target)^2 / var) with var clamped at eps (no gradient through the clamp)."""
    if isinstance(var, (int, float)):
        if var < 0:
            raise ValueError("gaussian_nll_loss: var has negative entry/entries")
        var = _C.full(tuple(input.shape), float(var), input.dtype, input.device)
    elif bool((var < 0).any()):
        raise ValueError("gaussian_nll_loss: var has negative entry/entries")
    ishape, vshape = tuple(input.shape), tuple(var.shape)
    if vshape != ishape:
        if ishape[:-1] == vshape:
            var = var.unsqueeze(-1)
        elif not (input.ndim == var.ndim and sum(b for a, b in zip(ishape, vshape) if a != b) == 1):
            raise ValueError(f"gaussian_nll_loss: var is of incorrect size {vshape} for input {ishape}")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"gaussian_nll_loss: {reduction} is not valid")
    var = _clamp_min_no_grad(var, eps)
    loss = 0.5 * (_C.log(var) + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction, "gaussian_nll_loss")
