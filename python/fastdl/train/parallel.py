"""What train.fit does differently under `mpirun -n N` (N > 1): the process group is joined
when MPI launched the script (fit and `fastdl train` run unchanged), the model is wrapped in
DistributedDataParallel, each rank trains on its shard of the training data (a DataLoader gets a
DistributedSampler; any other iterable of batches is dealt out round-robin), losses and metrics
are averaged over all ranks' samples, and only rank 0 prints, shows progress, saves and plots.

The trainers outside fit use the same pieces (wrap, shard, rank_seed, all_mean): train/lm.py
(every rank its own random batches), train/gnn.py (the training nodes shared out), train_gan
(both networks wrapped) and the generative and CNN trainers around fit."""
import os

import numpy as np

from fastdl import _C
from fastdl import distributed as dist

_SIZE_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")


def launched_world_size():
    """The number of processes an MPI launcher started for this job (1 when none did)."""
    for k in _SIZE_VARS:
        v = os.environ.get(k)
        if v and v.isdigit():
            return int(v)
    return 1


def auto_init():
    """Join the default process group when an MPI launcher started several processes; returns
    True when training runs data-parallel over more than one rank."""
    if not dist.is_initialized() and launched_world_size() > 1:
        dist.init_process_group("mpi")
        local = os.environ.get("OMPI_COMM_WORLD_LOCAL_SIZE") or os.environ.get("MPI_LOCALNRANKS")
        if local and local.isdigit() and int(local) > 1:  # share this node's cores out between its ranks
            _C.set_num_threads(max(1, _C.get_num_threads() // int(local)))
    return dist.is_initialized() and dist.get_world_size() > 1


def is_main_process():
    """True on rank 0 (and whenever no process group is up): the rank that prints and saves."""
    return not dist.is_initialized() or dist.get_rank() == 0


def quiet_other_ranks():
    """Send every rank's stdout but rank 0's to /dev/null (errors still reach stderr)."""
    if not is_main_process():
        import sys
        sys.stdout = open(os.devnull, "w")


def describe(note="the batch size is per rank"):
    """', data-parallel over N ranks (MPI, <note>)' under mpirun, else ''."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        return f", data-parallel over {dist.get_world_size()} ranks (MPI, {note})"
    return ""


class _RoundRobin:
    """Batches i with i % world == rank, in full rounds only (every rank takes the same steps)."""

    def __init__(self, loader, world, rank):
        self.loader, self.world, self.rank = loader, world, rank

    def __len__(self):
        return len(self.loader) // self.world

    def __iter__(self):
        it = iter(self.loader)
        for batches in zip(*([it] * self.world)):
            yield batches[self.rank]


def active():
    """True when a process group of more than one rank is up (after auto_init under mpirun)."""
    return dist.is_initialized() and dist.get_world_size() > 1


def rank():
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_initialized() else 0


def world():
    """The number of ranks training together (1 without a process group)."""
    return dist.get_world_size() if dist.is_initialized() else 1


def rank_seed(seed):
    """A seed for this rank's own random stream (batches, noise, dropout): `seed` itself on
    rank 0 (a one-process run keeps its numbers), a distinct one on every other rank."""
    r = rank()
    return seed if r == 0 else seed + 7919 * r


def wrap(model):
    """`model` in DistributedDataParallel when training data-parallel (unchanged otherwise, or
    when it is wrapped already)."""
    from fastdl.nn.parallel import DistributedDataParallel as DDP
    return DDP(model) if active() and not isinstance(model, DDP) else model


def unwrap(model):
    """The module inside a DistributedDataParallel (the model itself otherwise)."""
    from fastdl.nn.parallel import DistributedDataParallel as DDP
    return model.module if isinstance(model, DDP) else model


def shard(loader, shuffle=None, drop_last=None):
    """This rank's part of `loader` (see the module docstring). A loader that already draws
    through a DistributedSampler (also behind a wrapper exposing it as .sampler) is returned as is."""
    from fastdl.data import DataLoader, DistributedSampler
    world, rank = dist.get_world_size(), dist.get_rank()
    if isinstance(getattr(loader, "sampler", None), DistributedSampler):
        return loader
    if isinstance(loader, DataLoader):
        seed = loader._draw_seed()
        seed = dist.GroupMember.WORLD.comm.bcast(seed, root=0)  # one permutation for all ranks
        shuffle = loader.shuffle if shuffle is None else shuffle
        sampler = DistributedSampler(loader.dataset, world, rank, shuffle=shuffle, seed=seed,
                                     drop_last=loader.drop_last if drop_last is None else drop_last)
        return DataLoader(loader.dataset, batch_size=loader.batch_size, drop_last=loader.drop_last,
                          collate_fn=loader.collate_fn, sampler=sampler)
    return _RoundRobin(loader, world, rank)


def _eval_shard(loader):
    """Evaluation shard: each sample exactly once over the ranks (no padding; ranks may take
    different numbers of batches, so nothing here may communicate per batch)."""
    from fastdl.data import DataLoader
    if isinstance(loader, DataLoader) and loader.sampler is None:
        world, rank = dist.get_world_size(), dist.get_rank()
        return DataLoader(loader.dataset, batch_size=loader.batch_size, collate_fn=loader.collate_fn,
                          sampler=range(rank, len(loader.dataset), world))
    return _RoundRobin(loader, dist.get_world_size(), dist.get_rank()) if hasattr(loader, "__len__") else loader


class _Counting:
    def __init__(self, loader):
        self.loader, self.n = loader, 0

    def __iter__(self):
        for x, y in self.loader:
            self.n += y.shape[0]
            yield x, y


def all_sum(values):
    """Sum a list of floats over the ranks (one float64 all-reduce)."""
    t = _C.from_numpy(np.asarray(values, dtype=np.float64).copy())
    dist.all_reduce(t)
    return t.numpy().tolist()


def all_mean(values):
    """Average a list of floats over the ranks (the values themselves on one process)."""
    if not active():
        return list(values)
    return [v / dist.get_world_size() for v in all_sum(values)]


class DataParallelFit:
    """fit's helper on more than one rank: the DDP-wrapped model and the sharded loaders."""

    def __init__(self, model, train_loader):
        from fastdl.nn.parallel import DistributedDataParallel as DDP
        self.own_ddp = not isinstance(model, DDP)
        self.net = DDP(model) if self.own_ddp else model
        self.train_loader = shard(train_loader)
        self.rank, self.world = dist.get_rank(), dist.get_world_size()

    def set_epoch(self, epoch):
        sampler = getattr(self.train_loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)

    def mean_loss(self, total, count):
        t, n = all_sum([total, count])
        return t / max(n, 1)

    def evaluate(self, model, loader, loss_fn, metrics):
        """fit.evaluate over this rank's share of `loader`, combined over the ranks."""
        from fastdl.train.fit import evaluate
        part = _Counting(_eval_shard(loader))
        logs = evaluate(model, part, loss_fn, metrics)
        n = float(part.n)
        keys = sorted(logs)
        sums = all_sum([n] + [logs[k] * n for k in keys])
        return {k: s / max(sums[0], 1) for k, s in zip(keys, sums[1:])}

    def close(self):
        if self.own_ddp:
            self.net._remove_hooks()
