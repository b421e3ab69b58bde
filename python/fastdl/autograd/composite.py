"""Second derivatives of fused kernels. A fused backward (the LSTM's reverse time loop, the
selective scan's) is not built from differentiable ops, so under create_graph its gradients would
be constants. `attach` gives such a node a composite form: under create_graph the node recomputes
the op from differentiable ops on detached copies of its inputs, differentiates that with
create_graph, and hands the gradients on through a Function whose own backward differentiates
them once more (a third derivative raises). The fused kernels keep running every ordinary
backward; only a create_graph backward pays for the recomputation.

    out = _C.some_fused_op(a, b)
    attach(out, [a, b], lambda a, b: composed_op(a, b))
"""
from fastdl import _C
from fastdl._C import Tensor

__all__ = ["attach", "value_with_grad_of", "elementwise_function", "unary_with_derivative"]


def attach(outputs, inputs, composite):
    """outputs: the fused op's outputs (a tensor or a sequence; the first carries its node);
    inputs: the node's inputs in its order (None where absent); composite(*inputs) returns the
    same outputs from differentiable ops. Keeps no reference to the outputs (that would be a cycle
    through the node)."""
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    specs = [(tuple(o.shape), o.dtype, o.device) for o in outs]
    inputs = list(inputs)

    def provider(grads):
        gs = [g if g is not None else _C.full(shape, 0.0, dt, dev) for g, (shape, dt, dev) in zip(grads, specs)]
        res = _recompute().apply(composite, len(inputs), *inputs, *gs)
        res = res if isinstance(res, tuple) else (res,)
        return list(res)
    _C._set_double_backward(outs[0], provider)


_cls = []


def _recompute():
    """The Function, built on first use (fastdl.autograd imports this module)."""
    if _cls:
        return _cls[0]
    from fastdl.autograd import Function, grad, once_differentiable

    class CompositeBackward(Function):
        """forward(composite, n, *inputs, *grads): the gradients of composite(*inputs) against the
        grads, computed on a recorded copy; backward: their vector-Jacobian product, from it."""
        @staticmethod
        def forward(ctx, composite, n, *ts):
            ins, gs = ts[:n], ts[n:]
            leaves = [t.detach().requires_grad_(t.requires_grad) if isinstance(t, Tensor) else t for t in ins]
            gl = [g.detach().requires_grad_(True) for g in gs]
            prev = _C.is_grad_enabled()
            _C.set_grad_enabled(True)
            try:
                outs = composite(*leaves)
                outs = outs if isinstance(outs, (tuple, list)) else (outs,)
                pairs = [(o, g) for o, g in zip(outs, gl) if o.requires_grad]
                diff = [i for i, t in enumerate(leaves) if isinstance(t, Tensor) and t.requires_grad]
                G = [None] * len(diff)
                if pairs and diff:
                    G = list(grad([o for o, _ in pairs], [leaves[i] for i in diff], [g for _, g in pairs],
                                  create_graph=True, allow_unused=True))
            finally:
                _C.set_grad_enabled(prev)
            ctx.keep = (leaves, gl, diff, G)
            res = [None] * n
            for i, g in zip(diff, G):
                res[i] = g.detach() if g is not None else None
            return tuple(res)

        @staticmethod
        @once_differentiable
        def backward(ctx, *gG):
            leaves, gl, diff, G = ctx.keep
            n = len(leaves)
            pairs = [(G[k], gG[i]) for k, i in enumerate(diff)
                     if G[k] is not None and gG[i] is not None and G[k].requires_grad]
            targets = [leaves[i] for i in diff] + gl
            res = [None] * (2 + n + len(gl))
            if pairs:
                H = grad([a for a, _ in pairs], targets, [b for _, b in pairs], retain_graph=True, allow_unused=True)
                for k, i in enumerate(diff):
                    res[2 + i] = H[k]
                for j in range(len(gl)):
                    res[2 + n + j] = H[len(diff) + j]
            return tuple(res)

    _cls.append(CompositeBackward)
    return CompositeBackward


_vg = []


def value_with_grad_of(value, surrogate):
    """A tensor with value's elements whose gradient is surrogate's: backward hands the incoming
    gradient to surrogate's graph (same shape as value). For ops whose value is computed apart
    (on the host, or with PyTorch's tie rules) but whose derivative is a simple linear map, such as
    nextafter's (x * mask) or index_copy's (a scatter-sum of the sources); unlike
    value + (surrogate - surrogate.detach()) it never meets inf - inf."""
    if not (_C.is_grad_enabled() and surrogate.requires_grad):
        return value.detach()
    if not _vg:
        from fastdl.autograd import Function

        class ValueWithGradOf(Function):
            @staticmethod
            def forward(ctx, value, surrogate):
                return value.detach()

            @staticmethod
            def backward(ctx, g):
                return None, g
        _vg.append(ValueWithGradOf)
    return _vg[0].apply(value.detach(), surrogate)


_fns = {}


def elementwise_function(name, value, grads):
    """A (cached) autograd Function for an elementwise op of n tensors whose value is computed apart
    and whose gradients follow given formulas: value(*inputs) -> tensor (run without autograd);
    grads(g, *inputs) -> one gradient per input (None for none), built from differentiable ops so
    that higher derivatives follow. Broadcast gradients are summed back to each input's shape.
    Call it as elementwise_function(...).apply(*inputs)."""
    if name in _fns:
        return _fns[name]
    from fastdl.autograd import Function

    def forward(ctx, *ts):
        ctx.save_for_backward(*ts)
        return value(*ts)

    def backward(ctx, g):
        ts = ctx.saved_tensors
        out = []
        for t, d in zip(ts, grads(g, *ts)):
            if d is not None and tuple(d.shape) != tuple(t.shape):
                d = d.sum_to_size(t.shape)
            out.append(d)
        return tuple(out)
    fn = type(name, (Function,), {"forward": staticmethod(forward), "backward": staticmethod(backward)})
    _fns[name] = fn
    return fn


def unary_with_derivative(name, value, deriv, x):
    """value(x), whose gradient is g * deriv(x) (deriv built from differentiable ops, so higher
    derivatives follow): PyTorch's derivative formula for an op whose value is computed another way
    (acosh, atanh, logit, the gamma and erf families). Without autograd, just value(x)."""
    if not (x.requires_grad and _C.is_grad_enabled()):
        return value(x)
    return elementwise_function(name, value, lambda g, t: (g * deriv(t),)).apply(x)
