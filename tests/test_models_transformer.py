"""fastdl.models' Transformers: the GPT against its PyTorch twin in float64 (logits and every
gradient), its KV cache against full forwards, cached greedy generation against recomputing
the window; each model learns: GPT on a tiny-shakespeare slice (and samples text), ViT on
scikit-learn's digits, BERT's masked-LM head on patterned sequences, DiT on denoising digits;
the DiT block against a float64 PyTorch reference; `fastdl train --model gpt` and
`fastdl generate`; the gpt and vit cases of `fastdl bench models` train like their twins."""
import os

import numpy as np
import pytest

import fastdl as fd
import fastdl.nn.functional as F
from fastdl.models import BERT, DiT, DiTBlock, GPT, ViT, mask_tokens

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAKESPEARE = os.path.join(ROOT, "..", "shared", "data", "tinyshakespeare.txt")


def _perturb(module, rng, scale=0.1):
    with fd.no_grad():
        for p in module.parameters():
            p.copy_(p + fd.tensor(rng.standard_normal(p.shape) * scale).to(p.dtype))


def _train(model, opt, loss_fn, steps):
    losses = []
    for i in range(steps):
        loss = loss_fn(i)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    return losses


def test_gpt_matches_torch_twin_float64(rng):
    torch = pytest.importorskip("torch")
    from fastdl.bench.models import _torch_gpt, copy_weights
    fd.manual_seed(0)
    f = GPT(11, block_size=9, n_layer=2, n_head=2, n_embd=16).double()
    assert f.lm_head.weight is f.wte.weight
    _perturb(f, rng)
    t = _torch_gpt(torch, 11, 9, 2, 2, 16).double()
    copy_weights(f, t, torch)
    idx = rng.integers(0, 11, (3, 8))
    fo, to = f(fd.tensor(idx)), t(torch.tensor(idx))
    np.testing.assert_allclose(fo.detach().numpy(), to.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(tuple(to.shape))
    fo.backward(fd.tensor(g))
    to.backward(torch.tensor(g))
    tp = dict(t.named_parameters())
    for name, p in f.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tp[name].grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=name)


def test_gpt_kv_cache_matches_full_forward(rng):
    fd.manual_seed(0)
    m = GPT(13, block_size=12, n_layer=2, n_head=2, n_embd=8, dtype=fd.float64).eval()
    idx = fd.tensor(rng.integers(0, 13, (2, 12)))
    with fd.no_grad():
        full = m(idx).numpy()
        cache = m.new_cache(2)
        parts = [m(idx[:, :5], cache), m(idx[:, 5:6], cache), m(idx[:, 6:9], cache), m(idx[:, 9:10], cache),
                 m(idx[:, 10:], cache)]
    np.testing.assert_allclose(np.concatenate([p.numpy() for p in parts], 1), full, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="block_size"):
        m(idx[:, :1], cache)
    with pytest.raises(ValueError, match="block_size"):
        m(fd.tensor(rng.integers(0, 13, (1, 13))))


def test_gpt_generate_cached_greedy_equals_recompute(rng):
    fd.manual_seed(0)
    m = GPT(7, block_size=6, n_layer=2, n_head=2, n_embd=8, dtype=fd.float64)
    _perturb(m, rng, 0.5)
    prompt = rng.integers(0, 7, (2, 3))
    out = m.generate(fd.tensor(prompt), 12, temperature=0.0).numpy()
    seq = prompt.copy()
    with fd.no_grad():
        for _ in range(12):  # nanoGPT's generate: full forward on the last block_size tokens
            nxt = m(fd.tensor(seq[:, -6:])).numpy()[:, -1].argmax(-1)
            seq = np.concatenate([seq, nxt[:, None]], 1)
    np.testing.assert_array_equal(out, seq)
    assert m.training  # generate restores the mode
    s = m.generate(fd.tensor(prompt), 9, temperature=1.0, top_k=2).numpy()
    assert s.shape == (2, 12) and s.min() >= 0 and s.max() < 7
    with pytest.raises(ValueError, match="top_k"):
        m.generate(fd.tensor(prompt), 3, top_k=0)


def test_gpt_learns_shakespeare_and_samples():
    if not os.path.exists(SHAKESPEARE):
        pytest.skip("../shared/data/tinyshakespeare.txt is absent")
    text = open(SHAKESPEARE, encoding="utf-8").read()[:50000]
    chars = sorted(set(text))
    data = np.array([chars.index(c) for c in text])
    fd.manual_seed(0)
    m = GPT(len(chars), block_size=32, n_layer=2, n_head=2, n_embd=48)
    opt = fd.optim.AdamW(m.param_groups(0.1), lr=3e-3)
    rng = np.random.default_rng(0)

    def loss_fn(i):
        s = rng.integers(0, len(data) - 33, 16)
        w = data[s[:, None] + np.arange(33)]
        return F.cross_entropy(m(fd.tensor(w[:, :-1])).reshape(-1, len(chars)), fd.tensor(w[:, 1:]).reshape(-1))
    losses = _train(m, opt, loss_fn, 80)
    assert losses[0] > 3.8 and np.mean(losses[-10:]) < 2.9, losses[::10]
    out = m.generate(fd.tensor(np.array([[chars.index("\n")]])), 60, temperature=0.8, top_k=10).numpy()[0]
    sample = "".join(chars[i] for i in out)
    assert len(sample) == 61 and " " in sample  # it has learned that words are separated by spaces


def _digits():
    sk = pytest.importorskip("sklearn.datasets")
    d = sk.load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    return x, d.target.astype(np.int64)


def test_vit_learns_digits():
    x, y = _digits()
    x = (x - 0.3) / 0.4
    fd.manual_seed(0)
    m = ViT(8, 4, 10, dim=32, depth=2, heads=4, channels=1)  # 4x4 patches: 4 tokens and [class]
    opt = fd.optim.AdamW(m.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    tr, te = np.arange(1400), np.arange(1400, len(y))

    def loss_fn(i):
        b = rng.choice(tr, 64, replace=False)
        return F.cross_entropy(m(fd.tensor(x[b])), fd.tensor(y[b]))
    losses = _train(m, opt, loss_fn, 60)
    m.eval()
    with fd.no_grad():
        acc = (m(fd.tensor(x[te])).numpy().argmax(1) == y[te]).mean()
    assert losses[-1] < 0.5 * losses[0] and acc > 0.75, (losses[::10], acc)
    with pytest.raises(ValueError, match="ViT"):
        m(fd.randn(2, 1, 7, 8))
    with pytest.raises(ValueError, match="divisible"):
        ViT(8, 3, 10, 16, 1, 2)


def test_bert_mlm_learns_and_ignores_padding(rng):
    V, T, MASK = 12, 10, 11  # rows of one repeated token 0..9; 10 = pad, 11 = [MASK]
    fd.manual_seed(0)
    m = BERT(V, hidden_size=32, num_layers=2, num_heads=4, max_position_embeddings=16, dropout=0.0)
    opt = fd.optim.AdamW(m.parameters(), lr=3e-3)

    def batch(n):  # a masked token can only be recovered by attending to the others
        return np.repeat(rng.integers(0, 10, (n, 1)), T, 1)

    def loss_fn(i):
        inp, lab = mask_tokens(batch(32), MASK, 10, rng, prob=0.2)
        return m.mlm_loss(fd.tensor(inp), fd.tensor(lab))
    losses = _train(m, opt, loss_fn, 80)
    assert np.mean(losses[:5]) > 2.0 and np.mean(losses[-5:]) < 1.0, losses[::10]
    # padding: with attention_mask 0 on the last 3 positions, what sits there does not matter
    m.eval()
    ids = rng.integers(0, 10, (4, T))
    am = np.ones_like(ids)
    am[:, -3:] = 0
    ids2 = ids.copy()
    ids2[:, -3:] = 10
    with fd.no_grad():
        a = m(fd.tensor(ids), attention_mask=fd.tensor(am)).numpy()
        b = m(fd.tensor(ids2), attention_mask=fd.tensor(am), token_type_ids=fd.zeros(4, T, dtype=fd.int64)).numpy()
        assert tuple(m.pool(fd.tensor(a)).shape) == (4, 32)
    np.testing.assert_allclose(a[:, :-3], b[:, :-3], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="attention_mask"):
        m(fd.tensor(ids), attention_mask=fd.ones(4, 3, dtype=fd.int64))


def _torch_dit_block(torch, p, x, c, heads):
    """DiT's block (adaLN-Zero) written out in torch functional ops over state dict p."""
    tF = torch.nn.functional
    D = x.shape[-1]
    mod = tF.linear(tF.silu(c), p["adaLN_modulation.1.weight"], p["adaLN_modulation.1.bias"])
    sm, cm, gm, sf, cf, gf = mod.chunk(6, dim=1)
    h = tF.layer_norm(x, (D,), eps=1e-6) * (1 + cm[:, None]) + sm[:, None]
    B, N = h.shape[:2]
    q, k, v = (t.reshape(B, N, heads, -1).transpose(1, 2)
               for t in tF.linear(h, p["attn.in_proj_weight"], p["attn.in_proj_bias"]).chunk(3, -1))
    a = torch.softmax(q @ k.transpose(-2, -1) / (D // heads) ** 0.5, -1) @ v
    a = tF.linear(a.transpose(1, 2).reshape(B, N, D), p["attn.out_proj.weight"], p["attn.out_proj.bias"])
    x = x + gm[:, None] * a
    h = tF.layer_norm(x, (D,), eps=1e-6) * (1 + cf[:, None]) + sf[:, None]
    h = tF.linear(tF.gelu(tF.linear(h, p["mlp.0.weight"], p["mlp.0.bias"]), approximate="tanh"),
                  p["mlp.2.weight"], p["mlp.2.bias"])
    return x + gf[:, None] * h


def test_dit_block_identity_at_init_and_matches_torch(rng):
    torch = pytest.importorskip("torch")
    fd.manual_seed(0)
    blk = DiTBlock(16, 4, mlp_ratio=2.0, dtype=fd.float64)
    x, c = rng.standard_normal((3, 5, 16)), rng.standard_normal((3, 16))
    with fd.no_grad():
        np.testing.assert_array_equal(blk(fd.tensor(x), fd.tensor(c)).numpy(), x)  # adaLN-Zero
    _perturb(blk, rng, 0.2)
    fx, fc = fd.tensor(x, requires_grad=True), fd.tensor(c, requires_grad=True)
    tp = {k: torch.tensor(v.detach().numpy(), requires_grad=True) for k, v in blk.state_dict().items()}
    tx, tc = torch.tensor(x, requires_grad=True), torch.tensor(c, requires_grad=True)
    fo, to = blk(fx, fc), _torch_dit_block(torch, tp, tx, tc, 4)
    np.testing.assert_allclose(fo.detach().numpy(), to.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(tuple(to.shape))
    fo.backward(fd.tensor(g))
    to.backward(torch.tensor(g))
    np.testing.assert_allclose(fx.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(fc.grad.numpy(), tc.grad.numpy(), rtol=1e-9, atol=1e-11)
    for name, p in blk.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tp[name].grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=name)


def test_dit_learns_to_denoise_digits():
    x, y = _digits()
    x = x * 2 - 1
    fd.manual_seed(0)
    m = DiT(input_size=8, patch_size=2, in_channels=1, hidden_size=32, depth=2, num_heads=4, num_classes=10)
    opt = fd.optim.AdamW(m.parameters(), lr=2e-3)
    rng = np.random.default_rng(0)
    abar = np.cos(np.linspace(0, 1, 101) * np.pi / 2) ** 2  # cosine noise schedule, 100 steps
    with fd.no_grad():  # adaLN-Zero: the untrained model predicts zero noise
        assert float(m(fd.tensor(x[:4]), fd.tensor([5.0] * 4), fd.tensor(y[:4])).abs().max().item()) == 0

    def loss_fn(i):
        b = rng.choice(len(y), 64, replace=False)
        t = rng.integers(1, 100, 64)
        eps = rng.standard_normal((64, 1, 8, 8)).astype(np.float32)
        a = abar[t].astype(np.float32)[:, None, None, None]
        xt = np.sqrt(a) * x[b] + np.sqrt(1 - a) * eps
        return F.mse_loss(m(fd.tensor(xt), fd.tensor(t.astype(np.float32)), fd.tensor(y[b])), fd.tensor(eps))
    losses = _train(m, opt, loss_fn, 60)
    assert abs(losses[0] - 1.0) < 0.15 and np.mean(losses[-10:]) < 0.6, losses[::10]
    with pytest.raises(ValueError, match="DiT"):
        m(fd.tensor(x[:2]), fd.tensor([1.0]), fd.tensor(y[:2]))


def test_train_gpt_main_and_generate(tmp_path, capsys):
    from fastdl.cli import main
    text = tmp_path / "t.txt"
    text.write_text("to be or not to be, that is the question. " * 80)
    assert main(["train", "--model", "gpt", "--data", str(text), "--steps", "40", "--context", "16",
                 "--batch-size", "8", "--d-model", "32", "--n-layer", "2", "--n-head", "2", "--lr", "3e-3",
                 "--eval-iters", "4", "--sample-tokens", "30", "--out", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "val loss" in out and "sample:" in out and "final val loss" in out
    losses = [float(line.split("val loss")[1].split()[0]) for line in out.splitlines() if "  val loss" in line]
    assert len(losses) >= 2 and losses[-1] < losses[0] - 0.5
    ckpt = tmp_path / "model.safetensors"
    assert main(["generate", "--checkpoint", str(ckpt), "--tokens", "25", "--prompt", "to be", "--temperature",
                 "0"]) == 0
    gen = capsys.readouterr().out
    assert gen.startswith("to be") and len(gen.rstrip("\n")) == 30 and set(gen.strip()) <= set(text.read_text())
    with pytest.raises(SystemExit, match="unknown"):
        main(["generate", "--checkpoint", str(ckpt), "--prompt", "XYZ"])
    with pytest.raises(SystemExit, match="no checkpoint"):
        main(["generate", "--checkpoint", str(tmp_path / "missing.safetensors")])


@pytest.mark.parametrize("name", ["gpt", "vit"])
def test_bench_models_gpt_vit_train_like_torch(name):
    torch = pytest.importorskip("torch")
    from fastdl.bench import models
    fs, ts = models.loss_trajectories(name, torch, 4)
    np.testing.assert_allclose(fs, ts, rtol=2e-4, atol=2e-5)
    assert fs[-1] < fs[0]


def test_gpt_lr_schedule_warmup_then_cosine():
    from fastdl.train.lm import lr_at
    lrs = [lr_at(s, 2000, 1e-3) for s in range(2001)]
    assert lrs[0] == pytest.approx(1e-3 / 101) and lrs[99] == pytest.approx(1e-3 * 100 / 101)
    assert lrs[100] == pytest.approx(1e-3) and lrs[2000] == pytest.approx(1e-4)
    assert all(a >= b for a, b in zip(lrs[100:], lrs[101:])) and all(a < b for a, b in zip(lrs[:99], lrs[1:100]))
