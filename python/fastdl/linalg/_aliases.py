"""PyTorch's top-level linear-algebra names (torch.det, torch.inverse, torch.svd, ...) and
their Tensor methods (lu, lu_solve, lu_unpack, geqrf, ormqr among them), on top of fastdl.linalg. The older APIs keep their own conventions:
torch.svd returns V (not Vh) and reduced factors by default; torch.qr takes `some`."""
from collections import namedtuple

import fastdl as fd

from . import cholesky as _cholesky
from . import (det, inv, logdet, matrix_exp, matrix_norm, matrix_power, pinv, qr as _qr, slogdet, solve,  # noqa: F401
               solve_triangular, svd as _svd)

SvdOldResult = namedtuple("svd", ["U", "S", "V"])
QrOldResult = namedtuple("qr", ["Q", "R"])
TriangularSolveResult = namedtuple("triangular_solve", ["solution", "cloned_coefficient"])

inverse = inv


_native_norm = fd._C.norm


def norm(input, p=2.0, dim=None, keepdim=False, dtype=None, out=None):  # noqa: A002
    """torch.norm: the native op, except p='nuc' (the nuclear norm over two dims, needing singular
    values) which goes to linalg.matrix_norm."""
    if isinstance(p, str) and p == "nuc":
        return matrix_norm(input if dtype is None else input.to(dtype), "nuc", (-2, -1) if dim is None else dim,
                           keepdim)
    return _native_norm(input, 2.0 if p is None else p, dim, keepdim, dtype)


def cholesky(input, upper=False, *, out=None):  # noqa: A002
    return _cholesky(input, upper=upper)


def pinverse(input, rcond=1e-15):  # noqa: A002
    return pinv(input, rtol=rcond)


def qr(input, some=True, *, out=None):  # noqa: A002
    return QrOldResult(*_qr(input, "reduced" if some else "complete"))


def svd(input, some=True, compute_uv=True, *, out=None):  # noqa: A002
    """torch.svd: (U, S, V) with A = U diag(S) V^T; with compute_uv=False, U and V are zeros."""
    U, S, Vh = _svd(input, full_matrices=not some)
    if not compute_uv:
        U, Vh = fd.zeros_like(U.detach()), fd.zeros_like(Vh.detach())
    return SvdOldResult(U, S, Vh.mT)


def _full_gradient_factor(L, upper):
    """L's triangle as values, with the gradient of a full matrix: PyTorch differentiates
    cholesky_solve / cholesky_inverse as functions of the whole L (its formula is not masked to
    the triangle), so the result's gradient matches it on any L."""
    tri = fd.triu(L) if upper else fd.tril(L)
    return L - (L - tri).detach()


def cholesky_solve(B, L, upper=False, *, out=None):
    """X with (L L^T) X = B (or (U^T U) X = B when upper), L the Cholesky factor."""
    T = _full_gradient_factor(L, upper)
    return solve(T.mT @ T if upper else T @ T.mT, B)


def cholesky_inverse(L, upper=False, *, out=None):
    """(L L^T)^-1 (or (U^T U)^-1 when upper) from a Cholesky factor."""
    T = _full_gradient_factor(L, upper)
    return inv(T.mT @ T if upper else T @ T.mT)


def triangular_solve(b, A, upper=True, transpose=False, unitriangular=False, *, out=None):
    """torch.triangular_solve: (X, A clone) with op(A) X = b, op(A) = A^T when transpose."""
    M = A.mT if transpose else A
    X = solve_triangular(M, b, upper=upper != transpose, unitriangular=unitriangular)
    return TriangularSolveResult(X, A.clone())


from ._householder import geqrf, ormqr  # noqa: E402,F401
from ._lu import lu_top as lu, lu_solve_top as lu_solve, lu_unpack  # noqa: E402,F401

_METHODS = {"lu": lu, "lu_solve": lu_solve, "geqrf": geqrf, "ormqr": ormqr, "det": det, "logdet": logdet, "slogdet": slogdet, "inverse": inv, "cholesky": cholesky,
            "cholesky_solve": cholesky_solve, "cholesky_inverse": cholesky_inverse, "pinverse": pinverse,
            "matrix_exp": matrix_exp, "matrix_power": matrix_power, "qr": qr, "svd": svd, "norm": norm,
            "triangular_solve": triangular_solve}
for _name, _fn in _METHODS.items():
    setattr(fd.Tensor, _name, _fn)
