"""torch.autograd.gradcheck: gradcheck and gradgradcheck compare analytical gradients with central
finite differences in float64."""
from fastdl._lazy import np

from fastdl import _C
from fastdl._C import Tensor
from fastdl.autograd import _C_no_grad, _seq, grad

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]


def _as_np(t):
    return t.detach().cpu()._to_dtype(_C.dtype.float64).numpy().copy()


class GradcheckError(RuntimeError, AssertionError):
    """A gradcheck / gradgradcheck mismatch (torch.autograd.gradcheck.GradcheckError; also an
    AssertionError, as fastdl's checks raised before)."""


_TORCH_ONLY_CHECKS = ("nondet_tol", "check_undefined_grad", "check_grad_dtypes", "check_batched_grad",
                      "check_batched_forward_grad", "check_forward_ad", "check_backward_ad", "fast_mode", "masked",
                      "check_fwd_over_rev", "check_rev_over_rev", "gen_non_contig_grad_outputs")


def _check_kwargs(kw, op):
    unknown = set(kw) - set(_TORCH_ONLY_CHECKS)
    if unknown:
        raise TypeError(f"{op}() got an unexpected keyword argument '{sorted(unknown)[0]}'")


def gradcheck(fn, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=0, **kw):
    """Compare analytical gradients of fn at `inputs` (float64 tensors) with central finite
    differences, for a random upstream gradient per output (one vector-Jacobian product, not
    PyTorch's full Jacobian). Returns True, or raises GradcheckError (False with
    raise_exception=False). PyTorch's other check_* options are accepted; backward AD is what
    runs. An output that does not require grad counts as having a zero analytical gradient."""
    _check_kwargs(kw, "gradcheck")
    inputs = _seq(inputs)
    diff = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    for t in diff:
        if t.dtype != _C.dtype.float64:
            raise TypeError(f"gradcheck: inputs must be float64; got {t.dtype}")
    out = fn(*inputs)
    outs = [o for o in _seq(out) if isinstance(o, Tensor)]
    rng = np.random.default_rng(seed)
    ups = [_C.from_numpy(rng.standard_normal(tuple(o.shape))) for o in outs]
    live = [(o, u) for o, u in zip(outs, ups) if o.requires_grad]
    analytic = grad([o for o, _ in live], diff, [u for _, u in live], allow_unused=True) if live and diff \
        else [None] * len(diff)

    def scalar():
        with _C_no_grad():
            r = [o for o in _seq(fn(*inputs)) if isinstance(o, Tensor)]
            return sum(float((_as_np(o) * _as_np(u)).sum()) for o, u in zip(r, ups))

    for t, a in zip(diff, analytic):
        base = t.detach()
        flat_n = base.numel()
        num = np.zeros(flat_n)
        orig = _as_np(base).reshape(-1)
        v0 = t._version
        for i in range(flat_n):
            idx = np.unravel_index(i, tuple(base.shape)) if base.ndim else ()
            for sgn in (+1, -1):
                v = orig[i] + sgn * eps
                with _C_no_grad():
                    base[idx if base.ndim else ...] = float(v)
                num[i] += sgn * scalar()
            with _C_no_grad():
                base[idx if base.ndim else ...] = float(orig[i])
            num[i] /= 2 * eps
        t._set_version(v0)  # the probe restored every value: no in-place write for autograd to see
        ana = np.zeros(flat_n) if a is None else _as_np(a).reshape(-1)
        if not np.allclose(ana, num, atol=atol, rtol=rtol):
            if raise_exception:
                k = int(np.argmax(np.abs(ana - num)))
                raise GradcheckError(f"gradcheck: gradient mismatch for input of shape {tuple(t.shape)} at flat index "
                                     f"{k}: analytical {ana[k]:.8g} vs numerical {num[k]:.8g}")
            return False
    return True


def gradgradcheck(fn, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=0,
                  **kw):
    """Second-order check, as PyTorch's: gradcheck of (inputs, grad_outputs) -> the first
    derivative of fn's outputs w.r.t. its inputs, taken with create_graph and the grad_outputs as
    variables (random float64 ones when None), so derivatives through the upstream gradient are
    checked too and ops linear in their input pass."""
    _check_kwargs(kw, "gradgradcheck")
    inputs = _seq(inputs)
    n_in = len(inputs)
    diff_pos = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    prev = _C.is_grad_enabled()
    _C.set_grad_enabled(True)
    try:
        outs = [o for o in _seq(fn(*inputs)) if isinstance(o, Tensor)]
    finally:
        _C.set_grad_enabled(prev)
    out_pos = [j for j, o in enumerate(outs) if o.requires_grad]
    if grad_outputs is None:
        rng = np.random.default_rng(seed + 1)
        grad_outputs = [_C.from_numpy(rng.standard_normal(tuple(outs[j].shape))).to(outs[j].dtype)
                        .requires_grad_(True) for j in out_pos]
    else:
        grad_outputs = [g for g in _seq(grad_outputs) if g is not None]
    if len(grad_outputs) != len(out_pos):
        raise ValueError(f"gradgradcheck: got {len(grad_outputs)} grad_outputs for {len(out_pos)} differentiable "
                         "outputs")

    def first(*args):  # the first derivative, with its graph even when gradcheck runs it under no_grad
        xs, ups = args[:n_in], args[n_in:]
        prev = _C.is_grad_enabled()
        _C.set_grad_enabled(True)
        try:
            out = [o for o in _seq(fn(*xs)) if isinstance(o, Tensor)]
            live = [(out[j], u) for j, u in zip(out_pos, ups) if out[j].requires_grad]
            if not live:
                return []
            gs = grad([o for o, _ in live], [xs[i] for i in diff_pos], [u for _, u in live], create_graph=True,
                      allow_unused=True)
        finally:
            _C.set_grad_enabled(prev)
        return [g for g in gs if g is not None]
    return gradcheck(first, list(inputs) + list(grad_outputs), eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, seed=seed)
