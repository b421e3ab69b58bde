"""Whole training steps of real models, fastdl against the same model in PyTorch eager, from
the same initial weights, interleaved step by step in one process. Each step is split into
forward (model + loss), backward and optimizer (step + zero_grad); the figures are medians
over steps and the ratio is PyTorch time / fastdl time (> 1: fastdl is faster).

    fastdl bench models [--steps N] [--only NAME[,NAME]] [--quick]

Models (each written once below against a framework handle, so both sides run the same code):
    mlp       784-256-256-10 MLP, batch 128, AdamW
    char-gpt  character-level GPT of ../shared/data/README.md: 4 layers, 4 heads, 128 wide,
              context 64, batch 12, vocab 65, AdamW; attention composed from q @ k^T, an
              additive causal mask, softmax and @ v (no fused attention)
"""
import math
import statistics
import time

import numpy as np

import fastdl as fd
from fastdl.bench.harness import try_torch


class _Framework:
    """The names a model needs, from either fastdl or torch."""

    def __init__(self, lib, nn, F, optim):
        self.lib, self.nn, self.F, self.optim = lib, nn, F, optim


def _fastdl():
    import fastdl.nn as nn
    import fastdl.nn.functional as F
    return _Framework(fd, nn, F, fd.optim)


def _torch(torch):
    return _Framework(torch, torch.nn, torch.nn.functional, torch.optim)


def build_mlp(fw, sizes=(784, 256, 256, 10)):
    nn = fw.nn
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def build_char_gpt(fw, vocab=65, ctx=64, width=128, heads=4, layers=4):
    """nanoGPT's block structure: pre-LayerNorm, composed causal self-attention, GELU MLP."""
    nn, F, lib = fw.nn, fw.F, fw.lib

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
            self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
            self.fc, self.out = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

        def attn(self, x, mask):
            B, T, C = x.shape
            q, k, v = self.qkv(x).split(C, dim=2)
            q = q.view(B, T, heads, C // heads).transpose(1, 2)
            k = k.view(B, T, heads, C // heads).transpose(1, 2)
            v = v.view(B, T, heads, C // heads).transpose(1, 2)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // heads)) + mask[:T, :T]
            y = F.softmax(att, dim=-1) @ v
            return self.proj(y.transpose(1, 2).contiguous().view(B, T, C))

        def forward(self, x, mask):
            x = x + self.attn(self.ln1(x), mask)
            return x + self.out(F.gelu(self.fc(self.ln2(x))))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok, self.pos = nn.Embedding(vocab, width), nn.Embedding(ctx, width)
            self.blocks = nn.ModuleList([Block() for _ in range(layers)])
            self.ln_f, self.head = nn.LayerNorm(width), nn.Linear(width, vocab)
            causal = np.triu(np.full((ctx, ctx), -np.inf, dtype=np.float32), 1)
            self.mask = lib.tensor(causal)

        def forward(self, idx):
            T = idx.shape[1]
            x = self.tok(idx) + self.pos(lib.arange(T))
            for b in self.blocks:
                x = b(x, self.mask)
            return self.head(self.ln_f(x))

    return GPT()


def _mlp_case(fw, rng_seed=0, batch=128):
    model = build_mlp(fw)
    rng = np.random.default_rng(rng_seed)
    x = fw.lib.tensor(rng.standard_normal((batch, 784)).astype(np.float32))
    y = fw.lib.tensor(rng.integers(0, 10, batch))
    return model, lambda m: fw.F.cross_entropy(m(x), y)


def _gpt_case(fw, rng_seed=0, batch=12, ctx=64):
    model = build_char_gpt(fw, ctx=ctx)
    rng = np.random.default_rng(rng_seed)
    idx = rng.integers(0, 65, (batch, ctx + 1))
    x, y = fw.lib.tensor(idx[:, :-1]), fw.lib.tensor(idx[:, 1:])
    return model, lambda m: fw.F.cross_entropy(m(x).reshape(-1, 65), y.reshape(-1))


MODELS = {"mlp": (_mlp_case, "AdamW", 1e-3), "char-gpt": (_gpt_case, "AdamW", 1e-3)}


def copy_weights(src, dst, torch):
    """fastdl model -> torch model, parameter by parameter (same names and layouts)."""
    sd = {k: torch.from_numpy(np.array(v.detach().numpy())) for k, v in src.state_dict().items()}
    missing = dst.load_state_dict(sd, strict=False)
    if missing.missing_keys:
        raise RuntimeError(f"bench models: weights missing in the torch model: {missing.missing_keys}")


def make_pair(name, torch):
    case, opt_name, lr = MODELS[name]
    fd.manual_seed(0)
    f_model, f_loss = case(_fastdl())
    t_model, t_loss = case(_torch(torch))
    copy_weights(f_model, t_model, torch)
    f_opt = getattr(fd.optim, opt_name)(f_model.parameters(), lr=lr)
    t_opt = getattr(torch.optim, opt_name)(t_model.parameters(), lr=lr)
    return (f_model, f_loss, f_opt), (t_model, t_loss, t_opt)


def _timed_step(model, loss_fn, opt):
    t0 = time.perf_counter()
    loss = loss_fn(model)
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    opt.step()
    opt.zero_grad()
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2, float(loss.item())


def run_model(name, torch, steps=60, warmup=5):
    f, t = make_pair(name, torch)
    rows = {"fastdl": [], "torch": []}
    for i in range(steps + warmup):
        for key, (m, lf, o) in (("fastdl", f), ("torch", t)) if i % 2 == 0 else (("torch", t), ("fastdl", f)):
            r = _timed_step(m, lf, o)
            if i >= warmup:
                rows[key].append(r)
    out = {}
    for key, rs in rows.items():
        fwd, bwd, opt = (statistics.median(r[j] for r in rs) for j in range(3))
        total = statistics.median(r[0] + r[1] + r[2] for r in rs)
        out[key] = {"forward": fwd, "backward": bwd, "optimizer": opt, "step": total, "loss": rs[-1][3]}
    return out


def main(argv=()):
    argv = list(argv)
    torch = try_torch()
    if torch is None:
        print("fastdl bench models: PyTorch is not installed; nothing to compare against")
        return
    torch.set_num_threads(fd.get_num_threads())
    steps = 12 if "--quick" in argv else 60
    if "--steps" in argv:
        steps = int(argv[argv.index("--steps") + 1])
    names = list(MODELS)
    if "--only" in argv:
        names = argv[argv.index("--only") + 1].split(",")
    print(f"training steps, {fd.get_num_threads()} threads, median of {steps} interleaved steps "
          f"(ratio = torch time / fastdl time)")
    for name in names:
        r = run_model(name, torch, steps=steps)
        print(f"  {name}  (loss after {steps + 5} steps: fastdl {r['fastdl']['loss']:.4f}, torch {r['torch']['loss']:.4f})")
        for part in ("step", "forward", "backward", "optimizer"):
            a, b = r["fastdl"][part], r["torch"][part]
            print(f"    {part:10s} fastdl {a * 1e3:8.3f} ms  torch {b * 1e3:8.3f} ms  {b / a:6.2f}x")
