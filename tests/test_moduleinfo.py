"""PyTorch's own module test inputs through fastdl: every ModuleInfo of torch's module database
(torch.testing._internal.common_modules.module_db) whose class fastdl.nn exposes, each of its
module inputs in float64 and in float32, in training mode and (where the module's modes differ) evaluation mode:
- the module is built from the same constructor arguments on both sides and fastdl's copy loads
  torch's state_dict (so the key names and shapes must match PyTorch's);
- outputs, the gradients of a random-weighted sum of the float outputs w.r.t. the inputs and every
  parameter, and the state after the call (BatchNorm's running statistics, ...) are compared.

Random modules (dropout, RReLU in training) are compared in evaluation mode only. Every failing
sample must belong to a module listed in KNOWN_FAILURES (with its reason), and every listed module
must still fail, so the list only shrinks. `python tests/test_moduleinfo.py` prints the report."""
import contextlib
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")

import fastdl as fd  # noqa: E402

import fastdl.nn.functional as F  # noqa: E402
from test_opinfo import _compare, _flat, _to_fd as _opinfo_to_fd  # noqa: E402

# Modules whose output in training mode is random by design.
RANDOM_IN_TRAINING = {"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout", "RReLU"}

# Module name -> why its failing samples fail. Remove an entry once it passes.
KNOWN_FAILURES = {"float64": {}, "float32": {}}

# Per pass: the dtype and the rtol = atol of outputs and state, and of gradients.
PASSES = {"float64": (torch.float64, 1e-7, 1e-6), "float32": (torch.float32, 1e-4, 1e-4)}


def _to_fd(x, memo):
    """torch -> fastdl for constructor and forward arguments: tensors (as the OpInfo harness),
    torch.nn.functional functions by name, and torch modules rebuilt from their recorded
    constructor arguments (_recording_constructors)."""
    if isinstance(x, torch.nn.Module) and hasattr(x, "_fd_ctor"):
        args, kwargs = x._fd_ctor
        return getattr(fd.nn, type(x).__name__)(*_to_fd(list(args), memo), **_to_fd(dict(kwargs), memo))
    if callable(x) and getattr(torch.nn.functional, getattr(x, "__name__", ""), None) is x:
        return getattr(F, x.__name__)
    if isinstance(x, (list, tuple)) and not hasattr(x, "_fields") and not isinstance(x, torch.Size):
        return type(x)(_to_fd(v, memo) for v in x)
    if isinstance(x, dict):
        return {k: _to_fd(v, memo) for k, v in x.items()}
    return _opinfo_to_fd(x, memo)


@contextlib.contextmanager
def _recording_constructors():
    """Every torch.nn module built inside keeps its constructor arguments (as _fd_ctor), so that a
    module passed as an argument (TransformerEncoder's layer) can be rebuilt in fastdl."""
    saved = {}
    for name in dir(torch.nn):
        cls = getattr(torch.nn, name)
        if isinstance(cls, type) and issubclass(cls, torch.nn.Module) and "__init__" in vars(cls):
            saved[cls] = vars(cls)["__init__"]

            def init(self, *args, __orig=saved[cls], __cls=cls, **kwargs):
                __orig(self, *args, **kwargs)
                if type(self) is __cls:
                    object.__setattr__(self, "_fd_ctor", (args, kwargs))
            cls.__init__ = init
    try:
        yield
    finally:
        for cls, f in saved.items():
            cls.__init__ = f


def _clone(x, memo):
    """A copy of the sample's arguments with fresh leaf tensors (same requires_grad), one per
    distinct tensor."""
    if isinstance(x, torch.Tensor):
        if id(x) not in memo:
            memo[id(x)] = x.detach().clone().requires_grad_(x.requires_grad)
        return memo[id(x)]
    if isinstance(x, (list, tuple)) and not hasattr(x, "_fields") and not isinstance(x, torch.Size):
        return type(x)(_clone(v, memo) for v in x)
    if isinstance(x, dict):
        return {k: _clone(v, memo) for k, v in x.items()}
    return x


def _module_db():
    from torch.testing._internal.common_modules import module_db
    return module_db


def _fd_class(mi):
    return getattr(fd.nn, mi.module_cls.__name__, None)


def _modes(mi):
    name = mi.module_cls.__name__
    if name in RANDOM_IN_TRAINING:
        return (False,)
    return (True, False) if mi.train_and_eval_differ else (True,)


def _weighted_sum(outs, rng, lib):
    total = None
    for o in outs:
        if not o.dtype.is_floating_point or not o.requires_grad:
            continue
        w = rng.standard_normal(tuple(o.shape))
        term = (o * lib.tensor(w, dtype=o.dtype)).sum()
        total = term if total is None else total + term
    return total


def run_sample(mi, sample, training, seed, pass_="float64"):
    """None when fastdl matches torch on the sample, "skip" when torch rejects it, else the reason."""
    dtype, tol, grad_tol = PASSES[pass_]
    memo = {}
    ci, fi = sample.constructor_input, sample.forward_input
    torch.manual_seed(seed)
    try:
        tm = mi.module_cls(*ci.args, **ci.kwargs).to(dtype)
        tm.train(training)
    except Exception:
        return "skip"
    targs, tkwargs = _clone(list(fi.args), {}), _clone(dict(fi.kwargs), {})
    try:
        fm = _fd_class(mi)(*_to_fd(list(ci.args), memo), **_to_fd(dict(ci.kwargs), memo))
        fm = fm.to(_to_fd(dtype, {}))
        fm.train(training)
    except Exception as e:  # noqa: BLE001
        return f"constructor raised {type(e).__name__}: {e}"
    fargs, fkwargs = _to_fd(list(targs), memo), _to_fd(dict(tkwargs), memo)
    if mi.is_lazy:  # materialise the parameters on both sides first
        with torch.no_grad():
            tm(*_clone(list(fi.args), {}), **_clone(dict(fi.kwargs), {}))
        with fd.no_grad():
            fm(*_to_fd(_clone(list(fi.args), {}), {}), **_to_fd(_clone(dict(fi.kwargs), {}), {}))
    tsd = tm.state_dict()
    fsd = fm.state_dict()
    if set(tsd) != set(fsd):
        return f"state_dict keys differ: torch only {sorted(set(tsd) - set(fsd))}, fastdl only {sorted(set(fsd) - set(tsd))}"
    try:
        fm.load_state_dict({k: _to_fd(v.detach().clone(), {}) for k, v in tsd.items()})
    except Exception as e:  # noqa: BLE001
        return f"load_state_dict raised {type(e).__name__}: {e}"
    try:
        want = tm(*targs, **tkwargs)
    except Exception:
        return "skip"
    try:
        got = fm(*fargs, **fkwargs)
    except Exception as e:  # noqa: BLE001
        return f"forward raised {type(e).__name__}: {e}"
    r = _compare(got, want, tol, tol)
    if r:
        return f"output {r}"
    # state after the call (running statistics, ...)
    tsd, fsd = tm.state_dict(), fm.state_dict()
    for k in tsd:
        r = _compare(fsd[k], tsd[k], tol, tol)
        if r:
            return f"state {k} after forward: {r}"
    # gradients
    touts, fouts = _flat(want, []), _flat(got, [])
    rng = np.random.default_rng(seed)
    tl = _weighted_sum(touts, rng, torch)
    if tl is None:
        return None
    rng = np.random.default_rng(seed)
    fl = _weighted_sum(fouts, rng, fd)
    if fl is None:
        return "fastdl's outputs do not require grad"
    leaves = [x for x in _flat([targs, list(tkwargs.values())], []) if x.requires_grad and x.is_floating_point()]
    tparams = dict(tm.named_parameters())
    fparams = dict(fm.named_parameters())
    tgrads = torch.autograd.grad(tl, leaves + list(tparams.values()), allow_unused=True)
    fleaves = [memo[id(x)] for x in leaves]
    fgrads = fd.autograd.grad(fl, fleaves + [fparams[k] for k in tparams], allow_unused=True)
    names = [f"input {i}" for i in range(len(leaves))] + list(tparams)
    for n, g, w in zip(names, fgrads, tgrads):
        if w is None:
            continue
        if g is None:
            return f"gradient of {n}: fastdl gives none"
        r = _compare(g, w, grad_tol, grad_tol)
        if r:
            return f"gradient of {n}: {r}"
    return None


def _cases(pass_):
    for mi in _module_db():
        if _fd_class(mi) is None or PASSES[pass_][0] not in mi.dtypes:
            continue
        for training in _modes(mi):
            yield mi, training


def run_module(mi, training, pass_="float64"):
    """(passed, skipped, [(index, reason)]) over the module's inputs."""
    with _recording_constructors():
        samples = mi.module_inputs_func(mi, device="cpu", dtype=PASSES[pass_][0], requires_grad=True,
                                        training=training)
    passed = skipped = 0
    fails = []
    for i, s in enumerate(samples):
        seed = zlib.crc32(f"{mi.formatted_name}-{training}-{i}".encode())
        try:
            r = run_sample(mi, s, training, seed, pass_)
        except Exception as e:  # noqa: BLE001
            r = f"raised {type(e).__name__}: {e}"
        if r is None:
            passed += 1
        elif r == "skip":
            skipped += 1
        else:
            fails.append((i, r))
    return passed, skipped, fails


@pytest.mark.parametrize("pass_", list(PASSES))
def test_every_module_in_torchs_module_db_matches(pass_):
    bad = []
    total = ok = 0
    for mi, training in _cases(pass_):
        passed, _, fails = run_module(mi, training, pass_)
        total += passed + len(fails)
        ok += passed
        name = mi.module_cls.__name__
        if fails and name not in KNOWN_FAILURES[pass_]:
            bad.append(f"{name} ({'train' if training else 'eval'}) sample {fails[0][0]}: {fails[0][1]}")
    assert total > 1000, f"only {total} module samples ran"
    assert not bad, f"{len(bad)} modules fail ({ok}/{total} samples pass):\n" + "\n".join(bad)


def test_fastdl_has_every_module_of_torchs_module_db():
    missing = sorted({mi.module_cls.__name__ for mi in _module_db() if _fd_class(mi) is None})
    assert not missing, f"torch's module_db has modules fastdl.nn lacks: {missing}"


def test_module_error_inputs_raise():
    """Every ModuleErrorInput of torch's module_db (a bad constructor argument or a bad forward
    input) must raise a Python exception in fastdl too, at the same stage, never return."""
    from torch.testing._internal.common_modules import ModuleErrorEnum
    silent, total = [], 0
    for mi in _module_db():
        if mi.module_error_inputs_func is None or _fd_class(mi) is None:
            continue
        with _recording_constructors():
            errors = mi.module_error_inputs_func(mi, device="cpu", dtype=torch.float64, requires_grad=True,
                                                 training=True)
        for i, e in enumerate(errors):
            total += 1
            ci, fi = e.module_error_input.constructor_input, e.module_error_input.forward_input
            memo = {}
            where = f"{mi.module_cls.__name__} error input {i} ({e.error_type.__name__}: {e.error_regex})"
            prev = fd.get_default_dtype()
            fd.set_default_dtype(fd.float64)  # float64 parameters; tensor arguments keep their dtypes
            try:
                m = _fd_class(mi)(*_to_fd(list(ci.args), memo), **_to_fd(dict(ci.kwargs), memo))
            except Exception:  # noqa: BLE001
                if e.error_on != ModuleErrorEnum.CONSTRUCTION_ERROR:
                    silent.append(where + ": fastdl's constructor raised, torch's forward does")
                continue
            finally:
                fd.set_default_dtype(prev)
            if e.error_on == ModuleErrorEnum.CONSTRUCTION_ERROR:
                silent.append(where + ": fastdl's constructor accepts it")
                continue
            try:
                m(*_to_fd(list(fi.args), memo), **_to_fd(dict(fi.kwargs), memo))
            except Exception:  # noqa: BLE001
                continue
            silent.append(where + ": fastdl's forward returns")
    assert total > 50
    assert not silent, "\n".join(silent)


@pytest.mark.parametrize("pass_", list(PASSES))
def test_known_failures_still_fail(pass_):
    by_name = {}
    for mi, training in _cases(pass_):
        by_name.setdefault(mi.module_cls.__name__, []).append((mi, training))
    for name in KNOWN_FAILURES[pass_]:
        assert any(run_module(mi, tr, pass_)[2] for mi, tr in by_name.get(name, [])), f"{name} passes now: remove it"


if __name__ == "__main__":
    import sys
    pass_ = sys.argv[1] if len(sys.argv) > 1 else "float64"
    for mi, training in _cases(pass_):
        passed, skipped, fails = run_module(mi, training, pass_)
        mode = "train" if training else "eval"
        print(f"{mi.module_cls.__name__:32s} {mode:5s} {passed:3d} pass {skipped:2d} skip {len(fails):3d} fail"
              + (f"  #{fails[0][0]}: {fails[0][1][:160]}" if fails else ""))
