"""PyTorch names that complete nn.functional, nn.utils and nn.init: gumbel_softmax (the
distribution of its argmax, one-hot samples with the soft sample's gradient), the in-place
activation spellings, the *_with_indices pools, Conv/Linear + BatchNorm fusion (against the
unfused eval model and PyTorch's fusion), skip_init, and nn.init's deprecated spellings."""
import warnings

import numpy as np
import pytest

import fastdl as fd
import fastdl.nn as nn
import fastdl.nn.functional as F


def _rand(*shape, seed=0):
    return fd.from_numpy(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def test_gumbel_softmax_soft_samples():
    fd.manual_seed(0)
    x = _rand(6, 7)
    for tau in (0.3, 1.0, 4.0):
        y = F.gumbel_softmax(x, tau=tau)
        np.testing.assert_allclose(y.sum(-1).numpy(), 1.0, rtol=1e-5)
        assert (y.numpy() > 0).all()
    y = F.gumbel_softmax(x, dim=0)
    np.testing.assert_allclose(y.sum(0).numpy(), 1.0, rtol=1e-5)


def test_gumbel_softmax_argmax_follows_the_softmax():
    fd.manual_seed(1)
    logits = np.array([1.0, 2.0, 0.5, -1.0], dtype=np.float32)
    n = 40_000
    hard = F.gumbel_softmax(fd.from_numpy(np.tile(logits, (n, 1))), hard=True)
    h = hard.numpy()
    assert set(np.unique(h)) == {0.0, 1.0} and (h.sum(-1) == 1).all()
    freq = h.mean(0)
    p = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(freq, p, atol=5 * np.sqrt(p * (1 - p) / n).max())


def test_gumbel_softmax_hard_gradient_is_the_soft_one():
    x = _rand(5, 6, seed=2).requires_grad_(True)
    g = _rand(5, 6, seed=3)
    fd.manual_seed(4)
    (F.gumbel_softmax(x, tau=0.7, hard=True) * g).sum().backward()
    hard_grad = x.grad.numpy().copy()
    x.grad = None
    fd.manual_seed(4)  # the same noise
    (F.gumbel_softmax(x, tau=0.7) * g).sum().backward()
    np.testing.assert_allclose(hard_grad, x.grad.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name,args", [
    ("relu", ()), ("elu", (0.7,)), ("leaky_relu", (0.2,)), ("hardtanh", (-0.5, 0.8)), ("selu", ()),
    ("celu", (1.3,)), ("threshold", (0.1, -2.0)),
])
def test_inplace_spellings(name, args):
    x = _rand(4, 5, seed=5)
    want = getattr(F, name)(x, *args).numpy()
    y = x.clone()
    out = getattr(F, name + "_")(y, *args)
    assert out is y or out.data_ptr() == y.data_ptr()
    np.testing.assert_array_equal(y.numpy(), want)
    torch = pytest.importorskip("torch")
    t = torch.from_numpy(x.numpy().copy())
    getattr(torch.nn.functional, name + "_")(t, *args)
    np.testing.assert_allclose(y.numpy(), t.numpy(), rtol=1e-6, atol=1e-6)


def test_rrelu_inplace_eval():
    x = _rand(3, 4, seed=6)
    y = x.clone()
    F.rrelu_(y)
    np.testing.assert_allclose(y.numpy(), F.rrelu(x).numpy())


@pytest.mark.parametrize("name,shape,args", [
    ("max_pool1d", (2, 3, 9), (3, 2)), ("max_pool2d", (2, 3, 7, 6), (2,)), ("max_pool3d", (1, 2, 5, 6, 5), (2,)),
    ("adaptive_max_pool1d", (2, 3, 9), (4,)), ("adaptive_max_pool2d", (2, 3, 7, 6), ((3, 2),)),
    ("adaptive_max_pool3d", (1, 2, 5, 6, 5), (2,)),
])
def test_with_indices_forms(name, shape, args):
    x = _rand(*shape, seed=7)
    out, idx = getattr(F, name + "_with_indices")(x, *args)
    want, want_idx = getattr(F, name)(x, *args, return_indices=True)
    np.testing.assert_array_equal(out.numpy(), want.numpy())
    np.testing.assert_array_equal(idx.numpy(), want_idx.numpy())


def _trained_bn(bn, inputs):
    bn.train()
    for x in inputs:
        bn(x)
    bn.eval()
    with fd.no_grad():  # non-trivial affine parameters
        bn.weight.copy_(_rand(bn.num_features, seed=11) * 0.5 + 1)
        bn.bias.copy_(_rand(bn.num_features, seed=12))
    return bn


@pytest.mark.parametrize("kind", ["conv", "conv_nobias", "conv_transpose", "linear"])
def test_fusion_matches_the_unfused_eval_model_and_torch(kind):
    fd.manual_seed(3)
    if kind == "linear":
        layer, x = nn.Linear(6, 5), _rand(8, 6, seed=8)
        bn = nn.BatchNorm1d(5)
    elif kind == "conv_transpose":
        layer, x = nn.ConvTranspose2d(3, 4, 3, stride=2), _rand(2, 3, 5, 5, seed=8)
        bn = nn.BatchNorm2d(4)
    else:
        layer, x = nn.Conv2d(3, 4, 3, bias=kind == "conv"), _rand(2, 3, 7, 7, seed=8)
        bn = nn.BatchNorm2d(4)
    _trained_bn(bn, [layer(x).detach(), layer(x * 1.7 + 0.3).detach()])
    layer.eval()
    if kind == "linear":
        fused = nn.utils.fuse_linear_bn_eval(layer, bn)
    else:
        fused = nn.utils.fuse_conv_bn_eval(layer, bn, transpose=kind == "conv_transpose")
    want = bn(layer(x)).detach().numpy()
    np.testing.assert_allclose(fused(x).detach().numpy(), want, rtol=1e-4, atol=1e-5)
    assert fused is not layer and fused.weight.requires_grad
    torch = pytest.importorskip("torch")
    tw, tb = (torch.from_numpy(t.detach().numpy()) if t is not None else None for t in (layer.weight, layer.bias))
    stats = [torch.from_numpy(t.detach().numpy()) for t in (bn.running_mean, bn.running_var, bn.weight, bn.bias)]
    if kind == "linear":
        w, b = torch.nn.utils.fuse_linear_bn_weights(tw, tb, stats[0], stats[1], bn.eps, stats[2], stats[3])
    else:
        w, b = torch.nn.utils.fuse_conv_bn_weights(tw, tb, stats[0], stats[1], bn.eps, stats[2], stats[3],
                                                   transpose=kind == "conv_transpose")
    np.testing.assert_allclose(fused.weight.detach().numpy(), w.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fused.bias.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_fusion_refuses_training_mode():
    with pytest.raises(AssertionError, match="eval"):
        nn.utils.fuse_conv_bn_eval(nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2))
    lin, bn = nn.Linear(3, 4).eval(), nn.BatchNorm1d(5).eval()
    with pytest.raises(AssertionError, match="out_features"):
        nn.utils.fuse_linear_bn_eval(lin, bn)
    import fastdl.nn.utils.fusion as fusion
    assert fusion.fuse_conv_bn_weights is nn.utils.fuse_conv_bn_weights


def test_skip_init_and_deprecated_init_spellings():
    m = nn.utils.skip_init(nn.Linear, 3, 4)
    assert tuple(m.weight.shape) == (4, 3)
    t = fd.empty(5, 6)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        nn.init.xavier_uniform(t, generator=None)
    assert any("deprecated in favor of nn.init.xavier_uniform_" in str(m.message) for m in w)
    bound = np.sqrt(6.0 / 11)
    assert np.abs(t.numpy()).max() <= bound and t.numpy().std() > 0.1 * bound
    for name in ("uniform", "normal", "constant", "eye", "dirac", "xavier_normal", "kaiming_uniform",
                 "kaiming_normal", "orthogonal", "sparse"):
        assert callable(getattr(nn.init, name))


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("shape,kw", [
    ((2, 3, 17, 23), dict(size=(5, 7))), ((1, 2, 8, 8), dict(size=(3, 13))), ((1, 1, 9, 10), dict(scale_factor=0.37)),
    ((1, 1, 9, 10), dict(scale_factor=(0.5, 2.5))), ((1, 2, 16, 12), dict(size=(4, 5), align_corners=True)),
    ((1, 1, 5, 6), dict(size=(12, 2))),
])
def test_interpolate_antialias_matches_torch(mode, shape, kw):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal(shape)
    xr = fd.from_numpy(x.copy()).requires_grad_(True)
    out = F.interpolate(xr, mode=mode, antialias=True, **kw)
    tx = torch.tensor(x, requires_grad=True)
    want = torch.nn.functional.interpolate(tx, mode=mode, antialias=True, **kw)
    np.testing.assert_allclose(out.detach().numpy(), want.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = np.random.default_rng(1).standard_normal(tuple(want.shape))
    (out * fd.from_numpy(g)).sum().backward()
    (want * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(xr.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_interpolate_antialias_needs_bilinear_or_bicubic_4d():
    with pytest.raises(ValueError, match="anti-alias option is restricted"):
        F.interpolate(fd.randn(1, 1, 8, 8), size=(4, 4), mode="nearest", antialias=True)
    with pytest.raises(ValueError, match="anti-alias option is restricted"):
        F.interpolate(fd.randn(1, 1, 8), size=4, mode="linear", antialias=True)
