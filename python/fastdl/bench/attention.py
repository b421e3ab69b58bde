"""Fused attention (F.scaled_dot_product_attention) against PyTorch's CPU flash SDPA, forward
and forward + backward, full and causal, interleaved in one process: useful GFLOP/s (causal
counts the visible half; forward 4 L S D per head, backward 2.5x that), the ratio of PyTorch's
time to fastdl's, and fastdl's peak extra memory in fwd+bwd beside the size of one L x L matrix.
Issue 10's bars: fwd+bwd >= 1.3x PyTorch full, >= 1.5x causal.

    fastdl bench attention [--shape B,H,L,D ...] [--quick] [--rounds N]
"""
import numpy as np

import fastdl as fd
import fastdl.nn.functional as F
from fastdl.bench.harness import interleaved, try_torch

SHAPES = [(4, 8, 1024, 64), (2, 8, 2048, 64), (1, 8, 4096, 64)]


def _peak_extra(fn):
    fn()
    fd._C.reset_peak_memory()
    base = fd._C.allocator_stats()["live_bytes"]
    fn()
    return fd._C.allocator_stats()["peak_bytes"] - base


def main(argv=()):
    argv = list(argv)
    shapes = [tuple(int(v) for v in argv[i + 1].split(",")) for i, a in enumerate(argv) if a == "--shape"] or SHAPES
    if "--quick" in argv and "--shape" not in argv:
        shapes = [(1, 4, 512, 64)]
    rounds = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else (3 if "--quick" in argv else 5)
    torch = try_torch()
    if torch is not None:
        torch.set_num_threads(fd.get_num_threads())
    print(f"attention, float32, {fd.get_num_threads()} threads, cpu isa {fd._C.cpu_isa()}; "
          f"GFLOP/s are useful flops; ratio = PyTorch time / fastdl time")
    rng = np.random.default_rng(0)
    for shape in shapes:
        B, H, L, D = shape
        arrs = [rng.standard_normal(shape).astype(np.float32) for _ in range(4)]
        q, k, v = (fd.tensor(a, requires_grad=True) for a in arrs[:3])
        g = fd.tensor(arrs[3])
        for causal in (False, True):
            def f_fwd():
                with fd.no_grad():
                    F.scaled_dot_product_attention(q, k, v, is_causal=causal)

            def f_both():
                q.grad = k.grad = v.grad = None
                F.scaled_dot_product_attention(q, k, v, is_causal=causal).backward(g)
            cases = {"fastdl fwd": f_fwd, "fastdl fwd+bwd": f_both}
            if torch is not None:
                tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in arrs[:3])
                tg = torch.tensor(arrs[3])

                def t_fwd():
                    with torch.no_grad():
                        torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)

                def t_both():
                    tq.grad = tk.grad = tv.grad = None
                    torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=causal).backward(tg)
                cases.update({"torch fwd": t_fwd, "torch fwd+bwd": t_both})
            res = interleaved(cases, rounds=rounds, target_s=0.05, warmup=1, settle_s=0.05)
            flops = 4.0 * B * H * L * L * D * (0.5 if causal else 1.0)
            extra = _peak_extra(f_both)
            print(f"  {str(shape):18s} {'causal' if causal else 'full':6s}", end="")
            for kind, mult in (("fwd", 1.0), ("fwd+bwd", 3.5)):
                t = res[f"fastdl {kind}"]
                print(f"  {kind} {t * 1e3:8.2f} ms {flops * mult / t / 1e9:6.1f} GF/s", end="")
                if f"torch {kind}" in res:
                    print(f" ({res[f'torch {kind}'] / t:4.2f}x)", end="")
            print(f"  extra mem {extra / 2**20:6.1f} MiB (one L x L float matrix: {L * L * 4 / 2**20:.0f} MiB)")
