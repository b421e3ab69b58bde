"""F.conv1d and nn.Conv1d against torch.nn.functional.conv1d in float64: values and the
gradients of input, weight and bias under a random upstream gradient, on odd sizes, groups
(depthwise with and without a channel multiplier), dilation, stride and every padding form."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.nn as nn
import fastdl.nn.functional as F

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")  # torch notes its own copy

CASES = [  # (N, C_in, C_out, L, K, stride, padding, dilation, groups)
    (2, 3, 5, 11, 3, 1, 0, 1, 1),
    (3, 4, 6, 13, 4, 2, 1, 1, 2),
    (1, 6, 3, 17, 5, 3, 2, 2, 3),
    (2, 5, 5, 9, 4, 1, 3, 1, 5),        # depthwise, Mamba's causal conv (padding K - 1)
    (2, 7, 7, 12, 3, 2, (2,), 3, 7),    # depthwise, strided and dilated
    (2, 3, 6, 10, 3, 1, 1, 2, 3),       # depthwise with channel multiplier 2
    (2, 4, 4, 10, 4, 1, "same", 1, 1),
    (2, 4, 8, 10, 4, 1, "same", 3, 4),  # 'same', odd total padding, depthwise multiplier
    (1, 3, 2, 7, 7, 1, "valid", 1, 1),
    (2, 2, 4, 15, 2, 4, 0, 5, 2),
]


def _run_pair(torch, rng, N, C_in, C_out, L, K, stride, padding, dilation, groups, bias=True, unbatched=False):
    xs = (C_in, L) if unbatched else (N, C_in, L)
    x = rng.standard_normal(xs)
    w = rng.standard_normal((C_out, C_in // groups, K))
    b = rng.standard_normal(C_out) if bias else None
    fx, fw = fd.tensor(x, requires_grad=True), fd.tensor(w, requires_grad=True)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    fb = fd.tensor(b, requires_grad=True) if bias else None
    tb = torch.tensor(b, requires_grad=True) if bias else None
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    fo, to = F.conv1d(fx, fw, fb, **kw), torch.nn.functional.conv1d(tx, tw, tb, **kw)
    assert tuple(fo.shape) == tuple(to.shape)
    np.testing.assert_allclose(fo.detach().numpy(), to.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(tuple(to.shape))
    fo.backward(fd.tensor(g))
    to.backward(torch.tensor(g))
    pairs = [(fx, tx), (fw, tw)] + ([(fb, tb)] if bias else [])
    for f, t in pairs:
        np.testing.assert_allclose(f.grad.numpy(), t.grad.numpy(), rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_conv1d_matches_torch_float64(torch, rng, case):
    _run_pair(torch, rng, *case)


def test_conv1d_no_bias_and_unbatched(torch, rng):
    _run_pair(torch, rng, 1, 4, 6, 9, 3, 2, 1, 1, 2, bias=False)
    _run_pair(torch, rng, 1, 5, 5, 8, 4, 1, 3, 1, 5, unbatched=True)
    _run_pair(torch, rng, 1, 3, 4, 8, 2, 1, "same", 2, 1, unbatched=True)


def test_causal_depthwise_conv_is_causal(rng):
    """Mamba's use: padding K - 1 then the first L outputs; output t sees inputs <= t only."""
    x = fd.tensor(rng.standard_normal((1, 3, 10)), requires_grad=True)
    w = fd.tensor(rng.standard_normal((3, 1, 4)))
    y = F.conv1d(x, w, padding=3, groups=3)[..., :10]
    y[0, :, 5].sum().backward()
    g = x.grad.numpy()
    assert np.all(g[0, :, 6:] == 0) and np.all(g[0, :, 2:6] != 0)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_conv1d_module_matches_torch(torch, rng, mode):
    fd.manual_seed(0)
    for kw in (dict(padding=2, groups=2, dilation=1, stride=2), dict(padding="same", groups=1, dilation=2)):
        m = nn.Conv1d(4, 6, 3, padding_mode=mode, dtype=fd.float64, **kw)
        t = torch.nn.Conv1d(4, 6, 3, padding_mode=mode, dtype=torch.float64, **kw)
        assert [n for n, _ in m.named_parameters()] == [n for n, _ in t.named_parameters()]
        with torch.no_grad():
            t.weight.copy_(torch.tensor(m.weight.detach().numpy()))
            t.bias.copy_(torch.tensor(m.bias.detach().numpy()))
        assert repr(m) == repr(t)
        x = rng.standard_normal((2, 4, 9))
        fo, to = m(fd.tensor(x)), t(torch.tensor(x))
        np.testing.assert_allclose(fo.detach().numpy(), to.detach().numpy(), rtol=1e-12, atol=1e-12)
        g = rng.standard_normal(tuple(to.shape))
        fo.backward(fd.tensor(g))
        to.backward(torch.tensor(g))
        np.testing.assert_allclose(m.weight.grad.numpy(), t.weight.grad.numpy(), rtol=1e-11, atol=1e-11)


def test_conv1d_module_init_and_repr(torch):
    fd.manual_seed(0)
    m = nn.Conv1d(8, 16, 5, groups=4, bias=False)
    bound = 1 / np.sqrt(2 * 5)  # kaiming_uniform(a=sqrt 5) on fan_in = C_in / groups * K
    w = m.weight.detach().numpy()
    assert w.shape == (16, 2, 5) and m.bias is None and np.abs(w).max() <= bound and w.std() > bound / 3
    assert repr(m) == repr(torch.nn.Conv1d(8, 16, 5, groups=4, bias=False))
    assert repr(nn.Conv1d(3, 3, 4, padding=3, groups=3)) == repr(torch.nn.Conv1d(3, 3, 4, padding=3, groups=3))


def test_conv1d_errors():
    x, w = fd.zeros(2, 4, 10), fd.zeros(6, 2, 3)
    with pytest.raises(ValueError, match="conv1d: groups"):
        F.conv1d(x, w, groups=3)
    with pytest.raises(ValueError, match="conv1d: weight"):
        F.conv1d(x, fd.zeros(6, 3, 3), groups=2)
    with pytest.raises(ValueError, match="'same'"):
        F.conv1d(x, w, groups=2, padding="same", stride=2)
    with pytest.raises(ValueError, match="exceeds"):
        F.conv1d(fd.zeros(1, 2, 2), fd.zeros(1, 2, 5))
    with pytest.raises(ValueError, match="input must be"):
        F.conv1d(fd.zeros(4), w)
    with pytest.raises(TypeError, match="dtype"):
        F.conv1d(x.double(), w, groups=2)
