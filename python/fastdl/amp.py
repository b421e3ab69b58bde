"""fastdl.amp: automatic mixed precision, with torch.amp's API.

    with fd.autocast("cpu"):                    # bfloat16 on the CPU, float16 on CUDA by default
        loss = F.cross_entropy(model(x), y)     # the products run in bfloat16, the loss in float32
    loss.backward()                             # float32 parameters get float32 gradients

Inside a region, the products (matmul / mm / bmm / addmm / linear, the convolutions and
scaled_dot_product_attention, and what is built on them) cast their float32 inputs on the
region's device type to its dtype; the native bindings do it (csrc/python/autocast.h), so a
model pays nothing outside a region. The losses, PyTorch's float32 list, cast low-precision
inputs up to float32 and return float32. Every other op runs in the dtype it is given.
GradScaler scales a float16 loss so small gradients do not flush to zero, unscales them before
the step, and skips steps whose gradients overflowed.
"""
import functools
import warnings

from fastdl import _C

_DEFAULT_DTYPE = {"cpu": _C.dtype.bfloat16, "cuda": _C.dtype.float16}
_LOW = (_C.dtype.bfloat16, _C.dtype.float16)


def _device_type(device_type, op):
    d = device_type.type if isinstance(device_type, _C.device) else device_type
    if d not in _DEFAULT_DTYPE:
        raise ValueError(f"{op}: device_type must be 'cpu' or 'cuda'; got {device_type!r}")
    return d


def is_autocast_available(device_type):
    return device_type in _DEFAULT_DTYPE


def is_autocast_enabled(device_type="cuda"):  # PyTorch's default: CUDA
    """Whether an autocast region for device_type is open on this thread (never, for device types
    fastdl does not run on)."""
    d = device_type.type if isinstance(device_type, _C.device) else device_type
    return d in _DEFAULT_DTYPE and bool(_C._get_autocast(d)[0])


def _any_region():
    return _C._get_autocast("cpu")[0] or _C._get_autocast("cuda")[0]


def get_autocast_dtype(device_type):
    return _C._get_autocast(_device_type(device_type, "get_autocast_dtype"))[1]


# PyTorch's lower-level state functions (what autocast's enter / exit call)
def set_autocast_enabled(device_type, enabled=None):
    """set_autocast_enabled(device_type, enabled), or the old one-argument CUDA form."""
    if enabled is None:
        device_type, enabled = "cuda", device_type
    d = _device_type(device_type, "set_autocast_enabled")
    _C._set_autocast(d, bool(enabled), _C._get_autocast(d)[1])


def set_autocast_dtype(device_type, dtype):
    d = _device_type(device_type, "set_autocast_dtype")
    if dtype not in _LOW:
        raise ValueError(f"set_autocast_dtype: autocast runs in bfloat16 or float16; got {dtype}")
    _C._set_autocast(d, _C._get_autocast(d)[0], dtype)


def is_autocast_cpu_enabled():
    return is_autocast_enabled("cpu")


def set_autocast_cpu_enabled(enabled):
    set_autocast_enabled("cpu", enabled)


def get_autocast_cpu_dtype():
    return get_autocast_dtype("cpu")


def set_autocast_cpu_dtype(dtype):
    set_autocast_dtype("cpu", dtype)


def get_autocast_gpu_dtype():
    return get_autocast_dtype("cuda")


def set_autocast_gpu_dtype(dtype):
    set_autocast_dtype("cuda", dtype)


_cache = {"enabled": True, "nesting": 0}


def is_autocast_cache_enabled():
    """Accepted for PyTorch's API: fastdl casts a weight at each use (there is no cast cache)."""
    return _cache["enabled"]


def set_autocast_cache_enabled(enabled):
    _cache["enabled"] = bool(enabled)


def clear_autocast_cache():
    """Nothing to clear: fastdl keeps no cache of cast weights."""


def autocast_increment_nesting():
    _cache["nesting"] += 1
    return _cache["nesting"]


def autocast_decrement_nesting():
    _cache["nesting"] = max(0, _cache["nesting"] - 1)
    return _cache["nesting"]


class autocast:  # noqa: N801  (PyTorch's name)
    """A mixed-precision region for one device type (see the module docstring); nests, and
    enabled=False turns it off inside an outer region. Also a decorator."""

    def __init__(self, device_type, dtype=None, enabled=True, cache_enabled=None):
        self.device_type = _device_type(device_type, "autocast")
        self.device = self.device_type
        # no dtype: the region's current one (an inner region inherits the outer's), as PyTorch
        self.fast_dtype = _C._get_autocast(self.device_type)[1] if dtype is None else dtype
        self._cache_enabled = is_autocast_cache_enabled() if cache_enabled is None else bool(cache_enabled)
        self._enabled = bool(enabled)
        if self.fast_dtype not in _LOW:
            warnings.warn(f"autocast: {self.device_type} autocast runs in bfloat16 or float16; got {self.fast_dtype}, "
                          f"so the region is disabled", UserWarning, stacklevel=2)
            self._enabled = False
        self._saved = []

    def __enter__(self):
        self._saved.append(_C._get_autocast(self.device_type))
        _C._set_autocast(self.device_type, self._enabled, self.fast_dtype if self._enabled
                         else self._saved[-1][1])
        return self

    def __exit__(self, *exc):
        on, dt = self._saved.pop()
        _C._set_autocast(self.device_type, on, dt)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            with autocast(self.device_type, self.fast_dtype, self._enabled):
                return fn(*args, **kwargs)
        return run


def _up(x):
    return x.float() if isinstance(x, _C.Tensor) and x.dtype in _LOW else x


def float32_under_autocast(fn):
    """Decorate an op of PyTorch's autocast float32 list (the losses): inside a region its
    low-precision tensor arguments are cast to float32 first."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        if not _any_region():
            return fn(*args, **kwargs)
        return fn(*[_up(a) for a in args], **{k: _up(v) for k, v in kwargs.items()})
    return run


class _ArgumentError(ValueError, AssertionError):
    """A bad argument (PyTorch asserts on these, so either except clause catches it)."""


def _lower(x):
    if isinstance(x, _C.Tensor) and x.dtype.is_floating_point and x.dtype != _C.dtype.float64:
        on, dt = _C._get_autocast(x.device.type)
        if on and x.dtype != dt:
            return x.to(dt)
    return x


def lower_under_autocast(fn):
    """Decorate an op of PyTorch's autocast lower-precision list that fastdl composes in Python
    (the native products cast in their bindings): inside a region its float32 tensor arguments on
    the region's device type are cast to the region's dtype first."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        if not _any_region():
            return fn(*args, **kwargs)
        return fn(*[_lower(a) for a in args], **{k: _lower(v) for k, v in kwargs.items()})
    return run


def _install_op_lists(ns):
    """Wrap the Python-composed ops of PyTorch's CPU autocast lists (the losses are wrapped in
    nn.functional itself) in the fastdl namespace ns, nn.functional and linalg."""
    from fastdl import linalg
    from fastdl.nn import functional as F
    ns["baddbmm"], ns["addbmm"] = lower_under_autocast(ns["baddbmm"]), lower_under_autocast(ns["addbmm"])
    F.prelu = lower_under_autocast(F.prelu)
    for mod, names in ((ns, "prod cdist quantile nanquantile trace cholesky cholesky_inverse cholesky_solve inverse "
                            "lu_solve orgqr ormqr pinverse geqrf qr svd triangular_solve"),
                       (F, "avg_pool3d max_pool3d adaptive_avg_pool3d adaptive_max_pool3d grid_sample "
                           "fractional_max_pool2d fractional_max_pool3d max_unpool2d max_unpool3d"),
                       (linalg, "cond matrix_rank solve cholesky svdvals eigvalsh inv householder_product tensorinv "
                                "tensorsolve qr cholesky_ex svd eigh lstsq inv_ex")):
        for n in names.split():
            if (n not in mod) if isinstance(mod, dict) else not hasattr(mod, n):
                continue
            if isinstance(mod, dict):
                mod[n] = float32_under_autocast(mod[n])
            else:
                setattr(mod, n, float32_under_autocast(getattr(mod, n)))


class GradScaler:
    """Dynamic loss scaling (torch.amp.GradScaler): scale(loss).backward(), then step(optimizer)
    unscales the gradients and skips the step if any is inf or NaN, and update() halves the scale
    after such a step or doubles it after growth_interval clean ones. Each optimizer goes through
    unscale_ (optional, once) -> step (once) -> update per iteration, as in PyTorch."""

    def __init__(self, device="cuda", init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, enabled=True):
        self._device = device.type if isinstance(device, _C.device) else str(device).split(":")[0]
        if enabled and self._device == "cuda" and not _C.cuda_is_available():
            warnings.warn("GradScaler is enabled, but CUDA is not available. Disabling.", UserWarning, stacklevel=2)
            enabled = False
        self._enabled = bool(enabled)
        if self._enabled:
            if growth_factor <= 1.0:
                raise _ArgumentError(f"GradScaler: the growth factor must be > 1.0; got {growth_factor}")
            if not backoff_factor < 1.0:
                raise _ArgumentError(f"GradScaler: the backoff factor must be < 1.0; got {backoff_factor}")
        self._init_scale = float(init_scale)
        self._scale = None  # set by the first scale(), as PyTorch's lazy init
        self._growth_factor, self._backoff_factor = float(growth_factor), float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._growth_tracker = 0
        self._per_optimizer = {}  # id(optimizer) -> {"stage": "ready" | "unscaled" | "stepped", "found_inf": bool}

    def is_enabled(self):
        return self._enabled

    def get_scale(self):
        if not self._enabled:
            return 1.0
        return self._init_scale if self._scale is None else self._scale

    def get_growth_factor(self):
        return self._growth_factor

    def set_growth_factor(self, new_factor):
        self._growth_factor = float(new_factor)

    def get_backoff_factor(self):
        return self._backoff_factor

    def set_backoff_factor(self, new_factor):
        self._backoff_factor = float(new_factor)

    def get_growth_interval(self):
        return self._growth_interval

    def set_growth_interval(self, new_interval):
        self._growth_interval = int(new_interval)

    def scale(self, outputs):
        """outputs (a tensor, or an iterable of them, nested) times the scale, in float32 for
        low-precision tensors (a float16 loss times 2^16 would overflow)."""
        if not self._enabled:
            return outputs
        if self._scale is None:
            self._scale = self._init_scale
        if isinstance(outputs, _C.Tensor):
            return outputs * _C.full((), self._scale, _C.dtype.float32, outputs.device)
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        if hasattr(outputs, "__iter__") and not isinstance(outputs, (str, bytes, dict)):
            return map(self.scale, outputs)
        raise ValueError(f"GradScaler.scale: outputs must be a Tensor or an iterable of Tensors; got "
                         f"{type(outputs).__name__}")

    def _state(self, optimizer):
        return self._per_optimizer.setdefault(id(optimizer), {"stage": "ready", "found_inf": False})

    def _check_scale(self, op):
        if self._scale is None:
            raise AssertionError(f"GradScaler.{op}: _scale is None; the script did not use scaler.scale(loss or "
                                 f"outputs) earlier in the iteration")

    def unscale_(self, optimizer):
        """Divide optimizer's gradients by the scale (once per step; before clipping them)."""
        if not self._enabled:
            return
        self._check_scale("unscale_")
        st = self._state(optimizer)
        if st["stage"] == "unscaled":
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        if st["stage"] == "stepped":
            raise RuntimeError("unscale_() is being called after step().")
        inv = 1.0 / self._scale
        found = False
        from fastdl import no_grad
        with no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    if p.grad.dtype == _C.dtype.float16:
                        raise ValueError("Attempting to unscale FP16 gradients.")
                    p.grad.mul_(inv)
                    found = found or not bool(p.grad.isfinite().all())
        st["stage"], st["found_inf"] = "unscaled", found

    def step(self, optimizer, *args, **kwargs):
        """optimizer.step(*args, **kwargs) unless the unscaled gradients hold inf or NaN; returns
        its result (None when skipped)."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        self._check_scale("step")
        st = self._state(optimizer)
        if st["stage"] == "stepped":
            raise RuntimeError("step() has already been called since the last update().")
        if st["stage"] == "ready":
            self.unscale_(optimizer)
        st["stage"] = "stepped"
        return None if st["found_inf"] else optimizer.step(*args, **kwargs)

    def update(self, new_scale=None):
        """Move the scale for the next iteration (or set it to new_scale)."""
        if not self._enabled:
            return
        self._check_scale("update")
        if new_scale is not None:
            if isinstance(new_scale, _C.Tensor):
                if new_scale.numel() != 1:
                    raise ValueError("GradScaler.update: new_scale should be a single-element tensor")
                new_scale = new_scale.item()
            self._scale = float(new_scale)
        else:
            if not self._per_optimizer:
                raise AssertionError("No inf checks were recorded prior to update.")
            if any(st["found_inf"] for st in self._per_optimizer.values()):
                self._scale *= self._backoff_factor
                self._growth_tracker = 0
            else:
                self._growth_tracker += 1
                if self._growth_tracker == self._growth_interval:
                    self._scale *= self._growth_factor
                    self._growth_tracker = 0
        self._per_optimizer = {}

    def state_dict(self):
        if not self._enabled:
            return {}
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor, "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval, "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state_dict):
        if not self._enabled:
            return
        if not state_dict:
            raise RuntimeError("GradScaler.load_state_dict: the state_dict is empty (it came from a disabled scaler)")
        self._scale = float(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])


def _device_amp(device_type):
    """torch.cpu.amp / torch.cuda.amp: autocast and GradScaler with the device type fixed."""
    class amp:  # noqa: N801
        @staticmethod
        def autocast(enabled=True, dtype=None, cache_enabled=True):
            return autocast(device_type, _DEFAULT_DTYPE[device_type] if dtype is None else dtype, enabled, cache_enabled)

        @staticmethod
        def GradScaler(init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000,  # noqa: N802
                       enabled=True):
            return GradScaler(device_type, init_scale, growth_factor, backoff_factor, growth_interval, enabled)
    amp.__qualname__ = f"{device_type}.amp"
    return amp
