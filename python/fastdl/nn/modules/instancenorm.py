"""InstanceNorm1d / 2d / 3d: PyTorch's arguments (affine and track_running_stats off by default),
buffers, rank checks, unbatched inputs and repr, over F.instance_norm."""
import warnings

from fastdl import _C, _tensor
from fastdl.nn import init
from fastdl.nn._functional_norm import instance_norm
from fastdl.nn.modules.module import Module
from fastdl.nn.parameter import Parameter


class _InstanceNorm(Module):
    _spatial = 1  # spatial dims after (N, C)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False, device=None,
                 dtype=None):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(_tensor.ones(num_features, dtype=dtype, device=device))
            self.bias = Parameter(_tensor.zeros(num_features, dtype=dtype, device=device))
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
            init.zeros_(self.bias)

    def forward(self, input):
        name, k = type(self).__name__, self._spatial
        if input.ndim not in (k + 1, k + 2):
            raise ValueError(f"{name}: expected {k + 1}D or {k + 2}D input; got {input.ndim}D input of shape "
                             f"{tuple(input.shape)}")
        feature_dim = input.ndim - k - 1
        if input.shape[feature_dim] != self.num_features:
            if self.affine:
                raise ValueError(f"{name}: expected input's size at dim={feature_dim} to match num_features "
                                 f"({self.num_features}); got shape {tuple(input.shape)}")
            warnings.warn(f"{name}: input's size at dim={feature_dim} does not match num_features "
                          f"({self.num_features}), which is not used because affine=False", stacklevel=2)
        unbatched = input.ndim == k + 1
        x = input.unsqueeze(0) if unbatched else input
        y = instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                          self.training or not self.track_running_stats,
                          self.momentum if self.momentum is not None else 0.0, self.eps)
        return y.squeeze(0) if unbatched else y

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class InstanceNorm1d(_InstanceNorm):
    _spatial = 1


class InstanceNorm2d(_InstanceNorm):
    _spatial = 2


class InstanceNorm3d(_InstanceNorm):
    _spatial = 3
