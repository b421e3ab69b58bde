"""Image grids for generative models, written as PNG with only numpy and zlib (no plotting
library needed): make_grid(images, nrow) tiles (N, C, H, W) images; save_image(images, path)
writes the grid as an 8-bit grey or RGB PNG, each image (or the whole grid) scaled from
value_range to [0, 255]."""
import struct
import zlib

import numpy as np


def make_grid(images, nrow=8, padding=1, pad_value=0.0):
    """(N, C, H, W) or (N, H, W) array-like -> (C, rows * (H + p) + p, nrow * (W + p) + p) array."""
    x = np.asarray(images.detach().numpy() if hasattr(images, "detach") else images, dtype=np.float64)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(f"make_grid: images must be a non-empty (N, C, H, W) or (N, H, W) array; got shape {x.shape}")
    n, c, h, w = x.shape
    ncol = min(nrow, n)
    rows = -(-n // ncol)
    grid = np.full((c, rows * (h + padding) + padding, ncol * (w + padding) + padding), pad_value, np.float64)
    for i in range(n):
        r, q = divmod(i, ncol)
        top, left = padding + r * (h + padding), padding + q * (w + padding)
        grid[:, top:top + h, left:left + w] = x[i]
    return grid


def _png(pixels):
    """(H, W) or (H, W, 3) uint8 -> PNG bytes (filter 0 on every row)."""
    h, w = pixels.shape[:2]
    color = 2 if pixels.ndim == 3 else 0
    raw = b"".join(b"\x00" + pixels[r].tobytes() for r in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def save_image(images, path, nrow=8, value_range=(0.0, 1.0), scale=1, padding=1):
    """Write images (N, C, H, W) with C in (1, 3) as one PNG grid; values are clipped to
    value_range then mapped to 0..255; `scale` repeats each pixel (8x8 digits are tiny).
    Returns path."""
    lo, hi = value_range
    grid = make_grid(images, nrow, padding, pad_value=lo)
    if grid.shape[0] not in (1, 3):
        raise ValueError(f"save_image: images need 1 or 3 channels; got {grid.shape[0]}")
    g = np.clip((grid - lo) / (hi - lo), 0.0, 1.0)
    g = np.round(g * 255).astype(np.uint8)
    if scale > 1:
        g = g.repeat(scale, 1).repeat(scale, 2)
    pixels = g[0] if g.shape[0] == 1 else np.ascontiguousarray(g.transpose(1, 2, 0))
    with open(path, "wb") as f:
        f.write(_png(pixels))
    return path


def read_png(path):
    """Read back a PNG written by save_image (8-bit grey or RGB, filter 0): (H, W[, 3]) uint8."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"read_png: {path} is not a PNG file")
    pos, idat, w, h, ch = 8, b"", None, None, 1
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, color = struct.unpack(">IIBB", body[:10])
            if depth != 8 or color not in (0, 2):
                raise ValueError(f"read_png: only 8-bit grey or RGB is supported; got depth {depth} color {color}")
            ch = 3 if color == 2 else 1
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * ch)
    if rows[:, 0].any():
        raise ValueError("read_png: only filter type 0 rows are supported")
    px = rows[:, 1:]
    return px.reshape(h, w, 3) if ch == 3 else px
