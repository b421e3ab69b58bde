"""Losses against PyTorch in float64 (outputs and gradients), numpy references and gradcheck
(always), stability of cross entropy at logits of 1e4, errors."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.nn as nn
import fastdl.nn.functional as F
from fastdl.autograd import gradcheck


def _t(a, rg=True):
    return fd.tensor(a, dtype=fd.float64, requires_grad=rg)


def _check(torch, name, x, y, rng, fkw=None, tkw=None, wrt_target=False):
    fkw, tkw = fkw or {}, tkw or dict(fkw or {})
    xf, xt = _t(x), torch.tensor(x, requires_grad=True)
    if y.dtype.kind == "f":
        yf, yt = _t(y, wrt_target), torch.tensor(y, requires_grad=wrt_target)
    else:
        yf, yt = fd.tensor(y), torch.tensor(y)
    a = getattr(F, name)(xf, yf, **fkw)
    b = getattr(torch.nn.functional, name)(xt, yt, **tkw)
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(tuple(b.shape))
    a.backward(fd.tensor(g, dtype=fd.float64))
    b.backward(torch.tensor(g))
    np.testing.assert_allclose(xf.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    if wrt_target:
        np.testing.assert_allclose(yf.grad.numpy(), yt.grad.numpy(), rtol=1e-9, atol=1e-12)


RED = ["mean", "sum", "none"]


@pytest.mark.parametrize("red", RED)
def test_cross_entropy_torch(red, rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((7, 5)) * 3
    t = np.array([0, 4, 2, -100, 1, 3, 4])
    w = rng.random(5) + 0.5
    for fkw, tkw in [({}, {}), (dict(label_smoothing=0.2), None),
                     (dict(weight=fd.tensor(w, dtype=fd.float64), label_smoothing=0.1),
                      dict(weight=torch.tensor(w), label_smoothing=0.1)),
                     (dict(ignore_index=4), None)]:
        tt = np.where(t == -100, 4, t) if fkw.get("ignore_index") == 4 else t
        _check(torch, "cross_entropy", x, tt, rng, dict(fkw, reduction=red), dict(tkw or fkw, reduction=red))
    # class probabilities, and (N, C, d) inputs
    p = rng.random((7, 5))
    p /= p.sum(1, keepdims=True)
    _check(torch, "cross_entropy", x, p, rng, dict(reduction=red, label_smoothing=0.1))
    _check(torch, "cross_entropy", rng.standard_normal((3, 4, 2)), rng.integers(0, 4, (3, 2)), rng, dict(reduction=red))


def test_cross_entropy_numpy_stable_and_gradcheck(isa, rng):
    x = rng.standard_normal((5, 4))
    t = rng.integers(0, 4, 5)
    lse = np.log(np.exp(x).sum(1))
    got = F.cross_entropy(_t(x), fd.tensor(t)).item()
    assert got == pytest.approx((lse - x[np.arange(5), t]).mean(), rel=1e-12)
    assert gradcheck(lambda a: F.cross_entropy(a, fd.tensor(t), label_smoothing=0.2), [_t(x)])
    w = _t(rng.random(4) + 0.1, False)
    assert gradcheck(lambda a: F.cross_entropy(a, fd.tensor(t), weight=w, reduction="none"), [_t(x)])
    for dt in (fd.float32, fd.float64):
        big = fd.tensor([[1e4, 0.0, -1e4], [-1e4, -1e4, 1e4]], dtype=dt, requires_grad=True)
        loss = F.cross_entropy(big, fd.tensor([2, 2]), label_smoothing=0.1)
        loss.backward()
        assert np.isfinite(loss.item()) and np.all(np.isfinite(big.grad.numpy()))
        assert loss.item() == pytest.approx((0.9 * 2e4 + 0.1 / 3 * 3e4 + 0.1 / 3 * 4e4) / 2, rel=1e-5)
    with pytest.raises(IndexError, match="out of bounds"):
        F.cross_entropy(_t(x), fd.tensor([0, 1, 2, 3, 4]))
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(_t(x), fd.tensor(t), label_smoothing=1.5)


@pytest.mark.parametrize("red", RED)
@pytest.mark.filterwarnings("ignore:reduction. .mean. divides")
def test_regression_and_binary_losses_torch(red, rng):
    torch = pytest.importorskip("torch")
    x, y = rng.standard_normal((4, 3)) * 2, rng.standard_normal((4, 3))
    for name, kw in [("mse_loss", {}), ("l1_loss", {}), ("huber_loss", dict(delta=0.7)),
                     ("smooth_l1_loss", dict(beta=0.5))]:
        _check(torch, name, x, y, rng, dict(kw, reduction=red), wrt_target=True)
    p, b = 1 / (1 + np.exp(-x)), (rng.random((4, 3)) > 0.5).astype(np.float64)
    w, pw = rng.random((4, 3)), rng.random(3) + 0.5
    _check(torch, "binary_cross_entropy", p, b, rng, dict(reduction=red, weight=fd.tensor(w, dtype=fd.float64)),
           dict(reduction=red, weight=torch.tensor(w)))
    _check(torch, "binary_cross_entropy_with_logits", x * 10, b, rng,
           dict(reduction=red, pos_weight=fd.tensor(pw, dtype=fd.float64)), dict(reduction=red, pos_weight=torch.tensor(pw)))
    _check(torch, "binary_cross_entropy_with_logits", x, rng.random((4, 3)), rng, dict(reduction=red))
    lp = np.log(np.exp(x) / np.exp(x).sum(1, keepdims=True))
    q = rng.random((4, 3))
    q[0, 0] = 0.0
    for r in (red, "batchmean"):
        _check(torch, "kl_div", lp, q, rng, dict(reduction=r))
        _check(torch, "kl_div", lp, np.log(q + 0.1), rng, dict(reduction=r, log_target=True))
    _check(torch, "nll_loss", lp, np.array([0, 2, 1, -100]), rng, dict(reduction=red))


def test_losses_numpy_and_modules(rng):
    x, y = rng.standard_normal((5,)) * 2, rng.standard_normal((5,))
    d = np.abs(x - y)
    assert F.huber_loss(_t(x), _t(y)).item() == pytest.approx(np.where(d < 1, 0.5 * d * d, d - 0.5).mean())
    assert nn.SmoothL1Loss(beta=2.0)(_t(x), _t(y)).item() == pytest.approx(np.where(d < 2, 0.25 * d * d, d - 1).mean())
    z = rng.standard_normal((5,)) * 30
    b = (rng.random(5) > 0.5).astype(float)
    ref = np.mean(np.maximum(z, 0) - z * b + np.log1p(np.exp(-np.abs(z))))
    assert nn.BCEWithLogitsLoss()(_t(z), _t(b)).item() == pytest.approx(ref, rel=1e-12)
    assert gradcheck(lambda a: F.binary_cross_entropy_with_logits(a, _t(b, False), pos_weight=_t([2.0] * 5, False)),
                     [_t(x)])
    assert nn.L1Loss()(_t(x), _t(y)).item() == pytest.approx(d.mean())
    assert nn.MSELoss(reduction="sum")(_t(x), _t(y)).item() == pytest.approx((d * d).sum())
    with pytest.raises(ValueError, match="reduction"):
        F.mse_loss(_t(x), _t(y), reduction="avg")


def test_info_nce_numpy_reference(rng):
    z1, z2 = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    z = np.concatenate([z1, z2])
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    s = z @ z.T / 0.5
    np.fill_diagonal(s, -np.inf)
    lse = np.log(np.exp(s).sum(1))
    pos = np.concatenate([np.arange(4, 8), np.arange(4)])
    ref = (lse - s[np.arange(8), pos]).mean()
    assert F.info_nce(_t(z1), _t(z2), temperature=0.5).item() == pytest.approx(ref, rel=1e-12)
    assert nn.InfoNCELoss(0.5)(_t(z1), _t(z2)).item() == pytest.approx(ref, rel=1e-12)
    assert gradcheck(lambda a, b: F.info_nce(a, b, 0.5), [_t(z1), _t(z2)])
    # aligned views give a lower loss than random ones
    assert F.info_nce(_t(z1), _t(z1 + 0.01)).item() < F.info_nce(_t(z1), _t(z2)).item()


def test_gan_helpers(rng):
    r, f = rng.standard_normal(6), rng.standard_normal(6)
    sp = lambda v: np.log1p(np.exp(v))  # noqa: E731
    assert F.gan_discriminator_loss(_t(r), _t(f)).item() == pytest.approx(sp(-r).mean() + sp(f).mean(), rel=1e-12)
    assert F.gan_generator_loss(_t(f)).item() == pytest.approx(sp(-f).mean(), rel=1e-12)


def test_nll_loss_shapes_and_all_ignored():
    x = _t(np.log(np.full((2, 3, 4), 1 / 3)))
    t = fd.tensor(np.array([[0, 1, 2, -100], [2, 2, 1, 0]]))
    assert tuple(F.nll_loss(x, t, reduction="none").shape) == (2, 4)  # (N, d1), not (N*d1,)
    assert tuple(F.nll_loss(x[0, :, 0], t[0, 0], reduction="none").shape) == ()  # unbatched (C,)
    # every target ignored: the mean is NaN (0/0) as in PyTorch, but the gradient is zero
    x = _t(np.zeros((2, 3)))
    loss = F.nll_loss(x, fd.tensor([-100, -100]))
    assert np.isnan(loss.item())
    loss.backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((2, 3)))


def test_kl_div_zero_target_gradient_is_nan_like_torch_xlogy():
    t = _t(np.array([0.0, 0.5]))
    loss = F.kl_div(_t(np.log([0.4, 0.6]), rg=False), t, reduction="sum")
    np.testing.assert_allclose(loss.item(), 0.5 * np.log(0.5) - 0.5 * np.log(0.6))
    loss.backward()
    g = t.grad.numpy()
    assert np.isnan(g[0]) and np.isclose(g[1], np.log(0.5) + 1 - np.log(0.6))


def test_torch_signatures_legacy_flags_weight_and_buffers():
    x, y = _t(np.arange(6.0).reshape(2, 3), rg=False), _t(np.ones((2, 3)), rg=False)
    w = _t(np.arange(1.0, 7.0).reshape(2, 3), rg=False)
    d = (np.arange(6.0) - 1).reshape(2, 3)
    # positional order as PyTorch: (input, target, size_average, reduce, reduction, weight)
    assert F.mse_loss(x, y, None, None, "sum").item() == pytest.approx((d * d).sum())
    with pytest.warns(UserWarning, match="size_average"):
        assert F.l1_loss(x, y, size_average=False).item() == pytest.approx(np.abs(d).sum())
    wn = w.numpy()
    assert F.mse_loss(x, y, weight=w).item() == pytest.approx((d * d * wn).sum() / wn.sum())
    hub = np.where(np.abs(d) < 1, 0.5 * d * d, np.abs(d) - 0.5)
    assert F.huber_loss(x, y, weight=w).item() == pytest.approx((hub * wn).mean())  # mean over elements
    m = nn.CrossEntropyLoss(weight=fd.tensor([1.0, 2.0]))
    assert list(m.state_dict()) == ["weight"]
    assert list(nn.BCEWithLogitsLoss(pos_weight=fd.tensor([2.0])).state_dict()) == ["pos_weight"]
    assert nn.NLLLoss(None, None, -100, False).reduction == "none"


def test_huber_delta_and_smooth_l1_beta_validated():
    x = _t(np.ones(3), rg=False)
    with pytest.raises(ValueError, match="huber_loss: delta"):
        F.huber_loss(x, x, delta=0.0)
    with pytest.raises(ValueError, match="smooth_l1_loss: beta"):
        F.smooth_l1_loss(x, x, beta=-1.0)


def test_more_losses_numpy():
    a, b = np.array([[0.5, -1.0], [2.0, 0.1]]), np.array([[1.0, 0.5], [-0.5, 0.3]])
    cos = (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))
    np.testing.assert_allclose(F.cosine_similarity(_t(a), _t(b)).detach().numpy(), cos)
    t = fd.tensor([1.0, -1.0])
    want = np.mean([1 - cos[0], max(cos[1] - 0.2, 0)])
    assert F.cosine_embedding_loss(_t(a), _t(b), t, margin=0.2).item() == pytest.approx(want)
    d = np.linalg.norm(a - b + 1e-6, axis=1)
    np.testing.assert_allclose(F.pairwise_distance(_t(a), _t(b)).detach().numpy(), d)
    var = _t(np.array([1e-9, 2.0]))  # clamped at eps in value, gradient as if unclamped (PyTorch)
    loss = F.gaussian_nll_loss(_t(a[0], rg=False), _t(b[0], rg=False), var, reduction="sum")
    v = np.array([1e-6, 2.0])
    assert loss.item() == pytest.approx((0.5 * (np.log(v) + (a[0] - b[0]) ** 2 / v)).sum())
    loss.backward()
    np.testing.assert_allclose(var.grad.numpy(), 0.5 * (1 / v - (a[0] - b[0]) ** 2 / v ** 2))


def test_bce_input_gradient_at_saturated_probabilities(torch):
    # sigmoid outputs of exactly 0 or 1 (common in float32): PyTorch's gradient is finite,
    # (x - y) / max(x (1 - x), float32(1e-12)); a clamped log would give NaN
    x, y = np.array([0.0, 1.0, 1e-14, 0.3]), np.array([1.0, 0.0, 0.3, 0.3])
    a, ta = _t(x), torch.tensor(x, requires_grad=True)
    F.binary_cross_entropy(a, _t(y, False), reduction="sum").backward()
    torch.nn.functional.binary_cross_entropy(ta, torch.tensor(y), reduction="sum").backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-15)
