"""matmul GFLOP/s at the GEMM issue's sizes (`--models`: the shapes the models run), fastdl vs
numpy (OpenBLAS) vs PyTorch, interleaved. For numpy's best kernel run with OPENBLAS_CORETYPE
and OPENBLAS_L2_SIZE unset."""
import numpy as np

import fastdl as fd
from fastdl.bench.harness import interleaved, try_torch

SIZES = [(64, 64, 64), (256, 256, 256), (1024, 1024, 1024), (2048, 2048, 2048), (8192, 768, 768),
         (8192, 768, 3072), (128, 4096, 4096)]
# The shapes models run: a char-GPT linear, a GCN layer (few columns), one token (one row).
MODEL_SIZES = [(768, 384, 128), (2708, 16, 1433), (1, 1024, 256), (1, 2048, 512)]


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
        t = interleaved(cases, rounds=5 if m * n * k > 1e9 else 9, target_s=0.1)
        flop = 2.0 * m * n * k
        row = "  ".join(f"{name} {flop / v / 1e9:7.1f}" for name, v in t.items())
        best = min(v for kk, v in t.items() if not kk.startswith("fastdl"))
        print(f"  {m}x{n}x{k}: {row}  | vs best peer {best / t['fastdl']:.2f}x")
