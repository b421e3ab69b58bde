"""F.pad (every mode, negative padding, 1-3 padded dims), the padding layers, pixel / channel
shuffle, instance_norm and the InstanceNorm layers, 1-d pooling, LP pooling and
conv_transpose1d against PyTorch in float64: outputs and gradients (random upstream) on fresh
random data, odd sizes, non-contiguous inputs; running statistics; named errors on bad input."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.nn as nn
import fastdl.nn.functional as F
from checks import assert_close, strided

torch = pytest.importorskip("torch")
TF, TN = torch.nn.functional, torch.nn


def _check(fn_fd, fn_t, arrays, rng, layout="contig", tol=None):
    """fastdl (inputs in layout) vs torch, float64: output, then gradients of every input."""
    fx = [strided(a, fd.float64, kind=layout).requires_grad_() for a in arrays]
    tx = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    fo, to = fn_fd(*fx), fn_t(*tx)
    assert tuple(fo.shape) == tuple(to.shape)
    assert fo.dtype == fd.float64
    kw = tol or {}
    assert_close(fo, to.detach().numpy(), **kw)
    up = rng.standard_normal(tuple(to.shape))
    fo.backward(fd.tensor(up, dtype=fd.float64))
    to.backward(torch.tensor(up))
    for f, t in zip(fx, tx):
        assert_close(f.grad, t.grad.numpy(), **kw)


def _raises(exc, match, fn):
    with pytest.raises(exc, match=match):
        fn()


# ---------------------------------------------------------------------------------------- F.pad

PAD_CASES = [  # (shape, pad, mode)
    ((2, 3, 7), (2, 3), "constant"),
    ((2, 3, 7), (-2, 1), "constant"),
    ((3, 5, 4), (1, -1, -2, 3), "constant"),
    ((2, 3, 4, 5), (1, 2, 0, 1, 3, 0, 1, 1), "constant"),  # all four dims padded
    ((5,), (3, 0), "constant"),
    ((2, 3, 7), (-7, 0), "constant"),  # cropped to nothing
]
for _mode in ("reflect", "replicate", "circular"):
    PAD_CASES += [
        ((2, 3, 7), (3, 2), _mode),
        ((3, 7), (1, 4), _mode),  # unbatched
        ((2, 3, 5, 6), (2, 1, 3, 1), _mode),
        ((3, 5, 6), (0, 2, 1, 0), _mode),
        ((2, 3, 4, 5, 6), (1, 2, 3, 1, 2, 0), _mode),
        ((3, 4, 5, 6), (2, 1, 0, 2, 1, 3), _mode),
        ((2, 3, 7), (-2, 3), _mode),  # negative padding crops
        ((2, 3, 6, 7), (-1, -2, 2, -3), _mode),
        ((2, 3, 6, 7), (-3, -4, 1, 0), _mode),  # one padded dim cropped to nothing (PyTorch allows it)
    ]
PAD_CASES += [((2, 3, 7), (7, 7), "circular"), ((2, 3, 7), (-3, 4), "circular"), ((2, 3, 7), (-7, 0), "circular"),
              ((2, 3, 7), (-4, 2), "reflect"), ((2, 3, 7), (12, 20), "replicate"), ((2, 3, 7), (6, 6), "reflect")]


@pytest.mark.parametrize("case", PAD_CASES, ids=lambda c: f"{c[2]}-{c[0]}-{c[1]}")
def test_pad(case, rng):
    shape, pad, mode = case
    x = rng.standard_normal(shape)
    for layout in ("contig", "stepped", "transposed"):
        _check(lambda a: F.pad(a, pad, mode), lambda a: TF.pad(a, pad, mode), [x], rng, layout)


def test_pad_matches_index_reference(rng):
    """Every non-constant pad of one dim (cat of slices, or the gather fallback) against the
    numpy source-index table kept as the reference, over random sizes and pads of either sign."""
    from fastdl.nn._functional_pad import _source_index
    for _ in range(300):
        mode = ("reflect", "replicate", "circular")[rng.integers(3)]
        L = int(rng.integers(1, 9))
        lo, hi = (int(v) for v in rng.integers(-L, L + 1, 2))
        kept = L + min(lo, 0) + min(hi, 0)
        if mode == "reflect" and (lo >= L or hi >= L) or L + lo + hi < (0 if mode == "circular" else 1) or \
                mode == "circular" and max(lo, hi, -kept) > kept:
            continue
        x = rng.standard_normal((2, L))
        got = F.pad(fd.tensor(x), (lo, hi), mode).numpy()
        np.testing.assert_array_equal(got, x[:, _source_index(L, lo, hi, mode)], err_msg=f"{mode} L={L} {(lo, hi)}")


def test_pad_random_against_torch(rng):
    """Random ranks, pad lengths and signs in every mode: F.pad equals torch's, or both reject."""
    for _ in range(200):
        mode = ("constant", "reflect", "replicate", "circular")[rng.integers(4)]
        ndim = int(rng.integers(1, 6))
        shape = tuple(int(v) for v in rng.integers(1, 6, ndim))
        pad = tuple(int(v) for v in rng.integers(-3, 4, 2 * int(rng.integers(1, ndim + 1))))
        x = rng.standard_normal(shape)
        if mode == "circular" and any(max(lo, hi, -kept) > kept for lo, hi, kept in
                                      ((lo, hi, shape[-1 - i] + min(lo, 0) + min(hi, 0))
                                       for i, (lo, hi) in enumerate(zip(pad[::2], pad[1::2])))):
            continue  # wraps twice around the cropped dim: torch's values depend on its copy order; fastdl raises
        try:
            want = TF.pad(torch.tensor(x), pad, mode).numpy()
        except (RuntimeError, NotImplementedError):
            try:
                F.pad(fd.tensor(x), pad, mode)
            except (ValueError, NotImplementedError):
                continue
            raise AssertionError(f"F.pad accepted {mode} {shape} {pad}, which torch rejects")
        np.testing.assert_array_equal(F.pad(fd.tensor(x), pad, mode).numpy(), want, err_msg=f"{mode} {shape} {pad}")


def test_pad_constant_value_and_dtypes(rng):
    x = rng.standard_normal((3, 4, 5))
    _check(lambda a: F.pad(a, (1, 2, 2, 1), value=-2.5), lambda a: TF.pad(a, (1, 2, 2, 1), value=-2.5), [x], rng)
    xi = rng.integers(-9, 9, (3, 5))
    for v in (2.7, -2.7, 3):  # the fill is cast to the integer dtype as PyTorch casts it (truncation)
        got = F.pad(fd.tensor(xi, dtype=fd.int64), (1, 2, 1, 0), value=v)
        want = TF.pad(torch.tensor(xi), (1, 2, 1, 0), value=v)
        assert got.dtype == fd.int64
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    got = F.pad(fd.tensor(xi > 0), (2, 1), value=1)
    np.testing.assert_array_equal(got.numpy(), TF.pad(torch.tensor(xi > 0), (2, 1), value=1).numpy())
    got = F.pad(fd.tensor(xi, dtype=fd.int64), (2, 1), mode="reflect")
    np.testing.assert_array_equal(got.numpy(), TF.pad(torch.tensor(xi), (2, 1), mode="reflect").numpy())
    x32 = rng.standard_normal((2, 3, 5)).astype(np.float32)
    got = F.pad(fd.tensor(x32), [1, 1, 2, 2], mode="replicate")
    assert got.dtype == fd.float32
    np.testing.assert_array_equal(got.numpy(), TF.pad(torch.tensor(x32), [1, 1, 2, 2], mode="replicate").numpy())


def test_pad_output_is_new_tensor(rng):
    x = fd.tensor(rng.standard_normal((2, 3)))
    y = F.pad(x, (0, 0))
    y.add_(1.0)
    assert not np.allclose(x.numpy(), y.numpy())


@pytest.mark.parametrize("fn,exc,match", [
    (lambda x: F.pad(x, (1,)), ValueError, "divisible by 2"),
    (lambda x: F.pad(x, (1, 1) * 4), ValueError, "at most twice"),
    (lambda x: F.pad(x, (-4, -4)), ValueError, "crops more than"),
    (lambda x: F.pad(x, (3, -6)), ValueError, "crops more than"),
    (lambda x: F.pad(x, (1.0, 1)), TypeError, "tuple of ints"),
    (lambda x: F.pad(x, fd.tensor([1, 1])), TypeError, "tuple of ints"),
    (lambda x: F.pad(x, (1, 1), mode="mirror"), NotImplementedError, "unrecognised padding mode"),
    (lambda x: F.pad(x, (1, 1), mode="reflect", value=1.0), ValueError, "value"),
    (lambda x: F.pad(x, (1, 1, 1, 1, 1, 1, 1, 1), mode="reflect"), NotImplementedError, "padding size 8"),
    (lambda x: F.pad(x[0, 0], (1, 1), mode="replicate"), NotImplementedError, "1D input"),
    (lambda x: F.pad(x, (5, 0), mode="reflect"), ValueError, "below the size 5"),
    (lambda x: F.pad(x, (6, 0), mode="circular"), ValueError, "more than once"),
    (lambda x: F.pad(x, (-3, -3), mode="circular"), ValueError, "negative circular"),
    (lambda x: F.pad(x, (-3, -3, 0, 1), mode="circular"), ValueError, "negative circular"),
    (lambda x: F.pad(x, (-5, 2), mode="circular"), ValueError, "more than once"),
    (lambda x: F.pad(x, (3, -3), mode="circular"), ValueError, "the 2 elements .* more than once"),
    (lambda x: F.pad(x, (-3, -2), mode="replicate"), ValueError, "leaves no padded dim"),
    (lambda x: F.pad(x, (-3, -3, 0, 0), mode="reflect"), ValueError, "with -1 elements"),
    (lambda x: F.pad(x[:, :0], (1, 1), mode="reflect"), ValueError, "non-empty"),
])
def test_pad_errors(fn, exc, match, rng):
    x = fd.tensor(rng.standard_normal((2, 3, 5)))
    _raises(exc, match, lambda: fn(x))


# ------------------------------------------------------------------------------ padding layers

LAYERS = [
    ("ZeroPad1d", (2,), (2, 3, 7)), ("ZeroPad1d", ((1, 3),), (3, 7)),
    ("ZeroPad2d", (2,), (2, 3, 4, 5)), ("ZeroPad2d", ((1, 0, 2, 3),), (3, 4, 5)),
    ("ZeroPad3d", ((1, 0, 2, 1, 0, 3),), (2, 3, 2, 4, 5)),
    ("ConstantPad1d", ((2, 1), 3.5), (2, 3, 7)), ("ConstantPad2d", (1, -1.25), (3, 4, 5)),
    ("ConstantPad3d", (1, 0.5), (2, 2, 3, 4, 3)),
]
for _n in ("Reflection", "Replication", "Circular"):
    LAYERS += [(f"{_n}Pad1d", (2,), (2, 3, 7)), (f"{_n}Pad1d", ((1, 3),), (3, 7)),
               (f"{_n}Pad2d", ((1, 0, 2, 3),), (2, 3, 4, 5)), (f"{_n}Pad2d", (1,), (3, 4, 5)),
               (f"{_n}Pad3d", ((1, 0, 2, 1, 0, 2),), (2, 3, 3, 4, 5)), (f"{_n}Pad3d", (1,), (2, 3, 4, 5))]


@pytest.mark.parametrize("name,args,shape", LAYERS, ids=lambda v: str(v))
def test_padding_layers(name, args, shape, rng):
    m, tm = getattr(nn, name)(*args), getattr(TN, name)(*args)
    assert repr(m) == repr(tm)
    assert m.padding == tm.padding
    x = rng.standard_normal(shape)
    _check(m, tm, [x], rng, "stepped")


def test_padding_layer_errors(rng):
    _raises(ValueError, "expected 2D or 3D", lambda: nn.CircularPad1d(1)(fd.tensor(rng.standard_normal(5))))
    x5, x2 = fd.tensor(rng.standard_normal((2, 2, 3, 4, 5))), fd.tensor(rng.standard_normal((4, 5)))
    _raises(ValueError, "expected 3D or 4D", lambda: nn.CircularPad2d(1)(x5))
    _raises(NotImplementedError, "padding size 4", lambda: nn.ReflectionPad2d(1)(x2))
    _raises(TypeError, "padding", lambda: nn.ZeroPad2d(1.5))


# ---------------------------------------------------------------------------- pixel / channel shuffle

@pytest.mark.parametrize("shape,r", [((2, 12, 3, 5), 2), ((18, 2, 3), 3), ((2, 1, 4, 3, 5), 2), ((1, 5, 1, 1), 1)])
def test_pixel_shuffle(shape, r, rng):
    x = rng.standard_normal(shape)
    for layout in ("contig", "transposed"):
        _check(lambda a: F.pixel_shuffle(a, r), lambda a: TF.pixel_shuffle(a, r), [x], rng, layout)
    _check(nn.PixelShuffle(r), TN.PixelShuffle(r), [x], rng, "stepped")
    y = rng.standard_normal(shape[:-3] + (shape[-3], shape[-2] * r, shape[-1] * r))
    for layout in ("contig", "stepped"):
        _check(lambda a: F.pixel_unshuffle(a, r), lambda a: TF.pixel_unshuffle(a, r), [y], rng, layout)
    _check(nn.PixelUnshuffle(r), TN.PixelUnshuffle(r), [y], rng, "transposed")
    assert repr(nn.PixelShuffle(r)) == repr(TN.PixelShuffle(r))
    assert repr(nn.PixelUnshuffle(r)) == repr(TN.PixelUnshuffle(r))


@pytest.mark.parametrize("shape,g", [((2, 6, 5), 3), ((3, 12, 3, 5), 4), ((2, 6, 2, 3, 2), 2), ((2, 5, 3), 1)])
def test_channel_shuffle(shape, g, rng):
    x = rng.standard_normal(shape)
    for layout in ("contig", "stepped", "transposed"):
        _check(lambda a: F.channel_shuffle(a, g), lambda a: TF.channel_shuffle(a, g), [x], rng, layout)
    _check(nn.ChannelShuffle(g), TN.ChannelShuffle(g), [x], rng)
    assert repr(nn.ChannelShuffle(g)) == repr(TN.ChannelShuffle(g))


def test_shuffle_errors(rng):
    x = fd.tensor(rng.standard_normal((7, 3, 3)))
    _raises(ValueError, "divisible by upscale_factor", lambda: F.pixel_shuffle(x, 2))
    _raises(ValueError, "at least 3 dims", lambda: F.pixel_shuffle(x[0], 1))
    _raises(ValueError, "positive", lambda: F.pixel_shuffle(x, 0))
    _raises(TypeError, "int", lambda: F.pixel_shuffle(x, 2.0))
    _raises(ValueError, "height 3 and width 3", lambda: F.pixel_unshuffle(x, 2))
    _raises(ValueError, "divisible by groups", lambda: F.channel_shuffle(x.reshape(1, 7, 9), 2))
    _raises(ValueError, "more than 2 dims", lambda: F.channel_shuffle(x[0], 3))
    _raises(ValueError, "positive", lambda: F.channel_shuffle(x, 0))


# ---------------------------------------------------------------------------------- instance norm

@pytest.mark.parametrize("shape", [(2, 3, 7), (3, 4, 5, 6), (2, 3, 3, 4, 5), (1, 2, 2)])
def test_instance_norm(shape, rng):
    x = rng.standard_normal(shape) * 3 + 1.5
    w, b = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    _check(lambda a: F.instance_norm(a), lambda a: TF.instance_norm(a), [x], rng, "stepped")
    _check(lambda a, c, d: F.instance_norm(a, weight=c, bias=d, eps=1e-3),
           lambda a, c, d: TF.instance_norm(a, weight=c, bias=d, eps=1e-3), [x, w, b], rng, "transposed")
    # running statistics: moved per sample, averaged over the batch
    rm, rv = rng.standard_normal(shape[1]), rng.uniform(0.5, 2.0, shape[1])
    frm, frv = fd.tensor(rm), fd.tensor(rv)
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    _check(lambda a: F.instance_norm(a, frm, frv, momentum=0.3), lambda a: TF.instance_norm(a, trm, trv, momentum=0.3),
           [x], rng)
    assert_close(frm, trm.numpy())
    assert_close(frv, trv.numpy())
    # use_input_stats=False normalises with the running statistics
    _check(lambda a, c, d: F.instance_norm(a, frm, frv, c, d, use_input_stats=False),
           lambda a, c, d: TF.instance_norm(a, trm, trv, c, d, use_input_stats=False), [x, w, b], rng)


@pytest.mark.parametrize("name,shape", [("InstanceNorm1d", (2, 3, 7)), ("InstanceNorm1d", (3, 7)),
                                        ("InstanceNorm2d", (2, 3, 4, 5)), ("InstanceNorm2d", (3, 4, 5)),
                                        ("InstanceNorm3d", (2, 3, 2, 3, 4)), ("InstanceNorm3d", (3, 2, 3, 4))])
@pytest.mark.parametrize("affine,track,momentum", [(False, False, 0.1), (True, False, 0.1), (True, True, 0.2),
                                                   (False, True, None)])
def test_instance_norm_layers(name, shape, affine, track, momentum, rng):
    kw = dict(affine=affine, track_running_stats=track, momentum=momentum, eps=1e-4)
    m, tm = getattr(nn, name)(3, dtype=fd.float64, **kw), getattr(TN, name)(3, dtype=torch.float64, **kw)
    assert repr(m) == repr(tm)
    if affine:  # non-trivial parameters, shared
        for p, tp in ((m.weight, tm.weight), (m.bias, tm.bias)):
            v = rng.standard_normal(3)
            p.data.copy_(fd.tensor(v))
            tp.data.copy_(torch.tensor(v))
    for _ in range(2):  # training steps move the running statistics
        _check(m, tm, [rng.standard_normal(shape) * 2 + 0.5], rng)
    if track:
        assert_close(m.running_mean, tm.running_mean.numpy())
        assert_close(m.running_var, tm.running_var.numpy())
        assert int(m.num_batches_tracked.item()) == int(tm.num_batches_tracked.item())
    m.eval()
    tm.eval()
    _check(m, tm, [rng.standard_normal(shape)], rng)
    assert set(dict(m.named_buffers())) == set(dict(tm.named_buffers()))
    assert set(dict(m.named_parameters())) == set(dict(tm.named_parameters()))


def test_instance_norm_errors(rng):
    x = fd.tensor(rng.standard_normal((2, 3, 1)))
    _raises(ValueError, "more than 1 spatial element", lambda: F.instance_norm(x))
    _raises(ValueError, "running_mean and running_var", lambda: F.instance_norm(x, use_input_stats=False))
    _raises(ValueError, r"weight must have shape \(3,\)", lambda: F.instance_norm(fd.randn(2, 3, 4), weight=fd.ones(4)))
    _raises(ValueError, "expected 3D or 4D", lambda: nn.InstanceNorm2d(3)(fd.randn(2, 3, 4, 5, 6)))
    _raises(ValueError, "num_features", lambda: nn.InstanceNorm1d(4, affine=True)(fd.randn(2, 3, 5)))
    with pytest.warns(UserWarning, match="num_features"):
        nn.InstanceNorm1d(4)(fd.randn(2, 3, 5))


# ---------------------------------------------------------------------------------- 1-d pooling

POOL1D = [  # (shape, kernel, stride, padding, dilation, ceil_mode)
    ((2, 3, 11), 3, 2, 1, 1, False),
    ((2, 3, 11), 3, 2, 1, 1, True),
    ((3, 13), 4, None, 2, 1, False),  # unbatched
    ((2, 4, 12), 3, 1, 1, 2, True),
    ((1, 2, 9), (2,), (3,), (0,), (1,), True),
]


@pytest.mark.parametrize("case", POOL1D)
def test_max_avg_pool1d(case, rng):
    shape, k, s, p, d, cm = case
    x = rng.standard_normal(shape)
    kw = dict(stride=s, padding=p, dilation=d, ceil_mode=cm)
    for layout in ("contig", "stepped", "transposed"):
        _check(lambda a: F.max_pool1d(a, k, **kw), lambda a: TF.max_pool1d(a, k, **kw), [x], rng, layout)
    fo, fi = F.max_pool1d(fd.tensor(x), k, return_indices=True, **kw)
    to, ti = TF.max_pool1d(torch.tensor(x), k, return_indices=True, **kw)
    assert fi.dtype == fd.int64
    np.testing.assert_array_equal(fi.numpy(), ti.numpy())
    xi = rng.integers(-50, 50, shape)  # integer max pooling keeps the dtype (torch: through the indices path)
    np.testing.assert_array_equal(F.max_pool1d(fd.tensor(xi, dtype=fd.int64), k, **kw).numpy(),
                                  TF.max_pool1d(torch.tensor(xi), k, return_indices=True, **kw)[0].numpy())
    m, tm = nn.MaxPool1d(k, s, p, d, return_indices=True, ceil_mode=cm), TN.MaxPool1d(k, s, p, d, True, cm)
    assert repr(m) == repr(tm)
    np.testing.assert_array_equal(m(fd.tensor(x))[1].numpy(), tm(torch.tensor(x))[1].numpy())
    for cip in (True, False):
        akw = dict(stride=s, padding=p, ceil_mode=cm, count_include_pad=cip)
        for layout in ("contig", "stepped"):
            _check(lambda a: F.avg_pool1d(a, k, **akw), lambda a: TF.avg_pool1d(a, k, **akw), [x], rng, layout)
        m, tm = nn.AvgPool1d(k, **akw), TN.AvgPool1d(k, **akw)
        assert repr(m) == repr(tm)
        _check(m, tm, [x], rng)


@pytest.mark.parametrize("shape,out", [((2, 3, 11), 4), ((3, 10), (5,)), ((2, 2, 7), 7), ((2, 3, 5), 8),
                                       ((1, 2, 9), None)])
def test_adaptive_pool1d(shape, out, rng):
    x = rng.standard_normal(shape)
    tout = shape[-1] if out is None else out  # torch's 1-d forms take no None
    for layout in ("contig", "stepped"):
        _check(lambda a: F.adaptive_avg_pool1d(a, out), lambda a: TF.adaptive_avg_pool1d(a, tout), [x], rng, layout)
        _check(lambda a: F.adaptive_max_pool1d(a, out), lambda a: TF.adaptive_max_pool1d(a, tout), [x], rng, layout)
    fo, fi = F.adaptive_max_pool1d(fd.tensor(x), out, return_indices=True)
    np.testing.assert_array_equal(fi.numpy(), TF.adaptive_max_pool1d(torch.tensor(x), tout, True)[1].numpy())
    for name in ("AdaptiveAvgPool1d", "AdaptiveMaxPool1d"):
        m, tm = getattr(nn, name)(tout), getattr(TN, name)(tout)
        assert repr(m) == repr(tm)
        _check(m, tm, [x], rng, "transposed")


@pytest.mark.parametrize("p", [2, 3.0, 1.5, float("inf")])
@pytest.mark.parametrize("k,s,cm", [(3, None, False), (2, 1, True), (3, 2, True)])
def test_lp_pool(p, k, s, cm, rng):
    x = rng.uniform(0.2, 2.0, (2, 3, 11))  # positive: fractional powers stay real
    if p in (2, float("inf")):
        x = x * rng.choice([-1.0, 1.0], x.shape)
    _check(lambda a: F.lp_pool1d(a, p, k, s, cm), lambda a: TF.lp_pool1d(a, p, k, s, cm), [x], rng, "stepped")
    m, tm = nn.LPPool1d(p, k, s, cm), TN.LPPool1d(p, k, s, cm)
    assert repr(m) == repr(tm)
    _check(m, tm, [x], rng)
    x2 = np.abs(rng.standard_normal((2, 3, 7, 9))) + 0.1
    k2 = (k, k + 1)
    _check(lambda a: F.lp_pool2d(a, p, k2, s, cm), lambda a: TF.lp_pool2d(a, p, k2, s, cm), [x2], rng, "transposed")
    m, tm = nn.LPPool2d(p, k2, s, cm), TN.LPPool2d(p, k2, s, cm)
    assert repr(m) == repr(tm)
    _check(m, tm, [x2[0]], rng)


def test_pool1d_errors(rng):
    x = fd.tensor(rng.standard_normal((2, 3, 4, 5)))
    _raises(ValueError, "2D .* or 3D", lambda: F.max_pool1d(x, 2))
    _raises(ValueError, "2D .* or 3D", lambda: F.avg_pool1d(x[0, 0, 0], 2))
    _raises(ValueError, "1-tuple", lambda: F.max_pool1d(x[0], (2, 2)))
    _raises(TypeError, "kernel_size", lambda: F.avg_pool1d(x[0], 2.5))
    _raises(ValueError, "2D .* or 3D", lambda: F.adaptive_avg_pool1d(x, 2))
    _raises(ValueError, r"max_pool1d: padding .*input shape \(3, 4, 5\)", lambda: F.max_pool1d(x[0], 2, padding=2))
    _raises(ValueError, "avg_pool1d: output size is too small", lambda: F.avg_pool1d(x[0], 6))
    _raises(ValueError, "adaptive_max_pool1d: output_size must be positive", lambda: F.adaptive_max_pool1d(x[0], 0))
    _raises(ValueError, "conv_transpose1d: weight .* expects 2 input channels",
            lambda: F.conv_transpose1d(x[0], fd.randn(2, 3, 3, dtype=fd.float64)))


# ---------------------------------------------------------------------------------- conv_transpose1d

CT1D = [  # (N, C_in, L, C_out, K, stride, padding, output_padding, groups, dilation)
    (2, 4, 7, 6, 3, 1, 0, 0, 1, 1),
    (2, 4, 9, 3, 4, 2, 1, 1, 1, 1),
    (1, 6, 5, 4, 3, 3, 2, 2, 2, 1),
    (3, 3, 6, 5, 2, 2, 0, 1, 1, 3),
    (None, 2, 8, 3, 5, 1, 2, 0, 1, 2),  # unbatched
]


@pytest.mark.parametrize("case", CT1D)
def test_conv_transpose1d(case, rng):
    n, ci, L, co, k, s, p, op, g, d = case
    x = rng.standard_normal((ci, L) if n is None else (n, ci, L))
    w, b = rng.standard_normal((ci, co // g, k)), rng.standard_normal(co)
    kw = dict(stride=s, padding=p, output_padding=op, groups=g, dilation=d)
    for layout in ("contig", "stepped"):
        _check(lambda a, c, e: F.conv_transpose1d(a, c, e, **kw), lambda a, c, e: TF.conv_transpose1d(a, c, e, **kw),
               [x, w, b], rng, layout)
    _check(lambda a, c: F.conv_transpose1d(a, c, **kw), lambda a, c: TF.conv_transpose1d(a, c, **kw), [x, w], rng,
           "transposed")
    m = nn.ConvTranspose1d(ci, co, k, s, p, op, g, True, d, dtype=fd.float64)
    tm = TN.ConvTranspose1d(ci, co, k, s, p, op, g, True, d, dtype=torch.float64)
    assert repr(m) == repr(tm)
    assert tuple(m.weight.shape) == tuple(tm.weight.shape)
    with torch.no_grad():
        tm.weight.copy_(torch.tensor(m.weight.detach().numpy()))
        tm.bias.copy_(torch.tensor(m.bias.detach().numpy()))
    _check(m, tm, [x], rng)
    target = (L - 1) * s - 2 * p + d * (k - 1) + 1 + (s - 1)  # output_size reaches the largest size
    if n is not None:
        got = m(fd.tensor(x), output_size=[n, co, target])
        want = tm(torch.tensor(x), output_size=[n, co, target])
        assert_close(got, want.detach().numpy())


def test_conv_transpose1d_init_and_errors(rng):
    m = nn.ConvTranspose1d(4, 6, 3, groups=2)
    bound = 1 / np.sqrt(3 * 3)  # fan_in = (C_out / groups) * K
    w, b = m.weight.detach().numpy(), m.bias.detach().numpy()
    assert np.all(np.abs(w) <= bound + 1e-7) and np.all(np.abs(b) <= bound + 1e-7)
    assert m.weight.detach().numpy().std() > bound / 4  # filled, not zeros
    _raises(ValueError, "input must be", lambda: F.conv_transpose1d(fd.randn(2, 2, 3, 4), fd.randn(2, 2, 3)))
    _raises(ValueError, "weight must be", lambda: F.conv_transpose1d(fd.randn(2, 2, 3), fd.randn(2, 2)))
    _raises(ValueError, "not reachable", lambda: nn.ConvTranspose1d(2, 2, 3, stride=2)(fd.randn(1, 2, 4), [11]))
    _raises(ValueError, "groups", lambda: nn.ConvTranspose1d(3, 2, 3, groups=2))
    _raises(ValueError, "padding mode", lambda: nn.ConvTranspose1d(2, 2, 3, padding_mode="reflect"))


def test_float_only_1d_ops():
    x = fd.tensor(np.arange(12).reshape(1, 2, 6), dtype=fd.int64)
    _raises(TypeError, "avg_pool1d: input must be floating point", lambda: F.avg_pool1d(x, 2))
    _raises(TypeError, "conv_transpose1d", lambda: F.conv_transpose1d(x, x.reshape(2, 1, 6)))


# ---------------------------------------------------------------------------------- fold / unfold

FOLD = [  # (input spatial shape, kernel, dilation, padding, stride)
    ((7, 8), 3, 1, 0, 1),
    ((9, 7), (2, 3), (2, 1), (1, 2), (2, 3)),
    ((5, 6), (1, 2), 1, 1, (1, 2)),
    ((6, 6), 2, 1, 0, 2),  # no overlap
]


@pytest.mark.parametrize("case", FOLD)
def test_unfold_fold(case, rng):
    (H, W), k, d, p, s = case
    kw = dict(kernel_size=k, dilation=d, padding=p, stride=s)
    x = rng.standard_normal((2, 3, H, W))
    for layout in ("contig", "stepped", "transposed"):
        _check(lambda a: F.unfold(a, **kw), lambda a: TF.unfold(a, **kw), [x], rng, layout)
    _check(lambda a: F.unfold(a, **kw), lambda a: TF.unfold(a, **kw), [x[0]], rng)  # unbatched
    cols = TF.unfold(torch.tensor(x), **kw).numpy()
    cols = rng.standard_normal(cols.shape)
    for layout in ("contig", "stepped"):
        _check(lambda a: F.fold(a, (H, W), **kw), lambda a: TF.fold(a, (H, W), **kw), [cols], rng, layout)
    _check(lambda a: F.fold(a, (H, W), **kw), lambda a: TF.fold(a, (H, W), **kw), [cols[1]], rng)
    m, tm = nn.Unfold(**kw), TN.Unfold(**kw)
    assert repr(m) == repr(tm)
    _check(m, tm, [x], rng)
    m, tm = nn.Fold((H, W), **kw), TN.Fold((H, W), **kw)
    assert repr(m) == repr(tm)
    _check(m, tm, [cols], rng)


def test_fold_errors(rng):
    x = fd.tensor(rng.standard_normal((2, 3, 4, 5)))
    _raises(ValueError, "3-D .* or 4-D", lambda: F.unfold(x[0, 0], 2))
    _raises(ValueError, "no sliding blocks", lambda: F.unfold(x, 6))
    _raises(ValueError, "positive", lambda: F.unfold(x, 2, stride=0))
    c = fd.tensor(rng.standard_normal((2, 12, 12)))
    _raises(ValueError, "divisible by the kernel size", lambda: F.fold(c, (4, 5), 3))
    _raises(ValueError, "12 blocks", lambda: F.fold(c, (5, 5), 2))
    _raises(ValueError, "2-D .* or 3-D", lambda: F.fold(x, (4, 5), 2))


# ------------------------------------------------------------------ LRN, Softmax2d, bilinear, upsampling

@pytest.mark.parametrize("shape,size", [((2, 7, 5), 3), ((2, 6, 4, 5), 2), ((1, 5, 2, 3, 4), 5), ((2, 3, 4), 7)])
def test_local_response_norm(shape, size, rng):
    x = rng.standard_normal(shape) * 2
    kw = dict(alpha=0.3, beta=0.6, k=1.5)
    for layout in ("contig", "stepped"):
        _check(lambda a: F.local_response_norm(a, size, **kw), lambda a: TF.local_response_norm(a, size, **kw), [x],
               rng, layout, tol=dict(rtol=1e-11, atol=1e-12))
    m, tm = nn.LocalResponseNorm(size, **kw), TN.LocalResponseNorm(size, **kw)
    assert repr(m) == repr(tm)
    _check(m, tm, [x], rng, tol=dict(rtol=1e-11, atol=1e-12))
    _raises(ValueError, "3D or higher", lambda: F.local_response_norm(fd.randn(3, 4), 2))


def test_softmax2d(rng):
    for shape in ((2, 3, 4, 5), (3, 4, 5)):
        _check(nn.Softmax2d(), TN.Softmax2d(), [rng.standard_normal(shape)], rng, "transposed")
    assert repr(nn.Softmax2d()) == repr(TN.Softmax2d())
    _raises(ValueError, "3D or 4D", lambda: nn.Softmax2d()(fd.randn(3, 4)))


@pytest.mark.parametrize("lead", [(5,), (2, 3), ()])
def test_bilinear(lead, rng):
    x1, x2 = rng.standard_normal(lead + (4,)), rng.standard_normal(lead + (3,))
    w, b = rng.standard_normal((5, 4, 3)), rng.standard_normal(5)
    _check(F.bilinear, TF.bilinear, [x1, x2, w, b], rng, "stepped")
    _check(lambda a, c, e: F.bilinear(a, c, e), lambda a, c, e: TF.bilinear(a, c, e), [x1, x2, w], rng)
    m, tm = nn.Bilinear(4, 3, 5, dtype=fd.float64), TN.Bilinear(4, 3, 5, dtype=torch.float64)
    assert repr(m) == repr(tm)
    bound = 1 / np.sqrt(4)
    assert np.abs(m.weight.detach().numpy()).max() <= bound and m.weight.detach().numpy().std() > bound / 4
    with torch.no_grad():
        tm.weight.copy_(torch.tensor(m.weight.detach().numpy()))
        tm.bias.copy_(torch.tensor(m.bias.detach().numpy()))
    _check(m, tm, [x1, x2], rng)


def test_bilinear_errors(rng):
    w = fd.randn(5, 4, 3)
    _raises(ValueError, "must match weight", lambda: F.bilinear(fd.randn(2, 3), fd.randn(2, 3), w))
    _raises(ValueError, "same leading dims", lambda: F.bilinear(fd.randn(2, 4), fd.randn(3, 3), w))
    _raises(ValueError, "weight must be", lambda: F.bilinear(fd.randn(2, 4), fd.randn(2, 3), fd.randn(4, 3)))


@pytest.mark.filterwarnings("ignore:.*is deprecated")
@pytest.mark.parametrize("size,scale", [(None, 2), ((7, 5), None), (None, (1.5, 2.5))])
def test_upsampling_layers(size, scale, rng):
    x = rng.standard_normal((2, 3, 4, 5))
    for name in ("UpsamplingNearest2d", "UpsamplingBilinear2d"):
        if name == "UpsamplingNearest2d" and isinstance(scale, tuple):
            continue
        m, tm = getattr(nn, name)(size, scale), getattr(TN, name)(size, scale)
        assert repr(m) == repr(tm)
        _check(m, tm, [x], rng, "stepped")
    _check(lambda a: F.upsample_nearest(a, size, scale if not isinstance(scale, tuple) else 2),
           lambda a: TF.upsample_nearest(a, size, scale if not isinstance(scale, tuple) else 2), [x], rng)
    _check(lambda a: F.upsample_bilinear(a, size, scale), lambda a: TF.upsample_bilinear(a, size, scale), [x], rng)


# ------------------------------------------------------------------ random layers: rrelu, alpha dropout

def test_rrelu(rng):
    x = rng.standard_normal((3, 50, 7))
    _check(lambda a: F.rrelu(a, 0.1, 0.4), lambda a: TF.rrelu(a, 0.1, 0.4), [x], rng, "transposed")  # eval: mean slope
    m, tm = nn.RReLU(0.1, 0.4), TN.RReLU(0.1, 0.4)
    assert repr(m) == repr(tm)
    m.eval()
    tm.eval()
    _check(m, tm, [x], rng)
    m.train()
    a = fd.tensor(x, requires_grad=True)
    y = m(a)
    y.backward(fd.ones_like(y))
    yv, g = y.detach().numpy(), a.grad.numpy()
    pos = x > 0
    np.testing.assert_array_equal(yv[pos], x[pos])
    np.testing.assert_array_equal(g[pos], 1.0)
    slope = yv[~pos] / x[~pos]  # drawn per element in [lower, upper]; the gradient is that slope
    assert slope.min() >= 0.1 - 1e-12 and slope.max() <= 0.4 + 1e-12
    assert abs(slope.mean() - 0.25) < 0.02 and slope.std() > 0.07
    np.testing.assert_allclose(g[~pos], slope, rtol=1e-12)
    xi = fd.tensor(x)
    y = F.rrelu(xi, 0.1, 0.4, training=False, inplace=True)
    np.testing.assert_allclose(xi.numpy(), TF.rrelu(torch.tensor(x), 0.1, 0.4).numpy(), rtol=1e-14)


@pytest.mark.parametrize("feature", [False, True])
@pytest.mark.parametrize("p", [0.2, 0.5])
def test_alpha_dropout(feature, p, rng):
    fn = F.feature_alpha_dropout if feature else F.alpha_dropout
    tfn = TF.feature_alpha_dropout if feature else TF.alpha_dropout
    shape = (40, 60, 3, 5) if feature else (200, 300)
    x = rng.standard_normal(shape)
    _check(lambda a: fn(a, p), lambda a: tfn(a, p), [x], rng)  # training=False (the functional default): identity
    a = fd.tensor(x, requires_grad=True)
    y = fn(a, p, training=True)
    y.backward(fd.ones_like(y))
    alpha = 1.7580993408473766
    sa = 1.0 / np.sqrt((alpha ** 2 * p + 1) * (1 - p))
    yv, g = y.detach().numpy(), a.grad.numpy()
    kept = np.isclose(g, sa, rtol=1e-12)  # gradient: a where kept, 0 where dropped
    assert np.all(kept | (g == 0))
    np.testing.assert_allclose(yv[kept], sa * x[kept] + sa * alpha * p, rtol=1e-12)
    np.testing.assert_allclose(yv[~kept], sa * alpha * (p - 1), rtol=1e-12)
    assert abs((~kept).mean() - p) < 0.03
    if feature:  # one draw per (sample, channel)
        assert np.all(kept.reshape(40, 60, -1).all(-1) | (~kept).reshape(40, 60, -1).all(-1))
    assert abs(yv.mean()) < 0.05 and abs(yv.std() - 1) < 0.05  # self-normalising: moments kept
    # layers: random in training, identity in eval
    name = "FeatureAlphaDropout" if feature else "AlphaDropout"
    m, tm = getattr(nn, name)(p), getattr(TN, name)(p)
    assert repr(m) == repr(tm)
    assert not np.allclose(m(fd.tensor(x)).numpy(), x)
    m.eval()
    np.testing.assert_array_equal(m(fd.tensor(x)).numpy(), x)
    _raises(ValueError, "between 0 and 1", lambda: fn(fd.tensor(x), 1.5, True))
    xi = fd.tensor(x)  # inplace=True writes the result into the input
    y = fn(xi, p, True, inplace=True)
    np.testing.assert_array_equal(xi.numpy(), y.numpy())
    assert not np.allclose(xi.numpy(), x)
