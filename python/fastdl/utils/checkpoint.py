"""Activation checkpointing (torch.utils.checkpoint): trade compute for memory.

    y = checkpoint(block, x)          # block's activations are not kept ...
    y.sum().backward()                # ... backward runs block again to rebuild them

The forward runs without recording a graph, keeping only the inputs; backward runs the
function again with the graph on and back-propagates through that (a reentrant backward, as
PyTorch's use_reentrant=True): parameters the function uses get their gradients in .grad, and
the inputs' gradients flow on. The random state (dropout) and the autocast state of the forward
are restored for the recomputation, so it repeats the forward exactly. As with PyTorch's
reentrant form, fastdl.autograd.grad cannot reach parameters inside a checkpoint: use
.backward().
"""
from fastdl import _C
from fastdl._C import Tensor
from fastdl.autograd import Function


class _Checkpoint(Function):
    @staticmethod
    def forward(ctx, run, kwargs, preserve_rng_state, anchor, *args):
        ctx.run, ctx.kwargs, ctx.args = run, kwargs, args
        ctx.rng = _C._rng_state() if preserve_rng_state else None
        ctx.autocast = {d: _C._get_autocast(d) for d in ("cpu", "cuda")}
        return run(*args, **kwargs)

    @staticmethod
    def backward(ctx, *grads):
        inputs = [a.detach().requires_grad_(a.requires_grad) if isinstance(a, Tensor) else a for a in ctx.args]
        saved_rng = _C._rng_state()
        saved_autocast = {d: _C._get_autocast(d) for d in ("cpu", "cuda")}
        grad_mode = _C.is_grad_enabled()
        try:
            if ctx.rng is not None:
                _C._set_rng_state(ctx.rng)
            for d, (on, dt) in ctx.autocast.items():
                _C._set_autocast(d, on, dt)
            _C.set_grad_enabled(True)
            out = ctx.run(*inputs, **ctx.kwargs)
        finally:
            _C.set_grad_enabled(grad_mode)
            for d, (on, dt) in saved_autocast.items():
                _C._set_autocast(d, on, dt)
            if ctx.rng is not None:
                _C._set_rng_state(saved_rng)
        outs = out if isinstance(out, tuple) else (out,)
        pairs = [(o, g) for o, g in zip(outs, grads) if isinstance(o, Tensor) and o.requires_grad and g is not None]
        if pairs:
            from fastdl import autograd
            autograd.backward([o for o, _ in pairs], [g for _, g in pairs])
        return (None, None, None, None) + tuple(
            a.grad if isinstance(a, Tensor) and a.requires_grad else None for a in inputs)


def checkpoint(function, *args, use_reentrant=None, context_fn=None, determinism_check="default", debug=False,
               preserve_rng_state=True, **kwargs):
    """function(*args, **kwargs), its activations recomputed in backward instead of stored."""
    if not callable(function):
        raise TypeError(f"checkpoint: function must be callable; got {type(function).__name__}")
    if context_fn is not None:
        raise ValueError("checkpoint: context_fn is not supported (fastdl's checkpoint is the reentrant form)")
    if not _C.is_grad_enabled():
        return function(*args, **kwargs)
    # a leaf that needs a gradient, so the recomputation is recorded even when no input needs one
    # (the function's parameters still do)
    anchor = _C.empty((0,), _C.dtype.float32, _C.device("cpu")).requires_grad_(True)
    return _Checkpoint.apply(function, kwargs, preserve_rng_state, anchor, *args)


def checkpoint_sequential(functions, segments, input, use_reentrant=None, **kwargs):  # noqa: A002
    """Run functions (an nn.Sequential or a list of callables) in order on input, in `segments`
    chunks; every chunk but the last is checkpointed."""
    fns = list(functions.children()) if hasattr(functions, "children") else list(functions)
    if not isinstance(segments, int) or segments < 1:
        raise ValueError(f"checkpoint_sequential: segments must be a positive int; got {segments!r}")
    if not fns:
        return input
    size = max(1, len(fns) // segments)

    def chunk(lo, hi):
        def run(x):
            for f in fns[lo:hi]:
                x = f(x)
            return x
        return run
    lo = 0
    while lo + size < len(fns) and lo // size < segments - 1:
        input = checkpoint(chunk(lo, lo + size), input, use_reentrant=use_reentrant, **kwargs)
        lo += size
    return chunk(lo, len(fns))(input)
