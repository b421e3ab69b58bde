"""LoRA: adapters start as a no-op, only adapters train on a frozen model, merge/unmerge."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.nn as nn
import fastdl.nn.functional as F
from fastdl import optim


def test_lora_finetune_changes_only_adapters(rng):
    fd.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3)).double()
    x = fd.tensor(rng.standard_normal((64, 6)), dtype=fd.float64)
    y = fd.tensor(rng.integers(0, 3, 64))
    before = {k: v.detach().clone().numpy() for k, v in model.state_dict().items()}
    out0 = model(x).detach().numpy()
    nn.lora.apply(model, rank=4, alpha=8, targets=["0", "2"])
    np.testing.assert_allclose(model(x).detach().numpy(), out0, atol=1e-12)  # B = 0: no change yet
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["0.lora_A", "0.lora_B", "2.lora_A", "2.lora_B"]
    opt = optim.AdamW(nn.lora.lora_parameters(model), lr=1e-2)
    first = None
    for _ in range(60):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < first * 0.8
    after = model.state_dict()
    for k, v in before.items():  # base weights are untouched
        np.testing.assert_array_equal(after[k.replace("0.", "0.base.", 1).replace("2.", "2.base.", 1)].numpy(), v)
    assert np.abs(after["0.lora_B"].numpy()).max() > 0
    out = model(x).detach().numpy()
    nn.lora.merge(model)
    np.testing.assert_allclose(model(x).detach().numpy(), out, atol=1e-10)
    assert not np.allclose(model[0].base.weight.detach().numpy(), before["0.weight"])
    nn.lora.unmerge(model)
    np.testing.assert_allclose(model[0].base.weight.detach().numpy(), before["0.weight"], atol=1e-12)
    np.testing.assert_allclose(model(x).detach().numpy(), out, atol=1e-10)


def test_lora_linear_matches_formula_and_validates(rng):
    base = nn.Linear(5, 4).double()
    lo = nn.LoRALinear(base, rank=2, alpha=6)
    with fd.no_grad():
        lo.lora_B.copy_(fd.tensor(rng.standard_normal((4, 2)), dtype=fd.float64))
    x = rng.standard_normal((3, 5))
    W, b = base.weight.detach().numpy(), base.bias.detach().numpy()
    A, B = lo.lora_A.detach().numpy(), lo.lora_B.detach().numpy()
    ref = x @ W.T + b + 3.0 * (x @ A.T) @ B.T
    np.testing.assert_allclose(lo(fd.tensor(x, dtype=fd.float64)).detach().numpy(), ref, atol=1e-12)
    assert not base.weight.requires_grad
    with pytest.raises(TypeError):
        nn.LoRALinear(nn.ReLU())
    with pytest.raises(ValueError):
        nn.LoRALinear(nn.Linear(2, 2), rank=0)
