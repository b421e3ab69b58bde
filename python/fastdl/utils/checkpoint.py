"""Activation checkpointing (torch.utils.checkpoint): trade compute for memory.

    y = checkpoint(block, x, use_reentrant=False)   # block's activations are not kept ...
    y.sum().backward()                              # ... backward runs block again to rebuild them

The forward runs the function once, notes the leaf tensors it reached that need gradients (its
parameters, whatever they are: a module's, a closure's), and keeps only its inputs and outputs;
the graph and activations of that run are freed at once. Backward runs the function again with
the random state (dropout) and autocast state of the forward and differentiates that run with
respect to the inputs and those leaves, handing the gradients back to the engine: .backward()
accumulates them, fastdl.autograd.grad returns them, as PyTorch's non-reentrant form.
use_reentrant=True is PyTorch's older form: no leaf discovery, and the recomputation is
back-propagated on its own (parameters accumulate into .grad directly; autograd.grad cannot reach
them, as in PyTorch). Outputs may be tensors or tuples / lists / dicts of them, with other values
passed through.
"""
from fastdl import _C
from fastdl._C import Tensor
from fastdl._vmap import _flatten
from fastdl.autograd import Function


def _leaves(outputs, args):
    """The leaf tensors that need gradients and that outputs' graph reaches without passing
    through the arguments (whose own gradients flow as inputs). Graph nodes compare and hash by
    the node they wrap; tensors by the tensor (_is), since each access makes a new Python object."""
    arg_tensors = [a for a in args if isinstance(a, Tensor)]
    stop = {a.grad_fn for a in arg_tensors if a.grad_fn is not None}
    seen, found = set(), []
    stack = [o.grad_fn for o in outputs if isinstance(o, Tensor) and o.grad_fn is not None]
    while stack:
        node = stack.pop()
        if node is None or node in seen or node in stop:
            continue
        seen.add(node)
        var = node.variable
        if var is not None:
            if not any(var._is(t) for t in arg_tensors) and not any(var._is(f) for f in found):
                found.append(var)
            continue
        stack.extend(fn for fn, _ in (node.next_functions or ()) if fn is not None)
    return found


class _Checkpoint(Function):
    @staticmethod
    def forward(ctx, outputs, run, kwargs, reentrant, rng, autocast, n_args, *args_and_leaves):
        # outputs: the forward's results, computed by checkpoint() (see there), detached
        ctx.run, ctx.kwargs, ctx.reentrant, ctx.rng, ctx.autocast = run, kwargs, reentrant, rng, autocast
        ctx.args, ctx.leaves = args_and_leaves[:n_args], args_and_leaves[n_args:]
        return outputs

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
            outs = _flatten(ctx.run(*inputs, **ctx.kwargs))[0]
        finally:
            _C.set_grad_enabled(grad_mode)
            for d, (on, dt) in saved_autocast.items():
                _C._set_autocast(d, on, dt)
            if ctx.rng is not None:
                _C._set_rng_state(saved_rng)
        pairs = [(o, g) for o, g in zip(outs, grads) if isinstance(o, Tensor) and o.requires_grad and g is not None]
        wrt = [a for a in inputs if isinstance(a, Tensor) and a.requires_grad]
        from fastdl import autograd
        n_lead = 7  # outputs, run, kwargs, reentrant, rng, autocast, n_args
        if ctx.reentrant:
            if pairs:
                autograd.backward([o for o, _ in pairs], [g for _, g in pairs])
            return (None,) * n_lead + tuple(
                a.grad if isinstance(a, Tensor) and a.requires_grad else None for a in inputs) + (None,) * len(ctx.leaves)
        targets = wrt + list(ctx.leaves)
        # retain_graph: a closure's tensor may carry a graph from before the checkpoint, which the
        # outer backward still walks
        got = autograd.grad([o for o, _ in pairs], targets, [g for _, g in pairs], retain_graph=True,
                            allow_unused=True) if pairs and targets else [None] * len(targets)
        by_id = {id(t): g for t, g in zip(targets, got)}
        return (None,) * n_lead + tuple(by_id.get(id(a)) if isinstance(a, Tensor) else None for a in inputs) + \
            tuple(got[len(wrt):])


def checkpoint(function, *args, use_reentrant=None, context_fn=None, determinism_check="default", debug=False,
               preserve_rng_state=True, **kwargs):
    """function(*args, **kwargs), its activations recomputed in backward instead of stored."""
    if not callable(function):
        raise TypeError(f"checkpoint: function must be callable; got {type(function).__name__}")
    if context_fn is not None:
        raise ValueError("checkpoint: context_fn is not supported")
    if use_reentrant and kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(kwargs))
    if not _C.is_grad_enabled():
        return function(*args, **kwargs)
    rng = _C._rng_state() if preserve_rng_state else None
    autocast = {d: _C._get_autocast(d) for d in ("cpu", "cuda")}
    if use_reentrant:
        from fastdl import no_grad
        with no_grad():
            out = function(*args, **kwargs)
        leaves = []
        # a leaf that needs a gradient, so the recomputation is recorded even when no input needs one
        anchor = [_C.empty((0,), _C.dtype.float32, _C.device("cpu")).requires_grad_(True)]
    else:
        out = function(*args, **kwargs)  # the discovery run: its graph is dropped below
        leaves = _leaves(_flatten(out)[0], args)
        anchor = []
    flat, build = _flatten(out)
    outputs = tuple(o.detach() if isinstance(o, Tensor) else o for o in flat)
    del out, flat
    if not use_reentrant and not leaves and not any(isinstance(a, Tensor) and a.requires_grad for a in args):
        return build(list(outputs))  # nothing to differentiate: as PyTorch, outputs that need no grad

    res = _Checkpoint.apply(outputs, function, kwargs, bool(use_reentrant), rng, autocast, len(args), *args, *leaves,
                            *anchor)
    res = res if isinstance(res, tuple) else (res,)
    return build(list(res))


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
