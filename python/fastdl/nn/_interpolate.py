"""F.interpolate (modes nearest, bilinear) and nn.Upsample over (N, C, H, W) or (N, C, L)
inputs, with PyTorch's index rules. Resizing is separable: each spatial axis is a gather of
source rows (index_select, whose backward scatters the gradient) and, for bilinear, a blend of
two gathers; the index and weight tables are small and computed once per call in numpy."""
import math

import numpy as np

from fastdl import _tensor
from fastdl.nn.modules.module import Module

_MODES = ("nearest", "bilinear", "linear")


def _sizes(input, size, scale_factor, op):
    spatial = input.ndim - 2
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: give exactly one of size and scale_factor; got size={size}, "
                         f"scale_factor={scale_factor}")
    if size is not None:
        out = tuple(size) if isinstance(size, (tuple, list)) else (size,) * spatial
        scales = (None,) * spatial
    else:
        scales = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * spatial
        out = tuple(int(math.floor(input.shape[2 + i] * float(scales[i]))) for i in range(spatial))
    if len(out) != spatial or len(scales) != spatial or any(int(o) < 1 for o in out):
        raise ValueError(f"{op}: size / scale_factor must give {spatial} positive sizes for input shape "
                         f"{tuple(input.shape)}; got size={size}, scale_factor={scale_factor}")
    return tuple(int(o) for o in out), scales


def _scale(n_in, n_out, scale, align_corners):
    if align_corners:
        return (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    return 1.0 / float(scale) if scale is not None else n_in / n_out


def _gather(x, dim, idx):
    return x.index_select(dim, _tensor.tensor(idx.astype(np.int64), device=x.device))


def _resize_axis(x, dim, n_out, scale, mode, align_corners):
    n_in = x.shape[dim]
    s = _scale(n_in, n_out, scale, align_corners)
    dst = np.arange(n_out, dtype=np.float64)
    if mode == "nearest":
        return _gather(x, dim, np.minimum(np.floor(dst * s), n_in - 1))
    src = dst * s if align_corners else np.maximum((dst + 0.5) * s - 0.5, 0.0)
    i0 = np.minimum(np.floor(src), n_in - 1).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    shape = [1] * x.ndim
    shape[dim] = n_out
    w = _tensor.tensor((src - i0).reshape(shape), dtype=x.dtype, device=x.device)
    a = _gather(x, dim, i0)
    return a + (_gather(x, dim, i1) - a) * w


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Resize the spatial dims of (N, C, L) or (N, C, H, W) input. nearest: source index
    floor(dst * in / out) (1 / scale_factor when given); bilinear (4-D) / linear (3-D): PyTorch's
    half-pixel rule, or the corner-aligned one with align_corners=True."""
    op = "interpolate"
    if mode not in _MODES:
        raise ValueError(f"{op}: mode must be one of {_MODES}; got '{mode}'")
    if input.ndim not in (3, 4):
        raise ValueError(f"{op}: input must be 3-D (N, C, L) or 4-D (N, C, H, W); got shape {tuple(input.shape)}")
    if mode != "nearest" and input.ndim != {"linear": 3, "bilinear": 4}[mode]:
        raise ValueError(f"{op}: mode '{mode}' needs a {'3' if mode == 'linear' else '4'}-D input; got shape "
                         f"{tuple(input.shape)}")
    if mode == "nearest" and align_corners is not None:
        raise ValueError(f"{op}: align_corners only applies to linear and bilinear modes")
    out, scales = _sizes(input, size, scale_factor, op)
    x = input
    for i, (n, sc) in enumerate(zip(out, scales)):
        if n != x.shape[2 + i] or mode != "nearest":
            x = _resize_axis(x, 2 + i, n, sc, mode, bool(align_corners))
    return x if x is not input else input.clone()


class Upsample(Module):
    """nn.Upsample(size=None, scale_factor=None, mode='nearest', align_corners=None)."""

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None):
        super().__init__()
        self.size, self.scale_factor, self.mode, self.align_corners = size, scale_factor, mode, align_corners

    def forward(self, input):
        return interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners)

    def extra_repr(self):
        s = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return f"{s}, mode='{self.mode}'"
