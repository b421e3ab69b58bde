"""pixel_shuffle / pixel_unshuffle (sub-pixel convolution, Shi et al. 2016) and channel_shuffle
(ShuffleNet): pure rearrangements written as reshape + permute + reshape, so autograd and any
input layout come from those ops."""


def _factor(v, name, op):
    if isinstance(v, bool) or not hasattr(v, "__index__"):
        raise TypeError(f"{op}: {name} must be an int; got {type(v).__name__}")
    v = int(v)
    if v <= 0:
        raise ValueError(f"{op}: {name} must be positive; got {v}")
    return v


def pixel_shuffle(input, upscale_factor):
    """(*, C r^2, H, W) -> (*, C, H r, W r): each group of r^2 channels fills an r x r block."""
    op = "pixel_shuffle"
    r = _factor(upscale_factor, "upscale_factor", op)
    if input.ndim < 3:
        raise ValueError(f"{op}: input must have at least 3 dims (*, C, H, W); got shape {tuple(input.shape)}")
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise ValueError(f"{op}: channel dim (size {c}) must be divisible by upscale_factor^2 = {r * r}; got shape "
                         f"{tuple(input.shape)}")
    k = len(lead)
    x = input.reshape(*lead, c // (r * r), r, r, h, w)
    x = x.permute(*range(k), k, k + 3, k + 1, k + 4, k + 2)  # (*, C, H, r, W, r)
    return x.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input, downscale_factor):
    """(*, C, H r, W r) -> (*, C r^2, H, W): the inverse of pixel_shuffle."""
    op = "pixel_unshuffle"
    r = _factor(downscale_factor, "downscale_factor", op)
    if input.ndim < 3:
        raise ValueError(f"{op}: input must have at least 3 dims (*, C, H, W); got shape {tuple(input.shape)}")
    *lead, c, h, w = input.shape
    if h % r or w % r:
        raise ValueError(f"{op}: height {h} and width {w} must be divisible by downscale_factor {r}; got shape "
                         f"{tuple(input.shape)}")
    k = len(lead)
    x = input.reshape(*lead, c, h // r, r, w // r, r)
    x = x.permute(*range(k), k, k + 2, k + 4, k + 1, k + 3)  # (*, C, r, r, H, W)
    return x.reshape(*lead, c * r * r, h // r, w // r)


def channel_shuffle(input, groups):
    """(N, C, *) -> (N, C, *) with channel g * (C / groups) + i moved to i * groups + g."""
    op = "channel_shuffle"
    if isinstance(groups, bool) or not hasattr(groups, "__index__"):
        raise TypeError(f"{op}: groups must be an int; got {type(groups).__name__}")
    g = int(groups)
    if g <= 0:
        raise ValueError(f"{op}: groups must be positive; got {g}")
    if input.ndim < 3:
        raise ValueError(f"{op}: input must have more than 2 dims (N, C, *); got shape {tuple(input.shape)}")
    n, c, *rest = input.shape
    if c % g:
        raise ValueError(f"{op}: channels ({c}) must be divisible by groups ({g}); got shape {tuple(input.shape)}")
    return input.reshape(n, g, c // g, *rest).transpose(1, 2).reshape(n, c, *rest)
