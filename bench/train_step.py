"""One training step (forward, cross entropy, backward, optimizer step, zero_grad), fastdl
against PyTorch eager in the same process, interleaved, median of repeats:

  big:  MLP 784-256-256-10, batch 128, AdamW   (bar: fastdl >= 1.2x PyTorch's speed)
  tiny: MLP 64-128-10, batch 32, Adam          (bar: >= 3x; overhead-bound)
  --rss: 10,000 tiny steps, resident memory growth after warm-up (bar: < 2%)

    PYTHONPATH=python python3 bench/train_step.py [--repeats 7] [--steps 200] [--rss]
"""
import argparse
import statistics
import sys
import time

import numpy as np

import fastdl as fd
from fastdl import nn, optim
import fastdl.nn.functional as F


def _fd_setup(sizes, batch, opt_name, seed=0):
    fd.manual_seed(seed)
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    opt = getattr(optim, opt_name)(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed)
    x = fd.tensor(rng.standard_normal((batch, sizes[0])).astype(np.float32))
    y = fd.tensor(rng.integers(0, sizes[-1], batch))

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return step


def _torch_setup(torch, sizes, batch, opt_name, seed=0):
    torch.manual_seed(seed)
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = getattr(torch.optim, opt_name)(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.standard_normal((batch, sizes[0])).astype(np.float32))
    y = torch.tensor(rng.integers(0, sizes[-1], batch))

    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return step


def _time(step, n):
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - t0) / n


def python_calls_per_step(step):
    """Python-level function calls (and C calls made from Python) during one step."""
    counts = {"call": 0, "c_call": 0}

    def prof(frame, event, arg):
        if event in counts:
            counts[event] += 1
    step()
    sys.setprofile(prof)
    step()
    sys.setprofile(None)
    return counts


def compare(name, sizes, batch, opt_name, repeats, steps, bar):
    import torch
    f, t = _fd_setup(sizes, batch, opt_name), _torch_setup(torch, sizes, batch, opt_name)
    for s in (f, t):
        _time(s, max(steps // 5, 5))  # warm-up: caches, allocator, thread pool
    tf, tt = [], []
    for _ in range(repeats):  # interleaved
        tf.append(_time(f, steps))
        tt.append(_time(t, steps))
    mf, mt = statistics.median(tf), statistics.median(tt)
    calls = python_calls_per_step(f)
    ratio = mt / mf
    print(f"{name:5s} {'-'.join(map(str, sizes))} batch {batch} {opt_name}: fastdl {mf * 1e6:8.1f} us  "
          f"torch {mt * 1e6:8.1f} us  speed ratio {ratio:5.2f}x (bar {bar}x) {'PASS' if ratio >= bar else 'FAIL'}"
          f"  | python calls/step: {calls['call']} py + {calls['c_call']} C")
    return ratio


def rss_check(steps=10000):
    import resource  # noqa: F401
    step = _fd_setup([64, 128, 10], 32, "Adam")

    def rss():
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * 4096
    for _ in range(500):
        step()
    r0 = rss()
    for _ in range(steps):
        step()
    r1 = rss()
    growth = (r1 - r0) / r0 * 100
    print(f"rss   {steps} tiny steps: {r0 / 2**20:.1f} MiB -> {r1 / 2**20:.1f} MiB, growth {growth:+.2f}% (bar < 2%) "
          f"{'PASS' if growth < 2 else 'FAIL'}")
    return growth


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--rss", action="store_true", help="also run the 10,000-step memory check")
    a = p.parse_args(argv)
    print(f"fastdl threads {fd.get_num_threads()}  isa {fd._C.cpu_isa()}")
    try:
        import torch
        print(f"torch {torch.__version__} threads {torch.get_num_threads()}")
        compare("big", [784, 256, 256, 10], 128, "AdamW", a.repeats, max(a.steps // 4, 10), 1.2)
        compare("tiny", [64, 128, 10], 32, "Adam", a.repeats, a.steps * 4, 3.0)
    except ImportError:
        print("torch is not installed: no comparison")
    if a.rss:
        rss_check()


if __name__ == "__main__":
    main()
