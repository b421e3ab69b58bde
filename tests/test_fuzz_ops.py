"""Differential fuzzing against PyTorch: hypothesis draws shapes (0-size and 0-dim included),
dtypes, memory layouts, dims and subscripts; each op's values, shape and dtype must match
torch's, gradients must match in float64 under a random upstream gradient, and wherever torch
raises, fastdl must raise a clean Python exception (ValueError/TypeError/IndexError/
RuntimeError/MemoryError; classes compared loosely since DESIGN.md asks for ValueError and
IndexError where torch says RuntimeError).

Bounded and deterministic (derandomize=True). FASTDL_FUZZ_EXAMPLES=500 explores harder.
Tests that feed deliberately bad subscripts run again in a child process, so a crash there
fails one test instead of killing the run."""
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import fastdl as fd

torch = pytest.importorskip("torch")
hyp = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, Phase, settings  # noqa: E402
from hypothesis import given as _given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

N = int(os.environ.get("FASTDL_FUZZ_EXAMPLES", "40"))
COLLECT = os.environ.get("FASTDL_FUZZ_COLLECT")  # explore: log every failure to this file, don't stop
FUZZ = settings(max_examples=N, derandomize=True, deadline=None, database=None, print_blob=False,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate] if COLLECT else list(Phase))


CTX = []  # drawn values worth logging in explore mode


def given(*strategies):
    def deco(fn):
        if not COLLECT:
            return _given(*strategies)(fn)

        def logged(*a, **k):
            with open(COLLECT + ".last", "w") as f:  # the case that was running if the process dies
                f.write(f"{fn.__name__} {a} {k}\n")
            try:
                fn(*a, **k)
            except (Exception, pytest.fail.Exception) as e:
                with open(COLLECT, "a") as f:
                    f.write(f"{fn.__name__} {a} {k} {CTX}\n    {type(e).__name__}: {str(e)[:400]!r}\n")
            CTX.clear()
        logged.__name__ = fn.__name__
        import inspect
        logged.__signature__ = inspect.signature(fn)
        return _given(*strategies)(logged)
    return deco
ALLOWED = (ValueError, TypeError, IndexError, RuntimeError, MemoryError)
DTYPES = ["float32", "float64", "int64", "int32", "bool", "float16", "bfloat16"]
FLOATS = ["float32", "float64", "float16", "bfloat16"]
NUMERIC = ["float32", "float64", "int64", "int32", "float16", "bfloat16"]
TOL = {"float32": (2e-5, 2e-5), "float64": (1e-9, 1e-10), "float16": (4e-3, 2e-3), "bfloat16": (2e-2, 2e-2)}
torch.set_num_threads(1)
child_only = pytest.mark.skipif(not os.environ.get("FASTDL_FUZZ_CHILD"), reason="runs in a child process")


# ---- data: one numpy array, turned into a torch tensor and a fastdl tensor of any layout --------
def values(rng, shape, dt, lo=-4, hi=4):
    if dt == "bool":
        return rng.random(shape) < 0.5
    if dt in ("int32", "int64"):
        return rng.integers(lo, hi + 1, size=shape).astype(dt)
    x = rng.uniform(lo, hi, size=shape)
    x[np.abs(x) < 0.05] = 0.5  # keep away from 0 where kinks and poles live
    return x.astype(np.float64 if dt == "float64" else np.float32)


def th(arr, dt):
    return torch.tensor(arr).to(getattr(torch, dt))


def fdt(arr, dt, layout="contig"):
    """A fastdl tensor holding arr in a chosen layout: contiguous, transposed storage, or a
    stepped slice of a larger buffer."""
    d = getattr(fd, dt)
    if layout == "contig" or arr.ndim == 0:
        return fd.tensor(arr, dtype=d)
    if layout == "T":
        rev = tuple(range(arr.ndim - 1, -1, -1))
        return fd.tensor(np.ascontiguousarray(arr.transpose(rev)), dtype=d).permute(*rev)
    big = np.zeros(tuple(2 * s + 1 for s in arr.shape), dtype=arr.dtype)
    sl = tuple(slice(1, None, 2) for _ in arr.shape)
    big[sl] = arr
    return fd.tensor(big, dtype=d)[sl]


def host(x):
    if isinstance(x, fd.Tensor):
        x = x.detach()
        return (x.float() if x.dtype in (fd.bfloat16, fd.float16) else x).numpy()
    x = x.detach()
    return (x.float() if x.dtype in (torch.bfloat16, torch.float16) else x).numpy()


def dname(d):
    return str(d).split(".")[-1]


def same(got, want, tol=None, path="out"):
    if isinstance(want, torch.Tensor):
        assert isinstance(got, fd.Tensor), f"{path}: expected a Tensor; got {type(got).__name__}"
        assert tuple(got.shape) == tuple(want.shape), f"{path}: shape {tuple(got.shape)} != torch {tuple(want.shape)}"
        assert dname(got.dtype) == dname(want.dtype), f"{path}: dtype {got.dtype} != torch {want.dtype}"
        r, a = tol or TOL.get(dname(want.dtype), (0, 0))
        np.testing.assert_allclose(host(got).astype(np.float64), host(want).astype(np.float64), rtol=r, atol=a,
                                   equal_nan=True, err_msg=path)
    elif isinstance(want, (tuple, list)):
        assert len(got) == len(want), f"{path}: {len(got)} results != torch {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            same(g, w, tol, f"{path}[{i}]")
    elif isinstance(want, (bool, int, float)):
        assert type(got) is type(want) and (got == want or (got != got and want != want)), f"{path}: {got!r} != {want!r}"
    else:
        assert got == want, f"{path}: {got!r} != {want!r}"


def diff(fd_fn, th_fn, tol=None):
    """Run both; equal results, or both raise (fastdl with a clean Python exception)."""
    try:
        want = th_fn()
    except Exception as e:  # torch refuses: fastdl must refuse too, cleanly
        if "not implemented for" in str(e):
            return None
        try:
            got = fd_fn()
        except ALLOWED as fe:
            assert str(fe), "exception without a message"
            return None
        raise AssertionError(f"torch raised {type(e).__name__}: {e}; fastdl returned {got!r}")
    got = fd_fn()
    same(got, want, tol)
    return got


def grads(fd_fn, th_fn, arrays, rng, tol=(1e-8, 1e-9)):
    """Forward and backward in float64 with a random upstream gradient."""
    tt = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    ft = [fd.tensor(a, dtype=fd.float64, requires_grad=True) for a in arrays]
    try:
        want = th_fn(*tt)
    except Exception:
        return
    got = fd_fn(*ft)
    same(got, want.detach(), tol)
    if not want.requires_grad:
        return
    up = rng.standard_normal(tuple(want.shape))
    want.backward(torch.tensor(up))
    got.backward(fd.tensor(up, dtype=fd.float64))
    for i, (g, w) in enumerate(zip(ft, tt)):
        wg = w.grad if w.grad is not None else torch.zeros_like(w)
        gg = g.grad if g.grad is not None else fd.zeros_like(g)
        same(gg, wg, tol, f"grad[{i}]")


# ---- strategies ---------------------------------------------------------------------------------
seeds = st.integers(0, 2 ** 32 - 1)
layouts = st.sampled_from(["contig", "T", "step"])
dtypes = st.sampled_from(DTYPES)


def shapes(min_dims=0, max_dims=4, min_side=0, max_side=4):
    return st.lists(st.integers(min_side, max_side), min_size=min_dims, max_size=max_dims).map(tuple)


@st.composite
def bshapes(draw, max_dims=4):
    """Two shapes that broadcast (mostly), one of them possibly shorter."""
    out = draw(shapes(0, max_dims, 0, 3))
    a, b = list(out), list(out)
    for s in (a, b):
        for i in range(len(s)):
            if draw(st.integers(0, 3)) == 0:
                s[i] = 1
    cut = draw(st.integers(0, len(b)))
    b = b[cut:]
    if draw(st.integers(0, 12)) == 0 and a:  # occasionally incompatible
        a[0] = a[0] + 2
    return tuple(a), tuple(b)


def dim_of(draw, ndim, allow_bad=True):
    hi = max(ndim, 1)
    lo, top = (-hi - 1, hi) if allow_bad and draw(st.integers(0, 10)) == 0 else (-hi, hi - 1)
    return draw(st.integers(lo, top))


# ---- elementwise --------------------------------------------------------------------------------
UNARY = ["neg", "exp", "log", "sqrt", "rsqrt", "abs", "sin", "cos", "tan", "tanh", "sigmoid", "relu", "log1p",
         "expm1", "sign", "floor", "ceil", "round", "trunc", "reciprocal", "square", "erf", "exp2", "log2", "log10",
         "asin", "acos", "atan", "sinh", "cosh", "logical_not", "isnan", "isinf", "isfinite", "silu"]
TH_UNARY = {"silu": torch.nn.functional.silu, "relu": torch.relu}
SCALAR_OK = {"add", "sub", "mul", "div", "pow", "remainder", "floor_divide", "eq", "ne", "lt", "le", "gt", "ge"}


@FUZZ
@given(st.sampled_from(UNARY), dtypes, shapes(), layouts, seeds, st.booleans())
def test_unary(op, dt, shape, layout, seed, method):
    rng = np.random.default_rng(seed)
    a = values(rng, shape, dt)
    x = fdt(a, dt, layout)
    tfn = TH_UNARY.get(op) or getattr(torch, op)
    tol = (2e-2, 2e-2) if dt in ("float16", "bfloat16") else (1e-4, 1e-5) if dt in ("float32", "int32", "int64", "bool") else None
    diff(lambda: getattr(x, op)() if method else getattr(fd, op)(x), lambda: tfn(th(a, dt)), tol)


BINARY = ["add", "sub", "mul", "div", "pow", "maximum", "minimum", "atan2", "remainder", "floor_divide", "eq", "ne",
          "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor"]
OPERATORS = {"add": "__add__", "sub": "__sub__", "mul": "__mul__", "div": "__truediv__", "pow": "__pow__",
             "remainder": "__mod__", "floor_divide": "__floordiv__", "eq": "__eq__", "ne": "__ne__", "lt": "__lt__",
             "le": "__le__", "gt": "__gt__", "ge": "__ge__"}


def _binary_tol(dts):
    if any(d in ("float16", "bfloat16") for d in dts):
        return (2e-2, 2e-2)
    return (1e-5, 1e-5) if "float64" not in dts else (1e-5, 1e-6)


@FUZZ
@given(st.sampled_from(BINARY), dtypes, dtypes, bshapes(), layouts, seeds, st.sampled_from(["fn", "method", "op"]))
def test_binary_tensors(op, da, db, shp, layout, seed, how):
    rng = np.random.default_rng(seed)
    a, b = values(rng, shp[0], da), values(rng, shp[1], db, 1, 4)
    x, y = fdt(a, da, layout), fdt(b, db)
    if how == "op" and op in OPERATORS:
        f = lambda: getattr(x, OPERATORS[op])(y)  # noqa: E731
    else:
        f = (lambda: getattr(x, op)(y)) if how == "method" else (lambda: getattr(fd, op)(x, y))
    diff(f, lambda: getattr(torch, op)(th(a, da), th(b, db)), _binary_tol((da, db)))


scalars = st.one_of(st.integers(-3, 3), st.sampled_from([0.5, -1.5, 2.0, 0.0, 1e-3]), st.booleans())


@FUZZ
@given(st.sampled_from(BINARY), dtypes, shapes(), layouts, seeds, scalars, st.booleans())
def test_binary_scalar(op, dt, shape, layout, seed, s, reflected):
    if op not in SCALAR_OK:  # torch takes only tensors there
        return
    rng = np.random.default_rng(seed)
    a = values(rng, shape, dt, 1, 4)
    x = fdt(a, dt, layout)
    if reflected and op in OPERATORS and op not in ("eq", "ne", "lt", "le", "gt", "ge"):
        name = "__r" + OPERATORS[op][2:]
        diff(lambda: getattr(x, name)(s), lambda: getattr(th(a, dt), name)(s), _binary_tol((dt,)))
        return
    diff(lambda: getattr(fd, op)(x, s), lambda: getattr(torch, op)(th(a, dt), s), _binary_tol((dt,)))
    if op in OPERATORS:
        n = OPERATORS[op]
        diff(lambda: getattr(x, n)(s), lambda: getattr(th(a, dt), n)(s), _binary_tol((dt,)))


@FUZZ
@given(st.sampled_from(["add", "sub", "mul", "div", "pow", "maximum", "eq", "lt", "remainder"]), dtypes, dtypes,
       shapes(0, 3), seeds)
def test_binary_zero_dim_promotion(op, da, db, shape, seed):
    """0-dim tensors take part in type promotion only by category (PyTorch's rule)."""
    rng = np.random.default_rng(seed)
    a, b = values(rng, shape, da, 1, 3), values(rng, (), db, 1, 3)
    x, y = fdt(a, da), fdt(b, db)
    diff(lambda: getattr(fd, op)(x, y), lambda: getattr(torch, op)(th(a, da), th(b, db)), _binary_tol((da, db)))
    diff(lambda: getattr(fd, op)(y, x), lambda: getattr(torch, op)(th(b, db), th(a, da)), _binary_tol((da, db)))


@FUZZ
@given(st.sampled_from(BINARY[:4] + ["maximum"]), st.sampled_from(["float32", "float64", "int64", "int32"]), bshapes(3), seeds)
def test_binary_inplace(op, dt, shp, seed):
    rng = np.random.default_rng(seed)
    a, b = values(rng, shp[0], dt, 1, 4), values(rng, shp[1], dt, 1, 4)
    x = fdt(a, dt)
    t = th(a, dt)
    if not hasattr(t, op + "_"):
        return
    diff(lambda: getattr(x, op + "_")(fdt(b, dt)), lambda: getattr(t, op + "_")(th(b, dt)), _binary_tol((dt,)))


@FUZZ
@given(dtypes, bshapes(3), shapes(0, 2, 1, 3), seeds, st.sampled_from(["tt", "ts", "st", "ss"]))
def test_where(dt, shp, cshape, seed, kind):
    rng = np.random.default_rng(seed)
    c = values(rng, shp[0], "bool")
    a, b = values(rng, shp[1], dt), values(rng, cshape, dt)
    xa = fdt(a, dt) if kind[0] == "t" else 1.5
    xb = fdt(b, dt) if kind[1] == "t" else -2
    ta = th(a, dt) if kind[0] == "t" else 1.5
    tb = th(b, dt) if kind[1] == "t" else -2
    if kind == "ss":
        return
    diff(lambda: fd.where(fdt(c, "bool"), xa, xb), lambda: torch.where(th(c, "bool"), ta, tb))


@FUZZ
@given(st.sampled_from(NUMERIC), shapes(), seeds, st.sampled_from([None, -1, 0, 1.5, 2]), st.sampled_from([None, 1, 2.5, -3]))
def test_clamp(dt, shape, seed, lo, hi):
    rng = np.random.default_rng(seed)
    a = values(rng, shape, dt)
    x = fdt(a, dt, "T")
    if lo is None and hi is None:
        return
    diff(lambda: x.clamp(lo, hi), lambda: th(a, dt).clamp(lo, hi), _binary_tol((dt,)))
    diff(lambda: fd.clamp(x, min=lo, max=hi), lambda: torch.clamp(th(a, dt), min=lo, max=hi), _binary_tol((dt,)))
    lt = values(rng, shape[-1:], dt)
    diff(lambda: x.clamp(min=fdt(lt, dt)), lambda: th(a, dt).clamp(min=th(lt, dt)), _binary_tol((dt,)))


GRAD_UNARY = ["neg", "exp", "tanh", "sigmoid", "sin", "cos", "abs", "square", "erf", "atan", "silu", "relu", "log1p",
              "expm1", "sinh", "cosh", "exp2"]


@FUZZ
@given(st.sampled_from(GRAD_UNARY), shapes(0, 3), seeds)
def test_unary_grad(op, shape, seed):
    rng = np.random.default_rng(seed)
    a = values(rng, shape, "float64", -1, 1)
    tfn = TH_UNARY.get(op) or getattr(torch, op)
    grads(lambda x: getattr(fd, op)(x), lambda x: tfn(x), [a], rng)


@FUZZ
@given(st.sampled_from(["add", "sub", "mul", "div", "pow", "maximum", "minimum", "atan2"]), bshapes(3), seeds)
def test_binary_grad(op, shp, seed):
    rng = np.random.default_rng(seed)
    a, b = values(rng, shp[0], "float64", 0.5, 2), values(rng, shp[1], "float64", 0.5, 2)
    grads(lambda x, y: getattr(fd, op)(x, y), lambda x, y: getattr(torch, op)(x, y), [a, b], rng)


@FUZZ
@given(bshapes(3), seeds)
def test_where_clamp_grad(shp, seed):
    rng = np.random.default_rng(seed)
    a, b = values(rng, shp[0], "float64"), values(rng, shp[1], "float64")
    c = fd.tensor(a > 0)
    grads(lambda x, y: fd.where(c, x, y), lambda x, y: torch.where(torch.tensor(a > 0), x, y), [a, b], rng)
    grads(lambda x: x.clamp(-1, 2), lambda x: x.clamp(-1, 2), [a], rng)


# ---- reductions ---------------------------------------------------------------------------------
@st.composite
def dims_arg(draw, ndim):
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return None
    if kind == 1 or ndim == 0:
        return dim_of(draw, ndim)
    k = draw(st.integers(1, ndim))
    ds = draw(st.permutations(range(ndim)))[:k]
    return tuple(d - ndim if draw(st.booleans()) else d for d in ds)


RED = ["sum", "mean", "prod", "amax", "amin", "logsumexp", "all", "any", "nansum"]


@FUZZ
@given(st.sampled_from(RED[:-1]), dtypes, shapes(), layouts, seeds, st.data(), st.booleans())
def test_reductions(op, dt, shape, layout, seed, data, keepdim):
    rng = np.random.default_rng(seed)
    a = values(rng, shape, dt, -2, 2)
    x = fdt(a, dt, layout)
    dim = data.draw(dims_arg(len(shape)))
    if op == "prod" and isinstance(dim, tuple):
        dim = dim[0]
    tol = (3e-2, 3e-2) if dt in ("float16", "bfloat16") else (1e-4, 1e-4) if dt != "float64" else None
    if dim is None and op not in ("logsumexp",):
        diff(lambda: getattr(x, op)(), lambda: getattr(th(a, dt), op)(), tol)
    if op == "logsumexp" and dim is None:
        return
    diff(lambda: getattr(x, op)(dim, keepdim=keepdim) if dim is not None else getattr(x, op)(keepdim=keepdim),
         lambda: getattr(th(a, dt), op)(dim, keepdim=keepdim) if dim is not None else getattr(th(a, dt), op)(
             dim=None if op not in ("all", "any") else tuple(range(len(shape))), keepdim=keepdim) if op not in ("prod",) or dim is not None
         else th(a, dt).prod().reshape((1,) * len(shape) if keepdim else ()), tol)


@FUZZ
@given(st.sampled_from(["max", "min", "argmax", "argmin"]), st.sampled_from(NUMERIC + ["bool"]), shapes(), layouts, seeds,
       st.data(), st.booleans())
def test_max_min_arg(op, dt, shape, layout, seed, data, keepdim):
    rng = np.random.default_rng(seed)
    a = values(rng, shape, dt, -3, 3)
    if dt not in ("bool",) and a.size:  # unique values: ties pick indices differently
        a = (rng.permutation(a.size).reshape(shape) - a.size // 2).astype(a.dtype) * (0.25 if dt in FLOATS else 1)
    x = fdt(a, dt, layout)
    d = dim_of(data.draw, len(shape))
    diff(lambda: getattr(x, op)(), lambda: getattr(th(a, dt), op)())
    diff(lambda: getattr(x, op)(d, keepdim=keepdim), lambda: getattr(th(a, dt), op)(d, keepdim=keepdim))
    diff(lambda: getattr(fd, op)(x, dim=d, keepdim=keepdim), lambda: getattr(torch, op)(th(a, dt), dim=d, keepdim=keepdim))


@FUZZ
@given(st.sampled_from(["var", "std"]), st.sampled_from(FLOATS), shapes(), seeds, st.data(), st.booleans(),
       st.sampled_from([None, 0, 1, 2, 0.5]))
def test_var_std(op, dt, shape, seed, data, keepdim, correction):
    rng = np.random.default_rng(seed)
    a = values(rng, shape, dt)
    x = fdt(a, dt, "step")
    dim = data.draw(dims_arg(len(shape)))
    tol = (3e-2, 3e-2) if dt in ("float16", "bfloat16") else (1e-4, 1e-5)
    diff(lambda: getattr(x, op)(dim, correction=correction, keepdim=keepdim),
         lambda: getattr(th(a, dt), op)(dim, correction=correction, keepdim=keepdim), tol)
    if dim is not None and not isinstance(dim, tuple):
        diff(lambda: getattr(x, op)(dim, unbiased=False), lambda: getattr(th(a, dt), op)(dim, unbiased=False), tol)


@FUZZ
@given(st.sampled_from(NUMERIC + ["bool"]), shapes(), seeds, st.data())
def test_cumsum(dt, shape, seed, data):
    rng = np.random.default_rng(seed)
    a = values(rng, shape, dt)
    d = dim_of(data.draw, len(shape))
    tol = (3e-2, 5e-2) if dt in ("float16", "bfloat16") else (1e-4, 1e-4)
    diff(lambda: fdt(a, dt, "T").cumsum(d), lambda: th(a, dt).cumsum(d), tol)
    diff(lambda: fd.cumsum(fdt(a, dt), dim=d), lambda: torch.cumsum(th(a, dt), dim=d), tol)


@FUZZ
@given(st.sampled_from(["float32", "float64"]), shapes(0, 3), seeds, st.data(), st.sampled_from([2, 1, 3, math.inf, 0.5]),
       st.booleans())
def test_norm(dt, shape, seed, data, p, keepdim):
    rng = np.random.default_rng(seed)
    a = values(rng, shape, dt)
    dim = data.draw(dims_arg(len(shape)))
    diff(lambda: fdt(a, dt).norm(p, dim, keepdim), lambda: th(a, dt).norm(p, dim, keepdim), (1e-4, 1e-5))


@FUZZ
@given(st.sampled_from(["sum", "mean", "prod", "amax", "amin", "var", "std", "logsumexp", "max", "norm", "cumsum"]),
       shapes(1, 3, 1, 4), seeds, st.data(), st.booleans())
def test_reduction_grad(op, shape, seed, data, keepdim):
    rng = np.random.default_rng(seed)
    a = values(rng, shape, "float64")
    if a.size:
        a = a + rng.permutation(a.size).reshape(shape) * 0.01  # no ties
    d = dim_of(data.draw, len(shape), allow_bad=False)
    if op == "cumsum":
        grads(lambda x: x.cumsum(d), lambda x: x.cumsum(d), [a], rng)
    elif op == "max":
        grads(lambda x: x.max(d, keepdim)[0], lambda x: x.max(d, keepdim)[0], [a], rng)
        grads(lambda x: x.max(), lambda x: x.max(), [a], rng)
    elif op == "norm":
        grads(lambda x: x.norm(2, d, keepdim), lambda x: x.norm(2, d, keepdim), [a], rng)
    else:
        grads(lambda x: getattr(x, op)(d, keepdim=keepdim), lambda x: getattr(x, op)(d, keepdim=keepdim), [a], rng)


# ---- shape ops ----------------------------------------------------------------------------------
@st.composite
def shape_case(draw):
    shape = draw(shapes(0, 4, 0, 4))
    n = len(shape)
    op = draw(st.sampled_from(["reshape", "view", "permute", "transpose", "expand", "squeeze", "unsqueeze", "flatten",
                               "narrow", "select", "movedim", "flip", "repeat", "tril", "triu", "split", "chunk",
                               "unbind", "swapaxes", "contiguous", "T", "mT", "broadcast_to"]))
    if op in ("reshape", "view"):
        numel = int(np.prod(shape))
        dims = list(draw(st.permutations(list(shape))))
        if dims and draw(st.booleans()):
            dims[draw(st.integers(0, len(dims) - 1))] = -1
        if draw(st.integers(0, 6)) == 0:
            dims = dims + [2]
        args = (tuple(dims),) if draw(st.booleans()) else tuple(dims)
        del numel
    elif op == "permute":
        p = list(draw(st.permutations(range(n))))
        if p and draw(st.integers(0, 8)) == 0:
            p[0] = p[-1]
        args = tuple(p)
    elif op in ("transpose", "swapaxes", "movedim"):
        args = (dim_of(draw, n), dim_of(draw, n))
    elif op in ("expand", "broadcast_to"):
        new = [s if s != 1 else draw(st.integers(0, 3)) for s in shape]
        new = [draw(st.integers(1, 2)) for _ in range(draw(st.integers(0, 2)))] + new
        if new and draw(st.booleans()):
            new[-1] = -1 if op == "expand" else new[-1]
        args = (tuple(new),) if op == "broadcast_to" else tuple(new)
    elif op == "squeeze":
        args = draw(st.sampled_from([(), (dim_of(draw, n),), (tuple(range(n)),) if n else ()]))
    elif op == "unsqueeze":
        args = (draw(st.integers(-n - 1, n)),)
    elif op == "flatten":
        args = (dim_of(draw, n), dim_of(draw, n)) if n else ()
    elif op == "narrow":
        d = dim_of(draw, n)
        args = (d, draw(st.integers(-4, 4)), draw(st.integers(0, 4)))
    elif op == "select":
        args = (dim_of(draw, n), draw(st.integers(-5, 5)))
    elif op == "flip":
        args = (tuple(sorted(set(dim_of(draw, n) for _ in range(draw(st.integers(0, 2)))))),)
    elif op == "repeat":
        args = tuple(draw(st.integers(0, 3)) for _ in range(n + draw(st.integers(0, 2))))
    elif op in ("tril", "triu"):
        args = (draw(st.integers(-3, 3)),)
    elif op == "split":
        args = (draw(st.one_of(st.integers(1, 3), st.lists(st.integers(0, 3), min_size=1, max_size=3))), dim_of(draw, n))
    elif op == "chunk":
        args = (draw(st.integers(1, 4)), dim_of(draw, n))
    elif op == "unbind":
        args = (dim_of(draw, n),)
    else:
        args = ()
    return op, shape, args


@FUZZ
@given(shape_case(), dtypes, layouts, seeds)
def test_shape_ops(case, dt, layout, seed):
    op, shape, args = case
    rng = np.random.default_rng(seed)
    a = values(rng, shape, dt)
    x = fdt(a, dt, layout)
    targs = tuple(list(v) if isinstance(v, list) else v for v in args)
    if op in ("T", "mT"):
        diff(lambda: getattr(x, op), lambda: getattr(th(a, dt), op))
        return
    if op == "view" and layout != "contig":
        try:  # torch's view rule depends on strides: compare on the same layout
            want = fdt_torch(a, dt, layout).view(*targs)
        except Exception:
            with pytest.raises(ALLOWED):
                x.view(*args)
            return
        same(x.view(*args), want)
        return
    diff(lambda: getattr(x, op)(*args), lambda: getattr(th(a, dt), op)(*targs))


def fdt_torch(arr, dt, layout):
    t = th(arr, dt)
    if layout == "T" and arr.ndim:
        rev = tuple(range(arr.ndim - 1, -1, -1))
        return th(np.ascontiguousarray(arr.transpose(rev)), dt).permute(*rev)
    if layout == "step" and arr.ndim:
        big = torch.zeros(tuple(2 * s + 1 for s in arr.shape), dtype=t.dtype)
        sl = tuple(slice(1, None, 2) for _ in arr.shape)
        big[sl] = t
        return big[sl]
    return t


@FUZZ
@given(st.sampled_from(["cat", "stack"]), shapes(0, 3, 0, 3), st.lists(dtypes, min_size=1, max_size=3), seeds, st.data())
def test_cat_stack(op, shape, dts, seed, data):
    rng = np.random.default_rng(seed)
    n = len(shape)
    d = data.draw(st.integers(-n - 1, n)) if op == "stack" else dim_of(data.draw, n)
    arrs = []
    for dt in dts:
        s = list(shape)
        if op == "cat" and n and data.draw(st.booleans()):
            s[d % n if -n <= d < n else 0] = data.draw(st.integers(0, 3))
        arrs.append((values(rng, tuple(s), dt), dt))
    diff(lambda: getattr(fd, op)([fdt(a, dt, "T") for a, dt in arrs], d),
         lambda: getattr(torch, op)([th(a, dt) for a, dt in arrs], d))
    diff(lambda: getattr(fd, op)(tuple(fdt(a, dt) for a, dt in arrs), dim=d),
         lambda: getattr(torch, op)(tuple(th(a, dt) for a, dt in arrs), dim=d))


@FUZZ
@given(shape_case(), seeds)
def test_shape_grad(case, seed):
    op, shape, args = case
    if op in ("split", "chunk", "unbind", "contiguous") or not args and op in ("permute", "reshape", "view", "expand", "repeat"):
        op, args = "flatten", ()
    rng = np.random.default_rng(seed)
    a = values(rng, shape, "float64")
    targs = tuple(list(v) if isinstance(v, list) else v for v in args)
    if op in ("T", "mT"):
        grads(lambda x: getattr(x, op), lambda x: getattr(x, op), [a], rng)
        return
    grads(lambda x: getattr(x, op)(*args), lambda x: getattr(x, op)(*targs), [a], rng)


@FUZZ
@given(shapes(1, 3, 1, 4), st.integers(1, 3), seeds, st.data())
def test_cat_split_grad(shape, k, seed, data):
    rng = np.random.default_rng(seed)
    d = dim_of(data.draw, len(shape), allow_bad=False)
    arrs = [values(rng, shape, "float64") for _ in range(k)]
    grads(lambda *xs: fd.cat(list(xs), d), lambda *xs: torch.cat(list(xs), d), arrs, rng)
    grads(lambda *xs: fd.stack(list(xs), d), lambda *xs: torch.stack(list(xs), d), arrs, rng)
    grads(lambda x: fd.cat(x.split(2, d)[::-1], d), lambda x: torch.cat(x.split(2, d)[::-1], d), arrs[:1], rng)


# ---- indexing -----------------------------------------------------------------------------------
@st.composite
def subscripts(draw, shape, valid=True):
    """A random subscript for `shape`: ints, slices with steps, None, Ellipsis, integer
    tensors/lists and boolean masks, mixed."""
    items, d, n = [], 0, len(shape)
    used_ellipsis = False
    for _ in range(draw(st.integers(0, n + 2))):
        kind = draw(st.sampled_from(["int", "slice", "slice", "none", "ellipsis", "itensor", "mask", "list"]))
        size = shape[d] if d < n else 0
        if kind == "none":
            items.append(None)
            continue
        if kind == "ellipsis":
            if not used_ellipsis:
                items.append(Ellipsis)
                used_ellipsis = True
                d = n - (n - d) // 2  # skip some dims
            continue
        if d >= n:
            break
        if kind == "int":
            if valid and size == 0:
                items.append(slice(None))
            else:
                items.append(draw(st.integers(-size, size - 1) if valid else st.integers(-size - 2, size + 1)))
        elif kind == "slice":
            lo = draw(st.one_of(st.none(), st.integers(-6, 6)))
            hi = draw(st.one_of(st.none(), st.integers(-6, 6)))
            step = draw(st.one_of(st.none(), st.integers(1, 3)))
            items.append(slice(lo, hi, step))
        elif kind in ("itensor", "list"):
            k = draw(st.integers(0, 3))
            lo, hi = (-size, size - 1) if valid else (-size - 1, size)
            idx = [draw(st.integers(lo, hi)) for _ in range(k)] if size or not valid else []
            if kind == "list" and idx:
                items.append(idx)
            else:
                shp = (len(idx),) if draw(st.booleans()) or len(idx) != 2 else (2, 1)
                items.append(np.array(idx, dtype=np.int64).reshape(shp))
        else:  # mask over one or two dims
            m = 2 if d + 1 < n and draw(st.booleans()) else 1
            ms = shape[d:d + m]
            if not valid and draw(st.booleans()):
                ms = tuple(s + 1 for s in ms)
            bits = draw(st.lists(st.booleans(), min_size=int(np.prod(ms)), max_size=int(np.prod(ms))))
            items.append(np.array(bits, dtype=bool).reshape(ms))
            d += m - 1
        d += 1
    return tuple(items) if draw(st.booleans()) or len(items) != 1 else items[0]


def _conv_key(key, lib):
    def one(k):
        if isinstance(k, np.ndarray):
            return fd.tensor(k) if lib == "fd" else torch.tensor(k)
        return k
    return tuple(one(k) for k in key) if isinstance(key, tuple) else one(key)


def _index_case(dt, shape, layout, seed, key, setval):
    if COLLECT:
        with open(COLLECT + ".last", "a") as f:
            f.write(f"    key={key!r}\n")
    rng = np.random.default_rng(seed)
    a = values(rng, shape, dt)
    x, t = fdt(a, dt, layout), th(a, dt)
    fk, tk = _conv_key(key, "fd"), _conv_key(key, "th")
    try:
        empty = t[tk].numel() == 0
    except Exception:
        empty = False
    if empty and not valid_key(key, shape):  # torch skips bounds checks when nothing is read; fastdl checks
        return
    got = diff(lambda: x[fk], lambda: t[tk])
    if got is None or not setval:
        return
    # assignment: a broadcastable value, a scalar, or a same-shape tensor
    vshape = tuple(got.shape)[-1:] if got.ndim and setval == "row" else tuple(got.shape)
    v = values(rng, vshape, dt)
    before = host(x).copy()
    try:
        t[tk] = th(v, dt) if setval != "scalar" else 3
    except Exception:  # e.g. duplicate indices are fine in torch; any torch refusal: fastdl must refuse cleanly
        with pytest.raises(ALLOWED):
            x[fk] = fdt(v, dt) if setval != "scalar" else 3
        np.testing.assert_array_equal(host(x), before)  # nothing half written
        return
    x[fk] = fdt(v, dt) if setval != "scalar" else 3
    if not _has_duplicates(key, shape):
        same(x, t)


def valid_key(key, shape):
    try:
        np.zeros(shape)[key]
        return True
    except IndexError:
        return False


def _has_duplicates(key, shape):
    for k in (key if isinstance(key, tuple) else (key,)):
        if isinstance(k, (list, np.ndarray)) and np.asarray(k).dtype != bool and len(np.asarray(k).ravel()) > 1:
            return True
    return False


@FUZZ
@given(st.sampled_from(["float32", "int64", "bool", "bfloat16", "float64"]), shapes(0, 4, 0, 4), layouts, seeds, st.data(),
       st.sampled_from([None, "full", "row", "scalar"]))
def test_index_valid(dt, shape, layout, seed, data, setval):
    key = data.draw(subscripts(shape))
    _index_case(dt, shape, layout, seed, key, setval)


@child_only
@FUZZ
@given(st.sampled_from(["float32", "int32"]), shapes(0, 3, 0, 3), seeds, st.data(), st.sampled_from([None, "full", "scalar"]))
def test_index_invalid(dt, shape, seed, data, setval):
    key = data.draw(subscripts(shape, valid=False))
    _index_case(dt, shape, "contig", seed, key, setval)


@FUZZ
@given(shapes(1, 3, 1, 4), seeds, st.data())
def test_index_grad(shape, seed, data):
    key = data.draw(subscripts(shape))
    CTX.append(key)
    if COLLECT:
        with open(COLLECT + ".last", "a") as f:
            f.write(f"    key={key!r}\n")
    rng = np.random.default_rng(seed)
    a = values(rng, shape, "float64")
    grads(lambda x: x[_conv_key(key, "fd")], lambda x: x[_conv_key(key, "th")], [a], rng)


@st.composite
def gather_case(draw, valid=True):
    shape = draw(shapes(1, 3, 1, 4))
    n = len(shape)
    d = dim_of(draw, n, allow_bad=not valid)
    ishape = tuple(draw(st.integers(0, s)) for s in shape)
    return shape, d, ishape


@FUZZ
@given(gather_case(), st.sampled_from(["float32", "float64", "int64", "bfloat16"]), seeds, st.booleans())
def test_gather_scatter(case, dt, seed, bad):
    shape, d, ishape = case
    rng = np.random.default_rng(seed)
    a = values(rng, shape, dt)
    size = shape[d] if -len(shape) <= d < len(shape) else 1
    idx = rng.integers(0, size + (1 if bad else 0), size=ishape)
    src = values(rng, ishape, dt)
    fi, ti = fd.tensor(idx), torch.tensor(idx)
    diff(lambda: fdt(a, dt, "T").gather(d, fi), lambda: th(a, dt).gather(d, ti))
    diff(lambda: fd.gather(fdt(a, dt), d, fi), lambda: torch.gather(th(a, dt), d, ti))
    tol = (3e-2, 3e-2) if dt == "bfloat16" else (1e-5, 1e-5)
    diff(lambda: fdt(a, dt, "step").scatter_add(d, fi, fdt(src, dt)), lambda: th(a, dt).scatter_add(d, ti, th(src, dt)), tol)
    flat = rng.integers(-size if not bad else -size - 1, size + (1 if bad else 0), size=ishape[:1])
    diff(lambda: fdt(a, dt).index_select(d, fd.tensor(flat)), lambda: th(a, dt).index_select(d, torch.tensor(flat)))
    mask = rng.random(shape[-1:]) < 0.5
    diff(lambda: fdt(a, dt, "T").masked_fill(fd.tensor(mask), 2.0), lambda: th(a, dt).masked_fill(torch.tensor(mask), 2.0))


@FUZZ
@given(gather_case(), seeds)
def test_gather_scatter_grad(case, seed):
    shape, d, ishape = case
    rng = np.random.default_rng(seed)
    a, src = values(rng, shape, "float64"), values(rng, ishape, "float64")
    idx = rng.integers(0, shape[d], size=ishape)
    fi, ti = fd.tensor(idx), torch.tensor(idx)
    grads(lambda x: x.gather(d, fi), lambda x: x.gather(d, ti), [a], rng)
    grads(lambda x, s: x.scatter_add(d, fi, s), lambda x, s: x.scatter_add(d, ti, s), [a, src], rng)
    sel = rng.integers(0, shape[d], size=ishape[:1])
    grads(lambda x: x.index_select(d, fd.tensor(sel)), lambda x: x.index_select(d, torch.tensor(sel)), [a], rng)
    m = rng.random(shape) < 0.5
    grads(lambda x: x.masked_fill(fd.tensor(m), 0.5), lambda x: x.masked_fill(torch.tensor(m), 0.5), [a], rng)


# ---- matmul -------------------------------------------------------------------------------------
@st.composite
def matmul_shapes(draw):
    ra, rb = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    m, k, n = draw(st.integers(0, 4)), draw(st.integers(0, 4)), draw(st.integers(0, 4))
    batch = draw(shapes(0, 2, 1, 3))
    a = (k,) if ra == 1 else tuple(batch[len(batch) - (ra - 2):] if ra > 2 else ()) + (m, k)
    b = (k,) if rb == 1 else tuple(1 if draw(st.booleans()) else s for s in batch[len(batch) - (rb - 2):]) + (k, n) \
        if rb > 2 else (k, n)
    if draw(st.integers(0, 8)) == 0:
        b = b[:-2] + (k + 1,) + b[-1:] if len(b) >= 2 else (k + 1,)
    return a, b


@FUZZ
@given(matmul_shapes(), st.sampled_from(["float32", "float64", "int64", "int32", "bfloat16", "float16"]), layouts, seeds)
def test_matmul(shp, dt, layout, seed):
    rng = np.random.default_rng(seed)
    a, b = values(rng, shp[0], dt), values(rng, shp[1], dt)
    tol = (3e-2, 5e-2) if dt in ("bfloat16", "float16") else (1e-4, 1e-4)
    diff(lambda: fdt(a, dt, layout) @ fdt(b, dt, "T"), lambda: th(a, dt) @ th(b, dt), tol)
    diff(lambda: fd.matmul(fdt(a, dt), fdt(b, dt, layout)), lambda: torch.matmul(th(a, dt), th(b, dt)), tol)


@FUZZ
@given(matmul_shapes(), seeds)
def test_matmul_grad(shp, seed):
    rng = np.random.default_rng(seed)
    a, b = values(rng, shp[0], "float64"), values(rng, shp[1], "float64")
    grads(lambda x, y: x @ y, lambda x, y: x @ y, [a, b], rng)


# ---- crash-prone tests again in a child process -------------------------------------------------
def test_crashprone_in_child():
    if os.environ.get("FASTDL_FUZZ_CHILD"):
        pytest.skip("already the child")
    env = dict(os.environ, FASTDL_FUZZ_CHILD="1")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:warnings", "-p", "no:cacheprovider", "-x",
                        __file__, "-k", "invalid"], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, f"child exited with {r.returncode}:\n{r.stdout[-4000:]}\n{r.stderr[-2000:]}"
