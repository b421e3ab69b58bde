"""Lazy modules: LazyLinear, LazyConv1d/2d/3d, LazyConvTranspose1d/2d/3d, LazyBatchNorm1d/2d/3d and
LazyInstanceNorm1d/2d/3d infer in_features / in_channels / num_features from their first input.
Until then their parameters (and norm buffers) are Uninitialized*; the first call materializes
them with the eager class's shapes, dtype and reset_parameters(), then the module becomes the
eager class (cls_to_become), as PyTorch's. load_state_dict materializes them from the source's
shapes."""
from fastdl import no_grad
from fastdl.nn._conv import Conv1d
from fastdl.nn._conv3d import Conv3d, ConvTranspose3d
from fastdl.nn._conv_transpose1d import ConvTranspose1d
from fastdl.nn.modules.conv import Conv2d, ConvTranspose2d
from fastdl.nn.modules.instancenorm import InstanceNorm1d, InstanceNorm2d, InstanceNorm3d
from fastdl.nn.modules.linear import Linear
from fastdl.nn.modules.module import Module
from fastdl.nn.modules.normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d
from fastdl.nn.parameter import UninitializedBuffer, UninitializedParameter, is_lazy


class LazyModuleMixin:
    """Put before a Module class in the bases; the subclass writes initialize_parameters(*inputs)
    (materialize what is lazy, then reset_parameters()) and may name cls_to_become."""
    cls_to_become = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._lazy_pending = True

    def has_uninitialized_params(self):
        return any(is_lazy(t) for t in (*self._parameters.values(), *self._buffers.values()))

    def initialize_parameters(self, *args, **kwargs):
        raise NotImplementedError(f"initialize_parameters is not implemented for {type(self).__name__}")

    def __call__(self, *args, **kwargs):
        if self.__dict__.get("_lazy_pending"):  # the first call: infer, materialize, become the eager class
            self.initialize_parameters(*args, **kwargs)
            if self.has_uninitialized_params():
                raise RuntimeError(f"module {type(self).__name__} has not been fully initialized")
            del self._lazy_pending
            if self.cls_to_become is not None:
                self.__class__ = self.cls_to_become
        return Module.__call__(self, *args, **kwargs)

    def _lazy_load_hook(self, state_dict, prefix):
        """Give each lazy parameter/buffer the shape of its entry in state_dict (Module.load_state_dict
        calls this before checking shapes and copying)."""
        with no_grad():
            for d in (self._parameters, self._buffers):
                for name, t in d.items():
                    src = state_dict.get(prefix + name)
                    if is_lazy(t) and src is not None and hasattr(src, "dtype") and not is_lazy(src):
                        t.materialize(tuple(src.shape))

    def _materialize_all(self, shapes):
        """shapes: {name: shape} for the lazy parameters/buffers; then the eager reset."""
        with no_grad():
            for d in (self._parameters, self._buffers):
                for name, t in d.items():
                    if is_lazy(t):
                        t.materialize(shapes[name])
            self.reset_parameters()


class LazyLinear(LazyModuleMixin, Linear):
    """nn.Linear whose in_features is the last size of the first input."""
    cls_to_become = Linear

    def __init__(self, out_features, bias=True, device=None, dtype=None):
        super().__init__(0, 0, False, device=device, dtype=dtype)
        self.out_features = out_features
        self.weight = UninitializedParameter(device=device, dtype=dtype)
        if bias:
            self.bias = UninitializedParameter(device=device, dtype=dtype)

    def initialize_parameters(self, input, *args, **kwargs):
        if self.in_features == 0:
            self.in_features = input.shape[-1]
        if self.has_uninitialized_params():
            self._materialize_all({"weight": (self.out_features, self.in_features), "bias": (self.out_features,)})


class _LazyConvMixin(LazyModuleMixin):
    """The lazy convolutions: the eager class is built with no channels and no bias, then gets
    out_channels back and Uninitialized weight and bias."""

    def __init__(self, out_channels, bias, device, dtype, **eager_kwargs):
        super().__init__(in_channels=0, out_channels=0, bias=False, device=device, dtype=dtype, **eager_kwargs)
        self.out_channels = out_channels
        self.weight = UninitializedParameter(device=device, dtype=dtype)
        if bias:
            self.bias = UninitializedParameter(device=device, dtype=dtype)

    def _in_channels(self, input):
        n = len(self.kernel_size) + 1  # dims of an unbatched input
        if input.ndim not in (n, n + 1):
            raise RuntimeError(f"Expected {n}D (unbatched) or {n + 1}D (batched) input to {type(self).__name__}, "
                               f"but got input of size: {tuple(input.shape)}")
        return input.shape[1] if input.ndim == n + 1 else input.shape[0]

    def initialize_parameters(self, input, *args, **kwargs):
        if self.in_channels == 0:
            self.in_channels = self._in_channels(input)
            if self.in_channels % self.groups:
                raise ValueError("in_channels must be divisible by groups")
        if self.has_uninitialized_params():
            cin, cout, g = self.in_channels, self.out_channels, self.groups
            lead = (cin, cout // g) if self.transposed else (cout, cin // g)
            self._materialize_all({"weight": (*lead, *self.kernel_size), "bias": (cout,)})


class LazyConv1d(_LazyConvMixin, Conv1d):
    cls_to_become = Conv1d

    def __init__(self, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", device=None, dtype=None):
        super().__init__(out_channels, bias, device, dtype, kernel_size=kernel_size, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, padding_mode=padding_mode)


class LazyConv2d(_LazyConvMixin, Conv2d):
    cls_to_become = Conv2d

    def __init__(self, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", device=None, dtype=None):
        super().__init__(out_channels, bias, device, dtype, kernel_size=kernel_size, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, padding_mode=padding_mode)


class LazyConv3d(_LazyConvMixin, Conv3d):
    cls_to_become = Conv3d

    def __init__(self, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", device=None, dtype=None):
        super().__init__(out_channels, bias, device, dtype, kernel_size=kernel_size, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, padding_mode=padding_mode)


class LazyConvTranspose1d(_LazyConvMixin, ConvTranspose1d):
    cls_to_become = ConvTranspose1d

    def __init__(self, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1, bias=True,
                 dilation=1, padding_mode="zeros", device=None, dtype=None):
        super().__init__(out_channels, bias, device, dtype, kernel_size=kernel_size, stride=stride, padding=padding,
                         output_padding=output_padding, groups=groups, dilation=dilation, padding_mode=padding_mode)


class LazyConvTranspose2d(_LazyConvMixin, ConvTranspose2d):
    cls_to_become = ConvTranspose2d

    def __init__(self, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1, bias=True,
                 dilation=1, padding_mode="zeros", device=None, dtype=None):
        super().__init__(out_channels, bias, device, dtype, kernel_size=kernel_size, stride=stride, padding=padding,
                         output_padding=output_padding, groups=groups, dilation=dilation, padding_mode=padding_mode)


class LazyConvTranspose3d(_LazyConvMixin, ConvTranspose3d):
    cls_to_become = ConvTranspose3d

    def __init__(self, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1, bias=True,
                 dilation=1, padding_mode="zeros", device=None, dtype=None):
        super().__init__(out_channels, bias, device, dtype, kernel_size=kernel_size, stride=stride, padding=padding,
                         output_padding=output_padding, groups=groups, dilation=dilation, padding_mode=padding_mode)


class _LazyNormMixin(LazyModuleMixin):
    """The lazy batch and instance norms; both default to affine=True and track_running_stats=True,
    as PyTorch's (the eager InstanceNorm defaults to False for both)."""

    def __init__(self, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None, dtype=None, *,
                 bias=True):
        super().__init__(0, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)
        if affine:
            self.weight = UninitializedParameter(device=device, dtype=dtype)
            self.bias = UninitializedParameter(device=device, dtype=dtype) if bias else None
        if track_running_stats:
            self.running_mean = UninitializedBuffer(device=device, dtype=dtype)
            self.running_var = UninitializedBuffer(device=device, dtype=dtype)

    def reset_parameters(self):
        if not self.has_uninitialized_params() and self.num_features != 0:
            super().reset_parameters()

    def _num_features(self, input):
        return input.shape[1]

    def initialize_parameters(self, input, *args, **kwargs):
        if self.num_features == 0:
            self.num_features = self._num_features(input)
        if self.has_uninitialized_params():
            c = (self.num_features,)
            self._materialize_all({"weight": c, "bias": c, "running_mean": c, "running_var": c})


class _LazyInstanceNormMixin(_LazyNormMixin):
    def _num_features(self, input):
        k = self._spatial  # the channel dim of a batched or an unbatched input
        if input.ndim not in (k + 1, k + 2):
            raise ValueError(f"{type(self).__name__}: expected {k + 1}D or {k + 2}D input; got {input.ndim}D input "
                             f"of shape {tuple(input.shape)}")
        return input.shape[input.ndim - k - 1]


class LazyBatchNorm1d(_LazyNormMixin, BatchNorm1d):
    cls_to_become = BatchNorm1d


class LazyBatchNorm2d(_LazyNormMixin, BatchNorm2d):
    cls_to_become = BatchNorm2d


class LazyBatchNorm3d(_LazyNormMixin, BatchNorm3d):
    cls_to_become = BatchNorm3d


class LazyInstanceNorm1d(_LazyInstanceNormMixin, InstanceNorm1d):
    cls_to_become = InstanceNorm1d


class LazyInstanceNorm2d(_LazyInstanceNormMixin, InstanceNorm2d):
    cls_to_become = InstanceNorm2d


class LazyInstanceNorm3d(_LazyInstanceNormMixin, InstanceNorm3d):
    cls_to_become = InstanceNorm3d
