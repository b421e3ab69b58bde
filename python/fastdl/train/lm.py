"""Character-level language modelling on a text file (tiny-shakespeare by default) with a GPT
(`--model gpt`, the character-level GPT of ../shared/data/README.md), a Mamba LM (`--model
mamba`), a Mamba/attention hybrid (`--model hybrid`) or an LSTM / GRU LM (`--model lstm|gru`,
2 layers of 256, char-rnn style): random windows of `--context`
characters, 90/10 train/val split (nanoGPT's char setup), AdamW, a progress bar, periodic
train and val loss over fixed batches, a generated sample, and a checkpoint that
`fastdl generate --checkpoint PATH` samples from.

The GPT follows nanoGPT's shakespeare_char recipe (CPU configuration): 4 layers, 4 heads, 128
wide, context 64, batch 12, 2000 iterations, no dropout, AdamW (lr 1e-3, betas 0.9/0.99, weight
decay 0.1 on matrices and embeddings), 100 warm-up steps then cosine decay to 1e-4, gradient
clipping at 1.

Under `mpirun -n N` (fastdl.train.parallel) the model trains data-parallel: each rank draws its
own batches (its random stream seeded with its rank; --batch-size is per rank), gradients are
averaged by DistributedDataParallel, the train / val loss estimates are shared out over the
ranks and averaged, and rank 0 alone prints, shows progress, samples, saves and plots."""
import argparse
import math
import os
import sys
import time

import numpy as np

import fastdl as fd
from fastdl import nn, optim
from fastdl.models import GPT, HybridLM, MambaLM, RNNLM

DEFAULT_TEXT = os.path.join("..", "shared", "data", "tinyshakespeare.txt")
DEFAULTS = {"gpt": dict(steps=2000, batch=12, lr=1e-3), "mamba": dict(steps=300, batch=16, lr=2e-3),
            "hybrid": dict(steps=300, batch=16, lr=2e-3),
            "lstm": dict(steps=1000, batch=32, lr=3e-3, d_model=256, n_layer=2),
            "gru": dict(steps=1000, batch=32, lr=3e-3, d_model=256, n_layer=2)}


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


def get_batch(data, rng, batch, ctx):
    """`batch` random windows of ctx + 1 characters -> (inputs, targets) int64 arrays."""
    start = rng.integers(0, len(data) - ctx - 1, batch)
    win = data[start[:, None] + np.arange(ctx + 1)]
    return win[:, :-1], win[:, 1:]


def _batch(data, rng, batch, ctx):
    x, y = get_batch(data, rng, batch, ctx)
    return fd.tensor(x), fd.tensor(y)


def _loss(model, x, y):
    logits = model(x)
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def lr_at(step, steps, lr, warmup=100, min_lr=None):
    """nanoGPT's schedule: linear warm-up over `warmup` steps, then cosine decay to min_lr
    (lr / 10) at `steps`."""
    min_lr = lr / 10 if min_lr is None else min_lr
    if step < warmup:
        return lr * (step + 1) / (warmup + 1)
    if step >= steps:
        return min_lr
    ratio = (step - warmup) / max(steps - warmup, 1)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - min_lr)


def build_model(kind, config):
    if kind == "gpt":
        return GPT(**config)
    if kind == "mamba":
        return MambaLM(config["vocab_size"], config["d_model"], config["n_layer"])
    if kind == "hybrid":
        return HybridLM(config["vocab_size"], config["d_model"], pattern=config["pattern"], n_head=config["n_head"])
    if kind in ("lstm", "gru"):
        return RNNLM(**config)
    raise ValueError(f"fastdl: unknown language model kind {kind!r} (gpt, mamba, hybrid, lstm, gru)")


def _say(bar, msg):
    (bar.write if hasattr(bar, "write") else print)(msg)
    sys.stdout.flush()


def main_lm(args):
    from fastdl.train import parallel
    from fastdl.train.fit import _progress
    t0 = time.perf_counter()
    path, chars, data = load_text(args.data)
    d = DEFAULTS[args.model]
    args.d_model = args.d_model or d.get("d_model", 128)
    args.n_layer = args.n_layer or d.get("n_layer", 4)
    ctx, batch = args.context, args.batch_size or d["batch"]
    steps = args.steps if args.steps is not None else d["steps"]
    n = int(0.9 * len(data))
    train, val = data[:n], data[n:]
    if len(val) <= ctx + 1 or len(train) <= ctx + 1:
        raise SystemExit(f"fastdl train: {path} is too short for context {ctx}")
    fd.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    V = len(chars)
    if args.model == "gpt":
        config = dict(vocab_size=V, block_size=ctx, n_layer=args.n_layer, n_head=args.n_head, n_embd=args.d_model,
                      dropout=args.dropout)
    elif args.model in ("lstm", "gru"):
        config = dict(vocab_size=V, d_model=args.d_model, n_layer=args.n_layer, cell=args.model, dropout=args.dropout)
    elif args.model == "mamba":
        config = dict(vocab_size=V, d_model=args.d_model, n_layer=args.n_layer)
    else:
        config = dict(vocab_size=V, d_model=args.d_model, n_head=args.n_head,
                      pattern=args.pattern or ("mma" * args.n_layer)[:args.n_layer])
    model = build_model(args.model, config)
    net = parallel.wrap(model)  # data-parallel: DistributedDataParallel, rank 0's initial weights
    rank, world = parallel.rank(), parallel.world()
    if rank:  # its own batches and dropout masks
        rng = np.random.default_rng(parallel.rank_seed(args.seed))
        fd.manual_seed(parallel.rank_seed(args.seed))
    lr = args.lr if args.lr is not None else d["lr"]
    if args.model == "gpt":
        opt = optim.AdamW(model.param_groups(0.1), lr=lr, betas=(0.9, 0.99))
        sched = None
    else:
        opt = optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)
        sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1), eta_min=lr / 10)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"fastdl train: {args.model} LM on {path} ({len(data)} chars, vocab {V}), {n_params / 1e6:.2f}M "
          f"parameters, context {ctx}, batch {batch}, {steps} steps, AdamW lr={lr:g}, seed {args.seed}"
          f"{parallel.describe()}", flush=True)

    def evaluate(split, iters):
        """Mean loss over `iters` batches (the same windows at every evaluation); data-parallel,
        rank r takes batches r, r + N, ... from its own stream and the ranks average."""
        model.eval()
        er = np.random.default_rng(parallel.rank_seed(1000 + args.seed))
        mine = len(range(rank, iters, world))
        with fd.no_grad():
            losses = [_loss(model, *_batch(split, er, batch, ctx)).item() for _ in range(mine)]
        model.train()
        if world == 1:
            return float(np.mean(losses))
        total, count = parallel.all_sum([float(np.sum(losses)), float(len(losses))])
        return total / max(count, 1.0)

    every, spent, eval_iters = max(steps // 5, 1), 0.0, args.eval_iters

    from fastdl.train.fit import History
    hist = History()  # train / val loss at every report, for the loss-curve plot

    def report(step):
        val_loss, train_loss = evaluate(val, eval_iters), evaluate(train, eval_iters)
        _say(bar, f"step {step:5d}  train loss {train_loss:.4f}  val loss {val_loss:.4f}  "
                  f"({spent / max(step, 1) * 1e3:.1f} ms/train step)")
        hist.append(step, {"loss": train_loss, "val_loss": val_loss})
        return val_loss

    prof = None
    if getattr(args, "profile", 0):  # --profile: the op table of a few training steps
        from fastdl.train.main import _StepProfiler
        prof = _StepProfiler(args.profile)
    bar = _progress(range(steps), steps, f"train {args.model}", not args.no_progress and rank == 0)
    window = range(1, 3 + args.profile) if prof is not None else range(0)  # profiled steps: no evaluation in them
    for step in bar:
        if step % every == 0 and step not in window:
            report(step)
        ts = time.perf_counter()
        if sched is None:
            for g in opt.param_groups:
                g["lr"] = lr_at(step, steps, lr)
        loss = _loss(net, *_batch(train, rng, batch, ctx))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        if sched is not None:
            sched.step()
        spent += time.perf_counter() - ts
        if prof is not None:
            prof.on_batch_end(step, None)
        if step % 10 == 0 and hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{loss.item():.3f}")
    if hasattr(bar, "close"):
        bar.close()
    if prof is not None:
        prof.on_train_end(None)
        if rank == 0:
            prof.report()
    val_loss = report(steps)
    train_time = spent
    if rank:  # rank 0 alone samples, saves and plots
        return 0
    model.eval()
    prompt = fd.tensor(data[n:n + 1][None])  # one character of the val text
    tg = time.perf_counter()
    out = model.generate(prompt, args.sample_tokens, temperature=0.8, top_k=20)
    tg = time.perf_counter() - tg
    sample = "".join(chars[i] for i in out.numpy()[0])
    print(f"sample: ({args.sample_tokens} tokens, {args.sample_tokens / tg:.0f} tokens/s)\n{sample}")
    os.makedirs(args.out, exist_ok=True)
    ckpt = os.path.join(args.out, "model.safetensors")
    save_checkpoint(ckpt, args.model, config, chars, model)
    print(f"final val loss: {val_loss:.4f}")
    print(f"loss plot: {_plot_losses(hist, os.path.join(args.out, 'loss.png'))}")
    print(f"checkpoint: {ckpt}  (sample more: fastdl generate --checkpoint {ckpt})")
    print(f"time: {time.perf_counter() - t0:.1f}s ({train_time:.1f}s in {steps} training steps)")
    return 0


def _plot_losses(hist, path):
    """Train / val loss against the step (matplotlib when installed, else the built-in PNG)."""
    from fastdl.train import plot_history
    from fastdl.train.images import save_curves
    shifted = type(hist)()  # plot_history numbers points from epoch + 1: give it step - 1
    for step, tl, vl in zip(hist.epoch, hist.history["loss"], hist.history["val_loss"]):
        shifted.append(step - 1, {"loss": tl, "val_loss": vl})
    return plot_history(shifted, path) or save_curves(hist.history, path, xlabel="step")


def save_checkpoint(path, kind, config, chars, model):
    fd.save({"kind": kind, "config": config, "chars": "".join(chars), "model": model.state_dict()}, path)


def load_checkpoint(path):
    """-> (model in eval mode, chars) from a checkpoint of `fastdl train --model gpt|mamba|hybrid|lstm|gru`."""
    obj = fd.load(path)
    if not isinstance(obj, dict) or not {"kind", "config", "chars", "model"} <= set(obj):
        raise ValueError(f"fastdl generate: {path} is not a language-model checkpoint of `fastdl train --model "
                         f"gpt|mamba|hybrid|lstm|gru` (keys {sorted(obj) if isinstance(obj, dict) else type(obj).__name__})")
    model = build_model(obj["kind"], obj["config"])
    model.load_state_dict(obj["model"])
    return model.eval(), list(obj["chars"])


def _generate_parser():
    p = argparse.ArgumentParser(prog="fastdl generate",
                                description="Sample text from a checkpoint of `fastdl train --model gpt|mamba|hybrid|lstm|gru`.")
    p.add_argument("--checkpoint", default=os.path.join("fastdl_out", "model.safetensors"))
    p.add_argument("--tokens", type=int, default=500, help="characters to generate (default 500)")
    p.add_argument("--temperature", type=float, default=0.8, help="0 for greedy (default 0.8)")
    p.add_argument("--top-k", type=int, default=None, help="sample among the k most likely characters")
    p.add_argument("--prompt", default="\n", help="text to continue (default a newline)")
    p.add_argument("--num-samples", type=int, default=1)
    p.add_argument("--seed", type=int, default=None)
    return p


def main_generate(argv=None):
    args = _generate_parser().parse_args(argv)
    if not os.path.exists(args.checkpoint):
        raise SystemExit(f"fastdl generate: no checkpoint at {args.checkpoint}; train one with "
                         f"`fastdl train --model gpt` or pass --checkpoint PATH")
    if args.tokens < 0 or args.temperature < 0 or (args.top_k is not None and args.top_k < 1):
        raise SystemExit("fastdl generate: --tokens and --temperature must be >= 0 and --top-k >= 1")
    model, chars = load_checkpoint(args.checkpoint)
    stoi = {c: i for i, c in enumerate(chars)}
    bad = sorted(set(args.prompt) - set(stoi))
    if not args.prompt or bad:
        raise SystemExit(f"fastdl generate: the prompt must be non-empty and use the checkpoint's characters; "
                         f"unknown: {bad}")
    if args.seed is not None:
        fd.manual_seed(args.seed)
    prompt = fd.tensor(np.array([[stoi[c] for c in args.prompt]] * args.num_samples, dtype=np.int64))
    t = time.perf_counter()
    out = model.generate(prompt, args.tokens, temperature=args.temperature, top_k=args.top_k).numpy()
    t = time.perf_counter() - t
    for i, row in enumerate(out):
        if args.num_samples > 1:
            print(f"--- sample {i + 1}")
        print("".join(chars[j] for j in row))
    print(f"({args.tokens * args.num_samples} tokens in {t:.2f}s, {args.tokens * args.num_samples / max(t, 1e-9):.0f} "
          f"tokens/s)", file=sys.stderr)
    return 0
