"""conv3d / conv_transpose3d / max_pool3d forward + backward vs PyTorch, interleaved in one
process (fastdl.bench.harness.interleaved), float32, at a small video / volume shape.

    python bench/conv3d.py [--threads N]

Zen 3, 2 threads, quiet machine: conv3d k3 p1 45 ms vs torch 95 ms (2.1x), conv_transpose3d k3
s2 141 ms vs 168 ms (1.19x), max_pool3d k3 s2 8.9 ms vs 10.7 ms (1.2x)."""
import argparse

import numpy as np

import fastdl as fd
import fastdl.nn.functional as F
from fastdl.bench.harness import fmt_time, interleaved


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
        fd.set_num_threads(args.threads) if hasattr(fd, "set_num_threads") else None
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 16, 16, 32, 32)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3, 3)).astype(np.float32) * 0.1
    b = rng.standard_normal(16).astype(np.float32)
    fx, fw, fb = (fd.tensor(a).requires_grad_(True) for a in (x, w, b))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))

    def fd_conv():
        F.conv3d(fx, fw, fb, 1, 1).sum().backward()

    def t_conv():
        torch.nn.functional.conv3d(tx, tw, tb, 1, 1).sum().backward()

    def fd_convt():
        F.conv_transpose3d(fx, fw, fb, 2, 1, 1).sum().backward()

    def t_convt():
        torch.nn.functional.conv_transpose3d(tx, tw, tb, 2, 1, 1).sum().backward()

    def fd_pool():
        F.max_pool3d(fx, 3, 2, 1).sum().backward()

    def t_pool():
        torch.nn.functional.max_pool3d(tx, 3, 2, 1).sum().backward()

    cases = {"conv3d": (fd_conv, t_conv), "conv_transpose3d s2": (fd_convt, t_convt), "max_pool3d k3s2": (fd_pool, t_pool)}
    for name, (f, t) in cases.items():
        r = interleaved({"fastdl": f, "torch": t}, rounds=args.rounds, target_s=0.2, warmup=1)
        print(f"{name:22s} (2,16,16,32,32) f32 fwd+bwd: fastdl {fmt_time(r['fastdl'])}  torch {fmt_time(r['torch'])}"
              f"  ratio torch/fastdl {r['torch'] / r['fastdl']:.2f}x")


if __name__ == "__main__":
    main()
