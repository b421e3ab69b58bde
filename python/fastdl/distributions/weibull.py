"""Weibull(scale, concentration): density (k / s) (x / s)^(k-1) e^(-(x/s)^k) on x > 0; X = s E^(1/k),
E ~ Exponential(1)."""
import fastdl as fd
from fastdl.distributions import constraints
from fastdl.distributions.distribution import broadcast_all
from fastdl.distributions.exponential import Exponential
from fastdl.distributions.gumbel import _EULER
from fastdl.distributions.transformed_distribution import TransformedDistribution
from fastdl.distributions.transforms import AffineTransform, PowerTransform

__all__ = ["Weibull"]


class Weibull(TransformedDistribution):
    arg_constraints = {"scale": constraints.positive, "concentration": constraints.positive}
    support = constraints.positive

    def __init__(self, scale, concentration, validate_args=None):
        self.scale, self.concentration = broadcast_all(scale, concentration)
        self.concentration_reciprocal = self.concentration.reciprocal()
        base = Exponential(fd.ones_like(self.scale), validate_args=validate_args)
        super().__init__(base, [PowerTransform(self.concentration_reciprocal), AffineTransform(0, self.scale)],
                         validate_args=validate_args)

    @property
    def mean(self):
        return self.scale * fd.exp(fd.lgamma(1 + self.concentration_reciprocal))

    @property
    def mode(self):
        k = self.concentration
        return self.scale * ((k - 1) / k) ** k.reciprocal()

    @property
    def variance(self):
        r = self.concentration_reciprocal
        return self.scale ** 2 * (fd.exp(fd.lgamma(1 + 2 * r)) - fd.exp(2 * fd.lgamma(1 + r)))

    def entropy(self):
        return _EULER * (1 - self.concentration_reciprocal) + fd.log(self.scale * self.concentration_reciprocal) + 1
