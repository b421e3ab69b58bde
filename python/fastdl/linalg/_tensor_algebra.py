"""linalg.vander and the tensor forms of inv and solve (tensorinv, tensorsolve): reshapes around
the matrix ops, differentiable through them."""
import builtins
import math

import fastdl as fd

from ._core import check_float


def vander(x, *, N=None):
    """(..., n, N): the powers x^0, x^1, ..., x^(N-1) of each of x's last-dim entries (N = n by default),
    as running products (so integer x stays exact and gradients follow)."""
    if x.ndim == 0:  # a scalar counts as one point (PyTorch)
        x = x.reshape(1)
    N = x.shape[-1] if N is None else N
    if N <= 1:
        raise ValueError(f"linalg.vander: N must be greater than 1; got {N}")
    if not x.dtype.is_floating_point and x.dtype != fd.int64:
        x = x.to(fd.int64)
    ones = fd.ones(*x.shape, 1, dtype=x.dtype, device=x.device)
    powers = fd.cumprod(x.unsqueeze(-1).expand(*x.shape, N - 1), -1)
    return fd.cat([ones, powers], -1)


def tensorinv(A, ind=2, *, out=None):
    """The tensor X with tensordot(A, X, ind) the identity: inv of A reshaped to a square matrix."""
    check_float("linalg.tensorinv", A)
    if ind <= 0:
        raise ValueError(f"linalg.tensorinv: ind must be a positive integer; got {ind}")
    outer, inner = tuple(A.shape[:ind]), tuple(A.shape[ind:])
    p, q = math.prod(outer), math.prod(inner)
    if p != q:
        raise ValueError(f"linalg.tensorinv: the product of the first ind={ind} dims ({p}) must equal that of the "
                         f"rest ({q}); got shape {tuple(A.shape)}")
    return fd.linalg.inv(A.reshape(p, q)).reshape(*inner, *outer)


def tensorsolve(A, B, dims=None, *, out=None):
    """X with tensordot(A, X, X.ndim) = B: A's dims listed in dims move to the end first (in their
    order), then A is the (B.numel(), B.numel()) matrix of its elements."""
    check_float("linalg.tensorsolve", A)
    if dims is not None:
        dims = [d % A.ndim for d in ((dims,) if isinstance(dims, builtins.int) else dims)]
        A = A.permute(*[d for d in builtins.range(A.ndim) if d not in dims], *dims)
    sol = tuple(A.shape[B.ndim:])
    n, k = B.numel(), math.prod(sol)
    if n != k or A.numel() != n * k:
        raise ValueError(f"linalg.tensorsolve: A of shape {tuple(A.shape)} does not reshape to a square matrix "
                         f"with B of shape {tuple(B.shape)} ({n} rows, {k} unknowns)")
    return fd.linalg.solve(A.reshape(n, k), B.reshape(n)).reshape(*sol)
