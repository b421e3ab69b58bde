"""instance_norm as PyTorch computes it: the (N, C, *) input is seen as one batch of N * C
channels and goes through the fused native batch_norm (statistics per sample and channel);
the running statistics, when given, are repeated per sample, moved by batch_norm, and averaged
back over the batch."""
from fastdl import _C


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """Normalise each channel of each sample of (N, C, *) over its spatial dims; weight / bias
    (C,) scale and shift; with use_input_stats=False the running statistics normalise instead."""
    op = "instance_norm"
    if input.ndim < 2:
        raise ValueError(f"{op}: input must be (N, C, *); got shape {tuple(input.shape)}")
    n, c, *spatial = input.shape
    if use_input_stats:
        count = 1
        for s in spatial:
            count *= s
        if count <= 1:
            raise ValueError(f"{op}: expected more than 1 spatial element when training; got input shape "
                             f"{tuple(input.shape)}")
    elif running_mean is None or running_var is None:
        raise ValueError(f"{op}: running_mean and running_var must be given when use_input_stats is False")
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        if t is not None and tuple(t.shape) != (c,):
            raise ValueError(f"{op}: {name} must have shape ({c},) for input shape {tuple(input.shape)}; got "
                             f"{tuple(t.shape)}")
    rm = None if running_mean is None else running_mean.detach().repeat(n)
    rv = None if running_var is None else running_var.detach().repeat(n)
    x = input.reshape(1, n * c, *spatial)
    y = _C.batch_norm(x, rm, rv, None, None, bool(use_input_stats), float(momentum), float(eps))
    y = y.reshape(n, c, *spatial)
    if use_input_stats:  # batch_norm moved the per-sample copies; the stored statistic is their mean
        from fastdl import no_grad
        with no_grad():
            if running_mean is not None:
                running_mean.copy_(rm.reshape(n, c).mean(0))
            if running_var is not None:
                running_var.copy_(rv.reshape(n, c).mean(0))
    shape = (1, c) + (1,) * len(spatial)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """x / (k + alpha / size * sum of x^2 over a window of `size` channels)^beta, the window
    [c - size // 2, c + (size - 1) // 2] zero-padded at the channel ends (PyTorch's LRN)."""
    op = "local_response_norm"
    if input.ndim < 3:
        raise ValueError(f"{op}: expected a 3D or higher input (N, C, *); got shape {tuple(input.shape)}")
    if isinstance(size, bool) or not hasattr(size, "__index__") or int(size) < 1:
        raise ValueError(f"{op}: size must be a positive int; got {size!r}")
    if input.numel() == 0:
        return input
    size, C = int(size), input.shape[1]
    from fastdl.nn._functional_pad import pad as _pad
    sq = _pad(input * input, (0, 0) * (input.ndim - 2) + (size // 2, (size - 1) // 2))
    total = _C.narrow(sq, 1, 0, C)
    for i in range(1, size):  # the window is short (a few channels): one add per offset
        total = total + _C.narrow(sq, 1, i, C)
    return input / (total * (alpha / size) + k).pow(beta)
