"""fastdl.distributed, DistributedDataParallel, SyncBatchNorm and DistributedSampler.

The multi-process cases run tests/dist_worker.py under `mpirun -n 2` (skipped when mpi4py or
mpirun is missing): collectives against numpy, DDP on half batches against one process on the
full batch (float64, 20 AdamW steps, 1e-12), SyncBatchNorm, no_sync, find_unused_parameters,
a rank that raises or calls sys.exit(3) (the job must end quickly, non-zero, with its message),
a caught sys.exit and clean exits (no abort), and a timeout."""
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import fastdl as fd
import fastdl.distributed as dist
from fastdl.data import DataLoader, DistributedSampler, TensorDataset

HERE = os.path.dirname(os.path.abspath(__file__))


def _mpirun():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip("mpi4py is not installed (pip install 'fastdl[mpi]')")
    exe = shutil.which("mpirun") or shutil.which("mpiexec")
    if exe is None:
        pytest.skip("mpirun is not on PATH")
    return exe


def run_mpi(args, n=2, timeout=240):
    exe = _mpirun()
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1",
               PYTHONUNBUFFERED="1")
    if "detect_leaks=1" in env.get("ASAN_OPTIONS", ""):
        # Under tests/sanitizers/run.sh: ASan and UBSan stay on in the ranks, LeakSanitizer's exit-time
        # check does not. Its stop-the-world tracer crashed (signal 11, "LeakSanitizer has encountered
        # a fatal error") at the exit of Open MPI rank processes of `fastdl train --model gcn` on
        # 2026-12-01, failing the job with no report; the parent test process keeps the leak check.
        env["ASAN_OPTIONS"] = env["ASAN_OPTIONS"].replace("detect_leaks=1", "detect_leaks=0")
    t0 = time.monotonic()
    p = subprocess.run([exe, "-n", str(n), "--oversubscribe", sys.executable] + args, env=env, capture_output=True,
                       text=True, timeout=timeout, cwd=HERE)
    return p.returncode, p.stdout + p.stderr, time.monotonic() - t0


def test_collectives_against_numpy():
    rc, out, _ = run_mpi(["dist_worker.py", "collectives"])
    assert rc == 0, out
    assert out.count("collectives ok") == 2, out


def test_rooted_and_personalised_collectives_on_three_ranks():
    rc, out, _ = run_mpi(["dist_worker.py", "rooted"], n=3)
    assert rc == 0, out
    assert out.count("rooted ok") == 3, out


def test_ddp_two_ranks_half_batches_equal_one_process():
    rc, out, _ = run_mpi(["dist_worker.py", "ddp"])
    assert rc == 0, out
    assert out.count("ddp ok") == 2, out


def test_nccl_backend_on_gpus():
    if not dist.is_nccl_available():
        pytest.skip("no CUDA device, or fastdl built without NCCL / libnccl.so.2 not loadable")
    rc, out, _ = run_mpi(["dist_worker.py", "nccl"], n=min(2, fd.cuda.device_count()))
    assert rc == 0, out
    assert "nccl ok" in out, out


def test_nccl_unavailable_is_a_clear_error():
    if dist.is_nccl_available():
        pytest.skip("NCCL is available here")
    with pytest.raises(RuntimeError, match="backend 'nccl' is unavailable"):
        dist.init_process_group("nccl")
    assert not dist.is_initialized()


def test_a_rank_that_raises_ends_the_job():
    rc, out, dt = run_mpi(["dist_worker.py", "fault"], timeout=120)
    assert rc != 0, out
    assert "boom from rank 1" in out and "rank 1 of 2" in out, out
    assert dt < 60, f"the job took {dt:.1f} s to end"


def test_sys_exit_on_one_rank_ends_the_job():
    rc, out, dt = run_mpi(["dist_worker.py", "exit"], timeout=120)
    assert rc == 3, out  # MPI_Abort with the rank's exit status
    assert "rank 1 of 2 exited with status 3" in out and "rank 1: cleanup ran" in out, out
    assert dt < 30, f"the job took {dt:.1f} s to end"


def test_caught_sys_exit_and_clean_exits_do_not_abort():
    rc, out, _ = run_mpi(["dist_worker.py", "exit_clean"], timeout=120)
    assert rc == 0, out
    assert out.count("exit clean") == 2 and "MPI_Abort" not in out, out


def test_collective_timeout_ends_the_job():
    rc, out, dt = run_mpi(["dist_worker.py", "timeout"], timeout=120)
    assert rc != 0, out
    assert "all_reduce: timed out after 2 s" in out, out
    assert dt < 60, f"the job took {dt:.1f} s to end"


def test_fastdl_train_under_mpirun(tmp_path):
    pytest.importorskip("sklearn")
    rc, out, _ = run_mpi(["-m", "fastdl", "train", "--epochs", "2", "--no-progress", "--out", str(tmp_path)])
    assert rc == 0, out
    assert out.count("held-out accuracy") == 1, out  # rank 0 alone prints
    assert "2 ranks" in out, out
    assert (tmp_path / "model.safetensors").exists()


def _toy_graph(path):
    """60 nodes in 3 classes (one-hot features plus noise), 400 edges, 20 / 20 / 20 split."""
    rng = np.random.default_rng(0)
    n = 60
    x = rng.random((n, 8)).astype(np.float32)
    y = rng.integers(0, 3, n)
    x[np.arange(n), y] = 1
    src, dst = rng.integers(0, n, 200), rng.integers(0, n, 200)
    ei = np.stack([np.concatenate([src, dst]), np.concatenate([dst, src])]).astype(np.int64)
    masks = {k: np.zeros(n, bool) for k in ("train_mask", "val_mask", "test_mask")}
    masks["train_mask"][:20], masks["val_mask"][20:40], masks["test_mask"][40:] = True, True, True
    np.savez(path, x=x, y=y, edge_index=ei, **masks)


_TEXT = "to be or not to be, that is the question. " * 80
_LM = ["--steps", "12", "--context", "16", "--batch-size", "8", "--d-model", "32", "--n-layer", "2",
       "--eval-iters", "4", "--sample-tokens", "20"]
TRAIN_CASES = {  # model family: (fastdl train arguments, models wrapped in DDP, a line rank 0 prints)
    "gpt": (["--model", "gpt", "--n-head", "2"] + _LM, 1, "final val loss"),
    "lstm": (["--model", "lstm"] + _LM, 1, "final val loss"),
    "gcn": (["--model", "gcn", "--epochs", "20"], 1, "test accuracy"),
    "gan": (["--model", "gan", "--epochs", "1", "--width", "8", "--samples", "16"], 2, "mean max-probability"),
    "ddpm": (["--model", "ddpm", "--epochs", "1", "--width", "8", "--samples", "16", "--timesteps", "20", "--sampler",
              "ddim", "--ddim-steps", "5"], 1, "mean max-probability"),
    "lenet": (["--model", "lenet", "--epochs", "1"], 1, "held-out accuracy"),
}


@pytest.mark.parametrize("case", sorted(TRAIN_CASES))
def test_fastdl_train_is_data_parallel_for_every_family(case, tmp_path):
    """Two ranks end with the same parameters; rank 0 alone prints and writes the checkpoint."""
    import re
    args, n_models, line = TRAIN_CASES[case]
    if case in ("gan", "ddpm", "lenet"):
        pytest.importorskip("sklearn")
    if case in ("gpt", "lstm"):
        (tmp_path / "t.txt").write_text(_TEXT)
        args = args + ["--data", str(tmp_path / "t.txt")]
    if case == "gcn":
        _toy_graph(str(tmp_path / "toy.npz"))
        args = args + ["--data", str(tmp_path / "toy.npz")]
    if case != "gcn":  # (the graph trainer's --no-progress silences its per-epoch log)
        args = args + ["--no-progress"]
    rc, out, dt = run_mpi(["dist_worker.py", "train"] + args + ["--out", str(tmp_path / "out")], timeout=120)
    assert rc == 0, out
    assert "data-parallel over 2 ranks" in out, out
    assert out.count(line) == 1, out  # rank 0 alone prints
    sums = dict(re.findall(r"rank (\d): (\d+ models, parameter crc32 \[[\d, ]*\])", out))
    assert sorted(sums) == ["0", "1"] and sums["0"] == sums["1"], out  # the same final parameters
    assert sums["0"].startswith(f"{n_models} models"), out
    if case != "gcn":  # the graph trainer writes no checkpoint
        assert re.findall(r"rank (\d): saved (\S+)", out) == [("0", str(tmp_path / "out" / "model.safetensors"))], out
        assert (tmp_path / "out" / "model.safetensors").exists()
    else:  # full batch, one dropout stream, the loss weighted by each rank's share: one process's numbers
        one = subprocess.run([sys.executable, "-m", "fastdl", "train"] + args, capture_output=True, text=True,
                             cwd=HERE, timeout=120)
        assert one.returncode == 0, one.stderr
        def logged(text):
            return [ln for ln in text.splitlines() if ln.startswith(("epoch", "test accuracy"))]
        assert len(logged(one.stdout)) == 2 and logged(out) == logged(one.stdout), (out, one.stdout)


def test_init_without_mpi4py_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    monkeypatch.setattr(dist._State, "MPI", None)
    with pytest.raises(RuntimeError, match=r"pip install \"fastdl\[mpi\]\""):
        dist.init_process_group("mpi")
    assert not dist.is_initialized()


def test_api_errors_without_a_group():
    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.get_rank()
    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.all_reduce(fd.ones(3))
    for fn in (lambda: dist.reduce(fd.ones(3), 0), lambda: dist.gather(fd.ones(3)), lambda: dist.scatter(fd.ones(3)),
               lambda: dist.all_to_all_single(fd.ones(2), fd.ones(2)), lambda: dist.monitored_barrier()):
        with pytest.raises(RuntimeError, match="init_process_group"):
            fn()
    assert dist.group.WORLD is None
    with pytest.raises(ValueError, match="isend or irecv"):
        dist.P2POp(dist.all_reduce, fd.ones(1), 0)
    with pytest.raises(ValueError, match="unknown backend 'gloo'"):
        dist.init_process_group("gloo")
    with pytest.raises(RuntimeError, match="DistributedDataParallel"):
        fd.nn.parallel.DistributedDataParallel(fd.nn.Linear(2, 2))


@pytest.mark.parametrize("n,world,drop_last", [(10, 3, False), (10, 3, True), (2, 4, False), (12, 4, False)])
def test_distributed_sampler_partitions_the_dataset(n, world, drop_last):
    ds = list(range(n))
    samplers = [DistributedSampler(ds, num_replicas=world, rank=r, shuffle=True, seed=5, drop_last=drop_last)
                for r in range(world)]
    parts = [list(s) for s in samplers]
    per = n // world if drop_last else -(-n // world)
    assert all(len(p) == per == len(s) for p, s in zip(parts, samplers))
    flat = sum(parts, [])
    if drop_last:
        assert len(set(flat)) == len(flat)  # no sample twice
    else:
        assert set(flat) == set(range(n))  # every sample, padded by wrapping around
    for s in samplers:
        s.set_epoch(1)
    assert sum([list(s) for s in samplers], []) != flat  # a new order per epoch
    torch = pytest.importorskip("torch")
    from torch.utils.data.distributed import DistributedSampler as TorchSampler
    assert [len(TorchSampler(ds, world, r, drop_last=drop_last)) for r in range(world)] == [per] * world


def test_distributed_sampler_in_a_dataloader():
    x = fd.tensor(np.random.default_rng(0).standard_normal((11, 2)))
    y = fd.arange(11)
    seen = []
    for r in range(2):
        loader = DataLoader(TensorDataset(x, y), batch_size=4,
                            sampler=DistributedSampler(range(11), num_replicas=2, rank=r, shuffle=False))
        assert len(loader) == 2
        for xb, yb in loader:
            np.testing.assert_array_equal(xb.numpy(), x.numpy()[yb.numpy()])
            seen += yb.tolist()
    assert sorted(seen) == sorted(list(range(11)) + [0])
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(TensorDataset(x, y), sampler=[0, 1], shuffle=True)
    with pytest.raises(ValueError, match="invalid rank 2"):
        DistributedSampler(range(4), num_replicas=2, rank=2)


def test_post_accumulate_grad_hook_fires_once_with_the_full_gradient():
    rng = np.random.default_rng(1)
    w = fd.tensor(rng.standard_normal(5), requires_grad=True)
    a = fd.tensor(rng.standard_normal(5))
    seen = []
    h = w.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.numpy().copy()))
    ((w * a).sum() + (w * w).sum() + w.sum()).backward()  # three uses of w
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], a.numpy() + 2 * w.detach().numpy() + 1, rtol=1e-12)
    h.remove()
    (w * 2).sum().backward()
    assert len(seen) == 1
    with pytest.raises(ValueError, match="leaf"):
        (w * 2).register_post_accumulate_grad_hook(lambda p: None)
