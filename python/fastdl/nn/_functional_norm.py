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
