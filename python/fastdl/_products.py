"""Vector and matrix products composed from matmul and broadcasting, with PyTorch's names:
inner, mv, addmv, addr, ger, vdot, dist, tensordot, addbmm, baddbmm, cdist."""
import builtins

from fastdl import _C
from fastdl._C import Tensor


def _matmul_unlowered(a, b):
    """a @ b outside any autocast region: PyTorch's autocast lowers matmul, mm and bmm but not
    the dot products (dot, vdot, mv on the CPU, inner and tensordot down to a scalar), which
    stay in their inputs' dtype."""
    states = {d: _C._get_autocast(d) for d in ("cpu", "cuda")}
    if not (states["cpu"][0] or states["cuda"][0]):
        return _C.matmul(a, b)
    for d, (on, dt) in states.items():
        _C._set_autocast(d, False, dt)
    try:
        return _C.matmul(a, b)
    finally:
        for d, (on, dt) in states.items():
            _C._set_autocast(d, on, dt)


def inner(input, other):
    """Sum over the last dims of both (a scalar operand multiplies)."""
    if input.ndim == 0 or other.ndim == 0:
        return input * other
    if input.shape[-1] != other.shape[-1]:
        raise ValueError(f"inner: last dims must match; got shapes {tuple(input.shape)} and {tuple(other.shape)}")
    if input.ndim == 1 and other.ndim == 1:
        return _matmul_unlowered(input, other)
    a = input.reshape(-1, input.shape[-1])
    b = other.reshape(-1, other.shape[-1])
    return _C.matmul(a, b.transpose(0, 1)).reshape(tuple(input.shape[:-1]) + tuple(other.shape[:-1]))


def mv(input, vec):
    if input.ndim != 2 or vec.ndim != 1:
        raise ValueError(f"mv: expected a 2-D matrix and a 1-D vector; got {input.ndim}-D and {vec.ndim}-D")
    if input.shape[1] != vec.shape[0]:
        raise ValueError(f"mv: sizes do not match; got shapes {tuple(input.shape)} and {tuple(vec.shape)}")
    if not input.device.type == "cpu":  # PyTorch's CUDA autocast lowers mv, its CPU one does not
        return _C.matmul(input, vec)
    return _matmul_unlowered(input, vec)


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
    r = (input * other).sum()
    return r if r.dtype == input.dtype else r.to(input.dtype)  # integer sums widen; the dot keeps the dtype


def dist(input, other, p=2):
    """The p-norm of input - other (broadcast)."""
    d = input - other
    if not isinstance(d, Tensor):
        raise TypeError("dist: expected tensors")
    return _C.norm(d.reshape(-1), builtins.float(p))


def _shape(t):
    return tuple(t.shape)


def tensordot(a, b, dims=2, out=None):
    """Contract the last `dims` dims of a with the first of b, or the listed dims
    (dims=([a dims], [b dims]), or a tensor of them), as one matmul."""
    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if isinstance(dims, builtins.int):
        if dims < 0:
            raise ValueError(f"tensordot: expects dims >= 0; got {dims}")
        if dims > a.ndim or dims > b.ndim:
            raise ValueError(f"tensordot: dims {dims} exceeds the dims of shapes {_shape(a)} and {_shape(b)}")
        da, db = list(builtins.range(a.ndim - dims, a.ndim)), list(builtins.range(dims))
    else:
        da, db = dims
        da = [da] if isinstance(da, builtins.int) else list(da)
        db = [db] if isinstance(db, builtins.int) else list(db)
        if len(da) != len(db):
            raise ValueError(f"tensordot: both dim lists must have the same length; got {da} and {db}")
        da = [d % builtins.max(a.ndim, 1) for d in da]
        db = [d % builtins.max(b.ndim, 1) for d in db]
    for x, y in zip(da, db):  # a size-1 dim against a longer one: the longer is summed first (PyTorch)
        if a.shape[x] == 1 and b.shape[y] != 1:
            b = b.sum(y, keepdim=True, dtype=b.dtype)
        elif b.shape[y] == 1 and a.shape[x] != 1:
            a = a.sum(x, keepdim=True, dtype=a.dtype)
        if a.shape[x] != b.shape[y]:
            raise ValueError(f"tensordot: contracted dimensions need to match, but first has size {a.shape[x]} in "
                             f"dim {x} and second has size {b.shape[y]} in dim {y}; shapes {_shape(a)} and {_shape(b)}")
    ka = [d for d in builtins.range(a.ndim) if d not in da]
    kb = [d for d in builtins.range(b.ndim) if d not in db]
    k = 1
    for d in da:
        k *= a.shape[d]
    am = a.permute(*ka, *da).reshape(-1, k) if a.ndim else a.reshape(1, 1)
    bm = b.permute(*db, *kb).reshape(k, -1) if b.ndim else b.reshape(1, 1)
    mm = _matmul_unlowered if not ka and not kb else _C.matmul  # a full contraction is a dot product
    return mm(am, bm).reshape(tuple(a.shape[d] for d in ka) + tuple(b.shape[d] for d in kb))


def _check_batches(op, b1, b2):
    if b1.ndim != 3 or b2.ndim != 3:
        raise ValueError(f"{op}: batch1 and batch2 must be 3-D; got shapes {_shape(b1)} and {_shape(b2)}")
    if b1.shape[0] != b2.shape[0] or b1.shape[2] != b2.shape[1]:
        raise ValueError(f"{op}: batch1 {_shape(b1)} and batch2 {_shape(b2)} cannot be multiplied batchwise")


def _axpby(op, input, prod, beta, alpha):
    """beta * input + alpha * prod; beta == 0 ignores input (NaN included), as PyTorch."""
    beta, alpha = _int_scalars(prod, beta, alpha)
    prod = prod if alpha == 1 else prod * alpha
    if beta == 0:
        return prod + _zero_like(input, prod)
    try:
        return (input if beta == 1 else input * beta) + prod
    except ValueError:
        raise ValueError(f"{op}: input of shape {_shape(input)} does not broadcast to the product's shape "
                         f"{_shape(prod)}") from None


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1, out=None):
    """beta * input + alpha * (batch1 @ batch2), batch by batch."""
    _check_batches("baddbmm", batch1, batch2)
    return _axpby("baddbmm", input, _C.matmul(batch1, batch2), beta, alpha)


def addbmm(input, batch1, batch2, *, beta=1, alpha=1, out=None):
    """beta * input + alpha * sum over the batch of batch1[i] @ batch2[i], as one matmul."""
    _check_batches("addbmm", batch1, batch2)
    n, r, k = batch1.shape
    c = batch2.shape[2]
    prod = _C.matmul(batch1.permute(1, 0, 2).reshape(r, n * k), batch2.reshape(n * k, c))
    return _axpby("addbmm", input, prod, beta, alpha)


def cdist(x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary"):
    """p-norm distances between the rows of x1 (*, P, M) and x2 (*, R, M): (*, P, R), batch dims broadcast.
    The Euclidean case goes through matmul (|a|^2 + |b|^2 - 2 a.b) where PyTorch does (more than 25 rows,
    or compute_mode 'use_mm_for_euclid_dist'); the rest from the broadcast differences."""
    if x1.ndim < 2 or x2.ndim < 2:
        raise ValueError(f"cdist: expects at least 2-D tensors; got shapes {_shape(x1)} and {_shape(x2)}")
    if x1.shape[-1] != x2.shape[-1]:
        raise ValueError(f"cdist: x1 and x2 must have the same number of columns; got shapes {_shape(x1)} "
                         f"and {_shape(x2)}")
    if p < 0:
        raise ValueError(f"cdist: p must be >= 0; got {p}")
    if not x1.dtype.is_floating_point or not x2.dtype.is_floating_point:
        raise TypeError(f"cdist: expects floating-point tensors; got {x1.dtype} and {x2.dtype}")
    P, R = x1.shape[-2], x2.shape[-2]
    mm = p == 2 and (compute_mode == "use_mm_for_euclid_dist"
                     or (compute_mode == "use_mm_for_euclid_dist_if_necessary" and (P > 25 or R > 25)))
    if mm:
        sq1 = (x1 * x1).sum(-1, keepdim=True)
        sq2 = (x2 * x2).sum(-1, keepdim=True)
        d2 = sq1 - 2 * _C.matmul(x1, x2.mT) + sq2.mT
        return d2.clamp_min(1e-30).sqrt()  # PyTorch's floor: a zero distance is 1e-15 with a zero gradient
    d = (x1.unsqueeze(-2) - x2.unsqueeze(-3)).abs()
    if p == 0:
        return (d != 0).to(x1.dtype).sum(-1)
    if p == float("inf"):
        return d.amax(-1) if x1.shape[-1] else d.sum(-1)
    if p == 1:
        return d.sum(-1)
    if p == 2:
        return _C.norm(d, 2.0, [-1], False)
    return _C.norm(d, builtins.float(p), [-1], False)
