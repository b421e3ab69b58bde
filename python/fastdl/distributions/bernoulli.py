"""Bernoulli(probs=None, logits=None): 1 with probability probs, 0 otherwise."""
import fastdl as fd
import fastdl.nn.functional as F
from fastdl.distributions import constraints
from fastdl.distributions.distribution import (
    Distribution, broadcast_all, lazy_property, logits_to_probs, probs_to_logits,
)

__all__ = ["Bernoulli", "BinaryProbs"]


class BinaryProbs:
    """The probs / logits pair of a success probability (Bernoulli, Geometric, Binomial): the one
    given is stored, the other derived on first use."""

    @property
    def _param(self):
        return self.__dict__["probs"] if "probs" in self.__dict__ else self.__dict__["logits"]

    @lazy_property
    def probs(self):
        return logits_to_probs(self.logits, is_binary=True)

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs, is_binary=True)

    def _set_probs_or_logits(self, probs, logits, *others):
        """Stores whichever of probs / logits is given (exactly one), broadcast with `others`, which come back
        broadcast too, in its dtype."""
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        name, value = ("probs", probs) if probs is not None else ("logits", logits)
        *rest, value = broadcast_all(*others, value)
        self.__dict__[name] = value
        return [v.to(value.dtype) for v in rest]


class Bernoulli(BinaryProbs, Distribution):
    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.boolean
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        self._set_probs_or_logits(probs, logits)
        super().__init__(self._param.shape, validate_args=validate_args)

    param_shape = property(lambda self: self._param.shape)
    mean = property(lambda self: self.probs)
    variance = property(lambda self: self.probs * (1 - self.probs))

    @property
    def mode(self):
        p = self.probs
        return fd.where(p == 0.5, float("nan"), (p >= 0.5).to(p.dtype))

    def sample(self, sample_shape=()):
        with fd.no_grad():
            return fd.bernoulli(self.probs.expand(tuple(self._extended_shape(sample_shape))))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        return -F.binary_cross_entropy_with_logits(logits, value, reduction="none")

    def entropy(self):
        return F.binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none")

    def enumerate_support(self, expand=True):
        values = fd.arange(2, dtype=self._param.dtype, device=self._param.device)
        values = values.reshape((2,) + (1,) * len(self._batch_shape))
        return values.expand((2,) + tuple(self._batch_shape)) if expand else values
