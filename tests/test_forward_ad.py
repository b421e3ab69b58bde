"""fastdl.autograd.forward_ad (make_dual / unpack_dual / dual_level) and the double-vjp jvp behind it and
fastdl.func.jvp / autograd.functional.jvp: tangents against torch's forward-mode AD and against J t from
row-by-row Jacobians, on elementwise, reduction, matrix, network and fused ops (attention, RNN, scan)."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.autograd.forward_ad as fwAD
import fastdl.nn.functional as F
from fastdl.autograd.functional import _jac_rows

torch = pytest.importorskip("torch")
import torch.autograd.forward_ad as tfwAD  # noqa: E402


def _np(*shape, seed):
    return np.random.default_rng(seed).normal(size=shape)


CASES = {
    "sin_mul": (lambda m, x, y: (x.sin() * y + x ** 3).sum(-1), [(4, 5), (4, 5)]),
    "matmul_softmax": (lambda m, x, y: m.softmax(x @ y, -1), [(3, 4), (4, 5)]),
    "log_softmax_tanh": (lambda m, x, y: m.nn.functional.log_softmax(m.tanh(x) * y, -1), [(2, 6), (6,)]),
    "norms": (lambda m, x, y: m.nn.functional.layer_norm(x, (5,)) + m.linalg.vector_norm(y, dim=-1, keepdim=True),
              [(3, 5), (3, 2)]),
    "mlp": (lambda m, x, w: m.nn.functional.gelu(x @ w).mean(0), [(6, 4), (4, 3)]),
    "cumsum_where": (lambda m, x, y: m.where(x > 0, x.cumsum(-1), y.exp()), [(3, 4), (3, 4)]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_forward_ad_against_torch(name):
    fn, shapes = CASES[name]
    xs = [_np(*s, seed=i) for i, s in enumerate(shapes)]
    ts = [_np(*s, seed=10 + i) for i, s in enumerate(shapes)]
    with fwAD.dual_level():
        duals = [fwAD.make_dual(fd.tensor(x), fd.tensor(t)) for x, t in zip(xs, ts)]
        out = fn(fd, *duals)
        primal, tangent = fwAD.unpack_dual(out)
    with tfwAD.dual_level():
        tduals = [tfwAD.make_dual(torch.tensor(x), torch.tensor(t)) for x, t in zip(xs, ts)]
        tout = fn(torch, *tduals)
        tprimal, ttangent = tfwAD.unpack_dual(tout)
    np.testing.assert_allclose(primal.detach().numpy(), tprimal.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(tangent.numpy(), ttangent.numpy(), rtol=1e-9, atol=1e-11)
    # fastdl.func.jvp and autograd.functional.jvp give the same
    _, jt = fd.func.jvp(lambda *a: fn(fd, *a), tuple(fd.tensor(x) for x in xs), tuple(fd.tensor(t) for t in ts))
    np.testing.assert_allclose(jt.numpy(), ttangent.numpy(), rtol=1e-9, atol=1e-11)
    _, jt2 = fd.autograd.functional.jvp(lambda *a: fn(fd, *a), tuple(fd.tensor(x) for x in xs),
                                        tuple(fd.tensor(t) for t in ts))
    np.testing.assert_allclose(jt2.numpy(), ttangent.numpy(), rtol=1e-9, atol=1e-11)


def _scan(a):
    u = a[:30].reshape(1, 3, 10)
    b_c = a[30:].reshape(1, 2, 2, 10)
    return F.selective_scan(u, F.softplus(u), -fd.ones(3, 2, dtype=fd.float64) * 0.5, b_c[:, 0], b_c[:, 1])


def test_fused_kernels_tangents_match_jacobian_rows():
    """Attention, RNN, conv and selective scan run fused kernels (torch has no forward AD for its CPU flash
    attention): their J t by double-vjp equals J (row by row) times t."""
    fd.manual_seed(0)
    rnn = fd.nn.LSTM(3, 4, batch_first=True).double()
    conv = fd.nn.Conv2d(2, 3, 3, padding=1).double()
    cases = [
        (lambda a: rnn(a)[0], fd.randn(2, 5, 3, dtype=fd.float64)),
        (lambda a: conv(a).relu(), fd.randn(1, 2, 5, 5, dtype=fd.float64)),
        (_scan, fd.randn(70, dtype=fd.float64)),
        (lambda a: F.scaled_dot_product_attention(a, a.flip(-1), a * 0.5, is_causal=True),
         fd.randn(1, 2, 5, 4, dtype=fd.float64)),
    ]
    for f, x in cases:
        t = fd.randn(*x.shape, dtype=fd.float64)
        _, got = fd.func.jvp(f, (x,), (t,))
        xl = x.detach().requires_grad_(True)
        with fd.enable_grad():
            y = f(xl)
        (j,) = _jac_rows(y, [xl], False)
        want = (j.reshape(y.numel(), x.numel()) @ t.reshape(-1)).reshape(tuple(y.shape))
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-9, atol=1e-11)
        with fwAD.dual_level():
            tan = fwAD.unpack_dual(f(fwAD.make_dual(x, t))).tangent
        np.testing.assert_allclose(tan.detach().numpy(), want.detach().numpy(), rtol=1e-9, atol=1e-11)


def test_forward_ad_rules():
    x, t = fd.randn(3), fd.randn(3)
    with pytest.raises(RuntimeError):
        fwAD.make_dual(x, t)  # no level open
    with fwAD.dual_level():
        d = fwAD.make_dual(x, t)
        p, tan = fwAD.unpack_dual(d)
        assert p is x and tan is not None and np.array_equal(tan.numpy(), t.numpy())
        assert fwAD.unpack_dual(fd.ones(2)).tangent is None  # no dual reaches it
        y = d * 2
        assert np.allclose(fwAD.unpack_dual(y).tangent.numpy(), 2 * t.numpy())
        z = fd.randn(3, requires_grad=True)
        w = z * 3  # depends on no dual
        assert fwAD.unpack_dual(w).tangent is None
        with pytest.raises(RuntimeError):
            fwAD.make_dual(x, fd.randn(4))
        with pytest.raises(RuntimeError):
            fwAD.make_dual(fd.arange(3), fd.randn(3))
        with pytest.raises(RuntimeError):
            fwAD.enter_dual_level()  # nesting is not supported
    assert fwAD.unpack_dual(d).tangent is None  # outside any level
    # a dual of a parameter stays connected to reverse mode
    w = fd.randn(3, requires_grad=True)
    with fwAD.dual_level():
        dw = fwAD.make_dual(w, fd.ones(3))
        loss = (dw ** 2).sum()
        assert abs(float(fwAD.unpack_dual(loss).tangent) - float(2 * w.sum())) < 1e-5
        loss.backward()
    assert np.allclose(w.grad.numpy(), 2 * w.detach().numpy())


@pytest.mark.parametrize("name", ["eigh", "cholesky", "inv", "slogdet"])
def test_symmetric_matrix_tangents_match_torch(name):
    """Decompositions of symmetric matrices read one triangle, so only symmetric tangents have one answer;
    on those fastdl's tangents equal torch's forward AD (eigenvectors included)."""
    r = np.random.default_rng(1)
    a = r.normal(size=(4, 4))
    A, t = a @ a.T + 4 * np.eye(4), r.normal(size=(4, 4))
    T = t + t.T
    with fwAD.dual_level():
        out = getattr(fd.linalg, name)(fwAD.make_dual(fd.tensor(A), fd.tensor(T)))
        mine = [fwAD.unpack_dual(o).tangent for o in (out if isinstance(out, tuple) else (out,))]
    with tfwAD.dual_level():
        out = getattr(torch.linalg, name)(tfwAD.make_dual(torch.tensor(A), torch.tensor(T)))
        theirs = [tfwAD.unpack_dual(o).tangent for o in (out if isinstance(out, tuple) else (out,))]
    for m, w in zip(mine, theirs):
        if w is None or w._is_zerotensor():
            assert m is None or float(m.abs().max()) == 0
        else:
            np.testing.assert_allclose(m.numpy(), w.numpy(), rtol=1e-10, atol=1e-12)
