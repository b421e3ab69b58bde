"""Autograd entry points (the engine itself is C++): backward, grad, Function; autograd.gradcheck
holds gradcheck and gradgradcheck, autograd.functional torch.autograd.functional's jacobian,
hessian, vjp, jvp, vhp, hvp."""
from fastdl import _C
from fastdl._C import Tensor

__all__ = ["backward", "grad", "gradcheck", "gradgradcheck", "GradcheckError", "Function", "FunctionCtx",
           "once_differentiable"]


def _seq(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False):
    ts = _seq(tensors)
    gs = _seq(grad_tensors) if grad_tensors is not None else [None] * len(ts)
    _C._backward(ts, gs, bool(retain_graph) if retain_graph is not None else create_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """Gradients of outputs w.r.t. inputs, returned (never accumulated into .grad)."""
    outs = _seq(outputs)
    gs = _seq(grad_outputs) if grad_outputs is not None else [None] * len(outs)
    keep = bool(retain_graph) if retain_graph is not None else create_graph
    return _C._grad(outs, gs, _seq(inputs), keep, create_graph, allow_unused)


class _C_no_grad:
    def __enter__(self):
        self.prev = _C.is_grad_enabled()
        _C.set_grad_enabled(False)

    def __exit__(self, *e):
        _C.set_grad_enabled(self.prev)


# the gradient checks live in autograd/gradcheck.py; as in PyTorch, fastdl.autograd.gradcheck is the
# function, and the module stays importable (from fastdl.autograd.gradcheck import GradcheckError)
from fastdl.autograd import gradcheck as _gradcheck_module  # noqa: E402,F401
from fastdl.autograd.gradcheck import GradcheckError, gradcheck, gradgradcheck  # noqa: E402,F401
from fastdl.autograd import forward_ad  # noqa: E402,F401


class FunctionCtx:
    """What forward hands to backward: saved tensors and which inputs need gradients."""

    def __init__(self):
        self._saved = ()
        self._versions = ()
        self._output_nr = {}  # id of a forward output -> its output number on the recorded node
        self.needs_input_grad = ()
        self.non_differentiable = set()

    def save_for_backward(self, *tensors):
        """Keep tensors (or None) for backward; an in-place write to one of them before backward
        makes saved_tensors raise, as PyTorch's does."""
        self._saved = tuple(tensors)
        self._versions = tuple(t._version if isinstance(t, Tensor) else None for t in tensors)

    @property
    def saved_tensors(self):
        for t, v in zip(self._saved, self._versions):
            if v is not None and t._version != v:
                shape = "(" + ", ".join(str(d) for d in t.shape) + ("," if t.ndim == 1 else "") + ")"
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified by an inplace "
                    f"operation: [{str(t.dtype).replace('fastdl.', '')} {shape}], saved by save_for_backward, is at "
                    f"version {t._version}; expected version {v} instead")
        if self._output_nr and _C.is_grad_enabled():  # create_graph: saved outputs join the running node
            return tuple(_C._saved_output(t, self._output_nr[id(t)]) if id(t) in self._output_nr else t
                         for t in self._saved)
        return self._saved

    def mark_non_differentiable(self, *tensors):
        self.non_differentiable.update(id(t) for t in tensors)


def once_differentiable(backward):
    """Decorator for a Function's backward that is not itself differentiable (numpy, a fused
    kernel), as torch.autograd.function.once_differentiable: it runs under no_grad, and under
    create_graph its gradients raise if a second derivative reaches them, instead of silently
    counting as constants."""
    import functools

    @functools.wraps(backward)
    def wrapper(ctx, *grads):
        prev = _C.is_grad_enabled()
        _C.set_grad_enabled(False)
        try:
            return backward(ctx, *grads)
        finally:
            _C.set_grad_enabled(prev)
    wrapper._once_differentiable = True
    return wrapper


class Function:
    """A differentiable op written in Python, as torch.autograd.Function:

        class Square(Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x
            @staticmethod
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                return 2 * x * g

        y = Square.apply(x)
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("Function subclasses must implement forward(ctx, ...)")

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError("Function subclasses must implement backward(ctx, *grad_outputs)")

    @classmethod
    def apply(cls, *args, **kwargs):
        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        prev = _C.is_grad_enabled()
        _C.set_grad_enabled(False)
        try:
            out = cls.forward(ctx, *args, **kwargs)
        finally:
            _C.set_grad_enabled(prev)
        single = not isinstance(out, tuple)
        outs = (out,) if single else out
        tensor_pos = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        inputs = [args[i] for i in tensor_pos]
        if not (prev and any(t.requires_grad for t in inputs)):
            return out
        diff = [i for i, o in enumerate(outs) if isinstance(o, Tensor) and id(o) not in ctx.non_differentiable
                and o.dtype.is_floating_point]
        saved_ids = {id(t) for t in ctx._saved}
        ctx._output_nr = {id(outs[i]): k for k, i in enumerate(diff) if id(outs[i]) in saved_ids}

        def backward(grads):
            full = [None] * len(outs)
            for k, i in enumerate(diff):
                full[i] = grads[k]
            r = cls.backward(ctx, *full)
            r = r if isinstance(r, tuple) else (r,)
            if len(r) != len(args):
                raise ValueError(f"{cls.__name__}.backward returned {len(r)} gradients; forward took {len(args)} inputs")
            return [r[i] for i in tensor_pos]

        once = getattr(cls.backward, "_once_differentiable", False)
        recorded = _C._record_function(cls.__name__ + "Backward", inputs, [outs[i] for i in diff], backward, once)
        res = list(outs)
        for k, i in enumerate(diff):
            res[i] = recorded[k]
        return res[0] if single else tuple(res)


from fastdl.autograd import functional  # noqa: E402,F401  (uses grad above)


# torch.autograd's grad-mode names, and Variable (a tensor since PyTorch 0.4)
def __getattr__(name):
    import fastdl
    if name in ("no_grad", "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled"):
        return getattr(fastdl, name)
    raise AttributeError(f"module 'fastdl.autograd' has no attribute '{name}'")


def Variable(data, requires_grad=False, volatile=False):  # noqa: N802
    """torch.autograd.Variable: the tensor itself (with requires_grad set), as in PyTorch >= 0.4."""
    if not isinstance(data, Tensor):
        raise TypeError(f"Variable: data must be a Tensor; got {type(data).__name__}")
    return data.requires_grad_(True) if requires_grad else data


# ---- anomaly detection (torch.autograd.detect_anomaly) -----------------------------------------
_anomaly = {"enabled": False, "check_nan": True}


def _set_anomaly(enabled, check_nan=True):
    _anomaly["enabled"], _anomaly["check_nan"] = bool(enabled), bool(check_nan)
    _C._set_detect_anomaly(bool(enabled) and bool(check_nan))


def is_anomaly_enabled():
    return _anomaly["enabled"]


def is_anomaly_check_nan_enabled():
    return _anomaly["check_nan"]


class set_detect_anomaly:  # noqa: N801  (PyTorch's name: a function and a context manager)
    """Anomaly mode on or off: backward checks the gradients each backward function returns and
    raises RuntimeError naming the first that holds a NaN (check_nan=False turns the check off).
    fastdl records no forward stack traces."""

    def __init__(self, mode, check_nan=True):
        self.prev = (_anomaly["enabled"], _anomaly["check_nan"])
        _set_anomaly(mode, check_nan)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _set_anomaly(*self.prev)
        return False


class detect_anomaly(set_detect_anomaly):  # noqa: N801
    """with detect_anomaly(): anomaly mode inside the block (see set_detect_anomaly); also a decorator."""

    def __init__(self, check_nan=True):
        self.check_nan = check_nan
        self.prev = None

    def __enter__(self):
        self.prev = (_anomaly["enabled"], _anomaly["check_nan"])
        _set_anomaly(True, self.check_nan)
        return self

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def run(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)
        return run


def set_anomaly_enabled(enabled, check_nan=True):
    """torch.set_anomaly_enabled: anomaly mode on or off (see set_detect_anomaly)."""
    _set_anomaly(enabled, check_nan)
