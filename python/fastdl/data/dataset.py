"""Datasets (torch.utils.data's): the map-style protocol (__getitem__, __len__) and the
iterable one (__iter__), tensors zipped along dim 0, subsets, concatenations, chains and stacks."""
import numpy as np


class Dataset:
    def __class_getitem__(cls, item):  # Dataset[T] in annotations, as PyTorch's generic class
        return cls

    def __getitem__(self, index):
        raise NotImplementedError

    def __add__(self, other):
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A stream of samples (__iter__). With DataLoader workers each worker iterates it; split the
    stream by fastdl.data.get_worker_info() to avoid repeats."""

    def __iter__(self):
        raise NotImplementedError

    def __add__(self, other):
        return ChainDataset([self, other])


class ChainDataset(IterableDataset):
    """Iterable datasets one after another."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise TypeError(f"ChainDataset: expected IterableDatasets; got {type(d).__name__}")

    def __iter__(self):
        for d in self.datasets:
            yield from d

    def __len__(self):
        return sum(len(d) for d in self.datasets)


class StackDataset(Dataset):
    """Samples of several equal-length datasets side by side: a tuple (positional datasets) or a
    dict (keyword datasets)."""

    def __init__(self, *args, **kwargs):
        if args and kwargs:
            raise ValueError("StackDataset: supported either tuple-like (positional) or dict-like (keyword) input, "
                             "but both were given")
        self.datasets = args or kwargs
        sizes = [len(d) for d in (args or kwargs.values())]
        if not sizes:
            raise ValueError("StackDataset: at least one dataset should be passed")
        if any(n != sizes[0] for n in sizes):
            raise ValueError(f"StackDataset: size mismatch between datasets: {sizes}")
        self._length = sizes[0]

    def __getitem__(self, i):
        if isinstance(self.datasets, dict):
            return {k: d[i] for k, d in self.datasets.items()}
        return tuple(d[i] for d in self.datasets)

    def __len__(self):
        return self._length


class TensorDataset(Dataset):
    """Samples are tuples of the i-th rows of each tensor (or numpy array). `fetch` returns a
    whole batch with one indexing op per tensor, which the DataLoader uses."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: expected at least one tensor")
        n = tensors[0].shape[0]
        if any(t.shape[0] != n for t in tensors):
            raise ValueError("Size mismatch between tensors: " + ", ".join(str(tuple(t.shape)) for t in tensors))
        self.tensors = tensors

    def __getitem__(self, i):
        return tuple(t[i] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]

    def fetch(self, indices):
        from fastdl import _C
        out = []
        for t in self.tensors:
            if isinstance(t, np.ndarray):
                out.append(t[indices])
            else:
                out.append(_C.index_select(t, 0, _C.from_numpy(np.ascontiguousarray(indices, dtype=np.int64))))
        return out  # a list, as PyTorch collates a tuple sample


class Subset(Dataset):
    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, list(indices)

    def __getitem__(self, i):
        if isinstance(i, list):
            return self.dataset[[self.indices[j] for j in i]]
        return self.dataset[self.indices[i]]

    def __len__(self):
        return len(self.indices)

    def fetch(self, indices):
        return self.dataset.fetch(np.asarray(self.indices, dtype=np.int64)[np.asarray(indices, dtype=np.int64)])


class ConcatDataset(Dataset):
    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).tolist()

    def __len__(self):
        return self.cumulative_sizes[-1] if self.cumulative_sizes else 0

    def __getitem__(self, i):
        if i < 0:
            if -i > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError("ConcatDataset: index out of range")
        k = int(np.searchsorted(self.cumulative_sizes, i, side="right"))
        return self.datasets[k][i - (self.cumulative_sizes[k - 1] if k else 0)]


def random_split(dataset, lengths, generator=None):
    """Split into non-overlapping Subsets; lengths are counts or fractions summing to 1
    (remainders go round-robin to the first splits, as PyTorch does)."""
    n = len(dataset)
    lengths = list(lengths)
    if lengths and all(0 <= x <= 1 for x in lengths) and abs(sum(lengths) - 1) < 1e-9 and sum(lengths) != n:
        counts = [int(np.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if sum(lengths) != n:
        raise ValueError("Sum of input lengths does not equal the length of the input dataset!")
    from fastdl.random import numpy_rng
    perm = numpy_rng(generator, "random_split").permutation(n)
    out, off = [], 0
    for L in lengths:
        out.append(Subset(dataset, perm[off:off + L].tolist()))
        off += L
    return out
