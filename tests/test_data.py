"""Data: datasets, DataLoader batching/shuffling/seeding/collation, random_split, transforms."""
import numpy as np
import pytest

import fastdl as fd
from fastdl.data import DataLoader, Dataset, TensorDataset, default_collate, random_split, transforms as T


def test_tensor_dataset_and_loader_order_drop_last():
    x = fd.arange(10).reshape(10, 1)
    y = np.arange(10) * 2
    ds = TensorDataset(x, y)
    assert len(ds) == 10 and ds[3][0].item() == 3 and ds[3][1] == 6
    dl = DataLoader(ds, batch_size=4)
    batches = list(dl)
    assert len(dl) == 3 and [tuple(b[0].shape) for b in batches] == [(4, 1), (4, 1), (2, 1)]
    assert batches[2][0].reshape(-1).tolist() == [8, 9] and batches[2][1].tolist() == [16, 18]
    dl = DataLoader(ds, batch_size=4, drop_last=True)
    assert len(dl) == 2 and len(list(dl)) == 2
    with pytest.raises(ValueError, match="Size mismatch"):
        TensorDataset(fd.zeros(3), fd.zeros(4))


def test_shuffle_seeded_and_covers_everything():
    ds = TensorDataset(fd.arange(50))
    a = [b[0].tolist() for b in DataLoader(ds, batch_size=8, shuffle=True, generator=3)]
    b = [b[0].tolist() for b in DataLoader(ds, batch_size=8, shuffle=True, generator=3)]
    c = [b[0].tolist() for b in DataLoader(ds, batch_size=8, shuffle=True, generator=4)]
    assert a == b and a != c
    assert sorted(sum(a, [])) == list(range(50))
    dl = DataLoader(ds, batch_size=50, shuffle=True, generator=np.random.default_rng(0))
    e1, e2 = next(iter(dl))[0].tolist(), next(iter(dl))[0].tolist()
    assert e1 != e2  # a new order every epoch


class _Dicts(Dataset):
    def __len__(self):
        return 5

    def __getitem__(self, i):
        return {"x": np.full((2,), i, dtype=np.float32), "y": i, "t": (fd.tensor([i, i]), 0.5), "name": f"s{i}"}


def test_collate_dicts_tuples_numpy_numbers():
    b = next(iter(DataLoader(_Dicts(), batch_size=3)))
    assert tuple(b["x"].shape) == (3, 2) and b["x"].dtype == fd.float32
    assert b["y"].tolist() == [0, 1, 2] and b["y"].dtype == fd.int64
    assert tuple(b["t"][0].shape) == (3, 2) and b["t"][1].tolist() == [0.5] * 3
    assert b["name"] == ["s0", "s1", "s2"]
    with pytest.raises(TypeError):
        default_collate([object()])


def test_random_split():
    ds = TensorDataset(fd.arange(10))
    a, b = random_split(ds, [7, 3], generator=0)
    assert len(a) == 7 and len(b) == 3
    got = sorted([a[i][0].item() for i in range(7)] + [b[i][0].item() for i in range(3)])
    assert got == list(range(10))
    x, y, z = random_split(ds, [0.5, 0.3, 0.2], generator=1)
    assert (len(x), len(y), len(z)) == (5, 3, 2)
    assert len(list(DataLoader(x, batch_size=2))) == 3
    with pytest.raises(ValueError):
        random_split(ds, [3, 3])


def test_transforms_vectorised(rng):
    x = rng.standard_normal((6, 3, 8, 8)).astype(np.float32)
    crop = T.RandomCrop(8, padding=2, generator=0)(x)
    assert crop.shape == x.shape
    # every crop is a shifted window of the zero-padded image
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    for n in range(6):
        assert any(np.array_equal(crop[n], padded[n, :, i:i + 8, j:j + 8]) for i in range(5) for j in range(5))
    t = fd.tensor(x)
    flipped = T.RandomHorizontalFlip(p=1.0)(t)
    np.testing.assert_array_equal(flipped.numpy(), x[..., ::-1])
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=0.0)(x), x)
    norm = T.Normalize([0.5, 0.0, -1.0], [2.0, 1.0, 0.5])(t)
    np.testing.assert_allclose(norm.numpy(), (x - np.array([0.5, 0, -1]).reshape(1, 3, 1, 1)) /
                               np.array([2, 1, 0.5]).reshape(1, 3, 1, 1), rtol=1e-6)
    noisy = T.Compose([T.GaussianNoise(0.1, generator=0), T.RandomHorizontalFlip(generator=0)])(x)
    assert noisy.shape == x.shape and not np.array_equal(noisy, x)
    assert abs(np.std(T.GaussianNoise(0.1, generator=1)(x) - x) - 0.1) < 0.01
