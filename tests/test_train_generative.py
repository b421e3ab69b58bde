"""`fastdl train --model vae|gan|ddpm` and `fastdl nas` end to end on the digits (tiny runs):
the summary lines, a checkpoint that loads back into the model, a readable sample grid, and
the NAS results table on disk."""
import json
import os
import re

import numpy as np
import pytest

import fastdl as fd

pytest.importorskip("sklearn")


@pytest.fixture(autouse=True)
def one_thread():
    prev = fd.get_num_threads()
    fd.set_num_threads(1)
    yield
    fd.set_num_threads(prev)


def _build(model):
    from fastdl import models
    if model == "vae":
        return models.VAE(image_size=8, latent_dim=8, width=8)
    if model == "gan":
        return models.DCGANGenerator(latent_dim=16, image_size=8, width=8)
    if model == "ddpm-dit":
        return models.DDPM(models.DiTDenoiser(input_size=8, hidden_size=32, depth=4, num_heads=4))
    return models.DDPM(models.UNet(in_channels=1, base_channels=8, channel_mults=(1, 2), num_heads=2, groups=4))


@pytest.mark.parametrize("model", ["vae", "gan", "ddpm", "ddpm-dit"])
def test_train_generative_on_digits(model, tmp_path, capsys):
    from fastdl.cli import main
    from fastdl.train.images import read_png
    extra = ["--timesteps", "20", "--sampler", "ddim", "--ddim-steps", "5"] if model.startswith("ddpm") else []
    if model == "ddpm-dit":
        extra += ["--denoiser", "dit"]
    assert main(["train", "--model", model.split("-")[0], "--epochs", "1", "--width", "8", "--samples", "16", "--no-progress",
                 "--out", str(tmp_path)] + extra) == 0
    out = capsys.readouterr().out
    conf = float(re.search(r"mean max-probability ([\d.]+) over 16 samples", out).group(1))
    assert 0.0 < conf <= 1.0 and "epoch 1/1" in out
    if model == "vae":
        assert float(re.search(r"held-out negative ELBO: ([\d.]+)", out).group(1)) < 44.0
        assert read_png(os.path.join(tmp_path, "reconstructions.png")).shape == (4 * (2 * 9 + 1), 4 * (8 * 9 + 1))
    assert os.path.getsize(os.path.join(tmp_path, "loss.png")) > 0
    grid = read_png(os.path.join(tmp_path, "samples.png"))
    assert grid.shape == (4 * (2 * 9 + 1), 4 * (8 * 9 + 1)) and grid.std() > 0
    sd = fd.load(os.path.join(tmp_path, "model.safetensors"))
    if model == "gan":
        assert any(k.startswith("discriminator.") for k in sd)
        sd = {k[len("generator."):]: v for k, v in sd.items() if k.startswith("generator.")}
    m = _build(model)
    m.load_state_dict(sd)
    if model == "gan":
        assert m.sample(2).shape == (2, 1, 8, 8)


def test_nas_cli_on_digits(tmp_path, capsys):
    from fastdl.cli import main
    assert main(["nas", "--trials", "5", "--population", "3", "--sample-size", "2", "--epochs", "1",
                 "--max-params", "2000", "--no-progress", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"best: .* \((\d+) parameters\), validation accuracy [\d.]+%, test accuracy [\d.]+%", out)
    with open(os.path.join(tmp_path, "nas.json")) as f:
        res = json.load(f)
    assert len(res["trials"]) == 5 and all(t["params"] <= 2000 for t in res["trials"])
    assert res["best"]["val_acc"] == max(t["val_acc"] for t in res["trials"])
    assert res["baseline"]["params"] <= 2000 and os.path.getsize(os.path.join(tmp_path, "nas.png")) > 0
    sd = fd.load(os.path.join(tmp_path, "nas_best.safetensors"))
    assert all(np.isfinite(v.numpy()).all() for v in sd.values())
