"""Poisson(rate): P(k) = rate^k e^-rate / k!."""
import fastdl as fd
from fastdl.distributions import constraints
from fastdl.distributions.distribution import Distribution, broadcast_all

__all__ = ["Poisson"]


class Poisson(Distribution):
    arg_constraints = {"rate": constraints.nonnegative}
    support = constraints.nonnegative_integer

    def __init__(self, rate, validate_args=None):
        (self.rate,) = broadcast_all(rate)
        super().__init__(self.rate.shape, validate_args=validate_args)

    mean = variance = property(lambda self: self.rate)
    mode = property(lambda self: fd.floor(self.rate))

    def sample(self, sample_shape=()):
        with fd.no_grad():
            return fd.poisson(self.rate.expand(tuple(self._extended_shape(sample_shape))))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        rate, value = broadcast_all(self.rate, value)
        return fd.xlogy(value, rate) - rate - fd.lgamma(value + 1)
