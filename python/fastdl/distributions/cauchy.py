"""Cauchy(loc, scale) and HalfCauchy(scale) (|X| for X ~ Cauchy(0, scale))."""
import math

import fastdl as fd
from fastdl.distributions import constraints
from fastdl.distributions.distribution import Distribution, broadcast_all
from fastdl.distributions.half_normal import Folded

__all__ = ["Cauchy", "HalfCauchy"]


class Cauchy(Distribution):
    """Density 1 / (pi scale (1 + ((x - loc) / scale)^2)); no finite mean or variance."""
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        super().__init__(self.loc.shape, validate_args=validate_args)

    mode = property(lambda self: self.loc)
    mean = property(lambda self: fd.full_like(self.loc, float("nan")))
    variance = property(lambda self: fd.full_like(self.loc, float("inf")))

    def rsample(self, sample_shape=()):
        u = self._new_noise(fd.rand, self._extended_shape(sample_shape), self.loc)
        return self.loc + self.scale * fd.tan(math.pi * (u - 0.5))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        return -math.log(math.pi) - fd.log(self.scale) - fd.log1p(z ** 2)

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return fd.atan((value - self.loc) / self.scale) / math.pi + 0.5

    def icdf(self, value):
        return self.loc + self.scale * fd.tan(math.pi * (value - 0.5))

    def entropy(self):
        return math.log(4 * math.pi) + fd.log(self.scale)


class HalfCauchy(Folded):
    """|X|, X ~ Cauchy(0, scale); `base_dist` is that Cauchy."""
    _base = Cauchy
    mean = property(lambda self: fd.full_like(self.scale, float("inf")))
    variance = property(lambda self: fd.full_like(self.scale, float("inf")))
