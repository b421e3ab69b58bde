"""Reductions and scans composed from native ops: nan-aware sums, counts, aminmax, moments,
cumulative products, differences, and dtype= forms of cumsum / softmax."""
import builtins
import collections

from fastdl import _C
from fastdl._C import Tensor


_minmax = collections.namedtuple("return_types_aminmax", ["min", "max"])


def nansum(t, dim=None, keepdim=False, dtype=None):
    x = _C.where(t.isnan(), 0, t) if t.dtype.is_floating_point else t
    return x.sum(dim, keepdim=keepdim, dtype=dtype)


def count_nonzero(t, dim=None):
    return (t != 0).sum(dim)


def aminmax(t, dim=None, keepdim=False):
    return _minmax(t.amin(dim, keepdim=keepdim), t.amax(dim, keepdim=keepdim))


def var_mean(t, dim=None, unbiased=None, keepdim=False, *, correction=None):
    if isinstance(dim, builtins.bool):  # var_mean(input, unbiased)
        dim, unbiased = None, dim
    return (t.var(dim, correction=correction, unbiased=unbiased, keepdim=keepdim), t.mean(dim, keepdim=keepdim))


def std_mean(t, dim=None, unbiased=None, keepdim=False, *, correction=None):
    if isinstance(dim, builtins.bool):  # std_mean(input, unbiased)
        dim, unbiased = None, dim
    return (t.std(dim, correction=correction, unbiased=unbiased, keepdim=keepdim), t.mean(dim, keepdim=keepdim))


def cumprod(t, dim, *, dtype=None):
    # exact for any sign (zeros included): running products, composed so autograd comes with them
    if dtype is not None:
        t = t.to(dtype)
    elif not t.dtype.is_floating_point:  # integer and bool inputs accumulate in int64 (PyTorch)
        t = t.to(_C.dtype.int64)
    if t.ndim == 0:
        if dim not in (0, -1):
            raise IndexError(f"cumprod: dim {dim} is out of range for a 0-dim tensor (expected 0 or -1)")
        return t.clone()
    parts = t.unbind(dim)
    acc, out = None, []
    for p in parts:
        acc = p if acc is None else acc * p
        out.append(acc)
    return _C.stack(out, dim) if out else t.clone()


def diff(t, n=1, dim=-1, prepend=None, append=None):
    if t.ndim == 0:
        raise ValueError("diff: expects input to be at least one-dimensional; got a 0-dim tensor")
    if n < 0:
        raise ValueError(f"diff: order n must be non-negative; got {n}")
    if n == 0:  # PyTorch returns the input as is (prepend / append unused)
        return t
    if prepend is not None or append is not None:
        def side(v):  # a scalar is broadcast to size 1 along dim (PyTorch)
            if not isinstance(v, Tensor):
                shape = list(t.shape)
                shape[dim] = 1
                return _C.full(tuple(shape), builtins.float(v), t.dtype, t.device)
            return v
        t = _C.cat(([side(prepend)] if prepend is not None else []) + [t] +
                   ([side(append)] if append is not None else []), dim)
    sub = _C.logical_xor if t.dtype == _C.dtype.bool else _C.sub  # bool differences are xor (PyTorch)
    for _ in builtins.range(n):
        k = t.shape[dim]
        if k == 0:  # n beyond the length: PyTorch gives an empty result, not an error
            break
        t = sub(t.narrow(dim, 1, k - 1), t.narrow(dim, 0, k - 1))
    return t


def prod(input, dim=None, keepdim=False, *, dtype=None):
    out = _C.prod(input, dim, keepdim, dtype)
    # the native product widens integers and bools to int64 even under dtype=int32 / bool; PyTorch
    # returns dtype= (the same values: products agree modulo 2^32, and a bool product is nonzero-ness)
    return out if dtype is None or out.dtype == dtype else out.to(dtype)


def cumsum(input, dim, *, dtype=None):
    out = _C.cumsum(input if dtype is None else input.to(dtype), dim)
    # the native scan widens integers to int64; an explicit dtype= is the result's dtype (PyTorch)
    return out if dtype is None or out.dtype == dtype else out.to(dtype)


def softmax(input, dim, dtype=None):
    return _C.softmax(input if dtype is None else input.to(dtype), dim)


def log_softmax(input, dim, dtype=None):
    return _C.log_softmax(input if dtype is None else input.to(dtype), dim)


def renorm(input, p, dim, maxnorm):
    """Each slice along dim whose p-norm exceeds maxnorm scaled down to norm maxnorm (by
    maxnorm / (norm + 1e-7), as PyTorch); differentiable through the norm."""
    if not input.dtype.is_floating_point:
        raise TypeError(f"renorm: expects a floating-point input; got {input.dtype}")
    if p <= 0:
        raise ValueError(f"renorm: non-positive norm p={p} is not supported")
    if maxnorm < 0:
        raise ValueError(f"renorm: maxnorm must be >= 0; got {maxnorm}")
    if input.ndim <= 1:
        raise ValueError(f"renorm: input needs at least 2 dimensions; got shape {tuple(input.shape)}")
    d = dim + input.ndim if dim < 0 else dim
    if not 0 <= d < input.ndim:
        raise IndexError(f"renorm: dim {dim} is out of range for shape {tuple(input.shape)}")
    others = [i for i in builtins.range(input.ndim) if i != d]
    norm = _C.norm(input, builtins.float(p), others, True)
    factor = _C.where(norm > maxnorm, maxnorm / (norm + 1e-7), _C.full((), 1.0, input.dtype, input.device))
    return input * factor


def _gradient_dim(f, d, h, edge_order):
    """The derivative along dim d by numpy's second-order central differences: h is the (uniform)
    spacing as a float, or the coordinates as a 1-D tensor."""
    n = f.shape[d]
    sl = lambda lo, ln: f.narrow(d, lo, ln)  # noqa: E731
    if isinstance(h, Tensor):
        shape = [1] * f.ndim
        shape[d] = n
        x = h.to(f.dtype).reshape(*shape)
        xs = lambda lo, ln: x.narrow(d, lo, ln)  # noqa: E731
        dx1, dx2 = xs(1, n - 2) - xs(0, n - 2), xs(2, n - 2) - xs(1, n - 2)
        mid = (-dx2 / (dx1 * (dx1 + dx2)) * sl(0, n - 2) + (dx2 - dx1) / (dx1 * dx2) * sl(1, n - 2)
               + dx1 / (dx2 * (dx1 + dx2)) * sl(2, n - 2))
        if edge_order == 1:
            first = (sl(1, 1) - sl(0, 1)) / (xs(1, 1) - xs(0, 1))
            last = (sl(n - 1, 1) - sl(n - 2, 1)) / (xs(n - 1, 1) - xs(n - 2, 1))
        else:
            a1, a2 = xs(1, 1) - xs(0, 1), xs(2, 1) - xs(1, 1)
            first = (-(2 * a1 + a2) / (a1 * (a1 + a2)) * sl(0, 1) + (a1 + a2) / (a1 * a2) * sl(1, 1)
                     - a1 / (a2 * (a1 + a2)) * sl(2, 1))
            b1, b2 = xs(n - 2, 1) - xs(n - 3, 1), xs(n - 1, 1) - xs(n - 2, 1)
            last = (b2 / (b1 * (b1 + b2)) * sl(n - 3, 1) - (b1 + b2) / (b1 * b2) * sl(n - 2, 1)
                    + (2 * b2 + b1) / (b2 * (b1 + b2)) * sl(n - 1, 1))
    else:
        mid = (sl(2, n - 2) - sl(0, n - 2)) / (2 * h)
        if edge_order == 1:
            first, last = (sl(1, 1) - sl(0, 1)) / h, (sl(n - 1, 1) - sl(n - 2, 1)) / h
        else:
            first = (-1.5 * sl(0, 1) + 2 * sl(1, 1) - 0.5 * sl(2, 1)) / h
            last = (0.5 * sl(n - 3, 1) - 2 * sl(n - 2, 1) + 1.5 * sl(n - 1, 1)) / h
    return _C.cat([first, mid, last], d)


def gradient(input, *, spacing=1, dim=None, edge_order=1):
    """torch.gradient: the derivative along each dim in dim (all by default) by central differences
    inside and one-sided ones of order edge_order (1 or 2) at the ends; spacing is one number, one
    number per dim, or one coordinate tensor per dim. Integer inputs give the default float dtype."""
    if edge_order not in (1, 2):
        raise ValueError(f"gradient: edge_order must be 1 or 2; got {edge_order}")
    if input.ndim == 0:
        raise ValueError("gradient: expects a tensor of at least 1 dimension; got a 0-dim tensor")
    dims = list(builtins.range(input.ndim)) if dim is None else [dim] if isinstance(dim, builtins.int) else list(dim)
    dims = [d + input.ndim if d < 0 else d for d in dims]
    if builtins.any(not 0 <= d < input.ndim for d in dims) or len(set(dims)) != len(dims):
        raise IndexError(f"gradient: dim {dim} is out of range or repeated for shape {tuple(input.shape)}")
    if spacing is None or isinstance(spacing, (builtins.int, builtins.float)):
        hs = [1 if spacing is None else spacing] * len(dims)
    else:
        hs = list(spacing)
        if len(hs) != len(dims):
            raise ValueError(f"gradient: expected spacing to be unspecified, a scalar or a list of length {len(dims)} "
                             f"(one per dim); got a list of length {len(hs)}")
    from fastdl._tensor import get_default_dtype
    f = input if input.dtype.is_floating_point else input.to(get_default_dtype())
    out = []
    for d, h in zip(dims, hs):
        n = f.shape[d]
        if n < edge_order + 1:
            raise ValueError(f"gradient: expected each dimension size to be at least edge_order+1 "
                             f"({edge_order + 1}); dim {d} of shape {tuple(input.shape)} has {n}")
        if isinstance(h, Tensor):
            if h.ndim != 1 or h.shape[0] != n:
                raise ValueError(f"gradient: the coordinates for dim {d} must be 1-D of length {n}; got shape "
                                 f"{tuple(h.shape)}")
        out.append(_gradient_dim(f, d, h, edge_order))
    return tuple(out)
