"""Second derivatives (create_graph=True) through the nn, norm, loss, reduction, pooling, conv and
indexing ops whose fast backward is a fused kernel, reads a detached saved output or copies into a
buffer: a WGAN-GP style gradient penalty against PyTorch (float64, random data), gradgradcheck by
finite differences, and the first derivative equal with and without create_graph."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.nn.functional as F


def _c(L, v, dt=None):  # a constant tensor of either library
    return L.tensor(np.asarray(v, dtype=dt)) if L is not fd else fd.tensor(np.asarray(v, dtype=dt))


def _bn_eval(L, Fm, x, w, b):
    rm, rv = _c(L, [0.1, -0.2, 0.3]), _c(L, [1.5, 0.7, 2.0])
    return Fm.batch_norm(x, rm, rv, w, b, training=False) * x


def _setitem(L, Fm, x, key):
    y = x * 1.0
    y[key(L)] = x[:, 1:3] * x[:, 3:5] if isinstance(key(L), tuple) else x[2] * x[0]
    return y * y


_W = [1.0, 2.0, 0.5, 1.0, 1.5]
# name -> (f(lib, functional, *inputs), input shapes, map from standard normal to the input domain)
OPS = {
    "softmax": (lambda L, Fm, x: Fm.softmax(x, -1) * x, [(3, 5)], None),
    "log_softmax": (lambda L, Fm, x: Fm.log_softmax(x, 0) * x, [(3, 5)], None),
    "logsumexp": (lambda L, Fm, x: L.logsumexp(x, -1), [(3, 5)], None),
    "cross_entropy": (lambda L, Fm, x: Fm.cross_entropy(x, _c(L, [0, 4, 2])), [(3, 5)], None),
    "cross_entropy_weight_smoothing": (lambda L, Fm, x: Fm.cross_entropy(
        x, _c(L, [0, 4, 2]), weight=_c(L, _W), label_smoothing=0.2), [(3, 5)], None),
    "cross_entropy_ignore_sum": (lambda L, Fm, x: Fm.cross_entropy(
        x, _c(L, [1, -100, 3]), reduction="sum"), [(3, 5)], None),
    "cross_entropy_none": (lambda L, Fm, x: Fm.cross_entropy(x, _c(L, [1, 0, 3]), reduction="none") * x[:, 0],
                           [(3, 5)], None),
    "nll_loss": (lambda L, Fm, x: Fm.nll_loss(Fm.log_softmax(x, 1), _c(L, [1, 0, 3]), weight=_c(L, _W)),
                 [(3, 5)], None),
    "layer_norm": (lambda L, Fm, x, w, b: Fm.layer_norm(x, (5,), w, b) * x, [(3, 5), (5,), (5,)], None),
    "layer_norm_plain": (lambda L, Fm, x: Fm.layer_norm(x, (2, 3)) * x, [(2, 2, 3)], None),
    "group_norm": (lambda L, Fm, x, w, b: Fm.group_norm(x, 2, w, b) * x, [(2, 4, 3), (4,), (4,)], None),
    "batch_norm": (lambda L, Fm, x, w, b: Fm.batch_norm(x, None, None, w, b, training=True) * x,
                   [(4, 3, 2), (3,), (3,)], None),
    "batch_norm_eval": (_bn_eval, [(4, 3, 2), (3,), (3,)], None),
    "rms_norm": (lambda L, Fm, x, w: Fm.rms_norm(x, (4,), w) * x, [(3, 4), (4,)], None),
    "elu": (lambda L, Fm, x: Fm.elu(x, 0.7), [(3, 4)], None),
    "selu": (lambda L, Fm, x: Fm.selu(x), [(3, 4)], None),
    "celu": (lambda L, Fm, x: Fm.celu(x, 0.5), [(3, 4)], None),
    "mish": (lambda L, Fm, x: Fm.mish(x), [(3, 4)], None),
    "norm": (lambda L, Fm, x: x.norm(dim=-1), [(3, 4)], None),
    "prod": (lambda L, Fm, x: L.prod(x, -1), [(3, 4)], lambda a: a * 0.3 + 1.0),
    "prod_all": (lambda L, Fm, x: L.prod(x), [(2, 3)], lambda a: a * 0.3 + 1.0),
    "max_values": (lambda L, Fm, x: (x * x).max(-1).values, [(3, 4)], None),
    "min_values": (lambda L, Fm, x: (x * x).min(0).values, [(3, 4)], None),
    "conv2d": (lambda L, Fm, x, w, b: Fm.conv2d(x, w, b, stride=(2, 1), padding=(1, 0), dilation=(1, 2),
                                                groups=2) ** 2, [(2, 2, 5, 4), (4, 1, 3, 2), (4,)], None),
    "conv2d_same": (lambda L, Fm, x, w: Fm.conv2d(x, w, padding="same") * x[:, :1],
                    [(1, 2, 4, 5), (2, 2, 2, 2)], None),
    "conv_transpose2d": (lambda L, Fm, x, w, b: Fm.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1,
                                                                    groups=2) ** 2,
                         [(1, 4, 3, 3), (4, 1, 2, 2), (2,)], None),
    "conv_transpose2d_dilated": (lambda L, Fm, x, w: Fm.conv_transpose2d(x, w, stride=(1, 2), padding=(1, 0),
                                                                         dilation=(2, 1)) * 1.5 + x.sum() * x.sum(),
                                 [(2, 2, 3, 2), (2, 3, 2, 2)], None),
    "max_pool2d": (lambda L, Fm, x: Fm.max_pool2d(x, (2, 3), stride=1, padding=1) ** 2, [(1, 2, 4, 5)], None),
    "avg_pool2d": (lambda L, Fm, x: Fm.avg_pool2d(x, 2, stride=(1, 2), padding=1, count_include_pad=False) ** 2,
                   [(2, 4, 5)], None),
    "adaptive_avg_pool2d": (lambda L, Fm, x: Fm.adaptive_avg_pool2d(x, (3, 2)) ** 2, [(1, 4, 5)], None),
    "adaptive_max_pool2d": (lambda L, Fm, x: Fm.adaptive_max_pool2d(x, (3, 2)) ** 2, [(1, 4, 5)], None),
    "embedding": (lambda L, Fm, w: Fm.embedding(_c(L, [[0, 2], [4, 2]]), w) ** 2, [(5, 3)], None),
    "index_select": (lambda L, Fm, x: L.index_select(x, 1, _c(L, [3, 0, 3])) ** 2, [(3, 4)], None),
    "advanced_index": (lambda L, Fm, x: x[_c(L, [0, 2, 2]), 1:3] ** 2, [(3, 4)], None),
    "setitem_index": (lambda L, Fm, x: _setitem(L, Fm, x, lambda L: (slice(None), _c(L, [0, 2]))), [(3, 5)], None),
    "setitem_int": (lambda L, Fm, x: _setitem(L, Fm, x, lambda L: 1), [(3, 5)], None),
    "select_slice_chunk": (lambda L, Fm, x: x[0, ::2] * x[:, ::2] * x.chunk(2, 1)[1] * x[1:, 1:3].sum(),
                           [(3, 4)], None),
    "binary_cross_entropy": (lambda L, Fm, x, t: Fm.binary_cross_entropy(L.sigmoid(x), L.sigmoid(t)),
                             [(3, 4), (3, 4)], None),
    "linear": (lambda L, Fm, x, w, b: Fm.linear(x, w, b) ** 2, [(3, 4), (2, 4), (2,)], None),
    "mse_loss": (lambda L, Fm, x, t: Fm.mse_loss(x * x, t), [(3, 4), (3, 4)], None),
}


def _inputs(name, seed):
    f, shapes, make = OPS[name]
    rng = np.random.default_rng(seed)
    arrs = [rng.standard_normal(s) * 0.8 + 0.1 for s in shapes]
    return [make(a) if make else a for a in arrs]


def _penalty_grads(L, Fm, name, arrs, up):
    """d/dinputs of sum_i |d<f(inputs), up>/d input_i|^2 (a gradient penalty), as numpy."""
    f = OPS[name][0]
    ts = [(fd.from_numpy(a.copy()) if L is fd else L.tensor(a)).requires_grad_(True) for a in arrs]
    y = f(L, Fm, *ts)
    u = fd.from_numpy(up) if L is fd else L.tensor(up)
    gs = L.autograd.grad((y * u).sum(), ts, create_graph=True, allow_unused=True)
    pen = sum((g * g).sum() for g in gs if g is not None)
    hs = L.autograd.grad(pen, ts, allow_unused=True)
    return ([g.detach().numpy() for g in gs if g is not None],
            [np.zeros(a.shape) if h is None else h.detach().numpy() for h, a in zip(hs, arrs)])


@pytest.mark.parametrize("name", sorted(OPS))
def test_gradient_penalty_matches_torch(name, torch):
    tF = torch.nn.functional
    arrs = _inputs(name, 0)
    y = OPS[name][0](fd, F, *[fd.from_numpy(a) for a in arrs])
    up = np.random.default_rng(1).standard_normal(tuple(y.shape))
    ours, theirs = _penalty_grads(fd, F, name, arrs, up), _penalty_grads(torch, tF, name, arrs, up)
    for a, b in zip(ours[0] + ours[1], theirs[0] + theirs[1]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10 * (1 + np.abs(b).max()))


@pytest.mark.parametrize("name", sorted(OPS))
def test_gradgradcheck(name):
    ts = [fd.from_numpy(a).requires_grad_(True) for a in _inputs(name, 2)]
    assert fd.autograd.gradgradcheck(lambda *xs: OPS[name][0](fd, F, *xs), ts, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(OPS))
def test_first_derivative_same_with_create_graph(name):
    # the composed create_graph path and the fused fast path agree on the gradient itself
    arrs = _inputs(name, 3)
    res = []
    for cg in (False, True):
        ts = [fd.from_numpy(a.copy()).requires_grad_(True) for a in arrs]
        y = OPS[name][0](fd, F, *ts)
        up = fd.from_numpy(np.random.default_rng(4).standard_normal(tuple(y.shape)))
        gs = fd.autograd.grad((y * up).sum(), ts, create_graph=cg, allow_unused=True)
        res.append([None if g is None else g.detach().numpy() for g in gs])
    for a, b in zip(*res):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_wgan_gp_conv_critic(torch):
    # a small conv critic's gradient penalty at interpolated samples, as WGAN-GP trains it
    rng = np.random.default_rng(5)
    x0, w1, b1, w2 = (rng.standard_normal(s) * 0.5 for s in [(2, 1, 6, 6), (3, 1, 3, 3), (3,), (1, 3 * 2 * 2)])
    res = []
    for L, Fm in ((fd, F), (torch, torch.nn.functional)):
        ps = [(fd.from_numpy(a.copy()) if L is fd else L.tensor(a)).requires_grad_(True) for a in (x0, w1, b1, w2)]
        x, c1, cb, lw = ps
        h = Fm.leaky_relu(Fm.conv2d(x, c1, cb, stride=2, padding=1), 0.2)
        h = Fm.layer_norm(Fm.avg_pool2d(h, 2, stride=1), (3, 2, 2))
        out = Fm.linear(h.reshape(2, -1), lw)
        g, = L.autograd.grad(out.sum(), x, create_graph=True)
        gp = ((g.reshape(2, -1).norm(dim=1) - 1) ** 2).mean()
        res.append([t.detach().numpy() for t in L.autograd.grad(gp, ps)])
    for a, b in zip(*res):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("a", [[[1.5, 0.0, -0.7, 2.0], [0.3, 1.2, 0.8, -1.1]],   # one zero in a row
                               [[1.5, 0.0, 0.0, 2.0], [0.3, 1.2, 0.0, -1.1]]])  # two zeros in a row
def test_prod_with_zeros(a, torch):
    # the zero branch of prod's backward: its Hessian-vector product against PyTorch's, and by differences
    a = np.array(a)
    res = []
    for L in (fd, torch):
        x = (fd.from_numpy(a.copy()) if L is fd else torch.tensor(a)).requires_grad_(True)
        u, v = (fd.from_numpy(t) if L is fd else torch.tensor(t) for t in (np.array([0.7, -1.3]), a[::-1] + 0.5))
        g, = L.autograd.grad((L.prod(x, -1) * u).sum(), x, create_graph=True)
        h, = L.autograd.grad((g * v).sum(), x)
        res.append((g.detach().numpy(), h.detach().numpy()))
    for ours, theirs in zip(*res):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)
    assert fd.autograd.gradgradcheck(lambda t: fd.prod(t, -1), [fd.from_numpy(a).requires_grad_(True)])


def test_dropout_gradient_penalty():
    # y = dropout(x^2): g = 2 x m u for the kept-and-scaled mask m, so d/dx sum g^2 = 8 x m^2 u^2
    rng = np.random.default_rng(6)
    a, u = rng.standard_normal((4, 50)), rng.standard_normal((4, 50))
    x = fd.from_numpy(a.copy()).requires_grad_(True)
    y = F.dropout(x * x, 0.4)
    m = (y.detach().numpy() != 0) / 0.6
    g, = fd.autograd.grad((y * fd.from_numpy(u)).sum(), x, create_graph=True)
    h, = fd.autograd.grad((g * g).sum(), x)
    np.testing.assert_allclose(g.detach().numpy(), 2 * a * m * u, rtol=1e-12)
    np.testing.assert_allclose(h.numpy(), 8 * a * m * m * u * u, rtol=1e-12)


def _attention(L, q, k, v, mask, causal, gqa):
    if L is fd:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, enable_gqa=gqa)
    if gqa:  # the explicit math: PyTorch's fused CPU attention has no double backward
        k, v = (t.repeat_interleave(q.shape[-3] // k.shape[-3], -3) for t in (k, v))
    s = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf")) if mask.dtype == L.bool else s + mask
    if causal:
        s = s.masked_fill(~L.ones(s.shape[-2], s.shape[-1], dtype=L.bool).tril(), float("-inf"))
    return L.softmax(s, -1) @ v


@pytest.mark.parametrize("case", [
    dict(shapes=[(2, 2, 4, 3), (2, 2, 5, 3), (2, 2, 5, 4)]),
    dict(shapes=[(1, 4, 3, 3), (1, 2, 3, 3), (1, 2, 3, 2)], gqa=True),
    dict(shapes=[(2, 3, 4), (2, 3, 4), (2, 3, 4)], causal=True),
    dict(shapes=[(4, 3), (5, 3), (5, 2)]),
    dict(shapes=[(1, 2, 3, 3), (1, 2, 4, 3), (1, 2, 4, 3)], mask="bool"),
    dict(shapes=[(1, 2, 3, 3), (1, 2, 4, 3), (1, 2, 4, 3)], mask="additive"),
    dict(shapes=[(2, 2, 3, 3), (1, 2, 4, 3), (1, 2, 4, 3)]),  # broadcast batch
], ids=["plain", "gqa", "causal", "2d", "bool_mask", "additive_mask", "broadcast"])
def test_attention_gradient_penalty(case, torch):
    rng = np.random.default_rng(7)
    arrs = [rng.standard_normal(s) for s in case["shapes"]]
    mk = None
    if case.get("mask") == "bool":
        mk = rng.standard_normal((3, 4)) > -0.5
        mk[:, 0] = True  # no fully masked row
    elif case.get("mask") == "additive":
        mk = rng.standard_normal((2, 3, 4))
    res = []
    for L in (fd, torch):
        ts = [(fd.from_numpy(a.copy()) if L is fd else torch.tensor(a)).requires_grad_(True) for a in arrs]
        m = None if mk is None else (fd.from_numpy(mk) if L is fd else torch.tensor(mk))
        y = _attention(L, *ts, m, case.get("causal", False), case.get("gqa", False))
        u = np.random.default_rng(1).standard_normal(tuple(y.shape))
        y = y * (fd.from_numpy(u) if L is fd else torch.tensor(u)) * ts[0].sum()
        gs = L.autograd.grad(y.sum(), ts, create_graph=True)
        hs = L.autograd.grad(sum((g * g).sum() for g in gs), ts)
        res.append([t.detach().numpy() for t in list(gs) + list(hs)])
    for a, b in zip(*res):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("which", ["x", "w"])
def test_conv_one_input_requires_grad(which, transposed, torch):
    # the backward saves only what its gradients read (x for gw, w for gx); create_graph with it
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((2, 2, 4, 5)), rng.standard_normal((2, 3, 3, 2))
    res = []
    for L, Fm in ((fd, F), (torch, torch.nn.functional)):
        x, w = ((fd.from_numpy(t.copy()) if L is fd else torch.tensor(t)) for t in (a, b))
        t = (x if which == "x" else w).requires_grad_(True)
        y = (Fm.conv_transpose2d(x, w, stride=2, padding=1) if transposed else Fm.conv2d(x, w.transpose(0, 1), padding=1))
        g, = L.autograd.grad((y ** 3).sum(), t, create_graph=True)
        h, = L.autograd.grad((g * g).sum(), t)
        res.append((g.detach().numpy(), h.detach().numpy()))
    for ours, theirs in zip(*res):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
