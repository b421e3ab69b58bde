"""Large elementwise a + b (16M float32 into a new tensor) in GB/s (12 bytes per element:
two reads, one write), against numpy and PyTorch, and as a share of the machine's copy
bandwidth measured here with streaming stores (bench/native/peak when built, else a numpy
copy into a preallocated buffer as a lower bound).

    fastdl bench elementwise"""
import os
import subprocess

import numpy as np

import fastdl as fd
from fastdl.bench.harness import interleaved, try_torch

N = 1 << 24


def copy_bandwidth():
    here = os.path.dirname(os.path.abspath(__file__))
    for cand in (os.environ.get("FASTDL_PEAK_BIN"), os.path.join(here, "..", "..", "..", "build", "bench", "peak"),
                 os.path.join(here, "..", "..", "..", "build-bench", "peak")):
        if cand and os.path.exists(cand):
            out = subprocess.run([cand], capture_output=True, text=True, timeout=300).stdout
            vals = []
            for line in out.splitlines():
                if "copy" in line.lower() and "GB/s" in line:
                    try:
                        vals.append(float(line.split("GB/s")[0].split()[-1]))
                    except ValueError:
                        pass
            if vals:
                return max(vals), "bench/native/peak, streaming copy"
    src = np.ones(N, np.float32)
    dst = np.empty_like(src)
    t = interleaved({"copy": lambda: np.copyto(dst, src)}, rounds=9, target_s=0.05)["copy"]
    return 8 * N / t / 1e9, "numpy copyto (lower bound)"


def main(argv=()):
    torch = try_torch()
    rng = np.random.default_rng(0)
    na, nb = rng.standard_normal(N).astype(np.float32), rng.standard_normal(N).astype(np.float32)
    a, b = fd.tensor(na), fd.tensor(nb)
    cases = {"fastdl": lambda: a + b, "numpy": lambda: na + nb}
    if torch is not None:
        torch.set_num_threads(fd.get_num_threads())
        ta, tb = torch.from_numpy(na), torch.from_numpy(nb)
        cases["torch"] = lambda: ta + tb
    t = interleaved(cases, rounds=11, target_s=0.1)
    bw, src = copy_bandwidth()
    print(f"elementwise a + b, {N} float32, {fd.get_num_threads()} threads; copy bandwidth {bw:.1f} GB/s ({src})")
    for k, v in t.items():
        gbs = 12 * N / v / 1e9
        print(f"  {k:8s} {v * 1e3:8.3f} ms  {gbs:6.1f} GB/s  {100 * gbs / bw:5.1f}% of copy bandwidth")
    print(f"  fastdl speed vs numpy {t['numpy'] / t['fastdl']:.2f}x" +
          (f", vs torch {t['torch'] / t['fastdl']:.2f}x" if torch is not None else ""))
    return t
