"""Views, shape ops, indexing and index assignment against numpy / PyTorch semantics."""
import numpy as np
import pytest

import fastdl as fd
from checks import assert_close, fd_grads, strided, torch_grads


def test_views_share_storage(rng):
    a = rng.standard_normal((4, 6)).astype(np.float32)
    t = fd.tensor(a)
    v = t.view(2, 12)
    v[0, 0] = 100.0
    assert t[0, 0].item() == 100.0
    tt = t.transpose(0, 1)
    assert tt.shape == (6, 4) and not tt.is_contiguous()
    assert tt.stride() == (1, 6)
    with pytest.raises(ValueError, match="view"):
        tt.view(24)
    assert tt.reshape(24).is_contiguous()
    np.testing.assert_array_equal(tt.reshape(24).numpy(), t.numpy().T.reshape(24))


def test_shape_ops(rng):
    a = rng.standard_normal((2, 3, 4))
    t = fd.tensor(a, dtype=fd.float64)
    np.testing.assert_array_equal(t.permute(2, 0, 1).numpy(), a.transpose(2, 0, 1))
    np.testing.assert_array_equal(t.unsqueeze(1).shape, (2, 1, 3, 4))
    np.testing.assert_array_equal(t.unsqueeze(-1).shape, (2, 3, 4, 1))
    assert t.unsqueeze(0).squeeze().shape == (2, 3, 4)
    assert t[:, :1].squeeze(1).shape == (2, 4)
    assert t.flatten().shape == (24,) and t.flatten(1).shape == (2, 12)
    np.testing.assert_array_equal(t[:, None, :, None].shape, (2, 1, 3, 1, 4))
    e = fd.tensor(a[:, :1], dtype=fd.float64).expand(2, 5, 4)
    np.testing.assert_array_equal(e.numpy(), np.broadcast_to(a[:, :1], (2, 5, 4)))
    np.testing.assert_array_equal(fd.cat([t, t], 1).numpy(), np.concatenate([a, a], 1))
    np.testing.assert_array_equal(fd.stack([t, t], -1).numpy(), np.stack([a, a], -1))
    parts = t.split(2, dim=2)
    assert [p.shape for p in parts] == [(2, 3, 2), (2, 3, 2)]
    parts = t.split([1, 3], dim=2)
    np.testing.assert_array_equal(parts[1].numpy(), a[:, :, 1:])
    assert len(t.chunk(3, 1)) == 3
    np.testing.assert_array_equal(t.flip(0, 2).numpy() if False else t.flip((0, 2)).numpy(), a[::-1, :, ::-1])
    np.testing.assert_array_equal(t.repeat(2, 1, 3).numpy(), np.tile(a, (2, 1, 3)))
    np.testing.assert_array_equal(fd.tensor(a[0]).tril().numpy(), np.tril(a[0]))
    np.testing.assert_array_equal(t.movedim(0, -1).numpy(), np.moveaxis(a, 0, -1))
    np.testing.assert_array_equal(t.T.numpy(), a.T)


@pytest.mark.parametrize("key", [
    (1,), (-1,), (slice(None), 2), (slice(1, None, 2),), (Ellipsis, 1), (None, 0, Ellipsis), (slice(None), None, slice(0, 3, 2)),
    (slice(-3, -1),), (slice(10, 20),), (0, slice(None), -1),
])
def test_basic_indexing(key, rng):
    a = rng.standard_normal((5, 4, 6))
    t = fd.tensor(a, dtype=fd.float64)
    np.testing.assert_array_equal(t[key].numpy(), a[key])


def test_advanced_indexing(rng, torch):
    a = rng.standard_normal((5, 4, 6))
    t = fd.tensor(a, dtype=fd.float64)
    T = torch.tensor(a)
    i = np.array([3, 0, 2, 2])
    j = np.array([[1], [3]])
    keys = [
        lambda I, J: (I,), lambda I, J: (slice(None), I[:3]), lambda I, J: (I, slice(None), I),
        lambda I, J: (J, I), lambda I, J: (slice(None), J, I[:2] if False else slice(0, 2)),
        lambda I, J: (I[:2], slice(1, 3), I[:2]), lambda I, J: (Ellipsis, I[1:]), lambda I, J: (0, slice(None), I),
    ]
    for k in keys:
        want = T[k(torch.tensor(i), torch.tensor(j))].numpy()
        got = t[k(fd.tensor(i), fd.tensor(j))].numpy()
        np.testing.assert_array_equal(got, want)
    m = a > 0.5
    np.testing.assert_array_equal(t[fd.tensor(m)].numpy(), a[m])
    np.testing.assert_array_equal(t[fd.tensor(m[:, 0, 0])].numpy(), a[m[:, 0, 0]])
    np.testing.assert_array_equal(t[[0, 2]].numpy(), a[[0, 2]])


def test_index_assignment(rng):
    a = rng.standard_normal((5, 6))
    t = fd.tensor(a, dtype=fd.float64)
    a[1] = 3
    t[1] = 3
    a[:, 2:4] = np.arange(2)
    t[:, 2:4] = fd.arange(2, dtype=fd.float64)
    a[a > 1] = -1
    t[t > 1] = -1
    a[[0, 4], [1, 1]] = 7
    t[fd.tensor([0, 4]), fd.tensor([1, 1])] = 7
    np.testing.assert_array_equal(t.numpy(), a)


def test_index_out_of_range_raises():
    t = fd.zeros(3, 4)
    with pytest.raises(IndexError):
        t[3]
    with pytest.raises(IndexError):
        t[:, -5]
    with pytest.raises(IndexError):
        t[fd.tensor([0, 3])]
    with pytest.raises(IndexError):
        t[fd.tensor([0, 1]), fd.tensor([4, 0])] = 1.0
    with pytest.raises(IndexError):
        t[0, 0, 0]
    with pytest.raises(IndexError):
        t.gather(1, fd.tensor([[4]]))
    assert (t == 0).all().item()  # nothing half-written


def test_index_grad_accumulates_duplicates(torch, rng):
    a = rng.standard_normal((5, 3))
    up = rng.standard_normal((4, 3))
    idx = [1, 1, 4, 0]
    wo, (wg,) = torch_grads(torch, lambda x: x[torch.tensor(idx)], [a], up)
    o, (g,) = fd_grads(lambda x: x[fd.tensor(idx)], [a], up)
    assert_close(o, wo)
    assert_close(g, wg)


def test_gather_scatter_add_vs_torch(torch, rng):
    a = rng.standard_normal((4, 5))
    idx = rng.integers(0, 5, (4, 3))
    up = rng.standard_normal((4, 3))
    wo, (wg,) = torch_grads(torch, lambda x: torch.gather(x, 1, torch.tensor(idx)), [a], up)
    o, (g,) = fd_grads(lambda x: fd.gather(x, 1, fd.tensor(idx)), [a], up)
    assert_close(o, wo)
    assert_close(g, wg)
    src = rng.standard_normal((4, 3))
    want = torch.zeros(4, 5, dtype=torch.float64).scatter_add(1, torch.tensor(idx), torch.tensor(src)).numpy()
    got = fd.scatter_add(fd.zeros(4, 5, dtype=fd.float64), 1, fd.tensor(idx), fd.tensor(src, dtype=fd.float64))
    assert_close(got, want)


def test_view_op_grads_vs_torch(torch, rng):
    a = rng.standard_normal((3, 4, 5))
    up = rng.standard_normal((5, 2, 4))

    def f_t(x):
        return x.permute(2, 0, 1)[:, 1:, :].reshape(5, 2, 4) * 2

    wo, (wg,) = torch_grads(torch, f_t, [a], up)
    o, (g,) = fd_grads(f_t, [a], up)
    assert_close(o, wo)
    assert_close(g, wg)
    up2 = rng.standard_normal((3, 8, 5))
    wo, (wg,) = torch_grads(torch, lambda x: torch.cat([x, x.flip(1)], 1), [a], up2)
    o, (g,) = fd_grads(lambda x: fd.cat([x, x.flip(1)], 1), [a], up2)
    assert_close(g, wg)


def test_composed_ops_vs_numpy_and_torch(rng, torch):
    a, b, c = rng.standard_normal((3, 4)), rng.standard_normal((4, 5)), rng.standard_normal((2, 3, 4))
    A, B, C = (fd.tensor(x, dtype=fd.float64) for x in (a, b, c))
    for eq, ops, np_ops in [("ij,jk->ik", (A, B), (a, b)), ("bij,jk->bik", (C, B), (c, b)), ("ij->ji", (A,), (a,)),
                            ("ij,ij->i", (A, A), (a, a)), ("i,j->ij", (A[0], A[1]), (a[0], a[1])), ("bij->j", (C,), (c,)),
                            ("bij,bkj->bik", (C, C), (c, c))]:
        np.testing.assert_allclose(fd.einsum(eq, *ops).numpy(), np.einsum(eq, *np_ops), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(fd.sort(A, 1).values.numpy(), np.sort(a, 1))
    np.testing.assert_array_equal(A.sort(0, descending=True).values.numpy(), -np.sort(-a, 0))
    np.testing.assert_array_equal(fd.topk(A, 2).indices.numpy(), torch.topk(torch.tensor(a), 2).indices.numpy())
    np.testing.assert_array_equal(fd.diag(fd.tensor([1.0, 2.0]), 1).numpy(), np.diag([1.0, 2.0], 1))
    np.testing.assert_array_equal(fd.diagonal(A, -1).numpy(), np.diagonal(a, -1))
    x, y = fd.meshgrid(fd.arange(3), fd.arange(2), indexing="xy")
    nx, ny = np.meshgrid(np.arange(3), np.arange(2))
    np.testing.assert_array_equal(x.numpy(), nx)
    np.testing.assert_array_equal(y.numpy(), ny)
    assert fd.allclose(A, A + 1e-10) and not fd.allclose(A, A + 1e-3) and fd.equal(A, A.clone())
    np.testing.assert_array_equal(fd.masked_select(A, A > 0).numpy(), a[a > 0])
    np.testing.assert_allclose(A.cumprod(1).numpy(), np.cumprod(a, 1), rtol=1e-12)
    g = fd.tensor(a, dtype=fd.float64, requires_grad=True)
    fd.einsum("ij,jk->ik", g, B).sum().backward()
    np.testing.assert_allclose(g.grad.numpy(), np.ones((3, 5)) @ b.T, rtol=1e-12)


def test_reshape_of_expanded_batch_views_with_chunk_strides():
    # regression: view strides must come from each contiguous chunk's base stride
    b = fd.arange(8.0).reshape(1, 2, 4).expand(3, 3, 2, 4)
    r = b.reshape(9, 2, 4)
    assert r.stride() == (0, 4, 1)
    np.testing.assert_array_equal(r.numpy(), np.broadcast_to(np.arange(8.0).reshape(1, 2, 4), (9, 2, 4)))
    t = fd.arange(24.0).reshape(2, 3, 4)[:, :, 1:3]
    np.testing.assert_array_equal(t.reshape(6, 2).numpy(), np.arange(24.0).reshape(2, 3, 4)[:, :, 1:3].reshape(6, 2))


def test_zero_dim_inputs_to_dim_ops_never_read_out_of_bounds():
    s = fd.tensor(2.0)
    assert s.flip(-1).item() == 2.0 and s.flip(0).shape == ()
    with pytest.raises(ValueError, match="flip: dim 0 appears multiple times"):
        fd.ones(2).flip((0, -1))
    for bad in (lambda: s.narrow(0, 0, 1), lambda: s.split(1), lambda: s.chunk(2), lambda: s.unbind()):
        with pytest.raises((IndexError, ValueError)):
            bad()


def test_chunk_of_empty_dim_and_cat_promotes_skipped_empties():
    assert len(fd.zeros(3, 0, 1).chunk(3, 1)) == 3
    assert fd.cat([fd.zeros(0, dtype=fd.int32), fd.zeros(0, dtype=fd.float64)]).dtype == fd.float64
    assert fd.cat([fd.zeros(0), fd.ones(2, dtype=fd.bfloat16)]).dtype == fd.float32
    with pytest.raises(TypeError, match="reshape"):
        fd.ones(2).reshape()


def test_advanced_index_backward_after_basic_slice(torch):
    # regression: backward planned offsets with the view's strides on a contiguous buffer (segfault)
    a = np.random.default_rng(0).standard_normal((2, 4, 3))
    x = fd.tensor(a, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    x[[1, 1], 2:].sum().backward()
    t[[1, 1], 2:].sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy())


def test_index_assign_value_broadcasts_against_placed_result(torch):
    # the value broadcasts against the result as the user sees it (index dims moved in place)
    x, t = fd.zeros(4, 4, 1), torch.zeros(4, 4, 1)
    v = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    x[fd.tensor([0, 2]), 1:4, 0] = fd.tensor(v)
    t[torch.tensor([0, 2]), 1:4, 0] = torch.tensor(v)
    np.testing.assert_array_equal(x.numpy(), t.numpy())
    x, t = fd.zeros(3, 4, 2), torch.zeros(3, 4, 2)
    w = np.arange(8.0, dtype=np.float32).reshape(4, 2)
    x[:, None, 1, fd.tensor([1, 0])] = fd.tensor(w[:1, :2])
    t[:, None, 1, torch.tensor([1, 0])] = torch.tensor(w[:1, :2])
    np.testing.assert_array_equal(x.numpy(), t.numpy())
    assert fd.ones(2)[None].shape == (1, 2)


def test_gather_scatter_index_select_refuse_negative_indices():
    x = fd.ones(4, 3)
    for bad in (lambda: x.gather(1, fd.tensor([[-1]])), lambda: x.index_select(0, fd.tensor([-1])),
                lambda: x.scatter_add(0, fd.tensor([[-1]]), fd.ones(1, 1))):
        with pytest.raises(IndexError):
            bad()
    b = fd.zeros(3, dtype=fd.bfloat16).scatter_add(0, fd.tensor([0, 0, 2]), fd.ones(3, dtype=fd.bfloat16))
    assert b.dtype == fd.bfloat16 and b.tolist() == [2.0, 0.0, 1.0]


@pytest.mark.parametrize("use", [(0, 1, 2), (1,), (0, 2), (2, 2)])
def test_split_backward_one_node_vs_torch(use, torch, rng):
    """split/chunk pieces share one SplitBackward0; pieces without a gradient read as zeros."""
    a = rng.standard_normal((4, 9, 5))
    fx, tx = fd.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    fp, tp = fx.split([2, 3, 4], dim=1), tx.split([2, 3, 4], dim=1)
    assert "SplitBackward0" in repr(fp[0].grad_fn)
    ws = [rng.standard_normal(tp[i].shape) for i in use]
    sum(((fp[i] * fd.tensor(w)).sum() for i, w in zip(use, ws)), fd.tensor(0.0)).backward()
    sum(((tp[i] * torch.tensor(w)).sum() for i, w in zip(use, ws)), torch.tensor(0.0)).backward()
    np.testing.assert_allclose(fx.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    # chunk and slices with and without a step, on a transposed input
    fy, ty = fd.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    for x, lib in ((fy, fd), (ty, torch)):
        xt = x.transpose(0, 2)
        c = xt.chunk(2, dim=0)
        (c[1].sum() * 2 + xt[1:4].sum() + xt[:, ::3].sum() + xt[..., 2:].sum()).backward()
    np.testing.assert_allclose(fy.grad.numpy(), ty.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_gather_scatter_add_against_torch_random_geometry(seed):
    """gather / scatter_add walk the index row by row and split rows (or, when dim is not the last, columns of
    the last dim) over threads: every rank, dim, index extent (shorter than the input, or longer along dim),
    duplicate indices, transposed inputs and sizes past the threading grain match torch exactly."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    cases = [(tuple(int(v) for v in rng.integers(1, 6, size=rng.integers(1, 5))), None) for _ in range(60)]
    cases += [((300, 200), 1), ((300, 200), 0), ((40, 30, 50), 1), ((40, 30, 50), 2), ((70000,), 0)]
    for k, (ashape, d) in enumerate(cases):
        nd = len(ashape)
        d = int(rng.integers(0, nd)) if d is None else d
        ishape = tuple(int(rng.integers(1, s + 1)) if j != d else int(rng.integers(1, 8)) for j, s in enumerate(ashape))
        if k >= 60:
            ishape = ashape
        a, src = rng.standard_normal(ashape), rng.standard_normal(ishape)
        idx = rng.integers(0, ashape[d], size=ishape)
        fa = fd.tensor(a)
        if k % 3 == 0 and nd >= 2:  # a transposed (non-contiguous) input
            fa = fd.tensor(np.ascontiguousarray(np.swapaxes(a, 0, -1))).transpose(0, -1)
        ta, ti = torch.tensor(a), torch.tensor(idx)
        np.testing.assert_array_equal(fd.gather(fa, d, fd.tensor(idx)).numpy(), torch.gather(ta, d, ti).numpy())
        np.testing.assert_allclose(fd.scatter_add(fa, d, fd.tensor(idx), fd.tensor(src)).numpy(),
                                   torch.scatter_add(ta, d, ti, torch.tensor(src)).numpy(), rtol=1e-12, atol=1e-12)
    # empty extents and 0-dim
    assert fd.gather(fd.ones(0, 3), 1, fd.zeros(0, 2, dtype=fd.int64)).shape == (0, 2)
    assert fd.scatter_add(fd.ones(2, 3), 0, fd.zeros(0, 3, dtype=fd.int64), fd.ones(0, 3)).tolist() == [[1.0] * 3] * 2
    assert float(fd.gather(fd.tensor(5.0), 0, fd.tensor(0))) == 5.0


def test_unfold_and_diagonal_are_views_like_torch():
    """Tensor.unfold and diagonal are strided views (writes reach the base; overlapping windows accumulate their
    gradients), with torch's shapes on transposed inputs."""
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).normal(size=(4, 7, 5))
    for d in (0, 1, 2, -1):
        for size, step in ((2, 1), (3, 2), (1, 3), (4, 4)):
            if size > x.shape[d]:
                continue
            a, b = fd.tensor(x).transpose(0, 2), torch.tensor(x).transpose(0, 2)
            np.testing.assert_array_equal(a.unfold(d, size, step).numpy(), b.unfold(d, size, step).numpy())
            w, tw = fd.tensor(x).requires_grad_(), torch.tensor(x).requires_grad_()
            (w.unfold(d, size, step) ** 2).sum().backward()
            (tw.unfold(d, size, step) ** 2).sum().backward()
            np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-12)
    a = fd.zeros(6)
    a.unfold(0, 2, 2).fill_(1.0)
    assert a.tolist() == [1.0] * 6
    m = fd.zeros(3, 3)
    m.diagonal().add_(2.0)
    assert m.tolist() == [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]]
    assert fd.tensor(3.0).unfold(0, 1, 1).tolist() == [3.0]


@pytest.mark.parametrize("dtype", [fd.float32, fd.float64])
@pytest.mark.parametrize("kind", ["contig", "transposed", "stepped"])
def test_index_select_every_dim_against_numpy(dtype, kind):
    """index_select along each dim (the slab kernel: a memcpy per slab, or an element gather when
    the dim is last), repeated indices, any input layout; the gradient adds repeated rows."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 5, 6))
    for d in range(3):
        idx = rng.integers(0, x.shape[d], 7)
        idx[3] = idx[1]  # a repeat
        up = rng.standard_normal(tuple(7 if i == d else s for i, s in enumerate(x.shape)))
        t = strided(x, dtype, kind=kind).detach().requires_grad_(True)
        out = t.index_select(d, fd.tensor(idx))
        assert_close(out, np.take(x, idx, axis=d), dtype)
        out.backward(fd.tensor(up, dtype=dtype))
        want = np.zeros_like(x)
        for j, i in enumerate(idx):
            sl = [slice(None)] * 3
            sl[d] = i
            src = [slice(None)] * 3
            src[d] = j
            want[tuple(sl)] += up[tuple(src)]
        assert_close(t.grad, want, dtype)


def test_index_select_integer_bool_half_and_0d_index():
    x = np.arange(24).reshape(2, 3, 4)
    for dt in (fd.int64, fd.int32, fd.int8, fd.bool, fd.float16, fd.bfloat16):
        t = fd.tensor(x % 5 if dt != fd.bool else x % 2 == 0, dtype=dt)
        got = t.index_select(2, fd.tensor([3, 0, 3]))
        assert got.dtype == dt and got.is_contiguous()
        np.testing.assert_array_equal(got.float().numpy(), t.float().numpy()[:, :, [3, 0, 3]])
    got = fd.tensor(x).index_select(1, fd.tensor(2))  # a 0-d index keeps the dim, as PyTorch
    assert tuple(got.shape) == (2, 1, 4)
    h = fd.tensor(x, dtype=fd.float16, requires_grad=True)
    h.index_select(0, fd.tensor([1, 1])).sum().backward()
    np.testing.assert_array_equal(h.grad.float().numpy()[1], np.full((3, 4), 2.0))
    with pytest.raises(IndexError, match="index_select"):
        fd.tensor(x).index_select(2, fd.tensor([4]))


def test_scatter_native_against_torch():
    """scatter without a reduction: every dim, repeated positions (the last write in index order
    wins, as PyTorch's CPU loop), a src larger than index (its rest gets zero gradient), every
    dtype, PyTorch's gradients; an index out of range raises before anything is returned."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    for d in range(3):
        a, src = rng.standard_normal((4, 5, 6)), rng.standard_normal((4, 6, 7))
        ishape = [3, 4, 5]
        idx = rng.integers(0, a.shape[d], ishape)
        fa, fs = fd.tensor(a, requires_grad=True), fd.tensor(src, requires_grad=True)
        ta, ts = torch.tensor(a, requires_grad=True), torch.tensor(src, requires_grad=True)
        fo, to = fa.scatter(d, fd.tensor(idx), fs), ta.scatter(d, torch.tensor(idx), ts)
        np.testing.assert_array_equal(fo.detach().numpy(), to.detach().numpy())
        up = rng.standard_normal(a.shape)
        fo.backward(fd.tensor(up))
        # PyTorch's rule (its own backward rejects a src larger than index): input's gradient with the
        # written positions zeroed, src's gathered, zero beyond index's block
        tup = torch.tensor(up)
        gs = torch.zeros_like(ts)
        gs[:3, :4, :5] = tup.gather(d, torch.tensor(idx))
        np.testing.assert_array_equal(fa.grad.numpy(), tup.scatter(d, torch.tensor(idx), 0.0).numpy())
        np.testing.assert_array_equal(fs.grad.numpy(), gs.numpy())
    for dt in (fd.int64, fd.int8, fd.bool, fd.float16, fd.bfloat16):
        base = fd.zeros(2, 3, dtype=dt)
        got = base.scatter(1, fd.tensor([[2, 0], [1, 1]]), fd.ones(2, 2, dtype=dt))
        np.testing.assert_array_equal(got.float().numpy(), [[1, 0, 1], [0, 1, 0]])
    with pytest.raises(IndexError, match="scatter: index 3 is out of bounds"):
        fd.zeros(2, 3).scatter(1, fd.tensor([[0, 3]]), fd.ones(1, 2))
