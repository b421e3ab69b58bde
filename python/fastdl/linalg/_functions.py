"""The factorizations as autograd Functions: forward in LAPACK (numpy.linalg) on the host,
backward written with fastdl ops (and the other Functions here), so gradients run on the
tensor's device. Formulas are PyTorch's (tools/autograd/derivatives.yaml, FunctionsManual.cpp)
re-derived for real matrices; references are given per Function."""
from fastdl._lazy import np

import fastdl as fd
from fastdl.autograd import Function

from ._core import any_nonzero, diag_embed, eye_like, from_np, lapack, sum_to, to_np


def _inv_np(op, a):
    return lapack(op, np.linalg.inv, a)


class Inv(Function):
    """X = A^-1; gA = -X^T G X^T."""

    @staticmethod
    def forward(ctx, A):
        X = from_np(_inv_np("linalg.inv", to_np(A)), A)
        ctx.save_for_backward(X)
        return X

    @staticmethod
    def backward(ctx, g):
        (X,) = ctx.saved_tensors
        Xt = X.mT
        return -(Xt @ g @ Xt)


def _det_grad_np(a):
    """d det(A) / dA = cofactor matrix, from the SVD so it also holds for singular A:
    A = U S V^T, cof(A) = det(U) det(V) U diag(prod_{j != i} s_j) V^T."""
    u, s, vh = np.linalg.svd(a)
    n = s.shape[-1]
    prods = np.stack([np.prod(np.delete(s, i, axis=-1), axis=-1) for i in range(n)], -1) if n > 1 else np.ones_like(s)
    sign = np.linalg.det(u) * np.linalg.det(vh)
    return sign[..., None, None] * (u * prods[..., None, :]) @ vh


class Det(Function):
    """d = det A; gA = g d A^-T (the cofactor matrix from the SVD when A is singular)."""

    @staticmethod
    def forward(ctx, A):
        d = from_np(np.linalg.det(to_np(A)), A)
        ctx.save_for_backward(A, d)
        return d

    @staticmethod
    def backward(ctx, g):
        A, d = ctx.saved_tensors
        if bool(fd.all(d != 0).item()):
            return (g * d).unsqueeze(-1).unsqueeze(-1) * Inv.apply(A).mT
        return g.unsqueeze(-1).unsqueeze(-1) * from_np(_det_grad_np(to_np(A)), A)


class Slogdet(Function):
    """(sign, log|det A|); sign is not differentiable, g_logabsdet -> g A^-T."""

    @staticmethod
    def forward(ctx, A):
        sign, lad = np.linalg.slogdet(to_np(A))
        sign, lad = from_np(sign, A), from_np(lad, A)
        ctx.mark_non_differentiable(sign)
        ctx.save_for_backward(A)
        return sign, lad

    @staticmethod
    def backward(ctx, gsign, glad):
        (A,) = ctx.saved_tensors
        return glad.unsqueeze(-1).unsqueeze(-1) * Inv.apply(A).mT


class Solve(Function):
    """X = A^-1 B for A (*, n, n), B (*, n, k), batch dims broadcast.
    gB = A^-T G, gA = -gB X^T, each summed back to its input's shape."""

    @staticmethod
    def forward(ctx, A, B):
        a, b = to_np(A), to_np(B)
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        a = np.broadcast_to(a, batch + a.shape[-2:])
        b = np.broadcast_to(b, batch + b.shape[-2:])
        X = from_np(lapack("linalg.solve", np.linalg.solve, a, b), A)
        ctx.save_for_backward(A, B, X)
        return X

    @staticmethod
    def backward(ctx, g):
        A, B, X = ctx.saved_tensors
        gB = Solve.apply(A.mT, g)
        gA = -(gB @ X.mT)
        return sum_to(gA, A.shape), sum_to(gB, B.shape)


class SolveTriangular(Function):
    """X = A^-1 B with A triangular (the other triangle ignored; unit diagonal assumed when
    unitriangular). Forward is LAPACK's general solve on the masked matrix (numpy has no
    triangular solver): O(n^3) like it, and as accurate on well-conditioned input.
    gB = A^-T G, gA = mask(-gB X^T)."""

    @staticmethod
    def forward(ctx, A, B, upper, unitriangular):
        a, b = to_np(A), to_np(B)
        t = np.triu(a) if upper else np.tril(a)
        if unitriangular:
            n = a.shape[-1]
            t = t.copy()
            t[..., np.arange(n), np.arange(n)] = 1
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        t = np.broadcast_to(t, batch + a.shape[-2:])
        b = np.broadcast_to(b, batch + b.shape[-2:])
        X = from_np(lapack("linalg.solve_triangular", np.linalg.solve, t, b), A)
        ctx.save_for_backward(A, B, X)
        ctx.upper, ctx.unit = upper, unitriangular
        return X

    @staticmethod
    def backward(ctx, g):
        A, B, X = ctx.saved_tensors
        gB = SolveTriangular.apply(A.mT, g, not ctx.upper, ctx.unit)
        gA = -(gB @ X.mT)
        off = 1 if ctx.unit else 0
        gA = fd.triu(gA, off) if ctx.upper else fd.tril(gA, -off)
        return sum_to(gA, A.shape), sum_to(gB, B.shape), None, None


class Cholesky(Function):
    """A = L L^T (lower). Murray (2016), as PyTorch: Phi(X) = tril(X) with its diagonal halved,
    gA = L^-T Phi(L^T gL) L^-1, symmetrized (A is read as symmetric)."""

    @staticmethod
    def forward(ctx, A):
        L = lapack("linalg.cholesky", np.linalg.cholesky, to_np(A), what="the input is not positive-definite")
        L = from_np(L, A)
        ctx.save_for_backward(L)
        return L

    @staticmethod
    def backward(ctx, gL):
        (L,) = ctx.saved_tensors
        phi = fd.tril(L.mT @ gL)
        phi = phi - 0.5 * diag_embed(fd.diagonal(phi, 0, -2, -1))
        y = SolveTriangular.apply(L.mT, phi, True, False)            # L^-T Phi
        gA = SolveTriangular.apply(L.mT, y.mT, True, False).mT       # (L^-T (L^-T Phi)^T)^T = L^-T Phi L^-1
        return 0.5 * (gA + gA.mT)


def _copyltu(M):
    """The symmetric matrix whose lower triangle is M's."""
    return fd.tril(M) + fd.tril(M, -1).mT


def _qr_grad_tall(Q, R, gQ, gR):
    """m >= n, reduced: M = R gR^T - gQ^T Q, gA = (gQ + Q copyltu(M)) R^-T
    (Walter & Lehmann 2018; Liao et al. 2019)."""
    M = R @ gR.mT - gQ.mT @ Q
    b = gQ + Q @ _copyltu(M)
    return SolveTriangular.apply(R, b.mT, True, False).mT            # b R^-T


class Qr(Function):
    """A = QR. Backward for mode 'reduced' (and 'complete' when m <= n, where it is the same);
    wide A = [X | Y], R = [U | V]: X's QR is square, Y = Q V (PyTorch's split)."""

    @staticmethod
    def forward(ctx, A, mode):
        a = to_np(A)
        if mode == "r":
            R = from_np(np.linalg.qr(a, mode="r"), A)
            ctx.mode = mode
            return fd.empty(0, dtype=A.dtype, device=A.device), R
        q, r = np.linalg.qr(a, mode=mode)
        Q, R = from_np(q, A), from_np(r, A)
        ctx.save_for_backward(A, Q, R)
        ctx.mode = mode
        return Q, R

    @staticmethod
    def backward(ctx, gQ, gR):
        if ctx.mode == "r":
            raise RuntimeError("linalg.qr: the derivative needs Q, which mode='r' does not compute; "
                               "use mode='reduced'")
        A, Q, R = ctx.saved_tensors
        m, n = A.shape[-2], A.shape[-1]
        if ctx.mode == "complete" and m > n:
            raise RuntimeError("linalg.qr: the derivative is not defined for mode='complete' when nrows > ncols "
                               f"(Q's extra columns are not unique); got shape {tuple(A.shape)}")
        if m >= n:
            return _qr_grad_tall(Q, R, gQ, gR), None
        U, V = R[..., :, :m], R[..., :, m:]
        gU, gV = gR[..., :, :m], gR[..., :, m:]
        Y = A[..., :, m:]
        gX = _qr_grad_tall(Q, U, gQ + Y @ gV.mT, gU)
        return fd.cat([gX, Q @ gV], -1), None


class Eigh(Function):
    """A = V diag(L) V^T (A symmetric, one triangle read). As PyTorch: with the skew part of
    V^T gV over E_ij = L_j - L_i, gA = V (skew(V^T gV) / E + diag(gL)) V^T (symmetric)."""

    @staticmethod
    def forward(ctx, A, UPLO):
        w, v = np.linalg.eigh(to_np(A), UPLO=UPLO)
        L, V = from_np(w, A), from_np(v, A)
        ctx.save_for_backward(L, V)
        return L, V

    @staticmethod
    def backward(ctx, gL, gV):
        L, V = ctx.saved_tensors
        inner = diag_embed(gL)
        if any_nonzero(gV):
            VtgV = V.mT @ gV
            skew = 0.5 * (VtgV - VtgV.mT)
            E = L.unsqueeze(-2) - L.unsqueeze(-1) + eye_like(L.shape[-1], L)
            inner = inner + skew / E
        return V @ inner @ V.mT, None


class Svd(Function):
    """A = U diag(S) Vh. Backward for the reduced factors (full_matrices=True uses their first
    k = min(m, n) columns, as PyTorch), distinct non-zero singular values (Townsend 2016):
    F_ij = 1/(s_j^2 - s_i^2),
    gA = U [F o (U^T gU - gU^T U) S + diag(gS) + S F o (V^T gV - gV^T V)] V^T
         + (I - U U^T) gU S^-1 V^T + U S^-1 gV^T (I - V V^T)."""

    @staticmethod
    def forward(ctx, A, full_matrices):
        u, s, vh = lapack("linalg.svd", np.linalg.svd, to_np(A), full_matrices, what="the SVD did not converge")
        U, S, Vh = from_np(u, A), from_np(s, A), from_np(vh, A)
        ctx.save_for_backward(U, S, Vh)
        return U, S, Vh

    @staticmethod
    def backward(ctx, gU, gS, gVh):
        U, S, Vh = ctx.saved_tensors
        k = S.shape[-1]
        U, Vh = U[..., :, :k], Vh[..., :k, :]
        inner = diag_embed(gS)
        if not (any_nonzero(gU) or any_nonzero(gVh)):
            return U @ inner @ Vh, None
        gU, gVh = gU[..., :, :k], gVh[..., :k, :]
        S2 = S * S
        E = S2.unsqueeze(-2) - S2.unsqueeze(-1) + eye_like(k, S)      # E_ij = s_j^2 - s_i^2, 1 on the diagonal
        UtgU = U.mT @ gU
        VtgV = Vh @ gVh.mT
        inner = inner + ((UtgU - UtgU.mT) / E) * S.unsqueeze(-2) + S.unsqueeze(-1) * ((VtgV - VtgV.mT) / E)
        gA = U @ inner @ Vh
        Sinv = 1.0 / S
        if U.shape[-2] > k:
            gA = gA + ((gU - U @ UtgU) * Sinv.unsqueeze(-2)) @ Vh
        if Vh.shape[-1] > k:
            gA = gA + U @ (Sinv.unsqueeze(-1) * (gVh - VtgV.mT @ Vh))
        return gA, None


class Svdvals(Function):
    """S only: gA = U diag(gS) V^T (no division by gaps, so repeated values are fine)."""

    @staticmethod
    def forward(ctx, A):
        u, s, vh = lapack("linalg.svdvals", np.linalg.svd, to_np(A), False, what="the SVD did not converge")
        U, S, Vh = from_np(u, A), from_np(s, A), from_np(vh, A)
        ctx.save_for_backward(A, U, Vh)
        return S

    @staticmethod
    def backward(ctx, gS):
        A, U, Vh = ctx.saved_tensors
        if fd.is_grad_enabled():  # create_graph: U and Vh as functions of A (Svd's backward), not constants
            U, _, Vh = Svd.apply(A, False)
        return (U * gS.unsqueeze(-2)) @ Vh


def pinv_np(a, atol, rtol, hermitian):
    """A^+ by SVD (eigh when hermitian), singular values <= max(atol, rtol * s_max) dropped."""
    if hermitian:
        w, v = np.linalg.eigh(a)
        s = np.abs(w)
    else:
        u, s, vh = np.linalg.svd(a, full_matrices=False)
    tol = np.maximum(atol, rtol * s.max(-1, initial=0.0))[..., None]
    keep = s > tol
    if hermitian:
        winv = np.where(keep, 1.0 / np.where(keep, w, 1.0), 0.0)
        return (v * winv[..., None, :]) @ np.swapaxes(v, -1, -2)
    sinv = np.where(keep, 1.0 / np.where(keep, s, 1.0), 0.0)
    return np.swapaxes(vh, -1, -2) @ (sinv[..., :, None] * np.swapaxes(u, -1, -2))


class Pinv(Function):
    """X = A^+. Golub & Pereyra (1973), valid while the rank is constant:
    gA = -X^T G X^T + (I - A X) G^T X X^T + X^T X G^T (I - X A)."""

    @staticmethod
    def forward(ctx, A, atol, rtol, hermitian):
        X = from_np(pinv_np(to_np(A), atol, rtol, hermitian), A)
        ctx.save_for_backward(A, X)
        return X

    @staticmethod
    def backward(ctx, g):
        A, X = ctx.saved_tensors
        Xt, gt = X.mT, g.mT
        t1 = -(Xt @ g @ Xt)
        p = gt @ (X @ Xt)                                     # G^T X X^T
        t2 = p - A @ (X @ p)
        q = (Xt @ X) @ gt                                     # X^T X G^T
        t3 = q - (q @ X) @ A
        return t1 + t2 + t3, None, None, None
