"""Tensor creation beside _tensor's factories: strided and permuted allocation (empty_strided,
empty_permuted), scalar_tensor and torch.fill (a new tensor of input's shape holding one value)."""
import builtins

from fastdl import _C
from fastdl._C import Tensor


def empty_strided(size, stride, *, dtype=None, layout=None, device=None, requires_grad=False, pin_memory=False):
    """An uninitialised tensor of size with the given strides (over a storage just large enough)."""
    from fastdl._tensor import empty
    size, stride = tuple(size), tuple(stride)
    if len(size) != len(stride):
        raise ValueError(f"empty_strided: size {size} and stride {stride} must have the same length")
    if builtins.any(n < 0 for n in size) or builtins.any(s < 0 for s in stride):
        raise ValueError(f"empty_strided: size {size} and stride {stride} must be >= 0")
    need = 0 if 0 in size else 1 + builtins.sum((n - 1) * s for n, s in zip(size, stride))
    base = empty(need, dtype=dtype, device=device)
    out = _C.as_strided(base, size, stride, 0)
    return out.requires_grad_(True) if requires_grad else out


def empty_permuted(size, physical_layout, *, dtype=None, layout=None, device=None, requires_grad=False,
                   pin_memory=False):
    """An uninitialised tensor of size whose memory is laid out in the dim order physical_layout
    (outermost first): empty(size permuted) viewed back through the inverse permutation."""
    from fastdl._tensor import empty
    size, perm = tuple(size), tuple(physical_layout)
    if sorted(perm) != list(builtins.range(len(size))):
        raise ValueError(f"empty_permuted: physical_layout {perm} must be a permutation of the {len(size)} dims "
                         f"of size {size}")
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    out = empty(*[size[p] for p in perm], dtype=dtype, device=device).permute(*inv)
    return out.requires_grad_(True) if requires_grad else out


def scalar_tensor(s, *, dtype=None, layout=None, device=None, requires_grad=False, pin_memory=False):
    """A 0-dim tensor holding s (default dtype: the default float dtype)."""
    from fastdl._tensor import full, get_default_dtype
    return full((), s, dtype=dtype or get_default_dtype(), device=device, requires_grad=requires_grad)


def fill(input, value):
    """A new tensor of input's shape, dtype and device, every element value (a number or a 0-dim
    tensor, whose gradient is then the sum of the incoming one; input gets none)."""
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise ValueError(f"fill: value must be a number or a 0-dim tensor; got shape {tuple(value.shape)}")
        return value.to(input.dtype).expand(*input.shape).clone()
    return _C.full(tuple(input.shape), builtins.float(value), input.dtype, input.device)
