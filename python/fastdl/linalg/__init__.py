"""fastdl.linalg: torch.linalg's names, signatures and semantics.

Factorizations (inv, det, slogdet, solve, cholesky, qr, eigh, svd, pinv, lstsq,
solve_triangular, ...) are batched over leading dims and run in LAPACK through numpy.linalg in
the tensor's dtype (float32 / float64); CUDA tensors round-trip through the host and come back
on their device. Every one is differentiable (backward in fastdl ops, see _functions.py); the
rest (norms, matrix_exp, multi_dot, ...) are compositions of differentiable ops.
Errors: non-square or badly shaped input -> ValueError naming the op and the shape; a singular
or non-positive-definite matrix -> LinAlgError (a RuntimeError, as torch.linalg.LinAlgError)."""
import builtins
import math
from collections import namedtuple

from fastdl._lazy import np

import fastdl as fd

from . import _functions as _f
from ._core import LinAlgError, check_float, check_matrix, check_square, from_np, lapack, to_np

__all__ = [
    "LinAlgError", "cholesky", "cholesky_ex", "cond", "cross", "det", "diagonal", "eigh", "eigvalsh", "inv",
    "inv_ex", "lstsq", "matmul", "matrix_exp", "matrix_norm", "matrix_power", "matrix_rank", "multi_dot", "norm",
    "pinv", "qr", "slogdet", "solve", "solve_ex", "solve_triangular", "svd", "svdvals", "vecdot", "vector_norm",
]

# Named results, as torch.return_types (fields by name or position).
SlogdetResult = namedtuple("linalg_slogdet", ["sign", "logabsdet"])
QrResult = namedtuple("linalg_qr", ["Q", "R"])
EighResult = namedtuple("linalg_eigh", ["eigenvalues", "eigenvectors"])
SvdResult = namedtuple("linalg_svd", ["U", "S", "Vh"])
InvExResult = namedtuple("linalg_inv_ex", ["inverse", "info"])
CholeskyExResult = namedtuple("linalg_cholesky_ex", ["L", "info"])
SolveExResult = namedtuple("linalg_solve_ex", ["result", "info"])
LstsqResult = namedtuple("linalg_lstsq", ["solution", "residuals", "rank", "singular_values"])

matmul = fd.matmul


# ---- inverses, determinants, solves -------------------------------------------------------------

def inv(A, *, out=None):
    check_square("linalg.inv", A)
    return _f.Inv.apply(A)


def _info(A, ok):
    """Per-matrix LAPACK-style info (int32, 0 = success) of A's batch shape."""
    return fd.from_numpy(np.asarray(ok, dtype=np.int32).reshape(tuple(A.shape[:-2]))).to(A.device)


def inv_ex(A, *, check_errors=False, out=None):
    """(inverse, info): info is 0 where the matrix is invertible, else non-zero (its inverse then
    holds NaN) unless check_errors, which raises like inv."""
    check_square("linalg.inv_ex", A)
    try:
        return InvExResult(_f.Inv.apply(A), _info(A, np.zeros(A.shape[:-2])))
    except LinAlgError:
        if check_errors:
            raise
    a = to_np(A).reshape((-1,) + tuple(A.shape[-2:]))
    info = np.array([np.linalg.matrix_rank(m) < m.shape[-1] for m in a], dtype=np.int32) * A.shape[-1]
    out_np = np.array([np.full_like(m, np.nan) if bad else np.linalg.inv(m) for m, bad in zip(a, info)])
    return InvExResult(from_np(out_np.reshape(tuple(A.shape)), A), _info(A, info))


def det(A, *, out=None):
    check_square("linalg.det", A)
    return _f.Det.apply(A)


def slogdet(A, *, out=None):
    check_square("linalg.slogdet", A)
    return SlogdetResult(*_f.Slogdet.apply(A))


def logdet(A):
    """log det A: NaN where det < 0, -inf where det = 0 (torch.logdet)."""
    check_square("logdet", A)
    sign, lad = _f.Slogdet.apply(A)
    return lad + fd.log(sign)


def _is_vector_rhs(A, B):
    """torch's rule: B is a (batch of) vector(s) when 1-D, or when its shape is A's minus the last dim."""
    return B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))


def _check_rhs(op, A, B, left):
    check_float(op, B, "B")
    if B.dtype != A.dtype:
        raise TypeError(f"{op}: A and B must have the same dtype; got {A.dtype} and {B.dtype}")
    n = A.shape[-1]
    rows = B.shape[-1] if B.ndim == 1 else (B.shape[-2] if left else B.shape[-1])
    if rows != n:
        raise ValueError(f"{op}: incompatible shapes of A and B for the equation "
                         f"{'AX = B' if left else 'XA = B'}; got A {tuple(A.shape)} and B {tuple(B.shape)}")


def solve(A, B, *, left=True, out=None):
    """X with AX = B (left) or XA = B; batch dims broadcast; B may be a (batch of) vector(s)."""
    check_square("linalg.solve", A)
    if isinstance(B, fd.Tensor) and _is_vector_rhs(A, B):  # solved as one column, for left and right alike
        _check_rhs("linalg.solve", A, B.unsqueeze(-1), True)
        return _f.Solve.apply(A if left else A.mT, B.unsqueeze(-1)).squeeze(-1)
    check_matrix("linalg.solve", B, "B")
    _check_rhs("linalg.solve", A, B, left)
    if left:
        return _f.Solve.apply(A, B)
    return _f.Solve.apply(A.mT, B.mT).mT


def solve_ex(A, B, *, left=True, check_errors=False, out=None):
    """(result, info): info is non-zero for the batch of A when A is singular (the result then
    holds NaN) unless check_errors, which raises like solve."""
    try:
        return SolveExResult(solve(A, B, left=left), _info(A, np.zeros(A.shape[:-2])))
    except LinAlgError:
        if check_errors:
            raise
    singular = np.asarray(np.linalg.matrix_rank(to_np(A)) < A.shape[-1])
    bad = fd.from_numpy(singular).to(A.device)  # A's batch shape
    with fd.no_grad():  # solve with the singular matrices replaced by I, then put NaN in their place
        X = solve(fd.where(bad[..., None, None], fd.eye(A.shape[-1], dtype=A.dtype, device=A.device), A), B, left=left)
    core = 1 if _is_vector_rhs(A, B) else 2
    X = fd.where(bad.reshape(tuple(bad.shape) + (1,) * core), fd.full_like(X, math.nan), X)
    return SolveExResult(X, _info(A, singular.astype(np.int32) * A.shape[-1]))


def solve_triangular(A, B, *, upper, left=True, unitriangular=False, out=None):
    """X with AX = B (left) or XA = B for triangular A (only its `upper`/lower triangle read)."""
    check_square("linalg.solve_triangular", A)
    check_matrix("linalg.solve_triangular", B, "B")
    _check_rhs("linalg.solve_triangular", A, B, left)
    if left:
        return _f.SolveTriangular.apply(A, B, builtins.bool(upper), builtins.bool(unitriangular))
    return _f.SolveTriangular.apply(A.mT, B.mT, not upper, builtins.bool(unitriangular)).mT


def _pinv_tols(op, A, atol, rtol):
    """torch's rule: rtol defaults to eps * max(m, n), or 0 when a positive atol is given."""
    def value(t):
        if t is None:
            return None
        return to_np(t).astype(np.float64) if isinstance(t, fd.Tensor) else float(t)
    atol_v, rtol_v = value(atol), value(rtol)
    if rtol_v is None:
        eps = float(np.finfo(np.float32 if A.dtype == fd.float32 else np.float64).eps)
        default = eps * builtins.max(A.shape[-2], A.shape[-1])
        rtol_v = default if atol_v is None else np.where(np.asarray(atol_v) > 0, 0.0, default)
    return (0.0 if atol_v is None else atol_v), rtol_v


def pinv(A, *, atol=None, rtol=None, hermitian=False, out=None, rcond=None):
    """Moore-Penrose pseudo-inverse; singular values <= max(atol, rtol * s_max) are treated as 0.
    `rcond` is PyTorch's older name for rtol."""
    check_matrix("linalg.pinv", A)
    if rcond is not None and rtol is None:
        rtol = rcond
    atol_v, rtol_v = _pinv_tols("linalg.pinv", A, atol, rtol)
    return _f.Pinv.apply(A, atol_v, rtol_v, builtins.bool(hermitian))


def matrix_rank(A, *, atol=None, rtol=None, hermitian=False, out=None, tol=None):
    """Number of singular values > max(atol, rtol * s_max), as int64 (`tol` is the older atol)."""
    check_matrix("linalg.matrix_rank", A)
    if tol is not None and atol is None:
        atol, rtol = tol, (0.0 if rtol is None else rtol)
    atol_v, rtol_v = _pinv_tols("linalg.matrix_rank", A, atol, rtol)
    a = to_np(A)
    s = np.abs(np.linalg.eigvalsh(a)) if hermitian else np.linalg.svd(a, compute_uv=False)
    tolv = np.maximum(atol_v, rtol_v * s.max(-1, initial=0.0))[..., None]
    return fd.from_numpy(np.array((s > tolv).sum(-1), dtype=np.int64)).to(A.device)


def lstsq(A, B, rcond=None, *, driver=None):
    """Least-squares solution of AX = B (minimum norm when A is rank-deficient), as pinv(A) B
    (differentiable through pinv). The other fields follow the LAPACK driver PyTorch would call:
    rank for 'gelsy' (the default), 'gelsd', 'gelss'; singular_values for 'gelsd', 'gelss';
    residuals ||AX - B||^2 per column when m > n, A has full rank and the driver is not 'gelsy'.
    Fields a driver does not compute are empty tensors."""
    check_matrix("linalg.lstsq", A)
    check_float("linalg.lstsq", B, "B")
    if driver not in (None, "gels", "gelsy", "gelsd", "gelss"):
        raise ValueError(f"linalg.lstsq: driver must be one of gels, gelsy, gelsd, gelss; got {driver!r}")
    driver = driver or "gelsy"
    vec = B.ndim == A.ndim - 1
    Bm = B.unsqueeze(-1) if vec else B
    if Bm.shape[-2] != A.shape[-2]:
        raise ValueError(f"linalg.lstsq: A and B must have the same number of rows; got A {tuple(A.shape)} "
                         f"and B {tuple(B.shape)}")
    X = pinv(A, rtol=rcond) @ Bm
    empty = fd.empty(0, dtype=A.dtype, device=A.device)
    m, n = A.shape[-2], A.shape[-1]
    rank = matrix_rank(A, rtol=rcond) if driver != "gels" else fd.empty(0, dtype=fd.int64, device=A.device)
    residuals = empty
    if m > n and driver != "gelsy" and A.numel() and bool(fd.all(matrix_rank(A) == n).item()):
        residuals = fd.sum(fd.square(A @ X - Bm), dim=-2)
        residuals = residuals.squeeze(-1) if vec else residuals
    sv = svdvals(A).detach() if driver in ("gelsd", "gelss") else empty
    return LstsqResult(X.squeeze(-1) if vec else X, residuals, rank, sv)


# ---- factorizations -----------------------------------------------------------------------------

def cholesky(A, *, upper=False, out=None):
    """L with A = L L^T (lower triangle of A read); upper=True returns L^T."""
    check_square("linalg.cholesky", A)
    L = _f.Cholesky.apply(A)
    return L.mT if upper else L


def cholesky_ex(A, *, upper=False, check_errors=False, out=None):
    """(L, info): info is 0 where A is positive-definite; elsewhere L holds NaN (unless
    check_errors, which raises like cholesky)."""
    check_square("linalg.cholesky_ex", A)
    try:
        return CholeskyExResult(cholesky(A, upper=upper), _info(A, np.zeros(A.shape[:-2])))
    except LinAlgError:
        if check_errors:
            raise
    a = to_np(A).reshape((-1,) + tuple(A.shape[-2:]))
    Ls, info = [], []
    for m in a:
        try:
            Ls.append(np.linalg.cholesky(m))
            info.append(0)
        except np.linalg.LinAlgError:
            Ls.append(np.full_like(m, np.nan))
            info.append(1)
    L = np.array(Ls).reshape(tuple(A.shape))
    L = from_np(np.swapaxes(L, -1, -2) if upper else L, A)
    return CholeskyExResult(L, _info(A, info))


def qr(A, mode="reduced", *, out=None):
    """(Q, R) with A = QR; mode 'reduced' | 'complete' | 'r' (Q then empty)."""
    check_matrix("linalg.qr", A)
    if mode not in ("reduced", "complete", "r"):
        raise ValueError(f"linalg.qr: mode must be 'reduced', 'complete' or 'r'; got {mode!r}")
    return QrResult(*_f.Qr.apply(A, mode))


def eigh(A, UPLO="L", *, out=None):
    """(eigenvalues ascending, eigenvectors as columns) of symmetric A (triangle UPLO read)."""
    check_square("linalg.eigh", A)
    if UPLO not in ("L", "U"):
        raise ValueError(f"linalg.eigh: UPLO must be 'L' or 'U'; got {UPLO!r}")
    return EighResult(*_f.Eigh.apply(A, UPLO))


def eigvalsh(A, UPLO="L", *, out=None):
    check_square("linalg.eigvalsh", A)
    if UPLO not in ("L", "U"):
        raise ValueError(f"linalg.eigvalsh: UPLO must be 'L' or 'U'; got {UPLO!r}")
    return _f.Eigh.apply(A, UPLO)[0]


def svd(A, full_matrices=True, *, driver=None, out=None):
    """(U, S, Vh) with A = U diag(S) Vh; full_matrices=True (PyTorch's default) gives square U, Vh."""
    check_matrix("linalg.svd", A)
    return SvdResult(*_f.Svd.apply(A, builtins.bool(full_matrices)))


def svdvals(A, *, driver=None, out=None):
    check_matrix("linalg.svdvals", A)
    return _f.Svdvals.apply(A)


# ---- compositions -------------------------------------------------------------------------------

def matrix_power(A, n):
    """A^n for any integer n (negative powers through inv)."""
    check_square("linalg.matrix_power", A)
    if not isinstance(n, builtins.int):
        raise TypeError(f"linalg.matrix_power: n must be an int; got {type(n).__name__}")
    if n < 0:
        A, n = inv(A), -n
    result = None
    base = A
    while n:
        if n & 1:
            result = base if result is None else result @ base
        n >>= 1
        if n:
            base = base @ base
    if result is None:
        return fd.eye(A.shape[-1], dtype=A.dtype, device=A.device).expand(*A.shape).contiguous()
    return result


def matrix_exp(A):
    """exp(A) by scaling and squaring of a degree-18 Taylor polynomial, in fastdl ops (so it
    differentiates through them): A / 2^s has 1-norm <= 1/2, where the truncation error is below
    float64's epsilon; the result is then squared s times."""
    if A.dtype in (fd.float32, fd.float16, fd.bfloat16):
        # s squarings amplify each rounding error of the polynomial: in float32 a matrix of norm
        # ~40 lost ~4x more than PyTorch's float32 kernel (relative 1e-4 on its small entries).
        # Evaluating in float64 and rounding once keeps the result within float32's precision;
        # the casts are differentiable, so gradients flow back in A's dtype.
        return matrix_exp(A.to(fd.float64)).to(A.dtype)
    check_square("linalg.matrix_exp", A)
    n = A.shape[-1]
    norm1 = float(np.abs(to_np(A)).sum(-2).max()) if A.numel() else 0.0
    s = builtins.max(0, math.ceil(math.log2(norm1 / 0.5))) if norm1 > 0.5 else 0
    X = A * (0.5 ** s) if s else A
    eye = fd.eye(n, dtype=A.dtype, device=A.device)
    result = eye + X / 18.0
    for k in range(17, 0, -1):  # Horner: I + X/1 (I + X/2 (I + ... (I + X/18)))
        result = eye + (X @ result) / float(k)
    for _ in range(s):
        result = result @ result
    return result


def multi_dot(tensors, *, out=None):
    """The chained product of matrices; the first may be 1-D (a row), the last 1-D (a column).
    Multiplied left to right (no order optimisation)."""
    if len(tensors) < 2:
        raise ValueError(f"linalg.multi_dot: expected at least 2 tensors; got {len(tensors)}")
    first, last = tensors[0].ndim == 1, tensors[-1].ndim == 1
    ts = list(tensors)
    if first:
        ts[0] = ts[0].unsqueeze(0)
    if last:
        ts[-1] = ts[-1].unsqueeze(-1)
    out_ = ts[0]
    for t in ts[1:]:
        out_ = out_ @ t
    if first:
        out_ = out_.squeeze(0)
    if last:
        out_ = out_.squeeze(-1)
    return out_


def cross(input, other, *, dim=-1, out=None):  # noqa: A002
    if input.ndim != other.ndim or input.ndim == 0 or input.shape[dim] != 3 or other.shape[dim] != 3:
        raise ValueError(f"linalg.cross: inputs must have the same number of dimensions and length 3 in dim {dim}; "
                         f"got shapes {tuple(input.shape)} and {tuple(other.shape)}")
    a, b = fd.broadcast_tensors(input, other)
    x = [fd.select(a, dim, i) for i in range(3)]
    y = [fd.select(b, dim, i) for i in range(3)]
    return fd.stack([x[1] * y[2] - x[2] * y[1], x[2] * y[0] - x[0] * y[2], x[0] * y[1] - x[1] * y[0]], dim)


def diagonal(A, *, offset=0, dim1=-2, dim2=-1):
    return fd.diagonal(A, offset, dim1, dim2)


def vecdot(x, y, *, dim=-1, out=None):
    on, dt = fd._C._get_autocast("cpu")
    if on and x.device.type == "cpu":  # in PyTorch's CPU autocast list (its CUDA one leaves it out)
        x, y = (t.to(dt) if t.dtype.is_floating_point and t.dtype != fd.float64 else t for t in (x, y))
    return fd.sum(x * y, dim=dim)


# ---- norms --------------------------------------------------------------------------------------

def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None, out=None):  # noqa: A002
    """sum(|x|^ord)^(1/ord) over dim (all dims when None); ord inf / -inf / 0 as torch."""
    if dtype is not None:
        x = x.to(dtype)
    if x.dtype in (fd.float16, fd.bfloat16):  # powers overflow half (8.5^6 > 65504): float32 inside, as PyTorch
        return vector_norm(x.to(fd.float32), ord, dim, keepdim).to(x.dtype)
    if isinstance(dim, builtins.int):
        dim = (dim,)
    dims = tuple(range(x.ndim)) if dim is None else tuple(dim)
    if x.ndim == 0:
        x = x.reshape(1)
        dims, keepdim = (0,), False
    a = fd.abs(x)
    if ord == math.inf:
        return fd.amax(a, dim=dims, keepdim=keepdim)
    if ord == -math.inf:
        return fd.amin(a, dim=dims, keepdim=keepdim)
    if ord == 0:
        return fd.sum((a != 0).to(x.dtype), dim=dims, keepdim=keepdim)
    if ord == 1:
        return fd.sum(a, dim=dims, keepdim=keepdim)
    # sum(|x|^p)^(1/p) with the root taken only where the sum is non-zero: at a zero slice the
    # gradient is then 0 (PyTorch's subgradient) instead of 0/0.
    if ord == 2:  # x itself squared, not |x|: at x = 0 the second derivative is then 2, not 0
        terms = x * x
    else:  # zero entries contribute 0 (ord > 0) or make the norm 0 (ord < 0), with gradient 0 either way
        z = a == 0
        powered = fd.where(z, fd.ones_like(a), a) ** float(ord)
        terms = fd.where(z, fd.full_like(a, 0.0 if ord > 0 else math.inf), powered)
    s = fd.sum(terms, dim=dims, keepdim=keepdim)
    zero = s == 0
    safe = fd.where(zero, fd.ones_like(s), s)
    root = fd.sqrt(safe) if ord == 2 else safe ** (1.0 / float(ord))
    return fd.where(zero, fd.zeros_like(s), root)


def _max_of_norms(s, dim, keepdim=False):
    """amax of nonnegative values over dim, 0 where dim is empty: PyTorch's 2, 1 and inf matrix
    norms of a matrix with no rows or columns are 0 (the min-type norms -2, -1, -inf raise)."""
    if s.shape[dim] == 0:  # the empty sum: 0, and still a function of A for autograd
        return fd.sum(s, dim=dim, keepdim=keepdim)
    return fd.amax(s, dim=dim, keepdim=keepdim)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None, out=None):  # noqa: A002
    """'fro', 'nuc', 1, -1, 2, -2, inf, -inf over the two dims `dim`."""
    if dtype is not None:
        A = A.to(dtype)
    if A.dtype in (fd.float16, fd.bfloat16):  # LAPACK has no half types: float32 inside, result in A's dtype
        return matrix_norm(A.to(fd.float32), ord, dim, keepdim).to(A.dtype)
    check_matrix("linalg.matrix_norm", A)
    d0, d1 = (d % A.ndim for d in dim)
    if ord == "fro":
        return vector_norm(A, 2, (d0, d1), keepdim)
    if ord in ("nuc", 2, -2):
        M = fd.movedim(A, (d0, d1), (-2, -1))
        s = svdvals(M)
        r = fd.sum(s, dim=-1) if ord == "nuc" else (_max_of_norms if ord == 2 else fd.amin)(s, dim=-1)
        if keepdim:
            for d in sorted((d0, d1)):
                r = r.unsqueeze(d)
        return r
    if ord in (1, -1, math.inf, -math.inf):
        sum_dim, red_dim = (d0, d1) if ord in (1, -1) else (d1, d0)
        s = fd.sum(fd.abs(A), dim=sum_dim, keepdim=True)
        r = (_max_of_norms if ord > 0 else fd.amin)(s, dim=red_dim, keepdim=True)
        return r if keepdim else r.squeeze(builtins.max(d0, d1)).squeeze(builtins.min(d0, d1))
    raise ValueError(f"linalg.matrix_norm: ord must be 'fro', 'nuc', 1, -1, 2, -2, inf or -inf; got {ord!r}")


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None, out=None):  # noqa: A002
    """torch.linalg.norm: a vector norm over one dim (or the flattened input when ord and dim
    are None), a matrix norm over two."""
    if isinstance(dim, builtins.int):
        dim = (dim,)
    if dim is None:
        if ord is None:
            return vector_norm(A, 2, None, keepdim, dtype=dtype)
        if A.ndim not in (1, 2):
            raise ValueError(f"linalg.norm: with ord and no dim, the input must be 1-D or 2-D; "
                             f"got shape {tuple(A.shape)}")
        dim = tuple(range(A.ndim))
    if len(dim) == 1:
        return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)
    if len(dim) == 2:
        return matrix_norm(A, "fro" if ord is None else ord, dim, keepdim, dtype=dtype)
    raise ValueError(f"linalg.norm: dim must have 1 or 2 entries; got {dim}")


def cond(A, p=None):
    """Condition number: ||A|| ||A^-1|| in norm p (2-norm ratio of singular values when None)."""
    if p in (None, 2, -2):
        s = svdvals(A)
        r = s[..., 0] / s[..., -1]
        return 1.0 / r if p == -2 else r
    return matrix_norm(A, p) * matrix_norm(inv(A), p)


from ._householder import GeqrfResult, householder_product  # noqa: E402
from ._lu import LuFactorExResult, LuFactorResult, LuResult, lu, lu_factor, lu_factor_ex, lu_solve  # noqa: E402
from ._tensor_algebra import tensorinv, tensorsolve, vander  # noqa: E402

__all__ += ["householder_product", "lu", "lu_factor", "lu_factor_ex", "lu_solve", "tensorinv", "tensorsolve",
            "vander"]
