"""ContinuousBernoulli(probs=None, logits=None, lims=(0.499, 0.501)): density C(p) p^x (1 - p)^(1-x) on [0, 1]
(Loaiza-Ganem and Cunningham 2019), with C(p) = 2 atanh(1 - 2p) / (1 - 2p). Near p = 1/2 (inside lims) the
closed forms divide 0 by 0, so the normaliser, mean and variance switch to their Taylor series in p - 1/2."""
import math

import fastdl as fd
import fastdl.nn.functional as F
from fastdl.distributions import constraints
from fastdl.distributions.bernoulli import BinaryProbs
from fastdl.distributions.distribution import Distribution, broadcast_all, logits_to_probs
from fastdl.distributions.relaxed_bernoulli import clamp_probs

__all__ = ["ContinuousBernoulli"]


class ContinuousBernoulli(BinaryProbs, Distribution):
    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, probs=None, logits=None, lims=(0.499, 0.501), validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            (p,) = broadcast_all(probs)
            if validate_args:  # checked before clamping (the default clamps silently, as torch does)
                if not bool(constraints.unit_interval.check(p).all()):
                    raise ValueError(f"ContinuousBernoulli: probs must lie in [0, 1], got {p}")
            self.probs = clamp_probs(p)
        else:
            (self.logits,) = broadcast_all(logits)
        self._lims = lims
        super().__init__(self._param.shape, validate_args=validate_args)

    @property
    def probs(self):
        if "probs" not in self.__dict__:
            self.__dict__["probs"] = clamp_probs(logits_to_probs(self.logits, is_binary=True))
        return self.__dict__["probs"]

    @probs.setter
    def probs(self, value):
        self.__dict__["probs"] = value

    param_shape = property(lambda self: self._param.shape)

    def _stable(self):
        """Where the closed forms are used: p outside (lims[0], lims[1]]."""
        p = self.probs
        return (p <= self._lims[0]) | (p > self._lims[1])

    def _cut(self):
        """p where the closed forms are used, lims[0] elsewhere (keeps the unused branch finite)."""
        return fd.where(self._stable(), self.probs, self._lims[0] * fd.ones_like(self.probs))

    def _log_norm(self):
        p = self._cut()
        below = fd.where(p <= 0.5, p, 0.0)
        above = fd.where(p >= 0.5, p, 1.0)
        closed = fd.log((fd.log1p(-p) - fd.log(p)).abs()) - \
            fd.where(p <= 0.5, fd.log1p(-2.0 * below), fd.log(2.0 * above - 1.0))
        x = (self.probs - 0.5) ** 2
        taylor = math.log(2.0) + (4.0 / 3.0 + 104.0 / 45.0 * x) * x
        return fd.where(self._stable(), closed, taylor)

    @property
    def mean(self):
        p = self._cut()
        closed = p / (2.0 * p - 1.0) + 1.0 / (fd.log1p(-p) - fd.log(p))
        x = self.probs - 0.5
        taylor = 0.5 + (1.0 / 3.0 + 16.0 / 45.0 * x ** 2) * x
        return fd.where(self._stable(), closed, taylor)

    @property
    def variance(self):
        p = self._cut()
        closed = p * (p - 1.0) / (1.0 - 2.0 * p) ** 2 + 1.0 / (fd.log1p(-p) - fd.log(p)) ** 2
        x = (self.probs - 0.5) ** 2
        taylor = 1.0 / 12.0 - (1.0 / 15.0 - 128.0 / 945.0 * x) * x
        return fd.where(self._stable(), closed, taylor)

    def rsample(self, sample_shape=()):
        return self.icdf(self._new_noise(fd.rand, self._extended_shape(sample_shape), self.probs))

    def sample(self, sample_shape=()):
        with fd.no_grad():
            return self.rsample(sample_shape)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        return -F.binary_cross_entropy_with_logits(logits, value, reduction="none") + self._log_norm()

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        p = self._cut()
        closed = (p ** value * (1.0 - p) ** (1.0 - value) + p - 1.0) / (2.0 * p - 1.0)
        inside = fd.where(self._stable(), closed, value)
        return fd.where(value <= 0.0, 0.0, fd.where(value >= 1.0, 1.0, inside))

    def icdf(self, value):
        p = self._cut()
        closed = (fd.log1p(-p + value * (2.0 * p - 1.0)) - fd.log1p(-p)) / (fd.log(p) - fd.log1p(-p))
        return fd.where(self._stable(), closed, value)

    def entropy(self):
        log_p0, log_p1 = fd.log1p(-self.probs), fd.log(self.probs)
        return self.mean * (log_p0 - log_p1) - self._log_norm() - log_p0
