"""Gumbel(loc, scale): cdf exp(-exp(-(x - loc) / scale))."""
import math

import fastdl as fd
from fastdl.distributions import constraints
from fastdl.distributions.distribution import Distribution, broadcast_all

__all__ = ["Gumbel"]

_EULER = 0.57721566490153286061


class Gumbel(Distribution):
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        super().__init__(self.loc.shape, validate_args=validate_args)

    mean = property(lambda self: self.loc + self.scale * _EULER)
    mode = property(lambda self: self.loc)
    stddev = property(lambda self: (math.pi / math.sqrt(6)) * self.scale)
    variance = property(lambda self: self.stddev ** 2)

    def rsample(self, sample_shape=()):
        finfo = fd.finfo(self.loc.dtype)
        u = self._new_noise(fd.rand, self._extended_shape(sample_shape), self.loc).clamp(min=finfo.tiny,
                                                                                          max=1 - finfo.eps)
        return self.loc - self.scale * fd.log(-fd.log(u))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        return -(fd.log(self.scale) + z + fd.exp(-z))

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return fd.exp(-fd.exp(-(value - self.loc) / self.scale))

    def icdf(self, value):
        return self.loc - self.scale * fd.log(-fd.log(value))

    def entropy(self):
        return fd.log(self.scale) + (1 + _EULER)
