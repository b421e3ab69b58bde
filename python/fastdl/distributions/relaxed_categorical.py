"""RelaxedOneHotCategorical(temperature, probs=None, logits=None): the Concrete / Gumbel-softmax relaxation of
a one-hot categorical (Maddison et al. 2017; Jang et al. 2017), points of the simplex, reparameterised: the
exp of ExpRelaxedCategorical, whose draws are log_softmax((logits + g) / temperature), g ~ Gumbel(0, 1)."""
import math

import fastdl as fd
from fastdl.distributions import constraints
from fastdl.distributions.categorical import CategoricalVectors
from fastdl.distributions.relaxed_bernoulli import clamp_probs
from fastdl.distributions.transformed_distribution import TransformedDistribution
from fastdl.distributions.transforms import ExpTransform

__all__ = ["ExpRelaxedCategorical", "RelaxedOneHotCategorical"]


class ExpRelaxedCategorical(CategoricalVectors):
    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.real_vector  # log-probabilities of a relaxed one-hot vector
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        self.temperature = temperature
        super().__init__(probs, logits, validate_args=validate_args)

    def rsample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        u = clamp_probs(self._new_noise(fd.rand, shape, self.logits))
        gumbels = -fd.log(-fd.log(u))
        scores = (self.logits + gumbels) / self.temperature
        return scores - fd.logsumexp(scores, -1, keepdim=True)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        k = self._categorical._num_events
        t = fd.as_tensor(self.temperature, dtype=self.logits.dtype)
        log_scale = math.lgamma(k) + (k - 1) * fd.log(t)
        score = self.logits - value * t
        score = (score - fd.logsumexp(score, -1, keepdim=True)).sum(-1)
        return score + log_scale


class RelaxedOneHotCategorical(TransformedDistribution):
    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        base = ExpRelaxedCategorical(temperature, probs, logits, validate_args=validate_args)
        super().__init__(base, ExpTransform(), validate_args=validate_args)

    temperature = property(lambda self: self.base_dist.temperature)
    logits = property(lambda self: self.base_dist.logits)
    probs = property(lambda self: self.base_dist.probs)
