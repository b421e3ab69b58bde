"""torch.svd_lowrank and torch.pca_lowrank: randomized truncated SVD (Halko, Martinsson and Tropp
2011, algorithms 4.4 and 5.1) on fastdl's matmul, QR and SVD, so autograd differentiates them.

A range finder projects A onto q random directions (drawn from fastdl's generator), refines the
basis with niter power iterations (QR between products keeps it well conditioned), and takes the
exact SVD of the small projected matrix. As PyTorch, they return V (not Vh); A ~= U diag(S) V^T,
exact when rank(A) <= q."""
import fastdl as fd

from . import qr as _qr, svd as _svd


def _check(A, op):
    if not isinstance(A, fd.Tensor):
        raise TypeError(f"{op}: A must be a Tensor; got {type(A).__name__}")
    if A.ndim < 2:
        raise ValueError(f"{op}: A must have at least 2 dimensions; got shape {tuple(A.shape)}")
    if not A.dtype.is_floating_point:
        raise TypeError(f"{op}: A must be a floating-point tensor; got {A.dtype}")


def _minus(prod_a, prod_m):
    return prod_a if prod_m is None else prod_a - prod_m


def _basis(A, q, niter, M, generator=None):
    """An (*, m, q) orthonormal basis approximating the range of A - M."""
    R = fd.randn(A.shape[-1], q, dtype=A.dtype, device=A.device, generator=generator)
    Q = _qr(_minus(A @ R, None if M is None else M @ R)).Q
    for _ in range(niter):
        Q = _qr(_minus(A.mT @ Q, None if M is None else M.mT @ Q)).Q
        Q = _qr(_minus(A @ Q, None if M is None else M @ Q)).Q
    return Q


def svd_lowrank(A, q=6, niter=2, M=None):
    """(U, S, V) of a rank-q approximation of A - M (M broadcast to A's shape, None: 0), A of shape
    (*, m, n): U (*, m, q), S (*, q), V (*, n, q). q defaults to 6 and must not exceed min(m, n)."""
    op = "svd_lowrank"
    _check(A, op)
    m, n = A.shape[-2], A.shape[-1]
    q = 6 if q is None else int(q)
    if not 0 < q <= min(m, n):
        raise ValueError(f"{op}: q must be in [1, min(m, n)] = [1, {min(m, n)}] for A of shape {tuple(A.shape)}; "
                         f"got {q}")
    if niter < 0:
        raise ValueError(f"{op}: niter must be non-negative; got {niter}")
    if M is not None:
        M = M.broadcast_to(A.shape)
    if m < n or n > q:  # approximate the transpose's range: the small factor is then (m, q)
        At, Mt = A.mT, None if M is None else M.mT
        Q = _basis(At, q, niter, Mt)  # (*, n, q)
        B = _minus(A @ Q, None if M is None else M @ Q)  # (*, m, q)
        U, S, Vh = _svd(B, full_matrices=False)
        return U, S, Q @ Vh.mT
    Q = _basis(A, q, niter, M)  # (*, m, q)
    B = _minus(Q.mT @ A, None if M is None else Q.mT @ M)  # (*, q, n)
    U, S, Vh = _svd(B, full_matrices=False)
    return Q @ U, S, Vh.mT


def pca_lowrank(A, q=None, center=True, niter=2):
    """(U, S, V) of the principal components of A (*, m, n): the rank-q SVD of A with its column
    means removed when center=True. q defaults to min(6, m, n)."""
    op = "pca_lowrank"
    _check(A, op)
    m, n = A.shape[-2], A.shape[-1]
    q = min(6, m, n) if q is None else int(q)
    if not 0 < q <= min(m, n):
        raise ValueError(f"{op}: q must be in [1, min(m, n)] = [1, {min(m, n)}] for A of shape {tuple(A.shape)}; "
                         f"got {q}")
    if niter < 0:
        raise ValueError(f"{op}: niter must be non-negative; got {niter}")
    if center:
        A = A - A.mean(dim=-2, keepdim=True)
    return svd_lowrank(A, q, niter=niter)
