"""Reductions over any dims with keepdim, on every ISA, against numpy float64; gradients vs
PyTorch."""
import numpy as np
import pytest

import fastdl as fd
from checks import assert_close, fd_grads, strided, torch_grads

DIMS = [None, 0, 1, 2, -1, (0, 2), (1, 2), (0, 1, 2)]


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("layout", ["contig", "stepped"])
def test_sum_mean_var_std(dim, keepdim, layout, isa, rng):
    a = rng.standard_normal((7, 13, 33))
    t = strided(a, fd.float64, kind=layout)
    ax = dim if not isinstance(dim, list) else tuple(dim)
    assert_close(t.sum(dim, keepdim), a.sum(axis=ax, keepdims=keepdim))
    assert_close(t.mean(dim, keepdim), a.mean(axis=ax, keepdims=keepdim))
    assert_close(t.var(dim, keepdim=keepdim), a.var(axis=ax, keepdims=keepdim, ddof=1), rtol=1e-10)
    assert_close(t.std(dim, keepdim=keepdim, correction=0), a.std(axis=ax, keepdims=keepdim), rtol=1e-10)
    t32 = strided(a, fd.float32, kind=layout)
    a32 = a.astype(np.float32).astype(np.float64)
    mass = np.abs(a32).sum(axis=ax, keepdims=keepdim)  # float32 sums are accurate relative to sum |a|
    np.testing.assert_array_less(np.abs(t32.sum(dim, keepdim).numpy() - a32.sum(axis=ax, keepdims=keepdim)), 1e-6 * mass + 1e-7)


@pytest.mark.parametrize("dim", [None, 0, 1, -1])
def test_max_min_arg(dim, isa, rng):
    a = rng.standard_normal((9, 31)).astype(np.float32)
    t = fd.tensor(a)
    if dim is None:
        assert t.max().item() == a.max() and t.min().item() == a.min()
        assert t.argmax().item() == a.argmax() and t.argmin().item() == a.argmin()
    else:
        v, i = t.max(dim)
        np.testing.assert_array_equal(v.numpy(), a.max(axis=dim))
        np.testing.assert_array_equal(i.numpy(), a.argmax(axis=dim))
        v, i = t.min(dim, keepdim=True)
        np.testing.assert_array_equal(v.numpy(), a.min(axis=dim, keepdims=True))
        np.testing.assert_array_equal(t.argmin(dim).numpy(), a.argmin(axis=dim))
        np.testing.assert_array_equal(t.amax(dim).numpy(), a.max(axis=dim))


def test_nan_propagates_and_first_index():
    t = fd.tensor([1.0, float("nan"), 3.0])
    assert np.isnan(t.max().item()) and np.isnan(t.min().item()) and t.argmax().item() == 1
    t = fd.tensor([[2.0, 5.0, 5.0], [1.0, 1.0, 0.0]])
    np.testing.assert_array_equal(t.argmax(1).numpy(), [1, 0])


def test_large_sum_accuracy_threaded(rng):
    a = rng.random(5_000_003).astype(np.float32)
    got = fd.tensor(a).sum().item()
    assert abs(got - a.astype(np.float64).sum()) / a.sum() < 1e-6


def test_int_bool_reductions():
    i = fd.tensor([[1, 2, 3], [4, 5, 6]], dtype=fd.int32)
    assert i.sum().dtype == fd.int64 and i.sum().item() == 21
    np.testing.assert_array_equal(i.prod(1).numpy(), [6, 120])
    b = fd.tensor([[True, False], [True, True]])
    np.testing.assert_array_equal(b.all(1).numpy(), [False, True])
    np.testing.assert_array_equal(b.any(0).numpy(), [True, True])
    assert b.sum().item() == 3


def test_logsumexp_cumsum_norm(rng):
    a = rng.standard_normal((4, 6)) * 50
    t = fd.tensor(a, dtype=fd.float64)
    m = a.max(1, keepdims=True)
    assert_close(t.logsumexp(1), (m + np.log(np.exp(a - m).sum(1, keepdims=True)))[:, 0])
    assert_close(t.cumsum(1), np.cumsum(a, 1))
    assert_close(t.norm(), np.linalg.norm(a))
    assert_close(t.norm(1, dim=0), np.abs(a).sum(0))


@pytest.mark.parametrize("op", ["sum", "mean", "amax", "var", "std", "logsumexp", "prod"])
def test_reduce_grads(op, torch, rng):
    a = rng.standard_normal((3, 4, 5))
    up = rng.standard_normal((3, 5))
    kw = {"dim": 1}
    tf = {"amax": lambda x: torch.amax(x, 1), "var": lambda x: x.var(1), "std": lambda x: x.std(1),
          "logsumexp": lambda x: torch.logsumexp(x, 1)}.get(op, lambda x: getattr(x, op)(**kw))
    ff = {"amax": lambda x: x.amax(1), "var": lambda x: x.var(1), "std": lambda x: x.std(1),
          "logsumexp": lambda x: x.logsumexp(1)}.get(op, lambda x: getattr(x, op)(**kw))
    wo, (wg,) = torch_grads(torch, tf, [a], up)
    o, (g,) = fd_grads(ff, [a], up)
    assert_close(o, wo)
    assert_close(g, wg, rtol=1e-10, atol=1e-12)


def test_max_dim_grad_vs_torch(torch, rng):
    a = rng.standard_normal((4, 7))
    up = rng.standard_normal(4)
    wo, (wg,) = torch_grads(torch, lambda x: x.max(1).values, [a], up)
    o, (g,) = fd_grads(lambda x: x.max(1).values, [a], up)
    assert_close(o, wo)
    assert_close(g, wg)


def test_full_reductions_split_across_threads(isa, rng):
    n = 1_000_003  # long single rows take the split-row path
    a = rng.standard_normal(n)
    t = fd.tensor(a, dtype=fd.float64)
    assert abs(t.sum().item() - a.sum()) < 1e-9 * np.abs(a).sum()
    a[n - 5] = 50.0
    a[n - 3] = 50.0  # ties: the first index wins
    a[7] = -60.0
    t = fd.tensor(a, dtype=fd.float64)
    assert t.max().item() == 50.0 and t.argmax().item() == n - 5
    assert t.min().item() == -60.0 and t.argmin().item() == 7
    a[n // 2] = np.nan
    t = fd.tensor(a, dtype=fd.float64)
    assert np.isnan(t.max().item()) and t.argmax().item() == n // 2 and t.argmin().item() == n // 2
    x = fd.tensor(rng.standard_normal((2, n)), dtype=fd.float32)
    np.testing.assert_allclose(x.sum(1).numpy(), x.numpy().astype(np.float64).sum(1), rtol=1e-5)
    p = fd.full((n,), 1.0000001, dtype=fd.float64)
    assert abs(p.prod().item() - 1.0000001 ** n) < 1e-6


def test_transposed_copy_tiles(rng, isa):
    # register-transposed blocks (4- and 8-byte elements on the AVX builds), their partial
    # edges and the scalar rest, from contiguous and row-padded sources
    a = rng.standard_normal((5, 70, 43))
    for dt in (fd.float32, fd.int32, fd.int64):
        t = fd.tensor(a * 100, dtype=dt)[:, 3:68, 1:40]
        np.testing.assert_array_equal(t.transpose(-1, -2).contiguous().numpy(),
                                      np.swapaxes(t.numpy(), -1, -2))
    for shape in [(300, 517), (3, 130, 67), (64, 64)]:
        a = rng.standard_normal(shape)
        for dt in (fd.float64, fd.float32, fd.float16, fd.bool):
            t = fd.tensor(a > 0 if dt == fd.bool else a, dtype=dt)
            got = t.transpose(-1, -2).contiguous()
            want = np.swapaxes(a > 0 if dt == fd.bool else a, -1, -2)
            np.testing.assert_array_equal(got.float().numpy() if dt == fd.float16 else got.numpy(),
                                          want.astype(np.float16).astype(np.float32) if dt == fd.float16 else
                                          (want if dt != fd.float32 else want.astype(np.float32)))


def test_transposed_copy_every_partial_width(rng, isa):
    # every count of leftover source rows (1-7 floats, 1-3 doubles) of the 8x8 / 4x4 register
    # blocks, whose outputs are written lane by lane, not with masked stores
    for cols in range(1, 18):
        a = rng.standard_normal((19, cols))
        for dt in (fd.float32, fd.float64):
            got = fd.tensor(a, dtype=dt).transpose(0, 1).contiguous().numpy()
            want = a.T.astype(np.float32) if dt == fd.float32 else a.T
            np.testing.assert_array_equal(got, want)


def test_reductions_over_empty_dims_follow_torch():
    with pytest.raises(ValueError, match="max: cannot reduce over a zero-size dimension"):
        fd.zeros(0, 0, 4).max(1)
    with pytest.raises(ValueError):
        fd.zeros(3, 0).amax(1)
    assert fd.zeros(1, 0).argmin(0).shape == (0,)  # the reduced dim is not empty
    with pytest.raises(ValueError):
        fd.zeros(1, 0).argmin()
    with pytest.raises(TypeError, match="argmax: bool"):
        fd.tensor([True, False]).argmax()
    r = fd.zeros(4, 0, dtype=fd.int32).logsumexp(1)
    assert r.dtype == fd.float32 and r.tolist() == [float("-inf")] * 4
    assert fd.tensor([5], dtype=fd.int32).logsumexp(0).item() == 5.0
    assert fd.tensor([1.0, 2.0]).std(0, correction=2).item() == float("inf")  # sum / max(0, n - c)


@pytest.mark.parametrize("dtype", [fd.float32, fd.float64])
def test_norm2_without_autograd_fused_rows(dtype):
    """The 2-norm over trailing dims without autograd (one fused pass over rows), any layout and
    keepdim; other dims and p take the general path. Against numpy in float64."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 4, 37))
    for kind in ("contig", "transposed", "stepped"):
        t = strided(x, dtype, kind=kind)
        for dims, keep in (((2,), False), ((1, 2), True), ((-1,), True), ((0,), False), (None, False)):
            got = t.norm(dim=dims, keepdim=keep) if dims else t.norm()
            want = np.sqrt((x ** 2).sum(axis=tuple(d % 3 for d in dims) if dims else None, keepdims=keep))
            assert tuple(got.shape) == np.shape(want)
            assert_close(got, want, dtype)
    assert tuple(fd.zeros(0, 3, dtype=dtype).norm(dim=1).shape) == (0,)
    assert_close(fd.zeros(2, 0, dtype=dtype).norm(dim=1), np.zeros(2), dtype)


@pytest.mark.parametrize("dtype", [fd.float32, fd.float64, fd.int64])
def test_cumsum_every_dim_and_its_gradient(dtype):
    """cumsum along each dim of odd shapes (rows side by side, or column chunks), and its gradient
    (the running sum from the end), against numpy in float64."""
    rng = np.random.default_rng(9)
    for shape in ((13, 300), (9, 1024), (3, 9, 5), (1000,), (2, 7, 1)):
        x = rng.integers(-9, 9, shape).astype(np.float64) if dtype == fd.int64 else rng.standard_normal(shape)
        for d in range(len(shape)):
            t = fd.tensor(x, dtype=dtype, requires_grad=dtype != fd.int64)
            out = t.cumsum(d)
            assert_close(out, np.cumsum(x, axis=d), dtype if dtype != fd.int64 else fd.float64)
            if dtype != fd.int64:
                up = rng.standard_normal(shape)
                out.backward(fd.tensor(up, dtype=dtype))
                assert_close(t.grad, np.flip(np.cumsum(np.flip(up, d), axis=d), d), dtype)
