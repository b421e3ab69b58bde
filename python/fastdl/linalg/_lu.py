"""LU with partial pivoting (A = P L U): linalg.lu, lu_factor, lu_factor_ex, lu_solve and torch's
lu, lu_unpack, lu_solve. The factorization runs on the host in numpy, batched and vectorised
over the batch (LAPACK getrf's right-looking algorithm: per column the first entry of largest
magnitude pivots, rows swap, the trailing block updates), so its pivots are LAPACK's. Its
backward (LU's, PyTorch's formulas for square, wide and tall A) is written with fastdl ops; the
packed, unpacked and solve forms are compositions of it, so their gradients follow."""
import builtins
from collections import namedtuple

from fastdl._lazy import np

import fastdl as fd
from fastdl.autograd import Function

from ._core import check_matrix, check_square, from_np, to_np

LuResult = namedtuple("linalg_lu", ["P", "L", "U"])
LuFactorResult = namedtuple("linalg_lu_factor", ["LU", "pivots"])
LuFactorExResult = namedtuple("linalg_lu_factor_ex", ["LU", "pivots", "info"])
LuUnpackResult = namedtuple("lu_unpack", ["P", "L", "U"])


def _getrf(a):
    """(packed LU, 1-based int32 pivots (..., k), int32 info (...)) of a (..., m, n), as LAPACK getrf."""
    a = np.array(a, dtype=a.dtype, copy=True)
    m, n = a.shape[-2:]
    k = builtins.min(m, n)
    piv = np.zeros(a.shape[:-2] + (k,), dtype=np.int32)
    info = np.zeros(a.shape[:-2], dtype=np.int32)
    flat = a.reshape(-1, m, n)
    pflat, iflat = piv.reshape(-1, k), info.reshape(-1)
    rows = np.arange(flat.shape[0])
    for j in builtins.range(k):
        p = j + np.argmax(np.abs(flat[:, j:, j]), axis=1)
        pflat[:, j] = p + 1
        top = flat[rows, j].copy()
        flat[rows, j] = flat[rows, p]
        flat[rows, p] = top
        pivot = flat[:, j, j]
        zero = pivot == 0
        iflat[(iflat == 0) & zero] = j + 1
        scale = np.where(zero, 1.0, pivot)
        flat[:, j + 1:, j] = np.where(zero[:, None], flat[:, j + 1:, j], flat[:, j + 1:, j] / scale[:, None])
        flat[:, j + 1:, j + 1:] -= flat[:, j + 1:, j, None] * flat[:, j, None, j + 1:]
    return flat.reshape(a.shape), piv, info


def _perm(piv, m):
    """The row order getrf's swaps produce: A[perm] = L U (host arrays)."""
    perm = np.broadcast_to(np.arange(m), piv.shape[:-1] + (m,)).copy()
    if perm.size == 0 or piv.shape[-1] == 0:
        return perm
    flat, pf = perm.reshape(-1, m), piv.reshape(-1, piv.shape[-1]).astype(np.int64) - 1
    rows = np.arange(flat.shape[0])
    for i in builtins.range(pf.shape[1]):
        a, b = flat[rows, i].copy(), flat[rows, pf[:, i]].copy()
        flat[rows, i], flat[rows, pf[:, i]] = b, a
    return perm


def _p_matrix(piv, m, like):
    """P (..., m, m) with A = P L U, from 1-based pivots."""
    perm = _perm(piv, m)
    P = np.zeros(perm.shape + (m,), dtype=np.float64)
    np.put_along_axis(P, perm[..., None, :], 1.0, axis=-2)  # P[perm[i], i] = 1
    return from_np(P, like)


def _unpack_np(lu, m, n):
    k = builtins.min(m, n)
    L = np.tril(lu[..., :, :k], -1) + np.eye(m, k, dtype=lu.dtype)
    U = np.triu(lu[..., :k, :])
    return L, U


class Lu(Function):
    """(P, L, U) with A = P L U. Backward (PyTorch's linalg_lu_backward, real case), k = min(m, n):
    square: gA = P L^-T [tril(L^T gL, -1) + triu(gU U^T)] U^-T; wide and tall A split U or L into
    the square block and the rest."""

    @staticmethod
    def forward(ctx, A):
        a = to_np(A)
        m, n = a.shape[-2:]
        lu, piv, info = _getrf(a)
        L, U = _unpack_np(lu, m, n)
        P, L, U = _p_matrix(piv, m, A), from_np(L, A), from_np(U, A)
        ctx.mark_non_differentiable(P)
        ctx.save_for_backward(P, L, U)
        # getrf's 1-based int32 pivots and info ride along (integers: no gradient)
        piv, info = (fd.from_numpy(np.array(v, copy=True)).to(A.device) for v in (piv, info))
        return P, L, U, piv, info

    @staticmethod
    def backward(ctx, gP, gL, gU, gpiv=None, ginfo=None):
        P, L, U = ctx.saved_tensors
        m, n = L.shape[-2], U.shape[-1]
        k = builtins.min(m, n)
        if gL is None:
            gL = fd.zeros_like(L)
        if gU is None:
            gU = fd.zeros_like(U)
        tri = fd.linalg.solve_triangular
        if m == n:
            g = (L.mT @ gL).tril(-1) + (gU @ U.mT).triu()
            g = tri(U.mT, g, upper=False, left=False)
            g = tri(L.mT, g, upper=True, unitriangular=True)
        elif m < n:  # wide: U = [U1 | U2], U1 square
            U1 = U[..., :, :k]
            g = (L.mT @ gL - gU.triu() @ U.mT).tril(-1)
            g = tri(U1.mT, g, upper=False, left=False)
            g = fd.cat([g + gU[..., :, :k].triu(), gU[..., :, k:]], -1)
            g = tri(L.mT, g, upper=True, unitriangular=True)
        else:  # tall: L = [L1; L2], L1 square; P^T A = [L1 U; L2 U], so L2 = A2 U^-1
            L1, L2 = L[..., :k, :], L[..., k:, :]
            gL1, gL2 = gL[..., :k, :], gL[..., k:, :]
            g = (L1.mT @ gL1).tril(-1) + (gU @ U.mT - L2.mT @ gL2).triu()
            g = tri(L1.mT, g, upper=True, unitriangular=True)
            g = tri(U.mT, fd.cat([g, gL2], -2), upper=False, left=False)
        return P @ g


def _check_pivot(op, pivot):
    if not pivot:
        raise NotImplementedError(f"{op}: LU without pivoting is not implemented (pivot=False)")


def lu(A, *, pivot=True, out=None):
    """(P, L, U) with A = P L U: P (..., m, m) a permutation, L (..., m, k) unit lower triangular,
    U (..., k, n) upper triangular, k = min(m, n)."""
    check_matrix("linalg.lu", A)
    _check_pivot("linalg.lu", pivot)
    return LuResult(*Lu.apply(A)[:3])


def _pack(L, U):
    """The packed LU (..., m, n): L's strict lower part under U's upper part."""
    m, n = L.shape[-2], U.shape[-1]
    k = builtins.min(m, n)
    lower = L.tril(-1)
    if n > k:
        lower = fd.cat([lower, fd.zeros(*lower.shape[:-1], n - k, dtype=L.dtype, device=L.device)], -1)
    upper = U
    if m > k:
        upper = fd.cat([U, fd.zeros(*U.shape[:-2], m - k, n, dtype=U.dtype, device=U.device)], -2)
    return lower + upper


def lu_factor_ex(A, *, pivot=True, check_errors=False, out=None):
    """(LU, pivots, info): the packed factors, getrf's 1-based int32 pivots and info (0, or the
    1-based index of the first zero pivot)."""
    check_matrix("linalg.lu_factor_ex", A)
    _check_pivot("linalg.lu_factor_ex", pivot)
    _, L, U, piv, info = Lu.apply(A)
    if check_errors and builtins.bool((info != 0).any().item()):
        from ._core import LinAlgError
        raise LinAlgError("linalg.lu_factor_ex: U is singular (a zero pivot); info holds its index")
    return LuFactorExResult(_pack(L, U), piv, info)


def lu_factor(A, *, pivot=True, out=None):
    """(LU, pivots) as lu_factor_ex; singular A is allowed (as PyTorch: U then has a zero)."""
    check_matrix("linalg.lu_factor", A)
    _check_pivot("linalg.lu_factor", pivot)
    LU, piv, _ = lu_factor_ex(A)
    return LuFactorResult(LU, piv)


def lu_unpack(LU_data, LU_pivots, unpack_data=True, unpack_pivots=True, *, out=None):
    """(P, L, U) from lu_factor's packed LU and pivots (empty tensors for the parts not unpacked)."""
    check_matrix("lu_unpack", LU_data, "LU_data")
    m, n = LU_data.shape[-2:]
    k = builtins.min(m, n)
    if tuple(LU_pivots.shape) != tuple(LU_data.shape[:-2]) + (k,):
        raise ValueError(f"lu_unpack: LU_pivots of shape {tuple(LU_pivots.shape)} must be (*, min(m, n)) for "
                         f"LU_data of shape {tuple(LU_data.shape)}")
    empty = fd.zeros(0, dtype=LU_data.dtype, device=LU_data.device)
    if unpack_data:
        L = LU_data[..., :, :k].tril(-1) + fd.eye(m, k, dtype=LU_data.dtype, device=LU_data.device)
        U = LU_data[..., :k, :].triu()
    else:
        L = U = empty
    P = _p_matrix(to_np(LU_pivots), m, LU_data) if unpack_pivots else empty
    return LuUnpackResult(P, L, U)


def lu_solve(LU, pivots, B, *, left=True, adjoint=False, out=None):
    """X with A X = B (left) or X A = B, A = P L U given packed (lu_factor); adjoint solves with A^T.
    Batch dims broadcast; differentiable w.r.t. LU and B."""
    check_square("linalg.lu_solve", LU, "LU")
    check_matrix("linalg.lu_solve", B, "B")
    n = LU.shape[-1]
    if (B.shape[-2] if left else B.shape[-1]) != n:
        raise ValueError(f"linalg.lu_solve: B of shape {tuple(B.shape)} does not match LU of shape "
                         f"{tuple(LU.shape)} (left={left})")
    if not left:  # X A = B  <=>  A^T X^T = B^T
        return lu_solve(LU, pivots, B.mT, left=True, adjoint=not adjoint).mT
    P = _p_matrix(to_np(pivots), n, LU)
    L = LU.tril(-1) + fd.eye(n, dtype=LU.dtype, device=LU.device)
    U = LU.triu()
    tri = fd.linalg.solve_triangular
    if not adjoint:  # U^-1 L^-1 P^T B
        return tri(U, tri(L, P.mT @ B, upper=False, unitriangular=True), upper=True)
    return P @ tri(L.mT, tri(U.mT, B, upper=False), upper=True, unitriangular=True)  # P L^-T U^-T B


# ---- torch's top-level names --------------------------------------------------------------------

def lu_top(A, pivot=True, get_infos=False, out=None):
    """torch.lu / Tensor.lu: (A_LU, pivots) or, with get_infos, (A_LU, pivots, infos)."""
    LU, piv, info = lu_factor_ex(A, pivot=pivot)
    return (LU, piv, info) if get_infos else (LU, piv)


def lu_solve_top(b, LU_data, LU_pivots, *, out=None):
    """torch.lu_solve / Tensor.lu_solve: the solution of A x = b from lu's factors."""
    return lu_solve(LU_data, LU_pivots, b)
