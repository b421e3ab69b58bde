"""Exponential(rate): density rate * exp(-rate x) on x >= 0."""
import fastdl as fd
from fastdl.distributions import constraints
from fastdl.distributions.distribution import Distribution, broadcast_all

__all__ = ["Exponential"]


class Exponential(Distribution):
    arg_constraints = {"rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, rate, validate_args=None):
        (self.rate,) = broadcast_all(rate)
        super().__init__(self.rate.shape, validate_args=validate_args)

    mean = stddev = property(lambda self: self.rate.reciprocal())
    mode = property(lambda self: fd.zeros_like(self.rate))
    variance = property(lambda self: self.rate ** -2)

    def rsample(self, sample_shape=()):
        u = self._new_noise(fd.rand, self._extended_shape(sample_shape), self.rate)  # u in [0, 1)
        return -fd.log1p(-u) / self.rate

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return fd.log(self.rate) - self.rate * value

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return 1 - fd.exp(-self.rate * value)

    def icdf(self, value):
        return -fd.log1p(-value) / self.rate

    def entropy(self):
        return 1.0 - fd.log(self.rate)
