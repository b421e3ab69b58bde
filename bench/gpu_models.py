"""Whole training steps on a CUDA GPU, fastdl against the same model in PyTorch, from the same
initial weights, interleaved step by step in one process; each step ends in a device
synchronize, so the times are wall times of complete steps. Also checks that both sides
compute the same first losses (the forward matches) and that fastdl's loss falls.

    PYTHONPATH=python python3 bench/gpu_models.py [--steps 30] [--only gpt,resnet18] [--device cpu]

Models (those of `fastdl bench models`, with its optimizers): mlp (784-256-256-10, batch 128),
gpt (nanoGPT shakespeare-char size: 6 layers, 6 heads, 384 wide, context 256, batch 64, vocab 65),
gpt-small (the CPU bench's 4x4x128, context 64, batch 12), resnet18 (batch 32 of 3x64x64, SGD),
lstm-lm (hidden 256, batch 32, sequence 64).
Ratio: PyTorch step time / fastdl step time (> 1: fastdl is faster).
"""
import argparse
import statistics
import sys
import time

import numpy as np

import fastdl as fd
from fastdl.bench import models as M


DEVICE = "cuda"


def _sync(lib):
    if DEVICE == "cuda":
        (fd.cuda.synchronize if lib is fd else lib.cuda.synchronize)()


# name -> (the CPU bench's model entry, its keyword overrides; (input shape, classes) of a batch).
# Models come from fastdl.bench.models (the same builders and PyTorch twins as `fastdl bench
# models`); the batches are drawn here, on the device.
CASES = {
    "mlp": ("mlp", {}, ((128, 784), 10)),
    "gpt-small": ("gpt", {}, ((12, 64), 65)),
    "gpt": ("gpt", dict(ctx=256, width=384, heads=6, layers=6), ((64, 256), 65)),
    "resnet18": ("resnet18", {}, ((32, 3, 64, 64), 10)),
    "lstm-lm": ("lstm-lm", {}, ((32, 64), 65)),
}


def _model(name, fw):
    entry, kw, _ = CASES[name]
    if entry == "gpt":
        return M.build_gpt(fw, **kw)
    return M.MODELS[entry][0](fw)[0]  # the entry's case builds (model, loss on a CPU batch)


def _loss(name, fw, dev, rng):
    """Cross entropy on one batch drawn on dev: token sequences (next-token targets) for the
    language models, a float input and class labels for the others."""
    lib, F = fw.lib, fw.F
    _, _, (shape, classes) = CASES[name]
    if name in ("gpt", "gpt-small", "lstm-lm"):
        idx = rng.integers(0, classes, (shape[0], shape[1] + 1))
        x, y = lib.tensor(idx[:, :-1], device=dev), lib.tensor(idx[:, 1:], device=dev)
        return lambda m: F.cross_entropy(m(x).reshape(-1, classes), y.reshape(-1))
    x = lib.tensor(rng.standard_normal(shape).astype(np.float32), device=dev)
    y = lib.tensor(rng.integers(0, classes, shape[0]), device=dev)
    return lambda m: F.cross_entropy(m(x), y)


def _pair(name, torch):
    fd.manual_seed(0)
    f_model, t_model = _model(name, M._fastdl()), _model(name, M._torch(torch))
    M.copy_weights(f_model, t_model, torch)
    f_model.to(DEVICE)
    t_model.to(DEVICE)
    f_loss = _loss(name, M._fastdl(), DEVICE, np.random.default_rng(1))
    t_loss = _loss(name, M._torch(torch), DEVICE, np.random.default_rng(1))
    _, opt, lr = M.MODELS[CASES[name][0]]
    return ((f_model, f_loss, getattr(fd.optim, opt)(f_model.parameters(), lr=lr), fd),
            (t_model, t_loss, getattr(torch.optim, opt)(t_model.parameters(), lr=lr), torch))


def _step(model, loss_fn, opt, lib):
    _sync(lib)
    t0 = time.perf_counter()
    loss = loss_fn(model)
    loss.backward()
    opt.step()
    opt.zero_grad()
    _sync(lib)
    return time.perf_counter() - t0, float(loss.item())


def run(name, torch, steps):
    f, t = _pair(name, torch)
    times, losses = {"fastdl": [], "torch": []}, {"fastdl": [], "torch": []}
    for i in range(steps + 3):
        order = (("fastdl", f), ("torch", t)) if i % 2 == 0 else (("torch", t), ("fastdl", f))
        for key, side in order:
            dt, loss = _step(*side)
            losses[key].append(loss)
            if i >= 3:
                times[key].append(dt)
    ft, tt = statistics.median(times["fastdl"]), statistics.median(times["torch"])
    l0f, l0t = losses["fastdl"][0], losses["torch"][0]
    same_start = abs(l0f - l0t) <= 2e-3 * max(1.0, abs(l0t))
    falls = losses["fastdl"][-1] < losses["fastdl"][0]
    print(f"{name:<10}{ft * 1e3:>11.2f}{tt * 1e3:>11.2f}{tt / ft:>8.2f}   loss0 {l0f:.4f} / {l0t:.4f}"
          f" {'same' if same_start else 'DIFFERENT'}   last {losses['fastdl'][-1]:.4f} / {losses['torch'][-1]:.4f}"
          f" {'falls' if falls else 'DOES NOT FALL'}", flush=True)
    return same_start and falls


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--only", default="mlp,gpt-small,gpt,resnet18,lstm-lm")
    ap.add_argument("--device", default="cuda", help="cpu: a dry run of the script without a GPU")
    a = ap.parse_args(argv)
    global DEVICE
    DEVICE = a.device
    import torch
    if DEVICE == "cuda" and not (fd.cuda.is_available() and torch.cuda.is_available()):
        print("gpu_models: needs CUDA in both fastdl and PyTorch")
        return 1
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    print(f"{'model':<10}{'fastdl ms':>11}{'torch ms':>11}{'ratio':>8}")
    ok = True
    for name in a.only.split(","):
        try:
            ok &= run(name, torch, a.steps)
        except Exception as e:  # one model's failure must not hide the others' figures
            ok = False
            print(f"{name:<10} FAIL {type(e).__name__}: {str(e)[:300]}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
