"""VonMises(loc, concentration k): the circular normal, density e^(k cos(x - loc)) / (2 pi I0(k)) for angles
x (any real number, read modulo 2 pi). Samples lie in [-pi, pi), drawn by Best and Fisher's rejection
sampler (1979) in float64; mean and variance are the circular ones."""
import math

import fastdl as fd
import fastdl.special as S
from fastdl.distributions import constraints
from fastdl.distributions.distribution import Distribution, broadcast_all

__all__ = ["VonMises"]


def _log_i0(k):
    return fd.log(S.i0e(k)) + k


def _log_i1(k):
    return fd.log(S.i1e(k)) + k


class VonMises(Distribution):
    arg_constraints = {"loc": constraints.real, "concentration": constraints.positive}
    support = constraints.real
    has_rsample = False

    def __init__(self, loc, concentration, validate_args=None):
        self.loc, self.concentration = broadcast_all(loc, concentration)
        super().__init__(self.loc.shape, validate_args=validate_args)

    mean = mode = property(lambda self: self.loc)

    @property
    def variance(self):
        k = self.concentration
        return 1 - fd.exp(_log_i1(k) - _log_i0(k))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        k = self.concentration
        return k * fd.cos(value - self.loc) - math.log(2 * math.pi) - _log_i0(k)

    def sample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        with fd.no_grad():
            loc = self.loc.detach().to(fd.float64).expand(shape)
            k = self.concentration.detach().to(fd.float64).expand(shape)
            tau = 1 + (1 + 4 * k ** 2).sqrt()
            rho = (tau - (2 * tau).sqrt()) / (2 * k)
            r = fd.where(k < 1e-5, 1 / k + k, (1 + rho ** 2) / (2 * rho))  # the wrapped Cauchy envelope
            out = fd.zeros(shape, dtype=fd.float64, device=loc.device)
            todo = fd.ones(shape, dtype=fd.bool, device=loc.device)
            while bool(todo.any()):
                u1, u2, u3 = (fd.rand(shape, dtype=fd.float64, device=loc.device) for _ in range(3))
                z = fd.cos(math.pi * u1)
                f = (1 + r * z) / (r + z)
                c = k * (r - f)
                ok = (c * (2 - c) - u2 > 0) | (fd.log(c / u2) + 1 - c >= 0)
                theta = fd.where(u3 > 0.5, 1.0, -1.0) * fd.acos(f.clamp(min=-1.0, max=1.0))
                out = fd.where(ok & todo, theta, out)
                todo = todo & ~ok
            x = fd.remainder(out + loc + math.pi, 2 * math.pi) - math.pi
            return x.to(self.loc.dtype)
