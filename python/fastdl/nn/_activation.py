"""The less common activations, composed from native ops."""
from fastdl import _C


def hardshrink(input, lambd=0.5):
    return _C.where(input.abs() > lambd, input, 0.0)


def softshrink(input, lambd=0.5):
    return _C.where(input > lambd, input - lambd, _C.where(input < -lambd, input + lambd, 0.0))


def prelu(input, weight):
    """max(0, x) + weight * min(0, x), weight of 1 or C entries (channel dim 1)."""
    w = weight
    if input.ndim == 0 and weight.ndim == 1 and weight.numel() == 1:  # the result keeps the input's 0-dim shape
        w = weight.reshape(())
    if weight.numel() > 1 and input.ndim >= 2:
        w = weight.reshape((1, -1) + (1,) * (input.ndim - 2))
    return _C.where(input > 0, input, w * input)


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):
    """Randomised leaky ReLU: in training each negative element gets a slope drawn from
    U(lower, upper); otherwise the mean slope (lower + upper) / 2."""
    from fastdl.nn.functional import _inplace
    if not training:
        return _inplace(input, _C.where(input > 0, input, input * ((lower + upper) / 2)), inplace)
    slope = _C.rand(tuple(input.shape), input.dtype, input.device) * (upper - lower) + lower
    return _inplace(input, _C.where(input > 0, input, input * slope), inplace)
