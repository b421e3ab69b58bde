"""Categorical(probs=None, logits=None) over {0, ..., K-1}, and OneHotCategorical (the same, as one-hot vectors).

The last dim of probs/logits indexes the K categories; the dims before it are the batch.
probs are normalised to sum to one, logits to log-probabilities.
"""
import fastdl as fd
import fastdl.nn.functional as F
from fastdl.distributions import constraints
from fastdl.distributions.distribution import Distribution, lazy_property, logits_to_probs, probs_to_logits

__all__ = ["Categorical", "OneHotCategorical", "OneHotCategoricalStraightThrough"]


class Categorical(Distribution):
    arg_constraints = {"probs": constraints.simplex, "logits": constraints.independent(constraints.real, 1)}
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            probs = probs if isinstance(probs, fd.Tensor) else fd.tensor(probs)
            if probs.ndim < 1:
                raise ValueError("`probs` parameter must be at least one-dimensional.")
            self.probs = probs / probs.sum(-1, keepdim=True)
        else:
            logits = logits if isinstance(logits, fd.Tensor) else fd.tensor(logits)
            if logits.ndim < 1:
                raise ValueError("`logits` parameter must be at least one-dimensional.")
            self.logits = logits - fd.logsumexp(logits, -1, keepdim=True)
        self._num_events = self._param.shape[-1]
        super().__init__(self._param.shape[:-1], validate_args=validate_args)

    @property
    def _param(self):
        return self.__dict__["probs"] if "probs" in self.__dict__ else self.__dict__["logits"]

    @lazy_property
    def probs(self):
        return logits_to_probs(self.logits)

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self._num_events - 1)

    param_shape = property(lambda self: self._param.shape)
    mean = property(lambda self: fd.full(tuple(self._extended_shape()), float("nan"), dtype=self._param.dtype,
                                         device=self._param.device))
    variance = mean
    mode = property(lambda self: self.probs.argmax(-1))

    def sample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        n = 1
        for d in tuple(shape[:len(shape) - len(self._batch_shape)]):
            n *= d
        with fd.no_grad():
            probs_2d = self.probs.reshape(-1, self._num_events)
            draws = fd.multinomial(probs_2d, n, replacement=True)  # (batch, n)
            return draws.T.reshape(tuple(shape))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value = value.long().unsqueeze(-1)
        value, log_pmf = fd.broadcast_tensors(value, self.logits)
        return fd.gather(log_pmf, -1, value[..., :1]).squeeze(-1)

    def entropy(self):
        logits = self.logits.clamp(min=fd.finfo(self.logits.dtype).min)  # -inf logits of zero probs: 0 * min = 0
        return -(logits * self.probs).sum(-1)

    def enumerate_support(self, expand=True):
        values = fd.arange(self._num_events, device=self._param.device)
        values = values.reshape((-1,) + (1,) * len(self._batch_shape))
        return values.expand((-1,) + tuple(self._batch_shape)) if expand else values


class CategoricalVectors(Distribution):
    """A distribution over K-vectors driven by a Categorical over the last dim of probs / logits (kept as
    `_categorical`): event_shape (K,), and the Categorical's parameters, expanded with it."""

    def __init__(self, probs=None, logits=None, validate_args=None):
        self._categorical = Categorical(probs, logits)
        super().__init__(self._categorical.batch_shape, self._categorical.param_shape[-1:],
                         validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._categorical = self._categorical.expand(batch_shape)
        new._batch_shape = new._categorical.batch_shape
        return new

    probs = property(lambda self: self._categorical.probs)
    logits = property(lambda self: self._categorical.logits)
    _param = property(lambda self: self._categorical._param)
    param_shape = property(lambda self: self._categorical.param_shape)


class OneHotCategorical(CategoricalVectors):
    """Samples are one-hot vectors of length K: event_shape (K,)."""
    arg_constraints = {"probs": constraints.simplex, "logits": constraints.independent(constraints.real, 1)}
    support = constraints.one_hot
    has_enumerate_support = True

    mean = property(lambda self: self._categorical.probs)
    variance = property(lambda self: self._categorical.probs * (1 - self._categorical.probs))

    @property
    def mode(self):
        probs = self._categorical.probs
        return F.one_hot(probs.argmax(-1), probs.shape[-1]).to(probs.dtype)

    def sample(self, sample_shape=()):
        probs = self._categorical.probs
        return F.one_hot(self._categorical.sample(sample_shape), probs.shape[-1]).to(probs.dtype)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return self._categorical.log_prob(value.argmax(-1))

    def entropy(self):
        return self._categorical.entropy()

    def enumerate_support(self, expand=True):
        n = self._event_shape[0]
        values = fd.eye(n, dtype=self._param.dtype, device=self._param.device)
        values = values.reshape((n,) + (1,) * len(self._batch_shape) + (n,))
        return values.expand((n,) + tuple(self._batch_shape) + (n,)) if expand else values


class OneHotCategoricalStraightThrough(OneHotCategorical):
    """OneHotCategorical whose rsample passes gradients straight through (Bengio et al. 2013): the sample's value,
    the gradient of probs."""
    has_rsample = True

    def rsample(self, sample_shape=()):
        samples = self.sample(sample_shape)
        probs = self._categorical.probs
        return samples + (probs - probs.detach())
