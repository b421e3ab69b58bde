"""Module backward hooks (register_full_backward_hook / register_full_backward_pre_hook), as
PyTorch's BackwardHook: the module's tensor inputs and outputs pass through identity nodes whose
backwards see the gradients. The output node runs the pre-hooks on grad_output (each may replace
it); the input node runs the full hooks with (module, grad_input, grad_output) once the
gradients of the inputs exist (each may replace grad_input). With no input requiring grad, the
full hooks run from the output node with grad_input all None."""
from fastdl._C import Tensor


def _identity_fn():
    from fastdl.autograd import Function  # nn is imported by autograd's users: import on first use

    class BackwardHookFunction(Function):
        @staticmethod
        def forward(ctx, on_grads, *ts):
            ctx.on_grads = on_grads
            return tuple(t.view_as(t) for t in ts)

        @staticmethod
        def backward(ctx, *grads):
            return (None,) + tuple(ctx.on_grads(grads))
    return BackwardHookFunction


_FN = []


def _apply(on_grads, ts):
    if not _FN:
        _FN.append(_identity_fn())
    return _FN[0].apply(on_grads, *ts)


def _replace(name, old, new):
    new = tuple(new) if isinstance(new, (tuple, list)) else (new,)
    if len(new) != len(old):
        raise RuntimeError(f"backward hook '{name}' returned {len(new)} gradients; expected {len(old)}")
    return new


class BackwardHook:
    def __init__(self, module, hooks, pre_hooks):
        self.module, self.hooks, self.pre_hooks = module, list(hooks), list(pre_hooks)
        self.grad_output = None
        self.n_inputs = 0
        self.inputs_hooked = False

    def setup_input_hook(self, args):
        pos = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        self.n_inputs = len(pos)
        req = [i for i in pos if args[i].requires_grad]
        if not req or not self.hooks:
            return args
        self.inputs_hooked = True
        slot = {i: k for k, i in enumerate(pos)}

        def on_input_grads(grads):
            grad_input = [None] * self.n_inputs
            for i, g in zip(req, grads):
                grad_input[slot[i]] = g
            grad_input = tuple(grad_input)
            for h in self.hooks:
                r = h(self.module, grad_input, self.grad_output)
                if r is not None:
                    grad_input = _replace(getattr(h, "__name__", "hook"), grad_input, r)
            return [grad_input[slot[i]] for i in req]
        new = _apply(on_input_grads, [args[i] for i in req])
        args = list(args)
        for i, t in zip(req, new):
            args[i] = t
        return tuple(args)

    def setup_output_hook(self, out):
        single = isinstance(out, Tensor)
        outs = [out] if single else list(out) if isinstance(out, (tuple, list)) else None
        if outs is None:
            return out
        req = [i for i, o in enumerate(outs) if isinstance(o, Tensor) and o.requires_grad]
        if not req:
            return out

        def on_output_grads(grads):
            grad_output = tuple(grads)
            for h in self.pre_hooks:
                r = h(self.module, grad_output)
                if r is not None:
                    grad_output = _replace(getattr(h, "__name__", "pre-hook"), grad_output, r)
            self.grad_output = grad_output
            if not self.inputs_hooked:  # nothing upstream will call the full hooks
                for h in self.hooks:
                    h(self.module, (None,) * self.n_inputs, grad_output)
            return list(grad_output)
        new = _apply(on_output_grads, [outs[i] for i in req])
        for i, t in zip(req, new):
            outs[i] = t
        if single:
            return outs[0]
        if isinstance(out, tuple):
            return type(out)(*outs) if hasattr(out, "_fields") else tuple(outs)  # namedtuples keep their type
        return outs
