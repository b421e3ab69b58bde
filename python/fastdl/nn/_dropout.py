"""Channel dropout (dropout1d / 2d / 3d): whole channels zeroed, the rest scaled by 1 / (1 - p)."""
from fastdl import _C


def _channel_dropout(input, p, training, k, op, inplace=False):
    """Zero whole channels with probability p (scaling the rest by 1/(1-p)); the mask is shared over
    the last k dims. Unbatched input (ndim == k + 1) has channels in dim 0."""
    if p < 0 or p > 1:
        raise ValueError(f"{op}: probability has to be between 0 and 1, but got {p}")
    if input.ndim not in (k + 1, k + 2) and not (k == 2 and input.ndim == 3):
        raise ValueError(f"{op}: expected a {k + 1}D or {k + 2}D input; got shape {tuple(input.shape)}")
    if not training or p == 0:
        return input
    lead = 1 if input.ndim == k + 1 and k != 2 else 2
    shape = tuple(input.shape[:lead]) + (1,) * (input.ndim - lead)
    from fastdl.nn.functional import _inplace  # (functional imports this module)
    if p == 1:
        return _inplace(input, input * _C.full(shape, 0.0, input.dtype, input.device), inplace)
    keep = (_C.rand(shape, input.dtype, input.device) >= p).to(input.dtype) * (1.0 / (1.0 - p))
    return _inplace(input, input * keep, inplace)


def dropout1d(input, p=0.5, training=True, inplace=False):
    return _channel_dropout(input, p, training, 1, "dropout1d", inplace)


def dropout2d(input, p=0.5, training=True, inplace=False):
    return _channel_dropout(input, p, training, 2, "dropout2d", inplace)


def dropout3d(input, p=0.5, training=True, inplace=False):
    return _channel_dropout(input, p, training, 3, "dropout3d", inplace)
