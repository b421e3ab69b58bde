"""Beta(concentration1, concentration0): density x^(c1-1) (1-x)^(c0-1) / B(c1, c0) on [0, 1].

rsample is X / (X + Y) for standard gammas X ~ Gamma(c1), Y ~ Gamma(c0), differentiable in both."""
import fastdl as fd
from fastdl.distributions import constraints
from fastdl.distributions.distribution import Distribution, broadcast_all
from fastdl.distributions.gamma import _standard_gamma

__all__ = ["Beta"]


def _lbeta(a, b):
    return fd.lgamma(a) + fd.lgamma(b) - fd.lgamma(a + b)


class Beta(Distribution):
    arg_constraints = {"concentration1": constraints.positive, "concentration0": constraints.positive}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1, concentration0, validate_args=None):
        self.concentration1, self.concentration0 = broadcast_all(concentration1, concentration0)
        super().__init__(self.concentration1.shape, validate_args=validate_args)

    @property
    def mean(self):
        return self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def mode(self):
        """(c1 - 1) / (c1 + c0 - 2) with the counts c - 1 clamped at 0; 1 when both c < 1 (torch's choice)."""
        a, b = self.concentration1, self.concentration0
        am, bm = (a - 1).clamp(min=0), (b - 1).clamp(min=0)
        inner = am / (am + bm)
        return fd.where((a < 1) & (b < 1), 1.0, inner)

    @property
    def variance(self):
        a, b = self.concentration1, self.concentration0
        total = a + b
        return a * b / (total ** 2 * (total + 1))

    def rsample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        x = _standard_gamma(self.concentration1.expand(shape))
        y = _standard_gamma(self.concentration0.expand(shape))
        finfo = fd.finfo(x.dtype)
        return (x / (x + y)).clamp(min=finfo.tiny, max=1 - finfo.eps)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        a, b = self.concentration1, self.concentration0
        return fd.xlogy(a - 1, value) + fd.xlogy(b - 1, 1 - value) - _lbeta(a, b)

    def entropy(self):
        a, b = self.concentration1, self.concentration0
        return (_lbeta(a, b) - (a - 1) * fd.digamma(a) - (b - 1) * fd.digamma(b)
                + (a + b - 2) * fd.digamma(a + b))
