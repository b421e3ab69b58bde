"""Cases that test_distributed.py runs under `mpirun -n 2`: python tests/dist_worker.py CASE.
Each case asserts on every rank; a failed assertion ends the job non-zero (the excepthook of
init_process_group aborts it) with the traceback on stderr."""
import datetime
import sys
import time

import numpy as np

import fastdl as fd
import fastdl.distributed as dist
from fastdl import nn

R = dist.ReduceOp


def _t(a):
    return fd.from_numpy(np.ascontiguousarray(a))


def _raises(exc, words, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except exc as e:
        for w in words:
            assert w in str(e), f"{w!r} not in {e}"
        return
    raise AssertionError(f"{fn.__name__} did not raise {exc.__name__}")


def case_collectives():
    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    assert dist.is_initialized() and dist.get_backend() == "mpi" and world == 2
    rng = np.random.default_rng(7)  # same stream on every rank: each rank knows everyone's data
    ref = {R.SUM: np.sum, R.AVG: np.mean, R.MAX: np.max, R.MIN: np.min, R.PRODUCT: np.prod}
    for dt in (np.float64, np.float32):
        for op, fn in ref.items():
            xs = rng.standard_normal((world, 4, 3)).astype(dt)
            t = _t(xs[rank].copy())
            assert dist.all_reduce(t, op=op) is None
            tol = 1e-12 if dt == np.float64 else 1e-5
            np.testing.assert_allclose(t.numpy(), fn(xs, axis=0), rtol=tol, atol=tol)
    xi = rng.integers(-50, 50, (world, 7)).astype(np.int64)
    for op, fn in ((R.SUM, np.sum), (R.MAX, np.max), (R.MIN, np.min)):
        t = _t(xi[rank].copy())
        dist.all_reduce(t, op)
        np.testing.assert_array_equal(t.numpy(), fn(xi, axis=0))
    xb = rng.random((world, 6)) < 0.5
    t = _t(xb[rank].copy())
    dist.all_reduce(t, R.MAX)
    np.testing.assert_array_equal(t.numpy(), xb.any(0))
    xh = rng.standard_normal((world, 5)).astype(np.float32)
    t = _t(xh[rank]).to(fd.float16)
    dist.all_reduce(t)
    np.testing.assert_allclose(t.to(fd.float32).numpy(), xh.astype(np.float16).astype(np.float32).sum(0), rtol=2e-3,
                               atol=2e-3)
    # async: the work handle finishes the op (AVG divides in wait)
    xs = rng.standard_normal((world, 1000))
    t = _t(xs[rank].copy())
    w = dist.all_reduce(t, op=R.AVG, async_op=True)
    assert w.wait() and w.is_completed()
    np.testing.assert_allclose(t.numpy(), xs.mean(0), rtol=1e-12)
    # broadcast from rank 1
    xs = rng.standard_normal((world, 3, 2))
    t = _t(xs[rank].copy())
    dist.broadcast(t, src=1)
    np.testing.assert_array_equal(t.numpy(), xs[1])
    # all_gather (list) and all_gather_into_tensor (concatenated and stacked)
    xs = rng.standard_normal((world, 2, 3))
    outs = [fd.zeros(2, 3, dtype=fd.float64) for _ in range(world)]
    dist.all_gather(outs, _t(xs[rank]))
    for i in range(world):
        np.testing.assert_array_equal(outs[i].numpy(), xs[i])
    cat = fd.zeros(world * 2, 3, dtype=fd.float64)
    dist.all_gather_into_tensor(cat, _t(xs[rank]))
    np.testing.assert_array_equal(cat.numpy(), xs.reshape(world * 2, 3))
    stk = fd.zeros(world, 2, 3, dtype=fd.float64)
    dist.all_gather_into_tensor(stk, _t(xs[rank]), async_op=True).wait()
    np.testing.assert_array_equal(stk.numpy(), xs)
    # reduce_scatter_tensor: rank i keeps block i of the sum / mean
    xs = rng.standard_normal((world, world * 4))
    for op, fn in ((R.SUM, np.sum), (R.AVG, np.mean), (R.MAX, np.max)):
        out = fd.zeros(4, dtype=fd.float64)
        dist.reduce_scatter_tensor(out, _t(xs[rank]), op=op)
        np.testing.assert_allclose(out.numpy(), fn(xs, 0)[rank * 4:(rank + 1) * 4], rtol=1e-12)
    dist.barrier()
    dist.barrier(async_op=True).wait()
    # point to point: blocking, any source, and irecv posted before the matching send
    xs = rng.standard_normal((world, 5))
    if rank == 0:
        dist.send(_t(xs[0]), dst=1)
    else:
        got = fd.zeros(5, dtype=fd.float64)
        assert dist.recv(got) == 0
        np.testing.assert_array_equal(got.numpy(), xs[0])
    other = 1 - rank
    got = fd.zeros(5, dtype=fd.float64)
    rw = dist.irecv(got, src=other, tag=3)
    sw = dist.isend(_t(xs[rank]), dst=other, tag=3)
    sw.wait()
    rw.wait()
    assert rw.result() == other
    np.testing.assert_array_equal(got.numpy(), xs[other])
    # subgroups: a group of rank 1 alone; rank 0 is not a member
    g1 = dist.new_group([1])
    gall = dist.new_group([0, 1])
    t = _t(np.full(3, float(rank + 1)))
    if rank == 1:
        assert dist.get_rank(g1) == 0 and dist.get_world_size(g1) == 1
        dist.all_reduce(t, group=g1)
        np.testing.assert_array_equal(t.numpy(), [2.0, 2.0, 2.0])
    else:
        assert dist.get_rank(g1) == -1
        _raises(RuntimeError, ["all_reduce", "not a member"], dist.all_reduce, t, group=g1)
    t = _t(np.full(3, float(rank + 1)))
    dist.all_reduce(t, group=gall)
    np.testing.assert_array_equal(t.numpy(), [3.0, 3.0, 3.0])
    # mismatched shapes / dtypes across ranks: every rank raises, naming the collective and the shapes
    _raises(ValueError, ["all_reduce", "(3,)", "(4,)", "rank 0", "rank 1"], dist.all_reduce,
            fd.ones(3 + rank, dtype=fd.float64))
    _raises(ValueError, ["broadcast", "float32", "float64"], dist.broadcast,
            fd.ones(3, dtype=fd.float64 if rank else fd.float32), src=0)
    if rank == 0:
        dist.send(fd.ones(2, 3, dtype=fd.float32), dst=1)
    else:
        _raises(ValueError, ["recv", "rank 0 sent float32 with 6 elements"], dist.recv, fd.ones(4, dtype=fd.float32))
    dist.broadcast(t, src=0)  # the channel is still in step after the refused message
    # bad arguments on one rank only are caught before any message moves
    _raises(ValueError, ["all_reduce", "contiguous"], dist.all_reduce, fd.ones(3, 4).transpose(0, 1))
    _raises(TypeError, ["all_reduce", "AVG"], dist.all_reduce, fd.ones(3, dtype=fd.int64), R.AVG)
    _raises(ValueError, ["all_gather_into_tensor", "world_size"], dist.all_gather_into_tensor, fd.zeros(5),
            fd.zeros(2))
    objs = [None] * world
    dist.all_gather_object(objs, {"rank": rank})
    assert objs == [{"rank": 0}, {"rank": 1}]
    dist.destroy_process_group()
    assert not dist.is_initialized()
    print(f"rank {rank}: collectives ok", flush=True)


def case_rooted():
    """reduce / gather / scatter / all_to_all(_single) / reduce_scatter / object gather and
    scatter / batched p2p against numpy, on any number of ranks (the test runs 3)."""
    dist.init_process_group("mpi")
    rank, n = dist.get_rank(), dist.get_world_size()
    assert dist.group.WORLD is dist.GroupMember.WORLD and dist.group.WORLD is not None
    rng = np.random.default_rng(11)  # same stream everywhere: every rank knows all the data
    for dst in range(n):
        xs = rng.standard_normal((n, 3, 5))
        t = _t(xs[rank].copy())
        assert dist.reduce(t, dst, op=R.SUM) is None
        np.testing.assert_allclose(t.numpy(), xs.sum(0) if rank == dst else xs[rank], rtol=1e-12, atol=1e-12)
        t = _t(xs[rank].copy())
        dist.reduce(t, dst, op=R.AVG, async_op=True).wait()
        np.testing.assert_allclose(t.numpy(), xs.mean(0) if rank == dst else xs[rank], rtol=1e-12, atol=1e-12)
        xi = rng.integers(-9, 9, (n, 4)).astype(np.int64)
        t = _t(xi[rank].copy())
        dist.reduce(t, dst, op=R.MAX)
        np.testing.assert_array_equal(t.numpy(), xi.max(0) if rank == dst else xi[rank])
        # gather
        out = [fd.zeros(3, 5, dtype=fd.float64) for _ in range(n)] if rank == dst else None
        dist.gather(_t(xs[rank]), out, dst=dst)
        if rank == dst:
            for i in range(n):
                np.testing.assert_array_equal(out[i].numpy(), xs[i])
        # scatter (float32, and the source's list)
        xf = rng.standard_normal((n, 2, 7)).astype(np.float32)
        t = fd.zeros(2, 7)
        w = dist.scatter(t, [_t(xf[i]) for i in range(n)] if rank == dst else None, src=dst, async_op=True)
        w.wait()
        np.testing.assert_array_equal(t.numpy(), xf[rank])
    # all_to_all_single, equal blocks: rank r's block j goes to rank j as block r
    xa = rng.standard_normal((n, n * 2, 3))
    out = fd.zeros(n * 2, 3, dtype=fd.float64)
    dist.all_to_all_single(out, _t(xa[rank]))
    np.testing.assert_array_equal(out.numpy(), np.concatenate([xa[j][2 * rank:2 * rank + 2] for j in range(n)]))
    # uneven: rank j sends (i + j + 1) rows to rank i
    rows = lambda j, i: i + j + 1  # noqa: E731
    send = [rng.standard_normal((sum(rows(j, i) for i in range(n)), 4)) for j in range(n)]
    insz = [rows(rank, i) for i in range(n)]
    outsz = [rows(j, rank) for j in range(n)]
    out = fd.zeros(sum(outsz), 4, dtype=fd.float64)
    dist.all_to_all_single(out, _t(send[rank]), output_split_sizes=outsz, input_split_sizes=insz)
    expect = [send[j][sum(rows(j, i) for i in range(rank)):][:rows(j, rank)] for j in range(n)]
    np.testing.assert_array_equal(out.numpy(), np.concatenate(expect))
    _raises(ValueError, ["all_to_all_single", "split sizes"], dist.all_to_all_single, out, _t(send[rank]),
            outsz, insz[:-1])
    # all_to_all with lists of different sizes per pair
    blocks = [[rng.standard_normal((j + i + 1,)).astype(np.float32) for i in range(n)] for j in range(n)]
    outs = [fd.zeros(j + rank + 1) for j in range(n)]
    dist.all_to_all(outs, [_t(b) for b in blocks[rank]])
    for j in range(n):
        np.testing.assert_array_equal(outs[j].numpy(), blocks[j][rank])
    # reduce_scatter over a list
    xr = rng.standard_normal((n, n, 6))
    t = fd.zeros(6, dtype=fd.float64)
    dist.reduce_scatter(t, [_t(xr[rank][i]) for i in range(n)], op=R.SUM)
    np.testing.assert_allclose(t.numpy(), xr[:, rank].sum(0), rtol=1e-12, atol=1e-12)
    # objects
    got = [None] * n if rank == 0 else None
    dist.gather_object({"rank": rank}, got, dst=0)
    if rank == 0:
        assert got == [{"rank": i} for i in range(n)]
    box = [None]
    dist.scatter_object_list(box, [f"to {i}" for i in range(n)] if rank == n - 1 else None, src=n - 1)
    assert box == [f"to {rank}"]
    # batched p2p ring: send to the right, receive from the left
    mine = _t(np.full(5, float(rank)))
    got = fd.zeros(5, dtype=fd.float64)
    works = dist.batch_isend_irecv([dist.P2POp(dist.isend, mine, (rank + 1) % n),
                                    dist.P2POp(dist.irecv, got, (rank - 1) % n)])
    for w in works:
        w.wait()
    np.testing.assert_array_equal(got.numpy(), np.full(5, float((rank - 1) % n)))
    dist.monitored_barrier(timeout=datetime.timedelta(seconds=30))
    # argument errors name the op and the argument
    _raises(ValueError, ["gather", "gather_list"], dist.gather, _t(xs[rank]), [fd.zeros(1)] if rank != 0 else None, 0)
    _raises(ValueError, ["reduce", "dst=99"], dist.reduce, _t(xs[rank]), 99)
    dist.destroy_process_group()
    print(f"rooted ok {rank}")


def _mlp(seed, bn=False):
    fd.manual_seed(seed)
    # before a BatchNorm a bias has no gradient (rounding noise only, which Adam would blow up)
    # (96 wide: the last DDP bucket passes 64 KiB, the size that takes the blocking all-reduce)
    layers = [nn.Linear(12, 96, bias=not bn)] + ([nn.BatchNorm1d(96)] if bn else []) + [
        nn.Tanh(), nn.Linear(96, 96), nn.GELU(), nn.Linear(96, 4)]
    return nn.Sequential(*layers).double()


def _params(m):
    return [p.detach().numpy().copy() for p in m.parameters()]


def _train(model, opt, batches, accumulate=1, ctx=None, set_to_none=True):
    loss_fn = nn.CrossEntropyLoss()
    for step, (x, y) in enumerate(batches):
        opt.zero_grad(set_to_none=set_to_none)
        xs, ys = np.array_split(x, accumulate), np.array_split(y, accumulate)
        for k in range(accumulate):
            sync = ctx is None or k == accumulate - 1
            with (ctx() if not sync else _Null()):
                loss = loss_fn(model(_t(xs[k])), _t(ys[k])) * (1.0 / accumulate)
                loss.backward()
        opt.step()


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *e):
        return False


def case_ddp():
    from fastdl.nn.parallel import DistributedDataParallel as DDP
    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    rng = np.random.default_rng(3)
    steps, batch = 20, 16
    data = [(rng.standard_normal((batch, 12)), rng.integers(0, 4, batch).astype(np.int64)) for _ in range(steps)]
    shard = [(x[rank::world], y[rank::world]) for x, y in data]

    def check(name, mk, ddp_kw, accumulate=1, lr=1e-2, mk_ref=None, set_to_none=True):
        ref = (mk_ref or mk)(0)  # one process, full batches (every rank computes it)
        _train(ref, fd.optim.AdamW(ref.parameters(), lr=lr, weight_decay=0.01), data)
        local = mk(100 + rank)  # different init per rank: DDP must take rank 0's
        if rank == 0:
            for a, b in zip(local.parameters(), (mk_ref or mk)(0).parameters()):
                a.detach().copy_(b.detach())
        model = DDP(local, **ddp_kw)
        _train(model, fd.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01), shard, accumulate,
               model.no_sync if accumulate > 1 else None, set_to_none)
        mine = _params(local)
        for a, b in zip(mine, _params(ref)):
            err = float(np.abs(a - b).max())
            assert err <= 1e-12, f"{name}: DDP differs from one process by {err}"
        others = [None] * world
        dist.all_gather_object(others, mine)
        for other in others:
            for a, b in zip(other, mine):
                assert np.array_equal(a, b), f"{name}: ranks disagree"
        if rank == 0:
            print(f"{name}: max |ddp - single| = "
                  f"{max(float(np.abs(a - b).max()) for a, b in zip(mine, _params(ref))):.2e}", flush=True)
        return local, ref

    check("ddp", lambda s: _mlp(s), {})
    check("ddp many buckets", lambda s: _mlp(s), {"bucket_cap_mb": 0.001})
    check("ddp no_sync x2", lambda s: _mlp(s), {}, accumulate=2)
    # gradients accumulated straight into the buckets (each .grad a view of its bucket)
    check("ddp zero_grad(set_to_none=False)", lambda s: _mlp(s), {}, set_to_none=False)
    check("ddp no_sync x2, set_to_none=False", lambda s: _mlp(s), {}, accumulate=2, set_to_none=False)
    # the first bucket (the last layers) stops at 1 MiB; after backward each .grad is its
    # bucket's slice (gradient_as_bucket_view), the second bucket's too
    big = DDP(nn.Sequential(nn.Linear(512, 512), nn.Tanh(), nn.Linear(512, 64)).double())
    assert [sum(p.numel() for _, p in b.params) * 8 for b in big._buckets] == [(64 + 512 * 64 + 512) * 8,
                                                                              512 * 512 * 8]
    big(_t(rng.standard_normal((4, 512)))).sum().backward()
    for b in big._buckets:
        for k, (i, p) in enumerate(b.params):
            assert b.holds(k, p.grad), f"parameter {i}: .grad is not a view of its bucket"
    local, ref = check("ddp syncbn", lambda s: nn.SyncBatchNorm.convert_sync_batchnorm(_mlp(s, bn=True)), {},
                       mk_ref=lambda s: _mlp(s, bn=True))
    assert isinstance(local[1], nn.SyncBatchNorm)
    for name in ("running_mean", "running_var"):
        err = float(np.abs(getattr(local[1], name).numpy() - getattr(ref[1], name).numpy()).max())
        assert err <= 1e-12, f"syncbn {name} differs by {err}"

    class Branchy(nn.Module):
        def __init__(self, s):
            super().__init__()
            fd.manual_seed(s)
            self.body, self.unused = _mlp(s), nn.Linear(4, 4).double()

        def forward(self, x):
            return self.body(x)

    model = DDP(Branchy(0), find_unused_parameters=True, bucket_cap_mb=0.001)
    _train(model, fd.optim.SGD(model.parameters(), lr=0.1), shard[:3])
    assert model.module.unused.weight.grad is None
    strict = DDP(Branchy(0))
    loss = strict(_t(shard[0][0])).sum()
    loss.backward()
    _raises(RuntimeError, ["finished reduction", "unused.weight", "find_unused_parameters"], strict, _t(shard[0][0]))
    print(f"rank {rank}: ddp ok", flush=True)


def case_nccl():
    """The 'nccl' backend on CUDA tensors (one rank per GPU), against numpy."""
    from fastdl.nn.parallel import DistributedDataParallel as DDP
    dist.init_process_group("nccl")
    rank, world = dist.get_rank(), dist.get_world_size()
    dev = f"cuda:{dist.GroupMember.WORLD.device}"
    rng = np.random.default_rng(11)
    xs = rng.standard_normal((world, 6, 5)).astype(np.float32)
    for op, fn in ((R.SUM, np.sum), (R.AVG, np.mean), (R.MAX, np.max), (R.MIN, np.min)):
        t = _t(xs[rank]).to(dev)
        dist.all_reduce(t, op=op)
        np.testing.assert_allclose(t.cpu().numpy(), fn(xs, 0), rtol=1e-5, atol=1e-5)
    t = _t(xs[rank]).to(dev)
    dist.all_reduce(t, async_op=True).wait()
    np.testing.assert_allclose(t.cpu().numpy(), xs.sum(0), rtol=1e-5, atol=1e-5)
    t = _t(xs[rank]).to(dev)
    dist.broadcast(t, src=0)
    np.testing.assert_array_equal(t.cpu().numpy(), xs[0])
    out = fd.zeros(world * 6, 5, device=dev)
    dist.all_gather_into_tensor(out, _t(xs[rank]).to(dev))
    np.testing.assert_array_equal(out.cpu().numpy(), xs.reshape(world * 6, 5))
    lst = [fd.zeros(6, 5, device=dev) for _ in range(world)]
    dist.all_gather(lst, _t(xs[rank]).to(dev))
    for i in range(world):
        np.testing.assert_array_equal(lst[i].cpu().numpy(), xs[i])
    flat = rng.standard_normal((world, world * 3)).astype(np.float32)
    o = fd.zeros(3, device=dev)
    dist.reduce_scatter_tensor(o, _t(flat[rank]).to(dev))
    np.testing.assert_allclose(o.cpu().numpy(), flat.sum(0)[rank * 3:(rank + 1) * 3], rtol=1e-5, atol=1e-5)
    cpu = _t(xs[rank].copy())
    dist.all_reduce(cpu)  # CPU tensors still go over MPI
    np.testing.assert_allclose(cpu.numpy(), xs.sum(0), rtol=1e-5)
    model = DDP(_mlp(0).float().to(dev))
    x, y = _t(rng.standard_normal((8, 12)).astype(np.float32)).to(dev), _t(rng.integers(0, 4, 8)).to(dev)
    nn.CrossEntropyLoss()(model(x), y).backward()
    grads = [p.grad.cpu().numpy() for p in model.parameters()]
    everyone = [None] * world
    dist.all_gather_object(everyone, grads)
    for other in everyone:
        for a, b in zip(other, grads):
            assert np.array_equal(a, b), "nccl DDP: ranks disagree"
    dist.destroy_process_group()
    print(f"rank {rank}: nccl ok", flush=True)


def case_fault():
    dist.init_process_group("mpi")
    if dist.get_rank() == 1:
        time.sleep(0.5)
        raise ValueError("boom from rank 1")
    dist.all_reduce(fd.ones(4))  # rank 0 waits here: the abort must end it
    time.sleep(120)


def case_exit():
    """Rank 1 leaves through sys.exit(3) from inside a try / finally (as from a training loop)."""
    dist.init_process_group("mpi")

    def train():
        try:
            time.sleep(0.5)
            sys.exit(3)
        finally:
            print("rank 1: cleanup ran", flush=True)
    if dist.get_rank() == 1:
        train()
    dist.all_reduce(fd.ones(4))  # rank 0 waits here: the abort must end it
    time.sleep(120)


def case_exit_clean():
    """A sys.exit(3) that the program catches is no exit; sys.exit(0) after destroy_process_group
    (and on rank 1 exit(0) while the group is still up) ends the job cleanly."""
    dist.init_process_group("mpi")
    rank = dist.get_rank()
    try:
        sys.exit(3)
    except SystemExit as e:
        assert e.code == 3
    t = fd.ones(4)
    dist.all_reduce(t)
    assert t.tolist() == [2.0] * 4
    print(f"rank {rank}: exit clean", flush=True)
    if rank == 1:
        sys.exit(0)  # the group is still up: a zero status leaves through MPI_Finalize as usual
    dist.destroy_process_group()
    sys.exit(0)


def case_train():
    """`fastdl train ARGS...` (the arguments after 'train') on every rank. Each rank then prints
    to stderr a checksum of the final parameters of every model it wrapped in
    DistributedDataParallel, and each fd.save it made, for the test to compare."""
    import zlib
    from fastdl.nn.parallel import DistributedDataParallel as DDP
    from fastdl.train.main import main
    wrapped, init, save = [], DDP.__init__, fd.save

    def record(self, module, *args, **kw):
        init(self, module, *args, **kw)
        wrapped.append(module)

    def logged_save(obj, path, *args, **kw):
        print(f"rank {dist.get_rank()}: saved {path}", file=sys.stderr, flush=True)
        return save(obj, path, *args, **kw)
    DDP.__init__, fd.save = record, logged_save
    assert main(sys.argv[2:]) == 0
    crcs = [zlib.crc32(b"".join(np.ascontiguousarray(p.detach().numpy()).tobytes() for p in m.parameters()))
            for m in wrapped]
    print(f"rank {dist.get_rank()}: {len(crcs)} models, parameter crc32 {crcs}", file=sys.stderr, flush=True)


def case_timeout():
    dist.init_process_group("mpi", timeout=datetime.timedelta(seconds=2))
    if dist.get_rank() == 1:
        time.sleep(120)  # a stuck rank
    dist.all_reduce(fd.ones(4))


if __name__ == "__main__":
    fd.set_num_threads(1)  # two ranks share the test machine's cores
    globals()["case_" + sys.argv[1]]()
