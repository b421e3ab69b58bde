"""Per-op overhead: `a + b` on 1-element float32 tensors, without and with requires_grad.
Bars (issue 2): fastdl <= 1/3 of PyTorch's eager time; with requires_grad <= 1/2.

`--busy`: small parallel ops (a 1024 x 256 matvec and a 64k-element exp, each threaded on an
idle machine) while one spinning process per core keeps every core busy, fastdl and PyTorch on
the thread count in force and on one thread. A fork-join that waits for every worker to be
scheduled pays a scheduler slice per op there; fastdl's pool lets the caller take the chunks of
a worker that is not running.

`--idle`: small parallel ops, each timed right after 10 ms of idling (the pool's workers have gone
to sleep, as between the ops of a training step that waits on data or Python): fastdl on the
thread count in force and on one thread, and PyTorch. A pool whose woken workers start late, or
queue behind the caller, makes the threaded op slower than the one-thread op here.

    fastdl bench overhead [--busy | --idle [--quick]]"""
import os
import subprocess
import sys
import time

import numpy as np

import fastdl as fd
from fastdl.bench.harness import fmt_time, interleaved, try_torch


def main(argv=()):
    if "--busy" in argv:
        return busy()
    if "--idle" in argv:
        return idle(samples=5 if "--quick" in argv else 41)
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


def busy(calls=200):
    torch = try_torch()
    nt = fd.get_num_threads()
    rng = np.random.default_rng(0)
    w, x, v = rng.standard_normal((1024, 256)), rng.standard_normal((1, 256)), rng.standard_normal(1 << 16)
    libs = {"fastdl": (fd, fd.tensor(w, dtype=fd.float32), fd.tensor(x, dtype=fd.float32), fd.tensor(v, dtype=fd.float32))}
    if torch is not None:
        libs["torch"] = (torch, torch.tensor(w, dtype=torch.float32), torch.tensor(x, dtype=torch.float32),
                         torch.tensor(v, dtype=torch.float32))
    spin = "import time\nt = time.time()\nwhile time.time() - t < 120: pass\n"
    hogs = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(os.cpu_count() or 2)]
    print(f"small ops with {len(hogs)} spinning processes on {os.cpu_count()} cores: ms per op (median of 5)")
    try:
        time.sleep(0.5)
        for threads in sorted({nt, 1}, reverse=True):
            row = []
            for name, (lib, W, X, V) in libs.items():
                lib.set_num_threads(threads)
                for op, f in (("matvec", lambda: X @ W.T), ("exp 64k", lambda: V.exp())):
                    f()
                    ts = []
                    for _ in range(5):
                        t0 = time.perf_counter()
                        for _ in range(calls // 5):
                            f()
                        ts.append((time.perf_counter() - t0) / (calls // 5))
                    row.append(f"{name} {op} {sorted(ts)[2] * 1e3:7.3f}")
            print(f"  {threads} thread{'s' if threads > 1 else ' '}: " + "  ".join(row))
    finally:
        for h in hogs:
            h.kill()
        fd.set_num_threads(nt)
        if torch is not None:
            torch.set_num_threads(nt)


def idle(samples=41, pause_s=0.01):
    torch = try_torch()
    nt = fd.get_num_threads()
    rng = np.random.default_rng(0)
    shapes = {"linear 128x784->256": ((128, 784), (256, 784)), "matmul 256^3": ((256, 256), (256, 256)),
              "matmul 512^3": ((512, 512), (512, 512))}
    arrays = {op: (rng.standard_normal(sa).astype(np.float32), rng.standard_normal(sb).astype(np.float32))
              for op, (sa, sb) in shapes.items()}
    big = rng.standard_normal(1 << 18).astype(np.float32)

    def ops(lib, tensor):
        out = {}
        for op, (a, b) in arrays.items():
            ta, tb = tensor(a), tensor(b)
            out[op] = (lambda ta=ta, tb=tb: ta @ tb.T) if op.startswith("linear") else (lambda ta=ta, tb=tb: ta @ tb)
        tv = tensor(big)
        out["exp 256k"] = lambda: tv.exp()
        return out

    runs = {f"fastdl {nt}T": (fd, nt, ops(fd, fd.tensor))}
    if nt > 1:
        runs["fastdl 1T"] = (fd, 1, ops(fd, fd.tensor))
    if torch is not None:
        torch.set_num_threads(nt)
        runs[f"torch {nt}T"] = (torch, nt, ops(torch, torch.from_numpy))
    result = {}
    print(f"small ops, each timed after {pause_s * 1e3:.0f} ms idle: ms per op (median of {samples}, interleaved)")
    try:
        for op in [*arrays, "exp 256k"]:
            times = {name: [] for name in runs}
            for name, (lib, threads, fns) in runs.items():
                lib.set_num_threads(threads)
                fns[op]()  # warm: buffers, workers
            for _ in range(samples):
                for name, (lib, threads, fns) in runs.items():
                    lib.set_num_threads(threads)
                    time.sleep(pause_s)
                    t0 = time.perf_counter()
                    fns[op]()
                    times[name].append(time.perf_counter() - t0)
            med = {name: sorted(v)[len(v) // 2] for name, v in times.items()}
            row = "  ".join(f"{name} {v * 1e3:7.3f}" for name, v in med.items())
            print(f"  {op:20s} {row}")
            result[op] = med
    finally:
        fd.set_num_threads(nt)
        if torch is not None:
            torch.set_num_threads(nt)
    return result
