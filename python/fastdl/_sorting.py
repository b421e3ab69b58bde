"""Sorting and selection: sort / argsort (always stable), topk, kthvalue and msort, run by the native
kernels (csrc/ops/sort.cpp); this module only names their (values, indices) results."""
import collections

from fastdl import _C


_sort_result = collections.namedtuple("return_types_sort", ["values", "indices"])


def _host(t):
    """t as a numpy array on the host (half precision widened to float32)."""
    x = t.detach().cpu()
    if x.dtype in (_C.dtype.float16, _C.dtype.bfloat16):
        x = x._to_dtype(_C.dtype.float32)
    return x.numpy()


def sort(t, dim=-1, descending=False, stable=False):
    """Stable whatever `stable` says (PyTorch leaves the order of ties open when it is False)."""
    return _sort_result(*_C._sort(t, dim, descending))


def argsort(t, dim=-1, descending=False, stable=False):
    return _C._sort(t, dim, descending)[1]


def topk(t, k, dim=-1, largest=True, sorted=True):
    return _sort_result(*_C._topk(t, k, dim, largest, sorted))


def kthvalue(t, k, dim=-1, keepdim=False):
    return _sort_result(*_C._kthvalue(t, k, dim, keepdim))


def msort(input):
    """input sorted along its first dim."""
    return _sort_result(*_C._sort(input, 0, False)).values
