"""as_strided (native view) and its copy / scatter forms, the *_copy view ops, split_with_sizes,
unsafe_chunk / unsafe_split, narrow_copy, sum_to_size, resize_ / resize_as_, empty_strided /
empty_permuted, scalar_tensor, fill and nonzero_static, against PyTorch: float64 and float32,
forward and gradients (random upstream), non-contiguous inputs, errors naming the op."""
import numpy as np
import pytest

import fastdl as fd

torch = pytest.importorskip("torch")

DTYPES = [(fd.float64, torch.float64, 1e-12), (fd.float32, torch.float32, 1e-5)]


def _pair(arr, fdt, tdt, transposed=False):
    """The same values as a fastdl and a torch leaf; transposed: a non-contiguous view of a copy."""
    if transposed:
        a = fd.tensor(np.ascontiguousarray(arr.T), dtype=fdt).t().detach().requires_grad_(True)
        t = torch.tensor(np.ascontiguousarray(arr.T), dtype=tdt).t().detach().requires_grad_(True)
        return a, t
    return fd.tensor(arr, dtype=fdt, requires_grad=True), torch.tensor(arr, dtype=tdt, requires_grad=True)


def _check(f_fd, f_t, arrays, fdt, tdt, tol, transposed=False, seed=0):
    pairs = [_pair(a, fdt, tdt, transposed and a.ndim == 2) for a in arrays]
    out_f, out_t = f_fd(*[p[0] for p in pairs]), f_t(*[p[1] for p in pairs])
    outs_f = list(out_f) if isinstance(out_f, (tuple, list)) else [out_f]
    outs_t = list(out_t) if isinstance(out_t, (tuple, list)) else [out_t]
    assert len(outs_f) == len(outs_t)
    rng = np.random.default_rng(seed)
    loss_f = loss_t = 0
    for of, ot in zip(outs_f, outs_t):
        assert tuple(of.shape) == tuple(ot.shape)
        np.testing.assert_allclose(of.detach().numpy(), ot.detach().numpy(), rtol=tol, atol=tol)
        w = rng.standard_normal(tuple(ot.shape))
        loss_f = loss_f + (of * fd.tensor(w, dtype=fdt)).sum()
        loss_t = loss_t + (ot * torch.tensor(w, dtype=tdt)).sum()
    loss_f.backward()
    loss_t.backward()
    for pf, pt in pairs:
        want = pt.grad.numpy() if pt.grad is not None else np.zeros(tuple(pt.shape))
        got = pf.grad.numpy() if pf.grad is not None else np.zeros(tuple(pf.shape))
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("fdt,tdt,tol", DTYPES)
@pytest.mark.parametrize("size,stride,offset", [((2, 3), (1, 2), 1), ((4, 3), (1, 1), 0), ((3, 3), (0, 1), 2),
                                                ((2, 2, 2), (5, 0, 3), None), ((5,), (3,), 0), ((), (), 4)])
@pytest.mark.parametrize("transposed", [False, True])
def test_as_strided_matches_torch(fdt, tdt, tol, size, stride, offset, transposed):
    x = np.random.default_rng(1).standard_normal((3, 5))
    _check(lambda a: fd.as_strided(a, size, stride, offset), lambda a: torch.as_strided(a, size, stride, offset),
           [x], fdt, tdt, tol, transposed)
    _check(lambda a: fd.as_strided_copy(a, size, stride, offset),
           lambda a: torch.as_strided_copy(a, size, stride, offset), [x], fdt, tdt, tol, transposed)


def test_as_strided_is_a_view_with_its_geometry():
    base = fd.arange(12.0)
    v = base.as_strided((3, 2), (4, 1), 1)
    assert (v.stride(), v.storage_offset()) == ((4, 1), 1)
    np.testing.assert_array_equal(v.numpy(), [[1, 2], [5, 6], [9, 10]])
    v.mul_(-1)  # writes through to the base
    assert base[5].item() == -5 and base[3].item() == 3
    # a view of a view reads the storage from its absolute offset, as PyTorch
    tail = fd.arange(10.0)[4:]
    np.testing.assert_array_equal(fd.as_strided(tail, (2,), (1,), 0).numpy(), [0, 1])
    np.testing.assert_array_equal(fd.as_strided(tail, (2,), (1,)).numpy(), [4, 5])


def test_as_strided_overlapping_input_gradient():
    """An expanded (stride-0) input: each storage element's gradient is shared by the input
    elements that alias it, as PyTorch's as_strided backward does."""
    x = np.random.default_rng(2).standard_normal((4, 1))
    _check(lambda a: fd.as_strided(a.expand(4, 3), (3, 2), (1, 1), 0),
           lambda a: torch.as_strided(a.expand(4, 3), (3, 2), (1, 1), 0), [x], fd.float64, torch.float64, 1e-12)


def test_as_strided_errors():
    x = fd.zeros(3, 4)
    with pytest.raises(ValueError, match=r"as_strided: .*reach element 12 of a storage of 12"):
        fd.as_strided(x, (4, 4), (3, 1), 0)
    with pytest.raises(ValueError, match="as_strided: size .* and stride .* must have the same length"):
        fd.as_strided(x, (2, 2), (1,))
    with pytest.raises(ValueError, match="as_strided: stride .* negative"):
        fd.as_strided(x, (2,), (-1,))
    with pytest.raises(ValueError, match="as_strided: storage_offset must be >= 0"):
        fd.as_strided(x, (2,), (1,), -1)


@pytest.mark.parametrize("fdt,tdt,tol", DTYPES)
@pytest.mark.parametrize("size,stride,offset", [((2, 2), (1, 2), 1), ((2, 3), (5, 1), 0), ((3,), (4,), 2)])
def test_as_strided_scatter_forward_and_gradients(fdt, tdt, tol, size, stride, offset):
    rng = np.random.default_rng(3)
    x, src = rng.standard_normal((3, 5)), rng.standard_normal(size)

    def torch_ref(a, s):  # PyTorch's own in-place form: its as_strided_scatter gradient w.r.t. input is wrong
        out = a.clone()
        out.as_strided(size, stride, offset).copy_(s)
        return out
    _check(lambda a, s: fd.as_strided_scatter(a, s, size, stride, offset), torch_ref, [x, src], fdt, tdt, tol)
    np.testing.assert_allclose(
        fd.as_strided_scatter(fd.tensor(x), fd.tensor(src), size, stride, offset).numpy(),
        torch.as_strided_scatter(torch.tensor(x), torch.tensor(src), size, stride, offset).numpy())


def test_as_strided_scatter_gradient_by_finite_differences():
    rng = np.random.default_rng(4)
    x = fd.tensor(rng.standard_normal((3, 3)), requires_grad=True)
    s = fd.tensor(rng.standard_normal((2, 2)), requires_grad=True)
    assert fd.autograd.gradcheck(lambda a, b: fd.as_strided_scatter(a, b, (2, 2), (1, 2), 1), (x, s))


def test_as_strided_scatter_errors():
    with pytest.raises(ValueError, match=r"as_strided_scatter: src of shape \(3,\) must have the view's size \(2,\)"):
        fd.as_strided_scatter(fd.zeros(4), fd.zeros(3), (2,), (1,))
    with pytest.raises(ValueError, match="as_strided_scatter: .*reach element 4 of an input of 4"):
        fd.as_strided_scatter(fd.zeros(4), fd.zeros(2), (2,), (3,), 1)


COPIES = [
    ("alias_copy", (), {}), ("diagonal_copy", (1, 0, 1), {}), ("expand_copy", ((2, 3, 5),), {}),
    ("permute_copy", ((1, 0),), {}), ("squeeze_copy", (), {}), ("t_copy", (), {}), ("transpose_copy", (0, 1), {}),
    ("unbind_copy", (1,), {}), ("unfold_copy", (1, 2, 2), {}), ("unsqueeze_copy", (1,), {}),
    ("view_copy", ((5, 3),), {}), ("split_with_sizes_copy", ([1, 2],), {}), ("narrow_copy", (1, 1, 3), {}),
]


@pytest.mark.parametrize("fdt,tdt,tol", DTYPES)
@pytest.mark.parametrize("name,args,kwargs", COPIES, ids=[c[0] for c in COPIES])
def test_copy_ops_match_torch(fdt, tdt, tol, name, args, kwargs):
    x = np.random.default_rng(5).standard_normal((3, 5))
    _check(lambda a: getattr(fd, name)(a, *args, **kwargs), lambda a: getattr(torch, name)(a, *args, **kwargs),
           [x], fdt, tdt, tol, transposed=name not in ("view_copy",))


def test_copy_ops_return_fresh_memory():
    x = fd.arange(6.0).reshape(2, 3)
    for y in (fd.alias_copy(x), fd.transpose_copy(x, 0, 1), fd.expand_copy(x[:1], (4, 3)), fd.t_copy(x)):
        y.fill_(-1.0) if hasattr(y, "fill_") else y.mul_(0)
    np.testing.assert_array_equal(x.numpy(), np.arange(6.0).reshape(2, 3))


@pytest.mark.parametrize("fdt,tdt,tol", DTYPES)
def test_splits_and_chunks(fdt, tdt, tol):
    x = np.random.default_rng(6).standard_normal((7, 4))
    _check(lambda a: fd.split_with_sizes(a, [2, 0, 5]), lambda a: torch.split_with_sizes(a, [2, 0, 5]), [x], fdt,
           tdt, tol, transposed=True)
    _check(lambda a: a.split_with_sizes([1, 3], dim=1), lambda a: a.split_with_sizes([1, 3], dim=1), [x], fdt, tdt,
           tol)
    _check(lambda a: fd.unsafe_chunk(a, 3), lambda a: torch.unsafe_chunk(a, 3), [x], fdt, tdt, tol)
    _check(lambda a: a.unsafe_split(3, 1), lambda a: a.unsafe_split(3, 1), [x], fdt, tdt, tol)
    with pytest.raises(ValueError, match=r"split_with_sizes: split_sizes \[2, 2\] must .* sum to the size of dim 0"):
        fd.split_with_sizes(fd.zeros(7, 4), [2, 2])


@pytest.mark.parametrize("fdt,tdt,tol", DTYPES)
@pytest.mark.parametrize("shape,size", [((3, 4, 5), (4, 1)), ((3, 4), (1, 4)), ((2, 3), (2, 3)), ((4,), (1,)),
                                        ((2, 1, 3), (1, 3))])
def test_sum_to_size(fdt, tdt, tol, shape, size):
    x = np.random.default_rng(7).standard_normal(shape)
    _check(lambda a: a.sum_to_size(size), lambda a: a.sum_to_size(size), [x], fdt, tdt, tol)
    _check(lambda a: a.sum_to_size(*size), lambda a: a.sum_to_size(*size), [x], fdt, tdt, tol)


def test_sum_to_size_error():
    with pytest.raises(ValueError, match=r"sum_to_size: size \(3,\) is not expandable to the tensor's shape \(2, 4\)"):
        fd.zeros(2, 4).sum_to_size(3)


def test_resize_keeps_storage_order_and_grows():
    x = fd.arange(12.0).reshape(3, 4)
    assert x.resize_(2, 5) is x and tuple(x.shape) == (2, 5)
    np.testing.assert_array_equal(x.numpy(), np.arange(10.0).reshape(2, 5))
    t = fd.arange(6.0).reshape(2, 3).t().contiguous().t()  # column-major storage: resize_ reads storage order
    tt = torch.arange(6.0).reshape(2, 3).t().contiguous().t()
    np.testing.assert_array_equal(t.resize_(3, 2).numpy(), tt.resize_(3, 2).numpy())
    g = fd.arange(4.0)
    g.resize_(3, 3)
    assert tuple(g.shape) == (3, 3)
    np.testing.assert_array_equal(g.reshape(-1)[:4].numpy(), np.arange(4.0))
    y = fd.zeros(2, 2)
    y.resize_as_(fd.zeros(4))
    assert tuple(y.shape) == (4,)
    with pytest.raises(RuntimeError, match="resize_: cannot resize a tensor that requires grad"):
        fd.zeros(3, requires_grad=True).resize_(2)
    with pytest.raises(ValueError, match="resize_: size .* negative"):
        fd.zeros(3).resize_(-1)


def test_empty_strided_and_permuted_layouts():
    t = fd.empty_strided((2, 3), (1, 2), dtype=fd.float64)
    assert tuple(t.shape) == (2, 3) and t.stride() == (1, 2) and t.dtype == fd.float64
    p = fd.empty_permuted((2, 3, 4), (2, 0, 1))
    want = torch.empty_permuted((2, 3, 4), (2, 0, 1))
    assert tuple(p.shape) == (2, 3, 4) and p.stride() == want.stride()
    assert fd.empty_strided((0, 3), (3, 1)).numel() == 0
    with pytest.raises(ValueError, match="empty_permuted: physical_layout .* must be a permutation"):
        fd.empty_permuted((2, 3), (0, 0))
    with pytest.raises(ValueError, match="empty_strided: size .* and stride .* must have the same length"):
        fd.empty_strided((2, 3), (1,))


def test_scalar_tensor_and_fill():
    s = fd.scalar_tensor(2.5)
    assert s.shape == () and s.dtype == fd.float32 and s.item() == 2.5
    assert fd.scalar_tensor(3, dtype=fd.int64).dtype == fd.int64
    x = fd.tensor(np.random.default_rng(8).standard_normal((3, 4))).t()
    for v in (1.5, True, -2):
        np.testing.assert_array_equal(fd.fill(x, v).numpy(), torch.fill(torch.tensor(x.numpy()), v).numpy())
    np.testing.assert_array_equal(fd.fill(fd.zeros(3, dtype=fd.int64), 2.7).numpy(),
                                  torch.fill(torch.zeros(3, dtype=torch.int64), 2.7).numpy())
    v = fd.tensor(0.5, requires_grad=True)
    fd.fill(fd.zeros(2, 3), v).sum().backward()
    assert v.grad.item() == 6.0
    with pytest.raises(ValueError, match="fill: value must be a number or a 0-dim tensor"):
        fd.fill(fd.zeros(2), fd.zeros(2))


@pytest.mark.parametrize("size", [0, 2, 5, 9])
def test_nonzero_static(size):
    a = np.random.default_rng(9).standard_normal((3, 4))
    a[a < 0.2] = 0
    for arr in (a, a.T):
        got = fd.nonzero_static(fd.tensor(arr), size=size, fill_value=-7)
        want = torch.nonzero_static(torch.tensor(arr), size=size, fill_value=-7)
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert fd.tensor(a).nonzero_static(size=1).dtype == fd.int64
    with pytest.raises(ValueError, match="nonzero_static: size must be >= 0"):
        fd.nonzero_static(fd.zeros(3), size=-1)


def test_as_strided_inplace():
    base = fd.arange(12.0)
    x = base[2:]
    assert fd.as_strided_(x, (2, 3), (3, 1), 3) is x
    assert (tuple(x.shape), x.stride(), x.storage_offset()) == ((2, 3), (3, 1), 3)
    np.testing.assert_array_equal(x.numpy(), np.arange(3.0, 9.0).reshape(2, 3))
    y = fd.arange(6.0)
    y.as_strided_((3,), (2,))
    np.testing.assert_array_equal(y.numpy(), [0.0, 2.0, 4.0])
    with pytest.raises(RuntimeError, match="as_strided_: cannot change the geometry of a tensor that requires grad"):
        fd.zeros(4, requires_grad=True).as_strided_((2,), (1,))


@pytest.mark.parametrize("cols", [1, 4, 5, 6, 7, 8, 13])
@pytest.mark.parametrize("dtype", ["float32", "int32", "float64"])
def test_transposed_copy_narrow_rows(isa, cols, dtype):
    # A transposed view made contiguous: 8 x 8 register blocks whose output rows lie back to
    # back when cols < 8 (full stores, each tail overwritten by the next row), rows left at the end.
    a = (np.random.default_rng(cols).standard_normal((cols, 4099)) * 100).astype(dtype)
    got = fd.tensor(a).T.contiguous()
    np.testing.assert_array_equal(got.numpy(), a.T)
    assert got.is_contiguous()
