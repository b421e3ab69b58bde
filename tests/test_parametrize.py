"""nn.utils.parametrize, nn.utils.parametrizations (weight_norm, spectral_norm), the older
hook-based nn.utils.weight_norm / spectral_norm, and nn.init.orthogonal_ / sparse_: state dict
keys, forward values and gradients against PyTorch (float64, its parameters and power-iteration
buffers copied in), train / eval steps of the power iteration, removal, and the generic
parametrization machinery (chaining, right_inverse on assignment, caching, errors)."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.nn as nn
from fastdl.nn.utils import parametrizations as P, parametrize

torch = pytest.importorskip("torch")
tnn = torch.nn


def _layers(lib):
    return [("linear", lambda: lib.Linear(5, 4), (2, 5)), ("conv2d", lambda: lib.Conv2d(3, 4, 3), (2, 3, 6, 5)),
            ("conv_transpose2d", lambda: lib.ConvTranspose2d(3, 4, 3), (2, 3, 5, 6))]


def _copy_in(fm, tm):
    fm.load_state_dict({k: fd.tensor(v.detach().double().numpy()) for k, v in tm.state_dict().items()})


def _check_step(fm, tm, shape, rng):
    """One forward + backward through both modules: outputs, state (u, v) and every gradient agree."""
    x = rng.standard_normal(shape)
    ty, fy = tm(torch.tensor(x)), fm(fd.tensor(x))
    g = rng.standard_normal(tuple(ty.shape))
    for p in list(tm.parameters()) + list(fm.parameters()):
        p.grad = None
    ty.backward(torch.tensor(g))
    fy.backward(fd.tensor(g))
    np.testing.assert_allclose(fy.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    fsd = fm.state_dict()
    for k, v in tm.state_dict().items():
        np.testing.assert_allclose(fsd[k].detach().numpy(), v.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=k)
    tp = dict(tm.named_parameters())
    assert sorted(tp) == sorted(n for n, _ in fm.named_parameters())
    for n, p in fm.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tp[n].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=n)


@pytest.mark.parametrize("which", range(3))
@pytest.mark.parametrize("dim", [0, 1, None, -1])
def test_weight_norm_parametrization_matches_torch(which, dim):
    rng = np.random.default_rng(which)
    _, fmk, shape = _layers(nn)[which]
    _, tmk, _ = _layers(tnn)[which]
    tm = tnn.utils.parametrizations.weight_norm(tmk().double(), dim=dim)
    fm = nn.utils.parametrizations.weight_norm(fmk().double(), dim=dim)
    assert list(fm.state_dict()) == list(tm.state_dict())  # parametrizations.weight.original0 / original1, bias
    assert [tuple(v.shape) for v in fm.state_dict().values()] == [tuple(v.shape) for v in tm.state_dict().values()]
    assert parametrize.is_parametrized(fm, "weight") and not parametrize.is_parametrized(fm, "bias")
    assert parametrize.type_before_parametrizations(fm) is type(fmk())
    _copy_in(fm, tm)
    _check_step(fm, tm, shape, rng)


@pytest.mark.parametrize("which", range(3))
def test_spectral_norm_parametrization_matches_torch(which):
    rng = np.random.default_rng(10 + which)
    _, fmk, shape = _layers(nn)[which]
    _, tmk, _ = _layers(tnn)[which]
    tm = tnn.utils.parametrizations.spectral_norm(tmk().double(), n_power_iterations=2)
    fm = nn.utils.parametrizations.spectral_norm(fmk().double(), n_power_iterations=2)
    assert list(fm.state_dict()) == list(tm.state_dict())  # ..., parametrizations.weight.0._u / _v
    _copy_in(fm, tm)
    for mode in ("train", "train", "eval"):  # the power iteration moves u and v in training only
        tm.train(mode == "train")
        fm.train(mode == "train")
        _check_step(fm, tm, shape, rng)


def test_spectral_norm_parametrization_normalises_the_top_singular_value():
    fd.manual_seed(0)
    m = nn.utils.parametrizations.spectral_norm(nn.Linear(20, 30).double())
    for _ in range(100):  # power iteration steps in training-mode accesses
        w = m.weight
    assert abs(np.linalg.svd(w.detach().numpy(), compute_uv=False)[0] - 1) < 1e-5
    v = nn.utils.parametrizations.spectral_norm(nn.Linear(3, 1).double(), name="bias")  # a 1-d tensor: w / |w|
    assert abs(np.linalg.norm(v.bias.detach().numpy()) - 1) < 1e-12


@pytest.mark.parametrize("which", range(3))
@pytest.mark.parametrize("kind", ["weight_norm", "spectral_norm"])
def test_hook_forms_match_torch(which, kind):
    rng = np.random.default_rng(20 + which)
    _, fmk, shape = _layers(nn)[which]
    _, tmk, _ = _layers(tnn)[which]
    with pytest.warns(FutureWarning) if kind == "weight_norm" else _no_warning():
        tm = getattr(tnn.utils, kind)(tmk().double())
    fm = getattr(nn.utils, kind)(fmk().double())
    assert sorted(fm.state_dict()) == sorted(tm.state_dict())  # weight_g / weight_v, weight_orig / _u / _v
    _copy_in(fm, tm)
    for mode in ("train", "train", "eval"):
        tm.train(mode == "train")
        fm.train(mode == "train")
        _check_step(fm, tm, shape, rng)
    getattr(tnn.utils, "remove_" + kind)(tm)
    getattr(nn.utils, "remove_" + kind)(fm)
    assert sorted(fm.state_dict()) == sorted(tm.state_dict()) == ["bias", "weight"]
    _check_step(fm, tm, shape, rng)
    with pytest.raises(ValueError, match=f"{kind} of 'weight' not found"):
        getattr(nn.utils, "remove_" + kind)(fm)


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_hook_forms_errors():
    m = nn.utils.weight_norm(nn.Linear(3, 2))
    with pytest.raises(RuntimeError, match="Cannot register two weight_norm hooks on the same parameter weight"):
        nn.utils.weight_norm(m)
    with pytest.raises(ValueError, match="n_power_iterations to be positive"):
        nn.utils.spectral_norm(nn.Linear(3, 2), n_power_iterations=0)
    with pytest.raises(IndexError, match="spectral_norm: dim 2 is out of range for a weight of shape \\(2, 3\\)"):
        nn.utils.parametrizations.spectral_norm(nn.Linear(3, 2), dim=2)


class _Symmetric(nn.Module):
    def forward(self, x):
        return x.triu() + x.triu(1).T

    def right_inverse(self, a):
        return a.triu()


class _Scale(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c

    def forward(self, x):
        return x * self.c

    def right_inverse(self, y):
        return y / self.c


def test_register_chain_assign_cache_remove():
    rng = np.random.default_rng(3)
    m = nn.Linear(4, 4).double()
    w0 = m.weight
    parametrize.register_parametrization(m, "weight", _Symmetric())
    assert type(m).__name__ == "ParametrizedLinear" and type(nn.Linear(2, 2)) is nn.Linear  # one instance only
    assert m.parametrizations.weight.original is w0  # the same Parameter: optimizers keep it
    assert list(m.state_dict()) == ["bias", "parametrizations.weight.original"]
    w = m.weight.detach().numpy()
    np.testing.assert_allclose(w, w.T)
    np.testing.assert_allclose(np.triu(w), np.triu(w0.detach().numpy()))
    parametrize.register_parametrization(m, "weight", _Scale(3.0))  # chained: 3 sym(original)
    np.testing.assert_allclose(m.weight.detach().numpy(), 3 * w)
    assert list(m.state_dict()) == ["bias", "parametrizations.weight.original"]  # no state in either

    a = rng.standard_normal((4, 4))
    a = a + a.T
    m.weight = fd.tensor(a)  # right_inverse of each, last first, into the original
    np.testing.assert_allclose(m.weight.detach().numpy(), a, atol=1e-12)
    np.testing.assert_allclose(m.parametrizations.weight.original.detach().numpy(), np.triu(a / 3), atol=1e-12)

    x = fd.tensor(rng.standard_normal((2, 4)))
    m(x).sum().backward()  # the gradient reaches the original through both parametrizations
    g = np.ones((4, 1)) @ x.numpy().sum(0, keepdims=True)  # dL/dW of sum(x W^T)
    np.testing.assert_allclose(m.parametrizations.weight.original.grad.numpy(), 3 * (np.triu(g) + np.triu(g.T, 1)),
                               atol=1e-12)

    with parametrize.cached():  # one evaluation per access inside the context
        assert m.weight is m.weight
    assert m.weight is not m.weight

    parametrize.remove_parametrizations(m, "weight")  # leave_parametrized: the last value stays
    assert type(m) is nn.Linear and not hasattr(m, "parametrizations") and m.weight is w0
    np.testing.assert_allclose(m.weight.detach().numpy(), a, atol=1e-12)
    assert list(m.state_dict()) == ["bias", "weight"]  # re-registered last, as in PyTorch


def test_remove_keeping_the_original_and_errors():
    m = nn.Linear(3, 3).double()
    parametrize.register_parametrization(m, "weight", _Scale(2.0))
    orig = m.parametrizations.weight.original.detach().numpy().copy()
    parametrize.register_parametrization(m, "bias", _Scale(2.0))
    parametrize.remove_parametrizations(m, "weight", leave_parametrized=False)
    np.testing.assert_allclose(m.weight.detach().numpy(), orig)
    assert type(m).__name__ == "ParametrizedLinear"  # bias is still parametrized
    with pytest.raises(ValueError, match="does not have a parametrization on weight"):
        parametrize.remove_parametrizations(m, "weight")
    with pytest.raises(ValueError, match="does not have a parameter, a buffer, or a parametrized element with name"):
        parametrize.register_parametrization(m, "nope", _Scale(2.0))

    class Shrink(nn.Module):
        def forward(self, x):
            return x[0]
    with pytest.raises(ValueError, match="may not change the shape or dtype"):
        parametrize.register_parametrization(nn.Linear(3, 3), "weight", Shrink())
    wn = nn.utils.parametrizations.weight_norm(nn.Linear(3, 3))
    with pytest.raises(ValueError, match="Cannot leave unparametrized"):
        parametrize.remove_parametrizations(wn, "weight", leave_parametrized=False)


def test_parametrized_module_trains():
    # A spectrally normalised MLP learns a regression, its weights kept at spectral norm 1.
    fd.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 6)).astype(np.float32)
    y = np.tanh(x @ rng.standard_normal((6, 1)).astype(np.float32) * 0.5)
    sn = nn.utils.parametrizations.spectral_norm
    model = nn.Sequential(sn(nn.Linear(6, 32)), nn.Tanh(), sn(nn.Linear(32, 1)))
    opt = fd.optim.Adam(model.parameters(), lr=1e-2)
    xs, ys = fd.tensor(x), fd.tensor(y)
    first = None
    for _ in range(200):
        loss = ((model(xs) - ys) ** 2).mean()
        first = first if first is not None else float(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.2 * first
    for layer in (model[0], model[2]):
        assert abs(np.linalg.svd(layer.weight.detach().numpy(), compute_uv=False)[0] - 1) < 1e-3


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (6, 6), (4, 2, 3, 3), (2, 12, 1)])
def test_init_orthogonal(shape):
    fd.manual_seed(1)
    t = nn.init.orthogonal_(fd.empty(*shape, dtype=fd.float64), gain=2.0)
    m = t.numpy().reshape(shape[0], -1)
    small = min(m.shape)
    gram = m @ m.T if m.shape[0] == small else m.T @ m  # orthonormal rows (wide) or columns (tall)
    np.testing.assert_allclose(gram, 4 * np.eye(small), atol=1e-12)
    other = nn.init.orthogonal_(fd.empty(*shape, dtype=fd.float64))
    assert not np.allclose(other.numpy(), t.numpy() / 2)  # random, not a fixed basis
    with pytest.raises(ValueError, match="orthogonal_: only tensors with 2 or more dimensions"):
        nn.init.orthogonal_(fd.empty(4))


def test_init_sparse_eye_dirac_match_torch():
    fd.manual_seed(2)
    t = nn.init.sparse_(fd.empty(40, 30, dtype=fd.float64), sparsity=0.3, std=0.5)
    zeros = (t.numpy() == 0).sum(0)
    assert (zeros == 12).all()  # ceil(0.3 * 40) per column
    nz = t.numpy()[t.numpy() != 0]
    assert abs(nz.std() - 0.5) < 0.05 and abs(nz.mean()) < 0.05
    np.testing.assert_array_equal(nn.init.eye_(fd.empty(3, 5)).numpy(), torch.nn.init.eye_(torch.empty(3, 5)).numpy())
    for shape, groups in (((4, 2, 3), 2), ((6, 3, 3, 3), 1), ((4, 4, 3, 2, 5), 2), ((2, 5, 3), 1)):
        np.testing.assert_array_equal(nn.init.dirac_(fd.empty(*shape), groups).numpy(),
                                      torch.nn.init.dirac_(torch.empty(*shape), groups).numpy())
    with pytest.raises(ValueError, match="dirac_: dim 0 \\(5\\) must be divisible by groups \\(2\\)"):
        nn.init.dirac_(fd.empty(5, 2, 3), 2)
    with pytest.raises(ValueError, match="eye_: only tensors with 2 dimensions"):
        nn.init.eye_(fd.empty(2, 2, 2))
    with pytest.raises(ValueError, match="sparse_: only tensors with 2 dimensions"):
        nn.init.sparse_(fd.empty(2, 2, 2), 0.5)


def _orth_pair(shape, orthogonal_map, triv, seed=0):
    w = np.random.default_rng(seed).normal(size=shape)
    a, b = fd.nn.Module(), torch.nn.Module()
    a.weight, b.weight = fd.nn.Parameter(fd.tensor(w)), torch.nn.Parameter(torch.tensor(w))
    P.orthogonal(a, orthogonal_map=orthogonal_map, use_trivialization=triv)
    torch.nn.utils.parametrizations.orthogonal(b, orthogonal_map=orthogonal_map, use_trivialization=triv)
    return a, b


@pytest.mark.parametrize("shape", [(5, 5), (7, 3), (3, 7), (2, 4, 3)])
@pytest.mark.parametrize("orthogonal_map,triv", [("matrix_exp", True), ("cayley", True), ("householder", True),
                                                 ("householder", False)])
def test_orthogonal_parametrization(shape, orthogonal_map, triv):
    a, b = _orth_pair(shape, orthogonal_map, triv)
    W = a.weight.detach().numpy()
    gram = np.swapaxes(W, -1, -2) @ W if shape[-2] >= shape[-1] else W @ np.swapaxes(W, -1, -2)
    np.testing.assert_allclose(gram, np.broadcast_to(np.eye(gram.shape[-1]), gram.shape), atol=1e-10)
    assert sorted(a.state_dict()) == sorted(b.state_dict())
    x = np.random.default_rng(1).normal(size=shape)
    (a.weight * fd.tensor(x)).sum().backward()
    (b.weight * torch.tensor(x)).sum().backward()
    if shape[-2] == shape[-1] or not triv:  # wide / tall bases are completed with random columns: torch's differ
        np.testing.assert_allclose(W, b.weight.detach().numpy(), atol=1e-10)
        np.testing.assert_allclose(a.parametrizations.weight.original.grad.numpy(),
                                   b.parametrizations.weight.original.grad.numpy(), atol=1e-10)
    # it stays orthogonal along an optimisation path
    opt = fd.optim.SGD(a.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        (a.weight * fd.tensor(x)).sum().backward()
        opt.step()
    W = a.weight.detach().numpy()
    gram = np.swapaxes(W, -1, -2) @ W if shape[-2] >= shape[-1] else W @ np.swapaxes(W, -1, -2)
    np.testing.assert_allclose(gram, np.broadcast_to(np.eye(gram.shape[-1]), gram.shape), atol=1e-9)


def test_orthogonal_keeps_an_orthogonal_weight_and_checks_arguments():
    q = np.linalg.qr(np.random.default_rng(2).normal(size=(4, 4)))[0]
    m = fd.nn.Linear(4, 4)
    with fd.no_grad():
        m.weight.copy_(fd.tensor(q, dtype=fd.float32))
    P.orthogonal(m)
    np.testing.assert_allclose(m.weight.detach().numpy(), q, atol=1e-5)
    with pytest.raises(ValueError):
        P.orthogonal(fd.nn.Linear(3, 3), orthogonal_map="qr")
    with pytest.raises(ValueError):
        P.orthogonal(fd.nn.Linear(3, 3), name="missing")
    m = fd.nn.Module()
    m.weight = fd.nn.Parameter(fd.randn(5))
    with pytest.raises(ValueError):
        P.orthogonal(m)
    m = P.orthogonal(fd.nn.Linear(3, 3), orthogonal_map="cayley", use_trivialization=False)
    with pytest.raises(NotImplementedError):  # assigning needs the trivialization for these maps (as torch)
        m.weight = fd.eye(3)


def test_diagonal_is_a_view():
    a = fd.zeros(3, 4)
    a.diagonal().fill_(1.0)
    a.diagonal(1).add_(2.0)
    fd.diagonal(a, -1).copy_(fd.tensor([5.0, 6.0]))
    t = torch.zeros(3, 4)
    t.diagonal().fill_(1.0)
    t.diagonal(1).add_(2.0)
    torch.diagonal(t, -1).copy_(torch.tensor([5.0, 6.0]))
    np.testing.assert_array_equal(a.numpy(), t.numpy())
    d = fd.diag(a)  # diag copies
    d.fill_(0.0)
    assert float(a[0, 0]) == 1.0
