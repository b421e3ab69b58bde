"""Array API `linalg` extension, complete: the products, norms, traces and diagonals over
fastdl ops, and the decompositions (cholesky, det, eigh, eigvalsh, inv, matrix_rank, pinv, qr,
slogdet, solve, svd, svdvals) from fastdl.linalg (LAPACK through numpy, differentiable; CUDA
arrays round-trip through the host). The standard's signatures differ from PyTorch's in places
(positional-only arrays, `rtol` only, solve's vector rule), hence the thin shims here."""
import builtins
import math

import fastdl as fd
import fastdl.linalg as _la

from ._manipulation import _common, matmul, matrix_transpose, tensordot, vecdot  # noqa: F401
from ._statistical import _axis

__all__ = ["cholesky", "cross", "det", "diagonal", "eigh", "eigvalsh", "inv", "matmul", "matrix_norm", "matrix_power",
           "matrix_rank", "matrix_transpose", "outer", "pinv", "qr", "slogdet", "solve", "svd", "svdvals",
           "tensordot", "trace", "vecdot", "vector_norm"]


def cholesky(x, /, *, upper=False):
    return _la.cholesky(x, upper=upper)


def det(x, /):
    return _la.det(x)


def eigh(x, /):
    return _la.eigh(x)


def eigvalsh(x, /):
    return _la.eigvalsh(x)


def inv(x, /):
    return _la.inv(x)


def matrix_rank(x, /, *, rtol=None):
    return _la.matrix_rank(x, rtol=rtol)


def pinv(x, /, *, rtol=None):
    return _la.pinv(x, rtol=rtol)


def qr(x, /, *, mode="reduced"):
    return _la.qr(x, mode)


def slogdet(x, /):
    return _la.slogdet(x)


def solve(x1, x2, /):
    """The standard's rule: x2 is a vector only when 1-D (PyTorch also takes a batch of vectors of
    shape x1.shape[:-1]); otherwise (..., M, K) with batch dims broadcast."""
    x1, x2 = _common((x1, x2))
    if x2.ndim == 1:
        return _la.solve(x1, x2)
    if x2.ndim >= 2 and x2.ndim == x1.ndim - 1 and tuple(x2.shape) == tuple(x1.shape[:-1]):
        return _la.solve(x1, x2.unsqueeze(0))  # a size-1 batch dim keeps torch's vector rule off
    return _la.solve(x1, x2)


def svd(x, /, *, full_matrices=True):
    return _la.svd(x, full_matrices)


def svdvals(x, /):
    return _la.svdvals(x)


def cross(x1, x2, /, *, axis=-1):
    x1, x2 = fd.broadcast_tensors(*_common((x1, x2)))
    if x1.shape[axis] != 3:
        raise ValueError(f"cross: axis {axis} must have size 3; got shape {tuple(x1.shape)}")
    a = [fd.select(x1, axis, i) for i in range(3)]
    b = [fd.select(x2, axis, i) for i in range(3)]
    return fd.stack([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]], axis)


def diagonal(x, /, *, offset=0):
    return fd.diagonal(x, offset, -2, -1)


def trace(x, /, *, offset=0, dtype=None):
    out = fd.sum(fd.diagonal(x, offset, -2, -1), dim=-1)
    return out if dtype is None else out.to(dtype)


def outer(x1, x2, /):
    x1, x2 = _common((x1, x2))
    if x1.ndim != 1 or x2.ndim != 1:
        raise ValueError(f"outer: expected 1-D arrays; got shapes {tuple(x1.shape)} and {tuple(x2.shape)}")
    return x1.unsqueeze(1) * x2.unsqueeze(0)


def vector_norm(x, /, *, axis=None, keepdims=False, ord=2):  # noqa: A002
    # fastdl.linalg's (the same ord cases, and PyTorch's zero subgradient at an all-zero slice)
    return _la.vector_norm(x, ord, _axis(x, axis), keepdims)


def matrix_norm(x, /, *, keepdims=False, ord="fro"):  # noqa: A002
    """Frobenius, 1, -1, inf and -inf norms over fastdl ops; 2, -2 and 'nuc' from singular values."""
    if ord in (2, -2, "nuc"):
        return _la.matrix_norm(x, ord, keepdim=keepdims)
    if ord == "fro":
        return fd.sqrt(fd.sum(x * x, dim=(-2, -1), keepdim=keepdims))
    if ord in (1, -1, math.inf, -math.inf):
        sum_dim, red_dim = (-2, -1) if ord in (1, -1) else (-1, -2)
        s = fd.sum(fd.abs(x), dim=sum_dim, keepdim=True)
        out = (fd.amax if ord > 0 else fd.amin)(s, dim=red_dim, keepdim=True)
        return out if keepdims else out.squeeze(-1).squeeze(-1)
    raise ValueError(f"matrix_norm: ord must be 'fro', 'nuc', 1, -1, 2, -2, inf or -inf; got {ord!r}")


def matrix_power(x, n, /):
    """Integer powers by repeated squaring (negative ones of the inverse)."""
    if not isinstance(n, builtins.int):
        raise ValueError(f"matrix_power: n must be an integer; got {n!r}")
    if n < 0:
        return _la.matrix_power(x, n)
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"matrix_power: expected square matrices; got shape {tuple(x.shape)}")
    result = fd.eye(x.shape[-1], dtype=x.dtype, device=x.device).expand(*x.shape).contiguous()
    base = x
    while n:
        if n & 1:
            result = fd.matmul(result, base)
        n >>= 1
        if n:
            base = fd.matmul(base, base)
    return result
