"""DistributedDataParallel: one model replica per rank, gradients averaged over the ranks.

At construction the ranks check that they hold the same parameters (names, shapes, dtypes)
and take rank 0's parameters and buffers. Parameters are grouped, in reverse registration
order (the order backward produces their gradients), into buckets of about bucket_cap_mb of
one dtype; the first bucket (the last layers) stops at 1 MiB, as PyTorch's does, so that its
all-reduce starts while backward still works through the earlier layers. A
post-accumulate-grad hook on each parameter copies its finished gradient into its bucket's
flat buffer; a complete bucket is all-reduced at once with a non-blocking MPI request
(buckets are launched strictly in bucket order, so every rank posts the same collectives in
the same order) while backward goes on; the last bucket waits for all of them and divides
each flat buffer by the world size in place, once. Each .grad then becomes a view of its
bucket's buffer (PyTorch's gradient_as_bucket_view, for CPU parameters of the buffer's
dtype): no copy back, and a gradient accumulated into that view (zero_grad(set_to_none=False),
no_sync) is already in place for the next reduction. Every rank thus ends backward with the
same gradients: the summation order of an all-reduce is fixed by MPI for a given size, and
the division by the world size is the same on each rank.
"""
import contextlib
import weakref

import numpy as np

from fastdl import _C
from fastdl import distributed as dist
from fastdl._C import Tensor
from fastdl._tensor import no_grad as _no_grad
from fastdl.nn.modules.module import Module
from fastdl.utils._pytree import tree_tensors

FIRST_BUCKET_BYTES = 1024 * 1024  # PyTorch's first bucket: the last layers' gradients start reducing early


def _np(t):
    """A numpy view of a contiguous CPU tensor (float32 copy for the half types)."""
    t = t.detach()
    if str(t.dtype) in ("fastdl.float16", "fastdl.bfloat16", "float16", "bfloat16"):
        t = t._to_dtype(_C.dtype.float32)
    return np.asarray(t)


def _key(t):
    return (t.data_ptr(), tuple(t.shape), str(t.dtype))


class _Bucket:
    """Parameters whose gradients travel together in one flat buffer: numpy on the CPU (MPI),
    a fastdl tensor on the GPU (NCCL)."""

    def __init__(self, index, params, dtype, gpu):
        self.index, self.params = index, params  # list of (param index, param)
        self.offsets, n = [], 0
        for _, p in params:
            self.offsets.append(n)
            n += p.numel()
        self.views, self.ptrs = None, None
        if gpu:
            from fastdl import _tensor
            p0 = params[0][1]
            self.flat = _tensor.zeros(n, dtype=p0.dtype, device=p0.device)
        else:
            self.flat = np.zeros(n, dtype=dtype)
            # each parameter's gradient as a tensor over its slice of the buffer (None: a half
            # type, reduced in a float32 buffer, keeps a .grad of its own)
            self.views = [_C.from_numpy(self.flat[off:off + p.numel()].reshape(tuple(p.shape)))
                          if str(p.dtype).replace("fastdl.", "") == self.flat.dtype.name else None
                          for (_, p), off in zip(params, self.offsets)]
            self.ptrs = [v.data_ptr() if v is not None else None for v in self.views]
        self.pending, self.req = 0, None

    def holds(self, k, grad):
        """True when `grad` is parameter k's view of this bucket (the gradient is in place)."""
        return self.ptrs is not None and grad is not None and self.ptrs[k] is not None and \
            grad.data_ptr() == self.ptrs[k] and grad.is_contiguous()


class DistributedDataParallel(Module):
    """Wraps `module`; forward is the module's forward. Gradients are averaged over the
    process group during backward. Options as PyTorch's: bucket_cap_mb, find_unused_parameters
    (parameters the forward did not reach still take part, with zero gradient), broadcast_buffers
    (rank 0's buffers at each forward), no_sync() (accumulate locally, reduce at the next sync)."""

    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True, process_group=None,
                 bucket_cap_mb=25, find_unused_parameters=False, check_reduction=False, gradient_as_bucket_view=False,
                 static_graph=False):
        super().__init__()
        if not dist.is_initialized():
            raise RuntimeError("DistributedDataParallel: the default process group has not been initialized; call "
                               "fastdl.distributed.init_process_group('mpi') first (under mpirun)")
        self.module = module
        self.process_group = process_group if process_group is not None else dist.GroupMember.WORLD
        g = self.process_group
        if g.comm is None:
            raise RuntimeError(f"DistributedDataParallel: this rank is not a member of the process group {g.ranks}")
        self.broadcast_buffers, self.find_unused_parameters = broadcast_buffers, find_unused_parameters
        self.require_backward_grad_sync = True
        seen, named = set(), []
        for name, p in module.named_parameters():
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                named.append((name, p))
        self._gpu = any(p.device.type == "cuda" for _, p in named)
        for name, p in named:
            if (p.device.type == "cuda") != self._gpu or p.device.type not in ("cpu", "cuda"):
                raise RuntimeError(f"DistributedDataParallel: parameter '{name}' is on {p.device}; all parameters "
                                   f"must be on the CPU or all on this rank's GPU")
            if self._gpu and g.nccl is None:
                raise RuntimeError(f"DistributedDataParallel: parameter '{name}' is on {p.device}; CUDA parameters "
                                   f"need init_process_group('nccl')")
        self._names = [n for n, _ in named]
        self._params = [p for _, p in named]
        self._check_same_model(g)
        with _no_grad():
            self._sync_tensors([p for p in module.parameters()] + [b for b in module.buffers()])
        # buckets: reverse registration order, split on dtype change and at the size cap (1 MiB
        # for the first one)
        cap = max(1, int(bucket_cap_mb * 1024 * 1024))
        self._buckets, self._where = [], [None] * len(self._params)
        cur, cur_bytes, cur_dt = [], 0, None
        for i in reversed(range(len(self._params))):
            p = self._params[i]
            dt = np.dtype(str(p.dtype).replace("fastdl.", "")) if self._gpu else _np(p).dtype
            nbytes = p.numel() * dt.itemsize
            limit = min(cap, FIRST_BUCKET_BYTES) if not self._buckets else cap
            if cur and (dt != cur_dt or cur_bytes + nbytes > limit):
                self._buckets.append(_Bucket(len(self._buckets), cur, cur_dt, self._gpu))
                cur, cur_bytes = [], 0
            cur.append((i, p))
            cur_bytes += nbytes
            cur_dt = dt
        if cur:
            self._buckets.append(_Bucket(len(self._buckets), cur, cur_dt, self._gpu))
        for b in self._buckets:
            for k, (i, _) in enumerate(b.params):
                self._where[i] = (b, b.offsets[k], k)
        self._armed = False
        self._next_launch = 0
        self._ready = [False] * len(self._params)
        self._hooks = [p.register_post_accumulate_grad_hook(self._make_hook(i)) for i, p in enumerate(self._params)]
        weakref.finalize(self, _remove_all, list(self._hooks))

    # -- construction helpers ----------------------------------------------------------------

    def _check_same_model(self, g):
        mine = [(n, tuple(p.shape), str(p.dtype)) for n, p in zip(self._names, self._params)]
        everyone = g.comm.allgather(mine)
        for r, theirs in enumerate(everyone):
            if theirs != everyone[0]:
                diff = next((f"{a} vs {b}" for a, b in zip(everyone[0], theirs) if a != b),
                            f"{len(everyone[0])} vs {len(theirs)} parameters")
                raise ValueError(f"DistributedDataParallel: rank {g.ranks[r]} holds different parameters than rank "
                                 f"{g.ranks[0]} ({diff}); every rank must build the same model")

    def _sync_tensors(self, tensors):
        """Take the group's first rank's values: one broadcast per dtype over a packed buffer."""
        g = self.process_group
        if g.size() == 1 or not tensors:
            return
        if self._gpu:  # NCCL broadcasts, one per tensor, stream-ordered
            for t in tensors:
                dist.broadcast(t.detach(), src=g.ranks[0], group=g)
            return
        MPI = dist._State.MPI
        by_dt = {}
        for t in tensors:
            by_dt.setdefault(str(t.dtype), []).append(t)
        for ts in by_dt.values():
            bufs = [dist._Buf(t.detach() if t.is_contiguous() else t.detach().contiguous()) for t in ts]
            flat = np.concatenate([b.a for b in bufs]) if len(bufs) > 1 else bufs[0].a.copy()
            dist._poll([g.comm.Ibcast(flat, root=0)], "DistributedDataParallel (broadcast from rank 0)", g)
            off = 0
            for t, b in zip(ts, bufs):
                n = b.a.size
                b.a[...] = flat[off:off + n]
                off += n
                b.back()
                if not t.is_contiguous():
                    t.detach().copy_(b.t)

    # -- the reduction -----------------------------------------------------------------------

    def _make_hook(self, i):
        me = weakref.ref(self)  # the parameter must not keep its DDP alive (a cycle through C++)

        def hook(p):
            d = me()
            if d is not None:
                d._on_grad(i, p)
        return hook

    def _remove_hooks(self):
        for h in self._hooks:
            h.remove()
        self._hooks = []

    def _on_grad(self, i, p):
        if not self._armed or self._ready[i]:
            return
        b, off, k = self._where[i]
        if self._gpu:
            with _no_grad():
                b.flat[off:off + p.numel()].copy_(p.grad.detach().reshape(-1))
        elif not b.holds(k, p.grad):  # (a gradient accumulated into its view is in place)
            b.flat[off:off + p.numel()] = _np(p.grad).reshape(-1)
        self._ready[i] = True
        b.pending -= 1
        if b.pending == 0:
            self._launch_ready()
        else:
            self._progress()

    def _progress(self):
        if self._gpu:
            return
        reqs = [b.req for b in self._buckets[:self._next_launch] if b.req is not None]
        if reqs:
            dist._State.MPI.Request.Testall(reqs)

    def _launch_ready(self):
        MPI = dist._State.MPI
        g = self.process_group
        while self._next_launch < len(self._buckets) and self._buckets[self._next_launch].pending == 0:
            b = self._buckets[self._next_launch]
            if self._gpu:  # NCCL averages on the device's stream (ncclAvg)
                _C._nccl_collective(0, g.nccl, b.flat, b.flat, b.flat.numel(), 4)
            elif self._next_launch == len(self._buckets) - 1 and b.flat.nbytes >= 65536:
                # the last bucket has nothing left to overlap with: once a barrier (polled against
                # the timeout) shows every rank is here, the blocking all-reduce is the faster one
                dist._poll([g.comm.Ibarrier()], "DistributedDataParallel (gradient all_reduce)", g)
                g.comm.Allreduce(MPI.IN_PLACE, b.flat, MPI.SUM)
            else:
                b.req = g.comm.Iallreduce(MPI.IN_PLACE, b.flat, MPI.SUM)
            self._next_launch += 1
        if self._next_launch == len(self._buckets):
            self._finish()

    def _finish(self):
        g = self.process_group
        self._armed = False
        used = None
        if self.find_unused_parameters:
            used = np.array(self._used, dtype=np.uint8)
            dist._poll([g.comm.Iallreduce(dist._State.MPI.IN_PLACE, used, dist._State.MPI.LOR)],
                       "DistributedDataParallel (unused-parameter map)", g)
        n = g.size()
        if self._gpu:
            with _no_grad():
                for b in self._buckets:
                    for (i, p), off in zip(b.params, b.offsets):
                        if used is not None and not used[i]:
                            continue
                        avg = b.flat[off:off + p.numel()].reshape(tuple(p.shape))
                        if p.grad is None:
                            p.grad = avg.clone()
                        else:
                            p.grad.copy_(avg)
            return
        dist._poll([b.req for b in self._buckets if b.req is not None], "DistributedDataParallel (gradient all_reduce)",
                   g)
        with _no_grad():
            for b in self._buckets:
                b.req = None
                b.flat /= n  # in place, once
                for k, ((i, p), off) in enumerate(zip(b.params, b.offsets)):
                    if used is not None and not used[i]:
                        continue  # no rank used it: leave .grad as it was
                    if b.views[k] is not None:  # zero-copy: .grad is the bucket's slice
                        if not b.holds(k, p.grad):
                            p.grad = b.views[k]
                        continue
                    avg = b.flat[off:off + p.numel()].reshape(tuple(p.shape))
                    if p.grad is None:
                        p.grad = _C.from_numpy(avg.copy())._to_dtype(p.dtype)
                    else:
                        dst = dist._Buf(p.grad)
                        if p.grad.is_contiguous():
                            dst.a[...] = avg.reshape(-1)
                            dst.back()
                        else:
                            p.grad = _C.from_numpy(avg.copy())._to_dtype(p.dtype)

    def _arm(self, outputs):
        if self._armed:
            missing = [n for n, r in zip(self._names, self._ready) if not r]
            raise RuntimeError(
                "DistributedDataParallel: expected to have finished reduction in the prior iteration before starting a "
                "new one: the last backward did not produce gradients for parameters "
                f"{missing[:8]}{' ...' if len(missing) > 8 else ''}. Pass find_unused_parameters=True when some "
                "parameters do not take part in the loss, and make sure every forward's output takes part in it")
        self._armed = True
        self._next_launch = 0
        self._ready = [False] * len(self._params)
        for b in self._buckets:
            b.pending = len(b.params)
        if self.find_unused_parameters:
            reached = self._reached(outputs)
            self._used = [_key(p) in reached for p in self._params]
            for i, p in enumerate(self._params):
                if not self._used[i]:  # contributes its current gradient (or zeros) to the sum
                    b, off, k = self._where[i]
                    if b.holds(k, p.grad):  # its .grad must stay as it is, outside the reduction
                        p.grad = p.grad.clone()
                    if self._gpu:
                        with _no_grad():
                            seg = b.flat[off:off + p.numel()]
                            seg.copy_(seg * 0 if p.grad is None else p.grad.detach().reshape(-1))
                    else:
                        b.flat[off:off + p.numel()] = 0 if p.grad is None else _np(p.grad).reshape(-1)
                    self._ready[i] = True
                    b.pending -= 1
            if all(self._ready):
                self._launch_ready()

    @staticmethod
    def _reached(outputs):
        """The parameters (by storage key) that the graph behind `outputs` reaches."""
        stack, seen, keys = [], set(), set()
        for t in tree_tensors(outputs):
            if t.grad_fn is not None:
                stack.append(t.grad_fn)
            elif t.requires_grad:
                keys.add(_key(t))
        while stack:
            fn = stack.pop()
            if fn in seen:
                continue
            seen.add(fn)
            v = fn.variable
            if v is not None:
                keys.add(_key(v))
            for nxt, _ in fn.next_functions:
                if nxt is not None and nxt not in seen:
                    stack.append(nxt)
        return keys

    # -- module interface --------------------------------------------------------------------

    def forward(self, *args, **kwargs):
        g = self.process_group
        if self.broadcast_buffers and g.size() > 1:
            bufs = list(self.module.buffers())
            if bufs:
                with _no_grad():
                    self._sync_tensors(bufs)
        out = self.module(*args, **kwargs)
        if _C.is_grad_enabled() and self.require_backward_grad_sync and g.size() > 1:
            self._arm(out)
        elif _C.is_grad_enabled() and self.require_backward_grad_sync:
            self._armed = False  # one rank: nothing to reduce
        return out

    @contextlib.contextmanager
    def no_sync(self):
        """Inside, backward only accumulates local gradients; the first backward after the
        block reduces the accumulated sum."""
        prev = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = prev


def _remove_all(hooks):
    for h in hooks:
        h.remove()

