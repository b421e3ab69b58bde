"""Array API `linalg` extension, as far as fastdl's ops reach: the products, norms, traces and
diagonals. fastdl has no matrix decompositions, so cholesky, det, eigh, eigvalsh, inv,
matrix_rank, pinv, qr, slogdet, solve, svd and svdvals are absent (not stubs)."""
import builtins
import math

import fastdl as fd

from ._manipulation import _common, matmul, matrix_transpose, tensordot, vecdot  # noqa: F401
from ._statistical import _axis

__all__ = ["cross", "diagonal", "matmul", "matrix_norm", "matrix_power", "matrix_transpose", "outer",
           "tensordot", "trace", "vecdot", "vector_norm"]


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
    axes = _axis(x, axis)
    dims = tuple(range(x.ndim)) if axes is None else axes
    a = fd.abs(x)
    if ord == math.inf:
        return fd.amax(a, dim=dims, keepdim=keepdims)
    if ord == -math.inf:
        return fd.amin(a, dim=dims, keepdim=keepdims)
    if ord == 0:
        return fd.sum((a != 0).to(x.dtype), dim=dims, keepdim=keepdims)
    if ord == 1:
        return fd.sum(a, dim=dims, keepdim=keepdims)
    if ord == 2:
        return fd.sqrt(fd.sum(a * a, dim=dims, keepdim=keepdims))
    return fd.sum(a ** ord, dim=dims, keepdim=keepdims) ** (1.0 / ord)


def matrix_norm(x, /, *, keepdims=False, ord="fro"):  # noqa: A002
    """Frobenius, 1, -1, inf and -inf norms; 2, -2 and 'nuc' need singular values (absent)."""
    if ord == "fro":
        return fd.sqrt(fd.sum(x * x, dim=(-2, -1), keepdim=keepdims))
    if ord in (1, -1, math.inf, -math.inf):
        sum_dim, red_dim = (-2, -1) if ord in (1, -1) else (-1, -2)
        s = fd.sum(fd.abs(x), dim=sum_dim, keepdim=True)
        out = (fd.amax if ord > 0 else fd.amin)(s, dim=red_dim, keepdim=True)
        return out if keepdims else out.squeeze(-1).squeeze(-1)
    raise ValueError(f"matrix_norm: ord={ord!r} needs singular values, which fastdl does not compute; "
                     "supported: 'fro', 1, -1, inf, -inf")


def matrix_power(x, n, /):
    """Non-negative integer powers by repeated squaring (negative ones need an inverse, absent)."""
    if not isinstance(n, builtins.int) or n < 0:
        raise ValueError(f"matrix_power: fastdl supports non-negative integer powers only; got {n!r}")
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
