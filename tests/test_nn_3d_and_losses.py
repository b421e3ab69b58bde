"""The 3-d convolutions and pooling, max unpooling, fractional max pooling, grid_sample /
affine_grid, embedding_bag, ctc_loss, the multi-class margin losses, triplet loss with a distance
function and pdist against torch: values and the gradients of every float input under a random
upstream gradient, float64 (tight) and float32 (1e-4), odd sizes, strides / padding / dilation /
groups, non-contiguous inputs; the nn modules; and the errors bad arguments raise."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.nn as nn
import fastdl.nn.functional as F

from checks import strided

torch = pytest.importorskip("torch")
TF = torch.nn.functional

TOL = {fd.float64: 1e-9, fd.float32: 1e-4}
_TD = {fd.float64: torch.float64, fd.float32: torch.float32}


def _compare(fd_fn, torch_fn, arrays, rng, dtype=fd.float64, kind="contig", grad=None, ints=()):
    """Run both on the same data; arrays[i] in ints stay integer (no gradient). Returns fastdl's output."""
    grad = [i not in ints for i in range(len(arrays))] if grad is None else grad
    fts, tts = [], []
    for i, a in enumerate(arrays):
        if i in ints:
            fts.append(fd.tensor(a, dtype=fd.int64))
            tts.append(torch.tensor(a, dtype=torch.int64))
            continue
        f = strided(a, dtype, kind=kind)
        t = torch.tensor(a, dtype=_TD[dtype])
        if grad[i]:
            f.requires_grad_(True)
            t.requires_grad_(True)
        fts.append(f)
        tts.append(t)
    out_t, out_f = torch_fn(*tts), fd_fn(*fts)
    tol = TOL[dtype]
    np.testing.assert_allclose(out_f.detach().numpy(), out_t.detach().numpy(), rtol=tol, atol=tol)
    if not out_t.requires_grad:
        return out_f
    up = rng.standard_normal(tuple(out_t.shape))
    (out_t * torch.tensor(up, dtype=out_t.dtype)).sum().backward()
    (out_f * fd.tensor(up, dtype=out_f.dtype)).sum().backward()
    for i, (f, t) in enumerate(zip(fts, tts)):
        if i in ints or not grad[i]:
            continue
        want = t.grad.numpy() if t.grad is not None else np.zeros(t.shape)
        got = f.grad.numpy() if f.grad is not None else np.zeros(t.shape)
        np.testing.assert_allclose(got, want, rtol=tol * 10, atol=tol * 10, err_msg=f"gradient of input {i}")
    return out_f


CONV3D = [  # (N, C_in, C_out, (D, H, W), k, stride, padding, dilation, groups, bias)
    (2, 3, 4, (5, 6, 7), 3, 1, 1, 1, 1, True),
    (1, 4, 6, (7, 5, 6), (3, 2, 1), (2, 1, 2), (1, 0, 1), (2, 1, 1), 2, True),
    (2, 4, 4, (6, 5, 5), (2, 3, 3), 1, "same", (1, 2, 1), 4, False),
    (1, 2, 3, (4, 4, 5), 1, (3, 2, 1), "valid", 1, 1, True),
    (2, 6, 3, (5, 7, 4), (1, 3, 2), 1, (0, 1, 1), 1, 3, True),
]


@pytest.mark.parametrize("dtype", [fd.float64, fd.float32])
@pytest.mark.parametrize("case", CONV3D)
def test_conv3d(rng, case, dtype):
    N, C, K, sp, k, s, p, d, g, bias = case
    ks = k if isinstance(k, tuple) else (k,) * 3
    arrays = [rng.standard_normal((N, C) + sp), rng.standard_normal((K, C // g) + ks)]
    if bias:
        arrays.append(rng.standard_normal(K))
    kinds = ["contig", "stepped"] if dtype == fd.float64 else ["contig"]
    for kind in kinds:
        _compare(lambda x, w, b=None: F.conv3d(x, w, b, s, p, d, g),
                 lambda x, w, b=None: TF.conv3d(x, w, b, s, p, d, g), arrays, rng, dtype, kind)


def test_conv3d_unbatched_and_module(rng):
    x = rng.standard_normal((3, 4, 5, 6))
    w = rng.standard_normal((2, 3, 2, 2, 2))
    _compare(lambda a, b: F.conv3d(a, b, padding=1), lambda a, b: TF.conv3d(a, b, padding=1), [x, w], rng)
    m = nn.Conv3d(4, 6, (3, 1, 2), stride=(1, 2, 1), padding=1, groups=2, padding_mode="replicate")
    tm = torch.nn.Conv3d(4, 6, (3, 1, 2), stride=(1, 2, 1), padding=1, groups=2, padding_mode="replicate").double()
    with torch.no_grad():
        tm.weight.copy_(torch.tensor(m.weight.detach().numpy()))
        tm.bias.copy_(torch.tensor(m.bias.detach().numpy()))
    xi = rng.standard_normal((2, 4, 5, 6, 7))
    np.testing.assert_allclose(m(fd.tensor(xi, dtype=fd.float32)).detach().numpy(),
                               tm(torch.tensor(xi)).detach().numpy(), rtol=1e-4, atol=1e-4)
    assert "Conv3d(4, 6, kernel_size=(3, 1, 2)" in repr(m)


CONVT3D = [  # (N, C_in, C_out, (D, H, W), k, stride, padding, output_padding, groups, dilation, bias)
    (2, 3, 4, (4, 5, 3), 3, 1, 0, 0, 1, 1, True),
    (1, 4, 6, (3, 4, 5), (3, 2, 3), (2, 1, 3), (1, 0, 2), (1, 0, 1), 2, (2, 1, 1), True),
    (2, 2, 2, (3, 3, 3), 2, 3, 2, 0, 1, 1, False),
    (1, 6, 3, (5, 2, 4), (2, 3, 1), (1, 2, 2), (3, 1, 0), (0, 1, 1), 3, (3, 1, 1), True),
    (2, 2, 3, (3, 4, 4), (3, 2, 2), 1, (1, 0, 0), (1, 0, 0), 1, (2, 1, 1), True),  # output_padding >= stride
    (1, 2, 3, (1, 3, 3), (4, 2, 2), (3, 1, 1), 0, (2, 0, 0), 1, 1, False),  # one plane, taps spread past stride
]


@pytest.mark.parametrize("dtype", [fd.float64, fd.float32])
@pytest.mark.parametrize("case", CONVT3D)
def test_conv_transpose3d(rng, case, dtype):
    N, C, K, sp, k, s, p, op, g, d, bias = case
    ks = k if isinstance(k, tuple) else (k,) * 3
    arrays = [rng.standard_normal((N, C) + sp), rng.standard_normal((C, K // g) + ks)]
    if bias:
        arrays.append(rng.standard_normal(K))
    _compare(lambda x, w, b=None: F.conv_transpose3d(x, w, b, s, p, op, g, d),
             lambda x, w, b=None: TF.conv_transpose3d(x, w, b, s, p, op, g, d), arrays, rng, dtype,
             "stepped" if dtype == fd.float64 else "contig")


def test_conv_transpose3d_module_output_size(rng):
    m = nn.ConvTranspose3d(2, 4, 3, stride=2, padding=1)
    out = m(fd.randn(1, 2, 3, 4, 5), output_size=(6, 8, 10))
    assert tuple(out.shape) == (1, 4, 6, 8, 10)


POOL3D = [  # (shape, kernel, stride, padding, dilation, ceil_mode)
    ((2, 3, 7, 6, 9), 3, 2, 1, 1, False),
    ((1, 2, 8, 7, 6), (2, 3, 2), (1, 2, 3), (1, 1, 0), (2, 1, 2), True),
    ((3, 5, 4, 6), 2, None, 0, 1, True),  # unbatched
    ((1, 1, 5, 5, 5), (3, 1, 2), (2, 1, 1), (1, 0, 1), 1, False),
]


@pytest.mark.parametrize("dtype", [fd.float64, fd.float32])
@pytest.mark.parametrize("case", POOL3D)
def test_max_pool3d_and_unpool3d(rng, case, dtype):
    shape, k, s, p, d, ceil = case
    x = rng.standard_normal(shape)
    _compare(lambda t: F.max_pool3d(t, k, s, p, d, ceil), lambda t: TF.max_pool3d(t, k, s, p, d, ceil), [x], rng,
             dtype, "stepped")
    fo, fi = F.max_pool3d(fd.tensor(x, dtype=dtype), k, s, p, d, ceil, return_indices=True)
    to, ti = TF.max_pool3d(torch.tensor(x, dtype=_TD[dtype]), k, s, p, d, ceil, return_indices=True)
    np.testing.assert_array_equal(fi.numpy(), ti.numpy())
    if d == 1 and not ceil:
        size = x.shape[-3:]
        _compare(lambda t: F.max_unpool3d(t, fi, k, s, p, output_size=size),
                 lambda t: TF.max_unpool3d(t, ti, k, s, p, output_size=size), [to.numpy()], rng, dtype)


def test_max_pool3d_ties_and_integers():
    x = np.zeros((1, 1, 4, 4, 4), dtype=np.int64)
    x[0, 0, 1, 2, 3] = x[0, 0, 1, 0, 1] = x[0, 0, 2, 0, 0] = 5  # ties across depth and plane positions
    fo, fi = F.max_pool3d(fd.tensor(x), 4, return_indices=True)
    to, ti = TF.max_pool3d(torch.tensor(x, dtype=torch.float64), 4, return_indices=True)
    assert fo.dtype == fd.int64 and int(fo.reshape(-1)[0]) == 5
    np.testing.assert_array_equal(fi.numpy(), ti.numpy())


AVG3D = [  # (shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
    ((2, 3, 7, 6, 9), 3, 2, 1, False, True, None),
    ((1, 2, 8, 7, 6), (2, 3, 2), (1, 2, 3), (1, 1, 0), True, False, None),
    ((1, 2, 8, 7, 6), (3, 3, 2), (2, 2, 3), (1, 1, 1), True, True, None),
    ((3, 5, 4, 6), 2, None, 1, False, True, 5),
]


@pytest.mark.parametrize("dtype", [fd.float64, fd.float32])
@pytest.mark.parametrize("case", AVG3D)
def test_avg_pool3d(rng, case, dtype):
    shape, k, s, p, ceil, cip, div = case
    _compare(lambda t: F.avg_pool3d(t, k, s, p, ceil, cip, div), lambda t: TF.avg_pool3d(t, k, s, p, ceil, cip, div),
             [rng.standard_normal(shape)], rng, dtype, "stepped")


@pytest.mark.parametrize("size", [(3, 2, 4), 1, (None, 3, 5), (5, 4, 7)])
def test_adaptive_pool3d(rng, size):
    x = rng.standard_normal((2, 3, 5, 6, 7))
    _compare(lambda t: F.adaptive_avg_pool3d(t, size), lambda t: TF.adaptive_avg_pool3d(t, size), [x], rng,
             kind="transposed")
    _compare(lambda t: F.adaptive_max_pool3d(t, size), lambda t: TF.adaptive_max_pool3d(t, size), [x], rng)
    fi = F.adaptive_max_pool3d(fd.tensor(x), size, return_indices=True)[1]
    ti = TF.adaptive_max_pool3d(torch.tensor(x), size, return_indices=True)[1]
    np.testing.assert_array_equal(fi.numpy(), ti.numpy())


@pytest.mark.parametrize("n", [1, 2])
def test_max_unpool_1d_2d_repeated_indices(rng, n):
    """Overlapping windows repeat an index: PyTorch's backward gives every copy the gradient."""
    shape = (2, 3, 9) if n == 1 else (2, 3, 7, 6)
    pool, unpool = (TF.max_pool1d, F.max_unpool1d) if n == 1 else (TF.max_pool2d, F.max_unpool2d)
    tunpool = TF.max_unpool1d if n == 1 else TF.max_unpool2d
    x = torch.tensor(rng.standard_normal(shape))
    o, i = pool(x, 3, 1, 1, return_indices=True)
    fi = fd.tensor(i.numpy())
    _compare(lambda t: unpool(t, fi, 3, 1, 1), lambda t: tunpool(t, i, 3, 1, 1), [o.numpy()], rng)
    m = (nn.MaxUnpool1d if n == 1 else nn.MaxUnpool2d)(3, 1, 1)
    assert tuple(m(fd.tensor(o.numpy()), fi).shape) == tuple(shape)


@pytest.mark.parametrize("dtype", [fd.float64, fd.float32])
@pytest.mark.parametrize("n", [2, 3])
def test_fractional_max_pool(rng, n, dtype):
    shape = (2, 3, 11, 9) if n == 2 else (2, 2, 7, 9, 8)
    x = rng.standard_normal(shape)
    u = rng.random((2, shape[1], n))
    fu, tu = fd.tensor(u, dtype=dtype), torch.tensor(u, dtype=_TD[dtype])
    tf = TF.fractional_max_pool2d if n == 2 else TF.fractional_max_pool3d
    ff = F.fractional_max_pool2d if n == 2 else F.fractional_max_pool3d
    for kw in ({"output_size": 4}, {"output_ratio": (0.5,) * n}, {"output_size": (3,) * n}):
        _compare(lambda t: ff(t, 2, _random_samples=fu, **kw), lambda t: tf(t, 2, _random_samples=tu, **kw), [x],
                 rng, dtype, "stepped")
        fi = ff(fd.tensor(x, dtype=dtype), 3, return_indices=True, _random_samples=fu, **kw)[1]
        ti = tf(torch.tensor(x, dtype=_TD[dtype]), 3, return_indices=True, _random_samples=tu, **kw)[1]
        np.testing.assert_array_equal(fi.numpy(), ti.numpy())
    mod = (nn.FractionalMaxPool2d if n == 2 else nn.FractionalMaxPool3d)(2, output_ratio=0.5)
    assert mod(fd.tensor(x)).shape[2:] == tuple(s // 2 for s in shape[2:])


@pytest.mark.parametrize("dtype", [fd.float64, fd.float32])
@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample_2d(rng, mode, padding_mode, align_corners, dtype):
    x = rng.standard_normal((2, 3, 5, 7))
    grid = rng.uniform(-1.4, 1.4, (2, 4, 6, 2))  # beyond the borders too
    _compare(lambda a, g: F.grid_sample(a, g, mode, padding_mode, align_corners),
             lambda a, g: TF.grid_sample(a, g, mode, padding_mode, align_corners), [x, grid], rng, dtype,
             "stepped", grad=[True, mode != "nearest"])


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample_3d(rng, mode, padding_mode, align_corners):
    x = rng.standard_normal((2, 3, 4, 5, 6))
    grid = rng.uniform(-1.3, 1.3, (2, 3, 2, 4, 3))
    _compare(lambda a, g: F.grid_sample(a, g, mode, padding_mode, align_corners),
             lambda a, g: TF.grid_sample(a, g, mode, padding_mode, align_corners), [x, grid], rng,
             grad=[True, mode != "nearest"])


@pytest.mark.parametrize("align_corners", [False, True])
def test_affine_grid(rng, align_corners):
    for theta_shape, size in (((2, 2, 3), (2, 3, 5, 7)), ((2, 3, 4), (2, 1, 3, 4, 5))):
        _compare(lambda t: F.affine_grid(t, size, align_corners), lambda t: TF.affine_grid(t, size, align_corners),
                 [rng.standard_normal(theta_shape)], rng)


@pytest.mark.parametrize("dtype", [fd.float64, fd.float32])
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag(rng, mode, dtype):
    V, D = 10, 5
    w = rng.standard_normal((V, D))
    idx = rng.integers(0, V, 13)
    for pad in (None, 2):
        for last in (False, True):  # an empty bag in the middle; the last offset closes the input
            offsets = np.array([0, 3, 3, 7, 13] if last else [0, 3, 3, 7, 12])
            _compare(lambda ww, ii, oo: F.embedding_bag(ii, ww, oo, mode=mode, padding_idx=pad,
                                                         include_last_offset=last),
                     lambda ww, ii, oo: TF.embedding_bag(ii, ww, oo, mode=mode, padding_idx=pad,
                                                          include_last_offset=last),
                     [w, idx, offsets], rng, dtype, ints=(1, 2))
    if dtype == fd.float64:  # entries past a last offset below the input length (outside PyTorch's contract):
        # its float64 kernel adds them to the last bag in 'sum' / 'mean' and leaves them out in 'max' (its
        # float32 kernel leaves them out always); fastdl follows the float64 kernel
        _compare(lambda ww, ii, oo: F.embedding_bag(ii, ww, oo, mode=mode, include_last_offset=True),
                 lambda ww, ii, oo: TF.embedding_bag(ii, ww, oo, mode=mode, include_last_offset=True),
                 [w, idx, np.array([0, 3, 3, 7, 12])], rng, dtype, ints=(1, 2))
    idx2 = rng.integers(0, V, (4, 3))
    _compare(lambda ww, ii: F.embedding_bag(ii, ww, mode=mode), lambda ww, ii: TF.embedding_bag(ii, ww, mode=mode),
             [w, idx2], rng, dtype, ints=(1,))
    if mode == "sum":
        psw = rng.standard_normal(13)
        _compare(lambda ww, ii, oo, pp: F.embedding_bag(ii, ww, oo, mode="sum", per_sample_weights=pp),
                 lambda ww, ii, oo, pp: TF.embedding_bag(ii, ww, oo, mode="sum", per_sample_weights=pp),
                 [w, idx, offsets, psw], rng, dtype, ints=(1, 2))


def test_embedding_bag_module():
    m = nn.EmbeddingBag(7, 3, mode="max", padding_idx=0)
    assert float(m.weight[0].abs().sum()) == 0
    out = m(fd.tensor(np.array([1, 2, 0, 4])), fd.tensor(np.array([0, 2])))
    assert tuple(out.shape) == (2, 3)


def _ctc_data(rng, T, N, C, S, lengths, concat=False):
    lp = torch.log_softmax(torch.tensor(rng.standard_normal((T, N, C))), 2).numpy()
    tl = np.asarray(lengths)
    targets = rng.integers(1, C, (N, S))
    if concat:
        targets = np.concatenate([targets[n, :tl[n]] for n in range(N)])
    il = rng.integers(max(T - 3, 1), T + 1, N)
    return lp, targets, il, tl


@pytest.mark.parametrize("dtype", [fd.float64, fd.float32])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("concat", [False, True])
def test_ctc_loss(rng, reduction, concat, dtype):
    lp, tg, il, tl = _ctc_data(rng, 12, 4, 6, 5, [5, 0, 3, 4], concat)
    # raw log-probabilities (not log_softmax): PyTorch's gradient has its exp(lp) term, which we match
    lp = lp + 0.1 * rng.standard_normal(lp.shape)
    for zero_inf in (False, True):
        _compare(lambda x, t: F.ctc_loss(x, t, fd.tensor(il), fd.tensor(tl), 0, reduction, zero_inf),
                 lambda x, t: TF.ctc_loss(x, t, torch.tensor(il), torch.tensor(tl), 0, reduction, zero_inf),
                 [lp, tg], rng, dtype, ints=(1,))


def test_ctc_loss_impossible_blank_and_unbatched(rng):
    # T = 4 cannot hold the labels 2 2 2 (5 frames with the blanks between repeats): infinite loss
    lp = torch.log_softmax(torch.tensor(rng.standard_normal((4, 2, 5))), 2).numpy()
    tg = np.array([[2, 2, 2], [1, 3, 0]])
    il, tl = [4, 4], [3, 2]
    for zero_inf in (False, True):
        out = _compare(lambda x, t: F.ctc_loss(x, t, il, tl, 4, "none", zero_inf),
                       lambda x, t: TF.ctc_loss(x, t, il, tl, 4, "none", zero_inf), [lp, tg], rng, ints=(1,),
                       grad=[zero_inf, False])
        assert (float(out[0]) == float("inf")) != zero_inf
    _compare(lambda x, t: F.ctc_loss(x, t, [4], [2], 0), lambda x, t: TF.ctc_loss(x, t, [4], [2], 0),
             [lp[:, 0], np.array([1, 3])], rng, ints=(1,))
    m = nn.CTCLoss(blank=4, reduction="sum")
    assert np.isfinite(float(m(fd.tensor(lp), fd.tensor(tg), il, [2, 2])))


@pytest.mark.parametrize("dtype", [fd.float64, fd.float32])
def test_margin_losses(rng, dtype):
    x = rng.standard_normal((6, 5))
    y = rng.integers(0, 5, 6)
    w = rng.random(5)
    for p in (1, 2):
        for red in ("none", "mean", "sum"):
            _compare(lambda a, t, ww: F.multi_margin_loss(a, t, p, 0.7, ww, reduction=red),
                     lambda a, t, ww: TF.multi_margin_loss(a, t, p, 0.7, ww, reduction=red), [x, y, w], rng, dtype,
                     ints=(1,), grad=[True, False, False])
    ml = np.array([[3, 0, -1, 1, 1], [0, 1, 2, 3, 4], [-1, 2, 2, 2, 2], [4, 4, -1, 0, 0], [1, -1, 3, 3, 3],
                   [2, 3, 4, -1, 0]])
    for red in ("none", "mean", "sum"):
        _compare(lambda a, t: F.multilabel_margin_loss(a, t, reduction=red),
                 lambda a, t: TF.multilabel_margin_loss(a, t, reduction=red), [x, ml], rng, dtype, ints=(1,))
    _compare(lambda a, t: F.multilabel_margin_loss(a, t), lambda a, t: TF.multilabel_margin_loss(a, t),
             [x[0], ml[0]], rng, dtype, ints=(1,))


@pytest.mark.parametrize("swap", [False, True])
def test_triplet_margin_with_distance_loss(rng, swap):
    a, p, n = (rng.standard_normal((5, 4)) for _ in range(3))
    _compare(lambda x, y, z: F.triplet_margin_with_distance_loss(x, y, z, swap=swap, margin=0.5),
             lambda x, y, z: TF.triplet_margin_with_distance_loss(x, y, z, swap=swap, margin=0.5), [a, p, n], rng)

    def cos_fd(x, y):
        return 1 - F.cosine_similarity(x, y)

    def cos_t(x, y):
        return 1 - TF.cosine_similarity(x, y)
    _compare(lambda x, y, z: nn.TripletMarginWithDistanceLoss(distance_function=cos_fd, swap=swap)(x, y, z),
             lambda x, y, z: torch.nn.TripletMarginWithDistanceLoss(distance_function=cos_t, swap=swap)(x, y, z),
             [a, p, n], rng)


@pytest.mark.parametrize("p", [0, 1, 1.5, 2, 3, float("inf")])
def test_pdist(rng, p):
    x = rng.standard_normal((6, 5))
    _compare(lambda t: F.pdist(t, p), lambda t: TF.pdist(t, p), [x], rng, kind="stepped", grad=[p != 0])


def test_pdist_zero_distance_gradient():
    x = np.array([[1.0, 2.0], [1.0, 2.0], [0.0, 1.0]])
    fx = fd.tensor(x, requires_grad=True)
    F.pdist(fx).sum().backward()
    tx = torch.tensor(x, requires_grad=True)
    TF.pdist(tx).sum().backward()
    np.testing.assert_allclose(fx.grad.numpy(), tx.grad.numpy(), atol=1e-12)


def test_errors_name_op_and_shapes():
    with pytest.raises(ValueError, match=r"conv3d: .*\(2, 3, 4, 5\)"):
        F.conv3d(fd.randn(2, 3, 4, 5, 6), fd.randn(2, 3, 4, 5))
    with pytest.raises(ValueError, match=r"conv3d: .*groups=2"):
        F.conv3d(fd.randn(1, 3, 4, 5, 6), fd.randn(2, 3, 1, 1, 1), groups=2)
    with pytest.raises(ValueError, match=r"conv3d: kernel size .* exceeds"):
        F.conv3d(fd.randn(1, 1, 2, 5, 6), fd.randn(1, 1, 3, 1, 1))
    with pytest.raises(ValueError, match=r"conv_transpose3d: output_padding"):
        F.conv_transpose3d(fd.randn(1, 2, 3, 3, 3), fd.randn(2, 2, 2, 2, 2), output_padding=1)
    with pytest.raises(ValueError, match=r"max_pool3d: .*\(2, 3, 4\)"):
        F.max_pool3d(fd.randn(2, 3, 4), 2)
    with pytest.raises(ValueError, match=r"max_pool3d: padding"):
        F.max_pool3d(fd.randn(1, 1, 4, 4, 4), 2, padding=2)
    with pytest.raises(TypeError, match="avg_pool3d: input must be floating"):
        F.avg_pool3d(fd.tensor(np.ones((1, 1, 2, 2, 2), dtype=np.int64)), 2)
    with pytest.raises(ValueError, match=r"max_unpool2d: indices shape"):
        F.max_unpool2d(fd.randn(1, 1, 2, 2), fd.tensor(np.zeros((1, 1, 2, 3), dtype=np.int64)), 2)
    with pytest.raises(ValueError, match="max_unpool2d: invalid output_size"):
        F.max_unpool2d(fd.randn(1, 1, 2, 2), fd.tensor(np.zeros((1, 1, 2, 2), dtype=np.int64)), 2,
                       output_size=(9, 9))
    with pytest.raises(ValueError, match="fractional_max_pool2d: .*output_size"):
        F.fractional_max_pool2d(fd.randn(1, 1, 4, 4), 3, output_size=3)
    with pytest.raises(ValueError, match=r"grid_sample: .*input \(1, 1, 4, 4\) and grid \(1, 2, 2, 3\)"):
        F.grid_sample(fd.randn(1, 1, 4, 4), fd.randn(1, 2, 2, 3))
    with pytest.raises(ValueError, match="grid_sample: bicubic"):
        F.grid_sample(fd.randn(1, 1, 4, 4, 4), fd.randn(1, 2, 2, 2, 3), mode="bicubic")
    with pytest.raises(ValueError, match="embedding_bag: offsets has to be"):
        F.embedding_bag(fd.tensor(np.array([1, 2])), fd.randn(5, 2))
    with pytest.raises(ValueError, match="embedding_bag: per_sample_weights is only supported"):
        F.embedding_bag(fd.tensor(np.array([[1, 2]])), fd.randn(5, 2), mode="mean",
                        per_sample_weights=fd.randn(1, 2))
    with pytest.raises(ValueError, match="ctc_loss: input_lengths"):
        F.ctc_loss(fd.randn(4, 2, 5), fd.tensor(np.ones((2, 2), dtype=np.int64)), [5, 4], [2, 2])
    with pytest.raises(ValueError, match="ctc_loss: target labels"):
        F.ctc_loss(fd.randn(4, 1, 5), fd.tensor(np.array([[0, 1]])), [4], [2])
    with pytest.raises(ValueError, match="multi_margin_loss: only p"):
        F.multi_margin_loss(fd.randn(2, 3), fd.tensor(np.array([0, 1])), p=3)
    with pytest.raises(ValueError, match=r"multilabel_margin_loss: .*\(2, 3\) and target \(2, 2\)"):
        F.multilabel_margin_loss(fd.randn(2, 3), fd.tensor(np.zeros((2, 2), dtype=np.int64)))
    with pytest.raises(ValueError, match=r"pdist: .*\(2, 3, 4\)"):
        F.pdist(fd.randn(2, 3, 4))


MHA = [  # (L, S, N, E, H, separate weights, bias_kv, add_zero_attn, attn_mask, key_padding_mask, average, unbatched)
    (3, 5, 2, 4, 2, False, False, False, None, False, True, False),
    (3, 5, 2, 4, 2, True, True, True, "2d", True, False, False),
    (4, 3, 3, 6, 3, False, True, False, "3d", False, True, False),
    (4, 3, 1, 6, 3, False, False, True, "bool", True, True, True),
    (4, 3, 1, 6, 2, True, False, False, "3d", False, False, True),
]


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")
@pytest.mark.parametrize("case", MHA)
def test_multi_head_attention_forward(rng, case):
    L, S, N, E, H, sep, bias_kv, zero, mask, kpm, avg, unb = case
    qs, ks = ((L, E), (S, E)) if unb else ((L, N, E), (S, N, E))
    shapes = [qs, ks, ks, (3 * E, E), (3 * E,), (E,), (E,), (E, E), (E,), (E, E), (E, E), (E, E)]
    nb = 1 if unb else N
    am = {"2d": rng.standard_normal((L, S)), "3d": rng.standard_normal((nb * H, L, S)),
          "bool": rng.random((L, S)) < 0.3, None: None}[mask]
    kp = None
    if kpm:
        kp = rng.random((S,) if unb else (N, S)) < 0.3
        kp[..., 0] = False

    def call(lib, fn, q, k, v, ipw, ipb, bk, bv, ow, ob, qw, kw, vw):
        conv = (lambda a: None if a is None else lib(a))
        out, w = fn(q, k, v, E, H, None if sep else ipw, ipb, bk if bias_kv else None, bv if bias_kv else None, zero,
                    0.0, ow, ob, training=False, key_padding_mask=conv(kp), attn_mask=conv(am),
                    use_separate_proj_weight=sep, q_proj_weight=qw if sep else None, k_proj_weight=kw if sep else None,
                    v_proj_weight=vw if sep else None, average_attn_weights=avg)
        return out, w

    arrays = [rng.standard_normal(s) for s in shapes]
    grad = [True] * 3 + [not sep, True, bias_kv, bias_kv, True, True, sep, sep, sep]
    for pick in (0, 1):  # output, then the attention weights
        _compare(lambda *a: call(fd.tensor, F.multi_head_attention_forward, *a)[pick],
                 lambda *a: call(torch.tensor, TF.multi_head_attention_forward, *a)[pick], arrays, rng, grad=grad)


BF16_OPS = {  # name: (fastdl fn, torch fn, input shapes)
    "conv3d": (lambda x, w: F.conv3d(x, w, None, (1, 2, 1), 1, 1, 2),
               lambda x, w: TF.conv3d(x, w, None, (1, 2, 1), 1, 1, 2), [(2, 4, 5, 6, 7), (4, 2, 3, 3, 2)]),
    "conv_transpose3d": (lambda x, w: F.conv_transpose3d(x, w, None, 2, 1),
                         lambda x, w: TF.conv_transpose3d(x, w, None, 2, 1), [(1, 3, 3, 4, 5), (3, 2, 3, 3, 3)]),
    "max_pool3d": (lambda x: F.max_pool3d(x, 3, 2, 1), lambda x: TF.max_pool3d(x, 3, 2, 1), [(2, 3, 5, 6, 7)]),
    "avg_pool3d": (lambda x: F.avg_pool3d(x, 2, 1, 1, count_include_pad=False),
                   lambda x: TF.avg_pool3d(x, 2, 1, 1, count_include_pad=False), [(2, 3, 5, 6, 7)]),
    "adaptive_avg_pool3d": (lambda x: F.adaptive_avg_pool3d(x, (2, 3, 4)),
                            lambda x: TF.adaptive_avg_pool3d(x, (2, 3, 4)), [(2, 3, 5, 6, 7)]),
    "grid_sample": (lambda x, g: F.grid_sample(x, g, align_corners=False),
                    lambda x, g: TF.grid_sample(x, g, align_corners=False), [(2, 3, 4, 5, 6), (2, 2, 3, 4, 3)]),
}


@pytest.mark.parametrize("name", sorted(BF16_OPS))
def test_bfloat16_against_float64(rng, name):
    """bfloat16 inputs (values representable in bfloat16): forward and input gradients within
    bfloat16 rounding of torch's float64 results on the same values."""
    ff, tf, shapes = BF16_OPS[name]
    arrays = [torch.tensor(rng.uniform(-0.9, 0.9, s)).bfloat16().double().numpy() for s in shapes]
    fts = [fd.tensor(a, dtype=fd.bfloat16).requires_grad_(True) for a in arrays]
    tts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out_f, out_t = ff(*fts), tf(*tts)
    assert out_f.dtype == fd.bfloat16
    scale = float(out_t.abs().max()) + 1e-3
    np.testing.assert_allclose(out_f.detach().to(fd.float64).numpy(), out_t.detach().numpy(), rtol=2e-2,
                               atol=2e-2 * scale)
    up = torch.tensor(rng.standard_normal(tuple(out_t.shape))).bfloat16().double()
    (out_t * up).sum().backward()
    (out_f * fd.tensor(up.numpy(), dtype=fd.bfloat16)).sum().backward()
    for f, t in zip(fts, tts):
        g = t.grad.numpy()
        np.testing.assert_allclose(f.grad.to(fd.float64).numpy(), g, rtol=3e-2, atol=3e-2 * (np.abs(g).max() + 1e-3))


def test_pool3d_modules(rng):
    x = rng.standard_normal((2, 3, 6, 5, 7))
    fx, tx = fd.tensor(x), torch.tensor(x)
    pairs = [(nn.MaxPool3d(3, 2, 1), torch.nn.MaxPool3d(3, 2, 1)), (nn.AvgPool3d(2, 1), torch.nn.AvgPool3d(2, 1)),
             (nn.AdaptiveAvgPool3d((2, 3, 1)), torch.nn.AdaptiveAvgPool3d((2, 3, 1))),
             (nn.AdaptiveMaxPool3d(2), torch.nn.AdaptiveMaxPool3d(2))]
    for m, tm in pairs:
        np.testing.assert_allclose(m(fx).numpy(), tm(tx).numpy(), rtol=1e-12, atol=1e-12)
    o, i = nn.MaxPool3d(2, return_indices=True)(fx)
    to, ti = torch.nn.MaxPool3d(2, return_indices=True)(tx)
    np.testing.assert_allclose(nn.MaxUnpool3d(2)(o, i, output_size=x.shape).numpy(),
                               torch.nn.MaxUnpool3d(2)(to, ti, output_size=x.shape).numpy())
    assert "kernel_size=3, stride=2, padding=1" in repr(pairs[0][0])


def test_module_signatures_and_tuple_attrs_torch():
    """Conv3d takes torch's arguments (no output_padding); the unpooling and fractional pooling
    modules keep their sizes as tuples, as torch's do (repr included)."""
    import inspect
    names = lambda c: [(p.name, p.default) for p in inspect.signature(c).parameters.values()]  # noqa: E731
    assert names(nn.Conv3d) == names(torch.nn.Conv3d)
    with pytest.raises(TypeError):
        nn.Conv3d(2, 3, 3, output_padding=1)
    for name, args, kw in [("MaxUnpool1d", (2,), {}), ("MaxUnpool2d", (2,), {"stride": 1}),
                           ("MaxUnpool3d", ((1, 2, 3),), {"padding": 1}),
                           ("FractionalMaxPool2d", (2,), {"output_size": 3}),
                           ("FractionalMaxPool3d", (2,), {"output_ratio": 0.5})]:
        m, tm = getattr(nn, name)(*args, **kw), getattr(torch.nn, name)(*args, **kw)
        for k in ("kernel_size", "stride", "padding", "output_size", "output_ratio"):
            if hasattr(tm, k):
                assert getattr(m, k) == getattr(tm, k), (name, k)
        assert repr(m) == repr(tm)


@pytest.mark.parametrize("freeze", [True, False])
def test_embedding_bag_from_pretrained_torch(freeze, rng):
    w = rng.standard_normal((6, 3))
    kw = dict(freeze=freeze, mode="sum", padding_idx=1, include_last_offset=True)
    m = nn.EmbeddingBag.from_pretrained(fd.tensor(w), **kw)
    tm = torch.nn.EmbeddingBag.from_pretrained(torch.tensor(w), **kw)
    assert m.weight.requires_grad == tm.weight.requires_grad == (not freeze) and repr(m) == repr(tm)
    idx, off = np.array([0, 1, 2, 5, 4]), np.array([0, 2, 5])
    np.testing.assert_allclose(m(fd.tensor(idx), fd.tensor(off)).detach().numpy(),
                               tm(torch.tensor(idx), torch.tensor(off)).detach().numpy(), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError):
        nn.EmbeddingBag.from_pretrained(fd.tensor(w[0]))


def _asm_pair(div_value, head_bias, cutoffs=(3, 7), n_classes=12, in_features=8):
    tm = torch.nn.AdaptiveLogSoftmaxWithLoss(in_features, n_classes, list(cutoffs), div_value=div_value,
                                             head_bias=head_bias).double()
    fm = nn.AdaptiveLogSoftmaxWithLoss(in_features, n_classes, list(cutoffs), div_value=div_value,
                                       head_bias=head_bias).double()
    assert {k: tuple(v.shape) for k, v in fm.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in tm.state_dict().items()}
    fm.load_state_dict({k: fd.tensor(v.numpy()) for k, v in tm.state_dict().items()})
    return fm, tm


@pytest.mark.parametrize("div_value,head_bias", [(4.0, False), (2.0, True)])
def test_adaptive_log_softmax_torch(div_value, head_bias):
    torch.manual_seed(7)
    fm, tm = _asm_pair(div_value, head_bias)
    assert repr(fm) == repr(tm)
    for a in ("shortlist_size", "n_clusters", "head_size", "cutoffs", "in_features", "n_classes"):
        assert getattr(fm, a) == getattr(tm, a)
    x = torch.randn(9, 8, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([0, 4, 11, 2, 8, 5, 7, 3, 10])
    xf = fd.tensor(x.detach().numpy(), requires_grad=True)
    o, of = tm(x, target), fm(xf, fd.tensor(target.numpy()))
    assert type(of).__name__ == "_ASMoutput" and of._fields == ("output", "loss")
    w = torch.randn(9, dtype=torch.float64)
    ((o.output * w).sum() + o.loss).backward()
    ((of.output * fd.tensor(w.numpy())).sum() + of.loss).backward()
    np.testing.assert_allclose(of.output.detach().numpy(), o.output.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(of.loss.item(), o.loss.item(), rtol=1e-12)
    np.testing.assert_allclose(xf.grad.numpy(), x.grad.numpy(), rtol=1e-10, atol=1e-12)
    for (n, p), (tn, tp) in zip(fm.named_parameters(), tm.named_parameters()):
        assert n == tn
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-10, atol=1e-12)
    with torch.no_grad():
        np.testing.assert_allclose(fm.log_prob(xf).detach().numpy(), tm.log_prob(x).numpy(), rtol=1e-12, atol=1e-12)
        for scale in (1.0, 5.0):  # a larger input spreads the argmax over shortlist and clusters
            xs = x * scale
            assert fm.predict(fd.tensor(xs.numpy())).tolist() == tm.predict(xs).tolist()
        o1 = tm(x[0], target[1])
        of1 = fm(xf[0].detach(), fd.tensor(target[1].numpy()))
        assert tuple(of1.output.shape) == () and abs(of1.loss.item() - o1.loss.item()) < 1e-12


def test_adaptive_log_softmax_predict_branches_torch():
    torch.manual_seed(3)
    fm, tm = _asm_pair(2.0, True)
    x = torch.randn(6, 8, dtype=torch.float64)
    for bias in (20.0, -20.0):  # every head argmax in the shortlist, then every one a cluster
        with torch.no_grad():
            tm.head.bias[:3] = bias
        fm.load_state_dict({k: fd.tensor(v.numpy()) for k, v in tm.state_dict().items()})
        assert fm.predict(fd.tensor(x.numpy())).tolist() == tm.predict(x).tolist()


def test_adaptive_log_softmax_errors_torch():
    def both_raise(fn_t, fn_f):
        with pytest.raises(Exception) as te:
            fn_t()
        with pytest.raises(te.type) as fe:
            fn_f()
        return str(te.value), str(fe.value)

    for cutoffs in ([5, 3], [5, 10], [0, 5], [5, 5], []):
        t, f = both_raise(lambda: torch.nn.AdaptiveLogSoftmaxWithLoss(8, 10, cutoffs),
                          lambda: nn.AdaptiveLogSoftmaxWithLoss(8, 10, cutoffs))
        assert t == f
    tm, fm = torch.nn.AdaptiveLogSoftmaxWithLoss(8, 10, [2, 5]), nn.AdaptiveLogSoftmaxWithLoss(8, 10, [2, 5])
    for x, tg in (((3, 8), [1, 2, 10]), ((3, 8), [1, 2]), ((2, 8), [3, -1])):
        t, f = both_raise(lambda: tm(torch.randn(*x), torch.tensor(tg)), lambda: fm(fd.randn(*x), fd.tensor(tg)))
        assert t == f


def test_nll_loss2d_and_container_deprecated_torch():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 3, 5, dtype=torch.float64).log_softmax(1).requires_grad_()
    target = torch.randint(0, 4, (2, 3, 5))
    w = torch.rand(4, dtype=torch.float64) + 0.5
    with pytest.warns(FutureWarning, match="NLLLoss2d` has been deprecated"):
        fl = nn.NLLLoss2d(weight=fd.tensor(w.numpy()), ignore_index=1)
    assert isinstance(fl, nn.NLLLoss)
    tl = torch.nn.NLLLoss(weight=w, ignore_index=1)
    xf = fd.tensor(x.detach().numpy(), requires_grad=True)
    lt, lf = tl(x, target), fl(xf, fd.tensor(target.numpy()))
    lt.backward()
    lf.backward()
    np.testing.assert_allclose(lf.item(), lt.item(), rtol=1e-12)
    np.testing.assert_allclose(xf.grad.numpy(), x.grad.numpy(), rtol=1e-10, atol=1e-14)
    with pytest.warns(FutureWarning, match="nn.Container` is deprecated"):
        c = nn.Container(a=nn.Linear(2, 3), b=nn.ReLU())
    with pytest.warns(FutureWarning):
        tc = torch.nn.Container(a=torch.nn.Linear(2, 3), b=torch.nn.ReLU())
    assert repr(c) == repr(tc) and list(c.state_dict()) == list(tc.state_dict())
