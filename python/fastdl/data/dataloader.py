"""DataLoader (torch.utils.data's): batches of a map-style dataset in a sampler's order, or of
an iterable dataset's stream, collated; optional worker threads.

Map-style: a batch sampler (BatchSampler over RandomSampler when shuffling, SequentialSampler
otherwise) gives each batch's indices; datasets with a `fetch(indices)` method (TensorDataset,
Subset of one) hand over a whole batch in one indexing op per tensor instead of per sample.
batch_size=None turns batching off: samples come one at a time through default_convert.

Workers are threads, not processes: batches are fetched ahead by num_workers threads and come
back in order (the native ops release the GIL, so numeric loading overlaps the training step).
Each worker sees its own get_worker_info() and runs worker_init_fn(id) first; an iterable
dataset is iterated once per worker, as in PyTorch, so a dataset that should not repeat splits
its stream by get_worker_info().id."""
import collections
import concurrent.futures
import itertools
import numbers
import queue
import threading

import numpy as np

from fastdl import _C
from fastdl._C import Tensor
from fastdl.data.dataset import IterableDataset
from fastdl.data.sampler import BatchSampler, RandomSampler, SequentialSampler
from fastdl.random import Generator, numpy_rng


def default_collate(batch):
    """Stack a list of samples: tensors -> stacked tensor, numpy arrays / numbers -> tensor (Python
    floats float64, ints int64), tuples / lists -> a list of collated fields (a namedtuple stays
    one), dicts -> dicts of collated fields, str -> list."""
    first = batch[0]
    if isinstance(first, Tensor):
        return _C.stack(list(batch), 0)
    if isinstance(first, np.ndarray):
        return _C.from_numpy(np.ascontiguousarray(np.stack(batch)))
    if isinstance(first, (bool, np.bool_)):
        return _C.from_numpy(np.asarray(batch, dtype=np.bool_))
    if isinstance(first, numbers.Integral):
        return _C.from_numpy(np.asarray(batch, dtype=np.int64))
    if isinstance(first, numbers.Real):  # Python floats: float64, as PyTorch's collate
        return _C.from_numpy(np.asarray(batch, dtype=np.float64)) if not isinstance(first, np.floating) \
            else _C.from_numpy(np.asarray(batch))
    if isinstance(first, str):
        return list(batch)
    if isinstance(first, dict):
        return {k: default_collate([b[k] for b in batch]) for k in first}
    if isinstance(first, (tuple, list)):  # a list of the fields (a namedtuple keeps its type), as PyTorch
        if any(len(b) != len(first) for b in batch):
            raise ValueError("default_collate: each element in list of batch should be of equal size")
        fields = [default_collate(list(f)) for f in zip(*batch)]
        return type(first)(*fields) if isinstance(first, tuple) and hasattr(first, "_fields") else fields
    raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
                    f"found {type(first).__name__}")


def default_convert(data):
    """A sample as batch_size=None hands it over: numpy arrays (and numpy scalars) become tensors,
    containers are converted element by element, anything else is left as it is."""
    if isinstance(data, np.ndarray) and data.dtype.kind in "biuf":
        return _C.from_numpy(np.ascontiguousarray(data))
    if isinstance(data, np.generic) and data.dtype.kind in "biuf":
        return _C.from_numpy(np.asarray(data))
    if isinstance(data, dict):
        return {k: default_convert(v) for k, v in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):  # namedtuple
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, (list, tuple)):
        return [default_convert(d) for d in data]
    return data


WorkerInfo = collections.namedtuple("WorkerInfo", "id num_workers seed dataset")
_worker = threading.local()


def get_worker_info():
    """In a DataLoader worker: its WorkerInfo(id, num_workers, seed, dataset); elsewhere None."""
    return getattr(_worker, "info", None)


class DataLoader:
    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None, persistent_workers=False,
                 pin_memory_device="", in_order=True, seed=None):
        if num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable workers.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified with workers; let num_workers > 0 to "
                             "enable them, otherwise set prefetch_factor to None.")
        if multiprocessing_context is not None and num_workers == 0:
            raise ValueError("multiprocessing_context can only be used with workers (num_workers > 0)")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        if prefetch_factor is not None and prefetch_factor < 1:
            raise ValueError(f"prefetch_factor option should be positive; got {prefetch_factor}")
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral)
                                       or batch_size < 1):
            raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size}")
        iterable = isinstance(dataset, IterableDataset)
        if iterable:
            if shuffle not in (None, False):
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle option, but got "
                                 f"shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified sampler option, but got "
                                 f"sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified batch_sampler option, but "
                                 f"got batch_sampler={batch_sampler}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, and "
                                 "drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with drop_last")
        self.dataset, self.batch_size, self.drop_last = dataset, batch_size, bool(drop_last)
        self.shuffle = bool(shuffle)
        self.num_workers, self.timeout, self.worker_init_fn = int(num_workers), timeout, worker_init_fn
        self.prefetch_factor = (2 if prefetch_factor is None else int(prefetch_factor)) if num_workers else None
        self.pin_memory, self.persistent_workers, self.in_order = pin_memory, persistent_workers, in_order
        self.multiprocessing_context, self.pin_memory_device = multiprocessing_context, pin_memory_device
        self._auto_collation = batch_sampler is not None or batch_size is not None
        self.collate_fn = collate_fn if collate_fn is not None else (
            default_collate if self._auto_collation else default_convert)
        self._default_collate = collate_fn is None
        # generator: a fastdl Generator or None (the global one), drawn from at each epoch as in
        # PyTorch; fastdl also takes a numpy Generator, or an int seed (seed= too) for a numpy
        # generator made here, whose epochs continue one stream
        self.generator = generator
        if seed is not None or (isinstance(generator, numbers.Integral) and not isinstance(generator, bool)):
            self._rng = np.random.default_rng(seed if seed is not None else generator)
        elif generator is None or isinstance(generator, (Generator, np.random.Generator)):
            self._rng = generator
        else:
            raise TypeError(f"DataLoader: generator must be a fastdl Generator, a numpy Generator, an int seed or "
                            f"None; got {type(generator).__name__}")
        if iterable:
            self.sampler = self.batch_sampler = None
            self._initialized = True
            return
        if sampler is None:
            sampler = RandomSampler(dataset, generator=self._rng) if shuffle \
                else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, self.drop_last)
        self.sampler, self.batch_sampler = sampler, batch_sampler
        self._initialized = True

    def __len__(self):
        if isinstance(self.dataset, IterableDataset):
            n = len(self.dataset)  # TypeError for a stream without a length, as in PyTorch
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return len(self.batch_sampler if self._auto_collation else self.sampler)

    # ---- map-style
    def _fetch(self, idx):
        if not self._auto_collation:
            return self.collate_fn(self.dataset[idx])
        fetch = getattr(self.dataset, "fetch", None) if self._default_collate else None
        if fetch is not None:
            return fetch(np.asarray(idx, dtype=np.int64))
        many = getattr(self.dataset, "__getitems__", None)  # a batch of samples in one call, as PyTorch
        return self.collate_fn(many(list(idx)) if many is not None else [self.dataset[int(i)] for i in idx])

    def _index_stream(self):
        return iter(self.batch_sampler if self._auto_collation else self.sampler)

    # ---- iterable
    def _stream(self):
        it = iter(self.dataset)
        if not self._auto_collation:
            for x in it:
                yield self.collate_fn(x)
            return
        while True:
            batch = list(itertools.islice(it, self.batch_size))
            if not batch or (self.drop_last and len(batch) < self.batch_size):
                return
            yield self.collate_fn(batch)

    _FROZEN = ("batch_size", "batch_sampler", "sampler", "drop_last", "dataset", "persistent_workers")

    def __setattr__(self, name, value):
        if name in self._FROZEN and getattr(self, "_initialized", False):
            raise ValueError(f"{name} attribute should not be set after {type(self).__name__} is initialized")
        super().__setattr__(name, value)

    def __iter__(self):
        if self.num_workers == 0:
            if isinstance(self.dataset, IterableDataset):
                it = self._stream()
            else:
                it = (self._fetch(idx) for idx in self._index_stream())
        else:
            seed = self._draw_seed()
            it = self._stream_workers(seed) if isinstance(self.dataset, IterableDataset) else self._map_workers(seed)
        return _LoaderIter(it, self)

    def _draw_seed(self):
        """A seed from the loader's random source (the workers' base seed; fastdl.train's sharding)."""
        return int(numpy_rng(self._rng, "DataLoader").integers(2 ** 62))

    def _start_worker(self, wid, seed):
        _worker.info = WorkerInfo(wid, self.num_workers, seed + wid, self.dataset)
        if self.worker_init_fn is not None:
            self.worker_init_fn(wid)

    def _wait(self, fut):
        try:
            return fut.result(timeout=self.timeout or None)
        except concurrent.futures.TimeoutError:
            raise RuntimeError(f"DataLoader timed out after {self.timeout} seconds") from None

    def _map_workers(self, seed):
        ids = itertools.count()
        pool = concurrent.futures.ThreadPoolExecutor(
            self.num_workers, initializer=lambda: self._start_worker(next(ids), seed))
        try:
            pending = collections.deque()
            indices = self._index_stream()
            for idx in itertools.islice(indices, self.num_workers * self.prefetch_factor):
                pending.append(pool.submit(self._fetch, idx))
            while pending:
                out = self._wait(pending.popleft())
                for idx in itertools.islice(indices, 1):
                    pending.append(pool.submit(self._fetch, idx))
                yield out
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _stream_workers(self, seed):
        # each worker iterates the dataset and batches its own samples; batches are taken from the
        # workers in turn, a finished worker dropping out of the rotation
        stop = threading.Event()
        queues = [queue.Queue(self.prefetch_factor) for _ in range(self.num_workers)]
        done = object()

        def work(wid):
            def put(item):
                while not stop.is_set():
                    try:
                        queues[wid].put(item, timeout=0.05)
                        return True
                    except queue.Full:
                        pass
                return False
            try:
                self._start_worker(wid, seed)
                for batch in self._stream():
                    if not put((None, batch)):
                        return
            except BaseException as e:  # handed to the consumer
                put((e, None))
                return
            put((None, done))

        threads = [threading.Thread(target=work, args=(w,), daemon=True) for w in range(self.num_workers)]
        for t in threads:
            t.start()
        try:
            live = list(range(self.num_workers))
            while live:
                for wid in list(live):
                    try:
                        err, batch = queues[wid].get(timeout=self.timeout or None)
                    except queue.Empty:
                        raise RuntimeError(f"DataLoader timed out after {self.timeout} seconds") from None
                    if err is not None:
                        raise err
                    if batch is done:
                        live.remove(wid)
                    else:
                        yield batch
        finally:
            stop.set()
            for t in threads:
                t.join()


class _LoaderIter:
    """One epoch's iterator: its batches, with len() (the loader's), and close() to stop workers."""

    def __init__(self, it, loader):
        self._it, self._loader = it, loader

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._it)

    def __len__(self):
        return len(self._loader)

    def close(self):
        self._it.close()
