"""nn.utils.prune (torch.nn.utils.prune's API): a pruned parameter `name` becomes the parameter
`name_orig` and the buffer `name_mask`, and a forward pre-hook sets the plain attribute
`name = name_orig * name_mask` before each call, so the gradient reaches name_orig only through
the kept entries. Pruning a pruned parameter again combines the masks: the new method prunes
among the entries (or channels, for structured methods) still kept, its amount counted against
those. `remove` makes the pruning permanent.

    prune.l1_unstructured(layer, "weight", amount=0.3)   # 30% of the smallest |w| masked
    prune.ln_structured(conv, "weight", amount=2, n=2, dim=0)  # the 2 output channels of least L2 norm
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=0.2)
    prune.remove(layer, "weight")
"""
import numbers

import fastdl as fd
from fastdl.nn.parameter import Parameter

__all__ = ["BasePruningMethod", "PruningContainer", "Identity", "RandomUnstructured", "L1Unstructured",
           "RandomStructured", "LnStructured", "CustomFromMask", "identity", "random_unstructured",
           "l1_unstructured", "random_structured", "ln_structured", "global_unstructured", "custom_from_mask",
           "remove", "is_pruned"]


def _validate_amount(amount):
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real):
        raise TypeError(f"prune: amount must be an int or a float; got {amount!r}")
    if (isinstance(amount, numbers.Integral) and amount < 0) or (not isinstance(amount, numbers.Integral)
                                                                   and not 0.0 <= float(amount) <= 1.0):
        raise ValueError(f"prune: amount={amount} should either be a float in the range [0, 1] or a non-negative "
                         "integer")


def _count(amount, size):
    """How many of size entries to prune (a fraction rounds, as PyTorch's round())."""
    if isinstance(amount, numbers.Integral):
        if amount > size:
            raise ValueError(f"prune: amount={amount} should be smaller than the number of parameters to prune={size}")
        return int(amount)
    return round(float(amount) * size)


def _check_dim(t, dim):
    if not -t.ndim <= dim < t.ndim:
        raise IndexError(f"prune: dim {dim} is out of range for a tensor of shape {tuple(t.shape)}")
    return dim % t.ndim


class BasePruningMethod:
    """A pruning method: compute_mask(t, default_mask) gives the new mask; PRUNING_TYPE is
    'unstructured', 'structured' (with self.dim) or 'global'."""
    PRUNING_TYPE = None
    _tensor_name = None

    def __call__(self, module, inputs):
        setattr(module, self._tensor_name, self.apply_mask(module))

    def compute_mask(self, t, default_mask):
        raise NotImplementedError

    def apply_mask(self, module):
        orig = getattr(module, self._tensor_name + "_orig")
        return orig * getattr(module, self._tensor_name + "_mask").to(orig.dtype)

    @classmethod
    def apply(cls, module, name, *args, importance_scores=None, **kwargs):
        """Prunes module.name with cls(*args, **kwargs) and returns the method (or the container
        it joined, when the parameter was pruned before)."""
        old = None
        for k, hook in list(module._forward_pre_hooks.items()):
            if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
                if old is not None:
                    raise RuntimeError(f"prune: more than one pruning hook on parameter '{name}'")
                old = hook
                del module._forward_pre_hooks[k]
        method = cls(*args, **kwargs)
        method._tensor_name = name
        if old is not None:  # a new container: `old` stays intact should the new mask fail
            method = PruningContainer(*(old if isinstance(old, PruningContainer) else (old,)), method)
        orig = getattr(module, name + "_orig") if old is not None else getattr(module, name)
        if old is None and not isinstance(orig, Parameter):
            raise TypeError(f"prune: '{name}' is not a parameter of {type(module).__name__}")
        if importance_scores is not None and tuple(importance_scores.shape) != tuple(orig.shape):
            raise ValueError(f"prune: importance_scores of shape {tuple(importance_scores.shape)} should match "
                             f"parameter '{name}' of shape {tuple(orig.shape)}")
        default_mask = fd.ones_like(orig.detach()) if old is None else getattr(module, name + "_mask").detach().clone()
        scores = (importance_scores if importance_scores is not None else orig).detach()
        try:  # the mask first: a bad amount leaves the module as it was
            with fd.no_grad():
                mask = method.compute_mask(scores, default_mask=default_mask)
        except Exception:
            if old is not None:
                module.register_forward_pre_hook(old)
            raise
        if old is None:  # first pruning: the parameter moves to name_orig
            module.register_parameter(name + "_orig", orig)
            del module._parameters[name]
        module.register_buffer(name + "_mask", mask)
        setattr(module, name, method.apply_mask(module))
        module.register_forward_pre_hook(method)
        return method

    def prune(self, t, default_mask=None, importance_scores=None):
        """t times the mask computed on importance_scores (t's own values by default)."""
        scores = t if importance_scores is None else importance_scores
        default_mask = fd.ones_like(t) if default_mask is None else default_mask
        with fd.no_grad():
            mask = self.compute_mask(scores.detach(), default_mask=default_mask)
        return t * mask

    def remove(self, module):
        """Makes the pruning permanent: module.name becomes a parameter again, holding the
        masked values; name_orig and name_mask go."""
        if self._tensor_name is None:
            raise ValueError("prune: this method was never applied to a module")
        name = self._tensor_name
        with fd.no_grad():
            weight = self.apply_mask(module)
        if name in module.__dict__:
            del module.__dict__[name]
        orig = module._parameters.pop(name + "_orig")
        del module._buffers[name + "_mask"]
        orig.data = weight.detach()
        module.register_parameter(name, orig)


class PruningContainer(BasePruningMethod):
    """Successive pruning methods on one parameter: each new one prunes among what is left."""

    def __init__(self, *methods):
        self._pruning_methods = ()
        for m in methods:
            self.add_pruning_method(m)

    def add_pruning_method(self, method):
        if not isinstance(method, BasePruningMethod):
            raise TypeError(f"prune: {type(method).__name__} is not a BasePruningMethod")
        if self._tensor_name is not None and method._tensor_name != self._tensor_name:
            raise ValueError(f"prune: cannot add a method for '{method._tensor_name}' to a container for "
                             f"'{self._tensor_name}'")
        self._tensor_name = method._tensor_name
        self._pruning_methods += (method,)

    def __len__(self):
        return len(self._pruning_methods)

    def __iter__(self):
        return iter(self._pruning_methods)

    def __getitem__(self, i):
        return self._pruning_methods[i]

    def compute_mask(self, t, default_mask):
        method = self._pruning_methods[-1]
        kind = method.PRUNING_TYPE
        if kind in ("unstructured", "global"):
            keep = default_mask == 1  # the entries still kept
            flat_mask = default_mask.reshape(-1).clone()
            idx = fd.nonzero(keep.reshape(-1)).reshape(-1)
            partial = method.compute_mask(t.reshape(-1)[idx], default_mask=flat_mask[idx])
            flat_mask[idx] = partial.to(flat_mask.dtype)
            return flat_mask.reshape(tuple(default_mask.shape))
        if kind == "structured":
            dim = _check_dim(t, method.dim)
            others = [d for d in range(t.ndim) if d != dim]
            kept = (default_mask.sum(dim=others) != 0) if others else (default_mask != 0)
            idx = fd.nonzero(kept).reshape(-1)
            sub = t.index_select(dim, idx)
            partial = method.compute_mask(sub, default_mask=default_mask.index_select(dim, idx))
            new = fd.zeros_like(default_mask)
            new = new.index_copy(dim, idx, partial.to(new.dtype))
            return new * default_mask
        raise ValueError(f"prune: unknown PRUNING_TYPE {kind!r}")


class Identity(BasePruningMethod):
    PRUNING_TYPE = "unstructured"

    def compute_mask(self, t, default_mask):
        return default_mask

    @classmethod
    def apply(cls, module, name):
        return super().apply(module, name)


class _Unstructured(BasePruningMethod):
    """amount of the entries, those of the least score (_scores(t))."""
    PRUNING_TYPE = "unstructured"

    def __init__(self, amount):
        _validate_amount(amount)
        self.amount = amount

    def compute_mask(self, t, default_mask):
        k = _count(self.amount, t.numel())
        mask = default_mask.clone()
        if k:
            mask.reshape(-1)[fd.topk(self._scores(t).reshape(-1), k, largest=False).indices] = 0
        return mask


class RandomUnstructured(_Unstructured):
    """amount of the entries, chosen at random."""

    def _scores(self, t):
        return fd.rand_like(t.float())

    @classmethod
    def apply(cls, module, name, amount):
        return super().apply(module, name, amount=amount)


class L1Unstructured(_Unstructured):
    """amount of the entries, those of the least absolute value."""

    def _scores(self, t):
        return fd.abs(t)

    @classmethod
    def apply(cls, module, name, amount, importance_scores=None):
        return super().apply(module, name, amount=amount, importance_scores=importance_scores)


class RandomStructured(BasePruningMethod):
    """amount of the slices along dim, chosen at random."""
    PRUNING_TYPE = "structured"

    def __init__(self, amount, dim=-1):
        _validate_amount(amount)
        self.amount, self.dim = amount, dim

    def compute_mask(self, t, default_mask):
        dim = _check_dim(t, self.dim)
        n = t.shape[dim]
        k = _count(self.amount, n)
        keep = fd.ones(n, dtype=fd.bool)
        if k:
            keep[fd.topk(fd.rand(n), k).indices] = False
        return _channel_mask(keep, dim, t.ndim).to(default_mask.dtype) * default_mask

    @classmethod
    def apply(cls, module, name, amount, dim=-1):
        return super().apply(module, name, amount=amount, dim=dim)


class LnStructured(BasePruningMethod):
    """amount of the slices along dim, those of the least L_n norm (n: int, inf, -inf, 'fro', 'nuc')."""
    PRUNING_TYPE = "structured"

    def __init__(self, amount, n, dim=-1):
        _validate_amount(amount)
        self.amount, self.n, self.dim = amount, n, dim

    def compute_mask(self, t, default_mask):
        dim = _check_dim(t, self.dim)
        n = t.shape[dim]
        k = _count(self.amount, n)
        others = [d for d in range(t.ndim) if d != dim]
        if self.n == "nuc":
            norms = fd.linalg.matrix_norm(t.movedim(dim, 0).reshape(n, -1, 1), "nuc")
        else:
            p = 2 if self.n == "fro" else self.n
            norms = fd.linalg.vector_norm(t, p, dim=others) if others else fd.abs(t)
        keep = fd.zeros(n, dtype=fd.bool)
        if n - k:
            keep[fd.topk(norms, n - k).indices] = True
        return _channel_mask(keep, dim, t.ndim).to(default_mask.dtype) * default_mask

    @classmethod
    def apply(cls, module, name, amount, n, dim, importance_scores=None):
        return super().apply(module, name, amount=amount, n=n, dim=dim, importance_scores=importance_scores)


class CustomFromMask(BasePruningMethod):
    PRUNING_TYPE = "global"

    def __init__(self, mask):
        self.mask = mask

    def compute_mask(self, t, default_mask):
        if tuple(self.mask.shape) != tuple(default_mask.shape):
            raise ValueError(f"prune: mask of shape {tuple(self.mask.shape)} does not match the parameter's "
                             f"{tuple(default_mask.shape)}")
        return default_mask * self.mask.to(default_mask.dtype)

    @classmethod
    def apply(cls, module, name, mask):
        return super().apply(module, name, mask=mask)


def _channel_mask(keep, dim, ndim):
    shape = [1] * ndim
    shape[dim] = keep.shape[0]
    return keep.reshape(shape)


def identity(module, name):
    Identity.apply(module, name)
    return module


def random_unstructured(module, name, amount):
    RandomUnstructured.apply(module, name, amount)
    return module


def l1_unstructured(module, name, amount, importance_scores=None):
    L1Unstructured.apply(module, name, amount=amount, importance_scores=importance_scores)
    return module


def random_structured(module, name, amount, dim):
    RandomStructured.apply(module, name, amount, dim)
    return module


def ln_structured(module, name, amount, n, dim, importance_scores=None):
    LnStructured.apply(module, name, amount, n, dim, importance_scores=importance_scores)
    return module


def custom_from_mask(module, name, mask):
    CustomFromMask.apply(module, name, mask)
    return module


def global_unstructured(parameters, pruning_method, importance_scores=None, **kwargs):
    """Prunes the (module, name) pairs as one vector: pruning_method (an unstructured or global
    method class, e.g. L1Unstructured with amount=) picks among all their entries together."""
    parameters = list(parameters)
    if not parameters:
        raise ValueError("global_unstructured: parameters is empty")
    importance_scores = importance_scores or {}
    scores = fd.cat([importance_scores.get((m, n), getattr(m, n)).detach().reshape(-1) for m, n in parameters])
    masks = fd.cat([getattr(m, n + "_mask", fd.ones_like(getattr(m, n).detach())).reshape(-1) for m, n in parameters])
    container = PruningContainer()
    container._tensor_name = "temp"
    method = pruning_method(**kwargs)
    method._tensor_name = "temp"
    if method.PRUNING_TYPE not in ("unstructured", "global"):
        raise TypeError(f"global_unstructured: only unstructured methods apply; got {pruning_method.__name__} "
                        f"(PRUNING_TYPE {method.PRUNING_TYPE!r})")
    container.add_pruning_method(method)
    final = container.compute_mask(scores, masks)
    at = 0
    for m, n in parameters:
        size = getattr(m, n).numel()
        custom_from_mask(m, n, final[at:at + size].reshape(tuple(getattr(m, n).shape)))
        at += size


def remove(module, name):
    """Makes the pruning of module.name permanent (see BasePruningMethod.remove)."""
    for k, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            return module
    raise ValueError(f"prune: parameter '{name}' of module {module} has to be pruned before pruning can be removed")


def is_pruned(module):
    """Whether any submodule of module carries a pruning hook."""
    return any(isinstance(h, BasePruningMethod) for m in module.modules() for h in m._forward_pre_hooks.values())
