"""`fastdl bench ddp`: data-parallel training over MPI (fastdl.distributed).

Weak scaling: the MLP 784-256-256-10 at batch 128 per rank and the char-GPT step (4 layers,
128 wide, context 64, batch 12 per rank), AdamW, one thread per rank, on 1 rank (no DDP) and on
2 ranks (DistributedDataParallel); samples/s counts every rank's samples. When PyTorch is
installed the same models run in the same processes under torch DDP over gloo, interleaved
round by round with fastdl's, and `vs torch` is torch's step time / fastdl's. Then all_reduce
(float32, SUM) on 1-256 MiB: algorithm bandwidth (bytes / time) and bus bandwidth
(2 (n-1)/n x bytes / time, the NCCL-tests convention), fastdl against torch gloo.

Each configuration runs as its own `mpirun -n N` job (Open MPI needs --allow-run-as-root as
root; set FASTDL_MPIRUN to use another launcher command).

    fastdl bench ddp [--steps 10] [--rounds 7] [--quick] [--ranks 2] [--cases mlp,gpt] [--no-torch]
"""
import argparse
import json
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import time

import numpy as np

SIZES_MIB = (1, 4, 16, 64, 256)


# ----------------------------------------------------------------------------------------------
# worker: runs under mpirun


def _case(name, fw, seed):
    from fastdl.bench.models import _gpt_case, _mlp_case
    if name == "mlp":
        model, loss = _mlp_case(fw, rng_seed=seed, batch=128)
        return model, loss, 128
    model, loss = _gpt_case(fw, rng_seed=seed, batch=12)
    return model, loss, 12


def _worker(args):
    import fastdl as fd
    import fastdl.distributed as dist
    from fastdl.bench.models import _fastdl, _torch
    from fastdl.nn.parallel import DistributedDataParallel as DDP
    fd.set_num_threads(1)
    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch = None
    if not args.no_torch:
        try:
            import torch
            import torch.distributed as tdist
            torch.set_num_threads(1)
            tdist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{args.port}", rank=rank, world_size=world)
        except Exception as e:  # noqa: BLE001 - no peer, say why
            if rank == 0:
                print(f"torch DDP (gloo) unavailable: {e}", file=sys.stderr)
            torch = None
    res = {"world": world, "cases": {}, "allreduce": {}}
    for name in args.cases.split(","):
        runs = {}
        model, loss, batch = _case(name, _fastdl(), rank)
        net = DDP(model) if world > 1 else model
        opt = fd.optim.AdamW(model.parameters(), lr=1e-3)

        def step_fd(net=net, opt=opt, loss=loss):
            opt.zero_grad()
            loss(net).backward()
            opt.step()
        runs["fastdl"] = step_fd
        if torch is not None:
            torch.manual_seed(0)
            tm, tloss, _ = _case(name, _torch(torch), rank)
            tnet = torch.nn.parallel.DistributedDataParallel(tm) if world > 1 else tm
            topt = torch.optim.AdamW(tm.parameters(), lr=1e-3)

            def step_torch(net=tnet, opt=topt, loss=tloss):
                opt.zero_grad()
                loss(net).backward()
                opt.step()
            runs["torch"] = step_torch
        times = {k: [] for k in runs}
        for f in runs.values():
            for _ in range(3):
                f()
        for _ in range(args.rounds):
            for k, f in runs.items():
                dist.barrier()
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    f()
                times[k].append((time.perf_counter() - t0) / args.steps)
        res["cases"][name] = {"batch": batch, **{k: statistics.median(v) for k, v in times.items()}}
        if isinstance(net, DDP):
            net._remove_hooks()
    if world > 1 and args.allreduce:
        for mib in args.sizes:
            n = mib * 1024 * 1024 // 4
            buf = fd.from_numpy(np.ones(n, dtype=np.float32))
            reps = max(3, min(20, 512 // mib))
            r = {}
            cands = {"fastdl": lambda: dist.all_reduce(buf)}
            if torch is not None:
                tbuf = torch.ones(n)
                cands["torch"] = lambda: torch.distributed.all_reduce(tbuf)
            for k, f in cands.items():
                f()
                ts = []
                for _ in range(reps):
                    dist.barrier()
                    t0 = time.perf_counter()
                    f()
                    ts.append(time.perf_counter() - t0)
                r[k] = statistics.median(ts)
            res["allreduce"][mib] = r
    if rank == 0:
        print("RESULT " + json.dumps(res), flush=True)
    dist.destroy_process_group()


# ----------------------------------------------------------------------------------------------
# driver


def _launch(n, worker_args, timeout):
    launcher = os.environ.get("FASTDL_MPIRUN")
    if launcher:
        cmd = shlex.split(launcher) + ["-n", str(n)]
    else:
        cmd = [shutil.which("mpirun") or shutil.which("mpiexec"), "-n", str(n)]
        if n > (os.cpu_count() or 1):  # otherwise Open MPI binds each rank to its own core
            cmd.append("--oversubscribe")
    env = dict(os.environ)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    cmd += [sys.executable, "-m", "fastdl.bench.ddp", "--worker"] + worker_args
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"fastdl bench ddp: the {n}-rank job failed (exit {p.returncode}):\n{p.stdout}\n{p.stderr}")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None):
    p = argparse.ArgumentParser(prog="fastdl bench ddp", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=10, help="steps per timed round (default 10)")
    p.add_argument("--rounds", type=int, default=7, help="timed rounds; the figure is the median (default 7)")
    p.add_argument("--ranks", type=int, default=2, help="ranks of the scaled run (default 2)")
    p.add_argument("--cases", default="mlp,gpt")
    p.add_argument("--quick", action="store_true", help="few steps, all_reduce up to 16 MiB")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--allreduce", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--sizes", type=lambda s: [int(v) for v in s.split(",")], default=list(SIZES_MIB),
                   help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return _worker(args)
    if not os.environ.get("FASTDL_MPIRUN") and not (shutil.which("mpirun") or shutil.which("mpiexec")):
        print('fastdl bench ddp: skipped: no mpirun on PATH (pip install "fastdl[mpi]")')
        return 0
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        print('fastdl bench ddp: skipped: mpi4py is not installed (pip install "fastdl[mpi]")')
        return 0
    if args.quick:
        args.steps, args.rounds, args.sizes = 3, 3, [1, 4, 16]
    common = ["--steps", str(args.steps), "--rounds", str(args.rounds), "--cases", args.cases,
              "--sizes", ",".join(map(str, args.sizes))] + (["--no-torch"] if args.no_torch else [])
    print(f"fastdl bench ddp: 1 thread per rank, AdamW, median of {args.rounds} rounds of {args.steps} steps; "
          f"fastdl and torch interleaved in the same processes")
    one = _launch(1, common + ["--port", str(_free_port())], 1800)
    many = _launch(args.ranks, common + ["--allreduce", "--port", str(_free_port())], 1800)
    n = many["world"]
    print(f"\nweak scaling, 1 rank -> {n} ranks (samples/s over all ranks)")
    print(f"{'case':8s} {'lib':7s} {'1 rank':>12s} {f'{n} ranks':>12s} {'scaling':>8s} {'step ms':>9s} {'vs torch':>9s}")
    for case, r1 in one["cases"].items():
        rn = many["cases"][case]
        for lib in ("fastdl", "torch"):
            if lib not in r1 or lib not in rn:
                continue
            s1, sn = r1["batch"] / r1[lib], n * rn["batch"] / rn[lib]
            vs = f"{rn['torch'] / rn['fastdl']:8.2f}x" if lib == "fastdl" and "torch" in rn else f"{'':9s}"
            print(f"{case:8s} {lib:7s} {s1:12.0f} {sn:12.0f} {sn / s1:7.2f}x {rn[lib] * 1e3:9.2f} {vs}")
    if many["allreduce"]:
        print(f"\nall_reduce float32 SUM over {n} ranks: algbw / busbw in GB/s")
        print(f"{'MiB':>5s} {'fastdl ms':>10s} {'algbw':>7s} {'busbw':>7s} {'torch ms':>9s} {'algbw':>7s} {'ratio':>6s}")
        for mib, r in many["allreduce"].items():
            nbytes = int(mib) * 1024 * 1024
            alg = nbytes / r["fastdl"] / 1e9
            line = f"{int(mib):5d} {r['fastdl'] * 1e3:10.2f} {alg:7.2f} {alg * 2 * (n - 1) / n:7.2f}"
            if "torch" in r:
                line += f" {r['torch'] * 1e3:9.2f} {nbytes / r['torch'] / 1e9:7.2f} {r['torch'] / r['fastdl']:5.2f}x"
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
