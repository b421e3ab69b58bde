"""RelaxedBernoulli(temperature, probs=None, logits=None): the Concrete / Gumbel-softmax relaxation of a
Bernoulli (Maddison et al. 2017; Jang et al. 2017), values in (0, 1), reparameterised. It is the sigmoid of
LogitRelaxedBernoulli, whose draws are (logit(u) + logits) / temperature, u ~ Uniform(0, 1)."""
import fastdl as fd
from fastdl.distributions import constraints
from fastdl.distributions.bernoulli import BinaryProbs
from fastdl.distributions.distribution import Distribution, broadcast_all
from fastdl.distributions.transformed_distribution import TransformedDistribution
from fastdl.distributions.transforms import SigmoidTransform

__all__ = ["LogitRelaxedBernoulli", "RelaxedBernoulli", "clamp_probs"]


def clamp_probs(probs):
    """probs kept inside [eps, 1 - eps] so their logs are finite."""
    eps = fd.finfo(probs.dtype).eps
    return probs.clamp(min=eps, max=1 - eps)


class LogitRelaxedBernoulli(BinaryProbs, Distribution):
    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.real
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        self.temperature = temperature
        self._set_probs_or_logits(probs, logits)
        super().__init__(self._param.shape, validate_args=validate_args)

    param_shape = property(lambda self: self._param.shape)

    def rsample(self, sample_shape=()):
        probs = clamp_probs(self.probs.expand(tuple(self._extended_shape(sample_shape))))
        u = clamp_probs(self._new_noise(fd.rand, probs.shape, probs))
        return (fd.log(u) - fd.log1p(-u) + fd.log(probs) - fd.log1p(-probs)) / self.temperature

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        diff = logits - value * self.temperature
        return fd.log(fd.as_tensor(self.temperature, dtype=diff.dtype)) + diff - 2 * fd.log1p(fd.exp(diff))


class RelaxedBernoulli(TransformedDistribution):
    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        base = LogitRelaxedBernoulli(temperature, probs, logits, validate_args=validate_args)
        super().__init__(base, SigmoidTransform(), validate_args=validate_args)

    temperature = property(lambda self: self.base_dist.temperature)
    logits = property(lambda self: self.base_dist.logits)
    probs = property(lambda self: self.base_dist.probs)
