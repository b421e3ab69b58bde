"""Second derivatives (create_graph=True) through the unary elementwise ops whose fast backward is a
fused kernel or reads a detached saved output: gradgradcheck by finite differences, a WGAN-GP style
gradient penalty against PyTorch, the Hessian of a sum, and the fast path's results unchanged."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.nn.functional as F

OPS = {
    "exp": (lambda t: t.exp(), lambda x: x),
    "expm1": (lambda t: t.expm1(), lambda x: x),
    "exp2": (lambda t: t.exp2(), lambda x: x),
    "sqrt": (lambda t: t.sqrt(), lambda x: np.abs(x) + 0.5),
    "rsqrt": (lambda t: t.rsqrt(), lambda x: np.abs(x) + 0.5),
    "tan": (lambda t: t.tan(), lambda x: x * 0.4),
    "tanh": (lambda t: t.tanh(), lambda x: x),
    "sigmoid": (lambda t: t.sigmoid(), lambda x: x),
    "relu": (lambda t: F.relu(t) * t, lambda x: x + np.sign(x) * 0.1),  # away from the kink
    "reciprocal": (lambda t: t.reciprocal(), lambda x: np.abs(x) + 0.5),
    "gelu": (lambda t: F.gelu(t), lambda x: x),
    "gelu_tanh": (lambda t: F.gelu(t, approximate="tanh"), lambda x: x),
    "silu": (lambda t: F.silu(t), lambda x: x),
    "softplus": (lambda t: F.softplus(t), lambda x: x),
}


def _x(shape, make, seed=0):
    return fd.from_numpy(make(np.random.default_rng(seed).standard_normal(shape))).requires_grad_(True)


@pytest.mark.parametrize("name", sorted(OPS))
def test_gradgradcheck(name):
    f, make = OPS[name]
    assert fd.autograd.gradgradcheck(f, [_x((3, 4), make)])


@pytest.mark.parametrize("name", sorted(OPS))
def test_gradient_penalty_matches_torch(name):
    torch = pytest.importorskip("torch")
    f, make = OPS[name]
    tf = {"relu": lambda t: torch.relu(t) * t, "gelu": torch.nn.functional.gelu,
          "gelu_tanh": lambda t: torch.nn.functional.gelu(t, approximate="tanh"),
          "silu": torch.nn.functional.silu, "softplus": torch.nn.functional.softplus}.get(
        name, lambda t: getattr(t, name)())
    rng = np.random.default_rng(1)
    x0 = make(rng.standard_normal((5, 6)))
    w0 = rng.standard_normal((6, 6)) * 0.4 + np.eye(6)
    results = []
    for lib, fn in ((fd, f), (torch, tf)):
        x = (fd.from_numpy(x0.copy()) if lib is fd else torch.tensor(x0)).requires_grad_(True)
        w = (fd.from_numpy(w0.copy()) if lib is fd else torch.tensor(w0)).requires_grad_(True)
        z = x @ w
        if name in ("sqrt", "rsqrt", "reciprocal"):
            z = z * z + 0.5
        gx, = lib.autograd.grad(fn(z).sum(), x, create_graph=True)
        gw, gx2 = lib.autograd.grad((gx * gx).sum(), (w, x))
        results.append((gw.detach().numpy(), gx2.detach().numpy()))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-10)


def test_hessian_of_exp_sum_is_diagonal_exp():
    x = _x((4,), lambda v: v * 0.5)
    g, = fd.autograd.grad(x.exp().sum(), x, create_graph=True)
    rows = [fd.autograd.grad(g[i], x, retain_graph=True)[0].numpy() for i in range(4)]
    np.testing.assert_allclose(np.stack(rows), np.diag(np.exp(x.detach().numpy())), rtol=1e-12)


def test_first_derivatives_unchanged_without_create_graph():
    for name, (f, make) in OPS.items():
        x = _x((7,), make, seed=3)
        g, = fd.autograd.grad(f(x).sum(), x)
        x2 = x.detach().clone().requires_grad_(True)
        g2, = fd.autograd.grad(f(x2).sum(), x2, create_graph=True)
        np.testing.assert_allclose(g.numpy(), g2.detach().numpy(), rtol=1e-12, err_msg=name)
        assert not g.requires_grad


PIECEWISE_LINEAR = {  # (fastdl, torch) on one library's namespace
    "relu": lambda L, t: L.nn.functional.relu(t),
    "leaky_relu": lambda L, t: L.nn.functional.leaky_relu(t, 0.2),
    "hardtanh": lambda L, t: L.nn.functional.hardtanh(t, -0.7, 1.1),
    "relu6": lambda L, t: L.nn.functional.relu6(t * 4),
    "threshold": lambda L, t: L.nn.functional.threshold(t, 0.3, -2.0),
    "hardshrink": lambda L, t: L.nn.functional.hardshrink(t, 0.4),
    "softshrink": lambda L, t: L.nn.functional.softshrink(t, 0.4),
    "rrelu_eval": lambda L, t: L.nn.functional.rrelu(t, 0.1, 0.3),
    "max_pool2d": lambda L, t: L.nn.functional.max_pool2d(t.reshape(1, 2, 3, 4), 2, 1),
    "adaptive_max_pool2d": lambda L, t: L.nn.functional.adaptive_max_pool2d(t.reshape(1, 2, 3, 4), (2, 3)),
}


@pytest.mark.parametrize("name", sorted(PIECEWISE_LINEAR))
def test_piecewise_linear_second_derivative_is_zero_as_torch(name):
    """The gradient of a piecewise-linear function (a mask of x times g) depends on x with a zero
    derivative, as PyTorch's *_backward ops: with a constant upstream gradient the second
    derivative is zeros, not an error that the gradient does not require grad; first derivatives
    and a mixed path through a weight match PyTorch."""
    torch = pytest.importorskip("torch")
    f = PIECEWISE_LINEAR[name]
    x0 = np.random.default_rng(5).standard_normal((6, 4))
    w0 = np.random.default_rng(6).standard_normal((4, 4)) * 0.5 + np.eye(4)
    out = []
    for L in (fd, torch):
        x = (fd.from_numpy(x0.copy()) if L is fd else torch.tensor(x0)).requires_grad_(True)
        gx, = L.autograd.grad(f(L, x).sum(), x, create_graph=True)
        assert gx.requires_grad
        ggx, = L.autograd.grad((gx * gx).sum(), x)
        w = (fd.from_numpy(w0.copy()) if L is fd else torch.tensor(w0)).requires_grad_(True)
        gz, = L.autograd.grad(f(L, x @ w).sum(), x, create_graph=True)
        gw, = L.autograd.grad((gz * gz).sum(), w)
        out.append([t.detach().numpy() for t in (gx, ggx, gw)])
    assert not out[0][1].any()
    for ours, theirs in zip(*out):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)
