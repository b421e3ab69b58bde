"""nn.Mamba against an independent float64 PyTorch reference (mamba_ssm's slow path written
out here: torch conv1d and a loop over time), values and every gradient; the paper's
initialisation; recurrent `step` against the full-sequence forward for Mamba, hybrid and
attention models; generation; `fastdl train --model mamba`; the Mamba LM of `fastdl bench models`."""
import math

import numpy as np
import pytest

import fastdl as fd
import fastdl.nn as nn
from fastdl.models import HybridLM, MambaLM


def torch_mamba(torch, p, h, d_state, dt_rank, d_conv):
    """mamba_ssm's Mamba.forward (slow path) with selective_scan_ref, over state dict p."""
    tF = torch.nn.functional
    L = h.shape[1]
    x, z = (h @ p["in_proj.weight"].T).chunk(2, dim=-1)
    x, z = x.transpose(1, 2), z.transpose(1, 2)                      # (b, d, L)
    d = x.shape[1]
    x = tF.silu(tF.conv1d(x, p["conv1d.weight"], p["conv1d.bias"], padding=d_conv - 1, groups=d)[..., :L])
    x_dbl = x.transpose(1, 2) @ p["x_proj.weight"].T
    dt, B, C = torch.split(x_dbl, [dt_rank, d_state, d_state], dim=-1)
    delta = tF.softplus(dt @ p["dt_proj.weight"].T + p["dt_proj.bias"]).transpose(1, 2)
    A = -torch.exp(p["A_log"])
    s = x.new_zeros((x.shape[0], d, d_state))
    ys = []
    for t in range(L):
        s = torch.exp(delta[:, :, t, None] * A) * s + (delta[:, :, t] * x[:, :, t])[..., None] * B[:, None, t]
        ys.append((s * C[:, None, t]).sum(-1))
    y = (torch.stack(ys, 2) + x * p["D"][:, None]) * tF.silu(z)
    return y.transpose(1, 2) @ p["out_proj.weight"].T


def _perturb(module, rng, scale=0.3):
    """Move every parameter off its init (D = 1, zero biases, ...) so each gradient is exercised."""
    with fd.no_grad():
        for p in module.parameters():
            p.copy_(p + fd.tensor(rng.standard_normal(p.shape) * scale))


@pytest.mark.parametrize("d_model,d_state,d_conv,expand,L", [(8, 4, 4, 2, 13), (6, 3, 3, 1.5, 7)])
def test_mamba_block_matches_torch_reference_float64(torch, rng, d_model, d_state, d_conv, expand, L):
    fd.manual_seed(0)
    m = nn.Mamba(d_model, d_state=d_state, d_conv=d_conv, expand=expand, dtype=fd.float64)
    _perturb(m, rng)
    h = rng.standard_normal((2, L, d_model))
    fh = fd.tensor(h, requires_grad=True)
    tp = {k: torch.tensor(v.detach().numpy(), requires_grad=True) for k, v in m.state_dict().items()}
    th = torch.tensor(h, requires_grad=True)
    fo = m(fh)
    to = torch_mamba(torch, tp, th, d_state, m.dt_rank, d_conv)
    np.testing.assert_allclose(fo.detach().numpy(), to.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(tuple(to.shape))
    fo.backward(fd.tensor(g))
    to.backward(torch.tensor(g))
    np.testing.assert_allclose(fh.grad.numpy(), th.grad.numpy(), rtol=1e-9, atol=1e-11)
    for name, p in m.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tp[name].grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=name)


def test_mamba_init_follows_the_paper():
    fd.manual_seed(0)
    m = nn.Mamba(32, d_state=16, dt_min=0.001, dt_max=0.1)
    assert m.d_inner == 64 and m.dt_rank == 2
    names = [n for n, _ in m.named_parameters()]  # own parameters first, as torch
    assert names == ["A_log", "D", "in_proj.weight", "conv1d.weight", "conv1d.bias", "x_proj.weight",
                     "dt_proj.weight", "dt_proj.bias", "out_proj.weight"]
    np.testing.assert_allclose(m.A_log.detach().numpy(), np.log(np.tile(np.arange(1, 17), (64, 1))), rtol=1e-6)
    np.testing.assert_array_equal(m.D.detach().numpy(), np.ones(64))
    dt = np.log1p(np.exp(m.dt_proj.bias.detach().numpy().astype(np.float64)))  # softplus(bias) = dt
    assert dt.min() >= 0.001 * 0.999 and dt.max() <= 0.1 * 1.001 and np.log(dt).std() > 0.5
    std = 2 ** -0.5
    w = m.dt_proj.weight.detach().numpy()
    assert np.abs(w).max() <= std and w.std() > std / 3
    assert tuple(m.conv1d.weight.shape) == (64, 1, 4) and m.conv1d.padding == (3,) and m.conv1d.groups == 64


def _perturbed_lm(cls, rng, **kw):
    fd.manual_seed(0)
    m = cls(**kw).double()
    _perturb(m, rng, 0.2)
    return m


@pytest.mark.parametrize("kind", ["mamba", "hybrid", "gpt"])
def test_step_matches_full_forward_float64(rng, kind):
    kw = dict(vocab_size=13, d_model=12)
    if kind == "mamba":
        m = _perturbed_lm(MambaLM, rng, n_layer=2, d_state=5, **kw)
    else:
        m = _perturbed_lm(HybridLM, rng, pattern="mafm" if kind == "hybrid" else "afaf", n_head=3, d_state=5, **kw)
    idx = fd.tensor(rng.integers(0, 13, (3, 40)))
    with fd.no_grad():
        full = m(idx).numpy()
        state, outs = None, []
        for t in range(40):  # from the empty state; attention caches grow past their first size
            logits, state = m.step(idx[:, t], state)
            outs.append(logits.numpy())
        np.testing.assert_allclose(np.stack(outs, 1), full, rtol=1e-10, atol=1e-11)
        logits, state = m(idx[:, :6], return_state=True)  # parallel prefill, then steps
        outs = [logits.numpy()]
        for t in range(6, 40):
            logits, state = m.step(idx[:, t], state)
            outs.append(logits.numpy()[:, None])
        np.testing.assert_allclose(np.concatenate(outs, 1), full, rtol=1e-10, atol=1e-11)
        if kind == "mamba":  # O(1) state: a d_conv window and a (batch, d_inner, d_state) state per layer
            assert [tuple(s.shape) for s in state[0]] == [(3, 24, 4), (3, 24, 5)]


def test_generate_greedy_matches_repeated_forward(rng):
    m = _perturbed_lm(HybridLM, rng, vocab_size=9, d_model=8, pattern="ma", n_head=2, d_state=3)
    idx = fd.tensor(rng.integers(0, 9, (2, 5)))
    out = m.generate(idx, 7, temperature=0)
    assert tuple(out.shape) == (2, 12) and out.dtype == fd.int64
    seq = idx
    with fd.no_grad():
        for _ in range(7):
            seq = fd.cat([seq, m(seq)[:, -1].argmax(-1).unsqueeze(1)], 1)
    np.testing.assert_array_equal(out.numpy(), seq.numpy())
    fd.manual_seed(5)
    a = m.generate(idx, 6, temperature=1.0, top_k=1)  # top_k 1 is greedy too
    np.testing.assert_array_equal(a.numpy(), out.numpy()[:, :11])
    s = m.generate(idx, 20, temperature=1.5, top_k=4).numpy()
    assert s.min() >= 0 and s.max() < 9


def test_lm_tied_head_and_learns(rng):
    fd.manual_seed(0)
    m = MambaLM(7, 16, 2, d_state=4)
    assert m.lm_head.weight is m.embedding.weight
    assert len(list(m.parameters())) == len(dict(m.named_parameters()))
    assert not MambaLM(7, 16, 1, tie_embeddings=False).lm_head.weight is None
    seq = np.tile(np.arange(7), 6)  # a periodic sequence: the next token is determined
    x, y = fd.tensor(seq[None, :-1]), fd.tensor(seq[None, 1:])
    opt = fd.optim.AdamW(m.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss = nn.functional.cross_entropy(m(x).reshape(-1, 7), y.reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[0] > math.log(7) * 0.9 and losses[-1] < 0.3


def test_train_mamba_main(tmp_path, capsys):
    from fastdl.cli import main
    text = tmp_path / "t.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 60)
    assert main(["train", "--model", "mamba", "--data", str(text), "--steps", "30", "--context", "16",
                 "--batch-size", "8", "--d-model", "32", "--n-layer", "1", "--sample-tokens", "40",
                 "--out", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "val loss" in out and "sample:" in out
    losses = [float(line.split("train loss")[1].split()[0]) for line in out.splitlines() if "train loss" in line]
    assert len(losses) >= 2 and losses[-1] < losses[0]
    assert (tmp_path / "model.safetensors").exists()


def test_bench_mamba_lm_trains_like_torch(torch, monkeypatch):
    """The Mamba LM of `fastdl bench models` and its PyTorch twin (sequential scan) follow the
    same loss trajectory from the same weights (float32, a small size)."""
    from functools import partial

    from fastdl.bench import models
    small = partial(models._mamba_case, batch=3, ctx=12, vocab=11, d_model=16, layers=2, d_state=4)
    monkeypatch.setitem(models.MODELS, "mamba-small", (small, "AdamW", 1e-2))
    fs, ts = models.loss_trajectories("mamba-small", torch, 3)
    np.testing.assert_allclose(fs, ts, rtol=2e-4, atol=2e-5)
    assert fs[-1] < fs[0]
