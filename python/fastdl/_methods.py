"""Tensor methods of the composed ops in _indexing, _statistics, _shaping, _pointwise, _products,
_special and _random (PyTorch's names), their in-place forms, PyTorch's method aliases and
predicates, in-place view ops, Tensor.type and fill_diagonal_. Imported once by _tensor."""
import builtins

from fastdl import _C
from fastdl._C import Tensor, dtype
from fastdl._tensor import _to, empty


def _inplace(fn):
    """An in-place Tensor method from a functional op: the result written back into self."""
    def method(self, *args, **kwargs):
        return self.copy_(fn(self, *args, **kwargs))
    return method


def _type(self, dtype_=None, non_blocking=False, **kwargs):
    """t.type(): PyTorch's type name ('torch.FloatTensor' style, fastdl-prefixed); t.type(dtype): cast."""
    dtype_ = kwargs.pop("dtype", dtype_)
    if dtype_ is None:
        names = {dtype.float32: "Float", dtype.float64: "Double", dtype.float16: "Half", dtype.bfloat16: "BFloat16",
                 dtype.int32: "Int", dtype.int64: "Long", dtype.bool: "Bool", dtype.uint8: "Byte", dtype.int8: "Char",
                 dtype.int16: "Short"}
        return f"fastdl.{'cuda.' if self.device.type == 'cuda' else ''}{names[self.dtype]}Tensor"
    if isinstance(dtype_, str):
        by_name = {"Float": dtype.float32, "Double": dtype.float64, "Half": dtype.float16, "BFloat16": dtype.bfloat16,
                   "Int": dtype.int32, "Long": dtype.int64, "Bool": dtype.bool, "Byte": dtype.uint8, "Char": dtype.int8,
                   "Short": dtype.int16}
        key = dtype_.rsplit(".", 1)[-1].replace("Tensor", "")
        if key not in by_name:
            raise TypeError(f"type: unknown tensor type {dtype_!r}")
        dtype_ = by_name[key]
    return _to(self, dtype_)


def _attach_api_extra():
    """Tensor methods for the indexing, statistics, shaping, pointwise and random ops of
    _indexing / _statistics / _shaping / _pointwise / _random (PyTorch's names)."""
    from fastdl import _indexing, _pointwise, _products, _random, _reductions, _shaping, _sorting, _special, _statistics
    for mod, names in (
            (_indexing, ("scatter", "scatter_reduce", "index_add", "index_copy", "index_fill", "masked_scatter",
                         "put")),
            (_statistics, ("median", "nanmedian", "mode", "quantile", "nanquantile", "unique", "unique_consecutive",
                           "bincount", "histc", "cummax", "cummin", "logcumsumexp", "nanmean", "cov", "corrcoef")),
            (_shaping, ("tensor_split", "hsplit", "vsplit", "dsplit", "unfold", "rot90", "diag_embed", "diagflat",
                        "kron", "cross")),
            (_pointwise, ("signbit", "copysign", "heaviside", "logaddexp2", "fmax", "fmin", "sinc", "rad2deg",
                          "deg2rad", "float_power", "ldexp", "frexp", "isneginf", "isposinf", "isreal",
                          "asinh", "acosh", "atanh", "gcd", "lcm")),
            (_special, ("lgamma", "digamma", "erfinv", "mvlgamma", "erfc")),
            (_pointwise, ("logit", "sgn", "bitwise_not", "nextafter")),
            (_statistics, ("histogram",)),
            (_indexing, ("index_reduce",)),
            (_products, ("inner", "mv", "addmv", "addr", "ger", "vdot", "dist")),
            (_indexing, ("slice_scatter", "select_scatter", "diagonal_scatter")),
            (_sorting, ("msort",)),
            (_random, ("random_", "exponential_", "geometric_", "log_normal_", "cauchy_"))):
        for name in names:
            setattr(Tensor, name, getattr(mod, name))
    from fastdl import _views
    for mod, names in ((_products, ("addbmm", "baddbmm")), (_reductions, ("renorm",)),
                       (_indexing, ("nonzero_static",)),
                       (_views, ("as_strided_scatter", "split_with_sizes", "unsafe_chunk", "unsafe_split",
                                 "narrow_copy", "sum_to_size", "resize_", "resize_as_", "as_strided_"))):
        for name in names:
            setattr(Tensor, name, getattr(mod, name))
    for name in ("addbmm", "baddbmm", "renorm", "as_strided_scatter"):
        setattr(Tensor, name + "_", _inplace(getattr(Tensor, name)))
    Tensor.lerp = _pointwise.lerp  # a tensor weight too (the native method takes a float)
    Tensor.multinomial = _random.multinomial
    for name in ("scatter", "scatter_reduce", "index_add", "index_copy", "index_fill", "masked_scatter", "put",
                 "copysign", "heaviside", "sinc", "rad2deg", "deg2rad", "float_power",
                 "ldexp", "erfc", "asinh", "acosh", "atanh", "gcd", "lcm", "hypot", "xlogy", "fmod", "frac",
                 "addcmul", "addcdiv", "lerp", "nan_to_num", "clamp", "cumsum", "cumprod", "tril", "triu", "lgamma",
                 "digamma", "erfinv", "mvlgamma", "logit", "sgn", "bitwise_not", "addmv", "addr",
                 "nextafter", "index_reduce"):
        if not hasattr(Tensor, name + "_"):
            setattr(Tensor, name + "_", _inplace(getattr(Tensor, name)))
    Tensor.scatter_add_ = _inplace(Tensor.scatter_add)
    for alias, name in (("absolute_", "abs_"), ("arctan2_", "atan2_"), ("clip_", "clamp_"), ("divide_", "div_"),
                        ("true_divide_", "div_"), ("fix_", "trunc_"), ("greater_", "gt_"), ("greater_equal_", "ge_"),
                        ("less_", "lt_"), ("less_equal_", "le_"), ("not_equal_", "ne_"), ("multiply_", "mul_"),
                        ("negative_", "neg_"), ("subtract_", "sub_")):
        if not hasattr(Tensor, alias):
            setattr(Tensor, alias, getattr(Tensor, name))
    Tensor.bernoulli = _random.bernoulli
    Tensor.bernoulli_ = _random.bernoulli_
    if not hasattr(Tensor, "_uniform_native"):  # the native fills, under the generator-taking wrappers
        Tensor._uniform_native, Tensor._normal_native = Tensor.uniform_, Tensor.normal_
    Tensor.uniform_, Tensor.normal_ = _random.uniform_, _random.normal_
    Tensor.is_signed = lambda self: self.dtype.is_signed
    Tensor.is_complex = lambda self: False
    Tensor.is_nonzero = _is_nonzero
    Tensor.is_same_size = lambda self, other: tuple(self.shape) == tuple(other.shape)
    Tensor.is_cpu = property(lambda self: self.device.type == "cpu")
    Tensor.nbytes = property(lambda self: self.numel() * self.element_size())
    Tensor.fill_diagonal_ = _fill_diagonal_
    from fastdl._shaping import t_ as _t

    def t(self):
        return _t(self)

    def transpose(self, dim0, dim1):
        return self.transpose(dim0, dim1)

    def squeeze(self, dim=None):
        return self.squeeze() if dim is None else self.squeeze(dim)

    def unsqueeze(self, dim):
        return self.unsqueeze(dim)

    for name, fn in (("t_", t), ("transpose_", transpose), ("swapaxes_", transpose), ("swapdims_", transpose),
                     ("squeeze_", squeeze), ("unsqueeze_", unsqueeze)):
        setattr(Tensor, name, _view_inplace(fn))
    Tensor.where = lambda self, condition, other: _C.where(condition, self, other)  # self is input, not condition
    Tensor.polygamma = lambda self, n: _special.polygamma(n, self)
    Tensor.polygamma_ = lambda self, n: self.copy_(_special.polygamma(n, self))
    Tensor.put_ = lambda self, index, source, accumulate=False: \
        self.copy_(_indexing.put(self, index, source, accumulate))
    for alias, name in (("arcsin", "asin"), ("arccos", "acos"), ("arctan", "atan"), ("arcsinh", "asinh"),
                        ("arccosh", "acosh"), ("arctanh", "atanh")):
        setattr(Tensor, alias, getattr(Tensor, name))
        setattr(Tensor, alias + "_", getattr(Tensor, name + "_"))
    Tensor.float_power_ = lambda self, exponent: self.copy_(_pointwise.float_power(self, exponent)) \
        if self.dtype == dtype.float64 else _no_float_power_(self)
    Tensor.type = _type
    Tensor.new_empty_strided = lambda self, size, stride, dtype=None, device=None, requires_grad=False: \
        empty(*size, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad)


def _is_nonzero(self):
    if self.numel() != 1:
        raise RuntimeError(f"is_nonzero: a tensor with {self.numel()} elements is ambiguous; expected one element")
    return builtins.bool(self.item())


def _fill_diagonal_(self, fill_value, wrap=False):
    """Write fill_value on the main diagonal (all dims equal for > 2 dims); a tall 2-D matrix with wrap
    starts again every ncols + 1 rows, as numpy's fill_diagonal."""
    if self.ndim < 2:
        raise ValueError(f"fill_diagonal_: expected at least 2 dims; got {self.ndim}")
    if self.ndim > 2 and len(set(self.shape)) != 1:
        raise ValueError(f"fill_diagonal_: all dims must be equal for a {self.ndim}-D tensor; got {tuple(self.shape)}")
    rows, cols = self.shape[0], self.shape[1]
    strides = [1] * self.ndim
    for d in builtins.range(self.ndim - 2, -1, -1):
        strides[d] = strides[d + 1] * self.shape[d + 1]
    step = builtins.sum(strides)
    n = builtins.min(self.shape)
    if self.ndim == 2 and wrap and rows > cols + 1:
        n = (self.numel() - 1) // step + 1
    pos = _C.arange(0, n, 1, dtype.int64, self.device) * step
    pos = pos[pos < self.numel()] if n else pos
    if pos.numel():
        vals = _C.full((pos.numel(),), builtins.float(fill_value), self.dtype, self.device)
        self.copy_(_C.index_put(self.reshape(-1), [pos], vals, False).reshape(tuple(self.shape)))
    return self


def _view_inplace(view):
    """An in-place view op (t_, transpose_, squeeze_ ...): self becomes the view of its own storage
    (_set_data keeps the storage, so other views still share it). Tensors in an autograd graph are
    refused, as PyTorch refuses leaves that require grad: rebinding them would cut their history."""
    def method(self, *args, **kwargs):
        if self.requires_grad:
            raise RuntimeError(f"{view.__name__}_: cannot change the view of a tensor that requires grad in place")
        self._set_data(view(self, *args, **kwargs))
        return self
    return method


def _no_float_power_(self):
    raise TypeError(f"float_power_: the result is float64 and cannot be written into a {self.dtype} tensor")


_attach_api_extra()
