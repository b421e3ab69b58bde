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


# 3x5 pixel glyphs (rows top to bottom) for the labels of save_curves
_GLYPHS = dict(zip(
    "0123456789abcdefghijklmnopqrstuvwxyz.-_():/+ ",
    ("111101101101111 010110010010111 111001111100111 111001111001111 101101111001001 111100111001111 "
     "111100111101111 111001001010010 111101111101111 111101111001111 010101111101101 110101110101110 "
     "011100100100011 110101101101110 111100110100111 111100110100100 011100101101011 101101111101101 "
     "111010010010111 001001001101010 101101110101101 100100100100111 101111111101101 110101101101101 "
     "010101101101010 110101110100100 010101101110011 110101110101101 011100010001110 111010010010010 "
     "101101101101111 101101101101010 101101111111101 101101010101101 101101010010010 111001010100111 "
     "000000000000010 000000111000000 000000000000111 010100100100010 010001001001010 000010000010000 "
     "001001010100100 000010111010000 000000000000000").split()))
_COLORS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75))


def _text(img, x, y, s, color=(0, 0, 0), k=2):
    """Draw s at (x, y) (top-left), each glyph pixel k x k; unknown characters draw as blanks."""
    for ch in s.lower():
        g = _GLYPHS.get(ch, _GLYPHS[" "])
        for i, bit in enumerate(g):
            if bit == "1":
                r, c = y + (i // 3) * k, x + (i % 3) * k
                img[max(r, 0):r + k, max(c, 0):c + k] = color
        x += 4 * k


def _line(img, x0, y0, x1, y1, color, width=2):
    n = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
    for t in np.linspace(0.0, 1.0, n + 1):
        x, y = int(round(x0 + (x1 - x0) * t)), int(round(y0 + (y1 - y0) * t))
        img[max(y - width // 2, 0):y + (width + 1) // 2, max(x - width // 2, 0):x + (width + 1) // 2] = color


def _panel(img, left, top, w, h, series, xlabel):
    img[top:top + h, left] = img[top:top + h, left + w] = (120, 120, 120)
    img[top, left:left + w + 1] = img[top + h, left:left + w + 1] = (120, 120, 120)
    vals = np.concatenate([np.asarray(v, np.float64) for v in series.values()])
    lo, hi = float(np.min(vals)), float(np.max(vals))
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    n = max(len(v) for v in series.values())
    px = lambda i: left + 6 + (w - 12) * (i / max(n - 1, 1))  # noqa: E731
    py = lambda v: top + 6 + (h - 12) * (hi - v) / (hi - lo)  # noqa: E731
    # legend in the top or bottom right corner, whichever fewer curve points fall beside
    tail = [py(float(a)) for v in series.values() for i, a in enumerate(v) if px(i) > left + 0.6 * w]
    band = 14 * len(series) + 8
    low_ly = top + h - band
    crowded = lambda y0: sum(y0 - 6 <= y <= y0 + band for y in tail)  # noqa: E731
    ly = top + 12 if crowded(top + 12) <= crowded(low_ly) else low_ly
    for j, (key, v) in enumerate(series.items()):
        color = _COLORS[j % len(_COLORS)]
        pts = [(px(i), py(float(a))) for i, a in enumerate(v)]
        for (xa, ya), (xb, yb) in zip(pts, pts[1:]):
            _line(img, xa, ya, xb, yb, color)
        for x, y in pts:
            img[int(y) - 2:int(y) + 3, int(x) - 2:int(x) + 3] = color
        _line(img, left + w - 120, ly + 14 * j + 4, left + w - 104, ly + 14 * j + 4, color)
        _text(img, left + w - 100, ly + 14 * j, key[:12])
    _text(img, left - 60, top, f"{hi:.3g}")
    _text(img, left - 60, top + h - 10, f"{lo:.3g}")
    _text(img, left, top + h + 6, "1")
    _text(img, left + w - 8 * len(str(n)), top + h + 6, str(n))
    _text(img, left + w // 2 - 4 * len(xlabel), top + h + 6, xlabel)


def save_curves(series, path, xlabel="epoch"):
    """Loss (and metric) curves as a PNG without a plotting library: `series` maps names to
    per-epoch values; names ending in 'loss' share the left panel, the rest the right one.
    Axis labels are the value range and the epoch count. Returns path."""
    series = {k: list(v) for k, v in series.items() if len(v) and k != "time"}
    if not series:
        raise ValueError("save_curves: no series to plot")
    groups = [g for g in ({k: v for k, v in series.items() if k.endswith("loss")},
                          {k: v for k, v in series.items() if not k.endswith("loss")}) if g]
    pw, ph, left = 360, 240, 64
    img = np.full((ph + 40, len(groups) * (pw + left + 10), 3), 255, np.uint8)
    for i, g in enumerate(groups):
        _panel(img, left + i * (pw + left + 10), 10, pw, ph - 10, g, xlabel)
    with open(path, "wb") as f:
        f.write(_png(img))
    return path
