"""Module.register_full_backward_hook / register_full_backward_pre_hook: when they run, what
they see (grad_input per tensor input, None where no gradient is needed; grad_output per
output), replacement of either, removal, and agreement with PyTorch's hooks step for step."""
import numpy as np
import pytest

import fastdl as fd

try:
    import torch
except ImportError:  # the PyTorch comparison skips; the fastdl checks still run
    torch = None

_RNG = np.random.default_rng(0)
W0, X0, Y0 = _RNG.standard_normal((4, 3)), _RNG.standard_normal((2, 3)), _RNG.standard_normal((2, 3))


def _run(L):
    class M(L.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = L.nn.Linear(3, 4).double()

        def forward(self, a, b, k=2.0):
            return self.lin(a) * k, self.lin(b) ** 2

    m = M()
    with L.no_grad():
        m.lin.weight.copy_(L.tensor(W0))
        m.lin.bias.zero_()
    log = []

    def full(mod, gi, go):
        assert mod is m
        log.append(("full", [None if g is None else g.detach().numpy().copy() for g in gi],
                    [g.detach().numpy().copy() for g in go]))
        return (gi[0] * 2, gi[1])  # doubles a's gradient

    def pre(mod, go):
        log.append(("pre", [g.detach().numpy().copy() for g in go]))
        return (go[0] * 3, go[1])  # triples the first output's gradient

    m.register_full_backward_hook(full)
    m.register_full_backward_pre_hook(pre)
    a, b = L.tensor(X0, requires_grad=True), L.tensor(Y0, requires_grad=True)
    o1, o2 = m(a, b, k=0.5)
    (o1.sum() + o2.sum()).backward()
    return log, a.grad.numpy(), b.grad.numpy(), m


def test_hooks_see_and_replace_gradients():
    log, ga, gb, m = _run(fd)
    assert [e[0] for e in log] == ["pre", "full"]
    (_, go_pre), (_, gi, go) = log
    np.testing.assert_allclose(go_pre[0], np.ones((2, 4)))  # d(sum)/d(o1)
    np.testing.assert_allclose(go[0], 3 * np.ones((2, 4)))  # the full hook sees the pre-hook's replacement
    np.testing.assert_allclose(gi[0], 3 * 0.5 * np.ones((2, 4)) @ W0)
    np.testing.assert_allclose(ga, 2 * gi[0])  # the full hook's replacement reaches a
    np.testing.assert_allclose(gb, gi[1])
    # removed hooks run no more
    m2 = fd.nn.Linear(3, 2).double()
    seen = []
    h = m2.register_full_backward_hook(lambda mod, gi, go: seen.append(1))
    x = fd.tensor(X0, requires_grad=True)
    m2(x).sum().backward()
    h.remove()
    m2(x).sum().backward()
    assert seen == [1]


def test_inputs_without_grad_get_none():
    seen = []
    m = fd.nn.Linear(3, 2).double()
    m.register_full_backward_hook(lambda mod, gi, go: seen.append((gi, [tuple(g.shape) for g in go])))
    m(fd.tensor(X0)).sum().backward()
    assert seen == [((None,), [(2, 2)])]
    assert m.weight.grad is not None


def test_no_hook_runs_without_grad():
    m = fd.nn.Linear(3, 2).double()
    m.register_full_backward_hook(lambda *a: pytest.fail("ran"))
    with fd.no_grad():
        m(fd.tensor(X0, requires_grad=True))


def test_bad_replacement_raises():
    m = fd.nn.Linear(3, 2).double()
    m.register_full_backward_hook(lambda mod, gi, go: (gi[0], gi[0]))
    with pytest.raises(RuntimeError, match="returned 2 gradients; expected 1"):
        m(fd.tensor(X0, requires_grad=True)).sum().backward()


def test_matches_pytorch():
    if torch is None:
        pytest.skip("PyTorch not installed")
    fl, fa, fb, _ = _run(fd)
    tl, ta, tb, _ = _run(torch)
    np.testing.assert_allclose(fa, ta)
    np.testing.assert_allclose(fb, tb)
    assert [e[0] for e in fl] == [e[0] for e in tl]
    for f, t in zip(fl, tl):
        for fx, tx in zip(f[1:], t[1:]):
            for u, v in zip(fx, tx):
                np.testing.assert_allclose(u, v)



def test_forward_hooks_with_kwargs_prepend_and_always_call():
    order = []

    class M(fd.nn.Module):
        def forward(self, x, scale=1.0):
            if scale < 0:
                raise ValueError("negative scale")
            return x * scale
    m = M()
    m.register_forward_pre_hook(lambda mod, args, kwargs: (args, {**kwargs, "scale": 3.0}), with_kwargs=True)
    m.register_forward_hook(lambda mod, args, out: order.append("second"))
    m.register_forward_hook(lambda mod, args, kwargs, out: order.append(("first", kwargs["scale"])) or out + 1,
                            prepend=True, with_kwargs=True)
    m.register_forward_hook(lambda mod, args, out: order.append(("always", out)), always_call=True)
    y = m(fd.ones(2), scale=2.0)
    np.testing.assert_allclose(y.numpy(), [4.0, 4.0])  # scale replaced by 3, then + 1
    assert order[:2] == [("first", 3.0), "second"]
    order.clear()
    m2 = M()
    m2.register_forward_hook(lambda mod, args, out: order.append(("always", out)), always_call=True)
    with pytest.raises(ValueError, match="negative"):
        m2(fd.ones(2), scale=-1.0)
    assert order == [("always", None)]
