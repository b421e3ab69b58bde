"""Strided views and their copying forms, with PyTorch's names: as_strided (native view) with
as_strided_copy / as_strided_scatter, the *_copy ops (a view op's result as a fresh tensor),
split_with_sizes, unsafe_chunk / unsafe_split, narrow_copy, sum_to_size, and resize_ / resize_as_."""
import builtins

from fastdl import _C
from fastdl._C import dtype


def _shape(t):
    return tuple(t.shape)


def _sizes(args, op):
    """size as ints or one sequence of ints."""
    if len(args) == 1 and not isinstance(args[0], builtins.int):
        args = args[0]
    try:
        return tuple(builtins.int(s) for s in args)
    except TypeError:
        raise TypeError(f"{op}: expected a size (ints or one sequence of ints); got {args!r}") from None


def as_strided(input, size, stride, storage_offset=None):
    return _C.as_strided(input, tuple(size), tuple(stride), storage_offset)


def as_strided_(self, size, stride, storage_offset=None):
    """self becomes the as_strided view of its own storage (other views keep sharing it); tensors that
    require grad are refused (rebinding would cut their history)."""
    if self.requires_grad:
        raise RuntimeError(f"as_strided_: cannot change the geometry of a tensor that requires grad in place "
                           f"(shape {_shape(self)})")
    self._set_data(_C.as_strided(self, tuple(size), tuple(stride), storage_offset))
    return self


def as_strided_copy(input, size, stride, storage_offset=None):
    return _C.as_strided(input, tuple(size), tuple(stride), storage_offset).clone()


def _positions(size, stride, offset, device):
    """Flat int64 storage positions of the geometry (size, stride, offset)."""
    pos = _C.full((), builtins.float(offset), dtype.int64, device)
    for d, (n, st) in enumerate(zip(size, stride)):
        view = [1] * len(size)
        view[d] = n
        pos = pos + (_C.arange(0, n, 1, dtype.int64, device) * st).reshape(*view)
    return pos.expand(*size).reshape(-1) if size else pos.reshape(1)


def as_strided_scatter(input, src, size, stride, storage_offset=None):
    """A copy of input (laid out contiguously) with src written into its as_strided(size, stride,
    storage_offset) view. Gradients: input's is zero where src was written, src's is the view of it."""
    size, stride = tuple(size), tuple(stride)
    if _shape(src) != size:
        raise ValueError(f"as_strided_scatter: src of shape {_shape(src)} must have the view's size {size}")
    if len(stride) != len(size):
        raise ValueError(f"as_strided_scatter: size {size} and stride {stride} must have the same length")
    offset = 0 if storage_offset is None else builtins.int(storage_offset)
    if offset < 0 or builtins.any(s < 0 for s in stride) or builtins.any(n < 0 for n in size):
        raise ValueError(f"as_strided_scatter: size {size}, stride {stride} and storage_offset {offset} must be >= 0")
    flat = input.contiguous().reshape(-1)
    numel = 1
    for n in size:
        numel *= n
    if numel == 0:
        return input.clone()
    last = offset + builtins.sum((n - 1) * s for n, s in zip(size, stride))
    if last >= flat.shape[0]:
        raise ValueError(f"as_strided_scatter: size {size}, stride {stride} and storage_offset {offset} reach "
                         f"element {last} of an input of {flat.shape[0]} elements (shape {_shape(input)})")
    pos = _positions(size, stride, offset, input.device)
    return _C.index_put(flat, [pos], src.to(input.dtype).reshape(-1), False).reshape(_shape(input))


def split_with_sizes(input, split_sizes, dim=0):
    split_sizes = [builtins.int(s) for s in split_sizes]
    d = dim + input.ndim if dim < 0 else dim
    if input.ndim == 0 or not 0 <= d < input.ndim:
        raise IndexError(f"split_with_sizes: dim {dim} is out of range for a tensor of shape {_shape(input)}")
    if builtins.sum(split_sizes) != input.shape[d] or builtins.any(s < 0 for s in split_sizes):
        raise ValueError(f"split_with_sizes: split_sizes {split_sizes} must be >= 0 and sum to the size of dim {d} "
                         f"({input.shape[d]}) of shape {_shape(input)}")
    return tuple(_C.split(input, split_sizes, d))


def split_with_sizes_copy(input, split_sizes, dim=0):
    return tuple(t.clone() for t in split_with_sizes(input, split_sizes, dim))


def unsafe_split(input, split_size, dim=0):
    return tuple(_C.split(input, split_size, dim))


def unsafe_chunk(input, chunks, dim=0):
    return tuple(_C.chunk(input, chunks, dim))


def narrow_copy(input, dim, start, length):
    return _C.narrow(input, dim, start, length).clone()


def sum_to_size(self, *size):
    """Sum self down to size (which self must broadcast from: dims added in front or of size 1)."""
    size = _sizes(size, "sum_to_size")
    shape = _shape(self)
    lead = len(shape) - len(size)
    if lead < 0 or builtins.any(s != 1 and s != n for s, n in zip(size, shape[lead:])):
        raise ValueError(f"sum_to_size: size {size} is not expandable to the tensor's shape {shape}")
    out = self.sum(tuple(builtins.range(lead))) if lead else self
    dims = tuple(i for i, (s, n) in enumerate(zip(size, shape[lead:])) if s == 1 and n != 1)
    return out.sum(dims, keepdim=True) if dims else out


# ---- the *_copy ops: a view op's result in fresh memory ------------------------------------------

def alias_copy(input):
    return input.clone()


def diagonal_copy(input, offset=0, dim1=0, dim2=1):
    return input.diagonal(offset, dim1, dim2).clone()


def expand_copy(input, size, *, implicit=False):
    return input.expand(tuple(size)).clone()


def permute_copy(input, dims):
    return input.permute(tuple(dims)).clone()


def squeeze_copy(input, dim=None):
    return (input.squeeze() if dim is None else input.squeeze(dim)).clone()


def t_copy(input):
    from fastdl._shaping import t_
    return t_(input).clone()


def transpose_copy(input, dim0, dim1):
    return input.transpose(dim0, dim1).clone()


def unbind_copy(input, dim=0):
    return tuple(t.clone() for t in input.unbind(dim))


def unfold_copy(input, dimension, size, step):
    return input.unfold(dimension, size, step).clone()


def unsqueeze_copy(input, dim):
    return input.unsqueeze(dim).clone()


def view_copy(input, size):
    if isinstance(size, dtype):
        if size != input.dtype:
            raise TypeError(f"view_copy: reinterpreting {input.dtype} as {size} is not supported")
        return input.clone()
    return input.view(tuple(size)).clone()


# ---- resizing in place --------------------------------------------------------------------------

def resize_(self, *sizes, memory_format=None):
    """Give self the contiguous shape sizes over its storage from its offset, as PyTorch: the
    elements keep their storage order; a larger size moves self to a new storage holding the old
    elements first (the rest uninitialised; zeros here). Tensors that require grad are refused."""
    size = _sizes(sizes, "resize_")
    if builtins.any(n < 0 for n in size):
        raise ValueError(f"resize_: size {size} has a negative dimension")
    if self.requires_grad:
        raise RuntimeError(f"resize_: cannot resize a tensor that requires grad (shape {_shape(self)})")
    numel = 1
    for n in size:
        numel *= n
    strides = [1] * len(size)
    for d in builtins.range(len(size) - 2, -1, -1):
        strides[d] = strides[d + 1] * builtins.max(size[d + 1], 1)
    offset = self.storage_offset()
    have = self._storage_numel() - offset
    if numel <= have:
        self._set_data(_C.as_strided(self, size, tuple(strides), offset))
        return self
    grown = _C.full((numel,), 0.0, self.dtype, self.device)
    if have > 0:
        grown[:have] = _C.as_strided(self, (have,), (1,), offset)
    self._set_data(grown.view(*size) if size else grown.reshape(()))
    return self


def resize_as_(self, the_template, memory_format=None):
    return resize_(self, _shape(the_template))
