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
