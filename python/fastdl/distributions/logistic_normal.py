"""LogisticNormal(loc, scale): a point of the simplex, StickBreakingTransform of X ~ Normal(loc, scale) (a
vector of K - 1 per event for K categories)."""
from fastdl.distributions import constraints
from fastdl.distributions.normal import Normal
from fastdl.distributions.transformed_distribution import TransformedDistribution
from fastdl.distributions.transforms import StickBreakingTransform

__all__ = ["LogisticNormal"]


class LogisticNormal(TransformedDistribution):
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        base = Normal(loc, scale, validate_args=validate_args)
        if not base.batch_shape:
            base = base.expand([1])
        super().__init__(base, StickBreakingTransform(), validate_args=validate_args)

    loc = property(lambda self: self.base_dist.base_dist.loc)
    scale = property(lambda self: self.base_dist.base_dist.scale)
