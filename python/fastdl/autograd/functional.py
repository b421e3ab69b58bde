"""torch.autograd.functional: vjp, jvp, jacobian, hessian, vhp, hvp on the reverse-mode engine.

Forward products (jvp) use the double-vjp identity, J v = d/du <J^T u, v> (two backward passes,
autograd/forward_ad.py's jvp_of): every backward is recorded under create_graph, at least as a
function of its incoming gradient, which is all the identity needs; a path without a second
derivative falls back to building J row by row. jacobian(strategy="forward-mode") builds J in
reverse mode, one backward per output element, which needs first derivatives only. hvp uses the
trick on the gradient (as PyTorch), so it, vhp and hessian need ops whose backward is itself
differentiable.
vectorize=True is accepted and runs the same loop (there is no batching transform).
"""
from fastdl._C import Tensor
from fastdl._C import stack
from fastdl._tensor import eye, ones_like, set_grad_enabled, zeros, zeros_like
from fastdl.autograd import grad as _grad
from fastdl.autograd.forward_ad import jvp_of

__all__ = ["vjp", "jvp", "jacobian", "hessian", "vhp", "hvp"]

_STRATEGIES = ("forward-mode", "reverse-mode")


def _as_tuple(inp, arg_name, fn_name):
    """(was it a tuple, the tensors as a tuple); anything but tensors raises TypeError."""
    is_tuple = isinstance(inp, tuple)
    inp = inp if is_tuple else (inp,)
    for i, el in enumerate(inp):
        if not isinstance(el, Tensor):
            where = f"the value at index {i} has type {type(el).__name__}" if is_tuple else \
                f"the given {arg_name} has type {type(el).__name__}"
            raise TypeError(f"{fn_name}: the {arg_name} must be either a Tensor or a tuple of Tensors; {where}")
    return is_tuple, inp


def _tuple_postprocess(res, to_unpack):
    """Undo _as_tuple: to_unpack is one flag, or (outer, inner) flags for nested results."""
    if isinstance(to_unpack, tuple):
        if not to_unpack[1]:
            res = tuple(el[0] for el in res)
        if not to_unpack[0]:
            res = res[0]
    elif not to_unpack:
        res = res[0]
    return res


def _grad_preprocess(inputs, create_graph, need_graph):
    # Always a new tensor object, so inputs told apart from the same tensors captured by func;
    # with create_graph an input that requires grad stays connected to its history.
    return tuple(t.view_as(t) if create_graph and t.requires_grad else t.detach().requires_grad_(need_graph)
                 for t in inputs)


def _grad_postprocess(res, create_graph):
    if isinstance(res, Tensor):
        return res if create_graph else res.detach()
    return tuple(_grad_postprocess(r, create_graph) for r in res)


def _validate_v(v, other, is_other_tuple, fn_name):
    if len(other) != len(v):
        if is_other_tuple:
            raise RuntimeError(f"{fn_name}: v is a tuple of invalid length: should be {len(other)} but got {len(v)}")
        raise RuntimeError(f"{fn_name}: the given v should contain a single Tensor; got {len(v)}")
    for i, (a, b) in enumerate(zip(v, other)):
        if tuple(a.shape) != tuple(b.shape):
            entry = f"entry {i} of " if is_other_tuple else ""
            raise RuntimeError(f"{fn_name}: {entry}v has invalid size: should be {tuple(b.shape)} but got "
                               f"{tuple(a.shape)}")


def _check_requires_grad(tensors, kind, strict, fn_name):
    if not strict:
        return
    for i, t in enumerate(tensors):
        if t is None:
            raise RuntimeError(f"{fn_name}: the output of the user-provided function is independent of input {i}. "
                               "This is not allowed in strict mode.")
        if not t.requires_grad:
            raise RuntimeError({
                "outputs": f"{fn_name}: output {i} of the user-provided function does not require gradients. The "
                           "outputs must be computed in a differentiable manner from the input in strict mode.",
                "grad_inputs": f"{fn_name}: the gradient with respect to input {i} is independent of the inputs of "
                               "the user-provided function. This is not allowed in strict mode.",
                "jacobian": f"{fn_name}: the jacobian of the user-provided function with respect to input {i} is "
                            "independent of the input (a linear function?). This is not allowed in strict mode.",
                "hessian": f"{fn_name}: the hessian of the user-provided function with respect to input {i} is "
                           "independent of the input. This is not allowed in strict mode.",
            }[kind])


def _autograd_grad(outputs, inputs, grad_outputs=None, create_graph=False, retain_graph=None):
    """autograd.grad that skips outputs which are None or need no grad (all skipped: all None)."""
    grad_outputs = (None,) * len(outputs) if grad_outputs is None else grad_outputs
    keep = [(o, g) for o, g in zip(outputs, grad_outputs) if o is not None and o.requires_grad]
    if not keep:
        return (None,) * len(inputs)
    return tuple(_grad([o for o, _ in keep], list(inputs), [g for _, g in keep], retain_graph=retain_graph,
                       create_graph=create_graph, allow_unused=True))


def _fill_in_zeros(grads, refs, strict, create_graph, stage, fn_name):
    res = []
    for i, g in enumerate(grads):
        if g is None:
            if strict:
                what = {"back": f"the output of the user-provided function is independent of input {i}",
                        "double_back": f"the jacobian of the user-provided function is independent of input {i}",
                        "double_back_trick": f"the hessian of the user-provided function is independent of entry "
                                             f"{i} in the grad_jacobian (the double-vjp trick)"}[stage]
                raise RuntimeError(f"{fn_name}: {what}. This is not allowed in strict mode.")
            g = zeros_like(refs[i])
        elif strict and create_graph and not g.requires_grad:
            what = "hessian" if "double" in stage else "jacobian"
            raise RuntimeError(f"{fn_name}: the {what} of the user-provided function is independent of input {i}. "
                               "This is not allowed in strict mode when create_graph=True.")
        res.append(g)
    return tuple(res)


def _prepare_v(v, refs, is_refs_tuple, create_graph, fn_name, none_msg):
    if v is None:
        if len(refs) != 1 or refs[0].numel() != 1:
            raise RuntimeError(f"{fn_name}: the vector v can only be None if {none_msg} is a single Tensor with a "
                               "single element")
        return None
    _, v = _as_tuple(v, "v", fn_name)
    v = _grad_preprocess(v, create_graph=create_graph, need_graph=False)
    _validate_v(v, refs, is_refs_tuple, fn_name)
    return v


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(*inputs), v^T J): the vector-Jacobian product, one backward pass."""
    with set_grad_enabled(True):
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "vjp")
        inputs = _grad_preprocess(inputs, create_graph=create_graph, need_graph=True)
        is_outputs_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", "vjp")
        _check_requires_grad(outputs, "outputs", strict, "vjp")
        v = _prepare_v(v, outputs, is_outputs_tuple, create_graph, "vjp", "the user-provided function returns")
        res = _fill_in_zeros(_autograd_grad(outputs, inputs, v, create_graph=create_graph), inputs, strict,
                             create_graph, "back", "vjp")
    return (_tuple_postprocess(_grad_postprocess(outputs, create_graph), is_outputs_tuple),
            _tuple_postprocess(_grad_postprocess(res, create_graph), is_inputs_tuple))


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(*inputs), J v), by the double-vjp identity (module docstring)."""
    with set_grad_enabled(True):
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jvp")
        inputs = _grad_preprocess(inputs, create_graph=create_graph, need_graph=True)
        v = _prepare_v(v, inputs, is_inputs_tuple, create_graph, "jvp", "the input to the user-provided function")
        is_outputs_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", "jvp")
        _check_requires_grad(outputs, "outputs", strict, "jvp")
        v = v if v is not None else tuple(ones_like(x) for x in inputs)
        res = jvp_of(outputs, inputs, v, create_graph)
        if strict:
            for i, r in enumerate(res):
                if r is None:
                    raise RuntimeError(f"jvp: output {i} of the user-provided function is independent of the "
                                       "inputs. This is not allowed in strict mode.")
            for k, x in enumerate(inputs):  # an input that no output reaches
                if all(g is None for g in _grad(list(o for o in outputs if o.requires_grad), [x],
                                                [zeros_like(o) for o in outputs if o.requires_grad],
                                                retain_graph=True, allow_unused=True)):
                    raise RuntimeError(f"jvp: the output of the user-provided function is independent of input "
                                       f"{k}. This is not allowed in strict mode.")
        res = _fill_in_zeros(res, outputs, strict, create_graph, "back", "jvp")
    return (_tuple_postprocess(_grad_postprocess(outputs, create_graph), is_outputs_tuple),
            _tuple_postprocess(_grad_postprocess(tuple(res), create_graph), is_outputs_tuple))


def _sum(terms):
    acc = terms[0]
    for t in terms[1:]:
        acc = acc + t
    return acc


def _jac_rows(out, inputs, create_graph):
    """d out / d inputs[k] per k, one backward per element of out, shaped out.shape + in.shape;
    None where out does not depend on inputs[k] (or needs no grad)."""
    n = out.numel()
    if not out.requires_grad:
        return (None,) * len(inputs)
    if n == 0:
        return tuple(zeros(tuple(out.shape) + tuple(x.shape), dtype=x.dtype, device=x.device) for x in inputs)
    e = eye(n, dtype=out.dtype, device=out.device)
    rows = [[] for _ in inputs]
    for j in range(n):
        gs = _grad([out], list(inputs), [e[j].reshape(tuple(out.shape))], retain_graph=True,
                   create_graph=create_graph, allow_unused=True)
        for k, g in enumerate(gs):
            rows[k].append(g)
    return tuple(None if r[0] is None else stack([g if g is not None else zeros_like(x) for g in r], 0)
                 .reshape(tuple(out.shape) + tuple(x.shape)) for r, x in zip(rows, inputs))


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False, strategy="reverse-mode"):
    """The Jacobian of func at inputs: for tensor input and output a tensor of shape
    out.shape + in.shape; tuples give tuples, both give a tuple (per output) of tuples (per input).
    Both strategies build it in reverse mode, one backward per output element (module docstring)."""
    if strategy not in _STRATEGIES:
        raise ValueError(f'jacobian: strategy must be "forward-mode" or "reverse-mode"; got {strategy!r}')
    if strict and vectorize:
        raise RuntimeError("jacobian: strict=True and vectorize=True are not supported together; set strict=False "
                           "or vectorize=False")
    if strict and strategy == "forward-mode":
        raise RuntimeError('jacobian: strict=True and strategy="forward-mode" are not supported together; set '
                           'strict=False or strategy="reverse-mode"')
    with set_grad_enabled(True):
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
        inputs = _grad_preprocess(inputs, create_graph=create_graph, need_graph=True)
        is_outputs_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", "jacobian")
        _check_requires_grad(outputs, "outputs", strict, "jacobian")
        jac = []
        for i, o in enumerate(outputs):
            row = _jac_rows(o, inputs, create_graph)
            for k, j in enumerate(row):
                if strict and j is None:
                    raise RuntimeError(f"jacobian: output {i} of the user-provided function is independent of input "
                                       f"{k}. This is not allowed in strict mode.")
                if strict and create_graph and not j.requires_grad:
                    raise RuntimeError(f"jacobian: the jacobian of output {i} of the user-provided function is "
                                       f"independent of input {k}. This is not allowed in strict mode when "
                                       "create_graph=True.")
            jac.append(tuple(zeros(tuple(o.shape) + tuple(x.shape), dtype=x.dtype, device=x.device) if j is None
                             else j for j, x in zip(row, inputs)))
    return _tuple_postprocess(_grad_postprocess(tuple(jac), create_graph), (is_outputs_tuple, is_inputs_tuple))


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False, outer_jacobian_strategy="reverse-mode"):
    """The Hessian of a scalar func: in.shape + in.shape per pair of inputs (nested tuples for tuple
    inputs); the Jacobian of the gradient, which is built with create_graph=True."""
    if outer_jacobian_strategy not in _STRATEGIES:
        raise ValueError(f'hessian: outer_jacobian_strategy must be "forward-mode" or "reverse-mode"; got '
                         f'{outer_jacobian_strategy!r}')
    is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "hessian")

    def single_output(*inp):
        out = func(*inp)
        is_out_tuple, t_out = _as_tuple(out, "outputs of the user-provided function", "hessian")
        _check_requires_grad(t_out, "outputs", strict, "hessian")
        if is_out_tuple:
            raise RuntimeError("hessian: the function given to hessian should return a single Tensor")
        if out.numel() != 1:
            raise RuntimeError(f"hessian: the Tensor returned by the function given to hessian should contain a "
                               f"single element; got shape {tuple(out.shape)}")
        return out.reshape(())

    def jac_func(*inp):
        jac = jacobian(single_output, inp, create_graph=True)
        _check_requires_grad(jac, "jacobian", strict, "hessian")
        return jac

    res = jacobian(jac_func, inputs, create_graph=create_graph, strict=strict, vectorize=vectorize,
                   strategy=outer_jacobian_strategy)
    return _tuple_postprocess(res, (is_inputs_tuple, is_inputs_tuple))


def _scalar_output(func, inputs, v, create_graph, strict, fn_name):
    is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", fn_name)
    inputs = _grad_preprocess(inputs, create_graph=create_graph, need_graph=True)
    v = _prepare_v(v, inputs, is_inputs_tuple, create_graph, fn_name, "the input to the user-provided function")
    is_outputs_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", fn_name)
    _check_requires_grad(outputs, "outputs", strict, fn_name)
    if is_outputs_tuple:
        raise RuntimeError(f"{fn_name}: the function given to {fn_name} should return a single Tensor")
    if outputs[0].numel() != 1:
        raise RuntimeError(f"{fn_name}: the Tensor returned by the function given to {fn_name} should contain a "
                           f"single element; got shape {tuple(outputs[0].shape)}")
    jac = _autograd_grad(outputs, inputs, create_graph=True)
    _check_requires_grad(jac, "jacobian", strict, fn_name)
    return is_inputs_tuple, is_outputs_tuple, inputs, outputs, v, jac


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(*inputs), v^T H) for a scalar func: the gradient of <grad f, v>."""
    with set_grad_enabled(True):
        is_in_t, is_out_t, inputs, outputs, v, jac = _scalar_output(func, inputs, v, create_graph, strict, "vhp")
        res = _fill_in_zeros(_autograd_grad(jac, inputs, v, create_graph=create_graph), inputs, strict,
                             create_graph, "double_back", "vhp")
    return (_tuple_postprocess(_grad_postprocess(outputs, create_graph), is_out_t),
            _tuple_postprocess(_grad_postprocess(res, create_graph), is_in_t))


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(*inputs), H v) for a scalar func, by the double-vjp trick on the gradient (equal to vhp
    when f is twice continuously differentiable, since H is then symmetric)."""
    with set_grad_enabled(True):
        is_in_t, is_out_t, inputs, outputs, v, jac = _scalar_output(func, inputs, v, create_graph, strict, "hvp")
        us = tuple(zeros_like(x, requires_grad=True) for x in inputs)
        double_back = _autograd_grad(jac, inputs, us, create_graph=True)
        _check_requires_grad(double_back, "hessian", strict, "hvp")
        res = _fill_in_zeros(_autograd_grad(double_back, us, v, create_graph=create_graph), inputs, strict,
                             create_graph, "double_back_trick", "hvp")
    return (_tuple_postprocess(_grad_postprocess(outputs, create_graph), is_out_t),
            _tuple_postprocess(_grad_postprocess(res, create_graph), is_in_t))
