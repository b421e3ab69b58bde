"""MultivariateNormal(loc, covariance_matrix | precision_matrix | scale_tril).

Everything is computed from the lower Cholesky factor L of the covariance (Sigma = L L^T):
samples are loc + L eps, log_prob uses |L^-1 (x - loc)|^2 and log det Sigma = 2 sum log diag L.
"""
import math

import fastdl as fd
import fastdl.linalg as LA
from fastdl.distributions import constraints
from fastdl.distributions.distribution import Distribution, lazy_property

__all__ = ["MultivariateNormal"]


def _batch_mahalanobis(L, x):
    """|L^-1 x|^2 over the last dim, L (..., k, k) and x (..., k) broadcast against each other."""
    batch = fd.broadcast_shapes(tuple(L.shape[:-2]), tuple(x.shape[:-1]))
    k = x.shape[-1]
    L = L.expand(tuple(batch) + (k, k))
    x = x.expand(tuple(batch) + (k,))
    y = LA.solve_triangular(L, x.unsqueeze(-1), upper=False).squeeze(-1)
    return (y ** 2).sum(-1)


def _half_log_det(L):
    return fd.log(fd.diagonal(L, dim1=-2, dim2=-1)).sum(-1)


class CovarianceFromCholesky:
    """scale_tril / covariance_matrix / precision_matrix of a family that keeps the lower Cholesky factor of its
    covariance (`_unbroadcasted_scale_tril`, at the parameter's own batch shape), expanded to the batch on first
    use: MultivariateNormal, Wishart."""

    def _full(self, m):
        return m.expand(tuple(self._batch_shape) + tuple(m.shape[-2:]))

    @lazy_property
    def scale_tril(self):
        return self._full(self._unbroadcasted_scale_tril)

    @lazy_property
    def covariance_matrix(self):
        L = self._unbroadcasted_scale_tril
        return self._full(L @ L.mT)

    @lazy_property
    def precision_matrix(self):
        return self._full(fd.cholesky_inverse(self._unbroadcasted_scale_tril))


class MultivariateNormal(CovarianceFromCholesky, Distribution):
    arg_constraints = {"loc": constraints.real_vector, "covariance_matrix": constraints.positive_definite,
                       "precision_matrix": constraints.positive_definite, "scale_tril": constraints.lower_cholesky}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, covariance_matrix=None, precision_matrix=None, scale_tril=None, validate_args=None):
        if loc.ndim < 1:
            raise ValueError("loc must be at least one-dimensional.")
        given = [m for m in (covariance_matrix, precision_matrix, scale_tril) if m is not None]
        if len(given) != 1:
            raise ValueError("Exactly one of covariance_matrix or precision_matrix or scale_tril may be specified.")
        matrix = given[0]
        if matrix.ndim < 2:
            raise ValueError("covariance_matrix, precision_matrix or scale_tril must be at least two-dimensional, "
                             "with optional leading batch dimensions")
        batch_shape = fd.broadcast_shapes(tuple(matrix.shape[:-2]), tuple(loc.shape[:-1]))
        k = loc.shape[-1]
        if tuple(matrix.shape[-2:]) != (k, k):
            raise ValueError(f"MultivariateNormal: matrix of shape {tuple(matrix.shape)} does not match loc of "
                             f"shape {tuple(loc.shape)}")
        full = tuple(batch_shape) + (k, k)
        if scale_tril is not None:
            self.scale_tril = scale_tril.expand(full)
        elif covariance_matrix is not None:
            self.covariance_matrix = covariance_matrix.expand(full)
        else:
            self.precision_matrix = precision_matrix.expand(full)
        self.loc = loc.expand(tuple(batch_shape) + (k,))
        super().__init__(batch_shape, (k,), validate_args=validate_args)
        # the factor is kept at the parameter's own batch shape (not broadcast): solves stay small
        if scale_tril is not None:
            self._unbroadcasted_scale_tril = scale_tril
        elif covariance_matrix is not None:
            self._unbroadcasted_scale_tril = LA.cholesky(covariance_matrix)
        else:
            self._unbroadcasted_scale_tril = LA.cholesky(LA.inv(precision_matrix))

    mean = mode = property(lambda self: self.loc)

    @property
    def variance(self):
        var = (self._unbroadcasted_scale_tril ** 2).sum(-1)
        return var.expand(tuple(self._batch_shape) + tuple(self._event_shape))

    def rsample(self, sample_shape=()):
        eps = self._new_noise(fd.randn, self._extended_shape(sample_shape), self.loc)
        return self.loc + (self._unbroadcasted_scale_tril @ eps.unsqueeze(-1)).squeeze(-1)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        k = self._event_shape[0]
        m = _batch_mahalanobis(self._unbroadcasted_scale_tril, value - self.loc)
        return -0.5 * (k * math.log(2 * math.pi) + m) - _half_log_det(self._unbroadcasted_scale_tril)

    def entropy(self):
        k = self._event_shape[0]
        h = 0.5 * k * (1.0 + math.log(2 * math.pi)) + _half_log_det(self._unbroadcasted_scale_tril)
        return h.expand(tuple(self._batch_shape))
