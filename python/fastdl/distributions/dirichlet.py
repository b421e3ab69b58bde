"""Dirichlet(concentration): density prod x_i^(c_i - 1) / B(c) on the simplex; the last dim is the event.

rsample normalises independent standard gammas Gamma(c_i), differentiable in the concentration."""
import fastdl as fd
from fastdl.distributions import constraints
from fastdl.distributions.distribution import Distribution
from fastdl.distributions.gamma import _standard_gamma

__all__ = ["Dirichlet"]


class Dirichlet(Distribution):
    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, concentration, validate_args=None):
        if not isinstance(concentration, fd.Tensor) or concentration.ndim < 1:
            raise ValueError("`concentration` parameter must be at least one-dimensional.")
        self.concentration = concentration
        shape = tuple(concentration.shape)
        super().__init__(shape[:-1], shape[-1:], validate_args=validate_args)

    @property
    def mean(self):
        return self.concentration / self.concentration.sum(-1, keepdim=True)

    @property
    def mode(self):
        """(c - 1) / sum(c - 1) with c - 1 clamped at 0; when every c < 1, the first corner (torch's choice)."""
        c = self.concentration
        cm = (c - 1).clamp(min=0)
        inner = cm / cm.sum(-1, keepdim=True)
        corner = (fd.arange(c.shape[-1], device=c.device) == 0).to(c.dtype)
        return fd.where((c < 1).all(-1, keepdim=True), corner, inner)

    @property
    def variance(self):
        c = self.concentration
        c0 = c.sum(-1, keepdim=True)
        return c * (c0 - c) / (c0 ** 2 * (c0 + 1))

    def rsample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        g = _standard_gamma(self.concentration.expand(shape))
        finfo = fd.finfo(g.dtype)
        return (g / g.sum(-1, keepdim=True)).clamp(min=finfo.tiny, max=1 - finfo.eps)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        c = self.concentration
        return fd.xlogy(c - 1, value).sum(-1) + fd.lgamma(c.sum(-1)) - fd.lgamma(c).sum(-1)

    def entropy(self):
        c = self.concentration
        k = c.shape[-1]
        c0 = c.sum(-1)
        lbeta = fd.lgamma(c).sum(-1) - fd.lgamma(c0)
        return lbeta + (c0 - k) * fd.digamma(c0) - ((c - 1) * fd.digamma(c)).sum(-1)
