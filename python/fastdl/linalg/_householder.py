"""Householder QR in LAPACK's compact form: geqrf (A's reflectors below R's diagonal, with their
scales tau), householder_product (the first n columns of Q = H_1 ... H_k, H_i = I - tau_i v_i v_i^T,
v_i = [0, ..., 0, 1, A[i+1:, i]]) and ormqr (Q, or Q^T, times a matrix, from either side).
geqrf runs in LAPACK through numpy (mode='raw'); the other two apply the reflectors one by one
with fastdl ops, so they are differentiable w.r.t. the reflectors, tau and the other operand."""
import builtins
from collections import namedtuple

from fastdl._lazy import np

import fastdl as fd

from ._core import check_matrix, from_np, to_np

GeqrfResult = namedtuple("geqrf", ["a", "tau"])


def geqrf(input, *, out=None):
    """(a, tau): LAPACK geqrf's packed QR of input (..., m, n): R on and above the diagonal, the
    reflectors' tails below it, tau (..., min(m, n)). Not differentiable (as PyTorch)."""
    check_matrix("geqrf", input, "input")
    a = to_np(input)
    if a.size == 0:
        k = builtins.min(a.shape[-2:])
        return GeqrfResult(input.detach().clone(), fd.zeros(*a.shape[:-2], k, dtype=input.dtype, device=input.device))
    h, tau = np.linalg.qr(a, mode="raw")  # h is the packed result transposed (LAPACK's column-major)
    return GeqrfResult(from_np(np.swapaxes(h, -1, -2), input), from_np(tau, input))


def _reflectors(op, A, tau):
    """The unit-diagonal reflector vectors V (..., m, k) of A's first k = tau's length columns."""
    check_matrix(op, A, "input")
    m, n = A.shape[-2:]
    k = tau.shape[-1] if tau.ndim else 0
    most = builtins.min(m, n) if op == "linalg.householder_product" else m
    if k > most:
        raise ValueError(f"{op}: tau of shape {tuple(tau.shape)} has more scales than input of shape "
                         f"{tuple(A.shape)} has reflectors")
    if tuple(tau.shape[:-1]) != tuple(A.shape[:-2]):
        raise ValueError(f"{op}: tau's batch dims {tuple(tau.shape[:-1])} must match input's {tuple(A.shape[:-2])}")
    V = A[..., :, :k].tril(-1) + fd.eye(m, k, dtype=A.dtype, device=A.device)
    return V, k


def _apply(C, V, tau, i, left):
    """H_i C (left) or C H_i, H_i = I - tau_i v v^T."""
    v = V[..., :, i:i + 1]
    t = tau[..., i:i + 1].unsqueeze(-1)
    if left:
        return C - (t * v) @ (v.mT @ C)
    return C - ((C @ v) * t) @ v.mT


def householder_product(A, tau, *, out=None):
    """The first n columns of H_1 ... H_k for A (..., m, n) with m >= n, tau (..., k), k <= n."""
    if A.ndim >= 2 and A.shape[-2] < A.shape[-1]:
        raise ValueError(f"linalg.householder_product: input must have at least as many rows as columns; got shape "
                         f"{tuple(A.shape)}")
    V, k = _reflectors("linalg.householder_product", A, tau)
    m, n = A.shape[-2:]
    Q = fd.eye(m, n, dtype=A.dtype, device=A.device).expand(*A.shape).clone() if A.ndim > 2 else \
        fd.eye(m, n, dtype=A.dtype, device=A.device)
    for i in builtins.range(k - 1, -1, -1):
        Q = _apply(Q, V, tau, i, True)
    return Q


def ormqr(input, tau, other, left=True, transpose=False, *, out=None):
    """Q other, Q^T other (left) or other Q, other Q^T, Q = H_1 ... H_k the m x m orthogonal
    matrix of input's reflectors (geqrf's form), without forming Q."""
    check_matrix("ormqr", other, "other")
    V, k = _reflectors("ormqr", input, tau)
    m = input.shape[-2]
    if (other.shape[-2] if left else other.shape[-1]) != m:
        raise ValueError(f"ormqr: other of shape {tuple(other.shape)} does not match the {m} x {m} Q of input "
                         f"{tuple(input.shape)} (left={left})")
    # Q C = H_1 (... (H_k C)); Q^T C = H_k (... (H_1 C)); C Q = ((C H_1) ...) H_k; C Q^T = ((C H_k) ...) H_1
    C = other
    for i in (builtins.range(k) if left == transpose else builtins.range(k - 1, -1, -1)):
        C = _apply(C, V, tau, i, left)
    return C
