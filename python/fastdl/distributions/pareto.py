"""Pareto(scale, alpha): density alpha scale^alpha / x^(alpha+1) on x >= scale; X = scale e^E,
E ~ Exponential(alpha)."""
import fastdl as fd
from fastdl.distributions import constraints
from fastdl.distributions.distribution import broadcast_all
from fastdl.distributions.exponential import Exponential
from fastdl.distributions.transformed_distribution import TransformedDistribution
from fastdl.distributions.transforms import AffineTransform, ExpTransform

__all__ = ["Pareto"]


class Pareto(TransformedDistribution):
    arg_constraints = {"alpha": constraints.positive, "scale": constraints.positive}

    def __init__(self, scale, alpha, validate_args=None):
        self.scale, self.alpha = broadcast_all(scale, alpha)
        base = Exponential(self.alpha, validate_args=validate_args)
        super().__init__(base, [ExpTransform(), AffineTransform(0, self.scale)], validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        return constraints.greater_than_eq(self.scale)

    @property
    def mean(self):
        a = self.alpha.clamp(min=1)  # alpha <= 1: infinite
        return a * self.scale / (a - 1)

    mode = property(lambda self: self.scale)

    @property
    def variance(self):
        a = self.alpha.clamp(min=2)  # alpha <= 2: infinite
        return self.scale ** 2 * a / ((a - 1) ** 2 * (a - 2))

    def entropy(self):
        return fd.log(self.scale / self.alpha) + (1 + self.alpha.reciprocal())
