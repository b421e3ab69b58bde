"""Interleaved timing: each candidate runs a calibrated batch of calls in turn, round after
round, so machine noise hits all of them alike; the figure is the median per call."""
import statistics
import time


def calibrate(fn, target_s):
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt >= target_s or n >= 1 << 22:
            return max(1, int(n * target_s / max(dt, 1e-9)))
        n *= 4


def interleaved(cases, rounds=15, target_s=0.02, warmup=2, settle_s=0.0, slow_s=2.0):
    """cases: {name: zero-arg callable}. Returns {name: median seconds per call}.

    slow_s: a candidate whose single call takes longer than this (PyTorch's bf16 matmul on a CPU
    without a bf16 path: ~1 minute at 2048^3) is timed once, on its second call, instead of rounds
    + warmup; its figure is then that one call.

    Each candidate's first call stays out of the figures and out of the calibration: it may carry
    one-time work (fastdl's GEMM measures its blocking once per machine on the first large
    product, ~2 s; timed as the calibration, that marked 1024^3 slow and timed it once, 0.83x
    against 0.98x settled).

    settle_s: pause before each timed batch. Thread pools keep spinning after a call returns
    (OpenBLAS ~0.1 s, OpenMP teams a few ms) and would take cores from the next contender; on two
    cores that halved PyTorch's measured matmul after a numpy one. Use it for threaded peers."""
    inner, samples = {}, {k: [] for k in cases}
    for k, f in cases.items():
        t0 = time.perf_counter()
        f()
        if time.perf_counter() - t0 > slow_s:
            t0 = time.perf_counter()
            f()
            dt = time.perf_counter() - t0
            if dt > slow_s:
                samples[k].append(dt)
                continue
        inner[k] = calibrate(f, target_s)
    for r in range(rounds + warmup):
        for k, f in cases.items():
            if k not in inner:
                continue
            n = inner[k]
            if settle_s:
                time.sleep(settle_s)
            t0 = time.perf_counter()
            for _ in range(n):
                f()
            if r >= warmup:
                samples[k].append((time.perf_counter() - t0) / n)
    return {k: statistics.median(v) for k, v in samples.items()}


def try_torch():
    try:
        import torch
        return torch
    except Exception:  # noqa: BLE001 - any import failure means "no peer"
        return None


def fmt_time(s):
    return f"{s * 1e6:9.3f} us" if s < 1e-3 else f"{s * 1e3:9.3f} ms"
