"""nn.Conv2d and nn.ConvTranspose2d: PyTorch's arguments, parameter names, initialisation
(kaiming_uniform with a = sqrt(5), bias uniform in +-1/sqrt(fan_in)) and repr."""

from fastdl import _C, _tensor
from fastdl.nn._conv import _pair, _same_padding, conv2d, conv_extra_repr, conv_transpose2d, reset_conv_parameters
from fastdl.nn.modules.module import Module
from fastdl.nn.parameter import Parameter

_PAD_MODES = ("zeros", "reflect", "replicate", "circular")


def _pad2d(x, top, bottom, left, right, mode):
    """Pad the last two dims of (N, C, H, W) by PyTorch's non-zero padding modes."""
    def side(x, dim, lo, hi):
        L = x.shape[dim]
        def sl(a, b):
            idx = [slice(None)] * x.ndim
            idx[dim] = slice(a, b)
            return x[tuple(idx)]
        if mode == "circular":
            if lo > L or hi > L:
                raise ValueError(f"Conv2d: circular padding ({lo}, {hi}) must not exceed the input size {L}")
            parts = [sl(L - lo, L), x, sl(0, hi)]
        elif mode == "replicate":
            shp = list(x.shape)
            parts = [sl(0, 1).expand(*(shp[:dim] + [lo] + shp[dim + 1:])), x,
                     sl(L - 1, L).expand(*(shp[:dim] + [hi] + shp[dim + 1:]))]
        else:  # reflect
            if lo >= L or hi >= L:
                raise ValueError(f"Conv2d: reflect padding ({lo}, {hi}) must be below the input size {L}")
            parts = [sl(1, lo + 1).flip(dim), x, sl(L - 1 - hi, L - 1).flip(dim)]
        return _C.cat([p for p in parts if p.shape[dim]], dim)
    return side(side(x, x.ndim - 2, top, bottom), x.ndim - 1, left, right)


class _ConvNd(Module):
    """Arguments, parameters, initialisation and repr of the convolution layers of any rank;
    ntuple turns an int or a sequence into the rank's tuple (_pair for 2-d, _triple for 3-d)."""

    def __init__(self, name, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                 padding_mode, transposed, output_padding, device, dtype, ntuple=_pair):
        super().__init__()
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: groups={groups} must divide in_channels {in_channels} and "
                             f"out_channels {out_channels}")
        if padding_mode not in _PAD_MODES or (transposed and padding_mode != "zeros"):
            allowed = ("zeros",) if transposed else _PAD_MODES
            raise ValueError(f"{name}: padding_mode must be one of {allowed}; got '{padding_mode}'")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = ntuple(kernel_size, "kernel_size", name)
        self.stride = ntuple(stride, "stride", name)
        self.dilation = ntuple(dilation, "dilation", name)
        if isinstance(padding, str):
            if transposed or padding not in ("same", "valid"):
                raise ValueError(f"{name}: padding must be an int, a tuple, 'same' or 'valid'; got '{padding}'")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = ntuple(padding, "padding", name)
        self.padding_mode, self.transposed = padding_mode, transposed
        self.output_padding = ntuple(output_padding, "output_padding", name)
        shape = ((in_channels, out_channels // groups) if transposed else (out_channels, in_channels // groups))
        self.weight = Parameter(_tensor.empty(*shape, *self.kernel_size, dtype=dtype, device=device))
        self.bias = Parameter(_tensor.empty(out_channels, dtype=dtype, device=device)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        reset_conv_parameters(self.weight, self.bias)

    def extra_repr(self):
        return conv_extra_repr(self)


class Conv2d(_ConvNd):
    """nn.Conv2d over (N, C_in, H, W) or (C_in, H, W)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__("Conv2d", in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, False, 0, device, dtype)

    def forward(self, input):
        if self.padding_mode == "zeros":
            return conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        if self.padding == "same":
            (t, b), (l, r) = (_same_padding(self.kernel_size[i], self.dilation[i]) for i in range(2))
        elif self.padding == "valid":
            t = b = l = r = 0
        else:
            (t, l), (b, r) = self.padding, self.padding
        unbatched = input.ndim == 3
        x = _pad2d(input.unsqueeze(0) if unbatched else input, t, b, l, r, self.padding_mode)
        out = conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return out.squeeze(0) if unbatched else out


class ConvTranspose2d(_ConvNd):
    """nn.ConvTranspose2d over (N, C_in, H, W) or (C_in, H, W); forward(input, output_size=None)
    picks output_padding to reach output_size, as PyTorch does."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        super().__init__("ConvTranspose2d", in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                         bias, padding_mode, True, output_padding, device, dtype)

    def _output_padding(self, input, output_size):
        if output_size is None:
            return self.output_padding
        size = tuple(output_size)[-2:]
        if len(size) != 2:
            raise ValueError(f"ConvTranspose2d: output_size must hold at least 2 sizes; got {tuple(output_size)}")
        pads = []
        for i in range(2):
            smallest = ((input.shape[input.ndim - 2 + i] - 1) * self.stride[i] - 2 * self.padding[i]
                        + self.dilation[i] * (self.kernel_size[i] - 1) + 1)
            if not smallest <= size[i] < smallest + self.stride[i]:
                raise ValueError(f"ConvTranspose2d: requested output size {size} is not reachable; dim {i} must be in "
                                 f"[{smallest}, {smallest + self.stride[i] - 1}] for input shape {tuple(input.shape)}")
            pads.append(size[i] - smallest)
        return tuple(pads)

    def forward(self, input, output_size=None):
        return conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                self._output_padding(input, output_size), self.groups, self.dilation)
