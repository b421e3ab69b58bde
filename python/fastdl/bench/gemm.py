"""matmul GFLOP/s at the GEMM issue's sizes (`--models`: the shapes the models run), fastdl vs
numpy (OpenBLAS) vs PyTorch, interleaved; then attention-sized batched products and bfloat16
(fastdl's bf16 kernel, AMX / VDPBF16PS / widened, against PyTorch's bf16 matmul). For numpy's
best kernel run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset.

    fastdl bench gemm [--quick] [--models] [--no-batched] [--no-bf16]"""
import numpy as np

import fastdl as fd
from fastdl.bench.harness import interleaved, try_torch

SIZES = [(64, 64, 64), (256, 256, 256), (1024, 1024, 1024), (2048, 2048, 2048), (8192, 768, 768),
         (8192, 768, 3072), (128, 4096, 4096)]
# Attention-sized batched products (heads x L x D): the GEMM issue's bar is >= 1.0x PyTorch;
# then mid-size batches (unfused attention scores, bmm in models).
BATCHED = [((48, 64, 32), (48, 32, 64)), ((48, 64, 64), (48, 64, 32)), ((12, 64, 64), (12, 64, 64)),
           ((8, 128, 64), (8, 64, 128)), ((64, 128, 128), (64, 128, 128)), ((32, 256, 64), (32, 64, 256)),
           ((16, 256, 256), (16, 256, 256))]
BF16_SIZES = [(2048, 2048, 2048), (8192, 768, 3072)]
# The shapes models run: a char-GPT block's linears (batch 12 x context 64 tokens, width 128:
# attention projections, QKV, MLP up and down), a GCN layer (few columns), one token (one row), a
# few tokens (a small batch decoding: W read once for all the rows, no packing).
MODEL_SIZES = [(768, 128, 128), (768, 384, 128), (768, 512, 128), (768, 128, 512), (2708, 16, 1433),
               (1, 1024, 256), (1, 2048, 512), (4, 4096, 4096), (8, 768, 3072)]


def _numpy_blas():
    try:
        from threadpoolctl import threadpool_info
        for lib in threadpool_info():
            if lib.get("user_api") == "blas":
                return f"{lib.get('internal_api')} {lib.get('version')} ({lib.get('architecture')} kernel)"
    except Exception:  # noqa: BLE001 - threadpoolctl is optional
        pass
    return "unknown (pip install threadpoolctl to see it)"


def main(argv=()):
    torch = try_torch()
    quick = "--quick" in argv
    sizes = MODEL_SIZES if "--models" in argv else SIZES[:4] if quick else SIZES
    if torch is not None:
        torch.set_num_threads(fd.get_num_threads())
    print(f"matmul float32, {fd.get_num_threads()} threads, GFLOP/s (ratio = peer time / fastdl time)")
    print(f"  fastdl kernel: {fd._C.cpu_isa()}; numpy BLAS: {_numpy_blas()}")
    rng = np.random.default_rng(0)
    for (m, n, k) in sizes:
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        fa, fb = fd.tensor(a), fd.tensor(b)
        fbt = fd.tensor(np.ascontiguousarray(b.T)).T  # X @ W^T form
        cases = {"fastdl": lambda: fa @ fb, "fastdl W^T": lambda: fa @ fbt, "numpy": lambda: a @ b}
        if torch is not None:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            cases["torch"] = lambda: ta @ tb
        t = interleaved(cases, rounds=5 if m * n * k > 1e9 else 9, target_s=0.1, settle_s=0.2)
        flop = 2.0 * m * n * k
        row = "  ".join(f"{name} {flop / v / 1e9:7.1f}" for name, v in t.items())
        best = min(v for kk, v in t.items() if not kk.startswith("fastdl"))
        print(f"  {m}x{n}x{k}: {row}  | vs best peer {best / t['fastdl']:.2f}x")

    if "--models" not in argv and "--no-batched" not in argv:
        _batched(torch, rng)
    if "--models" not in argv and "--no-bf16" not in argv:
        _bf16(torch, rng, BF16_SIZES[:1] if quick else BF16_SIZES)


def _batched(torch, rng):
    print(f"batched matmul float32 (attention-sized), {fd.get_num_threads()} threads, GFLOP/s")
    for sa, sb in BATCHED:
        a = rng.standard_normal(sa).astype(np.float32)
        b = rng.standard_normal(sb).astype(np.float32)
        fa, fb = fd.tensor(a), fd.tensor(b)
        cases = {"fastdl": lambda: fa @ fb, "numpy": lambda: np.matmul(a, b)}
        if torch is not None:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            cases["torch"] = lambda: ta @ tb
        # settle_s as in main(): OpenBLAS's threads spin ~0.1 s after numpy's call and took a
        # core from the fastdl call after it ((16, 256, 256)^2 on Zen 4: 143 GFLOP/s read
        # against 200-215 settled, 0.88x -> ~1.2x numpy).
        t = interleaved(cases, rounds=9, target_s=0.05, settle_s=0.2)
        flop = 2.0 * np.prod(sa) * sb[-1]
        row = "  ".join(f"{name} {flop / v / 1e9:7.1f}" for name, v in t.items())
        best = min(v for kk, v in t.items() if kk != "fastdl")
        peer = "torch" if "torch" in t else "numpy"
        print(f"  {sa} @ {sb}: {row}  | vs {peer} {t[peer] / t['fastdl']:.2f}x, best peer {best / t['fastdl']:.2f}x")


def _bf16(torch, rng, sizes):
    kernel = fd._C._gemm_kernel_name("bfloat16")
    print(f"matmul bfloat16, {fd.get_num_threads()} threads, GFLOP/s; fastdl kernel {kernel}")
    for (m, n, k) in sizes:
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        fa, fb = fd.tensor(a, dtype=fd.bfloat16), fd.tensor(b, dtype=fd.bfloat16)
        fbt = fd.tensor(np.ascontiguousarray(b.T), dtype=fd.bfloat16).T
        cases = {"fastdl": lambda: fa @ fb, "fastdl W^T": lambda: fa @ fbt}
        if torch is not None:
            ta, tb = torch.from_numpy(a).bfloat16(), torch.from_numpy(b).bfloat16()
            cases["torch"] = lambda: ta @ tb
        # settle_s as in main(): without it the first fastdl case ran while PyTorch's OpenMP
        # team was still spinning (0.96x at 2048^3 on Zen 4 against 1.02x with it).
        t = interleaved(cases, rounds=5, target_s=0.1, settle_s=0.2)
        flop = 2.0 * m * n * k
        row = "  ".join(f"{name} {flop / v / 1e9:7.1f}" for name, v in t.items())
        vs = f"  | vs torch {t['torch'] / t['fastdl']:.2f}x" if "torch" in t else ""
        print(f"  {m}x{n}x{k}: {row}{vs}")
