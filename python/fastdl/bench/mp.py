"""`fastdl bench mp`: message passing forward + backward, fastdl's fused CSR gather-reduce
(grads for x AND edge weights) against PyTorch's index_add, scatter_reduce (mean, amax) and a
prebuilt CSR sparse.mm (grads for x only: its edge-weight gradient goes through a dense n x n
matrix and fails at 100k nodes). Times are medians of interleaved rounds; ratio = peer time /
fastdl time; useful GB/s counts one read of each gathered row per edge, forward and backward.

    fastdl bench mp [--quick]"""
import warnings

import numpy as np

import fastdl as fd
import fastdl.nn.functional as F
from fastdl.bench.harness import fmt_time, interleaved, try_torch

SIZES = [(100_000, 1_000_000, 64), (10_000, 200_000, 64)]
QUICK = [(2_000, 20_000, 16)]


def _cases(torch, n, e, f, rng):
    ei = rng.integers(0, n, (2, e)).astype(np.int64)
    x = rng.standard_normal((n, f)).astype(np.float32)
    w = rng.uniform(0.5, 1.5, e).astype(np.float32)
    g = rng.standard_normal((n, f)).astype(np.float32)
    fei, fg = fd.tensor(ei), fd.tensor(g)
    fx = fd.tensor(x, requires_grad=True)
    fw = fd.tensor(w, requires_grad=True)

    def fastdl(reduce):
        def run():
            fx.grad = None
            fw.grad = None
            F.message_passing(fx, fei, fw, reduce=reduce).backward(fg)
        return run

    cases = {"fastdl sum": fastdl("sum"), "fastdl mean": fastdl("mean"), "fastdl max": fastdl("max")}
    if torch is None:
        return cases, {}
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tg = torch.from_numpy(g)
    src, dst = torch.from_numpy(ei[0]), torch.from_numpy(ei[1])
    dstx = dst[:, None].expand(e, f)

    def index_add():
        tx.grad = tw.grad = None
        torch.zeros(n, f).index_add(0, dst, tx[src] * tw[:, None]).backward(tg)

    def scatter_reduce(red):
        def run():
            tx.grad = tw.grad = None
            torch.zeros(n, f).scatter_reduce(0, dstx, tx[src] * tw[:, None], red, include_self=False).backward(tg)
        return run

    order = np.lexsort((ei[0], ei[1]))
    rowptr = torch.from_numpy(np.concatenate([[0], np.cumsum(np.bincount(ei[1], minlength=n))]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        csr = torch.sparse_csr_tensor(rowptr, torch.from_numpy(ei[0][order]), torch.from_numpy(w[order]), size=(n, n))

    def sparse_mm():
        tx.grad = None
        torch.sparse.mm(csr, tx).backward(tg)

    peers = {"torch index_add (sum)": (index_add, "fastdl sum"),
             "torch scatter_reduce mean": (scatter_reduce("mean"), "fastdl mean"),
             "torch scatter_reduce amax": (scatter_reduce("amax"), "fastdl max"),
             "torch CSR sparse.mm, x grad only": (sparse_mm, "fastdl sum")}
    for k, (fn, _) in peers.items():
        cases[k] = fn
    return cases, {k: v[1] for k, v in peers.items()}


def main(argv=()):
    torch = try_torch()
    quick = "--quick" in argv
    if torch is not None:
        torch.set_num_threads(fd.get_num_threads())
    print(f"message passing fwd+bwd, float32, {fd.get_num_threads()} threads, kernel {fd._C.cpu_isa()} "
          f"(fastdl: grads for x and edge weights; ratio = peer time / fastdl time)")
    rng = np.random.default_rng(0)
    for n, e, f in (QUICK if quick else SIZES):
        cases, peer_of = _cases(torch, n, e, f, rng)
        t = interleaved(cases, rounds=3 if quick else 5, target_s=0.01, warmup=1)
        gbs = 2 * e * f * 4 / 1e9  # one gathered row per edge forward and one backward
        print(f"  {n} nodes / {e} edges / {f} features:")
        for k, v in t.items():
            extra = f"  {gbs / v:6.1f} GB/s useful" if k.startswith("fastdl") else \
                f"  ratio {v / t[peer_of[k]]:.2f}x (vs {peer_of[k]})"
            print(f"    {k:34s} {fmt_time(v)}{extra}")
