"""NegativeBinomial(total_count r, probs=None, logits=None): the number of successes, each with probability
probs, before the r-th failure; pmf Gamma(k + r) / (k! Gamma(r)) p^k (1 - p)^r. Sampled as a
Poisson(Gamma(r, (1 - p) / p)) mixture."""
import fastdl as fd
import fastdl.nn.functional as F
from fastdl.distributions import constraints
from fastdl.distributions.bernoulli import BinaryProbs
from fastdl.distributions.distribution import Distribution
from fastdl.distributions.gamma import Gamma
from fastdl.distributions.poisson import Poisson

__all__ = ["NegativeBinomial"]


class NegativeBinomial(BinaryProbs, Distribution):
    arg_constraints = {"total_count": constraints.greater_than_eq(0), "probs": constraints.half_open_interval(0.0, 1.0),
                       "logits": constraints.real}
    support = constraints.nonnegative_integer

    def __init__(self, total_count, probs=None, logits=None, validate_args=None):
        (self.total_count,) = self._set_probs_or_logits(probs, logits, total_count)
        super().__init__(self._param.shape, validate_args=validate_args)

    param_shape = property(lambda self: self._param.shape)
    mean = property(lambda self: self.total_count * fd.exp(self.logits))
    mode = property(lambda self: ((self.total_count - 1) * fd.exp(self.logits)).floor().clamp(min=0.0))
    variance = property(lambda self: self.mean / fd.sigmoid(-self.logits))

    def sample(self, sample_shape=()):
        with fd.no_grad():
            rate = Gamma(self.total_count, fd.exp(-self.logits), validate_args=False).sample(sample_shape)
            return Poisson(rate, validate_args=False).sample()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        r, logits = self.total_count, self.logits
        unnormalized = r * F.logsigmoid(-logits) + value * F.logsigmoid(logits)
        log_norm = -fd.lgamma(r + value) + fd.lgamma(1.0 + value) + fd.lgamma(r)
        log_norm = fd.where(r + value == 0, 0.0, log_norm)  # r = 0 puts all mass on k = 0
        return unnormalized - log_norm
