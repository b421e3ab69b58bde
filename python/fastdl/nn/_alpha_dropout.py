"""alpha_dropout / feature_alpha_dropout (self-normalising networks, Klambauer et al. 2017): dropped
elements (or whole channels) go to SELU's negative saturation value and an affine map a x + b
keeps zero mean and unit variance, with PyTorch's constants."""
import math

from fastdl import _C

_ALPHA_P = 1.7580993408473766  # -SELU's saturation value: scale * alpha


def _alpha_dropout(input, p, training, feature, op, inplace):
    if p < 0 or p > 1:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0 or input.numel() == 0:
        return input
    from fastdl.nn.functional import _inplace  # (functional imports this module)
    if p == 1:
        return _inplace(input, input * 0.0, inplace)
    if feature and input.ndim < 2:
        raise ValueError(f"{op}: feature dropout needs an input with at least 2 dims (N, C, *); got shape "
                         f"{tuple(input.shape)}")
    shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2) if feature else tuple(input.shape)
    keep = (_C.rand(shape, input.dtype, input.device) >= p).to(input.dtype)
    a = 1.0 / math.sqrt((_ALPHA_P * _ALPHA_P * p + 1) * (1 - p))
    b = (keep - 1.0) * (_ALPHA_P * a) + _ALPHA_P * a * p  # kept: a alpha p; dropped: a alpha (p - 1)
    return _inplace(input, input * (keep * a) + b, inplace)


def alpha_dropout(input, p=0.5, training=False, inplace=False):
    """Each element is dropped with probability p to the saturation value, then all are scaled
    and shifted so mean and variance are kept; identity when not training."""
    return _alpha_dropout(input, p, training, False, "alpha_dropout", inplace)


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False):
    """alpha_dropout with one draw per channel of (N, C, *), shared over the remaining dims."""
    return _alpha_dropout(input, p, training, True, "feature_alpha_dropout", inplace)
