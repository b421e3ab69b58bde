"""LowRankMultivariateNormal(loc, cov_factor W, cov_diag D): a normal over vectors of k with covariance
W W^T + diag(D), W of shape (k, r). Everything runs through the r x r capacitance C = I + W^T D^-1 W
(Woodbury and the matrix determinant lemma): log det = log det C + sum log D, and
x^T Sigma^-1 x = x^T D^-1 x - |L_C^-1 W^T D^-1 x|^2. Cost O(k r^2), never a k x k factorisation."""
import math

import fastdl as fd
import fastdl.linalg as LA
from fastdl.distributions import constraints
from fastdl.distributions.distribution import Distribution, lazy_property

__all__ = ["LowRankMultivariateNormal"]


class LowRankMultivariateNormal(Distribution):
    arg_constraints = {"loc": constraints.real_vector, "cov_factor": constraints.independent(constraints.real, 2),
                       "cov_diag": constraints.independent(constraints.positive, 1)}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, cov_factor, cov_diag, validate_args=None):
        if loc.ndim < 1:
            raise ValueError("loc must be at least one-dimensional.")
        k = loc.shape[-1]
        if cov_factor.ndim < 2:
            raise ValueError("cov_factor must be at least two-dimensional, with optional leading batch dimensions")
        if cov_factor.shape[-2] != k:
            raise ValueError(f"cov_factor must be a batch of matrices with shape {k} x m, got {tuple(cov_factor.shape)}")
        if tuple(cov_diag.shape[-1:]) != (k,):
            raise ValueError(f"cov_diag must be a batch of vectors with shape {(k,)}, got {tuple(cov_diag.shape)}")
        batch = tuple(fd.broadcast_shapes(tuple(loc.shape[:-1]), tuple(cov_factor.shape[:-2]),
                                          tuple(cov_diag.shape[:-1])))
        r = cov_factor.shape[-1]
        self.loc = loc.expand(batch + (k,))
        self.cov_factor = cov_factor.expand(batch + (k, r))
        self.cov_diag = cov_diag.expand(batch + (k,))
        self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag = cov_factor, cov_diag
        super().__init__(batch, (k,), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = object.__new__(LowRankMultivariateNormal)
        new.__dict__.update(self.__dict__)
        for name in ("_capacitance_tril", "covariance_matrix", "scale_tril", "precision_matrix"):
            new.__dict__.pop(name, None)
        batch = tuple(batch_shape)
        k, r = self._event_shape[0], self.cov_factor.shape[-1]
        new.loc, new.cov_factor = self.loc.expand(batch + (k,)), self.cov_factor.expand(batch + (k, r))
        new.cov_diag = self.cov_diag.expand(batch + (k,))
        new._batch_shape = fd.Size(batch)
        return new

    @lazy_property
    def _capacitance_tril(self):
        """Cholesky factor of C = I + W^T D^-1 W."""
        w, d = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        wt_dinv = w.mT / d.unsqueeze(-2)
        r = w.shape[-1]
        cap = wt_dinv @ w + fd.eye(r, dtype=w.dtype, device=w.device)
        return LA.cholesky(cap)

    def _log_det(self):
        half_log_det_c = fd.log(fd.diagonal(self._capacitance_tril, dim1=-2, dim2=-1)).sum(-1)
        return 2 * half_log_det_c + fd.log(self._unbroadcasted_cov_diag).sum(-1)

    mean = mode = property(lambda self: self.loc)

    @lazy_property
    def variance(self):
        var = (self._unbroadcasted_cov_factor ** 2).sum(-1) + self._unbroadcasted_cov_diag
        return var.expand(tuple(self._batch_shape) + tuple(self._event_shape))

    def _full(self, m):
        return m.expand(tuple(self._batch_shape) + tuple(self._event_shape) * 2)

    @lazy_property
    def covariance_matrix(self):
        w = self._unbroadcasted_cov_factor
        return self._full(w @ w.mT + fd.diag_embed(self._unbroadcasted_cov_diag))

    @lazy_property
    def scale_tril(self):
        return LA.cholesky(self.covariance_matrix)

    @lazy_property
    def precision_matrix(self):
        # Woodbury: D^-1 - D^-1 W C^-1 W^T D^-1 = D^-1 - A^T A with A = L_C^-1 W^T D^-1
        w, d = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        a = LA.solve_triangular(self._capacitance_tril, w.mT / d.unsqueeze(-2), upper=False)
        return self._full(fd.diag_embed(d.reciprocal()) - a.mT @ a)

    def rsample(self, sample_shape=()):
        shape = tuple(self._extended_shape(sample_shape))
        r = self.cov_factor.shape[-1]
        eps_w = fd.randn(shape[:-1] + (r,), dtype=self.loc.dtype, device=self.loc.device)
        eps_d = fd.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + (self._unbroadcasted_cov_factor @ eps_w.unsqueeze(-1)).squeeze(-1) + \
            self._unbroadcasted_cov_diag.sqrt() * eps_d

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        x = value - self.loc
        w, d = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        wt_dinv_x = ((w.mT / d.unsqueeze(-2)) @ x.unsqueeze(-1))  # (..., r, 1), broadcast over samples
        lc = self._capacitance_tril
        batch = tuple(fd.broadcast_shapes(tuple(lc.shape[:-2]), tuple(wt_dinv_x.shape[:-2])))
        r = lc.shape[-1]
        y = LA.solve_triangular(lc.expand(batch + (r, r)), wt_dinv_x.expand(batch + (r, 1)), upper=False)
        maha = (x * x / d).sum(-1) - (y.squeeze(-1) ** 2).sum(-1)
        k = self._event_shape[0]
        return -0.5 * (k * math.log(2 * math.pi) + maha + self._log_det())

    def entropy(self):
        k = self._event_shape[0]
        h = 0.5 * (k * (1.0 + math.log(2 * math.pi)) + self._log_det())
        return h.expand(tuple(self._batch_shape))
