"""nn.utils.parametrizations.weight_norm and spectral_norm, PyTorch's semantics: weight
normalisation (Salimans & Kingma 2016) and spectral normalisation (Miyato et al. 2018) as
parametrizations (nn.utils.parametrize), state dict keys parametrizations.weight.original0 /
original1 (g, v) and parametrizations.weight.original, parametrizations.weight.0._u / _v.
The older hook-based forms (nn.utils.weight_norm, spectral_norm) are in _norm_hooks.py.

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
