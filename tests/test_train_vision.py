"""`fastdl train --model lenet|resnet`: CNNs on the digits (16x16, random shifts) reach a
held-out accuracy well above chance and write a checkpoint that loads back."""
import os
import re

import numpy as np
import pytest

pytest.importorskip("sklearn")


@pytest.mark.parametrize("model,extra,floor", [("lenet", ["--epochs", "2"], 0.7),
                                               ("resnet", ["--epochs", "1", "--width", "4", "--batch-size", "64"], 0.2)])
def test_train_cnn_on_digits(model, extra, floor, tmp_path, capsys):
    from fastdl.train.main import main
    assert main(["--model", model, "--no-progress", "--out", str(tmp_path)] + extra) == 0
    out = capsys.readouterr().out
    acc = float(re.search(r"held-out accuracy: ([\d.]+)%", out).group(1)) / 100
    assert acc > floor, out
    assert "random shifts" in out
    import fastdl as fd
    from fastdl.train.vision import build
    sd = fd.load(os.path.join(tmp_path, "model.safetensors"))
    m = build(model, 4)
    m.load_state_dict(sd)
    assert "fc.weight" in sd if model == "resnet" else "features.0.weight" in sd


def test_augmented_loader_shifts_each_epoch():
    import fastdl as fd
    from fastdl.data import DataLoader, TensorDataset
    from fastdl.data.transforms import RandomCrop
    from fastdl.train.vision import Augmented, as_images
    x = as_images(np.random.default_rng(0).standard_normal((8, 64)).astype(np.float32))
    assert x.shape == (8, 1, 16, 16) and (x[:, :, ::2, ::2] == x[:, :, 1::2, 1::2]).all()
    loader = Augmented(DataLoader(TensorDataset(fd.tensor(x), fd.tensor(np.arange(8))), batch_size=8),
                       RandomCrop(16, padding=2, generator=0))
    a, b = [next(iter(loader))[0].numpy() for _ in range(2)]
    assert len(loader) == 1 and a.shape == x.shape and not np.array_equal(a, b)
