"""Per-op overhead: `a + b` on 1-element float32 tensors, without and with requires_grad.
Bars (issue 2): fastdl <= 1/3 of PyTorch's eager time; with requires_grad <= 1/2."""
import numpy as np

import fastdl as fd
from fastdl.bench.harness import fmt_time, interleaved, try_torch


def main(argv=()):
    torch = try_torch()
    a, b = fd.ones(1), fd.ones(1)
    na, nb = np.ones(1, np.float32), np.ones(1, np.float32)
    cases = {"fastdl a+b": lambda: a + b, "numpy a+b": lambda: na + nb}
    ga, gb = fd.ones(1, requires_grad=True), fd.ones(1, requires_grad=True)
    cases["fastdl a+b (grad)"] = lambda: ga + gb
    if torch is not None:
        torch.set_num_threads(fd.get_num_threads())
        ta, tb = torch.ones(1), torch.ones(1)
        tga, tgb = torch.ones(1, requires_grad=True), torch.ones(1, requires_grad=True)
        cases["torch a+b"] = lambda: ta + tb
        cases["torch a+b (grad)"] = lambda: tga + tgb
    t = interleaved(cases, rounds=21, target_s=0.02)
    print("per-op overhead, 1-element float32 (median of interleaved rounds)")
    for k, v in t.items():
        print(f"  {k:22s} {fmt_time(v)}")
    print(f"  fastdl / numpy                 {t['fastdl a+b'] / t['numpy a+b']:.2f}x")
    if torch is not None:
        r = t["fastdl a+b"] / t["torch a+b"]
        rg = t["fastdl a+b (grad)"] / t["torch a+b (grad)"]
        print(f"  fastdl / torch                 {r:.2f}x   (bar <= 0.33)  {'PASS' if r <= 1 / 3 else 'MISS'}")
        print(f"  fastdl / torch, requires_grad  {rg:.2f}x   (bar <= 0.50)  {'PASS' if rg <= 0.5 else 'MISS'}")
    return t
