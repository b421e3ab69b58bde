"""torch.utils.data's pieces in fastdl.data (also fastdl.utils.data): samplers, BatchSampler,
iterable / chain / stack datasets, DataLoader's sampler, batch_sampler, batch_size=None and
worker-thread paths, get_worker_info, and the argument errors. Deterministic orders are checked
against PyTorch's DataLoader; random ones for coverage, repeatability and distribution."""
import threading

import numpy as np
import pytest

import fastdl as fd
from fastdl.utils.data import (BatchSampler, ChainDataset, ConcatDataset, DataLoader, IterableDataset,
                               RandomSampler, SequentialSampler, StackDataset, SubsetRandomSampler, TensorDataset,
                               WeightedRandomSampler, default_convert, get_worker_info)


class Stream(IterableDataset):
    """0 .. n - 1, split between workers by id."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        w = get_worker_info()
        return iter(range(self.n) if w is None else range(w.id, self.n, w.num_workers))

    def __len__(self):
        return self.n


def test_fastdl_utils_data_is_fastdl_data():
    import fastdl.utils.data
    assert fastdl.utils.data is fd.data


def test_sequential_and_batch_sampler_match_torch():
    torch = pytest.importorskip("torch")
    tud = torch.utils.data
    for n, bs, drop in ((10, 3, False), (10, 3, True), (9, 3, True), (1, 4, False), (0, 2, False)):
        ours = list(BatchSampler(SequentialSampler(range(n)), bs, drop))
        theirs = list(tud.BatchSampler(tud.SequentialSampler(range(n)), bs, drop))
        assert ours == theirs
        assert len(BatchSampler(SequentialSampler(range(n)), bs, drop)) == len(theirs)


@pytest.mark.parametrize("num_samples", [None, 3, 17])
def test_random_sampler_covers_and_repeats(num_samples):
    n = 7
    s = RandomSampler(range(n), num_samples=num_samples, generator=fd.Generator().manual_seed(1))
    a = list(s)
    k = n if num_samples is None else num_samples
    assert len(a) == len(s) == k
    # without replacement every index appears floor(k / n) or ceil(k / n) times
    counts = np.bincount(a, minlength=n)
    assert counts.min() >= k // n and counts.max() <= -(-k // n)
    b = list(s)
    assert a != b or k < 3  # a fresh order each iteration
    again = list(RandomSampler(range(n), num_samples=num_samples, generator=fd.Generator().manual_seed(1)))
    assert a == again


def test_random_sampler_with_replacement_is_uniform():
    s = RandomSampler(range(5), replacement=True, num_samples=50_000, generator=3)
    counts = np.bincount(list(s), minlength=5)
    np.testing.assert_allclose(counts / 50_000, 0.2, atol=0.01)
    fd.manual_seed(4)
    a = list(RandomSampler(range(5), replacement=True, num_samples=9))
    fd.manual_seed(4)
    assert a == list(RandomSampler(range(5), replacement=True, num_samples=9))  # None: the global generator


def test_subset_and_weighted_samplers():
    idx = [3, 8, 11, 20]
    a = list(SubsetRandomSampler(idx, generator=fd.Generator().manual_seed(0)))
    assert sorted(a) == idx and len(SubsetRandomSampler(idx)) == 4
    w = [1.0, 0.0, 3.0, 6.0]
    draws = list(WeightedRandomSampler(w, 40_000, generator=fd.Generator().manual_seed(2)))
    freq = np.bincount(draws, minlength=4) / 40_000
    np.testing.assert_allclose(freq, np.array(w) / 10, atol=0.01)
    once = list(WeightedRandomSampler(fd.tensor(w), 3, replacement=False, generator=5))
    assert sorted(once) == [0, 2, 3]
    with pytest.raises(ValueError, match="without replacement"):
        WeightedRandomSampler(w, 4, replacement=False)
    with pytest.raises(ValueError, match="num_samples should be a positive integer value"):
        WeightedRandomSampler(w, 0)
    with pytest.raises(TypeError, match="replacement should be a boolean value"):
        RandomSampler(range(3), replacement=1)
    with pytest.raises(ValueError, match="batch_size should be a positive integer value"):
        BatchSampler(range(3), 0, False)


def test_loader_with_sampler_batch_sampler_and_no_batching_match_torch():
    torch = pytest.importorskip("torch")
    tud = torch.utils.data
    x = np.arange(11, dtype=np.float32) * 1.5
    ours_ds, theirs_ds = TensorDataset(fd.tensor(x)), tud.TensorDataset(torch.tensor(x))
    order = [4, 0, 9, 2, 2, 7, 10]
    cases = [dict(batch_size=3, sampler=order), dict(batch_size=2, drop_last=True, sampler=order),
             dict(batch_sampler=[[1, 2], [10], [3, 4, 5]]), dict(batch_size=4)]
    for kw in cases:
        ours = [b[0].tolist() for b in DataLoader(ours_ds, **kw)]
        theirs = [b[0].tolist() for b in tud.DataLoader(theirs_ds, **kw)]
        assert ours == theirs, kw
        assert len(DataLoader(ours_ds, **kw)) == len(tud.DataLoader(theirs_ds, **kw))
    ours = [b[0].item() for b in DataLoader(ours_ds, batch_size=None, sampler=order)]
    theirs = [b[0].item() for b in tud.DataLoader(theirs_ds, batch_size=None, sampler=order)]
    assert ours == theirs


def test_iterable_dataset_batches_match_torch_with_and_without_workers():
    torch = pytest.importorskip("torch")
    tud = torch.utils.data

    class TStream(tud.IterableDataset):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            w = tud.get_worker_info()
            return iter(range(self.n) if w is None else range(w.id, self.n, w.num_workers))

        def __len__(self):
            return self.n
    for bs, drop in ((3, False), (3, True), (None, False)):
        kw = dict(batch_size=bs, drop_last=drop)
        ours = [getattr(b, "tolist", lambda: b)() for b in DataLoader(Stream(11), **kw)]
        theirs = [getattr(b, "tolist", lambda: b)() for b in tud.DataLoader(TStream(11), **kw)]
        assert ours == theirs, kw
    # With workers PyTorch batches each worker's stream and takes the workers' batches in turn
    # (its worker processes are not started here: the suite also runs under the sanitizers).
    for workers in (2, 3):
        for bs, drop in ((3, False), (3, True), (None, False)):
            per = []
            for w in range(workers):
                part = list(range(w, 11, workers))
                if bs is None:
                    per.append(part)
                else:
                    batches = [part[i:i + bs] for i in range(0, len(part), bs)]
                    per.append([b for b in batches if len(b) == bs or not drop])
            want = [p[i] for i in range(max(map(len, per))) for p in per if i < len(p)]
            ours = [getattr(b, "tolist", lambda: b)() for b in DataLoader(Stream(11), batch_size=bs, drop_last=drop,
                                                                          num_workers=workers)]
            assert ours == want, (workers, bs, drop)
    assert len(DataLoader(Stream(11), batch_size=3)) == 4
    assert len(DataLoader(Stream(11), batch_size=3, drop_last=True)) == 3


def test_map_workers_keep_order_and_see_their_info():
    seen, lock = set(), threading.Lock()

    class Rows:
        def __len__(self):
            return 50

        def __getitem__(self, i):
            info = get_worker_info()
            with lock:
                seen.add((info.id, info.num_workers))
            return np.full(3, i, dtype=np.float32)
    inits = []
    loader = DataLoader(Rows(), batch_size=4, num_workers=3, worker_init_fn=inits.append, prefetch_factor=1)
    got = np.concatenate([b[:, 0].numpy() for b in loader])
    np.testing.assert_array_equal(got, np.arange(50))
    assert {s[1] for s in seen} == {3} and {s[0] for s in seen} <= {0, 1, 2}
    assert sorted(inits) == sorted(set(inits)) and set(inits) <= {0, 1, 2}
    assert get_worker_info() is None  # not in a worker
    shuffled = DataLoader(TensorDataset(fd.arange(30)), batch_size=7, shuffle=True, num_workers=2, generator=5)
    assert sorted(np.concatenate([b[0].numpy() for b in shuffled]).tolist()) == list(range(30))


def test_worker_errors_reach_the_caller_and_early_stop_is_clean():
    class Bad:
        def __len__(self):
            return 8

        def __getitem__(self, i):
            if i == 5:
                raise KeyError("sample 5 is broken")
            return i
    with pytest.raises(KeyError, match="sample 5"):
        list(DataLoader(Bad(), batch_size=2, num_workers=2))

    class BadStream(IterableDataset):
        def __iter__(self):
            yield 1
            raise OSError("stream broke")
    with pytest.raises(OSError, match="stream broke"):
        list(DataLoader(BadStream(), batch_size=1, num_workers=2))
    it = iter(DataLoader(Stream(10_000), batch_size=2, num_workers=2))
    next(it)
    it.close()  # stops the worker threads
    assert threading.active_count() < 20


def test_datasets_chain_stack_concat():
    chained = Stream(3) + Stream(2)
    assert isinstance(chained, ChainDataset) and list(chained) == [0, 1, 2, 0, 1] and len(chained) == 5
    st = StackDataset(TensorDataset(fd.arange(4)), fd.arange(4) * 10)
    assert len(st) == 4 and st[2][0][0].item() == 2 and st[2][1].item() == 20
    sd = StackDataset(a=[1, 2], b=["x", "y"])
    assert sd[1] == {"a": 2, "b": "y"}
    b = next(iter(DataLoader(sd, batch_size=2)))
    assert b["a"].tolist() == [1, 2] and b["b"] == ["x", "y"]
    with pytest.raises(ValueError, match="size mismatch"):
        StackDataset([1, 2], [1])
    with pytest.raises(TypeError, match="IterableDataset"):
        ConcatDataset([Stream(2)])
    with pytest.raises(TypeError, match="ChainDataset"):
        ChainDataset([[1, 2]])


def test_default_convert():
    out = default_convert({"a": np.arange(3), "b": (np.float32(2.5), "s", 7)})
    assert isinstance(out["a"], fd.Tensor) and out["a"].tolist() == [0, 1, 2]
    assert isinstance(out["b"][0], fd.Tensor) and out["b"][1:] == ["s", 7]  # a tuple becomes a list, as PyTorch


def test_loader_argument_errors():
    ds = TensorDataset(fd.arange(6))
    cases = [
        (dict(batch_sampler=[[0]], batch_size=2), "mutually exclusive with batch_size"),
        (dict(batch_size=None, drop_last=True), "disables auto-batching"),
        (dict(num_workers=-1), "num_workers option should be non-negative"),
        (dict(prefetch_factor=2), "prefetch_factor option could only be specified"),
        (dict(persistent_workers=True), "persistent_workers option needs num_workers > 0"),
        (dict(timeout=-1), "timeout option should be non-negative"),
        (dict(batch_size=0), "batch_size should be a positive integer value"),
    ]
    for kw, msg in cases:
        with pytest.raises(ValueError, match=msg):
            DataLoader(ds, **kw)
    for kw in (dict(shuffle=True), dict(sampler=[0]), dict(batch_sampler=[[0]])):
        with pytest.raises(ValueError, match="IterableDataset: expected unspecified"):
            DataLoader(Stream(3), **kw)

    class NoLen(IterableDataset):
        def __iter__(self):
            return iter(range(3))
    with pytest.raises(TypeError):
        len(DataLoader(NoLen()))


def test_loader_generator_semantics_follow_torch():
    ds = TensorDataset(fd.arange(20))
    fd.manual_seed(0)
    before = fd.get_rng_state().tolist()
    loader = DataLoader(ds, batch_size=20, shuffle=True)
    assert fd.get_rng_state().tolist() == before  # building a loader draws nothing
    assert loader.generator is None
    fd.manual_seed(5)
    a = next(iter(loader))[0].tolist()
    fd.manual_seed(5)
    assert next(iter(loader))[0].tolist() == a  # no generator: each epoch draws from the global one
    g = fd.Generator()
    assert DataLoader(ds, shuffle=True, generator=g).generator is g
    with pytest.raises(TypeError, match="DataLoader: generator must be"):
        DataLoader(ds, generator="x")
    with pytest.raises(ValueError, match="num_samples should be a positive integer value, but got num_samples=0"):
        DataLoader([], shuffle=True)


def test_collate_follows_torch():
    import collections
    torch = pytest.importorskip("torch")
    P = collections.namedtuple("P", "a b")
    for batch in ([P(1, 2.0), P(3, 4.0)], [(1, 2.5), (3, 4.5)], [[1, 2], [3, 4]], [1.5, 2.5]):
        ours = fd.data.default_collate(batch)
        theirs = torch.utils.data.default_collate(batch)
        assert type(ours).__name__ == type(theirs).__name__ or isinstance(ours, fd.Tensor)
        flat_o = ours if isinstance(ours, fd.Tensor) else list(ours)
        flat_t = theirs if isinstance(theirs, torch.Tensor) else list(theirs)
        for o, t in zip(flat_o if isinstance(flat_o, list) else [flat_o], flat_t if isinstance(flat_t, list) else [flat_t]):
            assert o.tolist() == t.tolist() and str(o.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
    b = next(iter(DataLoader(TensorDataset(fd.arange(4), fd.arange(4) * 2), batch_size=2)))
    assert isinstance(b, list) and b[1].tolist() == [0, 2]


def test_getitems_is_used_for_whole_batches():
    calls = []

    class Batched:
        def __len__(self):
            return 6

        def __getitem__(self, i):
            raise AssertionError("the loader should ask for whole batches")

        def __getitems__(self, idx):
            calls.append(list(idx))
            return [float(i) for i in idx]
    out = [b.tolist() for b in DataLoader(Batched(), batch_size=4)]
    assert out == [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0]] and calls == [[0, 1, 2, 3], [4, 5]]


def test_loader_attributes_freeze_and_iterators_have_len():
    loader = DataLoader(TensorDataset(fd.arange(10)), batch_size=3)
    with pytest.raises(ValueError, match="batch_size attribute should not be set"):
        loader.batch_size = 4
    it = iter(loader)
    assert len(it) == 4
    next(it)
    it.close()
    with pytest.raises(ValueError, match="multiprocessing_context"):
        DataLoader([1, 2], multiprocessing_context="fork")
    with pytest.raises(ValueError, match="should not exceed"):
        ConcatDataset([[1, 2], [3]])[-4]
