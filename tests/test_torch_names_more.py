"""Late additions to fastdl's torch.* names: convolution, binomial, frobenius / nuclear norms, norm_except_dim,
feature dropout and the in-place dropouts, cond / while_loop, default device, inference-mode query, the
settings functions and typename, against torch where it has them."""
import numpy as np
import pytest

import fastdl as fd

torch = pytest.importorskip("torch")


def _pair(*shape, seed=0):
    a = np.random.default_rng(seed).normal(size=shape)
    return fd.tensor(a), torch.tensor(a)


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("transposed", [False, True])
def test_convolution_against_torch(n, transposed):
    x, tx = _pair(2, 4, *([5] * n), seed=n)
    shape = (4, 3, *([3] * n)) if transposed else (6, 2, *([3] * n))
    w, tw = _pair(*shape, seed=10 + n)
    b, tb = _pair(shape[1] * 2 if transposed else shape[0], seed=20 + n)
    stride, padding, dilation, out_pad = [2] * n, [1] * n, [1] * n, ([1] * n if transposed else [0] * n)
    got = fd.convolution(x, w, b, stride, padding, dilation, transposed, out_pad, 2)
    want = torch.convolution(tx, tw, tb, stride, padding, dilation, transposed, out_pad, 2)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError):
        fd.convolution(x, w[0], b, stride, padding, dilation, transposed, out_pad, 2)


def test_norms_against_torch():
    x, tx = _pair(3, 4, 5)
    np.testing.assert_allclose(fd.frobenius_norm(x, (0, 2)).numpy(), torch.frobenius_norm(tx, (0, 2)).numpy())
    np.testing.assert_allclose(fd.frobenius_norm(x, (-2, -1), True).numpy(),
                               torch.frobenius_norm(tx, (-2, -1), True).numpy())
    np.testing.assert_allclose(fd.nuclear_norm(x[0]).numpy(), torch.nuclear_norm(tx[0]).numpy(), rtol=1e-10)
    np.testing.assert_allclose(fd.nuclear_norm(x, (1, 2), True).numpy(), torch.nuclear_norm(tx, (1, 2), True).numpy(),
                               rtol=1e-10)
    for p, d in ((2, 0), (3, 1), (2, -1), (1, 2)):
        np.testing.assert_allclose(fd.norm_except_dim(x, p, d).numpy(), torch.norm_except_dim(tx, p, d).numpy(),
                                   rtol=1e-10)


def test_binomial_draws():
    fd.manual_seed(0)
    n = fd.tensor([[5.0], [40.0], [1000.0]])
    p = fd.tensor([0.1, 0.5, 0.9], dtype=fd.float64)
    draws = np.stack([fd.binomial(n, p).numpy() for _ in range(3000)])
    assert draws.shape == (3000, 3, 3) and np.all(draws == np.round(draws)) and np.all(draws <= n.numpy())
    mean = n.numpy() * p.numpy()
    np.testing.assert_allclose(draws.mean(0), mean, rtol=0.03, atol=0.05)
    np.testing.assert_allclose(draws.var(0), mean * (1 - p.numpy()), rtol=0.1)
    g = fd.Generator().manual_seed(3)
    a = fd.binomial(n, p, generator=g)
    b = fd.binomial(n, p, generator=fd.Generator().manual_seed(3))
    assert np.array_equal(a.numpy(), b.numpy())
    with pytest.raises(ValueError):
        fd.binomial(fd.tensor([2.5]), fd.tensor([0.5]))
    with pytest.raises(ValueError):
        fd.binomial(fd.tensor([2.0]), fd.tensor([1.5]))


def test_feature_dropout_and_inplace_dropouts():
    fd.manual_seed(1)
    x = fd.ones(200, 8, 3, 3)
    y = fd.feature_dropout(x, 0.25, True).numpy()
    per_channel = y.reshape(200, 8, 9)
    assert np.all((per_channel == per_channel[..., :1]))  # one decision per (n, c)
    kept = per_channel[..., 0] != 0
    assert abs(kept.mean() - 0.75) < 0.03 and np.allclose(per_channel[kept], 1 / 0.75)
    assert fd.feature_dropout(x, 0.5, False) is x
    z = fd.ones(1000)
    out = fd.dropout_(z, 0.5, True)
    assert out is z and set(np.unique(z.numpy())) <= {0.0, 2.0}
    z = fd.ones(4, 6, 5)
    fd.feature_dropout_(z, 0.5, True)
    assert set(np.unique(z.numpy())) <= {0.0, 2.0}
    w = fd.randn(500)
    before = w.numpy().copy()
    fd.alpha_dropout_(w, 0.2, True)
    fd.feature_alpha_dropout_(fd.randn(4, 6, 5), 0.2, True)
    assert not np.array_equal(before, w.numpy())


def test_cond_and_while_loop():
    x = fd.tensor([1.0, 2.0])
    assert fd.cond(fd.tensor(True), lambda a: a * 2, lambda a: a - 1, (x,)).tolist() == [2.0, 4.0]
    assert fd.cond(False, lambda a: a * 2, lambda a: a - 1, [x]).tolist() == [0.0, 1.0]
    with pytest.raises(RuntimeError):
        fd.cond(fd.tensor([True, False]), lambda a: a, lambda a: a, (x,))
    i, acc = fd.while_loop(lambda i, a: i < 4, lambda i, a: (i + 1, a + i), (fd.tensor(0), fd.tensor(0)))
    assert int(i) == 4 and int(acc) == 6
    with pytest.raises(RuntimeError):
        fd.while_loop(lambda i: i < 2, lambda i: (i + 1, i), (fd.tensor(0),))
    # gradients flow through the eager branches
    w = fd.tensor(3.0, requires_grad=True)
    (out,) = fd.while_loop(lambda v: v < 100, lambda v: (v * w,), (fd.tensor(2.0),))
    out.backward()
    assert float(out) == 162.0 and abs(float(w.grad) - 4 * 2 * 27) < 1e-9


def test_default_device_and_inference_mode_query():
    assert fd.get_default_device() == fd.device("cpu")
    fd.set_default_device("cpu")
    assert fd.zeros(2).device == fd.device("cpu") and fd.tensor([1.0]).device == fd.device("cpu")
    fd.set_default_device(None)
    assert fd.get_default_device().type == "cpu"
    assert not fd.is_inference_mode_enabled()
    with fd.inference_mode():
        assert fd.is_inference_mode_enabled() and not fd.is_grad_enabled()
        with fd.inference_mode(False):
            assert not fd.is_inference_mode_enabled()
        assert fd.is_inference_mode_enabled()
    assert not fd.is_inference_mode_enabled()

    @fd.inference_mode()
    def f():
        return fd.is_inference_mode_enabled()
    assert f() and not fd.is_inference_mode_enabled()


def test_settings_functions():
    try:
        for mode, name in ((1, "warn"), (2, "error"), (0, "default")):
            fd.set_deterministic_debug_mode(name)
            assert fd.get_deterministic_debug_mode() == mode
            fd.set_deterministic_debug_mode(mode)
            assert fd.get_deterministic_debug_mode() == mode
        fd.set_deterministic_debug_mode(1)
        assert fd.are_deterministic_algorithms_enabled() and fd.is_deterministic_algorithms_warn_only_enabled()
        with pytest.raises(RuntimeError):
            fd.set_deterministic_debug_mode("loud")
    finally:
        fd.set_deterministic_debug_mode(0)
    fd.set_warn_always(True)
    assert fd.is_warn_always_enabled()
    fd.set_warn_always(False)
    assert not fd.is_warn_always_enabled()
    assert fd.get_num_interop_threads() >= 1
    fd.set_num_interop_threads(1)
    fd.init_num_threads()
    assert fd.GradScaler is fd.amp.GradScaler


def test_typename_and_aliases():
    for dt, name in ((fd.float32, "Float"), (fd.float64, "Double"), (fd.int64, "Long"), (fd.bool, "Bool"),
                     (fd.uint8, "Byte"), (fd.bfloat16, "BFloat16")):
        assert fd.typename(fd.zeros(1, dtype=dt)) == f"fastdl.{name}Tensor"
        tdt = getattr(torch, str(dt).split(".")[-1])
        assert torch.typename(torch.zeros(1, dtype=tdt)) == f"torch.{name}Tensor"
    assert fd.typename(3) == torch.typename(3) == "int"
    assert fd.typename(fd.nn.Linear) == f"{fd.nn.Linear.__module__}.Linear"
    x = fd.tensor([0.5, 1.0])
    assert fd.i0_(x) is x and abs(float(x[0]) - 1.0635) < 1e-4
    a, m, v = fd.zeros(2), fd.eye(2), fd.tensor([1.0, 2.0])
    assert fd.addmv_(a, m, v, alpha=2).tolist() == [2.0, 4.0]
    assert [p.tolist() for p in fd.unsafe_split_with_sizes(fd.arange(5), [2, 3])] == [[0, 1], [2, 3, 4]]
