"""1-d pooling (max_pool1d, avg_pool1d, adaptive_avg_pool1d, adaptive_max_pool1d) and power-average
pooling (lp_pool1d, lp_pool2d) with PyTorch's arguments. A (N, C, L) or (C, L) input runs through
the native 2-d pooling kernels as a height-1 image, so indices (flat h * W + w with h = 0) are
the 1-d positions; LP pooling is PyTorch's formula over avg_pool: (k * mean(x^p))^(1/p)."""
import contextlib

from fastdl import _C
from fastdl.nn import _functional_pool as _P


@contextlib.contextmanager
def _named(op, input, how=" (the input runs as a height-1 image)"):
    """Errors of the 2-d op underneath, re-raised under op's name (a 1-d or 3-d op), with how the
    input was run and its shape."""
    try:
        yield
    except (ValueError, TypeError) as e:
        msg = str(e).split(": ", 1)[-1]
        raise type(e)(f"{op}: {msg}{how}; input shape {tuple(input.shape)}") from e


def _single(v, name, op, allow_none=False):
    """int or 1-sequence -> int."""
    if v is None and allow_none:
        return None
    if isinstance(v, (tuple, list)):
        if len(v) != 1:
            raise ValueError(f"{op}: {name} must be an int or a 1-tuple; got {tuple(v)}")
        v = v[0]
    if isinstance(v, bool) or not hasattr(v, "__index__"):
        raise TypeError(f"{op}: {name} must be an int or a 1-tuple of ints; got {type(v).__name__}")
    return int(v)


def _stride(stride, op):
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        return None
    return (1, _single(stride, "stride", op))


def _as_2d(input, op):
    if input.ndim not in (2, 3):
        raise ValueError(f"{op}: expected a 2D (C, L) or 3D (N, C, L) input; got shape {tuple(input.shape)}")
    if 0 in tuple(input.shape[-2:]):
        raise ValueError(f"{op}: expected the input's non-batch dimensions (C, L) to have positive length; got shape "
                         f"{tuple(input.shape)}")
    return input.unsqueeze(-2)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over kernel_size windows of the last dim (stride defaults to kernel_size); with
    return_indices, also each maximum's position along the input's last dim (int64)."""
    op = "max_pool1d"
    k, s, p, d = (_single(kernel_size, "kernel_size", op), _stride(stride, op), _single(padding, "padding", op),
                  _single(dilation, "dilation", op))
    with _named(op, input):
        out, idx = _P.max_pool2d(_as_2d(input, op), (1, k), s, (0, p), (1, d), ceil_mode, return_indices=True)
    out = out.squeeze(-2)
    return (out, idx.squeeze(-2)) if return_indices else out


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Mean over kernel_size windows of the last dim; zero padding counts in the divisor when
    count_include_pad."""
    op = "avg_pool1d"
    if not input.dtype.is_floating_point:
        raise TypeError(f"{op}: input must be floating point; got {input.dtype} of shape {tuple(input.shape)}")
    k, s, p = _single(kernel_size, "kernel_size", op), _stride(stride, op), _single(padding, "padding", op)
    with _named(op, input):
        return _P.avg_pool2d(_as_2d(input, op), (1, k), s, (0, p), ceil_mode, count_include_pad).squeeze(-2)


def _out_size(output_size, op):
    size = None if output_size is None else _single(output_size, "output_size", op)
    if size is not None and size < 0:
        raise ValueError(f"{op}: elements of output_size must be greater than or equal to 0; got {output_size}")
    return size


def adaptive_avg_pool1d(input, output_size):
    """Mean over the windows [floor(i L / OL), ceil((i + 1) L / OL))."""
    op = "adaptive_avg_pool1d"
    size = _out_size(output_size, op)
    with _named(op, input):
        return _P.adaptive_avg_pool2d(_as_2d(input, op), (1, size)).squeeze(-2)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Max over the adaptive windows; with return_indices, also the positions of the maxima."""
    op = "adaptive_max_pool1d"
    size = _out_size(output_size, op)
    with _named(op, input):
        out, idx = _P.adaptive_max_pool2d(_as_2d(input, op), (1, size), return_indices=True)
    out = out.squeeze(-2)
    return (out, idx.squeeze(-2)) if return_indices else out


def _lp(pooled, norm_type, n):
    # PyTorch's form: sign(s) relu(|s|) keeps a gradient of zero where a window's power sum is 0
    return (_C.sign(pooled) * _C.relu(pooled.abs()) * float(n)).pow(1.0 / norm_type)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """(sum over each window of x^p)^(1/p); p = inf is the max of |x|, p = -inf the min of |x|."""
    op = "lp_pool1d"
    k = _single(kernel_size, "kernel_size", op)
    if norm_type == float("inf"):
        return max_pool1d(input.abs(), k, stride, 0, 1, ceil_mode)
    if norm_type == -float("inf"):
        return -max_pool1d(-input.abs(), k, stride, 0, 1, ceil_mode)
    return _lp(avg_pool1d(input.pow(norm_type), k, stride, 0, ceil_mode), norm_type, k)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """(sum over each kH x kW window of x^p)^(1/p) over (N, C, H, W) or (C, H, W)."""
    op = "lp_pool2d"
    kh, kw = _P._pair(kernel_size, "kernel_size", op)
    if norm_type == float("inf"):
        return _P.max_pool2d(input.abs(), (kh, kw), stride, 0, 1, ceil_mode)
    if norm_type == -float("inf"):
        return -_P.max_pool2d(-input.abs(), (kh, kw), stride, 0, 1, ceil_mode)
    return _lp(_P.avg_pool2d(input.pow(norm_type), (kh, kw), stride, 0, ceil_mode), norm_type, kh * kw)
