"""Selective scan (Mamba) forward and forward + backward at the issue's size, fastdl against
PyTorch's sequential reference (mamba_ssm's CPU path: a loop over time on (batch, dim, N)
states, autograd through every step), interleaved in one process. Also reports fastdl's peak
extra memory (native allocator) against the size of u, and the useful bytes moved per second.

    fastdl bench scan [--size B,D,L,N] [--quick]
"""
import time

import numpy as np

import fastdl as fd
import fastdl.nn.functional as F
from fastdl.bench.harness import try_torch


def torch_scan(torch, u, delta, A, B, C, D, z, delta_bias):
    """mamba_ssm.selective_scan_ref's recurrence as a Python loop over time steps on (batch, dim,
    N) states, each step's exp(delta A) computed in the loop (mamba_ssm materialises all of them
    as (batch, dim, L, N), whose per-step slicing makes autograd far slower still)."""
    delta = torch.nn.functional.softplus(delta + delta_bias[:, None])
    batch, dim, L = u.shape
    x = u.new_zeros((batch, dim, A.shape[1]))
    du = delta * u
    ys = []
    for t in range(L):
        x = torch.exp(delta[:, :, t, None] * A) * x + du[:, :, t, None] * B[:, None, :, t]
        ys.append((x * C[:, None, :, t]).sum(-1))
    y = torch.stack(ys, 2) + u * D[:, None]
    return y * torch.nn.functional.silu(z)


def _inputs(shape, seed=0):
    batch, dim, L, N = shape
    rng = np.random.default_rng(seed)
    f32 = np.float32
    return dict(u=rng.standard_normal((batch, dim, L)).astype(f32),
                delta=(rng.uniform(-1, 1, (batch, dim, L)) * 0.5).astype(f32),
                A=(-np.exp(rng.standard_normal((dim, N)) * 0.5)).astype(f32),
                B=rng.standard_normal((batch, N, L)).astype(f32), C=rng.standard_normal((batch, N, L)).astype(f32),
                D=rng.standard_normal(dim).astype(f32), z=rng.standard_normal((batch, dim, L)).astype(f32),
                delta_bias=(rng.standard_normal(dim) * 0.1).astype(f32))


def _median_time(fn, reps):
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def main(argv=()):
    argv = list(argv)
    shape = (2, 768, 1024, 16)
    if "--size" in argv:
        shape = tuple(int(v) for v in argv[argv.index("--size") + 1].split(","))
    quick = "--quick" in argv
    if quick and "--size" not in argv:
        shape = (2, 128, 256, 16)
    a = _inputs(shape)
    fa = {k: fd.tensor(v, requires_grad=True) for k, v in a.items()}
    g = fd.tensor(np.random.default_rng(1).standard_normal(a["u"].shape).astype(np.float32))

    def f_fwd():
        with fd.no_grad():
            F.selective_scan(**fa, delta_softplus=True)

    def f_both():
        for t in fa.values():
            t.grad = None
        F.selective_scan(**fa, delta_softplus=True).backward(g)

    f_both()
    fd._C.reset_peak_memory()
    base = fd._C.allocator_stats()["live_bytes"]
    f_both()
    peak = fd._C.allocator_stats()["peak_bytes"] - base
    reps = 3 if quick else 7
    res = {"fastdl fwd": _median_time(f_fwd, reps), "fastdl fwd+bwd": _median_time(f_both, reps)}
    torch = try_torch()
    if torch is not None:
        torch.set_num_threads(fd.get_num_threads())
        ta = {k: torch.tensor(v, requires_grad=True) for k, v in a.items()}
        tg = torch.tensor(g.numpy())

        def t_fwd():
            with torch.no_grad():
                torch_scan(torch, **ta)

        def t_both():
            for t in ta.values():
                t.grad = None
            torch_scan(torch, **ta).backward(tg)
        tr = 1 if not quick else 1
        res["torch fwd"] = _median_time(t_fwd, tr + 1)
        res["torch fwd+bwd"] = _median_time(t_both, tr + 1)
    batch, dim, L, N = shape
    u_bytes = a["u"].nbytes
    io = 4 * (4 * batch * dim * L + 2 * batch * N * L)  # u, delta, z, out + B, C, read/written once
    print(f"selective scan (batch, dim, L, N) = {shape}, float32, {fd.get_num_threads()} threads, cpu isa "
          f"{fd._C.cpu_isa()}; softplus, D, z, delta_bias on")
    for k in ("fwd", "fwd+bwd"):
        t = res[f"fastdl {k}"]
        line = f"  {k:8s} fastdl {t * 1e3:9.2f} ms ({io * (1 if k == 'fwd' else 3) / t / 1e9:5.1f} GB/s useful)"
        if f"torch {k}" in res:
            line += f"   torch sequential {res[f'torch {k}'] * 1e3:9.1f} ms   {res[f'torch {k}'] / t:6.1f}x"
        print(line)
    print(f"  peak extra memory fwd+bwd: {peak / 2**20:.1f} MiB = {peak / u_bytes:.2f}x the size of u "
          f"({u_bytes / 2**20:.1f} MiB)")
