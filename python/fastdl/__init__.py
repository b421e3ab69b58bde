"""fastdl: a deep-learning library with a native C++/CUDA tensor engine and a PyTorch-style API.

    import fastdl as fd
    x = fd.randn(4, 3, requires_grad=True)
    (x @ x.T).sum().backward()
"""
import builtins as _b

from fastdl import _C  # noqa: F401
from fastdl._C import Tensor, device, dtype  # noqa: F401
from fastdl._C import (  # noqa: F401  (ops bound straight from C++)
    abs, acos, add, addmm, all, amax, amin, any, argmax, argmin, asin, atan, atan2, bmm, broadcast_to,
    cat, ceil, chunk, clamp, clip, clone, cos, cosh, cumsum, div, elu, eq, erf, exp, exp2, expm1, flatten, flip,
    floor, floor_divide, gather, ge, gelu, gt, hardtanh, index_put, index_select, isfinite, isinf, isnan, le,
    leaky_relu, lerp, log, log1p, log2, log10, log_softmax, logical_and, logical_not, logical_or, logical_xor,
    logsumexp, lt, masked_fill, matmul, maximum, mean, minimum, mm, movedim, mul, nan_to_num, narrow, ne, neg,
    nonzero, norm, permute, pow, prod, reciprocal, relu, remainder, repeat, reshape, round, rsqrt, scatter_add,
    select, sigmoid, sign, silu, sin, sinh, softmax, softplus, split, sqrt, square, squeeze, stack, std, sub,
    sum, swapaxes, tan, tanh, transpose, tril, triu, trunc, unbind, unsqueeze, var, where,
)
from fastdl._C import max, min  # noqa: F401,A004
from fastdl._C import bitwise_and, bitwise_or, bitwise_xor  # noqa: F401
from fastdl._C import get_num_threads, set_num_threads  # noqa: F401

float32 = float = dtype.float32
float64 = double = dtype.float64
float16 = half = dtype.float16
bfloat16 = dtype.bfloat16
int32 = int = dtype.int32
int64 = long = dtype.int64
int16 = short = dtype.int16
int8 = dtype.int8
uint8 = dtype.uint8
bool = dtype.bool

from fastdl._tensor import (  # noqa: E402,F401
    Size, _minmax_result, arange, clone, channels_last, channels_last_3d, contiguous_format, memory_format, preserve_format,
    empty, empty_like, enable_grad, eye, from_dlpack, from_numpy, full, full_like, get_default_device,
    get_default_dtype, inference_mode, is_grad_enabled, is_inference_mode_enabled, is_tensor, linspace, no_grad, ones,
    ones_like, rand, rand_like, randint, randint_like, randn, randn_like, randperm, set_default_device,
    set_default_dtype, set_grad_enabled, tensor,
    as_tensor, zeros, zeros_like, is_floating_point, numel, concat, concatenate, dot, outer,
)
from fastdl._comparison import allclose, equal, isclose  # noqa: E402,F401
from fastdl._einsum import einsum  # noqa: E402,F401
from fastdl._indexing import argwhere, masked_select, nonzero, take, take_along_dim  # noqa: E402,F401
from fastdl._pointwise import (  # noqa: E402,F401,A004
    addcdiv, addcmul, div, fmod, frac, hypot, lerp, logaddexp, pow, round, rsub, sub, xlogy,
)
from fastdl._reductions import (  # noqa: E402,F401
    aminmax, count_nonzero, cumprod, cumsum, diff, log_softmax, nansum, prod, softmax, std_mean, var_mean,
)
from fastdl._shaping import (  # noqa: E402,F401
    atleast_1d, atleast_2d, atleast_3d, broadcast_shapes, broadcast_tensors, diag, diagonal, fliplr, flipud, hstack,
    meshgrid, movedim, ravel, repeat_interleave, roll, tile, trace, unflatten, vstack,
)
from fastdl._shaping import t_ as t  # noqa: E402
from fastdl._sorting import argsort, kthvalue, sort, topk  # noqa: E402,F401
from fastdl._indexing import (  # noqa: E402,F401
    index_add, index_copy, index_fill, index_put, masked_scatter, put, scatter, scatter_reduce,
)
from fastdl._statistics import (  # noqa: E402,F401
    bincount, bucketize, corrcoef, cov, cummax, cummin, histc, logcumsumexp, median, mode, nanmean, nanmedian,
    nanquantile, quantile, searchsorted, unique, unique_consecutive,
)
from fastdl._shaping import (  # noqa: E402,F401
    block_diag, cartesian_prod, combinations, cross, diag_embed, diagflat, dsplit, hsplit, kron, rot90, tensor_split,
    vsplit,
)
from fastdl._pointwise import (  # noqa: E402,F401
    acosh, asinh, atanh, copysign, cumulative_trapezoid, deg2rad, float_power, fmax, fmin, frexp, gcd,
    heaviside, isin, isneginf, isposinf, isreal, lcm, ldexp, logaddexp2, rad2deg, signbit, sinc, trapezoid,
)
from fastdl._random import bernoulli, binomial, multinomial, normal, poisson  # noqa: E402,F401
from fastdl._vmap import vmap  # noqa: E402,F401
from fastdl.random import (Generator, default_generator, get_rng_state, initial_seed, manual_seed,  # noqa: E402,F401
                           seed, set_rng_state)
from fastdl._special import digamma, erfc, erfinv, lgamma, mvlgamma, polygamma  # noqa: E402,F401
from fastdl._products import addmv, addr, dist, ger, inner, mv, vdot  # noqa: E402,F401
from fastdl._indexing import diagonal_scatter, select_scatter, slice_scatter  # noqa: E402,F401
from fastdl._pointwise import bitwise_not, logit, nextafter, sgn  # noqa: E402,F401
from fastdl._statistics import histogram  # noqa: E402,F401
from fastdl._indexing import index_reduce  # noqa: E402,F401
from fastdl._sorting import msort  # noqa: E402,F401
trapz = trapezoid
arcsin, arccos, arctan, arcsinh, arccosh, arctanh = asin, acos, atan, asinh, acosh, atanh  # noqa: E402
divide, multiply, subtract, true_divide, negative, arctan2, swapdims, moveaxis, fix = (  # noqa: E402
    div, mul, sub, div, neg, atan2, swapaxes, movedim, trunc)


def positive(x):
    return x


from fastdl._pointwise import clamp_max, clamp_min  # noqa: E402,F401
from fastdl._products import addbmm, baddbmm, cdist, tensordot  # noqa: E402,F401
from fastdl._shaping import column_stack, dstack  # noqa: E402,F401
from fastdl._reductions import gradient, renorm  # noqa: E402,F401
from fastdl._statistics import histogramdd  # noqa: E402,F401
from fastdl._indexing import nonzero_static  # noqa: E402,F401
from fastdl._creation import empty_permuted, empty_strided, fill, scalar_tensor  # noqa: E402,F401
from fastdl._views import (  # noqa: E402,F401
    alias_copy, as_strided, as_strided_, as_strided_copy, as_strided_scatter, diagonal_copy, expand_copy,
    narrow_copy, permute_copy, resize_as_, split_with_sizes, split_with_sizes_copy, squeeze_copy, t_copy,
    transpose_copy, unbind_copy, unfold_copy, unsafe_chunk, unsafe_split, unsqueeze_copy, view_copy,
)
from fastdl._native_norms import native_batch_norm, native_group_norm, native_layer_norm  # noqa: E402,F401

from fastdl import amp, autograd, cpu, cuda, linalg, masked, nn, optim, profiler  # noqa: E402,F401
from fastdl.amp import (autocast, autocast_decrement_nesting, autocast_increment_nesting,  # noqa: E402,F401
                        clear_autocast_cache, get_autocast_cpu_dtype, get_autocast_dtype, get_autocast_gpu_dtype,
                        is_autocast_available, is_autocast_cache_enabled, is_autocast_cpu_enabled,
                        is_autocast_enabled, set_autocast_cache_enabled, set_autocast_cpu_dtype,
                        set_autocast_cpu_enabled, set_autocast_dtype, set_autocast_enabled, set_autocast_gpu_dtype)
from fastdl.linalg._aliases import (  # noqa: E402,F401  (torch's top-level linear-algebra names)
    cholesky, cholesky_inverse, cholesky_solve, det, inverse, logdet, matrix_exp, matrix_power, norm, pinverse, qr,
    slogdet, svd, triangular_solve, lu, lu_solve, lu_unpack, geqrf, ormqr,
)
from fastdl.linalg._lowrank import pca_lowrank, svd_lowrank  # noqa: E402,F401
from fastdl.serialization import load, save  # noqa: E402,F401
from fastdl import data, distributions, signal, special, testing, utils  # noqa: E402,F401
from fastdl import func  # noqa: E402,F401  (torch.func: grad, jacrev, functional_call, ...)
from fastdl import backends, compiler, jit, mps  # noqa: E402,F401  (torch's switches and queries, for scripts)
from fastdl._misc_ops import (  # noqa: E402,F401
    bitwise_left_shift, bitwise_right_shift, i0, igamma, igammac, logspace, tril_indices, triu_indices, unravel_index,
)
from fastdl.signal.windows import (  # noqa: E402,F401
    bartlett_window, blackman_window, hamming_window, hann_window, kaiser_window,
)
from fastdl._misc_ops import _install_methods as _install_misc  # noqa: E402
_install_misc()
del _install_misc



def _export_inplace():
    """torch.<op>_(t, ...): PyTorch's top-level in-place functions, the Tensor methods of the same name."""
    g = globals()
    for name in ("abs acos acosh arccos arccosh arcsin arcsinh arctan arctanh asin asinh atan atanh ceil clamp "
                 "clamp_max clamp_min cos cosh deg2rad erf erfc exp2 exp expm1 floor frac gcd index_put lcm ldexp "
                 "log10 log1p log2 log nan_to_num neg rad2deg reciprocal relu round rsqrt sigmoid sin sinc sinh sqrt "
                 "square tan tanh trunc xlogy fix negative lgamma digamma erfinv logit").split():
        if hasattr(Tensor, name + "_"):
            g[name + "_"] = getattr(Tensor, name + "_")


_export_inplace()
del _export_inplace
from fastdl._tensor import set_printoptions  # noqa: E402,F401
from fastdl._torch_names import install as _install_torch_names  # noqa: E402  (last: it defines range, compile)
_install_torch_names(globals())
del _install_torch_names
from fastdl.autograd import is_anomaly_check_nan_enabled, is_anomaly_enabled, set_anomaly_enabled  # noqa: E402,F401
from fastdl.nn._interpolate import _upsample_bilinear2d_aa  # noqa: E402,F401  (aten's name, in torch's op tests)
from fastdl.amp import _install_op_lists  # noqa: E402  (PyTorch's autocast op lists)
_install_op_lists(globals())
del _install_op_lists
from fastdl._out import install as _install_out  # noqa: E402  (after every top-level function exists)
_install_out(globals())
del _install_out
__version__ = "0.1.0"
del _b
