"""SyncBatchNorm: batch normalisation whose training statistics cover the whole global batch
(every rank's samples), as PyTorch's; without an initialised process group (or in eval, or on
one rank) it is BatchNorm. SyncBatchNorm.convert_sync_batchnorm swaps the BatchNorm layers of a
model in place, keeping their parameters and running statistics.

Forward: per channel, the ranks sum their sums and counts (one all-reduce) for the mean, then
their sums of squared deviations (a second) for the biased variance; the running variance
takes the unbiased one. Backward: one all-reduce of sum(dy) and sum(dy * xhat) gives
    dx = w / sqrt(var + eps) * (dy - sum(dy) / N - xhat * sum(dy * xhat) / N)
over the global batch N; the weight and bias gradients stay local (DistributedDataParallel
averages them, which makes them the gradient of the mean of the ranks' losses)."""
from fastdl import _C, _tensor
from fastdl import distributed as dist
from fastdl.autograd import Function
from fastdl.nn.modules.normalization import _BatchNorm


def _bshape(x):
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def _dims(x):
    return [0] + list(range(2, x.ndim))


class _SyncBatchNormFn(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, eps, momentum, group):
        c, dims, bs = x.shape[1], _dims(x), _bshape(x)
        stats = _C.cat([x.sum(dims), _tensor.full_like(x.sum(dims)[:1], float(x.numel() // c))], 0).contiguous()
        dist.all_reduce(stats, group=group)
        n = float(stats[c].item())
        mean = stats[:c] / n
        xc = x - mean.reshape(bs)
        ss = (xc * xc).sum(dims).contiguous()
        dist.all_reduce(ss, group=group)
        var = ss / n
        invstd = (var + eps).rsqrt()
        xhat = xc * invstd.reshape(bs)
        y = xhat if weight is None else xhat * weight.reshape(bs)
        if bias is not None:
            y = y + bias.reshape(bs)
        if running_mean is not None:
            running_mean.copy_(running_mean * (1 - momentum) + mean * momentum)
        if running_var is not None:
            running_var.copy_(running_var * (1 - momentum) + var * (momentum * n / max(n - 1.0, 1.0)))
        ctx.save_for_backward(xhat, invstd, weight)
        ctx.n, ctx.group = n, group
        return y

    @staticmethod
    def backward(ctx, gy):
        xhat, invstd, weight = ctx.saved_tensors
        dims, bs, c = _dims(gy), _bshape(gy), gy.shape[1]
        sum_dy, sum_dy_xhat = gy.sum(dims), (gy * xhat).sum(dims)
        both = _C.cat([sum_dy, sum_dy_xhat], 0).contiguous()
        dist.all_reduce(both, group=ctx.group)
        scale = invstd if weight is None else invstd * weight
        dx = (gy - (both[:c] / ctx.n).reshape(bs) - xhat * (both[c:] / ctx.n).reshape(bs)) * scale.reshape(bs)
        gw = sum_dy_xhat if weight is not None and ctx.needs_input_grad[1] else None
        gb = sum_dy if ctx.needs_input_grad[2] else None
        return dx, gw, gb, None, None, None, None, None


class SyncBatchNorm(_BatchNorm):
    _ndims = (2, 3, 4, 5)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 process_group=None, device=None, dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)
        self.process_group = process_group

    def forward(self, input):
        self._check_input_dim(input)
        if not (self.training and dist.is_initialized() and dist.get_world_size(self.process_group) > 1):
            return super().forward(input)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked.item())
        rm = self.running_mean if self.track_running_stats else None
        rv = self.running_var if self.track_running_stats else None
        return _SyncBatchNormFn.apply(input, self.weight, self.bias, rm, rv, self.eps, momentum, self.process_group)

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """Replace every BatchNorm{1,2,3}d in `module` by a SyncBatchNorm sharing its parameters
        and running statistics; returns the converted module (a new one when `module` itself is a
        BatchNorm)."""
        out = module
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            out = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats,
                      process_group, bias=module.bias is not None or not module.affine)
            for name in ("weight", "bias"):
                object.__getattribute__(out, "_parameters")[name] = getattr(module, name)
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                if name in object.__getattribute__(out, "_buffers"):
                    object.__getattribute__(out, "_buffers")[name] = getattr(module, name)
            out.train(module.training)
        for name, child in list(module.named_children()):
            new = cls.convert_sync_batchnorm(child, process_group)
            if new is not child:
                setattr(out, name, new)
        return out
