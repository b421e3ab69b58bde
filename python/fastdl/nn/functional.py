"""fastdl.nn.functional: PyTorch's functional API over the native ops. Python here only
shapes arguments; the arithmetic runs in C++."""
import inspect

from fastdl import _C
from fastdl._C import Tensor
from fastdl.nn._reduction import _legacy, _reduce  # noqa: F401

linear = _C.linear
embedding_ = _C.embedding


def _inplace(input, out, inplace):
    """inplace=True: the result written into input, as PyTorch. With grad mode on, a leaf that
    requires grad refuses (PyTorch's error), and a tensor inside a graph gets the result as a new
    tensor instead (fastdl's autograd does not rebase a graph on an in-place write): use the
    returned tensor, as nn modules do; the values are the same."""
    if not inplace:
        return out
    if input.requires_grad and _C.is_grad_enabled():
        if input.is_leaf:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
        return out
    input.copy_(out)
    return input


def relu(input, inplace=False):
    return _inplace(input, _C.relu(input), inplace) if inplace else _C.relu(input)


def sigmoid(input):
    return _C.sigmoid(input)


def tanh(input):
    return _C.tanh(input)


def silu(input, inplace=False):
    return _inplace(input, _C.silu(input), inplace) if inplace else _C.silu(input)


def elu(input, alpha=1.0, inplace=False):
    return _inplace(input, _C.elu(input, alpha), inplace)


def _hardtanh(x, lo, hi):
    if not x.dtype.is_floating_point:  # PyTorch casts the bounds to an integer input's dtype (truncating)
        return _C.clamp(x, int(lo), int(hi))
    # clamp's value; the gradient only strictly inside (lo, hi), as PyTorch's (one fused pass each way on cpu)
    return _C.hardtanh(x, lo, hi)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val cannot be greater than max_val; got min_val={min_val}, max_val={max_val}")
    return _inplace(input, _hardtanh(input, min_val, max_val), inplace)


def relu6(input, inplace=False):
    return _inplace(input, _hardtanh(input, 0.0, 6.0), inplace)


def hardsigmoid(input, inplace=False):
    return _inplace(input, _C.hardsigmoid(input), inplace)


def hardswish(input, inplace=False):
    # x min(max(x + 3, 0), 6) / 6 as PyTorch computes it (a NaN stays, -inf gives NaN); its
    # gradient 0 at or below -3, x / 3 + 1/2 inside, 1 from 3 on (cpu: one fused pass each way)
    return _inplace(input, _C.hardswish(input), inplace)


def mish(input, inplace=False):
    return _inplace(input, input * _C.tanh(_C.softplus(input)), inplace)


def softsign(input):
    return input / (input.abs() + 1.0)


def logsigmoid(input):
    return -_C.softplus(-input)


def tanhshrink(input):
    return input - _C.tanh(input)


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def selu(input, inplace=False):
    return _inplace(input, _C.elu(input, _SELU_ALPHA, _SELU_SCALE, 1.0), inplace)


def celu(input, alpha=1.0, inplace=False):
    if alpha == 0:
        raise RuntimeError("celu: ZeroDivisionError: alpha cannot be 0 for CELU (it divides the input)")
    return _inplace(input, _C.elu(input, alpha, 1.0, 1.0 / alpha), inplace)


def threshold(input, threshold, value, inplace=False):
    if not input.dtype.is_floating_point:  # both numbers are cast to an integer input's dtype (PyTorch)
        threshold, value = int(threshold), int(value)
    # a NaN stays (PyTorch); the gradient 0 at or below the threshold
    return _inplace(input, _C.threshold(input, threshold, value), inplace)


def glu(input, dim=-1):
    if input.shape[dim] % 2:
        raise ValueError(f"glu: halving dimension {dim} must be even; got shape {tuple(input.shape)}")
    a, b = input.chunk(2, dim)
    return a * _C.sigmoid(b)


def gelu(input, approximate="none"):
    return _C.gelu(input, approximate)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return _inplace(input, _C.leaky_relu(input, negative_slope), inplace)


def softplus(input, beta=1.0, threshold=20.0):
    if beta == 1.0 and threshold == 20.0:
        return _C.softplus(input)
    z = input * beta
    return _C.where(z > threshold, input, _C.softplus(z) / beta)


def _dim(dim, x):
    if dim is None:
        return 0 if x.ndim in (0, 1, 3) else 1  # PyTorch's legacy implicit dim
    return dim


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    x = input if dtype is None else input.to(dtype)
    return _C.softmax(x, _dim(dim, x))


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    x = input if dtype is None else input.to(dtype)
    return _C.log_softmax(x, _dim(dim, x))


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    x = -input if dtype is None else (-input).to(dtype)  # negated in input's dtype first, as PyTorch does
    return _C.softmax(x, _dim(dim, x))


def dropout(input, p=0.5, training=True, inplace=False):
    if p < 0 or p > 1:
        raise ValueError(f"dropout: probability has to be between 0 and 1, but got {p}")
    if inplace and not training:  # torch returns the input itself
        return input
    return _inplace(input, _C.dropout(input, p, training), inplace)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    return _C.layer_norm(input, tuple(normalized_shape), weight, bias, eps)


def _embedding_renorm_(weight, input, max_norm, norm_type):
    """Rows of weight that input reads are scaled in place to norm <= max_norm (PyTorch's rule)."""
    import numpy as np
    from fastdl import no_grad
    rows = _C.from_numpy(np.unique(np.asarray(input.numpy()).reshape(-1)).astype(np.int64)) if input.numel() else None
    if rows is None:
        return
    with no_grad():
        sel = _C.index_select(weight, 0, rows)
        norm = _C.norm(sel, float(norm_type), 1, True)
        scale = _C.where(norm > max_norm, max_norm / (norm + 1e-7), 1.0)
        weight[rows] = sel * scale.to(sel.dtype)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """x / sqrt(mean(x^2 over the trailing normalized_shape dims) + eps) * weight; eps defaults to
    the dtype's machine epsilon, as PyTorch."""
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    k = len(normalized_shape)
    if k == 0:
        raise ValueError(f"rms_norm: expected normalized_shape to be at least 1-dimensional; got {normalized_shape}")
    if tuple(input.shape[input.ndim - k:]) != tuple(normalized_shape):
        raise ValueError(f"rms_norm: normalized_shape {tuple(normalized_shape)} must match the trailing dims of "
                         f"input; got shape {tuple(input.shape)}")
    if eps is None:
        import numpy as np
        eps = float(np.finfo(np.float64 if input.dtype == _C.dtype.float64 else np.float32).eps)
    if input.device.type == "cpu" and input.dtype in (_C.dtype.float32, _C.dtype.float64) and \
            (weight is None or (weight.dtype == input.dtype and weight.device.type == "cpu")):
        return _C.rms_norm(input, tuple(normalized_shape), weight, eps)  # fused, forward and backward
    dims = list(range(input.ndim - k, input.ndim))
    x = input.to(_C.dtype.float32) if input.dtype in (_C.dtype.float16, _C.dtype.bfloat16) else input
    y = (x * _C.rsqrt((x * x).mean(dims, keepdim=True) + eps)).to(input.dtype)  # half squares in float32 (PyTorch)
    return y if weight is None else y * weight


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalise each of num_groups channel groups of (N, C, *) over its channels and spatial dims
    (fused native forward and backward)."""
    return _C.group_norm(input, int(num_groups), weight, bias, eps)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False, sparse=False):
    if max_norm is not None:
        _embedding_renorm_(weight, input, max_norm, norm_type)
    out = _C.embedding(weight, input)
    if scale_grad_by_freq and out.requires_grad:  # each row's gradient divided by its count in input
        import numpy as np
        idx = np.asarray(input.numpy())
        _, inv, counts = np.unique(idx.reshape(-1), return_inverse=True, return_counts=True)
        scale = _C.from_numpy((1.0 / counts[inv]).reshape(idx.shape + (1,))).to(out.dtype)
        base = out.detach()
        out = base + (out - base) * scale
    if padding_idx is not None:  # the padding row reads as stored but gets no gradient
        if padding_idx < 0:
            padding_idx += weight.shape[0]
        out = _C.where((input == padding_idx).unsqueeze(-1), out.detach(), out)
    return out


def one_hot(tensor, num_classes=-1):
    return _C.one_hot(tensor, num_classes)


_REDUCTION = {"none": 0, "mean": 1, "sum": 2}


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0):
    """Cross entropy of logits (N, C) or (N, C, d1, ...) against class indices or class
    probabilities, with PyTorch's weight / ignore_index / label_smoothing / reduction."""
    reduction = _legacy(size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0; got {label_smoothing}")
    out_shape = None  # reduction='none' returns the target's batch shape
    if input.ndim == 1:
        input, target = input.unsqueeze(0), target.unsqueeze(0)
        out_shape = ()
    C = input.shape[1]
    if input.ndim > 2:  # (N, C, d...) -> (N*d..., C)
        out_shape = (input.shape[0],) + tuple(input.shape[2:])
        perm = [0] + list(range(2, input.ndim)) + [1]
        input = input.permute(*perm).reshape(-1, C)
        target = target.reshape(-1) if not target.dtype.is_floating_point else \
            target.permute(*perm).reshape(-1, C)
    if target.dtype.is_floating_point:  # class probabilities
        if ignore_index != -100:
            raise RuntimeError(f"cross_entropy: ignore_index ({ignore_index}) is not supported for floating point "
                               f"target (class probabilities of shape {tuple(target.shape)})")
        if tuple(target.shape) != tuple(input.shape):
            raise ValueError(f"cross_entropy: probability target shape {tuple(target.shape)} must match input {tuple(input.shape)}")
        lp = _C.log_softmax(input, 1)
        if label_smoothing > 0:
            target = target * (1 - label_smoothing) + label_smoothing / C
        w = lp if weight is None else lp * weight
        loss = -(w * target).sum(1)
        if reduction == "mean":
            return loss.sum() / input.shape[0]
        loss = _reduce(loss, reduction, "cross_entropy")
    else:
        if reduction not in _REDUCTION:
            raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none'; got '{reduction}'")
        loss = _C.cross_entropy(input, target, weight, ignore_index, label_smoothing, _REDUCTION[reduction])
    if reduction == "none" and out_shape is not None:
        loss = loss.reshape(out_shape)
    return loss


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """Negative log-likelihood of log-probabilities (C,), (N, C) or (N, C, d1, ...)."""
    reduction = _legacy(size_average, reduce, reduction)
    out_shape = tuple(target.shape)  # reduction='none' returns the target's shape
    if input.ndim == 1:
        input, target = input.unsqueeze(0), target.unsqueeze(0)
    elif input.ndim > 2:
        C = input.shape[1]
        perm = [0] + list(range(2, input.ndim)) + [1]
        input = input.permute(*perm).reshape(-1, C)
        target = target.reshape(-1)
    if reduction not in _REDUCTION:
        raise ValueError(f"nll_loss: reduction must be 'mean', 'sum' or 'none'; got '{reduction}'")
    if weight is not None:
        if weight.dtype != input.dtype:
            raise TypeError(f"nll_loss: expected scalar type {input.dtype} for weight but found {weight.dtype}")
        if tuple(weight.shape) != (input.shape[1],):
            raise ValueError(f"nll_loss: weight tensor should be defined either for all {input.shape[1]} classes or "
                             f"no classes; got weight of shape {tuple(weight.shape)}")
    valid = target != ignore_index
    safe = _C.where(valid, target, 0)
    picked = -_C.gather(input, 1, safe.unsqueeze(1)).squeeze(1)
    w = valid.to(input.dtype)
    if weight is not None:
        w = w * _C.index_select(weight, 0, safe)
    loss = picked * w
    if reduction == "mean":  # all targets ignored: NaN, as PyTorch, but a zero (not NaN) gradient
        total = w.sum()
        empty = total == 0
        nan = _C.where(empty, float("nan"), 0.0).to(loss.dtype).detach()  # the input's dtype, half included
        return loss.sum() / _C.where(empty, 1.0, total) + nan
    return loss.sum() if reduction == "sum" else loss.reshape(out_shape)


def _check_same_shape(a, b, op):
    if tuple(a.shape) != tuple(b.shape):
        import warnings
        warnings.warn(f"{op}: using a target size {tuple(b.shape)} that is different to the input size "
                      f"{tuple(a.shape)}; it will be broadcast", stacklevel=3)


def _weighted(loss, weight, reduction, op, mean_over_weight=True):
    """A loss times an elementwise weight of the input's shape; 'mean' divides by the weights'
    sum (mse, l1) or the element count (huber), as PyTorch."""
    if weight is None:
        return _reduce(loss, reduction, op)
    if tuple(weight.shape) != tuple(loss.shape):
        raise ValueError(f"{op}: Weights and input must have the same size; got weight {tuple(weight.shape)} and "
                         f"input {tuple(loss.shape)}")
    loss = loss * weight
    if reduction == "mean" and mean_over_weight:
        return loss.sum() / weight.sum()
    return _reduce(loss, reduction, op)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    reduction = _legacy(size_average, reduce, reduction)
    _check_same_shape(input, target, "mse_loss")
    d = input - target
    return _weighted(d * d, weight, reduction, "mse_loss")


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    reduction = _legacy(size_average, reduce, reduction)
    _check_same_shape(input, target, "l1_loss")
    return _weighted((input - target).abs(), weight, reduction, "l1_loss")


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive; got {delta}")
    _check_same_shape(input, target, "huber_loss")
    d = (input - target).abs()
    loss = _C.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta))
    return _weighted(loss, weight, reduction, "huber_loss", mean_over_weight=False)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    reduction = _legacy(size_average, reduce, reduction)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative; got {beta}")
    _check_same_shape(input, target, "smooth_l1_loss")
    d = (input - target).abs()
    if beta == 0:
        return _reduce(d, reduction, "smooth_l1_loss")
    loss = _C.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta)
    return _reduce(loss, reduction, "smooth_l1_loss")


_EPS_F32_1E12 = 9.999999960041972e-13  # float32(1e-12), PyTorch's BCE backward epsilon


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """-(y log x + (1-y) log(1-x)) with each log clamped at -100, as PyTorch does."""
    reduction = _legacy(size_average, reduce, reduction)
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(f"binary_cross_entropy: target size {tuple(target.shape)} must be the same as input size "
                         f"{tuple(input.shape)}")
    # value with each log clamped at -100; gradients by PyTorch's formulas, added as zero-valued terms
    x, y = input.detach(), target.detach()
    lx, l1x = x.log(), _C.log1p(-x)
    loss = -(y * _C.clamp(lx, -100.0, None) + (1 - y) * _C.clamp(l1x, -100.0, None))
    if input.requires_grad or target.requires_grad:
        # where x (1 - x) > float32(1e-12) the unclamped loss of the graph tensors (exact second
        # derivatives, create_graph); elsewhere the clamped formulas below, finite at x = 0 or 1
        inner = x * (1 - x) > _EPS_F32_1E12
        xi = _C.where(inner, input if input.requires_grad else x, 0.5)
        yi = target if target.requires_grad else y
        sur = _C.where(inner, -(yi * xi.log() + (1 - yi) * _C.log1p(-xi)), 0.0)
        if input.requires_grad:  # (x - y) / max(x (1 - x), float32(1e-12))
            sur = sur + _C.where(inner, 0.0, input * ((x - y) / _C.clamp(x * (1 - x), _EPS_F32_1E12, None)))
        if target.requires_grad:  # log(1 - x) - log(x), unclamped where finite
            d = l1x - lx
            d = _C.where(d.isfinite(), d, _C.clamp(l1x, -100.0, None) - _C.clamp(lx, -100.0, None))
            sur = sur + _C.where(inner, 0.0, target * d)
        loss = loss + (sur - sur.detach())
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                                     pos_weight=None):
    """Sigmoid + BCE in one stable expression: (1-y) x + (1 + (pw-1) y) (log1p(exp(-|x|)) + max(-x, 0))."""
    reduction = _legacy(size_average, reduce, reduction)
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(f"binary_cross_entropy_with_logits: target size {tuple(target.shape)} must be the same as "
                         f"input size {tuple(input.shape)}")
    sp = _C.log1p(_C.exp(-input.abs())) + _C.relu(-input)
    if pos_weight is not None:
        loss = (1 - target) * input + ((pos_weight - 1) * target + 1) * sp
    else:
        loss = (1 - target) * input + sp
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """KL(target || exp(input)) pointwise: input holds log-probabilities; target probabilities
    (or log-probabilities with log_target=True). reduction='batchmean' divides by the batch size."""
    reduction = _legacy(size_average, reduce, reduction)
    if log_target:
        loss = _C.exp(target) * (target - input)
    else:
        from fastdl import xlogy  # x log x = 0 at 0, with a NaN target gradient there, as torch.xlogy
        loss = xlogy(target, target) - target * input
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction, "kl_div")


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """input / max(||input||_p along dim, eps); out= receives the result (no gradient), as PyTorch's."""
    r = input / _C.clamp(_C.norm(input, p, dim, True), eps, None)
    if out is None:
        return r
    from fastdl._out import _write
    return _write("normalize", out, r)


def info_nce(z1, z2, temperature=0.1, reduction="mean"):
    """NT-Xent (SimCLR, Chen et al. 2020): 2N embeddings from two views, each row's positive is
    its pair in the other view, all other 2N-2 rows are negatives; cosine similarity / temperature
    and cross entropy over each row with itself masked out."""
    if tuple(z1.shape) != tuple(z2.shape) or z1.ndim != 2:
        raise ValueError(f"info_nce: expected two (N, D) tensors of one shape; got {tuple(z1.shape)} and {tuple(z2.shape)}")
    n = z1.shape[0]
    z = normalize(_C.cat([z1, z2], 0), dim=1)
    sim = (z @ z.T) / temperature
    eye = _C.eye(2 * n, 2 * n, _C.dtype.bool)
    sim = sim.masked_fill(eye, float("-inf"))
    labels = _C.cat([_C.arange(n, 2 * n, 1, _C.dtype.int64), _C.arange(0, n, 1, _C.dtype.int64)], 0)
    return cross_entropy(sim, labels, reduction=reduction)


def gan_discriminator_loss(real_logits, fake_logits):
    """Standard (non-saturating) GAN discriminator loss, Goodfellow et al. 2014: BCE pushing real
    logits to 1 and fake logits to 0. Pass fake_logits computed from detached generator output."""
    ones = _C.full(tuple(real_logits.shape), 1.0, real_logits.dtype, real_logits.device)
    zeros = _C.full(tuple(fake_logits.shape), 0.0, fake_logits.dtype, fake_logits.device)
    return (binary_cross_entropy_with_logits(real_logits, ones) + binary_cross_entropy_with_logits(fake_logits, zeros))


def gan_generator_loss(fake_logits):
    """Non-saturating generator loss: -log D(G(z)) = BCE of the fake logits against 1."""
    ones = _C.full(tuple(fake_logits.shape), 1.0, fake_logits.dtype, fake_logits.device)
    return binary_cross_entropy_with_logits(fake_logits, ones)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch normalisation over every dim but 1 (N, C, *), fused native forward and backward. In
    training, batch statistics normalise and the running stats (if given) move in place by
    `momentum` (unbiased variance, as PyTorch); otherwise the running stats normalise."""
    return _C.batch_norm(input, running_mean, running_var, weight, bias, bool(training), float(momentum), float(eps))


from fastdl.nn._functional_graph import message_passing, scatter, segment_softmax  # noqa: E402,F401
from fastdl.nn._functional_pool import (  # noqa: E402,F401
    adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, max_pool2d,
)
from fastdl.nn._activation import hardshrink, prelu, softshrink  # noqa: E402,F401
from fastdl.nn._distance import cosine_similarity, pairwise_distance  # noqa: E402,F401
from fastdl.nn._dropout import dropout1d, dropout2d, dropout3d  # noqa: E402,F401
from fastdl.nn._losses import (  # noqa: E402,F401
    cosine_embedding_loss, gaussian_nll_loss, hinge_embedding_loss, margin_ranking_loss, multilabel_soft_margin_loss,
    poisson_nll_loss, soft_margin_loss, triplet_margin_loss,
)


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                   return_last_state=False):
    """Mamba's selective scan, with mamba_ssm's `selective_scan_fn` semantics.

    u, delta, z: (batch, dim, L); A: (dim, N); B, C: (batch, N, L) or (batch, groups, N, L);
    D, delta_bias: (dim,). With delta' = softplus?(delta + delta_bias) and per channel
    x_t = exp(delta'_t A) x_{t-1} + delta'_t B_t u_t, y_t = <x_t, C_t>, returns
    out = (y + D u) * silu(z), and (out, x_L) with return_last_state (x_L carries no gradient).
    The (batch, dim, L, N) states are never stored: backward recomputes them from chunk
    checkpoints."""
    r = _C.selective_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    out = r[0] if return_last_state else r
    if _C.is_grad_enabled() and out.requires_grad:  # create_graph backwards: the recurrence composed
        from fastdl.autograd.composite import attach
        attach(out, [u, delta, A, B, C, D, z, delta_bias],
               lambda *ins: _selective_scan_composed(delta_softplus, *ins))
    return r


def _selective_scan_composed(delta_softplus, u, delta, A, B, C, D, z, delta_bias):
    """selective_scan's output from differentiable ops, one time step at a time."""
    if delta_bias is not None:
        delta = delta + delta_bias[:, None]
    if delta_softplus:
        delta = softplus(delta)
    dim, L = u.shape[1], u.shape[2]
    if B.ndim == 3:
        B, C = B.unsqueeze(1), C.unsqueeze(1)
    rep = dim // B.shape[1]
    Bx, Cx = B.repeat_interleave(rep, 1), C.repeat_interleave(rep, 1)  # (batch, dim, N, L)
    x, ys = None, []
    for t in range(L):
        dt = delta[:, :, t, None]
        inp = dt * Bx[:, :, :, t] * u[:, :, t, None]
        x = inp if x is None else _C.exp(dt * A) * x + inp
        ys.append((x * Cx[:, :, :, t]).sum(-1))
    out = _C.stack(ys, -1)
    if D is not None:
        out = out + u * D[:, None]
    if z is not None:
        out = out * silu(z)
    return out
from fastdl.nn._conv import conv1d, conv2d, conv_transpose2d  # noqa: E402,F401
from fastdl.nn._attention import scaled_dot_product_attention  # noqa: E402,F401
from fastdl.nn._linear_cross_entropy import linear_cross_entropy  # noqa: E402,F401
from fastdl.nn._interpolate import interpolate  # noqa: E402,F401
from fastdl.nn._functional_pad import pad  # noqa: E402,F401
from fastdl.nn._functional_shuffle import channel_shuffle, pixel_shuffle, pixel_unshuffle  # noqa: E402,F401
from fastdl.nn._functional_norm import instance_norm  # noqa: E402,F401
from fastdl.nn._functional_pool1d import (  # noqa: E402,F401
    adaptive_avg_pool1d, adaptive_max_pool1d, avg_pool1d, lp_pool1d, lp_pool2d, max_pool1d,
)
from fastdl.nn._conv_transpose1d import conv_transpose1d  # noqa: E402,F401
from fastdl.nn._functional_fold import fold, unfold  # noqa: E402,F401
from fastdl.nn._functional_norm import local_response_norm  # noqa: E402,F401
from fastdl.nn._alpha_dropout import alpha_dropout, feature_alpha_dropout  # noqa: E402,F401
from fastdl.nn._activation import rrelu  # noqa: E402,F401
from fastdl.nn._bilinear import bilinear  # noqa: E402,F401
from fastdl.nn._interpolate import upsample, upsample_bilinear, upsample_nearest  # noqa: E402,F401
from fastdl.nn._conv3d import conv3d, conv_transpose3d  # noqa: E402,F401
from fastdl.nn._functional_pool3d import (  # noqa: E402,F401
    adaptive_avg_pool3d, adaptive_max_pool3d, avg_pool3d, fractional_max_pool2d, fractional_max_pool3d, max_pool3d,
    max_unpool1d, max_unpool2d, max_unpool3d, lp_pool3d,
)
from fastdl.nn._losses_margin import (  # noqa: E402,F401
    multi_margin_loss, multilabel_margin_loss, pdist, triplet_margin_with_distance_loss,
)
from fastdl.nn._embedding_bag import embedding_bag  # noqa: E402,F401
from fastdl.nn._grid_sample import affine_grid, grid_sample  # noqa: E402,F401
from fastdl.nn._ctc import ctc_loss  # noqa: E402,F401
from fastdl.nn._mha_functional import multi_head_attention_forward  # noqa: E402,F401


def _autocast_float32_list():
    # PyTorch's autocast float32 list: inside an autocast region the losses compute in float32
    from fastdl.amp import float32_under_autocast
    g = globals()
    for name in ("binary_cross_entropy binary_cross_entropy_with_logits cosine_embedding_loss cross_entropy ctc_loss "
                 "gaussian_nll_loss hinge_embedding_loss huber_loss kl_div l1_loss margin_ranking_loss mse_loss "
                 "multi_margin_loss multilabel_margin_loss multilabel_soft_margin_loss nll_loss poisson_nll_loss "
                 "smooth_l1_loss soft_margin_loss triplet_margin_loss triplet_margin_with_distance_loss").split():
        g[name] = float32_under_autocast(g[name])


_autocast_float32_list()


# ---- PyTorch's in-place spellings and *_with_indices forms --------------------------------------

def relu_(input):  # noqa: A002
    return relu(input, inplace=True)


def elu_(input, alpha=1.0):  # noqa: A002
    return elu(input, alpha, inplace=True)


def leaky_relu_(input, negative_slope=0.01):  # noqa: A002
    return leaky_relu(input, negative_slope, inplace=True)


def hardtanh_(input, min_val=-1.0, max_val=1.0):  # noqa: A002
    return hardtanh(input, min_val, max_val, inplace=True)


def selu_(input):  # noqa: A002
    return selu(input, inplace=True)


def celu_(input, alpha=1.0):  # noqa: A002
    return celu(input, alpha, inplace=True)


def rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False):  # noqa: A002
    return rrelu(input, lower, upper, training, inplace=True)


def threshold_(input, threshold, value):  # noqa: A002
    return globals()["threshold"](input, threshold, value, inplace=True)


def _with_indices(pool):
    def run(*args, **kwargs):
        kwargs["return_indices"] = True
        return pool(*args, **kwargs)
    run.__name__ = pool.__name__ + "_with_indices"
    run.__signature__ = inspect.signature(pool)
    run.__doc__ = f"{pool.__name__} returning (output, indices)."
    return run


max_pool1d_with_indices = _with_indices(max_pool1d)
max_pool2d_with_indices = _with_indices(max_pool2d)
max_pool3d_with_indices = _with_indices(max_pool3d)
adaptive_max_pool1d_with_indices = _with_indices(adaptive_max_pool1d)
adaptive_max_pool2d_with_indices = _with_indices(adaptive_max_pool2d)
adaptive_max_pool3d_with_indices = _with_indices(adaptive_max_pool3d)
fractional_max_pool2d_with_indices = _with_indices(fractional_max_pool2d)
fractional_max_pool3d_with_indices = _with_indices(fractional_max_pool3d)


def gumbel_softmax(logits, tau=1.0, hard=False, eps=1e-10, dim=-1):
    """Samples of the Gumbel-softmax (Concrete) distribution, softmax((logits + g) / tau) with g
    standard Gumbel noise (Jang et al. 2017; Maddison et al. 2017); hard=True returns one-hot
    samples whose gradient is the soft sample's (straight-through)."""
    from fastdl._random import exponential_
    gumbels = -exponential_(_C.empty(tuple(logits.shape), logits.dtype, logits.device)).log()
    y_soft = softmax((logits + gumbels) / tau, dim)
    if not hard:
        return y_soft
    index = y_soft.argmax(dim, keepdim=True)
    from fastdl._tensor import zeros_like
    y_hard = zeros_like(logits).scatter(dim, index, 1.0)
    return y_hard - y_soft.detach() + y_soft
