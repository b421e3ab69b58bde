"""Kumaraswamy(concentration1 a, concentration0 b): density a b x^(a-1) (1 - x^a)^(b-1) on (0, 1);
X = (1 - U^(1/b))^(1/a), U ~ Uniform(0, 1)."""
import fastdl as fd
from fastdl.distributions import constraints
from fastdl.distributions.distribution import broadcast_all
from fastdl.distributions.gumbel import _EULER
from fastdl.distributions.transformed_distribution import TransformedDistribution
from fastdl.distributions.transforms import AffineTransform, PowerTransform
from fastdl.distributions.uniform import Uniform

__all__ = ["Kumaraswamy"]


def _moment(a, b, n):
    """E[X^n] = b B(1 + n/a, b)."""
    t = 1 + n / a
    return fd.exp(fd.log(b) + fd.lgamma(t) + fd.lgamma(b) - fd.lgamma(t + b))


class Kumaraswamy(TransformedDistribution):
    arg_constraints = {"concentration1": constraints.positive, "concentration0": constraints.positive}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1, concentration0, validate_args=None):
        self.concentration1, self.concentration0 = broadcast_all(concentration1, concentration0)
        base = Uniform(fd.zeros_like(self.concentration0), fd.ones_like(self.concentration0),
                       validate_args=validate_args)
        super().__init__(base, self._transforms(), validate_args=validate_args)

    def _transforms(self):
        return [PowerTransform(self.concentration0.reciprocal()), AffineTransform(1.0, -1.0),
                PowerTransform(self.concentration1.reciprocal())]

    mean = property(lambda self: _moment(self.concentration1, self.concentration0, 1))

    @property
    def mode(self):
        a, b = self.concentration1, self.concentration0
        # ((a - 1) / (a b - 1))^(1/a), defined for a, b >= 1
        log_mode = a.reciprocal() * (-a).log1p() - (-a * b).log1p()
        return fd.where((a < 1) | (b < 1), float("nan"), log_mode).exp()

    @property
    def variance(self):
        return _moment(self.concentration1, self.concentration0, 2) - self.mean ** 2

    def entropy(self):
        a, b = self.concentration1, self.concentration0
        harmonic_b = fd.digamma(b + 1) + _EULER
        return (1 - a.reciprocal()) * harmonic_b + (1 - b.reciprocal()) - fd.log(a) - fd.log(b)
