"""Chi2(df): Gamma(df / 2, rate 1/2)."""
from fastdl.distributions import constraints
from fastdl.distributions.distribution import broadcast_all
from fastdl.distributions.gamma import Gamma

__all__ = ["Chi2"]


class Chi2(Gamma):
    arg_constraints = {"df": constraints.positive}

    def __init__(self, df, validate_args=None):
        (df,) = broadcast_all(df)
        self.__dict__["df"] = df  # validated by the base class; concentration and rate follow from it
        super().__init__(0.5 * df, 0.5, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = super().expand(batch_shape)
        shape = tuple(new.batch_shape)
        new.concentration, new.rate = self.concentration.expand(shape), self.rate.expand(shape)
        return new
