"""Differential fuzzing of nn / optim against PyTorch in float64: hypothesis draws shapes (batch 1,
odd sizes, extra dims) and keyword arguments; values and the gradients w.r.t. every
differentiable input (random upstream gradient) must equal torch's. Modules, state_dict names,
default initialisation bounds, optimizer trajectories, lr schedules and gradient clipping too.
Bounded and deterministic (derandomize=True); FASTDL_FUZZ_EXAMPLES raises the example count."""
import math
import os

import numpy as np
import pytest

import fastdl as fd
import fastdl.nn as nn
import fastdl.nn.functional as F

torch = pytest.importorskip("torch")
pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

TF = torch.nn.functional
N = int(os.environ.get("FASTDL_FUZZ_EXAMPLES", "15"))
FUZZ = settings(max_examples=N, derandomize=True, deadline=None, database=None, print_blob=False,
                suppress_health_check=list(HealthCheck))
SEEDS = st.integers(0, 2**31 - 1)
RED = st.sampled_from(["mean", "sum", "none"])


def _np(t):
    if isinstance(t, (np.ndarray, float, int)):
        return np.asarray(t)
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t.detach().numpy())


def close(a, b, what="", rtol=1e-9, atol=1e-10):
    a, b = _np(a), _np(b)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs torch {b.shape}"
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=what)


def check(fd_fn, th_fn, inputs, diff, rng, what="", rtol=1e-9, atol=1e-10):
    """inputs: numpy arrays (or None); diff: indices of inputs to differentiate. Compares the
    output and, under a random upstream gradient, the gradient of every diff input."""
    inputs = [None if a is None else np.asarray(a, dtype=np.float64) for a in inputs]
    fi = [None if a is None else fd.tensor(a, requires_grad=i in diff) for i, a in enumerate(inputs)]
    ti = [None if a is None else torch.tensor(a, requires_grad=i in diff) for i, a in enumerate(inputs)]
    fo, to = fd_fn(*fi), th_fn(*ti)
    close(fo, to, what + " value", rtol, atol)
    if not diff:
        return
    up = np.asarray(rng.standard_normal(tuple(to.shape)))  # fd.tensor(float) is float32
    fo.backward(fd.tensor(up))
    to.backward(torch.tensor(up))
    for i in diff:
        tg = ti[i].grad if ti[i].grad is not None else torch.zeros_like(ti[i])
        fg = fi[i].grad if fi[i].grad is not None else fd.zeros(*tg.shape, dtype=fd.float64)
        close(fg, tg, f"{what} grad[{i}]", rtol, atol)


def shape(draw, lo=1, hi=4, min_dims=1, max_dims=4):
    return tuple(draw(st.lists(st.integers(lo, hi), min_size=min_dims, max_size=max_dims)))


# ---------------------------------------------------------------- activations, linear, norms

@FUZZ
@given(st.data(), SEEDS)
def test_activations(data, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape(data.draw, 1, 5, 0, 4)) * 3
    slope = data.draw(st.floats(-0.5, 2.0))
    approx = data.draw(st.sampled_from(["none", "tanh"]))
    cases = [(F.relu, TF.relu), (F.sigmoid, torch.sigmoid), (F.tanh, torch.tanh), (F.silu, TF.silu),
             (lambda a: F.leaky_relu(a, slope), lambda a: TF.leaky_relu(a, slope)),
             (lambda a: F.leaky_relu(a), lambda a: TF.leaky_relu(a)),
             (lambda a: F.gelu(a, approximate=approx), lambda a: TF.gelu(a, approximate=approx))]
    for k, (f, t) in enumerate(cases):
        check(f, t, [x], [0], rng, f"activation {k}")
    alpha = data.draw(st.sampled_from([1.0, 0.5, 2.0]))
    more = [("relu6", ()), ("hardsigmoid", ()), ("hardswish", ()), ("mish", ()), ("softsign", ()), ("logsigmoid", ()),
            ("tanhshrink", ()), ("selu", ()), ("celu", (alpha,)), ("elu", (alpha,)), ("hardtanh", (-0.5, 2.0)),
            ("threshold", (0.3, -2.0)), ("softplus", (alpha, 2.0))]
    for name, args in more:
        check(lambda a: getattr(F, name)(a, *args), lambda a: getattr(TF, name)(a, *args), [x], [0], rng, name)
    mods = [("ReLU6", ()), ("Hardsigmoid", ()), ("Hardswish", ()), ("Mish", ()), ("Softsign", ()), ("LogSigmoid", ()),
            ("Tanhshrink", ()), ("SELU", ()), ("CELU", (alpha,)), ("ELU", (alpha,)), ("Hardtanh", (-0.5, 2.0)),
            ("Threshold", (0.3, -2.0)), ("Softplus", (alpha, 2.0))]
    for name, args in mods:
        check(getattr(nn, name)(*args), getattr(torch.nn, name)(*args), [x], [0], rng, name)
    if x.ndim and x.shape[-1] % 2 == 0:
        check(lambda a: F.glu(a), lambda a: TF.glu(a), [x], [0], rng, "glu")
        check(nn.GLU(), torch.nn.GLU(), [x], [0], rng, "GLU")
    if x.ndim:
        check(lambda a: F.softmin(a, -1), lambda a: TF.softmin(a, -1), [x], [0], rng, "softmin")
        check(nn.Softmin(0), torch.nn.Softmin(0), [x], [0], rng, "Softmin")
    for fm, tm in [(nn.ReLU(), torch.nn.ReLU()), (nn.GELU(approx), torch.nn.GELU(approx)), (nn.SiLU(), torch.nn.SiLU()),
                   (nn.LeakyReLU(slope), torch.nn.LeakyReLU(slope)), (nn.Sigmoid(), torch.nn.Sigmoid()),
                   (nn.Tanh(), torch.nn.Tanh())]:
        check(fm, tm, [x], [0], rng, type(fm).__name__)


@FUZZ
@given(st.data(), SEEDS)
def test_softmax(data, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape(data.draw, 1, 5, 1, 4)) * 4
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1))
    for f, t in [(F.softmax, TF.softmax), (F.log_softmax, TF.log_softmax)]:
        check(lambda a: f(a, dim), lambda a: t(a, dim), [x], [0], rng, f"{t.__name__} dim={dim}")
        check(lambda a: f(a, dim=dim, dtype=fd.float64), lambda a: t(a, dim=dim, dtype=torch.float64), [x], [0], rng)
    check(lambda a: nn.Softmax(dim)(a), lambda a: torch.nn.Softmax(dim)(a), [x], [0], rng)
    check(lambda a: nn.LogSoftmax(dim)(a), lambda a: torch.nn.LogSoftmax(dim)(a), [x], [0], rng)
    x32 = x.astype(np.float32)
    fo = F.softmax(fd.tensor(x32), dim, dtype=fd.float64)
    assert fo.dtype == fd.float64
    close(fo, TF.softmax(torch.tensor(x32), dim, dtype=torch.float64), "softmax dtype=")


@FUZZ
@given(st.data(), SEEDS)
def test_linear(data, seed):
    rng = np.random.default_rng(seed)
    lead = shape(data.draw, 1, 4, 0, 3)
    i, o = data.draw(st.integers(1, 7)), data.draw(st.integers(1, 7))
    x, w, b = rng.standard_normal(lead + (i,)), rng.standard_normal((o, i)), rng.standard_normal(o)
    check(F.linear, TF.linear, [x, w, b], [0, 1, 2], rng, "linear")
    check(F.linear, TF.linear, [x, w], [0, 1], rng, "linear no bias")


@FUZZ
@given(st.data(), SEEDS)
def test_layer_norm(data, seed):
    rng = np.random.default_rng(seed)
    s = shape(data.draw, 1, 5, 1, 4)
    k = data.draw(st.integers(1, len(s)))
    ns = s[-k:]
    eps = data.draw(st.sampled_from([1e-5, 1e-3, 0.1]))
    affine = data.draw(st.sampled_from(["both", "weight", "none"]))
    x = rng.standard_normal(s) * 2 + 1
    w = rng.standard_normal(ns) if affine != "none" else None
    b = rng.standard_normal(ns) if affine == "both" else None
    diff = [0] + ([1] if w is not None else []) + ([2] if b is not None else [])
    check(lambda a, c, d: F.layer_norm(a, ns, c, d, eps), lambda a, c, d: TF.layer_norm(a, ns, c, d, eps),
          [x, w, b], diff, rng, f"layer_norm {ns}", rtol=1e-8, atol=1e-9)
    if len(ns) == 1:
        check(lambda a: F.layer_norm(a, ns[0], eps=eps), lambda a: TF.layer_norm(a, ns, eps=eps), [x], [0], rng)


@FUZZ
@given(st.data(), SEEDS)
def test_rms_and_group_norm(data, seed):
    rng = np.random.default_rng(seed)
    s = shape(data.draw, 1, 5, 1, 4)
    k = data.draw(st.integers(1, len(s)))
    ns = s[-k:]
    eps = data.draw(st.sampled_from([None, 1e-5, 0.1]))
    x = rng.standard_normal(s) * 2 + 0.5
    w = rng.standard_normal(ns) if data.draw(st.booleans()) else None
    check(lambda a, c: F.rms_norm(a, ns, c, eps), lambda a, c: TF.rms_norm(a, ns, c, eps), [x, w],
          [0] + ([1] if w is not None else []), rng, f"rms_norm {ns}", rtol=1e-8, atol=1e-9)
    check(nn.RMSNorm(ns, eps).double(), torch.nn.RMSNorm(ns, eps).double(), [x], [0], rng, "RMSNorm", 1e-8, 1e-9)
    G = data.draw(st.sampled_from([1, 2, 3]))
    C = G * data.draw(st.integers(1, 3))
    x = rng.standard_normal((data.draw(st.integers(1, 3)), C) + shape(data.draw, 1, 3, 0, 2)) * 2 + 1
    w, b = rng.standard_normal(C), rng.standard_normal(C)
    if x.size // G == 1:  # one value per group: both refuse
        with pytest.raises(ValueError):
            F.group_norm(fd.tensor(x), G)
        return
    check(lambda a, c, d: F.group_norm(a, G, c, d, 1e-3), lambda a, c, d: TF.group_norm(a, G, c, d, 1e-3),
          [x, w, b], [0, 1, 2], rng, f"group_norm G={G}", rtol=1e-8, atol=1e-9)
    check(nn.GroupNorm(G, C, affine=False).double(), torch.nn.GroupNorm(G, C, affine=False).double(), [x], [0], rng,
          "GroupNorm", rtol=1e-8, atol=1e-9)


@FUZZ
@given(st.data(), SEEDS)
def test_batch_norm_functional(data, seed):
    rng = np.random.default_rng(seed)
    s = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))) + shape(data.draw, 1, 3, 0, 2)
    if s[0] * int(np.prod(s[2:])) == 1:
        s = (2,) + s[1:]
    C = s[1]
    x = rng.standard_normal(s) * 2 + 0.5
    w, b = rng.standard_normal(C), rng.standard_normal(C)
    rm, rv = rng.standard_normal(C), rng.random(C) + 0.5
    mom, eps = data.draw(st.sampled_from([0.1, 0.3, 1.0])), data.draw(st.sampled_from([1e-5, 0.01]))
    for training in (True, False):
        frm, frv, trm, trv = fd.tensor(rm), fd.tensor(rv), torch.tensor(rm), torch.tensor(rv)
        check(lambda a, c, d: F.batch_norm(a, frm, frv, c, d, training, mom, eps),
              lambda a, c, d: TF.batch_norm(a, trm, trv, c, d, training, mom, eps),
              [x, w, b], [0, 1, 2], rng, f"batch_norm training={training}", rtol=1e-8, atol=1e-9)
        close(frm, trm, "running_mean")
        close(frv, trv, "running_var")
    check(lambda a: F.batch_norm(a, None, None, training=True), lambda a: TF.batch_norm(a, None, None, training=True),
          [x], [0], rng, "batch_norm no stats", rtol=1e-8, atol=1e-9)


@FUZZ
@given(st.data(), SEEDS)
def test_embedding_one_hot(data, seed):
    rng = np.random.default_rng(seed)
    n, d = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 5))
    idx = rng.integers(0, n, shape(data.draw, 1, 4, 1, 3))
    pad = data.draw(st.sampled_from([None, 0, n - 1, -1]))
    w = rng.standard_normal((n, d))
    fi, ti = fd.tensor(idx), torch.tensor(idx)
    check(lambda a: F.embedding(fi, a, padding_idx=pad), lambda a: TF.embedding(ti, a, padding_idx=pad),
          [w], [0], rng, f"embedding pad={pad}")
    kw = dict(max_norm=data.draw(st.sampled_from([None, 0.5, 1.5])), norm_type=data.draw(st.sampled_from([2.0, 1.0, 3.0])),
              scale_grad_by_freq=data.draw(st.booleans()))
    check(lambda a: F.embedding(fi, a, pad, **kw), lambda a: TF.embedding(ti, a, pad, **kw), [w], [0], rng,
          f"embedding {kw}")
    fm, tm = nn.Embedding(n, d, padding_idx=pad, **kw).double(), torch.nn.Embedding(n, d, padding_idx=pad, **kw).double()
    _copy_torch(fm, tm)
    close(fm(fi), tm(ti), "Embedding module")
    close(fm.weight, tm.weight, "Embedding renormed weight")
    close(F.one_hot(fi), TF.one_hot(ti), "one_hot")
    close(F.one_hot(fi, n + 2), TF.one_hot(ti, n + 2), "one_hot num_classes")
    assert F.one_hot(fi).dtype == fd.int64


def test_dropout():
    rng = np.random.default_rng(0)
    fd.manual_seed(0)
    x = rng.standard_normal((3, 5, 7))
    check(lambda a: F.dropout(a, 0.0), lambda a: TF.dropout(a, 0.0), [x], [0], rng, "dropout p=0")
    check(lambda a: F.dropout(a, 0.7, training=False), lambda a: TF.dropout(a, 0.7, training=False), [x], [0], rng)
    check(lambda a: F.dropout(a, 1.0), lambda a: TF.dropout(a, 1.0), [x], [0], rng, "dropout p=1")
    m = nn.Dropout(0.3).eval()
    close(m(fd.tensor(x)), x, "Dropout eval")
    ones = fd.ones(200, 500, dtype=fd.float64, requires_grad=True)
    for p in (0.1, 0.5, 0.9):
        y = F.dropout(ones, p)
        a = np.asarray(y.detach().numpy())
        kept = a != 0
        assert abs(kept.mean() - (1 - p)) < 0.01, (p, kept.mean())
        np.testing.assert_allclose(a[kept], 1 / (1 - p))
        ones.grad = None
        y.sum().backward()
        np.testing.assert_allclose(ones.grad.numpy(), a)  # the mask, scaled
    for fn, shp, lead in [(F.dropout2d, (40, 50, 3, 2), 2), (F.dropout1d, (2000, 3), 1), (F.dropout3d, (2000, 2, 2, 1), 1)]:
        y = np.asarray(fn(fd.ones(*shp, dtype=fd.float64), 0.4).numpy())
        flat = y.reshape(shp[:lead] + (-1,))
        assert (flat == flat[..., :1]).all()  # one draw per channel
        assert abs((flat[..., 0] != 0).mean() - 0.6) < 0.05 and set(np.unique(flat)) <= {0.0, 1 / 0.6}
    close(F.dropout2d(fd.tensor(x), 0.4, training=False), x, "channel dropout eval")
    close(F.dropout1d(fd.tensor(x), 0.0), x, "channel dropout p=0")
    assert repr(nn.Dropout2d(0.3)) == repr(torch.nn.Dropout2d(0.3))


# ---------------------------------------------------------------- losses

def _ce_case(data, rng):
    N, C = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 6))
    extra = shape(data.draw, 1, 3, 0, 2)
    x = rng.standard_normal((N, C) + extra) * 2
    return N, C, extra, x


@FUZZ
@given(st.data(), SEEDS)
def test_cross_entropy_indices(data, seed):
    rng = np.random.default_rng(seed)
    N, C, extra, x = _ce_case(data, rng)
    ignore = data.draw(st.sampled_from([-100, 0, C - 1]))
    t = rng.integers(0, C, (N,) + extra)
    if data.draw(st.booleans()):
        t[rng.random(t.shape) < 0.3] = ignore
    if (t == ignore).all() and data.draw(st.booleans()):
        t.flat[0] = (ignore + 1) % C if ignore >= 0 else 0
    w = rng.random(C) + 0.2 if data.draw(st.booleans()) else None
    kw = dict(ignore_index=ignore, reduction=data.draw(RED), label_smoothing=data.draw(st.sampled_from([0.0, 0.1, 0.5])))
    ft, tt = fd.tensor(t), torch.tensor(t)
    check(lambda a, c: F.cross_entropy(a, ft, weight=c, **kw), lambda a, c: TF.cross_entropy(a, tt, weight=c, **kw),
          [x, w], [0], rng, f"cross_entropy {kw} w={w is not None}", rtol=1e-8, atol=1e-9)
    m = nn.CrossEntropyLoss(weight=None if w is None else fd.tensor(w), **kw)
    tm = torch.nn.CrossEntropyLoss(weight=None if w is None else torch.tensor(w), **kw)
    check(lambda a: m(a, ft), lambda a: tm(a, tt), [x], [0], rng, "CrossEntropyLoss", rtol=1e-8, atol=1e-9)
    if not extra:  # unbatched (C,) input with a scalar target
        check(lambda a: F.cross_entropy(a, ft[0], **kw), lambda a: TF.cross_entropy(a, tt[0], **kw),
              [x[0]], [0], rng, "cross_entropy unbatched", rtol=1e-8, atol=1e-9)


@FUZZ
@given(st.data(), SEEDS)
def test_cross_entropy_probs(data, seed):
    rng = np.random.default_rng(seed)
    N, C, extra, x = _ce_case(data, rng)
    p = rng.random((N, C) + extra)
    p /= p.sum(1, keepdims=True)
    w = rng.random(C) + 0.2 if data.draw(st.booleans()) else None
    kw = dict(reduction=data.draw(RED), label_smoothing=data.draw(st.sampled_from([0.0, 0.2])))
    check(lambda a, b, c: F.cross_entropy(a, b, weight=c, **kw), lambda a, b, c: TF.cross_entropy(a, b, weight=c, **kw),
          [x, p, w], [0, 1], rng, f"cross_entropy probs {kw}", rtol=1e-8, atol=1e-9)


@FUZZ
@given(st.data(), SEEDS)
def test_nll_loss(data, seed):
    rng = np.random.default_rng(seed)
    N, C, extra, x = _ce_case(data, rng)
    ignore = data.draw(st.sampled_from([-100, 0]))
    t = rng.integers(0, C, (N,) + extra)
    t[rng.random(t.shape) < 0.2] = ignore
    w = rng.random(C) + 0.2 if data.draw(st.booleans()) else None
    kw = dict(ignore_index=ignore, reduction=data.draw(RED))
    ft, tt = fd.tensor(t), torch.tensor(t)
    check(lambda a, c: F.nll_loss(a, ft, c, **kw), lambda a, c: TF.nll_loss(a, tt, c, **kw), [x, w], [0], rng,
          f"nll_loss {kw}", rtol=1e-8, atol=1e-9)
    m = nn.NLLLoss(None if w is None else fd.tensor(w), **kw)
    tm = torch.nn.NLLLoss(None if w is None else torch.tensor(w), **kw)
    check(lambda a: m(a, ft), lambda a: tm(a, tt), [x], [0], rng, "NLLLoss", rtol=1e-8, atol=1e-9)
    if not extra:  # unbatched (C,) input with a scalar target
        check(lambda a: F.nll_loss(a, ft[0], **kw), lambda a: TF.nll_loss(a, tt[0], **kw), [x[0]], [0], rng,
              "nll_loss unbatched", rtol=1e-8, atol=1e-9)


@FUZZ
@given(st.data(), SEEDS)
def test_pointwise_losses(data, seed):
    rng = np.random.default_rng(seed)
    s = shape(data.draw, 1, 4, 0, 4)
    x, y = rng.standard_normal(s) * 2, rng.standard_normal(s) * 2
    red = data.draw(RED)
    delta = data.draw(st.sampled_from([1.0, 0.5, 2.5]))
    beta = data.draw(st.sampled_from([1.0, 0.3, 0.0, 2.0]))
    cases = [("mse_loss", {}), ("l1_loss", {}), ("huber_loss", {"delta": delta}), ("smooth_l1_loss", {"beta": beta})]
    for name, kw in cases:
        check(lambda a, b: getattr(F, name)(a, b, reduction=red, **kw),
              lambda a, b: getattr(TF, name)(a, b, reduction=red, **kw), [x, y], [0, 1], rng, f"{name} {red} {kw}")
    w = np.asarray(rng.random(s) + 0.1)
    for name in ("mse_loss", "l1_loss", "huber_loss"):
        check(lambda a, b, c: getattr(F, name)(a, b, reduction=red, weight=c),
              lambda a, b, c: getattr(TF, name)(a, b, reduction=red, weight=c), [x, y, w], [0, 1, 2], rng,
              f"{name} weight {red}")
    for fm, tm in [(nn.MSELoss(reduction=red), torch.nn.MSELoss(reduction=red)), (nn.L1Loss(reduction=red), torch.nn.L1Loss(reduction=red)),
                   (nn.HuberLoss(red, delta), torch.nn.HuberLoss(red, delta)), (nn.MSELoss(None, None, red), torch.nn.MSELoss(None, None, red)),
                   (nn.SmoothL1Loss(reduction=red, beta=beta), torch.nn.SmoothL1Loss(reduction=red, beta=beta))]:
        check(fm, tm, [x, y], [0, 1], rng, type(fm).__name__)


@FUZZ
@given(st.data(), SEEDS)
def test_bce(data, seed):
    rng = np.random.default_rng(seed)
    s = shape(data.draw, 1, 4, 1, 4)
    x = rng.standard_normal(s) * 3
    p = 1 / (1 + np.exp(-x))
    if data.draw(st.booleans()):  # saturated probabilities, as float32 sigmoid produces
        p.flat[0] = data.draw(st.sampled_from([0.0, 1.0, 1e-13]))
    y = rng.random(s)
    red = data.draw(RED)
    k = data.draw(st.integers(0, len(s)))
    w = np.asarray(rng.random(s[len(s) - k:]) + 0.1) if data.draw(st.booleans()) else None  # broadcast weight
    pw = rng.random(s[-1:]) * 3 if data.draw(st.booleans()) else None
    check(lambda a, b, c: F.binary_cross_entropy(a, b, c, reduction=red),
          lambda a, b, c: TF.binary_cross_entropy(a, b, c, reduction=red), [p, y, w], [0] + ([1] if 0 < p.flat[0] < 1
                                                                                             else []), rng,
          f"bce {red}", rtol=1e-8, atol=1e-9)
    check(lambda a, b, c, d: F.binary_cross_entropy_with_logits(a, b, c, reduction=red, pos_weight=d),
          lambda a, b, c, d: TF.binary_cross_entropy_with_logits(a, b, c, reduction=red, pos_weight=d),
          [x, y, w, pw], [0, 1], rng, f"bce_logits {red}", rtol=1e-8, atol=1e-9)
    fm = nn.BCEWithLogitsLoss(None if w is None else fd.tensor(w), reduction=red,
                              pos_weight=None if pw is None else fd.tensor(pw))
    tm = torch.nn.BCEWithLogitsLoss(None if w is None else torch.tensor(w), reduction=red,
                                    pos_weight=None if pw is None else torch.tensor(pw))
    check(fm, tm, [x, y], [0, 1], rng, "BCEWithLogitsLoss", rtol=1e-8, atol=1e-9)
    check(nn.BCELoss(reduction=red), torch.nn.BCELoss(reduction=red), [p, y], [0], rng, "BCELoss")


@FUZZ
@given(st.data(), SEEDS)
def test_kl_div(data, seed):
    rng = np.random.default_rng(seed)
    s = shape(data.draw, 1, 4, 1, 4)
    inp = np.log(rng.random(s) + 0.05)
    log_target = data.draw(st.booleans())
    t = rng.random(s)
    if not log_target:
        t[rng.random(s) < 0.2] = 0.0
    else:
        t = np.log(t + 0.05)
    red = data.draw(st.sampled_from(["mean", "sum", "none", "batchmean"]))
    check(lambda a, b: F.kl_div(a, b, reduction=red, log_target=log_target),
          lambda a, b: TF.kl_div(a, b, reduction=red, log_target=log_target), [inp, t], [0, 1], rng,
          f"kl_div {red} log_target={log_target}")
    check(nn.KLDivLoss(reduction=red, log_target=log_target), torch.nn.KLDivLoss(reduction=red, log_target=log_target),
          [inp, t], [0, 1], rng)


# ---------------------------------------------------------------- modules

def _copy_torch(fm, tm):
    """Load torch's state_dict (through numpy) into the fastdl module; key sets must agree."""
    sd = {k: fd.tensor(v.detach().numpy().copy()) for k, v in tm.state_dict().items()}
    assert list(fm.state_dict().keys()) == list(sd.keys())
    fm.load_state_dict(sd)


@FUZZ
@given(st.data(), SEEDS)
def test_batch_norm_modules(data, seed):
    rng = np.random.default_rng(seed)
    two_d = data.draw(st.booleans())
    C = data.draw(st.integers(1, 4))
    kw = dict(momentum=data.draw(st.sampled_from([0.1, None, 0.5])), affine=data.draw(st.booleans()),
              bias=data.draw(st.booleans()),
              track_running_stats=data.draw(st.booleans()), eps=data.draw(st.sampled_from([1e-5, 1e-2])))
    fm = (nn.BatchNorm2d if two_d else nn.BatchNorm1d)(C, **kw).double()
    tm = (torch.nn.BatchNorm2d if two_d else torch.nn.BatchNorm1d)(C, **kw).double()
    assert list(fm.state_dict().keys()) == list(tm.state_dict().keys())
    if kw["affine"]:
        with torch.no_grad():
            tm.weight.copy_(torch.tensor(rng.standard_normal(C)))
            if tm.bias is not None:
                tm.bias.copy_(torch.tensor(rng.standard_normal(C)))
    _copy_torch(fm, tm)
    for step in range(4):
        if two_d:
            s = (data.draw(st.integers(1, 3)), C, data.draw(st.integers(1, 3)), data.draw(st.integers(2, 3)))
        else:
            s = (data.draw(st.integers(2, 4)), C) + ((data.draw(st.integers(1, 3)),) if data.draw(st.booleans()) else ())
        x = rng.standard_normal(s) * 2 + 1
        check(fm, tm, [x], [0], rng, f"BatchNorm step {step} {kw}", rtol=1e-8, atol=1e-9)
    for k, v in tm.state_dict().items():
        close(fm.state_dict()[k], v, f"BatchNorm {k}")
    for (k, fp), (_, tp) in zip(fm.named_parameters(), tm.named_parameters()):
        close(fp.grad, tp.grad, f"BatchNorm grad {k}", rtol=1e-8, atol=1e-9)
    fm.eval()
    tm.eval()
    x = rng.standard_normal((2, C, 2, 3) if two_d else (3, C))
    check(fm, tm, [x], [0], rng, "BatchNorm eval", rtol=1e-8, atol=1e-9)


@FUZZ
@given(st.data(), SEEDS)
def test_modules_state_dict(data, seed):
    rng = np.random.default_rng(seed)
    d_in, h, d_out = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6)), data.draw(st.integers(1, 4))
    bias = data.draw(st.booleans())

    def build(m):
        class Net(m.Module):
            def __init__(self):
                super().__init__()
                self.emb = m.Embedding(5, d_in, padding_idx=1)
                self.body = m.Sequential(m.Linear(d_in, h, bias=bias), m.LayerNorm(h), m.GELU(), m.Dropout(0.2),
                                         m.ModuleList([m.Linear(h, h), m.Tanh()]))
                self.heads = m.ModuleDict({"b": m.BatchNorm1d(h), "a": m.Linear(h, d_out)})

            def forward(self, idx):
                z = self.emb(idx)
                z = self.body[0](z)
                z = self.body[2](self.body[1](z))
                z = self.body[3](z)
                z = self.body[4][1](self.body[4][0](z))
                return self.heads["a"](self.heads["b"](z))
        return Net().double()
    fm, tm = build(nn), build(torch.nn)
    assert list(fm.state_dict().keys()) == list(tm.state_dict().keys())
    assert [k for k, _ in fm.named_parameters()] == [k for k, _ in tm.named_parameters()]
    with torch.no_grad():
        for p in tm.parameters():
            p.copy_(torch.tensor(rng.standard_normal(tuple(p.shape))))
    _copy_torch(fm, tm)
    idx = rng.integers(0, 5, data.draw(st.integers(2, 6)))
    fm.body[3].p = tm.body[3].p = 0.0  # dropout off, batch norm still in training mode
    fo, to = fm(fd.tensor(idx)), tm(torch.tensor(idx))
    close(fo, to, "Net train", rtol=1e-8, atol=1e-9)
    up = np.asarray(rng.standard_normal(tuple(to.shape)))  # fd.tensor(float) is float32
    fo.backward(fd.tensor(up))
    to.backward(torch.tensor(up))
    for (k, fp), (_, tp) in zip(fm.named_parameters(), tm.named_parameters()):
        close(fp.grad if fp.grad is not None else np.zeros(tuple(tp.shape)), tp.grad if tp.grad is not None else
              np.zeros(tuple(tp.shape)), f"Net grad {k}", rtol=1e-7, atol=1e-8)
    fm.eval()
    tm.eval()
    close(fm(fd.tensor(idx)), tm(torch.tensor(idx)), "Net eval")


def test_default_init_bounds():
    torch.manual_seed(0)
    fd.manual_seed(0)
    for i, o in [(1, 3), (7, 5), (300, 40)]:
        fl, tl = nn.Linear(i, o), torch.nn.Linear(i, o)
        for name in ("weight", "bias"):
            f, t = getattr(fl, name).detach().numpy(), getattr(tl, name).detach().numpy()
            bound = 1 / math.sqrt(i)
            assert f.shape == t.shape and np.abs(f).max() <= bound + 1e-7
            if f.size > 1000:
                assert np.abs(f).max() > 0.95 * bound and abs(f.std() - t.std()) < 0.05 * bound
    e = nn.Embedding(400, 30, padding_idx=3).weight.detach().numpy()
    assert (e[3] == 0).all() and abs(e.std() - 1) < 0.03 and abs(e.mean()) < 0.03
    ln, tln = nn.LayerNorm((3, 4)), torch.nn.LayerNorm((3, 4))
    close(ln.weight, tln.weight.float())
    close(ln.bias, tln.bias.float())
    bn = nn.BatchNorm2d(3)
    for k, v in torch.nn.BatchNorm2d(3).state_dict().items():
        close(bn.state_dict()[k], v, k)
    assert nn.Linear(3, 4).weight.dtype == fd.float32


# ---------------------------------------------------------------- optimizers

OPTS = {
    "SGD": lambda d: dict(lr=d(st.sampled_from([0.01, 0.1])), momentum=d(st.sampled_from([0.0, 0.9])),
                          dampening=d(st.sampled_from([0.0, 0.3])), weight_decay=d(st.sampled_from([0.0, 0.01])),
                          maximize=d(st.booleans())),
    "Adam": lambda d: dict(lr=d(st.sampled_from([1e-3, 0.05])), betas=d(st.sampled_from([(0.9, 0.999), (0.5, 0.9)])),
                           eps=d(st.sampled_from([1e-8, 1e-3])), weight_decay=d(st.sampled_from([0.0, 0.1])),
                           amsgrad=d(st.booleans()), maximize=d(st.booleans()),
                           decoupled_weight_decay=d(st.booleans())),
    "AdamW": lambda d: dict(lr=d(st.sampled_from([1e-3, 0.05])), weight_decay=d(st.sampled_from([0.0, 0.01, 0.3])),
                            amsgrad=d(st.booleans()), maximize=d(st.booleans())),
    "Adagrad": lambda d: dict(lr=d(st.sampled_from([0.01, 0.1])), lr_decay=d(st.sampled_from([0.0, 0.05])),
                              initial_accumulator_value=d(st.sampled_from([0.0, 0.5])),
                              weight_decay=d(st.sampled_from([0.0, 0.1])), maximize=d(st.booleans())),
    "RMSprop": lambda d: dict(lr=d(st.sampled_from([0.01, 0.001])), alpha=d(st.sampled_from([0.99, 0.8])),
                              momentum=d(st.sampled_from([0.0, 0.9])), centered=d(st.booleans()),
                              weight_decay=d(st.sampled_from([0.0, 0.1])), maximize=d(st.booleans())),
}


@FUZZ
@given(st.data(), st.sampled_from(sorted(OPTS)), SEEDS)
def test_optimizer_trajectory(data, name, seed):
    rng = np.random.default_rng(seed)
    shapes = [shape(data.draw, 1, 5, 0, 3) for _ in range(data.draw(st.integers(2, 4)))]
    init = [np.asarray(rng.standard_normal(s)) for s in shapes]
    fp = [fd.tensor(a, requires_grad=True) for a in init]
    tp = [torch.tensor(a, requires_grad=True) for a in init]
    split = data.draw(st.integers(1, len(init) - 1))
    g0, g1 = OPTS[name](data.draw), OPTS[name](data.draw)
    if name == "SGD" and data.draw(st.booleans()):
        g1.update(momentum=0.9, dampening=0.0, nesterov=True)
    if data.draw(st.booleans()):  # named parameters, as from named_parameters()
        fo = getattr(fd.optim, name)([dict(params=[(f"p{i}", p) for i, p in enumerate(fp[:split])], **g1),
                                      dict(params=[(f"q{i}", p) for i, p in enumerate(fp[split:])])], **g0)
        to = getattr(torch.optim, name)([dict(params=[(f"p{i}", p) for i, p in enumerate(tp[:split])], **g1),
                                         dict(params=[(f"q{i}", p) for i, p in enumerate(tp[split:])])], **g0)
        assert [g["param_names"] for g in fo.param_groups] == [g["param_names"] for g in to.param_groups]
    else:
        fo = getattr(fd.optim, name)([dict(params=fp[:split], **g1), dict(params=fp[split:])], **g0)
        to = getattr(torch.optim, name)([dict(params=tp[:split], **g1), dict(params=tp[split:])], **g0)
    targets = [np.asarray(rng.standard_normal(s)) for s in shapes]
    for step in range(22):
        for p in fp + tp:
            p.grad = None
        skip = step % 7 == 3  # a parameter with no grad this step
        for k, (f, t, y) in enumerate(zip(fp, tp, targets)):
            if skip and k == 0:
                continue
            c = rng.standard_normal()
            ((f - fd.tensor(y)) ** 2 * c + f.sin()).sum().backward()
            ((t - torch.tensor(y)) ** 2 * c + t.sin()).sum().backward()
        fo.step()
        to.step()
        for k, (f, t) in enumerate(zip(fp, tp)):
            close(f, t, f"{name} step {step} param {k} {g0} {g1}", rtol=1e-9, atol=1e-11)


# ---------------------------------------------------------------- lr schedulers, clipping

def _sched_pair(make):
    fp, tp = fd.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    fo = fd.optim.SGD([dict(params=[fp]), dict(params=[fd.zeros(1, requires_grad=True)], lr=0.5)], lr=0.1, momentum=0.9)
    to = torch.optim.SGD([dict(params=[tp]), dict(params=[torch.zeros(1, requires_grad=True)], lr=0.5)], lr=0.1,
                         momentum=0.9)
    return fo, to, make(fd.optim, fo), make(torch.optim, to)


def _draw_sched(name, d):
    """(class name, args, kwargs) of one scheduler with drawn arguments, built alike for both."""
    lst, flt, it = lambda *v: d(st.sampled_from(v)), None, lambda lo, hi: d(st.integers(lo, hi))
    if name == "StepLR":
        return (it(1, 5),), dict(gamma=lst(0.1, 0.5))
    if name == "MultiStepLR":
        return (sorted(d(st.lists(st.integers(1, 20), max_size=4))),), dict(gamma=lst(0.1, 0.5))
    if name == "ExponentialLR":
        return (lst(0.9, 0.5),), {}
    if name == "CosineAnnealingLR":
        return (it(1, 10),), dict(eta_min=lst(0.0, 0.01))
    if name == "LinearLR":
        return (lst(1 / 3, 0.1), lst(1.0, 0.5), it(1, 8)), {}
    if name == "OneCycleLR":
        return (), dict(total_steps=30, max_lr=lst(1.0, [1.0, 2.0]), pct_start=lst(0.3, 0.5),
                        anneal_strategy=lst("cos", "linear"), three_phase=d(st.booleans()),
                        cycle_momentum=d(st.booleans()), div_factor=lst(25.0, 10.0),
                        final_div_factor=lst(1e4, 10.0))
    if name == "ConstantLR":
        return (lst(0.5, 0.1), it(1, 8)), {}
    if name == "PolynomialLR":
        return (it(1, 12), lst(1.0, 2.0, 0.5)), {}
    if name == "CyclicLR":
        return (lst(0.01, [0.01, 0.05]), lst(1.0, 0.3)), dict(
            step_size_up=it(1, 6), step_size_down=lst(None, 3), mode=lst("triangular", "triangular2", "exp_range"),
            gamma=lst(1.0, 0.9), cycle_momentum=d(st.booleans()))
    if name == "CosineAnnealingWarmRestarts":
        return (it(1, 5), it(1, 3), lst(0.0, 0.01)), {}
    del flt
    return (it(1, 8),), {}


SCHEDS = ["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR", "OneCycleLR", "SequentialLR",
          "ConstantLR", "PolynomialLR", "CosineAnnealingWarmRestarts", "ChainedScheduler", "CyclicLR"]


def _make_sched(o, opt, name, args, kw):
    S = o.lr_scheduler
    if name == "SequentialLR":
        m = args[0]
        return S.SequentialLR(opt, [S.LinearLR(opt, 0.1, total_iters=m), S.ExponentialLR(opt, 0.9)], milestones=[m])
    if name == "ChainedScheduler":
        return S.ChainedScheduler([S.ConstantLR(opt, 0.1, total_iters=args[0]), S.ExponentialLR(opt, 0.9)])
    return getattr(S, name)(opt, *args, **kw)


@FUZZ
@given(st.data(), st.sampled_from(SCHEDS))
def test_lr_scheduler(data, name):
    args, kw = _draw_sched(name, data.draw)
    fo, to, fs, ts = _sched_pair(lambda o, opt: _make_sched(o, opt, name, args, kw))
    for step in range(29):
        assert fs.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-12, abs=1e-15), (name, step)
        for fg, tg in zip(fo.param_groups, to.param_groups):
            assert fg["lr"] == pytest.approx(tg["lr"], rel=1e-12, abs=1e-15), (name, step)
            assert fg["momentum"] == pytest.approx(tg["momentum"], rel=1e-12), (name, step)
        fo.step()
        to.step()
        fs.step()
        ts.step()


@FUZZ
@given(st.data())
def test_reduce_on_plateau(data):
    kw = dict(mode=data.draw(st.sampled_from(["min", "max"])), factor=data.draw(st.sampled_from([0.1, 0.5])),
              patience=data.draw(st.integers(0, 3)), threshold=data.draw(st.sampled_from([1e-4, 0.1])),
              threshold_mode=data.draw(st.sampled_from(["rel", "abs"])), cooldown=data.draw(st.integers(0, 2)),
              min_lr=data.draw(st.sampled_from([0.0, 1e-3, [1e-3, 0.1]])), eps=1e-8)
    fo, to, fs, ts = _sched_pair(lambda o, opt: o.lr_scheduler.ReduceLROnPlateau(opt, **kw))
    metrics = data.draw(st.lists(st.sampled_from([1.0, 0.99, 0.5, 2.0, 0.95, 0.3]), min_size=20, max_size=20))
    for m in metrics:
        fs.step(m)
        ts.step(m)
        assert [g["lr"] for g in fo.param_groups] == pytest.approx([g["lr"] for g in to.param_groups], rel=1e-12)
        assert fs.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-12)


@FUZZ
@given(st.data(), SEEDS)
def test_clip_grad_norm(data, seed):
    rng = np.random.default_rng(seed)
    shapes = [shape(data.draw, 1, 4, 0, 3) for _ in range(data.draw(st.integers(1, 3)))]
    grads = [np.asarray(rng.standard_normal(s) * 3) for s in shapes]
    norm_type = data.draw(st.sampled_from([2, 2.0, 1, float("inf"), 3.0]))
    max_norm = data.draw(st.sampled_from([0.1, 1.0, 100.0]))
    fp = [fd.zeros(*s, dtype=fd.float64, requires_grad=True) for s in shapes]
    tp = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in shapes]
    for f, t, g in zip(fp, tp, grads):
        f.grad, t.grad = fd.tensor(g), torch.tensor(g)
    fn = nn.utils.clip_grad_norm_(fp, max_norm, norm_type)
    tn = torch.nn.utils.clip_grad_norm_(tp, max_norm, norm_type)
    close(fn, tn, "total norm")
    for f, t in zip(fp, tp):
        close(f.grad, t.grad, f"clipped grad {norm_type}")
    gs = [np.asarray(rng.standard_normal(sh)) for sh in shapes]
    close(nn.utils.get_total_norm([fd.tensor(g) for g in gs], norm_type),
          torch.nn.utils.get_total_norm([torch.tensor(g) for g in gs], norm_type), "get_total_norm")
    v = data.draw(st.sampled_from([0.5, 2.0]))
    nn.utils.clip_grad_value_(fp, v)
    torch.nn.utils.clip_grad_value_(tp, v)
    for f, t in zip(fp, tp):
        close(f.grad, t.grad, "clip_grad_value_")


# ---------------------------------------------------------------- distances, more losses

@FUZZ
@given(st.data(), SEEDS)
def test_distances_and_more_losses(data, seed):
    rng = np.random.default_rng(seed)
    N, D = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 6))
    a, b, c = (rng.standard_normal((N, D)) for _ in range(3))
    red = data.draw(RED)
    dim = data.draw(st.sampled_from([0, 1, -1]))
    check(lambda x, y: F.cosine_similarity(x, y, dim), lambda x, y: TF.cosine_similarity(x, y, dim), [a, b], [0, 1], rng,
          "cosine_similarity")
    check(nn.CosineSimilarity(dim), torch.nn.CosineSimilarity(dim), [a, b], [0, 1], rng, "CosineSimilarity")
    p = data.draw(st.sampled_from([2.0, 1.0, 3.0]))
    keep = data.draw(st.booleans())
    check(lambda x, y: F.pairwise_distance(x, y, p, keepdim=keep), lambda x, y: TF.pairwise_distance(x, y, p, keepdim=keep),
          [a, b], [0, 1], rng, "pairwise_distance")
    sign = np.where(rng.random(N) < 0.5, -1.0, 1.0)
    margin = data.draw(st.sampled_from([0.0, 0.5, 1.0]))
    check(lambda x, y, t: F.margin_ranking_loss(x, y, t, margin, reduction=red),
          lambda x, y, t: TF.margin_ranking_loss(x, y, t, margin, reduction=red), [a[:, 0], b[:, 0], sign], [0, 1], rng,
          "margin_ranking_loss")
    s2 = np.where(rng.random((N, D)) < 0.5, -1.0, 1.0)
    check(lambda x, t: F.hinge_embedding_loss(x, t, margin + 0.5, reduction=red),
          lambda x, t: TF.hinge_embedding_loss(x, t, margin + 0.5, reduction=red), [a, s2], [0], rng, "hinge_embedding")
    check(lambda x, t: F.soft_margin_loss(x, t, reduction=red), lambda x, t: TF.soft_margin_loss(x, t, reduction=red),
          [a, s2], [0], rng, "soft_margin_loss")
    check(lambda x, y, t: F.cosine_embedding_loss(x, y, t, margin, reduction=red),
          lambda x, y, t: TF.cosine_embedding_loss(x, y, t, margin, reduction=red), [a, b, sign], [0, 1], rng,
          "cosine_embedding_loss")
    swap = data.draw(st.booleans())
    check(lambda x, y, z: F.triplet_margin_loss(x, y, z, margin + 0.5, p, swap=swap, reduction=red),
          lambda x, y, z: TF.triplet_margin_loss(x, y, z, margin + 0.5, p, swap=swap, reduction=red), [a, b, c],
          [0, 1, 2], rng, "triplet_margin_loss")
    y01 = (rng.random((N, D)) < 0.5).astype(np.float64)
    w = np.asarray(rng.random(D) + 0.1) if data.draw(st.booleans()) else None
    check(lambda x, t, ww: F.multilabel_soft_margin_loss(x, t, ww, reduction=red),
          lambda x, t, ww: TF.multilabel_soft_margin_loss(x, t, ww, reduction=red), [a, y01, w], [0], rng,
          "multilabel_soft_margin_loss")
    counts = rng.integers(0, 5, (N, D)).astype(np.float64)
    log_input, full = data.draw(st.booleans()), data.draw(st.booleans())
    inp = a if log_input else np.abs(a) + 0.1
    check(lambda x, t: F.poisson_nll_loss(x, t, log_input, full, reduction=red),
          lambda x, t: TF.poisson_nll_loss(x, t, log_input, full, reduction=red), [inp, counts], [0], rng,
          "poisson_nll_loss")
    var = np.abs(rng.standard_normal(data.draw(st.sampled_from([(N, D), (N,), (N, 1)])))) + 1e-7
    check(lambda x, t, v: F.gaussian_nll_loss(x, t, v, full, eps=1e-3, reduction=red),
          lambda x, t, v: TF.gaussian_nll_loss(x, t, v, full, eps=1e-3, reduction=red), [a, b, var], [0, 1, 2], rng,
          "gaussian_nll_loss")
    lam = data.draw(st.sampled_from([0.5, 1.0]))
    check(lambda x: F.hardshrink(x, lam), lambda x: TF.hardshrink(x, lam), [a], [0], rng, "hardshrink")
    check(lambda x: F.softshrink(x, lam), lambda x: TF.softshrink(x, lam), [a], [0], rng, "softshrink")
    wp = np.asarray(rng.random(D if data.draw(st.booleans()) else 1))
    check(F.prelu, TF.prelu, [a, wp], [0, 1], rng, "prelu")
