"""DataLoader: batches of a map-style dataset, shuffled by a seeded numpy generator, with
drop_last and default collation. Datasets with a `fetch(indices)` method (TensorDataset,
Subset of one) hand over a whole batch in one indexing op per tensor instead of per sample."""
import numbers

import numpy as np

from fastdl import _C
from fastdl._C import Tensor


def default_collate(batch):
    """Stack a list of samples: tensors -> stacked tensor, numpy arrays / numbers -> tensor,
    tuples/lists -> tuples of collated fields, dicts -> dicts of collated fields, str -> list."""
    first = batch[0]
    if isinstance(first, Tensor):
        return _C.stack(list(batch), 0)
    if isinstance(first, np.ndarray):
        return _C.from_numpy(np.ascontiguousarray(np.stack(batch)))
    if isinstance(first, (bool, np.bool_)):
        return _C.from_numpy(np.asarray(batch, dtype=np.bool_))
    if isinstance(first, numbers.Integral):
        return _C.from_numpy(np.asarray(batch, dtype=np.int64))
    if isinstance(first, numbers.Real):
        return _C.from_numpy(np.asarray(batch, dtype=np.float64))._to_dtype(_C.dtype.float32) \
            if not isinstance(first, np.floating) else _C.from_numpy(np.asarray(batch))
    if isinstance(first, str):
        return list(batch)
    if isinstance(first, dict):
        return {k: default_collate([b[k] for b in batch]) for k in first}
    if isinstance(first, (tuple, list)):
        if any(len(b) != len(first) for b in batch):
            raise ValueError("default_collate: each element in list of batch should be of equal size")
        return tuple(default_collate(list(f)) for f in zip(*batch))
    raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
                    f"found {type(first).__name__}")


class DataLoader:
    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, collate_fn=None, generator=None,
                 seed=None, num_workers=0, pin_memory=False, sampler=None):
        if batch_size is None or batch_size < 1:
            raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, batch_size, shuffle, drop_last
        self.sampler = sampler  # an iterable of dataset indices with len(), e.g. DistributedSampler
        self.collate_fn = collate_fn
        if isinstance(generator, np.random.Generator):
            self.generator = generator
        else:
            s = seed if seed is not None else generator
            if s is None:
                s = int(_C._random_u64() % (2 ** 63))  # follows fd.manual_seed
            self.generator = np.random.default_rng(s)

    def __len__(self):
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else (n + self.batch_size - 1) // self.batch_size

    def _batches(self):
        if self.sampler is not None:
            order = np.fromiter(iter(self.sampler), dtype=np.int64)
            n = len(order)
        else:
            n = len(self.dataset)
            order = self.generator.permutation(n) if self.shuffle else np.arange(n)
        stop = n - n % self.batch_size if self.drop_last else n
        for b in range(0, stop, self.batch_size):
            yield order[b:b + self.batch_size]

    def __iter__(self):
        fetch = getattr(self.dataset, "fetch", None) if self.collate_fn is None else None
        for idx in self._batches():
            if fetch is not None:
                yield fetch(idx)
            else:
                collate = self.collate_fn or default_collate
                yield collate([self.dataset[int(i)] for i in idx])
