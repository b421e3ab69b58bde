"""Padding layers: ZeroPad, ConstantPad, ReflectionPad, ReplicationPad and CircularPad in 1-, 2-
and 3-d forms, each a thin wrapper around F.pad with PyTorch's padding attribute (an int expands
to every side), input-rank checks and repr."""
from fastdl.nn._functional_pad import pad as _pad
from fastdl.nn.modules.module import Module


def _ntuple(padding, n, name):
    """int -> n-tuple; a sequence is kept as given (PyTorch's rule: F.pad then checks its length)."""
    if isinstance(padding, (tuple, list)):
        return tuple(int(p) for p in padding)
    if isinstance(padding, bool) or not hasattr(padding, "__index__"):
        raise TypeError(f"{name}: padding must be an int or a tuple of ints; got {type(padding).__name__}")
    return (int(padding),) * n


class _PadNd(Module):
    _mode = "constant"
    _dims = 1  # padded trailing dims

    def __init__(self, padding):
        super().__init__()
        self.padding = _ntuple(padding, 2 * self._dims, type(self).__name__)

    def forward(self, input):
        return _pad(input, self.padding, self._mode)

    def extra_repr(self):
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    def __init__(self, padding, value):
        super().__init__(padding)
        self.value = value

    def forward(self, input):
        return _pad(input, self.padding, "constant", self.value)

    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    _dims = 1


class ConstantPad2d(_ConstantPadNd):
    _dims = 2


class ConstantPad3d(_ConstantPadNd):
    _dims = 3


class ZeroPad1d(ConstantPad1d):
    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad3d(ConstantPad3d):
    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ReflectionPad1d(_PadNd):
    _mode, _dims = "reflect", 1


class ReflectionPad2d(_PadNd):
    _mode, _dims = "reflect", 2


class ReflectionPad3d(_PadNd):
    _mode, _dims = "reflect", 3


class ReplicationPad1d(_PadNd):
    _mode, _dims = "replicate", 1


class ReplicationPad2d(_PadNd):
    _mode, _dims = "replicate", 2


class ReplicationPad3d(_PadNd):
    _mode, _dims = "replicate", 3


class _CircularPadNd(_PadNd):
    _mode = "circular"

    def forward(self, input):
        # PyTorch's CircularPad layers check the rank themselves (batched or unbatched)
        if input.ndim not in (self._dims + 1, self._dims + 2):
            raise ValueError(f"{type(self).__name__}: expected {self._dims + 1}D or {self._dims + 2}D input; got "
                             f"{input.ndim}D input of shape {tuple(input.shape)}")
        return _pad(input, self.padding, "circular")


class CircularPad1d(_CircularPadNd):
    _dims = 1


class CircularPad2d(_CircularPadNd):
    _dims = 2


class CircularPad3d(_CircularPadNd):
    _dims = 3
