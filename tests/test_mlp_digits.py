"""End to end: an MLP (nn.Linear/ReLU/Dropout, cross_entropy, AdamW) trains on
scikit-learn's digits to >= 95% held-out accuracy."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.nn as nn
import fastdl.nn.functional as F


def test_digits_mlp_reaches_95_percent():
    datasets = pytest.importorskip("sklearn.datasets")
    d = datasets.load_digits()
    X = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(X))
    tr, te = idx[:1400], idx[1400:]
    fd.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.1), nn.Linear(128, 10))
    opt = fd.optim.AdamW(model.parameters(), lr=3e-3)
    Xt, yt = fd.tensor(X[tr]), fd.tensor(y[tr])
    for _ in range(25):
        perm = fd.tensor(rng.permutation(len(tr)))
        for i in range(0, len(tr), 64):
            b = perm[i:i + 64]
            loss = F.cross_entropy(model(Xt[b]), yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with fd.no_grad():
        acc = (model(fd.tensor(X[te])).argmax(1) == fd.tensor(y[te])).float().mean().item()
    assert acc >= 0.95, acc


def test_sgd_momentum_decreases_loss():
    fd.manual_seed(1)
    x = fd.randn(256, 8)
    w_true = fd.randn(8, 1)
    y = x @ w_true
    model = nn.Linear(8, 1)
    opt = fd.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    first = None
    for _ in range(100):
        loss = F.mse_loss(model(x), y)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first * 1e-3
