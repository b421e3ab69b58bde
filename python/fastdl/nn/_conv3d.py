"""F.conv3d / F.conv_transpose3d and nn.Conv3d / nn.ConvTranspose3d, composed from the native
2-d kernels (csrc/ops/conv.cpp); autograd runs through the composition.

conv3d: the kD depth-shifted (strided, dilated) views of the depth-padded input are stacked
into the channel dim, so one conv2d over a batch of N * OD planes with kD * C_in / groups
channels per group does the whole 3-d cross-correlation (im2col over depth only; the 2-d kernel
does H and W).
conv_transpose3d: one conv_transpose2d of the N * D input planes with the kD kernel slices as
extra output channels, then each kernel slice's planes are spread to output depth
i * stride + kd * dilation - padding and summed."""
from fastdl import _C
from fastdl.nn.modules.conv import _ConvNd


def _triple(v, name, op):
    if isinstance(v, bool):
        raise TypeError(f"{op}: {name} must be an int or a tuple of three ints; got bool")
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            v = tuple(v) * 3
        if len(v) != 3:
            raise ValueError(f"{op}: {name} must be an int or a tuple of three ints; got {tuple(v)}")
        return tuple(int(a) for a in v)
    return (int(v),) * 3


def _check(input, weight, bias, groups, op, transposed=False):
    if input.ndim not in (4, 5):
        raise ValueError(f"{op}: input must be (N, C_in, D, H, W) or (C_in, D, H, W); got shape {tuple(input.shape)}")
    if weight.ndim != 5:
        form = "(C_in, C_out / groups, kD, kH, kW)" if transposed else "(C_out, C_in / groups, kD, kH, kW)"
        raise ValueError(f"{op}: weight must be {form}; got shape {tuple(weight.shape)}")
    if not input.dtype.is_floating_point or input.dtype != weight.dtype:
        raise TypeError(f"{op}: input and weight must share a floating dtype; got {input.dtype} and {weight.dtype} "
                        f"(shapes {tuple(input.shape)}, {tuple(weight.shape)})")
    groups = int(groups)
    C_in = input.shape[-4]
    C_out = weight.shape[1] * groups if transposed else weight.shape[0]
    if groups < 1 or C_in % groups or C_out % groups:
        raise ValueError(f"{op}: groups={groups} must divide in channels {C_in} and out channels {C_out}; "
                         f"input shape {tuple(input.shape)}, weight shape {tuple(weight.shape)}")
    expect = weight.shape[0] if transposed else weight.shape[1] * groups
    if expect != C_in:
        raise ValueError(f"{op}: weight of shape {tuple(weight.shape)} with groups={groups} expects {expect} input "
                         f"channels; got input shape {tuple(input.shape)}")
    if bias is not None and tuple(bias.shape) != (C_out,):
        raise ValueError(f"{op}: bias must be ({C_out},); got shape {tuple(bias.shape)}")
    return groups, C_out


def _padding3d(padding, weight, stride, dilation, op):
    """((front, back), (top, bottom), (left, right)); 'same' puts an odd total's extra element last."""
    if not isinstance(padding, str):
        return tuple((p, p) for p in _triple(padding, "padding", op))
    if padding == "valid":
        return ((0, 0),) * 3
    if padding != "same":
        raise ValueError(f"{op}: padding must be an int, a triple, 'same' or 'valid'; got '{padding}'")
    if stride != (1, 1, 1):
        raise ValueError(f"{op}: padding='same' is not supported for strided convolutions; got stride={stride}")
    out = []
    for i in range(3):
        total = dilation[i] * (weight.shape[2 + i] - 1)
        out.append((total // 2, total - total // 2))
    return tuple(out)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3-d cross-correlation over (N, C_in, D, H, W) (or unbatched (C_in, D, H, W)) with weight
    (C_out, C_in / groups, kD, kH, kW); padding an int, a triple, 'same' (stride 1) or 'valid'."""
    op = "conv3d"
    groups, C_out = _check(input, weight, bias, groups, op)
    stride, dilation = _triple(stride, "stride", op), _triple(dilation, "dilation", op)
    if min(stride) < 1 or min(dilation) < 1:
        raise ValueError(f"{op}: stride and dilation must be positive; got stride={stride}, dilation={dilation}")
    (pd0, pd1), (ph0, ph1), (pw0, pw1) = _padding3d(padding, weight, stride, dilation, op)
    if min(pd0, ph0, pw0) < 0:
        raise ValueError(f"{op}: padding must be non-negative; got {padding}")
    unbatched = input.ndim == 4
    x = input.unsqueeze(0) if unbatched else input
    N, C, D, H, W = x.shape
    kD, kH, kW = weight.shape[2:]
    sd, dd = stride[0], dilation[0]
    span = [dd * (kD - 1) + 1, dilation[1] * (kH - 1) + 1, dilation[2] * (kW - 1) + 1]
    padded = [D + pd0 + pd1, H + ph0 + ph1, W + pw0 + pw1]
    if any(p < s for p, s in zip(padded, span)):
        raise ValueError(f"{op}: kernel size {(kD, kH, kW)} with dilation {dilation} exceeds the padded input size "
                         f"{tuple(padded)}; input shape {tuple(input.shape)}, weight shape {tuple(weight.shape)}")
    if pd0 or pd1:
        from fastdl.nn._functional_pad import pad
        x = pad(x, (0, 0, 0, 0, pd0, pd1))
    OD = (padded[0] - span[0]) // sd + 1
    G, Cg = groups, C // groups
    if kD == 1:
        cols = x[:, :, 0:sd * (OD - 1) + 1:sd] if (sd != 1 or OD != x.shape[2]) else x  # (N, C, OD, H, W)
        cols = cols.permute(0, 2, 1, 3, 4).reshape(N * OD, C, H, W)
        w = weight.reshape(C_out, Cg, kH, kW)
    else:
        views = [x[:, :, k * dd:k * dd + sd * (OD - 1) + 1:sd] for k in range(kD)]  # kD x (N, C, OD, H, W)
        cols = _C.stack(views, 2).reshape(N, G, Cg, kD, OD, H, W)
        cols = cols.permute(0, 4, 1, 3, 2, 5, 6).reshape(N * OD, G * kD * Cg, H, W)
        w = weight.permute(0, 2, 1, 3, 4).reshape(C_out, kD * Cg, kH, kW)
    y = _C.conv2d(cols, w, bias, stride[1:], (ph0, ph1, pw0, pw1), dilation[1:], G)  # (N * OD, C_out, OH, OW)
    OH, OW = y.shape[2], y.shape[3]
    out = y.reshape(N, OD, C_out, OH, OW).permute(0, 2, 1, 3, 4).contiguous()
    return out.squeeze(0) if unbatched else out


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """3-d transposed convolution (the gradient of conv3d with respect to its input) over
    (N, C_in, D, H, W) (or unbatched) with weight (C_in, C_out / groups, kD, kH, kW)."""
    op = "conv_transpose3d"
    groups, C_out = _check(input, weight, bias, groups, op, transposed=True)
    stride, padding = _triple(stride, "stride", op), _triple(padding, "padding", op)
    output_padding, dilation = _triple(output_padding, "output_padding", op), _triple(dilation, "dilation", op)
    if min(stride) < 1 or min(dilation) < 1 or min(padding) < 0:
        raise ValueError(f"{op}: stride and dilation must be positive and padding non-negative; got stride={stride}, "
                         f"padding={padding}, dilation={dilation}")
    for i in range(3):
        if not 0 <= output_padding[i] < max(stride[i], dilation[i]):
            raise ValueError(f"{op}: output_padding {output_padding} must be non-negative and smaller than either "
                             f"stride {stride} or dilation {dilation}")
    unbatched = input.ndim == 4
    x = input.unsqueeze(0) if unbatched else input
    N, C, D, H, W = x.shape
    kD, kH, kW = weight.shape[2:]
    sd, pd, opd, dd = stride[0], padding[0], output_padding[0], dilation[0]
    OD = (D - 1) * sd - 2 * pd + dd * (kD - 1) + opd + 1
    if OD <= 0:
        raise ValueError(f"{op}: output depth {OD} is not positive; input shape {tuple(input.shape)}, weight shape "
                         f"{tuple(weight.shape)}, stride {stride}, padding {padding}, dilation {dilation}")
    G, Cog = groups, C_out // groups
    w = weight.permute(0, 2, 1, 3, 4).reshape(C, kD * Cog, kH, kW)
    planes = x.permute(0, 2, 1, 3, 4).reshape(N * D, C, H, W)
    y = _C.conv_transpose2d(planes, w, None, stride[1:], padding[1:], output_padding[1:], G, dilation[1:])
    OH, OW = y.shape[2], y.shape[3]
    y = y.reshape(N, D, G, kD, Cog, OH, OW)
    # tap k of input plane i lands at padded depth i * sd + k * dd = (i + a) * sd + r with
    # (a, r) = divmod(k * dd, sd): per residue r, the taps' planes shifted by a along Q and summed
    # (no zero-spread of the whole tensor); the residues interleave into depth Q * sd
    full = (D - 1) * sd + dd * (kD - 1) + 1 + opd
    Q = -(-full // sd)
    residues = []
    for r in range(sd):
        acc = None
        for k in range(kD):
            a, rk = divmod(k * dd, sd)
            if rk != r:
                continue
            part = y[:, :, :, k].reshape(N, D, C_out, OH, OW)
            blocks = [part]
            if a:
                blocks.insert(0, _C.full((N, a, C_out, OH, OW), 0.0, y.dtype, y.device))
            if Q - D - a:
                blocks.append(_C.full((N, Q - D - a, C_out, OH, OW), 0.0, y.dtype, y.device))
            piece = _C.cat(blocks, 1) if len(blocks) > 1 else part
            acc = piece if acc is None else acc + piece
        residues.append(acc if acc is not None else _C.full((N, Q, C_out, OH, OW), 0.0, y.dtype, y.device))
    out = residues[0] if sd == 1 else _C.stack(residues, 2).reshape(N, Q * sd, C_out, OH, OW)
    out = out[:, pd:pd + OD]
    out = out.permute(0, 2, 1, 3, 4)
    if bias is not None:
        out = out + bias.reshape(1, C_out, 1, 1, 1)
    out = out.contiguous()
    return out.squeeze(0) if unbatched else out


class _ConvNd3(_ConvNd):
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None, output_padding=0):
        super().__init__(type(self).__name__, in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, self._transposed, output_padding, device, dtype, ntuple=_triple)


class Conv3d(_ConvNd3):
    """nn.Conv3d: PyTorch's arguments, parameter names, initialisation and repr."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device, dtype)

    def forward(self, input):
        if self.padding_mode == "zeros":
            return conv3d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        from fastdl.nn._functional_pad import pad
        pads = _padding3d(self.padding, self.weight, self.stride, self.dilation, "Conv3d")
        flat = (pads[2][0], pads[2][1], pads[1][0], pads[1][1], pads[0][0], pads[0][1])
        return conv3d(pad(input, flat, self.padding_mode), self.weight, self.bias, self.stride, 0, self.dilation,
                      self.groups)


class ConvTranspose3d(_ConvNd3):
    """nn.ConvTranspose3d: weight (C_in, C_out / groups, kD, kH, kW), PyTorch's initialisation."""
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device, dtype, output_padding)

    def forward(self, input, output_size=None):
        op = self.output_padding
        if output_size is not None:  # choose output_padding that reaches output_size, as PyTorch
            size = tuple(output_size)[-3:]
            x_sp = input.shape[-3:]
            op = tuple(size[i] - ((x_sp[i] - 1) * self.stride[i] - 2 * self.padding[i] +
                                  self.dilation[i] * (self.kernel_size[i] - 1) + 1) for i in range(3))
        return conv_transpose3d(input, self.weight, self.bias, self.stride, self.padding, op, self.groups,
                                self.dilation)

