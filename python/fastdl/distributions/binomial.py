"""Binomial(total_count=1, probs=None, logits=None): successes in total_count Bernoulli(probs) trials."""
import fastdl as fd
from fastdl.distributions import constraints
from fastdl.distributions.bernoulli import BinaryProbs
from fastdl.distributions.distribution import Distribution

__all__ = ["Binomial"]


class Binomial(BinaryProbs, Distribution):
    arg_constraints = {"total_count": constraints.nonnegative_integer, "probs": constraints.unit_interval,
                       "logits": constraints.real}
    has_enumerate_support = True

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None):
        (self.total_count,) = self._set_probs_or_logits(probs, logits, total_count)
        super().__init__(self._param.shape, validate_args=validate_args)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self.total_count)

    param_shape = property(lambda self: self._param.shape)
    mean = property(lambda self: self.total_count * self.probs)
    variance = property(lambda self: self.total_count * self.probs * (1 - self.probs))

    @property
    def mode(self):
        return fd.minimum(fd.floor((self.total_count + 1) * self.probs), self.total_count)

    def sample(self, sample_shape=()):
        with fd.no_grad():
            shape = tuple(self._extended_shape(sample_shape))
            return fd.binomial(self.total_count.expand(shape), self.probs.expand(shape))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        n, k = self.total_count, value
        # log C(n, k) + k logit - n log(1 + e^logit), the last term written to stay finite for large |logit|
        logits = self.logits
        normalize = n * logits.clamp(min=0) + n * fd.log1p(fd.exp(-logits.abs())) - fd.lgamma(n + 1)
        return k * logits - fd.lgamma(k + 1) - fd.lgamma(n - k + 1) - normalize

    def entropy(self):
        n = int(self.total_count.max())
        if not bool((self.total_count == n).all()):
            raise NotImplementedError("Inhomogeneous total count not supported by `entropy`.")
        lp = self.log_prob(self.enumerate_support(False))
        return -(fd.exp(lp) * lp).sum(0)

    def enumerate_support(self, expand=True):
        n = int(self.total_count.max())
        if not bool((self.total_count == n).all()):
            raise NotImplementedError("Inhomogeneous total count not supported by `enumerate_support`.")
        values = fd.arange(1 + n, dtype=self._param.dtype, device=self._param.device)
        values = values.reshape((-1,) + (1,) * len(self._batch_shape))
        return values.expand((-1,) + tuple(self._batch_shape)) if expand else values
