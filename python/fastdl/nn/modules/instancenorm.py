"""InstanceNorm1d / 2d / 3d: PyTorch's arguments (affine and track_running_stats off by default),
buffers, rank checks, unbatched inputs and repr, over F.instance_norm."""
import warnings

from fastdl.nn._functional_norm import instance_norm
from fastdl.nn.modules.normalization import _NormBase


class _InstanceNorm(_NormBase):
    _spatial = 1  # spatial dims after (N, C)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False, device=None,
                 dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias)

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

class InstanceNorm1d(_InstanceNorm):
    _spatial = 1


class InstanceNorm2d(_InstanceNorm):
    _spatial = 2


class InstanceNorm3d(_InstanceNorm):
    _spatial = 3
