"""The Python array API standard (2023.12) over fastdl tensors.

    import fastdl.array_api as xp          # or: xp = t.__array_namespace__()
    xp.permute_dims(xp.asarray([[1.0, 2.0]]), (1, 0))

Arrays are fastdl Tensors (autograd and devices included); functions map to fastdl's
PyTorch-style ops, with shims where names or semantics differ. Beyond the standard: float16,
bfloat16. Missing: the unsigned (fastdl's uint8 stays outside: the standard's unsigned sums need a
uint64) and complex dtypes; the fft extension. The linalg extension is complete
(decompositions through fastdl.linalg, see linalg)."""
from fastdl._C import Tensor, device  # noqa: F401

from . import linalg
from ._creation import (  # noqa: F401
    arange, asarray, empty, empty_like, eye, from_dlpack, full, full_like, linspace, meshgrid, ones, ones_like,
    tril, triu, zeros, zeros_like,
)
from ._dtypes import (  # noqa: F401
    astype, bfloat16, bool, can_cast, finfo, float16, float32, float64, iinfo, int8, int16, int32, int64, isdtype,
    result_type,
)
from ._elementwise import (  # noqa: F401
    abs, acos, acosh, add, asin, asinh, atan, atan2, atanh, bitwise_and, bitwise_invert, bitwise_left_shift,
    bitwise_or, bitwise_right_shift, bitwise_xor, ceil, clip, conj, copysign, cos, cosh, divide, e, equal, exp,
    expm1, floor, floor_divide, greater, greater_equal, hypot, imag, inf, isfinite, isinf, isnan, less,
    less_equal, log, log1p, log2, log10, logaddexp, logical_and, logical_not, logical_or, logical_xor, maximum,
    minimum, multiply, nan, negative, not_equal, pi, positive, pow, real, remainder, round, sign, signbit, sin,
    sinh, sqrt, square, subtract, tan, tanh, trunc,
)
from ._manipulation import (  # noqa: F401
    broadcast_arrays, broadcast_to, concat, expand_dims, flip, matmul, matrix_transpose, moveaxis, permute_dims,
    repeat, reshape, roll, squeeze, stack, take, tensordot, tile, unstack, vecdot,
)
from ._statistical import (  # noqa: F401
    all, any, argmax, argmin, argsort, cumulative_sum, max, mean, min, nonzero, prod, searchsorted, sort, std, sum,
    unique_all, unique_counts, unique_inverse, unique_values, var, where,
)

__array_api_version__ = "2023.12"
newaxis = None


class _Info:
    """The inspection API (`__array_namespace_info__()`)."""

    __module__ = "fastdl.array_api"

    def capabilities(self):
        return {"boolean indexing": True, "data-dependent shapes": True}

    def default_device(self):
        return device("cpu")

    def default_dtypes(self, *, device=None):
        import fastdl
        return {"real floating": fastdl.get_default_dtype(), "complex floating": None,
                "integral": int64, "indexing": int64}

    def dtypes(self, *, device=None, kind=None):
        table = {"bool": bool, "int8": int8, "int16": int16, "int32": int32, "int64": int64, "float32": float32,
                 "float64": float64}
        if kind is None:
            return dict(table)
        return {k: v for k, v in table.items() if isdtype(v, kind)}

    def devices(self):
        import fastdl
        n = fastdl.cuda.device_count() if fastdl.cuda.is_available() else 0
        return [device("cpu")] + [device("cuda", i) for i in range(n)]


def __array_namespace_info__():
    return _Info()
