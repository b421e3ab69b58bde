"""Wishart(df, covariance_matrix | precision_matrix | scale_tril): positive-definite p x p matrices X = sum of df
outer products of Normal(0, Sigma) vectors (any real df > p - 1). log p(X) = (df - p - 1)/2 log det X
- tr(Sigma^-1 X)/2 - df p/2 log 2 - df/2 log det Sigma - log Gamma_p(df/2). rsample is Bartlett's decomposition
X = L A A^T L^T, A lower triangular with sqrt(chi-squared(df - i)) on the diagonal (differentiable in df through
the gamma draws) and standard normals below it."""
import math

import fastdl as fd
import fastdl.linalg as LA
from fastdl.distributions import constraints
from fastdl.distributions.distribution import Distribution
from fastdl.distributions.gamma import _standard_gamma
from fastdl.distributions.multivariate_normal import CovarianceFromCholesky

__all__ = ["Wishart"]


class Wishart(CovarianceFromCholesky, Distribution):
    arg_constraints = {"covariance_matrix": constraints.positive_definite,
                       "precision_matrix": constraints.positive_definite, "scale_tril": constraints.lower_cholesky,
                       "df": constraints.greater_than(0)}
    support = constraints.positive_definite
    has_rsample = True

    def __init__(self, df, covariance_matrix=None, precision_matrix=None, scale_tril=None, validate_args=None):
        given = [m for m in (covariance_matrix, precision_matrix, scale_tril) if m is not None]
        if len(given) != 1:
            raise ValueError("Exactly one of covariance_matrix or precision_matrix or scale_tril may be specified.")
        matrix = given[0]
        if matrix.ndim < 2:
            raise ValueError("scale_tril must be at least two-dimensional, with optional leading batch dimensions")
        p = matrix.shape[-1]
        if matrix.shape[-2] != p:
            raise ValueError(f"Wishart: expected square matrices, got shape {tuple(matrix.shape)}")
        df = df if isinstance(df, fd.Tensor) else fd.tensor(float(df), dtype=matrix.dtype, device=matrix.device)
        batch = tuple(fd.broadcast_shapes(tuple(matrix.shape[:-2]), tuple(df.shape)))
        self.df = df.expand(batch)
        if bool((self.df <= p - 1).any()):
            raise ValueError(f"Value of df={df} expected to be greater than ndim - 1 = {p - 1}.")
        full = batch + (p, p)
        if scale_tril is not None:
            self.scale_tril = scale_tril.expand(full)
            self._unbroadcasted_scale_tril = scale_tril
        elif covariance_matrix is not None:
            self.covariance_matrix = covariance_matrix.expand(full)
            self._unbroadcasted_scale_tril = LA.cholesky(covariance_matrix)
        else:
            self.precision_matrix = precision_matrix.expand(full)
            self._unbroadcasted_scale_tril = LA.cholesky(LA.inv(precision_matrix))
        super().__init__(batch, (p, p), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = object.__new__(Wishart)
        new.__dict__.update(self.__dict__)
        p = self._event_shape[-1]
        batch = tuple(batch_shape)
        new.df = self.df.expand(batch)
        for name in ("scale_tril", "covariance_matrix", "precision_matrix"):
            if name in self.__dict__:
                new.__dict__[name] = self.__dict__[name].expand(batch + (p, p))
        new._batch_shape = fd.Size(batch)
        return new

    def _df(self):
        return self.df.reshape(tuple(self.df.shape) + (1, 1))

    @property
    def mean(self):
        return self._df() * self.covariance_matrix

    @property
    def mode(self):
        p = self._event_shape[-1]
        factor = self._df() - p - 1
        return fd.where(factor > 0, factor, float("nan")) * self.covariance_matrix

    @property
    def variance(self):
        v = self.covariance_matrix
        diag = fd.diagonal(v, dim1=-2, dim2=-1)
        return self._df() * (v ** 2 + diag.unsqueeze(-1) * diag.unsqueeze(-2))

    def _half_log_det(self):
        return fd.log(fd.diagonal(self._unbroadcasted_scale_tril, dim1=-2, dim2=-1)).sum(-1)

    def rsample(self, sample_shape=()):
        sample_shape = (sample_shape,) if isinstance(sample_shape, int) else tuple(sample_shape)
        p = self._event_shape[-1]
        shape = sample_shape + tuple(self._batch_shape)
        dt, dev = self.df.dtype, self.df.device
        # chi-squared(df - i) = 2 Gamma((df - i) / 2, 1), i = 0 .. p - 1
        half = (self.df.unsqueeze(-1) - fd.arange(p, dtype=dt, device=dev)) / 2
        chi2 = 2 * _standard_gamma(half.expand(shape + (p,)).contiguous())
        noise = fd.randn(shape + (p, p), dtype=dt, device=dev).tril(-1)
        a = noise + fd.diag_embed(chi2.sqrt())
        la = self._unbroadcasted_scale_tril @ a
        return la @ la.mT

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        nu, p = self.df, self._event_shape[-1]
        log_det_x = 2 * fd.log(fd.diagonal(LA.cholesky(value), dim1=-2, dim2=-1)).sum(-1)
        trace = (fd.cholesky_inverse(self._unbroadcasted_scale_tril) * value).sum((-2, -1))  # tr(Sigma^-1 X)
        return (0.5 * (nu - p - 1) * log_det_x - 0.5 * trace - 0.5 * nu * p * math.log(2)
                - nu * self._half_log_det() - fd.mvlgamma(nu / 2, p))

    def entropy(self):
        nu, p = self.df, self._event_shape[-1]
        psi_p = fd.digamma(nu.unsqueeze(-1) / 2 - fd.arange(p, dtype=nu.dtype, device=nu.device) / 2).sum(-1)
        return ((p + 1) * self._half_log_det() + 0.5 * p * (p + 1) * math.log(2) + fd.mvlgamma(nu / 2, p)
                - 0.5 * (nu - p - 1) * psi_p + 0.5 * nu * p)
