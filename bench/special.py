"""fastdl.special / signal.windows vs PyTorch, interleaved in one process
(fastdl.bench.harness.interleaved): float64 elementwise special functions on 100k points in
(0.1, 20) (ndtri on (0, 1)), a Chebyshev polynomial of degree 20 and a 4096-point Hann window.
fastdl composes these from native elementwise kernels (series / trapezoidal quadrature, evaluated in
float64), so it trails PyTorch's fused scalar kernels most where the quadrature has many nodes
(J, Y, Ai: ~37 nodes of atan / cos / sin / sqrt).

    python bench/special.py [--threads N] [--n N]"""
import argparse

import numpy as np

import fastdl as fd
from fastdl.bench.harness import fmt_time, interleaved

FUNCS = ["i0", "i1e", "modified_bessel_k0", "bessel_j0", "bessel_y1", "airy_ai", "ndtr", "log_ndtr", "erfcx",
         "ndtri"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
        fd.set_num_threads(args.threads)
    x = np.random.default_rng(0).uniform(0.1, 20, args.n)
    tx, fx = torch.tensor(x), fd.tensor(x)
    cases = {}
    for name in FUNCS:
        fa, ta = (fx / 21, tx / 21) if name == "ndtri" else (fx, tx)
        cases["fd " + name] = lambda name=name, a=fa: getattr(fd.special, name)(a)
        cases["torch " + name] = lambda name=name, a=ta: getattr(torch.special, name)(a)
    cases["fd chebyshev_polynomial_t n=20"] = lambda: fd.special.chebyshev_polynomial_t(fx / 20, 20)
    cases["torch chebyshev_polynomial_t n=20"] = lambda: torch.special.chebyshev_polynomial_t(tx / 20, 20)
    cases["fd hann_window 4096"] = lambda: fd.hann_window(4096)
    cases["torch hann_window 4096"] = lambda: torch.hann_window(4096)
    r = interleaved(cases, rounds=args.rounds, target_s=0.02, warmup=1)
    for k in cases:
        if k.startswith("fd "):
            n = k[3:]
            print(f"{n:32s} fastdl {fmt_time(r[k])}  torch {fmt_time(r['torch ' + n])}  "
                  f"torch/fastdl {r['torch ' + n] / r[k]:.3f}")


if __name__ == "__main__":
    main()
