"""nn.init: in-place initialisers with PyTorch's formulas (fan modes, gains)."""
import math

from fastdl import _C, no_grad
from fastdl.random import takes_generator


def calculate_gain(nonlinearity, param=None):
    lin = {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "sigmoid"}
    if nonlinearity in lin:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor):
    if tensor.ndim < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    rf = 1
    for s in tensor.shape[2:]:
        rf *= s
    return tensor.shape[1] * rf, tensor.shape[0] * rf


def _fan(tensor, mode):
    fi, fo = _calculate_fan_in_and_fan_out(tensor)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode {mode} not supported, please use one of fan_in, fan_out")
    return fi if mode == "fan_in" else fo


@takes_generator
def uniform_(tensor, a=0.0, b=1.0, generator=None):
    with no_grad():
        return tensor.uniform_(a, b)


@takes_generator
def normal_(tensor, mean=0.0, std=1.0, generator=None):
    with no_grad():
        return tensor.normal_(mean, std)


def constant_(tensor, val):
    with no_grad():
        return tensor.fill_(val)


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


@takes_generator
def xavier_uniform_(tensor, gain=1.0, generator=None):
    fi, fo = _calculate_fan_in_and_fan_out(tensor)
    a = gain * math.sqrt(6.0 / (fi + fo))
    return uniform_(tensor, -a, a)


@takes_generator
def xavier_normal_(tensor, gain=1.0, generator=None):
    fi, fo = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fi + fo)))


@takes_generator
def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    if 0 in tuple(tensor.shape):
        return tensor
    bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return uniform_(tensor, -bound, bound)


@takes_generator
def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    if 0 in tuple(tensor.shape):
        return tensor
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode)))


@takes_generator
def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """Normal(mean, std) truncated to [a, b] by inverse-CDF sampling (as PyTorch)."""
    def cdf(x):
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0
    lo, hi = cdf((a - mean) / std), cdf((b - mean) / std)
    with no_grad():
        u = _C.rand(tensor.shape, _C.dtype.float64, tensor.device) * (2 * hi - 1 - (2 * lo - 1)) + (2 * lo - 1)
        u = u.clamp(-1 + 1e-12, 1 - 1e-12)
        x = _erfinv(u) * (std * math.sqrt(2.0)) + mean
        tensor.copy_(x.clamp(a, b))
    return tensor


def _erfinv(y):
    # Giles' single-precision-accurate approximation refined by two Newton steps in float64
    w = -((1 - y) * (1 + y)).log()
    small = w < 5
    ws = w - 2.5
    p1 = 2.81022636e-08
    for c in (3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503, -0.00417768164,
              0.246640727, 1.50140941):
        p1 = p1 * ws + c
    wl = w.sqrt() - 3
    p2 = -0.000200214257
    for c in (0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613, 0.00943887047,
              1.00167406, 2.83297682):
        p2 = p2 * wl + c
    x = _C.where(small, p1, p2) * y
    for _ in range(2):
        err = x.erf() - y
        x = x - err / (2 / math.sqrt(math.pi) * (-(x * x)).exp())
    return x


def eye_(tensor):
    """The identity in a 2-d tensor (the inputs preserved in a Linear layer)."""
    if tensor.ndim != 2:
        raise ValueError(f"eye_: only tensors with 2 dimensions are supported; got shape {tuple(tensor.shape)}")
    import fastdl as fd
    with no_grad():
        return tensor.copy_(fd.eye(tensor.shape[0], tensor.shape[1], dtype=tensor.dtype, device=tensor.device))


def dirac_(tensor, groups=1):
    """The Dirac delta in a 3-, 4- or 5-d convolution weight (out, in, *kernel): each of the first
    min(out / groups, in) channels of every group passes through at the kernel's centre."""
    if tensor.ndim not in (3, 4, 5):
        raise ValueError(f"dirac_: only tensors with 3, 4, or 5 dimensions are supported; got shape {tuple(tensor.shape)}")
    out = tensor.shape[0]
    if out % groups != 0:
        raise ValueError(f"dirac_: dim 0 ({out}) must be divisible by groups ({groups})")
    per = out // groups
    centre = tuple(k // 2 for k in tensor.shape[2:])
    with no_grad():
        tensor.zero_()
        for g in range(groups):
            for d in range(min(per, tensor.shape[1])):
                tensor[(g * per + d, d) + centre] = 1
    return tensor


@takes_generator
def orthogonal_(tensor, gain=1, generator=None):
    """A (semi-)orthogonal matrix (Saxe et al. 2013) in tensor viewed as (shape[0], -1): the Q of
    a Gaussian matrix's QR, its columns' signs fixed by R's diagonal (uniform over the orthogonal
    group), times gain."""
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_: only tensors with 2 or more dimensions are supported; got shape "
                         f"{tuple(tensor.shape)}")
    if tensor.numel() == 0:
        return tensor
    import fastdl as fd
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    with no_grad():
        a = fd.randn(rows, cols, dtype=fd.float64, device=tensor.device)
        if rows < cols:
            a = a.T
        q, r = fd.linalg.qr(a)
        q = q * r.diagonal().sign()
        if rows < cols:
            q = q.T
        tensor.copy_((q * gain).reshape(tuple(tensor.shape)).to(tensor.dtype))
    return tensor


@takes_generator
def sparse_(tensor, sparsity, std=0.01, generator=None):
    """A sparse 2-d matrix (Martens 2010): Normal(0, std) entries, ceil(sparsity rows) of each
    column's set to zero at random rows."""
    if tensor.ndim != 2:
        raise ValueError(f"sparse_: only tensors with 2 dimensions are supported; got shape {tuple(tensor.shape)}")
    import fastdl as fd
    rows, cols = tensor.shape
    zeros = int(math.ceil(sparsity * rows))
    with no_grad():
        tensor.normal_(0, std)
        if zeros:
            keep = fd.ones(rows, cols, dtype=tensor.dtype, device=tensor.device)
            for c in range(cols):
                keep[fd.randperm(rows, device=tensor.device)[:zeros], c] = 0
            tensor.mul_(keep)
    return tensor


def _deprecated(fn):
    # PyTorch's old spellings without the trailing underscore
    def run(*args, **kwargs):
        import warnings
        warnings.warn(f"nn.init.{fn.__name__[:-1]} is now deprecated in favor of nn.init.{fn.__name__}.",
                      FutureWarning, stacklevel=2)
        return fn(*args, **kwargs)
    run.__name__ = fn.__name__[:-1]
    run.__doc__ = fn.__doc__
    return run


uniform, normal, constant, eye, dirac = (_deprecated(f) for f in (uniform_, normal_, constant_, eye_, dirac_))
xavier_uniform, xavier_normal = _deprecated(xavier_uniform_), _deprecated(xavier_normal_)
kaiming_uniform, kaiming_normal = _deprecated(kaiming_uniform_), _deprecated(kaiming_normal_)
orthogonal, sparse = _deprecated(orthogonal_), _deprecated(sparse_)
