"""uint8, int8 and int16 tensors: creation from numpy (zero-copy) and Python data, wrapping
arithmetic, PyTorch's promotion lattice, reductions that widen to int64, casts from floating
point that wrap as PyTorch's do, sorting, indexing (a uint8 tensor index is a mask), the
Tensor.byte / char / short spellings, and safetensors round trips. Checked against numpy's
wrapping integer arithmetic and, where installed, PyTorch."""
import numpy as np
import pytest

import fastdl as fd

SMALL = [(fd.uint8, np.uint8), (fd.int8, np.int8), (fd.int16, np.int16)]
ALL = [fd.bool, fd.uint8, fd.int8, fd.int16, fd.int32, fd.int64, fd.float16, fd.bfloat16, fd.float32, fd.float64]


def _rand(npdt, shape, rng, nonzero=False):
    i = np.iinfo(npdt)
    a = rng.integers(i.min, i.max + 1, shape).astype(npdt)
    if nonzero:
        a[a == 0] = 3
    return a


@pytest.mark.parametrize("fdt,npdt", SMALL)
def test_numpy_round_trip_and_zero_copy(fdt, npdt):
    a = _rand(npdt, (4, 5), np.random.default_rng(0))
    t = fd.from_numpy(a)
    assert t.dtype == fdt and t.element_size() == np.dtype(npdt).itemsize
    a[0, 0] = 7  # shares memory
    assert t[0, 0].item() == 7
    assert fd.tensor(a).dtype == fdt and fd.as_tensor(a).dtype == fdt
    np.testing.assert_array_equal(fd.tensor(a).numpy(), a)
    assert fd.tensor(a).numpy().dtype == npdt
    assert fd.tensor([1, 2], dtype=fdt).dtype == fdt
    assert fd.zeros(2, dtype=fdt).dtype == fdt and fd.arange(5, dtype=fdt).tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("fdt,npdt", SMALL)
def test_wrapping_arithmetic_matches_numpy(fdt, npdt):
    rng = np.random.default_rng(1)
    a, b = _rand(npdt, (3, 7), rng), _rand(npdt, (3, 7), rng, nonzero=True)
    x, y = fd.tensor(a), fd.tensor(b)
    with np.errstate(over="ignore"):
        for got, want in ((x + y, a + b), (x - y, a - b), (x * y, a * b), (-x, -a), (x & y, a & b), (x | y, a | b),
                          (x ^ y, a ^ b), (~x, ~a), (fd.maximum(x, y), np.maximum(a, b)), (x // y, a // b),
                          (x % y, a % b), (x + 7, a + npdt(7)), (x[:, ::2] * 3, a[:, ::2] * npdt(3))):
            assert got.dtype == fdt
            np.testing.assert_array_equal(got.numpy(), want)
    np.testing.assert_allclose((x / y).numpy(), a.astype(np.float32) / b, rtol=1e-6)  # true division: float
    assert (x / y).dtype == fd.float32 and (x + 1.5).dtype == fd.float32
    np.testing.assert_array_equal((x < y).numpy(), a < b)


@pytest.mark.parametrize("fdt,npdt", SMALL)
def test_reductions_sorting_and_casts(fdt, npdt):
    rng = np.random.default_rng(2)
    a = _rand(npdt, (6, 9), rng)
    x = fd.tensor(a)
    assert x.sum().dtype == fd.int64 and x.sum().item() == int(a.astype(np.int64).sum())
    np.testing.assert_array_equal(x.sum(1).numpy(), a.astype(np.int64).sum(1))
    assert x.prod(1).dtype == fd.int64  # the int64 product wraps on overflow, as numpy's and PyTorch's
    np.testing.assert_array_equal(x.prod(1).numpy(), a.astype(np.int64).prod(1))
    assert x.max().dtype == fdt and x.max().item() == a.max() and x.argmin().item() == a.argmin()
    np.testing.assert_array_equal(x.cumsum(1).numpy(), a.astype(np.int64).cumsum(1))
    np.testing.assert_array_equal(fd.sort(x, dim=1).values.numpy(), np.sort(a, 1))
    np.testing.assert_array_equal(fd.unique(x).numpy(), np.unique(a))
    np.testing.assert_array_equal(x.float().numpy(), a.astype(np.float32))
    # floating point to a small integer truncates, then wraps modulo 2^bits (PyTorch's casts)
    f = np.array([-3.7, -1.0, 0.5, 127.9, 200.2, 300.5, -129.0], dtype=np.float32)
    want = f.astype(np.int64).astype(npdt)
    np.testing.assert_array_equal(fd.tensor(f).to(fdt).numpy(), want)
    np.testing.assert_array_equal(x.clamp(-5, 100).numpy(), np.clip(a, max(-5, np.iinfo(npdt).min), 100))


def test_promotion_lattice():
    # bool < uint8, int8 < int16 < int32 < int64 < float16 / bfloat16 < float32 < float64;
    # uint8 with int8 is int16
    order = [fd.bool, fd.uint8, fd.int16, fd.int32, fd.int64, fd.float32, fd.float64]
    for i, a in enumerate(order):
        for b in order[i:]:
            assert fd.promote_types(a, b) == b, (a, b)
    assert fd.promote_types(fd.uint8, fd.int8) == fd.int16
    assert fd.promote_types(fd.int8, fd.float16) == fd.float16
    assert (fd.ones(2, dtype=fd.uint8) + fd.tensor(300)).dtype == fd.uint8  # 0-dim tensors do not promote
    assert (fd.ones(2, dtype=fd.int8) + fd.ones(2, dtype=fd.int32)).dtype == fd.int32
    torch = pytest.importorskip("torch")
    tdt = {d: getattr(torch, str(d).split(".")[1]) for d in ALL}
    for a in ALL:
        for b in ALL:
            assert str(fd.promote_types(a, b)).split(".")[1] == str(torch.promote_types(tdt[a], tdt[b])).split(".")[1]
            assert fd.can_cast(a, b) == torch.can_cast(tdt[a], tdt[b]), (a, b)


def test_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    for fdt, npdt in SMALL:
        a, b = _rand(npdt, (4, 6), rng), _rand(npdt, (4, 6), rng, nonzero=True)
        for f in (lambda m, x, y: x + y, lambda m, x, y: x * y - 3, lambda m, x, y: m.remainder(x, y),
                  lambda m, x, y: m.floor_divide(x, y), lambda m, x, y: x.sum(0), lambda m, x, y: x.max(1).values,
                  lambda m, x, y: m.topk(x, 2).values, lambda m, x, y: m.where(x > y, x, y), lambda m, x, y: x << 2,
                  lambda m, x, y: x >> 1, lambda m, x, y: (x.double() * 2.6 - 90).to(x.dtype), lambda m, x, y: x.abs(),
                  lambda m, x, y: m.cat([x, y]).t(), lambda m, x, y: x.to(m.int8) + y.to(m.uint8)):
            want = f(torch, torch.from_numpy(a), torch.from_numpy(b))
            got = f(fd, fd.tensor(a), fd.tensor(b))
            assert str(got.dtype).split(".")[1] == str(want.dtype).split(".")[1]
            np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_methods_indexing_and_serialization(tmp_path):
    x = fd.tensor([3, -2, 300, 7])
    assert x.byte().dtype == fd.uint8 and x.byte().tolist() == [3, 254, 44, 7]
    assert x.char().tolist() == [3, -2, 44, 7] and x.short().dtype == fd.short == fd.int16
    assert x.byte().type() == "fastdl.ByteTensor" and x.type("fastdl.CharTensor").dtype == fd.int8
    assert not fd.uint8.is_signed and fd.int8.is_signed and not x.byte().is_signed()
    assert fd.iinfo(fd.uint8).max == 255 and fd.iinfo(fd.int16).min == -32768
    # a uint8 tensor index selects like a mask (PyTorch); numpy's small-int arrays index by position
    v = fd.arange(4.0)
    assert v[fd.tensor([1, 0, 1, 1], dtype=fd.uint8)].tolist() == [0.0, 2.0, 3.0]
    assert v[np.array([3, 1], dtype=np.int8)].tolist() == [3.0, 1.0]
    assert v[np.array([3, 1], dtype=np.int32)].tolist() == [3.0, 1.0] and v[np.array(2)].item() == 2.0
    with pytest.raises(IndexError):
        v[fd.tensor([1, 0], dtype=fd.int16)]
    with pytest.raises(TypeError, match="gather"):
        fd.gather(v, 0, fd.tensor([1], dtype=fd.int8))
    path = str(tmp_path / "small.safetensors")
    state = {"u": x.byte(), "c": x.char(), "s": x.short().reshape(2, 2)}
    fd.save(state, path)
    back = fd.load(path)
    for k, t in state.items():
        assert back[k].dtype == t.dtype and back[k].tolist() == t.tolist()


def test_image_batch_normalises():
    # the common path: a uint8 image batch from numpy, scaled to float
    img = np.random.default_rng(4).integers(0, 256, (2, 3, 5, 5)).astype(np.uint8)
    x = fd.from_numpy(img).float() / 255
    np.testing.assert_allclose(x.numpy(), img.astype(np.float32) / 255, rtol=1e-6)
    assert x.dtype == fd.float32


def test_ops_that_keep_or_route_small_ints():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (1, 2, 6, 6)).astype(np.uint8)
    for fdt, npdt in SMALL:
        a = _rand(npdt, (1, 2, 6, 6), rng)
        for f in (lambda m, x: m.nn.functional.max_pool2d(x, 2), lambda m, x: m.nn.functional.max_pool3d(x[None], 2),
                  lambda m, x: m.all(x), lambda m, x: m.any(x, 1), lambda m, x: m.vdot(x.flatten(), x.flatten()),
                  lambda m, x: m.nn.functional.softmin(x, 1, dtype=m.float64),
                  lambda m, x: m.tensordot(x[:, :1], x, dims=([0, 1], [0, 1])),
                  lambda m, x: m.arange(-3, 40, 3, dtype=x.dtype), lambda m, x: m.linspace(4.3, 90, 7, dtype=x.dtype)):
            want = f(torch, torch.from_numpy(a))
            got = f(fd, fd.tensor(a))
            assert str(got.dtype).split(".")[1] == str(want.dtype).split(".")[1]
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    np.testing.assert_array_equal(fd.nn.functional.max_pool2d(fd.tensor(img), 3, 1).numpy(),
                                  torch.nn.functional.max_pool2d(torch.from_numpy(img), 3, 1).numpy())


def test_out_of_range_scalars_raise():
    # PyTorch refuses Python numbers beyond a small type's range where it fills or builds
    # (arithmetic on tensors still wraps)
    with pytest.raises(ValueError, match="uint8"):
        fd.tensor([-1, 300], dtype=fd.uint8)
    with pytest.raises(ValueError, match="int8"):
        fd.full((2,), 128, dtype=fd.int8)
    x = fd.tensor([1, 2, 3], dtype=fd.uint8)
    with pytest.raises(ValueError, match="overflow"):
        x[0] = 256
    with pytest.raises(ValueError, match="int16"):
        fd.zeros(2, dtype=fd.int16).fill_(40000)
    x[0] = 255
    assert x.tolist() == [255, 2, 3] and fd.tensor([-128, 127], dtype=fd.int8).tolist() == [-128, 127]
    assert (x + 1).tolist() == [0, 3, 4]
