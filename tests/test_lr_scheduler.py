"""Learning-rate schedulers: lr sequences equal PyTorch's (same formulas), closed forms checked
without PyTorch, state_dict round trips, get_last_lr."""
import math

import pytest

import fastdl as fd
from fastdl import optim
from fastdl.optim import lr_scheduler as S


def _opt(lib, kind="SGD", lr=0.1):
    if lib is fd:
        ps = [fd.ones(2, requires_grad=True)]
        o = optim
    else:
        ps = [lib.ones(2, requires_grad=True)]
        o = lib.optim
    return getattr(o, kind)(ps, lr=lr, momentum=0.9) if kind == "SGD" else getattr(o, kind)(ps, lr=lr)


CASES = [
    ("StepLR", dict(step_size=3, gamma=0.5), "SGD"),
    ("MultiStepLR", dict(milestones=[2, 5, 5, 9], gamma=0.3), "SGD"),
    ("ExponentialLR", dict(gamma=0.9), "SGD"),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.001), "SGD"),
    ("LinearLR", dict(start_factor=0.25, end_factor=0.9, total_iters=6), "SGD"),
    ("OneCycleLR", dict(max_lr=1.0, total_steps=25), "SGD"),
    ("OneCycleLR", dict(max_lr=0.5, total_steps=25, three_phase=True, anneal_strategy="linear"), "Adam"),
]


def _sequence(lib, name, kw, kind, n=24):
    opt = _opt(lib, kind)
    sch = getattr(S if lib is fd else lib.optim.lr_scheduler, name)(opt, **kw)
    out = []
    for _ in range(n):
        out.append((sch.get_last_lr()[0], opt.param_groups[0].get("momentum", opt.param_groups[0].get("betas", [0])[0])))
        opt.step()
        sch.step()
    return out


@pytest.mark.parametrize("name,kw,kind", CASES, ids=[c[0] + str(i) for i, c in enumerate(CASES)])
def test_matches_torch(name, kw, kind):
    torch = pytest.importorskip("torch")
    got = _sequence(fd, name, kw, kind)
    want = _sequence(torch, name, kw, kind)
    for (a, ma), (b, mb) in zip(got, want):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-15)
        assert ma == pytest.approx(mb, rel=1e-12)


def test_sequential_and_plateau_match_torch():
    torch = pytest.importorskip("torch")
    res = []
    for lib, mod in ((fd, S), (torch, torch.optim.lr_scheduler)):
        opt = _opt(lib)
        s1 = mod.LinearLR(opt, start_factor=0.1, total_iters=4)
        s2 = mod.CosineAnnealingLR(opt, T_max=10)
        seq = mod.SequentialLR(opt, [s1, s2], milestones=[4])
        opt2 = _opt(lib)
        pl = mod.ReduceLROnPlateau(opt2, mode="min", factor=0.5, patience=2, cooldown=1, threshold=0.1)
        lrs = []
        for i, metric in enumerate([5, 4, 4, 4, 4, 3.9, 3.95, 4, 4, 1, 1, 1, 1, 1, 1]):
            lrs.append((seq.get_last_lr()[0], opt2.param_groups[0]["lr"]))
            opt.step()
            seq.step()
            pl.step(metric)
        res.append(lrs)
    for (a, b), (c, d) in zip(*res):
        assert a == pytest.approx(c, rel=1e-12) and b == pytest.approx(d, rel=1e-12)


def test_closed_forms_without_torch():
    opt = _opt(fd)
    s = S.StepLR(opt, step_size=2, gamma=0.1)
    lrs = [s.get_last_lr()[0]]
    for _ in range(5):
        s.step()
        lrs.append(s.get_last_lr()[0])
    assert lrs == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    opt = _opt(fd)
    c = S.CosineAnnealingLR(opt, T_max=10, eta_min=0.0)
    for e in range(1, 11):
        c.step()
        assert c.get_last_lr()[0] == pytest.approx(0.05 * (1 + math.cos(math.pi * e / 10)), abs=1e-12)
    opt = _opt(fd)
    one = S.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    assert opt.param_groups[0]["lr"] == pytest.approx(1.0 / 25)
    for _ in range(9):
        one.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(1.0 / 25 / 1e4)
    with pytest.raises(ValueError, match="total steps"):
        one.step()
        one.step()


def test_state_dict_round_trip():
    opt = _opt(fd)
    s = S.ExponentialLR(opt, gamma=0.5)
    s.step()
    s.step()
    sd = s.state_dict()
    assert "optimizer" not in sd and sd["last_epoch"] == 2
    opt2 = _opt(fd)
    s2 = S.ExponentialLR(opt2, gamma=0.5)
    opt2.load_state_dict(opt.state_dict())  # a resume restores the optimizer (its lr) too
    s2.load_state_dict(sd)
    s2.step()
    assert s2.get_last_lr()[0] == pytest.approx(0.1 * 0.5 ** 2 * 0.5)
    with pytest.raises(TypeError):
        S.StepLR(object(), step_size=1)


def test_constant_polynomial_warm_restarts_chained_match_closed_forms():
    import math
    from fastdl.optim import lr_scheduler as S

    def lrs(make, n=12):
        opt = fd.optim.SGD([fd.zeros(1, requires_grad=True)], lr=1.0)
        s = make(opt)
        out = []
        for _ in range(n):
            out.append(s.get_last_lr()[0])
            opt.step()
            s.step()
        return out
    assert lrs(lambda o: S.ConstantLR(o, 0.5, 3)) == pytest.approx([0.5] * 3 + [1.0] * 9)
    assert lrs(lambda o: S.PolynomialLR(o, 4, 2.0)) == pytest.approx([(1 - min(e, 4) / 4) ** 2 for e in range(12)])
    sgdr = [0.5 * (1 + math.cos(math.pi * t / T)) for T, t in [(2, 0), (2, 1)] + [(4, i) for i in range(4)] +
            [(8, i) for i in range(6)]]
    assert lrs(lambda o: S.CosineAnnealingWarmRestarts(o, 2, 2)) == pytest.approx(sgdr)
    chained = lrs(lambda o: S.ChainedScheduler([S.ConstantLR(o, 0.1, 2), S.ExponentialLR(o, 0.5)]))
    assert chained == pytest.approx([0.1 * 0.5 ** e if e < 2 else 0.5 ** e for e in range(12)])


def test_reduce_on_plateau_is_a_scheduler_and_takes_epoch():
    opt = fd.optim.SGD([fd.zeros(1, requires_grad=True)], lr=1.0)
    s = S.ReduceLROnPlateau(opt, patience=0)
    assert isinstance(s, S.LRScheduler)
    s.step(1.0, epoch=5)
    s.step(2.0)
    assert s.last_epoch == 6 and s.get_last_lr() == [0.1]


def test_cyclic_lr_triangular_and_momentum():
    opt = fd.optim.SGD([fd.zeros(1, requires_grad=True)], lr=1.0, momentum=0.9)
    s = S.CyclicLR(opt, 0.1, 1.0, step_size_up=2, step_size_down=1)
    lrs, moms = [], []
    for _ in range(7):
        lrs.append(s.get_last_lr()[0])
        moms.append(opt.param_groups[0]["momentum"])
        opt.step()
        s.step()
    assert lrs == pytest.approx([0.1, 0.55, 1.0, 0.1, 0.55, 1.0, 0.1])
    assert moms == pytest.approx([0.9, 0.85, 0.8, 0.9, 0.85, 0.8, 0.9])
