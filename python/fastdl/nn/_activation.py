"""The less common activations, composed from native ops."""
from fastdl import _C


def _fused(x):
    return x.dtype.is_floating_point and x.device.type == "cpu"


def hardshrink(input, lambd=0.5):
    if _fused(input):  # one pass each way
        return _C.hardshrink(input, lambd)
    # a NaN passes through, with no gradient (PyTorch's vectorised backward)
    return _C.where(input.abs() > lambd, input, _C.where(_C.isnan(input), input, 0.0))  # input's dtype


def softshrink(input, lambd=0.5):
    if lambd < 0:
        raise ValueError(f"softshrink: lambda must be in range [0, inf); found {lambd}")
    if _fused(input):
        return _C.softshrink(input, lambd)
    return _C.where(input > lambd, input - lambd, _C.where(input < -lambd, input + lambd,
                                                           _C.where(_C.isnan(input), input, 0.0)))


def prelu(input, weight):
    """max(0, x) + weight * min(0, x), weight of 1 or C entries (channel dim 1)."""
    if weight.ndim > 1:
        raise ValueError(f"prelu: expected weight to be a scalar or 1-D tensor; got shape {tuple(weight.shape)}")
    if weight.numel() != 1 and (input.shape[1] if input.ndim >= 2 else 1) != weight.numel():
        raise ValueError(f"prelu: weight has {weight.numel()} entries, which must be 1 or the input's channel count "
                         f"(dim 1; 1 for an input of fewer than 2 dims); got input {tuple(input.shape)}")
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
    if not training:  # leaky_relu at the mean slope
        return _inplace(input, _C.leaky_relu(input, (lower + upper) / 2), inplace)
    slope = _C.rand(tuple(input.shape), input.dtype, input.device) * (upper - lower) + lower
    return _inplace(input, _C.where(input > 0, input, input * slope), inplace)
