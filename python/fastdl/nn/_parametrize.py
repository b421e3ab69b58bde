"""nn.utils.parametrize, with PyTorch's semantics: a module's parameter or buffer replaced by a
function of stored originals, evaluated on every access.

register_parametrization(m, "weight", p) moves m.weight into m.parametrizations.weight (a
ParametrizationList) as `original` (or `original0`, `original1`, ... when p.right_inverse
returns several tensors), and gives m's class a property `weight` that returns p(original),
chained through every parametrization registered on the name. Assigning m.weight = X stores
right_inverse(X) in the originals. m's class becomes a subclass made for it, so the property
touches no other instance; removing the last parametrization restores the class. The state
dict keys are PyTorch's (parametrizations.weight.original, parametrizations.weight.0._u, ...).
"""
import contextlib

from fastdl import no_grad
from fastdl._C import Tensor
from fastdl.nn.modules.container import ModuleDict, ModuleList
from fastdl.nn.modules.module import Module
from fastdl.nn.parameter import Parameter

_cache_depth = 0
_cache = {}


@contextlib.contextmanager
def cached():
    """Inside this context each parametrized tensor is computed once, on first access."""
    global _cache_depth
    _cache_depth += 1
    try:
        yield
    finally:
        _cache_depth -= 1
        if not _cache_depth:
            _cache.clear()


def _register_tensor(module, name, tensor):
    if isinstance(tensor, Parameter):
        module.register_parameter(name, tensor)
    else:
        module.register_buffer(name, tensor)


def _store(original, value, what):
    """original <- value in place (the same object, so optimizers keep it), or a new tensor of
    original's kind when the shape or dtype differs."""
    if not isinstance(value, Tensor):
        raise ValueError(f"{what} must return a tensor; got {type(value).__name__}")
    if tuple(value.shape) == tuple(original.shape) and value.dtype == original.dtype:
        with no_grad():
            original.copy_(value)
        return original
    value = value.detach()
    return Parameter(value, original.requires_grad) if isinstance(original, Parameter) else value


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor, applied in order to the originals."""

    def __init__(self, modules, original, unsafe=False):
        if len(modules) == 0:
            raise ValueError("ParametrizationList requires one or more modules.")
        super().__init__(modules)
        self.unsafe = unsafe
        shape, dtype = tuple(original.shape), original.dtype
        new = original
        with no_grad():
            for m in reversed(list(self)):
                if hasattr(m, "right_inverse"):
                    try:
                        new = m.right_inverse(new)
                    except NotImplementedError:
                        pass
        self.is_tensor = isinstance(new, Tensor)
        self.ntensors = 1 if self.is_tensor else len(new)
        if self.is_tensor:
            _register_tensor(self, "original", _store(original, new, "right_inverse"))
        else:
            for i, t in enumerate(new):
                if not isinstance(t, Tensor):
                    raise ValueError(f"'right_inverse' must return a Tensor or a Sequence of tensors; element {i} "
                                     f"is {type(t).__name__}")
                t = t.detach()
                _register_tensor(self, f"original{i}",
                                 Parameter(t, original.requires_grad) if isinstance(original, Parameter) else t)
        if not unsafe:
            z = self()
            if not isinstance(z, Tensor):
                raise ValueError(f"A parametrization must return a tensor. Got {type(z).__name__}.")
            if tuple(z.shape) != shape or z.dtype != dtype:
                raise ValueError("Registering a parametrization may not change the shape or dtype of the tensor, "
                                 f"unless `unsafe` flag is enabled.\nunparametrized shape: {shape}, dtype {dtype}\n"
                                 f"parametrized shape: {tuple(z.shape)}, dtype {z.dtype}")

    def originals(self):
        return [self.original] if self.is_tensor else [getattr(self, f"original{i}") for i in range(self.ntensors)]

    def right_inverse(self, value):
        """Store value: the right inverses of the parametrizations, last first, into the originals."""
        with no_grad():
            for m in reversed(list(self)):
                if not hasattr(m, "right_inverse"):
                    raise RuntimeError(f"parametrization {type(m).__name__} does not implement right_inverse.")
                value = m.right_inverse(value)
            if self.is_tensor:
                if not self.unsafe and (not isinstance(value, Tensor) or tuple(value.shape) != tuple(self.original.shape)
                                        or value.dtype != self.original.dtype):
                    got = f"shape {tuple(value.shape)}, dtype {value.dtype}" if isinstance(value, Tensor) else type(value).__name__
                    raise ValueError(f"right_inverse must return a tensor of shape {tuple(self.original.shape)} and "
                                     f"dtype {self.original.dtype}; got {got}")
                self.original = _store(self.original, value, "right_inverse")
            else:
                if isinstance(value, Tensor) or len(value) != self.ntensors:
                    raise ValueError(f"right_inverse must return a sequence of {self.ntensors} tensors")
                for i, v in enumerate(value):
                    setattr(self, f"original{i}", _store(getattr(self, f"original{i}"), v, "right_inverse"))

    def forward(self):
        ms = list(self)
        x = ms[0](*self.originals())
        for m in ms[1:]:
            x = m(x)
        return x


def _property(name):
    def get(self):
        plist = self.parametrizations[name]
        if not _cache_depth:
            return plist()
        key = (id(self), name)
        if key not in _cache:
            _cache[key] = plist()
        return _cache[key]

    def set(self, value):
        self.parametrizations[name].right_inverse(value)

    return property(get, set)


def is_parametrized(module, tensor_name=None):
    """Whether module has any parametrization (tensor_name None) or one on tensor_name."""
    plists = module.__dict__.get("_modules", {}).get("parametrizations")
    if not isinstance(plists, ModuleDict):
        return False
    return len(plists) > 0 if tensor_name is None else tensor_name in plists


def type_before_parametrizations(module):
    """module's class as it was before any parametrization."""
    return type(module).__bases__[0] if is_parametrized(module) else type(module)


def register_parametrization(module, tensor_name, parametrization, *, unsafe=False):
    """module.tensor_name becomes parametrization(original); registered again on the same name,
    the parametrizations chain (the first applied first). Returns module."""
    if not isinstance(parametrization, Module):
        raise TypeError(f"register_parametrization: parametrization must be an nn.Module; got "
                        f"{type(parametrization).__name__}")
    parametrization.train(module.training)
    if is_parametrized(module, tensor_name):
        plist = module.parametrizations[tensor_name]
        if not unsafe:
            y = getattr(module, tensor_name)
            x = parametrization(y)
            if not isinstance(x, Tensor):
                raise ValueError(f"A parametrization must return a tensor. Got {type(x).__name__}.")
            if tuple(x.shape) != tuple(y.shape) or x.dtype != y.dtype:
                raise ValueError("Registering a parametrization may not change the shape or dtype of the tensor, "
                                 f"unless `unsafe` flag is enabled.\nunparametrized shape: {tuple(y.shape)}, dtype "
                                 f"{y.dtype}\nparametrized shape: {tuple(x.shape)}, dtype {x.dtype}")
        plist.append(parametrization)
        plist.unsafe |= unsafe
        return module
    if tensor_name not in module._parameters and tensor_name not in module._buffers:
        raise ValueError(f"Module '{module}' does not have a parameter, a buffer, or a parametrized element with "
                         f"name '{tensor_name}'")
    original = getattr(module, tensor_name)
    if original is None:
        raise ValueError(f"register_parametrization: '{tensor_name}' of {type(module).__name__} is None")
    plist = ParametrizationList([parametrization], original, unsafe=unsafe)
    delattr(module, tensor_name)
    if not is_parametrized(module):
        cls = type(module)
        module.__class__ = type(f"Parametrized{cls.__name__}", (cls,), {})
        module.parametrizations = ModuleDict()
    setattr(type(module), tensor_name, _property(tensor_name))
    module.parametrizations[tensor_name] = plist
    return module


def remove_parametrizations(module, tensor_name, leave_parametrized=True):
    """Undo register_parametrization on tensor_name: the tensor becomes a plain parameter or
    buffer again, holding the parametrized value (leave_parametrized) or the original."""
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"Module {module} does not have a parametrization on {tensor_name}")
    plist = module.parametrizations[tensor_name]
    if plist.is_tensor:
        original = plist.original
        if leave_parametrized:
            with no_grad():
                original = _store(original, getattr(module, tensor_name), "the parametrization")
    else:
        if not leave_parametrized:
            raise ValueError("Cannot leave unparametrized (`leave_parametrized=False`) a tensor that is parametrized "
                             "in terms of a sequence of tensors.")
        with no_grad():
            t = getattr(module, tensor_name).detach()
        first = plist.original0
        original = Parameter(t, first.requires_grad) if isinstance(first, Parameter) else t
    delattr(type(module), tensor_name)
    del module.parametrizations[tensor_name]
    _register_tensor(module, tensor_name, original)
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        module.__class__ = type(module).__bases__[0]
    return module
