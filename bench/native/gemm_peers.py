"""Times numpy (OpenBLAS) and PyTorch matmul at the sizes of bench/native/gemm, so the
native numbers can be compared as ratios measured on the same machine.

  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/native/gemm_peers.py \
      [--threads 1,2] [--dtype f32|bf16] [--sizes 2048x2048x2048,...] [--layout nn|nt|both]
"""
import argparse
import time

import numpy as np

SIZES = "64x64x64,256x256x256,1024x1024x1024,2048x2048x2048,4096x4096x4096," \
        "8192x768x768,8192x768x3072,128x4096x4096"


def median_time(f, min_s=1.0, reps=3):
    f()
    ts, t0 = [], time.perf_counter()
    while len(ts) < reps or (time.perf_counter() - t0 < min_s and len(ts) < 1000):
        a = time.perf_counter()
        f()
        ts.append(time.perf_counter() - a)
    return sorted(ts)[len(ts) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--dtype", default="f32")
    ap.add_argument("--sizes", default=SIZES)
    ap.add_argument("--layout", default="both")
    ap.add_argument("--min-time", type=float, default=1.0)
    a = ap.parse_args()
    from threadpoolctl import threadpool_info, threadpool_limits
    info = threadpool_info()
    print("numpy", np.__version__, "BLAS:", [(i["internal_api"], i.get("architecture"), i["version"]) for i in info])
    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    for nt in [int(t) for t in a.threads.split(",")]:
        if torch is not None:
            torch.set_num_threads(nt)
        for s in a.sizes.split(","):
            m, n, k = (int(v) for v in s.split("x"))
            for lay in ("nn", "nt"):
                if a.layout not in ("both", lay):
                    continue
                A = rng.standard_normal((m, k), dtype=np.float32)
                B = rng.standard_normal((k, n), dtype=np.float32) if lay == "nn" else \
                    rng.standard_normal((n, k), dtype=np.float32).T
                C = np.empty((m, n), np.float32)
                fl = 2.0 * m * n * k
                res = {}
                if a.dtype == "f32":
                    with threadpool_limits(nt):
                        res["numpy"] = fl / median_time(lambda: np.matmul(A, B, out=C), a.min_time) * 1e-9
                if torch is not None:
                    dt = torch.float32 if a.dtype == "f32" else torch.bfloat16
                    tA, tB = torch.from_numpy(A).to(dt), torch.from_numpy(np.ascontiguousarray(B.T)).to(dt)
                    tB = tB.T if lay == "nt" else tB.T.contiguous()
                    tC = torch.empty((m, n), dtype=dt)
                    res["torch"] = fl / median_time(lambda: torch.matmul(tA, tB, out=tC), a.min_time) * 1e-9
                print(f"threads={nt} {a.dtype} {s:<18} {lay} " +
                      " ".join(f"{k}={v:8.1f}" for k, v in res.items()) + "  GFLOP/s", flush=True)


if __name__ == "__main__":
    main()
