"""Pooling functions with PyTorch's names and arguments, over native fused kernels
(csrc/cpu/pool_vec.cpp): max_pool2d (indices saved for backward), avg_pool2d,
adaptive_avg_pool2d, adaptive_max_pool2d. Inputs (N, C, H, W) or (C, H, W)."""
from fastdl import _C


def _pair(v, name, op, allow_none=False):
    """int or 1-/2-sequence -> 2-tuple of ints (None kept where allowed)."""
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, tuple, list)) and not hasattr(v, "__index__"):
        raise TypeError(f"{op}: {name} must be an int or a tuple of ints; got {type(v).__name__}")
    if isinstance(v, (tuple, list)):
        if len(v) not in (1, 2):
            raise ValueError(f"{op}: {name} must be an int or a tuple of two ints; got {tuple(v)}")
        return tuple(int(a) for a in v) * (2 // len(v))
    return (int(v), int(v))


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over kernel_size windows (stride defaults to kernel_size); padding is -inf, and at
    most half the dilated window. With return_indices, also the flat h * W + w index of each
    maximum within its plane (int64)."""
    op = "max_pool2d"
    k = _pair(kernel_size, "kernel_size", op)
    s = () if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) else _pair(stride, "stride", op)
    x = input
    if not input.dtype.is_floating_point and input.dtype != _C.dtype.bool:
        # PyTorch pools integers too; the kernels are float-only, and a max only selects, so the
        # float64 result is exact (for |values| <= 2^53) and goes back to the input's dtype
        x = input.to(_C.dtype.float64)
    out, idx = _C.max_pool2d(x, k, s, _pair(padding, "padding", op), _pair(dilation, "dilation", op),
                             bool(ceil_mode))
    if out.dtype != input.dtype:
        out = out.to(input.dtype)
    return (out, idx) if return_indices else out


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over kernel_size windows; zero padding counts in the divisor when count_include_pad;
    divisor_override replaces the divisor."""
    op = "avg_pool2d"
    k = _pair(kernel_size, "kernel_size", op)
    s = () if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) else _pair(stride, "stride", op)
    return _C.avg_pool2d(input, k, s, _pair(padding, "padding", op), bool(ceil_mode), bool(count_include_pad),
                         None if divisor_override is None else int(divisor_override))


def _output_size(output_size, op):
    if isinstance(output_size, (tuple, list)):
        if len(output_size) not in (1, 2):
            raise ValueError(f"{op}: output_size must be an int or a tuple of two; got {tuple(output_size)}")
        vals = tuple(output_size) * (2 // len(output_size))
        return tuple(-1 if v is None else int(v) for v in vals)
    if output_size is None:
        return (-1, -1)
    return (int(output_size), int(output_size))


def adaptive_avg_pool2d(input, output_size):
    """Mean over the windows [floor(i H / OH), ceil((i + 1) H / OH)) (None keeps a size)."""
    return _C.adaptive_avg_pool2d(input, _output_size(output_size, "adaptive_avg_pool2d"))


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max over the adaptive windows; with return_indices, also the flat per-plane indices."""
    out, idx = _C.adaptive_max_pool2d(input, _output_size(output_size, "adaptive_max_pool2d"))
    return (out, idx) if return_indices else out
