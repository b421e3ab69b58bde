"""Forward-mode AD with torch.autograd.forward_ad's API: inside `with dual_level():`, make_dual(x, t) gives a
tensor carrying the tangent t, and unpack_dual(y) returns (primal, tangent) with tangent = J t summed over the
duals y depends on.

fastdl records one reverse-mode graph, so the tangent is computed on demand by the double-vjp identity: for
g(v) = J^T v (one backward with create_graph), J t = d/dv <g(v), t> (a second backward, w.r.t. v). Two
backward passes per unpack_dual, whatever the sizes; ops without a second derivative fall back to building J
row by row. The duals' graph must be recorded, so forward AD does not see through no_grad regions (torch's
does).
"""
import collections

from fastdl import _C
from fastdl._C import Tensor

__all__ = ["UnpackedDualTensor", "dual_level", "enter_dual_level", "exit_dual_level", "make_dual", "unpack_dual"]

UnpackedDualTensor = collections.namedtuple("UnpackedDualTensor", ["primal", "tangent"])

_levels = []  # stack of dual levels: each {id(dual): (dual, primal, tangent)}


def enter_dual_level():
    """Opens a new dual level (nested levels are not supported, as in torch) and returns its index."""
    if _levels:
        raise RuntimeError("enter_dual_level: nested forward AD levels are not supported (one level at a time)")
    _levels.append({})
    return len(_levels) - 1


def exit_dual_level(*, level=None):
    if not _levels:
        raise RuntimeError("exit_dual_level: no dual level is open")
    if level is not None and level != len(_levels) - 1:
        raise RuntimeError(f"exit_dual_level: level {level} is not the innermost open level ({len(_levels) - 1})")
    _levels.pop()


class dual_level:
    """Context manager: duals made inside carry their tangents until the block ends."""

    def __enter__(self):
        return enter_dual_level()

    def __exit__(self, *exc):
        exit_dual_level()
        return False


def _level(level, op):
    if not _levels:
        raise RuntimeError(f"{op}: no forward AD level is open; use `with fastdl.autograd.forward_ad.dual_level():`")
    if level is not None and level != len(_levels) - 1:
        raise RuntimeError(f"{op}: level {level} is not the innermost open level ({len(_levels) - 1})")
    return _levels[-1]


def make_dual(tensor, tangent, *, level=None):
    """A tensor equal to `tensor` whose forward derivative is `tangent` (same shape, floating point)."""
    duals = _level(level, "make_dual")
    if not isinstance(tensor, Tensor) or not isinstance(tangent, Tensor):
        raise TypeError("make_dual: expected tensor and tangent to be Tensors; got "
                        f"{type(tensor).__name__} and {type(tangent).__name__}")
    if tuple(tensor.shape) != tuple(tangent.shape):
        raise RuntimeError(f"make_dual: the tangent's shape {tuple(tangent.shape)} must match the primal's "
                           f"{tuple(tensor.shape)}")
    if not tensor.dtype.is_floating_point or not tangent.dtype.is_floating_point:
        raise RuntimeError(f"make_dual: expected floating point tensors; got {tensor.dtype} and {tangent.dtype}")
    prev = _C.is_grad_enabled()
    _C.set_grad_enabled(True)
    try:
        dual = tensor.view_as(tensor) if tensor.requires_grad else tensor.detach().requires_grad_(True)
    finally:
        _C.set_grad_enabled(prev)
    duals[id(dual)] = (dual, tensor, tangent.to(tensor.dtype))
    return dual


def jvp_of(outputs, inputs, tangents, create_graph=False):
    """J t for each output: sum_k d out / d inputs[k] . tangents[k] (None where no output depends on an input).
    Double-vjp first (two backward passes), row-by-row Jacobians where a second derivative is missing."""
    from fastdl.autograd import grad
    from fastdl.autograd.functional import _jac_rows
    from fastdl._tensor import enable_grad, ones_like
    live = [o for o in outputs if o.requires_grad]
    if not live:
        return [None] * len(outputs)
    with enable_grad():
        try:
            # any cotangent gives the same derivative (g is linear in v); ones, not zeros, so that backwards
            # which skip an all-zero incoming gradient (linalg's eigenvector terms) still record their path
            vs = [ones_like(o).requires_grad_(True) for o in live]
            gs = grad(live, inputs, vs, retain_graph=True, create_graph=True, allow_unused=True)
            terms = [(g * t).sum() for g, t in zip(gs, tangents) if g is not None and g.requires_grad]
            if not terms:
                res = [None] * len(live)
            else:
                total = terms[0]
                for term in terms[1:]:
                    total = total + term
                res = list(grad([total], vs, None, retain_graph=True, create_graph=create_graph, allow_unused=True))
        except (RuntimeError, NotImplementedError):  # no second derivative on the path: J row by row
            res = []
            for o in live:
                rows = _jac_rows(o, inputs, create_graph)
                acc = None
                for j, x, t in zip(rows, inputs, tangents):
                    if j is not None and x.numel():
                        term = (j.reshape(o.numel(), x.numel()) @ t.reshape(x.numel())).reshape(tuple(o.shape))
                        acc = term if acc is None else acc + term
                res.append(acc)
    it = iter(res)
    out = []
    for o in outputs:
        if not o.requires_grad:
            out.append(None)
            continue
        r = next(it)
        out.append(r if r is None or create_graph else r.detach())
    return out


def unpack_dual(tensor, *, level=None):
    """(primal, tangent) of `tensor`: tangent None when it depends on no dual of the level."""
    if not _levels:
        return UnpackedDualTensor(tensor, None)
    duals = _level(level, "unpack_dual")
    if not isinstance(tensor, Tensor):
        raise TypeError(f"unpack_dual: expected a Tensor; got {type(tensor).__name__}")
    hit = duals.get(id(tensor))
    if hit is not None and hit[0] is tensor:
        return UnpackedDualTensor(hit[1], hit[2])
    if not duals or not tensor.requires_grad:
        return UnpackedDualTensor(tensor, None)
    entries = list(duals.values())
    (tangent,) = jvp_of([tensor], [d for d, _, _ in entries], [t for _, _, t in entries])
    return UnpackedDualTensor(tensor, tangent)
