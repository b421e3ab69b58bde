"""Tensor construction, dtypes/devices, repr, and zero-copy interop with numpy and DLPack
(numpy and, when installed, PyTorch)."""
import numpy as np
import pytest

import fastdl as fd


def test_creation_functions():
    assert fd.zeros(2, 3).shape == (2, 3) and fd.zeros((2, 3)).dtype == fd.float32
    assert fd.ones(4, dtype=fd.int64).sum().item() == 4
    assert fd.full((2, 2), 7).dtype == fd.int64 and fd.full((2,), 1.5).dtype == fd.float32
    np.testing.assert_array_equal(fd.arange(5).numpy(), np.arange(5))
    assert fd.arange(5).dtype == fd.int64 and fd.arange(0, 1, 0.25).dtype == fd.float32
    np.testing.assert_allclose(fd.arange(0, 1, 0.25).numpy(), [0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(fd.linspace(0, 1, 5).numpy(), np.linspace(0, 1, 5), rtol=1e-7)
    np.testing.assert_array_equal(fd.eye(3, 4).numpy(), np.eye(3, 4))
    fd.manual_seed(3)
    a = fd.randn(1000)
    fd.manual_seed(3)
    b = fd.randn(1000)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert abs(a.mean().item()) < 0.15 and abs(a.std().item() - 1) < 0.1
    r = fd.rand(2000)
    assert 0 <= r.min().item() and r.max().item() < 1
    ri = fd.randint(3, 7, (500,))
    assert ri.min().item() >= 3 and ri.max().item() <= 6 and ri.dtype == fd.int64
    assert sorted(fd.randperm(10).tolist()) == list(range(10))
    t = fd.randn(3, 4)
    assert fd.zeros_like(t).shape == (3, 4) and fd.ones_like(t, dtype=fd.float64).dtype == fd.float64


def test_tensor_from_python_data():
    assert fd.tensor([1, 2]).dtype == fd.int64
    assert fd.tensor([1.0, 2]).dtype == fd.float32
    assert fd.tensor(True).dtype == fd.bool
    assert fd.tensor(np.zeros(3)).dtype == fd.float64
    assert fd.tensor([[1, 2], [3, 4]], dtype=fd.float64).dtype == fd.float64
    assert fd.tensor(3.5).ndim == 0 and fd.tensor(3.5).item() == 3.5
    assert fd.tensor([1, 2]).tolist() == [1, 2]
    assert fd.tensor([[1.5]]).tolist() == [[1.5]]
    with pytest.raises((TypeError, ValueError)):
        fd.tensor([[1, 2], [3]])


def test_repr_like_pytorch():
    assert repr(fd.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(fd.tensor([1, 2])) == "tensor([1, 2])"
    assert "dtype=fastdl.float64" in repr(fd.tensor([1.0], dtype=fd.float64))
    assert "requires_grad=True" in repr(fd.tensor([1.0], requires_grad=True))
    x = fd.tensor([1.0], requires_grad=True)
    assert "grad_fn=<MulBackward0>" in repr(x * 2)
    assert repr(fd.float32) == "fastdl.float32"
    assert str(fd.zeros(1).device) == "cpu" and fd.zeros(1).device == "cpu"


def test_from_numpy_zero_copy_and_strided(rng):
    a = rng.standard_normal((4, 6)).astype(np.float32)
    t = fd.from_numpy(a)
    a[0, 0] = 42.0
    assert t[0, 0].item() == 42.0
    s = a[::2, 1::3]
    ts = fd.from_numpy(s)
    assert ts.shape == s.shape and ts.stride() == (12, 3)
    np.testing.assert_array_equal(ts.numpy(), s)
    n = t.numpy()
    n[1, 1] = -1.0
    assert t[1, 1].item() == -1.0
    assert np.shares_memory(np.asarray(t), a)
    tt = t.T
    np.testing.assert_array_equal(np.asarray(tt), a.T)
    with pytest.raises(TypeError):
        fd.from_numpy(np.zeros(3, dtype=np.uint16))  # uint8, int8 and int16 are supported; wider unsigned not
    with pytest.raises(ValueError):
        fd.from_numpy(a[::-1])
    del a, s
    assert t.sum().item() == pytest.approx(float(t.numpy().astype(np.float64).sum()), rel=1e-6)  # storage kept alive


def test_numpy_requires_grad_raises():
    with pytest.raises(ValueError, match="detach"):
        fd.randn(2, requires_grad=True).numpy()


def test_dlpack_numpy_roundtrip(rng):
    a = rng.standard_normal((3, 5))
    t = fd.from_dlpack(a)
    assert t.dtype == fd.float64 and t.__dlpack_device__() == (1, 0)
    back = np.from_dlpack(t)
    assert np.shares_memory(back, a)
    np.testing.assert_array_equal(back, a)


def test_dlpack_torch_both_ways(torch, rng):
    x = torch.randn(4, 3, dtype=torch.float64)
    t = fd.from_dlpack(x)
    x[0, 0] = 9.0
    assert t[0, 0].item() == 9.0
    y = torch.from_dlpack(fd.tensor(rng.standard_normal((2, 7)), dtype=fd.float32).T)
    assert tuple(y.shape) == (7, 2) and y.dtype == torch.float32
    b = torch.utils.dlpack.from_dlpack(fd.ones(3, dtype=fd.bfloat16))
    assert b.dtype == torch.bfloat16 and b.sum().item() == 3


def test_dtype_conversions():
    t = fd.tensor([1.7, -2.2, 0.0])
    assert t.long().tolist() == [1, -2, 0]
    assert t.bool().tolist() == [True, True, False]
    assert t.double().dtype == fd.float64 and t.to(fd.float16).dtype == fd.float16
    assert t.to("cpu", fd.float64).dtype == fd.float64
    assert t.int().dtype == fd.int32


def test_misc_tensor_api():
    t = fd.randn(2, 3, 4)
    assert t.numel() == 24 and t.dim() == 3 and t.size(1) == 3 and t.size() == (2, 3, 4)
    assert len(t) == 2 and [x.shape for x in t] == [(3, 4), (3, 4)]
    assert t.is_contiguous() and t.is_floating_point()
    with pytest.raises(ValueError, match="ambiguous"):
        bool(t)
    assert float(fd.tensor(2.5)) == 2.5 and int(fd.tensor(3)) == 3
    with pytest.raises(IndexError):
        t.size(3)


def test_zero_dim_bfloat16_tensor_keeps_zero_dims():
    t = fd.tensor(1.5, dtype=fd.bfloat16)
    assert t.shape == () and t.item() == 1.5
    assert fd.tensor(2.0).argsort().shape == ()


@pytest.mark.parametrize("name,args", [
    ("ravel", ()), ("t", ()), ("fliplr", ()), ("flipud", ()), ("nansum", ()), ("nansum", (1,)), ("count_nonzero", ()),
    ("count_nonzero", (0,)), ("fmod", (1.5,)), ("fmod", (-2.0,)), ("frac", ()), ("roll", (1,)), ("roll", ((1, -2), (0, 1))),
    ("tile", ((2,),)), ("tile", ((2, 1, 2),)), ("unflatten", (1, (2, 2))), ("diff", ()), ("diff", (2, 0)),
    ("repeat_interleave", (2,)), ("repeat_interleave", (2, 1)), ("swapdims", (0, 1)), ("moveaxis", (0, 1)),
    ("true_divide", (2,)), ("fix", ()), ("not_equal", (0.5,)), ("greater_equal", (0.0,)), ("less_equal", (0.0,)),
    ("argwhere", ()), ("nelement", ()), ("ndimension", ()), ("hypot", "other"), ("logaddexp", "other"),
    ("xlogy", "other"), ("addcmul", "two"), ("addcdiv", "two"),
])
def test_torch_aliases_and_composed_methods(torch, name, args):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 4))
    a[0, 1] = 0.0
    b = np.abs(rng.standard_normal((3, 4))) + 0.5
    x, t = fd.tensor(a, dtype=fd.float32), torch.tensor(a, dtype=torch.float32)
    if args == "other":
        args_f, args_t = (fd.tensor(b, dtype=fd.float32),), (torch.tensor(b, dtype=torch.float32),)
    elif args == "two":
        args_f, args_t = (fd.tensor(b, dtype=fd.float32),) * 2, (torch.tensor(b, dtype=torch.float32),) * 2
    else:
        args_f = args_t = args
    got, want = getattr(x, name)(*args_f), getattr(t, name)(*args_t)
    if isinstance(want, torch.Tensor):
        assert tuple(got.shape) == tuple(want.shape) and str(got.dtype)[7:] == str(want.dtype)[6:]
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
        if hasattr(fd, name) and name not in ("nelement", "ndimension"):
            np.testing.assert_allclose(getattr(fd, name)(x, *args_f).numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
    else:
        assert got == want


def test_torch_composed_functions(torch):
    a = np.arange(12.0, dtype=np.float32).reshape(3, 4) - 5
    x, t = fd.tensor(a), torch.tensor(a)
    for got, want in [(fd.aminmax(x, dim=1), torch.aminmax(t, dim=1)), (fd.var_mean(x, 1), torch.var_mean(t, 1)),
                      (fd.std_mean(x, correction=0), torch.std_mean(t, correction=0)),
                      (fd.take(x, fd.tensor([0, 5, 11])), torch.take(t, torch.tensor([0, 5, 11]))),
                      (fd.take_along_dim(x, fd.tensor([[0], [2], [1]]), 1), torch.take_along_dim(t, torch.tensor([[0], [2], [1]]), 1)),
                      (fd.hstack([x, x]), torch.hstack([t, t])), (fd.vstack([x[0], x[1]]), torch.vstack([t[0], t[1]])),
                      (fd.atleast_3d(x), torch.atleast_3d(t)), (fd.fmod(fd.tensor([-7, 7]), 3), torch.fmod(torch.tensor([-7, 7]), 3)),
                      (fd.rsub(x, 2.0), torch.rsub(t, 2.0)), (fd.clamp_min(x, 0.5), torch.clamp_min(t, 0.5))]:
        got = got if isinstance(got, tuple) else (got,)
        want = want if isinstance(want, tuple) else (want,)
        for g, w in zip(got, want):
            assert tuple(g.shape) == tuple(w.shape)
            np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-5, atol=1e-6)
    assert fd.broadcast_shapes((2, 1), (3,)) == (2, 3)


def test_repr_matches_pytorch_formatting(torch):
    cases = [[1.0, 2.0], [1.0, 2.5], [[1.5, -2.25], [3.0, 4.0]], [1e-5, 1.0], [1e9, -1.0], [float("nan"), 1.5],
             [float("inf"), 1.0], 10.558144, [0.0, 0.0], [-0.5], [True], [True, False], [[1, -20], [3, 4]],
             [-float("inf"), 2.5], [123456.0, 1.5]]
    for c in cases:
        assert repr(fd.tensor(c)) == repr(torch.tensor(c)), c


def test_broadcast_tensors_shapes_and_zero_dim():
    a, b, c = fd.tensor(2.0), fd.arange(3.0).reshape(3, 1), fd.ones(4)
    xa, xb, xc = fd.broadcast_tensors(a, b, c)
    assert xa.shape == xb.shape == xc.shape == (3, 4)
    np.testing.assert_array_equal(xb.numpy(), np.broadcast_to(np.arange(3.0).reshape(3, 1), (3, 4)))
    za, zb = fd.broadcast_tensors(fd.tensor(1.0), fd.tensor(5.0))  # all 0-d: shape ()
    assert za.shape == zb.shape == () and float(zb) == 5.0


def test_where_method_takes_the_condition_first_argument():
    # x.where(condition, y) is where(condition, x, y), as in PyTorch (not x as the condition)
    x, c = fd.tensor([1.0, 2.0, 3.0]), fd.tensor([True, False, True])
    assert x.where(c, fd.zeros(3)).tolist() == [1.0, 0.0, 3.0]
    assert x.where(c, 7.0).tolist() == [1.0, 7.0, 3.0]
    torch = pytest.importorskip("torch")
    tx = torch.tensor([1.0, 2.0, 3.0])
    assert tx.where(torch.tensor([True, False, True]), 7.0).tolist() == x.where(c, 7.0).tolist()
