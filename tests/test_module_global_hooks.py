"""Global module hooks (torch.nn.modules.module.register_module_*): every module runs them, before its own, in
the same order and with the same replacement rules as torch's."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.nn.modules.module as M

torch = pytest.importorskip("torch")
import torch.nn.modules.module as TM  # noqa: E402


def _run(lib, mod, make):
    """The event log of one forward + backward of a two-layer net with global and local hooks."""
    log = []
    net = make()
    handles = [
        mod.register_module_forward_pre_hook(lambda m, a: log.append(("gpre", type(m).__name__))),
        mod.register_module_forward_hook(lambda m, a, o: log.append(("gfwd", type(m).__name__))),
        mod.register_module_forward_hook(lambda m, a, k, o: log.append(("gfwd_kw", type(m).__name__, sorted(k))),
                                         with_kwargs=True),
        mod.register_module_full_backward_pre_hook(lambda m, go: log.append(("gbpre", type(m).__name__))),
        mod.register_module_full_backward_hook(lambda m, gi, go: log.append(("gbwd", type(m).__name__))),
    ]
    net[0].register_forward_pre_hook(lambda m, a: log.append(("pre", type(m).__name__)))
    net[0].register_forward_hook(lambda m, a, o: log.append(("fwd", type(m).__name__)))
    net[0].register_full_backward_hook(lambda m, gi, go: log.append(("bwd", type(m).__name__)))
    x = lib.ones(2, 3, requires_grad=True)
    try:
        net(x).sum().backward()
    finally:
        for h in handles:
            h.remove()
    net(x)  # removed: nothing more is logged
    return log


def test_global_hooks_order_matches_torch():
    got = _run(fd, M, lambda: fd.nn.Sequential(fd.nn.Linear(3, 4), fd.nn.Tanh()))
    want = _run(torch, TM, lambda: torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh()))
    assert got == want


def test_global_hooks_replace_values():
    h1 = M.register_module_forward_pre_hook(lambda m, a: (a[0] * 2,) if isinstance(m, fd.nn.Linear) else None)
    h2 = M.register_module_forward_hook(lambda m, a, o: o + 1 if isinstance(m, fd.nn.Linear) else None)
    try:
        lin = fd.nn.Linear(2, 2)
        x = fd.ones(1, 2)
        np.testing.assert_allclose(lin(x).detach().numpy(), (x * 2 @ lin.weight.T + lin.bias + 1).detach().numpy())
    finally:
        h1.remove()
        h2.remove()
    calls = []
    h = M.register_module_forward_hook(lambda m, a, o: calls.append(o), always_call=True)

    class Boom(fd.nn.Module):
        def forward(self, x):
            raise ValueError("boom")
    try:
        with pytest.raises(ValueError):
            Boom()(fd.ones(1))
        assert calls == [None]
    finally:
        h.remove()


def test_registration_hooks():
    seen = []
    hp = M.register_module_parameter_registration_hook(lambda m, n, p: seen.append(("param", n)))
    hb = M.register_module_buffer_registration_hook(lambda m, n, b: seen.append(("buffer", n)) or b * 0 + 7)
    hm = M.register_module_module_registration_hook(lambda m, n, s: seen.append(("module", n)))
    try:
        bn = fd.nn.BatchNorm1d(3)
        seq = fd.nn.Sequential(fd.nn.Linear(2, 2))
        seq.extra = fd.nn.Identity()
    finally:
        hp.remove()
        hb.remove()
        hm.remove()
    assert ("param", "weight") in seen and ("param", "bias") in seen
    assert ("buffer", "running_mean") in seen and float(bn.running_mean[0]) == 7.0  # the hook's replacement
    assert ("module", "0") in seen and ("module", "extra") in seen
    tseen = []
    th = TM.register_module_buffer_registration_hook(lambda m, n, b: tseen.append(n))
    try:
        torch.nn.BatchNorm1d(3)
    finally:
        th.remove()
    assert [n for k, n in seen if k == "buffer"] == tseen
