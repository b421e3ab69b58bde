"""Array API creation functions over fastdl's PyTorch-style constructors: `shape` tuples instead
of *size, `device=` strings or devices, `copy=` in asarray, the diagonal offset of eye."""
import builtins

import fastdl as fd
from fastdl._C import Tensor
from fastdl._lazy import np


def _shape(shape):
    return (shape,) if isinstance(shape, builtins.int) else tuple(shape)


def _dev(device):
    return None if device is None else device


def _scalar_dtype(v):
    if isinstance(v, builtins.bool):
        return fd.bool
    if isinstance(v, builtins.int):
        return fd.int64
    if isinstance(v, builtins.float):
        return fd.get_default_dtype()
    raise TypeError(f"expected a bool, int or float; got {type(v).__name__}")


def asarray(obj, /, *, dtype=None, device=None, copy=None):
    """A tensor from a tensor, a DLPack / buffer-protocol object, a numpy array or Python data.
    copy=True always copies, copy=False never does (ValueError when it would have to)."""
    if isinstance(obj, Tensor):
        out = obj
        if dtype is not None and out.dtype != dtype or device is not None and out.device != fd.device(str(device)):
            if copy is False:
                raise ValueError("asarray: copy=False but a dtype or device change needs a copy")
            return out.to(dtype or out.dtype).to(device or out.device)
        return out.clone() if copy else out
    if isinstance(obj, (builtins.bool, builtins.int, builtins.float)):
        if copy is False:
            raise ValueError("asarray: copy=False is impossible for Python scalars")
        return fd.tensor(obj, dtype=dtype or _scalar_dtype(obj), device=_dev(device))
    if isinstance(obj, (list, tuple)):
        if copy is False:
            raise ValueError("asarray: copy=False is impossible for Python sequences")
        if dtype is None:
            flat = np.asarray(obj)
            if flat.dtype.kind == "f":
                dtype = fd.get_default_dtype()
        if builtins.any(isinstance(v, Tensor) for v in obj):
            return fd.stack([asarray(v, dtype=dtype, device=device) for v in obj])
        return fd.tensor(obj, dtype=dtype, device=_dev(device))
    if hasattr(obj, "__dlpack__") and not isinstance(obj, np.ndarray):
        out = fd.from_dlpack(obj)
    else:
        a = np.asarray(obj)
        if a.dtype.kind not in "biuf" or a.dtype.itemsize == 0:
            raise TypeError(f"asarray: unsupported data type {a.dtype}")
        if a.dtype.kind == "u" or a.dtype.itemsize < 4 and a.dtype.kind == "i":
            if copy is False:
                raise ValueError(f"asarray: copy=False but dtype {a.dtype} has no fastdl counterpart")
            a, copy = a.astype(np.int64), None
        if a.ndim and builtins.any(s < 0 or s % a.itemsize for s in a.strides):
            if copy is False:
                raise ValueError("asarray: copy=False but the array's strides need a copy")
            a, copy = np.ascontiguousarray(a), None
        out = fd.from_numpy(a)
    return asarray(out, dtype=dtype, device=device, copy=copy)


def arange(start, /, stop=None, step=1, *, dtype=None, device=None):
    if dtype is None:
        dtype = fd.get_default_dtype() if builtins.any(isinstance(v, builtins.float) for v in (start, stop, step)) else fd.int64
    return fd.arange(start, stop, step, dtype=dtype, device=_dev(device))


def empty(shape, *, dtype=None, device=None):
    return fd.empty(*_shape(shape), dtype=dtype, device=_dev(device))


def zeros(shape, *, dtype=None, device=None):
    return fd.zeros(*_shape(shape), dtype=dtype, device=_dev(device))


def ones(shape, *, dtype=None, device=None):
    return fd.ones(*_shape(shape), dtype=dtype, device=_dev(device))


def full(shape, fill_value, *, dtype=None, device=None):
    return fd.full(_shape(shape), fill_value, dtype=dtype or _scalar_dtype(fill_value), device=_dev(device))


def empty_like(x, /, *, dtype=None, device=None):
    return fd.empty_like(x, dtype=dtype, device=_dev(device))


def zeros_like(x, /, *, dtype=None, device=None):
    return fd.zeros_like(x, dtype=dtype, device=_dev(device))


def ones_like(x, /, *, dtype=None, device=None):
    return fd.ones_like(x, dtype=dtype, device=_dev(device))


def full_like(x, /, fill_value, *, dtype=None, device=None):
    return fd.full_like(x, fill_value, dtype=dtype, device=_dev(device))


def eye(n_rows, n_cols=None, /, *, k=0, dtype=None, device=None):
    n_cols = n_rows if n_cols is None else n_cols
    dtype = dtype or fd.get_default_dtype()
    if k == 0:
        return fd.eye(n_rows, n_cols, dtype=dtype, device=_dev(device))
    rows = fd.arange(n_rows, device=_dev(device)).unsqueeze(1)
    return (rows + k == fd.arange(n_cols, device=_dev(device)).unsqueeze(0)).to(dtype)


def linspace(start, stop, /, num, *, dtype=None, device=None, endpoint=True):
    dtype = dtype or fd.get_default_dtype()
    if endpoint or num == 0:
        return fd.linspace(start, stop, num, dtype=dtype, device=_dev(device))
    return fd.linspace(start, stop, num + 1, dtype=dtype, device=_dev(device))[:-1]


def meshgrid(*arrays, indexing="xy"):
    if indexing not in ("xy", "ij"):
        raise ValueError(f"meshgrid: indexing must be 'xy' or 'ij'; got {indexing!r}")
    return list(fd.meshgrid(*arrays, indexing=indexing))


def tril(x, /, *, k=0):
    return fd.tril(x, k)


def triu(x, /, *, k=0):
    return fd.triu(x, k)


def from_dlpack(x, /, *, device=None, copy=None):
    out = fd.from_dlpack(x)
    if device is not None and out.device != fd.device(str(device)):
        if copy is False:
            raise ValueError("from_dlpack: copy=False but the device differs")
        return out.to(device)
    return out.clone() if copy else out
