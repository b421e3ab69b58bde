"""kl_divergence(p, q) = E_p[log p - log q], looked up in a registry filled by @register_kl(TypeP, TypeQ).

The most specific registered pair wins (by the classes' method resolution order), as in torch.
"""

import fastdl as fd
import fastdl.nn.functional as F
from fastdl.distributions.bernoulli import Bernoulli
from fastdl.distributions.beta import Beta
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
