"""Transforms, TransformedDistribution, biject_to / transform_to, and the families built on them (and the
other late families) against torch.distributions: values, inverses, log-Jacobians (also against autograd),
densities, moments, cdf/icdf, entropy, shapes, expand, sampling statistics and reparameterised gradients.
float64, fixed seeds."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.distributions as T  # noqa: E402
import torch.distributions.transforms as TT  # noqa: E402

import fastdl as fd  # noqa: E402
import fastdl.distributions as D  # noqa: E402
import fastdl.distributions.transforms as DT  # noqa: E402
from test_distributions import close, f, t  # noqa: E402


# ---- transforms -------------------------------------------------------------------------------------------------
# name -> (builder(lib module, conv), input numpy array (in the domain))
def _transform_cases(r):
    pos = r.uniform(0.3, 2.5, size=(3, 4))
    vec = r.normal(size=(3, 4))
    sq = r.normal(size=(2, 3, 3))
    spd = sq @ np.swapaxes(sq, -1, -2) + 3 * np.eye(3)
    loc, scale = r.normal(size=(4,)), r.uniform(0.5, 2, size=(3, 1)) * np.where(r.random((3, 1)) < 0.5, -1, 1)
    expo = r.uniform(0.5, 2, size=(4,))
    return {
        "Exp": (lambda m, c: m.ExpTransform(), vec),
        "Power": (lambda m, c: m.PowerTransform(c(expo)), pos),
        "PowerNeg": (lambda m, c: m.PowerTransform(c(-1.5 * np.ones(()))), pos),
        "Sigmoid": (lambda m, c: m.SigmoidTransform(), vec * 3),
        "Softplus": (lambda m, c: m.SoftplusTransform(), vec * 3),
        "Tanh": (lambda m, c: m.TanhTransform(), vec),
        "Affine": (lambda m, c: m.AffineTransform(c(loc), c(scale)), vec),
        "AffineScalar": (lambda m, c: m.AffineTransform(1.5, -2.0), vec),
        "AffineEvent": (lambda m, c: m.AffineTransform(c(loc), c(np.abs(scale) + 0.1), event_dim=1), vec),
        "StickBreaking": (lambda m, c: m.StickBreakingTransform(), vec),
        "LowerCholesky": (lambda m, c: m.LowerCholeskyTransform(), sq),
        "PositiveDefinite": (lambda m, c: m.PositiveDefiniteTransform(), sq),
        "CorrCholesky": (lambda m, c: m.CorrCholeskyTransform(), r.normal(size=(2, 6))),
        "Compose": (lambda m, c: m.ComposeTransform([m.ExpTransform(), m.AffineTransform(c(loc), 2.0)]), vec),
        "ComposeEvent": (lambda m, c: m.ComposeTransform([m.AffineTransform(0.5, 2.0), m.StickBreakingTransform()]),
                         vec),
        "Independent": (lambda m, c: m.IndependentTransform(m.SigmoidTransform(), 1), vec),
        "Reshape": (lambda m, c: m.ReshapeTransform((4,), (2, 2)), vec),
        "Cat": (lambda m, c: m.CatTransform([m.ExpTransform(), m.SigmoidTransform()], dim=1, lengths=[3, 1]), vec),
        "Stack": (lambda m, c: m.StackTransform([m.ExpTransform(), m.TanhTransform(), m.SoftplusTransform()], dim=0),
                  vec),
        "ExpInv": (lambda m, c: m.ExpTransform().inv, pos),
        "SpdInverse": (lambda m, c: m.PositiveDefiniteTransform().inv, spd),
    }


TRANSFORMS = list(_transform_cases(np.random.default_rng(0)))
NO_LADJ = {"LowerCholesky", "PositiveDefinite", "SpdInverse"}  # torch defines none


@pytest.mark.parametrize("name", TRANSFORMS)
def test_transform_against_torch(name):
    build, x = _transform_cases(np.random.default_rng(TRANSFORMS.index(name) + 1))[name]
    a, b = build(DT, f), build(TT, t)
    ya, yb = a(f(x)), b(t(x))
    close(ya, yb)
    close(a.inv(ya), b.inv(yb), atol=1e-8)
    if a.bijective:
        close(a.inv(ya), x, atol=1e-7)  # a round trip returns the input
    if name not in NO_LADJ:
        close(a.log_abs_det_jacobian(f(x), ya), b.log_abs_det_jacobian(t(x), yb), atol=1e-9)
    assert a.bijective == b.bijective
    assert a.domain.event_dim == b.domain.event_dim and a.codomain.event_dim == b.codomain.event_dim
    assert tuple(a.forward_shape(x.shape)) == tuple(b.forward_shape(x.shape))
    assert tuple(a.inverse_shape(tuple(yb.shape))) == tuple(b.inverse_shape(tuple(yb.shape)))
    assert bool(a.codomain.check(ya).all())


@pytest.mark.parametrize("name", ["Exp", "Power", "Sigmoid", "Softplus", "Tanh", "Affine"])
def test_scalar_log_jacobian_is_log_derivative(name):
    """For elementwise maps the log-Jacobian is log |dy/dx|, taken here by autograd."""
    build, x = _transform_cases(np.random.default_rng(5))[name]
    tr = build(DT, f)
    xt = f(x).requires_grad_(True)
    y = tr(xt)
    (g,) = fd.autograd.grad(y.sum(), xt)
    close(tr.log_abs_det_jacobian(xt, y), np.log(np.abs(g.numpy())), atol=1e-9)


def test_stick_breaking_log_jacobian_by_autograd():
    """StickBreaking maps R^(K-1) to the first K-1 simplex coordinates bijectively: its log-Jacobian is the log
    determinant of that square Jacobian."""
    x = f(np.random.default_rng(3).normal(size=(4,)))
    tr = DT.StickBreakingTransform()
    jac = fd.autograd.functional.jacobian(lambda v: tr(v)[:-1], x).numpy()
    close(tr.log_abs_det_jacobian(x, tr(x)), np.linalg.slogdet(jac)[1], atol=1e-9)


def test_compose_sign_cache_and_equality():
    tr = DT.ComposeTransform([DT.AffineTransform(0.0, -2.0), DT.ExpTransform()])
    assert tr.sign == -1 and tr.bijective
    assert DT.ExpTransform() == DT.ExpTransform() and DT.ExpTransform() != DT.SigmoidTransform()
    assert DT.AffineTransform(1.0, 2.0) == DT.AffineTransform(1.0, 2.0)
    assert tr.inv.inv is tr
    assert isinstance(DT.identity_transform(f([1.0, 2.0])), fd.Tensor)
    # cache_size=1: the inverse of a fresh output is its input exactly (atanh would round near 1)
    tanh = DT.TanhTransform(cache_size=1)
    x = f([20.0, -3.0])
    y = tanh(x)
    assert tanh.inv(y) is x
    with pytest.raises(ValueError):
        DT.ExpTransform(cache_size=2)
    with pytest.raises(NotImplementedError):
        DT.AbsTransform().log_abs_det_jacobian(x, x)


# ---- biject_to / transform_to ----------------------------------------------------------------------------------
def _constraint_pairs():
    C, TC = D.constraints, T.constraints
    return [
        (C.real, TC.real), (C.positive, TC.positive), (C.nonnegative, TC.nonnegative),
        (C.greater_than(1.5), TC.greater_than(1.5)), (C.less_than(-1.0), TC.less_than(-1.0)),
        (C.interval(-2.0, 3.0), TC.interval(-2.0, 3.0)), (C.unit_interval, TC.unit_interval),
        (C.half_open_interval(0.0, 2.0), TC.half_open_interval(0.0, 2.0)), (C.simplex, TC.simplex),
        (C.real_vector, TC.real_vector), (C.independent(C.positive, 1), TC.independent(TC.positive, 1)),
        (C.lower_cholesky, TC.lower_cholesky), (C.positive_definite, TC.positive_definite),
        (C.corr_cholesky, TC.corr_cholesky),
        (C.cat([C.positive, C.unit_interval], dim=-1, lengths=[2, 4]),
         TC.cat([TC.positive, TC.unit_interval], dim=-1, lengths=[2, 4])),
        (C.stack([C.positive, C.real, C.interval(0.0, 5.0)], dim=0),
         TC.stack([TC.positive, TC.real, TC.interval(0.0, 5.0)], dim=0)),
    ]


@pytest.mark.parametrize("i", range(len(_constraint_pairs())))
@pytest.mark.parametrize("registry", ["biject_to", "transform_to"])
def test_constraint_registry_against_torch(i, registry):
    c, tc = _constraint_pairs()[i]
    try:
        b = getattr(T, registry)(tc)
    except NotImplementedError:  # torch registers no bijection for this constraint: neither does fastdl
        with pytest.raises(NotImplementedError):
            getattr(D, registry)(c)
        return
    a = getattr(D, registry)(c)
    assert type(a).__name__ == type(b).__name__
    shape = (3, 3, 3) if c.event_dim == 2 else (3, 6)
    if isinstance(c, type(D.constraints.corr_cholesky)):
        shape = (3, 6)
    x = np.random.default_rng(i).normal(size=shape)
    ya, yb = a(f(x)), b(t(x))
    close(ya, yb, atol=1e-9)
    assert bool(c.check(ya).all())
    if a.bijective:
        close(a.inv(ya), x, atol=1e-6)
        close(a.log_abs_det_jacobian(f(x), ya), b.log_abs_det_jacobian(t(x), yb), atol=1e-8)


def test_constraint_registry_extends_and_rejects():
    class Odd(D.constraints.Constraint):
        def check(self, value):
            return value % 2 == 1

    with pytest.raises(NotImplementedError):
        D.biject_to(Odd())
    D.biject_to.register(Odd, lambda c: D.ExpTransform())
    assert isinstance(D.biject_to(Odd()), D.ExpTransform)
    with pytest.raises(TypeError):
        D.biject_to.register(int, lambda c: None)


def test_new_constraints_check():
    C = D.constraints
    tri = f(np.tril(np.ones((3, 3))))
    assert bool(C.lower_triangular.check(tri)) and not bool(C.lower_triangular.check(tri.mT))
    assert bool(C.square.check(f(np.ones((2, 2))))) and not bool(C.square.check(f(np.ones((2, 3)))))
    assert bool(C.symmetric.check(f(np.eye(3) + 1))) and not bool(C.symmetric.check(tri))
    assert bool(C.positive_semidefinite.check(f(np.ones((2, 2)))))
    assert not bool(C.positive_semidefinite.check(f([[1.0, 2.0], [2.0, 1.0]])))
    assert C.positive_integer.check(f([1.0, 0.0, 2.5])).tolist() == [True, False, False]
    assert C.less_than(1.0).check(f([0.5, 1.0])).tolist() == [True, False]
    assert bool(C.multinomial(4).check(f([1.0, 3.0])))
    for lib, mod in ((D, f), (T, t)):
        corr = lib.biject_to(lib.constraints.corr_cholesky)(mod(np.random.default_rng(0).normal(size=(3,))))
        assert bool(lib.constraints.corr_cholesky.check(corr))


# ---- families --------------------------------------------------------------------------------------------------
def _family_cases(r):
    pos = lambda *s: r.uniform(0.5, 2.5, size=s)  # noqa: E731
    counts = r.integers(0, 6, size=(2, 3, 4)).astype(np.float64)
    k = 3
    w = r.normal(size=(4, 3, 2))
    mix_logits = r.normal(size=(3, 2))
    return {
        # name -> (positional args, value (2, 3, 4) or event-shaped, kwargs)
        "Weibull": ((pos(3, 1), pos(4)), r.weibull(1.5, size=(2, 3, 4)) + 0.1, {}),
        "Pareto": ((pos(3, 1), pos(4) + 0.5), 3.0 + r.pareto(2.0, size=(2, 3, 4)), {}),
        "Kumaraswamy": ((pos(3, 1), pos(4)), r.uniform(0.05, 0.95, size=(2, 3, 4)), {}),
        "InverseGamma": ((pos(3, 1) + 1.5, pos(4)), 1 / r.gamma(2.0, size=(2, 3, 4)), {}),
        "GeneralizedPareto": ((r.normal(size=(3, 1)), pos(4), r.uniform(-0.3, 0.8, size=(3, 4))), None, {}),
        "GeneralizedPareto_zero": ((r.normal(size=(3, 1)), pos(4), np.zeros((3, 4))), None, {}),
        "FisherSnedecor": ((r.uniform(1, 8, size=(3, 1)), r.uniform(1, 9, size=(4,))), r.f(3, 5, size=(2, 3, 4)),
                           {}),
        "VonMises": ((r.normal(size=(3, 1)), pos(4) * 2), r.uniform(-math.pi, math.pi, size=(2, 3, 4)), {}),
        "NegativeBinomial": ((), counts, {"total_count": r.uniform(0.5, 6, size=(3, 1)),
                                           "probs": r.uniform(0.1, 0.9, size=(4,))}),
        "NegativeBinomial_logits": ((), counts, {"total_count": 3.0, "logits": r.normal(size=(3, 4))}),
        "ContinuousBernoulli": ((), r.uniform(0, 1, size=(2, 3, 4)),
                                {"probs": np.concatenate([r.uniform(0.05, 0.95, size=(3, 3)), np.full((3, 1), 0.5)],
                                                         1)}),
        "ContinuousBernoulli_logits": ((), r.uniform(0, 1, size=(2, 3, 4)), {"logits": r.normal(size=(3, 4)) * 2}),
        "LogNormal": ((r.normal(size=(3, 1)), pos(4)), r.lognormal(size=(2, 3, 4)), {}),
        "LogisticNormal": ((r.normal(size=(3, 4)), pos(3, 4)), r.dirichlet(np.ones(5), size=(2, 3)), {}),
        "RelaxedBernoulli": ((f_or_t_scalar(0.7),), r.uniform(0.05, 0.95, size=(2, 3, 4)),
                             {"probs": r.uniform(0.1, 0.9, size=(3, 4))}),
        "RelaxedOneHotCategorical": ((f_or_t_scalar(1.3),), r.dirichlet(np.ones(k), size=(2, 4)),
                                     {"logits": r.normal(size=(4, k))}),
        "Multinomial": ((), np.array([[2.0, 0.0, 3.0], [1.0, 1.0, 3.0]]), {"total_count": 5,
                                                                        "probs": r.dirichlet(np.ones(3), size=(2,))}),
        "LowRankMultivariateNormal": ((r.normal(size=(4, 3)), w, pos(4, 3)), r.normal(size=(2, 4, 3)), {}),
        "MixtureSameFamily": (("mix", mix_logits, r.normal(size=(3, 2)), pos(3, 2)), r.normal(size=(2, 3)), {}),
    }


class f_or_t_scalar(float):
    """A temperature: a 0-dim tensor in each library."""


def _build(lib, name, args, kwargs):
    conv = f if lib is D else t
    family = name.split("_")[0]
    if family == "MixtureSameFamily":
        _, logits, loc, scale = args
        return lib.MixtureSameFamily(lib.Categorical(logits=conv(logits)), lib.Normal(conv(loc), conv(scale)))
    cls = getattr(lib, family)
    conv_arg = lambda a: conv(float(a)) if isinstance(a, f_or_t_scalar) else conv(a)  # noqa: E731
    return cls(*[conv_arg(a) for a in args],
               **{k: conv(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()})


FAMILIES = list(_family_cases(np.random.default_rng(0)))
NO_ENTROPY = {"VonMises", "FisherSnedecor", "LogisticNormal", "RelaxedBernoulli", "RelaxedOneHotCategorical",
              "NegativeBinomial", "LowRankMultivariateNormal_none", "MixtureSameFamily", "Weibull_none",
              "InverseGamma_none"}
NO_MOMENTS = {"LogisticNormal", "RelaxedBernoulli", "RelaxedOneHotCategorical"}
HAS_MODE = {"Weibull", "Pareto", "Kumaraswamy", "InverseGamma", "GeneralizedPareto", "FisherSnedecor", "VonMises",
            "NegativeBinomial", "LogNormal", "LowRankMultivariateNormal"}
HAS_CDF = {"GeneralizedPareto", "ContinuousBernoulli", "LogNormal", "Weibull", "Pareto", "MixtureSameFamily"}
HAS_ICDF = {"GeneralizedPareto", "ContinuousBernoulli", "LogNormal"}
# torch approximates log I0 (VonMises) and the binomial pmf (Multinomial's entropy) to ~1e-8; fastdl's agree with
# scipy to rounding (checked below), so these compare to torch at 1e-7
LOOSE = {"VonMises", "Multinomial"}
# torch's GeneralizedPareto runs in float32 only (a float32 zero in its isclose): compared at float32 precision
FLOAT32_PEER = {"GeneralizedPareto"}


@pytest.mark.parametrize("name", FAMILIES)
def test_family_against_torch(name):
    r = np.random.default_rng(FAMILIES.index(name) + 1)
    args, value, kwargs = _family_cases(r)[name]
    family = name.split("_")[0]
    d, e = _build(D, name, args, kwargs), _build(T, name, args, kwargs)
    tol = 1e-7 if family in LOOSE else 1e-9
    peer_dtype = torch.float64
    if family in FLOAT32_PEER:
        peer_dtype, tol = torch.float32, 2e-5
        e = T.GeneralizedPareto(*[torch.tensor(np.asarray(a, dtype=np.float32)) for a in args])

    def close(a, b, atol=None):
        a = a.detach().numpy() if isinstance(a, fd.Tensor) else np.asarray(a)
        b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
        assert a.shape == b.shape, (a.shape, b.shape)
        np.testing.assert_allclose(a, b, atol=tol, rtol=tol if tol > 1e-9 else 1e-8, equal_nan=True)

    if value is None:  # inside the support: draws of the reference
        torch.manual_seed(0)
        value = e.sample((2,)).double().numpy()
    tv = lambda a: t(a).to(peer_dtype)  # noqa: E731
    assert tuple(d.batch_shape) == tuple(e.batch_shape) and tuple(d.event_shape) == tuple(e.event_shape)
    close(d.log_prob(f(value)), e.log_prob(tv(value)))
    if family not in NO_ENTROPY:
        close(d.entropy(), e.entropy())
    if family not in NO_MOMENTS:
        for attr in ("mean", "variance", "stddev"):
            close(getattr(d, attr), getattr(e, attr))
    if family in HAS_MODE:
        close(d.mode, e.mode)
    if family in HAS_CDF:
        close(d.cdf(f(value)), e.cdf(tv(value)))
    if family in HAS_ICDF:
        q = np.random.default_rng(1).uniform(0.01, 0.99, size=tuple(e.batch_shape))
        close(d.icdf(f(q)), e.icdf(tv(q)))
    assert d.has_rsample == e.has_rsample
    assert tuple(d.sample((2, 3)).shape) == tuple(e.sample((2, 3)).shape)
    assert tuple(d.sample().shape) == tuple(e.sample().shape)
    assert bool(d.support.check(d.sample((5,))).all())
    x = d.expand((5,) + tuple(d.batch_shape))
    assert tuple(x.batch_shape) == (5,) + tuple(d.batch_shape)
    assert tuple(x.sample().shape) == tuple(x.batch_shape) + tuple(d.event_shape)
    ex = e.expand((5,) + tuple(e.batch_shape))
    v0 = value[0] if np.ndim(value) > len(d.event_shape) + len(d.batch_shape) - 1 else value
    close(x.log_prob(f(v0)), ex.log_prob(tv(v0)))


def test_von_mises_log_prob_exact():
    """log I0 from i0e: the density agrees with scipy to rounding (torch's polynomial is good to ~1e-8)."""
    scipy_stats = pytest.importorskip("scipy.stats")
    x, loc, k = np.linspace(-3, 3, 7), 0.4, np.array([0.3, 1.0, 4.0, 30.0])[:, None]
    close(D.VonMises(f(loc), f(k)).log_prob(f(x)), scipy_stats.vonmises.logpdf(x, k, loc=loc), atol=1e-12)


def test_transformed_distribution_generic_against_torch():
    r = np.random.default_rng(7)
    loc, scale = r.normal(size=(3, 4)), r.uniform(0.5, 2, size=(3, 4))
    aloc, ascale = r.normal(size=(4,)), -r.uniform(0.5, 2, size=(3, 1))  # decreasing affine: cdf flips
    dists = []
    for lib, conv in ((D, f), (T, t)):
        base = lib.Normal(conv(loc), conv(scale))
        dists.append([
            lib.TransformedDistribution(base, [lib.transforms.TanhTransform()]),
            lib.TransformedDistribution(base, [lib.transforms.AffineTransform(conv(aloc), conv(ascale)),
                                               lib.transforms.ExpTransform()]),
            lib.TransformedDistribution(lib.Normal(conv(loc[0]), conv(scale[0])),
                                        lib.transforms.AffineTransform(conv(aloc), conv(-ascale))),
            lib.TransformedDistribution(base, lib.transforms.StickBreakingTransform()),
        ])
    value_tanh = np.tanh(r.normal(size=(2, 3, 4)))
    value_pos = np.exp(r.normal(size=(2, 3, 4)))
    a, b = dists
    close(a[0].log_prob(f(value_tanh)), b[0].log_prob(t(value_tanh)), atol=1e-9)
    close(a[1].log_prob(f(value_pos)), b[1].log_prob(t(value_pos)), atol=1e-9)
    close(a[1].cdf(f(value_pos)), b[1].cdf(t(value_pos)), atol=1e-9)
    q = r.uniform(0.05, 0.95, size=(3, 4))
    close(a[1].icdf(f(q)), b[1].icdf(t(q)), atol=1e-9)
    assert tuple(a[2].batch_shape) == tuple(b[2].batch_shape) == (3, 4)  # the transform broadcasts the base
    simplex = r.dirichlet(np.ones(5), size=(3,))
    assert tuple(a[3].event_shape) == tuple(b[3].event_shape) == (5,)
    assert tuple(a[3].batch_shape) == tuple(b[3].batch_shape) == (3,)
    close(a[3].log_prob(f(simplex)), b[3].log_prob(t(simplex)), atol=1e-9)
    assert tuple(a[3].sample((2,)).shape) == (2, 3, 5)
    assert isinstance(D.LogNormal(0.0, 1.0), D.TransformedDistribution)


def _sample_stats(name):
    fd.manual_seed(0)
    d = {
        "Weibull": D.Weibull(f(1.5), f(2.0)),
        "Pareto": D.Pareto(f(1.0), f(4.5)),
        "Kumaraswamy": D.Kumaraswamy(f(2.0), f(3.0)),
        "InverseGamma": D.InverseGamma(f(5.0), f(2.0)),
        "GeneralizedPareto": D.GeneralizedPareto(f(0.5), f(1.5), f(0.1)),
        "FisherSnedecor": D.FisherSnedecor(f(6.0), f(12.0)),
        "NegativeBinomial": D.NegativeBinomial(f(4.0), probs=f(0.4)),
        "ContinuousBernoulli": D.ContinuousBernoulli(probs=f(0.3)),
        "Multinomial": D.Multinomial(7, probs=f([0.2, 0.5, 0.3])),
        "MixtureSameFamily": D.MixtureSameFamily(D.Categorical(probs=f([0.3, 0.7])), D.Normal(f([-2.0, 1.0]),
                                                                                           f([0.5, 1.0]))),
        "LowRankMultivariateNormal": D.LowRankMultivariateNormal(f([1.0, -1.0, 0.5]), f([[1.0], [0.5], [-1.0]]),
                                                                 f([0.5, 1.0, 0.3])),
    }[name]
    return d, d.sample((40000,)).numpy()


@pytest.mark.parametrize("name", ["Weibull", "Pareto", "Kumaraswamy", "InverseGamma", "GeneralizedPareto",
                                  "FisherSnedecor", "NegativeBinomial", "ContinuousBernoulli", "Multinomial",
                                  "MixtureSameFamily", "LowRankMultivariateNormal"])
def test_sample_moments(name):
    d, s = _sample_stats(name)
    mean, var = d.mean.numpy(), d.variance.numpy()
    n = s.shape[0]
    assert np.all(np.abs(s.mean(0) - mean) < 5 * np.sqrt(var / n) + 1e-3), (s.mean(0), mean)
    np.testing.assert_allclose(s.var(0), var, rtol=0.1)
    if name == "LowRankMultivariateNormal":
        np.testing.assert_allclose(np.cov(s.T), d.covariance_matrix.numpy(), atol=0.05)
    if name == "Multinomial":
        assert np.all(s.sum(-1) == 7) and np.all(s == np.round(s))


def test_von_mises_samples():
    fd.manual_seed(1)
    loc, k = 2.5, 3.0
    s = D.VonMises(f(loc), f(k)).sample((40000,)).numpy()
    assert s.min() >= -math.pi and s.max() < math.pi
    circ_mean = math.atan2(np.sin(s).mean(), np.cos(s).mean())
    assert abs(circ_mean - loc) < 0.02
    # 1 - E[cos(x - loc)] is the circular variance
    close(1 - np.cos(s - loc).mean(), D.VonMises(f(loc), f(k)).variance, atol=0.01)
    small = D.VonMises(f(0.0), f(1e-6)).sample((2000,)).numpy()  # near-uniform: must not hang
    assert abs(small.mean()) < 0.2


def test_relaxed_samples_approach_discrete_at_low_temperature():
    fd.manual_seed(2)
    probs = f([0.2, 0.5, 0.3])
    s = D.RelaxedOneHotCategorical(0.05, probs=probs).sample((20000,)).numpy()
    np.testing.assert_allclose(s.sum(-1), 1.0, atol=1e-9)
    np.testing.assert_allclose(np.bincount(s.argmax(-1), minlength=3) / 20000, probs.numpy(), atol=0.02)
    b = D.RelaxedBernoulli(0.05, probs=f(0.3)).sample((20000,)).numpy()
    assert abs((b > 0.5).mean() - 0.3) < 0.02


def _fd_check(make, params, eps=1e-6, n=3):
    """d/dparams of sum(rsample()) with the same noise on every call, against central differences."""
    def value(ps):
        fd.manual_seed(11)
        return float(make(*ps).rsample((n,)).sum())
    leaves = [f(p).requires_grad_(True) for p in params]
    fd.manual_seed(11)
    make(*leaves).rsample((n,)).sum().backward()
    for i, p in enumerate(params):
        num = np.zeros_like(p)
        for j in np.ndindex(p.shape):
            hi, lo = [q.copy() for q in params], [q.copy() for q in params]
            hi[i][j] += eps
            lo[i][j] -= eps
            num[j] = (value([f(q) for q in hi]) - value([f(q) for q in lo])) / (2 * eps)
        close(leaves[i].grad, num, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["Weibull", "Pareto", "Kumaraswamy", "GeneralizedPareto", "LogNormal",
                                  "LowRankMultivariateNormal", "RelaxedOneHotCategorical", "RelaxedBernoulli",
                                  "LogisticNormal", "ContinuousBernoulli"])
def test_rsample_gradient_finite_differences(name):
    r = np.random.default_rng(4)
    cases = {
        "Weibull": (D.Weibull, [r.uniform(0.5, 2, size=(3,)), r.uniform(1, 3, size=(3,))]),
        "Pareto": (D.Pareto, [r.uniform(0.5, 2, size=(3,)), r.uniform(2, 4, size=(3,))]),
        "Kumaraswamy": (D.Kumaraswamy, [r.uniform(1, 3, size=(3,)), r.uniform(1, 3, size=(3,))]),
        "GeneralizedPareto": (D.GeneralizedPareto, [r.normal(size=(3,)), r.uniform(0.5, 2, size=(3,)),
                                                    r.uniform(0.1, 0.4, size=(3,))]),
        "LogNormal": (D.LogNormal, [r.normal(size=(3,)), r.uniform(0.5, 1, size=(3,))]),
        "LowRankMultivariateNormal": (D.LowRankMultivariateNormal, [r.normal(size=(3,)), r.normal(size=(3, 2)),
                                                                    r.uniform(0.5, 1, size=(3,))]),
        "RelaxedOneHotCategorical": (lambda lg: D.RelaxedOneHotCategorical(0.8, logits=lg), [r.normal(size=(4,))]),
        "RelaxedBernoulli": (lambda lg: D.RelaxedBernoulli(0.8, logits=lg), [r.normal(size=(3,))]),
        "LogisticNormal": (D.LogisticNormal, [r.normal(size=(3,)), r.uniform(0.5, 1, size=(3,))]),
        "ContinuousBernoulli": (lambda p: D.ContinuousBernoulli(probs=p), [r.uniform(0.1, 0.4, size=(3,))]),
    }
    make, params = cases[name]
    _fd_check(make, params)


def test_mixture_same_family_multivariate_components():
    r = np.random.default_rng(9)
    logits, loc, scale = r.normal(size=(2, 3)), r.normal(size=(2, 3, 4)), r.uniform(0.5, 2, size=(2, 3, 4))
    built = []
    for lib, conv in ((D, f), (T, t)):
        comp = lib.Independent(lib.Normal(conv(loc), conv(scale)), 1)
        built.append(lib.MixtureSameFamily(lib.Categorical(logits=conv(logits)), comp))
    a, b = built
    x = r.normal(size=(5, 2, 4))
    assert tuple(a.event_shape) == (4,) and tuple(a.batch_shape) == (2,)
    close(a.log_prob(f(x)), b.log_prob(t(x)), atol=1e-9)
    close(a.mean, b.mean)
    close(a.variance, b.variance)
    assert tuple(a.sample((7,)).shape) == (7, 2, 4)
    with pytest.raises(ValueError):
        D.MixtureSameFamily(D.Categorical(logits=f(logits)), D.Normal(f(loc[..., :2]), f(scale[..., :2])))


def test_lowrank_matrices_against_torch():
    r = np.random.default_rng(10)
    args = (r.normal(size=(2, 4)), r.normal(size=(2, 4, 2)), r.uniform(0.5, 2, size=(2, 4)))
    a, b = D.LowRankMultivariateNormal(*map(f, args)), T.LowRankMultivariateNormal(*map(t, args))
    for attr in ("covariance_matrix", "precision_matrix", "scale_tril"):
        close(getattr(a, attr), getattr(b, attr), atol=1e-9)
    close(a.entropy(), b.entropy())
    mvn = D.MultivariateNormal(f(args[0]), covariance_matrix=a.covariance_matrix)
    x = r.normal(size=(3, 2, 4))
    close(a.log_prob(f(x)), mvn.log_prob(f(x)), atol=1e-9)


def test_multinomial_entropy_and_impossible_category():
    a = D.Multinomial(4, probs=f([[0.2, 0.3, 0.5], [0.6, 0.4, 0.0]]))
    b = T.Multinomial(4, probs=t([[0.2, 0.3, 0.5], [0.6, 0.4, 0.0]]))
    close(a.entropy(), b.entropy(), atol=1e-7)
    scipy_stats = pytest.importorskip("scipy.stats")
    close(a.entropy(), [scipy_stats.multinomial(4, p).entropy() for p in ([0.2, 0.3, 0.5], [0.6, 0.4, 0.0])],
          atol=1e-12)
    v = np.array([[1.0, 1.0, 2.0], [2.0, 2.0, 0.0]])
    close(a.log_prob(f(v)), b.log_prob(t(v)))
    with pytest.raises(NotImplementedError):
        D.Multinomial(f(3.0), probs=f([0.5, 0.5]))


@pytest.mark.parametrize("make", [
    lambda: D.Weibull(f(-1.0), f(1.0)), lambda: D.Pareto(f(1.0), f(0.0)), lambda: D.Kumaraswamy(f(1.0), f(-2.0)),
    lambda: D.InverseGamma(f(-1.0), f(1.0)), lambda: D.GeneralizedPareto(f(0.0), f(-1.0), f(0.1)),
    lambda: D.FisherSnedecor(f(0.0), f(1.0)), lambda: D.VonMises(f(0.0), f(-1.0)),
    lambda: D.NegativeBinomial(f(-1.0), probs=f(0.5)), lambda: D.NegativeBinomial(f(2.0), probs=f(1.0)),
    lambda: D.ContinuousBernoulli(probs=f(1.5), validate_args=True),
    lambda: D.LowRankMultivariateNormal(f([0.0, 0.0]), f([[1.0], [1.0]]), f([1.0, -1.0])),
    lambda: D.Multinomial(3, probs=f([-0.5, 1.5])),
])
def test_invalid_parameters_raise(make):
    with pytest.raises(ValueError):
        make()


def test_log_prob_outside_support_raises():
    with pytest.raises(ValueError):
        D.Pareto(f(2.0), f(1.0)).log_prob(f(1.0))
    with pytest.raises(ValueError):
        D.Kumaraswamy(f(2.0), f(1.0)).log_prob(f(1.5))
    with pytest.raises(ValueError):
        D.LogisticNormal(f([0.0, 0.0]), f([1.0, 1.0])).log_prob(f([0.5, 0.6, 0.2]))
    with pytest.raises(ValueError):  # cov_factor rows must match loc
        D.LowRankMultivariateNormal(f([0.0, 0.0]), f([[1.0], [1.0], [1.0]]), f([1.0, 1.0]))


def _spd(r, batch, k):
    a = r.normal(size=batch + (k, k))
    return a @ np.swapaxes(a, -1, -2) + k * np.eye(k)


@pytest.mark.parametrize("param", ["covariance_matrix", "precision_matrix", "scale_tril"])
def test_wishart_against_torch(param):
    r = np.random.default_rng(12)
    cov = _spd(r, (3,), 3)
    mat = {"covariance_matrix": cov, "precision_matrix": np.linalg.inv(cov), "scale_tril": np.linalg.cholesky(cov)}
    df = np.array([3.5, 5.0, 8.0])
    a = D.Wishart(f(df), **{param: f(mat[param])})
    b = T.Wishart(t(df), **{param: t(mat[param])})
    x = _spd(r, (2, 3), 3)
    close(a.log_prob(f(x)), b.log_prob(t(x)), atol=1e-9)
    close(a.entropy(), b.entropy(), atol=1e-9)
    for attr in ("mean", "variance", "mode", "covariance_matrix", "precision_matrix", "scale_tril"):
        close(getattr(a, attr), getattr(b, attr), atol=1e-9)
    assert tuple(a.sample((4,)).shape) == (4, 3, 3, 3)
    assert tuple(a.expand((2, 3)).sample().shape) == (2, 3, 3, 3)
    with pytest.raises(ValueError):
        D.Wishart(f(1.5), covariance_matrix=f(cov[0]))  # df must exceed p - 1


def test_wishart_samples_and_gradient():
    fd.manual_seed(3)
    cov = _spd(np.random.default_rng(13), (), 3)
    d = D.Wishart(f(6.0), covariance_matrix=f(cov))
    s = d.sample((20000,)).numpy()
    np.testing.assert_allclose(s.mean(0), d.mean.numpy(), rtol=0.05, atol=0.3)
    np.testing.assert_allclose(s.var(0), d.variance.numpy(), rtol=0.1)
    assert np.all(np.linalg.eigvalsh(s[:100]) > 0)
    # the scale factor's pathwise gradient (df's is the implicit gamma gradient, which holds the draws' cdf levels
    # fixed rather than the sampler's noise, so a per-draw finite difference does not apply to it)
    _fd_check(lambda lt: D.Wishart(f(5.5), scale_tril=lt, validate_args=False), [np.linalg.cholesky(cov)], n=2)


def test_lkj_cholesky_against_torch():
    r = np.random.default_rng(14)
    conc = np.array([0.5, 1.0, 3.0])
    a, b = D.LKJCholesky(4, f(conc)), T.LKJCholesky(4, t(conc))
    torch.manual_seed(0)
    x = b.sample((2,)).numpy()
    close(a.log_prob(f(x)), b.log_prob(t(x)), atol=1e-9)
    s = a.sample((5,))
    assert tuple(s.shape) == (5, 3, 4, 4) and bool(D.constraints.corr_cholesky.check(s).all())
    assert tuple(a.expand((2, 3)).sample().shape) == (2, 3, 4, 4)
    # concentration 1 with dim 2: the correlation is uniform on (-1, 1)
    fd.manual_seed(4)
    rho = D.LKJCholesky(2, 1.0).sample((20000,)).numpy()[:, 1, 0]
    assert abs(rho.mean()) < 0.02 and abs(rho.var() - 1 / 3) < 0.01
    # higher concentration pulls correlations toward 0: Var(rho) = 1 / (2 c + 1) for dim 2
    rho = D.LKJCholesky(2, 4.0).sample((20000,)).numpy()[:, 1, 0]
    assert abs(rho.var() - 1 / 9) < 0.01
    with pytest.raises(ValueError):
        D.LKJCholesky(1)
    del r


def test_one_hot_straight_through():
    logits = f(np.random.default_rng(15).normal(size=(4,))).requires_grad_(True)
    d = D.OneHotCategoricalStraightThrough(logits=logits)
    s = d.rsample((3,))
    assert set(np.unique(s.detach().numpy())) <= {0.0, 1.0}
    (s * f([1.0, 2.0, 3.0, 4.0])).sum().backward()
    probs = np.exp(logits.detach().numpy()) / np.exp(logits.detach().numpy()).sum()
    w = np.array([1.0, 2.0, 3.0, 4.0]) * 3
    close(logits.grad, probs * (w - (probs * w).sum()), atol=1e-12)  # the gradient of sum(probs * w)
