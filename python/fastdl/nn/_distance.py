"""Distances between tensors (PyTorch's cosine_similarity and pairwise_distance formulas), composed
from native ops."""
from fastdl import _C
from fastdl._lazy import np


def _clamp_min_no_grad(t, lo):
    """clamp(t, min=lo) in value, identity in gradient (torch clamps such tensors in-place under no_grad)."""
    return t + (_C.clamp(t, lo, None) - t).detach()


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """sum((x1 / max(|x1|, eps)) * (x2 / max(|x2|, eps))) along dim, after broadcasting."""
    if tuple(x1.shape) != tuple(x2.shape):  # broadcast first: the norms run over the common shape (PyTorch)
        x1, x2 = _broadcast(x1, x2)
    n1 = _clamp_min_no_grad(_C.norm(x1, 2.0, dim, True), eps)
    n2 = _clamp_min_no_grad(_C.norm(x2, 2.0, dim, True), eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    d = max(x1.ndim, x2.ndim) - 1
    return _C.norm(x1 - x2 + eps, float(p), d, keepdim)


def _broadcast(a, b):
    shape = tuple(np.broadcast_shapes(tuple(a.shape), tuple(b.shape)))
    return a.expand(shape), b.expand(shape)
