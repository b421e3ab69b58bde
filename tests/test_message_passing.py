"""F.scatter, F.message_passing and F.segment_softmax: values and gradients against a float64
PyTorch reference and finite differences on every CPU ISA path, bitwise determinism across
thread counts, CSR cache reuse, strided inputs, and errors that name the op."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.nn.functional as F
from fastdl import _C
from checks import assert_close

DTYPES = [fd.float32, fd.float64]
REDUCES = ["sum", "mean", "max", "min"]


def graph(rng, n, e, unique=False, n_out=None):
    n_out = n if n_out is None else n_out
    if unique:  # no repeated (j, i) pair: max/min have no ties
        flat = rng.choice(n * n_out, size=e, replace=False)
        return np.stack([flat % n, flat // n]).astype(np.int64)
    return np.stack([rng.integers(0, n, e), rng.integers(0, n_out, e)]).astype(np.int64)


def torch_mp(torch, x, ei, w, reduce, n_out):
    src, dst = torch.from_numpy(ei[0]), torch.from_numpy(ei[1])
    msg = x[src]
    if w is not None:
        msg = msg * (w.reshape(w.shape + (1,) * (msg.ndim - w.ndim)))
    out = torch.zeros((n_out,) + tuple(x.shape[1:]), dtype=x.dtype)
    idx = dst.reshape((-1,) + (1,) * (msg.ndim - 1)).expand_as(msg)
    red = {"sum": "sum", "mean": "mean", "max": "amax", "min": "amin"}[reduce]
    return out.scatter_reduce(0, idx, msg, red, include_self=False)


def fd_and_torch_grads(torch, reduce, x, ei, w, n_out, dtype, upstream):
    xt = fd.tensor(x, dtype=dtype, requires_grad=True)
    wt = fd.tensor(w, dtype=dtype, requires_grad=True) if w is not None else None
    out = F.message_passing(xt, fd.tensor(ei), wt, reduce=reduce, num_nodes=n_out)
    out.backward(fd.tensor(upstream, dtype=dtype))
    xr = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    wr = torch.tensor(w, dtype=torch.float64, requires_grad=True) if w is not None else None
    ref = torch_mp(torch, xr, ei, wr, reduce, n_out)
    ref.backward(torch.tensor(upstream))
    return out, xt, wt, ref, xr, wr


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("weighted", [False, True])
def test_message_passing_matches_torch(torch, rng, isa, dtype, reduce, weighted):
    n, n_out, e, f = 37, 41, 300, 19
    ei = graph(rng, n, e, unique=reduce in ("max", "min"), n_out=n_out)
    x = rng.standard_normal((n, f))
    w = rng.uniform(0.5, 2.0, e) if weighted else None
    up = rng.standard_normal((n_out, f))
    out, xt, wt, ref, xr, wr = fd_and_torch_grads(torch, reduce, x, ei, w, n_out, dtype, up)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == fd.float32 else {}
    assert out.dtype == dtype and out.shape == (n_out, f)
    assert_close(out, ref.detach().numpy(), dtype, **tol)
    assert_close(xt.grad, xr.grad.numpy(), dtype, **tol)
    if weighted:
        assert_close(wt.grad, wr.grad.numpy(), dtype, **(dict(rtol=1e-4, atol=1e-4) if dtype == fd.float32 else {}))
    empty = np.setdiff1d(np.arange(n_out), ei[1])
    assert np.all(out.detach().numpy()[empty] == 0)


@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_message_passing_heads_and_feature_dims(torch, rng, isa, reduce):
    n, e, h, c = 23, 160, 3, 5
    ei = graph(rng, n, e, unique=True)
    x = rng.standard_normal((n, h, c))
    w = rng.uniform(0.2, 1.5, (e, h))
    up = rng.standard_normal((n, h, c))
    out, xt, wt, ref, xr, wr = fd_and_torch_grads(torch, reduce, x, ei, w, n, fd.float64, up)
    assert out.shape == (n, h, c)
    assert_close(out, ref.detach().numpy())
    assert_close(xt.grad, xr.grad.numpy())
    assert_close(wt.grad, wr.grad.numpy())


@pytest.mark.parametrize("reduce", REDUCES)
def test_message_passing_finite_differences(rng, reduce):
    n, e, f = 9, 30, 4
    ei = graph(rng, n, e, unique=True)
    x = rng.standard_normal((n, f))
    w = rng.uniform(0.5, 1.5, e)
    up = rng.standard_normal((n, f))

    def loss(xa, wa):
        return float((F.message_passing(fd.tensor(xa), fd.tensor(ei), fd.tensor(wa), reduce=reduce).numpy() * up).sum())

    xt = fd.tensor(x, requires_grad=True)
    wt = fd.tensor(w, requires_grad=True)
    F.message_passing(xt, fd.tensor(ei), wt, reduce=reduce).backward(fd.tensor(up))
    eps = 1e-6
    for arr, grad in ((x, xt.grad.numpy()), (w, wt.grad.numpy())):
        num = np.zeros_like(arr)
        for k in range(arr.size):
            a1, a2 = arr.copy(), arr.copy()
            a1.flat[k] += eps
            a2.flat[k] -= eps
            num.flat[k] = (loss(*((a1, w) if arr is x else (x, a1))) - loss(*((a2, w) if arr is x else (x, a2)))) / (2 * eps)
        np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_scatter_matches_torch(torch, rng, isa, reduce, dim):
    src = rng.standard_normal((6, 7, 5))
    d = dim % 3
    n = src.shape[d]
    index = rng.integers(0, 9, n)
    index[0] = 3
    up_shape = list(src.shape)
    up_shape[d] = 10
    up = rng.standard_normal(up_shape)
    st = fd.tensor(src, requires_grad=True)
    out = F.scatter(st, fd.tensor(index), dim=dim, dim_size=10, reduce=reduce)
    out.backward(fd.tensor(up))
    sr = torch.tensor(src, requires_grad=True)
    shape = [1, 1, 1]
    shape[d] = n
    idx = torch.from_numpy(index).reshape(shape).expand_as(sr)
    red = {"sum": "sum", "mean": "mean", "max": "amax", "min": "amin"}[reduce]
    zshape = list(src.shape)
    zshape[d] = 10
    ref = torch.zeros(zshape, dtype=torch.float64).scatter_reduce(d, idx, sr, red, include_self=False)
    ref.backward(torch.tensor(up))
    assert out.shape == tuple(zshape)
    assert_close(out, ref.detach().numpy())
    assert_close(st.grad, sr.grad.numpy())
    # groups that receive nothing are 0; dim_size defaults to max + 1
    missing = np.setdiff1d(np.arange(10), index)
    assert np.all(np.take(out.detach().numpy(), missing, axis=d) == 0)
    assert F.scatter(fd.tensor(src), fd.tensor(index), dim=dim, reduce=reduce).shape[d] == index.max() + 1


def test_scatter_float32_and_broadcast_index(rng):
    src = rng.standard_normal((50, 3)).astype(np.float32)
    index = rng.integers(0, 8, 50)
    a = F.scatter(fd.tensor(src), fd.tensor(index), reduce="mean")
    b = F.scatter(fd.tensor(src), fd.tensor(index.reshape(50, 1)), reduce="mean")
    want = np.stack([src[index == g].mean(0) if np.any(index == g) else np.zeros(3) for g in range(8)])
    assert a.dtype == fd.float32
    assert_close(a, want, fd.float32, rtol=1e-5, atol=1e-6)
    assert np.array_equal(a.numpy(), b.numpy())


def segment_softmax_ref(s, index, n):
    out = np.zeros_like(s)
    for g in range(n):
        m = index == g
        if m.any():
            z = np.exp(s[m] - s[m].max(0))
            out[m] = z / z.sum(0)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
def test_segment_softmax_forward_backward(torch, rng, isa, dtype):
    e, h, n = 200, 3, 30
    index = rng.integers(0, n, e)
    s = rng.standard_normal((e, h)) * 3
    up = rng.standard_normal((e, h))
    st = fd.tensor(s, dtype=dtype, requires_grad=True)
    y = F.segment_softmax(st, fd.tensor(index), num_nodes=n)
    y.backward(fd.tensor(up, dtype=dtype))
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == fd.float32 else {}
    assert_close(y, segment_softmax_ref(s, index, n), dtype, **tol)
    # reference gradient through PyTorch's dense softmax per segment
    sr = torch.tensor(s, requires_grad=True)
    it = torch.from_numpy(index)
    mx = torch.full((n, h), -np.inf, dtype=torch.float64).scatter_reduce(0, it[:, None].expand(e, h), sr, "amax")
    z = torch.exp(sr - mx[it])
    den = torch.zeros((n, h), dtype=torch.float64).index_add(0, it, z)
    (z / den[it]).backward(torch.tensor(up))
    assert_close(st.grad, sr.grad.numpy(), dtype, **tol)


def test_segment_softmax_1d_and_large_scores(rng):
    index = np.array([0, 0, 2, 2, 2])
    s = np.array([1000.0, 999.0, -5.0, 0.0, 5.0])
    y = F.segment_softmax(fd.tensor(s), fd.tensor(index)).numpy()
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, segment_softmax_ref(s, index, 3), rtol=1e-12)


def test_bitwise_deterministic_across_threads_and_runs(rng):
    n, e, f = 3000, 60000, 32
    ei = fd.tensor(graph(rng, n, e))
    x = rng.standard_normal((n, f)).astype(np.float32)
    w = rng.standard_normal(e).astype(np.float32)
    up = fd.tensor(rng.standard_normal((n, f)).astype(np.float32))
    prev = fd.get_num_threads()

    def run(reduce):
        xt = fd.tensor(x, requires_grad=True)
        wt = fd.tensor(w, requires_grad=True)
        out = F.message_passing(xt, ei, wt, reduce=reduce)
        out.backward(up)
        s = F.segment_softmax(fd.tensor(x[:, :4].repeat(20, 0)), ei[1]).numpy()
        return out.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), s

    try:
        for reduce in ("sum", "mean", "max"):
            fd.set_num_threads(1)
            a = run(reduce)
            fd.set_num_threads(2)
            b, c = run(reduce), run(reduce)
            for u, v, z in zip(a, b, c):
                assert u.tobytes() == v.tobytes() == z.tobytes(), reduce
    finally:
        fd.set_num_threads(prev)


def test_csr_cache_reused_and_invalidated(rng):
    _C.mp_cache_clear()
    ei_np = graph(rng, 50, 400)
    x = fd.randn(50, 8)
    builds = _C.mp_cache_info()["builds"]
    a = F.message_passing(x, fd.tensor(ei_np))
    F.message_passing(x, fd.tensor(ei_np), reduce="mean")  # another tensor, same edges: reused
    assert _C.mp_cache_info()["builds"] == builds + 1
    assert _C.mp_cache_info()["size"] >= 1
    view = fd.from_numpy(ei_np)
    F.message_passing(x, view)
    assert _C.mp_cache_info()["builds"] == builds + 1
    ei_np[0, :10] = (ei_np[0, :10] + 1) % 50  # written in place through numpy: a new CSR
    b = F.message_passing(x, view)
    assert _C.mp_cache_info()["builds"] == builds + 2
    assert not np.array_equal(a.numpy(), b.numpy())
    _C.mp_cache_clear()
    assert _C.mp_cache_info()["size"] == 0


def test_strided_inputs(rng):
    n, e, f = 20, 90, 6
    ei = graph(rng, n, e)
    x = rng.standard_normal((f, n))
    w = rng.standard_normal(2 * e)
    xt = fd.tensor(x).t()  # transposed view
    wt = fd.tensor(w)[::2]
    big = np.zeros((2, 2 * e), np.int64)
    big[:, ::2] = ei
    eit = fd.tensor(big)[:, ::2]
    out = F.message_passing(xt, eit, wt).numpy()
    want = np.zeros((n, f))
    np.add.at(want, ei[1], w[::2, None] * x.T[ei[0]])
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)


def test_empty_graph_and_int32_index(rng):
    x = fd.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    out = F.message_passing(x, fd.zeros(2, 0, dtype=fd.int64), num_nodes=6)
    assert out.shape == (6, 3) and np.all(out.detach().numpy() == 0)
    out.sum().backward()
    assert np.all(x.grad.numpy() == 0)
    ei = np.array([[0, 1], [1, 2]])
    a = F.message_passing(x, fd.tensor(ei, dtype=fd.int32)).detach().numpy()
    b = F.message_passing(x, fd.tensor(ei)).detach().numpy()
    assert np.array_equal(a, b)


def test_errors_name_the_op():
    x = fd.randn(5, 3)
    with pytest.raises(IndexError, match=r"message_passing: edge_index\[0\]\[1\] = 5"):
        F.message_passing(x, fd.tensor([[0, 5], [1, 1]]))
    with pytest.raises(IndexError, match=r"message_passing: edge_index\[1\]"):
        F.message_passing(x, fd.tensor([[0, 1], [1, -1]]))
    with pytest.raises(IndexError, match="out of range for 3"):
        F.message_passing(x, fd.tensor([[0, 1], [4, 1]]), num_nodes=3)
    with pytest.raises(ValueError, match=r"message_passing: edge_index must have shape \(2, E\); got \(3, 2\)"):
        F.message_passing(x, fd.zeros(3, 2, dtype=fd.int64))
    with pytest.raises(ValueError, match="edge_weight must have shape"):
        F.message_passing(x, fd.tensor([[0, 1], [1, 1]]), fd.ones(3))
    with pytest.raises(TypeError, match="message_passing: edge_index must be int64"):
        F.message_passing(x, fd.zeros(2, 2))
    with pytest.raises(TypeError, match="message_passing: x must be floating point"):
        F.message_passing(fd.zeros(5, 3, dtype=fd.int64), fd.tensor([[0], [1]]))
    with pytest.raises(ValueError, match="reduce must be"):
        F.message_passing(x, fd.tensor([[0], [1]]), reduce="prod")
    with pytest.raises(IndexError, match="scatter: index"):
        F.scatter(x, fd.tensor([0, 1, 7, 0, 0]), dim_size=4)
    with pytest.raises(IndexError, match="scatter: index"):
        F.scatter(x, fd.tensor([0, -1, 2, 0, 0]))
    with pytest.raises(ValueError, match=r"scatter: index must have shape \(5,\)"):
        F.scatter(x, fd.tensor([0, 1]))
    with pytest.raises(IndexError, match="segment_softmax: index"):
        F.segment_softmax(x, fd.tensor([0, 1, 2, 3, 4]), num_nodes=2)


def test_bench_mp_quick(torch, capsys):
    from fastdl.bench import main
    assert main(["mp", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "fastdl sum" in out and "CSR sparse.mm" in out


@pytest.mark.skipif(not fd.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("heads", [1, 3])
def test_cuda_matches_cpu_and_is_deterministic(rng, reduce, heads):
    n, e, c = 300, 4000, 40
    ei = graph(rng, n, e, unique=True)
    x = rng.standard_normal((n, heads, c))
    w = rng.uniform(0.5, 1.5, (e, heads) if heads > 1 else e)
    up = rng.standard_normal((n, heads, c))
    res = {}
    for dev in ("cpu", "cuda", "cuda"):
        xt = fd.tensor(x, device=dev, requires_grad=True)
        wt = fd.tensor(w, device=dev, requires_grad=True)
        out = F.message_passing(xt, fd.tensor(ei, device=dev), wt, reduce=reduce)
        out.backward(fd.tensor(up, device=dev))
        s = F.segment_softmax(wt.detach(), fd.tensor(ei[1], device=dev), num_nodes=n)
        got = [t.detach().cpu().numpy() for t in (out, xt.grad, wt.grad, s)]
        if dev in res:  # second CUDA run: bitwise the same
            assert all(a.tobytes() == b.tobytes() for a, b in zip(res[dev], got))
        res[dev] = got
    for a, b in zip(res["cpu"], res["cuda"]):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-10)
    src = fd.tensor(x[:, 0], device="cuda")
    idx = fd.tensor(rng.integers(0, 50, n), device="cuda")
    np.testing.assert_allclose(F.scatter(src, idx, reduce=reduce).cpu().numpy(),
                               F.scatter(src.cpu(), idx.cpu(), reduce=reduce).numpy(), rtol=1e-12)
