"""Array API data types: the dtype objects, promotion (result_type / can_cast), isdtype,
finfo / iinfo and astype. The namespace has bool, int8, int16, int32, int64, float32, float64 (plus
float16 and bfloat16 beyond the standard). fastdl's uint8 stays outside it: the standard's
unsigned sums need a default unsigned integer (uint64), which fastdl lacks; complex too."""
import builtins
from dataclasses import dataclass

import fastdl as fd
from fastdl._C import Tensor

bool = fd.bool  # noqa: A001
int8, int16, int32, int64 = fd.int8, fd.int16, fd.int32, fd.int64
float16, bfloat16, float32, float64 = fd.float16, fd.bfloat16, fd.float32, fd.float64

_INTS = (int8, int16, int32, int64)
_FLOATS = (float16, bfloat16, float32, float64)
_ALL = (bool, *_INTS, *_FLOATS)
# Rank inside a kind; promotion within a kind takes the larger. float16 and bfloat16 promote to
# float32 together (as in PyTorch); mixed kinds follow PyTorch too (bool < integer < floating),
# which the standard leaves to the implementation.
_FRANK = {float16: 1, bfloat16: 1, float32: 2, float64: 3}


def _kind(d):
    return "b" if d == bool else "i" if d in _INTS else "f"


def _promote2(a, b):
    if a == b:
        return a
    ka, kb = _kind(a), _kind(b)
    if ka != kb:
        order = "bif"
        return a if order.index(ka) > order.index(kb) else b
    if ka == "i":
        return a if a.itemsize > b.itemsize else b
    ra, rb = _FRANK[a], _FRANK[b]
    if ra == rb:  # float16 with bfloat16
        return float32
    return a if ra > rb else b


def result_type(*arrays_and_dtypes):
    """The dtype of an operation on these arrays / dtypes / Python scalars (scalars are weak:
    they adopt the array's dtype within a kind)."""
    dts, scalars = [], []
    for x in arrays_and_dtypes:
        if isinstance(x, Tensor):
            dts.append(x.dtype)
        elif isinstance(x, fd.dtype):
            dts.append(x)
        elif isinstance(x, (builtins.bool, builtins.int, builtins.float)):
            scalars.append(x)
        else:
            raise TypeError(f"result_type: expected arrays, dtypes or Python scalars; got {type(x).__name__}")
    if not dts:
        raise ValueError("result_type: at least one array or dtype is required")
    out = dts[0]
    for d in dts[1:]:
        out = _promote2(out, d)
    for s in scalars:
        k = "b" if isinstance(s, builtins.bool) else "i" if isinstance(s, builtins.int) else "f"
        if "bif".index(k) > "bif".index(_kind(out)):
            out = int64 if k == "i" else fd.get_default_dtype()
    return out


def can_cast(from_, to):
    """True when `from_` promotes to `to` without changing kind downwards or losing range."""
    if isinstance(from_, Tensor):
        from_ = from_.dtype
    if not isinstance(from_, fd.dtype) or not isinstance(to, fd.dtype):
        raise TypeError("can_cast: expected dtypes (or an array for from_)")
    return _promote2(from_, to) == to


_KINDS = {
    "bool": lambda d: d == bool,
    "signed integer": lambda d: d in _INTS,
    "unsigned integer": lambda d: False,
    "integral": lambda d: d in _INTS,
    "real floating": lambda d: d in _FLOATS,
    "complex floating": lambda d: False,
    "numeric": lambda d: d != bool,
}


def isdtype(dtype, kind):
    if not isinstance(dtype, fd.dtype):
        raise TypeError(f"isdtype: expected a dtype; got {type(dtype).__name__}")
    if isinstance(kind, tuple):
        return builtins.any(isdtype(dtype, k) for k in kind)
    if isinstance(kind, fd.dtype):
        return dtype == kind
    if kind not in _KINDS:
        raise ValueError(f"isdtype: unknown kind {kind!r}; expected a dtype or one of {sorted(_KINDS)}")
    return _KINDS[kind](dtype)


@dataclass(frozen=True)
class finfo_object:
    bits: builtins.int
    eps: builtins.float
    max: builtins.float
    min: builtins.float
    smallest_normal: builtins.float
    dtype: object


@dataclass(frozen=True)
class iinfo_object:
    bits: builtins.int
    max: builtins.int
    min: builtins.int
    dtype: object


_FINFO = {  # bits, eps, max, smallest normal (IEEE 754 binary16/32/64 and bfloat16)
    float16: (16, 2.0 ** -10, 65504.0, 2.0 ** -14),
    bfloat16: (16, 2.0 ** -7, 3.3895313892515355e38, 2.0 ** -126),
    float32: (32, 2.0 ** -23, 3.4028234663852886e38, 2.0 ** -126),
    float64: (64, 2.0 ** -52, 1.7976931348623157e308, 2.0 ** -1022),
}


def _dtype_of(x):
    return x.dtype if isinstance(x, Tensor) else x


def finfo(type):  # noqa: A002
    d = _dtype_of(type)
    if d not in _FINFO:
        raise TypeError(f"finfo: expected a floating dtype; got {d}")
    bits, eps, mx, tiny = _FINFO[d]
    return finfo_object(bits, eps, mx, -mx, tiny, d)


def iinfo(type):  # noqa: A002
    d = _dtype_of(type)
    if d not in _INTS:
        raise TypeError(f"iinfo: expected an integer dtype; got {d}")
    bits = d.itemsize * 8
    return iinfo_object(bits, 2 ** (bits - 1) - 1, -(2 ** (bits - 1)), d)


def astype(x, dtype, /, *, copy=True, device=None):
    if not isinstance(dtype, fd.dtype):
        raise TypeError(f"astype: expected a fastdl dtype; got {dtype!r}")
    if device is not None and x.device != fd.device(str(device)):
        x = x.to(device)
    if x.dtype == dtype:
        return x.clone() if copy else x
    return x.to(dtype)
