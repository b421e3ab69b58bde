"""kl_divergence(p, q) = E_p[log p - log q], looked up in a registry filled by @register_kl(TypeP, TypeQ).

The most specific registered pair wins (by the classes' method resolution order), as in torch.
"""

import fastdl as fd
import fastdl.nn.functional as F
import math

from fastdl.distributions.bernoulli import Bernoulli
from fastdl.distributions.beta import Beta
from fastdl.distributions.binomial import Binomial
from fastdl.distributions.cauchy import Cauchy
from fastdl.distributions.continuous_bernoulli import ContinuousBernoulli
from fastdl.distributions.geometric import Geometric
from fastdl.distributions.half_normal import HalfNormal
from fastdl.distributions.lowrank_multivariate_normal import LowRankMultivariateNormal
from fastdl.distributions.pareto import Pareto
from fastdl.distributions.transformed_distribution import TransformedDistribution
from fastdl.distributions.categorical import Categorical, OneHotCategorical
from fastdl.distributions.dirichlet import Dirichlet
from fastdl.distributions.distribution import Distribution, sum_rightmost
from fastdl.distributions.exponential import Exponential
from fastdl.distributions.gamma import Gamma
from fastdl.distributions.gumbel import _EULER, Gumbel
from fastdl.distributions.independent import Independent
from fastdl.distributions.laplace import Laplace
from fastdl.distributions.multivariate_normal import MultivariateNormal, _batch_mahalanobis, _half_log_det
from fastdl.distributions.normal import LogNormal, Normal
from fastdl.distributions.poisson import Poisson
from fastdl.distributions.uniform import Uniform

__all__ = ["kl_divergence", "register_kl"]

_KL_REGISTRY = {}
_KL_CACHE = {}


def register_kl(type_p, type_q):
    """Decorator: `@register_kl(Normal, Normal) def kl(p, q): ...`."""
    if not (isinstance(type_p, type) and issubclass(type_p, Distribution)):
        raise TypeError(f"Expected type_p to be a Distribution subclass but got {type_p}")
    if not (isinstance(type_q, type) and issubclass(type_q, Distribution)):
        raise TypeError(f"Expected type_q to be a Distribution subclass but got {type_q}")

    def decorator(fn):
        _KL_REGISTRY[type_p, type_q] = fn
        _KL_CACHE.clear()
        return fn
    return decorator


def _dispatch(type_p, type_q):
    matches = [(type_p.__mro__.index(p), type_q.__mro__.index(q), fn) for (p, q), fn in _KL_REGISTRY.items()
               if issubclass(type_p, p) and issubclass(type_q, q)]
    return min(matches, key=lambda m: m[:2])[2] if matches else None


def kl_divergence(p, q):
    key = (type(p), type(q))
    if key not in _KL_CACHE:
        _KL_CACHE[key] = _dispatch(*key)
    fn = _KL_CACHE[key]
    if fn is None:
        raise NotImplementedError(f"No KL(p || q) is implemented for p type {type(p).__name__} and q type "
                                  f"{type(q).__name__}")
    return fn(p, q)


def _infinite_where(cond, value):
    return fd.where(cond, float("inf"), value)


@register_kl(Normal, Normal)
def _kl_normal_normal(p, q):
    var_ratio = (p.scale / q.scale) ** 2
    t1 = ((p.loc - q.loc) / q.scale) ** 2
    return 0.5 * (var_ratio + t1 - 1 - fd.log(var_ratio))


@register_kl(LogNormal, LogNormal)
def _kl_lognormal_lognormal(p, q):  # KL is invariant under the shared bijection exp
    return _kl_normal_normal(p.base_dist, q.base_dist)


@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli_bernoulli(p, q):
    # p log(p/q) + (1-p) log((1-p)/(1-q)), with log p = -softplus(-logit), log(1-p) = -softplus(logit)
    t1 = p.probs * (F.softplus(-q.logits) - F.softplus(-p.logits))
    t1 = fd.where(p.probs == 0, 0.0, _infinite_where(q.probs == 0, t1))
    t2 = (1 - p.probs) * (F.softplus(q.logits) - F.softplus(p.logits))
    t2 = fd.where(p.probs == 1, 0.0, _infinite_where(q.probs == 1, t2))
    return t1 + t2


@register_kl(Categorical, Categorical)
def _kl_categorical_categorical(p, q):
    p_probs, q_probs = fd.broadcast_tensors(p.probs, q.probs)
    t = p_probs * (p.logits - q.logits)
    t = fd.where(p_probs == 0, 0.0, _infinite_where(q_probs == 0, t))
    return t.sum(-1)


@register_kl(OneHotCategorical, OneHotCategorical)
def _kl_onehotcategorical_onehotcategorical(p, q):
    return _kl_categorical_categorical(p._categorical, q._categorical)


@register_kl(Uniform, Uniform)
def _kl_uniform_uniform(p, q):
    result = fd.log((q.high - q.low) / (p.high - p.low))
    return _infinite_where((q.low > p.low) | (q.high < p.high), result)


@register_kl(Laplace, Laplace)
def _kl_laplace_laplace(p, q):
    scale_ratio = p.scale / q.scale
    loc_abs_diff = (p.loc - q.loc).abs()
    return -fd.log(scale_ratio) + loc_abs_diff / q.scale + scale_ratio * fd.exp(-loc_abs_diff / p.scale) - 1


@register_kl(Exponential, Exponential)
def _kl_exponential_exponential(p, q):
    rate_ratio = q.rate / p.rate
    return rate_ratio - 1 - fd.log(rate_ratio)


@register_kl(MultivariateNormal, MultivariateNormal)
def _kl_mvn_mvn(p, q):
    # 0.5 * (tr(Sq^-1 Sp) + (mq - mp)^T Sq^-1 (mq - mp) - k + log det Sq - log det Sp)
    if p.event_shape != q.event_shape:
        raise ValueError("KL-divergence between two Multivariate Normals with different event shapes cannot be "
                         "computed")
    Lp, Lq = p._unbroadcasted_scale_tril, q._unbroadcasted_scale_tril
    k = p.event_shape[0]
    batch = fd.broadcast_shapes(tuple(Lp.shape[:-2]), tuple(Lq.shape[:-2]))
    full = tuple(batch) + (k, k)
    trace = (fd.linalg.solve_triangular(Lq.expand(full), Lp.expand(full), upper=False) ** 2).sum((-2, -1))
    maha = _batch_mahalanobis(Lq, q.loc - p.loc)
    return _half_log_det(Lq) - _half_log_det(Lp) + 0.5 * (trace + maha - k)


@register_kl(Independent, Independent)
def _kl_independent_independent(p, q):
    if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
        raise NotImplementedError
    return sum_rightmost(kl_divergence(p.base_dist, q.base_dist), p.reinterpreted_batch_ndims)




@register_kl(Gamma, Gamma)
def _kl_gamma_gamma(p, q):
    a, b = p.concentration, q.concentration
    return (b * fd.log(p.rate / q.rate) + fd.lgamma(b) - fd.lgamma(a) + (a - b) * fd.digamma(a)
            + (q.rate - p.rate) * a / p.rate)


@register_kl(Beta, Beta)
def _kl_beta_beta(p, q):
    p1, p0, q1, q0 = p.concentration1, p.concentration0, q.concentration1, q.concentration0
    sp, sq = p1 + p0, q1 + q0
    lbeta_ratio = (fd.lgamma(q1) + fd.lgamma(q0) - fd.lgamma(sq)) - (fd.lgamma(p1) + fd.lgamma(p0) - fd.lgamma(sp))
    return lbeta_ratio + (p1 - q1) * fd.digamma(p1) + (p0 - q0) * fd.digamma(p0) + (sq - sp) * fd.digamma(sp)


@register_kl(Dirichlet, Dirichlet)
def _kl_dirichlet_dirichlet(p, q):
    sp, sq = p.concentration.sum(-1), q.concentration.sum(-1)
    t1 = fd.lgamma(sp) - fd.lgamma(sq) - (fd.lgamma(p.concentration) - fd.lgamma(q.concentration)).sum(-1)
    e_log = fd.digamma(p.concentration) - fd.digamma(sp).unsqueeze(-1)  # E_p[log x_i]
    return t1 + ((p.concentration - q.concentration) * e_log).sum(-1)


@register_kl(Poisson, Poisson)
def _kl_poisson_poisson(p, q):
    return fd.xlogy(p.rate, p.rate) - fd.xlogy(p.rate, q.rate) - (p.rate - q.rate)


@register_kl(Gumbel, Gumbel)
def _kl_gumbel_gumbel(p, q):
    ratio = p.scale / q.scale
    dloc = (p.loc - q.loc) / q.scale
    return (-fd.log(ratio) + dloc + ratio * _EULER + fd.exp(fd.lgamma(1 + ratio) - dloc)) - (1 + _EULER)


@register_kl(Binomial, Binomial)
def _kl_binomial_binomial(p, q):
    if bool((p.total_count < q.total_count).any()):
        raise NotImplementedError("KL between Binomials where q.total_count > p.total_count is not implemented")
    kl = p.total_count * (p.probs * (p.logits - q.logits) + fd.log1p(-p.probs) - fd.log1p(-q.probs))
    return _infinite_where(p.total_count > q.total_count, kl)


@register_kl(Cauchy, Cauchy)
def _kl_cauchy_cauchy(p, q):
    # Chyzak and Nielsen (2019)
    return fd.log(((p.scale + q.scale) ** 2 + (p.loc - q.loc) ** 2) / (4 * p.scale * q.scale))


@register_kl(Geometric, Geometric)
def _kl_geometric_geometric(p, q):
    return -p.entropy() - fd.log1p(-q.probs) / p.probs - q.logits


@register_kl(HalfNormal, HalfNormal)
def _kl_halfnormal_halfnormal(p, q):
    var_ratio = (p.scale / q.scale) ** 2
    return 0.5 * (var_ratio - 1 - fd.log(var_ratio))


@register_kl(TransformedDistribution, TransformedDistribution)
def _kl_transformed_transformed(p, q):
    # KL is invariant under a shared bijection
    if p.transforms != q.transforms or tuple(p.event_shape) != tuple(q.event_shape):
        raise NotImplementedError("KL between TransformedDistributions needs the same transforms and event shape")
    return kl_divergence(p.base_dist, q.base_dist)


# ---- Gaussians with low-rank covariance: the closed form on dense matrices (k x k) -------------------------------
def _gaussian_parts(d):
    """(covariance, precision, log det covariance) of a MultivariateNormal or LowRankMultivariateNormal."""
    if isinstance(d, LowRankMultivariateNormal):
        return d.covariance_matrix, d.precision_matrix, d._log_det()
    return d.covariance_matrix, d.precision_matrix, 2 * _half_log_det(d._unbroadcasted_scale_tril)


def _kl_gaussians(p, q):
    if p.event_shape != q.event_shape:
        raise ValueError("KL-divergence between two (Low Rank) Multivariate Normals with different event shapes "
                         "cannot be computed")
    cov_p, _, logdet_p = _gaussian_parts(p)
    _, prec_q, logdet_q = _gaussian_parts(q)
    diff = (q.loc - p.loc).unsqueeze(-1)
    maha = (diff * (prec_q @ diff)).sum((-2, -1))
    trace = (prec_q * cov_p).sum((-2, -1))
    return 0.5 * (trace + maha - p.event_shape[0] + logdet_q - logdet_p)


register_kl(LowRankMultivariateNormal, LowRankMultivariateNormal)(_kl_gaussians)
register_kl(LowRankMultivariateNormal, MultivariateNormal)(_kl_gaussians)
register_kl(MultivariateNormal, LowRankMultivariateNormal)(_kl_gaussians)


# ---- pairs of different families: KL(p || q) = -H(p) - E_p[log q(X)] -------------------------------------------
# E_p[log q] needs a few expectations under p: its mean and variance, E[log X] and E[log(1 - X)] on (0, 1)-type
# supports, and the moment generating function at -1/scale for a Gumbel q. Where p's support reaches outside q's,
# the KL is infinite.
def _inf_like(x):
    return fd.full_like(x, float("inf"))


def _uniform_e_log(low, high):
    """E[log X], X ~ Uniform(low, high), 0 <= low."""
    return (fd.xlogy(high, high) - high - fd.xlogy(low, low) + low) / (high - low)


def _e_log(p):
    """E_p[log X] for p on the positive half-line."""
    if isinstance(p, Beta):
        return fd.digamma(p.concentration1) - fd.digamma(p.concentration1 + p.concentration0)
    if isinstance(p, Exponential):
        return -_EULER - fd.log(p.rate)
    if isinstance(p, Gamma):
        return fd.digamma(p.concentration) - fd.log(p.rate)
    if isinstance(p, Pareto):
        return fd.log(p.scale) + p.alpha.reciprocal()
    if isinstance(p, Uniform):
        return _uniform_e_log(p.low.clamp(min=0.0), p.high.clamp(min=0.0))
    raise NotImplementedError


def _e_log1m(p):
    """E_p[log(1 - X)] for p on (0, 1)."""
    if isinstance(p, Beta):
        return fd.digamma(p.concentration0) - fd.digamma(p.concentration1 + p.concentration0)
    if isinstance(p, Uniform):
        return _uniform_e_log((1 - p.high).clamp(min=0.0), (1 - p.low).clamp(min=0.0))
    raise NotImplementedError


def _mgf(p, t):
    """E_p[e^(t X)]."""
    if isinstance(p, Exponential):
        return p.rate / (p.rate - t)
    if isinstance(p, Gamma):
        return (1 - t / p.rate) ** (-p.concentration)
    if isinstance(p, Normal):
        return fd.exp(p.loc * t + 0.5 * (p.scale * t) ** 2)
    if isinstance(p, Uniform):
        return (fd.exp(t * p.high) - fd.exp(t * p.low)) / (t * (p.high - p.low))
    raise NotImplementedError


def _support_outside(p, q):
    """True where p's support reaches outside q's (from their bounds; unbounded sides as +-inf)."""
    def bounds(d):
        if isinstance(d, Uniform):
            return d.low, d.high
        if isinstance(d, Pareto):
            return d.scale, None
        if isinstance(d, (Exponential, Gamma)):
            return 0.0, None
        if isinstance(d, (Beta, ContinuousBernoulli)):
            return 0.0, 1.0
        return None, None
    (pl, ph), (ql, qh) = bounds(p), bounds(q)
    out = fd.zeros((), dtype=fd.bool)
    if ql is not None:
        out = out | (fd.as_tensor(pl < ql) if pl is not None else fd.ones((), dtype=fd.bool))
    if qh is not None:
        out = out | (fd.as_tensor(ph > qh) if ph is not None else fd.ones((), dtype=fd.bool))
    return out


def _cross_entropy_term(p, q):
    """E_p[log q(X)], assuming p's support lies in q's."""
    if isinstance(q, Normal):
        sq = (p.mean - q.loc) ** 2 + p.variance
        return -fd.log(q.scale) - 0.5 * math.log(2 * math.pi) - sq / (2 * q.scale ** 2)
    if isinstance(q, Exponential):
        return fd.log(q.rate) - q.rate * p.mean
    if isinstance(q, Gamma):
        a = q.concentration
        return a * fd.log(q.rate) - fd.lgamma(a) + (a - 1) * _e_log(p) - q.rate * p.mean
    if isinstance(q, Gumbel):  # log q = -log s - z - e^(-z), z = (x - loc) / s
        z = (p.mean - q.loc) / q.scale
        return -fd.log(q.scale) - z - fd.exp(q.loc / q.scale) * _mgf(p, -1 / q.scale)
    if isinstance(q, Laplace):  # p Normal: E|X - loc| is the folded normal's mean
        d, s = p.loc - q.loc, p.scale
        e_abs = s * math.sqrt(2 / math.pi) * fd.exp(-d ** 2 / (2 * s ** 2)) + d * fd.erf(d / (s * math.sqrt(2)))
        return -fd.log(2 * q.scale) - e_abs / q.scale
    if isinstance(q, Uniform):
        return -fd.log(q.high - q.low)
    if isinstance(q, Beta):
        a, b = q.concentration1, q.concentration0
        log_beta = fd.lgamma(a) + fd.lgamma(b) - fd.lgamma(a + b)
        return (a - 1) * _e_log(p) + (b - 1) * _e_log1m(p) - log_beta
    if isinstance(q, ContinuousBernoulli):  # log q = log C + x logit(lambda) + log(1 - lambda)
        return q._log_norm() + p.mean * q.logits + fd.log1p(-q.probs)
    if isinstance(q, Pareto):
        return fd.log(q.alpha) + q.alpha * fd.log(q.scale) - (q.alpha + 1) * _e_log(p)
    raise NotImplementedError


def _kl_cross(p, q):
    kl = -p.entropy() - _cross_entropy_term(p, q)
    return _infinite_where(_support_outside(p, q), kl)


def _kl_infinite(p, q):
    return _inf_like(p.mean)


_CROSS = {
    Beta: (ContinuousBernoulli, Exponential, Gamma, Normal, Uniform),
    ContinuousBernoulli: (ContinuousBernoulli, Exponential, Normal, Uniform),
    Exponential: (Gamma, Gumbel, Normal),
    Gamma: (Exponential, Gumbel, Normal),
    Gumbel: (Normal,),
    Laplace: (Normal,),
    Normal: (Gumbel, Laplace),
    Pareto: (Exponential, Gamma, Normal, Pareto),
    Uniform: (Beta, ContinuousBernoulli, Exponential, Gamma, Gumbel, Normal, Pareto),
}
# p's support is unbounded where q's is bounded (or starts at q's scale): always infinite
_INFINITE = {
    Beta: (Pareto,), ContinuousBernoulli: (Pareto,),
    Exponential: (Beta, ContinuousBernoulli, Pareto, Uniform), Gamma: (Beta, ContinuousBernoulli, Pareto, Uniform),
    Gumbel: (Beta, ContinuousBernoulli, Exponential, Gamma, Pareto, Uniform),
    Laplace: (Beta, ContinuousBernoulli, Exponential, Gamma, Pareto, Uniform),
    Normal: (Beta, ContinuousBernoulli, Exponential, Gamma, Pareto, Uniform),
    Pareto: (Beta, ContinuousBernoulli, Uniform),
}
for _p, _qs in _CROSS.items():
    for _q in _qs:
        register_kl(_p, _q)(_kl_cross)
for _p, _qs in _INFINITE.items():
    for _q in _qs:
        register_kl(_p, _q)(_kl_infinite)


@register_kl(Bernoulli, Poisson)
def _kl_bernoulli_poisson(p, q):
    return -p.entropy() - (p.probs * fd.log(q.rate) - q.rate)


@register_kl(Poisson, Bernoulli)
@register_kl(Poisson, Binomial)
def _kl_poisson_infinity(p, q):
    return _inf_like(p.rate)
