"""Optimizers: fused native steps against PyTorch (float64 trajectories over many steps) and
against independent numpy float64 references of each rule (always run); param groups,
state_dict round trips, validation, error messages, float32 on every ISA."""
import math

import numpy as np
import pytest

import fastdl as fd
from fastdl import optim

SHAPES = [(7, 5), (5,), (3, 2, 4), (1,)]
STEPS = 60


def _grad_fn(rng):
    """A gradient that depends on the parameter (so errors compound) plus per-step noise."""
    noise = [[rng.standard_normal(s) for s in SHAPES] for _ in range(STEPS)]
    return lambda t, i, p: 0.3 * p + np.sin(3 * p) + noise[t][i]


def _run_fd(cls, kw, params0, gfn, dtype=fd.float64, steps=STEPS):
    ps = [fd.tensor(p, dtype=dtype, requires_grad=True) for p in params0]
    opt = cls(ps, **kw)
    for t in range(steps):
        for i, p in enumerate(ps):
            p.grad = fd.tensor(gfn(t, i, p.detach().numpy().astype(np.float64)), dtype=dtype)
        opt.step()
    return [p.detach().numpy().astype(np.float64) for p in ps], opt


def _run_torch(torch, cls, kw, params0, gfn, steps=STEPS):
    ps = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params0]
    opt = cls(ps, **kw)
    for t in range(steps):
        for i, p in enumerate(ps):
            p.grad = torch.tensor(gfn(t, i, p.detach().numpy()), dtype=torch.float64)
        opt.step()
    return [p.detach().numpy() for p in ps]


TORCH_CASES = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.05)),
    ("Adam", dict(lr=0.01, amsgrad=True, maximize=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.3, amsgrad=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.02, initial_accumulator_value=0.5)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.005, alpha=0.9, momentum=0.5, centered=True, maximize=True)),
]


@pytest.mark.parametrize("name,kw", TORCH_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(TORCH_CASES)])
def test_trajectory_matches_torch(name, kw, rng):
    torch = pytest.importorskip("torch")
    params0 = [rng.standard_normal(s) for s in SHAPES]
    gfn = _grad_fn(rng)
    got, _ = _run_fd(getattr(optim, name), kw, params0, gfn)
    want = _run_torch(torch, getattr(torch.optim, name), kw, params0, gfn)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


# ---- independent numpy references (always run)
def _np_reference(name, kw, params0, gfn, steps=STEPS):
    ps = [p.copy() for p in params0]
    st = [dict() for _ in ps]
    for t in range(1, steps + 1):
        for i, p in enumerate(ps):
            g = gfn(t - 1, i, p)
            s = st[i]
            if kw.get("maximize"):
                g = -g
            wd = kw.get("weight_decay", 0.0)
            if name == "SGD":
                g = g + wd * p
                mom = kw.get("momentum", 0.0)
                if mom:
                    s["b"] = g.copy() if "b" not in s else mom * s["b"] + (1 - kw.get("dampening", 0.0)) * g
                    g = g + mom * s["b"] if kw.get("nesterov") else s["b"]
                p -= kw["lr"] * g
            elif name == "LAMB":
                b1, b2 = kw.get("betas", (0.9, 0.999))
                eps = kw.get("eps", 1e-6)
                s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
                s["v"] = b2 * s.get("v", 0) + (1 - b2) * g * g
                mh, vh = s["m"] / (1 - b1 ** t), s["v"] / (1 - b2 ** t)
                u = mh / (np.sqrt(vh) + eps) + wd * p
                pn, un = np.linalg.norm(p), np.linalg.norm(u)
                ratio = pn / un if pn > 0 and un > 0 else 1.0
                p -= kw["lr"] * ratio * u
            elif name in ("Adam", "AdamW"):
                b1, b2 = kw.get("betas", (0.9, 0.999))
                eps = kw.get("eps", 1e-8)
                if name == "AdamW":
                    p *= 1 - kw["lr"] * kw.get("weight_decay", 1e-2)
                else:
                    g = g + wd * p
                s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
                s["v"] = b2 * s.get("v", 0) + (1 - b2) * g * g
                v = s["v"]
                if kw.get("amsgrad"):
                    s["vmax"] = np.maximum(s.get("vmax", 0), v)
                    v = s["vmax"]
                p -= kw["lr"] / (1 - b1 ** t) * s["m"] / (np.sqrt(v / (1 - b2 ** t)) + eps)
            elif name == "Adagrad":
                g = g + wd * p
                s["s"] = s.get("s", kw.get("initial_accumulator_value", 0.0)) + g * g
                clr = kw["lr"] / (1 + (t - 1) * kw.get("lr_decay", 0.0))
                p -= clr * g / (np.sqrt(s["s"]) + kw.get("eps", 1e-10))
            elif name == "RMSprop":
                g = g + wd * p
                a, eps, mom = kw.get("alpha", 0.99), kw.get("eps", 1e-8), kw.get("momentum", 0.0)
                s["sq"] = a * s.get("sq", 0) + (1 - a) * g * g
                if kw.get("centered"):
                    s["ga"] = a * s.get("ga", 0) + (1 - a) * g
                    avg = np.sqrt(s["sq"] - s["ga"] ** 2) + eps
                else:
                    avg = np.sqrt(s["sq"]) + eps
                if mom:
                    s["b"] = mom * s.get("b", 0) + g / avg
                    p -= kw["lr"] * s["b"]
                else:
                    p -= kw["lr"] * g / avg
    return ps


NP_CASES = TORCH_CASES + [
    ("LAMB", dict(lr=0.01)),
    ("LAMB", dict(lr=0.02, betas=(0.8, 0.99), weight_decay=0.1, eps=1e-8)),
]


@pytest.mark.parametrize("name,kw", NP_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(NP_CASES)])
def test_trajectory_matches_numpy_reference(name, kw, rng):
    params0 = [rng.standard_normal(s) for s in SHAPES]
    gfn = _grad_fn(rng)
    got, _ = _run_fd(getattr(optim, name), kw, params0, gfn)
    want = _np_reference(name, kw, params0, gfn)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "Adagrad", "RMSprop", "LAMB"])
def test_float32_every_isa_and_threaded(name, isa, rng):
    # a 70k-element parameter crosses the threading threshold; float32 tracks float64 closely
    shapes = [(300, 233), (5,)]
    params0 = [rng.standard_normal(s) for s in shapes]
    grads = [rng.standard_normal(s) for s in shapes]
    kw = dict(lr=0.01, momentum=0.9) if name in ("SGD", "RMSprop") else dict(lr=0.01)
    res = {}
    for dt in (fd.float32, fd.float64):
        ps = [fd.tensor(p, dtype=dt, requires_grad=True) for p in params0]
        opt = getattr(optim, name)(ps, **kw)
        for _ in range(5):
            for p, g in zip(ps, grads):
                p.grad = fd.tensor(g, dtype=dt)
            opt.step()
        res[dt] = [p.detach().numpy().astype(np.float64) for p in ps]
    for a, b in zip(res[fd.float32], res[fd.float64]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_param_groups_and_frozen_params():
    a = fd.ones(3, requires_grad=True)
    b = fd.ones(2, requires_grad=True)
    c = fd.ones(2, requires_grad=True)  # no grad: skipped (frozen)
    opt = optim.SGD([{"params": [a]}, {"params": [b, c], "lr": 1.0}], lr=0.1)
    a.grad, b.grad = fd.ones(3), fd.ones(2)
    opt.step()
    np.testing.assert_allclose(a.detach().numpy(), 0.9)
    np.testing.assert_allclose(b.detach().numpy(), 0.0)
    np.testing.assert_allclose(c.detach().numpy(), 1.0)
    assert opt.param_groups[1]["lr"] == 1.0 and opt.param_groups[1]["momentum"] == 0.0
    with pytest.raises(ValueError, match="more than one"):
        opt.add_param_group({"params": [a]})


def test_state_dict_round_trip_continues_identically(rng, tmp_path):
    params0 = [rng.standard_normal(s) for s in SHAPES]
    gfn = _grad_fn(rng)
    full, _ = _run_fd(optim.Adam, dict(lr=0.01, amsgrad=True), params0, gfn, steps=20)
    # 10 steps, save through fd.save, restore into a fresh optimizer, 10 more steps
    half, opt = _run_fd(optim.Adam, dict(lr=0.01, amsgrad=True), params0, gfn, steps=10)
    fd.save(opt.state_dict(), tmp_path / "opt.safetensors")
    sd = fd.load(tmp_path / "opt.safetensors")
    ps = [fd.tensor(p, dtype=fd.float64, requires_grad=True) for p in half]
    opt2 = optim.Adam(ps, lr=0.5)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == 0.01 and opt2.param_groups[0]["betas"] == (0.9, 0.999)
    for t in range(10, 20):
        for i, p in enumerate(ps):
            p.grad = fd.tensor(gfn(t, i, p.detach().numpy()), dtype=fd.float64)
        opt2.step()
    for p, w in zip(ps, full):
        np.testing.assert_allclose(p.detach().numpy(), w, rtol=1e-12, atol=1e-14)


def test_state_dict_shape_mismatch_raises():
    p = fd.ones(3, requires_grad=True)
    opt = optim.Adam([p])
    p.grad = fd.ones(3)
    opt.step()
    sd = opt.state_dict()
    q = fd.ones(4, requires_grad=True)
    with pytest.raises(ValueError, match="shape"):
        optim.Adam([q]).load_state_dict(sd)
    with pytest.raises(ValueError, match="parameter group"):
        optim.Adam([q, fd.ones(1, requires_grad=True)]).load_state_dict(sd)


@pytest.mark.parametrize("cls,kw,msg", [
    (optim.SGD, dict(lr=-1), "Invalid learning rate"),
    (optim.SGD, dict(lr=0.1, nesterov=True), "Nesterov"),
    (optim.Adam, dict(betas=(1.0, 0.9)), "beta parameter at index 0"),
    (optim.Adam, dict(eps=-1), "epsilon"),
    (optim.AdamW, dict(weight_decay=-1), "weight_decay"),
    (optim.RMSprop, dict(alpha=-1), "alpha"),
    (optim.Adagrad, dict(lr_decay=-1), "lr_decay"),
    (optim.LAMB, dict(betas=(0.9, 1.5)), "index 1"),
])
def test_argument_validation(cls, kw, msg):
    with pytest.raises(ValueError, match=msg):
        cls([fd.ones(2, requires_grad=True)], **kw)


def test_native_step_errors_name_optimizer_and_parameter():
    p = fd.ones(3, requires_grad=True)
    q = fd.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match=r"Adam: parameter 1: grad has shape \(3,\)"):
        fd._C.adam_step([p, q], [fd.ones(3), fd.ones(3)], [fd.zeros(3), fd.zeros(2)], [fd.zeros(3), fd.zeros(2)], [],
                        [1, 1], 0.1, 0.9, 0.999, 1e-8, 0.0, False, False, False)
    with pytest.raises(TypeError, match=r"SGD: parameter 0: grad has dtype float64"):
        fd._C.sgd_step([p], [fd.ones(3, dtype=fd.float64)], [], [], 0.1, 0.0, 0.0, 0.0, False, False)
    with pytest.raises(TypeError, match="float32 and float64"):
        fd._C.sgd_step([fd.ones(2, dtype=fd.int64)], [fd.ones(2, dtype=fd.int64)], [], [], 0.1, 0.0, 0.0, 0.0, False,
                       False)
    np.testing.assert_allclose(p.detach().numpy(), 1.0)  # nothing half written


def test_non_contiguous_param_and_grad():
    base = fd.tensor(np.arange(12.0).reshape(3, 4), dtype=fd.float64)
    p = base.T  # non-contiguous view used as a leaf
    p.requires_grad_(True)
    opt = optim.SGD([p], lr=0.5)
    p.grad = fd.tensor(np.ones((3, 4)), dtype=fd.float64).T
    opt.step()
    np.testing.assert_allclose(p.detach().numpy(), np.arange(12.0).reshape(3, 4).T - 0.5)


def test_training_with_closure_and_zero_grad():
    w = fd.tensor([3.0, -2.0], dtype=fd.float64, requires_grad=True)
    opt = optim.Adam([w], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    for _ in range(200):
        loss = opt.step(closure)
    assert float(loss) < 1e-3
    opt.zero_grad()
    assert w.grad is None


def test_adagrad_initial_accumulator_comes_from_the_constructor():
    # PyTorch fills every group's sum from the constructor argument; a group's own
    # initial_accumulator_value is kept in the group but not used
    p, q = fd.tensor([1.0, 2.0], requires_grad=True), fd.tensor([1.0], requires_grad=True)
    opt = optim.Adagrad([dict(params=[p], initial_accumulator_value=0.5), dict(params=[q])], lr=0.1)
    assert opt.param_groups[0]["initial_accumulator_value"] == 0.5
    np.testing.assert_array_equal(opt.state[p]["sum"].numpy(), [0.0, 0.0])
    for _ in range(2):
        p.grad, q.grad = fd.tensor([0.3, -1.0]), fd.tensor([0.3])
        opt.step()
    np.testing.assert_allclose(p.detach().numpy()[0], q.detach().numpy()[0], rtol=1e-15)


def test_named_parameters_and_adam_decoupled_weight_decay():
    p = fd.tensor([1.0, -2.0], requires_grad=True)
    q = fd.tensor([1.0, -2.0], requires_grad=True)
    a = optim.Adam([("w", p)], lr=0.1, weight_decay=0.5, decoupled_weight_decay=True)
    b = optim.AdamW([q], lr=0.1, weight_decay=0.5)
    assert a.param_groups[0]["param_names"] == ["w"] and a.param_groups[0]["params"][0] is p
    for _ in range(3):
        p.grad, q.grad = fd.tensor([0.5, 0.1]), fd.tensor([0.5, 0.1])
        a.step()
        b.step()
    np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_defaults_state_and_add_param_group_as_torch(name):
    # defaults carry PyTorch's keys and values (foreach/fused/... included), opt.state[p] is {} before
    # the first step (a defaultdict, and touching it does not break the step), add_param_group(param_group=)
    torch = pytest.importorskip("torch")
    p, q = fd.ones(3, requires_grad=True), fd.ones(2, requires_grad=True)
    opt = getattr(optim, name)([p], lr=0.1)
    want = getattr(torch.optim, name)([torch.ones(3, requires_grad=True)], lr=0.1).defaults
    assert opt.defaults == want and sorted(opt.param_groups[0]) == sorted(list(want) + ["params"])
    assert opt.state[p] == {} or name == "Adagrad"
    p.grad = fd.ones(3)
    opt.step()
    opt.add_param_group(param_group={"params": [q], "lr": 0.5})
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[1]["eps" if name != "SGD" else "momentum"] == \
        want["eps" if name != "SGD" else "momentum"]


def test_step_hooks_as_torch():
    torch = pytest.importorskip("torch")
    logs = []
    for lib in (fd, torch):
        p = lib.zeros(2, requires_grad=True)
        opt = (optim if lib is fd else lib.optim).AdamW([p], lr=0.1)
        log = []
        h1 = opt.register_step_pre_hook(lambda o, a, k: log.append(("pre", len(a), a[0] is o, sorted(k))))
        h2 = opt.register_step_post_hook(lambda o, a, k: log.append(("post", len(a), a[0] is o, sorted(k))))
        p.grad = lib.ones(2)
        loss = opt.step(closure=lambda: 1.5)
        h1.remove()
        opt.step()
        h2.remove()
        opt.step()
        logs.append((log, loss, p.detach().numpy().tolist()))
    assert logs[0][0] == logs[1][0] and logs[0][1] == logs[1][1]
    np.testing.assert_allclose(logs[0][2], logs[1][2], rtol=1e-6)
