"""fastdl.distributions: probability distributions with torch.distributions' names and semantics.

    from fastdl.distributions import Normal, kl_divergence
    q = Normal(mu, sigma)
    z = q.rsample()                                   # reparameterised: gradients reach mu and sigma
    kl = kl_divergence(q, Normal(0.0, 1.0)).sum()

One file per family; the KL table is in kl.py, constraints (supports, parameter checks) in constraints.py,
transforms (bijections with log-Jacobians) in transforms.py, and biject_to / transform_to in
constraint_registry.py. Families defined by a transform of another are TransformedDistributions.
"""
from fastdl.distributions import constraints, transforms
from fastdl.distributions.constraint_registry import biject_to, transform_to
from fastdl.distributions.continuous_bernoulli import ContinuousBernoulli
from fastdl.distributions.fishersnedecor import FisherSnedecor
from fastdl.distributions.generalized_pareto import GeneralizedPareto
from fastdl.distributions.inverse_gamma import InverseGamma
from fastdl.distributions.kumaraswamy import Kumaraswamy
from fastdl.distributions.lkj_cholesky import LKJCholesky
from fastdl.distributions.logistic_normal import LogisticNormal
from fastdl.distributions.lowrank_multivariate_normal import LowRankMultivariateNormal
from fastdl.distributions.mixture_same_family import MixtureSameFamily
from fastdl.distributions.multinomial import Multinomial
from fastdl.distributions.negative_binomial import NegativeBinomial
from fastdl.distributions.pareto import Pareto
from fastdl.distributions.relaxed_bernoulli import LogitRelaxedBernoulli, RelaxedBernoulli
from fastdl.distributions.relaxed_categorical import ExpRelaxedCategorical, RelaxedOneHotCategorical
from fastdl.distributions.transformed_distribution import TransformedDistribution
from fastdl.distributions.transforms import (
    AbsTransform, AffineTransform, CatTransform, ComposeTransform, CorrCholeskyTransform,
    CumulativeDistributionTransform, ExpTransform, IndependentTransform, LowerCholeskyTransform,
    PositiveDefiniteTransform, PowerTransform, ReshapeTransform, SigmoidTransform, SoftmaxTransform,
    SoftplusTransform, StackTransform, StickBreakingTransform, TanhTransform, Transform, identity_transform,
)
from fastdl.distributions.von_mises import VonMises
from fastdl.distributions.weibull import Weibull
from fastdl.distributions.wishart import Wishart
from fastdl.distributions.bernoulli import Bernoulli
from fastdl.distributions.beta import Beta
from fastdl.distributions.binomial import Binomial
from fastdl.distributions.categorical import Categorical, OneHotCategorical, OneHotCategoricalStraightThrough
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
    "AbsTransform", "AffineTransform", "Bernoulli", "Beta", "Binomial", "CatTransform", "Categorical", "Cauchy",
    "Chi2", "ComposeTransform", "ContinuousBernoulli", "CorrCholeskyTransform", "CumulativeDistributionTransform",
    "Dirichlet", "Distribution", "ExpRelaxedCategorical", "ExpTransform", "Exponential", "FisherSnedecor", "Gamma",
    "GeneralizedPareto", "Geometric", "Gumbel", "HalfCauchy", "HalfNormal", "Independent", "IndependentTransform",
    "InverseGamma", "Kumaraswamy", "LKJCholesky", "Laplace", "LogNormal", "LogisticNormal", "LogitRelaxedBernoulli",
    "LowRankMultivariateNormal", "LowerCholeskyTransform", "MixtureSameFamily", "Multinomial", "MultivariateNormal",
    "NegativeBinomial", "Normal", "OneHotCategorical", "OneHotCategoricalStraightThrough", "Pareto", "Poisson", "PositiveDefiniteTransform",
    "PowerTransform", "RelaxedBernoulli", "RelaxedOneHotCategorical", "ReshapeTransform", "SigmoidTransform",
    "SoftmaxTransform", "SoftplusTransform", "StackTransform", "StickBreakingTransform", "StudentT", "TanhTransform",
    "Transform", "TransformedDistribution", "Uniform", "VonMises", "Weibull", "Wishart", "biject_to", "constraints",
    "identity_transform", "kl_divergence", "register_kl", "transform_to", "transforms",
]
