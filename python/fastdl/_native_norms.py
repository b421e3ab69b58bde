"""torch.native_layer_norm / native_group_norm / native_batch_norm: the normalisation (the fused
native kernels of nn.functional) together with the statistics PyTorch's kernels save for
backward. As in PyTorch, layer and batch norm's statistics are not differentiable and group
norm's are (composed from mean and var here)."""
import builtins

from fastdl import _C


def _shape(t):
    return tuple(t.shape)


def native_layer_norm(input, normalized_shape, weight, bias, eps):
    """(output, mean, rstd); mean and rstd have input's leading dims and size 1 over the normalised ones."""
    from fastdl.nn.functional import layer_norm
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, builtins.int) else tuple(normalized_shape)
    k = len(normalized_shape)
    if k == 0 or _shape(input)[input.ndim - k:] != normalized_shape or input.ndim < k:
        raise ValueError(f"native_layer_norm: normalized_shape {normalized_shape} must match the last dims of the "
                         f"input of shape {_shape(input)}")
    out = layer_norm(input, normalized_shape, weight, bias, eps)
    x = input.detach()
    dims = tuple(builtins.range(input.ndim - k, input.ndim))
    mean = x.mean(dims, keepdim=True)
    rstd = (x.var(dims, correction=0, keepdim=True) + eps).rsqrt()
    return out, mean, rstd


def native_group_norm(input, weight, bias, N, C, HxW, group, eps):
    """(output, mean, rstd) of group norm over input (N, C, *) with HxW elements per channel; mean and
    rstd are (N, group) and differentiable."""
    if input.numel() != N * C * HxW or input.ndim < 2 or input.shape[0] != N or input.shape[1] != C:
        raise ValueError(f"native_group_norm: input of shape {_shape(input)} does not hold N={N}, C={C}, "
                         f"HxW={HxW}")
    if group <= 0 or C % group:
        raise ValueError(f"native_group_norm: C={C} must be divisible by group={group}")
    x = input.reshape(N, group, (C // group) * HxW)
    mean = x.mean(-1)
    rstd = (x.var(-1, correction=0) + eps).rsqrt()
    y = ((x - mean.unsqueeze(-1)) * rstd.unsqueeze(-1)).reshape(N, C, HxW)
    if weight is not None:
        y = y * weight.reshape(1, C, 1)
    if bias is not None:
        y = y + bias.reshape(1, C, 1)
    return y.reshape(_shape(input)), mean, rstd


def native_batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps):
    """(output, save_mean, save_invstd): in training the batch mean and 1 / sqrt(biased var + eps)
    per channel (running stats updated in place), else two empty tensors, as PyTorch."""
    from fastdl.nn.functional import batch_norm
    if input.ndim < 2:
        raise ValueError(f"native_batch_norm: input must be (N, C, *); got shape {_shape(input)}")
    if not training and (running_mean is None or running_var is None):
        raise ValueError("native_batch_norm: running_mean and running_var are needed when training is False")
    dims = (0,) + tuple(builtins.range(2, input.ndim))
    x = input.detach()
    if training:
        mean = x.mean(dims)
        invstd = (x.var(dims, correction=0) + eps).rsqrt()
    else:
        mean = invstd = _C.full((0,), 0.0, input.dtype, input.device)
    out = batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)
    return out, mean, invstd
