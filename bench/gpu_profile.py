"""Where a GPU training step's time goes, fastdl beside PyTorch: a few steps of a bench/gpu_models.py
model under fastdl.profiler (op by op; run with CUDA_LAUNCH_BLOCKING=1 so that each op's time
includes its kernels) and under torch.profiler (CUDA kernel time per op).

    CUDA_LAUNCH_BLOCKING=1 PYTHONPATH=python python3 bench/gpu_profile.py --model gpt [--side fastdl]
"""
import argparse
import sys
import time

import fastdl as fd

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import gpu_models as G  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="gpt")
    ap.add_argument("--side", default="both", choices=("both", "fastdl", "torch"))
    ap.add_argument("--rows", type=int, default=25)
    ap.add_argument("--device", default="cuda", help="cpu: a dry run without a GPU")
    a = ap.parse_args(argv)
    G.DEVICE = a.device
    import torch
    torch.backends.cuda.matmul.allow_tf32 = False
    f, t = G._pair(a.model, torch)
    for side in (f, t):
        for _ in range(3):
            G._step(*side)
    if a.side in ("both", "fastdl"):
        t0 = time.perf_counter()
        with fd.profiler.profile() as prof:
            for _ in range(2):
                G._step(*f)
        print(f"== fastdl {a.model}: 2 steps in {(time.perf_counter() - t0) * 1e3:.1f} ms (profiled)")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=a.rows))
    if a.side in ("both", "torch"):
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as tp:
            for _ in range(2):
                G._step(*t)
        print(f"== torch {a.model}: 2 steps")
        print(tp.key_averages().table(sort_by="self_cuda_time_total", row_limit=a.rows))


if __name__ == "__main__":
    main()
