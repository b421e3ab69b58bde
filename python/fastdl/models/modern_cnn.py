"""EfficientNet-B0 (Tan & Le 2019) and ConvNeXt-T (Liu et al. 2022), the depthwise-convolution
CNN families, with torchvision's constructor names, arguments and module names (features.i.j.
block.k..., classifier), without depending on torchvision. Shared pieces: Conv2dNormActivation,
SqueezeExcitation, StochasticDepth ("row" mode), LayerNorm2d (channels-last LayerNorm via
permute). Small versions for 16-32 pixel images:

    efficientnet_b0(num_classes=10, width_mult=0.25, depth_mult=0.34)
    convnext_tiny(num_classes=10, dims=(16, 32, 64, 128), depths=(1, 1, 2, 1), patch_size=2)

The same source builds a plain-PyTorch twin (fastdl.models.twin)."""
import math

try:
    lib = __backend__  # noqa: F821 -- set when fastdl.models.twin executes this source with PyTorch
except NameError:
    import fastdl as lib
    import fastdl.nn  # noqa: F401
nn, F, init = lib.nn, lib.nn.functional, lib.nn.init


class Conv2dNormActivation(nn.Sequential):
    """conv (padding (k - 1) / 2, no bias under a norm) -> norm -> activation, as torchvision.ops."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=None, groups=1,
                 norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU, bias=None):
        if padding is None:
            padding = (kernel_size - 1) // 2
        if bias is None:
            bias = norm_layer is None
        layers = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=bias)]
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if activation_layer is not None:
            layers.append(activation_layer(inplace=True))
        super().__init__(*layers)
        self.out_channels = out_channels


class SqueezeExcitation(nn.Module):
    """x * sigmoid(fc2(act(fc1(mean over H, W of x)))) (Hu et al. 2018), 1x1 convs as torchvision."""

    def __init__(self, input_channels, squeeze_channels, activation=nn.ReLU):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = activation()
        self.scale_activation = nn.Sigmoid()

    def forward(self, x):
        return self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x))))) * x


class StochasticDepth(nn.Module):
    """In training, zero whole samples of a residual branch with probability p and scale the
    rest by 1 / (1 - p) (Huang et al. 2016, "row" mode); identity in eval."""

    def __init__(self, p, mode="row"):
        super().__init__()
        if mode != "row":
            raise ValueError(f"StochasticDepth: only mode='row' is supported; got {mode!r}")
        self.p, self.mode = p, mode

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        keep = (lib.rand(x.shape[0], *([1] * (x.ndim - 1)), dtype=x.dtype) < survival).to(x.dtype)
        return x * (keep / survival) if survival > 0 else x * keep

    def extra_repr(self):
        return f"p={self.p}, mode={self.mode}"


def _make_divisible(v, divisor=8, min_value=None):
    """Round channels to a multiple of divisor, never more than 10% down (MobileNet's rule)."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class MBConv(nn.Module):
    """Inverted residual (Sandler et al. 2018) with squeeze-excitation and SiLU: 1x1 expand,
    k x k depthwise (stride), SE, 1x1 project; residual with stochastic depth when shapes match."""

    def __init__(self, expand_ratio, kernel, stride, input_channels, out_channels, stochastic_depth_prob,
                 norm_layer=nn.BatchNorm2d):
        super().__init__()
        self.use_res_connect = stride == 1 and input_channels == out_channels
        expanded = _make_divisible(input_channels * expand_ratio, 8)
        layers = []
        if expanded != input_channels:
            layers.append(Conv2dNormActivation(input_channels, expanded, 1, norm_layer=norm_layer,
                                               activation_layer=nn.SiLU))
        layers.append(Conv2dNormActivation(expanded, expanded, kernel, stride, groups=expanded, norm_layer=norm_layer,
                                           activation_layer=nn.SiLU))
        layers.append(SqueezeExcitation(expanded, max(1, input_channels // 4), activation=lambda: nn.SiLU(inplace=True)))
        layers.append(Conv2dNormActivation(expanded, out_channels, 1, norm_layer=norm_layer, activation_layer=None))
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")
        self.out_channels = out_channels

    def forward(self, x):
        result = self.block(x)
        if self.use_res_connect:
            result = self.stochastic_depth(result) + x
        return result


# (expand_ratio, kernel, stride, input_channels, out_channels, num_layers) of EfficientNet-B0
_B0 = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
       (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]


class EfficientNet(nn.Module):
    def __init__(self, width_mult=1.0, depth_mult=1.0, dropout=0.2, stochastic_depth_prob=0.2, num_classes=1000,
                 in_channels=3, setting=_B0):
        super().__init__()
        setting = [(e, k, s, _make_divisible(i * width_mult), _make_divisible(o * width_mult),
                    int(math.ceil(n * depth_mult))) for e, k, s, i, o, n in setting]
        layers = [Conv2dNormActivation(in_channels, setting[0][3], 3, 2, activation_layer=nn.SiLU)]
        total, block_id = sum(c[5] for c in setting), 0
        for e, k, s, i, o, n in setting:
            stage = []
            for j in range(n):
                sd = stochastic_depth_prob * float(block_id) / total
                stage.append(MBConv(e, k, s if j == 0 else 1, i if j == 0 else o, o, sd))
                block_id += 1
            layers.append(nn.Sequential(*stage))
        last_in = setting[-1][4]
        last_out = 4 * last_in
        layers.append(Conv2dNormActivation(last_in, last_out, 1, activation_layer=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True), nn.Linear(last_out, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                init.ones_(m.weight)
                init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                r = 1.0 / math.sqrt(m.out_features)
                init.uniform_(m.weight, -r, r)
                init.zeros_(m.bias)

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def efficientnet_b0(num_classes=1000, **kwargs):
    return EfficientNet(num_classes=num_classes, **kwargs)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of (N, C, H, W): permute to channels-last, normalise, permute back."""

    def forward(self, x):
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class Permute(nn.Module):
    def __init__(self, dims):
        super().__init__()
        self.dims = list(dims)

    def forward(self, x):
        return x.permute(*self.dims)


def _ln2d(c):
    return LayerNorm2d(c, eps=1e-6)


class CNBlock(nn.Module):
    """depthwise 7x7 -> channels-last LayerNorm -> Linear 4x -> GELU -> Linear -> layer scale,
    residual with stochastic depth."""

    def __init__(self, dim, layer_scale, stochastic_depth_prob):
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(dim, dim, 7, padding=3, groups=dim, bias=True), Permute([0, 2, 3, 1]),
                                   nn.LayerNorm(dim, eps=1e-6), nn.Linear(dim, 4 * dim), nn.GELU(),
                                   nn.Linear(4 * dim, dim), Permute([0, 3, 1, 2]))
        self.layer_scale = nn.Parameter(lib.ones(dim, 1, 1) * layer_scale)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")

    def forward(self, x):
        return self.stochastic_depth(self.layer_scale * self.block(x)) + x


class ConvNeXt(nn.Module):
    def __init__(self, dims=(96, 192, 384, 768), depths=(3, 3, 9, 3), stochastic_depth_prob=0.0, layer_scale=1e-6,
                 num_classes=1000, in_channels=3, patch_size=4):
        super().__init__()
        layers = [Conv2dNormActivation(in_channels, dims[0], patch_size, patch_size, padding=0, norm_layer=_ln2d,
                                       activation_layer=None, bias=True)]
        total, block_id = sum(depths), 0
        for i, (dim, depth) in enumerate(zip(dims, depths)):
            stage = []
            for _ in range(depth):
                sd = stochastic_depth_prob * block_id / max(total - 1.0, 1.0)
                stage.append(CNBlock(dim, layer_scale, sd))
                block_id += 1
            layers.append(nn.Sequential(*stage))
            if i + 1 < len(dims):
                layers.append(nn.Sequential(_ln2d(dim), nn.Conv2d(dim, dims[i + 1], 2, stride=2)))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(_ln2d(dims[-1]), nn.Flatten(1), nn.Linear(dims[-1], num_classes))
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    init.zeros_(m.bias)

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)))


def convnext_tiny(num_classes=1000, stochastic_depth_prob=0.1, **kwargs):
    return ConvNeXt(num_classes=num_classes, stochastic_depth_prob=stochastic_depth_prob, **kwargs)
