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


def _two_groups(lib):
    a, b = lib.zeros(2, requires_grad=True), lib.zeros(2, requires_grad=True)
    opt = (optim if lib is fd else lib.optim).SGD([{"params": [a]}, {"params": [b], "lr": 0.05}], lr=0.1, momentum=0.9)
    return opt


def _trace(lib, make, steps=8, metric=None):
    opt = _two_groups(lib)
    sch = make(S if lib is fd else lib.optim.lr_scheduler, opt)
    out = list(sch.get_last_lr())
    for t in range(steps):
        opt.step()
        sch.step() if metric is None else sch.step(*metric(t))
        out.extend(list(sch.get_last_lr()) + [g["momentum"] for g in opt.param_groups])
    return out


def _resumed(make, last_epoch):
    def f(mod, opt):
        for g in opt.param_groups:
            g["initial_lr"] = 2 * g["lr"]
        return make(mod, opt, last_epoch)
    return f


RESUMED = {
    "ExponentialLR": lambda m, o, e: m.ExponentialLR(o, 0.9, last_epoch=e),
    "CosineAnnealingLR": lambda m, o, e: m.CosineAnnealingLR(o, 4, 0.01, last_epoch=e),
    "LinearLR": lambda m, o, e: m.LinearLR(o, 0.3, 0.9, 4, last_epoch=e),
    "PolynomialLR": lambda m, o, e: m.PolynomialLR(o, 6, 2.0, last_epoch=e),
    "MultiplicativeLR": lambda m, o, e: m.MultiplicativeLR(o, lambda k: 0.9, last_epoch=e),
    "CosineAnnealingWarmRestarts": lambda m, o, e: m.CosineAnnealingWarmRestarts(o, 3, 2, last_epoch=e),
}


@pytest.mark.parametrize("name", list(RESUMED))
@pytest.mark.parametrize("last_epoch", [0, 2, 6])
def test_resumed_scheduler_does_not_step_ahead(name, last_epoch):
    # the constructor's step of a scheduler resumed with last_epoch >= 0 leaves the lr alone
    # (PyTorch's _is_initial), and SGDR's cycle position wraps modulo T_i
    torch = pytest.importorskip("torch")
    make = _resumed(RESUMED[name], last_epoch)
    assert _trace(fd, make) == pytest.approx(_trace(torch, make), rel=1e-12)


@pytest.mark.parametrize("make", [
    lambda m, o: m.SequentialLR(o, [m.ConstantLR(o, 0.1, total_iters=2), m.ExponentialLR(o, 0.9), m.StepLR(o, 2)],
                                milestones=[0, 4]),
    lambda m, o: m.SequentialLR(o, [m.ChainedScheduler([m.ConstantLR(o, 0.5, total_iters=2), m.ExponentialLR(o, 0.9)]),
                                    m.StepLR(o, 2)], milestones=[5]),
    lambda m, o: m.SequentialLR(o, [m.LinearLR(o, 0.1, total_iters=3), m.CosineAnnealingWarmRestarts(o, 3)],
                                milestones=[5]),
], ids=["milestone0", "nested_chained", "warm_restarts"])
def test_sequential_lr_edge_cases_match_torch(make):
    torch = pytest.importorskip("torch")
    assert _trace(fd, make, steps=12) == pytest.approx(_trace(torch, make, steps=12), rel=1e-12)


@pytest.mark.filterwarnings("ignore::UserWarning")  # PyTorch deprecates step(epoch)
def test_multiplicative_lr_with_epoch_matches_torch():
    # step(0) is not the constructor's step: the factor applies
    torch = pytest.importorskip("torch")
    make = lambda m, o: m.MultiplicativeLR(o, lambda k: 0.95)  # noqa: E731
    epoch = lambda t: (t,)  # noqa: E731
    assert _trace(fd, make, metric=epoch) == pytest.approx(_trace(torch, make, metric=epoch), rel=1e-12)


def test_plateau_param_group_added_later_and_validation():
    torch = pytest.importorskip("torch")

    def make(min_lr):
        def f(m, o):
            s = m.ReduceLROnPlateau(o, patience=0, min_lr=min_lr)
            lib = fd if m is S else torch
            o.add_param_group({"params": [lib.zeros(1, requires_grad=True)], "lr": 0.2, "momentum": 0.9})
            return s
        return f
    flat = lambda t: (1.0,)  # noqa: E731
    assert _trace(fd, make(0.01), metric=flat) == pytest.approx(_trace(torch, make(0.01), metric=flat), rel=1e-12)
    with pytest.raises(RuntimeError, match="differs from when `ReduceLROnPlateau` was initialized"):
        _trace(fd, make([0.01, 0.02]), metric=flat)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        S.ReduceLROnPlateau(None)
    opt = _two_groups(fd)
    for bad in (lambda: S.SequentialLR(opt, [S.StepLR(opt, 2), S.ReduceLROnPlateau(opt)], milestones=[3]),
                lambda: S.ChainedScheduler([S.StepLR(opt, 2), S.ReduceLROnPlateau(opt)])):
        with pytest.raises(ValueError, match="does not support `ReduceLROnPlateau`"):
            bad()
    with pytest.raises(ValueError, match="max_lr must have the same length"):
        S.OneCycleLR(opt, [0.1], total_steps=10)
    with pytest.raises(ValueError, match="positive integer total_steps"):
        S.OneCycleLR(opt, 0.1, total_steps=10.0)
    with pytest.raises(ValueError, match="non-negative epoch"):
        S.CosineAnnealingWarmRestarts(opt, 3).step(-1)


class _Decay:
    def __init__(self):
        self.k = 0.9

    def __call__(self, e):
        return self.k ** e


def test_state_dict_keys_and_callable_objects_as_torch():
    # the same keys as PyTorch's state_dict; a callable object's attributes are state, a function is None
    torch = pytest.importorskip("torch")
    makes = [lambda m, o: m.LambdaLR(o, [_Decay(), lambda e: 1.0]),
             lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=3, scale_fn=_Decay()),
             lambda m, o: m.OneCycleLR(o, 1.0, total_steps=10),
             lambda m, o: m.CosineAnnealingWarmRestarts(o, 3),
             lambda m, o: m.ReduceLROnPlateau(o)]
    for make in makes:
        sds = []
        for lib, mod in ((fd, S), (torch, torch.optim.lr_scheduler)):
            sch = make(mod, _two_groups(lib))
            getattr(sch, "lr_lambdas", [_Decay()])[0].k = 0.5
            if getattr(sch, "_scale_fn_custom", None) is not None:
                sch._scale_fn_custom.k = 0.5
            sds.append(sch.state_dict())
        assert set(sds[0]) == set(sds[1])
        for k in ("lr_lambdas", "_scale_fn_custom", "_step_count", "_anneal_func_type", "default_min_lr"):
            assert sds[0].get(k) == sds[1].get(k), k
        fresh = make(S, _two_groups(fd))
        fresh.load_state_dict(sds[0])
        fn = getattr(fresh, "lr_lambdas", [None])[0] or getattr(fresh, "_scale_fn_custom", None)
        assert fn is None or fn.k == 0.5
