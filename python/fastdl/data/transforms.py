"""Augmentation on NCHW batches (fastdl tensors or numpy arrays), vectorised in numpy: one
gather per batch, never a per-pixel Python loop. Each transform takes a numpy Generator (or
seed) so a pipeline is reproducible; Compose chains them."""
import numpy as np

from fastdl import _C
from fastdl._C import Tensor
from fastdl.random import numpy_rng


def _np(x):
    return (x.detach().cpu().numpy(), True) if isinstance(x, Tensor) else (np.asarray(x), False)


def _back(a, was_tensor, like=None):
    if not was_tensor:
        return a
    t = _C.from_numpy(np.ascontiguousarray(a))
    return t._to_dtype(like.dtype) if like is not None and t.dtype != like.dtype else t


def _rng(g):
    return numpy_rng(g, "transforms")


class Compose:
    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x


class RandomCrop:
    """Pad each image by `padding` (zeros, or edge/reflect) and crop a random size x size window
    per image, all images at once through one fancy-indexing gather."""

    def __init__(self, size, padding=0, padding_mode="constant", generator=None):
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.padding, self.padding_mode = padding, padding_mode
        self.rng = _rng(generator)

    def __call__(self, x):
        a, was = _np(x)
        if a.ndim != 4:
            raise ValueError(f"RandomCrop: expected an NCHW batch; got shape {a.shape}")
        p = self.padding
        if p:
            mode = {"constant": "constant", "edge": "edge", "reflect": "reflect"}[self.padding_mode]
            a = np.pad(a, ((0, 0), (0, 0), (p, p), (p, p)), mode=mode)
        N, _, H, W = a.shape
        h, w = self.size
        if h > H or w > W:
            raise ValueError(f"RandomCrop: crop {self.size} larger than padded image {(H, W)}")
        top = self.rng.integers(0, H - h + 1, N)
        left = self.rng.integers(0, W - w + 1, N)
        rows = (top[:, None] + np.arange(h))[:, None, :, None]   # (N, 1, h, 1)
        cols = (left[:, None] + np.arange(w))[:, None, None, :]  # (N, 1, 1, w)
        out = a[np.arange(N)[:, None, None, None], np.arange(a.shape[1])[None, :, None, None], rows, cols]
        return _back(out, was, x if was else None)


class RandomHorizontalFlip:
    def __init__(self, p=0.5, generator=None):
        self.p, self.rng = p, _rng(generator)

    def __call__(self, x):
        a, was = _np(x)
        flip = self.rng.random(a.shape[0]) < self.p
        out = a.copy()
        out[flip] = a[flip][..., ::-1]
        return _back(out, was, x if was else None)


class Normalize:
    """(x - mean[c]) / std[c] per channel of an NCHW (or CHW) batch."""

    def __init__(self, mean, std):
        self.mean, self.std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
        if np.any(self.std == 0):
            raise ValueError("Normalize: std evaluated to zero, leading to division by zero")

    def __call__(self, x):
        a, was = _np(x)
        shape = (1, -1, 1, 1) if a.ndim == 4 else (-1, 1, 1)
        out = ((a - self.mean.reshape(shape)) / self.std.reshape(shape)).astype(a.dtype if a.dtype.kind == "f"
                                                                                 else np.float32)
        return _back(out, was, x if was and a.dtype.kind == "f" else None)


class GaussianNoise:
    def __init__(self, std=0.1, mean=0.0, generator=None):
        self.std, self.mean, self.rng = std, mean, _rng(generator)

    def __call__(self, x):
        a, was = _np(x)
        out = (a + self.rng.normal(self.mean, self.std, a.shape)).astype(a.dtype)
        return _back(out, was, x if was else None)
