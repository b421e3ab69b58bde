"""sort / argsort / topk / kthvalue / msort (csrc/ops/sort.cpp, csrc/cpu/sort.cpp) against PyTorch and numpy:
random data with duplicates, NaN, +-inf and -0.0, odd sizes, every dim, non-contiguous inputs, every dtype,
both selection paths of topk (partial sort when k * 64 <= n), k = 0 / k = n, gradients, errors."""
import numpy as np
import pytest

import fastdl as fd

torch = pytest.importorskip("torch")

DTYPES = {"float32": (fd.float32, torch.float32), "float64": (fd.float64, torch.float64),
          "bfloat16": (fd.bfloat16, torch.bfloat16), "float16": (fd.float16, torch.float16),
          "int64": (fd.int64, torch.int64), "int32": (fd.int32, torch.int32), "bool": (fd.bool, torch.bool)}
FLOATS = ("float32", "float64", "bfloat16", "float16")


def _data(rng, shape, dt, special=True):
    """Values with many ties (a small pool), and NaN / +-inf / +-0.0 among floats."""
    if dt == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    if dt in ("int64", "int32"):
        a = rng.integers(-4, 5, shape)
        a.flat[:: 7] = rng.integers(-2**30, 2**30, a.flat[:: 7].shape)
        return a.astype(np.int64 if dt == "int64" else np.int32)
    a = rng.choice(np.array([-2.5, -1.0, -0.5, 0.25, 1.0, 3.0, 7.5]), shape) + (rng.random(shape) < 0.5) * \
        rng.standard_normal(shape).round(2)
    if special:
        pool = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0])
        mask = rng.random(shape) < 0.15
        a[mask] = rng.choice(pool, int(mask.sum()))
    return a.astype(np.float32 if dt != "float64" else np.float64)


def _pair(a, dt):
    """The same values as a fastdl and a torch tensor (half precision rounded by torch, copied exactly)."""
    fdt, tdt = DTYPES[dt]
    t = torch.from_numpy(np.ascontiguousarray(a)).to(tdt)
    if dt in ("bfloat16", "float16"):
        return fd.tensor(t.float().numpy()).to(fdt), t
    return fd.tensor(np.ascontiguousarray(a)), t


def _np(x):
    if x.dtype in (fd.bfloat16, fd.float16):
        x = x.to(fd.float32)
    return x.numpy()


def _tnp(x):
    return (x.float() if x.dtype in (torch.bfloat16, torch.float16) else x).numpy()


def _same(fv, tv, zero_signs=True):
    """Equal bit for bit up to NaN payloads, signs of zero included unless told."""
    a, b = _np(fv), _tnp(tv)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    np.testing.assert_array_equal(a, b)
    if zero_signs and a.dtype.kind == "f":
        np.testing.assert_array_equal(np.signbit(a[a == 0]), np.signbit(b[b == 0]))


def _views(rng, shape, dt):
    """A contiguous tensor and non-contiguous views of the same shape (transposed, stepped) with torch twins."""
    a = _data(rng, shape, dt)
    yield _pair(a, dt)
    big = _data(rng, tuple(2 * s + 1 for s in shape), dt)
    f, t = _pair(big, dt)
    sl = tuple(slice(1, None, 2) for _ in shape)
    yield f[sl], t[sl]
    if len(shape) >= 2:
        f, t = _pair(np.ascontiguousarray(np.swapaxes(a, 0, -1)), dt)
        yield f.transpose(0, -1), t.transpose(0, -1)


@pytest.mark.parametrize("dt", list(DTYPES))
@pytest.mark.parametrize("shape", [(37,), (5, 300), (3, 7, 9), (2, 1, 6, 5)])
def test_sort_matches_torch_stable(rng, dt, shape):
    for f, t in _views(rng, shape, dt):
        for dim in range(-len(shape), len(shape)):
            for desc in (False, True):
                tv, ti = torch.sort(t, dim=dim, descending=desc, stable=True)
                fv, fi = fd.sort(f, dim, descending=desc)
                _same(fv, tv)
                np.testing.assert_array_equal(fi.numpy(), ti.numpy())
                np.testing.assert_array_equal(f.argsort(dim, descending=desc).numpy(), ti.numpy())
                if not desc:  # numpy's stable sort puts NaN last too (as the largest)
                    np.testing.assert_array_equal(fi.numpy(), np.argsort(_np(f), axis=dim, kind="stable"))


@pytest.mark.parametrize("n", [255, 256, 1000, 2048, 4099])
@pytest.mark.parametrize("dt", ["float32", "float64", "bfloat16", "int64", "int32", "bool"])
def test_sort_long_rows(rng, n, dt):
    """The radix paths (8-bit digits from n = 256, 11-bit from 2048), ties stable, rows split across threads."""
    f, t = _pair(_data(rng, (9, n), dt), dt)
    for desc in (False, True):
        tv, ti = torch.sort(t, dim=1, descending=desc, stable=True)
        fv, fi = f.sort(1, descending=desc)
        _same(fv, tv)
        np.testing.assert_array_equal(fi.numpy(), ti.numpy())
    fv, fi = fd.sort(f, 0)
    tv, ti = torch.sort(t, dim=0, stable=True)
    _same(fv, tv)
    np.testing.assert_array_equal(fi.numpy(), ti.numpy())


def test_sort_float64_reference(rng):
    """Random distinct float64 values against numpy's float64 sort, both directions, a strided dim 0."""
    a = rng.standard_normal((301, 13))
    x = fd.tensor(a)
    np.testing.assert_array_equal(fd.sort(x, 0).values.numpy(), np.sort(a, 0))
    np.testing.assert_array_equal(fd.sort(x, 0, descending=True).values.numpy(), -np.sort(-a, 0))
    np.testing.assert_array_equal(fd.argsort(x, -1).numpy(), np.argsort(a, -1, kind="stable"))
    np.testing.assert_array_equal(fd.msort(x).numpy(), np.sort(a, 0))
    np.testing.assert_array_equal(x.msort().numpy(), np.sort(a, 0))


@pytest.mark.parametrize("dt", [d for d in DTYPES if d != "bool"])
@pytest.mark.parametrize("shape,k", [((12, 65), 50), ((4, 3000), 7), ((4, 3000), 47), ((6, 64), 1), ((5, 64), 64),
                                     ((3, 200), 3), ((9, 11, 5), 4)])
def test_topk_matches_torch_including_ties(rng, dt, shape, k):
    """Values and indices, ties included, for largest / smallest and sorted / unsorted on every dim
    long enough; k = 7 of 3000 takes the partial-sort path, k = 47 of 3000 the nth-element one."""
    for f, t in _views(rng, shape, dt):
        for dim in range(len(shape)):
            if f.shape[dim] < k:
                continue
            for largest in (True, False):
                for srt in (True, False):
                    tv, ti = torch.topk(t, k, dim=dim, largest=largest, sorted=srt)
                    fv, fi = fd.topk(f, k, dim, largest=largest, sorted=srt)
                    _same(fv, tv)
                    np.testing.assert_array_equal(fi.numpy(), ti.numpy())


def test_topk_bool_and_edges(rng):
    a = _data(rng, (4, 70), "bool")
    v, i = fd.topk(fd.tensor(a), 5)
    assert v.dtype == fd.bool and v.numpy().all() == np.sort(a, 1)[:, ::-1][:, :5].all()
    np.testing.assert_array_equal(np.take_along_axis(a, i.numpy(), 1), v.numpy())
    x = fd.tensor(_data(rng, (3, 8), "float64"))
    v, i = fd.topk(x, 0)
    assert v.shape == (3, 0) and i.shape == (3, 0) and i.dtype == fd.int64
    t = torch.from_numpy(x.numpy())
    _same(fd.topk(x, 8, 1, largest=False).values, torch.topk(t, 8, 1, largest=False).values)
    e = fd.topk(fd.zeros(0, 4), 0, 0)
    assert e.values.shape == (0, 4)
    s = fd.topk(fd.tensor(2.5), 1)
    assert s.values.shape == () and s.values.item() == 2.5 and s.indices.item() == 0
    assert fd.sort(fd.tensor(2.5)).indices.shape == ()
    assert fd.kthvalue(fd.tensor(2.5), 1).values.item() == 2.5


@pytest.mark.parametrize("dt", [d for d in DTYPES if d != "bool"])
def test_kthvalue(rng, dt):
    """Values as torch's; the index points at an element equal to the value (torch's among ties is
    unspecified: fastdl's is the one a stable sort puts at rank k)."""
    shape = (7, 33, 5)
    for f, t in _views(rng, shape, dt):
        for dim in range(3):
            n = f.shape[dim]
            for k in sorted({1, 2, (n + 1) // 2, n}):
                for keepdim in (False, True):
                    tv, _ = torch.kthvalue(t.float() if dt in ("bfloat16", "float16") else t, k, dim, keepdim)
                    fv, fi = fd.kthvalue(f, k, dim, keepdim)
                    _same(fv.to(fd.float32) if dt in ("bfloat16", "float16") else fv, tv, zero_signs=False)  # -0.0 ties 0.0
                    stable = fd.argsort(f, dim).narrow(dim, k - 1, 1)
                    np.testing.assert_array_equal(fi.numpy(), (stable if keepdim else stable.squeeze(dim)).numpy())


@pytest.mark.parametrize("op", ["sort", "topk", "kthvalue"])
@pytest.mark.parametrize("dt", ["float64", "float32"])
def test_gradients_match_torch(rng, op, dt):
    npdt = np.float64 if dt == "float64" else np.float32
    a = rng.standard_normal((6, 9, 5)).astype(npdt)
    for dim in range(3):
        x = fd.tensor(a, requires_grad=True)
        tx = torch.tensor(a, requires_grad=True)
        if op == "sort":
            y, ty = fd.sort(x, dim, descending=True).values, torch.sort(tx, dim, descending=True).values
        elif op == "topk":
            y, ty = fd.topk(x, 3, dim).values, torch.topk(tx, 3, dim).values
        else:
            y, ty = fd.kthvalue(x, 2, dim).values, torch.kthvalue(tx, 2, dim).values
        g = rng.standard_normal(ty.shape).astype(npdt)
        y.backward(fd.tensor(g))
        ty.backward(torch.tensor(g))
        np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
        assert y.grad_fn is not None
    xs = fd.tensor(a, requires_grad=True)  # a non-contiguous input's gradient lands in its layout
    fd.sort(xs.transpose(0, 2), 1).values.sum().backward()
    np.testing.assert_array_equal(xs.grad.numpy(), np.ones_like(a))


def test_errors_name_the_op_k_and_size():
    x = fd.randn(3, 5)
    with pytest.raises(ValueError, match=r"topk: k \(6\) is out of range for dimension 1 of size 5"):
        fd.topk(x, 6)
    with pytest.raises(ValueError, match=r"topk: k \(-1\) .* size 3"):
        fd.topk(x, -1, 0)
    with pytest.raises(ValueError, match=r"kthvalue: k \(0\) is out of range for dimension 1 of size 5"):
        fd.kthvalue(x, 0)
    with pytest.raises(ValueError, match=r"kthvalue: k \(4\) .* size 3; input shape \(3, 5\)"):
        x.kthvalue(4, 0)
    with pytest.raises(IndexError, match="sort: dim 2"):
        fd.sort(x, 2)
    with pytest.raises(IndexError, match="topk: dim -3"):
        fd.topk(x, 1, -3)
    with pytest.raises(ValueError, match="topk: k \\(2\\)"):
        fd.topk(fd.tensor(1.0), 2)


@pytest.mark.skipif(not fd.cuda.is_available(), reason="no CUDA device")
def test_cuda_inputs_through_the_host(rng):
    a = _data(rng, (5, 40), "float32")
    x = fd.tensor(a).cuda()
    v, i = fd.topk(x, 4)
    assert v.device.type == "cuda" and i.device.type == "cuda"
    tv, ti = torch.topk(torch.from_numpy(a), 4)
    _same(v.cpu(), tv)
    np.testing.assert_array_equal(i.cpu().numpy(), ti.numpy())
    _same(fd.sort(x, 0).values.cpu(), torch.sort(torch.from_numpy(a), dim=0, stable=True).values)
