"""fastdl.models CNN families (LeNet-5, AlexNet, VGG, GoogLeNet, ResNet, DenseNet, EfficientNet,
ConvNeXt) against their plain-PyTorch twins (fastdl.models.twin: the same source run on
torch.nn, no torchvision): identical state_dict names and shapes, full-size parameter counts
equal to torchvision's published ones, forward in train and eval mode and every gradient in
float64 from the same weights; and each family learns on scikit-learn digits in a few dozen steps."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.models as M
from fastdl.models.twin import torch_twin

torch = pytest.importorskip("torch")

# Small versions: (constructor, kwargs, (channels, size)); dropout and stochastic depth off so
# the train-mode forward is deterministic on both sides.
SMALL = {
    "lenet5": (dict(num_classes=10, input_size=16), (1, 16)),
    "alexnet": (dict(num_classes=7, width_mult=0.125, hidden=24, dropout=0.0), (3, 67)),
    "vgg11_bn": (dict(num_classes=7, width_mult=1 / 16, hidden=24, pool_size=2, dropout=0.0), (3, 32)),
    "vgg16": (dict(num_classes=7, width_mult=1 / 32, hidden=16, pool_size=1, dropout=0.0), (3, 33)),
    "googlenet": (dict(num_classes=7, width_mult=0.0625, dropout=0.0, aux_logits=False), (3, 35)),
    "resnet18": (dict(num_classes=7, width=8), (3, 29)),
    "resnet34": (dict(num_classes=7, width=4, small_input=True), (3, 13)),
    "resnet50": (dict(num_classes=7, width=4), (3, 32)),
    "densenet121": (dict(num_classes=7, growth_rate=4, block_config=(2, 3, 2), num_init_features=8), (3, 31)),
    "efficientnet_b0": (dict(num_classes=7, width_mult=0.25, depth_mult=0.34, dropout=0.0,
                             stochastic_depth_prob=0.0), (3, 15)),
    "convnext_tiny": (dict(num_classes=7, dims=(8, 16, 24, 32), depths=(1, 1, 2, 1), patch_size=2,
                           stochastic_depth_prob=0.0, layer_scale=0.5), (3, 17)),
}

# torchvision's published parameter counts (ImageNet heads).
TORCHVISION_PARAMS = {"alexnet": 61100840, "vgg11": 132863336, "vgg11_bn": 132868840, "vgg16": 138357544,
                      "googlenet": 6624904, "resnet18": 11689512, "resnet34": 21797672, "resnet50": 25557032,
                      "densenet121": 7978856, "efficientnet_b0": 5288548, "convnext_tiny": 28589128}


def _to_torch(v):
    return torch.from_numpy(np.array(v.detach().numpy()))


def _pair(name, kw):
    fd.manual_seed(0)
    f = getattr(M, name)(**kw).double()
    t = torch_twin(name, torch, **kw).double()
    fs, ts = f.state_dict(), t.state_dict()
    assert list(fs) == list(ts), name
    for k in fs:
        assert tuple(fs[k].shape) == tuple(ts[k].shape), k
    t.load_state_dict({k: _to_torch(v) for k, v in fs.items()})
    return f, t


def _close(a, b, msg, rtol=1e-9):
    a = np.asarray(a.detach().numpy() if hasattr(a, "detach") else a, dtype=np.float64)
    b = b.detach().numpy()
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(1.0, float(np.abs(b).max())), err_msg=msg)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_matches_torch_twin_float64(name, rng):
    kw, (c, s) = SMALL[name]
    f, t = _pair(name, kw)
    x = rng.standard_normal((3, c, s, s))
    fx, tx = fd.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    fo, to = f(fx), t(tx)  # train mode: batch statistics; running stats move alike
    _close(fo, to, f"{name} train forward")
    up = rng.standard_normal(tuple(to.shape))
    fo.backward(fd.tensor(up))
    to.backward(torch.tensor(up))
    _close(fx.grad, tx.grad, f"{name} input grad", rtol=1e-8)
    for (k, p), (k2, q) in zip(f.named_parameters(), t.named_parameters()):
        assert k == k2
        _close(p.grad, q.grad, f"{name} grad {k}", rtol=1e-8)
    for k, v in t.state_dict().items():  # running statistics after one training forward
        if "running" in k:
            _close(f.state_dict()[k], v, f"{name} {k}")
    f.eval()
    t.eval()
    x2 = rng.standard_normal((2, c, s, s))
    _close(f(fd.tensor(x2)), t(torch.tensor(x2)), f"{name} eval forward")


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_full_size_parameter_count_matches_torchvision(name):
    with torch.device("meta"):  # shapes only: nothing allocated
        t = torch_twin(name, torch)
    assert sum(p.numel() for p in t.parameters()) == TORCHVISION_PARAMS[name]


def test_fastdl_full_size_names_match_twin():
    f = M.resnet18()
    with torch.device("meta"):
        t = torch_twin("resnet18", torch)
    assert [(k, tuple(v.shape)) for k, v in f.state_dict().items()] == \
           [(k, tuple(v.shape)) for k, v in t.state_dict().items()]
    assert "layer4.1.bn2.running_var" in f.state_dict() and "fc.weight" in f.state_dict()


def test_googlenet_aux_and_stochastic_depth(rng):
    m = M.googlenet(num_classes=5, width_mult=0.0625, aux_logits=True)
    out = m(fd.tensor(rng.standard_normal((2, 3, 40, 40)).astype(np.float32)))
    assert isinstance(out, tuple) and [tuple(o.shape) for o in out] == [(2, 5)] * 3
    m.eval()
    assert tuple(m(fd.randn(1, 3, 40, 40)).shape) == (1, 5)
    from fastdl.models.modern_cnn import StochasticDepth
    sd = StochasticDepth(0.5)
    x = fd.ones(400, 3)
    y = sd(x).numpy()
    assert set(np.unique(y)) <= {0.0, 2.0} and 0.3 < (y[:, 0] == 0).mean() < 0.7
    sd.eval()
    assert (sd(x).numpy() == 1).all()


def _digits(size, channels, n=512):
    sk = pytest.importorskip("sklearn.datasets")
    d = sk.load_digits()
    x = (d.data[:n] / 16.0).reshape(-1, 1, 8, 8).astype(np.float32)
    x = np.kron(x, np.ones((1, 1, size // 8, size // 8), np.float32))
    pad = size - x.shape[-1]
    x = np.pad(x, ((0, 0), (0, 0), (pad // 2, pad - pad // 2), (pad // 2, pad - pad // 2)))
    return np.repeat((x - 0.3) / 0.4, channels, 1), d.target[:n].astype(np.int64)


def _blobs(size, n=256):
    """4 classes: a bright quadrant under noise (AlexNet's stride-4 stem needs >= 63 pixels)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, n)
    x = rng.standard_normal((n, 1, size, size)).astype(np.float32) * 0.5
    h = size // 2
    for i, k in enumerate(y):
        r, c = divmod(int(k), 2)
        x[i, 0, r * h:(r + 1) * h, c * h:(c + 1) * h] += 1.0
    return x, y.astype(np.int64)


LEARN = {  # constructor: (kwargs, data, image size, steps, lr); blobs: 4 generated classes, digits: 10
    "lenet5": (dict(input_size=16), "digits", 16, 30, 3e-3),
    "alexnet": (dict(width_mult=0.125, hidden=64, dropout=0.0), "blobs", 64, 25, 1e-3),
    "vgg11_bn": (dict(width_mult=1 / 16, hidden=64, pool_size=1, dropout=0.0), "blobs", 32, 20, 3e-3),
    "googlenet": (dict(width_mult=0.0625, dropout=0.0), "blobs", 32, 20, 3e-3),
    "resnet18": (dict(width=8, small_input=True), "digits", 8, 25, 5e-3),
    "resnet50": (dict(width=4, small_input=True), "blobs", 8, 50, 5e-3),  # 40 at 3e-3 ended at 0.76-0.81
    "densenet121": (dict(growth_rate=12, block_config=(2, 2), num_init_features=16, small_input=True), "digits", 8,
                    25, 1e-2),
    "efficientnet_b0": (dict(width_mult=0.25, depth_mult=0.34, dropout=0.0), "blobs", 8, 20, 3e-3),
    "convnext_tiny": (dict(dims=(16, 32, 48, 64), depths=(1, 1, 1, 1), patch_size=1, layer_scale=0.1), "digits", 8,
                      25, 5e-3),
}


@pytest.mark.parametrize("name", sorted(LEARN))
def test_learns(name):
    kw, data, size, steps, lr = LEARN[name]
    x, y = _blobs(size) if data == "blobs" else _digits(size, 1)
    classes = int(y.max()) + 1
    fd.manual_seed(0)
    model = getattr(M, name)(num_classes=classes, in_channels=1, **kw)
    opt = fd.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(steps):
        idx = rng.choice(len(y), 32, replace=False)
        loss = fd.nn.functional.cross_entropy(model(fd.tensor(x[idx])), fd.tensor(y[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5]), (name, losses[:5], losses[-5:])
    with fd.no_grad():  # batch statistics: a few dozen steps leave the running averages behind
        acc = (model(fd.tensor(x[:256])).argmax(1).numpy() == y[:256]).mean()
    assert acc > 1.5 / classes, (name, acc)


def test_bench_models_cnn_cases_train_alike():
    """`fastdl bench models` lenet / resnet18: the fastdl model and its PyTorch twin start from the
    same weights and follow the same loss trajectory (float32)."""
    from fastdl.bench import models
    fs, ts = models.loss_trajectories("lenet", torch, 3)
    np.testing.assert_allclose(fs, ts, rtol=1e-3, atol=1e-4)
    (fm, fl, _), (tm, tl, _) = models.make_pair("resnet18", torch)
    assert "layer4.1.conv2.weight" in fm.state_dict()
    np.testing.assert_allclose(fl(fm).item(), tl(tm).item(), rtol=1e-3)
