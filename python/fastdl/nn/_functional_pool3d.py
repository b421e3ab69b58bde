"""3-d pooling (max_pool3d, avg_pool3d, adaptive_avg_pool3d, adaptive_max_pool3d), max_unpool1d/2d/3d
and fractional_max_pool2d/3d with PyTorch's arguments, composed from the native 2-d pooling kernels.

Max, mean and the adaptive windows are separable: a 3-d window is the product of a depth window
and an H x W window, so the H x W pooling runs first on the (B, D, H, W) planes, then the depth
pooling as a 2-d pooling of (B, 1, D, OH * OW) with a (kD, 1) window. Divisors separate too:
PyTorch's 3-d divisor (clipped or not, ceil_mode included) is the product of the per-dim counts
of its 2-d and 1-d kernels. Max ties resolve as PyTorch's depth-major scan (first depth holding
the maximum, then the first H x W position in that plane), and indices are the flat
d * H * W + h * W + w, found by gathering the plane indices at the chosen depths."""
import numpy as np

from fastdl import _C
from fastdl.nn import _functional_pool as _P
from fastdl.nn._functional_pool1d import _named as _named_as


def _dev(a, like):
    """A host (numpy) table as a tensor on like's device."""
    return _C.from_numpy(np.ascontiguousarray(a)).to(like.device)


def _named(op, input):
    """Errors of the 2-d op underneath, re-raised under the 3-d op's name and input shape."""
    return _named_as(op, input, how="")


def _tuple(v, n, name, op, allow_none=False):
    if v is None and allow_none:
        return None
    if isinstance(v, bool):
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints; got bool")
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            v = tuple(v) * n
        if len(v) != n:
            raise ValueError(f"{op}: {name} must be an int or a tuple of {n} ints; got {tuple(v)}")
        return tuple(None if a is None and allow_none else int(a) for a in v)
    if not hasattr(v, "__index__"):
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints; got {type(v).__name__}")
    return (int(v),) * n


def _stride3(stride, kernel, op):
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        return kernel
    return _tuple(stride, 3, "stride", op)


def _planes(input, op):
    """(N, C, D, H, W) or (C, D, H, W) -> (B, D, H, W), and the leading shape to restore."""
    if input.ndim not in (4, 5):
        raise ValueError(f"{op}: expected a 4D (C, D, H, W) or 5D (N, C, D, H, W) input; got shape "
                         f"{tuple(input.shape)}")
    if 0 in tuple(input.shape[-4:]):
        raise ValueError(f"{op}: expected the input's non-batch dimensions to have positive length; got shape "
                         f"{tuple(input.shape)}")
    lead = tuple(input.shape[:-3])
    D, H, W = input.shape[-3:]
    return input.reshape(-1, D, H, W), lead


def _max3(x, lead, plane_pool, depth_pool):
    """Separable max: plane_pool (B, D, H, W) -> (out, idx); depth_pool (B, 1, D, P) -> (out, idx)."""
    B, D, H, W = x.shape
    o2, i2 = plane_pool(x)  # (B, D, OH, OW), plane indices h * W + w
    OH, OW = o2.shape[2], o2.shape[3]
    o3, i3 = depth_pool(o2.reshape(B, 1, D, OH * OW))  # (B, 1, OD, OH * OW), indices d * OH * OW + j
    OD = o3.shape[2]
    hw = _C.gather(i2.reshape(B, D * OH * OW), 1, i3.reshape(B, OD * OH * OW))
    idx = (i3.reshape(B, OD * OH * OW) // (OH * OW)) * (H * W) + hw
    shape = lead + (OD, OH, OW)
    return o3.reshape(shape), idx.reshape(shape)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over kD x kH x kW windows (stride defaults to kernel_size; -inf padding of at most half
    the kernel); with return_indices, also the flat d * H * W + h * W + w index of each maximum."""
    op = "max_pool3d"
    k = _tuple(kernel_size, 3, "kernel_size", op)
    s, p, d = _stride3(stride, k, op), _tuple(padding, 3, "padding", op), _tuple(dilation, 3, "dilation", op)
    x, lead = _planes(input, op)
    with _named(op, input):
        out, idx = _max3(
            x, lead,
            lambda t: _P.max_pool2d(t, k[1:], s[1:], p[1:], d[1:], ceil_mode, return_indices=True),
            lambda t: _P.max_pool2d(t, (k[0], 1), (s[0], 1), (p[0], 0), (d[0], 1), ceil_mode, return_indices=True))
    return (out, idx) if return_indices else out


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over kD x kH x kW windows; zero padding counts in the divisor when count_include_pad;
    divisor_override replaces the divisor."""
    op = "avg_pool3d"
    if not input.dtype.is_floating_point:
        raise TypeError(f"{op}: input must be floating point; got {input.dtype} of shape {tuple(input.shape)}")
    k = _tuple(kernel_size, 3, "kernel_size", op)
    s, p = _stride3(stride, k, op), _tuple(padding, 3, "padding", op)
    if divisor_override is not None and int(divisor_override) == 0:
        raise ValueError(f"{op}: divisor_override must be non-zero; input shape {tuple(input.shape)}")
    x, lead = _planes(input, op)
    B, D = x.shape[0], x.shape[1]
    div = None if divisor_override is None else 1  # sums in both passes, then one division
    with _named(op, input):
        o2 = _P.avg_pool2d(x, k[1:], s[1:], p[1:], ceil_mode, count_include_pad, div)
        OH, OW = o2.shape[2], o2.shape[3]
        o3 = _P.avg_pool2d(o2.reshape(B, 1, D, OH * OW), (k[0], 1), (s[0], 1), (p[0], 0), ceil_mode,
                           count_include_pad, div)
    out = o3.reshape(lead + (o3.shape[2], OH, OW))
    return out if divisor_override is None else out / float(int(divisor_override))


def _out3(output_size, shape, op):
    size = _tuple(output_size, 3, "output_size", op, allow_none=True)
    if size is None:
        return tuple(shape)
    return tuple(shape[i] if v is None else v for i, v in enumerate(size))


def adaptive_avg_pool3d(input, output_size):
    """Mean over the windows [floor(i D / OD), ceil((i + 1) D / OD)) of each dim (None keeps a size)."""
    op = "adaptive_avg_pool3d"
    x, lead = _planes(input, op)
    B, D = x.shape[0], x.shape[1]
    od, oh, ow = _out3(output_size, input.shape[-3:], op)
    with _named(op, input):
        o2 = _P.adaptive_avg_pool2d(x, (oh, ow))
        o3 = _P.adaptive_avg_pool2d(o2.reshape(B, 1, D, oh * ow), (od, oh * ow))
    return o3.reshape(lead + (od, oh, ow))


def adaptive_max_pool3d(input, output_size, return_indices=False):
    """Max over the adaptive windows; with return_indices, also the flat per-volume indices."""
    op = "adaptive_max_pool3d"
    x, lead = _planes(input, op)
    od, oh, ow = _out3(output_size, input.shape[-3:], op)
    with _named(op, input):
        out, idx = _max3(x, lead, lambda t: _P.adaptive_max_pool2d(t, (oh, ow), return_indices=True),
                         lambda t: _P.adaptive_max_pool2d(t, (od, t.shape[3]), return_indices=True))
    return (out, idx) if return_indices else out


def _max_unpool(input, indices, kernel_size, stride, padding, output_size, n, op):
    k = _tuple(kernel_size, n, "kernel_size", op)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) else \
        _tuple(stride, n, "stride", op)
    p = _tuple(padding, n, "padding", op)
    if input.ndim not in (n + 1, n + 2):
        raise ValueError(f"{op}: expected a {n + 1}D or {n + 2}D input; got shape {tuple(input.shape)}")
    if tuple(indices.shape) != tuple(input.shape):
        raise ValueError(f"{op}: indices shape {tuple(indices.shape)} must match input shape {tuple(input.shape)}")
    if indices.dtype != _C.dtype.int64:
        raise TypeError(f"{op}: indices must be int64; got {indices.dtype}")
    sp = tuple(input.shape[-n:])
    default = tuple((sp[i] - 1) * s[i] - 2 * p[i] + k[i] for i in range(n))
    if output_size is None:
        size = default
    else:
        size = tuple(int(v) for v in output_size)
        if len(size) == n + 2 or len(size) == n + 1 and input.ndim == n + 1:
            size = size[-n:]
        if len(size) != n:
            raise ValueError(f"{op}: output_size must have {n} or {n + 2} elements; got {tuple(output_size)}")
        for i in range(n):
            if not default[i] - s[i] < size[i] < default[i] + s[i]:
                raise ValueError(f"{op}: invalid output_size {tuple(output_size)}: each spatial size must lie "
                                 f"strictly between {tuple(d - st for d, st in zip(default, s))} and "
                                 f"{tuple(d + st for d, st in zip(default, s))}; input shape {tuple(input.shape)}")
    lead = tuple(input.shape[:-n])
    planes = int(np.prod(lead)) if lead else 1
    total = int(np.prod(size))
    flat_idx = indices.reshape(planes, -1)
    if flat_idx.numel():
        lo, hi = int(flat_idx.min()), int(flat_idx.max())
        if lo < 0 or hi >= total:
            raise IndexError(f"{op}: found an invalid max index {hi if hi >= total else lo} (output volumes are of "
                             f"size {'x'.join(map(str, size))}); input shape {tuple(input.shape)}")
    zeros = _C.full((planes, total), 0.0, input.dtype, input.device)
    src = input.reshape(planes, -1)
    out = zeros.scatter(1, flat_idx, src.detach())
    if input.requires_grad:  # PyTorch's backward gathers the output gradient at every index, repeated ones too
        sur = zeros.scatter_add(1, flat_idx, src)
        out = out + (sur - sur.detach())
    return out.reshape(lead + size)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of max_pool1d: zeros of the unpooled length, input values at their indices."""
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 1, "max_unpool1d")


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of max_pool2d: zeros of the unpooled size, input values at their flat indices."""
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 2, "max_unpool2d")


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of max_pool3d: zeros of the unpooled size, input values at their flat indices."""
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 3, "max_unpool3d")


def _intervals(sample, in_size, out_size, pool, np_dtype):
    """PyTorch's window starts of fractional max pooling, in the input's precision:
    int((i + u) alpha) - int(u alpha), alpha = (in - pool) / (out - 1); the last starts at in - pool."""
    u = np.asarray(sample, dtype=np_dtype)
    seq = np.empty(u.shape + (out_size,), dtype=np.int64)
    if out_size > 1:
        alpha = np_dtype(in_size - pool) / np_dtype(out_size - 1)
        i = np.arange(out_size - 1, dtype=np_dtype)
        seq[..., :-1] = ((i + u[..., None]) * alpha).astype(np.int64) - (u * alpha).astype(np.int64)[..., None]
    seq[..., -1] = in_size - pool
    return seq


def _fractional(input, kernel_size, output_size, output_ratio, return_indices, _random_samples, n, op):
    if input.ndim not in (n + 1, n + 2):
        raise ValueError(f"{op}: expected a {n + 1}D or {n + 2}D input; got shape {tuple(input.shape)}")
    unbatched = input.ndim == n + 1
    x = input.unsqueeze(0) if unbatched else input
    N, C = x.shape[0], x.shape[1]
    sp = tuple(x.shape[2:])
    k = _tuple(kernel_size, n, "kernel_size", op)
    if output_size is None:
        if output_ratio is None:
            raise ValueError(f"{op}: fractional_max_pool requires specifying either an output_size or an output_ratio")
        ratio = tuple(output_ratio) if isinstance(output_ratio, (tuple, list)) else (output_ratio,) * n
        if len(ratio) == 1:
            ratio = ratio * n
        out = tuple(int(sp[i] * float(ratio[i])) for i in range(n))
    else:
        out = _tuple(output_size, n, "output_size", op)
    for i in range(n):
        if out[i] + k[i] - 1 > sp[i] or k[i] < 1 or out[i] < 1:
            raise ValueError(f"{op}: output_size {out} plus kernel_size {k} minus 1 exceeds the input size {sp} "
                             f"(or a size is not positive); input shape {tuple(input.shape)}")
    np_dtype = np.float32 if x.dtype != _C.dtype.float64 else np.float64
    if _random_samples is None:
        u = np.random.default_rng().random((N, C, n)).astype(np_dtype)
    else:
        rs = tuple(_random_samples.shape)
        if len(rs) != 3 or rs[0] < N or rs[1] != C or rs[2] != n:  # extra rows past the batch: unused, as torch
            raise ValueError(f"{op}: _random_samples must be (at least {N}, {C}, {n}) for input "
                             f"{tuple(input.shape)}; got shape {rs}")
        u = np.asarray(_random_samples.detach()[:N].to(_C.dtype.float64).numpy()).astype(np_dtype)
    # PyTorch's sample order: 2-d (W, H), 3-d (T, H, W)
    order = (1, 0) if n == 2 else (0, 1, 2)
    starts = [_intervals(u[..., order[i]], sp[i], out[i], k[i], np_dtype) for i in range(n)]  # (N, C, out_i)
    strides = [int(np.prod(sp[i + 1:])) for i in range(n)]
    idx = np.zeros((N, C) + out + k, dtype=np.int64)
    for i in range(n):  # window element (o..., j...) reads start_i[o_i] + j_i along dim i
        shape_o = [N, C] + [1] * (2 * n)
        shape_o[2 + i] = out[i]
        shape_j = [1, 1] + [1] * (2 * n)
        shape_j[2 + n + i] = k[i]
        pos = starts[i].reshape(shape_o) + np.arange(k[i]).reshape(shape_j)
        idx = idx + pos * strides[i]
    nout, nk = int(np.prod(out)), int(np.prod(k))
    index = _dev(idx.reshape(N, C, nout * nk), x)
    win = _C.gather(x.reshape(N, C, int(np.prod(sp))), 2, index).reshape(N, C, nout, nk)
    vals, arg = win.max(3)
    where = _C.gather(index.reshape(N, C, nout, nk), 3, arg.unsqueeze(3)).squeeze(3)
    vals, where = vals.reshape((N, C) + out), where.reshape((N, C) + out)
    if unbatched:
        vals, where = vals.squeeze(0), where.squeeze(0)
    return (vals, where) if return_indices else vals


def fractional_max_pool2d(input, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                          _random_samples=None):
    """Max over pseudo-random kH x kW windows whose starts follow PyTorch's sequence for the
    samples in _random_samples ((N, C, 2) in [0, 1): W's then H's; drawn when None)."""
    return _fractional(input, kernel_size, output_size, output_ratio, return_indices, _random_samples, 2,
                       "fractional_max_pool2d")


def fractional_max_pool3d(input, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                          _random_samples=None):
    """Max over pseudo-random kT x kH x kW windows; _random_samples (N, C, 3): T's, H's, W's."""
    return _fractional(input, kernel_size, output_size, output_ratio, return_indices, _random_samples, 3,
                       "fractional_max_pool3d")


def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """(sum over each kD x kH x kW window of x^p)^(1/p) over (N, C, D, H, W) or (C, D, H, W)."""
    from fastdl.nn._functional_pool1d import _lp
    k = _tuple(kernel_size, 3, "kernel_size", "lp_pool3d")
    if norm_type == float("inf"):
        return max_pool3d(input.abs(), k, stride, 0, 1, ceil_mode)
    if norm_type == -float("inf"):
        return -max_pool3d(-input.abs(), k, stride, 0, 1, ceil_mode)
    return _lp(avg_pool3d(input.pow(norm_type), k, stride, 0, ceil_mode), norm_type, k[0] * k[1] * k[2])
