"""FisherSnedecor(df1, df2): the F distribution, (X1 / df1) / (X2 / df2) for chi-squared X1, X2; mean, mode
and variance are NaN where they do not exist (df2 <= 2, df1 <= 2, df2 <= 4)."""
import fastdl as fd
from fastdl.distributions import constraints
from fastdl.distributions.distribution import Distribution, broadcast_all
from fastdl.distributions.gamma import Gamma

__all__ = ["FisherSnedecor"]


class FisherSnedecor(Distribution):
    arg_constraints = {"df1": constraints.positive, "df2": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, df1, df2, validate_args=None):
        self.df1, self.df2 = broadcast_all(df1, df2)
        super().__init__(self.df1.shape, validate_args=validate_args)

    @property
    def mean(self):
        d2 = self.df2
        return fd.where(d2 > 2, d2 / (d2 - 2), float("nan"))

    @property
    def mode(self):
        d1, d2 = self.df1, self.df2
        return fd.where(d1 > 2, (d1 - 2) / d1 * d2 / (d2 + 2), float("nan"))

    @property
    def variance(self):
        d1, d2 = self.df1, self.df2
        var = 2 * d2 ** 2 * (d1 + d2 - 2) / (d1 * (d2 - 2) ** 2 * (d2 - 4))
        return fd.where(d2 > 4, var, float("nan"))

    def rsample(self, sample_shape=()):
        # Gamma(df / 2, df) is chi-squared(df) / df
        x1 = Gamma(self.df1 * 0.5, self.df1, validate_args=False).rsample(sample_shape)
        x2 = Gamma(self.df2 * 0.5, self.df2, validate_args=False).rsample(sample_shape)
        tiny = fd.finfo(x2.dtype).tiny
        return (x1 / x2.clamp(min=tiny)).clamp(min=tiny)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        h1, h2, ratio = self.df1 * 0.5, self.df2 * 0.5, self.df1 / self.df2
        log_beta = fd.lgamma(h1) + fd.lgamma(h2) - fd.lgamma(h1 + h2)
        return h1 * fd.log(ratio) + (h1 - 1) * fd.log(value) - (h1 + h2) * fd.log1p(ratio * value) - log_beta
