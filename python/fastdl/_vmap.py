"""vmap (torch.vmap / torch.func.vmap): map a function over a batch dimension of its inputs.

fastdl runs eagerly and has no batching transform, so vmap runs func once per batch element,
on the inputs' slices along in_dims, and stacks the outputs along out_dims. That gives the
results (and gradients: the slices and the stack are differentiable) of any func, including
grad / jacrev compositions such as per-sample gradients, at the cost of one call per element.
Random ops inside func draw independently per element ("different"); randomness="same" replays
one draw for every element; "error" is PyTorch's default and is accepted, since the loop cannot
tell a random op from another.
"""
import builtins
import functools

from fastdl import _C
from fastdl._C import Tensor


def _flatten(tree):
    """Leaves of a tuple / list / dict / namedtuple tree and a function that rebuilds it (which holds
    the structure only, never the leaves)."""
    if isinstance(tree, (tuple, list)):
        parts = [_flatten(x) for x in tree]
        leaves = [leaf for p in parts for leaf in p[0]]
        sizes, builders = [len(p[0]) for p in parts], [p[1] for p in parts]
        kind, named = type(tree), isinstance(tree, tuple) and hasattr(tree, "_fields")

        def build(vals):
            out, at = [], 0
            for n, b in zip(sizes, builders):
                out.append(b(vals[at:at + n]))
                at += n
            return kind(*out) if named else kind(out)
        return leaves, build
    if isinstance(tree, dict):
        keys = list(tree)
        leaves, build_list = _flatten([tree[k] for k in keys])
        return leaves, lambda vals: dict(zip(keys, build_list(vals)))
    return [tree], lambda vals: vals[0]


def _broadcast_dims(dims, tree, what):
    """dims (an int / None, or a tree prefix of `tree`) as one entry per leaf of tree."""
    if dims is None or isinstance(dims, int):
        return [dims] * len(_flatten(tree)[0])
    if isinstance(dims, (tuple, list)) and isinstance(tree, (tuple, list)):
        if len(dims) != len(tree):
            raise ValueError(f"vmap: {what} has {len(dims)} entries but the structure it maps has {len(tree)}")
        return [d for sub, t in zip(dims, tree) for d in _broadcast_dims(sub, t, what)]
    if isinstance(dims, dict) and isinstance(tree, dict):
        if set(dims) != set(tree):
            raise ValueError(f"vmap: {what} keys {sorted(dims)} do not match the input's keys {sorted(tree)}")
        return [d for k in tree for d in _broadcast_dims(dims[k], tree[k], what)]
    raise ValueError(f"vmap: {what} must be an int, None, or a tuple / list / dict matching the inputs; "
                     f"got {type(dims).__name__} for a {type(tree).__name__}")


def vmap(func, in_dims=0, out_dims=0, randomness="error", *, chunk_size=None):
    """func mapped over dimension in_dims of its inputs (None: not mapped), its outputs stacked at
    out_dims. See the module docstring for how it runs."""
    if randomness not in ("error", "different", "same"):
        raise ValueError(f"vmap: randomness must be 'error', 'different' or 'same'; got {randomness!r}")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"vmap: chunk_size must be a positive int or None; got {chunk_size!r}")

    @functools.wraps(func)
    def mapped(*args, **kwargs):
        dims = in_dims if not isinstance(in_dims, int) and in_dims is not None else (in_dims,) * len(args)
        if isinstance(dims, list):
            dims = tuple(dims)
        if not isinstance(dims, tuple):
            raise ValueError(f"vmap: in_dims must be an int, None or a tuple with one entry per positional "
                             f"argument; got {type(in_dims).__name__}")
        leaves, build = _flatten(tuple(args))
        per_leaf = _broadcast_dims(dims, tuple(args), "in_dims")
        size, norm = None, []
        for x, d in zip(leaves, per_leaf):
            if d is None:
                norm.append(None)
                continue
            if not isinstance(x, Tensor):
                raise ValueError(f"vmap: in_dim {d} given for an input of type {type(x).__name__}; only tensors "
                                 f"can be mapped (use None for the others)")
            if not -x.ndim <= d < x.ndim:
                raise ValueError(f"vmap: in_dim {d} is out of range for an input of shape {tuple(x.shape)}")
            d = d % x.ndim
            n = x.shape[d]
            if size is not None and n != size:
                raise ValueError(f"vmap: expected all mapped inputs to have the same size in the mapped dimension; "
                                 f"got sizes {size} and {n}")
            size = n
            norm.append(d)
        if size is None:
            raise ValueError("vmap: at least one input must be mapped (an in_dim that is not None, on a tensor)")
        if size == 0:
            raise ValueError("vmap: the mapped dimension has size 0")
        state = _C._rng_state() if randomness == "same" else None
        results = []
        for i in builtins.range(size):
            if state is not None:
                _C._set_rng_state(state)
            sliced = [x if d is None else x.select(d, i) for x, d in zip(leaves, norm)]
            results.append(func(*build(sliced), **kwargs))
        return _stack_outputs(results, out_dims)
    return mapped


def _stack_outputs(results, out_dims):
    first_leaves, build = _flatten(results[0])
    per_leaf = _broadcast_dims(out_dims, results[0], "out_dims")
    columns = list(zip(*(_flatten(r)[0] for r in results)))
    out = []
    for leaf0, d, col in zip(first_leaves, per_leaf, columns):
        if d is None:
            out.append(leaf0)
            continue
        if not isinstance(leaf0, Tensor):
            raise ValueError(f"vmap: the function must return tensors where out_dims maps them; got "
                             f"{type(leaf0).__name__}")
        nd = leaf0.ndim + 1
        if not -nd <= d < nd:
            raise ValueError(f"vmap: out_dim {d} is out of range for outputs of shape {tuple(leaf0.shape)}")
        out.append(_C.stack(list(col), d % nd))
    return build(out)
