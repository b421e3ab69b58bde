"""F.conv1d / F.conv2d / F.conv_transpose2d and nn.Conv1d with PyTorch's semantics. The
2-D forms shape their arguments (ints to pairs, 'same' / 'valid' to numbers) and call the
native kernels (csrc/ops/conv.cpp); conv1d runs as a conv2d of height 1. nn.Conv2d and
nn.ConvTranspose2d live in nn/modules/conv.py."""
import math

from fastdl import _C, _tensor
from fastdl.nn.modules.module import Module
from fastdl.nn.parameter import Parameter

_PAD_MODES = ("zeros", "reflect", "replicate", "circular")


def _single(v, name, op="conv1d"):
    if isinstance(v, (tuple, list)):
        if len(v) != 1:
            raise ValueError(f"{op}: {name} must be an int or a 1-tuple; got {tuple(v)}")
        v = v[0]
    return int(v)


def _same_padding(K, dilation):
    """'same' padding (left, right): the extra element of an odd total goes right, as PyTorch."""
    total = dilation * (K - 1)
    return total // 2, total - total // 2


def _pad1d(x, left, right, mode="zeros"):
    """Pad the last dim of (N, C, L) by left / right elements (PyTorch's padding modes)."""
    if left == 0 and right == 0:
        return x
    N, C, L = x.shape
    if mode == "zeros":
        parts = [x.new_zeros((N, C, left)), x, x.new_zeros((N, C, right))]
    elif mode == "circular":
        if left > L or right > L:
            raise ValueError(f"conv1d: circular padding ({left}, {right}) must not exceed the input length {L}")
        parts = [x[:, :, L - left:], x, x[:, :, :right]]
    elif mode == "replicate":
        parts = [x[:, :, :1].expand(N, C, left), x, x[:, :, L - 1:].expand(N, C, right)]
    elif mode == "reflect":
        if left >= L or right >= L:
            raise ValueError(f"conv1d: reflect padding ({left}, {right}) must be below the input length {L}")
        parts = [x[:, :, 1:left + 1].flip(-1), x, x[:, :, L - 1 - right:L - 1].flip(-1)]
    else:
        raise ValueError(f"conv1d: padding_mode must be one of {_PAD_MODES}; got '{mode}'")
    return _C.cat([p for p in parts if p.shape[2]], 2)


def _check(input, weight, bias, groups):
    if input.ndim not in (2, 3):
        raise ValueError(f"conv1d: input must be (N, C_in, L) or (C_in, L); got shape {tuple(input.shape)}")
    if weight.ndim != 3:
        raise ValueError(f"conv1d: weight must be (C_out, C_in / groups, K); got shape {tuple(weight.shape)}")
    if input.dtype != weight.dtype:
        raise TypeError(f"conv1d: input and weight must share a dtype; got {input.dtype} and {weight.dtype}")
    C_in, C_out = input.shape[-2], weight.shape[0]
    if groups < 1 or C_in % groups or C_out % groups:
        raise ValueError(f"conv1d: groups={groups} must divide in channels {C_in} and out channels {C_out}")
    if weight.shape[1] * groups != C_in:
        raise ValueError(f"conv1d: weight of shape {tuple(weight.shape)} with groups={groups} expects "
                         f"{weight.shape[1] * groups} input channels; got input shape {tuple(input.shape)}")
    if bias is not None and tuple(bias.shape) != (C_out,):
        raise ValueError(f"conv1d: bias must be ({C_out},); got shape {tuple(bias.shape)}")


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D cross-correlation over (N, C_in, L) (or unbatched (C_in, L)) with weight
    (C_out, C_in / groups, K); padding an int, a 1-tuple, 'same' (stride 1) or 'valid'."""
    _check(input, weight, bias, groups)
    stride, dilation = _single(stride, "stride"), _single(dilation, "dilation")
    if stride < 1 or dilation < 1:
        raise ValueError(f"conv1d: stride and dilation must be positive; got stride={stride}, dilation={dilation}")
    if isinstance(padding, str):
        if padding == "valid":
            left = right = 0
        elif padding == "same":
            if stride != 1:
                raise ValueError("conv1d: padding='same' is not supported for strided convolutions")
            left, right = _same_padding(weight.shape[2], dilation)
        else:
            raise ValueError(f"conv1d: padding must be an int, a 1-tuple, 'same' or 'valid'; got '{padding}'")
    else:
        left = right = _single(padding, "padding")
        if left < 0:
            raise ValueError(f"conv1d: padding must be non-negative; got {left}")
    unbatched = input.ndim == 2
    x = input.unsqueeze(0) if unbatched else input
    K = weight.shape[2]
    if x.shape[2] + left + right < dilation * (K - 1) + 1:
        raise ValueError(f"conv1d: kernel size {K} with dilation {dilation} exceeds the padded input length "
                         f"{x.shape[2] + left + right}; input shape {tuple(input.shape)}")
    out = _C.conv2d(x.unsqueeze(2), weight.unsqueeze(2), bias, (1, stride), (0, 0, left, right), (1, dilation),
                    groups).squeeze(2)
    return out.squeeze(0) if unbatched else out


def _pair(v, name, op):
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{op}: {name} must be an int or a pair; got {tuple(v)}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


def _padding2d(padding, weight, stride, dilation, op):
    """PyTorch's padding forms as (top, bottom, left, right) or a pair. 'same' (stride 1 only)
    puts the extra element of an odd total on the bottom / right, as PyTorch does."""
    if not isinstance(padding, str):
        return _pair(padding, "padding", op)
    if padding == "valid":
        return 0, 0
    if padding != "same":
        raise ValueError(f"{op}: padding must be an int, a pair, 'same' or 'valid'; got '{padding}'")
    if stride != (1, 1):
        raise ValueError(f"{op}: padding='same' is not supported for strided convolutions; got stride={stride}")
    if weight.ndim != 4:
        raise ValueError(f"{op}: weight must be 4-D (C_out, C_in / groups, kH, kW); got shape {tuple(weight.shape)}")
    (top, bottom), (left, right) = (_same_padding(weight.shape[2 + i], dilation[i]) for i in range(2))
    return top, bottom, left, right


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation over (N, C_in, H, W) (or unbatched (C_in, H, W)) with weight
    (C_out, C_in / groups, kH, kW); padding an int, a pair, 'same' (stride 1) or 'valid'."""
    stride, dilation = _pair(stride, "stride", "conv2d"), _pair(dilation, "dilation", "conv2d")
    return _C.conv2d(input, weight, bias, stride, _padding2d(padding, weight, stride, dilation, "conv2d"), dilation,
                     int(groups))


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """2-D transposed convolution (the gradient of conv2d with respect to its input) over
    (N, C_in, H, W) with weight (C_in, C_out / groups, kH, kW)."""
    op = "conv_transpose2d"
    return _C.conv_transpose2d(input, weight, bias, _pair(stride, "stride", op), _pair(padding, "padding", op),
                               _pair(output_padding, "output_padding", op), int(groups),
                               _pair(dilation, "dilation", op))

def conv_extra_repr(m):
    """PyTorch's repr of every convolution layer (any rank, plain or transposed): the arguments
    that differ from their defaults."""
    n = len(m.kernel_size)
    s = f"{m.in_channels}, {m.out_channels}, kernel_size={m.kernel_size}, stride={m.stride}"
    if m.padding != (0,) * n:
        s += f", padding={m.padding}"
    if m.dilation != (1,) * n:
        s += f", dilation={m.dilation}"
    if getattr(m, "output_padding", (0,) * n) != (0,) * n:
        s += f", output_padding={m.output_padding}"
    if m.groups != 1:
        s += f", groups={m.groups}"
    if m.bias is None:
        s += ", bias=False"
    if getattr(m, "padding_mode", "zeros") != "zeros":
        s += f", padding_mode={m.padding_mode}"
    return s


def reset_conv_parameters(weight, bias):
    """PyTorch's initialisation of every convolution layer (plain or transposed, any rank):
    kaiming_uniform with a = sqrt(5), bias uniform in +-1/sqrt(fan_in), fan_in the weight's
    dim 1 times its kernel size."""
    from fastdl.nn import init
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in = weight.shape[1] * math.prod(weight.shape[2:])
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        init.uniform_(bias, -bound, bound)


class Conv1d(Module):
    """nn.Conv1d: PyTorch's arguments, parameter names, initialisation and repr."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv1d: groups={groups} must divide in_channels {in_channels} and "
                             f"out_channels {out_channels}")
        if padding_mode not in _PAD_MODES:
            raise ValueError(f"Conv1d: padding_mode must be one of {_PAD_MODES}; got '{padding_mode}'")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = (_single(kernel_size, "kernel_size", "Conv1d"),)
        self.stride = (_single(stride, "stride", "Conv1d"),)
        self.dilation = (_single(dilation, "dilation", "Conv1d"),)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Conv1d: padding must be an int, a 1-tuple, 'same' or 'valid'; got '{padding}'")
            if padding == "same" and self.stride != (1,):
                raise ValueError("Conv1d: padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = (_single(padding, "padding", "Conv1d"),)
        self.padding_mode, self.output_padding, self.transposed = padding_mode, (0,), False
        self.weight = Parameter(_tensor.empty(out_channels, in_channels // groups, self.kernel_size[0], dtype=dtype,
                                              device=device))
        self.bias = Parameter(_tensor.empty(out_channels, dtype=dtype, device=device)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        reset_conv_parameters(self.weight, self.bias)

    def forward(self, input):
        if self.padding_mode == "zeros":
            return conv1d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        if self.padding == "same":
            left, right = _same_padding(self.kernel_size[0], self.dilation[0])
        else:
            left = right = 0 if self.padding == "valid" else self.padding[0]
        unbatched = input.ndim == 2
        x = _pad1d(input.unsqueeze(0) if unbatched else input, left, right, self.padding_mode)
        out = conv1d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return out.squeeze(0) if unbatched else out

    def extra_repr(self):
        return conv_extra_repr(self)
