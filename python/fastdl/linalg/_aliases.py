"""PyTorch's top-level linear-algebra names (torch.det, torch.inverse, torch.svd, ...) and
their Tensor methods, on top of fastdl.linalg. The older APIs keep their own conventions:
torch.svd returns V (not Vh) and reduced factors by default; torch.qr takes `some`."""
from collections import namedtuple

import fastdl as fd

from . import cholesky as _cholesky
from . import (det, inv, logdet, matrix_exp, matrix_power, pinv, qr as _qr, slogdet, solve_triangular,  # noqa: F401
               svd as _svd)

SvdOldResult = namedtuple("svd", ["U", "S", "V"])
QrOldResult = namedtuple("qr", ["Q", "R"])
TriangularSolveResult = namedtuple("triangular_solve", ["solution", "cloned_coefficient"])

inverse = inv


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


def cholesky_solve(B, L, upper=False, *, out=None):
    """X with (L L^T) X = B (or (U^T U) X = B when upper), L the Cholesky factor."""
    if upper:
        y = solve_triangular(L.mT, B, upper=False)
        return solve_triangular(L, y, upper=True)
    y = solve_triangular(L, B, upper=False)
    return solve_triangular(L.mT, y, upper=True)


def cholesky_inverse(L, upper=False, *, out=None):
    """(L L^T)^-1 (or (U^T U)^-1 when upper) from a Cholesky factor."""
    eye = fd.eye(L.shape[-1], dtype=L.dtype, device=L.device).expand(*L.shape)
    return cholesky_solve(eye, L, upper)


def triangular_solve(b, A, upper=True, transpose=False, unitriangular=False, *, out=None):
    """torch.triangular_solve: (X, A clone) with op(A) X = b, op(A) = A^T when transpose."""
    M = A.mT if transpose else A
    X = solve_triangular(M, b, upper=upper != transpose, unitriangular=unitriangular)
    return TriangularSolveResult(X, A.clone())


_METHODS = {"det": det, "logdet": logdet, "slogdet": slogdet, "inverse": inv, "cholesky": cholesky,
            "cholesky_solve": cholesky_solve, "cholesky_inverse": cholesky_inverse, "pinverse": pinverse,
            "matrix_exp": matrix_exp, "matrix_power": matrix_power, "qr": qr, "svd": svd,
            "triangular_solve": triangular_solve}
for _name, _fn in _METHODS.items():
    setattr(fd.Tensor, _name, _fn)
