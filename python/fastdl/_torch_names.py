"""PyTorch's remaining top-level names and Tensor members that code written for torch reaches
for: the torch.* spellings of nn.functional ops (with torch's positional order and its integer
reductions), comparison aliases, dtype queries (finfo, iinfo, promote_types, result_type,
can_cast), the identities of complex-number helpers on real tensors (conj, real,
resolve_conj, ...), and the settings functions. Installed into the fastdl namespace and onto
Tensor by install()."""
import builtins
import math

import numpy as np

from fastdl import _C
from fastdl._C import Tensor

_REDUCTIONS = {0: "none", 1: "mean", 2: "sum", "none": "none", "mean": "mean", "sum": "sum"}


def _reduction(r, what):
    if r not in _REDUCTIONS:
        raise ValueError(f"{what}: reduction must be 0 / 1 / 2 (none / mean / sum) or their names; got {r!r}")
    return _REDUCTIONS[r]


def _F():
    from fastdl.nn import functional
    return functional


# ---- dtypes ---------------------------------------------------------------------------------

class finfo:  # noqa: N801 - torch's spelling
    """Machine limits of a floating-point dtype (torch.finfo's fields)."""

    _BF16 = dict(bits=16, eps=0.0078125, max=3.3895313892515355e38, tiny=1.1754943508222875e-38, resolution=0.01)

    def __init__(self, type=None):  # noqa: A002
        from fastdl import float32, bfloat16
        dt = float32 if type is None else type
        if not dt.is_floating_point:
            raise TypeError(f"finfo: {dt} is not a floating-point dtype (use iinfo for integers)")
        self.dtype = str(dt).replace("fastdl.", "")
        if dt == bfloat16:
            v = self._BF16
            self.bits, self.eps, self.max, self.tiny, self.resolution = v["bits"], v["eps"], v["max"], v["tiny"], \
                v["resolution"]
        else:
            f = np.finfo(self.dtype)
            self.bits, self.eps, self.max, self.tiny = f.bits, float(f.eps), float(f.max), float(f.tiny)
            self.resolution = 10.0 ** -f.precision
        self.min = -self.max
        self.smallest_normal = self.tiny

    def __repr__(self):
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, eps={self.eps:g}, "
                f"smallest_normal={self.tiny:g}, tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:  # noqa: N801
    """Limits of an integer dtype (torch.iinfo's fields)."""

    def __init__(self, type):  # noqa: A002
        name = str(type).replace("fastdl.", "")
        if type.is_floating_point or name == "bool":
            raise TypeError(f"iinfo: {type} is not an integer dtype (use finfo for floating point)")
        i = np.iinfo(name)
        self.dtype, self.bits, self.min, self.max = name, i.bits, int(i.min), int(i.max)

    def __repr__(self):
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"


def _proxy(x):
    from fastdl import zeros
    if isinstance(x, Tensor):
        return zeros((1,) if x.ndim else (), dtype=x.dtype)
    if isinstance(x, (bool, int, float)):
        return x
    raise TypeError(f"result_type: expected a Tensor or a Python number; got {type(x).__name__}")


def result_type(tensor1, tensor2):
    """The dtype a binary op on the two produces (PyTorch's promotion: categories first, then
    dimensioned tensors over zero-dim ones over Python numbers)."""
    a, b = _proxy(tensor1), _proxy(tensor2)
    if all(isinstance(v, bool) or (isinstance(v, Tensor) and str(v.dtype) == "fastdl.bool") for v in (a, b)):
        from fastdl import bool as bool_
        return bool_
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        from fastdl import float32, int64
        return float32 if isinstance(a, float) or isinstance(b, float) else int64
    return (a + b).dtype


def promote_types(type1, type2):
    """The smallest dtype both promote to."""
    from fastdl import zeros
    return result_type(zeros(1, dtype=type1), zeros(1, dtype=type2))


def can_cast(from_, to):
    """PyTorch's casting rule: no float to integer, no non-bool to bool."""
    f, t = str(from_), str(to)
    if from_.is_floating_point and not to.is_floating_point:
        return False
    return not (t == "fastdl.bool" and f != "fastdl.bool")


def is_complex(input):  # noqa: A002
    return False  # fastdl has no complex dtypes


def is_signed(input):  # noqa: A002
    return input.dtype.is_signed


def is_nonzero(input):  # noqa: A002
    n = input.numel()
    if n != 1:
        raise RuntimeError(f"is_nonzero: Boolean value of Tensor with {'no values' if n == 0 else 'more than one value'}"
                           f" is ambiguous")
    return bool(input.item())


def is_same_size(input, other):  # noqa: A002
    return tuple(input.shape) == tuple(other.shape)


# ---- identities of complex helpers on real tensors ------------------------------------------

def conj(input):  # noqa: A002
    """The conjugate: the tensor itself for real dtypes (PyTorch returns it unchanged too)."""
    return input


def real(input):  # noqa: A002
    return input


def imag(input):  # noqa: A002
    raise RuntimeError("imag is not implemented for tensors with non-complex dtypes.")


def angle(input):  # noqa: A002
    """Argument of a real number: pi where negative, 0 elsewhere, NaN kept (float result)."""
    from fastdl import where, zeros_like
    x = input if input.is_floating_point() else input.to(_C.dtype.float32)
    z = zeros_like(x)
    out = where(x < 0, z + math.pi, where(x != x, x.detach(), z))
    if not (x.requires_grad and _C.is_grad_enabled()):
        return out
    from fastdl.autograd.composite import value_with_grad_of  # a zero gradient, a NaN's included (PyTorch)
    return value_with_grad_of(out, x * 0.0)


def adjoint(input):  # noqa: A002
    """The conjugate transpose of the last two dims (a transpose for real tensors)."""
    if input.ndim < 2:
        raise RuntimeError(f"adjoint: expected a tensor with 2 or more dimensions; got {input.ndim}")
    return input.transpose(-2, -1)


def absolute(input, *, out=None):  # noqa: A002
    from fastdl import abs as abs_
    return abs_(input)


def row_stack(tensors):
    from fastdl import vstack
    return vstack(tensors)


def chain_matmul(*matrices):
    from fastdl.linalg import multi_dot
    return matrices[0] if len(matrices) == 1 else multi_dot(list(matrices))


def vander(x, N=None, increasing=False):  # noqa: N803
    """Columns x^(N-1) ... x^0 (x^0 ... x^(N-1) when increasing) of a 1-D x."""
    from fastdl import ones_like, stack
    if x.ndim != 1:
        raise ValueError(f"vander: x must be 1-D; got shape {tuple(x.shape)}")
    n = x.shape[0] if N is None else int(N)
    if n < 0:
        raise ValueError(f"vander: N must be non-negative; got {n}")
    cols, p = [], ones_like(x)
    for _ in builtins.range(n):
        cols.append(p)
        p = p * x
    out = stack(cols, 1) if cols else x.reshape(-1, 1)[:, :0]
    return out if increasing else out.flip(1)


def orgqr(input, tau):  # noqa: A002
    from fastdl.linalg import householder_product
    return householder_product(input, tau)


def range(start=0, end=None, step=1, *, dtype=None, device=None, requires_grad=False):  # noqa: A001
    """Deprecated in PyTorch: arange with the end included, float by default."""
    from fastdl import arange, float32
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("range: step must be nonzero")
    n = max(int(math.floor((end - start) / step)) + 1, 0)
    t = arange(n, dtype=float32 if dtype is None else dtype) * step + start
    t = t.to(dtype if dtype is not None else float32)
    if device is not None:
        t = t.to(device)
    return t.requires_grad_(requires_grad) if requires_grad else t


def asarray(obj, *, dtype=None, device=None, copy=None, requires_grad=False):
    """A tensor over obj: obj itself (or a cast) when it is already one, shared numpy memory
    when possible, otherwise a copy; copy=True always copies."""
    from fastdl import as_tensor, tensor
    if isinstance(obj, Tensor):
        t = obj if dtype is None else obj.to(dtype)
        t = t if device is None else t.to(device)
        t = t.clone() if copy and t is obj else t
    elif copy:
        t = tensor(np.array(obj), dtype=dtype, device=device)
    else:
        t = as_tensor(obj, dtype=dtype, device=device)
    return t.requires_grad_() if requires_grad else t


def frombuffer(buffer, *, dtype, count=-1, offset=0, requires_grad=False):
    """A 1-D tensor over a Python buffer's bytes (shares its memory, as PyTorch's does)."""
    from fastdl import from_numpy
    a = np.frombuffer(buffer, dtype=str(dtype).replace("fastdl.", ""), count=count, offset=offset)
    if not a.flags.writeable:
        a = a.copy()  # a read-only buffer (bytes): fastdl tensors are writable
    t = from_numpy(a)
    return t.requires_grad_() if requires_grad else t


# ---- settings -----------------------------------------------------------------------------

_settings = {"deterministic": False, "warn_only": False, "matmul_precision": "highest"}


def use_deterministic_algorithms(mode, *, warn_only=False):
    """Recorded for are_deterministic_algorithms_enabled(); fastdl's CPU kernels are
    deterministic already (fixed reduction orders, split-K partials summed in thread order)."""
    _settings["deterministic"], _settings["warn_only"] = bool(mode), bool(warn_only)


def are_deterministic_algorithms_enabled():
    return _settings["deterministic"]


def is_deterministic_algorithms_warn_only_enabled():
    return _settings["warn_only"]


def set_float32_matmul_precision(precision):
    if precision not in ("highest", "high", "medium"):
        raise ValueError(f"set_float32_matmul_precision: expected 'highest', 'high' or 'medium'; got {precision!r}")
    _settings["matmul_precision"] = precision  # float32 products always run in float32 here


def get_float32_matmul_precision():
    return _settings["matmul_precision"]


_DEBUG_MODES = {"default": 0, "warn": 1, "error": 2, 0: 0, 1: 1, 2: 2}


def set_deterministic_debug_mode(debug_mode):
    """0 / "default": off; 1 / "warn": deterministic, warn only; 2 / "error": deterministic."""
    if debug_mode not in _DEBUG_MODES:
        raise RuntimeError(f"set_deterministic_debug_mode: invalid mode {debug_mode!r}; expected 0, 1, 2, 'default', "
                           "'warn' or 'error'")
    m = _DEBUG_MODES[debug_mode]
    use_deterministic_algorithms(m > 0, warn_only=m == 1)


def get_deterministic_debug_mode():
    if not _settings["deterministic"]:
        return 0
    return 1 if _settings["warn_only"] else 2


_settings["warn_always"] = False


def set_warn_always(b):
    """Recorded for is_warn_always_enabled(): fastdl's one-time warnings go through Python's warnings module,
    whose filters decide repetition."""
    _settings["warn_always"] = bool(b)


def is_warn_always_enabled():
    return _settings["warn_always"]


def get_num_interop_threads():
    """fastdl runs one op at a time on its intra-op pool: one inter-op thread."""
    return 1


def set_num_interop_threads(n):
    if int(n) < 1:
        raise RuntimeError(f"set_num_interop_threads: expected a positive number of threads; got {n}")


def init_num_threads():
    """The pool starts on first use (fastdl.set_num_threads sizes it); nothing to do."""


# ---- control flow (torch.cond, torch.while_loop), run eagerly ------------------------------------

def cond(pred, true_fn, false_fn, operands=()):
    """true_fn(*operands) if pred else false_fn(*operands); pred a bool or a one-element tensor."""
    if isinstance(pred, Tensor):
        if pred.numel() != 1:
            raise RuntimeError(f"cond: pred must be a bool or a one-element tensor; got shape {tuple(pred.shape)}")
        pred = bool(pred.item())
    if not isinstance(operands, (tuple, list)):
        raise RuntimeError(f"cond: operands must be a tuple or list of tensors; got {type(operands).__name__}")
    return true_fn(*operands) if pred else false_fn(*operands)


def while_loop(cond_fn, body_fn, carried_inputs):
    """carried = body_fn(*carried) while cond_fn(*carried); returns the final carried tuple."""
    if not isinstance(carried_inputs, (tuple, list)):
        raise RuntimeError(f"while_loop: carried_inputs must be a tuple or list; got {type(carried_inputs).__name__}")
    carried = tuple(carried_inputs)
    while True:
        c = cond_fn(*carried)
        if isinstance(c, Tensor):
            if c.numel() != 1:
                raise RuntimeError(f"while_loop: cond_fn must return a bool or one-element tensor; got shape "
                                   f"{tuple(c.shape)}")
            c = bool(c.item())
        if not c:
            return carried
        out = body_fn(*carried)
        out = tuple(out) if isinstance(out, (tuple, list)) else (out,)
        if len(out) != len(carried):
            raise RuntimeError(f"while_loop: body_fn returned {len(out)} values for {len(carried)} carried inputs")
        carried = out


def compile(model=None, **kwargs):  # noqa: A001
    """torch.compile's signature; fastdl runs eagerly, so the model (or function) comes back as
    it is. Usable as a decorator with or without arguments."""
    if model is None:
        return lambda m: m
    return model


# ---- torch.* spellings of nn.functional ops ---------------------------------------------------

def dropout(input, p, train):  # noqa: A002
    return _F().dropout(input, p, train)


def alpha_dropout(input, p, train):  # noqa: A002
    return _F().alpha_dropout(input, p, train)


def feature_alpha_dropout(input, p, train):  # noqa: A002
    return _F().feature_alpha_dropout(input, p, train)


def batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn_enabled=True):  # noqa: A002
    return _F().batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def instance_norm(input, weight, bias, running_mean, running_var, use_input_stats, momentum, eps,  # noqa: A002
                  cudnn_enabled=True):
    return _F().instance_norm(input, running_mean, running_var, weight, bias, use_input_stats, momentum, eps)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5, cudnn_enable=True):  # noqa: A002
    return _F().layer_norm(input, normalized_shape, weight, bias, eps)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5, cudnn_enabled=True):  # noqa: A002
    return _F().group_norm(input, num_groups, weight, bias, eps)


def embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    return _F().embedding(indices, weight, None if padding_idx is None or padding_idx < 0 else padding_idx)


def adaptive_max_pool1d(input, output_size):  # noqa: A002
    return _F().adaptive_max_pool1d(input, output_size, return_indices=True)


def max_pool1d_with_indices(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):  # noqa: A002
    return _F().max_pool1d(input, kernel_size, stride or None, padding, dilation, ceil_mode, return_indices=True)


def threshold(input, threshold, value):  # noqa: A002
    return _F().threshold(input, threshold, value)


def kl_div(input, target, reduction=1, log_target=False):  # noqa: A002
    return _F().kl_div(input, target, reduction=_reduction(reduction, "kl_div"), log_target=log_target)


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None, reduction=1):  # noqa: A002
    return _F().binary_cross_entropy_with_logits(input, target, weight, reduction=_reduction(
        reduction, "binary_cross_entropy_with_logits"), pos_weight=pos_weight)


def cosine_embedding_loss(input1, input2, target, margin=0.0, reduction=1):
    return _F().cosine_embedding_loss(input1, input2, target, margin, reduction=_reduction(reduction,
                                                                                          "cosine_embedding_loss"))


def margin_ranking_loss(input1, input2, target, margin=0.0, reduction=1):
    return _F().margin_ranking_loss(input1, input2, target, margin, reduction=_reduction(reduction,
                                                                                        "margin_ranking_loss"))


def hinge_embedding_loss(input, target, margin=1.0, reduction=1):  # noqa: A002
    return _F().hinge_embedding_loss(input, target, margin, reduction=_reduction(reduction, "hinge_embedding_loss"))


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6, swap=False, reduction=1):
    return _F().triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap,
                                    reduction=_reduction(reduction, "triplet_margin_loss"))


def poisson_nll_loss(input, target, log_input, full, eps, reduction):  # noqa: A002
    return _F().poisson_nll_loss(input, target, log_input, full, eps=eps,
                                 reduction=_reduction(reduction, "poisson_nll_loss"))


# Same name and argument order as nn.functional.
_SAME_AS_F = ("conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d avg_pool1d max_pool1d "
              "max_pool2d max_pool3d adaptive_avg_pool1d cosine_similarity pairwise_distance pdist pixel_shuffle "
              "pixel_unshuffle channel_shuffle native_channel_shuffle prelu selu celu hardshrink rrelu bilinear "
              "rms_norm ctc_loss").split()
_SAME_AS_F_INPLACE = ("selu_", "celu_", "rrelu_", "threshold_")


def _forward(name):
    def fn(*args, **kwargs):
        return getattr(_F(), name)(*args, **kwargs)
    fn.__name__ = name
    fn.__doc__ = f"torch.{name}: nn.functional.{name}."
    return fn


def _forward_inplace(name):
    base = name[:-1]

    def fn(input, *args, **kwargs):  # noqa: A002
        return input.copy_(getattr(_F(), base)(input, *args, **kwargs))
    fn.__name__ = name
    return fn


# ---- Tensor members --------------------------------------------------------------------------

class layout:  # noqa: N801
    """Memory layouts; fastdl tensors are all strided."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"fastdl.{self.name}"


strided = layout("strided")


def _get_device(self):
    return self.device.index if self.device.type == "cuda" else -1


def _apply_(self, callable):  # noqa: A002
    """Apply a Python function to every element in place (CPU only; slow, as in PyTorch)."""
    if self.device.type != "cpu":
        raise RuntimeError("apply_ is only implemented on CPU tensors")
    a = self.detach().numpy()
    flat = np.array([callable(v) for v in a.reshape(-1).tolist()], dtype=a.dtype).reshape(a.shape)
    from fastdl import from_numpy
    from fastdl._tensor import no_grad
    with no_grad():
        self.copy_(from_numpy(flat))
    return self


def _map_(self, other, callable):  # noqa: A002
    """self[i] = callable(self[i], other[i]) in place, other broadcast to self (CPU only)."""
    if self.device.type != "cpu":
        raise RuntimeError("map_ is only implemented on CPU tensors")
    a = self.detach().numpy()
    b = np.broadcast_to(other.detach().numpy(), a.shape)
    flat = np.array([callable(x, y) for x, y in zip(a.reshape(-1).tolist(), b.reshape(-1).tolist())],
                    dtype=a.dtype).reshape(a.shape)
    from fastdl import from_numpy
    from fastdl._tensor import no_grad
    with no_grad():
        self.copy_(from_numpy(flat))
    return self


def _new(self, *args, **kwargs):
    """Legacy constructor: new(*sizes) an uninitialised tensor, new(data) a tensor of data, both
    of self's dtype and device."""
    from fastdl import empty, tensor
    if len(args) == 1 and not isinstance(args[0], int) and not (isinstance(args[0], tuple) and
                                                                all(isinstance(v, int) for v in args[0])):
        return tensor(args[0], dtype=self.dtype, device=self.device)
    size = args[0] if len(args) == 1 and isinstance(args[0], tuple) else args
    return empty(*size, dtype=self.dtype, device=self.device)


def _dim_order(self):
    """Dims from outermost to innermost in memory (the stride order)."""
    st = self.stride()
    return tuple(sorted(builtins.range(self.ndim), key=lambda d: -st[d]))


# ---- aten-level spellings that torch exports at the top level ---------------------------------

def constant_pad_nd(input, pad, value=0):  # noqa: A002
    """F.pad in constant mode (negative pads crop)."""
    return _F().pad(input, list(pad), mode="constant", value=value)


_GRID_MODES = ("bilinear", "nearest", "bicubic")
_GRID_PADDING = ("zeros", "border", "reflection")


def _grid_sampler(n):
    def f(input, grid, interpolation_mode, padding_mode, align_corners):  # noqa: A002
        op = f"grid_sampler_{n}d"
        if not (0 <= interpolation_mode < len(_GRID_MODES) and 0 <= padding_mode < len(_GRID_PADDING)):
            raise ValueError(f"{op}: interpolation_mode must be 0-2 (bilinear, nearest, bicubic) and padding_mode "
                             f"0-2 (zeros, border, reflection); got {interpolation_mode} and {padding_mode}")
        if input.ndim != n + 2:
            raise ValueError(f"{op}: input must be {n + 2}-D; got shape {tuple(input.shape)}")
        return _F().grid_sample(input, grid, mode=_GRID_MODES[interpolation_mode],
                                padding_mode=_GRID_PADDING[padding_mode], align_corners=bool(align_corners))
    f.__name__ = f"grid_sampler_{n}d"
    return f


grid_sampler_2d, grid_sampler_3d = _grid_sampler(2), _grid_sampler(3)


def convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups):  # noqa: A002
    """aten's convolution: conv{1,2,3}d or conv_transpose{1,2,3}d by the weight's rank."""
    n = weight.ndim - 2
    if n not in (1, 2, 3) or input.ndim not in (n + 1, n + 2):
        raise ValueError(f"convolution: expected a 3-5 D weight and an input of matching rank; got weight "
                         f"{tuple(weight.shape)} and input {tuple(input.shape)}")
    F = _F()
    if transposed:
        return getattr(F, f"conv_transpose{n}d")(input, weight, bias, stride=stride, padding=padding,
                                                 output_padding=output_padding, groups=groups, dilation=dilation)
    return getattr(F, f"conv{n}d")(input, weight, bias, stride=stride, padding=padding, dilation=dilation,
                                   groups=groups)


def frobenius_norm(input, dim=(-2, -1), keepdim=False):  # noqa: A002
    from fastdl import linalg
    return linalg.vector_norm(input, 2, dim=dim, keepdim=keepdim)


def nuclear_norm(input, dim=None, keepdim=False):  # noqa: A002
    """Sum of singular values of the matrices in dims `dim` (the last two by default)."""
    from fastdl import linalg
    if isinstance(dim, bool):  # nuclear_norm(input, keepdim)
        dim, keepdim = None, dim
    return linalg.matrix_norm(input, "nuc", dim=(-2, -1) if dim is None else tuple(dim), keepdim=keepdim)


def norm_except_dim(v, pow=2, dim=0):  # noqa: A002
    """The pow-norm of v over every dim but `dim`, shaped to broadcast against v (dim -1: the whole norm)."""
    from fastdl import linalg
    if dim == -1:
        return linalg.vector_norm(v, pow)
    d = dim % v.ndim
    others = tuple(i for i in builtins.range(v.ndim) if i != d)
    return linalg.vector_norm(v, pow, dim=others, keepdim=True) if others else v.abs()


def feature_dropout(input, p, train):  # noqa: A002
    """Whole-channel dropout of an (N, C, *) input: one keep decision per (n, c)."""
    if not train or p == 0:
        return input
    if input.ndim < 2:
        raise ValueError(f"feature_dropout: expected an (N, C, *) input; got shape {tuple(input.shape)}")
    from fastdl import bernoulli, full
    keep = bernoulli(full(tuple(input.shape[:2]) + (1,) * (input.ndim - 2), 1.0 - p, dtype=input.dtype,
                          device=input.device))
    return input * keep / (1.0 - p) if p < 1 else input * 0.0


def _inplace_from(fn):
    def f(input, *args, **kwargs):  # noqa: A002
        input.copy_(fn(input, *args, **kwargs))
        return input
    f.__name__ = fn.__name__ + "_"
    return f


dropout_, alpha_dropout_ = _inplace_from(dropout), _inplace_from(alpha_dropout)
feature_dropout_, feature_alpha_dropout_ = _inplace_from(feature_dropout), _inplace_from(feature_alpha_dropout)


_TYPE_NAMES = {"float32": "Float", "float64": "Double", "float16": "Half", "bfloat16": "BFloat16", "int64": "Long",
               "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}


def typename(obj):
    """'fastdl.FloatTensor' (or 'fastdl.cuda.FloatTensor') for a tensor, else the object's qualified type name."""
    if isinstance(obj, Tensor):
        kind = _TYPE_NAMES.get(str(obj.dtype).split(".")[-1], "")
        return f"fastdl.{'cuda.' if obj.device.type == 'cuda' else ''}{kind}Tensor"
    t = obj if isinstance(obj, type) else type(obj)
    module = "" if t.__module__ in ("builtins", "__builtin__", None) else t.__module__ + "."
    return module + t.__qualname__


def native_dropout_backward(grad_output, mask, scale):
    """The gradient of native_dropout: grad_output * mask * scale."""
    return grad_output * mask.to(grad_output.dtype) * scale


def _softmax_backward_data(grad_output, output, dim, input_dtype):
    """The gradient of softmax given its output: y (g - sum(g y, dim))."""
    g = grad_output * output
    return (g - output * g.sum(dim, keepdim=True)).to(input_dtype)


def segment_reduce(data, reduce, *, lengths=None, indices=None, offsets=None, axis=0, unsafe=False, initial=None):
    """Reduce consecutive segments of data along axis ('sum', 'mean', 'max', 'min', 'prod'), the
    segments given by lengths or by offsets (lengths + 1 boundaries) over the last dimension of
    either. Empty segments give initial, else the reduction's identity (NaN for mean); initial
    also joins every non-empty segment (a mean divides by the segment's length), as PyTorch's
    segment_reduce."""
    from fastdl import _C, cat, full, stack, tensor
    op = "segment_reduce"
    if reduce not in ("sum", "mean", "max", "min", "prod"):
        raise ValueError(f"{op}: reduce must be 'sum', 'mean', 'max', 'min' or 'prod'; got {reduce!r}")
    if indices is not None:
        raise NotImplementedError(f"{op}: indices= is not supported (PyTorch's CPU kernel does not take it either)")
    if (lengths is None) == (offsets is None):
        raise ValueError(f"{op}: pass exactly one of lengths= and offsets=")
    axis = axis + data.ndim if axis < 0 else axis
    if lengths is not None:
        lens = lengths
    else:
        lens = offsets[..., 1:] - offsets[..., :-1]
    lens_np = lens.detach().cpu().numpy().astype("int64")
    if not unsafe and (lens_np < 0).any():
        raise ValueError(f"{op}: segment lengths must be non-negative; got {lens_np.tolist()}")
    if lens.ndim != 1:
        # batched segments (lengths (..., S) over data's leading dims up to axis): one row at a time
        if axis != lens.ndim - 1:
            raise ValueError(f"{op}: lengths of shape {tuple(lens.shape)} need axis = {lens.ndim - 1}; got {axis}")
        rows = [segment_reduce(data[i], reduce, lengths=lens[i], axis=axis - 1, unsafe=unsafe, initial=initial)
                for i in builtins.range(data.shape[0])]
        return stack(rows)
    if not unsafe and int(lens_np.sum()) != data.shape[axis]:
        raise ValueError(f"{op}: segment lengths sum to {int(lens_np.sum())}, but data has {data.shape[axis]} "
                         f"entries along axis {axis}")
    empty_value = initial if initial is not None else {"sum": 0.0, "prod": 1.0, "max": float("-inf"),
                                                       "min": float("inf"), "mean": float("nan")}[reduce]
    out, start = [], 0
    for n in lens_np.tolist():
        seg = data.narrow(axis, start, n)
        start += n
        shape = list(data.shape)
        del shape[axis]
        if n == 0:
            out.append(full(shape, empty_value, dtype=data.dtype, device=data.device))
            continue
        if reduce == "sum":
            r = seg.sum(axis)
        elif reduce == "mean":
            r = (seg.sum(axis) if initial is None else seg.sum(axis) + initial) / n
        elif reduce == "max":
            r = seg.amax(axis)
        elif reduce == "min":
            r = seg.amin(axis)
        else:
            r = seg.prod(axis)
        if initial is not None and reduce == "sum":
            r = r + initial
        elif initial is not None and reduce == "prod":
            r = r * initial
        elif initial is not None and reduce == "max":
            r = _C.maximum(r, tensor(initial, dtype=r.dtype, device=r.device))
        elif initial is not None and reduce == "min":
            r = _C.minimum(r, tensor(initial, dtype=r.dtype, device=r.device))
        out.append(r)
    return stack(out, axis) if out else cat([], axis)


def _addmm_(self, mat1, mat2, *, beta=1, alpha=1):
    from fastdl import addmm
    return self.copy_(addmm(self, mat1, mat2, beta=beta, alpha=alpha))


def _pin_memory(self, device=None):
    return self.clone()  # host memory is host memory here; a copy, as PyTorch's pinned one is


_FALSE = ("is_conj is_neg is_sparse is_sparse_csr is_quantized is_meta is_mkldnn is_nested is_inference is_pinned "
          "is_shared").split()


def install(ns):
    """Put the top-level names into namespace dict ns (fastdl's globals) and the members onto Tensor."""
    F = _F()
    for name in ("finfo iinfo result_type promote_types can_cast is_complex is_signed is_nonzero is_same_size conj "
                 "real imag angle adjoint absolute row_stack chain_matmul vander orgqr range asarray frombuffer "
                 "use_deterministic_algorithms are_deterministic_algorithms_enabled "
                 "is_deterministic_algorithms_warn_only_enabled set_float32_matmul_precision "
                 "get_float32_matmul_precision compile dropout alpha_dropout "
                 "feature_alpha_dropout batch_norm instance_norm layer_norm group_norm embedding "
                 "adaptive_max_pool1d max_pool1d_with_indices threshold kl_div binary_cross_entropy_with_logits "
                 "cosine_embedding_loss margin_ranking_loss hinge_embedding_loss triplet_margin_loss "
                 "poisson_nll_loss layout strided constant_pad_nd grid_sampler_2d grid_sampler_3d "
                 "native_dropout_backward _softmax_backward_data segment_reduce set_deterministic_debug_mode "
                 "get_deterministic_debug_mode set_warn_always is_warn_always_enabled get_num_interop_threads "
                 "set_num_interop_threads init_num_threads cond while_loop convolution frobenius_norm "
                 "nuclear_norm norm_except_dim feature_dropout dropout_ alpha_dropout_ feature_dropout_ "
                 "feature_alpha_dropout_ typename").split():
        ns.setdefault(name, globals()[name])
    for name, alias in (("gt", "greater"), ("ge", "greater_equal"), ("lt", "less"), ("le", "less_equal"),
                        ("ne", "not_equal")):
        ns.setdefault(alias, ns[name])
    ns.setdefault("_segment_reduce", segment_reduce)
    from fastdl.amp import GradScaler
    ns.setdefault("GradScaler", GradScaler)
    ns.setdefault("unsafe_split_with_sizes", ns["split_with_sizes"])
    ns.setdefault("i0_", lambda input: input.i0_())
    ns.setdefault("addmv_", lambda input, mat, vec, *, beta=1, alpha=1: input.addmv_(mat, vec, beta=beta, alpha=alpha))
    ns.setdefault("conj_physical", conj)
    ns.setdefault("resolve_conj", conj)
    ns.setdefault("resolve_neg", conj)
    ns.setdefault("is_conj", lambda input: False)
    ns.setdefault("is_neg", lambda input: False)
    ns.setdefault("detach", lambda input: input.detach())
    ns.setdefault("detach_", lambda input: input.detach_())
    ns.setdefault("zero_", lambda input: input.zero_())
    ns.setdefault("fill_", lambda input, value: input.fill_(value))
    if "clamp_" in ns:
        ns.setdefault("clip_", ns["clamp_"])
    for name in _SAME_AS_F:
        if hasattr(F, name):
            ns.setdefault(name, _forward(name))
    for name in _SAME_AS_F_INPLACE:
        if hasattr(F, name[:-1]):
            ns.setdefault(name, _forward_inplace(name))
    # Tensor members
    members = {
        "conj": conj, "conj_physical": conj, "resolve_conj": conj, "resolve_neg": conj, "angle": angle,
        "adjoint": adjoint, "get_device": _get_device, "apply_": _apply_, "map_": _map_, "new": _new,
        "dim_order": _dim_order, "addmm_": _addmm_, "pin_memory": _pin_memory, "share_memory_": lambda self: self,
        "orgqr": orgqr, "hardshrink": lambda self, lambd=0.5: F.hardshrink(self, lambd),
        "prelu": lambda self, weight: F.prelu(self, weight),
        "__rdiv__": lambda self, other: self.__rtruediv__(other),
    }
    for name, fn in members.items():
        if not hasattr(Tensor, name):
            setattr(Tensor, name, fn)
    for name in _FALSE:
        if not hasattr(Tensor, name):
            setattr(Tensor, name, lambda self: False)
    props = {"real": lambda self: self, "imag": lambda self: imag(self), "H": lambda self: adjoint(self) if
             self.ndim == 2 else (self if self.ndim == 0 else _h_error(self)), "mH": adjoint,
             "layout": lambda self: strided, "output_nr": lambda self: 0}
    for name, fn in props.items():
        if not hasattr(Tensor, name):
            setattr(Tensor, name, property(fn))


def _h_error(self):
    raise RuntimeError(f"tensor.H is only supported on matrices (2-D tensors); got a {self.ndim}-D tensor")
