"""fastdl.array_api against numpy's array API (numpy >= 2.1 follows the standard) on random data:
every function the 2023.12 standard names that fastdl provides is checked for values and dtype;
the absent ones are listed and must stay exactly the documented set."""
import math

import numpy as np
import pytest

import fastdl as fd
import fastdl.array_api as xp

if not hasattr(np, "cumulative_sum"):
    pytest.skip("numpy >= 2.1 (array API 2023.12) is the reference", allow_module_level=True)

# The standard's functions, version 2023.12 (main namespace, then the linalg extension).
STANDARD = """
arange asarray empty empty_like eye from_dlpack full full_like linspace meshgrid ones ones_like tril triu zeros
zeros_like astype can_cast finfo iinfo isdtype result_type abs acos acosh add asin asinh atan atan2 atanh
bitwise_and bitwise_left_shift bitwise_invert bitwise_or bitwise_right_shift bitwise_xor ceil clip conj copysign
cos cosh divide equal exp expm1 floor floor_divide greater greater_equal hypot imag isfinite isinf isnan less
less_equal log log1p log2 log10 logaddexp logical_and logical_not logical_or logical_xor maximum minimum multiply
negative not_equal positive pow real remainder round sign signbit sin sinh square sqrt subtract tan tanh trunc
take matmul matrix_transpose tensordot vecdot broadcast_arrays broadcast_to concat expand_dims flip moveaxis
permute_dims repeat reshape roll squeeze stack tile unstack argmax argmin nonzero searchsorted where unique_all
unique_counts unique_inverse unique_values argsort sort cumulative_sum max mean min prod std sum var all any
__array_namespace_info__
""".split()
LINALG = """cholesky cross det diagonal eigh eigvalsh inv matmul matrix_norm matrix_power matrix_rank matrix_transpose
outer pinv qr slogdet solve svd svdvals tensordot trace vecdot vector_norm""".split()
FFT = "fft ifft fftn ifftn rfft irfft rfftn irfftn hfft ihfft fftfreq rfftfreq fftshift ifftshift".split()
# What fastdl does not have (documented in fastdl/array_api/__init__.py and linalg.py).
MISSING_LINALG = set()
DTYPES_MISSING = ["uint8", "uint16", "uint32", "uint64", "complex64", "complex128"]

NP_DT = {fd.bool: np.bool_, fd.int32: np.int32, fd.int64: np.int64, fd.float32: np.float32, fd.float64: np.float64}

rng = np.random.default_rng(1234)


def rnd(shape, dtype=np.float64, lo=-3.0, hi=3.0):
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if np.issubdtype(dtype, np.integer):
        return rng.integers(int(lo), int(hi) + 1, size=shape).astype(dtype)
    return rng.uniform(lo, hi, size=shape).astype(dtype)


def fdt(a):
    a = np.asarray(a)
    return fd.from_numpy(a if a.flags.c_contiguous else a.copy())


def check(out, ref, rtol=1e-6, atol=1e-9, dtype=True):
    if isinstance(ref, (tuple, list)):
        assert isinstance(out, (tuple, list)) and len(out) == len(ref)
        for o, r in zip(out, ref):
            check(o, r, rtol, atol, dtype)
        return
    assert isinstance(out, fd.Tensor), type(out)
    ref = np.asarray(ref)
    assert tuple(out.shape) == ref.shape, (tuple(out.shape), ref.shape)
    if dtype:
        assert NP_DT[out.dtype] == ref.dtype, (out.dtype, ref.dtype)
    np.testing.assert_allclose(out.numpy().astype(np.float64) if ref.dtype != np.bool_ else out.numpy(),
                               ref.astype(np.float64) if ref.dtype != np.bool_ else ref, rtol=rtol, atol=atol,
                               equal_nan=True)


# ---- element-wise: (name, input range, dtypes) --------------------------------------------------
FLOATS = (np.float32, np.float64)
UNARY = {
    "abs": (-3, 3), "acos": (-1, 1), "acosh": (1, 5), "asin": (-1, 1), "asinh": (-40, 40), "atan": (-3, 3),
    "atanh": (-0.99, 0.99), "ceil": (-3, 3), "cos": (-3, 3), "cosh": (-3, 3), "exp": (-3, 3), "expm1": (-3, 3),
    "floor": (-3, 3), "isfinite": (-3, 3), "isinf": (-3, 3), "isnan": (-3, 3), "log": (0.1, 5), "log1p": (-0.9, 5),
    "log2": (0.1, 5), "log10": (0.1, 5), "negative": (-3, 3), "positive": (-3, 3), "round": (-5, 5),
    "sign": (-3, 3), "signbit": (-3, 3), "sin": (-3, 3), "sinh": (-3, 3), "square": (-3, 3), "sqrt": (0, 5),
    "tan": (-1.5, 1.5), "tanh": (-3, 3), "trunc": (-3, 3), "conj": (-3, 3), "real": (-3, 3), "imag": (-3, 3),
}
INT_UNARY = {"abs", "negative", "positive", "sign", "square", "isfinite", "isnan", "isinf", "signbit"}
BINARY = {
    "add": (-3, 3), "subtract": (-3, 3), "multiply": (-3, 3), "divide": (0.5, 3), "atan2": (-3, 3),
    "hypot": (-3, 3), "logaddexp": (-3, 3), "maximum": (-3, 3), "minimum": (-3, 3), "copysign": (-3, 3),
    "pow": (0.5, 2), "floor_divide": (-5, 5), "remainder": (-5, 5), "equal": (-2, 2), "not_equal": (-2, 2),
    "greater": (-2, 2), "greater_equal": (-2, 2), "less": (-2, 2), "less_equal": (-2, 2),
}
INT_BINARY = {"add", "subtract", "multiply", "maximum", "minimum", "equal", "not_equal", "greater",
              "greater_equal", "less", "less_equal", "floor_divide", "remainder"}
LOGICAL = ("logical_and", "logical_or", "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor")


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("dt", FLOATS)
def test_unary(name, dt):
    lo, hi = UNARY[name]
    a = rnd((5, 7), dt, lo, hi)
    if name == "round":
        a[0, :4] = [0.5, 1.5, -2.5, 2.5]  # halves go to even
    if name in ("isinf", "isnan", "isfinite", "signbit"):
        a[0, :4] = [np.inf, -np.inf, np.nan, -0.0]
        if name == "signbit":
            a[0, 2] = 1.0  # fastdl cannot see NaN's sign (documented)
    ref = getattr(np, name)(a)
    tol = 2e-6 if dt == np.float32 else 1e-12
    check(getattr(xp, name)(fdt(a)), ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", sorted(INT_UNARY))
@pytest.mark.parametrize("dt", (np.int32, np.int64))
def test_unary_int(name, dt):
    a = rnd((4, 6), dt, -9, 9)
    check(getattr(xp, name)(fdt(a)), getattr(np, name)(a))


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("dt", FLOATS)
def test_binary_broadcast(name, dt):
    lo, hi = BINARY[name]
    a, b = rnd((3, 1, 5), dt, lo, hi), rnd((4, 1), dt, lo, hi)
    if name in ("floor_divide", "remainder"):
        b = np.where(np.abs(b) < 0.5, 1.5, b).astype(dt)
    if name in ("equal", "not_equal", "greater", "greater_equal", "less", "less_equal"):
        a, b = np.round(a).astype(dt), np.round(b).astype(dt)
    tol = 3e-6 if dt == np.float32 else 1e-12
    check(getattr(xp, name)(fdt(a), fdt(b)), getattr(np, name)(a, b), rtol=tol, atol=tol)
    # a Python scalar operand adopts the array's dtype
    check(getattr(xp, name)(fdt(a), 1.5), getattr(np, name)(a, dt(1.5)), rtol=tol, atol=tol)


@pytest.mark.parametrize("name", sorted(INT_BINARY))
@pytest.mark.parametrize("dts", [(np.int32, np.int32), (np.int64, np.int64), (np.int32, np.int64)])
def test_binary_int(name, dts):
    a, b = rnd((3, 4), dts[0], -9, 9), rnd((3, 4), dts[1], -9, 9)
    if name in ("floor_divide", "remainder"):
        b[b == 0] = 3
    check(getattr(xp, name)(fdt(a), fdt(b)), getattr(np, name)(a, b))


@pytest.mark.parametrize("name", LOGICAL)
def test_logical(name):
    a, b = rnd((4, 5), np.bool_), rnd((4, 5), np.bool_)
    check(getattr(xp, name)(fdt(a), fdt(b)), getattr(np, name)(a, b))


def test_logical_not_and_invert():
    a = rnd((4, 5), np.bool_)
    check(xp.logical_not(fdt(a)), np.logical_not(a))
    check(xp.bitwise_invert(fdt(a)), np.bitwise_invert(a))
    ai, bi = rnd((4, 5), np.int64, -100, 100), rnd((4, 5), np.int32, -100, 100)
    from fastdl.array_api._elementwise import _int_bitwise
    if _int_bitwise():
        for name in ("bitwise_and", "bitwise_or", "bitwise_xor"):
            check(getattr(xp, name)(fdt(ai), fdt(bi)), getattr(np, name)(ai, bi))
        check(xp.bitwise_invert(fdt(ai)), np.bitwise_invert(ai))
    else:  # this build's & | ^ on integers are logical: the namespace refuses rather than lie
        with pytest.raises(TypeError, match="bitwise integer"):
            xp.bitwise_and(fdt(ai), fdt(bi))


def test_shifts():
    a, s = rnd((20,), np.int64, -1000, 1000), rnd((20,), np.int64, 0, 70)
    check(xp.bitwise_right_shift(fdt(a), fdt(s)), np.right_shift(a, np.minimum(s, 63)))
    s = rnd((20,), np.int64, 0, 20)
    check(xp.bitwise_left_shift(fdt(a), fdt(s)), np.left_shift(a, s))
    with pytest.raises(ValueError):
        xp.bitwise_left_shift(fdt(a), -1)


def test_clip():
    a = rnd((4, 5))
    check(xp.clip(fdt(a), min=-1.0, max=0.5), np.clip(a, -1.0, 0.5))
    check(xp.clip(fdt(a), max=0.5), np.clip(a, None, 0.5))
    ai = rnd((6,), np.int32, -9, 9)
    check(xp.clip(fdt(ai), min=-2, max=3), np.clip(ai, -2, 3))


# ---- creation --------------------------------------------------------------------------------------
def test_creation():
    check(xp.arange(2, 11, 3), np.arange(2, 11, 3))
    check(xp.arange(0.0, 1.0, 0.25), np.arange(0.0, 1.0, 0.25, dtype=np.float32))
    check(xp.zeros((2, 3)), np.zeros((2, 3), np.float32))
    check(xp.ones(4, dtype=xp.int32), np.ones(4, np.int32))
    check(xp.full((2, 2), 7), np.full((2, 2), 7, np.int64))
    check(xp.full((2,), True), np.full((2,), True))
    check(xp.full((2,), 2.5, dtype=xp.float64), np.full((2,), 2.5))
    assert tuple(xp.empty((3, 0)).shape) == (3, 0)
    x = fdt(rnd((2, 3)))
    check(xp.zeros_like(x), np.zeros((2, 3)))
    check(xp.ones_like(x, dtype=xp.int64), np.ones((2, 3), np.int64))
    check(xp.full_like(x, 3.0), np.full((2, 3), 3.0))
    assert xp.empty_like(x).dtype == x.dtype
    for k in (-2, 0, 1, 3):
        check(xp.eye(3, 5, k=k), np.eye(3, 5, k=k, dtype=np.float32))
    check(xp.linspace(0.0, 1.0, 5, dtype=xp.float64), np.linspace(0.0, 1.0, 5))
    check(xp.linspace(0.0, 1.0, 4, endpoint=False, dtype=xp.float64), np.linspace(0.0, 1.0, 4, endpoint=False))
    m = rnd((4, 4))
    for k in (-1, 0, 2):
        check(xp.tril(fdt(m), k=k), np.tril(m, k))
        check(xp.triu(fdt(m), k=k), np.triu(m, k))
    a, b = fdt(np.arange(3.0)), fdt(np.arange(4.0))
    for ind in ("xy", "ij"):
        check(xp.meshgrid(a, b, indexing=ind), np.meshgrid(np.arange(3.0), np.arange(4.0), indexing=ind))


def test_asarray():
    assert xp.asarray(1.5).dtype == xp.float32 and xp.asarray(2).dtype == xp.int64 and xp.asarray(True).dtype == xp.bool
    check(xp.asarray([[1, 2], [3, 4]]), np.array([[1, 2], [3, 4]]))
    check(xp.asarray([1.0, 2.0]), np.array([1.0, 2.0], np.float32))
    a = rnd((3, 4))
    t = xp.asarray(a)
    check(t, a)
    a[0, 0] = 99.0  # zero-copy by default
    assert t[0, 0].item() == 99.0
    assert xp.asarray(a, copy=True)[0, 0].item() == 99.0
    c = xp.asarray(a, copy=True)
    a[0, 0] = 1.0
    assert c[0, 0].item() == 99.0
    check(xp.asarray(a[:, ::2]), a[:, ::2])
    check(xp.asarray(np.arange(5, dtype=np.uint8)), np.arange(5, dtype=np.int64))
    assert xp.asarray(t) is t and xp.asarray(t, copy=True) is not t
    check(xp.asarray(t, dtype=xp.float32), a.astype(np.float32))
    with pytest.raises(ValueError):
        xp.asarray(t, dtype=xp.float32, copy=False)
    with pytest.raises(ValueError):
        xp.asarray([1, 2], copy=False)
    check(xp.from_dlpack(np.arange(4.0)), np.arange(4.0))
    torch = pytest.importorskip("torch")
    check(xp.asarray(torch.arange(6).reshape(2, 3)), np.arange(6).reshape(2, 3))


# ---- data types ------------------------------------------------------------------------------------
def test_dtype_functions():
    i32, i64, f32, f64 = xp.int32, xp.int64, xp.float32, xp.float64
    assert xp.result_type(i32, i64) == i64 and xp.result_type(f32, f64) == f64
    assert xp.result_type(xp.bool, xp.bool) == xp.bool and xp.result_type(f32, f32) == f32
    assert xp.result_type(fdt(rnd(2, np.int32)), 1) == i32 and xp.result_type(f32, 1.0) == f32
    assert xp.result_type(i32, 1.0) == xp.float32
    for a, b in [(i32, i64), (f32, f64), (i32, i32), (xp.bool, xp.bool)]:
        assert xp.result_type(a, b) == xp.result_type(b, a)
        x = xp.ones(2, dtype=a) + xp.ones(2, dtype=b)
        assert x.dtype == xp.result_type(a, b)
    assert xp.can_cast(i32, i64) and not xp.can_cast(i64, i32) and xp.can_cast(f32, f64) and not xp.can_cast(f64, f32)
    assert not xp.can_cast(f32, i64) and xp.can_cast(xp.bool, i32)
    assert xp.isdtype(f32, "real floating") and xp.isdtype(i64, ("bool", "integral")) and not xp.isdtype(f32, "integral")
    assert xp.isdtype(xp.bool, "bool") and xp.isdtype(i32, "numeric") and not xp.isdtype(xp.bool, "numeric")
    assert xp.isdtype(i32, i32) and not xp.isdtype(i32, "unsigned integer")
    for d in (f32, f64):
        fi, nf = xp.finfo(d), np.finfo(NP_DT[d])
        assert (fi.bits, fi.eps, fi.max, fi.min, fi.smallest_normal) == (nf.bits, nf.eps, nf.max, nf.min, nf.smallest_normal)
    for d in (i32, i64):
        ii, ni = xp.iinfo(d), np.iinfo(NP_DT[d])
        assert (ii.bits, ii.max, ii.min) == (ni.bits, ni.max, ni.min)
    with pytest.raises(TypeError):
        xp.finfo(i32)
    a = rnd((3,))
    check(xp.astype(fdt(a), xp.int32), a.astype(np.int32))
    t = fdt(a)
    assert xp.astype(t, xp.float64, copy=False) is t and xp.astype(t, xp.float64) is not t


# ---- manipulation, indexing, linear algebra ------------------------------------------------------
def test_manipulation():
    a, b = rnd((2, 3, 4)), rnd((1, 3, 4))
    check(xp.concat([fdt(a), fdt(b)], axis=0), np.concat([a, b], axis=0))
    check(xp.concat([fdt(a), fdt(b)], axis=None), np.concat([a, b], axis=None))
    check(xp.concat([fdt(a), fdt(a.astype(np.float32))], axis=-1), np.concat([a, a.astype(np.float32)], axis=-1))
    check(xp.stack([fdt(a), fdt(a)], axis=1), np.stack([a, a], axis=1))
    check(xp.expand_dims(fdt(a), axis=-1), np.expand_dims(a, -1))
    check(xp.flip(fdt(a)), np.flip(a))
    check(xp.flip(fdt(a), axis=(0, 2)), np.flip(a, (0, 2)))
    check(xp.moveaxis(fdt(a), 0, -1), np.moveaxis(a, 0, -1))
    check(xp.permute_dims(fdt(a), (2, 0, 1)), np.permute_dims(a, (2, 0, 1)))
    check(xp.repeat(fdt(a), 2, axis=1), np.repeat(a, 2, axis=1))
    check(xp.repeat(fdt(a), 3), np.repeat(a, 3))
    check(xp.reshape(fdt(a), (4, -1)), np.reshape(a, (4, -1)))
    check(xp.reshape(fdt(a), (24,), copy=False), a.reshape(24))
    with pytest.raises(ValueError):
        xp.reshape(xp.permute_dims(fdt(a), (2, 1, 0)), (24,), copy=False)
    check(xp.roll(fdt(a), 5), np.roll(a, 5))
    check(xp.roll(fdt(a), -2, axis=2), np.roll(a, -2, axis=2))
    check(xp.squeeze(fdt(b), axis=0), np.squeeze(b, axis=0))
    with pytest.raises(ValueError):
        xp.squeeze(fdt(a), axis=0)
    check(xp.tile(fdt(a), (2, 1, 3)), np.tile(a, (2, 1, 3)))
    check(xp.unstack(fdt(a), axis=1), np.unstack(a, axis=1))
    check(xp.broadcast_to(fdt(b), (2, 3, 4)), np.broadcast_to(b, (2, 3, 4)))
    check(xp.broadcast_arrays(fdt(a), fdt(b)), np.broadcast_arrays(a, b))
    idx = np.array([2, 0, -1, 1])
    check(xp.take(fdt(a), fdt(idx), axis=2), np.take(a, idx, axis=2))
    v = rnd((7,))
    check(xp.take(fdt(v), fdt(idx)), np.take(v, idx))


def test_linear_algebra():
    a, b = rnd((2, 3, 4)), rnd((4, 5))
    check(xp.matmul(fdt(a), fdt(b)), np.matmul(a, b), rtol=1e-12)
    check(xp.matrix_transpose(fdt(a)), np.matrix_transpose(a))
    check(xp.tensordot(fdt(a), fdt(b), axes=1), np.tensordot(a, b, axes=1), rtol=1e-12)
    c = rnd((4, 3, 6))
    check(xp.tensordot(fdt(a), fdt(c), axes=((1, 2), (1, 0))), np.tensordot(a, c, axes=((1, 2), (1, 0))), rtol=1e-12)
    check(xp.tensordot(fdt(a), fdt(c), axes=0), np.tensordot(a, c, axes=0), rtol=1e-12)
    x, y = rnd((3, 1, 4)), rnd((5, 4))
    check(xp.vecdot(fdt(x), fdt(y)), np.vecdot(x, y), rtol=1e-12)
    check(xp.vecdot(fdt(a), fdt(a), axis=1), np.vecdot(a, a, axis=1), rtol=1e-12)


def test_linalg_extension():
    m, v = rnd((2, 4, 4)), rnd((3, 4))
    L = xp.linalg
    check(L.matmul(fdt(m), fdt(m)), np.linalg.matmul(m, m), rtol=1e-12)
    check(L.matrix_transpose(fdt(m)), np.linalg.matrix_transpose(m))
    check(L.diagonal(fdt(m), offset=1), np.linalg.diagonal(m, offset=1))
    check(L.trace(fdt(m), offset=-1), np.linalg.trace(m, offset=-1), rtol=1e-12)
    check(L.outer(fdt(v[0]), fdt(v[1])), np.linalg.outer(v[0], v[1]))
    p, q = rnd((5, 3)), rnd((1, 3))
    check(L.cross(fdt(p), fdt(q)), np.linalg.cross(p, q), rtol=1e-12)
    check(L.tensordot(fdt(v), fdt(m[0]), axes=1), np.linalg.tensordot(v, m[0], axes=1), rtol=1e-12)
    check(L.vecdot(fdt(v), fdt(v)), np.linalg.vecdot(v, v), rtol=1e-12)
    for ord_ in (2, 1, 0, math.inf, -math.inf, 3):
        check(L.vector_norm(fdt(v), ord=ord_), np.linalg.vector_norm(v, ord=ord_), rtol=1e-12)
        check(L.vector_norm(fdt(v), axis=1, keepdims=True, ord=ord_),
              np.linalg.vector_norm(v, axis=1, keepdims=True, ord=ord_), rtol=1e-12)
    for ord_ in ("fro", 1, -1, math.inf, -math.inf, 2, -2, "nuc"):
        check(L.matrix_norm(fdt(m), ord=ord_), np.linalg.matrix_norm(m, ord=ord_), rtol=1e-12)
    check(L.matrix_norm(fdt(m), keepdims=True), np.linalg.matrix_norm(m, keepdims=True), rtol=1e-12)
    check(L.matrix_norm(fdt(m), keepdims=True, ord="nuc"), np.linalg.matrix_norm(m, keepdims=True, ord="nuc"),
          rtol=1e-12)
    with pytest.raises(ValueError, match="ord"):
        L.matrix_norm(fdt(m), ord=3)
    for n in (0, 1, 5, -1, -3):
        check(L.matrix_power(fdt(m), n), np.linalg.matrix_power(m, n), rtol=1e-10)


def test_linalg_decompositions():
    """The decompositions against numpy.linalg (sign-free checks for eigen/singular vectors)."""
    a = rnd((2, 5, 5)) + 3 * np.eye(5)
    s = a @ np.swapaxes(a, -1, -2) + np.eye(5)  # symmetric positive-definite
    r = rnd((2, 7, 4))
    L = xp.linalg
    check(L.inv(fdt(a)), np.linalg.inv(a), rtol=1e-10)
    check(L.det(fdt(a)), np.linalg.det(a), rtol=1e-10)
    sign, lad = L.slogdet(fdt(a))
    check(sign, np.linalg.slogdet(a).sign)
    check(lad, np.linalg.slogdet(a).logabsdet, rtol=1e-10)
    check(L.cholesky(fdt(s)), np.linalg.cholesky(s), rtol=1e-10)
    check(L.cholesky(fdt(s), upper=True), np.linalg.cholesky(s, upper=True), rtol=1e-10)
    check(L.eigvalsh(fdt(s)), np.linalg.eigvalsh(s), rtol=1e-10)
    w, V = L.eigh(fdt(s))
    check((V * w.unsqueeze(-2)) @ V.mT, s, rtol=1e-10)
    check(L.svdvals(fdt(r)), np.linalg.svdvals(r), rtol=1e-10)
    U, S, Vh = L.svd(fdt(r), full_matrices=False)
    check((U * S.unsqueeze(-2)) @ Vh, r, rtol=1e-10, atol=1e-12)
    assert tuple(L.svd(fdt(r)).U.shape) == (2, 7, 7)
    Q, R = L.qr(fdt(r))
    check(Q @ R, r, rtol=1e-10, atol=1e-12)
    check(L.pinv(fdt(r)), np.linalg.pinv(r), rtol=1e-9, atol=1e-12)
    check(L.matrix_rank(fdt(r)), np.linalg.matrix_rank(r))
    b, bv = rnd((5, 3)), rnd(5)
    check(L.solve(fdt(a), fdt(b)), np.linalg.solve(a, b), rtol=1e-10)
    check(L.solve(fdt(a), fdt(bv)), np.linalg.solve(a, bv), rtol=1e-10)
    # x2 of shape x1.shape[:-1] is a matrix under the standard's rule (PyTorch would read vectors)
    c = rnd((5, 5, 5)) + 3 * np.eye(5)
    b5 = rnd((5, 5))
    check(L.solve(fdt(c), fdt(b5)), np.linalg.solve(c, b5), rtol=1e-10)


# ---- reductions, searching, sorting, sets -----------------------------------------------------------
@pytest.mark.parametrize("name", ["sum", "prod", "mean", "max", "min", "std", "var"])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2), ()])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions(name, axis, keepdims):
    a = rnd((3, 4, 5), np.float64, 0.5, 1.5)
    kw = {"correction": 1.0} if name in ("std", "var") else {}
    ref = getattr(np, name)(a, axis=axis, keepdims=keepdims, **kw)
    check(getattr(xp, name)(fdt(a), axis=axis, keepdims=keepdims, **kw), ref, rtol=1e-10)


def test_reduction_dtypes():
    ai = rnd((3, 4), np.int32, -5, 5)
    check(xp.sum(fdt(ai)), np.sum(ai, dtype=np.int64))
    check(xp.prod(fdt(ai), axis=0), np.prod(ai, axis=0, dtype=np.int64))
    check(xp.sum(fdt(ai), dtype=xp.float64), np.sum(ai, dtype=np.float64))
    b = rnd((3, 4), np.bool_)
    check(xp.sum(fdt(b), axis=1), np.sum(b, axis=1, dtype=np.int64))
    a = rnd((3, 4))
    check(xp.std(fdt(a), axis=1, correction=0.0), np.std(a, axis=1), rtol=1e-12)


@pytest.mark.parametrize("name", ["all", "any"])
@pytest.mark.parametrize("axis", [None, 1, (0, 1)])
def test_all_any(name, axis):
    b = rnd((3, 4, 2), np.bool_)
    check(getattr(xp, name)(fdt(b), axis=axis), getattr(np, name)(b, axis=axis))
    check(getattr(xp, name)(fdt(b), axis=axis, keepdims=True), getattr(np, name)(b, axis=axis, keepdims=True))


def test_cumulative_sum():
    a = rnd((3, 4))
    check(xp.cumulative_sum(fdt(a), axis=1), np.cumulative_sum(a, axis=1), rtol=1e-12)
    check(xp.cumulative_sum(fdt(a), axis=0, include_initial=True), np.cumulative_sum(a, axis=0, include_initial=True),
          rtol=1e-12)
    v = rnd((6,), np.int32, -5, 5)
    check(xp.cumulative_sum(fdt(v)), np.cumulative_sum(v, dtype=np.int64))
    with pytest.raises(ValueError):
        xp.cumulative_sum(fdt(a))


@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_argmin(name):
    a = rnd((4, 5))
    for axis in (None, 0, 1):
        for keepdims in (False, True):
            check(getattr(xp, name)(fdt(a), axis=axis, keepdims=keepdims),
                  getattr(np, name)(a, axis=axis, keepdims=keepdims))


def test_nonzero_where_searchsorted():
    a = rnd((4, 5), np.int64, -1, 1)
    check(xp.nonzero(fdt(a)), np.nonzero(a))
    with pytest.raises(ValueError):
        xp.nonzero(fdt(np.array(1.0)))
    c, x, y = rnd((4, 1), np.bool_), rnd((4, 5)), rnd((5,))
    check(xp.where(fdt(c), fdt(x), fdt(y)), np.where(c, x, y))
    check(xp.where(fdt(c), fdt(x), 0.0), np.where(c, x, 0.0))
    check(xp.where(fdt(c), fdt(x.astype(np.float32)), fdt(y)), np.where(c, x.astype(np.float32), y))
    s = np.sort(rnd((9,), np.int64, 0, 5)).astype(np.float64)
    q = rnd((3, 4), np.int64, -1, 6).astype(np.float64)
    for side in ("left", "right"):
        check(xp.searchsorted(fdt(s), fdt(q), side=side), np.searchsorted(s, q, side=side))
    perm = rng.permutation(9)
    unsorted = s[np.argsort(perm)]
    check(xp.searchsorted(fdt(unsorted), fdt(q), sorter=fdt(np.argsort(unsorted, kind="stable"))),
          np.searchsorted(unsorted, q, sorter=np.argsort(unsorted, kind="stable")))


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("axis", [-1, 0])
def test_sort_argsort(descending, axis):
    a = rnd((6, 7), np.int64, 0, 3).astype(np.float64)  # many ties: stability matters
    ref_idx = np.argsort(-a if descending else a, axis=axis, kind="stable")
    check(xp.argsort(fdt(a), axis=axis, descending=descending), ref_idx)
    check(xp.sort(fdt(a), axis=axis, descending=descending), np.take_along_axis(a, ref_idx, axis=axis))


def test_unique():
    a = rnd((4, 6), np.int64, 0, 5)
    va, ia, inv, ca = np.unique_all(a)
    out = xp.unique_all(fdt(a))
    check(out.values, va)
    check(out.inverse_indices, inv)
    check(out.counts, ca)
    check(out.indices, ia)  # first occurrences, as numpy returns them
    check(xp.unique_values(fdt(a)), np.sort(np.unique_values(a)))  # numpy leaves its order open
    check(tuple(xp.unique_counts(fdt(a))), tuple(np.unique_counts(a)))
    check(tuple(xp.unique_inverse(fdt(a))), tuple(np.unique_inverse(a)))
    e = xp.unique_all(xp.zeros((0,)))
    assert tuple(e.values.shape) == (0,) and tuple(e.counts.shape) == (0,)


# ---- the namespace, the array object, coverage ------------------------------------------------------
def test_namespace_and_info():
    t = fd.ones(2, 3)
    assert t.__array_namespace__() is xp and t.__array_namespace__(api_version="2023.12") is xp
    with pytest.raises(ValueError):
        t.__array_namespace__(api_version="2099.01")
    assert xp.__array_api_version__ == "2023.12"
    info = xp.__array_namespace_info__()
    assert info.capabilities() == {"boolean indexing": True, "data-dependent shapes": True}
    assert info.default_device() == fd.device("cpu") and fd.device("cpu") in info.devices()
    assert info.default_dtypes()["integral"] == xp.int64 and info.default_dtypes()["indexing"] == xp.int64
    assert set(info.dtypes(kind="real floating").values()) == {xp.float32, xp.float64}
    assert set(info.dtypes(kind="integral")) == {"int8", "int16", "int32", "int64"}
    assert xp.result_type(xp.int8, xp.int16) == xp.int16 and xp.result_type(xp.int8, xp.int64) == xp.int64
    assert xp.iinfo(xp.int8).bits == 8 and xp.iinfo(xp.int16).min == -32768
    assert xp.bitwise_right_shift(xp.asarray([-128, 64], dtype=xp.int8), xp.asarray([9, 2], dtype=xp.int8)).tolist() == [-1, 16]
    assert (xp.e, xp.pi, xp.inf) == (math.e, math.pi, math.inf) and math.isnan(xp.nan) and xp.newaxis is None
    assert t.to_device("cpu").device == fd.device("cpu")
    assert t.mT.shape == (3, 2) and t.ndim == 2 and t.device == fd.device("cpu")


def test_array_object_semantics():
    a = rnd((3, 4))
    t = fdt(a)
    check(t[1:, ::2], a[1:, ::2])
    check(t[..., None, 0], a[..., None, 0])
    check(t[fdt(a > 0)], a[a > 0])
    u = xp.asarray(a, copy=True)
    u[0, :] = 5.0
    a2 = a.copy()
    a2[0, :] = 5.0
    check(u, a2)
    check(-t, -a)
    check(abs(t), abs(a))
    check(t @ fdt(a.T), a @ a.T, rtol=1e-12)
    check(2 ** fdt(a), 2 ** a, rtol=1e-12)
    assert float(t[0, 0]) == a[0, 0] and int(fdt(np.array(3))) == 3 and bool(fdt(np.array(True)))


def coverage():
    main_present = [n for n in STANDARD if callable(getattr(xp, n, None))]
    linalg_present = [n for n in LINALG if callable(getattr(xp.linalg, n, None))]
    fft_present = [n for n in FFT if callable(getattr(getattr(xp, "fft", None), n, None))]
    return main_present, linalg_present, fft_present


def test_coverage_is_documented():
    main_present, linalg_present, fft_present = coverage()
    assert sorted(set(STANDARD) - set(main_present)) == []
    assert set(LINALG) - set(linalg_present) == MISSING_LINALG
    assert fft_present == []
    assert all(not hasattr(xp, d) for d in DTYPES_MISSING)
    total = len(STANDARD) + len(LINALG) + len(FFT)
    have = len(main_present) + len(linalg_present)
    print(f"\narray API 2023.12: main namespace {len(main_present)}/{len(STANDARD)}, linalg "
          f"{len(linalg_present)}/{len(LINALG)}, fft 0/{len(FFT)}; all {have}/{total} ({100 * have / total:.1f}%)")


ECOSYSTEM = r"""
import numpy as np, fastdl as fd
from sklearn import config_context
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.metrics import r2_score
import scipy.special as sp, scipy.stats as st
rng = np.random.default_rng(0)
X = rng.normal(size=(40, 3))
Xt = fd.from_numpy(X)
with config_context(array_api_dispatch=True):
    out = MinMaxScaler().fit_transform(Xt)
    assert isinstance(out, fd.Tensor), type(out)
    np.testing.assert_allclose(out.numpy(), MinMaxScaler().fit_transform(X), rtol=1e-12)
    out = StandardScaler().fit_transform(Xt)
    assert isinstance(out, fd.Tensor)
    np.testing.assert_allclose(out.numpy(), StandardScaler().fit_transform(X), rtol=1e-12)
    assert abs(r2_score(Xt[:, 0], Xt[:, 1]) - r2_score(X[:, 0], X[:, 1])) < 1e-12
    # estimators built on xp.linalg.svd / eigh (fastdl.linalg)
    from sklearn.decomposition import PCA
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    out = PCA(n_components=2, svd_solver="full").fit_transform(Xt)
    assert isinstance(out, fd.Tensor)
    want = PCA(n_components=2, svd_solver="full").fit_transform(X)
    np.testing.assert_allclose(np.abs(out.numpy()), np.abs(want), rtol=1e-9, atol=1e-12)  # columns up to sign
    y = (X[:, 0] + 0.3 * X[:, 1] > 0).astype(np.int64)
    got = LinearDiscriminantAnalysis().fit(Xt, fd.from_numpy(y)).predict(Xt)
    np.testing.assert_array_equal(np.asarray(got.tolist()), LinearDiscriminantAnalysis().fit(X, y).predict(X))
for f, kw in ((sp.logsumexp, {"axis": 0}), (st.zscore, {"axis": 0}), (sp.expit, {})):
    out = f(Xt, **kw)
    assert isinstance(out, fd.Tensor), (f, type(out))
    np.testing.assert_allclose(out.numpy(), f(X, **kw), rtol=1e-12)
print("ok")
"""


def test_scipy_sklearn_accept_fastdl_tensors():
    """scikit-learn's array API mode and scipy (SCIPY_ARRAY_API=1, read at import, hence the
    subprocess) run on fastdl tensors and return fastdl tensors, estimators needing xp.linalg.svd
    (PCA, LinearDiscriminantAnalysis) included."""
    pytest.importorskip("sklearn")
    pytest.importorskip("scipy")
    pytest.importorskip("array_api_compat")
    import os
    import subprocess
    import sys
    env = dict(os.environ, SCIPY_ARRAY_API="1")
    r = subprocess.run([sys.executable, "-c", ECOSYSTEM], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr
