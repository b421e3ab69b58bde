"""F.grid_sample (bilinear / nearest over 4-D and 5-D inputs, bicubic over 4-D; padding zeros /
border / reflection; align_corners) and F.affine_grid, composed from fastdl ops with PyTorch's
coordinate rules, so autograd gives both the input gradient (gather's adjoint) and the grid
gradient (through the interpolation weights and the coordinate maps).

A grid's last dim holds (x, y[, z]) in [-1, 1], x indexing W. Coordinates are unnormalised to
pixels ((c + 1) / 2 (size - 1) with align_corners, ((c + 1) size - 1) / 2 without), then
border clips them to [0, size - 1] and reflection folds them about the edges (the pixel centres
with align_corners, the image borders without) before clipping; the gradient of a clipped
coordinate is 0 at and beyond the ends, as PyTorch's. Taps outside the input read 0."""
import numpy as np

from fastdl import _C

_MODES = ("bilinear", "nearest", "bicubic")
_PADDING = ("zeros", "border", "reflection")
_A = -0.75  # PyTorch's bicubic convolution constant


def _dev(a, like):
    """A host (numpy) table as a tensor on like's device."""
    return _C.from_numpy(np.ascontiguousarray(a)).to(like.device)


def _unnormalize(c, size, align_corners):
    if align_corners:
        return (c + 1) * ((size - 1) / 2)
    return ((c + 1) * size - 1) / 2


def _clip(c, size):
    """clamp(c, 0, size - 1), with gradient 1 strictly inside and 0 at or past the ends."""
    return _C.where((c > 0) & (c < size - 1), c, _C.clamp(c, 0.0, float(size - 1)).detach())


def _reflect(c, twice_low, twice_high):
    """Fold c into [twice_low / 2, twice_high / 2] by reflections about the two ends."""
    if twice_low == twice_high:
        return c * 0
    lo, span = twice_low / 2, (twice_high - twice_low) / 2
    a = c - lo
    a = _C.where(a < 0, -a, a)
    flips = _C.floor(a / span).detach()
    extra = a - flips * span
    even = _C.remainder(flips, 2.0) == 0
    return _C.where(even, extra + lo, span - extra + lo)


def _pad_coord(c, size, padding_mode, align_corners):
    if padding_mode == "border":
        return _clip(c, size)
    if padding_mode == "reflection":
        c = _reflect(c, 0, 2 * (size - 1)) if align_corners else _reflect(c, -1, 2 * size - 1)
        return _clip(c, size)
    return c


class _Taps:
    """Reads input values at integer coordinates (one (N, P) tensor per grid component), 0 outside."""

    def __init__(self, input, sizes):
        N, C = input.shape[0], input.shape[1]
        self.flat = input.reshape(N, C, int(np.prod(input.shape[2:])))
        self.sizes = sizes  # (W, H[, D]) in grid-component order
        self.strides = [int(np.prod(sizes[:k])) for k in range(len(sizes))]
        self.N, self.C = N, C

    def read(self, coords):
        valid, lin = None, None
        for k, ck in enumerate(coords):
            ok = (ck >= 0) & (ck <= self.sizes[k] - 1)
            valid = ok if valid is None else valid & ok
            term = _C.clamp(ck, 0.0, float(self.sizes[k] - 1)) * float(self.strides[k])
            lin = term if lin is None else lin + term
        P = lin.shape[1]
        index = lin.to(_C.dtype.int64).unsqueeze(1).expand(self.N, self.C, P)
        vals = _C.gather(self.flat, 2, index)
        return vals * valid.unsqueeze(1).to(vals.dtype)


def _cubic_weights(t):
    """PyTorch's 4 cubic-convolution weights for taps at floor - 1 ... floor + 2 (t = frac)."""
    def near(x):  # |x| <= 1
        return ((_A + 2) * x - (_A + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((_A * x - 5 * _A) * x + 8 * _A) * x - 4 * _A
    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    """Sample input (N, C, H, W) / (N, C, D, H, W) at grid (N, H_out, W_out, 2) /
    (N, D_out, H_out, W_out, 3) locations in [-1, 1]."""
    op = "grid_sample"
    if mode not in _MODES:
        raise ValueError(f"{op}: mode must be one of {_MODES}; got '{mode}'")
    if padding_mode not in _PADDING:
        raise ValueError(f"{op}: padding_mode must be one of {_PADDING}; got '{padding_mode}'")
    if input.ndim not in (4, 5) or grid.ndim != input.ndim or grid.shape[-1] != input.ndim - 2:
        raise ValueError(f"{op}: expected input (N, C, H, W) with grid (N, H_out, W_out, 2), or input "
                         f"(N, C, D, H, W) with grid (N, D_out, H_out, W_out, 3); got input {tuple(input.shape)} "
                         f"and grid {tuple(grid.shape)}")
    if grid.shape[0] != input.shape[0]:
        raise ValueError(f"{op}: grid and input must have the same batch size; got input {tuple(input.shape)} "
                         f"and grid {tuple(grid.shape)}")
    if mode == "bicubic" and input.ndim != 4:
        raise ValueError(f"{op}: bicubic interpolation only supports 4D input; got shape {tuple(input.shape)}")
    if input.dtype != grid.dtype or not input.dtype.is_floating_point:
        raise TypeError(f"{op}: input and grid must share a floating dtype; got {input.dtype} and {grid.dtype}")
    if input.dtype in (_C.dtype.bfloat16, _C.dtype.float16):  # coordinates and weights in float32 (PyTorch's opmath)
        return grid_sample(input.to(_C.dtype.float32), grid.to(_C.dtype.float32), mode, padding_mode,
                           align_corners).to(input.dtype)
    align_corners = bool(align_corners)
    nd = input.ndim - 2
    N, C = input.shape[0], input.shape[1]
    sizes = tuple(input.shape[2:])[::-1]  # W, H[, D]
    out_sp = tuple(grid.shape[1:-1])
    P = int(np.prod(out_sp))
    if N == 0 or C == 0 or P == 0 or min(sizes) == 0:
        return _C.full((N, C) + out_sp, 0.0, input.dtype, input.device) + (input.sum() + grid.sum()) * 0
    g = grid.reshape(N, P, nd)
    taps = _Taps(input, sizes)
    raw = [_unnormalize(g[:, :, k], sizes[k], align_corners) for k in range(nd)]
    if mode == "bicubic":
        x, y = raw
        x0, y0 = _C.floor(x).detach(), _C.floor(y).detach()
        wx, wy = _cubic_weights(x - x0), _cubic_weights(y - y0)
        out = None
        for j in range(4):
            yj = _pad_coord(y0 + (j - 1), sizes[1], padding_mode, align_corners).detach()
            row = None
            for i in range(4):
                xi = _pad_coord(x0 + (i - 1), sizes[0], padding_mode, align_corners).detach()
                term = taps.read([xi, yj]) * wx[i].unsqueeze(1)
                row = term if row is None else row + term
            term = row * wy[j].unsqueeze(1)
            out = term if out is None else out + term
        return out.reshape((N, C) + out_sp)
    coords = [_pad_coord(raw[k], sizes[k], padding_mode, align_corners) for k in range(nd)]
    if mode == "nearest":
        return taps.read([c.round().detach() for c in coords]).reshape((N, C) + out_sp)
    lo = [_C.floor(c).detach() for c in coords]
    frac = [c - f for c, f in zip(coords, lo)]
    out = None
    for corner in range(2 ** nd):  # bit k: the upper neighbour along component k
        w, at = None, []
        for k in range(nd):
            up = corner >> k & 1
            wk = frac[k] if up else 1 - frac[k]
            w = wk if w is None else w * wk
            at.append(lo[k] + 1 if up else lo[k])
        term = taps.read(at) * w.unsqueeze(1)
        out = term if out is None else out + term
    return out.reshape((N, C) + out_sp)


def _base(size, align_corners):
    if size <= 1:
        return np.zeros(max(size, 0), dtype=np.float64)
    v = np.linspace(-1.0, 1.0, size)
    return v if align_corners else v * (size - 1) / size


def affine_grid(theta, size, align_corners=None):
    """Sampling grid (N, H, W, 2) / (N, D, H, W, 3) of the affine maps theta (N, 2, 3) / (N, 3, 4)
    applied to the normalised output coordinates."""
    op = "affine_grid"
    size = tuple(int(s) for s in size)
    align_corners = bool(align_corners)
    if not theta.dtype.is_floating_point:
        raise TypeError(f"{op}: theta must be floating point; got {theta.dtype}")
    if len(size) == 4:
        N, _, H, W = size
        if tuple(theta.shape) != (N, 2, 3):
            raise ValueError(f"{op}: expected theta of shape ({N}, 2, 3) for size {size}; got {tuple(theta.shape)}")
        xs, ys = _base(W, align_corners), _base(H, align_corners)
        base = np.stack(np.broadcast_arrays(xs[None, :], ys[:, None], np.ones((H, W))), -1).reshape(-1, 3)
        spatial = (H, W)
    elif len(size) == 5:
        N, _, D, H, W = size
        if tuple(theta.shape) != (N, 3, 4):
            raise ValueError(f"{op}: expected theta of shape ({N}, 3, 4) for size {size}; got {tuple(theta.shape)}")
        xs, ys, zs = (_base(s, align_corners) for s in (W, H, D))
        base = np.stack(np.broadcast_arrays(xs[None, None, :], ys[None, :, None], zs[:, None, None],
                                            np.ones((D, H, W))), -1).reshape(-1, 4)
        spatial = (D, H, W)
    else:
        raise ValueError(f"{op}: size must be (N, C, H, W) or (N, C, D, H, W); got {size}")
    if min(spatial) <= 0:
        raise ValueError(f"{op}: expected non-zero, positive output size; got {size}")
    b = _dev(np.ascontiguousarray(base), theta).to(theta.dtype)
    grid = _C.matmul(b.unsqueeze(0).expand(N, b.shape[0], b.shape[1]), theta.transpose(1, 2))
    return grid.reshape((N,) + spatial + (len(spatial),))

