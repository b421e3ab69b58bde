"""fastdl.utils.checkpoint (torch.utils.checkpoint): outputs and every gradient equal the
uncheckpointed run exactly (dropout's random draws and the autocast state are replayed), for
modules, closures over parameters, several outputs, containers, keyword arguments and
checkpoint_sequential at every segment count; autograd.grad through a checkpoint returns the
gradients PyTorch's non-reentrant form does without touching .grad; the reentrant form; the
forward keeps no activations (measured on the allocator)."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.nn as nn
from fastdl import _C
from fastdl.utils.checkpoint import checkpoint, checkpoint_sequential


def _model(seed=0):
    fd.manual_seed(seed)
    return nn.Sequential(nn.Linear(9, 24), nn.GELU(), nn.Dropout(0.25), nn.Linear(24, 24), nn.Tanh(),
                         nn.LayerNorm(24), nn.Linear(24, 5))


def _grads(m):
    return [p.grad.numpy().copy() for p in m.parameters()]


def _run(m, x, wrap, seed=7):
    m.zero_grad()
    xr = x.clone().requires_grad_(True)
    fd.manual_seed(seed)
    y = wrap(m, xr)
    g = fd.from_numpy(np.random.default_rng(1).standard_normal(tuple(y.shape)).astype(np.float32))
    (y * g).sum().backward()
    return y.detach().numpy(), _grads(m), xr.grad.numpy()


@pytest.mark.parametrize("wrap", [
    lambda m, x: checkpoint(m, x),
    lambda m, x: checkpoint(lambda t: m(t), x, use_reentrant=False),
    lambda m, x: checkpoint_sequential(m, 1, x),
    lambda m, x: checkpoint_sequential(m, 2, x),
    lambda m, x: checkpoint_sequential(m, 3, x),
    lambda m, x: checkpoint_sequential(m, 7, x),
    lambda m, x: checkpoint_sequential(list(m.children()), 20, x),
])
def test_checkpoint_matches_the_plain_run_exactly(wrap):
    m = _model()
    m.train()  # dropout on: the recomputation must draw the same mask
    x = fd.from_numpy(np.random.default_rng(0).standard_normal((6, 9)).astype(np.float32))
    y0, g0, x0 = _run(m, x, lambda mod, t: mod(t))
    y1, g1, x1 = _run(m, x, wrap)
    np.testing.assert_array_equal(y0, y1)
    for a, b in zip(g0, g1):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(x0, x1)


def test_several_outputs_keywords_and_inputs_without_grad():
    w = fd.randn(4, 4, requires_grad=True)

    def f(a, b, *, power):
        return (a @ w) ** power, b * 3.0, "tag"
    a = fd.randn(3, 4)  # no gradient needed: the parameter w still gets one
    b = fd.randn(3, 4, requires_grad=True)
    y1, y2, tag = checkpoint(f, a, b, power=2)
    assert tag == "tag"
    (y1.sum() + y2.sum()).backward()
    gw, gb = w.grad.numpy().copy(), b.grad.numpy().copy()
    w.grad = b.grad = None
    z1, z2, _ = f(a, b, power=2)
    (z1.sum() + z2.sum()).backward()
    np.testing.assert_allclose(gw, w.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(gb, b.grad.numpy(), rtol=1e-6)
    assert a.grad is None


def test_no_grad_and_bad_arguments():
    m = _model()
    with fd.no_grad():
        y = checkpoint(m, fd.randn(2, 9))
    assert not y.requires_grad
    with pytest.raises(TypeError, match="checkpoint: function must be callable"):
        checkpoint(3, fd.randn(2))
    with pytest.raises(ValueError, match="segments"):
        checkpoint_sequential(m, 0, fd.randn(2, 9))


def test_autocast_state_is_replayed():
    m = _model()
    m.eval()
    x = fd.randn(4, 9)
    with fd.autocast("cpu"):
        y0 = m(x)
    y0.float().sum().backward()
    g0 = _grads(m)
    m.zero_grad()
    with fd.autocast("cpu"):
        y1 = checkpoint(m, x)
    assert y1.dtype == fd.bfloat16
    y1.float().sum().backward()  # backward outside the region: the recomputation runs inside one
    for a, b in zip(g0, _grads(m)):
        np.testing.assert_array_equal(a, b)


def test_forward_keeps_no_activations():
    fd.manual_seed(0)
    blocks = nn.Sequential(*[nn.Sequential(nn.Linear(256, 256), nn.Tanh()) for _ in range(8)])
    x = fd.randn(512, 256, requires_grad=True)

    def live_after(fn):
        _C.empty_cache()
        before = _C.allocator_stats()["live_bytes"]
        y = fn(x)
        held = _C.allocator_stats()["live_bytes"] - before
        y.sum().backward()
        return held
    plain = live_after(blocks)
    ckpt = live_after(lambda t: checkpoint(blocks, t))
    act = 512 * 256 * 4  # one activation
    assert plain >= 8 * act  # the graph keeps every block's activations
    assert ckpt <= 2 * act  # the checkpoint keeps its output only


def test_container_outputs_and_autograd_grad_follow_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    w0, x0, u0 = rng.standard_normal((4, 4)), rng.standard_normal((3, 4)), rng.standard_normal((4,))
    res = []
    for lib, ck in ((fd, checkpoint), (torch, torch.utils.checkpoint.checkpoint)):
        w = (fd.from_numpy(w0.copy()) if lib is fd else torch.tensor(w0)).requires_grad_(True)
        u = (fd.from_numpy(u0.copy()) if lib is fd else torch.tensor(u0)).requires_grad_(True)
        up = u * 2.0  # a non-leaf captured by the closure: its graph reaches back to u
        x = (fd.from_numpy(x0.copy()) if lib is fd else torch.tensor(x0)).requires_grad_(True)

        def f(t):
            h = (t @ w).tanh() + up
            return [h, {"s": h.sum() * 3.0}]
        out = ck(f, x, use_reentrant=False)
        assert isinstance(out, list) and isinstance(out[1], dict)
        loss = (out[0] ** 2).sum() + out[1]["s"]
        gx, gw, gu = lib.autograd.grad(loss, (x, w, u))
        res.append([g.detach().numpy() for g in (gx, gw, gu)])
        assert w.grad is None and u.grad is None  # grad() returns, it does not accumulate
    for a, b in zip(*res):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_reentrant_form_and_its_limits():
    w = fd.randn(3, 3, requires_grad=True)
    x = fd.randn(2, 3, requires_grad=True)
    y = checkpoint(lambda t: (t @ w).sin(), x, use_reentrant=True)
    y.sum().backward()
    g_re = w.grad.numpy().copy()
    w.grad = None
    (x @ w).sin().sum().backward()
    np.testing.assert_allclose(g_re, w.grad.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="Unexpected keyword arguments"):
        checkpoint(lambda t, k: t, x, k=1, use_reentrant=True)


def test_nothing_to_differentiate():
    fd.manual_seed(0)
    m = nn.Linear(3, 2)
    for p in m.parameters():
        p.requires_grad_(False)
    y = checkpoint(m, fd.randn(4, 3), use_reentrant=False)
    assert not y.requires_grad


def test_a_leaf_reached_twice_counts_once():
    w = fd.randn(3, 3, requires_grad=True)
    x = fd.randn(2, 3, requires_grad=True)
    f = lambda t: ((t @ w).tanh() @ w).sum() + (w * w).sum()  # noqa: E731  (w reached on three paths)
    checkpoint(f, x, use_reentrant=False).backward()
    g_ck, gx_ck = w.grad.numpy().copy(), x.grad.numpy().copy()
    w.grad = x.grad = None
    f(x).backward()
    np.testing.assert_allclose(g_ck, w.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(gx_ck, x.grad.numpy(), rtol=1e-6)
    import gc
    for _ in range(3):  # wrapper objects die and their ids are reused: the walk must not care
        gc.collect()
        w.grad = None
        checkpoint(f, x, use_reentrant=False).backward()
        np.testing.assert_allclose(w.grad.numpy(), g_ck, rtol=1e-6)
