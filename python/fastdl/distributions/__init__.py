"""fastdl.distributions: probability distributions with torch.distributions' names and semantics.

    from fastdl.distributions import Normal, kl_divergence
    q = Normal(mu, sigma)
    z = q.rsample()                                   # reparameterised: gradients reach mu and sigma
    kl = kl_divergence(q, Normal(0.0, 1.0)).sum()

One file per family; the KL table is in kl.py, constraints (supports, parameter checks) in constraints.py.
"""
from fastdl.distributions import constraints
from fastdl.distributions.bernoulli import Bernoulli
from fastdl.distributions.beta import Beta
from fastdl.distributions.binomial import Binomial
from fastdl.distributions.categorical import Categorical, OneHotCategorical
from fastdl.distributions.cauchy import Cauchy, HalfCauchy
from fastdl.distributions.chi2 import Chi2
from fastdl.distributions.dirichlet import Dirichlet
from fastdl.distributions.distribution import Distribution
from fastdl.distributions.exponential import Exponential
from fastdl.distributions.gamma import Gamma
from fastdl.distributions.geometric import Geometric
from fastdl.distributions.gumbel import Gumbel
from fastdl.distributions.half_normal import HalfNormal
from fastdl.distributions.independent import Independent
from fastdl.distributions.kl import kl_divergence, register_kl
from fastdl.distributions.laplace import Laplace
from fastdl.distributions.multivariate_normal import MultivariateNormal
from fastdl.distributions.normal import LogNormal, Normal
from fastdl.distributions.poisson import Poisson
from fastdl.distributions.studentT import StudentT
from fastdl.distributions.uniform import Uniform

__all__ = [
    "Bernoulli", "Beta", "Binomial", "Categorical", "Cauchy", "Chi2", "Dirichlet", "Distribution", "Exponential",
    "Gamma", "Geometric", "Gumbel", "HalfCauchy", "HalfNormal", "Independent", "Laplace", "LogNormal",
    "MultivariateNormal", "Normal", "OneHotCategorical", "Poisson", "StudentT", "Uniform", "constraints",
    "kl_divergence", "register_kl",
]
