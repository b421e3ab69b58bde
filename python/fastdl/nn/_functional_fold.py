"""F.unfold (im2col) and F.fold (col2im) with PyTorch's arguments. unfold gathers the sliding
blocks of the zero-padded image with one index_select over a numpy table of flat positions (its
backward scatters and sums). fold, its adjoint, sums per kernel offset one shifted image of the
blocks spread by the stride (block copies and adds, far faster than a scatter), then crops the
padding."""
import numpy as np

from fastdl import _C
from fastdl.nn._functional_pad import pad as _pad


def _pair(v, name, op):
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{op}: {name} must be an int or a pair of ints; got {tuple(v)}")
        return int(v[0]), int(v[1])
    if isinstance(v, bool) or not hasattr(v, "__index__"):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints; got {type(v).__name__}")
    return int(v), int(v)


def _args(kernel_size, dilation, padding, stride, op):
    k, d = _pair(kernel_size, "kernel_size", op), _pair(dilation, "dilation", op)
    p, s = _pair(padding, "padding", op), _pair(stride, "stride", op)
    if min(k) < 1 or min(d) < 1 or min(s) < 1 or min(p) < 0:
        raise ValueError(f"{op}: kernel_size, dilation and stride must be positive and padding non-negative; got "
                         f"kernel_size={k}, dilation={d}, padding={p}, stride={s}")
    return k, d, p, s


def _blocks(H, W, k, d, p, s, op, shape):
    """(number of blocks per dim, flat padded positions (kh * kw * L,) in block-major order)."""
    Hp, Wp = H + 2 * p[0], W + 2 * p[1]
    nb = [(n - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i, n in enumerate((Hp, Wp))]
    if nb[0] < 1 or nb[1] < 1:
        raise ValueError(f"{op}: kernel_size {k} with dilation {d} and padding {p} gives no sliding blocks over the "
                         f"spatial size ({H}, {W}); input shape {shape}")
    ki, kj = np.meshgrid(np.arange(k[0]) * d[0], np.arange(k[1]) * d[1], indexing="ij")  # (kh, kw) offsets
    oi, oj = np.meshgrid(np.arange(nb[0]) * s[0], np.arange(nb[1]) * s[1], indexing="ij")  # (bh, bw) origins
    rows = ki.reshape(-1, 1) + oi.reshape(1, -1)
    cols = kj.reshape(-1, 1) + oj.reshape(1, -1)
    return nb, _C.from_numpy((rows * Wp + cols).reshape(-1).astype(np.int64))


def _spread(x, dim, step):
    """Insert step - 1 zeros between consecutive elements of dim (size n -> (n - 1) * step + 1)."""
    if step == 1:
        return x
    n = x.shape[dim]
    z = x.unsqueeze(dim + 1)
    shape = list(z.shape)
    shape[dim + 1] = step - 1
    z = _C.cat([z, _C.full(tuple(shape), 0.0, x.dtype, x.device)], dim + 1)
    shape = list(x.shape)
    shape[dim] = n * step
    return _C.narrow(z.reshape(*shape), dim, 0, (n - 1) * step + 1)


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """(N, C, H, W) or (C, H, W) -> (N, C * kh * kw, L): every sliding kh x kw block as a column,
    channel-major (row c * kh * kw + i * kw + j), blocks in row-major order."""
    op = "unfold"
    if input.ndim not in (3, 4):
        raise ValueError(f"{op}: input must be 3-D (C, H, W) or 4-D (N, C, H, W); got shape {tuple(input.shape)}")
    k, d, p, s = _args(kernel_size, dilation, padding, stride, op)
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    N, C, H, W = x.shape
    nb, idx = _blocks(H, W, k, d, p, s, op, tuple(input.shape))
    if p != (0, 0):
        x = _pad(x, (p[1], p[1], p[0], p[0]))
    cols = _C.index_select(x.reshape(N, C, x.shape[2] * x.shape[3]), 2, idx.to(x.device))
    out = cols.reshape(N, C * k[0] * k[1], nb[0] * nb[1])
    return out.squeeze(0) if unbatched else out


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """(N, C * kh * kw, L) or (C * kh * kw, L) -> (N, C, H, W): the columns summed back into their
    blocks of an output_size image (overlaps add up); the adjoint of unfold."""
    op = "fold"
    if input.ndim not in (2, 3):
        raise ValueError(f"{op}: input must be 2-D (C * kh * kw, L) or 3-D (N, C * kh * kw, L); got shape "
                         f"{tuple(input.shape)}")
    H, W = _pair(output_size, "output_size", op)
    k, d, p, s = _args(kernel_size, dilation, padding, stride, op)
    unbatched = input.ndim == 2
    x = input.unsqueeze(0) if unbatched else input
    N, CK, L = x.shape
    if CK % (k[0] * k[1]):
        raise ValueError(f"{op}: dim 1 of input (size {CK}) must be divisible by the kernel size product "
                         f"{k[0] * k[1]}; got shape {tuple(input.shape)}")
    nb, idx = _blocks(H, W, k, d, p, s, op, tuple(input.shape))
    if L != nb[0] * nb[1]:
        raise ValueError(f"{op}: input has {L} blocks but output_size {(H, W)}, kernel_size {k}, dilation {d}, "
                         f"padding {p} and stride {s} give {nb[0]} x {nb[1]} = {nb[0] * nb[1]}; input shape "
                         f"{tuple(input.shape)}")
    C = CK // (k[0] * k[1])
    Hp, Wp = H + 2 * p[0], W + 2 * p[1]
    cols = x.reshape(N, C, k[0], k[1], nb[0], nb[1])
    out = None
    for i in range(k[0]):  # one shifted, stride-spread block image per kernel offset, summed
        for j in range(k[1]):
            b = _spread(_spread(cols[:, :, i, j], 2, s[0]), 3, s[1])
            top, left = i * d[0], j * d[1]
            b = _pad(b, (left, Wp - left - b.shape[3], top, Hp - top - b.shape[2]))
            out = b if out is None else out + b
    if p != (0, 0):
        out = _pad(out, (-p[1], -p[1], -p[0], -p[0]))
    return out.squeeze(0) if unbatched else out
