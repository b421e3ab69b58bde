"""torch.func on the reverse-mode engine: functional_call, grad, grad_and_value, vjp, jvp, jacrev,
jacfwd, hessian, and vmap (fastdl.vmap, which loops over the batch: fastdl/_vmap.py).

A transform turns the differentiated arguments into fresh leaves (or differentiable aliases of
tensors that already require grad), runs the function and calls autograd.grad. Its results keep
a graph only when the function's outputs reach a tensor the transform did not make (an outer
transform's leaf, a captured parameter), so grad(grad(f)) nests and plain calls return plain
tensors, as torch.func's do. jvp and linearize take J t by the double-vjp identity (two backward
passes; autograd/forward_ad.py); jacfwd builds the Jacobian in reverse mode, one backward per
output element; hessian is jacfwd(jacrev(f)). Arguments and outputs may be tensors or (nested)
tuples, lists and dicts of tensors. stack_module_state, functionalize and
replace_all_batch_norm_modules_ complete torch.func's model-ensembling helpers.
"""
import functools

from fastdl import _C
from fastdl._C import Tensor
from fastdl._tensor import enable_grad, zeros, zeros_like
from fastdl._vmap import vmap  # noqa: F401  (torch.func.vmap is torch.vmap)
from fastdl.autograd import grad as _autograd_grad
from fastdl.autograd.forward_ad import jvp_of as _jvp_of
from fastdl.autograd.functional import _jac_rows

__all__ = ["functional_call", "grad", "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd", "hessian", "vmap"]


# ---- pytrees: tuples, lists, dicts and namedtuples of leaves ----------------------------------
def _flatten(tree):
    if isinstance(tree, (tuple, list, dict)):
        keys = list(tree) if isinstance(tree, dict) else None
        leaves, specs = [], []
        for child in (tree.values() if keys is not None else tree):
            cl, cs = _flatten(child)
            leaves += cl
            specs.append(cs)
        return leaves, (type(tree), keys, tuple(specs))
    return [tree], None


def _unflatten(leaves, spec):
    it = iter(leaves)

    def build(s):
        if s is None:
            return next(it)
        kind, keys, specs = s
        kids = [build(c) for c in specs]
        if keys is not None:
            return kind(zip(keys, kids))
        return kind(*kids) if hasattr(kind, "_fields") else kind(kids)
    return build(spec)


def _name(func):
    return getattr(func, "__name__", type(func).__name__)


def _argnums(argnums, nargs, where):
    nums = (argnums,) if isinstance(argnums, int) else argnums
    if not (isinstance(nums, tuple) and nums and all(isinstance(a, int) for a in nums)):
        raise TypeError(f"{where}: argnums must be an int or a non-empty tuple of ints; got {argnums!r}")
    for a in nums:
        if not -nargs <= a < nargs:
            raise ValueError(f"{where}: argnums={argnums!r} but only {nargs} positional arguments were given")
    nums = tuple(a % nargs for a in nums)
    if len(set(nums)) != len(nums):
        raise ValueError(f"{where}: argnums must be unique; got {argnums!r}")
    return nums


def _reaches_outside(tensors, own):
    """Whether any tensor's graph reaches a leaf other than the transform's own (by storage)."""
    todo, seen = [], set()
    for t in tensors:
        if isinstance(t, Tensor) and t.requires_grad:
            if t.grad_fn is None:
                if t.data_ptr() not in own:
                    return True
            else:
                todo.append(t.grad_fn)
    while todo:
        fn = todo.pop()
        if fn in seen:
            continue
        seen.add(fn)
        leaf = fn.variable
        if leaf is not None:
            if leaf.data_ptr() not in own:
                return True
            continue
        todo.extend(n for n, _ in fn.next_functions if n is not None)
    return False


class _Trace:
    """One run of func with the arguments at argnums made differentiable."""

    def __init__(self, api, func, args, kwargs, argnums, has_aux):
        self.where = f"{api}({_name(func)})(*args)"
        self.single = isinstance(argnums, int)
        nums = _argnums(argnums, len(args), self.where)
        outer = _C.is_grad_enabled()
        own, args, self.specs, self.flat = set(), list(args), [], []
        with enable_grad():
            for a in nums:
                leaves, spec = _flatten(args[a])
                new = [self._leaf(t, own) for t in leaves]
                args[a] = _unflatten(new, spec)
                self.specs.append((spec, len(new)))
                self.flat += new
            res = func(*args, **(kwargs or {}))
        if has_aux and not (isinstance(res, tuple) and len(res) == 2):
            raise RuntimeError(f"{self.where}: {_name(func)} should return a tuple (output, aux) when has_aux=True; "
                               f"got {type(res).__name__}")
        self.out, self.aux = res if has_aux else (res, None)
        self.out_leaves, self.out_spec = _flatten(self.out)
        for t in self.out_leaves:
            if not isinstance(t, Tensor):
                raise RuntimeError(f"{self.where}: {_name(func)} must return Tensors (or tuples, lists, dicts of "
                                   f"them); got {type(t).__name__}")
        self.keep = outer and _reaches_outside(self.out_leaves + _flatten(self.aux)[0], own)

    def _leaf(self, t, own):
        if not isinstance(t, Tensor):
            raise TypeError(f"{self.where}: differentiated arguments must be Tensors (or tuples, lists, dicts of "
                            f"them); got {type(t).__name__}")
        if not t.dtype.is_floating_point:
            raise TypeError(f"{self.where}: differentiated arguments must be floating point; got dtype {t.dtype}")
        if t.requires_grad:
            return t.view_as(t)  # stays connected: an outer transform or the caller differentiates through it
        t = t.detach().requires_grad_(True)
        own.add(t.data_ptr())
        return t

    def grads(self, outputs, cotangents, create_graph, retain_graph=None):
        """autograd.grad w.r.t. the flat leaves; outputs needing no grad skipped, None -> zeros."""
        pairs = [(o, c) for o, c in zip(outputs, cotangents) if o.requires_grad]
        gs = [None] * len(self.flat)
        if pairs:
            with enable_grad():
                gs = _autograd_grad([o for o, _ in pairs], self.flat, [c for _, c in pairs],
                                    retain_graph=retain_graph, create_graph=create_graph, allow_unused=True)
        return [zeros_like(x) if g is None else g for g, x in zip(gs, self.flat)]

    def by_argnums(self, flat):
        """Flat per-leaf values back into the arguments' structure (a tuple for tuple argnums)."""
        res, i = [], 0
        for spec, n in self.specs:
            res.append(_unflatten(flat[i:i + n], spec))
            i += n
        return res[0] if self.single else tuple(res)

    def finish(self, tree):
        """Results as the caller sees them: detached unless they reach outside the transform."""
        if self.keep:
            return tree
        leaves, spec = _flatten(tree)
        return _unflatten([t.detach() if isinstance(t, Tensor) else t for t in leaves], spec)

    def jacobian(self):
        """Per output leaf, per flat input leaf: out.shape + in.shape, in the outputs' structure."""
        rows = []
        with enable_grad():
            for o in self.out_leaves:
                r = _jac_rows(o, self.flat, self.keep)
                rows.append(self.by_argnums([zeros(tuple(o.shape) + tuple(x.shape), dtype=x.dtype, device=x.device)
                                             if j is None else j for j, x in zip(r, self.flat)]))
        return self.finish(_unflatten(rows, self.out_spec))


def _grad_and_value(api, func, argnums, has_aux):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        t = _Trace(api, func, args, kwargs, argnums, has_aux)
        if not isinstance(t.out, Tensor):
            raise RuntimeError(f"{t.where}: {_name(func)} must return a Tensor; got {type(t.out).__name__}")
        if t.out.ndim != 0:
            raise RuntimeError(f"{t.where}: {_name(func)} must return a scalar (0-d) Tensor; got shape "
                               f"{tuple(t.out.shape)}. Use vjp or jacrev for non-scalar outputs")
        g = t.finish(t.by_argnums(t.grads([t.out], [None], t.keep)))
        value = t.finish(t.out)
        return g, ((value, t.finish(t.aux)) if has_aux else value)
    return wrapper


def grad_and_value(func, argnums=0, has_aux=False):
    """f -> (grad of f w.r.t. args[argnums], f(*args)); with has_aux, (grad, (value, aux))."""
    return _grad_and_value("grad_and_value", func, argnums, has_aux)


def grad(func, argnums=0, has_aux=False):
    """f -> the gradient of scalar f w.r.t. args[argnums] (a tuple for tuple argnums); with has_aux,
    (grad, aux). Nests: grad(grad(f)) is the second derivative."""
    inner = _grad_and_value("grad", func, argnums, has_aux)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        g, value = inner(*args, **kwargs)
        return (g, value[1]) if has_aux else g
    return wrapper


def vjp(func, *primals, has_aux=False):
    """(func(*primals), vjp_fn) and aux with has_aux; vjp_fn(cotangents) returns a tuple with one
    entry per primal and may be called repeatedly."""
    if not primals:
        raise ValueError(f"vjp({_name(func)})(*primals): at least one primal is needed")
    t = _Trace("vjp", func, primals, None, tuple(range(len(primals))), has_aux)

    def vjp_fn(cotangents, retain_graph=True, create_graph=None):
        leaves, spec = _flatten(cotangents)
        if spec != t.out_spec:
            raise RuntimeError(f"{t.where}: vjp_fn expected cotangents with the structure of the output; got a "
                               "different structure")
        for i, (c, o) in enumerate(zip(leaves, t.out_leaves)):
            if not isinstance(c, Tensor) or tuple(c.shape) != tuple(o.shape):
                got = tuple(c.shape) if isinstance(c, Tensor) else type(c).__name__
                raise RuntimeError(f"{t.where}: vjp_fn cotangent {i} must match output {i} of shape "
                                   f"{tuple(o.shape)}; got {got}")
        if create_graph is None:
            create_graph = _C.is_grad_enabled() and (t.keep or any(c.requires_grad for c in leaves))
        gs = t.grads(t.out_leaves, leaves, create_graph, retain_graph)
        flat = gs if create_graph else [g.detach() for g in gs]
        return t.by_argnums(flat)
    out = t.finish(t.out)
    return (out, vjp_fn, t.finish(t.aux)) if has_aux else (out, vjp_fn)


def jvp(func, primals, tangents, *, strict=False, has_aux=False):
    """(func(*primals), J tangents) and aux with has_aux; J tangents by the double-vjp identity
    (autograd/forward_ad.py), two backward passes."""
    where = f"jvp({_name(func)}, primals, tangents)"
    if not isinstance(primals, tuple) or not isinstance(tangents, tuple):
        raise TypeError(f"{where}: primals and tangents must be tuples (func(*primals) is called); got "
                        f"{type(primals).__name__} and {type(tangents).__name__}")
    if not primals:
        raise ValueError(f"{where}: at least one primal is needed")
    tl, tspec = _flatten(tangents)
    t = _Trace("jvp", func, primals, None, tuple(range(len(primals))), has_aux)
    if tspec != _flatten(tuple(primals))[1]:
        raise RuntimeError(f"{where}: tangents must have the structure of primals")
    for i, (a, x) in enumerate(zip(tl, t.flat)):
        if not isinstance(a, Tensor) or tuple(a.shape) != tuple(x.shape):
            got = tuple(a.shape) if isinstance(a, Tensor) else type(a).__name__
            raise RuntimeError(f"{where}: tangent {i} must match primal {i} of shape {tuple(x.shape)}; got {got}")
    create = t.keep or (_C.is_grad_enabled() and any(a.requires_grad for a in tl))
    res = []
    for o, r in zip(t.out_leaves, _jvp_of(t.out_leaves, t.flat, tl, create)):
        if strict and r is None:
            raise RuntimeError(f"{where}: output {len(res)} of {_name(func)} is independent of the primals; "
                               "not allowed with strict=True")
        res.append(zeros_like(o) if r is None else r)
    out = t.finish(t.out)
    res = _unflatten(res, t.out_spec)
    return (out, res, t.finish(t.aux)) if has_aux else (out, res)


def jacrev(func, argnums=0, *, has_aux=False, chunk_size=None, _preallocate_and_copy=False):
    """f -> the Jacobian w.r.t. args[argnums], out.shape + in.shape per output and input leaf,
    one backward per output element; with has_aux, (jacobian, aux)."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        t = _Trace("jacrev", func, args, kwargs, argnums, has_aux)
        jac = t.jacobian()
        return (jac, t.finish(t.aux)) if has_aux else jac
    return wrapper


def jacfwd(func, argnums=0, has_aux=False, *, randomness="error"):
    """jacrev's values and structure (fastdl has no forward mode: built in reverse mode)."""
    if randomness not in ("error", "different", "same"):
        raise ValueError(f"jacfwd: randomness must be 'error', 'different' or 'same'; got {randomness!r}")

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        t = _Trace("jacfwd", func, args, kwargs, argnums, has_aux)
        jac = t.jacobian()
        return (jac, t.finish(t.aux)) if has_aux else jac
    return wrapper


def hessian(func, argnums=0):
    """f -> the Hessian of scalar f w.r.t. args[argnums]: jacfwd(jacrev(f, argnums), argnums)."""
    return jacfwd(jacrev(func, argnums), argnums)


# ---- functional_call -----------------------------------------------------------------------
def _named_tensors(module):
    """(name, tensor) for every parameter and buffer, tied and shared names included."""
    def walk(m, prefix):
        for kind in ("_parameters", "_buffers"):
            for n, t in m.__dict__[kind].items():
                if t is not None:
                    yield prefix + n, t
        for n, sub in m._modules.items():
            if sub is not None:
                yield from walk(sub, prefix + n + ".")
    return list(walk(module, ""))


def _resolve(module, name):
    owner, _, leaf = name.rpartition(".")
    m = module
    for part in owner.split(".") if owner else []:
        sub = m._modules.get(part) if hasattr(m, "_modules") else None
        if sub is None:
            raise AttributeError(f"functional_call: {type(module).__name__} has no submodule {owner!r} (key {name!r})")
        m = sub
    return m, leaf


def _swap(m, leaf, value):
    """Put value under m.leaf; returns how to undo it."""
    for kind in ("_parameters", "_buffers"):
        d = m.__dict__[kind]
        if leaf in d:
            old = d[leaf]
            d[leaf] = value
            return lambda: d.__setitem__(leaf, old)
    missing = object()
    old = m.__dict__.get(leaf, missing)
    m.__dict__[leaf] = value
    return lambda: m.__dict__.pop(leaf) if old is missing else m.__dict__.__setitem__(leaf, old)


def functional_call(module, parameter_and_buffer_dicts, args=None, kwargs=None, *, tie_weights=True, strict=False):
    """module(*args, **kwargs) with its parameters and buffers replaced by name for the call, then
    restored (also when the call raises). Gradients flow to the given tensors; buffers updated in
    place (BatchNorm's running stats) update the given tensors."""
    dicts = parameter_and_buffer_dicts
    if isinstance(dicts, dict):
        values = dict(dicts)
    elif isinstance(dicts, (list, tuple)) and all(isinstance(d, dict) for d in dicts):
        values, dup = {}, []
        for d in dicts:
            dup += [k for k in d if k in values]
            values.update(d)
        if dup:
            raise ValueError(f"functional_call: {sorted(set(dup))} appeared in multiple dictionaries; the call is "
                             "ambiguous")
    else:
        raise ValueError(f"functional_call: parameter_and_buffer_dicts must be a dict or a list/tuple of dicts; got "
                         f"{type(dicts).__name__}")
    named = _named_tensors(module)
    if tie_weights:
        groups = {}
        for n, t in named:
            groups.setdefault(id(t), []).append(n)
        for names in groups.values():
            given = [n for n in names if n in values]
            if len(names) > 1 and given:
                if any(values[n] is not values[given[0]] for n in given[1:]):
                    raise ValueError(f"functional_call: got different values for the keys {given}, which are tied; "
                                     "pass one of them or use tie_weights=False")
                values.update((n, values[given[0]]) for n in names)
    if strict:
        known = [n for n, _ in named]
        known_set = set(known)
        unexpected = [k for k in values if k not in known_set]
        missing = [n for n in known if n not in values]
        msgs = ([f"Unexpected key(s): {', '.join(map(repr, unexpected))}."] if unexpected else []) + \
            ([f"Missing key(s): {', '.join(map(repr, missing))}."] if missing else [])
        if msgs:
            raise RuntimeError(f"functional_call: error(s) in reparametrizing for {type(module).__name__}:\n\t"
                               + "\n\t".join(msgs))
    args = () if args is None else args if isinstance(args, tuple) else (args,)
    undo = []
    try:
        for name, value in values.items():
            m, leaf = _resolve(module, name)
            undo.append(_swap(m, leaf, value))
        return module(*args, **(kwargs or {}))
    finally:
        for u in reversed(undo):
            u()


# ---- linearize, model ensembling, functionalize ---------------------------------------------
def linearize(func, *primals):
    """(func(*primals), jvp_fn): jvp_fn(*tangents) is J tangents at primals, from one recorded forward (each
    call runs two backward passes over it)."""
    where = f"linearize({_name(func)})"
    if not primals:
        raise ValueError(f"{where}: at least one primal is needed")
    t = _Trace("linearize", func, primals, None, tuple(range(len(primals))), False)
    flat_primals = _flatten(tuple(primals))

    def jvp_fn(*tangents):
        tl, tspec = _flatten(tuple(tangents))
        if tspec != flat_primals[1]:
            raise RuntimeError(f"{where}: expected tangents with the structure of the primals")
        for i, (a, x) in enumerate(zip(tl, t.flat)):
            if not isinstance(a, Tensor) or tuple(a.shape) != tuple(x.shape):
                got = tuple(a.shape) if isinstance(a, Tensor) else type(a).__name__
                raise RuntimeError(f"{where}: tangent {i} must match primal {i} of shape {tuple(x.shape)}; got {got}")
        res = _jvp_of(t.out_leaves, t.flat, tl, t.keep)
        return _unflatten([zeros_like(o) if r is None else r for o, r in zip(t.out_leaves, res)], t.out_spec)

    return t.finish(t.out), jvp_fn


def stack_module_state(models):
    """({name: parameters stacked over models}, {name: buffers stacked}) for vmap-style ensembles over
    functional_call; the stacked parameters are new leaves (requiring grad where the models' do)."""
    models = list(models)
    if not models:
        raise RuntimeError("stack_module_state: expected at least one model, got 0")
    if not (all(m.training for m in models) or all(not m.training for m in models)):
        raise RuntimeError("stack_module_state: expected all models to be in the same training / eval mode")
    first = type(models[0])
    if any(type(m) is not first for m in models):
        raise RuntimeError("stack_module_state: expected all models to be of the same class")

    def stacked(getter):
        names = [n for n, _ in getter(models[0])]
        out = {}
        for n in names:
            ts = [dict(getter(m))[n] for m in models]
            s = _C.stack([x.detach() for x in ts], 0)
            if all(x.requires_grad for x in ts):
                s.requires_grad_(True)
            out[n] = s
        return out
    return (stacked(lambda m: list(m.named_parameters())), stacked(lambda m: list(m.named_buffers())))


def functionalize(func, *, remove="mutations"):
    """torch.func.functionalize: a transform for tracing compilers that rewrites in-place ops as out-of-place
    ones with the same results. fastdl runs eagerly, where the function's results are already those, so it is
    returned wrapped as it is."""
    if remove not in ("mutations", "mutations_and_views"):
        raise RuntimeError(f"functionalize: remove must be 'mutations' or 'mutations_and_views'; got {remove!r}")

    @functools.wraps(func)
    def run(*args, **kwargs):
        return func(*args, **kwargs)
    return run


def replace_all_batch_norm_modules_(root):
    """In place, every batch norm in root stops tracking running statistics (for vmap over a batch of models):
    running_mean / running_var become None and track_running_stats False. Returns root."""
    from fastdl.nn.modules.normalization import _BatchNorm
    for m in root.modules():
        if isinstance(m, _BatchNorm):
            m.running_mean = None
            m.running_var = None
            m.num_batches_tracked = None
            m.track_running_stats = False
    return root
