"""Activation modules."""
import inspect
import warnings

from fastdl import _C
from fastdl.nn import functional as F
from fastdl.nn.modules.module import Module


def _inplace_repr(module, head=""):
    """torch's extra_repr for a module with an inplace flag: `head`, then inplace=True only when set."""
    tail = "inplace=True" if module.inplace else ""
    return ", ".join(s for s in (head, tail) if s)


class ReLU(Module):
    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return _C.relu(input) if not self.inplace else F.relu(input, True)

    def extra_repr(self):
        return _inplace_repr(self)


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self):
        return _inplace_repr(self, f"negative_slope={self.negative_slope}")


class ELU(Module):
    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input):
        return F.elu(input, self.alpha, self.inplace)

    def extra_repr(self):
        return _inplace_repr(self, f"alpha={self.alpha}")


class GELU(Module):
    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate='{self.approximate}'"


class SiLU(Module):
    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.silu(input, self.inplace)

    def extra_repr(self):
        return _inplace_repr(self)


class Sigmoid(Module):
    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return _C.sigmoid(input)


class Tanh(Module):
    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return _C.tanh(input)


class Softplus(Module):
    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input):
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class Softmax(Module):
    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Module):
    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.log_softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class _Pointwise(Module):
    """An activation with no parameters, forwarding its constructor arguments to one F function.
    Subclasses are made by _pointwise, which gives each __init__ torch's signature."""
    _fn, _args = None, ()

    def forward(self, input):
        return type(self)._fn(input, *[getattr(self, n) for n in self._args])

    def extra_repr(self):
        head = ", ".join(f"{n}={getattr(self, n)}" for n in self._args if n != "inplace")
        return _inplace_repr(self, head) if "inplace" in self._args else head


def _pointwise(name, fn, **defaults):
    """A _Pointwise subclass whose constructor takes `defaults` (in order; a default of
    inspect.Parameter.empty makes the argument required), checked as a Python signature would."""
    sig = inspect.Signature([inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)] +
                            [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=d)
                             for n, d in defaults.items()])

    def __init__(self, *args, **kwargs):
        try:
            bound = sig.bind(self, *args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{name}: {e}") from None
        bound.apply_defaults()
        Module.__init__(self)
        for n in defaults:
            setattr(self, n, bound.arguments[n])

    __init__.__signature__ = sig
    return type(name, (_Pointwise,), {"__init__": __init__, "_fn": staticmethod(fn), "_args": tuple(defaults),
                                      "__doc__": f"Module form of F.{fn.__name__}."})


_REQUIRED = inspect.Parameter.empty


class Hardtanh(Module):
    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False, min_value=None, max_value=None):
        super().__init__()
        if min_value is not None or max_value is not None:
            warnings.warn("Hardtanh: keyword arguments min_value and max_value are deprecated; use min_val and "
                          "max_val", DeprecationWarning, stacklevel=2)
            min_val = min_val if min_value is None else min_value
            max_val = max_val if max_value is None else max_value
        if max_val <= min_val:
            raise ValueError(f"Hardtanh: max_val ({max_val}) must be greater than min_val ({min_val})")
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, input):
        return F.hardtanh(input, self.min_val, self.max_val, self.inplace)

    def extra_repr(self):
        return _inplace_repr(self, f"min_val={self.min_val}, max_val={self.max_val}")


class ReLU6(Hardtanh):
    def __init__(self, inplace=False):
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self):
        return _inplace_repr(self)


Hardsigmoid = _pointwise("Hardsigmoid", F.hardsigmoid, inplace=False)
Hardswish = _pointwise("Hardswish", F.hardswish, inplace=False)
Mish = _pointwise("Mish", F.mish, inplace=False)
Softsign = _pointwise("Softsign", F.softsign)
LogSigmoid = _pointwise("LogSigmoid", F.logsigmoid)
Tanhshrink = _pointwise("Tanhshrink", F.tanhshrink)
SELU = _pointwise("SELU", F.selu, inplace=False)
CELU = _pointwise("CELU", F.celu, alpha=1.0, inplace=False)
Threshold = _pointwise("Threshold", F.threshold, threshold=_REQUIRED, value=_REQUIRED, inplace=False)
Softmin = _pointwise("Softmin", F.softmin, dim=None)
GLU = _pointwise("GLU", F.glu, dim=-1)
Hardshrink = _pointwise("Hardshrink", F.hardshrink, lambd=0.5)
Softshrink = _pointwise("Softshrink", F.softshrink, lambd=0.5)
Hardshrink.extra_repr = Softshrink.extra_repr = lambda self: f"{self.lambd}"  # torch prints the bare value
Hardsigmoid.extra_repr = Hardswish.extra_repr = lambda self: ""  # torch prints no inplace for these two


class PReLU(Module):
    """max(0, x) + a * min(0, x) with a learnable slope per channel (or one shared)."""

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        from fastdl import _tensor
        from fastdl.nn.parameter import Parameter
        self.num_parameters, self.init = num_parameters, init
        self.weight = Parameter(_tensor.full((num_parameters,), init, dtype=dtype, device=device))

    def forward(self, input):
        return F.prelu(input, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class CosineSimilarity(Module):
    def __init__(self, dim=1, eps=1e-8):
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1, x2):
        return F.cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    def __init__(self, p=2.0, eps=1e-6, keepdim=False):
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim

    def forward(self, x1, x2):
        return F.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)


class RReLU(Module):
    """Randomised leaky ReLU: slopes drawn from U(lower, upper) in training, their mean in eval."""

    def __init__(self, lower=1.0 / 8, upper=1.0 / 3, inplace=False):
        super().__init__()
        self.lower, self.upper, self.inplace = lower, upper, inplace

    def forward(self, input):
        return F.rrelu(input, self.lower, self.upper, self.training, self.inplace)

    def extra_repr(self):
        return f"lower={self.lower}, upper={self.upper}{', inplace=True' if self.inplace else ''}"


class Softmax2d(Module):
    """Softmax over the channels (dim -3) of (N, C, H, W) or (C, H, W)."""

    def forward(self, input):
        if input.ndim not in (3, 4):
            raise ValueError(f"Softmax2d: expected a 3D or 4D input; got {input.ndim}D input of shape "
                             f"{tuple(input.shape)}")
        return _C.softmax(input, -3)
