"""out= on the top-level functions, as PyTorch takes it: the result is computed as usual, then
written into `out` (resized when its shape differs), and `out` is returned. Tuple results (sort,
max with dim, aminmax, ...) take a tuple of tensors. As in PyTorch:
- out's dtype must equal the result's, except for the elementwise ops, reductions and joins
  whose results cast into out (CASTING) when that does not leave the dtype's kind;
- out may not have elements that share memory (a broadcast view), and for the gathers and joins
  (NO_OVERLAP) may not share memory with an input;
- out= does not record gradients: with autograd on and an input that requires grad it is an
  error."""
import functools

from fastdl import _C
from fastdl._C import Tensor
from fastdl.utils._pytree import tree_tensors

# PyTorch functions that take out= (an aten overload with an out argument, or documented) and that
# fastdl exposes without it; generated against torch 2.13. Functions that handle out= themselves
# are not listed.
NAMES = tuple("""
abs acos acosh adaptive_avg_pool1d add addcdiv addcmul addmm addmv addr alias_copy all amax amin aminmax angle
any arange arccos arccosh arcsin arcsinh arctan arctan2 arctanh argmax argmin argsort as_strided_copy
as_strided_scatter asin asinh atan atan2 atanh avg_pool1d bartlett_window bernoulli
binary_cross_entropy_with_logits bincount bitwise_and bitwise_left_shift bitwise_not bitwise_or
bitwise_right_shift bitwise_xor blackman_window block_diag bmm bucketize cat ceil celu chain_matmul
channel_shuffle clamp clamp_max clamp_min clip clone column_stack concat concatenate conj_physical
constant_pad_nd copysign cos cosh count_nonzero cross cummax cummin cumprod cumsum deg2rad diag diag_embed
diagonal_copy diagonal_scatter diff digamma dist div divide dot dstack embedding empty empty_like
empty_permuted empty_strided eq erf erfc erfinv exp exp2 expand_copy expm1 eye fill fix flip float_power floor
floor_divide fmax fmin fmod frac frexp full full_like gather gcd ge ger greater greater_equal grid_sampler_2d
grid_sampler_3d gt hamming_window hann_window hardshrink heaviside histc histogram histogramdd hstack hypot i0
igamma igammac index_add index_copy index_fill index_put index_reduce index_select inner isin isinf isnan
isneginf isposinf kaiser_window kron kthvalue lcm ldexp le lerp less less_equal lgamma linspace log log10
log1p log2 log_softmax logaddexp logaddexp2 logcumsumexp logical_and logical_not logical_or logical_xor logit
logspace logsumexp lt masked_fill masked_scatter masked_select matmul matrix_power max maximum mean median min
minimum mm mode msort mul multinomial multiply mv mvlgamma nan_to_num nanmean nanmedian nanquantile nansum
narrow_copy native_batch_norm ne neg negative nextafter nonzero nonzero_static normal not_equal ones ones_like
orgqr outer permute_copy pixel_shuffle pixel_unshuffle poisson polygamma pow prod put quantile rad2deg rand
rand_like randint randint_like randn randn_like randperm range reciprocal relu remainder renorm
repeat_interleave roll rot90 round row_stack rsqrt rsub scalar_tensor scatter scatter_add scatter_reduce
searchsorted segment_reduce select_scatter sgn sigmoid sign signbit sin sinc sinh slice_scatter softmax sort
split_with_sizes_copy sqrt square squeeze_copy stack std std_mean sub subtract sum t_copy take take_along_dim
tan tanh threshold topk trace transpose_copy tril tril_indices triu triu_indices true_divide trunc unbind_copy
unfold_copy unsafe_split unsqueeze_copy var var_mean vdot view_copy vstack where xlogy zeros zeros_like
""".split())


# Functions whose result casts into an out of another dtype (PyTorch's elementwise ops, reductions
# and joins; every other function wants out's dtype to be the result's). Measured against torch 2.13
# with float32 inputs and a float64 out.
CASTING = frozenset("""
acos acosh add addcdiv addcmul addr all angle any arccos arccosh arcsin arcsinh arctan arctan2 arctanh asin
asinh atan atan2 atanh bernoulli bitwise_and bitwise_left_shift bitwise_not bitwise_or bitwise_right_shift
bitwise_xor cat celu clamp clamp_max clamp_min clip column_stack concat concatenate copysign cos cosh cumprod
cumsum deg2rad digamma div divide dstack eq erf erfc erfinv exp exp2 expm1 float_power floor_divide fmax fmin
fmod gcd ge ger greater greater_equal gt hardshrink hstack hypot i0 igamma igammac isinf isnan isneginf
isposinf kron lcm ldexp le lerp less less_equal lgamma log log10 log1p log2 logaddexp logaddexp2 logical_and
logical_not logical_or logical_xor logit logsumexp lt max maximum mean min minimum mul multiply mvlgamma
nanmean nansum ne nextafter not_equal outer polygamma pow prod rad2deg reciprocal relu remainder row_stack
rsqrt rsub sigmoid signbit sin sinc sinh sqrt square stack std std_mean sub subtract sum tan tanh threshold
true_divide var var_mean vstack xlogy
""".split())
# Functions whose out may share no memory with an input (PyTorch: "some elements of the input tensor
# and the written-to tensor refer to a single memory location").
NO_OVERLAP = frozenset("""
cat column_stack concat concatenate dstack gather hstack index_select kthvalue masked_select row_stack stack
take take_along_dim vstack
""".split())


def _dense(t):
    """Whether t's elements are distinct and fill [first, last) with no gap (in some dim order)."""
    expect = 1
    for st, n in sorted((abs(st), n) for n, st in zip(t.shape, t.stride()) if n > 1):
        if st != expect:
            return False
        expect *= n
    return True


def _span(t):
    """[first, last) byte addresses a dense t's elements fill; None when empty or not dense (PyTorch
    too calls the overlap of interleaved views, such as y[::2] and y[1::2], too hard to decide and
    lets them through)."""
    if t.numel() == 0 or not _dense(t):
        return None
    e = t.element_size()
    lo = hi = t.data_ptr()
    for n, st in zip(t.shape, t.stride()):
        (lo, hi) = (lo + (n - 1) * st * e, hi) if st < 0 else (lo, hi + (n - 1) * st * e)
    return lo, hi + e


def _check_out(name, out, inputs):
    for o in tree_tensors(out):
        if any(st == 0 and n > 1 for n, st in zip(o.shape, o.stride())):
            raise RuntimeError(f"{name}: unsupported operation: more than one element of the written-to tensor "
                               f"(out, shape {tuple(o.shape)}, strides {o.stride()}) refers to a single memory "
                               f"location; clone() it first")
        if name not in NO_OVERLAP or o.device.type != "cpu":
            continue
        so = _span(o)
        for t in inputs:
            if t.device != o.device or t.numel() == 0 or o.numel() == 0:
                continue
            st = _span(t)
            if so and st and so[0] < st[1] and st[0] < so[1]:
                raise RuntimeError(f"{name}: unsupported operation: some elements of the input tensor (shape "
                                   f"{tuple(t.shape)}) and the written-to tensor (out, shape {tuple(o.shape)}) "
                                   f"refer to a single memory location")


def _kind(dt):
    return 2 if dt.is_floating_point else 0 if str(dt) == "fastdl.bool" else 1


def _write(name, out, r):
    if isinstance(r, tuple):
        if not isinstance(out, (tuple, list)) or len(out) != len(r):
            raise TypeError(f"{name}: out must be a tuple of {len(r)} tensors for this result; got {type(out).__name__}")
        written = [_write(name, o, x) for o, x in zip(out, r)]
        return type(r)(*written) if hasattr(r, "_fields") else tuple(written)
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}: out must be a Tensor; got {type(out).__name__}")
    if not isinstance(r, Tensor):
        raise TypeError(f"{name}: out= is not supported when the result is a {type(r).__name__}")
    if r.requires_grad and _C.is_grad_enabled():
        raise RuntimeError(f"{name}(): functions with out=... arguments don't support automatic differentiation, but "
                           f"one of the arguments requires grad")
    if name not in CASTING and r.dtype != out.dtype:
        raise RuntimeError(f"{name}: expected out tensor to have dtype {r.dtype}, but got {out.dtype}")
    if _kind(r.dtype) > _kind(out.dtype):
        raise RuntimeError(f"{name}: result type {r.dtype} can't be cast to the desired output type {out.dtype}")
    if out.device != r.device:
        raise RuntimeError(f"{name}: expected out on {r.device}; got {out.device}")
    if tuple(out.shape) != tuple(r.shape):
        out.resize_(tuple(r.shape))
    prev = _C.is_grad_enabled()
    _C.set_grad_enabled(False)
    try:
        out.copy_(r)
    finally:
        _C.set_grad_enabled(prev)
    return out


def _wrap(name, f):
    @functools.wraps(f)
    def call(*args, out=None, **kwargs):
        if out is not None:
            _check_out(name, out, tree_tensors([args, kwargs]))
        r = f(*args, **kwargs)
        return r if out is None else _write(name, out, r)
    return call


def install(ns):
    """Give the listed functions of namespace dict ns (fastdl's globals) an out= keyword."""
    for name in NAMES:
        f = ns.get(name)
        if f is not None and not getattr(f, "_takes_out", False):
            ns[name] = _wrap(name, f)
            ns[name]._takes_out = True
