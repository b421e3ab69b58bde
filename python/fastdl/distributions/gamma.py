"""Gamma(concentration, rate): density rate^a x^(a-1) e^(-rate x) / Gamma(a) on x > 0.

rsample draws a standard gamma by Marsaglia-Tsang rejection (fastdl's own random draws) and differentiates
it in the concentration implicitly: with F(a, x) = P(a, x) held at the drawn uniform level,
dx/da = -(dF/da) / (dF/dx), dF/dx the gamma density and dF/da a central difference of P in float64.
"""
import fastdl as fd
import fastdl.special as S
from fastdl.autograd import Function, once_differentiable
from fastdl.distributions import constraints
from fastdl.distributions.distribution import Distribution, broadcast_all

__all__ = ["Gamma"]


def _marsaglia_tsang(alpha):
    """Standard gamma draws, one per element of alpha (float64, no grad); loops until all are accepted."""
    tiny = fd.finfo(alpha.dtype).tiny
    boost = alpha < 1  # draw Gamma(a + 1) and scale by u^(1/a)
    a = fd.where(boost, alpha + 1, alpha)
    d = a - 1.0 / 3.0
    c = (9 * d).rsqrt()
    shape = tuple(alpha.shape)
    out = fd.zeros_like(alpha)
    todo = fd.ones(shape, dtype=fd.bool, device=alpha.device)
    while True:
        z = fd.randn(shape, dtype=alpha.dtype, device=alpha.device)
        u = fd.rand(shape, dtype=alpha.dtype, device=alpha.device)
        v = (1 + c * z) ** 3
        pos = v > 0
        vs = fd.where(pos, v, 1.0)
        ok = pos & (fd.log(u) < 0.5 * z * z + d - d * vs + d * fd.log(vs))
        out = fd.where(ok & todo, d * vs, out)
        todo = todo & ~ok
        if not bool(todo.any()):
            break
    if bool(boost.any()):
        u = fd.rand(shape, dtype=alpha.dtype, device=alpha.device).clamp(min=tiny)
        out = fd.where(boost, out * u ** (1 / alpha), out)
    return out.clamp(min=tiny)


class _StandardGamma(Function):
    """x ~ Gamma(alpha, 1), with the implicit reparameterisation gradient dx/dalpha."""

    @staticmethod
    def forward(ctx, alpha):
        x = _marsaglia_tsang(alpha.detach().to(fd.float64)).to(alpha.dtype)
        ctx.save_for_backward(alpha, x)
        return x

    @staticmethod
    @once_differentiable  # a finite difference: a second derivative raises rather than reads 0
    def backward(ctx, grad):
        alpha, x = ctx.saved_tensors
        with fd.no_grad():
            a, x64 = alpha.detach().to(fd.float64), x.detach().to(fd.float64)
            h = 1e-5 * a
            dcdf_da = (S.gammainc(a + h, x64) - S.gammainc(a - h, x64)) / (2 * h)
            log_density = (a - 1) * fd.log(x64) - x64 - fd.lgamma(a)
            dx_da = -dcdf_da * fd.exp(-log_density)
            dx_da = fd.where(fd.isfinite(dx_da), dx_da, 0.0)  # far tails: density underflow
            return grad * dx_da.to(grad.dtype)


def _standard_gamma(alpha):
    """Standard gamma draws, one per element of alpha, differentiable in alpha."""
    return _StandardGamma.apply(alpha)


class Gamma(Distribution):
    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, concentration, rate, validate_args=None):
        self.concentration, self.rate = broadcast_all(concentration, rate)
        super().__init__(self.concentration.shape, validate_args=validate_args)

    mean = property(lambda self: self.concentration / self.rate)
    mode = property(lambda self: ((self.concentration - 1) / self.rate).clamp(min=0))
    variance = property(lambda self: self.concentration / self.rate ** 2)

    def rsample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        x = _standard_gamma(self.concentration.expand(shape)) / self.rate.expand(shape)
        return x.clamp(min=fd.finfo(x.dtype).tiny)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        a, r = self.concentration, self.rate
        return fd.xlogy(a, r) + fd.xlogy(a - 1, value) - r * value - fd.lgamma(a)

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return S.gammainc(self.concentration, self.rate * value)

    def entropy(self):
        a = self.concentration
        return a - fd.log(self.rate) + fd.lgamma(a) + (1 - a) * fd.digamma(a)
