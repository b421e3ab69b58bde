"""fastdl.testing: assert_close and make_tensor with torch.testing's semantics, for tests written
against fastdl as they would be against PyTorch.

assert_close(actual, expected) compares tensors, numpy arrays, Python scalars and (nested)
sequences and mappings of them: the same type of container, then per tensor the same shape,
dtype and device (check_dtype / check_device), then |actual - expected| <= atol + rtol |expected|
elementwise, with the dtype's default tolerances when neither is given (float32 1.3e-6 / 1e-5,
float64 1e-7 / 1e-7, float16 1e-3 / 1e-5, bfloat16 1.6e-2 / 1e-5, integers and bool exact).
A mismatch raises AssertionError with the count and the greatest differences and where they are."""
import builtins
import math
from collections.abc import Mapping, Sequence

import numpy as np

from fastdl import _C
from fastdl._C import Tensor, dtype as _dtype

__all__ = ["assert_close", "make_tensor"]

_D = _C.dtype
_TOLERANCES = {_D.float16: (1e-3, 1e-5), _D.bfloat16: (1.6e-2, 1e-5), _D.float32: (1.3e-6, 1e-5),
               _D.float64: (1e-7, 1e-7)}


def _tolerances(dt, rtol, atol):
    if (rtol is None) != (atol is None):
        raise ValueError(f"Both 'rtol' and 'atol' must be either specified or omitted, but got no "
                         f"{'rtol' if rtol is None else 'atol'}.")
    if rtol is not None:
        return rtol, atol
    return _TOLERANCES.get(dt, (0.0, 0.0))


def _fail(msg, path):
    if path:
        msg += "\n\nThe failure occurred for item " + "".join(f"[{p!r}]" for p in path)
    raise AssertionError(msg)


def _index(flat, shape):
    return tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()


def _compare_tensors(actual, expected, rtol, atol, equal_nan, check_device, check_dtype, msg, path):
    if tuple(actual.shape) != tuple(expected.shape):
        _fail(msg or f"The values for attribute 'shape' do not match: {tuple(actual.shape)} != {tuple(expected.shape)}.",
              path)
    if check_device and actual.device != expected.device:
        _fail(msg or f"The values for attribute 'device' do not match: {actual.device} != {expected.device}.", path)
    if check_dtype and actual.dtype != expected.dtype:
        _fail(msg or f"The values for attribute 'dtype' do not match: {actual.dtype} != {expected.dtype}.", path)
    if check_dtype or rtol is not None:
        rtol, atol = _tolerances(expected.dtype, rtol, atol)
    else:  # two dtypes: the looser of their tolerances, as torch.testing
        (r1, a1), (r2, a2) = _tolerances(actual.dtype, None, None), _tolerances(expected.dtype, None, None)
        rtol, atol = builtins.max(r1, r2), builtins.max(a1, a2)
    a = actual.detach().cpu().to(_D.float64).numpy() if actual.dtype != _D.int64 else actual.detach().cpu().numpy()
    e = expected.detach().cpu().to(_D.float64).numpy() if expected.dtype != _D.int64 else expected.detach().cpu().numpy()
    _compare_arrays(a, e, rtol, atol, equal_nan, exact=rtol == 0 and atol == 0, what="Tensor-likes", msg=msg, path=path)


def _compare_arrays(a, e, rtol, atol, equal_nan, exact, what, msg, path):
    with np.errstate(invalid="ignore", over="ignore"):
        if exact:
            ok = a == e
        else:
            ok = np.abs(a.astype(np.float64) - e.astype(np.float64)) <= atol + rtol * np.abs(e.astype(np.float64))
            ok |= a == e  # equal infinities
        if equal_nan:
            ok |= np.isnan(a.astype(np.float64)) & np.isnan(e.astype(np.float64))
    if ok.all():
        return
    if msg is not None:
        _fail(msg, path)
    bad = int((~ok).sum())
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        diff = np.abs(a.astype(np.float64) - e.astype(np.float64))
        rel = diff / np.abs(e.astype(np.float64))
        diff[ok], rel[ok] = 0, 0  # the greatest differences among the mismatches
    ia = int(np.nanargmax(diff)) if not np.isnan(diff).all() else int(np.argmax(~ok))
    ir = int(np.nanargmax(rel)) if not np.isnan(rel).all() else int(np.argmax(~ok))
    if np.isnan(diff).any():
        ia = ir = int(np.argmax(np.isnan(diff) & ~ok))
    fmt = (lambda v: str(int(v))) if exact and np.issubdtype(e.dtype, np.integer) else (lambda v: repr(float(v)))
    da, dr = float(diff.reshape(-1)[ia]), float(rel.reshape(-1)[ir])
    lines = [f"{what} are not {'equal' if exact else 'close'}!", "",
             f"Mismatched elements: {bad} / {ok.size} ({100.0 * bad / builtins.max(ok.size, 1):.1f}%)",
             f"Greatest absolute difference: {fmt(da) if not math.isnan(da) else 'nan'} at index "
             f"{_index(ia, a.shape)}" + ("" if exact else f" (up to {atol} allowed)"),
             f"Greatest relative difference: {dr} at index {_index(ir, a.shape)}" +
             ("" if exact else f" (up to {rtol} allowed)")]
    _fail("\n".join(lines), path)


def _is_scalar(x):
    return isinstance(x, (builtins.bool, builtins.int, builtins.float, np.number, np.bool_))


def _compare(actual, expected, rtol, atol, equal_nan, check_device, check_dtype, msg, path):
    if isinstance(actual, (Tensor, np.ndarray)) or isinstance(expected, (Tensor, np.ndarray)):
        if isinstance(actual, np.ndarray) and isinstance(expected, np.ndarray):
            actual, expected = _C.from_numpy(np.ascontiguousarray(actual)), _C.from_numpy(np.ascontiguousarray(expected))
        if not (isinstance(actual, Tensor) and isinstance(expected, Tensor)):
            _fail(msg or f"Comparing a {type(actual).__name__} and a {type(expected).__name__}: both must be tensors "
                         "(or both numpy arrays)", path)
        return _compare_tensors(actual, expected, rtol, atol, equal_nan, check_device, check_dtype, msg, path)
    if _is_scalar(actual) and _is_scalar(expected):
        if check_dtype and type(actual) is not type(expected) and not (
                isinstance(actual, np.number) or isinstance(expected, np.number)):
            _fail(msg or f"The values for attribute 'type' do not match: {type(actual)} != {type(expected)}.", path)
        inexact = isinstance(actual, (builtins.float, np.floating)) or isinstance(expected, (builtins.float, np.floating))
        r, t = _tolerances(_D.float64 if inexact else _D.int64, rtol, atol)
        a, e = float(actual), float(expected)
        if (a == e) or (equal_nan and math.isnan(a) and math.isnan(e)) or abs(a - e) <= t + r * abs(e):
            return
        _fail(msg or f"Scalars are not {'close' if inexact else 'equal'}!\n\nExpected {expected} but got {actual}.\n"
                     f"Absolute difference: {abs(a - e)}" + (f" (up to {t} allowed)" if inexact else "") +
                     f"\nRelative difference: {abs(a - e) / abs(e) if e else math.inf}" +
                     (f" (up to {r} allowed)" if inexact else ""), path)
    if isinstance(actual, Mapping) and isinstance(expected, Mapping):
        if set(actual) != set(expected):
            _fail(msg or f"The keys of the mappings do not match:\nMissing keys in the actual mapping: "
                         f"{sorted(map(str, set(expected) - set(actual)))}\nExtra keys in the actual mapping: "
                         f"{sorted(map(str, set(actual) - set(expected)))}", path)
        for k in expected:
            _compare(actual[k], expected[k], rtol, atol, equal_nan, check_device, check_dtype, msg, path + [k])
        return
    if isinstance(actual, Sequence) and isinstance(expected, Sequence) and not isinstance(actual, str) \
            and not isinstance(expected, str):
        if len(actual) != len(expected):
            _fail(msg or f"The length of the sequences mismatch: {len(actual)} != {len(expected)}", path)
        for i, (x, y) in enumerate(zip(actual, expected)):
            _compare(x, y, rtol, atol, equal_nan, check_device, check_dtype, msg, path + [i])
        return
    if actual is None and expected is None:
        return
    raise TypeError(f"assert_close: no comparison for {type(actual).__name__} and {type(expected).__name__}"
                    + ("" if not path else " at item " + "".join(f"[{p!r}]" for p in path)))


def assert_close(actual, expected, *, allow_subclasses=True, rtol=None, atol=None, equal_nan=False,
                 check_device=True, check_dtype=True, check_layout=True, check_stride=False, msg=None):
    """Raise AssertionError unless actual and expected are close (see the module docstring)."""
    _tolerances(None, rtol, atol)  # both or neither
    _compare(actual, expected, rtol, atol, equal_nan, check_device, check_dtype, msg, [])


def make_tensor(*shape, dtype, device=None, low=None, high=None, requires_grad=False, noncontiguous=False,
                exclude_zero=False):
    """A tensor of the given shape and dtype filled uniformly from [low, high) (floats: default
    [-9, 9); integers: [-9, 10); bool: True or False), as torch.testing.make_tensor;
    noncontiguous: every other element of a tensor twice as wide in the last dim."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if not isinstance(dtype, _dtype):
        raise TypeError(f"make_tensor: dtype must be a fastdl dtype; got {dtype!r}")
    if low is not None and high is not None and low > high:
        raise ValueError(f"make_tensor: low ({low}) must not exceed high ({high})")
    from fastdl import rand
    u = rand(tuple(shape), dtype=_D.float64, device=device)
    if dtype == _D.bool:
        t = u < 0.5
    elif dtype.is_floating_point:
        lo, hi = -9.0 if low is None else float(low), 9.0 if high is None else float(high)
        t = (u * (hi - lo) + lo).to(dtype)
    else:
        lo, hi = -9 if low is None else int(math.ceil(low)), 10 if high is None else int(math.ceil(high))
        t = (u * (hi - lo) + lo).floor().to(dtype)
    if exclude_zero and dtype != _D.bool:
        tiny = 1.0 if not dtype.is_floating_point else float(np.finfo(np.float16).eps) if dtype == _D.float16 else 1e-3
        t = t.where(t != 0, _C.full((), tiny, dtype, t.device))
    if noncontiguous and t.numel() > 1:
        t = t.repeat_interleave(2, -1)[..., ::2]
    if requires_grad:
        t.requires_grad_(True)
    return t
