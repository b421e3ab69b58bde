"""Geometric(probs=None, logits=None): the number of failures before the first success."""
import fastdl as fd
import fastdl.nn.functional as F
from fastdl.distributions import constraints
from fastdl.distributions.bernoulli import BinaryProbs
from fastdl.distributions.distribution import Distribution, broadcast_all

__all__ = ["Geometric"]


class Geometric(BinaryProbs, Distribution):
    """P(k) = (1 - p)^k p, k = 0, 1, 2, ..."""
    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.nonnegative_integer

    def __init__(self, probs=None, logits=None, validate_args=None):
        self._set_probs_or_logits(probs, logits)
        super().__init__(self._param.shape, validate_args=validate_args)
        if self._validate_args and probs is not None and not bool((self.probs > 0).all()):
            raise ValueError(f"Expected parameter probs of distribution {self!r} to be positive but found "
                             f"invalid values:\n{self.probs}")

    mean = property(lambda self: 1.0 / self.probs - 1.0)
    mode = property(lambda self: fd.zeros_like(self.probs))
    variance = property(lambda self: (1.0 / self.probs - 1.0) / self.probs)

    def sample(self, sample_shape=()):
        with fd.no_grad():
            tiny = fd.finfo(self.probs.dtype).tiny
            u = self._new_noise(fd.rand, self._extended_shape(sample_shape), self.probs).clamp(min=tiny)
            return fd.floor(fd.log(u) / fd.log1p(-self.probs))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value, probs = broadcast_all(value, self.probs)
        # p = 1 and k = 0: 0 * log(0) counts as 0
        q = fd.where((probs == 1) & (value == 0), 0.0, probs)
        return value * fd.log1p(-q) + fd.log(self.probs)

    def entropy(self):
        return F.binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none") / self.probs
