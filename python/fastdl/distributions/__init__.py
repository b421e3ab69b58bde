"""fastdl.distributions: probability distributions with torch.distributions' names and semantics.

    from fastdl.distributions import Normal, kl_divergence
    q = Normal(mu, sigma)
    z = q.rsample()                                   # reparameterised: gradients reach mu and sigma
    kl = kl_divergence(q, Normal(0.0, 1.0)).sum()

One file per family; the KL table is in kl.py, constraints (supports, parameter checks) in constraints.py.
"""
from fastdl.distributions import constraints
from fastdl.distributions.bernoulli import Bernoulli
from fastdl.distributions.categorical import Categorical, OneHotCategorical
from fastdl.distributions.distribution import Distribution
from fastdl.distributions.exponential import Exponential
from fastdl.distributions.independent import Independent
from fastdl.distributions.kl import kl_divergence, register_kl
from fastdl.distributions.laplace import Laplace
from fastdl.distributions.multivariate_normal import MultivariateNormal
from fastdl.distributions.normal import LogNormal, Normal
from fastdl.distributions.uniform import Uniform

__all__ = [
    "Bernoulli", "Categorical", "Distribution", "Exponential", "Independent", "Laplace", "LogNormal",
    "MultivariateNormal", "Normal", "OneHotCategorical", "Uniform", "constraints", "kl_divergence", "register_kl",
]
