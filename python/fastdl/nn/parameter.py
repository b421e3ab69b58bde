"""Parameter: a Tensor that a Module registers as learnable (requires_grad by default)."""
from fastdl._C import Tensor


class Parameter(Tensor):
    def __init__(self, data=None, requires_grad=True):
        if data is None:
            from fastdl import empty
            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter: expected a Tensor; got {type(data).__name__}")
        super().__init__(data)
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self):
        return "Parameter containing:\n" + Tensor.__repr__(self)

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        r = Parameter(self.detach().clone(), self.requires_grad)
        memo[id(self)] = r
        return r

    def __reduce_ex__(self, proto):
        raise TypeError("Parameter: pickling is not supported; use fastdl.save(module.state_dict(), path)")


class Buffer:
    """Marker for Module.register_buffer-like assignment: `self.x = Buffer(t)`."""

    def __init__(self, data, persistent=True):
        self.data, self.persistent = data, persistent


# ---- lazy modules' placeholders: a tensor with no shape yet, materialized on the first forward ---------------

def _uninitialized_error(where):
    return ValueError(f"Attempted to use an uninitialized parameter in {where}. This error happens when you are using "
                      "a `LazyModule` or explicitly manipulating `fastdl.nn.parameter.UninitializedParameter` "
                      "objects. When using LazyModules Call `forward` with a dummy batch to initialize the "
                      "parameters before calling fastdl functions")


class UninitializedTensorMixin:
    """What UninitializedParameter and UninitializedBuffer share: dtype, device and requires_grad
    but no shape; materialize(shape) gives the tensor its data in place and turns it into
    cls_to_become. Tensor methods raise until then (moves, detach and requires_grad_ stay allowed)."""
    __slots__ = ()
    cls_to_become = None

    def materialize(self, shape, device=None, dtype=None):
        from fastdl import _tensor
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        data = _tensor.empty(*shape, dtype=self.dtype if dtype is None else dtype,
                             device=self.device if device is None else device)
        Tensor._set_data(self, data)
        self.__class__ = self.cls_to_become

    @property
    def shape(self):
        raise RuntimeError("Can't access the shape of an uninitialized parameter or buffer. This error usually happens "
                           "in `load_state_dict` when trying to load an uninitialized parameter into an initialized "
                           "one. Call `forward` to initialize the parameters before accessing their attributes.")

    def detach(self):
        return self._empty_like(False)

    def _empty_like(self, requires_grad):
        return type(self)(requires_grad=requires_grad, device=self.device, dtype=self.dtype)

    def __deepcopy__(self, memo):
        if id(self) not in memo:
            memo[id(self)] = self._empty_like(self.requires_grad)
        return memo[id(self)]

    def __repr__(self):
        return f"<{type(self).__name__}>"

    def __reduce_ex__(self, proto):
        raise TypeError(f"{type(self).__name__}: pickling is not supported")


def _guard(name):
    def method(self, *args, **kwargs):
        raise _uninitialized_error(f"Tensor.{name}")
    method.__name__ = name
    return method


# Everything but dtype/device moves, detach and requires_grad_ (as PyTorch's allowed list) raises.
_ALLOWED = {"materialize", "detach", "to", "cpu", "cuda", "float", "double", "half", "bfloat16", "requires_grad_",
            "get_device", "is_floating_point", "copy_"}
_GUARDED_DUNDERS = ("abs add and array bool contains float floordiv ge getitem gt iadd iand ifloordiv imod imul index "
                    "int invert ior ipow isub iter itruediv ixor le len lshift lt matmul mod mul neg or pos pow radd "
                    "rand rfloordiv rmatmul rmod rmul ror rpow rshift rsub rtruediv rxor setitem sub truediv xor")
for _name in dir(Tensor):
    if not _name.startswith("_") and _name not in _ALLOWED and callable(getattr(Tensor, _name, None)):
        setattr(UninitializedTensorMixin, _name, _guard(_name))
for _name in _GUARDED_DUNDERS.split():
    setattr(UninitializedTensorMixin, f"__{_name}__", _guard(f"__{_name}__"))
for _name in ("ndim", "T", "mT", "H", "mH", "real", "imag", "nbytes"):
    setattr(UninitializedTensorMixin, _name, property(_guard(_name)))


class UninitializedParameter(UninitializedTensorMixin, Parameter):
    """A Parameter with no shape yet (a lazy module's, before its first forward)."""
    cls_to_become = Parameter

    def __init__(self, requires_grad=True, device=None, dtype=None):
        from fastdl import _tensor
        Parameter.__init__(self, _tensor.empty(0, dtype=dtype, device=device), requires_grad)


class UninitializedBuffer(UninitializedTensorMixin, Tensor):
    """A buffer with no shape yet; becomes a plain Tensor when materialized."""
    __slots__ = ()
    cls_to_become = Tensor

    def __init__(self, requires_grad=False, device=None, dtype=None):
        from fastdl import _tensor
        Tensor.__init__(self, _tensor.empty(0, dtype=dtype, device=device))
        if requires_grad:
            self.requires_grad_(True)


def is_lazy(param):
    """True for a parameter or buffer that is not materialized yet."""
    return isinstance(param, UninitializedTensorMixin)
