"""PyTorch's own optimizer test inputs through fastdl: every OptimizerInfo of torch's optimizer
database (torch.testing._internal.common_optimizers.optim_db) whose class fastdl.optim exposes, each
of its optimizer inputs (the hyperparameters torch tests: maximize, weight decay, amsgrad, Nesterov,
a tensor lr, ...):
- the same float64 parameters and the same loss on both sides, several steps (LBFGS with its
  closure); the parameters after every step, the closure's losses and the optimizer's per-parameter
  state (its keys and values, as state_dict() holds them) must match PyTorch's;
- every error input (a bad hyperparameter, at construction or at step) must raise in fastdl too.
SparseAdam is left out: it takes only sparse gradients, which fastdl has no layout for."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")

import fastdl as fd  # noqa: E402

STEPS = 6
RTOL, ATOL = 1e-9, 1e-12


def _param_tol(name, kwargs):
    """(rtol, atol) of the parameters. Muon orthogonalises in bfloat16 (as PyTorch's), where the two
    libraries' products may round at different points: a tenth of one lr-scaled unit update."""
    if name == "Muon":
        return 0.0, 0.1 * float(kwargs.get("lr", 1e-3)) * np.sqrt(5 / 4)
    return RTOL, ATOL


class _Complex(Exception):
    pass
LEFT_OUT = {"SparseAdam": "sparse gradients only"}


def _optim_db():
    from torch.testing._internal.common_optimizers import optim_db
    return [oi for oi in optim_db if oi.optim_cls.__name__ not in LEFT_OUT]


def _fd_class(oi):
    return getattr(fd.optim, oi.optim_cls.__name__, None)


def _to_fd(v):
    if isinstance(v, torch.Tensor):
        return fd.tensor(v.detach().numpy().copy())
    if isinstance(v, (tuple, list)):
        return type(v)(_to_fd(x) for x in v)
    return v


def _problem(lib, name, seed):
    """Parameters (a 2-D weight, and a bias except for Muon, which takes matrices only) and a loss
    with a non-trivial curvature, identical values on both sides."""
    rng = np.random.default_rng(seed)
    w0, b0 = rng.standard_normal((5, 4)), rng.standard_normal(5)
    x, y = rng.standard_normal((4, 7)), rng.standard_normal((5, 7))
    w = lib.tensor(w0, requires_grad=True)
    params = [w] if name == "Muon" else [w, lib.tensor(b0, requires_grad=True)]
    X, Y = lib.tensor(x), lib.tensor(y)

    def loss():
        out = w @ X
        if len(params) > 1:
            out = out + params[1].reshape(5, 1)
        return ((out - Y) ** 2).mean() + 0.1 * (w.sin() ** 2).sum()
    return params, loss


def _plain(v, lib):
    """A state value as numpy arrays / Python values, lists kept (LBFGS keeps lists of tensors)."""
    if isinstance(v, lib.Tensor):
        return np.asarray(v.detach().numpy(), dtype=float)
    if isinstance(v, (list, tuple)):
        return [_plain(x, lib) for x in v]
    return v


def _state(opt, lib):
    """{param index: {key: value}} of the optimizer's state, as state_dict() holds it."""
    return {i: {k: _plain(v, lib) for k, v in s.items()} for i, s in opt.state_dict()["state"].items()}


def _same(got, want, rtol=1e-7, atol=1e-10):
    if isinstance(want, list) or isinstance(got, list):
        return isinstance(got, list) and isinstance(want, list) and len(got) == len(want) and \
            all(_same(g, w, rtol, atol) for g, w in zip(got, want))
    if isinstance(want, np.ndarray) or isinstance(got, np.ndarray):
        return np.shape(got) == np.shape(want) and np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
    if isinstance(want, float) and isinstance(got, (int, float)):
        return np.isclose(got, want, rtol=rtol, atol=atol)
    return got == want


def run_input(oi, inp, seed):
    """None when fastdl matches torch through STEPS steps, else the reason."""
    name = oi.optim_cls.__name__
    tparams, tloss = _problem(torch, name, seed)
    fparams, floss = _problem(fd, name, seed)
    topt = oi.optim_cls(tparams, **inp.kwargs)
    try:
        fopt = _fd_class(oi)(fparams, **{k: _to_fd(v) for k, v in inp.kwargs.items()})
    except Exception as e:  # noqa: BLE001
        return f"constructor raised {type(e).__name__}: {e}"
    for step in range(STEPS):
        def closure(opt, loss):
            def f():
                opt.zero_grad()
                v = loss()
                v.backward()
                return v
            return f
        if oi.step_requires_closure:
            tl = topt.step(closure(topt, tloss))
            try:
                fl = fopt.step(closure(fopt, floss))
            except Exception as e:  # noqa: BLE001
                return f"step {step} raised {type(e).__name__}: {e}"
            if not np.isclose(float(fl), float(tl), rtol=RTOL, atol=ATOL):
                return f"step {step}: closure loss {float(fl)} != {float(tl)}"
        else:
            closure(topt, tloss)()
            closure(fopt, floss)()
            topt.step()
            try:
                fopt.step()
            except Exception as e:  # noqa: BLE001
                return f"step {step} raised {type(e).__name__}: {e}"
        rtol, atol = _param_tol(name, inp.kwargs)
        for i, (f, t) in enumerate(zip(fparams, tparams)):
            a, b = f.detach().numpy(), t.detach().numpy()
            if not np.allclose(a, b, rtol=rtol, atol=atol):
                return f"step {step}: parameter {i} differs by {np.abs(a - b).max():.3g}"
    ts, fs = _state(topt, torch), _state(fopt, fd)
    if set(ts) != set(fs):
        return f"state holds parameters {sorted(fs)}, torch's {sorted(ts)}"
    for i in ts:
        if set(ts[i]) != set(fs[i]):
            return f"state of parameter {i} has keys {sorted(fs[i])}, torch's {sorted(ts[i])}"
        for k, v in ts[i].items():
            rtol, atol = (1e-2, 1e-4) if name == "Muon" else (1e-7, 1e-10)
            if name == "LBFGS" and k == "al":
                # the two-loop recursion's scratch: al_i = ro_i <s_i, q> cancels to noise once the
                # steps are tiny (3.1e-8 against PyTorch's -4.9e-9 beside entries of 0.1 on a Xeon of
                # the Emerald Rapids class, every other state entry equal), so it is compared at the
                # scale of its largest entry
                atol = 1e-6 * max((float(np.abs(np.asarray(x)).max()) for x in v if x is not None), default=0.0)
            if not _same(fs[i][k], v, rtol, atol):
                return f"state {k!r} of parameter {i}: {str(fs[i][k])[:200]} != {str(v)[:200]}"
    return None


def _inputs(oi):
    return oi.optim_inputs_func(device="cpu", dtype=torch.float64)


def test_fastdl_has_every_optimizer_of_torchs_optim_db():
    missing = sorted(oi.optim_cls.__name__ for oi in _optim_db() if _fd_class(oi) is None)
    assert not missing, f"torch's optim_db has optimizers fastdl.optim lacks: {missing}"


@pytest.mark.parametrize("name", sorted(oi.optim_cls.__name__ for oi in _optim_db()) if torch else [])
def test_optimizer_inputs_match_torch(name):
    (oi,) = [o for o in _optim_db() if o.optim_cls.__name__ == name]
    fails = []
    for i, inp in enumerate(_inputs(oi)):
        r = run_input(oi, inp, seed=100 + i)
        if r:
            fails.append(f"{inp.desc} {inp.kwargs}: {r}")
    assert not fails, f"{name}:\n" + "\n".join(fails)


def test_optimizer_error_inputs_raise():
    from torch.testing._internal.common_optimizers import OptimizerErrorEnum
    silent, total = [], 0
    for oi in _optim_db():
        if oi.optim_error_inputs_func is None:
            continue
        for i, e in enumerate(oi.optim_error_inputs_func(device="cpu", dtype=torch.float64)):
            inp = e.optimizer_error_input
            params = inp.params  # a list, a bare tensor, a set: passed in the same container
            total += 1
            where = f"{oi.optim_cls.__name__} error input {i} ({e.error_type.__name__}: {e.error_regex})"
            try:
                fparams = _convert_params(params)
            except _Complex:  # fastdl has no complex dtypes
                continue
            try:
                opt = _fd_class(oi)(fparams, **{k: _to_fd(v) for k, v in inp.kwargs.items()})
            except Exception:  # noqa: BLE001
                if e.error_on != OptimizerErrorEnum.CONSTRUCTION_ERROR:
                    silent.append(where + ": fastdl's constructor raised, torch's step does")
                continue
            if e.error_on == OptimizerErrorEnum.CONSTRUCTION_ERROR:
                silent.append(where + ": fastdl's constructor accepts it")
                continue
            try:
                opt.step(lambda: fd.tensor(0.0)) if oi.step_requires_closure else opt.step()
            except Exception:  # noqa: BLE001
                continue
            silent.append(where + ": fastdl's step returns")
    assert total > 20
    assert not silent, "\n".join(silent)


def _convert_params(params):
    """torch parameters (a tensor, a list of tensors or of param-group dicts, a set) -> fastdl's,
    keeping the container kind (error inputs test the containers) and which tensors are the same."""
    memo = {}

    def one(t):
        if isinstance(t, torch.Tensor) and id(t) in memo:
            return memo[id(t)]
        if isinstance(t, torch.Tensor):
            if t.is_complex():
                raise _Complex
            f = memo[id(t)] = fd.tensor(t.detach().numpy().copy())
            if t.requires_grad:
                f.requires_grad_(True)
            if t.grad is not None:
                f.grad = fd.tensor(t.grad.detach().numpy().copy())
            return f
        if isinstance(t, dict):
            return {k: (one(v) if k == "params" else _to_fd(v)) for k, v in t.items()}
        if isinstance(t, (list, tuple)):
            return type(t)(one(x) for x in t)
        return t
    if isinstance(params, set):
        return {one(t) for t in params}
    return one(params)
