"""F.interpolate (modes nearest, nearest-exact, linear, bilinear, trilinear, bicubic, area) and
nn.Upsample over (N, C, L), (N, C, H, W) or (N, C, D, H, W) inputs, with PyTorch's index rules.
Resizing is separable: each spatial axis is a gather of source rows (index_select, whose
backward scatters the gradient) blended with per-row weights (linear: 2 taps, bicubic: 4), or
for area a small averaging matrix; index and weight tables are computed once per call in numpy.
antialias=True (bilinear, bicubic) resizes each axis by a dense (out, in) weight matrix whose rows are
the filter (triangle, or Keys' cubic with a = -0.5) stretched by the downscaling factor and
normalised, PIL's and PyTorch's antialiased resampling."""
import math

import numpy as np

from fastdl import _tensor
from fastdl.nn.modules.module import Module

_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear", "bicubic", "area")
_NDIM = {"linear": 3, "bilinear": 4, "trilinear": 5, "bicubic": 4}  # the input rank each of these needs
_CUBIC_A = -0.75  # PyTorch's cubic convolution coefficient (Keys' kernel)


def _sizes(input, size, scale_factor, recompute_scale_factor, op):
    spatial = input.ndim - 2
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: give exactly one of size and scale_factor; got size={size}, "
                         f"scale_factor={scale_factor}")
    if size is not None:
        if recompute_scale_factor:
            raise ValueError(f"{op}: recompute_scale_factor is not meaningful with an explicit size")
        out = tuple(size) if isinstance(size, (tuple, list)) else (size,) * spatial
        scales = (None,) * spatial
    else:
        scales = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * spatial
        if len(scales) != spatial:
            raise ValueError(f"{op}: scale_factor must give {spatial} values for input shape {tuple(input.shape)}; "
                             f"got {scale_factor}")
        out = tuple(int(math.floor(input.shape[2 + i] * float(scales[i]))) for i in range(spatial))
        if recompute_scale_factor:  # the sizes decide the index rule, as if given as size=
            scales = (None,) * spatial
    if len(out) != spatial or any(int(o) < 1 for o in out):
        raise ValueError(f"{op}: size / scale_factor must give {spatial} positive sizes for input shape "
                         f"{tuple(input.shape)}; got size={size}, scale_factor={scale_factor}")
    return tuple(int(o) for o in out), scales


def _scale(n_in, n_out, scale, align_corners):
    if align_corners:
        return (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    return 1.0 / float(scale) if scale is not None else n_in / n_out


def _gather(x, dim, idx):
    return x.index_select(dim, _tensor.tensor(np.asarray(idx).astype(np.int64), device=x.device))


def _weights(x, dim, w):
    shape = [1] * x.ndim
    shape[dim] = len(w)
    return _tensor.tensor(np.asarray(w).reshape(shape), dtype=x.dtype, device=x.device)


def _cubic(t):
    """Keys' cubic-convolution weights of the taps at floor(src) - 1 .. + 2, for t = src - floor(src)."""
    A = _CUBIC_A

    def near(d):  # |d| <= 1
        return ((A + 2) * d - (A + 3)) * d * d + 1

    def far(d):  # 1 < |d| < 2
        return ((A * d - 5 * A) * d + 8 * A) * d - 4 * A
    return far(t + 1), near(t), near(1 - t), far(2 - t)


def _area_matrix(n_in, n_out):
    """(n_out, n_in) averaging matrix of adaptive average pooling (PyTorch's area mode)."""
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        lo, hi = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


def _aa_matrix(n_in, n_out, scale, align_corners, mode):
    """(n_out, n_in) antialiased resampling weights of one axis."""
    s = _scale(n_in, n_out, scale, align_corners)
    if mode == "bilinear":
        interp, filt = 2, lambda t: np.maximum(0.0, 1.0 - np.abs(t))
    else:
        def filt(t, a=-0.5):
            t = np.abs(t)
            return np.where(t < 1, ((a + 2) * t - (a + 3)) * t * t + 1,
                            np.where(t < 2, ((t - 5) * t + 8) * t * a - 4 * a, 0.0))
        interp = 4
    support = interp * 0.5 * s if s >= 1.0 else interp * 0.5
    inv = 1.0 / s if s >= 1.0 else 1.0
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        center = s * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)  # int(): truncation toward zero, as the C++ casts
        hi = min(int(center + support + 0.5), n_in)
        w = filt((np.arange(lo, hi) - center + 0.5) * inv)
        total = w.sum()
        m[i, lo:hi] = w / total if total != 0 else w
    return m


def _resize_axis(x, dim, n_out, scale, mode, align_corners, antialias=False):
    n_in = x.shape[dim]
    s = _scale(n_in, n_out, scale, align_corners)
    dst = np.arange(n_out, dtype=np.float64)
    if mode == "nearest":
        return _gather(x, dim, np.minimum(np.floor(dst * s), n_in - 1))
    if mode == "nearest-exact":
        return _gather(x, dim, np.minimum(np.floor((dst + 0.5) * s), n_in - 1))
    if mode == "area" or antialias:
        m = _area_matrix(n_in, n_out) if mode == "area" else _aa_matrix(n_in, n_out, scale, align_corners, mode)
        m = _tensor.tensor(m, dtype=x.dtype, device=x.device)
        return (x.movedim(dim, -1) @ m.transpose(0, 1)).movedim(-1, dim)
    if mode == "bicubic":
        src = dst * s if align_corners else (dst + 0.5) * s - 0.5
        i0 = np.floor(src)
        out = None
        for k, w in enumerate(_cubic(src - i0)):
            term = _gather(x, dim, np.clip(i0 - 1 + k, 0, n_in - 1)) * _weights(x, dim, w)
            out = term if out is None else out + term
        return out
    src = dst * s if align_corners else np.maximum((dst + 0.5) * s - 0.5, 0.0)
    i0 = np.minimum(np.floor(src), n_in - 1).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    a = _gather(x, dim, i0)
    return a + (_gather(x, dim, i1) - a) * _weights(x, dim, src - i0)


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None, recompute_scale_factor=None,
                antialias=False):
    """Resize the spatial dims of (N, C, L), (N, C, H, W) or (N, C, D, H, W) input. nearest: source
    index floor(dst * in / out) (1 / scale_factor when given); nearest-exact: floor((dst + 0.5) *
    in / out); linear / bilinear / trilinear / bicubic: PyTorch's half-pixel rule, or the
    corner-aligned one with align_corners=True; area: adaptive average pooling."""
    op = "interpolate"
    if mode not in _MODES:
        raise ValueError(f"{op}: mode must be one of {_MODES}; got '{mode}'")
    if input.ndim not in (3, 4, 5):
        raise ValueError(f"{op}: input must be 3-D (N, C, L), 4-D (N, C, H, W) or 5-D (N, C, D, H, W); got shape "
                         f"{tuple(input.shape)}")
    if mode in _NDIM and input.ndim != _NDIM[mode]:
        raise ValueError(f"{op}: mode '{mode}' needs a {_NDIM[mode]}-D input; got shape {tuple(input.shape)}")
    if mode not in _NDIM and align_corners is not None:
        raise ValueError(f"{op}: align_corners only applies to linear, bilinear, trilinear and bicubic modes")
    if antialias and (mode not in ("bilinear", "bicubic") or input.ndim != 4):
        raise ValueError(f"{op}: anti-alias option is restricted to bilinear and bicubic modes and requires a 4-D "
                         f"tensor as input; got mode '{mode}' and shape {tuple(input.shape)}")
    out, scales = _sizes(input, size, scale_factor, recompute_scale_factor, op)
    x = input
    for i, (n, sc) in enumerate(zip(out, scales)):
        if n != x.shape[2 + i] or mode not in ("nearest", "nearest-exact", "area"):
            x = _resize_axis(x, 2 + i, n, sc, mode, bool(align_corners), bool(antialias))
    return x if x is not input else input.clone()


class Upsample(Module):
    """nn.Upsample(size=None, scale_factor=None, mode='nearest', align_corners=None)."""

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None, recompute_scale_factor=None):
        super().__init__()
        self.name = type(self).__name__
        if isinstance(scale_factor, tuple):  # torch keeps the factors as floats
            scale_factor = tuple(float(f) for f in scale_factor)
        else:
            scale_factor = float(scale_factor) if scale_factor else None
        self.size, self.scale_factor, self.mode, self.align_corners = size, scale_factor, mode, align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        return interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                           self.recompute_scale_factor)

    def extra_repr(self):
        s = f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None else f"size={self.size!r}"
        return f"{s}, mode={self.mode!r}"


def _deprecated(name):
    import warnings
    warnings.warn(f"`nn.functional.{name}` is deprecated. Use `nn.functional.interpolate` instead.", stacklevel=3)


def upsample_nearest(input, size=None, scale_factor=None):
    """Deprecated PyTorch alias: interpolate(..., mode='nearest')."""
    _deprecated("upsample_nearest")
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    """Deprecated PyTorch alias: interpolate(..., mode='bilinear', align_corners=True)."""
    _deprecated("upsample_bilinear")
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Deprecated PyTorch alias of interpolate."""
    _deprecated("upsample")
    return interpolate(input, size, scale_factor, mode, align_corners)


def _float_scale(scale_factor):
    """PyTorch stores a scale factor as float (a tuple of floats)."""
    if isinstance(scale_factor, tuple):
        return tuple(float(f) for f in scale_factor)
    return float(scale_factor) if scale_factor else None


class UpsamplingNearest2d(Upsample):
    """2-D nearest-neighbour upsampling of (N, C, H, W)."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, _float_scale(scale_factor), mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """2-D bilinear upsampling of (N, C, H, W) with align_corners=True."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, _float_scale(scale_factor), mode="bilinear", align_corners=True)


def _upsample_bilinear2d_aa(input, output_size=None, align_corners=False, scale_factors=None, scales_h=None,  # noqa: A002
                            scales_w=None):
    """aten._upsample_bilinear2d_aa (both overloads): antialiased bilinear resize of (N, C, H, W) to
    output_size, or to floor(size * factor) with scale_factors; scales, when given, set the
    coordinate mapping (as interpolate's scale_factor does)."""
    if input.ndim != 4:
        raise ValueError(f"_upsample_bilinear2d_aa: expected a 4-D input; got shape {tuple(input.shape)}")
    if output_size is None:
        if scale_factors is None or len(scale_factors) != 2:
            raise ValueError("_upsample_bilinear2d_aa: give output_size or two scale_factors")
        sizes = [int(math.floor(input.shape[2 + i] * float(f))) for i, f in enumerate(scale_factors)]
        scales = list(scale_factors)
    else:
        sizes, scales = [int(n) for n in output_size], [scales_h, scales_w]
    x = input
    for i, (n, sc) in enumerate(zip(sizes, scales)):
        x = _resize_axis(x, 2 + i, n, sc, "bilinear", bool(align_corners), True)
    return x if x is not input else input.clone()
