"""LKJCholesky(dim, concentration=1.0): the lower Cholesky factor L of a dim x dim correlation matrix L L^T drawn
from the LKJ distribution, density proportional to det(L L^T)^(concentration - 1) (Lewandowski, Kurowicka and
Joe 2009). Sampled by the onion method: row i of L is a uniform direction in its first i coordinates scaled by
the square root of a Beta(i / 2, concentration + (dim - 2 - i) / 2) draw, the diagonal closing the unit norm.
In Cholesky coordinates the density is prod_{i=2}^{dim} L_ii^(dim - i + 2 (concentration - 1)) / normaliser."""
import math

import fastdl as fd
from fastdl.distributions import constraints
from fastdl.distributions.beta import Beta
from fastdl.distributions.distribution import Distribution, broadcast_all

__all__ = ["LKJCholesky"]


class LKJCholesky(Distribution):
    arg_constraints = {"concentration": constraints.positive}
    support = constraints.corr_cholesky

    def __init__(self, dim, concentration=1.0, validate_args=None):
        if dim < 2:
            raise ValueError(f"Expected dim to be an integer greater than or equal to 2. Found dim={dim}.")
        self.dim = dim
        (self.concentration,) = broadcast_all(concentration)
        batch = tuple(self.concentration.shape)
        # Row i's squared off-diagonal norm is Beta(i / 2, c + (dim - 2 - i) / 2); row 0 has none (its entry is unused)
        c = self.concentration.unsqueeze(-1)
        offset = fd.cat([fd.zeros(1, dtype=c.dtype), fd.arange(dim - 1, dtype=c.dtype)])
        self._beta = Beta(offset + 0.5, c + 0.5 * (dim - 2) - 0.5 * offset, validate_args=False)
        super().__init__(batch, (dim, dim), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = object.__new__(LKJCholesky)
        new.__dict__.update(self.__dict__)
        new.concentration = self.concentration.expand(tuple(batch_shape))
        new._beta = self._beta.expand(tuple(batch_shape) + (self.dim,))
        new._batch_shape = fd.Size(tuple(batch_shape))
        return new

    def sample(self, sample_shape=()):
        with fd.no_grad():
            y = self._beta.sample(sample_shape).unsqueeze(-1)  # (..., dim, 1)
            shape = tuple(self._extended_shape(sample_shape))
            u = fd.randn(shape, dtype=y.dtype, device=y.device).tril(-1)
            norm = fd.linalg.norm(u, dim=-1, keepdim=True)
            first = fd.arange(self.dim, device=y.device).reshape(self.dim, 1) == 0
            direction = fd.where(first, 0.0, u / fd.where(first, 1.0, norm))
            w = y.sqrt() * direction
            diag = (1 - (w ** 2).sum(-1)).clamp(min=fd.finfo(w.dtype).tiny).sqrt()
            return w + fd.diag_embed(diag)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        d = self.dim
        diag = fd.diagonal(value, dim1=-2, dim2=-1)[..., 1:]
        order = 2 * (self.concentration - 1).unsqueeze(-1) + d - fd.arange(2, d + 1, dtype=value.dtype)
        unnormalized = (order * fd.log(diag)).sum(-1)
        dm1 = d - 1
        alpha = self.concentration + 0.5 * dm1
        log_normalizer = 0.5 * dm1 * math.log(math.pi) + fd.mvlgamma(alpha - 0.5, dm1) - fd.lgamma(alpha) * dm1
        return unnormalized - log_normalizer
