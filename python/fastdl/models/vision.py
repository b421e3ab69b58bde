"""Classic CNNs with torchvision's constructor names, arguments and module names (so
state_dicts line up with torchvision's), without depending on torchvision: LeNet-5, AlexNet,
VGG-11/13/16/19 (and _bn variants), GoogLeNet (Inception v1). Widths, hidden sizes and input
sizes are configurable so small versions train on a laptop CPU in seconds:

    lenet5(num_classes=10, input_size=16)
    vgg11_bn(num_classes=10, width_mult=1 / 16, hidden=64, pool_size=1)
    googlenet(num_classes=10, width_mult=0.125)

The same source builds a plain-PyTorch twin (fastdl.models.twin), which the tests and
`fastdl bench models` use as the independent reference and speed peer."""
try:
    lib = __backend__  # noqa: F821 -- set when fastdl.models.twin executes this source with PyTorch
except NameError:
    import fastdl as lib
    import fastdl.nn  # noqa: F401
nn, F, init = lib.nn, lib.nn.functional, lib.nn.init


def _ch(c, width_mult):
    return max(1, int(round(c * width_mult)))


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al. 1998): conv 5x5 (padding 2) -> 6, pool, conv 5x5 -> 16, pool,
    120, 84, num_classes. activation "relu" / "tanh", pool "max" / "avg" (the original: tanh, avg)."""

    def __init__(self, num_classes=10, in_channels=1, input_size=28, activation="relu", pool="max"):
        super().__init__()
        act = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]
        pool_cls = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}[pool]
        s = ((input_size // 2) - 4) // 2
        if s < 1:
            raise ValueError(f"LeNet5: input_size must be at least 12; got {input_size}")
        self.features = nn.Sequential(nn.Conv2d(in_channels, 6, 5, padding=2), act(), pool_cls(2),
                                      nn.Conv2d(6, 16, 5), act(), pool_cls(2))
        self.classifier = nn.Sequential(nn.Linear(16 * s * s, 120), act(), nn.Linear(120, 84), act(),
                                        nn.Linear(84, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class AlexNet(nn.Module):
    """torchvision's AlexNet (the one-GPU variant of Krizhevsky et al. 2012)."""

    def __init__(self, num_classes=1000, dropout=0.5, width_mult=1.0, hidden=4096, in_channels=3):
        super().__init__()
        c = [_ch(v, width_mult) for v in (64, 192, 384, 256, 256)]
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c[0], 11, stride=4, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(c[0], c[1], 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(c[1], c[2], 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c[2], c[3], 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c[3], c[4], 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(c[4] * 36, hidden), nn.ReLU(inplace=True),
                                        nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
                                        nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


VGG_CFGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def make_vgg_layers(cfg, batch_norm=False, width_mult=1.0, in_channels=3):
    layers = []
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        v = _ch(v, width_mult)
        layers.append(nn.Conv2d(in_channels, v, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU(inplace=True))
        in_channels = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """torchvision's VGG (Simonyan & Zisserman 2015): cfg-driven features, adaptive average pool
    to pool_size x pool_size (7 in torchvision), classifier hidden -> hidden -> num_classes."""

    def __init__(self, features, num_classes=1000, init_weights=True, dropout=0.5, hidden=4096, pool_size=7):
        super().__init__()
        out_ch = [m for m in features if isinstance(m, nn.Conv2d)][-1].out_channels
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((pool_size, pool_size))
        self.classifier = nn.Sequential(nn.Linear(out_ch * pool_size * pool_size, hidden), nn.ReLU(True),
                                        nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU(True),
                                        nn.Dropout(dropout), nn.Linear(hidden, num_classes))
        if init_weights:
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    if m.bias is not None:
                        init.zeros_(m.bias)
                elif isinstance(m, nn.BatchNorm2d):
                    init.ones_(m.weight)
                    init.zeros_(m.bias)
                elif isinstance(m, nn.Linear):
                    init.normal_(m.weight, 0, 0.01)
                    init.zeros_(m.bias)

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


class BasicConv2d(nn.Module):
    """conv (no bias) -> BatchNorm (eps 1e-3) -> ReLU, GoogLeNet's unit."""

    def __init__(self, in_channels, out_channels, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    """Four branches concatenated on channels: 1x1; 1x1 -> 3x3; 1x1 -> 3x3 (torchvision's
    stand-in for the paper's 5x5); 3x3 max pool -> 1x1."""

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(BasicConv2d(in_channels, ch3x3red, kernel_size=1),
                                     BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(in_channels, ch5x5red, kernel_size=1),
                                     BasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
                                     BasicConv2d(in_channels, pool_proj, kernel_size=1))

    def forward(self, x):
        return lib.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    def __init__(self, in_channels, num_classes, dropout=0.7, width_mult=1.0):
        super().__init__()
        c, h = _ch(128, width_mult), _ch(1024, width_mult)
        self.conv = BasicConv2d(in_channels, c, kernel_size=1)
        self.fc1 = nn.Linear(c * 16, h)
        self.fc2 = nn.Linear(h, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x):
        x = self.conv(F.adaptive_avg_pool2d(x, (4, 4))).flatten(1)
        return self.fc2(self.dropout(F.relu(self.fc1(x), inplace=True)))


# (in, 1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool proj) of Szegedy et al. (2015), table 1
_INCEPTION = {"3a": (192, 64, 96, 128, 16, 32, 32), "3b": (256, 128, 128, 192, 32, 96, 64),
              "4a": (480, 192, 96, 208, 16, 48, 64), "4b": (512, 160, 112, 224, 24, 64, 64),
              "4c": (512, 128, 128, 256, 24, 64, 64), "4d": (512, 112, 144, 288, 32, 64, 64),
              "4e": (528, 256, 160, 320, 32, 128, 128), "5a": (832, 256, 160, 320, 32, 128, 128),
              "5b": (832, 384, 192, 384, 48, 128, 128)}


class GoogLeNet(nn.Module):
    """torchvision's GoogLeNet (Szegedy et al. 2015) with batch-norm units; aux_logits adds the
    two auxiliary classifiers (returned as (out, aux2, aux1) in training, as torchvision)."""

    def __init__(self, num_classes=1000, aux_logits=False, transform_input=False, init_weights=True, dropout=0.2,
                 dropout_aux=0.7, width_mult=1.0, in_channels=3):
        super().__init__()
        self.aux_logits, self.transform_input = aux_logits, transform_input
        w = lambda c: _ch(c, width_mult)  # noqa: E731
        self.conv1 = BasicConv2d(in_channels, w(64), kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(w(64), w(64), kernel_size=1)
        self.conv3 = BasicConv2d(w(64), w(192), kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        for name, cfg in _INCEPTION.items():
            setattr(self, "inception" + name, Inception(*[w(c) for c in cfg]))
            if name == "3b":
                self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            if name == "4e":
                self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.aux1 = InceptionAux(w(512), num_classes, dropout_aux, width_mult) if aux_logits else None
        self.aux2 = InceptionAux(w(528), num_classes, dropout_aux, width_mult) if aux_logits else None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(w(1024), num_classes)
        if init_weights:
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
                elif isinstance(m, nn.BatchNorm2d):
                    init.ones_(m.weight)
                    init.zeros_(m.bias)

    def _transform_input(self, x):
        if not self.transform_input:
            return x
        c = [x[:, i:i + 1] * (s / 0.5) + (m - 0.5) / 0.5 for i, (m, s) in
             enumerate(((0.485, 0.229), (0.456, 0.224), (0.406, 0.225)))]
        return lib.cat(c, 1)

    def forward(self, x):
        x = self.maxpool1(self.conv1(self._transform_input(x)))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        x = self.fc(self.dropout(self.avgpool(x).flatten(1)))
        return (x, aux2, aux1) if aux1 is not None else x


def lenet5(num_classes=10, **kwargs):
    return LeNet5(num_classes=num_classes, **kwargs)


def alexnet(num_classes=1000, **kwargs):
    return AlexNet(num_classes=num_classes, **kwargs)


def _vgg(cfg, batch_norm, num_classes, width_mult=1.0, in_channels=3, **kwargs):
    return VGG(make_vgg_layers(VGG_CFGS[cfg], batch_norm, width_mult, in_channels), num_classes=num_classes, **kwargs)


def vgg11(num_classes=1000, **kwargs): return _vgg("A", False, num_classes, **kwargs)
def vgg11_bn(num_classes=1000, **kwargs): return _vgg("A", True, num_classes, **kwargs)
def vgg13(num_classes=1000, **kwargs): return _vgg("B", False, num_classes, **kwargs)
def vgg13_bn(num_classes=1000, **kwargs): return _vgg("B", True, num_classes, **kwargs)
def vgg16(num_classes=1000, **kwargs): return _vgg("D", False, num_classes, **kwargs)
def vgg16_bn(num_classes=1000, **kwargs): return _vgg("D", True, num_classes, **kwargs)
def vgg19(num_classes=1000, **kwargs): return _vgg("E", False, num_classes, **kwargs)
def vgg19_bn(num_classes=1000, **kwargs): return _vgg("E", True, num_classes, **kwargs)


def googlenet(num_classes=1000, **kwargs):
    return GoogLeNet(num_classes=num_classes, **kwargs)
