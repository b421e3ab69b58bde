"""NAdam, RAdam, Adamax, Adadelta, Rprop, ASGD (fused native steps) and LBFGS against
torch.optim: parameters and state after 20 steps with fresh random gradients (float64 to 1e-10,
float32 to 1e-5, on every CPU ISA), param groups, state_dict round trips, validation, defaults;
LBFGS trajectories on Rosenbrock and least squares with and without the strong-Wolfe search."""
import numpy as np
import pytest

import fastdl as fd
from fastdl import optim

SHAPES = [(6, 5), (7,), (2, 3, 2), (1,)]
STEPS = 20

CASES = [
    ("NAdam", dict()),
    ("NAdam", dict(lr=0.01, betas=(0.8, 0.95), weight_decay=0.1, momentum_decay=0.01)),
    ("NAdam", dict(lr=0.01, weight_decay=0.2, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", dict()),  # rho_t <= 5 for the first 5 steps (unrectified), rectified after
    ("RAdam", dict(lr=0.01, betas=(0.8, 0.9), weight_decay=0.1, maximize=True)),
    ("RAdam", dict(lr=0.01, weight_decay=0.2, decoupled_weight_decay=True)),
    ("RAdam", dict(betas=(0.9, 0.6))),  # rho_inf < 5: never rectified
    ("Adamax", dict()),
    ("Adamax", dict(lr=0.01, betas=(0.7, 0.9), eps=1e-3, weight_decay=0.1, maximize=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.5, eps=1e-4, weight_decay=0.1)),
    ("Adadelta", dict(rho=0.95, maximize=True)),
    ("Rprop", dict()),
    ("Rprop", dict(lr=0.02, etas=(0.3, 1.5), step_sizes=(1e-2, 0.05))),  # both clamps reached
    ("Rprop", dict(maximize=True)),
    ("ASGD", dict()),
    ("ASGD", dict(lr=0.05, lambd=0.01, alpha=0.5, t0=5, weight_decay=0.1)),  # averaging from step 6
    ("ASGD", dict(lr=0.03, t0=0, maximize=True)),
]
IDS = [f"{n}-{i}" for i, (n, _) in enumerate(CASES)]


def _data(rng, shapes=SHAPES, steps=STEPS):
    params0 = [rng.standard_normal(s) for s in shapes]
    noise = [[rng.standard_normal(s) for s in shapes] for _ in range(steps)]
    # fresh random gradients (never zero), plus a term in p so that errors would compound
    return params0, (lambda t, i, p: noise[t][i] + 0.3 * p)


def _run_fd(cls, groups, params0, gfn, dtype=fd.float64, steps=STEPS, start=0, opt=None, ps=None):
    ps = ps or [fd.tensor(p, dtype=dtype, requires_grad=True) for p in params0]
    if opt is None:
        opt = cls(_groups(groups, ps), **_kw(groups))
    for t in range(start, start + steps):
        for i, p in enumerate(ps):
            p.grad = fd.tensor(gfn(t, i, p.detach().numpy().astype(np.float64)), dtype=dtype)
        opt.step()
    return ps, opt


def _run_torch(torch, cls, groups, params0, gfn, dtype=None, steps=STEPS):
    dtype = dtype or torch.float64
    ps = [torch.tensor(p, dtype=dtype, requires_grad=True) for p in params0]
    opt = cls(_groups(groups, ps), **_kw(groups))
    for t in range(steps):
        for i, p in enumerate(ps):
            p.grad = torch.tensor(gfn(t, i, p.detach().numpy().astype(np.float64)), dtype=dtype)
        opt.step()
    return ps, opt


# `groups` is either a kwargs dict (one group) or (kwargs, [per-group overrides]) splitting the params
def _kw(groups):
    return groups[0] if isinstance(groups, tuple) else groups


def _groups(groups, ps):
    if not isinstance(groups, tuple):
        return ps
    over = groups[1]
    k = len(ps) // len(over)
    return [dict(params=ps[j * k:(j + 1) * k] if j < len(over) - 1 else ps[j * k:], **o) for j, o in enumerate(over)]


def _compare(fps, fopt, tps, topt, rtol, atol):
    for fp, tp in zip(fps, tps):
        np.testing.assert_allclose(fp.detach().numpy().astype(np.float64), tp.detach().double().numpy(), rtol=rtol,
                                   atol=atol)
        fs, ts = fopt.state[fp], topt.state[tp]
        assert list(fs) == list(ts)
        for k, tv in ts.items():
            fv = fs[k]
            if tv.ndim == 0:  # step, mu_product, eta, mu: Python numbers in fastdl
                assert isinstance(fv, (int, float)), k
                assert fv == pytest.approx(tv.item(), rel=1e-12, abs=0), k
            else:
                np.testing.assert_allclose(fv.numpy().astype(np.float64), tv.detach().double().numpy(), rtol=rtol,
                                           atol=atol, err_msg=k)


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_float64_matches_torch_every_isa(name, kw, isa, rng):
    torch = pytest.importorskip("torch")
    params0, gfn = _data(rng)
    fps, fopt = _run_fd(getattr(optim, name), kw, params0, gfn)
    tps, topt = _run_torch(torch, getattr(torch.optim, name), kw, params0, gfn)
    _compare(fps, fopt, tps, topt, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_float32_matches_torch_every_isa(name, kw, isa, rng):
    torch = pytest.importorskip("torch")
    params0, gfn = _data(rng)
    fps, fopt = _run_fd(getattr(optim, name), kw, params0, gfn, dtype=fd.float32)
    tps, topt = _run_torch(torch, getattr(torch.optim, name), kw, params0, gfn, dtype=torch.float32)
    _compare(fps, fopt, tps, topt, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,kw", [CASES[i] for i in (1, 5, 8, 10, 13, 16)], ids=[IDS[i] for i in (1, 5, 8, 10, 13, 16)])
def test_large_parameter_threaded(name, kw, rng):
    # a 70k-element parameter crosses the kernels' threading threshold
    torch = pytest.importorskip("torch")
    params0, gfn = _data(rng, shapes=[(300, 233), (5,)], steps=4)
    fps, fopt = _run_fd(getattr(optim, name), kw, params0, gfn, steps=4)
    tps, topt = _run_torch(torch, getattr(torch.optim, name), kw, params0, gfn, steps=4)
    _compare(fps, fopt, tps, topt, rtol=1e-10, atol=1e-13)


GROUP_CASES = [
    ("NAdam", (dict(lr=0.01), [dict(weight_decay=0.1), dict(lr=0.002, momentum_decay=0.02)])),
    ("RAdam", (dict(lr=0.01), [dict(betas=(0.5, 0.8)), dict(weight_decay=0.1, decoupled_weight_decay=True)])),
    ("Adamax", (dict(lr=0.01), [dict(), dict(lr=0.1, weight_decay=0.05)])),
    ("Adadelta", (dict(), [dict(rho=0.5), dict(lr=0.1, maximize=True)])),
    ("Rprop", (dict(), [dict(lr=0.1, etas=(0.2, 1.1)), dict(step_sizes=(1e-4, 1.0))])),
    ("ASGD", (dict(t0=3), [dict(lr=0.1, lambd=0.1), dict(alpha=0.9, weight_decay=0.2)])),
]


@pytest.mark.parametrize("name,groups", GROUP_CASES, ids=[n for n, _ in GROUP_CASES])
def test_two_param_groups_match_torch(name, groups, rng):
    torch = pytest.importorskip("torch")
    params0, gfn = _data(rng)
    fps, fopt = _run_fd(getattr(optim, name), groups, params0, gfn)
    tps, topt = _run_torch(torch, getattr(torch.optim, name), groups, params0, gfn)
    _compare(fps, fopt, tps, topt, rtol=1e-10, atol=1e-13)
    for fg, tg in zip(fopt.param_groups, topt.param_groups):
        assert {k: v for k, v in fg.items() if k != "params"} == {k: v for k, v in tg.items() if k != "params"}


@pytest.mark.parametrize("name,kw", [CASES[i] for i in (2, 5, 8, 11, 13, 16)], ids=[IDS[i] for i in (2, 5, 8, 11, 13, 16)])
def test_state_dict_round_trip_continues_identically(name, kw, rng, tmp_path):
    cls = getattr(optim, name)
    params0, gfn = _data(rng)
    full, _ = _run_fd(cls, kw, params0, gfn)
    half, opt = _run_fd(cls, kw, params0, gfn, steps=STEPS // 2)
    fd.save(opt.state_dict(), tmp_path / "opt.safetensors")
    sd = fd.load(tmp_path / "opt.safetensors")
    ps = [fd.tensor(p.detach().numpy(), dtype=fd.float64, requires_grad=True) for p in half]
    opt2 = cls(ps, lr=0.123)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    _run_fd(cls, kw, params0, gfn, steps=STEPS - STEPS // 2, start=STEPS // 2, opt=opt2, ps=ps)
    for p, w in zip(ps, full):
        np.testing.assert_array_equal(p.detach().numpy(), w.detach().numpy())
    for k, v in opt.state[half[0]].items():
        assert type(opt2.state[ps[0]][k]) is type(v), k


@pytest.mark.parametrize("name,kw", [
    ("NAdam", dict(lr=-1)), ("NAdam", dict(eps=-1)), ("NAdam", dict(betas=(1.0, 0.9))),
    ("NAdam", dict(betas=(0.9, -0.1))), ("NAdam", dict(weight_decay=-1)), ("NAdam", dict(momentum_decay=-1)),
    ("RAdam", dict(lr=-1)), ("RAdam", dict(eps=-1)), ("RAdam", dict(betas=(0.9, 1.0))), ("RAdam", dict(weight_decay=-1)),
    ("Adamax", dict(lr=-1)), ("Adamax", dict(eps=-1)), ("Adamax", dict(betas=(-0.1, 0.9))),
    ("Adamax", dict(weight_decay=-1)),
    ("Adadelta", dict(lr=-1)), ("Adadelta", dict(rho=1.5)), ("Adadelta", dict(eps=-1)),
    ("Adadelta", dict(weight_decay=-1)),
    ("Rprop", dict(lr=-1)), ("Rprop", dict(etas=(1.0, 1.2))), ("Rprop", dict(etas=(0.5, 0.9))),
    ("ASGD", dict(lr=-1)), ("ASGD", dict(weight_decay=-1)),
    ("LBFGS", dict(lr=-1)),
])
def test_bad_hyperparameters_raise_as_torch(name, kw):
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError) as want:
        getattr(torch.optim, name)([torch.ones(2, requires_grad=True)], **kw)
    with pytest.raises(ValueError) as got:
        getattr(optim, name)([fd.ones(2, requires_grad=True)], **kw)
    assert str(got.value) == str(want.value)


@pytest.mark.parametrize("name", ["NAdam", "RAdam", "Adamax", "Adadelta", "Rprop", "ASGD", "LBFGS"])
def test_defaults_as_torch(name):
    torch = pytest.importorskip("torch")
    f = getattr(optim, name)([fd.ones(2, requires_grad=True)])
    t = getattr(torch.optim, name)([torch.ones(2, requires_grad=True)])
    assert f.defaults == t.defaults
    assert list(f.defaults) == list(t.defaults)


def test_new_kinds_error_messages_name_the_optimizer():
    p = fd.ones(3, requires_grad=True)
    with pytest.raises(ValueError, match=r"Rprop: parameter 0: state buffer has shape \(2,\)"):
        fd._C.rprop_step([p], [fd.ones(3)], [fd.zeros(2)], [fd.zeros(3)], 0.5, 1.2, 1e-6, 50.0, False)
    with pytest.raises(ValueError, match="ASGD: got 2 and 1 per-parameter scalars for 1 parameters"):
        fd._C.asgd_step([p], [fd.ones(3)], [fd.zeros(3)], [0.1, 0.1], [1.0], 0.0, 0.0, False)
    np.testing.assert_allclose(p.detach().numpy(), 1.0)


def test_native_steps_refuse_missing_state():
    # A kernel never runs without a buffer it reads (it would dereference null) or, for NAdam and
    # ASGD, without the scalars it carries between steps (ASGD would silently not move).
    p, g, z = fd.ones(3), fd.full((3,), 0.5), lambda: fd.zeros(3)
    cases = [
        ("Adam", lambda: fd._C.adam_step([p], [g], [], [z()], [], [1], 1e-3, 0.9, 0.999, 1e-8, 0.0, False, False, False)),
        ("NAdam", lambda: fd._C.nadam_step([p], [g], [z()], [], [1.0], [0.9], [0.8], 1e-3, 0.9, 0.999, 1e-8, 0.0, 4e-3,
                                           False, False)),
        ("NAdam", lambda: fd._C.nadam_step([p], [g], [z()], [z()], [1.0], [], [], 1e-3, 0.9, 0.999, 1e-8, 0.0, 4e-3,
                                           False, False)),
        ("ASGD", lambda: fd._C.asgd_step([p], [g], [z()], [], [], 1e-4, 0.0, False)),
        ("ASGD", lambda: fd._C.asgd_step([p], [g], [], [0.1], [1.0], 1e-4, 0.0, False)),
        ("Rprop", lambda: fd._C.rprop_step([p], [g], [z()], [], 0.5, 1.2, 1e-6, 50.0, False)),
    ]
    for name, call in cases:
        with pytest.raises(ValueError, match=f"{name}: (parameter 0: state list . is missing|needs its two)"):
            call()
    np.testing.assert_array_equal(p.numpy(), 1.0)  # nothing half-written


def test_cuda_matches_cpu(rng):
    if not fd.cuda.is_available():
        pytest.skip("no CUDA device")
    for name, kw in CASES:
        params0, gfn = _data(rng)
        cpu, _ = _run_fd(getattr(optim, name), kw, params0, gfn)
        ps = [fd.tensor(p, dtype=fd.float64, device="cuda", requires_grad=True) for p in params0]
        opt = getattr(optim, name)(ps, **kw)
        for t in range(STEPS):
            for i, p in enumerate(ps):
                p.grad = fd.tensor(gfn(t, i, p.detach().cpu().numpy()), dtype=fd.float64, device="cuda")
            opt.step()
        for a, b in zip(ps, cpu):
            np.testing.assert_allclose(a.detach().cpu().numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-13,
                                       err_msg=name)


# ---- LBFGS
def _rosenbrock(x, m):
    return m.sum((1 - x[:-1]) ** 2) + 100 * m.sum((x[1:] - x[:-1] ** 2) ** 2)


LBFGS_CASES = [dict(), dict(line_search_fn="strong_wolfe"),
               dict(lr=0.5, history_size=3, max_iter=7), dict(lr=0.5, history_size=3, max_iter=7,
                                                               line_search_fn="strong_wolfe")]


def _lbfgs_pair(torch, kw, fparams, tparams, floss, tloss, steps):
    fo, to = optim.LBFGS(fparams, **kw), torch.optim.LBFGS(tparams, **kw)

    def fc():
        fo.zero_grad()
        loss = floss()
        loss.backward()
        return loss

    def tc():
        to.zero_grad()
        loss = tloss()
        loss.backward()
        return loss

    for _ in range(steps):
        lf, lt = fo.step(fc), to.step(tc)
        assert lf.item() == pytest.approx(lt.item(), rel=1e-8)
        for a, b in zip(fparams, tparams):
            # LBFGS amplifies rounding (dot products summed in another order) on ill-conditioned problems
            np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-7, atol=1e-9)
    fs, ts = fo.state[fparams[0]], to.state[tparams[0]]
    for k in ("func_evals", "n_iter"):
        assert fs[k] == ts[k], k
    assert float(fs["t"]) == pytest.approx(float(ts["t"]), rel=1e-6)
    assert len(fs["old_dirs"]) == len(ts["old_dirs"])
    np.testing.assert_allclose(fs["d"].numpy(), ts["d"].numpy(), rtol=1e-5, atol=1e-9)
    return fo


@pytest.mark.parametrize("kw", LBFGS_CASES, ids=[str(i) for i in range(len(LBFGS_CASES))])
def test_lbfgs_rosenbrock_matches_torch(kw):
    torch = pytest.importorskip("torch")
    x0 = np.array([-1.2, 1.0, 0.5, -0.3, 0.8])
    fx, tx = fd.tensor(x0, requires_grad=True), torch.tensor(x0, requires_grad=True)
    _lbfgs_pair(torch, kw, [fx], [tx], lambda: _rosenbrock(fx, fd), lambda: _rosenbrock(tx, torch), steps=4)


@pytest.mark.parametrize("kw", LBFGS_CASES, ids=[str(i) for i in range(len(LBFGS_CASES))])
def test_lbfgs_least_squares_matches_torch(kw, rng):
    torch = pytest.importorskip("torch")
    X, W, Y = rng.standard_normal((20, 5)), rng.standard_normal((5, 3)), rng.standard_normal((20, 3))
    w0, b0 = 0.1 * rng.standard_normal((5, 3)), 0.1 * rng.standard_normal(3)
    fw, fb = fd.tensor(w0, requires_grad=True), fd.tensor(b0, requires_grad=True)
    tw, tb = torch.tensor(w0, requires_grad=True), torch.tensor(b0, requires_grad=True)
    fX, fY, tX, tY = fd.tensor(X), fd.tensor(X @ W + Y), torch.tensor(X), torch.tensor(X @ W + Y)
    fo = _lbfgs_pair(torch, kw, [fw, fb], [tw, tb], lambda: ((fX @ fw + fb - fY) ** 2).mean(),
                     lambda: ((tX @ tw + tb - tY) ** 2).mean(), steps=3)
    # converged to the least-squares solution
    A = np.hstack([X, np.ones((20, 1))])
    sol = np.linalg.lstsq(A, X @ W + Y, rcond=None)[0]
    if kw.get("max_iter") is None:
        np.testing.assert_allclose(fw.detach().numpy(), sol[:5], atol=1e-4)
    assert fo.state[fw]["func_evals"] > 0


def test_lbfgs_checks():
    a, b = fd.ones(2, requires_grad=True), fd.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match="doesn't support per-parameter options"):
        optim.LBFGS([{"params": [a]}, {"params": [b]}])
    opt = optim.LBFGS([a], line_search_fn="backtracking")
    with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):
        opt.step(lambda: (a * a).sum())
    assert optim.LBFGS([a]).defaults["max_eval"] == 25
    # a zero gradient at the start: one evaluation, parameters unchanged
    opt = optim.LBFGS([b])

    def closure():
        opt.zero_grad()
        loss = ((b - 1) ** 2).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 0
    np.testing.assert_array_equal(b.detach().numpy(), 1.0)
    assert opt.state[b]["func_evals"] == 1 and opt.state[b]["n_iter"] == 0


@pytest.mark.parametrize("name,kw", [CASES[1], CASES[16]], ids=[IDS[1], IDS[16]])
def test_state_scalars_follow_the_default_dtype(name, kw, rng):
    # PyTorch keeps mu_product / eta / mu in float64 when the default dtype is float64
    torch = pytest.importorskip("torch")
    params0, gfn = _data(rng)
    prev_fd, prev_t = fd.get_default_dtype(), torch.get_default_dtype()
    fd.set_default_dtype(fd.float64)
    torch.set_default_dtype(torch.float64)
    try:
        fps, fopt = _run_fd(getattr(optim, name), kw, params0, gfn)
        tps, topt = _run_torch(torch, getattr(torch.optim, name), kw, params0, gfn)
    finally:
        fd.set_default_dtype(prev_fd)
        torch.set_default_dtype(prev_t)
    _compare(fps, fopt, tps, topt, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("ls", [None, "strong_wolfe"])
def test_lbfgs_state_dict_round_trip(ls, rng):
    # two parameters of other shapes than the flat vectors in the state
    X, Y = rng.standard_normal((12, 4)), rng.standard_normal((12, 2))
    fX, fY = fd.tensor(X), fd.tensor(Y)
    w0 = rng.standard_normal((4, 2))

    def run(ps, opt, steps):
        def closure():
            opt.zero_grad()
            loss = (((fX @ ps[0] + ps[1] - fY) ** 2) ** 2).mean()  # quartic: several steps to converge
            loss.backward()
            return loss
        for _ in range(steps):
            opt.step(closure)

    full = [fd.tensor(w0, requires_grad=True), fd.zeros(2, dtype=fd.float64, requires_grad=True)]
    run(full, optim.LBFGS(full, max_iter=3, history_size=4, line_search_fn=ls), 4)
    ps = [fd.tensor(w0, requires_grad=True), fd.zeros(2, dtype=fd.float64, requires_grad=True)]
    opt = optim.LBFGS(ps, max_iter=3, history_size=4, line_search_fn=ls)
    run(ps, opt, 2)
    qs = [fd.tensor(p.detach().numpy(), requires_grad=True) for p in ps]
    opt2 = optim.LBFGS(qs)
    opt2.load_state_dict(opt.state_dict())
    assert opt2.param_groups[0]["max_iter"] == 3
    run(qs, opt2, 2)
    run(ps, opt, 2)  # the original continues too: the two share no state
    for q, p, w in zip(qs, ps, full):
        np.testing.assert_array_equal(q.detach().numpy(), w.detach().numpy())
        np.testing.assert_array_equal(p.detach().numpy(), w.detach().numpy())


@pytest.mark.parametrize("ls", [None, "strong_wolfe"])
def test_lbfgs_float32_matches_torch(ls, rng):
    # the line search's scalars are float32 0-d tensors in both, so the same decisions are taken
    # (short of convergence: there, the stopping tests compare float32 losses that differ by an
    # ulp between the two libraries' reductions)
    torch = pytest.importorskip("torch")
    X, Y = rng.standard_normal((20, 5)), rng.standard_normal((20, 3))
    w0 = (0.1 * rng.standard_normal((5, 3))).astype(np.float32)
    fw, tw = fd.tensor(w0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    fX, fY = fd.tensor(X, dtype=fd.float32), fd.tensor(Y, dtype=fd.float32)
    tX, tY = torch.tensor(X, dtype=torch.float32), torch.tensor(Y, dtype=torch.float32)
    kw = dict(line_search_fn=ls, max_iter=3)
    fo, to = optim.LBFGS([fw], **kw), torch.optim.LBFGS([tw], **kw)

    def fc():
        fo.zero_grad()
        loss = ((fX @ fw - fY) ** 2).mean()
        loss.backward()
        return loss

    def tc():
        to.zero_grad()
        loss = ((tX @ tw - tY) ** 2).mean()
        loss.backward()
        return loss

    for _ in range(2):
        fo.step(fc)
        to.step(tc)
    np.testing.assert_allclose(fw.detach().numpy(), tw.detach().numpy(), rtol=1e-4, atol=1e-5)
    assert fo.state[fw]["func_evals"] == to.state[tw]["func_evals"]
    assert fo.state[fw]["n_iter"] == to.state[tw]["n_iter"]
