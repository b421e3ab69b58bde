"""The torch.* / Tensor method gaps filled in _indexing, _statistics, _shaping, _pointwise and _random,
against PyTorch: float64 forward and gradients (random upstream gradient) on odd sizes, strided
inputs and negative dims, integer dtypes, error messages, and the random samplers' statistics."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fastdl as fd  # noqa: E402

RNG = np.random.default_rng(1234)


def _fd(a, grad=False):
    a = np.asarray(a)
    t = fd.from_numpy(np.array(a, order="C"))
    return t.requires_grad_(True) if grad else t


def _th(a, grad=False):
    return torch.from_numpy(np.array(a, order="C")).requires_grad_(grad)


def _flat(o):
    if isinstance(o, (tuple, list)):
        return [x for v in o for x in _flat(v)]
    return [o]


def check(fn_fd, fn_th, arrays, grad=None, tol=1e-10, kw=None):
    """fn_fd(*fastdl tensors) against fn_th(*torch tensors): every output, then the gradients of a
    random-weighted sum of the float outputs w.r.t. the inputs named in grad (indices)."""
    kw = kw or {}
    grad = set(range(len(arrays)) if grad is None else grad)
    grad = {i for i in grad if np.asarray(arrays[i]).dtype.kind == "f"}
    ft = [_fd(a, i in grad) for i, a in enumerate(arrays)]
    tt = [_th(a, i in grad) for i, a in enumerate(arrays)]
    got, want = _flat(fn_fd(*ft, **kw)), _flat(fn_th(*tt, **kw))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert tuple(g.shape) == tuple(w.shape), (g.shape, w.shape)
        assert str(g.dtype).split(".")[-1] == str(w.dtype).split(".")[-1], (g.dtype, w.dtype)
        np.testing.assert_allclose(g.detach().numpy(), w.detach().numpy(), rtol=tol, atol=tol)
    outs = [(g, w) for g, w in zip(got, want) if w.requires_grad and w.dtype.is_floating_point]
    if not grad or not outs:
        return
    ups = [RNG.standard_normal(tuple(w.shape)) for _, w in outs]
    sum((g * _fd(u)).sum() for (g, _), u in zip(outs, ups)).backward()
    sum((w * _th(u)).sum() for (_, w), u in zip(outs, ups)).backward()
    for i in sorted(grad):
        gf = np.zeros(ft[i].shape) if ft[i].grad is None else ft[i].grad.numpy()
        gt = np.zeros(tt[i].shape) if tt[i].grad is None else tt[i].grad.numpy(force=True)  # ZeroTensor
        np.testing.assert_allclose(gf, gt, rtol=tol, atol=tol)


def rnd(*shape):
    return RNG.standard_normal(shape) + 0.1


def strided(*shape):
    """A non-contiguous float64 array (every other column of a wider one)."""
    big = rnd(*shape[:-1], 2 * shape[-1])
    return big[..., ::2]


# ---- indexing / scatter -------------------------------------------------------------------------
def _perm_index(shape, dim, n):
    """An index of `shape` whose entries along dim are distinct targets in [0, n)."""
    idx = np.empty(shape, np.int64)
    moved = np.moveaxis(idx, dim, -1)
    for pos in np.ndindex(moved.shape[:-1]):
        moved[pos] = RNG.permutation(n)[:moved.shape[-1]]
    return idx


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_scatter_src_value_and_reduce(dim):
    x, src = rnd(5, 7), strided(4, 6)
    d = dim % 2
    ishape = (3, 6) if d == 0 else (4, 5)
    idx = _perm_index(ishape, d, x.shape[d])
    check(lambda a, s, i: a.scatter(dim, i, s), lambda a, s, i: a.scatter(dim, i, s), [x, src, idx], grad=[])
    # torch's backward rejects a src larger than index: the gradients with src shaped as index
    check(lambda a, s, i: a.scatter(dim, i, s), lambda a, s, i: a.scatter(dim, i, s), [x, strided(*ishape), idx])
    check(lambda a, i: fd.scatter(a, dim, i, value=-1.5), lambda a, i: torch.scatter(a, dim, i, value=-1.5), [x, idx])
    with np.errstate(all="ignore"):
        check(lambda a, s, i: a.scatter(dim, i, s, reduce="add"),
              lambda a, s, i: a.scatter(dim, i, s, reduce="add"), [x, src, idx], grad=[])
        check(lambda a, s, i: a.scatter(dim, i, s, reduce="multiply"),
              lambda a, s, i: a.scatter(dim, i, s, reduce="multiply"), [x, src, idx], grad=[])


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce(reduce, include_self):
    x, src = rnd(4, 5), rnd(6, 5)
    src[2, 1] = 0.0  # a zero inside a product group: its gradient is the product of the others
    idx = RNG.integers(0, 4, (6, 5))
    check(lambda a, s, i: a.scatter_reduce(0, i, s, reduce, include_self=include_self),
          lambda a, s, i: a.scatter_reduce(0, i, s, reduce, include_self=include_self), [x, src, idx])
    xi, si = RNG.integers(-9, 9, (4, 5)), RNG.integers(-9, 9, (6, 5))
    check(lambda a, s, i: fd.scatter_reduce(a, -2, i, s, reduce, include_self=include_self),
          lambda a, s, i: torch.scatter_reduce(a, -2, i, s, reduce, include_self=include_self), [xi, si, idx])


def test_scatter_inplace_and_errors():
    x = fd.from_numpy(rnd(3, 4))
    ref = torch.from_numpy(x.numpy().copy())
    idx = np.array([[2, 0, 1, 2]])
    x.scatter_(0, _fd(idx), 7.0)
    ref.scatter_(0, _th(idx), 7.0)
    np.testing.assert_array_equal(x.numpy(), ref.numpy())
    x.scatter_add_(0, _fd(idx), fd.ones(1, 4, dtype=fd.float64))
    ref.scatter_add_(0, _th(idx), torch.ones(1, 4, dtype=torch.float64))
    np.testing.assert_array_equal(x.numpy(), ref.numpy())
    with pytest.raises(IndexError, match="scatter"):
        x.scatter(0, _fd(np.array([[3]])), 1.0)
    with pytest.raises(TypeError, match="scatter"):
        x.scatter(0, fd.ones(1, 1), 1.0)
    with pytest.raises(ValueError, match="scatter_reduce"):
        x.scatter_reduce(0, _fd(idx), x, "max")


@pytest.mark.parametrize("dim", [1, -3])
def test_index_add_copy_fill(dim):
    x = strided(4, 5, 3)
    d = dim % 3
    idx = RNG.permutation(x.shape[d])[:3]
    sshape = list(x.shape)
    sshape[d] = 3
    src = rnd(*sshape)
    check(lambda a, s, i: a.index_add(dim, i, s, alpha=2.5), lambda a, s, i: a.index_add(dim, i, s, alpha=2.5),
          [x, src, idx])
    dup = np.array([0, 2, 0])  # index_add sums repeated rows
    check(lambda a, s, i: fd.index_add(a, dim, i, s), lambda a, s, i: torch.index_add(a, dim, i, s), [x, src, dup])
    check(lambda a, s, i: a.index_copy(dim, i, s), lambda a, s, i: a.index_copy(dim, i, s), [x, src, idx])
    check(lambda a, i: a.index_fill(dim, i, -2.0), lambda a, i: a.index_fill(dim, i, -2.0), [x, idx])
    check(lambda a, v, i: a.index_fill(dim, i, v), lambda a, v, i: a.index_fill(dim, i, v), [x, np.array(3.5), idx])
    xi, si = RNG.integers(-5, 5, x.shape), RNG.integers(-5, 5, sshape)
    check(lambda a, s, i: a.index_add(dim, i, s), lambda a, s, i: a.index_add(dim, i, s), [xi, si, idx])
    check(lambda a, s, i: a.index_copy(dim, i, s), lambda a, s, i: a.index_copy(dim, i, s), [xi, si, idx])
    with pytest.raises(IndexError, match="index_add"):
        fd.index_add(_fd(x), dim, _fd(np.array([9])), _fd(src[:1] if d == 0 else np.take(src, [0], axis=d)))
    with pytest.raises(ValueError, match="index_copy"):
        fd.index_copy(_fd(x), dim, _fd(idx), _fd(rnd(2, 2)))


def test_masked_scatter_put_take():
    x, src = strided(3, 5), rnd(20)
    mask = RNG.random((3, 5)) > 0.4
    check(lambda a, m, s: a.masked_scatter(m, s), lambda a, m, s: a.masked_scatter(m, s), [x, mask, src])
    check(lambda a, m, s: a.masked_scatter(m, s), lambda a, m, s: a.masked_scatter(m, s),
          [rnd(5), RNG.random((3, 5)) > 0.5, src])  # mask broadcasts input
    idx = np.array([[3, -1], [0, 7]])
    check(lambda a, i, s: a.put(i, s), lambda a, i, s: a.put(i, s), [x, idx, rnd(2, 2)])
    check(lambda a, i, s: a.put(i, s, accumulate=True), lambda a, i, s: a.put(i, s, accumulate=True),
          [x, np.array([1, 1, 4]), rnd(3)])
    check(lambda a, i: fd.take(a, i), lambda a, i: torch.take(a, i), [x, idx])
    t = fd.from_numpy(x.copy())
    t.put_(_fd(np.array([0, 14])), fd.tensor([1.0, 2.0], dtype=fd.float64))
    assert t[0, 0].item() == 1.0 and t[2, 4].item() == 2.0
    with pytest.raises(ValueError, match="masked_scatter"):
        _fd(x).masked_scatter(_fd(np.ones((3, 5), bool)), _fd(rnd(4)))
    with pytest.raises(IndexError, match="put"):
        _fd(x).put(_fd(np.array([15])), _fd(rnd(1)))


# ---- statistics ---------------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["median", "nanmedian"])
def test_median(op):
    x = strided(5, 6)
    x[1, 2] = np.nan  # one NaN: its index is the answer (which NaN of several PyTorch names is unspecified)
    for dim in (0, -1):
        check(lambda a: getattr(a, op)(dim, keepdim=True), lambda a: getattr(a, op)(dim, keepdim=True), [x])
    check(lambda a: getattr(fd, op)(a), lambda a: getattr(torch, op)(a), [x])
    check(lambda a: getattr(fd, op)(a), lambda a: getattr(torch, op)(a), [rnd(7)])
    check(lambda a: a.median(0), lambda a: a.median(0), [RNG.permutation(9).astype(np.int64)])
    x[3] = np.nan  # a row of NaN: NaN for both
    np.testing.assert_array_equal(getattr(fd, op)(_fd(x), 1).values.numpy(),
                                  getattr(torch, op)(_th(x), 1).values.numpy())
    with pytest.raises(IndexError, match=op):
        getattr(fd, op)(_fd(x), 2)


def test_mode():
    x = RNG.integers(0, 4, (3, 11))
    v, _ = fd.mode(_fd(x), 1)
    tv, _ = torch.mode(_th(x), 1)
    np.testing.assert_array_equal(v.numpy(), tv.numpy())
    y = rnd(4, 5)
    y[:, 3] = y[:, 1]  # each row's only repeated value is its mode
    check(lambda a: a.mode(-1), lambda a: a.mode(-1), [y])


@pytest.mark.parametrize("interpolation", ["linear", "lower", "higher", "midpoint", "nearest"])
def test_quantile(interpolation):
    x = strided(4, 9)
    x[2, 3] = np.nan
    q = np.array([0.0, 0.3, 0.5, 0.77, 1.0])
    for op in ("quantile", "nanquantile"):
        check(lambda a, qq: getattr(a, op)(qq, 1, keepdim=True, interpolation=interpolation),
              lambda a, qq: getattr(a, op)(qq, 1, keepdim=True, interpolation=interpolation), [x, q])
        check(lambda a: getattr(fd, op)(a, 0.4, dim=-2, interpolation=interpolation),
              lambda a: getattr(torch, op)(a, 0.4, dim=-2, interpolation=interpolation), [x])
        check(lambda a: getattr(fd, op)(a, 0.6, interpolation=interpolation),
              lambda a: getattr(torch, op)(a, 0.6, interpolation=interpolation), [x])
    with pytest.raises(ValueError, match="quantile"):
        fd.quantile(_fd(x), 1.5)
    with pytest.raises(ValueError, match="quantile"):
        fd.quantile(_fd(x), 0.5, interpolation="cubic")


def test_unique_bincount_histc():
    x = RNG.integers(-3, 4, (5, 6))
    for kw in ({}, {"return_inverse": True, "return_counts": True}, {"dim": 1, "return_counts": True}):
        check(lambda a: fd.unique(a, **kw), lambda a: torch.unique(a, **kw), [x])
        check(lambda a: fd.unique_consecutive(a, **kw), lambda a: torch.unique_consecutive(a, **kw), [x])
    check(lambda a: a.unique(return_inverse=True), lambda a: a.unique(return_inverse=True), [rnd(7)], grad=[])
    n = RNG.integers(0, 6, 17)
    check(lambda a: fd.bincount(a, minlength=9), lambda a: torch.bincount(a, minlength=9), [n])
    check(lambda a, w: fd.bincount(a, w), lambda a, w: torch.bincount(a, w), [n, rnd(17)], grad=[])
    check(lambda a: fd.histc(a, bins=7), lambda a: torch.histc(a, bins=7), [rnd(40)])
    check(lambda a: fd.histc(a, 5, -1, 1), lambda a: torch.histc(a, 5, -1, 1), [rnd(40)])
    with pytest.raises(ValueError, match="bincount"):
        fd.bincount(_fd(np.array([1, -1])))


@pytest.mark.parametrize("right", [False, True])
def test_searchsorted_bucketize(right):
    seq = np.sort(RNG.integers(0, 10, (3, 8)).astype(np.float64), axis=1)
    vals = RNG.integers(-1, 11, (3, 5)).astype(np.float64)
    check(lambda s, v: fd.searchsorted(s, v, right=right), lambda s, v: torch.searchsorted(s, v, right=right),
          [seq, vals])
    check(lambda s, v: fd.searchsorted(s, v, side="right" if right else "left", out_int32=True),
          lambda s, v: torch.searchsorted(s, v, side="right" if right else "left", out_int32=True), [seq[0], vals])
    unsorted = RNG.permutation(seq[0])
    sorter = np.argsort(unsorted, kind="stable")
    check(lambda s, v, o: fd.searchsorted(s, v, sorter=o), lambda s, v, o: torch.searchsorted(s, v, sorter=o),
          [unsorted, vals, sorter])
    check(lambda v, b: fd.bucketize(v, b, right=right), lambda v, b: torch.bucketize(v, b, right=right),
          [vals, seq[1]])
    with pytest.raises(ValueError, match="searchsorted"):
        fd.searchsorted(_fd(seq), _fd(vals), side="middle")


def test_cummax_cummin_logcumsumexp():
    x = strided(4, 7)
    x[1, 3] = x[1, 1]  # a tie: the later index wins
    for op in ("cummax", "cummin"):
        check(lambda a: getattr(a, op)(1), lambda a: getattr(a, op)(1), [x])
        check(lambda a: getattr(fd, op)(a, -2), lambda a: getattr(torch, op)(a, -2), [x])
        check(lambda a: getattr(fd, op)(a, 0), lambda a: getattr(torch, op)(a, 0), [RNG.integers(-5, 5, 9)])
    check(lambda a: a.logcumsumexp(-1), lambda a: a.logcumsumexp(-1), [x * 30])
    check(lambda a: fd.logcumsumexp(a, 0), lambda a: torch.logcumsumexp(a, 0), [x])


def test_nanmean_cov_corrcoef():
    x = strided(3, 8)
    x[0, 2] = np.nan
    check(lambda a: a.nanmean(1, keepdim=True), lambda a: a.nanmean(1, keepdim=True), [x])
    check(lambda a: fd.nanmean(a), lambda a: torch.nanmean(a), [x])
    y = strided(3, 8)
    fw, aw = RNG.integers(1, 4, 8), RNG.random(8) + 0.1
    check(lambda a: fd.cov(a), lambda a: torch.cov(a), [y])
    check(lambda a, f, w: fd.cov(a, correction=0, fweights=f, aweights=w),
          lambda a, f, w: torch.cov(a, correction=0, fweights=f, aweights=w), [y, fw, aw])
    check(lambda a, w: fd.cov(a, aweights=w), lambda a, w: torch.cov(a, aweights=w), [y, aw])
    check(lambda a: a.corrcoef(), lambda a: a.corrcoef(), [y])
    check(lambda a: fd.cov(a), lambda a: torch.cov(a), [rnd(6)])


# ---- shapes and products ------------------------------------------------------------------------
def test_splits_unfold_rot90():
    x = strided(7, 6, 4)
    for ios in (3, [1, 4], (2, -2, 9)):
        check(lambda a: fd.tensor_split(a, ios, dim=-2), lambda a: torch.tensor_split(a, ios, dim=-2), [x])
    check(lambda a: fd.hsplit(a, 3), lambda a: torch.hsplit(a, 3), [x])
    check(lambda a: fd.vsplit(a, [2, 5]), lambda a: torch.vsplit(a, [2, 5]), [x])
    check(lambda a: fd.dsplit(a, 2), lambda a: torch.dsplit(a, 2), [x])
    for args in ((0, 3, 2), (-1, 2, 1), (1, 6, 4)):
        check(lambda a: a.unfold(*args), lambda a: a.unfold(*args), [x])
    for k in (1, 2, 3, -1, 0):
        check(lambda a: fd.rot90(a, k, [2, -3]), lambda a: torch.rot90(a, k, [2, -3]), [x])
    with pytest.raises(ValueError, match="hsplit"):
        fd.hsplit(_fd(x), 4)
    with pytest.raises(ValueError, match="unfold"):
        _fd(x).unfold(0, 8, 1)


def test_diag_block_kron_cross():
    x = strided(3, 4)
    for off, d1, d2 in ((0, -2, -1), (1, 0, 2), (-2, 2, 0)):
        check(lambda a: fd.diag_embed(a, off, d1, d2), lambda a: torch.diag_embed(a, off, d1, d2), [x])
    check(lambda a: fd.diagflat(a, -1), lambda a: torch.diagflat(a, -1), [x])
    check(lambda a, b, c: fd.block_diag(a, b, c), lambda a, b, c: torch.block_diag(a, b, c),
          [x, rnd(3), np.array(2.5)])
    check(lambda a, b: fd.block_diag(a, b), lambda a, b: torch.block_diag(a, b),
          [RNG.integers(0, 5, (2, 2)), RNG.integers(0, 5, (1, 3))])
    check(lambda a, b: fd.cartesian_prod(a, b), lambda a, b: torch.cartesian_prod(a, b), [rnd(3), rnd(4)])
    for r, rep in ((2, False), (3, True), (1, False), (5, False)):
        check(lambda a: fd.combinations(a, r, rep), lambda a: torch.combinations(a, r, rep), [rnd(4)])
    check(lambda a, b: fd.kron(a, b), lambda a, b: torch.kron(a, b), [x, rnd(2, 3, 2)])
    check(lambda a, b: a.cross(b, dim=-2), lambda a, b: a.cross(b, dim=-2), [strided(2, 3, 5), rnd(1, 3, 5)])
    check(lambda a, b: fd.cross(a, b), lambda a, b: torch.linalg.cross(a, b, dim=0), [rnd(3, 4), rnd(3, 4)])
    with pytest.raises(ValueError, match="cross"):
        fd.cross(_fd(rnd(4)), _fd(rnd(4)))


def test_trapezoid():
    y, xs = strided(3, 6), np.sort(rnd(6))
    check(lambda a: fd.trapezoid(a, dx=0.5), lambda a: torch.trapezoid(a, dx=0.5), [y])
    check(lambda a, b: fd.trapezoid(a, b), lambda a, b: torch.trapezoid(a, b), [y, xs])
    check(lambda a, b: fd.trapezoid(a, b, dim=0), lambda a, b: torch.trapezoid(a, b, dim=0), [y, rnd(3)])
    check(lambda a, b: fd.cumulative_trapezoid(a, b), lambda a, b: torch.cumulative_trapezoid(a, b), [y, xs])
    check(lambda a: fd.trapz(a, dim=0), lambda a: torch.trapz(a, dim=0), [y])


# ---- pointwise ----------------------------------------------------------------------------------
UNARY = ["signbit", "sinc", "rad2deg", "deg2rad", "erfc", "isneginf", "isposinf", "isreal", "asinh", "arcsinh",
         "arcsin", "arccos", "arctan"]


@pytest.mark.parametrize("op", UNARY)
def test_unary(op):
    x = np.tanh(strided(5, 7))  # in (-1, 1): inside every domain here
    x[0, :3] = [0.0, -0.0, 1e-9]
    check(lambda a: getattr(fd, op)(a), lambda a: getattr(torch, op)(a), [x])
    check(lambda a: getattr(a, op)(), lambda a: getattr(a, op)(), [x])


def test_acosh_atanh_large_and_ints():
    check(lambda a: fd.acosh(a), lambda a: torch.acosh(a), [1 + np.abs(rnd(9)) * 50])
    check(lambda a: fd.atanh(a), lambda a: torch.atanh(a), [np.tanh(rnd(9))])
    check(lambda a: fd.asinh(a), lambda a: torch.asinh(a), [rnd(9) * 1e6])
    for op in ("sinc", "rad2deg", "asinh", "signbit", "erfc"):
        check(lambda a: getattr(fd, op)(a), lambda a: getattr(torch, op)(a), [RNG.integers(-3, 4, 7)], tol=1e-6)


@pytest.mark.parametrize("op", ["copysign", "fmax", "fmin", "logaddexp2", "float_power", "ldexp", "heaviside"])
def test_binary(op):
    a, b = strided(4, 5), rnd(5)
    if op in ("fmax", "fmin"):
        a[0, 1], b[2], a[3, 2] = np.nan, np.nan, np.nan
    if op == "float_power":
        a = np.abs(a) + 0.5
    if op == "ldexp":  # torch's ldexp gradient is 0 for negative exponents (integer 2 ** -k): its forward only
        check(fd.ldexp, torch.ldexp, [a, RNG.integers(-4, 5, 5)], grad=[])
        b = RNG.integers(0, 5, 5)
    if op == "heaviside":
        a[1, :2] = 0.0
    grad = [] if op == "heaviside" else None  # torch has no heaviside derivative
    check(lambda x, y: getattr(fd, op)(x, y), lambda x, y: getattr(torch, op)(x, y), [a, b], grad=grad)
    check(lambda x, y: getattr(x, op)(y), lambda x, y: getattr(x, op)(y), [a, b], grad=grad)


def test_integer_ops_and_isin():
    a, b = RNG.integers(-30, 30, (4, 5)), RNG.integers(-30, 30, 5)
    check(fd.gcd, torch.gcd, [a, b])
    check(fd.lcm, torch.lcm, [a, b])
    check(fd.fmax, torch.fmax, [a, b])
    check(lambda x, y: fd.isin(x, y), lambda x, y: torch.isin(x, y), [a, b])
    check(lambda x, y: fd.isin(x, y, invert=True), lambda x, y: torch.isin(x, y, invert=True), [a, b])
    check(lambda x: fd.isin(x, 3), lambda x: torch.isin(x, 3), [a])
    check(lambda x: fd.copysign(x, -1.0), lambda x: torch.copysign(x, -1.0), [a])
    with pytest.raises(TypeError, match="gcd"):
        fd.gcd(_fd(rnd(3)), _fd(rnd(3)))


def test_frexp_and_inplace():
    x = strided(3, 5) * 100
    check(lambda a: fd.frexp(a), lambda a: torch.frexp(a), [x])
    for name in ("abs_", "sigmoid_", "exp_", "relu_", "sinc_", "nan_to_num_", "asinh_", "erfc_", "deg2rad_"):
        t, r = fd.from_numpy(x.copy() / 100), torch.from_numpy(x.copy() / 100)
        out = getattr(fd, name)(t)
        getattr(torch, name)(r)
        assert out is t or out.data_ptr() == t.data_ptr()
        np.testing.assert_allclose(t.numpy(), r.numpy(), rtol=1e-12)
    t, r = fd.from_numpy(x.copy()), torch.from_numpy(x.copy())
    end = rnd(3, 5)
    t.lerp_(_fd(end), 0.3)
    r.lerp_(_th(end), 0.3)
    wt = RNG.random((3, 5))
    t.lerp_(_fd(end), _fd(wt))
    r.lerp_(_th(end), _th(wt))
    t.xlogy_(_fd(np.abs(end)))
    r.xlogy_(_th(np.abs(end)))
    np.testing.assert_allclose(t.numpy(), r.numpy(), rtol=1e-12)
    assert fd.ones(2).type() == "fastdl.FloatTensor" and fd.ones(2).type(fd.int64).dtype == fd.int64
    e = fd.ones(2).new_empty_strided((2, 3), (3, 1), dtype=fd.float64)
    assert tuple(e.shape) == (2, 3) and e.dtype == fd.float64


# ---- random -------------------------------------------------------------------------------------
def test_multinomial():
    w = fd.tensor([0.1, 0.0, 0.6, 0.3], dtype=fd.float64)
    fd.manual_seed(3)
    s = fd.multinomial(w, 20000, replacement=True)
    freq = np.bincount(s.numpy(), minlength=4) / 20000
    np.testing.assert_allclose(freq, [0.1, 0.0, 0.6, 0.3], atol=0.015)
    fd.manual_seed(3)
    assert fd.equal(fd.multinomial(w, 20000, replacement=True), s)  # the seed makes draws repeatable
    rows = fd.tensor([[1.0, 2.0, 3.0, 0.0, 4.0]] * 4000)
    d = rows.multinomial(4)  # without replacement: distinct, never the zero weight
    assert tuple(d.shape) == (4000, 4) and d.dtype == fd.int64
    srt = np.sort(d.numpy(), axis=1)
    assert (np.diff(srt, axis=1) > 0).all() and not (srt == 3).any()
    first = np.bincount(d.numpy()[:, 0], minlength=5) / 4000
    np.testing.assert_allclose(first, [0.1, 0.2, 0.3, 0.0, 0.4], atol=0.03)
    with pytest.raises(ValueError, match="multinomial"):
        fd.multinomial(w, 4)  # only 3 positive weights
    with pytest.raises(ValueError, match="multinomial"):
        fd.multinomial(fd.tensor([1.0, -1.0]), 1)


def test_normal_poisson_and_fills():
    fd.manual_seed(0)
    mean = fd.tensor(np.linspace(-2, 2, 5), requires_grad=True)
    std = fd.tensor(np.full(5, 0.5), requires_grad=True)
    x = fd.normal(mean.reshape(1, 5).expand(20000, 5), std)
    m = x.detach().numpy()
    np.testing.assert_allclose(m.mean(0), np.linspace(-2, 2, 5), atol=0.02)
    np.testing.assert_allclose(m.std(0), 0.5, atol=0.02)
    x.sum().backward()
    np.testing.assert_allclose(mean.grad.numpy(), 20000)
    np.testing.assert_allclose(std.grad.numpy(), ((m - np.linspace(-2, 2, 5)) / 0.5).sum(0), rtol=1e-9)
    assert tuple(fd.normal(1.0, 2.0, (3, 4)).shape) == (3, 4)
    p = fd.poisson(fd.full((50000,), 3.5, dtype=fd.float64)).numpy()
    assert abs(p.mean() - 3.5) < 0.05 and abs(p.var() - 3.5) < 0.1 and (p == np.round(p)).all()
    n = 40000
    e = fd.empty(n, dtype=fd.float64).exponential_(2.0).numpy()
    assert abs(e.mean() - 0.5) < 0.02 and e.min() >= 0
    g = fd.empty(n, dtype=fd.float64).geometric_(0.25).numpy()
    assert abs(g.mean() - 4.0) < 0.1 and g.min() >= 1
    ln = fd.empty(n, dtype=fd.float64).log_normal_(0.5, 0.25).numpy()
    assert abs(np.log(ln).mean() - 0.5) < 0.01 and abs(np.log(ln).std() - 0.25) < 0.01
    c = fd.empty(n, dtype=fd.float64).cauchy_(1.0, 2.0).numpy()
    assert abs(np.median(c) - 1.0) < 0.1
    r = fd.empty(n, dtype=fd.int64).random_(3, 9).numpy()
    assert set(np.unique(r)) == set(range(3, 9))
    fd.manual_seed(5)
    a = fd.empty(8).exponential_().numpy()
    fd.manual_seed(5)
    np.testing.assert_array_equal(fd.empty(8).exponential_().numpy(), a)
    with pytest.raises(ValueError, match="geometric_"):
        fd.empty(2).geometric_(1.5)


# ---- special functions --------------------------------------------------------------------------
def test_lgamma_digamma_polygamma():
    x = np.concatenate([RNG.uniform(0.01, 30, 20), RNG.uniform(-9.9, 0.4, 20), [1.0, 2.0, 0.5, 150.0]])
    check(fd.lgamma, torch.lgamma, [x], tol=1e-9)
    check(lambda a: a.digamma(), lambda a: a.digamma(), [x], tol=1e-9)
    for n in (1, 2, 3):
        check(lambda a: fd.polygamma(n, a), lambda a: torch.polygamma(n, a), [x], tol=1e-8)
    check(lambda a: a.mvlgamma(3), lambda a: a.mvlgamma(3), [RNG.uniform(1.1, 9, (3, 4))], tol=1e-9)
    poles = np.array([0.0, -1.0, -3.0])
    for op in ("lgamma", "digamma"):
        np.testing.assert_array_equal(getattr(fd, op)(_fd(poles)).numpy(), getattr(torch, op)(_th(poles)).numpy())
    check(fd.lgamma, torch.lgamma, [RNG.integers(1, 20, 6)], tol=1e-6)  # integers: default float dtype
    with pytest.raises(ValueError, match="polygamma"):
        fd.polygamma(-1, _fd(x))


def test_erfinv():
    # near +-1 the Halley steps on erf lose digits (erf's 1e-16 rounding over erf'(y)): 1e-9 holds to 1 - 1e-7
    x = np.concatenate([RNG.uniform(-0.999, 0.999, 30), [0.0, 1 - 1e-6, -1 + 1e-7]])
    check(fd.erfinv, torch.erfinv, [x], tol=1e-9)
    edge = np.array([1.0, -1.0, 1.5])
    np.testing.assert_array_equal(fd.erfinv(_fd(edge)).numpy(), torch.erfinv(_th(edge)).numpy())
    check(lambda a: a.erfinv(), lambda a: a.erfinv(), [RNG.uniform(-0.9, 0.9, (3, 5)).astype(np.float32)], tol=1e-6)


# ---- products, view scatters and small extras ---------------------------------------------------
def test_products():
    m, v, w = strided(4, 5), rnd(5), rnd(4)
    check(fd.inner, torch.inner, [strided(2, 3, 5), rnd(4, 5)])
    check(fd.mv, torch.mv, [m, v])
    check(lambda i, a, b: fd.addmv(i, a, b, beta=0.5, alpha=-2.0),
          lambda i, a, b: torch.addmv(i, a, b, beta=0.5, alpha=-2.0), [w, m, v])
    nan_in = np.full(4, np.nan)
    check(lambda i, a, b: fd.addmv(i, a, b, beta=0), lambda i, a, b: torch.addmv(i, a, b, beta=0), [nan_in, m, v],
          grad=[1, 2])
    check(lambda i, a, b: i.addr(a, b, alpha=3.0), lambda i, a, b: i.addr(a, b, alpha=3.0), [m, w, v])
    check(fd.ger, torch.ger, [w, v])
    check(fd.vdot, torch.vdot, [v, rnd(5)])
    for p in (1, 2, 3.5, float("inf")):
        check(lambda a, b: fd.dist(a, b, p), lambda a, b: torch.dist(a, b, p), [m, v])
    ints = [RNG.integers(-4, 5, (3,)), RNG.integers(-4, 5, (3, 2)), RNG.integers(-4, 5, (2,))]
    check(fd.addmv, torch.addmv, ints)
    with pytest.raises(ValueError, match="mv"):
        fd.mv(_fd(m), _fd(w))


def test_view_scatters():
    x = strided(5, 6)
    check(lambda a, s: fd.slice_scatter(a, s, 1, 1, 6, 2), lambda a, s: torch.slice_scatter(a, s, 1, 1, 6, 2),
          [x, rnd(5, 3)])
    check(lambda a, s: a.select_scatter(s, -1, 2), lambda a, s: a.select_scatter(s, -1, 2), [x, rnd(5)])
    check(lambda a, s: fd.diagonal_scatter(a, s, 1), lambda a, s: torch.diagonal_scatter(a, s, 1), [x, rnd(5)])
    with pytest.raises(ValueError, match="select_scatter"):
        fd.select_scatter(_fd(x), _fd(rnd(4)), 0, 1)


def test_small_extras():
    p = RNG.uniform(0.01, 0.99, (3, 4))
    check(fd.logit, torch.logit, [p])
    check(lambda a: a.logit(eps=0.1), lambda a: a.logit(eps=0.1), [p])
    check(fd.sgn, torch.sgn, [rnd(7)])
    check(fd.msort, torch.msort, [strided(5, 3)])
    check(fd.bitwise_not, torch.bitwise_not, [RNG.integers(-9, 9, 6)])
    check(fd.bitwise_not, torch.bitwise_not, [RNG.random(6) > 0.5])
    for shape, wrap in (((4, 6), False), ((7, 3), True), ((7, 3), False), ((3, 3, 3), False)):
        t = fd.from_numpy(rnd(*shape))
        r = torch.from_numpy(t.numpy().copy())
        assert t.fill_diagonal_(-7.0, wrap) is t
        r.fill_diagonal_(-7.0, wrap)
        np.testing.assert_array_equal(t.numpy(), r.numpy())
    t = fd.from_numpy(rnd(3))
    assert t.is_signed() and not t.is_complex() and t.is_cpu and t.nbytes == 24
    assert t.is_same_size(fd.ones(3)) and fd.ones(1).is_nonzero()
    for a, b in (("clip_", "clamp_"), ("multiply_", "mul_"), ("negative_", "neg_"), ("fix_", "trunc_")):
        assert getattr(fd.Tensor, a) is getattr(fd.Tensor, b)
    with pytest.raises(ValueError, match="fill_diagonal_"):
        fd.ones(2, 3, 4).fill_diagonal_(1.0)


def test_index_reduce_nextafter_histogram():
    x, src = strided(5, 4), rnd(3, 4)
    idx = np.array([4, 0, 4])  # a repeated target
    for reduce in ("prod", "mean", "amax", "amin"):
        for inc in (True, False):
            check(lambda a, s, i: a.index_reduce(0, i, s, reduce, include_self=inc),
                  lambda a, s, i: a.index_reduce(0, i, s, reduce, include_self=inc), [x, src, idx])
    check(lambda a, s, i: fd.index_reduce(a, -1, i, s, "amax"), lambda a, s, i: a.index_reduce(-1, i, s, "amax"),
          [RNG.integers(-9, 9, (3, 5)), RNG.integers(-9, 9, (3, 2)), np.array([1, 1])])
    check(fd.nextafter, torch.nextafter, [strided(3, 4), rnd(4)], tol=0)
    check(lambda a: fd.histogram(a, 6), lambda a: torch.histogram(a, 6), [rnd(30)], grad=[])
    check(lambda a, w: fd.histogram(a, 4, range=(-1.0, 1.0), weight=w, density=True),
          lambda a, w: torch.histogram(a, 4, range=(-1.0, 1.0), weight=w, density=True), [rnd(30), rnd(30) ** 2],
          grad=[])
    check(lambda a, e: fd.histogram(a, e), lambda a, e: torch.histogram(a, e), [rnd(30), np.array([-2, 0, 0.5, 3.0])],
          grad=[])


def test_inplace_views_and_bernoulli():
    x = fd.from_numpy(rnd(2, 1, 3))
    r = torch.from_numpy(x.numpy().copy())
    row, rrow = x[0], r[0]
    for name, args in (("squeeze_", (1,)), ("t_", ()), ("unsqueeze_", (-1,)), ("transpose_", (0, 2)),
                       ("swapaxes_", (1, 2)), ("swapdims_", (0, 1)), ("squeeze_", ())):
        assert getattr(x, name)(*args) is x
        getattr(r, name)(*args)
        assert tuple(x.shape) == tuple(r.shape) and x.stride() == r.stride()
        np.testing.assert_array_equal(x.numpy(), r.numpy())
    x.mul_(2.0)  # still the same storage: the earlier view sees it
    r.mul_(2.0)
    np.testing.assert_array_equal(row.numpy(), rrow.numpy())
    with pytest.raises(RuntimeError, match="t_"):
        fd.ones(2, 3, requires_grad=True).t_()
    fd.manual_seed(1)
    b = fd.full((20000,), 0.3, dtype=fd.float64).bernoulli().numpy()
    assert set(np.unique(b)) <= {0.0, 1.0} and abs(b.mean() - 0.3) < 0.02
    e = fd.empty(20000).bernoulli_(0.8).numpy()
    assert abs(e.mean() - 0.8) < 0.02


def test_rng_state_round_trip():
    fd.manual_seed(7)
    state = fd.get_rng_state()
    a, b, e = fd.randn(5), fd.rand(3), fd.empty(4).exponential_()
    m = fd.multinomial(fd.tensor([0.2, 0.5, 0.3]), 6, replacement=True)
    fd.randn(100)  # move on, then return
    fd.set_rng_state(state)
    assert fd.equal(fd.randn(5), a) and fd.equal(fd.rand(3), b) and fd.equal(fd.empty(4).exponential_(), e)
    assert fd.equal(fd.multinomial(fd.tensor([0.2, 0.5, 0.3]), 6, replacement=True), m)
    with pytest.raises(TypeError, match="set_rng_state"):
        fd.set_rng_state(fd.ones(2))


def test_erfc_tail():
    # relative accuracy where 1 - erf would have none left (erfc(6) ~ 2e-17)
    x = np.concatenate([RNG.uniform(-4, 3, 10), RNG.uniform(3, 26, 10), [3.0, 6.0]])
    got = fd.erfc(_fd(x)).numpy()
    want = torch.erfc(_th(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    check(fd.erfc, torch.erfc, [x], tol=1e-12)
