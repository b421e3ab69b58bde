"""fastdl.distributions against torch.distributions: densities, moments, cdf/icdf, KL, reparameterised
gradients, sampling statistics, shapes and validation. float64 throughout, fixed seeds."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.distributions as T  # noqa: E402

import fastdl as fd  # noqa: E402
import fastdl.distributions as D  # noqa: E402


def f(a):
    return fd.tensor(np.asarray(a, dtype=np.float64))


def t(a):
    return torch.tensor(np.asarray(a, dtype=np.float64))


def close(a, b, atol=1e-10, rtol=1e-8):
    a = a.detach().numpy() if isinstance(a, fd.Tensor) else np.asarray(a)
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, atol=atol, rtol=rtol, equal_nan=True)


def _spd(r, batch, k):
    a = r.normal(size=batch + (k, k))
    return a @ np.swapaxes(a, -1, -2) + k * np.eye(k)


# name -> (numpy params, numpy values, args builder).  Params broadcast: (3, 1) against (4,), values (2, 3, 4).
def _cases(r):
    u = r.uniform(size=(2, 3, 4))
    low, high = r.uniform(-1, 0, size=(3, 1)), r.uniform(0.5, 2, size=(4,))
    probs = r.uniform(0.05, 1, size=(3, 5))
    cov = _spd(r, (4,), 3)
    coin = (r.uniform(size=(2, 3, 4)) < 0.5).astype(np.float64)
    return {
        "Normal": ((r.normal(size=(3, 1)), r.uniform(0.5, 2, size=(4,))), r.normal(size=(2, 3, 4)) * 2, {}),
        "LogNormal": ((r.normal(size=(3, 1)) * 0.5, r.uniform(0.3, 1, size=(4,))), np.exp(r.normal(size=(2, 3, 4))),
                      {}),
        "Laplace": ((r.normal(size=(3, 1)), r.uniform(0.5, 2, size=(4,))), r.normal(size=(2, 3, 4)) * 2, {}),
        "Exponential": ((r.uniform(0.5, 2, size=(3, 4)),), r.exponential(size=(2, 3, 4)), {}),
        "Uniform": ((low, high), low + u * (high - low), {}),
        "Bernoulli": ((), coin, {"probs": r.uniform(0.05, 0.95, (3, 4))}),
        "Bernoulli_logits": ((), coin, {"logits": r.normal(size=(3, 4))}),
        "Categorical": ((), r.integers(0, 5, size=(2, 3)), {"probs": probs}),
        "Categorical_logits": ((), r.integers(0, 5, size=(2, 3)), {"logits": r.normal(size=(3, 5))}),
        "OneHotCategorical": ((), np.eye(5)[r.integers(0, 5, size=(2, 3))], {"probs": probs}),
        "MultivariateNormal": ((r.normal(size=(2, 1, 3)),), r.normal(size=(5, 2, 4, 3)), {"covariance_matrix": cov}),
        "MultivariateNormal_prec": ((r.normal(size=(3,)),), r.normal(size=(5, 4, 3)), {"precision_matrix": cov}),
        "MultivariateNormal_tril": ((r.normal(size=(2, 1, 3)),), r.normal(size=(2, 4, 3)),
                                    {"scale_tril": np.linalg.cholesky(cov)}),
    }


def _build(lib, name, args, kwargs):
    conv = f if lib is D else t
    cls = getattr(lib, name.split("_")[0])
    return cls(*[conv(a) for a in args], **{k: conv(v) for k, v in kwargs.items()})


FAMILIES = list(_cases(np.random.default_rng(0)))
HAS_CDF = {"Normal", "LogNormal", "Laplace", "Exponential", "Uniform"}


@pytest.mark.parametrize("name", FAMILIES)
def test_against_torch(name):
    args, value, kwargs = _cases(np.random.default_rng(FAMILIES.index(name)))[name]
    d, e = _build(D, name, args, kwargs), _build(T, name, args, kwargs)
    assert tuple(d.batch_shape) == tuple(e.batch_shape) and tuple(d.event_shape) == tuple(e.event_shape)
    vf = fd.tensor(value) if name.startswith("Categorical") else f(value)
    vt = torch.tensor(value) if name.startswith("Categorical") else t(value)
    close(d.log_prob(vf), e.log_prob(vt))
    close(d.entropy(), e.entropy())
    for attr in ("mean", "variance", "stddev", "mode"):
        close(getattr(d, attr), getattr(e, attr))
    if name.split("_")[0] in HAS_CDF:
        close(d.cdf(vf), e.cdf(vt))
        q = np.random.default_rng(1).uniform(0.01, 0.99, size=(2, 3, 4))
        close(d.icdf(f(q)), e.icdf(t(q)), atol=1e-9)
    if e.has_enumerate_support:
        close(d.enumerate_support(), e.enumerate_support())
        close(d.enumerate_support(expand=False), e.enumerate_support(expand=False))
    assert d.has_rsample == e.has_rsample
    # sample shapes: sample_shape + batch_shape + event_shape
    assert tuple(d.sample((2, 3)).shape) == tuple(e.sample((2, 3)).shape)
    assert tuple(d.sample().shape) == tuple(e.sample().shape)


def test_mvn_derived_matrices():
    r = np.random.default_rng(3)
    cov, loc = _spd(r, (2,), 3), r.normal(size=(4, 1, 3))
    d, e = D.MultivariateNormal(f(loc), f(cov)), T.MultivariateNormal(t(loc), t(cov))
    for attr in ("scale_tril", "covariance_matrix", "precision_matrix"):
        close(getattr(d, attr), getattr(e, attr), atol=1e-9)
    d2 = D.MultivariateNormal(f(loc), precision_matrix=f(cov))
    e2 = T.MultivariateNormal(t(loc), precision_matrix=t(cov))
    close(d2.covariance_matrix, e2.covariance_matrix, atol=1e-9)


def test_independent_against_torch():
    r = np.random.default_rng(4)
    loc, scale, x = r.normal(size=(3, 4)), r.uniform(0.5, 2, size=(3, 4)), r.normal(size=(2, 3, 4))
    d = D.Independent(D.Normal(f(loc), f(scale)), 1)
    e = T.Independent(T.Normal(t(loc), t(scale)), 1)
    assert tuple(d.batch_shape) == (3,) and tuple(d.event_shape) == (4,)
    close(d.log_prob(f(x)), e.log_prob(t(x)))
    close(d.entropy(), e.entropy())
    close(d.mean, e.mean), close(d.variance, e.variance)
    assert tuple(d.rsample((2, 5)).shape) == (2, 5, 3, 4) and d.has_rsample
    d2 = D.Independent(D.Bernoulli(probs=f(r.uniform(size=(2, 3, 4)))), 2)
    e2 = T.Independent(T.Bernoulli(probs=t(d2.base_dist.probs.numpy())), 2)
    v = (r.uniform(size=(5, 2, 3, 4)) < 0.5).astype(np.float64)
    close(d2.log_prob(f(v)), e2.log_prob(t(v)))
    assert tuple(d2.batch_shape) == (2,) and tuple(d2.event_shape) == (3, 4)
    with pytest.raises(ValueError):
        D.Independent(D.Normal(f(loc), f(scale)), 3)


def test_python_floats_and_broadcasting():
    d, e = D.Normal(f(np.arange(3.0).reshape(3, 1)), 2.0), T.Normal(t(np.arange(3.0).reshape(3, 1)), 2.0)
    assert tuple(d.batch_shape) == (3, 1) and d.scale.dtype == fd.float64
    close(d.log_prob(f(np.linspace(-1, 1, 4))), e.log_prob(t(np.linspace(-1, 1, 4))))
    n = D.Normal(0.0, 1.0)
    assert tuple(n.batch_shape) == () and n.loc.dtype == fd.get_default_dtype()
    assert tuple(n.sample((7,)).shape) == (7,)
    assert abs(D.Exponential(2.0).mean.item() - 0.5) < 1e-7
    assert abs(D.Bernoulli(0.25).variance.item() - 0.1875) < 1e-7


def test_expand():
    r = np.random.default_rng(5)
    loc, scale = r.normal(size=(3, 1)), r.uniform(0.5, 2, size=(3, 1))
    d = D.Normal(f(loc), f(scale)).expand((2, 3, 4))
    assert tuple(d.batch_shape) == (2, 3, 4) and tuple(d.sample().shape) == (2, 3, 4)
    c = D.Categorical(logits=f(r.normal(size=(3, 5)))).expand((2, 3))
    assert tuple(c.batch_shape) == (2, 3) and tuple(c.sample((4,)).shape) == (4, 2, 3)
    cov = _spd(r, (), 3)
    m = D.MultivariateNormal(f(np.zeros(3)), f(cov)).expand((2,))
    e = T.MultivariateNormal(t(np.zeros(3)), t(cov)).expand((2,))
    x = r.normal(size=(2, 3))
    close(m.log_prob(f(x)), e.log_prob(t(x)))
    assert tuple(m.covariance_matrix.shape) == (2, 3, 3)
    i = D.Independent(D.Normal(f(np.zeros(4)), 1.0), 1).expand((5,))
    assert tuple(i.sample().shape) == (5, 4)


# ---- KL ----------------------------------------------------------------------------------------------------------
def _kl_pairs(r):
    cov1, cov2 = _spd(r, (2,), 3), _spd(r, (), 3)
    p1, p2 = r.uniform(0.05, 1, size=(3, 5)), r.uniform(0.05, 1, size=(2, 1, 5))
    return {
        "Normal": ((r.normal(size=(3, 1)), r.uniform(0.5, 2, (4,))), (r.normal(size=(4,)), r.uniform(0.5, 2, (3, 1)))),
        "LogNormal": ((r.normal(size=(3,)), r.uniform(0.5, 2, (3,))), (0.3, 1.5)),
        "Laplace": ((r.normal(size=(3, 1)), r.uniform(0.5, 2, (4,))), (r.normal(size=(4,)), r.uniform(0.5, 2, (3, 1)))),
        "Exponential": ((r.uniform(0.5, 2, (3, 4)),), (r.uniform(0.5, 2, (4,)),)),
        "Uniform": ((np.array([-1.0, 0.0, -0.5]), np.array([1.0, 0.5, 2.0])), (np.array([-2.0, -1.0, 0.0]), 3.0)),
        "Bernoulli": ({"probs": np.array([0.0, 0.3, 1.0, 0.5, 0.0])}, {"probs": np.array([0.2, 0.0, 0.7, 1.0, 0.0])}),
        "Bernoulli_logits": ({"logits": r.normal(size=(3, 4))}, {"logits": r.normal(size=(3, 4))}),
        "Categorical": ({"probs": p1}, {"probs": p2}),
        "Categorical_zeros": ({"probs": np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])},
                              {"probs": np.array([[0.5, 0.0, 0.5], [0.6, 0.2, 0.2]])}),
        "OneHotCategorical": ({"logits": r.normal(size=(3, 5))}, {"logits": r.normal(size=(5,))}),
        "MultivariateNormal": ((r.normal(size=(4, 1, 3)), {"covariance_matrix": cov1}),
                               (r.normal(size=(3,)), {"scale_tril": np.linalg.cholesky(cov2)})),
    }


def _build_kl(lib, name, spec):
    conv = f if lib is D else t
    cls = getattr(lib, name.split("_")[0])
    if isinstance(spec, dict):
        return cls(**{k: conv(v) for k, v in spec.items()})
    if isinstance(spec[-1], dict):
        return cls(*[conv(a) for a in spec[:-1]], **{k: conv(v) for k, v in spec[-1].items()})
    return cls(*[conv(a) if isinstance(a, np.ndarray) else a for a in spec])


@pytest.mark.parametrize("name", list(_kl_pairs(np.random.default_rng(0))))
def test_kl_against_torch(name):
    sp, sq = _kl_pairs(np.random.default_rng(7))[name]
    got = D.kl_divergence(_build_kl(D, name, sp), _build_kl(D, name, sq))
    want = T.kl_divergence(_build_kl(T, name, sp), _build_kl(T, name, sq))
    close(got, want, atol=1e-9)


def test_kl_independent_and_errors():
    r = np.random.default_rng(8)
    a, b = [(r.normal(size=(3, 4)), r.uniform(0.5, 2, (3, 4))) for _ in range(2)]
    got = D.kl_divergence(D.Independent(D.Normal(*map(f, a)), 1), D.Independent(D.Normal(*map(f, b)), 1))
    want = T.kl_divergence(T.Independent(T.Normal(*map(t, a)), 1), T.Independent(T.Normal(*map(t, b)), 1))
    close(got, want)
    assert tuple(got.shape) == (3,)
    with pytest.raises(NotImplementedError):
        D.kl_divergence(D.Normal(0.0, 1.0), D.Cauchy(0.0, 1.0))  # no closed form registered (as in torch)
    with pytest.raises(NotImplementedError):
        D.kl_divergence(D.Independent(D.Normal(f(a[0]), 1.0), 1), D.Independent(D.Normal(f(a[0]), 1.0), 2))


def test_register_kl_custom_and_most_specific():
    class MyNormal(D.Normal):
        pass

    # a subclass uses its parent's rule until it registers a more specific one
    close(D.kl_divergence(MyNormal(0.0, 1.0), D.Normal(1.0, 1.0)), np.float32(0.5), atol=1e-6)

    @D.register_kl(MyNormal, D.Normal)
    def _kl(p, q):
        return fd.tensor(-1.0)

    assert D.kl_divergence(MyNormal(0.0, 1.0), D.Normal(1.0, 1.0)).item() == -1.0
    assert abs(D.kl_divergence(D.Normal(0.0, 1.0), D.Normal(1.0, 1.0)).item() - 0.5) < 1e-6
    with pytest.raises(TypeError):
        D.register_kl(int, D.Normal)


# ---- reparameterised gradients --------------------------------------------------------------------------------
def _fd_grad(fun, params, eps=1e-6):
    """Central finite differences of a scalar function of float64 numpy arrays."""
    grads = []
    for i, p in enumerate(params):
        g = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            hi = [q.copy() for q in params]
            lo = [q.copy() for q in params]
            hi[i][idx] += eps
            lo[i][idx] -= eps
            g[idx] = (fun(*hi) - fun(*lo)) / (2 * eps)
        grads.append(g)
    return grads


RSAMPLE = {
    "Normal": lambda r: (r.normal(size=(3,)), r.uniform(0.5, 2, (3,))),
    "LogNormal": lambda r: (r.normal(size=(3,)) * 0.3, r.uniform(0.2, 0.6, (3,))),
    "Laplace": lambda r: (r.normal(size=(3,)), r.uniform(0.5, 2, (3,))),
    "Exponential": lambda r: (r.uniform(0.5, 2, (3,)),),
    "Uniform": lambda r: (r.uniform(-1, 0, (3,)), r.uniform(0.5, 2, (3,))),
    "MultivariateNormal": lambda r: (r.normal(size=(3,)), np.linalg.cholesky(_spd(r, (), 3))),
}


def _make(name, params):
    if name == "MultivariateNormal":  # the upper triangle is not a parameter: keep it zero under perturbation
        return D.MultivariateNormal(params[0], scale_tril=params[1].tril())
    return getattr(D, name)(*params)


@pytest.mark.parametrize("name", list(RSAMPLE))
def test_rsample_gradient_finite_differences(name):
    params = RSAMPLE[name](np.random.default_rng(9))

    def value(*ps):
        fd.manual_seed(123)
        x = _make(name, [f(p) for p in ps]).rsample((4,))
        return float((fd.sin(x) * x).sum().item())

    ts = [fd.tensor(p, requires_grad=True) for p in params]
    fd.manual_seed(123)
    x = _make(name, ts).rsample((4,))
    (fd.sin(x) * x).sum().backward()
    want = _fd_grad(value, [p.copy() for p in params])
    if name == "MultivariateNormal":  # only the lower triangle of scale_tril is a parameter
        want[1] = np.tril(want[1])
        got1 = np.tril(ts[1].grad.numpy())
        close(ts[0].grad, want[0], atol=1e-6, rtol=1e-5)
        close(got1, want[1], atol=1e-6, rtol=1e-5)
        return
    for p, g in zip(ts, want):
        close(p.grad, g, atol=1e-6, rtol=1e-5)


def test_rsample_gradient_same_noise_as_torch():
    r = np.random.default_rng(10)
    loc, scale = r.normal(size=(3, 1)), r.uniform(0.5, 2, (4,))
    lf, sf = fd.tensor(loc, requires_grad=True), fd.tensor(scale, requires_grad=True)
    fd.manual_seed(0)
    z = D.Normal(lf, sf).rsample((2,))
    (z ** 3).sum().backward()
    eps = (z.detach().numpy() - loc) / scale  # the noise fastdl drew, replayed through torch's formula
    lt, st = torch.tensor(loc, requires_grad=True), torch.tensor(scale, requires_grad=True)
    zt = lt + torch.tensor(eps) * st
    (zt ** 3).sum().backward()
    close(lf.grad, lt.grad), close(sf.grad, st.grad)
    # MultivariateNormal via covariance_matrix: gradient reaches the covariance through the Cholesky factor
    cov = _spd(r, (), 3)
    cf, ct = fd.tensor(cov, requires_grad=True), torch.tensor(cov, requires_grad=True)
    fd.manual_seed(0)
    x = D.MultivariateNormal(fd.zeros(3, dtype=fd.float64), cf).rsample((5,))
    (x ** 2).sum().backward()
    eps = np.linalg.solve(np.linalg.cholesky(cov), x.detach().numpy().T).T
    xt = (torch.linalg.cholesky(ct) @ torch.tensor(eps).T).T
    (xt ** 2).sum().backward()
    close(cf.grad, ct.grad, atol=1e-8)


def test_sample_is_detached_and_seeded():
    loc = fd.tensor([0.0, 1.0], requires_grad=True)
    s = D.Normal(loc, 1.0).sample((3,))
    assert not s.requires_grad
    fd.manual_seed(42)
    a = D.Normal(loc, 1.0).rsample((3,)).detach().numpy()
    fd.manual_seed(42)
    b = D.Normal(loc, 1.0).rsample((3,)).detach().numpy()
    np.testing.assert_array_equal(a, b)
    with pytest.raises(NotImplementedError):
        D.Bernoulli(0.5).rsample()


# ---- sampling statistics -------------------------------------------------------------------------------------
N = 20000
MOMENTS = {
    "Normal": lambda: D.Normal(f([0.5, -1.0]), f([1.0, 2.0])),
    "LogNormal": lambda: D.LogNormal(f([0.0, 0.5]), f([0.25, 0.4])),
    "Laplace": lambda: D.Laplace(f([0.5, -1.0]), f([1.0, 0.5])),
    "Exponential": lambda: D.Exponential(f([0.5, 3.0])),
    "Uniform": lambda: D.Uniform(f([0.0, -2.0]), f([1.0, 5.0])),
    "Bernoulli": lambda: D.Bernoulli(f([0.1, 0.6])),
    "OneHotCategorical": lambda: D.OneHotCategorical(f([0.1, 0.2, 0.7])),
    "MultivariateNormal": lambda: D.MultivariateNormal(f([1.0, -1.0]), f([[2.0, 0.8], [0.8, 1.0]])),
    "Independent": lambda: D.Independent(D.Normal(f([0.5, -1.0]), f([1.0, 2.0])), 1),
}


@pytest.mark.parametrize("name", list(MOMENTS))
def test_sample_moments(name):
    fd.manual_seed(2024)
    d = MOMENTS[name]()
    x = d.sample((N,)).numpy()
    mean, var = d.mean.numpy(), d.variance.numpy()
    assert np.all(np.abs(x.mean(0) - mean) < 5 * np.sqrt(var / N)), (x.mean(0), mean)
    np.testing.assert_allclose(x.var(0), var, rtol=0.1)
    if name == "MultivariateNormal":
        np.testing.assert_allclose(np.cov(x.T), d.covariance_matrix.numpy(), atol=0.08)
    if name in ("Uniform", "Exponential", "LogNormal"):
        assert bool(d.support.check(f(x)).all())


def test_categorical_frequencies():
    fd.manual_seed(7)
    probs = np.array([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]])
    x = D.Categorical(f(probs)).sample((N,)).numpy()
    assert x.shape == (N, 2) and x.dtype == np.int64
    freq = np.stack([np.bincount(x[:, i], minlength=3) / N for i in range(2)])
    assert np.all(np.abs(freq - probs) < 5 * np.sqrt(probs * (1 - probs) / N))


def test_laplace_exponential_samples_finite():
    fd.manual_seed(1)
    assert bool(fd.isfinite(D.Laplace(0.0, 1.0).sample((50000,))).all())
    assert bool(fd.isfinite(D.Exponential(1.0).sample((50000,))).all())


# ---- validation ----------------------------------------------------------------------------------------------
BAD_PARAMS = [
    ("Normal", (0.0, -1.0), {}, "scale"),
    ("Normal", (0.0, 0.0), {}, "scale"),
    ("Normal", (float("nan"), 1.0), {}, "loc"),
    ("LogNormal", (0.0, -1.0), {}, "scale"),
    ("Laplace", (0.0, 0.0), {}, "scale"),
    ("Exponential", (-2.0,), {}, "rate"),
    ("Bernoulli", (1.5,), {}, "probs"),
    ("Bernoulli", (), {"probs": [-0.1, 0.5]}, "probs"),
    ("Categorical", (), {"probs": [0.5, -0.1, 0.6]}, "probs"),
    ("OneHotCategorical", (), {"probs": [0.5, -0.1, 0.6]}, "probs"),
    ("Uniform", (1.0, 0.0), {}, "low"),
    ("MultivariateNormal", ([0.0, 0.0],), {"covariance_matrix": [[1.0, 2.0], [2.0, 1.0]]}, "covariance_matrix"),
    ("MultivariateNormal", ([0.0, 0.0],), {"precision_matrix": [[1.0, 0.5], [0.0, 1.0]]}, "precision_matrix"),
    ("MultivariateNormal", ([0.0, 0.0],), {"scale_tril": [[-1.0, 0.0], [0.5, 1.0]]}, "scale_tril"),
    ("MultivariateNormal", ([0.0, 0.0],), {"scale_tril": [[1.0, 0.3], [0.5, 1.0]]}, "scale_tril"),
]


def _conv(lib, a):
    if isinstance(a, list):
        return f(a) if lib is D else t(a)
    return a


@pytest.mark.parametrize("name,args,kwargs,param", BAD_PARAMS)
def test_invalid_parameters_raise(name, args, kwargs, param):
    for lib in (T, D):  # torch raises too: same contract
        cls = getattr(lib, name)
        with pytest.raises(ValueError, match=param if lib is D else None):
            cls(*[_conv(lib, a) for a in args], **{k: _conv(lib, v) for k, v in kwargs.items()})
    if name in ("OneHotCategorical", "MultivariateNormal") and param != "scale_tril":
        return  # torch too: the inner Categorical validates anyway, and Cholesky of a non-PD matrix fails
    # validate_args=False builds anyway
    getattr(D, name)(*[_conv(D, a) for a in args], **{k: _conv(D, v) for k, v in kwargs.items()},
                     validate_args=False)


BAD_VALUES = [
    (lambda lib: lib.Exponential(1.0), -1.0),
    (lambda lib: lib.LogNormal(0.0, 1.0), 0.0),
    (lambda lib: lib.Bernoulli(0.3), 0.5),
    (lambda lib: lib.Uniform(0.0, 1.0), 1.5),
    (lambda lib: lib.Normal(0.0, 1.0), float("nan")),
    (lambda lib: lib.Categorical(probs=(f if lib is D else t)([0.2, 0.8])), 2.0),
    (lambda lib: lib.Categorical(probs=(f if lib is D else t)([0.2, 0.8])), 0.5),
    (lambda lib: lib.OneHotCategorical(probs=(f if lib is D else t)([0.2, 0.8])), [1.0, 1.0]),
    (lambda lib: lib.MultivariateNormal((f if lib is D else t)([0.0, 0.0]),
                                        (f if lib is D else t)(np.eye(2))), [0.0, 0.0, 0.0]),
]


@pytest.mark.parametrize("i", range(len(BAD_VALUES)))
def test_log_prob_outside_support_raises(i):
    make, value = BAD_VALUES[i]
    for lib in (T, D):
        d = make(lib)
        v = (f if lib is D else t)(value)
        with pytest.raises(ValueError):
            d.log_prob(v)


def test_validation_switches():
    d, e = D.Exponential(1.0, validate_args=False), T.Exponential(1.0, validate_args=False)
    close(d.log_prob(f(-1.0)), e.log_prob(t(-1.0)))
    with pytest.raises(ValueError, match="not both"):
        D.Bernoulli(probs=0.5, logits=0.0)
    with pytest.raises(ValueError, match="Exactly one"):
        D.MultivariateNormal(f([0.0]), f([[1.0]]), scale_tril=f([[1.0]]))
    with pytest.raises(ValueError, match="at least one-dimensional"):
        D.MultivariateNormal(fd.tensor(0.0), f([[1.0]]))
    try:
        D.Distribution.set_default_validate_args(False)
        D.Normal(0.0, -1.0)
    finally:
        D.Distribution.set_default_validate_args(True)
    with pytest.raises(ValueError):
        D.Normal(0.0, -1.0)


# ---- a VAE-style step --------------------------------------------------------------------------------------------
def test_vae_style_gradient_matches_torch():
    r = np.random.default_rng(11)
    x = r.normal(size=(8, 5))
    w_mu, w_lv, w_dec = r.normal(size=(5, 2)) * 0.3, r.normal(size=(5, 2)) * 0.3, r.normal(size=(2, 5)) * 0.3

    wf = [fd.tensor(w, requires_grad=True) for w in (w_mu, w_lv, w_dec)]
    xf = f(x)
    mu, logvar = xf @ wf[0], xf @ wf[1]
    q = D.Normal(mu, fd.exp(0.5 * logvar))
    fd.manual_seed(3)
    z = q.rsample()
    recon = ((z @ wf[2] - xf) ** 2).sum(-1)
    kl = D.kl_divergence(q, D.Normal(fd.zeros_like(mu), fd.ones_like(mu))).sum(-1)
    loss = (recon + kl).mean()
    loss.backward()
    assert all(bool(fd.isfinite(w.grad).all()) for w in wf)

    eps = (z.detach().numpy() - mu.detach().numpy()) / np.exp(0.5 * logvar.detach().numpy())
    wt = [torch.tensor(w, requires_grad=True) for w in (w_mu, w_lv, w_dec)]
    xt = t(x)
    mu_t, lv_t = xt @ wt[0], xt @ wt[1]
    qt = T.Normal(mu_t, torch.exp(0.5 * lv_t))
    zt = mu_t + torch.tensor(eps) * qt.scale
    loss_t = (((zt @ wt[2] - xt) ** 2).sum(-1) + T.kl_divergence(qt, T.Normal(0.0, 1.0)).sum(-1)).mean()
    loss_t.backward()
    close(loss, loss_t)
    for a, b in zip(wf, wt):
        close(a.grad, b.grad, atol=1e-9)


def test_policy_gradient_categorical_log_prob_grad():
    r = np.random.default_rng(12)
    logits = r.normal(size=(4, 3))
    actions = np.array([0, 2, 1, 2])
    lf, lt = fd.tensor(logits, requires_grad=True), torch.tensor(logits, requires_grad=True)
    adv = np.array([1.0, -0.5, 2.0, 0.3])
    (-(D.Categorical(logits=lf).log_prob(fd.tensor(actions)) * f(adv)).sum()
     - 0.01 * D.Categorical(logits=lf).entropy().sum()).backward()
    (-(T.Categorical(logits=lt).log_prob(torch.tensor(actions)) * t(adv)).sum()
     - 0.01 * T.Categorical(logits=lt).entropy().sum()).backward()
    close(lf.grad, lt.grad)


def test_exposed_on_fastdl():
    assert fd.distributions.Normal is D.Normal
    assert "scale" in repr(D.Normal(0.0, 1.0))


def test_float32_default_dtype_vae_step():
    mu = fd.zeros(4, 2, requires_grad=True)
    log_sigma = fd.zeros(4, 2, requires_grad=True)
    fd.manual_seed(0)
    q = D.Normal(mu, fd.exp(log_sigma))
    z = q.rsample()
    loss = (z ** 2).sum() + D.kl_divergence(q, D.Normal(0.0, 1.0)).sum()
    loss.backward()
    assert z.dtype == fd.float32 and loss.dtype == fd.float32
    assert bool(fd.isfinite(mu.grad).all()) and bool(fd.isfinite(log_sigma.grad).all())
    close(mu.grad, 2 * z.detach().numpy(), atol=1e-6, rtol=1e-5)  # KL(N(mu, 1) || N(0, 1)) has zero grad at mu = 0
