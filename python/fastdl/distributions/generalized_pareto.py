"""GeneralizedPareto(loc, scale, concentration c): with z = (x - loc) / scale, survival (1 + c z)^(-1/c)
(e^(-z) at c = 0) on z >= 0, and z <= -1/c when c < 0. Exponential (c = 0), Pareto (c > 0) and Uniform
(c = -1) are special cases. mean and variance are NaN where they do not exist (c >= 1, c >= 1/2)."""
import fastdl as fd
from fastdl.distributions import constraints
from fastdl.distributions.distribution import Distribution, broadcast_all

__all__ = ["GeneralizedPareto"]


class GeneralizedPareto(Distribution):
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive, "concentration": constraints.real}
    has_rsample = True

    def __init__(self, loc, scale, concentration, validate_args=None):
        self.loc, self.scale, self.concentration = broadcast_all(loc, scale, concentration)
        super().__init__(self.loc.shape, validate_args=validate_args)

    def _safe(self):
        """(c == 0, c with its zeros replaced by 1): the c != 0 branch stays finite where the c = 0 one is used."""
        zero = fd.isclose(self.concentration, fd.zeros_like(self.concentration))
        return zero, fd.where(zero, 1.0, self.concentration)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        c = self.concentration
        upper = fd.where(c < 0, self.loc - self.scale / fd.where(c < 0, c, -1.0), float("inf"))
        return constraints.interval(self.loc, upper)

    def rsample(self, sample_shape=()):
        return self.icdf(self._new_noise(fd.rand, self._extended_shape(sample_shape), self.loc))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        zero, c = self._safe()
        y = 1 / c + 1
        nonzero = fd.where(y == 0, y, y * fd.log1p(c * z))  # c = -1: the uniform density, log1p(-1) unused
        return -fd.log(self.scale) - fd.where(zero, z, nonzero)

    def log_survival_function(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        zero, c = self._safe()
        return fd.where(zero, -z, -fd.log1p(c * z) / c)

    def log_cdf(self, value):
        return fd.log1p(-fd.exp(self.log_survival_function(value)))

    def cdf(self, value):
        return fd.exp(self.log_cdf(value))

    def icdf(self, value):
        zero, c = self._safe()
        log_u = fd.log1p(-value)
        return fd.where(zero, self.loc - self.scale * log_u, self.loc + self.scale / c * fd.expm1(-c * log_u))

    @property
    def mean(self):
        c = self.concentration
        ok = c < 1
        return fd.where(ok, self.loc + self.scale / (1 - fd.where(ok, c, 0.5)), float("nan"))

    @property
    def variance(self):
        c = self.concentration
        ok = c < 0.5
        cs = fd.where(ok, c, 0.25)
        return fd.where(ok, self.scale ** 2 / ((1 - cs) ** 2 * (1 - 2 * cs)), float("nan"))

    mode = property(lambda self: self.loc)

    def entropy(self):
        return (fd.log(self.scale) + self.concentration + 1).expand(tuple(self._batch_shape))
