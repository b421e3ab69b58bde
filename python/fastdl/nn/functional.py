"""fastdl.nn.functional: PyTorch's functional API over the native ops. Python here only
shapes arguments; the arithmetic runs in C++."""
from fastdl import _C
from fastdl._C import Tensor

linear = _C.linear
relu = _C.relu
sigmoid = _C.sigmoid
tanh = _C.tanh
silu = _C.silu
elu = _C.elu
hardtanh = _C.hardtanh
embedding_ = _C.embedding


def gelu(input, approximate="none"):
    return _C.gelu(input, approximate)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return _C.leaky_relu(input, negative_slope)


def softplus(input, beta=1.0, threshold=20.0):
    if beta == 1.0 and threshold == 20.0:
        return _C.softplus(input)
    z = input * beta
    return _C.where(z > threshold, input, _C.softplus(z) / beta)


def _dim(dim, x):
    if dim is None:
        return 0 if x.ndim in (0, 1, 3) else 1  # PyTorch's legacy implicit dim
    return dim


def softmax(input, dim=None, dtype=None):
    x = input if dtype is None else input.to(dtype)
    return _C.softmax(x, _dim(dim, x))


def log_softmax(input, dim=None, dtype=None):
    x = input if dtype is None else input.to(dtype)
    return _C.log_softmax(x, _dim(dim, x))


def dropout(input, p=0.5, training=True, inplace=False):
    if p < 0 or p > 1:
        raise ValueError(f"dropout: probability has to be between 0 and 1, but got {p}")
    return _C.dropout(input, p, training)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    return _C.layer_norm(input, tuple(normalized_shape), weight, bias, eps)


def embedding(input, weight, padding_idx=None):
    return _C.embedding(weight, input)


def one_hot(tensor, num_classes=-1):
    return _C.one_hot(tensor, num_classes)


_REDUCTION = {"none": 0, "mean": 1, "sum": 2}


def _reduce(loss, reduction, op):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none'; got '{reduction}'")


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Cross entropy of logits (N, C) or (N, C, d1, ...) against class indices or class
    probabilities, with PyTorch's weight / ignore_index / label_smoothing / reduction."""
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0; got {label_smoothing}")
    if input.ndim == 1:
        input, target = input.unsqueeze(0), target.unsqueeze(0)
    C = input.shape[1]
    if input.ndim > 2:  # (N, C, d...) -> (N*d..., C)
        perm = [0] + list(range(2, input.ndim)) + [1]
        input = input.permute(*perm).reshape(-1, C)
        target = target.reshape(-1) if not target.dtype.is_floating_point else \
            target.permute(*perm).reshape(-1, C)
    if target.dtype.is_floating_point:  # class probabilities
        if tuple(target.shape) != tuple(input.shape):
            raise ValueError(f"cross_entropy: probability target shape {tuple(target.shape)} must match input {tuple(input.shape)}")
        lp = _C.log_softmax(input, 1)
        if label_smoothing > 0:
            target = target * (1 - label_smoothing) + label_smoothing / C
        w = lp if weight is None else lp * weight
        loss = -(w * target).sum(1)
        if reduction == "mean":
            return loss.sum() / input.shape[0]
        return _reduce(loss, reduction, "cross_entropy")
    return _C.cross_entropy(input, target, weight, ignore_index, label_smoothing, _REDUCTION[reduction])


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    if input.ndim > 2:
        C = input.shape[1]
        perm = [0] + list(range(2, input.ndim)) + [1]
        input = input.permute(*perm).reshape(-1, C)
        target = target.reshape(-1)
    valid = target != ignore_index
    safe = _C.where(valid, target, 0)
    picked = -_C.gather(input, 1, safe.unsqueeze(1)).squeeze(1)
    w = valid.to(input.dtype)
    if weight is not None:
        w = w * _C.index_select(weight, 0, safe)
    loss = picked * w
    if reduction == "mean":
        return loss.sum() / w.sum()
    return _reduce(loss, reduction, "nll_loss")


def _check_same_shape(a, b, op):
    if tuple(a.shape) != tuple(b.shape):
        import warnings
        warnings.warn(f"{op}: using a target size {tuple(b.shape)} that is different to the input size "
                      f"{tuple(a.shape)}; it will be broadcast", stacklevel=3)


def mse_loss(input, target, reduction="mean"):
    _check_same_shape(input, target, "mse_loss")
    d = input - target
    return _reduce(d * d, reduction, "mse_loss")


def l1_loss(input, target, reduction="mean"):
    _check_same_shape(input, target, "l1_loss")
    return _reduce((input - target).abs(), reduction, "l1_loss")
