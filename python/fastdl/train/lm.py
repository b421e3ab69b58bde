"""Character-level language modelling on a text file (tiny-shakespeare by default) with a Mamba
LM (`--model mamba`) or a Mamba/attention hybrid (`--model hybrid`): random windows of
`--context` characters, 90/10 train/val split (nanoGPT's char setup), AdamW, periodic train and
val loss over a few batches, then a sample generated with the recurrent state."""
import os
import time

import numpy as np

import fastdl as fd
from fastdl import nn, optim
from fastdl.models import HybridLM, MambaLM

DEFAULT_TEXT = os.path.join("..", "shared", "data", "tinyshakespeare.txt")


def load_text(path):
    if path is None:
        path = DEFAULT_TEXT
        if not os.path.exists(path):
            raise SystemExit(f"fastdl train: no --data given and {DEFAULT_TEXT} is absent; pass --data FILE.txt")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = np.fromiter((stoi[c] for c in text), dtype=np.int64, count=len(text))
    return path, chars, data


def _batch(data, rng, batch, ctx):
    start = rng.integers(0, len(data) - ctx - 1, batch)
    win = np.stack([data[s:s + ctx + 1] for s in start])
    return fd.tensor(win[:, :-1]), fd.tensor(win[:, 1:])


def _loss(model, x, y):
    logits = model(x)
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def main_lm(args):
    t0 = time.perf_counter()
    path, chars, data = load_text(args.data)
    ctx, batch, steps = args.context, args.batch_size or 16, args.steps
    n = int(0.9 * len(data))
    train, val = data[:n], data[n:]
    if len(val) <= ctx + 1 or len(train) <= ctx + 1:
        raise SystemExit(f"fastdl train: {path} is too short for context {ctx}")
    fd.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    V = len(chars)
    if args.model == "mamba":
        model = MambaLM(V, args.d_model, args.n_layer)
    else:
        model = HybridLM(V, args.d_model, pattern=args.pattern or ("mma" * args.n_layer)[:args.n_layer], n_head=4)
    lr = args.lr if args.lr is not None else 2e-3
    opt = optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1), eta_min=lr / 10)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"fastdl train: {args.model} LM on {path} ({len(data)} chars, vocab {V}), {n_params / 1e6:.2f}M "
          f"parameters, context {ctx}, batch {batch}, {steps} steps, AdamW lr={lr:g}, seed {args.seed}")

    def evaluate(split, iters=8):
        model.eval()
        er = np.random.default_rng(1000 + args.seed)  # the same windows at every evaluation
        with fd.no_grad():
            loss = float(np.mean([_loss(model, *_batch(split, er, batch, ctx)).item() for _ in range(iters)]))
        model.train()
        return loss

    every, spent = max(steps // 5, 1), 0.0
    for step in range(steps + 1):
        if step % every == 0 or step == steps:
            print(f"step {step:5d}  train loss {evaluate(train):.4f}  val loss {evaluate(val):.4f}  "
                  f"({spent / max(step, 1) * 1e3:.0f} ms/train step)", flush=True)
        if step == steps:
            break
        ts = time.perf_counter()
        loss = _loss(model, *_batch(train, rng, batch, ctx))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        sched.step()
        spent += time.perf_counter() - ts
    model.eval()
    prompt = fd.tensor(data[n:n + 1][None])  # one character of the val text
    tg = time.perf_counter()
    out = model.generate(prompt, args.sample_tokens, temperature=0.8, top_k=20)
    tg = time.perf_counter() - tg
    sample = "".join(chars[i] for i in out.numpy()[0])
    print(f"sample: ({args.sample_tokens} tokens, {args.sample_tokens / tg:.0f} tokens/s)\n{sample}")
    os.makedirs(args.out, exist_ok=True)
    ckpt = os.path.join(args.out, "model.safetensors")
    fd.save(model.state_dict(), ckpt)
    print(f"checkpoint: {ckpt}")
    print(f"time: {time.perf_counter() - t0:.1f}s")
    return 0
