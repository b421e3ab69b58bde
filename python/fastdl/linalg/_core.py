"""What every linalg function shares: LinAlgError, argument checks, the numpy round trip and the
small fastdl-op helpers the backward formulas are written with.

The factorizations run in LAPACK through numpy.linalg, in the tensor's own dtype (float32 or
float64). A CUDA tensor is copied to the host, factorized there and the result copied back to
its device: correct everywhere, but each call pays two transfers."""
from fastdl._lazy import np

import fastdl as fd


class LinAlgError(RuntimeError):
    """A matrix the factorization cannot handle (singular, not positive-definite), as
    torch.linalg.LinAlgError: a RuntimeError, so `except RuntimeError` catches it too."""


def check_float(op, A, name="A"):
    if not isinstance(A, fd.Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor; got {type(A).__name__}")
    if A.dtype not in (fd.float32, fd.float64):
        raise TypeError(f"{op}: {name} must be float32 or float64 (LAPACK runs in the tensor's dtype); "
                        f"got {A.dtype}")


def check_matrix(op, A, name="A"):
    check_float(op, A, name)
    if A.ndim < 2:
        raise ValueError(f"{op}: {name} must have at least 2 dimensions; got shape {tuple(A.shape)}")


def check_square(op, A, name="A"):
    check_matrix(op, A, name)
    if A.shape[-1] != A.shape[-2]:
        raise ValueError(f"{op}: {name} must be batches of square matrices, but they are "
                         f"{A.shape[-2]} by {A.shape[-1]} matrices; got shape {tuple(A.shape)}")


def to_np(t):
    """The tensor's values as a numpy array of its dtype: zero-copy for contiguous CPU tensors.
    Callers only read it (numpy.linalg never writes its inputs)."""
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    return t.contiguous().numpy()


def from_np(a, like):
    """A numpy result as a tensor of `like`'s dtype on `like`'s device."""
    a = np.asarray(a, dtype=np.float32 if like.dtype == fd.float32 else np.float64)
    if not a.flags.c_contiguous:  # (np.ascontiguousarray would turn a 0-d result into shape (1,))
        a = a.copy()
    t = fd.from_numpy(a)
    return t if like.device.type == "cpu" else t.to(like.device)


def lapack(op, fn, *args, what="the input matrix is singular"):
    """fn(*args), numpy's LinAlgError turned into ours, naming the op."""
    try:
        with np.errstate(all="ignore"):
            return fn(*args)
    except np.linalg.LinAlgError as e:
        raise LinAlgError(f"{op}: The factorization failed because {what} ({e})") from None


def eye_like(n, A):
    return fd.eye(n, dtype=A.dtype, device=A.device)


def diag_embed(v):
    """(..., n) -> (..., n, n) with v on the diagonal."""
    return v.unsqueeze(-1) * eye_like(v.shape[-1], v)


def sum_to(g, shape):
    """Reduce a broadcast gradient back to an input's shape (sum over the added and size-1 dims)."""
    shape = tuple(shape)
    if tuple(g.shape) == shape:
        return g
    lead = g.ndim - len(shape)
    if lead:
        g = fd.sum(g, dim=tuple(range(lead)))
    dims = tuple(i for i, (a, b) in enumerate(zip(g.shape, shape)) if b == 1 and a != 1)
    return fd.sum(g, dim=dims, keepdim=True) if dims else g


def any_nonzero(g):
    """False when an output's gradient is all zeros (the engine hands zeros for unused outputs):
    the backward formulas then skip terms that would otherwise divide by gaps between repeated
    eigen/singular values (0 * inf)."""
    return g is not None and bool(fd.any(g != 0).item())
