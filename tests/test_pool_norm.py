"""Pooling (max_pool2d, avg_pool2d, adaptive_avg_pool2d, adaptive_max_pool2d) and normalisation
(batch_norm, group_norm) native kernels against PyTorch in float64: outputs, indices, running
statistics and every gradient (random upstream), odd sizes, strides, padding, dilation,
ceil_mode, non-contiguous inputs, every ISA path; float32 against the float64 reference; the
nn layer classes; and bad input raising named errors."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.nn as nn
import fastdl.nn.functional as F
from checks import assert_close, strided

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _run_both(fn_fd, fn_t, arrays, rng, layouts=None, dtype=fd.float64):
    """Forward and gradients of fastdl (inputs in the given layouts) and torch (float64)."""
    layouts = layouts or ["contig"] * len(arrays)
    fx = [strided(a, dtype, kind=k).requires_grad_() for a, k in zip(arrays, layouts)]
    tx = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    fo, to = fn_fd(*fx), fn_t(*tx)
    up = rng.standard_normal(tuple(to.shape))
    fo.backward(fd.tensor(up, dtype=fo.dtype))
    to.backward(torch.tensor(up))
    return fo, to, fx, tx


def _check(fn_fd, fn_t, arrays, rng, layouts=None, dtype=fd.float64):
    fo, to, fx, tx = _run_both(fn_fd, fn_t, arrays, rng, layouts, dtype)
    tol = {} if dtype == fd.float64 else dict(rtol=1e-4, atol=1e-5)
    assert tuple(fo.shape) == tuple(to.shape)
    assert_close(fo, to.detach().numpy(), dtype, **tol)
    for f, t in zip(fx, tx):
        assert_close(f.grad, t.grad.numpy(), dtype, **tol)


MAX_CASES = [  # (shape, kernel, stride, padding, dilation, ceil_mode)
    ((2, 3, 9, 11), 3, 2, 1, 1, False),
    ((2, 3, 9, 11), 3, 2, 1, 1, True),
    ((1, 4, 10, 7), (2, 3), (1, 2), (1, 0), 1, False),
    ((3, 2, 13, 12), 3, 2, 1, 2, True),
    ((2, 5, 7, 7), 2, None, 0, 1, True),
    ((4, 8, 8), 3, 1, 1, (2, 1), False),   # unbatched (C, H, W)
    ((2, 3, 6, 6), (1, 4), (3, 1), (0, 2), 1, False),
]


@pytest.mark.parametrize("case", MAX_CASES)
def test_max_pool2d(case, isa, rng):
    shape, k, s, p, d, cm = case
    x = rng.standard_normal(shape)
    kw = dict(stride=s, padding=p, dilation=d, ceil_mode=cm)
    for layout in ("contig", "stepped"):
        _check(lambda a: F.max_pool2d(a, k, **kw), lambda a: TF.max_pool2d(a, k, **kw), [x], rng, [layout])
    fo, fi = F.max_pool2d(fd.tensor(x), k, return_indices=True, **kw)
    to, ti = TF.max_pool2d(torch.tensor(x), k, return_indices=True, **kw)
    np.testing.assert_array_equal(fi.numpy(), ti.numpy())
    assert fi.dtype == fd.int64


def test_max_pool2d_float32_and_ties(isa, rng):
    x = rng.standard_normal((2, 3, 11, 9))
    _check(lambda a: F.max_pool2d(a, 3, 2, 1), lambda a: TF.max_pool2d(a, 3, 2, 1), [x], rng, dtype=fd.float32)
    xt = np.round(rng.standard_normal((1, 2, 6, 6)))  # many ties: the first maximum wins, as PyTorch
    _, fi = F.max_pool2d(fd.tensor(xt), 3, 1, 1, return_indices=True)
    _, ti = TF.max_pool2d(torch.tensor(xt), 3, 1, 1, return_indices=True)
    np.testing.assert_array_equal(fi.numpy(), ti.numpy())


@pytest.mark.parametrize("case", MAX_CASES + [((2, 3, 5, 40), 3, 3, 1, 1, True), ((1, 2, 4, 37), 2, 1, 1, 1, False)])
def test_max_pool2d_float32_vector_path(case, isa, rng):
    """float32 pools kWf outputs of a row at once at strides 1 and 2 (masked loads; the even lanes
    of two loads), the scalar loop at other strides; values and indices as PyTorch's, with ties,
    NaNs and -inf windows."""
    shape, k, s, p, d, cm = case
    x = np.round(rng.standard_normal(shape) * 2).astype(np.float32)  # many ties
    flat = x.reshape(-1)
    flat[rng.choice(flat.size, flat.size // 17, replace=False)] = np.nan
    flat[rng.choice(flat.size, flat.size // 13, replace=False)] = -np.inf
    x[..., :2, :] = -np.inf  # windows with nothing above -inf: the first valid tap's index
    kw = dict(stride=s, padding=p, dilation=d, ceil_mode=cm, return_indices=True)
    fo, fi = F.max_pool2d(fd.tensor(x), k, **kw)
    to, ti = TF.max_pool2d(torch.tensor(x), k, **kw)
    assert fo.dtype == fd.float32
    np.testing.assert_array_equal(fo.numpy(), to.numpy())
    np.testing.assert_array_equal(fi.numpy(), ti.numpy())


@pytest.mark.parametrize("shape", [(32, 40, 4, 4), (16, 24, 2, 2), (300, 7, 3), (600, 33), (5, 3, 1, 1)])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", [fd.float32, fd.float64])
def test_batch_norm_short_rows(shape, training, dtype, isa, rng):
    """Rows shorter than a vector (a CNN's last stages, BatchNorm1d's S = 1) run channel
    segments across samples: outputs, running statistics and every gradient as PyTorch's,
    off-centre data (mean 5) included."""
    C = shape[1]
    x, g = rng.standard_normal(shape) * 3 + 5, rng.standard_normal(shape)
    w, b, rm, rv = rng.standard_normal(C), rng.standard_normal(C), rng.standard_normal(C), rng.random(C) + 0.5
    tdt = torch.float32 if dtype == fd.float32 else torch.float64
    fx, fw, fb = (fd.tensor(a, dtype=dtype, requires_grad=True) for a in (x, w, b))
    tx, tw, tb = (torch.tensor(a, dtype=tdt, requires_grad=True) for a in (x, w, b))
    frm, frv, trm, trv = fd.tensor(rm, dtype=dtype), fd.tensor(rv, dtype=dtype), torch.tensor(rm, dtype=tdt), torch.tensor(rv, dtype=tdt)
    fy = F.batch_norm(fx, frm, frv, fw, fb, training=training)
    ty = TF.batch_norm(tx, trm, trv, tw, tb, training=training)
    fy.backward(fd.tensor(g, dtype=dtype))
    ty.backward(torch.tensor(g, dtype=tdt))
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == fd.float64 else dict(rtol=2e-4, atol=2e-4)
    for f, t in ((fy, ty), (fx.grad, tx.grad), (fw.grad, tw.grad), (fb.grad, tb.grad), (frm, trm), (frv, trv)):
        np.testing.assert_allclose(f.detach().numpy(), t.detach().numpy(), **tol)


@pytest.mark.parametrize("dt", [fd.int32, fd.int64])
def test_max_pool2d_integers(dt, rng):
    # PyTorch pools integer tensors (values and first-maximum indices), keeping the dtype; values
    # beyond float32's 2^24 check that no float32 rounding happens on the way
    x = rng.integers(-(2**40), 2**40, (2, 3, 7, 8)) if dt == fd.int64 else rng.integers(-50, 50, (2, 3, 7, 8))
    fo, fi = F.max_pool2d(fd.tensor(x, dtype=dt), 3, 2, 1, return_indices=True)
    to, ti = TF.max_pool2d(torch.tensor(x), 3, 2, 1, return_indices=True)
    assert fo.dtype == dt
    np.testing.assert_array_equal(fo.numpy(), to.numpy())
    np.testing.assert_array_equal(fi.numpy(), ti.numpy())


AVG_CASES = [  # (shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
    ((2, 3, 9, 11), 3, 2, 1, False, True, None),
    ((2, 3, 9, 11), 3, 2, 1, True, False, None),
    ((1, 4, 10, 7), (2, 3), (1, 2), (1, 1), True, True, None),
    ((3, 2, 7, 8), 2, None, 0, False, True, 3),
    ((4, 7, 9), 3, 2, 1, True, True, None),
    ((2, 2, 5, 5), (3, 1), (2, 3), (1, 0), True, False, 5),
]


@pytest.mark.parametrize("case", AVG_CASES)
def test_avg_pool2d(case, isa, rng):
    shape, k, s, p, cm, cip, dv = case
    x = rng.standard_normal(shape)
    kw = dict(stride=s, padding=p, ceil_mode=cm, count_include_pad=cip, divisor_override=dv)
    for layout in ("contig", "transposed"):
        _check(lambda a: F.avg_pool2d(a, k, **kw), lambda a: TF.avg_pool2d(a, k, **kw), [x], rng, [layout])


@pytest.mark.parametrize("shape,out", [((2, 3, 9, 11), (4, 5)), ((2, 3, 7, 7), 1), ((1, 2, 5, 13), (7, 3)),
                                       ((3, 10, 6), (None, 4)), ((2, 4, 6, 6), (6, 6))])
def test_adaptive_pool2d(shape, out, isa, rng):
    x = rng.standard_normal(shape)
    _check(lambda a: F.adaptive_avg_pool2d(a, out), lambda a: TF.adaptive_avg_pool2d(a, out), [x], rng, ["stepped"])
    _check(lambda a: F.adaptive_max_pool2d(a, out), lambda a: TF.adaptive_max_pool2d(a, out), [x], rng)
    _, fi = F.adaptive_max_pool2d(fd.tensor(x), out, return_indices=True)
    _, ti = TF.adaptive_max_pool2d(torch.tensor(x), out, return_indices=True)
    np.testing.assert_array_equal(fi.numpy(), ti.numpy())


def test_pool_modules(rng):
    x = rng.standard_normal((2, 3, 10, 9))
    pairs = [(nn.MaxPool2d(3, 2, 1, ceil_mode=True), torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True)),
             (nn.AvgPool2d(2, count_include_pad=False, padding=1), torch.nn.AvgPool2d(2, count_include_pad=False, padding=1)),
             (nn.AdaptiveAvgPool2d((1, 1)), torch.nn.AdaptiveAvgPool2d((1, 1))),
             (nn.AdaptiveMaxPool2d(3), torch.nn.AdaptiveMaxPool2d(3))]
    for fm, tm in pairs:
        _check(fm, tm, [x], rng)
        assert type(fm).__name__ in repr(fm)
    out, idx = nn.MaxPool2d(2, return_indices=True)(fd.tensor(x))
    assert tuple(idx.shape) == tuple(out.shape) == (2, 3, 5, 4)
    y = nn.MaxPool2d(2)(fd.tensor(x, requires_grad=True))
    assert y.grad_fn is not None and "MaxPool2D" in y.grad_fn.name()


@pytest.mark.parametrize("shape", [(5, 3), (4, 6, 7), (3, 4, 5, 7), (2, 3, 2, 3, 4)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm(shape, training, isa, rng):
    C = shape[1]
    x = rng.standard_normal(shape) * 2 + 0.5
    w, b = rng.standard_normal(C), rng.standard_normal(C)
    rm0, rv0 = rng.standard_normal(C), rng.uniform(0.5, 2.0, C)
    frm, frv = fd.tensor(rm0), fd.tensor(rv0)
    trm, trv = torch.tensor(rm0), torch.tensor(rv0)
    for layout in ("contig", "stepped"):
        _check(lambda a, c, d: F.batch_norm(a, frm, frv, c, d, training, 0.3, 1e-4),
               lambda a, c, d: TF.batch_norm(a, trm, trv, c, d, training, 0.3, 1e-4), [x, w, b], rng,
               [layout, "contig", "contig"])
        assert_close(frm, trm.numpy())
        assert_close(frv, trv.numpy())
    if training:  # no running stats, no affine
        _check(lambda a: F.batch_norm(a, None, None, training=True), lambda a: TF.batch_norm(a, None, None, training=True),
               [x], rng)


def test_batch_norm_float32_and_strided_stats(rng):
    x = rng.standard_normal((6, 5, 4, 3))
    w, b = rng.standard_normal(5), rng.standard_normal(5)
    _check(lambda a, c, d: F.batch_norm(a, None, None, c, d, True), lambda a, c, d: TF.batch_norm(a, None, None, c, d, True),
           [x, w, b], rng, dtype=fd.float32)
    xo = (rng.standard_normal((4, 3, 5, 6)) * 0.01 + 1000.0).astype(np.float32).astype(np.float64)  # no cancelling
    fo = F.batch_norm(fd.tensor(xo, dtype=fd.float32), None, None, training=True)  # float32 mean: ulp(1000) / std
    assert_close(fo, TF.batch_norm(torch.tensor(xo), None, None, training=True).numpy(), fd.float32, rtol=0, atol=1e-2)
    fo = F.batch_norm(fd.tensor(xo), None, None, training=True)  # conditioning: eps * mean / std ~ 1e-11
    assert_close(fo, TF.batch_norm(torch.tensor(xo), None, None, training=True).numpy(), rtol=1e-9, atol=1e-9)
    rm0 = rng.standard_normal(10)
    frm = fd.tensor(rm0)[::2]  # strided running stats are updated in place too
    frv = fd.ones(5, dtype=fd.float64)
    trm, trv = torch.tensor(rm0)[::2].clone(), torch.ones(5, dtype=torch.float64)
    F.batch_norm(fd.tensor(x), frm, frv, training=True, momentum=0.25)
    TF.batch_norm(torch.tensor(x), trm, trv, training=True, momentum=0.25)
    assert_close(frm, trm.numpy())
    assert_close(frv, trv.numpy())


@pytest.mark.parametrize("cls,shape", [(nn.BatchNorm1d, (7, 4)), (nn.BatchNorm1d, (5, 4, 9)), (nn.BatchNorm2d, (3, 4, 5, 6)),
                                       (nn.BatchNorm3d, (2, 4, 3, 2, 5))])
@pytest.mark.parametrize("kw", [{}, {"momentum": None}, {"affine": False}, {"track_running_stats": False}])
def test_batch_norm_modules(cls, shape, kw, rng):
    fm = cls(4, **kw).double()
    tm = getattr(torch.nn, cls.__name__)(4, **kw).double()
    if fm.weight is not None:
        w, b = rng.standard_normal(4), rng.standard_normal(4)
        fm.weight.data = fd.tensor(w)
        fm.bias.data = fd.tensor(b)
        with torch.no_grad():
            tm.weight.copy_(torch.tensor(w))
            tm.bias.copy_(torch.tensor(b))
    for _ in range(3):  # training steps move the running stats (cumulative average with momentum=None)
        _check(fm, tm, [rng.standard_normal(shape) + 1.0], rng)
    for k, v in tm.state_dict().items():
        assert_close(fm.state_dict()[k], v.numpy(), msg=k)
    fm.eval()
    tm.eval()
    _check(fm, tm, [rng.standard_normal(shape)], rng)


@pytest.mark.parametrize("shape,G", [((3, 6, 5, 7), 3), ((2, 4, 9), 1), ((4, 6), 6), ((2, 8, 3, 2, 3), 4), ((1, 5, 7, 3), 5)])
def test_group_norm(shape, G, isa, rng):
    C = shape[1]
    x = rng.standard_normal(shape) * 1.5 - 0.3
    w, b = rng.standard_normal(C), rng.standard_normal(C)
    for layout in ("contig", "transposed"):
        _check(lambda a, c, d: F.group_norm(a, G, c, d, 1e-4), lambda a, c, d: TF.group_norm(a, G, c, d, 1e-4),
               [x, w, b], rng, [layout, "contig", "contig"])
    _check(lambda a: F.group_norm(a, G), lambda a: TF.group_norm(a, G), [x], rng)
    if x.size // (shape[0] * G) > 1:  # one value per group: 1 / sqrt(eps) amplifies float32 rounding
        _check(lambda a, c, d: F.group_norm(a, G, c, d), lambda a, c, d: TF.group_norm(a, G, c, d), [x, w, b], rng,
               dtype=fd.float32)
    fm, tm = nn.GroupNorm(G, C).double(), torch.nn.GroupNorm(G, C).double()
    _check(fm, tm, [x], rng)


def test_norm_gradcheck(rng):
    from fastdl.autograd import gradcheck
    x = fd.tensor(rng.standard_normal((3, 4, 2, 3)), requires_grad=True)
    w = fd.tensor(rng.standard_normal(4), requires_grad=True)
    b = fd.tensor(rng.standard_normal(4), requires_grad=True)
    assert gradcheck(lambda a, c, d: F.batch_norm(a, None, None, c, d, True), (x, w, b))
    assert gradcheck(lambda a, c, d: F.group_norm(a, 2, c, d), (x, w, b))
    assert gradcheck(lambda a: F.avg_pool2d(a, 2, 1, 1, count_include_pad=False), (x,))
    assert gradcheck(lambda a: F.max_pool2d(a, 2, 1), (x,))


def test_errors():
    x = fd.randn(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"max_pool2d: padding"):
        F.max_pool2d(x, 3, 1, 2)
    with pytest.raises(ValueError, match=r"max_pool2d: input must have shape .*\(8, 8\)"):
        F.max_pool2d(fd.randn(8, 8), 2)
    with pytest.raises(ValueError, match="max_pool2d: stride must be positive"):
        F.max_pool2d(x, 2, 0)
    with pytest.raises(ValueError, match="avg_pool2d: output size is too small"):
        F.avg_pool2d(fd.randn(1, 1, 2, 2), 5)
    with pytest.raises(ValueError, match="avg_pool2d: divisor_override"):
        F.avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(ValueError, match="kernel_size must be an int or a tuple of two"):
        F.avg_pool2d(x, (2, 2, 2))
    with pytest.raises(TypeError, match="max_pool2d: input must be floating point; got bool"):
        F.max_pool2d(fd.zeros(1, 1, 4, 4, dtype=fd.bool), 2)
    with pytest.raises(ValueError, match="adaptive_avg_pool2d: output_size must be positive"):
        F.adaptive_avg_pool2d(x, 0)
    with pytest.raises(ValueError, match=r"batch_norm: weight must have shape \(3,\).*got \(4,\)"):
        F.batch_norm(x, None, None, fd.ones(4), None, True)
    with pytest.raises(ValueError, match="batch_norm: running_mean and running_var are required"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(fd.randn(1, 3), None, None, training=True)
    with pytest.raises(TypeError, match="batch_norm: input must be floating point"):
        F.batch_norm(fd.zeros(2, 3, dtype=fd.int32), None, None, training=True)
    with pytest.raises(ValueError, match="group_norm: num_channels 3 must be divisible by num_groups 2"):
        F.group_norm(x, 2)
    with pytest.raises(ValueError, match=r"group_norm: bias must have shape \(3,\)"):
        F.group_norm(x, 3, None, fd.ones(2))
    with pytest.raises(ValueError, match="BatchNorm2d: expected 4D input"):
        nn.BatchNorm2d(3)(fd.randn(2, 3))


@pytest.mark.parametrize("name,shape", [("InstanceNorm1d", (2, 3, 7)), ("InstanceNorm2d", (3, 4, 5)),
                                        ("SyncBatchNorm", (4, 3, 2)), ("BatchNorm1d", (5, 3))])
def test_norm_bias_false_keyword_torch(name, shape, rng):
    """torch's keyword-only bias=False: an affine weight and no bias parameter."""
    m = getattr(nn, name)(3, affine=True, track_running_stats=True, bias=False).double()
    tm = getattr(torch.nn, name)(3, affine=True, track_running_stats=True, bias=False).double()
    assert list(m.state_dict()) == list(tm.state_dict()) and m.bias is None and repr(m) == repr(tm)
    m.load_state_dict({k: fd.tensor(v.numpy()) for k, v in tm.state_dict().items()})
    x = rng.standard_normal(shape)
    xf, xt = fd.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yf, yt = m(xf), tm(xt)
    assert_close(yf, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(shape)
    yf.backward(fd.tensor(g))
    yt.backward(torch.tensor(g))
    assert_close(xf.grad, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert_close(m.weight.grad, tm.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert_close(m.running_var, tm.running_var.numpy(), rtol=1e-12, atol=1e-12)
    sync = nn.SyncBatchNorm.convert_sync_batchnorm(nn.BatchNorm1d(3, bias=False))
    assert sync.bias is None and "bias=False" in repr(sync)


def _fwd_bwd_torch(fm, tm, shape, positive=False):
    """Output and input gradient (random upstream) of a fastdl and a torch module in float64."""
    x = torch.randn(*shape, dtype=torch.float64)
    x = (x.abs() + 0.1 if positive else x).requires_grad_()
    xf = fd.tensor(x.detach().numpy(), requires_grad=True)
    y, yf = tm(x), fm(xf)
    g = torch.randn_like(y)
    y.backward(g)
    yf.backward(fd.tensor(g.numpy()))
    np.testing.assert_allclose(yf.detach().numpy(), y.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(xf.grad.numpy(), x.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("p,k,s,ceil", [(2, 2, None, False), (3, (2, 3, 2), (1, 2, 2), True), (1.5, 3, 2, False),
                                        (float("inf"), 2, 1, False)])
def test_lppool3d_torch(p, k, s, ceil):
    torch.manual_seed(1)
    fm, tm = nn.LPPool3d(p, k, s, ceil), torch.nn.LPPool3d(p, k, s, ceil)
    assert repr(fm) == repr(tm)
    _fwd_bwd_torch(fm, tm, (2, 3, 5, 6, 7), positive=True)
    _fwd_bwd_torch(fm, tm, (3, 4, 5, 6), positive=True)  # unbatched


@pytest.mark.parametrize("size", [2, 3, 4, 5, 6])
def test_cross_map_lrn2d_torch(size):
    # PyTorch's legacy window and hand-written backward (not LocalResponseNorm's): matched as they are
    torch.manual_seed(size)
    fm, tm = nn.CrossMapLRN2d(size, 0.5, 0.75, 1.5), torch.nn.CrossMapLRN2d(size, 0.5, 0.75, 1.5)
    assert repr(fm) == repr(tm) and repr(nn.CrossMapLRN2d(3)) == repr(torch.nn.CrossMapLRN2d(3))
    _fwd_bwd_torch(fm, tm, (2, 7, 3, 4))
    _fwd_bwd_torch(fm, tm, (1, 2, 2, 3))  # fewer channels than the window
    with pytest.raises(ValueError, match="CrossMapLRN2d: Expected input to be 4D, got 3D instead."):
        tm(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match="CrossMapLRN2d: Expected input to be 4D, got 3D instead."):
        fm(fd.randn(2, 3, 4))
