"""Python-side tensor API: construction from Python data, creation functions with PyTorch's
argument conventions, grad-mode context managers, and Tensor conveniences that are not hot
(conversions, repr). Hot operators are bound straight from C++ in _C."""
from __future__ import annotations

import builtins
import collections
import contextlib
import functools
import sys
import threading
from typing import Any, Optional, Sequence, Union

from fastdl import _C
from fastdl._lazy import np
from fastdl._C import Tensor, device, dtype
from fastdl.random import takes_generator

_default_dtype = dtype.float32

# Argument types of the public creation functions (PyTorch's conventions).
_Shape = Union[builtins.int, Sequence[builtins.int]]
_DType = Optional[dtype]
_Device = Union[str, device, None]



@functools.lru_cache(None)
def _np_tables():
    to_fd = {
        np.dtype(np.float32): dtype.float32, np.dtype(np.float64): dtype.float64, np.dtype(np.float16): dtype.float16,
        np.dtype(np.int32): dtype.int32, np.dtype(np.int64): dtype.int64, np.dtype(np.bool_): dtype.bool,
        np.dtype(np.uint8): dtype.uint8, np.dtype(np.int8): dtype.int8, np.dtype(np.int16): dtype.int16,
    }
    return to_fd, {v: k for k, v in to_fd.items()}, (np.uint16, np.uint32, np.uint64)


class Size(tuple):
    """torch.Size: a tuple of ints with numel()."""

    def numel(self):
        n = 1
        for s in self:
            n *= s
        return n

    def __repr__(self):
        return "fastdl.Size([" + ", ".join(str(s) for s in self) + "])"


_minmax_result = collections.namedtuple("return_types", ["values", "indices"])


def get_default_dtype() -> dtype:
    return _default_dtype


def set_default_dtype(d: dtype) -> None:
    global _default_dtype
    if d not in (dtype.float32, dtype.float64, dtype.float16, dtype.bfloat16):
        raise TypeError(f"set_default_dtype: only floating point types are supported as the default type; got {d}")
    _default_dtype = d


def _dtype_or_default(d):
    return _default_dtype if d is None else d


def _finish(t, dtype_=None, device_=None, requires_grad=False):
    if dtype_ is not None and t.dtype != dtype_:
        t = t._to_dtype(dtype_)
    if device_ is not None:
        dv = device_ if isinstance(device_, device) else device(str(device_))
        if t.device != dv:
            t = t._to_device(dv)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _np_from_data(data):
    if isinstance(data, np.ndarray):
        return data, True
    if isinstance(data, (builtins.bool, np.bool_)):
        return np.asarray(data, dtype=np.bool_), False
    if isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in data):
        data = [x.tolist() if isinstance(x, Tensor) else x for x in data]
    arr = np.asarray(data)
    if arr.dtype == object:
        raise TypeError("tensor: could not infer dtype of the data (ragged nested sequences or unsupported objects)")
    return arr, False


def tensor(data: Any, dtype: _DType = None, device: _Device = None, requires_grad: builtins.bool = False) -> Tensor:
    """A new tensor holding a copy of `data` (scalar, nested sequence, numpy array or Tensor)."""
    if isinstance(data, Tensor):
        t = data.detach().clone()
        return _finish(t, dtype, device, requires_grad)
    if device is None:
        device = _default_device
    arr, from_np = _np_from_data(data)
    if dtype is None:
        if arr.dtype.kind == "f" and not (from_np and arr.dtype in (np.float64, np.float16)):
            target = _default_dtype
        elif arr.dtype.kind == "f":
            target = _np_tables()[0][arr.dtype]
        elif arr.dtype.kind == "b":
            target = _C.dtype.bool
        elif arr.dtype.kind in "iu":
            target = _np_tables()[0].get(arr.dtype, _C.dtype.int64) if from_np else _C.dtype.int64
        else:
            raise TypeError(f"tensor: unsupported data type {arr.dtype}")
    else:
        target = dtype
    if target == _C.dtype.bfloat16:
        t = _C.from_numpy(np.array(arr, dtype=np.float32, order="C"))._to_dtype(target)
    else:
        npd = _np_tables()[1][target]
        if not from_np and arr.dtype.kind in "iu" and arr.size and np.dtype(npd).kind in "iu":
            lim = np.iinfo(npd)  # Python ints out of a small type's range: an error, as in PyTorch
            if arr.min() < lim.min or arr.max() > lim.max:
                raise ValueError(f"tensor: a value in [{arr.min()}, {arr.max()}] cannot be converted to {target} without "
                                 f"overflow")
        # an array built from Python data is already ours: convert without a second copy
        t = _C.from_numpy(np.array(arr, dtype=npd, copy=True, order="C") if from_np
                          else np.asarray(arr, dtype=npd, order="C"))
    if device is None and not requires_grad:
        return t
    return _finish(t, None, device, requires_grad)


def as_tensor(data: Any, dtype: _DType = None, device: _Device = None) -> Tensor:
    if isinstance(data, Tensor):
        return _finish(data, dtype, device)
    to_fd = _np_tables()[0]
    if isinstance(data, np.ndarray) and data.dtype in to_fd and dtype in (None, to_fd[data.dtype]) and device in (None, "cpu"):
        return from_numpy(data)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(a: Any) -> Tensor:
    """Zero-copy tensor over a numpy array (strided arrays too); they share memory."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray; got {type(a).__name__}")
    if a.dtype.type in _np_tables()[2]:
        raise TypeError(f"from_numpy: unsupported dtype {a.dtype}; supported: float16/32/64, uint8, int8/16/32/64, bool")
    if a.ndim and any(s < 0 for s in a.strides):
        raise ValueError("from_numpy: arrays with negative strides are not supported; pass a.copy()")
    return _C.from_numpy(a)


def from_dlpack(x: Any) -> Tensor:
    """Tensor sharing memory with any DLPack producer (numpy, torch, jax, cupy)."""
    if isinstance(x, Tensor):
        return x
    return _C._from_dlpack(x)


def is_tensor(x: object) -> builtins.bool:
    return isinstance(x, Tensor)


def is_floating_point(t: Tensor) -> builtins.bool:
    return t.dtype.is_floating_point


def numel(t: Tensor) -> builtins.int:
    return t.numel()


def _size(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list, Size)):
        return tuple(size[0])
    return tuple(size)


_default_device = None  # set_default_device's device for factories given none (None: the CPU)


def set_default_device(d: _Device) -> None:
    """The device that factory functions (tensor, zeros, arange, rand, ...) use when given none; None or "cpu"
    restores the CPU. Functions that follow an input tensor (zeros_like, ...) keep following it."""
    global _default_device
    dv = None if d is None else (d if isinstance(d, device) else device(str(d)))
    _default_device = None if dv is None or dv.type == "cpu" else dv


def get_default_device() -> device:
    return _default_device if _default_device is not None else device("cpu")


def _dev(d):
    if d is None:
        return _default_device
    return d if isinstance(d, device) else device(str(d))


def empty(*size: _Shape, dtype: _DType = None, device: _Device = None, requires_grad: builtins.bool = False) -> Tensor:
    return _finish(_C.empty(_size(size), _dtype_or_default(dtype), _dev(device)), None, None, requires_grad)


def zeros(*size: _Shape, dtype: _DType = None, device: _Device = None, requires_grad: builtins.bool = False) -> Tensor:
    return _finish(_C.full(_size(size), 0.0, _dtype_or_default(dtype), _dev(device)), None, None, requires_grad)


def ones(*size: _Shape, dtype: _DType = None, device: _Device = None, requires_grad: builtins.bool = False) -> Tensor:
    return _finish(_C.full(_size(size), 1.0, _dtype_or_default(dtype), _dev(device)), None, None, requires_grad)


def full(size: _Shape, fill_value: builtins.float, dtype: _DType = None, device: _Device = None,
         requires_grad: builtins.bool = False) -> Tensor:
    if dtype is None:
        dtype = (_C.dtype.bool if isinstance(fill_value, builtins.bool)
                 else _C.dtype.int64 if isinstance(fill_value, builtins.int) else _default_dtype)
    return _finish(_C.full(_size((size,)) if not isinstance(size, builtins.int) else (size,), builtins.float(fill_value),
                           dtype, _dev(device)), None, None, requires_grad)


def _like(t, dtype, device):
    return (t.dtype if dtype is None else dtype), (t.device if device is None else _dev(device))


def zeros_like(t: Tensor, dtype: _DType = None, device: _Device = None, requires_grad: builtins.bool = False) -> Tensor:
    d, dv = _like(t, dtype, device)
    return _finish(_C.full(t.shape, 0.0, d, dv), None, None, requires_grad)


def ones_like(t: Tensor, dtype: _DType = None, device: _Device = None, requires_grad: builtins.bool = False) -> Tensor:
    d, dv = _like(t, dtype, device)
    return _finish(_C.full(t.shape, 1.0, d, dv), None, None, requires_grad)


def full_like(t: Tensor, fill_value: builtins.float, dtype: _DType = None, device: _Device = None,
              requires_grad: builtins.bool = False) -> Tensor:
    d, dv = _like(t, dtype, device)
    return _finish(_C.full(t.shape, builtins.float(fill_value), d, dv), None, None, requires_grad)


def empty_like(t: Tensor, dtype: _DType = None, device: _Device = None, requires_grad: builtins.bool = False) -> Tensor:
    d, dv = _like(t, dtype, device)
    return _finish(_C.empty(t.shape, d, dv), None, None, requires_grad)


@takes_generator
def rand_like(t: Tensor, dtype: _DType = None, device: _Device = None, requires_grad: builtins.bool = False, *,
              generator: Any = None) -> Tensor:
    d, dv = _like(t, dtype, device)
    return _finish(_C.rand(t.shape, d, dv), None, None, requires_grad)


@takes_generator
def randn_like(t: Tensor, dtype: _DType = None, device: _Device = None, requires_grad: builtins.bool = False, *,
               generator: Any = None) -> Tensor:
    d, dv = _like(t, dtype, device)
    return _finish(_C.randn(t.shape, d, dv), None, None, requires_grad)


@takes_generator
def randint_like(t: Tensor, low: builtins.int = 0, high: Optional[builtins.int] = None, dtype: _DType = None,
                 device: _Device = None, *, generator: Any = None) -> Tensor:
    if high is None:
        low, high = 0, low
    d, dv = _like(t, dtype, device)
    return _C.randint(low, high, t.shape, d, dv)


def arange(start: builtins.float, end: Optional[builtins.float] = None, step: builtins.float = 1, dtype: _DType = None,
           device: _Device = None, requires_grad: builtins.bool = False) -> Tensor:
    if end is None:
        start, end = 0, start
    if step != 0 and ((step > 0 and end < start) or (step < 0 and end > start)):
        raise ValueError(f"arange: upper bound and lower bound inconsistent with step sign; got start={start}, "
                         f"end={end}, step={step}")
    if dtype is None:
        ints = all(isinstance(v, builtins.int) or (hasattr(v, "__index__") and not isinstance(v, Tensor))
                   for v in (start, end, step))
        dtype = _C.dtype.int64 if ints else _default_dtype
    if dtype is not None and _is_int(dtype) and builtins.int(step) != 0:
        if dtype == _C.dtype.int64 and builtins.max(builtins.abs(builtins.int(start)), builtins.abs(builtins.int(end))) > 2**53:
            # beyond a double's integers: count in Python ints, offset in exact int64 arithmetic
            st = builtins.int(step)
            span = builtins.int(end) - builtins.int(start) + st - (1 if st > 0 else -1)
            n = builtins.max(0, builtins.abs(span) // builtins.abs(st) * (1 if (span >= 0) == (st > 0) else -1))
            r = _C.arange(0.0, builtins.float(n), 1.0, dtype, _dev(device)) * st + builtins.int(start)
            return _finish(r, None, None, requires_grad)
        start, end, step = _int_arange_bounds(start, end, step, dtype)
    return _finish(_C.arange(builtins.float(start), builtins.float(end), builtins.float(step), dtype, _dev(device)),
                   None, None, requires_grad)


def _is_int(dtype):
    return not dtype.is_floating_point and dtype != _C.dtype.bool


def _int_arange_bounds(start, end, step, dtype):
    """(start, end, step) giving PyTorch's integer arange: it truncates start and step to integers
    first (arange(-0.9, 2.1, 2.0) is [0, 2], not [-0.9, 1.1] truncated); int64 truncates end too and
    counts (end - start + step - sign(step)) / step in integers, the other integer dtypes count
    ceil((end - start) / step) on the values given. Returned with an end the native arange counts
    the same length from."""
    s, st = builtins.int(builtins.float(start)), builtins.int(builtins.float(step))
    if dtype == _C.dtype.int64:
        span = builtins.int(builtins.float(end)) - s + st - (1 if st > 0 else -1)
        n = builtins.abs(span) // builtins.abs(st) * (1 if (span >= 0) == (st > 0) else -1)  # C division
    else:
        import math
        n = math.ceil((builtins.float(end) - builtins.float(start)) / builtins.float(step))
    return s, s + builtins.max(n, 0) * st, st


def linspace(start: builtins.float, end: builtins.float, steps: builtins.int, dtype: _DType = None, device: _Device = None,
             requires_grad: builtins.bool = False) -> Tensor:
    if dtype is not None and _is_int(dtype) and steps > 0:
        # PyTorch's integer linspace truncates start and end to integers, steps by
        # (end - start) / (steps - 1) in float64 from start for the first half and back from end
        # for the second, and truncates each value (linspace(4.3, -3, 50) starts 4, 3, 3, ...).
        s, e = builtins.int(builtins.float(start)), builtins.int(builtins.float(end))
        i = np.arange(steps, dtype=np.float64)
        delta = (e - s) / (steps - 1) if steps > 1 else 0.0
        v = np.where(i < steps // 2, s + delta * i, e - delta * (steps - 1 - i)) if steps > 1 else np.full(1, s)
        t = _C.from_numpy(np.trunc(v).astype(np.int64))._to_dtype(dtype)  # wraps into the small types
        return _finish(t, None, device, requires_grad)
    return _finish(_C.linspace(builtins.float(start), builtins.float(end), steps, _dtype_or_default(dtype), _dev(device)),
                   None, None, requires_grad)


def eye(n: builtins.int, m: Optional[builtins.int] = None, dtype: _DType = None, device: _Device = None,
        requires_grad: builtins.bool = False) -> Tensor:
    return _finish(_C.eye(n, n if m is None else m, _dtype_or_default(dtype), _dev(device)), None, None, requires_grad)


@takes_generator
def rand(*size: _Shape, dtype: _DType = None, device: _Device = None, requires_grad: builtins.bool = False,
         generator: Any = None) -> Tensor:
    return _finish(_C.rand(_size(size), _dtype_or_default(dtype), _dev(device)), None, None, requires_grad)


@takes_generator
def randn(*size: _Shape, dtype: _DType = None, device: _Device = None, requires_grad: builtins.bool = False,
          generator: Any = None) -> Tensor:
    return _finish(_C.randn(_size(size), _dtype_or_default(dtype), _dev(device)), None, None, requires_grad)


@takes_generator
def randint(low: builtins.int = 0, high: Any = None, size: Optional[Sequence[builtins.int]] = None, dtype: _DType = None,
            device: _Device = None, generator: Any = None) -> Tensor:
    if size is None:  # randint(high, size)
        low, high, size = 0, low, high
    if high is None:
        raise TypeError("randint: missing 'high'")
    return _C.randint(low, high, tuple(size), _C.dtype.int64 if dtype is None else dtype, _dev(device))


@takes_generator
def randperm(n: builtins.int, dtype: _DType = None, device: _Device = None, generator: Any = None) -> Tensor:
    return _C.randperm(n, _C.dtype.int64 if dtype is None else dtype, _dev(device))


def concat(tensors: Sequence[Tensor], dim: builtins.int = 0) -> Tensor:
    return _C.cat(tensors, dim)


concatenate = concat


def dot(a: Tensor, b: Tensor) -> Tensor:
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"dot: 1D tensors expected; got {a.ndim}D and {b.ndim}D")
    from fastdl._products import _matmul_unlowered  # not autocast (PyTorch's dot is not)
    return _matmul_unlowered(a, b)


def outer(a: Tensor, b: Tensor) -> Tensor:
    return a.reshape(-1, 1) * b.reshape(1, -1)


# ---- grad mode ------------------------------------------------------------------------------
class _GradMode:
    def __init__(self, mode):
        self.mode = mode

    def __enter__(self):
        self.prev = _C.is_grad_enabled()
        _C.set_grad_enabled(self.mode)

    def __exit__(self, *exc):
        _C.set_grad_enabled(self.prev)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*a, **k):
            with self.__class__() if type(self) is not set_grad_enabled else set_grad_enabled(self.mode):
                return fn(*a, **k)
        return wrapper


class no_grad(_GradMode):
    """Context manager / decorator that turns autograd recording off."""

    def __init__(self):
        super().__init__(False)


class enable_grad(_GradMode):
    def __init__(self):
        super().__init__(True)


class set_grad_enabled(_GradMode):
    def __init__(self, mode):
        super().__init__(builtins.bool(mode))
        self.prev = _C.is_grad_enabled()
        _C.set_grad_enabled(self.mode)  # also works as a plain function call

    def __enter__(self):
        pass

    def __exit__(self, *exc):
        _C.set_grad_enabled(self.prev)
        return False


_inference_state = threading.local()


class inference_mode(no_grad):
    """no_grad that also marks the region as inference (is_inference_mode_enabled()); mode=False is a no-op region."""

    def __init__(self, mode=True):
        _GradMode.__init__(self, not mode)
        self.inference = builtins.bool(mode)

    def __enter__(self):
        super().__enter__()
        self.prev_inference = getattr(_inference_state, "on", False)
        _inference_state.on = self.inference

    def __exit__(self, *exc):
        _inference_state.on = self.prev_inference
        return super().__exit__(*exc)


def is_inference_mode_enabled() -> builtins.bool:
    return getattr(_inference_state, "on", False)


def is_grad_enabled() -> builtins.bool:
    return _C.is_grad_enabled()


# ---- Tensor conveniences --------------------------------------------------------------------
class memory_format:
    """PyTorch's memory-format tags. fastdl tensors are dense row-major (or strided views), so a
    requested format changes no values; the arguments are accepted for PyTorch code."""
    def __init__(self, name):
        self._name = name

    def __repr__(self):
        return f"fastdl.{self._name}"


contiguous_format, preserve_format = memory_format("contiguous_format"), memory_format("preserve_format")
channels_last, channels_last_3d = memory_format("channels_last"), memory_format("channels_last_3d")


def _to(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
    """t.to(device), t.to(dtype), t.to(device, dtype), t.to(other), with keywords too."""
    dt = kwargs.pop("dtype", None)
    dv = kwargs.pop("device", None)
    kwargs.pop("non_blocking", None)
    copy = kwargs.pop("copy", False)
    _memory_format(kwargs.pop("memory_format", None), "to")
    if kwargs:
        raise TypeError(f"to: unexpected keyword arguments {sorted(kwargs)}")
    flags = [a for a in args if isinstance(a, builtins.bool)]  # positional non_blocking, copy (PyTorch order)
    if len(flags) > 2:
        raise TypeError(f"to: at most two bool arguments (non_blocking, copy); got {len(flags)}")
    copy = copy or (len(flags) == 2 and flags[1])
    for a in args:
        if isinstance(a, builtins.bool):
            continue
        if isinstance(a, dtype):
            dt = a
        elif isinstance(a, (str, device)):
            dv = a
        elif isinstance(a, Tensor):
            dt, dv = a.dtype, a.device
        elif a is not None:
            raise TypeError(f"to: expected a device, dtype or tensor; got {type(a).__name__}")
    t = self
    if dv is not None:
        dv = _dev(dv)
        if dv.type == "cuda" and dv.index is None:
            dv = device("cuda", 0)
        if t.device != dv:
            t = t._to_device(dv)
    if dt is not None and t.dtype != dt:
        t = t._to_dtype(dt)
    return t.clone() if copy and t is self else t


def _memory_format(mf, op):
    if mf is not None and not isinstance(mf, memory_format):
        raise TypeError(f"{op}: memory_format must be a fastdl memory format; got {type(mf).__name__}")


_native_clone, _native_contiguous = Tensor.clone, Tensor.contiguous


# Unannotated: these become Tensor methods, and the generated stub (_C.pyi) copies a method's
# annotations without the imports they need.
def clone(input, *, memory_format=None):
    """A copy of input (memory_format is accepted, as PyTorch's; the copy is row-major)."""
    _memory_format(memory_format, "clone")
    return _native_clone(input)


def _contiguous(self, memory_format=None):
    _memory_format(memory_format, "contiguous")
    return _native_contiguous(self)


Tensor.clone = clone
Tensor.contiguous = _contiguous


_PRINT_DEFAULTS = {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80, "sci_mode": None}
_PRINT_PROFILES = {"default": _PRINT_DEFAULTS, "short": {"precision": 2, "threshold": 1000, "edgeitems": 2,
                                                         "linewidth": 80}, "full": {"precision": 4,
                                                                                    "threshold": float("inf"),
                                                                                    "edgeitems": 3, "linewidth": 80}}
_print_opts = dict(_PRINT_DEFAULTS)


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None, sci_mode=None):
    """Tensor printing options, as torch.set_printoptions: digits after the point, the element
    count above which a summary (edgeitems at each end) is printed, the line width, a profile
    ('default', 'short', 'full') and sci_mode (True / False forces scientific notation on / off,
    None chooses)."""
    if profile is not None:
        if profile not in _PRINT_PROFILES:
            raise ValueError(f"set_printoptions: profile must be 'default', 'short' or 'full'; got {profile!r}")
        _print_opts.update(_PRINT_PROFILES[profile])
    for k, v in (("precision", precision), ("threshold", threshold), ("edgeitems", edgeitems),
                 ("linewidth", linewidth)):
        if v is not None:
            _print_opts[k] = v
    _print_opts["sci_mode"] = sci_mode


def get_printoptions():
    return dict(_print_opts)


def _float_format(a):
    """PyTorch's float printing: integral values as '3.', otherwise `precision` (4) decimals,
    switching to scientific notation when the finite magnitudes span more than 1e3 or leave
    [1e-4, 1e8) (or as sci_mode forces)."""
    p, sci = int(_print_opts["precision"]), _print_opts["sci_mode"]
    finite = a[np.isfinite(a)]
    integral = finite.size == 0 or np.all(finite == np.round(finite)) and np.abs(finite).max() < 1e8
    if integral and not sci:
        return lambda v: f"{v:.0f}." if np.isfinite(v) else f"{v}"
    if sci is None:
        mag = np.abs(finite[finite != 0])
        sci = bool(mag.size and (mag.max() / mag.min() > 1e3 or mag.max() >= 1e8 or mag.min() < 1e-4))
    if sci:
        return lambda v: f"{v:.{p}e}"
    return lambda v: f"{v:.{p}f}"


def _repr(self):
    prefix = "tensor("
    try:
        arr = self.detach().cpu()
        if arr.dtype == dtype.bfloat16:
            arr = arr._to_dtype(dtype.float32)
        a = arr.numpy()
        o = _print_opts
        summarize = a.size > o["threshold"]
        shown = a
        if summarize and a.ndim:  # the elements a summary prints: edgeitems at each end of every dim
            e = int(o["edgeitems"])
            shown = a[np.ix_(*[np.r_[0:min(e, n), max(n - e, min(e, n)):n] for n in a.shape])]
        fmt = _float_format(shown) if a.dtype.kind == "f" else None
        if a.size == 0:
            body = "[]"
        elif a.ndim == 0:
            body = fmt(a.item()) if fmt else repr(a.item())
        else:
            opts = None
            if fmt:  # right-align to the widest value, as PyTorch does
                probe = [v for v in (np.nanmin(shown) if not np.all(np.isnan(shown)) else 0.0,
                                     np.nanmax(shown) if not np.all(np.isnan(shown)) else 0.0) if np.isfinite(v)]
                width = max(len(fmt(v)) for v in probe) if probe else 0
                opts = {"float_kind": lambda v: fmt(v).rjust(width)}
            elif a.dtype.kind == "b":
                width = 5 if (a.any() and not a.all()) else (4 if a.all() else 5)
                opts = {"bool": lambda v: str(bool(v)).rjust(width)}
            body = np.array2string(a, separator=", ", prefix=prefix, formatter=opts, edgeitems=int(o["edgeitems"]),
                                   threshold=sys.maxsize if o["threshold"] == float("inf") else int(o["threshold"]),
                                   max_line_width=int(o["linewidth"]))
            if summarize:
                body = body.replace(", ...,", ",  ...,")
    except Exception as e:  # a repr must never raise
        body = f"<unprintable: {e}>"
    extras = []
    if self.device.type == "cuda":
        extras.append(f"device='{self.device}'")
    default_dt = {dtype.float32, dtype.int64, dtype.bool}
    if self.dtype not in default_dt or (self.numel() == 0 and self.dtype != dtype.float32):
        extras.append(f"dtype={self.dtype}")
    if self.grad_fn is not None:
        extras.append(f"grad_fn=<{self.grad_fn.name()}>")
    elif self.requires_grad:
        extras.append("requires_grad=True")
    return prefix + body + "".join(", " + e for e in extras) + ")"


def _tolist(self: Tensor) -> Any:
    t = self.detach().cpu()
    if t.dtype == dtype.bfloat16:
        t = t._to_dtype(dtype.float32)
    return t.numpy().tolist()


def _array(self, dtype_=None, copy=None):
    a = self.detach().cpu()
    if a.dtype == dtype.bfloat16:
        a = a._to_dtype(dtype.float32)
    a = a.numpy()
    return a if dtype_ is None else a.astype(dtype_, copy=False)


def _data_get(self):
    return self._data_alias()  # detached, with its own version counter (PyTorch's .data)


def _data_set(self, value):
    self._set_data(value.detach())


def _iter(self):
    if self.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    for i in builtins.range(self.shape[0]):
        yield self[i]


def _method(name):
    def deco(fn):
        setattr(Tensor, name, fn)
        return fn
    return deco


Tensor.to = _to
Tensor.__repr__ = _repr
Tensor.__str__ = _repr
Tensor.tolist = _tolist
Tensor.__array__ = _array
Tensor.__iter__ = _iter
Tensor.data = property(_data_get, _data_set)
Tensor.__array_priority__ = 1000
Tensor.cpu = lambda self: _to(self, "cpu")
Tensor.cuda = lambda self, device=None: _to(self, "cuda" if device is None else (f"cuda:{device}" if isinstance(device, builtins.int) else device))
Tensor.float = lambda self, memory_format=None: _to(self, dtype.float32, memory_format=memory_format)
Tensor.double = lambda self, memory_format=None: _to(self, dtype.float64, memory_format=memory_format)
Tensor.half = lambda self, memory_format=None: _to(self, dtype.float16, memory_format=memory_format)
Tensor.bfloat16 = lambda self, memory_format=None: _to(self, dtype.bfloat16, memory_format=memory_format)
Tensor.long = lambda self, memory_format=None: _to(self, dtype.int64, memory_format=memory_format)
Tensor.int = lambda self, memory_format=None: _to(self, dtype.int32, memory_format=memory_format)
Tensor.bool = lambda self, memory_format=None: _to(self, dtype.bool, memory_format=memory_format)
Tensor.short = lambda self, memory_format=None: _to(self, dtype.int16, memory_format=memory_format)
Tensor.char = lambda self, memory_format=None: _to(self, dtype.int8, memory_format=memory_format)
Tensor.byte = lambda self, memory_format=None: _to(self, dtype.uint8, memory_format=memory_format)
Tensor.type_as = lambda self, other: _to(self, other.dtype)
Tensor.is_floating_point = lambda self: self.dtype.is_floating_point
Tensor.expand_as = lambda self, other: self.expand(tuple(other.shape))
Tensor.view_as = lambda self, other: self.view(tuple(other.shape))
Tensor.reshape_as = lambda self, other: self.reshape(tuple(other.shape))
Tensor.new_zeros = lambda self, *size, dtype=None, device=None: zeros(*size, dtype=dtype or self.dtype, device=device or self.device)
Tensor.new_ones = lambda self, *size, dtype=None, device=None: ones(*size, dtype=dtype or self.dtype, device=device or self.device)
Tensor.new_full = lambda self, size, v, dtype=None, device=None: full(size, v, dtype=dtype or self.dtype, device=device or self.device)
Tensor.new_empty = lambda self, *size, dtype=None, device=None: empty(*size, dtype=dtype or self.dtype, device=device or self.device)
Tensor.new_tensor = lambda self, data, dtype=None, device=None: tensor(data, dtype=dtype or self.dtype, device=device or self.device)
Tensor.masked_fill_ = lambda self, mask, value: self.copy_(self.masked_fill(mask, value))
Tensor.clamp_ = lambda self, min=None, max=None: self.copy_(self.clamp(min, max))
Tensor.sub_ = Tensor.sub_
Tensor.dot = lambda self, other: dot(self, other)
Tensor.__format__ = lambda self, spec: (format(self.item(), spec) if self.numel() == 1 and self.ndim == 0 else _repr(self))
Tensor.__contains__ = lambda self, v: builtins.bool((self == v).any())
Tensor.register_hook = lambda self, hook: _C._register_hook(self, hook)
Tensor.register_post_accumulate_grad_hook = lambda self, hook: _C._register_post_accumulate_grad_hook(self, hook)


def _retain_grad(self):
    """Keep .grad on a non-leaf tensor after backward (accumulating like a leaf's)."""
    if self.is_leaf or self._retains_grad:
        return
    import weakref
    ref = weakref.ref(self)

    def keep(g):
        t = ref()
        if t is not None:
            t.grad = g.detach() if t.grad is None else t.grad + g.detach()
    self.register_hook(keep)
    self._retains_grad = True


Tensor.retain_grad = _retain_grad
Tensor.retains_grad = property(lambda self: bool(self._retains_grad))
Tensor.__deepcopy__ = lambda self, memo: self.detach().clone().requires_grad_(self.requires_grad) if self.is_leaf else self.clone()
Tensor.__reduce_ex__ = lambda self, proto: (tensor, (self.tolist(), self.dtype))
Tensor.is_shared = lambda self: False


def _array_namespace(self, /, *, api_version=None):
    """The array API namespace for fastdl tensors (fastdl.array_api, standard 2023.12)."""
    if api_version not in (None, "2021.12", "2022.12", "2023.12"):
        raise ValueError(f"__array_namespace__: unsupported api_version {api_version!r}; fastdl implements 2023.12")
    from fastdl import array_api
    return array_api


Tensor.__array_namespace__ = _array_namespace
Tensor.to_device = lambda self, device, /, *, stream=None: _to(self, device)
Tensor.softmax = Tensor.softmax
Tensor.log_softmax = Tensor.log_softmax


def _attach_more():
    from fastdl import _comparison, _indexing, _pointwise, _reductions, _shaping, _sorting
    Tensor.sort = _sorting.sort
    Tensor.argsort = _sorting.argsort
    Tensor.topk = _sorting.topk
    Tensor.kthvalue = _sorting.kthvalue
    Tensor.masked_select = _indexing.masked_select
    Tensor.diagonal = _shaping.diagonal
    Tensor.diag = _shaping.diag
    Tensor.trace = _shaping.trace
    Tensor.cumprod = _reductions.cumprod
    Tensor.clamp_min = _pointwise.clamp_min
    Tensor.clamp_max = _pointwise.clamp_max
    Tensor.prod = _reductions.prod
    Tensor.isclose = _comparison.isclose
    Tensor.allclose = _comparison.allclose
    Tensor.equal = _comparison.equal
    Tensor.sub = _sub_alpha(Tensor.sub)
    Tensor.div = lambda self, other, *, rounding_mode=None: _pointwise.div(self, other, rounding_mode=rounding_mode)
    Tensor.divide = Tensor.div
    Tensor.cumsum = lambda self, dim, *, dtype=None: _reductions.cumsum(self, dim, dtype=dtype)
    Tensor.softmax = lambda self, dim, dtype=None: _reductions.softmax(self, dim, dtype)
    Tensor.log_softmax = lambda self, dim, dtype=None: _reductions.log_softmax(self, dim, dtype)
    Tensor.pow = lambda self, exponent: _pointwise.pow(self, exponent)
    Tensor.absolute = Tensor.abs
    Tensor.multiply = Tensor.mul
    Tensor.divide = Tensor.div
    Tensor.subtract = Tensor.sub
    Tensor.greater = Tensor.gt
    Tensor.less = Tensor.lt
    Tensor.negative = Tensor.neg
    Tensor.arctan2 = Tensor.atan2
    for name in ("ravel", "fliplr", "flipud", "roll", "tile", "unflatten", "repeat_interleave"):
        setattr(Tensor, name, getattr(_shaping, name))
    for name in ("nansum", "count_nonzero", "aminmax", "diff"):
        setattr(Tensor, name, getattr(_reductions, name))
    for name in ("fmod", "frac", "addcmul", "addcdiv", "hypot", "logaddexp", "xlogy", "round"):
        setattr(Tensor, name, getattr(_pointwise, name))
    for name in ("take", "take_along_dim", "argwhere", "nonzero"):
        setattr(Tensor, name, getattr(_indexing, name))
    Tensor.movedim = _shaping.movedim
    Tensor.t = _shaping.t_
    Tensor.swapdims = Tensor.swapaxes
    Tensor.moveaxis = Tensor.movedim
    Tensor.true_divide = Tensor.div
    Tensor.fix = Tensor.trunc
    Tensor.positive = lambda self: self
    Tensor.not_equal = Tensor.ne
    Tensor.greater_equal = Tensor.ge
    Tensor.less_equal = Tensor.le
    Tensor.nelement = Tensor.numel
    Tensor.ndimension = Tensor.dim
    Tensor.outer = lambda self, other: outer(self, other)
    Tensor.addmm = lambda self, mat1, mat2, beta=1, alpha=1: _C.addmm(self, mat1, mat2, beta=beta, alpha=alpha)
    Tensor.clamp_min_ = lambda self, v: self.clamp_(min=v)
    Tensor.clamp_max_ = lambda self, v: self.clamp_(max=v)
    Tensor.index_put_ = lambda self, indices, values, accumulate=False: self.copy_(_C.index_put(self, list(indices), values, accumulate))


def _sub_alpha(native):
    def sub(self, other, alpha=1):
        return native(self, other * alpha if alpha != 1 else other)
    return sub


_attach_more()


from fastdl import _methods  # noqa: E402,F401  (attaches the Tensor methods of the composed ops)
