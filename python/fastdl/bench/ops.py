"""Common ops at 2048x2048 float32 (reductions, transposed copy, activations, softmax,
layer_norm, cross entropy, indexing, embedding) against PyTorch, interleaved in one process.
Ratios are PyTorch time / fastdl time (> 1: fastdl is faster)."""
import numpy as np

import fastdl as fd
import fastdl.nn.functional as F
from fastdl.bench.harness import interleaved, try_torch


def _cases(torch, n):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(np.float32)
    idx = rng.integers(0, n, 2 * n)
    lab = rng.integers(0, n, n)
    A, I, L = fd.tensor(a), fd.tensor(idx), fd.tensor(lab)
    w, b = fd.ones(n), fd.zeros(n)
    Ag = fd.tensor(a, requires_grad=True)
    T, TI, TL = torch.from_numpy(a), torch.from_numpy(idx), torch.from_numpy(lab)
    tw, tb = torch.ones(n), torch.zeros(n)
    Tg = torch.from_numpy(a.copy()).requires_grad_()
    tf = torch.nn.functional
    return {
        "sum all": (lambda: A.sum(), lambda: T.sum()),
        "sum dim 0": (lambda: A.sum(0), lambda: T.sum(0)),
        "sum dim 1": (lambda: A.sum(1), lambda: T.sum(1)),
        "amax dim 1": (lambda: A.amax(1), lambda: T.amax(1)),
        "max dim 1 (values, indices)": (lambda: A.max(1), lambda: T.max(1)),
        "argmax": (lambda: A.argmax(), lambda: T.argmax()),
        "var dim 1": (lambda: A.var(1), lambda: T.var(1)),
        "transpose().contiguous()": (lambda: A.T.contiguous(), lambda: T.T.contiguous()),
        "exp": (lambda: A.exp(), lambda: T.exp()),
        "tanh": (lambda: A.tanh(), lambda: T.tanh()),
        "gelu": (lambda: F.gelu(A), lambda: tf.gelu(T)),
        "softmax": (lambda: F.softmax(A, -1), lambda: torch.softmax(T, -1)),
        "layer_norm": (lambda: F.layer_norm(A, (n,), w, b), lambda: tf.layer_norm(T, (n,), tw, tb)),
        "cross_entropy": (lambda: F.cross_entropy(A, L), lambda: tf.cross_entropy(T, TL)),
        "cross_entropy fwd+bwd": (lambda: F.cross_entropy(Ag, L).backward(), lambda: tf.cross_entropy(Tg, TL).backward()),
        "x[idx] (rows)": (lambda: A[I], lambda: T[TI]),
    }


def main(argv=()):
    torch = try_torch()
    if torch is None:
        print("fastdl bench ops: PyTorch is not installed; nothing to compare against")
        return
    torch.set_num_threads(fd.get_num_threads())
    n = 512 if "--quick" in argv else 2048
    print(f"ops on {n}x{n} float32, {fd.get_num_threads()} threads (ratio = torch time / fastdl time)")
    rounds, target = (3, 0.003) if "--quick" in argv else (7, 0.03)
    for name, (f, g) in _cases(torch, n).items():
        t = interleaved({"fastdl": f, "torch": g}, rounds=rounds, target_s=target, warmup=1)
        print(f"  {name:30s} fastdl {t['fastdl'] * 1e3:8.3f} ms  torch {t['torch'] * 1e3:8.3f} ms  {t['torch'] / t['fastdl']:6.2f}x")
