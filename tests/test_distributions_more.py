"""More fastdl.distributions families against torch.distributions: densities, moments, cdf/icdf, entropy,
sampling statistics, shapes, validation, reparameterised gradients and KL. float64, fixed seeds."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.distributions as T  # noqa: E402

import fastdl as fd  # noqa: E402
import fastdl.distributions as D  # noqa: E402
from test_distributions import close, f, t  # noqa: E402  (float64 tensors in both libraries, compared)


# name -> (positional numpy params, numpy values (2, 3, 4), keyword params); params broadcast (3, 1) with (4,)
def _cases(r):
    pos = lambda *s: r.uniform(0.5, 2.5, size=s)  # noqa: E731
    counts = r.integers(0, 6, size=(2, 3, 4)).astype(np.float64)
    return {
        "Cauchy": ((r.normal(size=(3, 1)), pos(4)), r.normal(size=(2, 3, 4)) * 3, {}),
        "HalfCauchy": ((pos(3, 1),), r.exponential(size=(2, 3, 4)) * 2, {}),
        "Gumbel": ((r.normal(size=(3, 1)), pos(4)), r.normal(size=(2, 3, 4)) * 2, {}),
        "HalfNormal": ((pos(3, 4),), r.exponential(size=(2, 3, 4)), {}),
        "Geometric": ((), counts, {"probs": r.uniform(0.1, 0.9, size=(3, 4))}),
        "Geometric_logits": ((), counts, {"logits": r.normal(size=(3, 1))}),
        "Poisson": ((pos(3, 4) * 2,), counts, {}),
        "Binomial": ((), np.minimum(counts, 7), {"total_count": r.integers(7, 10, size=(3, 1)).astype(np.float64),
                                                 "probs": r.uniform(0.1, 0.9, size=(4,))}),
        "Binomial_logits": ((), counts, {"total_count": 8.0, "logits": r.normal(size=(3, 4))}),
        "Gamma": ((r.uniform(0.2, 3, size=(3, 1)), pos(4)), r.gamma(1.5, size=(2, 3, 4)), {}),
        "Chi2": ((r.uniform(0.5, 6, size=(3, 4)),), r.chisquare(3, size=(2, 3, 4)), {}),
        "Beta": ((r.uniform(0.3, 3, size=(3, 1)), r.uniform(0.3, 3, size=(4,))), r.beta(2, 3, size=(2, 3, 4)), {}),
        "StudentT": ((r.uniform(0.5, 6, size=(3, 1)), r.normal(size=(4,)), pos(3, 4)), r.normal(size=(2, 3, 4)) * 3,
                     {}),
        "StudentT_df": ((r.uniform(2.5, 9, size=(3, 4)),), r.standard_t(4, size=(2, 3, 4)), {}),
        "Dirichlet": ((r.uniform(0.3, 3, size=(3, 5)),), r.dirichlet(np.ones(5), size=(2, 3)), {}),
    }


def _build(lib, name, args, kwargs):
    conv = f if lib is D else t
    cls = getattr(lib, name.split("_")[0])
    return cls(*[conv(a) for a in args],
               **{k: conv(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()})


FAMILIES = list(_cases(np.random.default_rng(0)))
HAS_CDF = {"Cauchy", "HalfCauchy", "Gumbel", "HalfNormal", "Gamma", "Chi2"}
HAS_ICDF = {"Cauchy", "HalfCauchy", "Gumbel", "HalfNormal"}
NO_ENTROPY = {"Poisson", "Binomial"}  # Binomial's needs a homogeneous total_count: checked below


@pytest.mark.parametrize("name", FAMILIES)
def test_against_torch(name):
    args, value, kwargs = _cases(np.random.default_rng(FAMILIES.index(name) + 1))[name]
    d, e = _build(D, name, args, kwargs), _build(T, name, args, kwargs)
    assert tuple(d.batch_shape) == tuple(e.batch_shape) and tuple(d.event_shape) == tuple(e.event_shape)
    close(d.log_prob(f(value)), e.log_prob(t(value)))
    if name.split("_")[0] not in NO_ENTROPY or name == "Binomial_logits":
        close(d.entropy(), e.entropy())
    for attr in ("mean", "variance", "stddev", "mode"):
        close(getattr(d, attr), getattr(e, attr))
    if name.split("_")[0] in HAS_CDF:
        close(d.cdf(f(value)), e.cdf(t(value)), atol=1e-9)
    if name.split("_")[0] in HAS_ICDF:
        q = np.random.default_rng(1).uniform(0.01, 0.99, size=(2, 3, 4))
        close(d.icdf(f(q)), e.icdf(t(q)), atol=1e-9)
    assert d.has_rsample == e.has_rsample
    assert tuple(d.sample((2, 3)).shape) == tuple(e.sample((2, 3)).shape)
    assert tuple(d.sample().shape) == tuple(e.sample().shape)
    x = d.expand((5,) + tuple(d.batch_shape))
    assert tuple(x.batch_shape) == (5,) + tuple(d.batch_shape)
    assert tuple(x.sample().shape) == tuple(x.batch_shape) + tuple(d.event_shape)
    close(x.log_prob(f(value[0])), e.expand((5,) + tuple(e.batch_shape)).log_prob(t(value[0])))
    close(x.mean, e.expand((5,) + tuple(e.batch_shape)).mean)


def _moments(name):
    """A distribution with finite mean and variance, and its sample (20000 draws, fixed seed)."""
    r = np.random.default_rng(2)
    d = {
        "Gumbel": lambda: D.Gumbel(f([0.3, -1.0]), f([1.5, 0.5])),
        "HalfNormal": lambda: D.HalfNormal(f([0.7, 2.0])),
        "Geometric": lambda: D.Geometric(probs=f([0.2, 0.7])),
        "Poisson": lambda: D.Poisson(f([0.4, 3.0, 30.0])),
        "Binomial": lambda: D.Binomial(f([5.0, 40.0]), probs=f(r.uniform(0.1, 0.9, (2,)))),
        "Gamma": lambda: D.Gamma(f([0.05, 0.4, 1.0, 2.5, 30.0]), f([1.0, 2.0, 0.5, 1.0, 3.0])),
        "Chi2": lambda: D.Chi2(f([0.7, 1.0, 5.0])),
        "Beta": lambda: D.Beta(f([0.3, 2.0, 5.0]), f([0.6, 0.4, 3.0])),
        "StudentT": lambda: D.StudentT(f([12.0, 20.0]), f([0.5, -1.0]), f([2.0, 0.5])),
        "Dirichlet": lambda: D.Dirichlet(f([[0.4, 1.0, 3.0], [2.0, 0.2, 5.0]])),
    }[name]()
    fd.manual_seed(1234)
    return d, d.sample((20000,)).numpy()


@pytest.mark.parametrize("name", ["Gumbel", "HalfNormal", "Geometric", "Poisson", "Binomial", "Gamma", "Chi2", "Beta",
                                  "StudentT", "Dirichlet"])
def test_sample_moments(name):
    d, x = _moments(name)
    n = x.shape[0]
    mean, var = d.mean.numpy(), d.variance.numpy()
    np.testing.assert_array_less(np.abs(x.mean(0) - mean), 5 * np.sqrt(var / n))
    # the sample variance's standard error, with the fourth moment estimated from the draws
    m4 = ((x - mean) ** 4).mean(0)
    np.testing.assert_array_less(np.abs(x.var(0) - var), 5 * np.sqrt(np.maximum(m4 - var ** 2, 1e-12) / n))
    if d.support.is_discrete:
        assert np.all(x == np.round(x)) and np.all(x >= 0)


@pytest.mark.parametrize("name", ["Cauchy", "HalfCauchy"])
def test_heavy_tailed_quantiles(name):
    d = D.Cauchy(f([0.5]), f([2.0])) if name == "Cauchy" else D.HalfCauchy(f([2.0]))
    fd.manual_seed(5)
    x = d.sample((20000,)).numpy()[:, 0]
    for q in (0.25, 0.5, 0.75):  # empirical cdf at the true quantiles: binomial standard error
        frac = np.mean(x <= d.icdf(f([q])).numpy()[0])
        assert abs(frac - q) < 5 * math.sqrt(q * (1 - q) / x.size)


@pytest.mark.parametrize("name", ["Cauchy", "HalfCauchy", "Gumbel", "HalfNormal"])
def test_rsample_gradients(name):
    """rsample is icdf(u): its gradient in scale is x / scale for the scale families (loc = 0)."""
    scale = fd.tensor([0.7, 1.9], dtype=fd.float64, requires_grad=True)
    d = {"Cauchy": lambda: D.Cauchy(0.0, scale), "HalfCauchy": lambda: D.HalfCauchy(scale),
         "Gumbel": lambda: D.Gumbel(0.0, scale), "HalfNormal": lambda: D.HalfNormal(scale)}[name]()
    fd.manual_seed(3)
    x = d.rsample((50,))
    x.sum().backward()
    close(scale.grad, (x.detach() / scale.detach()).sum(0), atol=1e-9)


def test_binomial_entropy_and_support():
    d, e = D.Binomial(6, probs=f([0.0, 0.3, 1.0])), T.Binomial(6, probs=t([0.0, 0.3, 1.0]))
    close(d.entropy(), e.entropy(), atol=1e-9)
    close(d.enumerate_support(), e.enumerate_support())
    v = np.array([0.0, 2.0, 6.0])
    close(d.log_prob(f(v)), e.log_prob(t(v)), atol=1e-9)
    with pytest.raises(NotImplementedError):
        D.Binomial(f([3.0, 4.0]), probs=f([0.5, 0.5])).entropy()


def test_geometric_edge_probs():
    d, e = D.Geometric(probs=f([1.0, 0.5])), T.Geometric(probs=t([1.0, 0.5]))
    close(d.log_prob(f([0.0, 3.0])), e.log_prob(t([0.0, 3.0])))
    p = D.Poisson(f([0.0, 2.0]))
    close(p.log_prob(f([0.0, 1.0])), T.Poisson(t([0.0, 2.0])).log_prob(t([0.0, 1.0])))


@pytest.mark.parametrize("bad", [
    lambda: D.Cauchy(0.0, f([1.0, -1.0]), validate_args=True),
    lambda: D.HalfCauchy(f([0.0, 1.0]), validate_args=True),
    lambda: D.Gumbel(f([0.0, 1.0]), f([-2.0, 1.0]), validate_args=True),
    lambda: D.HalfNormal(f([-0.5]), validate_args=True),
    lambda: D.Geometric(probs=f([0.5, 1.5]), validate_args=True),
    lambda: D.Geometric(probs=f([0.0, 0.5]), validate_args=True),
    lambda: D.Geometric(),
    lambda: D.Poisson(f([2.0, -1.0]), validate_args=True),
    lambda: D.Binomial(f([2.5]), probs=f([0.5]), validate_args=True),
    lambda: D.Binomial(f([3.0]), probs=f([1.5]), validate_args=True),
    lambda: D.Binomial(3, probs=f([0.5]), logits=f([0.0])),
    lambda: D.HalfNormal(f([1.0]), validate_args=True).log_prob(f([-1.0])),
    lambda: D.Poisson(f([1.0]), validate_args=True).log_prob(f([1.5])),
    lambda: D.Geometric(probs=f([0.3]), validate_args=True).log_prob(f([-1.0])),
    lambda: D.Binomial(f([3.0]), probs=f([0.3]), validate_args=True).log_prob(f([4.0])),
])
def test_validation(bad):
    with pytest.raises(ValueError):
        bad()


def test_dirichlet_and_beta_modes_and_support():
    c = np.array([[0.5, 0.7, 0.2], [2.0, 3.0, 1.0], [1.5, 0.5, 4.0]])
    close(D.Dirichlet(f(c)).mode, T.Dirichlet(t(c)).mode)
    a, b = np.array([0.5, 2.0, 0.7, 3.0]), np.array([0.3, 1.0, 4.0, 0.8])
    close(D.Beta(f(a), f(b)).mode, T.Beta(t(a), t(b)).mode)
    fd.manual_seed(9)
    x = D.Dirichlet(f(c)).sample((100,)).numpy()
    assert x.shape == (100, 3, 3) and np.all(x > 0) and np.allclose(x.sum(-1), 1)
    y = D.Beta(f(a), f(b)).sample((100,)).numpy()
    assert np.all((y > 0) & (y < 1))


def _per_draw_grad(make, params, n, fn):
    """Each of n draws gets its own copy of the parameters: the gradient of fn(x).sum() is then one
    pathwise derivative per draw (n, ...), whose mean estimates d E[fn(x)] / d param."""
    leaves = [fd.tensor(np.broadcast_to(np.asarray(p, dtype=np.float64), (n,) + np.shape(p)).copy(),
                        requires_grad=True) for p in params]
    x = make(*leaves).rsample()
    fn(x).sum().backward()
    return [leaf.grad.numpy() for leaf in leaves]


def _assert_mean(g, want, k=5.0):
    g = np.asarray(g)
    se = g.std(0) / math.sqrt(g.shape[0])
    np.testing.assert_array_less(np.abs(g.mean(0) - want), k * se + 1e-12)


N_GRAD = 20000


def test_gamma_rsample_gradients():
    a, r = np.array([0.1, 0.5, 1.0, 3.0, 20.0]), np.array([1.0, 2.0, 0.5, 1.5, 4.0])
    fd.manual_seed(11)
    ga, gr = _per_draw_grad(D.Gamma, [a, r], N_GRAD, lambda x: x)
    _assert_mean(ga, 1 / r)            # d E[x] / d alpha
    _assert_mean(gr, -a / r ** 2)      # d E[x] / d rate
    fd.manual_seed(12)
    (ga2,) = _per_draw_grad(lambda c: D.Gamma(c, f(r)), [a], N_GRAD, lambda x: x ** 2)
    _assert_mean(ga2, (2 * a + 1) / r ** 2)  # E[x^2] = a (a + 1) / r^2


def test_gamma_implicit_gradient_matches_inverse_cdf_path():
    """dx/dalpha of each draw equals the derivative of x(alpha) = P^-1(alpha, u) at its fixed level u."""
    special = pytest.importorskip("scipy.special")
    a = np.array([0.05, 0.3, 1.0, 2.7, 15.0, 150.0])
    alpha = fd.tensor(np.tile(a, (4, 1)), requires_grad=True)
    fd.manual_seed(13)
    x = D.Gamma(alpha, 1.0).rsample()
    x.sum().backward()
    xs, aa = x.detach().numpy(), alpha.detach().numpy()
    u = special.gammainc(aa, xs)
    ok = (u > 1e-8) & (u < 1 - 1e-8)  # well inside the distribution, where the inverse is accurate
    h = 1e-6 * aa
    fdiff = (special.gammaincinv(aa + h, u) - special.gammaincinv(aa - h, u)) / (2 * h)
    assert ok.sum() >= 20
    np.testing.assert_allclose(alpha.grad.numpy()[ok], fdiff[ok], rtol=1e-4, atol=1e-8)


def test_chi2_beta_dirichlet_studentt_rsample_gradients():
    fd.manual_seed(21)
    df = np.array([0.6, 3.0, 9.0])
    (g,) = _per_draw_grad(D.Chi2, [df], N_GRAD, lambda x: x)
    _assert_mean(g, np.ones(3))  # E[x] = df
    fd.manual_seed(22)
    c1, c0 = np.array([0.4, 2.0, 6.0]), np.array([1.5, 0.3, 2.0])
    g1, g0 = _per_draw_grad(D.Beta, [c1, c0], N_GRAD, lambda x: x)
    s = c1 + c0
    _assert_mean(g1, c0 / s ** 2)
    _assert_mean(g0, -c1 / s ** 2)
    fd.manual_seed(23)
    c = np.array([0.5, 2.0, 1.2])
    (gc,) = _per_draw_grad(D.Dirichlet, [c], N_GRAD, lambda x: x[..., 0])
    s = c.sum()
    _assert_mean(gc, np.array([(s - c[0]) / s ** 2, -c[0] / s ** 2, -c[0] / s ** 2]))
    fd.manual_seed(24)
    df = np.array([9.0, 14.0])
    (gd,) = _per_draw_grad(D.StudentT, [df], N_GRAD, lambda x: x ** 2)
    _assert_mean(gd, -2 / (df - 2) ** 2)  # E[x^2] = df / (df - 2)


def test_studentt_loc_scale_gradients():
    loc = fd.tensor([0.3, -1.0], dtype=fd.float64, requires_grad=True)
    scale = fd.tensor([2.0, 0.5], dtype=fd.float64, requires_grad=True)
    fd.manual_seed(25)
    x = D.StudentT(f([4.0, 7.0]), loc, scale).rsample((30,))
    x.sum().backward()
    close(loc.grad, f([30.0, 30.0]))
    close(scale.grad, ((x.detach() - loc.detach()) / scale.detach()).sum(0), atol=1e-9)


def _kl_pairs(r):
    pos = lambda *s: r.uniform(0.3, 3, size=s)  # noqa: E731
    return {
        "Gamma": ((pos(3, 1), pos(4)), (pos(4), pos(3, 1))),
        "Chi2": ((pos(3, 4),), (pos(4),)),
        "Beta": ((pos(3, 1), pos(4)), (pos(4), pos(3, 4))),
        "Dirichlet": ((pos(3, 5),), (pos(2, 1, 5),)),
        "Poisson": ((pos(3, 4),), (pos(4),)),
        "Gumbel": ((r.normal(size=(3, 1)), pos(4)), (r.normal(size=(4,)), pos(3, 1))),
    }


@pytest.mark.parametrize("name", list(_kl_pairs(np.random.default_rng(0))))
def test_kl_against_torch(name):
    sp, sq = _kl_pairs(np.random.default_rng(7))[name]
    got = D.kl_divergence(getattr(D, name)(*map(f, sp)), getattr(D, name)(*map(f, sq)))
    want = T.kl_divergence(getattr(T, name)(*map(t, sp)), getattr(T, name)(*map(t, sq)))
    close(got, want, atol=1e-9)
    assert np.all(got.numpy() >= -1e-12)


def test_kl_poisson_zero_rate_and_monte_carlo_gamma():
    close(D.kl_divergence(D.Poisson(f([0.0, 2.0])), D.Poisson(f([1.5, 2.0]))), f([1.5, 0.0]))
    p, q = D.Gamma(f([2.0]), f([1.5])), D.Gamma(f([3.0]), f([0.7]))
    fd.manual_seed(31)
    x = p.sample((20000,))
    lr = (p.log_prob(x) - q.log_prob(x)).numpy()
    assert abs(lr.mean() - D.kl_divergence(p, q).item()) < 5 * lr.std() / math.sqrt(lr.size)


@pytest.mark.parametrize("bad", [
    lambda: D.Gamma(f([1.0, -1.0]), 1.0, validate_args=True),
    lambda: D.Gamma(1.0, f([0.0]), validate_args=True),
    lambda: D.Chi2(f([2.0, 0.0]), validate_args=True),
    lambda: D.Beta(f([1.0]), f([-0.5]), validate_args=True),
    lambda: D.Dirichlet(f([[1.0, 0.0, 2.0]]), validate_args=True),
    lambda: D.Dirichlet(f(2.0)),
    lambda: D.StudentT(f([-1.0]), validate_args=True),
    lambda: D.StudentT(f([3.0]), 0.0, f([-1.0]), validate_args=True),
    lambda: D.Gamma(f([2.0]), f([1.0]), validate_args=True).log_prob(f([-0.5])),
    lambda: D.Beta(f([2.0]), f([1.0]), validate_args=True).log_prob(f([1.5])),
    lambda: D.Dirichlet(f([1.0, 2.0]), validate_args=True).log_prob(f([0.3, 0.5])),
    lambda: D.Dirichlet(f([1.0, 2.0]), validate_args=True).log_prob(f([0.3, 0.3, 0.4])),
])
def test_validation_gamma_families(bad):
    with pytest.raises(ValueError):
        bad()
