"""HalfNormal(scale): |X| for X ~ Normal(0, scale); Folded, the |X| of a distribution symmetric about 0
(HalfCauchy shares it)."""
import math

import fastdl as fd
from fastdl.distributions import constraints
from fastdl.distributions.distribution import Distribution
from fastdl.distributions.normal import Normal

__all__ = ["Folded", "HalfNormal"]


class Folded(Distribution):
    """|X| for X ~ base(0, scale), a distribution symmetric about 0 (`base_dist`): HalfNormal and
    HalfCauchy. Subclasses set `_base` and `mean` / `variance`."""
    arg_constraints = {"scale": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True
    _base = None

    def __init__(self, scale, validate_args=None):
        self.base_dist = self._base(0, scale, validate_args=validate_args)
        super().__init__(self.base_dist.batch_shape, validate_args=validate_args)

    scale = property(lambda self: self.base_dist.scale)
    mode = property(lambda self: fd.zeros_like(self.scale))

    def expand(self, batch_shape, _instance=None):
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.base_dist = self.base_dist.expand(batch_shape)
        new._batch_shape = new.base_dist.batch_shape
        return new

    def rsample(self, sample_shape=()):
        return self.base_dist.rsample(sample_shape).abs()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        lp = self.base_dist.log_prob(value) + math.log(2)
        return fd.where(value >= 0, lp, float("-inf"))

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return 2 * self.base_dist.cdf(value) - 1

    def icdf(self, prob):
        return self.base_dist.icdf((prob + 1) / 2)

    def entropy(self):
        return self.base_dist.entropy() - math.log(2)

    def __repr__(self):
        s = self.scale
        return f"{type(self).__name__}(scale: {s if s.numel() == 1 else s.shape})"


class HalfNormal(Folded):
    """|X|, X ~ Normal(0, scale); `base_dist` is that Normal."""
    _base = Normal
    mean = property(lambda self: self.scale * math.sqrt(2 / math.pi))
    variance = property(lambda self: self.scale ** 2 * (1 - 2 / math.pi))
