"""kl_divergence over every pair that torch.distributions registers (where fastdl has both families): closed
forms, cross-family cross entropies and the infinite pairs (disjoint supports), against torch, on random
parameters chosen so that some entries are finite and some infinite. float64."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.distributions as T  # noqa: E402
import torch.distributions.kl as TK  # noqa: E402

import fastdl.distributions as D  # noqa: E402
from test_distributions import close, f, t  # noqa: E402


def _params(name, r):
    """Positional / keyword numpy parameters of a batch of 4 distributions of family `name`."""
    u = lambda lo, hi, *s: r.uniform(lo, hi, size=s or (4,))  # noqa: E731
    return {
        "Normal": ((r.normal(size=4), u(0.5, 2)), {}),
        "Laplace": ((r.normal(size=4), u(0.5, 2)), {}),
        "Gumbel": ((r.normal(size=4), u(0.5, 2)), {}),
        "Cauchy": ((r.normal(size=4), u(0.5, 2)), {}),
        "HalfNormal": ((u(0.5, 2),), {}),
        "Exponential": ((u(0.5, 2),), {}),
        "Gamma": ((u(0.5, 3), u(0.5, 2)), {}),
        "Beta": ((u(0.5, 3), u(0.5, 3)), {}),
        "ContinuousBernoulli": ((), {"probs": np.array([0.2, 0.7, 0.5, 0.9])}),
        "Pareto": ((u(0.1, 0.5), u(1.5, 4)), {}),
        # some inside [0, 1] and above Pareto's scale, some not
        "Uniform": ((np.array([0.1, -0.2, 0.55, 0.3]), np.array([0.8, 0.9, 1.2, 0.95])), {}),
        "Bernoulli": ((), {"probs": u(0.1, 0.9)}),
        "Binomial": ((), {"total_count": np.array([5.0, 5.0, 5.0, 5.0]), "probs": u(0.1, 0.9)}),
        "Geometric": ((), {"probs": u(0.1, 0.9)}),
        "Poisson": ((u(0.5, 3),), {}),
        "Categorical": ((), {"probs": r.dirichlet(np.ones(3), size=4)}),
        "OneHotCategorical": ((), {"probs": r.dirichlet(np.ones(3), size=4)}),
        "Dirichlet": ((u(0.5, 3, 4, 3),), {}),
        "MultivariateNormal": ((r.normal(size=(4, 3)),), {"scale_tril": np.tril(r.normal(size=(4, 3, 3)), -1)
                                                          + np.eye(3) * u(0.5, 2, 4, 1, 1)}),
        "LowRankMultivariateNormal": ((r.normal(size=(4, 3)), r.normal(size=(4, 3, 2)), u(0.5, 2, 4, 3)), {}),
        "LogNormal": ((r.normal(size=4), u(0.5, 2)), {}),
    }[name]


def _make(lib, name, seed):
    args, kwargs = _params(name, np.random.default_rng(seed))
    conv = f if lib is D else t
    return getattr(lib, name)(*[conv(a) for a in args], **{k: conv(v) for k, v in kwargs.items()})


PAIRS = sorted({(p.__name__, q.__name__) for p, q in TK._KL_REGISTRY
                if hasattr(D, p.__name__) and hasattr(D, q.__name__)
                and p.__name__ not in ("Independent", "TransformedDistribution", "ExponentialFamily")})


@pytest.mark.parametrize("pair", PAIRS, ids=[f"{p}-{q}" for p, q in PAIRS])
def test_kl_against_torch(pair):
    pname, qname = pair
    tol = 1e-7 if "ContinuousBernoulli" in pair else 1e-9  # torch's Taylor switch near 1/2 is at float64 noise
    a = D.kl_divergence(_make(D, pname, 1), _make(D, qname, 2))
    b = TK.kl_divergence(_make(T, pname, 1), _make(T, qname, 2))
    close(a, b, atol=tol, rtol=tol)


def test_kl_finite_values_checked_by_monte_carlo():
    """Independent of torch: a cross-family KL equals E_p[log p - log q] on 200000 draws."""
    import fastdl as fd
    fd.manual_seed(0)
    for p, q in ((D.Gamma(f(2.0), f(1.5)), D.Normal(f(1.0), f(2.0))),
                 (D.Uniform(f(0.2), f(0.7)), D.Beta(f(2.0), f(3.0))),
                 (D.Exponential(f(1.3)), D.Gumbel(f(0.5), f(1.5))),
                 (D.Normal(f(0.3), f(0.8)), D.Laplace(f(-0.2), f(1.1))),
                 (D.Pareto(f(0.5), f(3.0)), D.Gamma(f(2.0), f(1.0)))):
        x = p.sample((200000,))
        mc = (p.log_prob(x) - q.log_prob(x)).numpy()
        assert abs(mc.mean() - float(D.kl_divergence(p, q))) < 4 * mc.std() / np.sqrt(mc.size) + 1e-3


def test_kl_transformed_and_binomial_rules():
    p = D.TransformedDistribution(D.Normal(f(0.0), f(1.0)), [D.ExpTransform()])
    q = D.TransformedDistribution(D.Normal(f(1.0), f(2.0)), [D.ExpTransform()])
    close(D.kl_divergence(p, q), D.kl_divergence(p.base_dist, q.base_dist))
    with pytest.raises(NotImplementedError):
        D.kl_divergence(p, D.TransformedDistribution(D.Normal(f(1.0), f(2.0)), [D.SigmoidTransform()]))
    with pytest.raises(NotImplementedError):
        D.kl_divergence(D.Binomial(f(3.0), probs=f(0.5)), D.Binomial(f(5.0), probs=f(0.5)))
    assert float(D.kl_divergence(D.Binomial(f(5.0), probs=f(0.5)), D.Binomial(f(3.0), probs=f(0.5)))) == np.inf
