"""InverseGamma(concentration a, rate b): X = 1 / Y, Y ~ Gamma(a, b); density b^a x^(-a-1) e^(-b/x) / Gamma(a)."""
import fastdl as fd
from fastdl.distributions import constraints
from fastdl.distributions.gamma import Gamma
from fastdl.distributions.transformed_distribution import TransformedDistribution
from fastdl.distributions.transforms import PowerTransform

__all__ = ["InverseGamma"]


class InverseGamma(TransformedDistribution):
    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, concentration, rate, validate_args=None):
        base = Gamma(concentration, rate, validate_args=validate_args)
        neg_one = -fd.ones((), dtype=base.rate.dtype, device=base.rate.device)
        super().__init__(base, PowerTransform(neg_one), validate_args=validate_args)

    concentration = property(lambda self: self.base_dist.concentration)
    rate = property(lambda self: self.base_dist.rate)

    @property
    def mean(self):
        a = self.concentration
        return fd.where(a > 1, self.rate / (a - 1), float("inf"))

    mode = property(lambda self: self.rate / (self.concentration + 1))

    @property
    def variance(self):
        a = self.concentration
        return fd.where(a > 2, self.rate ** 2 / ((a - 1) ** 2 * (a - 2)), float("inf"))

    def entropy(self):
        a = self.concentration
        return a + fd.log(self.rate) + fd.lgamma(a) - (1 + a) * fd.digamma(a)
