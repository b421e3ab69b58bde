"""The models that `fastdl bench models` times train exactly as their PyTorch twins: the same
initial weights give the same loss trajectory in float64 (so the benchmark compares like
with like), and the benchmark itself runs."""
import numpy as np
import pytest

import fastdl as fd
from fastdl.bench import models

torch = pytest.importorskip("torch")


def _pair(build, **kw):
    fd.manual_seed(1)
    f = build(models._fastdl(), **kw)
    t = build(models._torch(torch), **kw)
    models.copy_weights(f, t, torch)
    return f.double(), t.double()


@pytest.mark.parametrize("opt_name", ["AdamW", "SGD"])
def test_char_gpt_loss_trajectory_matches_torch_float64(opt_name):
    kw = dict(vocab=11, ctx=9, width=16, heads=2, layers=2)
    f, t = _pair(models.build_char_gpt, **kw)
    f.mask = f.mask.double()
    t.mask = t.mask.double()
    rng = np.random.default_rng(3)
    idx = rng.integers(0, 11, (3, 10))
    fx, fy = fd.tensor(idx[:, :-1]), fd.tensor(idx[:, 1:])
    tx, ty = torch.tensor(idx[:, :-1]), torch.tensor(idx[:, 1:])
    okw = dict(lr=1e-2, momentum=0.9) if opt_name == "SGD" else dict(lr=1e-2, weight_decay=0.1)
    fo = getattr(fd.optim, opt_name)(f.parameters(), **okw)
    to = getattr(torch.optim, opt_name)(t.parameters(), **okw)
    fl, tl = [], []
    for _ in range(6):
        a = fd.nn.functional.cross_entropy(f(fx).reshape(-1, 11), fy.reshape(-1))
        b = torch.nn.functional.cross_entropy(t(tx).reshape(-1, 11), ty.reshape(-1))
        a.backward(); b.backward()
        fo.step(); to.step(); fo.zero_grad(); to.zero_grad()
        fl.append(a.item()); tl.append(b.item())
    np.testing.assert_allclose(fl, tl, rtol=1e-10, atol=1e-12)
    assert fl[-1] < fl[0]
    for (n, p), (m, q) in zip(f.named_parameters(), t.named_parameters()):
        assert n == m
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-8, atol=1e-10, err_msg=n)


def test_bench_models_runs(capsys):
    models.main(["--steps", "2", "--only", "mlp,char-gpt"])
    out = capsys.readouterr().out
    for word in ("mlp", "char-gpt", "forward", "backward", "optimizer", "step"):
        assert word in out


@pytest.mark.parametrize("name", ["gcn", "gat"])
def test_gnn_bench_models_train_alike(name):
    """The GCN / GAT of `fastdl bench models` and their PyTorch twins (sparse.mm, index_add)
    follow the same loss trajectory from the same weights (float32)."""
    fs, ts = models.loss_trajectories(name, torch, 4)
    np.testing.assert_allclose(fs, ts, rtol=2e-4, atol=2e-5)
    assert fs[-1] < fs[0]


def test_bench_generate_runs(capsys):
    from fastdl.bench import generate
    generate.main(["--quick"])
    out = capsys.readouterr().out
    assert "mamba / gpt tokens per second" in out and out.count("tokens/s") == 2


@pytest.mark.parametrize("name", ["convnext", "effnet"])
def test_modern_cnn_bench_models_train_alike(name):
    """ConvNeXt-T and EfficientNet-B0 of `fastdl bench models` (depthwise 7x7 on planes down to
    2x2, strided depthwise, squeeze-excitation) and their PyTorch twins follow the same loss
    trajectory from the same weights (float32)."""
    fs, ts = models.loss_trajectories(name, torch, 3)
    np.testing.assert_allclose(fs, ts, rtol=2e-3, atol=1e-4)
    assert fs[-1] < fs[0]


def test_dcgan_bench_models_train_alike():
    """The DCGAN of `fastdl bench models` (transposed 4x4 stride-2 convolutions up, strided ones
    down, BatchNorm, both networks trained in one step) and its PyTorch twin follow the same loss
    trajectory from the same weights (float32); the adversarial sum need not fall, but it moves."""
    fs, ts = models.loss_trajectories("dcgan", torch, 4)
    np.testing.assert_allclose(fs, ts, rtol=2e-3, atol=1e-4)
    assert np.isfinite(fs).all() and abs(fs[-1] - fs[0]) > 1e-3
