"""LayerNorm (fused native kernel), RMSNorm, GroupNorm, BatchNorm1d/2d/3d (running statistics,
momentum, eval mode), LocalResponseNorm and the legacy CrossMapLRN2d."""
from fastdl import _C, _tensor
from fastdl.autograd import Function
from fastdl.nn import functional as F, init
from fastdl.nn.modules.module import Module
from fastdl.nn.parameter import Parameter


class LayerNorm(Module):
    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device=None, dtype=None):
        super().__init__()
        self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(_tensor.ones(*self.normalized_shape, dtype=dtype, device=device))
            self.bias = Parameter(_tensor.zeros(*self.normalized_shape, dtype=dtype, device=device)) if bias else None
        else:
            self.weight = self.bias = None

    def forward(self, input):
        return _C.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


class _NormBase(Module):
    """What BatchNorm and InstanceNorm share (PyTorch's _NormBase): the affine parameters, the
    running-statistics buffers, their resets and the repr. Subclasses set the defaults."""

    def __init__(self, num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(_tensor.ones(num_features, dtype=dtype, device=device))
            self.bias = Parameter(_tensor.zeros(num_features, dtype=dtype, device=device)) if bias else None
        else:
            self.weight = self.bias = None
        if track_running_stats:
            self.register_buffer("running_mean", _tensor.zeros(num_features, dtype=dtype, device=device))
            self.register_buffer("running_var", _tensor.ones(num_features, dtype=dtype, device=device))
            self.register_buffer("num_batches_tracked", _tensor.tensor(0, dtype=_C.dtype.int64, device=device))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def reset_running_stats(self):
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            self.num_batches_tracked.zero_()

    def reset_parameters(self):
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    _ndims = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None,
                 dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias)

    def _check_input_dim(self, x):
        if x.ndim not in self._ndims:
            raise ValueError(f"{type(self).__name__}: expected {' or '.join(f'{d}D' for d in self._ndims)} input; "
                             f"got {x.ndim}D input")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}: expected {self.num_features} channels (dim 1); got shape "
                             f"{tuple(x.shape)}")

    def forward(self, input):
        self._check_input_dim(input)
        momentum = 0.0 if self.momentum is None else self.momentum
        use_batch = self.training or not self.track_running_stats
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked.item())
        track = self.training and self.track_running_stats
        return F.batch_norm(input, self.running_mean if track or not use_batch else None,
                            self.running_var if track or not use_batch else None, self.weight, self.bias, use_batch,
                            momentum, self.eps)

class BatchNorm1d(_BatchNorm):
    _ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    _ndims = (4,)


class BatchNorm3d(_BatchNorm):
    _ndims = (5,)


class RMSNorm(Module):
    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None, dtype=None):
        super().__init__()
        self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        self.weight = Parameter(_tensor.ones(*self.normalized_shape, dtype=dtype, device=device)) \
            if elementwise_affine else None

    def forward(self, input):
        return F.rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None, *, bias=True):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError("num_channels must be divisible by num_groups")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        if affine:
            self.weight = Parameter(_tensor.ones(num_channels, dtype=dtype, device=device))
            self.bias = Parameter(_tensor.zeros(num_channels, dtype=dtype, device=device)) if bias else None
        else:
            self.weight = self.bias = None

    def forward(self, input):
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class LocalResponseNorm(Module):
    """Local response normalisation across channels (F.local_response_norm)."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input):
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


def _band(C, lo, hi, with_first=False):
    """(C, C) 0/1 matrix, row c set on channels lo(c)..hi(c) (clipped), plus channel 0 if with_first."""
    import numpy as np
    m = np.zeros((C, C))
    for c in range(C):
        m[c, max(lo(c), 0):min(hi(c), C - 1) + 1] = 1
    if with_first:
        m[:, 0] = 1
    return m


def _over_channels(x, m):
    """sum_j m[c, j] x[:, j] for every channel c of (N, C, H, W)."""
    return (x.permute(0, 2, 3, 1) @ _tensor.tensor(m.T, dtype=x.dtype, device=x.device)).permute(0, 3, 1, 2)


class _CrossMapLRN2dFn(Function):
    """PyTorch's legacy (Lua-ported) CrossMapLRN2d, kept bit-compatible: channel c sums the squares
    of channels max(1, c-p+1)..c+p-1, p = (size-1)//2 + 1, and always of channel 0; the backward is
    PyTorch's hand-written one (a window c-q..c+size-1-q, q = (size+1)//2), not the exact
    derivative of that forward."""

    @staticmethod
    def forward(ctx, input, size, alpha, beta, k):
        C, p = input.shape[1], (size - 1) // 2 + 1
        window = _band(C, lambda c: max(c - p + 1, 1), lambda c: c + p - 1, with_first=True)
        scale = _over_channels(input * input, window) * (alpha / size) + k
        output = input * scale.pow(-beta)
        ctx.save_for_backward(input, output, scale)
        ctx.args = (size, alpha, beta)
        return output

    @staticmethod
    def backward(ctx, grad):
        input, output, scale = ctx.saved_tensors
        size, alpha, beta = ctx.args
        q = (size + 1) // 2
        window = _band(input.shape[1], lambda c: c - q, lambda c: c + size - 1 - q)
        ratio = _over_channels(grad * output / scale, window)
        return grad * scale.pow(-beta) - input * ratio * (2 * alpha * beta / size), None, None, None, None


class CrossMapLRN2d(Module):
    """nn.CrossMapLRN2d over (N, C, H, W): PyTorch's legacy cross-channel LRN, whose window differs
    from LocalResponseNorm's (see _CrossMapLRN2dFn)."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input):
        if input.ndim != 4:
            raise ValueError(f"CrossMapLRN2d: Expected input to be 4D, got {input.ndim}D instead.")
        return _CrossMapLRN2dFn.apply(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
