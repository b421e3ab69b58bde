"""fastdl.masked: torch.masked's reductions and normalizations over dense tensors with a boolean
mask (broadcast to the input; None keeps every element). Masked-out elements take the reduction's
identity (0 for sums, 1 for products, -inf / +inf for max / min, NaN for median), so a fully
masked-out slice gives that identity (mean, var and std give NaN there: 0 / 0). Gradients flow
to the masked-in elements only. Semantics, dtypes and defaults are torch.masked's."""
import builtins
import math

import fastdl as fd
from fastdl import _C

__all__ = ["amax", "amin", "argmax", "argmin", "cumprod", "cumsum", "log_softmax", "logaddexp", "logsumexp", "mean",
           "median", "norm", "normalize", "prod", "softmax", "softmin", "std", "sum", "var"]

_int_limits = {fd.int64: (-2 ** 63, 2 ** 63 - 1), fd.int32: (-2 ** 31, 2 ** 31 - 1), fd.int16: (-2 ** 15, 2 ** 15 - 1),
               fd.int8: (-128, 127), fd.uint8: (0, 255), fd.bool: (0, 1)}


def _dims(op, dim, ndim):
    """dim as a sorted tuple of non-negative dims (None or () is every dim; a 0-dim tensor takes 0 / -1)."""
    if dim is None or dim == ():
        return tuple(builtins.range(ndim))
    n = builtins.max(ndim, 1)
    out = []
    for d in ((dim,) if isinstance(dim, builtins.int) else dim):
        if not -n <= d < n:
            raise IndexError(f"masked.{op}: dim {d} is out of range for a {ndim}-dim input "
                             f"(expected to be in range of [{-n}, {n - 1}])")
        if d % n in out:
            raise ValueError(f"masked.{op}: dim {d} appears multiple times in the list of dims")
        out.append(d % n)
    return tuple(sorted(out)) if ndim else ()


def _mask(op, input, mask):
    """mask broadcast to input's shape, as bool."""
    if mask.ndim > input.ndim:
        raise ValueError(f"masked.{op}: mask of shape {tuple(mask.shape)} has more dims than the input of shape "
                         f"{tuple(input.shape)}")
    try:
        m = mask.expand(*input.shape) if tuple(mask.shape) != tuple(input.shape) else mask
    except ValueError:
        raise ValueError(f"masked.{op}: mask of shape {tuple(mask.shape)} does not broadcast to the input's shape "
                         f"{tuple(input.shape)}") from None
    return m if m.dtype == fd.bool else m.to(fd.bool)


def _identity(op, input, ord=2.0):
    dt = input.dtype
    if op in ("sum", "cumsum"):
        return 0
    if op in ("prod", "cumprod"):
        return 1
    if op in ("amax", "argmax", "logaddexp", "logsumexp"):
        return -math.inf if dt.is_floating_point else _int_limits[dt][0]
    if op in ("amin", "argmin"):
        return math.inf if dt.is_floating_point else _int_limits[dt][1]
    if op == "norm":
        return math.inf if ord == -math.inf else 0
    if op == "median":
        return math.nan
    raise NotImplementedError(op)


def _fill(op, input, mask, *args):
    """input with its masked-out elements replaced by op's identity (input itself for mask None)."""
    if mask is None:
        return input
    m = _mask(op, input, mask)
    value = _identity(op, input, *args)
    return _C.where(m, input, _C.full((), builtins.float(value), input.dtype, input.device)) \
        if builtins.abs(value) < 2 ** 53 or isinstance(value, builtins.float) \
        else _C.where(m, input, fd.tensor(value, dtype=input.dtype, device=input.device))


def _sum_dtype(input, dtype):
    if dtype is not None:
        return dtype
    return fd.int64 if input.dtype in (fd.bool, fd.uint8, fd.int8, fd.int16, fd.int32) else input.dtype


def sum(input, dim=None, *, keepdim=False, dtype=None, mask=None):  # noqa: A001
    dims = _dims("sum", dim, input.ndim)
    return _fill("sum", input, mask).sum(dims, keepdim=builtins.bool(keepdim), dtype=_sum_dtype(input, dtype))


def prod(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    dims = _dims("prod", dim, input.ndim)
    x = _fill("prod", input, mask).to(_sum_dtype(input, dtype))
    for d in reversed(dims):
        x = x.prod(d, keepdim=builtins.bool(keepdim))
    return x


def cumsum(input, dim, *, dtype=None, mask=None):
    d = _dims("cumsum", dim, input.ndim)
    return fd.cumsum(_fill("sum", input, mask), d[0] if d else 0, dtype=dtype or input.dtype)


def cumprod(input, dim, *, dtype=None, mask=None):
    d = _dims("cumprod", dim, input.ndim)
    return fd.cumprod(_fill("prod", input, mask), d[0] if d else 0, dtype=dtype or input.dtype)


def amax(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    x = _fill("amax", input, mask)
    return x.amax(_dims("amax", dim, x.ndim), keepdim=builtins.bool(keepdim)).to(dtype or input.dtype)


def amin(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    x = _fill("amin", input, mask)
    return x.amin(_dims("amin", dim, x.ndim), keepdim=builtins.bool(keepdim)).to(dtype or input.dtype)


def argmax(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    return _fill("argmax", input, mask).argmax(dim, keepdim=builtins.bool(keepdim)).to(dtype or input.dtype)


def argmin(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    return _fill("argmin", input, mask).argmin(dim, keepdim=builtins.bool(keepdim)).to(dtype or input.dtype)


def mean(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    """sum / count of the masked-in elements (NaN where none is)."""
    dt = dtype or input.dtype
    if not dt.is_floating_point:
        raise TypeError(f"masked.mean: could not infer output dtype: it must be a floating point dtype; got {dt}")
    dims = _dims("mean", dim, input.ndim)
    if mask is None:
        count = builtins.int(math.prod(input.shape[d] for d in dims))
        return sum(input, dim, keepdim=keepdim, dtype=dt) / count
    m = _mask("mean", input, mask)
    count = m.sum(dims, keepdim=builtins.bool(keepdim))
    return sum(input, dim, keepdim=keepdim, dtype=dt, mask=m) / count


def median(input, dim=-1, *, keepdim=False, dtype=None, mask=None):
    """nanmedian over dim of the masked-in elements (NaN where none is; integers need none such)."""
    d = _dims("median", dim, input.ndim)
    d = d[0] if d else 0
    is_float = input.dtype.is_floating_point
    x = input if is_float else input.to(fd.float32)
    out = fd.nanmedian(_fill("median", x, mask), d, keepdim)[0]
    if is_float:
        return out
    if builtins.bool(out.isnan().any().item()):
        raise ValueError("masked.median: fully masked-out slices need a floating-point input")
    return out.to(dtype or input.dtype)


def logsumexp(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    dims = _dims("logsumexp", dim, input.ndim)
    return _fill("logsumexp", input, mask).logsumexp(dims, keepdim=keepdim).to(dtype or input.dtype)


def logaddexp(input, other, *, dtype=None, input_mask=None, other_mask=None):
    return fd.logaddexp(_fill("logaddexp", input, input_mask), _fill("logaddexp", other, other_mask)).to(
        dtype or input.dtype)


def norm(input, ord=2.0, dim=None, *, keepdim=False, dtype=None, mask=None):
    x = _fill("norm", input, mask, ord)
    return fd.linalg.vector_norm(x, ord, _dims("norm", dim, input.ndim), builtins.bool(keepdim),
                                 dtype=dtype or input.dtype)


def _std_var(op, input, dim, unbiased, correction, keepdim, dtype, mask, take_sqrt):
    if unbiased is not None and correction is not None:
        raise ValueError(f"masked.{op}: give only one of unbiased and correction")
    corr = 1.0 if unbiased is None and correction is None else (
        builtins.float(correction) if correction is not None else 1.0 if unbiased else 0.0)
    dt = dtype or (input.dtype if input.dtype.is_floating_point else fd.float32)
    dims = _dims(op, dim, input.ndim)
    if mask is None:
        m = None
        count = _C.full((), builtins.float(math.prod(input.shape[d] for d in dims)), dt, input.device)
    else:
        m = _mask(op, input, mask)
        count = m.sum(dims, keepdim=True).to(dt)
    mu = sum(input, dim, keepdim=True, dtype=dt, mask=m) / count
    x = input - mu
    total = sum(x * x, dim, keepdim=keepdim, dtype=dt, mask=m)
    if m is not None and not keepdim:
        count = count.reshape(tuple(total.shape))
    if corr != 0:
        count = fd.maximum(count - corr, _C.full((), 0.0, dt, input.device))
    out = (total / count).to(dt)
    return out.sqrt() if take_sqrt else out


def var(input, dim=None, unbiased=None, *, correction=None, keepdim=False, dtype=None, mask=None):
    return _std_var("var", input, dim, unbiased, correction, keepdim, dtype, mask, False)


def std(input, dim=None, unbiased=None, *, correction=None, keepdim=False, dtype=None, mask=None):
    return _std_var("std", input, dim, unbiased, correction, keepdim, dtype, mask, True)


def softmax(input, dim, *, dtype=None, mask=None):
    d = _dims("softmax", dim, input.ndim)
    return fd.softmax(_fill("amax", input, mask), d[0] if d else 0, dtype=dtype or input.dtype)


def log_softmax(input, dim, *, dtype=None, mask=None):
    d = _dims("log_softmax", dim, input.ndim)
    return fd.log_softmax(_fill("amax", input, mask), d[0] if d else 0, dtype=dtype or input.dtype)


def softmin(input, dim, *, dtype=None, mask=None):
    d = _dims("softmin", dim, input.ndim)
    return fd.softmax(-_fill("amin", input, mask).to(dtype or input.dtype), d[0] if d else 0)


def normalize(input, ord, dim, *, eps=1e-12, dtype=None, mask=None):
    """input (masked-out elements 0) over its masked p-norm along dim, floored at eps."""
    dt = dtype or input.dtype
    nrm = norm(input, ord, dim, keepdim=True, dtype=dt, mask=mask)
    denom = fd.maximum(nrm, _C.full((), eps, nrm.dtype, nrm.device))
    return _fill("sum", input, mask) / denom
