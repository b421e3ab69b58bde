"""Cauchy(loc, scale) and HalfCauchy(scale) (|X| for X ~ Cauchy(0, scale))."""
import math

import fastdl as fd
from fastdl.distributions import constraints
from fastdl.distributions.distribution import Distribution, broadcast_all

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


class HalfCauchy(Distribution):
    """|X|, X ~ Cauchy(0, scale); `base_dist` is that Cauchy."""
    arg_constraints = {"scale": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, scale, validate_args=None):
        self.base_dist = Cauchy(0, scale, validate_args=validate_args)
        super().__init__(self.base_dist.batch_shape, validate_args=validate_args)

    scale = property(lambda self: self.base_dist.scale)
    mean = property(lambda self: fd.full_like(self.scale, float("inf")))
    mode = property(lambda self: fd.zeros_like(self.scale))
    variance = property(lambda self: fd.full_like(self.scale, float("inf")))

    def expand(self, batch_shape, _instance=None):
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.base_dist = self.base_dist.expand(batch_shape)
        new._batch_shape = new.base_dist.batch_shape
        return new

    def rsample(self, sample_shape=()):
        return self.base_dist.rsample(sample_shape).abs()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        lp = self.base_dist.log_prob(value) + math.log(2)
        return fd.where(value >= 0, lp, float("-inf"))

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return 2 * self.base_dist.cdf(value) - 1

    def icdf(self, prob):
        return self.base_dist.icdf((prob + 1) / 2)

    def entropy(self):
        return self.base_dist.entropy() - math.log(2)

    def __repr__(self):
        s = self.scale
        return f"HalfCauchy(scale: {s if s.numel() == 1 else s.shape})"
