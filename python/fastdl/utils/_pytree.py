"""Walking nested Python containers (lists, tuples, dicts) for the tensors they hold."""
from fastdl._C import Tensor


def tree_tensors(obj, acc=None):
    """Every Tensor in `obj` (a Tensor, or lists / tuples / dicts nesting them), depth first in
    container order; anything else is skipped."""
    acc = [] if acc is None else acc
    if isinstance(obj, Tensor):
        acc.append(obj)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            tree_tensors(v, acc)
    elif isinstance(obj, dict):
        for v in obj.values():
            tree_tensors(v, acc)
    return acc
