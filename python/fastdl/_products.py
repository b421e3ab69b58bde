"""Vector and matrix products composed from matmul and broadcasting, with PyTorch's names:
inner, mv, addmv, addr, ger, vdot, dist."""
import builtins

from fastdl import _C
from fastdl._C import Tensor


def inner(input, other):
    """Sum over the last dims of both (a scalar operand multiplies)."""
    if input.ndim == 0 or other.ndim == 0:
        return input * other
    if input.shape[-1] != other.shape[-1]:
        raise ValueError(f"inner: last dims must match; got shapes {tuple(input.shape)} and {tuple(other.shape)}")
    a = input.reshape(-1, input.shape[-1])
    b = other.reshape(-1, other.shape[-1])
    return _C.matmul(a, b.transpose(0, 1)).reshape(tuple(input.shape[:-1]) + tuple(other.shape[:-1]))


def mv(input, vec):
    if input.ndim != 2 or vec.ndim != 1:
        raise ValueError(f"mv: expected a 2-D matrix and a 1-D vector; got {input.ndim}-D and {vec.ndim}-D")
    if input.shape[1] != vec.shape[0]:
        raise ValueError(f"mv: sizes do not match; got shapes {tuple(input.shape)} and {tuple(vec.shape)}")
    return _C.matmul(input, vec)


def addmv(input, mat, vec, *, beta=1, alpha=1):
    """beta * input + alpha * (mat @ vec); beta == 0 ignores input (NaN included), as PyTorch."""
    prod = mv(mat, vec)
    beta, alpha = _int_scalars(prod, beta, alpha)
    prod = prod if alpha == 1 else prod * alpha
    if beta == 0:
        return prod + _zero_like(input, prod)
    return (input if beta == 1 else input * beta) + prod


def _int_scalars(prod, beta, alpha):
    """Integer products take beta and alpha as integers (PyTorch truncates them)."""
    if prod.dtype.is_floating_point:
        return beta, alpha
    return builtins.int(beta), builtins.int(alpha)


def _zero_like(input, like):
    # beta = 0: the result takes input's broadcast shape but none of its values (PyTorch)
    return _C.full(tuple(input.shape), 0.0, like.dtype, like.device)


def addr(input, vec1, vec2, *, beta=1, alpha=1):
    """beta * input + alpha * outer(vec1, vec2)."""
    if vec1.ndim != 1 or vec2.ndim != 1:
        raise ValueError(f"addr: expected 1-D vectors; got {vec1.ndim}-D and {vec2.ndim}-D")
    prod = vec1.reshape(-1, 1) * vec2.reshape(1, -1)
    beta, alpha = _int_scalars(prod, beta, alpha)
    prod = prod if alpha == 1 else prod * alpha
    if beta == 0:
        return prod + _zero_like(input, prod)
    return (input if beta == 1 else input * beta) + prod


def ger(input, vec2):
    return addr(_C.full((), 0.0, input.dtype, input.device), input, vec2, beta=0)


def vdot(input, other):
    if input.ndim != 1 or other.ndim != 1:
        raise ValueError(f"vdot: expected 1-D tensors; got {input.ndim}-D and {other.ndim}-D")
    if input.shape[0] != other.shape[0]:
        raise ValueError(f"vdot: sizes differ; got {input.shape[0]} and {other.shape[0]}")
    if input.dtype != other.dtype:
        raise TypeError(f"vdot: expected both tensors of one dtype; got {input.dtype} and {other.dtype}")
    return (input * other).sum()


def dist(input, other, p=2):
    """The p-norm of input - other (broadcast)."""
    d = input - other
    if not isinstance(d, Tensor):
        raise TypeError("dist: expected tensors")
    return _C.norm(d.reshape(-1), builtins.float(p))
