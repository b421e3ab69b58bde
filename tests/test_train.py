"""Fit loop, callbacks, History, plot, and the `fastdl train` main job."""
import numpy as np
import pytest

import fastdl as fd
from fastdl import nn, optim
from fastdl.data import DataLoader, TensorDataset
from fastdl.train import EarlyStopping, ModelCheckpoint, fit, plot_history


def _blobs(rng, n=200):
    y = rng.integers(0, 3, n)
    x = rng.standard_normal((n, 4)).astype(np.float32) + np.eye(3, 4, dtype=np.float32)[y] * 3
    return fd.tensor(x), fd.tensor(y)


def test_fit_learns_and_records_history(rng, tmp_path, capsys):
    x, y = _blobs(rng)
    fd.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = optim.Adam(model.parameters(), lr=1e-2)
    dl = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, generator=0)
    ck = ModelCheckpoint(tmp_path / "ep{epoch}.safetensors", save_optimizer=True)
    h = fit(model, opt, nn.CrossEntropyLoss(), dl, dl, epochs=5, metrics=["accuracy"], callbacks=[ck], progress=False)
    assert len(h["loss"]) == 5 and h["loss"][-1] < h["loss"][0]
    assert h["val_accuracy"][-1] > 0.9
    assert "epoch 5/5" in capsys.readouterr().out
    sd = fd.load(ck.saved[-1])
    assert sd["epoch"] == 4 and set(sd["model"]) == set(model.state_dict())
    assert "state" in sd["optimizer"]
    png = plot_history(h, tmp_path / "loss.png")
    if png is not None:
        assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_early_stopping_restores_best(rng):
    x, y = _blobs(rng, 64)
    model = nn.Linear(4, 3)
    opt = optim.SGD(model.parameters(), lr=0.0)  # nothing improves after epoch 0
    dl = DataLoader(TensorDataset(x, y), batch_size=64)
    es = EarlyStopping(patience=2, min_delta=1e-3, restore_best_weights=True)
    h = fit(model, opt, nn.CrossEntropyLoss(), dl, dl, epochs=10, callbacks=[es], progress=False, verbose=False)
    assert len(h["loss"]) == 3 and es.stopped_epoch == 2 and es.best_epoch == 0
    # restore: train on with a huge lr, the best (first) weights come back
    w0 = model.weight.detach().clone().numpy()
    opt = optim.SGD(model.parameters(), lr=50.0)
    es2 = EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    fit(model, opt, nn.CrossEntropyLoss(), dl, dl, epochs=6, callbacks=[es2], progress=False, verbose=False)
    best = es2.best_state["weight"].numpy()
    np.testing.assert_array_equal(model.weight.detach().numpy(), best)
    assert w0.shape == best.shape
    with pytest.raises(KeyError, match="monitored"):
        fit(model, opt, nn.CrossEntropyLoss(), dl, None, epochs=1, callbacks=[EarlyStopping()], progress=False,
            verbose=False)


def test_fastdl_train_main(tmp_path, capsys):
    pytest.importorskip("sklearn")
    from fastdl.cli import main
    assert main(["train", "--epochs", "8", "--out", str(tmp_path), "--no-progress", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    acc = float(out.split("held-out accuracy: ")[1].split("%")[0])
    assert acc >= 95.0
    assert (tmp_path / "model.safetensors").exists()
    sd = fd.load(tmp_path / "model.safetensors")
    assert tuple(sd["0.weight"].shape) == (128, 64)


def test_fastdl_command_rejects_bad_arguments(capsys):
    from fastdl.cli import main
    assert main(["info"]) == 0
    assert "cpu isa in force" in capsys.readouterr().out
    assert main(["info", "--all"]) == 2
    assert "fastdl info: takes no arguments (got --all)" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # argparse's exit status for a bad option
        main(["train", "--bogus"])
    assert e.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
