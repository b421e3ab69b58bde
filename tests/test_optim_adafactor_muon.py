"""Adafactor and Muon against torch.optim's on the same gradient sequences (factored matrices,
stacks of matrices, vectors; weight decay, maximize, clipping, Nesterov on and off, both
learning-rate adjustments), their state names, state_dict round trips, a small model that learns,
and the argument errors."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.nn as nn
import fastdl.nn.functional as F

torch = pytest.importorskip("torch")


def _race(make_ours, make_theirs, shape, steps, dtype, seed=0, tol=1e-12):
    rng = np.random.default_rng(seed)
    w0 = rng.standard_normal(shape).astype(dtype)
    p = fd.from_numpy(w0.copy()).requires_grad_(True)
    tp = torch.tensor(w0.copy(), requires_grad=True)
    ours, theirs = make_ours([p]), make_theirs([tp])
    for _ in range(steps):
        g = rng.standard_normal(shape).astype(dtype)
        p.grad, tp.grad = fd.from_numpy(g.copy()), torch.tensor(g)
        ours.step()
        theirs.step()
    np.testing.assert_allclose(p.detach().numpy(), tp.detach().numpy(), rtol=tol, atol=tol)
    assert np.abs(p.detach().numpy() - w0).max() > 1e-4  # it moved
    return ours, theirs, p


@pytest.mark.parametrize("shape", [(5, 7), (3, 4, 6), (9,), (1, 8)])
@pytest.mark.parametrize("kw", [{}, dict(lr=0.05, weight_decay=0.1), dict(maximize=True, d=2.0, eps=(1e-30, 1e-3)),
                                dict(beta2_decay=-0.5, eps=(None, 1e-2))])
def test_adafactor_matches_torch(shape, kw):
    ours, theirs, p = _race(lambda ps: fd.optim.Adafactor(ps, **kw), lambda ps: torch.optim.Adafactor(ps, **kw),
                            shape, 7, np.float64)
    keys = set(ours.state[p]) - {"step"}
    tkeys = set(next(iter(theirs.state.values()))) - {"step"}
    assert keys == tkeys and ours.state[p]["step"] == 7


@pytest.mark.parametrize("shape", [(5, 7), (8, 3), (6, 6)])
@pytest.mark.parametrize("kw", [{}, dict(nesterov=False, adjust_lr_fn="match_rms_adamw", lr=0.01),
                                dict(momentum=0.5, weight_decay=0.0, ns_steps=3, lr=0.02)])
def test_muon_matches_torch(shape, kw):
    # Newton-Schulz runs in bfloat16, where fastdl's and PyTorch's products may round at different
    # points: the parameters agree to a few bfloat16 ulps (2^-8) of the 4 lr-scaled unit updates
    ours, theirs, p = _race(lambda ps: fd.optim.Muon(ps, **kw), lambda ps: torch.optim.Muon(ps, **kw),
                            shape, 4, np.float32, tol=1.5e-3)
    assert set(ours.state[p]) == set(next(iter(theirs.state.values())))


def test_newton_schulz_orthogonalises():
    from fastdl.optim.muon import _newton_schulz
    g = fd.from_numpy(np.random.default_rng(1).standard_normal((16, 40)).astype(np.float32))
    o = _newton_schulz(g, (3.4445, -4.7750, 2.0315), 5, 1e-7).float().numpy()
    sv = np.linalg.svd(o, compute_uv=False)
    assert 0.5 < sv.min() and sv.max() < 1.3  # the quintic drives every singular value near 1


def test_state_dict_round_trip_continues_identically():
    rng = np.random.default_rng(2)
    for make in (lambda ps: fd.optim.Adafactor(ps, lr=0.03), lambda ps: fd.optim.Muon(ps, lr=0.02)):
        w0 = rng.standard_normal((4, 5)).astype(np.float32)
        grads = [rng.standard_normal((4, 5)).astype(np.float32) for _ in range(4)]
        a = fd.from_numpy(w0.copy()).requires_grad_(True)
        oa = make([a])
        for g in grads:
            a.grad = fd.from_numpy(g)
            oa.step()
        b = fd.from_numpy(w0.copy()).requires_grad_(True)
        ob = make([b])
        for g in grads[:2]:
            b.grad = fd.from_numpy(g)
            ob.step()
        oc = make([b])
        oc.load_state_dict(ob.state_dict())
        for g in grads[2:]:
            b.grad = fd.from_numpy(g)
            oc.step()
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_both_train_a_model():
    rng = np.random.default_rng(0)
    X = fd.from_numpy(rng.standard_normal((200, 8)).astype(np.float32))
    y = fd.from_numpy((rng.standard_normal((200, 8)).astype(np.float32) > 0).argmax(1).astype(np.int64) % 2)
    y = ((X[:, 0] + X[:, 1]) > 0).long()
    for name in ("Adafactor", "Muon"):
        fd.manual_seed(0)
        model = nn.Sequential(nn.Linear(8, 32, bias=False), nn.ReLU(), nn.Linear(32, 2, bias=False))
        opt = getattr(fd.optim, name)(model.parameters(), lr=0.05)
        first = F.cross_entropy(model(X), y).item()
        for _ in range(80):
            opt.zero_grad()
            loss = F.cross_entropy(model(X), y)
            loss.backward()
            opt.step()
        assert loss.item() < 0.5 * first, name


def test_argument_errors():
    w = [fd.randn(3, 3, requires_grad=True)]
    with pytest.raises(ValueError, match="beta2_decay"):
        fd.optim.Adafactor(w, beta2_decay=0.5)
    with pytest.raises(ValueError, match="Clipping threshold d"):
        fd.optim.Adafactor(w, d=0.5)
    with pytest.raises(ValueError, match="Muon only supports 2D parameters"):
        fd.optim.Muon([fd.randn(3, requires_grad=True)])
    with pytest.raises(ValueError, match="Adjust learning rate function"):
        fd.optim.Muon(w, adjust_lr_fn="other")
