"""Multinomial(total_count=1, probs=None, logits=None): counts of total_count draws from a Categorical over
the last dim's K categories; pmf n! / prod x_k! prod p_k^x_k. total_count is one integer (log_prob accepts
any counts, as torch's does)."""
import fastdl as fd
from fastdl.distributions import constraints
from fastdl.distributions.binomial import Binomial
from fastdl.distributions.categorical import Categorical
from fastdl.distributions.distribution import Distribution, broadcast_all

__all__ = ["Multinomial"]


class Multinomial(Distribution):
    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None):
        if not isinstance(total_count, int):
            raise NotImplementedError("inhomogeneous total_count is not supported")
        self.total_count = total_count
        self._categorical = Categorical(probs=probs, logits=logits)
        self._binomial = Binomial(total_count=total_count, probs=self.probs)
        super().__init__(self._categorical.batch_shape, self._categorical.param_shape[-1:],
                         validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = object.__new__(Multinomial)
        new.__dict__.update(self.__dict__)
        new._categorical = self._categorical.expand(batch_shape)
        new._binomial = Binomial(total_count=self.total_count, probs=new._categorical.probs)
        new._batch_shape = new._categorical.batch_shape
        return new

    @constraints.dependent_property(is_discrete=True, event_dim=1)
    def support(self):
        return constraints.multinomial(self.total_count)

    probs = property(lambda self: self._categorical.probs)
    logits = property(lambda self: self._categorical.logits)
    param_shape = property(lambda self: self._categorical.param_shape)
    mean = property(lambda self: self.probs * self.total_count)
    variance = property(lambda self: self.total_count * self.probs * (1 - self.probs))

    def sample(self, sample_shape=()):
        sample_shape = tuple(fd.Size(sample_shape) if not isinstance(sample_shape, int) else (sample_shape,))
        k = self._event_shape[0]
        with fd.no_grad():
            draws = self._categorical.sample((self.total_count,) + sample_shape)  # (n, sample, batch)
            counts = fd.zeros(tuple(draws.shape[1:]) + (k,), dtype=self.probs.dtype, device=self.probs.device)
            if self.total_count:
                ones = fd.ones(tuple(draws.shape[1:]) + (self.total_count,), dtype=counts.dtype,
                               device=counts.device)
                counts = counts.scatter_add(-1, fd.movedim(draws, 0, -1), ones)
            return counts

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        log_n_fact = fd.lgamma(value.sum(-1) + 1)
        log_x_fact = fd.lgamma(value + 1).sum(-1)
        # a zero count of an impossible category (-inf logit) contributes 0, not 0 * -inf
        logits = fd.where((value == 0) & (logits == float("-inf")), 0.0, logits)
        return log_n_fact - log_x_fact + (logits * value).sum(-1)

    def entropy(self):
        # H = n H(categorical) - log n! + sum_k E[log x_k!], each x_k ~ Binomial(n, p_k)
        n = fd.tensor(float(self.total_count), dtype=self.probs.dtype, device=self.probs.device)
        term1 = n * self._categorical.entropy() - fd.lgamma(n + 1)
        support = self._binomial.enumerate_support(expand=False)[1:]
        binomial_probs = fd.exp(self._binomial.log_prob(support))
        term2 = (binomial_probs * fd.lgamma(support + 1)).sum(0).sum(-1)
        return term1 + term2
