"""nn.utils.parametrizations.weight_norm, spectral_norm and orthogonal, PyTorch's semantics: weight
normalisation (Salimans & Kingma 2016), spectral normalisation (Miyato et al. 2018) and orthogonal
matrices (matrix exponential, Cayley map or Householder reflectors, with Lezcano's dynamic
trivialization) as parametrizations (nn.utils.parametrize), state dict keys
parametrizations.weight.original0 / original1 (g, v) and parametrizations.weight.original,
parametrizations.weight.0._u / _v / base. The older hook-based forms (nn.utils.weight_norm,
spectral_norm) are in _norm_hooks.py.

w = g v / ||v||, the norm over every dimension but dim (dim None or -1: over the whole tensor).
Spectral norm: w / sigma, sigma = u^T W v with u, v the leading singular vectors of W (w as a
matrix, dim first) by power iteration, n_power_iterations steps per training-mode forward."""

import fastdl as fd
from fastdl import no_grad
from fastdl._C import Tensor
from fastdl.nn import _parametrize as parametrize
from fastdl.nn.functional import normalize
from fastdl.nn.modules.module import Module


def _norm_except_dim(v, dim):
    """The 2-norm of v over every dimension but dim, shaped to broadcast against v (dim -1: the
    whole tensor, a 0-d result)."""
    if dim == -1:
        return v.norm()
    if not -v.ndim <= dim < v.ndim:
        raise IndexError(f"weight_norm: dim {dim} is out of range for a weight of shape {tuple(v.shape)}")
    dim %= v.ndim
    keep = [1] * v.ndim
    keep[dim] = v.shape[dim]
    return v.movedim(dim, 0).reshape(v.shape[dim], -1).norm(2, 1).reshape(keep)


def _weight_norm(v, g, dim):
    return v * (g / _norm_except_dim(v, dim))


def _transposed_conv(module):
    from fastdl import nn
    return isinstance(module, tuple(getattr(nn, n) for n in ("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")
                                    if hasattr(nn, n)))


def _as_matrix(weight, dim):
    """weight with dim first, flattened to (weight.shape[dim], -1)."""
    if dim != 0:
        weight = weight.movedim(dim, 0)
    return weight.reshape(weight.shape[0], -1)


def _check_dim(weight, dim, what):
    if not -weight.ndim <= dim < max(weight.ndim, 1):
        raise IndexError(f"{what}: dim {dim} is out of range for a weight of shape {tuple(weight.shape)}")
    return dim % weight.ndim if weight.ndim else 0


def _check_iterations(n, what):
    if n <= 0:
        raise ValueError(f"{what}: expected n_power_iterations to be positive, but got n_power_iterations={n}")


# ---- parametrizations ---------------------------------------------------------------------
class _WeightNorm(Module):
    def __init__(self, dim=0):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g, weight_v):
        return _weight_norm(weight_v, weight_g, self.dim)

    def right_inverse(self, weight):
        return _norm_except_dim(weight, self.dim), weight


class _SpectralNorm(Module):
    def __init__(self, weight, n_power_iterations=1, dim=0, eps=1e-12):
        super().__init__()
        self.dim = _check_dim(weight, dim, "spectral_norm")
        _check_iterations(n_power_iterations, "spectral_norm")
        self.eps = eps
        self.n_power_iterations = n_power_iterations
        if weight.ndim > 1:
            with no_grad():
                w = _as_matrix(weight, self.dim)
                h, k = w.shape
                self.register_buffer("_u", normalize(w.new_empty(h).normal_(0, 1), dim=0, eps=eps))
                self.register_buffer("_v", normalize(w.new_empty(k).normal_(0, 1), dim=0, eps=eps))
                self._power_method(w, 15)

    def _power_method(self, w, n):
        with no_grad():
            w = w.detach()
            for _ in range(n):
                self._u.copy_(normalize(fd.mv(w, self._v), dim=0, eps=self.eps))
                self._v.copy_(normalize(fd.mv(w.H, self._u), dim=0, eps=self.eps))

    def forward(self, weight):
        if weight.ndim == 1:
            return normalize(weight, dim=0, eps=self.eps)
        w = _as_matrix(weight, self.dim)
        if self.training:
            self._power_method(w, self.n_power_iterations)
        u, v = self._u.clone(), self._v.clone()
        return weight / fd.vdot(u, fd.mv(w, v))

    def right_inverse(self, value):
        return value


def weight_norm(module, name="weight", dim=0):
    """module.name = g v / ||v|| as a parametrization (originals g, v)."""
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    return module


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """module.name = W / sigma(W) as a parametrization (dim None: 1 for transposed
    convolutions, else 0)."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if dim is None:
        dim = 1 if _transposed_conv(module) else 0
    parametrize.register_parametrization(module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module


# ---- orthogonal ------------------------------------------------------------------------------
_ORTH_MAPS = ("matrix_exp", "cayley", "householder")


def _is_orthogonal(Q, eps=None):
    n, k = Q.shape[-2], Q.shape[-1]
    eye = fd.eye(k, dtype=Q.dtype, device=Q.device)
    eps = 10.0 * n * fd.finfo(Q.dtype).eps if eps is None else eps
    return bool(fd.allclose(Q.mT @ Q, eye, atol=eps))


def _make_orthogonal(A):
    """The Q of A = QR with R's diagonal made positive (unique for full-rank A)."""
    Q, R = fd.linalg.qr(A)
    return Q * fd.diagonal(R, dim1=-2, dim2=-1).sign().unsqueeze(-2)


class _Orthogonal(Module):
    """Q from an unconstrained tensor X of the weight's shape (wide matrices transposed to tall, n x k):
    matrix_exp / cayley map the skew-symmetric A = L - L^T (L: X's lower triangle padded to n x n) through
    exp(A) or (I - A/2)^-1 (I + A/2) and keep k columns; householder multiplies the reflectors stored below
    X's diagonal, with the signs of X's diagonal. With use_trivialization, Q = base Q(X) where base is the
    orthogonal matrix right_inverse last set (X then starts at the point whose map gives the identity)."""

    def __init__(self, weight, orthogonal_map, *, use_trivialization=True):
        super().__init__()
        self.shape = tuple(weight.shape)
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, X):
        n, k = X.shape[-2], X.shape[-1]
        transposed = n < k
        if transposed:
            X = X.mT
            n, k = k, n
        if self.orthogonal_map in ("matrix_exp", "cayley"):
            X = X.tril()
            if n != k:
                X = fd.cat([X, fd.zeros(tuple(X.shape[:-2]) + (n, n - k), dtype=X.dtype, device=X.device)], -1)
            A = X - X.mT
            if self.orthogonal_map == "matrix_exp":
                Q = fd.linalg.matrix_exp(A)
            else:
                eye = fd.eye(n, dtype=A.dtype, device=A.device)
                Q = fd.linalg.solve(eye - 0.5 * A, eye + 0.5 * A)
            if n != k:
                Q = Q[..., :k]
        else:
            A = X.tril(-1)
            tau = 2.0 / (1.0 + (A * A).sum(-2))
            Q = fd.linalg.householder_product(A, tau)
            Q = Q * fd.diagonal(X, dim1=-2, dim2=-1).int().unsqueeze(-2)
        if "base" in self._buffers:
            Q = self.base @ Q
        return Q.mT if transposed else Q

    def right_inverse(self, Q):
        with no_grad():
            if tuple(Q.shape) != self.shape:
                raise ValueError(f"Expected a matrix or batch of matrices of shape {self.shape}. Got a tensor of "
                                 f"shape {tuple(Q.shape)}.")
            q_init = Q
            n, k = Q.shape[-2], Q.shape[-1]
            transpose = n < k
            if transpose:
                Q = Q.mT
                n, k = k, n
            if "base" not in self._buffers:
                if self.orthogonal_map in ("matrix_exp", "cayley"):
                    raise NotImplementedError("It is not possible to assign to the matrix exponential or the Cayley "
                                              "parametrizations when use_trivialization=False.")
                # Householder: the reflectors of Q's QR factorisation, with the signs on the diagonal
                A, tau = fd.geqrf(Q)
                diag = fd.diagonal(A, dim1=-2, dim2=-1)
                sign = fd.where(tau == 0.0, -diag.sign(), diag.sign())
                eye = fd.eye(n, k, dtype=A.dtype, device=A.device)
                A = A * (1 - eye) + eye * sign.unsqueeze(-2)  # the diagonal replaced by the signs
                return A.mT if transpose else A
            if n == k:
                Q = Q.clone() if _is_orthogonal(Q) else _make_orthogonal(Q)
            else:  # complete the columns to a square orthogonal base
                N = fd.randn(*(tuple(Q.shape[:-2]) + (n, n - k)), dtype=Q.dtype, device=Q.device)
                Q = _make_orthogonal(fd.cat([Q, N], -1))
            self.base = Q
            neg_eye = fd.zeros_like(q_init)  # the map takes -I (diagonal -1, strict lower triangle 0) to I
            neg_eye = neg_eye - fd.eye(q_init.shape[-2], q_init.shape[-1], dtype=q_init.dtype, device=q_init.device)
            return neg_eye


def orthogonal(module, name="weight", orthogonal_map=None, *, use_trivialization=True):
    """module.name becomes an orthogonal matrix (orthonormal columns when tall, rows when wide; batches of
    matrices too), parametrized by orthogonal_map: "matrix_exp", "cayley" or "householder" (default:
    matrix_exp for square matrices, householder otherwise). The initial value is the original weight when it is
    orthogonal, else its orthogonalisation by QR."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if weight.ndim < 2:
        raise ValueError(f"Expected a matrix or batch of matrices. Got a tensor of {weight.ndim} dimensions.")
    if orthogonal_map is None:
        orthogonal_map = "matrix_exp" if weight.shape[-2] == weight.shape[-1] else "householder"
    if orthogonal_map not in _ORTH_MAPS:
        raise ValueError(f'orthogonal_map has to be one of "matrix_exp", "cayley", "householder". Got: {orthogonal_map}')
    parametrize.register_parametrization(module, name,
                                         _Orthogonal(weight, orthogonal_map, use_trivialization=use_trivialization),
                                         unsafe=True)
    return module
