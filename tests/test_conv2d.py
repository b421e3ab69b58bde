"""F.conv2d / F.conv_transpose2d and nn.Conv2d / nn.ConvTranspose2d against torch in float64:
values and the gradients of input, weight and bias under a random upstream gradient, on odd
sizes, strides, every padding form, dilation, groups (depthwise too), non-contiguous inputs,
on every CPU path present; the fast paths against the scalar reference on blocked sizes;
and the errors bad arguments raise."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.nn as nn
import fastdl.nn.functional as F
from fastdl import _C

from checks import strided

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")

CASES = [  # (N, C_in, C_out, H, W, (kH, kW), stride, padding, dilation, groups, bias)
    (2, 3, 5, 7, 9, (3, 3), 1, 1, 1, 1, True),
    (1, 4, 6, 9, 8, (3, 2), (2, 1), (1, 2), (2, 1), 2, True),
    (2, 4, 4, 8, 9, (4, 3), 1, "same", 2, 4, False),      # depthwise, even kernel: asymmetric 'same'
    (2, 3, 6, 7, 7, (3, 3), 1, "same", 1, 3, True),       # depthwise with channel multiplier 2
    (1, 5, 5, 6, 7, (2, 2), 3, "valid", 1, 1, True),
    (3, 2, 7, 11, 5, (5, 1), (1, 2), (2, 0), (1, 3), 1, True),
    (2, 6, 4, 5, 6, (1, 1), 1, 0, 1, 2, True),            # pointwise, grouped
    (1, 1, 6, 12, 13, (5, 5), 1, 0, 1, 1, True),          # LeNet's c1 form: one input channel
    (2, 8, 8, 6, 5, (3, 3), 2, 1, 1, 8, True),            # strided depthwise
    (2, 3, 4, 4, 4, (3, 3), 1, 3, 1, 1, True),            # padding wider than the kernel extent
    # depthwise, channels in the vector lanes (a channel count past a whole vector: a partial block)
    (2, 20, 20, 4, 5, (7, 7), 1, 3, 1, 20, True),         # ConvNeXt's 7x7 on planes smaller than it
    (2, 18, 18, 9, 8, (3, 3), 2, 1, 1, 18, True),         # MobileNet's stride 2
    (1, 17, 17, 7, 6, (3, 5), (2, 3), (1, 2), (2, 1), 17, False),  # strides, dilation, uneven kernel
    (2, 5, 5, 6, 6, (3, 3), 1, 4, 1, 5, True),            # padding past the extent: a cropped input gradient
    (1, 9, 9, 19, 21, (3, 3), 1, 1, 1, 9, True),          # larger planes: the planes-in-lanes form
]


def _pair_run(torch, rng, case, dtype=fd.float64, kind="contig", unbatched=False):
    N, C, K, H, W, ks, stride, padding, dilation, groups, bias = case
    xs = (C, H, W) if unbatched else (N, C, H, W)
    x = rng.standard_normal(xs)
    w = rng.standard_normal((K, C // groups) + ks)
    b = rng.standard_normal(K) if bias else None
    fx = strided(x, dtype, kind=kind).requires_grad_()
    fw = fd.tensor(w, dtype=dtype, requires_grad=True)
    fb = fd.tensor(b, dtype=dtype, requires_grad=True) if bias else None
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True) if bias else None
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    fo, to = F.conv2d(fx, fw, fb, **kw), torch.nn.functional.conv2d(tx, tw, tb, **kw)
    assert tuple(fo.shape) == tuple(to.shape) and fo.dtype == dtype
    g = rng.standard_normal(tuple(to.shape))
    fo.backward(fd.tensor(g, dtype=dtype))
    to.backward(torch.tensor(g))
    tol = 1e-11 if dtype == fd.float64 else 2e-4
    np.testing.assert_allclose(fo.detach().numpy(), to.detach().numpy(), rtol=tol, atol=tol)
    for f, t in [(fx, tx), (fw, tw)] + ([(fb, tb)] if bias else []):
        np.testing.assert_allclose(f.grad.numpy(), t.grad.numpy(), rtol=tol, atol=tol * 10)


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_conv2d_matches_torch_float64(torch, rng, isa, case):
    _pair_run(torch, rng, case)


def test_conv2d_float32_noncontiguous_unbatched(torch, rng, isa):
    _pair_run(torch, rng, CASES[0], dtype=fd.float32, kind="strided")
    _pair_run(torch, rng, CASES[1], dtype=fd.float32, kind="transposed")
    _pair_run(torch, rng, CASES[3], dtype=fd.float64, kind="strided", unbatched=True)
    _pair_run(torch, rng, CASES[10], dtype=fd.float32, kind="strided")  # depthwise, channels in lanes
    _pair_run(torch, rng, CASES[11], dtype=fd.float32)


TCASES = [  # (N, C_in, C_out, H, W, (kH, kW), stride, padding, output_padding, groups, dilation, bias)
    (2, 3, 5, 5, 6, (3, 3), 1, 0, 0, 1, 1, True),
    (1, 4, 6, 4, 5, (4, 3), 2, 1, 1, 2, 1, True),            # DCGAN-style upsampling
    (2, 4, 4, 5, 4, (3, 3), (2, 3), (1, 0), (1, 2), 4, 1, False),
    (1, 2, 3, 3, 4, (2, 3), 3, 1, (0, 2), 1, (2, 2), True),  # output_padding below the dilation
]


@pytest.mark.parametrize("case", TCASES, ids=[str(i) for i in range(len(TCASES))])
def test_conv_transpose2d_matches_torch_float64(torch, rng, isa, case):
    N, C, K, H, W, ks, stride, padding, opad, groups, dilation, bias = case
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((C, K // groups) + ks)
    b = rng.standard_normal(K) if bias else None
    arrays = [x, w] + ([b] if bias else [])
    kw = dict(stride=stride, padding=padding, output_padding=opad, groups=groups, dilation=dilation)
    fts = [fd.tensor(a, requires_grad=True) for a in arrays]
    tts = [torch.tensor(a, requires_grad=True) for a in arrays]
    fo = F.conv_transpose2d(fts[0], fts[1], fts[2] if bias else None, **kw)
    to = torch.nn.functional.conv_transpose2d(tts[0], tts[1], tts[2] if bias else None, **kw)
    assert tuple(fo.shape) == tuple(to.shape)
    np.testing.assert_allclose(fo.detach().numpy(), to.detach().numpy(), rtol=1e-11, atol=1e-11)
    g = rng.standard_normal(tuple(to.shape))
    fo.backward(fd.tensor(g))
    to.backward(torch.tensor(g))
    for f, t in zip(fts, tts):
        np.testing.assert_allclose(f.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-10)


def _grads(isa, x, w, b, upstream, **kw):
    prev = _C.cpu_isa()
    _C.set_cpu_isa(isa)
    try:
        fx, fw, fb = (fd.tensor(a, requires_grad=True) for a in (x, w, b))
        out = F.conv2d(fx, fw, fb, **kw)
        out.backward(fd.tensor(upstream, dtype=out.dtype))
        return [t.numpy() for t in (out.detach(), fx.grad, fw.grad, fb.grad)]
    finally:
        _C.set_cpu_isa(prev)


@pytest.mark.parametrize("shape", [
    (3, 40, 70, 11, 13, 3, 1, 1, 1),    # several row blocks, image-crossing column blocks
    (2, 64, 24, 9, 30, 3, 1, 1, 1),     # reduction longer than one k block
    (2, 16, 20, 15, 17, 5, 2, 2, 1),    # strided
    (4, 12, 12, 10, 9, 3, 1, 1, 12),    # depthwise
    (5, 1, 6, 28, 28, 5, 1, 0, 1),      # LeNet's c1
    (2, 3, 16, 19, 21, 7, 2, 3, 1),     # ResNet's stem: column phases, col2im input gradient
    (5, 6, 16, 14, 14, 5, 1, 0, 1),     # LeNet's c2: 10-pixel rows, several runs per vector
    (3, 8, 20, 7, 6, 3, 1, 1, 1),       # padded rows narrower than a vector, col2im input gradient
    (2, 32, 8, 5, 6, 3, 1, 3, 1),       # input gradient as a forward convolution that crops
    (2, 32, 8, 4, 37, 3, 1, 1, 1),      # rows wider than a panel: borders clipped while packing
    (2, 6, 8, 5, 70, 3, 2, 1, 1),       # the same through column phases
    (7, 8, 12, 9, 7, 3, 2, 1, 1),       # strided input gradient over groups of images (3, 3, 1)
    (2, 8, 128, 4, 4, 3, 1, 1, 1),      # one column block: output channels split over threads
    (3, 40, 40, 8, 8, 7, 1, 3, 40),     # depthwise 7x7, channels in the lanes: two blocks and a partial
    (2, 33, 33, 13, 11, 3, 2, 1, 33),   # depthwise, stride 2 in the lanes
    (2, 24, 24, 30, 29, 5, 1, 2, 24),   # depthwise on larger planes: planes in the lanes, flat rows
])
def test_fast_paths_match_reference(rng, shape):
    fast = [i for i in ("avx2", "avx512") if i in __import__("conftest").PRESENT_ISAS]
    if not fast:
        pytest.skip("no vector ISA on this machine")
    N, C, K, H, W, k, s, p, groups = shape
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((K, C // groups, k, k))
    b = rng.standard_normal(K)
    OH, OW = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    g = rng.standard_normal((N, K, OH, OW))
    want = _grads("ref", x, w, b, g, stride=s, padding=p, groups=groups)
    for isa in fast:
        for got, ref in zip(_grads(isa, x, w, b, g, stride=s, padding=p, groups=groups), want):
            np.testing.assert_allclose(got, ref, rtol=1e-11, atol=1e-11)


# Forward with the padding taps skipped (cpu/conv_taps_vec.cpp): classes of pixels that see the
# same taps. FASTDL_CONV_TAPS=1 forces the path on layers it would leave to the implicit GEMM.
@pytest.mark.parametrize("shape", [  # N, C, K, H, W, k, stride, padding, dilation, groups
    (3, 40, 20, 7, 7, 3, 1, 1, 1, 1),    # 9 classes, edge runs shorter than a vector
    (2, 64, 48, 2, 2, 3, 1, 1, 1, 1),    # every pixel a corner (ResNet's last stage at 64x64)
    (2, 33, 19, 9, 8, 3, 2, 1, 1, 1),    # strided: lanes two columns apart
    (2, 32, 18, 6, 7, 5, 1, 2, 1, 1),    # 5x5: two border bands on each side
    (1, 36, 22, 8, 5, 3, 1, 2, 2, 1),    # dilated
    (2, 64, 64, 4, 4, 3, 1, 1, 1, 2),    # grouped
    (2, 48, 24, 4, 4, 3, 1, 3, 1, 1),    # pixels that see padding only: the bias
    (3, 35, 21, 1, 1, 3, 1, 1, 1, 1),    # one pixel, the centre tap
    (2, 96, 30, 5, 37, 3, 1, 1, 1, 1),   # wide rows: whole-vector runs, several channel chunks
])
@pytest.mark.parametrize("mode", ["1", "auto"])
def test_tap_skipping_matches_reference(rng, monkeypatch, shape, mode):
    fast = [i for i in ("avx2", "avx512") if i in __import__("conftest").PRESENT_ISAS]
    if not fast:
        pytest.skip("no vector ISA on this machine")
    if mode != "auto":
        monkeypatch.setenv("FASTDL_CONV_TAPS", mode)
    N, C, K, H, W, k, s, p, d, groups = shape
    _fast_paths_match_ref(rng, fast, N, C, K, H, W, (k, k), s, p, d, groups)


def _fast_paths_match_ref(rng, isas, N, C, K, H, W, ks, s, p, d, groups):
    """conv2d's value and gradients on each ISA against the ref ISA: float64 to 1e-11, float32
    to its precision."""
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((K, C // groups) + ks)
    b = rng.standard_normal(K)
    s2, p2, d2 = (v if isinstance(v, tuple) else (v, v) for v in (s, p, d))
    OH = (H + 2 * p2[0] - d2[0] * (ks[0] - 1) - 1) // s2[0] + 1
    OW = (W + 2 * p2[1] - d2[1] * (ks[1] - 1) - 1) // s2[1] + 1
    g = rng.standard_normal((N, K, OH, OW))
    kw = dict(stride=s, padding=p, dilation=d, groups=groups)
    want = _grads("ref", x, w, b, g, **kw)
    for isa in isas:
        for got, ref in zip(_grads(isa, x, w, b, g, **kw), want):
            np.testing.assert_allclose(got, ref, rtol=1e-11, atol=1e-11)
        got32 = _grads(isa, *(a.astype(np.float32) for a in (x, w, b, g)), **kw)
        for got, ref in zip(got32, want):
            np.testing.assert_allclose(got, ref, rtol=2e-4, atol=2e-4 * np.abs(ref).max())


# Channels in the vector lanes (cpu/conv_lanes_vec.cpp): pixels broadcast over NHWC copies, the
# input gradient by stride phases, padding taps skipped by bands. FASTDL_CONV_LANES=1 forces it.
@pytest.mark.parametrize("shape", [  # N, C, K, H, W, (kh, kw), stride, padding, dilation, groups
    (3, 64, 48, 16, 16, (4, 4), 2, 1, 1, 1),      # DCGAN's discriminator: 4x4 stride 2
    (2, 20, 37, 9, 7, (3, 3), 1, 1, 1, 1),        # partial lane blocks both ways, odd plane
    (2, 34, 33, 11, 13, (3, 5), (2, 3), (2, 1), (1, 2), 1),  # uneven strides, dilation, padding
    (2, 32, 48, 8, 8, (3, 3), 1, 1, 2, 2),        # grouped, dilated
    (1, 20, 17, 5, 6, (1, 1), 2, 0, 1, 1),        # 1x1 stride 2: gx phases no tap reaches (zeros)
    (2, 18, 24, 7, 7, (3, 3), 3, (0, 2), 1, 1),   # stride 3 past the kernel
    (2, 24, 40, 4, 4, (3, 3), 1, 3, 1, 1),        # padding past the extent: padding-only pixels
    (2, 16, 16, 3, 2, (2, 3), 1, 1, 1, 1),        # planes smaller than a tile
    (3, 48, 1, 4, 4, (4, 4), 1, 0, 1, 1),         # a discriminator's last layer: one output channel
    (2, 40, 3, 6, 5, (3, 3), 1, 1, 1, 1),         # three output channels, padded
    (2, 3, 40, 13, 11, (7, 7), 2, 3, 1, 1),       # a stem: merged tap rows, weight gradient over output lanes
    (2, 8, 64, 6, 6, (3, 3), 1, 1, 1, 2),         # few channels per group, grouped
    (2, 5, 20, 9, 9, (3, 2), 1, (1, 0), (1, 2), 1),  # few channels, dilated columns
])
@pytest.mark.parametrize("mode", ["1", "auto"])
def test_lanes_matches_reference(rng, monkeypatch, shape, mode):
    fast = [i for i in ("avx2", "avx512") if i in __import__("conftest").PRESENT_ISAS]
    if not fast:
        pytest.skip("no vector ISA on this machine")
    if mode != "auto":
        monkeypatch.setenv("FASTDL_CONV_LANES", mode)
    N, C, K, H, W, ks, s, p, d, groups = shape
    _fast_paths_match_ref(rng, fast, N, C, K, H, W, ks, s, p, d, groups)


def test_lanes_conv_transpose2d_matches_torch(torch, rng, monkeypatch):
    """DCGAN's generator layer (4x4 stride-2 transposed convolution; its forward is the lanes
    input gradient) on a strided input, against PyTorch in float64."""
    monkeypatch.setenv("FASTDL_CONV_LANES", "1")
    x = rng.standard_normal((3, 48, 5, 4))
    w = rng.standard_normal((48, 32, 4, 4))
    fx = strided(x, fd.float64, kind="transposed").requires_grad_()
    fw = fd.tensor(w, requires_grad=True)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    fo = F.conv_transpose2d(fx, fw, stride=2, padding=1)
    to = torch.nn.functional.conv_transpose2d(tx, tw, stride=2, padding=1)
    g = rng.standard_normal(tuple(to.shape))
    fo.backward(fd.tensor(g))
    to.backward(torch.tensor(g))
    np.testing.assert_allclose(fo.detach().numpy(), to.detach().numpy(), rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(fx.grad.numpy(), tx.grad.numpy(), rtol=1e-11, atol=1e-10)
    np.testing.assert_allclose(fw.grad.numpy(), tw.grad.numpy(), rtol=1e-11, atol=1e-10)


def test_modules_match_torch(torch, rng):
    fd.manual_seed(0)
    m = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)
    assert tuple(m.weight.shape) == (6, 2, 3, 3) and tuple(m.bias.shape) == (6,)
    bound = 1 / np.sqrt(2 * 9)  # kaiming_uniform(a=sqrt(5)) and the bias share this bound
    assert np.abs(m.weight.detach().numpy()).max() <= bound and np.abs(m.bias.detach().numpy()).max() <= bound
    assert np.abs(m.weight.detach().numpy()).max() > 0.5 * bound
    tm = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2).double()
    with torch.no_grad():
        tm.weight.copy_(torch.tensor(m.weight.detach().numpy()))
        tm.bias.copy_(torch.tensor(m.bias.detach().numpy()))
    x = rng.standard_normal((2, 4, 9, 8))
    np.testing.assert_allclose(m(fd.tensor(x, dtype=fd.float32)).detach().numpy(), tm(torch.tensor(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)
    for mode in ("reflect", "replicate", "circular"):
        fm = nn.Conv2d(3, 2, (3, 2), padding=(1, 2), padding_mode=mode, dtype=fd.float64)
        tm = torch.nn.Conv2d(3, 2, (3, 2), padding=(1, 2), padding_mode=mode).double()
        with torch.no_grad():
            tm.weight.copy_(torch.tensor(fm.weight.detach().numpy()))
            tm.bias.copy_(torch.tensor(fm.bias.detach().numpy()))
        x = rng.standard_normal((2, 3, 5, 6))
        np.testing.assert_allclose(fm(fd.tensor(x)).detach().numpy(), tm(torch.tensor(x)).detach().numpy(), rtol=1e-12,
                                   atol=1e-12, err_msg=mode)
    t = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, groups=2, dtype=fd.float64)
    assert tuple(t.weight.shape) == (4, 3, 3, 3)
    tt = torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, groups=2).double()
    with torch.no_grad():
        tt.weight.copy_(torch.tensor(t.weight.detach().numpy()))
        tt.bias.copy_(torch.tensor(t.bias.detach().numpy()))
    x = rng.standard_normal((2, 4, 5, 5))
    got = t(fd.tensor(x), output_size=(10, 10))
    want = tt(torch.tensor(x), output_size=(10, 10))
    assert tuple(got.shape) == (2, 6, 10, 10)
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-12, atol=1e-12)
    assert "Conv2d(4, 6, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), groups=2)" in repr(m)


def test_conv2d_errors():
    x = fd.randn(2, 4, 8, 8)
    w = fd.randn(6, 4, 3, 3)
    with pytest.raises(ValueError, match=r"conv2d: input must be .*\(2, 4\)"):
        F.conv2d(fd.randn(2, 4), w)
    with pytest.raises(ValueError, match=r"conv2d: weight of shape \(6, 4, 3, 3\) with groups=1 expects 4 input channels; "
                                         r"got input of shape \(2, 5, 8, 8\)"):
        F.conv2d(fd.randn(2, 5, 8, 8), w)
    with pytest.raises(ValueError, match="conv2d: out channels .* divisible by groups=4"):
        F.conv2d(x, fd.randn(6, 1, 3, 3), groups=4)
    with pytest.raises(ValueError, match=r"conv2d: bias must have shape \(6,\); got shape \(5,\)"):
        F.conv2d(x, w, fd.randn(5))
    with pytest.raises(ValueError, match="conv2d: the \\(dilated\\) kernel 5x5 is larger than the padded input 4x4"):
        F.conv2d(fd.randn(1, 4, 4, 4), w, dilation=2)
    with pytest.raises(ValueError, match="conv2d: stride must be positive"):
        F.conv2d(x, w, stride=0)
    with pytest.raises(ValueError, match="conv2d: padding must be non-negative"):
        F.conv2d(x, w, padding=-1)
    with pytest.raises(ValueError, match="conv2d: padding='same' is not supported for strided"):
        F.conv2d(x, w, padding="same", stride=2)
    with pytest.raises(ValueError, match="conv2d: padding must be an int, a pair, 'same' or 'valid'"):
        F.conv2d(x, w, padding="full")
    with pytest.raises(TypeError, match="conv2d: input and weight must have the same dtype; got float32 and float64"):
        F.conv2d(x, fd.randn(6, 4, 3, 3, dtype=fd.float64))
    with pytest.raises(TypeError, match="conv2d: input must be floating point"):
        F.conv2d(fd.ones(2, 4, 8, 8, dtype=fd.int64), w)
    with pytest.raises(ValueError, match="conv_transpose2d: output_padding"):
        F.conv_transpose2d(x, fd.randn(4, 2, 3, 3), stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"conv_transpose2d: weight of shape \(3, 2, 3, 3\) expects 3 input channels"):
        F.conv_transpose2d(x, fd.randn(3, 2, 3, 3))
    with pytest.raises(ValueError, match="Conv2d: groups=3 must divide"):
        nn.Conv2d(4, 6, 3, groups=3)


def test_conv1d_runs_native_conv2d(torch, rng):
    """conv1d goes through the native kernel (its own test file sweeps the semantics)."""
    x, w = rng.standard_normal((2, 5, 12)), rng.standard_normal((5, 1, 4))
    fo = F.conv1d(fd.tensor(x, requires_grad=True), fd.tensor(w), padding=3, groups=5)
    assert fo.grad_fn.next_functions[0][0].name() == "ConvolutionBackward0"
    want = torch.nn.functional.conv1d(torch.tensor(x), torch.tensor(w), padding=3, groups=5)
    np.testing.assert_allclose(fo.detach().numpy(), want.numpy(), rtol=1e-12, atol=1e-12)
