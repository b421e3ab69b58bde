"""Normal(loc, scale) and LogNormal(loc, scale) (exp of a Normal)."""
import math

import fastdl as fd
from fastdl.distributions import constraints
from fastdl.distributions.distribution import _LOG_SQRT_2PI, Distribution, broadcast_all
from fastdl.distributions.transformed_distribution import TransformedDistribution
from fastdl.distributions.transforms import ExpTransform

__all__ = ["LogNormal", "Normal"]


class Normal(Distribution):
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        super().__init__(self.loc.shape, validate_args=validate_args)

    mean = mode = property(lambda self: self.loc)
    stddev = property(lambda self: self.scale)
    variance = property(lambda self: self.scale ** 2)

    def rsample(self, sample_shape=()):
        eps = self._new_noise(fd.randn, self._extended_shape(sample_shape), self.loc)
        return self.loc + eps * self.scale

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return -((value - self.loc) ** 2) / (2 * self.scale ** 2) - fd.log(self.scale) - _LOG_SQRT_2PI

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return 0.5 * (1 + fd.erf((value - self.loc) / (self.scale * math.sqrt(2))))

    def icdf(self, value):
        return self.loc + self.scale * fd.erfinv(2 * value - 1) * math.sqrt(2)

    def entropy(self):
        return 0.5 + _LOG_SQRT_2PI + fd.log(self.scale)


class LogNormal(TransformedDistribution):
    """X = exp(Y), Y ~ Normal(loc, scale); `base_dist` is that Normal."""
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        super().__init__(Normal(loc, scale, validate_args=validate_args), ExpTransform(), validate_args=validate_args)

    loc = property(lambda self: self.base_dist.loc)
    scale = property(lambda self: self.base_dist.scale)

    @property
    def mean(self):
        return fd.exp(self.loc + self.scale ** 2 / 2)

    @property
    def mode(self):
        return fd.exp(self.loc - self.scale ** 2)

    @property
    def variance(self):
        s2 = self.scale ** 2
        return fd.expm1(s2) * fd.exp(2 * self.loc + s2)

    def cdf(self, value):
        return self.base_dist.cdf(fd.log(value))  # the base validates log(value): cdf(0) = 0, as in torch

    def entropy(self):
        return self.base_dist.entropy() + self.loc

    def __repr__(self):
        return f"LogNormal(loc: {self.loc if self.loc.numel() == 1 else self.loc.shape}, " \
               f"scale: {self.scale if self.scale.numel() == 1 else self.scale.shape})"
