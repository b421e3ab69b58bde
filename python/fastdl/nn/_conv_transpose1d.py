"""F.conv_transpose1d and nn.ConvTranspose1d with PyTorch's semantics: a (N, C_in, L) input runs
through the native conv_transpose2d as a height-1 image with a height-1 kernel."""

from fastdl import _C, _tensor
from fastdl.nn._conv import _single, conv_extra_repr, reset_conv_parameters
from fastdl.nn._functional_pool1d import _named
from fastdl.nn.modules.module import Module
from fastdl.nn.parameter import Parameter


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """1-D transposed convolution (the gradient of conv1d with respect to its input) over
    (N, C_in, L) or unbatched (C_in, L) with weight (C_in, C_out / groups, K)."""
    op = "conv_transpose1d"
    if input.ndim not in (2, 3):
        raise ValueError(f"{op}: input must be (N, C_in, L) or (C_in, L); got shape {tuple(input.shape)}")
    if weight.ndim != 3:
        raise ValueError(f"{op}: weight must be (C_in, C_out / groups, K); got shape {tuple(weight.shape)}")
    if not input.dtype.is_floating_point or input.dtype != weight.dtype:
        raise TypeError(f"{op}: input and weight must share a floating-point dtype; got {input.dtype} and "
                        f"{weight.dtype}")
    s, p = _single(stride, "stride", op), _single(padding, "padding", op)
    op_, d = _single(output_padding, "output_padding", op), _single(dilation, "dilation", op)
    unbatched = input.ndim == 2
    x = input.unsqueeze(0) if unbatched else input
    with _named(op, input):
        out = _C.conv_transpose2d(x.unsqueeze(2), weight.unsqueeze(2), bias, (1, s), (0, p), (0, op_), int(groups),
                                  (1, d)).squeeze(2)
    return out.squeeze(0) if unbatched else out


class ConvTranspose1d(Module):
    """nn.ConvTranspose1d: PyTorch's arguments, parameter names, initialisation and repr;
    forward(input, output_size=None) picks output_padding to reach output_size."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        name = "ConvTranspose1d"
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: groups={groups} must divide in_channels {in_channels} and "
                             f"out_channels {out_channels}")
        if padding_mode != "zeros":
            raise ValueError(f"{name}: only 'zeros' padding mode is supported; got '{padding_mode}'")
        if isinstance(padding, str):
            raise ValueError(f"{name}: padding must be an int or a 1-tuple; got '{padding}'")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = (_single(kernel_size, "kernel_size", name),)
        self.stride = (_single(stride, "stride", name),)
        self.padding = (_single(padding, "padding", name),)
        self.dilation = (_single(dilation, "dilation", name),)
        self.output_padding = (_single(output_padding, "output_padding", name),)
        self.padding_mode, self.transposed = padding_mode, True
        self.weight = Parameter(_tensor.empty(in_channels, out_channels // groups, self.kernel_size[0], dtype=dtype,
                                              device=device))
        self.bias = Parameter(_tensor.empty(out_channels, dtype=dtype, device=device)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        reset_conv_parameters(self.weight, self.bias)

    def _output_padding(self, input, output_size):
        if output_size is None:
            return self.output_padding[0]
        size = tuple(output_size)[-1:] if isinstance(output_size, (tuple, list)) else (int(output_size),)
        if len(size) != 1:
            raise ValueError(f"ConvTranspose1d: output_size must hold at least 1 size; got {output_size}")
        smallest = ((input.shape[-1] - 1) * self.stride[0] - 2 * self.padding[0]
                    + self.dilation[0] * (self.kernel_size[0] - 1) + 1)
        if not smallest <= size[0] < smallest + self.stride[0]:
            raise ValueError(f"ConvTranspose1d: requested output size {size[0]} is not reachable; it must be in "
                             f"[{smallest}, {smallest + self.stride[0] - 1}] for input shape {tuple(input.shape)}")
        return size[0] - smallest

    def forward(self, input, output_size=None):
        return conv_transpose1d(input, self.weight, self.bias, self.stride, self.padding,
                                self._output_padding(input, output_size), self.groups, self.dilation)

    def extra_repr(self):
        return conv_extra_repr(self)
