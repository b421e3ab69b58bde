"""StudentT(df, loc=0, scale=1): loc + scale * Z / sqrt(V / df), Z ~ Normal(0, 1), V ~ Chi2(df)."""
import math

import fastdl as fd
from fastdl.distributions import constraints
from fastdl.distributions.distribution import Distribution, broadcast_all
from fastdl.distributions.gamma import _standard_gamma

__all__ = ["StudentT"]


class StudentT(Distribution):
    arg_constraints = {"df": constraints.positive, "loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, df, loc=0.0, scale=1.0, validate_args=None):
        self.df, self.loc, self.scale = broadcast_all(df, loc, scale)
        super().__init__(self.df.shape, validate_args=validate_args)

    @property
    def mean(self):
        return fd.where(self.df > 1, self.loc, float("nan"))

    mode = property(lambda self: self.loc)

    @property
    def variance(self):
        df = self.df
        finite = self.scale ** 2 * df / fd.where(df > 2, df - 2, 1.0)
        return fd.where(df > 2, finite, fd.where(df > 1, float("inf"), float("nan")))

    def rsample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        z = self._new_noise(fd.randn, shape, self.df)
        v = 2 * _standard_gamma(0.5 * self.df.expand(shape))  # Chi2(df)
        return self.loc + self.scale * z * (v / self.df).rsqrt()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        df = self.df
        y = (value - self.loc) / self.scale
        norm = (fd.log(self.scale) + 0.5 * fd.log(df) + 0.5 * math.log(math.pi)
                + fd.lgamma(0.5 * df) - fd.lgamma(0.5 * (df + 1)))
        return -0.5 * (df + 1) * fd.log1p(y ** 2 / df) - norm

    def entropy(self):
        df = self.df
        lbeta = fd.lgamma(0.5 * df) + math.lgamma(0.5) - fd.lgamma(0.5 * (df + 1))
        return (fd.log(self.scale) + 0.5 * (df + 1) * (fd.digamma(0.5 * (df + 1)) - fd.digamma(0.5 * df))
                + 0.5 * fd.log(df) + lbeta)
