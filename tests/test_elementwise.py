"""Elementwise unary/binary ops: every ISA path against numpy float64, on odd sizes,
strided and broadcast inputs; gradients against PyTorch (float64) and finite differences."""
import math

import numpy as np
import pytest

import fastdl as fd
from checks import assert_close, fd_grads, strided, torch_grads

UNARY = {
    "neg": (np.negative, None), "exp": (np.exp, None), "log": (np.log, "pos"), "sqrt": (np.sqrt, "pos"),
    "rsqrt": (lambda x: 1 / np.sqrt(x), "pos"), "abs": (np.abs, None), "sin": (np.sin, None), "cos": (np.cos, None),
    "tanh": (np.tanh, None), "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), None), "relu": (lambda x: np.maximum(x, 0), None),
    "silu": (lambda x: x / (1 + np.exp(-x)), None), "softplus": (lambda x: np.where(x > 20, x, np.log1p(np.exp(x))), None),
    "log1p": (np.log1p, "pos"), "expm1": (np.expm1, None), "reciprocal": (lambda x: 1 / x, "pos"),
    "square": (np.square, None), "erf": (np.vectorize(math.erf), None), "atan": (np.arctan, None),
    "sinh": (np.sinh, None), "cosh": (np.cosh, None), "log2": (np.log2, "pos"), "exp2": (np.exp2, None),
    "gelu": (lambda x: 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2))), None),
}
BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "maximum": np.maximum,
    "minimum": np.minimum, "atan2": np.arctan2, "pow": None,
}


def _data(rng, shape, domain):
    x = rng.standard_normal(shape) * 2
    return np.abs(x) + 0.1 if domain == "pos" else x


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("dtype", [fd.float32, fd.float64])
@pytest.mark.parametrize("layout", ["contig", "transposed", "stepped"])
def test_unary_matches_float64(name, dtype, layout, isa, rng):
    ref, domain = UNARY[name]
    x = _data(rng, (37, 29), domain)
    t = strided(x, dtype, kind=layout)
    got = getattr(fd, name)(t)
    assert tuple(got.shape) == x.shape and got.dtype == dtype
    rtol = 4e-6 if dtype == fd.float32 else 1e-12
    assert_close(got, ref(x.astype(np.float32).astype(np.float64) if dtype == fd.float32 else x), rtol=rtol,
                 atol=2e-6 if dtype == fd.float32 else 1e-13)


def test_unary_large_threaded_matches(isa, rng):
    x = rng.standard_normal(300_001).astype(np.float32)
    for name in ("exp", "tanh", "sigmoid", "gelu"):
        got = getattr(fd, name)(fd.tensor(x)).numpy().astype(np.float64)
        np.testing.assert_allclose(got, UNARY[name][0](x.astype(np.float64)), rtol=4e-6, atol=2e-6)


def test_binary_large_streamed_matches(isa, rng):
    """Outputs past half the shared cache take the streaming-store loop (add / sub / mul / div,
    contiguous float32): an odd length, so each thread's share ends in a scalar tail, and an
    output not 64-byte aligned (a view one element in), which takes the cached loop."""
    n = fd._C.cpu_info()["l3"] // 4 + 1001  # elements: an output just past the whole cache
    a = rng.standard_normal(n + 1).astype(np.float32)
    b = rng.standard_normal(n + 1).astype(np.float32) + 3.0
    fa, fb = fd.tensor(a), fd.tensor(b)
    for name, f in (("add", np.add), ("sub", np.subtract), ("mul", np.multiply), ("div", np.divide)):
        want = f(a.astype(np.float64), b.astype(np.float64))
        np.testing.assert_allclose(getattr(fd, name)(fa, fb).numpy(), want, rtol=2e-7, atol=1e-7, err_msg=name)
        out = fd.empty(n + 1)[1:]  # offset by one element: misaligned
        getattr(fd, name)(fa[1:], fb[1:], out=out)
        np.testing.assert_allclose(out.numpy(), want[1:], rtol=2e-7, atol=1e-7, err_msg=name)


def test_erf_float32_within_two_ulp(isa):
    """float32 erf (its own polynomial forms, not libm): within 2 ulp of float64 erf over both
    forms and their seam (0.875), the tail where it rounds to 1 (3.925), tiny and denormal
    inputs, signs, and inf / NaN."""
    x = np.concatenate([np.linspace(-4.5, 4.5, 200_001), np.logspace(-44, 0.7, 20_000), -np.logspace(-44, 0.7, 20_000),
                        np.nextafter(np.float32(0.875), np.float32([0, 1])), [3.925, -3.925, 0.0, -0.0]]).astype(np.float32)
    got = fd.erf(fd.tensor(x)).numpy()
    want = np.array([math.erf(v) for v in x.astype(np.float64)])
    ulp = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    assert (np.abs(got - want) / ulp).max() <= 2.0
    assert np.array_equal(np.signbit(got), np.signbit(x))
    edge = fd.erf(fd.tensor(np.float32([np.inf, -np.inf, np.nan]))).numpy()
    assert edge[0] == 1.0 and edge[1] == -1.0 and np.isnan(edge[2])


_F32_MATH = {  # op: (float64 reference, inputs)
    "sin": (np.sin, (-8192, 8192)), "cos": (np.cos, (-8192, 8192)), "tan": (np.tan, (-100, 100)),
    "log1p": (np.log1p, (-0.999, 10)), "expm1": (np.expm1, (-30, 88.7)), "exp2": (np.exp2, (-149, 127.9)),
    "log2": (np.log2, (1e-3, 1e3)), "log10": (np.log10, (1e-3, 1e3)), "sinh": (np.sinh, (-89, 89)),
    "cosh": (np.cosh, (-89, 89)), "atanh": (np.arctanh, (-0.9999, 0.9999)), "asin": (np.arcsin, (-1, 1)),
    "acos": (np.arccos, (-1, 1)), "atan": (np.arctan, (-100, 100))}


@pytest.mark.parametrize("name", sorted(_F32_MATH))
def test_float32_math_within_four_ulp(name, isa, rng):
    """The float32 transcendental ops run fastdl's vectorised forms (vm::*_f), not libm: within 4
    ulp of float64 over their range, on tiny and denormal inputs (log / exp ranges: the whole
    exponent range), and exact at the edges (inf, NaN, +-0, the domain's ends); sin / cos / tan
    past the vector range reduction's bound (8192) take libm block by block, in place too."""
    ref, (lo, hi) = _F32_MATH[name]
    x = [np.linspace(lo, hi, 100_001), rng.uniform(lo, hi, 20_000)]
    tiny = np.logspace(-44, -1, 2000)
    if lo < 0 or name not in ("log2", "log10"):
        x += [tiny, -tiny] if lo < 0 else [tiny]
    if name in ("log1p", "log2", "log10"):
        x.append(np.logspace(-44, 38, 2000))
    if name in ("sin", "cos", "tan"):
        x.append(rng.uniform(-1e7, 1e7, 3000))  # past the bound, mixed with in-range blocks
    x = np.concatenate(x).astype(np.float32)
    got = getattr(fd, name)(fd.tensor(x)).numpy().astype(np.float64)
    want = ref(x.astype(np.float64))
    fin = np.isfinite(want) & (np.abs(want) < 3.4e38)
    ulp = np.spacing(np.abs(want[fin]).astype(np.float32)).astype(np.float64)
    err = np.abs(got[fin] - want[fin]) / ulp
    assert err.max() <= 4.0, f"{name}: {err.max():.2f} ulp at x = {x[fin][err.argmax()]!r}"
    edges = np.float32([np.inf, -np.inf, np.nan, 0.0, -0.0, 1.0, -1.0, 89.5, -89.5, -1.0001, 1.0001])
    with np.errstate(all="ignore"):
        want_e = ref(edges.astype(np.float64)).astype(np.float32)
    got_e = getattr(fd, name)(fd.tensor(edges)).numpy()
    np.testing.assert_array_equal(np.isnan(got_e), np.isnan(want_e), err_msg=name)
    ok = ~np.isnan(want_e)
    np.testing.assert_allclose(got_e[ok], want_e[ok], rtol=4e-7, atol=0, err_msg=name)
    np.testing.assert_array_equal(np.signbit(got_e[ok]), np.signbit(want_e[ok]), err_msg=name)
    zero = getattr(fd, name)(fd.tensor(np.float32([-0.0, 0.0, 0.25]))).numpy()  # -0 in a vector block
    with np.errstate(all="ignore"):
        zwant = ref(np.float64([-0.0, 0.0, 0.25])).astype(np.float32)
    np.testing.assert_array_equal(np.signbit(zero[:2]), np.signbit(zwant[:2]), err_msg=name)
    if name in ("sin", "cos", "tan"):
        t = fd.tensor(x)
        getattr(t, name + "_")()  # in place: each block checked before it is written
        np.testing.assert_array_equal(t.numpy(), got.astype(np.float32))


def test_exp_log_extremes():
    x = fd.tensor([-200.0, -104.0, -87.5, -1e-30, 0.0, 88.0, 89.0, float("inf"), float("-inf"), float("nan")])
    e = fd.exp(x).numpy()
    want = np.exp(np.array([-200.0, -104.0, -87.5, -1e-30, 0.0, 88.0, 89.0, np.inf, -np.inf, np.nan], dtype=np.float32))
    np.testing.assert_allclose(e, want, rtol=4e-6, atol=1e-44)
    lg = fd.log(fd.tensor([0.0, 1e-40, 1e-30, 1.0, 3e38, float("inf"), -1.0, float("nan")])).numpy()
    with np.errstate(all="ignore"):
        want = np.log(np.array([0.0, 1e-40, 1e-30, 1.0, 3e38, np.inf, -1.0, np.nan], dtype=np.float32))
    np.testing.assert_allclose(lg, want, rtol=4e-6)
    np.testing.assert_allclose(fd.tanh(fd.tensor([-30.0, -1e-7, 0.29, 0.31, 30.0])).numpy(),
                               np.tanh(np.float32([-30.0, -1e-7, 0.29, 0.31, 30.0])), rtol=4e-6)


def test_transcendental_vector_lanes_at_the_edges(isa, rng):
    # exp, tanh, sigmoid and silu run explicit-vector loops on contiguous float32 rows (gelu its
    # auto-vectorised scalar form): the edge values go through every lane position of those
    # loops and the scalar tail
    edges = [-200.0, -104.0, -103.9, -95.0, -88.5, -87.5, -87.3, -86.5, -44.0, -43.0, -20.0, -9.2, -0.31, -0.3,
             -0.29, -1e-7, -1e-30, -0.0, 0.0, 1e-30, 1e-7, 0.29, 0.3, 0.31, 9.2, 17.0, 20.0, 43.0, 44.0, 86.5,
             88.0, 88.7, 88.8, 89.0, 104.0, np.inf, -np.inf, np.nan]
    x = np.concatenate([np.roll(edges, k) for k in range(17)] + [rng.standard_normal(101) * 30]).astype(np.float32)
    x64 = x.astype(np.float64)
    with np.errstate(all="ignore"):
        sig = 1 / (1 + np.exp(-x64))
        erf = np.vectorize(math.erf)(x64 / math.sqrt(2))
        want = {"exp": np.exp(x64), "tanh": np.tanh(x64), "sigmoid": sig, "silu": x64 * sig,
                "gelu": 0.5 * x64 * (1 + erf)}
    fin = np.isfinite(x)
    for name, ref in want.items():
        got = getattr(fd, name)(fd.tensor(x)).numpy().astype(np.float64)
        ref = ref.astype(np.float32).astype(np.float64)
        assert np.array_equal(np.isnan(got), np.isnan(x) | (np.isnan(ref) & ~np.isnan(x))), name
        # results below FLT_MIN: exp keeps its denormals; sigmoid's may flush to 0 (x < -87.3)
        tiny = 1e-44 if name in ("exp", "tanh") else 1.2e-38 * np.maximum(1, np.abs(x64))
        if name == "gelu":  # erf to 1.5e-7 absolute (Abramowitz & Stegun 7.1.26), scaled by x / 2
            tiny = 1e-7 * np.abs(x64) + 1e-38
        with np.errstate(all="ignore"):
            err = np.abs(got - ref)[fin]
            bad = err > (tiny + 2e-6 * np.abs(ref))[fin]
        assert not bad.any(), (name, x[fin][bad][:5], got[fin][bad][:5], ref[fin][bad][:5])
        inf = np.isinf(x) & ~np.isnan(ref)
        assert np.array_equal(got[inf], ref[inf]), name
    t, s = fd.tanh(fd.tensor(x)).numpy(), fd.sigmoid(fd.tensor(x)).numpy()
    far = np.abs(x) >= 9.2
    assert np.all(np.abs(t[far]) == 1.0) and np.all(np.sign(t[far]) == np.sign(x[far]))
    assert np.all(s[x >= 17.0] == 1.0) and np.all(s[x <= -88.8] == 0.0)
    e = fd.exp(fd.tensor(x)).numpy()
    assert np.all(e[x <= -104] == 0.0) and np.all(e[x >= 88.8] == np.inf)


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("dtype", [fd.float32, fd.float64])
@pytest.mark.parametrize("shapes", [((17, 33), (17, 33)), ((17, 33), (33,)), ((5, 1, 7), (1, 3, 1)), ((), (4, 3)), ((9, 1), ())])
def test_binary_broadcast(name, dtype, shapes, isa, rng):
    a = rng.standard_normal(shapes[0])
    b = rng.standard_normal(shapes[1])
    if name == "pow":
        a, ref = np.abs(a) + 0.5, np.power
    else:
        ref = BINARY[name]
    got = getattr(fd, name)(strided(a, dtype, kind="stepped" if a.ndim else "contig"), fd.tensor(b, dtype=dtype))
    if dtype == fd.float32:
        a, b = a.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64)
    assert_close(got, ref(a, b), rtol=5e-6 if dtype == fd.float32 else 1e-12, atol=1e-6 if dtype == fd.float32 else 1e-13)


def test_operators_and_scalars(rng):
    a = rng.standard_normal((4, 5)).astype(np.float32)
    t = fd.tensor(a)
    assert_close(t + 1, a + 1, fd.float32)
    assert_close(2.5 - t, 2.5 - a, fd.float32)
    assert_close(t * t / 3, a * a / 3, fd.float32)
    assert_close(t ** 2, a ** 2, fd.float32)
    assert_close(2 ** t, 2 ** a.astype(np.float64), fd.float32, rtol=1e-5)
    assert_close(-t, -a, fd.float32)
    assert_close(abs(t), np.abs(a), fd.float32)
    assert ((t > 0) == fd.tensor(a > 0)).all().item()
    i = fd.tensor([[7, -7], [3, -3]])
    np.testing.assert_array_equal((i // 2).numpy(), np.array([[7, -7], [3, -3]]) // 2)
    np.testing.assert_array_equal((i % 3).numpy(), np.array([[7, -7], [3, -3]]) % 3)
    np.testing.assert_allclose((i / 2).numpy(), np.array([[3.5, -3.5], [1.5, -1.5]]))
    assert (i / 2).dtype == fd.float32


@pytest.mark.parametrize("a_dt,b_dt,want", [
    (fd.int32, fd.int64, fd.int64), (fd.int64, fd.float32, fd.float32), (fd.float16, fd.bfloat16, fd.float32),
    (fd.float32, fd.float64, fd.float64), (fd.bool, fd.int32, fd.int32), (fd.float16, fd.float32, fd.float32),
])
def test_type_promotion(a_dt, b_dt, want):
    a = fd.ones(3, dtype=a_dt)
    b = fd.ones(3, dtype=b_dt)
    assert (a + b).dtype == want


def test_scalar_and_zero_dim_promotion():
    i = fd.tensor([1, 2, 3])
    assert (i + 1).dtype == fd.int64
    assert (i + 1.5).dtype == fd.float32
    assert (i * 2.0).dtype == fd.float32
    f16 = fd.ones(3, dtype=fd.float16)
    assert (f16 + 1.0).dtype == fd.float16
    assert (f16 + fd.tensor(1.0, dtype=fd.float64)).dtype == fd.float16  # 0-dim of same category
    assert (i + fd.tensor(1.5, dtype=fd.float64)).dtype == fd.float64   # 0-dim of higher category
    assert (fd.tensor([True, False]) + 1).dtype == fd.int64


def test_half_types_round_trip(rng):
    x = rng.standard_normal(1000).astype(np.float32)
    h = fd.tensor(x).half()
    np.testing.assert_allclose(h.float().numpy(), x.astype(np.float16).astype(np.float32))
    b = fd.tensor(x).bfloat16()
    assert b.dtype == fd.bfloat16
    np.testing.assert_allclose(b.float().numpy(), x, rtol=8e-3)
    np.testing.assert_allclose((h * 2).float().numpy(), (x.astype(np.float16) * 2).astype(np.float32), rtol=1e-3)


def test_where_clamp_compare(isa, rng):
    a = rng.standard_normal((6, 7))
    b = rng.standard_normal((7,))
    c = a > 0.3
    got = fd.where(fd.tensor(c), fd.tensor(a), fd.tensor(b))
    np.testing.assert_allclose(got.numpy(), np.where(c, a.astype(np.float32), b.astype(np.float32)))
    np.testing.assert_allclose(fd.tensor(a).clamp(-0.5, 0.25).numpy(), np.clip(a, -0.5, 0.25).astype(np.float32))
    nan = fd.tensor([float("nan"), 1.0]).clamp(0, 0.5).numpy()
    assert np.isnan(nan[0]) and nan[1] == 0.5


@pytest.mark.parametrize("name", ["exp", "tanh", "sigmoid", "relu", "gelu", "silu", "sqrt", "log", "sin", "abs", "softplus",
                                  "rsqrt", "erf", "expm1", "log1p", "reciprocal", "atan", "square"])
def test_unary_grad_vs_torch(name, torch, rng):
    x = _data(rng, (5, 6), UNARY[name][1])
    up = rng.standard_normal((5, 6))
    tfn = {"gelu": torch.nn.functional.gelu, "silu": torch.nn.functional.silu, "softplus": torch.nn.functional.softplus}.get(
        name, getattr(torch, name, None))
    want_out, (want_g,) = torch_grads(torch, tfn, [x], up)
    out, (g,) = fd_grads(getattr(fd, name), [x], up)
    assert_close(out, want_out)
    assert_close(g, want_g, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "pow", "maximum", "minimum", "atan2"])
def test_binary_grad_broadcast_vs_torch(name, torch, rng):
    a = np.abs(rng.standard_normal((4, 1, 5))) + 0.5
    b = rng.standard_normal((3, 1)) + (2.0 if name == "div" else 0.0)
    up = rng.standard_normal((4, 3, 5))
    want_out, want_g = torch_grads(torch, getattr(torch, name), [a, b], up)
    out, g = fd_grads(getattr(fd, name), [a, b], up)
    assert_close(out, want_out)
    for x, y in zip(g, want_g):
        assert_close(x, y, rtol=1e-10, atol=1e-12)


def test_gradcheck_composite(rng):
    x = fd.tensor(rng.standard_normal((3, 4)), dtype=fd.float64, requires_grad=True)
    y = fd.tensor(rng.standard_normal((4,)), dtype=fd.float64, requires_grad=True)
    assert fd.autograd.gradcheck(lambda a, b: (a * b).tanh() / (1 + b.exp()) - a.sigmoid() ** 2, [x, y])


def test_integer_rounding_is_identity_and_bool_sign_stays_bool():
    x = fd.tensor([3, -2, 7], dtype=fd.int32)
    for op in ("floor", "ceil", "round", "trunc"):
        r = getattr(x, op)()
        assert r.dtype == fd.int32 and r.tolist() == [3, -2, 7]
    assert fd.tensor([True, False]).sign().dtype == fd.bool
    assert fd.tensor([True, False]).square().dtype == fd.int64
    with pytest.raises(TypeError, match="neg"):
        -fd.tensor([True])


def test_bool_arithmetic_follows_torch():
    a, b = fd.tensor([True, False, True]), fd.tensor([True, True, False])
    assert (a + b).dtype == fd.bool and (a + b).tolist() == [True, True, True]
    assert (a * b).tolist() == [True, False, False] and (a * True).dtype == fd.bool
    assert fd.maximum(a, b).dtype == fd.bool
    for bad in (lambda: a - b, lambda: fd.tensor(3) - True, lambda: a % b):
        with pytest.raises(TypeError):
            bad()
    assert (fd.tensor([1, 2]) + True).dtype == fd.int64


def test_integer_division_by_zero_raises_and_min_over_minus_one_does_not_trap():
    with pytest.raises(ValueError, match="floor_divide: integer division by zero"):
        fd.tensor([5, 6]) // fd.tensor([1, 0])
    with pytest.raises(ValueError, match="remainder"):
        fd.tensor([5], dtype=fd.int32) % 0
    assert (fd.tensor([-2 ** 63]) // -1).tolist() == [-2 ** 63]
    assert (fd.tensor([-2 ** 31], dtype=fd.int32) % -1).tolist() == [0]
    with pytest.raises(ValueError, match="negative integer powers"):
        fd.tensor([2]) ** -1


def test_where_with_python_scalars_promotes_like_torch():
    c = fd.tensor([True, False])
    assert fd.where(c, 1.5, fd.tensor([1, 2])).dtype == fd.float32
    assert fd.where(c, fd.tensor([True, True]), -2).dtype == fd.int64
    assert fd.where(c, 1, 2).dtype == fd.int64 and fd.where(c, 1, 2.5).tolist() == [1.0, 2.5]
    assert fd.where(c, fd.tensor([1.0], dtype=fd.float64), 2).dtype == fd.float64


def test_unary_on_bool_like_torch_and_empty_int_division_ok():
    with pytest.raises(TypeError, match="relu"):
        fd.tensor([True]).relu()
    assert (fd.zeros(0, 3, dtype=fd.int32) % 0).shape == (0, 3)  # nothing is divided


@pytest.mark.parametrize("e", [2, 0.5, -1, -0.5, 3, 2.5])
@pytest.mark.parametrize("dtype", [fd.float32, fd.float64, fd.bfloat16], ids=["f32", "f64", "bf16"])
def test_pow_by_common_exponents(rng, e, dtype):
    """x ** 2, 0.5, -1, -0.5 and 3 take their own kernels (square, sqrt, reciprocal, rsqrt):
    same values, gradients and dtypes as the general pow, on a non-contiguous input."""
    base = rng.uniform(0.3, 2.0, (9, 13))
    if e in (2, -1, 3):
        base = base * rng.choice([-1.0, 1.0], base.shape)  # negative bases where the power is defined
    x = fd.tensor(base, dtype=dtype).T.requires_grad_()
    y = x ** e
    assert y.dtype == dtype and y.shape == (13, 9)
    xv = x.detach().to(fd.float64).numpy()
    tol = 2e-2 if dtype == fd.bfloat16 else 1e-5 if dtype == fd.float32 else 1e-12
    np.testing.assert_allclose(y.detach().to(fd.float64).numpy(), xv ** e, rtol=tol, atol=tol)
    g = rng.standard_normal((13, 9))
    y.backward(fd.tensor(g, dtype=dtype))
    gv = fd.tensor(g, dtype=dtype).to(fd.float64).numpy()
    np.testing.assert_allclose(x.grad.to(fd.float64).numpy(), gv * e * xv ** (e - 1), rtol=5 * tol, atol=5 * tol)
    assert (fd.tensor([1, 2, 3]) ** 2).dtype == fd.int64


def test_cube_is_one_fused_op_with_second_derivative(rng):
    """x ** 3 runs one kernel (PowBackward0 on its input, no square-then-multiply intermediate) and
    differentiates twice: d2/dx2 x^3 = 6 x."""
    x = fd.tensor(rng.standard_normal(7)).requires_grad_()
    y = x ** 3
    assert y.grad_fn.name() == "PowBackward0"
    assert [n.name() for n, _ in y.grad_fn.next_functions if n is not None] == ["AccumulateGrad"]
    (g,) = fd.autograd.grad(y.sum(), x, create_graph=True)
    (h,) = fd.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), 6 * x.detach().numpy(), rtol=1e-12)
    assert (fd.tensor([-2, 3]) ** 3).tolist() == [-8, 27]
    special = (fd.tensor([float("nan"), float("inf"), -float("inf"), -0.0]) ** 3).numpy()
    assert np.isnan(special[0]) and special[1] == np.inf and special[2] == -np.inf and np.signbit(special[3])


def test_results_keep_a_shared_permuted_layout(rng, torch):
    """Elementwise results take their operands' layout when they share a dense permuted one (a
    transpose, a permute) or the other operand is one element, as PyTorch's do: the same strides
    as PyTorch's, right values, and gradients; mixed layouts give a contiguous result."""
    a, b = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 4, 5))
    perm = (2, 0, 1)
    x, y = fd.tensor(a).permute(*perm), fd.tensor(b).permute(*perm)
    tx, ty = torch.from_numpy(a).permute(*perm), torch.from_numpy(b).permute(*perm)
    for got, want in ((x + y, tx + ty), (x * 2.0, tx * 2.0), (x.exp(), tx.exp()), (x < y, tx < ty),
                      (fd.where(x > 0, x, y), torch.where(tx > 0, tx, ty))):
        assert got.stride() == want.stride()
        # exact but for exp, whose last bit PyTorch's vectorised float64 exp may round otherwise
        # (it differed by 1 ulp on a Xeon of the Emerald Rapids class, not on AMD Zen 4)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=4.5e-16, atol=0)
    mixed = x + fd.tensor(np.ascontiguousarray(b.transpose(perm)))
    assert mixed.is_contiguous()
    np.testing.assert_array_equal(mixed.numpy(), a.transpose(perm) + b.transpose(perm))
    z = (x + y).reshape(-1)  # not viewable: reshape copies, as PyTorch's
    np.testing.assert_array_equal(z.numpy(), (a.transpose(perm) + b.transpose(perm)).reshape(-1))
    xl = fd.tensor(a, requires_grad=True)
    ((xl.permute(*perm) * y).sin()).sum().backward()
    np.testing.assert_allclose(xl.grad.numpy(), (np.cos(a.transpose(perm) * b.transpose(perm)) * b.transpose(perm))
                               .transpose(np.argsort(perm)), rtol=1e-12)
    c = x.clamp(-0.5, 0.5)
    assert c.stride() == tx.clamp(-0.5, 0.5).stride()
    np.testing.assert_array_equal(c.numpy(), np.clip(a.transpose(perm), -0.5, 0.5))


@pytest.mark.parametrize("name", ["fmod", "remainder", "floor_divide"])
def test_float32_fmod_family_exact(name, isa, rng):
    """float32 fmod / remainder / floor_divide take a vectorised exact fmod (double arithmetic)
    on blocks whose quotients are below 2^22, libm elsewhere: equal to numpy's float32 results
    (exact fmod, CPython's floor division) on quotients near integers, exact multiples, signed
    zeros, huge quotients, zero / infinite / NaN operands mixed into the same blocks; tensor and
    scalar divisors, strided operands."""
    npf = {"fmod": np.fmod, "remainder": np.remainder, "floor_divide": np.floor_divide}[name]
    n = 5000
    a = (rng.standard_normal(n) * 10.0 ** rng.integers(-3, 4, n)).astype(np.float32)
    b = (rng.standard_normal(n) * 10.0 ** rng.integers(-2, 3, n)).astype(np.float32)
    a[:500] = b[:500] * rng.integers(-2000, 2000, 500)  # exact multiples, zeros of both signs
    a[500:600] = np.nextafter(a[:100], np.float32(np.inf))  # just past them
    a[600:602], b[602:604] = [-0.0, 0.0], [0.0, -0.0]
    a[3000:3010] = [np.inf, -np.inf, np.nan, 1e30, -1e30, 3.0, 5.0, -7.0, 1e-30, 8.0]
    b[3000:3010] = [2.0, 3.0, 1.0, 1e-5, 3.0, np.inf, -np.inf, np.nan, 1e20, 0.5]
    fa, fb = fd.tensor(a), fd.tensor(b)
    with np.errstate(all="ignore"):
        want = npf(a, b)
        np.testing.assert_array_equal(getattr(fd, name)(fa, fb).numpy(), want)
        got = getattr(fd, name)(fa, 0.7).numpy()
        want7 = npf(a, np.float32(0.7))
        np.testing.assert_array_equal(got, want7)
        np.testing.assert_array_equal(getattr(fd, name)(fa[::2], fb[1::2]).numpy(), npf(a[::2], b[1::2]))
    # zeros' signs: as numpy's, except remainder's, where PyTorch's (a zero fmod keeps a's sign,
    # numpy's and Python's take b's)
    nz = (want != 0) | (name != "remainder")
    assert np.array_equal(np.signbit(getattr(fd, name)(fa, fb).numpy())[nz], np.signbit(want)[nz])
    nz7 = (want7 != 0) | (name != "remainder")
    assert np.array_equal(np.signbit(got)[nz7], np.signbit(want7)[nz7])


def test_hardtanh_relu6_gradient_selects_like_torch(torch):
    """hardtanh / relu6: a clamp forward and a select backward (strictly inside the bounds), so an
    infinite upstream gradient outside gives 0, not NaN; the end points get 0; as PyTorch's."""
    import fastdl.nn.functional as F
    v = [-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 6.0, 7.0, float("inf"), -float("inf")]
    for f, tf in ((F.hardtanh, torch.nn.functional.hardtanh), (F.relu6, torch.nn.functional.relu6),
                  (lambda t: F.hardtanh(t, -2.0, 2.5), lambda t: torch.nn.functional.hardtanh(t, -2.0, 2.5))):
        x, tx = fd.tensor(v, requires_grad=True), torch.tensor(v, requires_grad=True)
        y, ty = f(x), tf(tx)
        np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
        (1.0 / (y - 1.0)).sum().backward()  # -inf upstream where y == 1
        (1.0 / (ty - 1.0)).sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_nan_to_num_every_float_dtype_and_gradient(torch):
    """NaN / +inf / -inf replaced as PyTorch does: the defaults are each dtype's own largest finite
    value (float16's 65504, bfloat16's; float32's would round to inf there), given values as
    given; the gradient passes where the input is finite, 0 elsewhere; integers unchanged."""
    vals = [np.inf, -np.inf, np.nan, 1.0, -2.5, 0.0, 3e38]
    for dt, tdt in ((fd.float16, torch.float16), (fd.bfloat16, torch.bfloat16), (fd.float32, torch.float32),
                    (fd.float64, torch.float64)):
        for kw in ({}, dict(nan=1.5, posinf=2.0, neginf=-3.0), dict(posinf=7.0)):
            got = fd.nan_to_num(fd.tensor(vals, dtype=dt), **kw)
            want = torch.nan_to_num(torch.tensor(vals, dtype=tdt), **kw)
            assert got.dtype == dt
            np.testing.assert_array_equal(got.float().numpy(), want.float().numpy())
    x = fd.tensor(np.array(vals * 3).reshape(3, 7).T, requires_grad=True)  # transposed: strided rows
    g = np.arange(21.0).reshape(7, 3)
    fd.nan_to_num(x).backward(fd.tensor(g))
    np.testing.assert_array_equal(x.grad.numpy(), np.where(np.isfinite(np.array(vals * 3).reshape(3, 7).T), g, 0))
    np.testing.assert_array_equal(fd.nan_to_num(fd.tensor([1, -2, 3])).numpy(), [1, -2, 3])


def test_threshold_shrinks_fused_match_torch(torch):
    """threshold, hardshrink, softshrink (one fused pass each way on the cpu): values and gradients
    as PyTorch's at the boundaries, at NaN (the value stays) and +-inf, on strided input, in
    float32 / float64 / bfloat16. The shrinks' gradient at a NaN is 0, as PyTorch's vectorised
    backward gives on contiguous input; its scalar path (this strided input) passes g there."""
    import fastdl.nn.functional as F
    rng = np.random.default_rng(11)
    x0 = rng.standard_normal((9, 40)) * 2
    x0[0, :8] = [0.5, -0.5, 0.3, np.nan, np.inf, -np.inf, 0.0, -0.0]
    g0 = rng.standard_normal((40, 9))
    cases = ((lambda M, t: M.threshold(t, 0.3, -2.0)), (lambda M, t: M.hardshrink(t, 0.5)),
             (lambda M, t: M.softshrink(t, 0.5)), (lambda M, t: M.hardshrink(t)), (lambda M, t: M.softshrink(t, 0.0)))
    for dt, tdt in ((fd.float32, torch.float32), (fd.float64, torch.float64), (fd.bfloat16, torch.bfloat16)):
        for i, f in enumerate(cases):
            res = []
            for L, M, d in ((fd, F, dt), (torch, torch.nn.functional, tdt)):
                x = L.tensor(x0.T.copy(), dtype=d).T.detach().requires_grad_(True)  # a transposed view's leaf
                y = f(M, x)
                y.backward(L.tensor(g0.T.copy(), dtype=d))
                res.append((y.detach().to(L.float64).numpy(), x.grad.to(L.float64).numpy()))
            np.testing.assert_array_equal(res[0][0], res[1][0])
            if i:
                assert res[0][1][0, 3] == 0
                res[1][1][0, 3] = 0
            np.testing.assert_array_equal(res[0][1], res[1][1])
    with pytest.raises(ValueError, match="softshrink"):
        F.softshrink(fd.ones(3), -0.1)
