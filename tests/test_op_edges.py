"""Edge cases PyTorch's OpInfo samples found (test_opinfo.py), checked here against numpy so they
hold without torch installed: zeros in prod's gradient, norm's p=0, 0-dim inputs, empty
operands in backward, value gradients of masked_fill / index_put, zero_ in a graph."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.nn.functional as F


def _grad(f, a):
    x = fd.tensor(a, requires_grad=True)
    f(x).sum().backward()
    return x.grad.numpy()


@pytest.mark.parametrize("dim", [None, 1])
def test_prod_gradient_with_zeros(dim):
    a = np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 5.0], [1.5, -2.0, 4.0]])
    g = _grad(lambda x: x.prod() if dim is None else x.prod(dim), a)
    want = np.zeros_like(a)
    for idx in np.ndindex(*a.shape):  # d prod / d a_i = product of the other elements of its slice
        sl = a if dim is None else a[idx[0]]
        pos = idx if dim is None else idx[1]
        others = np.delete(sl.reshape(-1), np.ravel_multi_index(pos, sl.shape) if dim is None else pos)
        want[idx] = np.prod(others)
    if dim is None:
        want[:] = 0.0  # three zeros in the whole tensor: every partial product holds a zero
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, want, rtol=1e-12, atol=0)


def test_norm_p0_counts_nonzeros_and_fro():
    a = np.array([[0.0, 1.5, -2.0], [0.0, 0.0, 3.0]])
    x = fd.tensor(a)
    assert fd.norm(x, 0).item() == 3.0
    np.testing.assert_array_equal(fd.norm(x, 0, 1).numpy(), [2.0, 1.0])
    np.testing.assert_allclose(fd.norm(x, "fro").item(), np.linalg.norm(a), rtol=1e-12)
    np.testing.assert_allclose(fd.norm(x, float("inf")).item(), 3.0)
    # the nuclear norm (sum of singular values) goes through fastdl.linalg
    np.testing.assert_allclose(fd.norm(x, "nuc").item(), np.linalg.norm(a, "nuc"), rtol=1e-12)


def test_linspace_one_step_is_start():
    assert fd.linspace(-2.0, 5.0, 1, dtype=fd.float64).tolist() == [-2.0]


def test_masked_fill_value_gradient():
    a = np.arange(6.0).reshape(2, 3)
    mask = fd.tensor([[True, False, True], [False, False, True]])
    x = fd.tensor(a, requires_grad=True)
    v = fd.tensor(7.0, requires_grad=True)
    y = x.masked_fill(mask, v)
    np.testing.assert_array_equal(y.detach().numpy(), np.where(mask.numpy(), 7.0, a))
    (y * fd.tensor(a + 1)).sum().backward()
    assert v.grad.item() == (a + 1)[mask.numpy()].sum()
    np.testing.assert_array_equal(x.grad.numpy(), np.where(mask.numpy(), 0.0, a + 1))


def test_index_put_accumulate_value_gradient():
    x = fd.zeros(4, 2, dtype=fd.float64, requires_grad=True)
    v = fd.tensor(np.ones((3, 2)), requires_grad=True)
    idx = fd.tensor([0, 2, 0])
    w = np.arange(8.0).reshape(4, 2)
    (fd.index_put(x, [idx], v, accumulate=True) * fd.tensor(w)).sum().backward()
    np.testing.assert_array_equal(v.grad.numpy(), w[[0, 2, 0]])
    np.testing.assert_array_equal(x.grad.numpy(), w)


def test_zero_in_a_graph_stops_the_gradient():
    x = fd.tensor([1.0, 2.0], requires_grad=True)
    y = (x * 3).zero_()
    (y + x).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]
    assert y.tolist() == [0.0, 0.0] and y.grad_fn is not None


def test_empty_operands_in_backward():
    a = fd.tensor(np.ones((5, 5, 0)), requires_grad=True)
    b = fd.tensor(np.ones((0, 5)), requires_grad=True)
    (a @ b).sum().backward()
    assert a.grad.shape == (5, 5, 0) and b.grad.shape == (0, 5)
    assert np.all(b.grad.numpy() == 0)
    e = fd.tensor(np.zeros(0), requires_grad=True)  # legacy: 1-D empty tensors are skipped by cat
    m = fd.tensor(np.ones((2, 3)), requires_grad=True)
    fd.cat([e, m], 1).sum().backward()
    assert e.grad is None or e.grad.shape == (0,)
    assert m.grad.tolist() == [[1.0] * 3] * 2


def test_batch_norm_empty_batch():
    x = fd.tensor(np.zeros((0, 3)), requires_grad=True)
    rm, rv = fd.zeros(3, dtype=fd.float64), fd.ones(3, dtype=fd.float64)
    y = F.batch_norm(x, rm, rv, training=True)
    assert y.shape == (0, 3)
    assert rm.tolist() == [0.0] * 3 and rv.tolist() == [1.0] * 3
    assert F.batch_norm(fd.zeros(0, dtype=fd.float64), fd.zeros(0, dtype=fd.float64), fd.zeros(0, dtype=fd.float64),
                        training=False).shape == (0,)


def test_avg_pool2d_negative_divisor():
    a = np.arange(16.0).reshape(1, 1, 4, 4)
    x = fd.tensor(a, requires_grad=True)
    y = F.avg_pool2d(x, 2, divisor_override=-2)
    want = a.reshape(1, 1, 2, 2, 2, 2).sum(axis=(3, 5)) / -2
    np.testing.assert_allclose(y.detach().numpy(), want)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(a.shape, -0.5))


def test_zero_dim_edges():
    x = fd.tensor(3.0)
    assert fd.topk(x, 1).values.shape == () and fd.topk(x, 1).indices.item() == 0
    assert fd.kthvalue(x, 1).values.item() == 3.0
    assert fd.cumprod(x, 0).item() == 3.0
    assert fd.masked_select(x, fd.tensor(True)).tolist() == [3.0]
    assert fd.gather(x, 0, fd.tensor([0])).tolist() == [3.0]
    assert [t.tolist() for t in fd.nonzero(x, as_tuple=True)] == [[0]]


def test_bitwise_ops_on_integers_and_bools():
    a = np.array([12, -7, 5, 0], dtype=np.int64)
    b = np.array([10, 3, -1, 9], dtype=np.int64)
    x, y = fd.tensor(a), fd.tensor(b)
    for got, want in [(x & y, a & b), (x | y, a | b), (x ^ y, a ^ b), (x & 6, a & 6), (3 | x, 3 | a),
                      (fd.bitwise_xor(x, y), a ^ b), (x.bitwise_and(y), a & b)]:
        assert got.dtype == fd.int64
        np.testing.assert_array_equal(got.numpy(), want)
    i32 = fd.tensor(a.astype(np.int32))
    assert (i32 & i32).dtype == fd.int32
    p, q = fd.tensor([True, False, True]), fd.tensor([True, True, False])
    assert (p & q).tolist() == [True, False, False] and (p ^ q).dtype == fd.bool
    assert (p | fd.tensor([1, 2, 0])).tolist() == [1, 2, 1]  # bool with int: integer bits
    z = x.clone()
    z &= y
    np.testing.assert_array_equal(z.numpy(), a & b)
    with pytest.raises(TypeError, match="bitwise_and"):
        fd.tensor([1.5]) & fd.tensor([2.0])


_NAN, _INF = float("nan"), float("inf")
_EDGE = [_NAN, 1.0, -1.0, 0.0, _INF, -_INF, 3.0, -3.0]
_SELU_SCALE, _SELU_ALPHA = 1.0507009873554805, 1.6732632423543772


@pytest.mark.parametrize("name, f, want", [
    # PyTorch's backward formulas at NaN, +-inf and the kinks (its vectorised kernels' sides), the
    # upstream gradient 1..8: relu / elu / threshold send a NaN's gradient through (their backwards
    # zero only x <= 0 / x <= threshold), hardtanh / relu6 do not (strictly inside), maximum /
    # minimum give both operands a NaN's gradient, max() gives it to the NaN, logaddexp stays finite
    # beside an infinity.
    ("relu", fd.relu, [1, 2, 0, 0, 5, 0, 7, 0]),
    ("relu6", F.relu6, [0, 2, 0, 0, 0, 0, 7, 0]),
    ("hardtanh", F.hardtanh, [0, 0, 0, 4, 0, 0, 0, 0]),
    ("elu", F.elu, [1, 2, 3 * np.exp(-1), 4, 5, 0, 7, 8 * np.exp(-3)]),
    ("selu", F.selu, [s * _SELU_SCALE for s in (1, 2, 3 * _SELU_ALPHA * np.exp(-1), 4 * _SELU_ALPHA, 5, 0, 7,
                                                8 * _SELU_ALPHA * np.exp(-3))]),
    ("threshold", lambda x: F.threshold(x, 0.5, 2.0), [1, 2, 0, 0, 5, 0, 7, 0]),
    ("hardswish", F.hardswish, [1, 2 * 5 / 6, 3 / 6, 4 / 2, 5, 0, 7, 0]),
    ("maximum", lambda x: fd.maximum(x, fd.zeros(8, dtype=fd.float64)), [1, 2, 0, 2, 5, 0, 7, 0]),
    ("minimum", lambda x: fd.minimum(x, fd.zeros(8, dtype=fd.float64)), [1, 0, 3, 2, 0, 6, 0, 8]),
    ("max", lambda x: fd.max(x) * 1.0, [1, 1, 1, 1, 1, 1, 1, 1]),
    ("logaddexp", lambda x: fd.logaddexp(x, fd.zeros(8, dtype=fd.float64)),
     [_NAN, 2 / (1 + np.exp(-1)), 3 / (1 + np.e), 2, 5, 0, 7 / (1 + np.exp(-3)), 8 / (1 + np.exp(3))]),
])
def test_gradients_at_nan_and_infinity(name, f, want):
    x = fd.tensor(_EDGE, dtype=fd.float64, requires_grad=True)
    y = f(x)
    if y.ndim == 0:  # max(): the whole upstream gradient to the one NaN
        y.backward()
        want = [1, 0, 0, 0, 0, 0, 0, 0]
    else:
        (y * fd.arange(1.0, 9.0, dtype=fd.float64)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.array(want, dtype=np.float64), rtol=1e-12, atol=0,
                               err_msg=name)


def _g(f, vals, *more):
    """f's value and gradient (upstream 1, 2, 3, ...) at float64 vals."""
    x = fd.tensor(vals, dtype=fd.float64, requires_grad=True)
    y = f(x, *more)
    (y * fd.arange(1.0, len(vals) + 1.0, dtype=fd.float64)).sum().backward()
    return y.detach().numpy(), x.grad.numpy()


def _eq(got, want):
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64), rtol=1e-13, atol=0)


def test_pow_gradient_conventions():
    """PyTorch's: x^0 gives the base no gradient (even at 0 or NaN); 0^y with y >= 0 gives the
    exponent none; a negative base's exponent gradient is NaN (its log)."""
    e = [0.0, 1.0, -1.0, _NAN]
    _eq(_g(lambda x: x ** fd.zeros(4, dtype=fd.float64), e)[1], [0, 0, 0, 0])
    _eq(_g(lambda x: x ** x, [0.0, 2.0])[1], [0, 2 * 4 * (np.log(2) + 1)])
    y, g = _g(lambda x: fd.full((4,), -2.0, dtype=fd.float64) ** x, [1.0, 2.0, 0.0, 3.0])
    _eq(y, [-2, 4, 1, -8])
    assert np.isnan(g).all()
    _eq(_g(lambda x: fd.zeros(3, dtype=fd.float64) ** x, [-1.0, 0.0, 2.0])[1], [-_INF, 0, 0])


def test_clamp_with_tensor_bounds_at_nan():
    """A NaN on either side: NaN out, no gradient to either operand; an element equal to its bound
    keeps the whole gradient (PyTorch's clamp_min / clamp_max with tensor bounds)."""
    for f, keep in ((fd.clamp_min, [0, 0, 0, 4]), (fd.clamp_max, [0, 0, 3, 4])):
        b = fd.tensor([1.0, _NAN, 1.0, 1.0], dtype=fd.float64, requires_grad=True)
        x = fd.tensor([_NAN, 0.5, 0.5, 1.0], dtype=fd.float64, requires_grad=True)
        y = f(x, b)
        (y * fd.arange(1.0, 5.0, dtype=fd.float64)).sum().backward()
        assert np.isnan(y.detach().numpy()[:2]).all()
        _eq(x.grad.numpy(), keep)
        _eq(b.grad.numpy(), [0, 0, 3 - keep[2], 0])


def test_fmod_and_floor_divide_are_exact_at_the_edges():
    """fmod is C's (exact; fmod(a, +-inf) = a, fmod(inf, b) = NaN), floor division Python's
    (1.5 // -inf = -1, inf // 2 = NaN), as PyTorch's; the grad of fmod's divisor is -trunc(a / b)."""
    a = np.array([1e20, -7.3e15, 5.5, -5.5, 1.5, 1.5, _INF, 1e-300], dtype=np.float64)
    b = np.array([3.3, -0.7, 2.0, 2.0, _INF, -_INF, 2.0, 3.0], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        _eq(fd.fmod(fd.tensor(a), fd.tensor(b)).numpy(), np.fmod(a, b))
        _eq(fd.floor_divide(fd.tensor(a), fd.tensor(b)).numpy(), [x // y for x, y in zip(a, b)])
    _eq(fd.fmod(fd.tensor([7, -7]), 3).tolist(), [1, -1])
    x = fd.tensor([7.0, -7.5], dtype=fd.float64, requires_grad=True)
    y = fd.tensor([2.0, 2.0], dtype=fd.float64, requires_grad=True)
    fd.fmod(x, y).sum().backward()
    _eq(x.grad.numpy(), [1, 1])
    _eq(y.grad.numpy(), [-3, 3])


def test_domain_edge_gradients():
    """The derivative formulas PyTorch evaluates at the edges of the domain: inf at the poles, NaN
    outside, 0 where they vanish (not 0 * inf, nor a masked 0)."""
    pts = [1.0, -1.0, _INF, 1.5, 0.5]
    _eq(_g(fd.erfinv, pts)[1], [_INF, _INF, _NAN, _NAN, 5 * np.sqrt(np.pi) / 2 * np.exp(0.4769362762044699 ** 2)])
    _eq(_g(fd.atanh, pts)[1], [_INF, _INF, -0.0, -4 / 1.25, 5 / 0.75])
    _eq(_g(fd.acosh, [1.0, -1.0, -_INF, 0.5, 2.0])[1], [_INF, _INF, 0, _NAN, 5 / np.sqrt(3)])
    _eq(_g(fd.logit, [0.0, 1.0, -0.5, 0.5, -0.0])[1], [_INF, _INF, _NAN, 16, _INF])
    _eq(_g(fd.special.erfc, [_INF, -_INF])[1], [0, 0])
    _eq(_g(lambda x: fd.atan2(x, fd.zeros(2, dtype=fd.float64)), [0.0, 1.0])[1], [0, 0])
    _eq(_g(lambda x: fd.nextafter(x, fd.tensor([_INF, -_INF, 2.0], dtype=fd.float64)), [_INF, _INF, 2.0]),
        [[_INF, np.finfo(np.float64).max, 2.0], [0, 2, 0]])
    assert not np.signbit(fd.tensor([-0.0, -1.0]).abs().numpy()).any()


def test_number_first_operand():
    """PyTorch's binary functions that take a Python number first (add(2, t), remainder(5, t), ...),
    and two numbers for add / sub / mul / floor_divide / div (a 0-dim tensor); the others refuse."""
    t, i = fd.tensor([1.0, 2.0]), fd.tensor([3, 4])
    assert fd.add(3, t).tolist() == [4.0, 5.0] and fd.add(3, t, alpha=2).tolist() == [5.0, 7.0]
    assert fd.sub(3, t).tolist() == [2.0, 1.0] and fd.mul(2, i).tolist() == [6, 8] and fd.mul(2, i).dtype == fd.int64
    assert fd.add(1.5, i).dtype == fd.float32 and fd.floor_divide(7.0, t).tolist() == [7.0, 3.0]
    assert fd.remainder(5, i).tolist() == [2, 1] and fd.bitwise_and(6, i).tolist() == [2, 4]
    assert fd.div(3, t, rounding_mode="trunc").tolist() == [3.0, 1.0]
    for f, want in ((fd.add, 9), (fd.sub, 5), (fd.mul, 14), (fd.floor_divide, 3)):
        r = f(7, 2)
        assert isinstance(r, fd.Tensor) and r.ndim == 0 and r.item() == want and r.dtype == fd.int64
    assert fd.div(-4.5, 2.0, rounding_mode="trunc").item() == -2.0
    for f in (fd.maximum, fd.atan2):
        with pytest.raises(TypeError):
            f(3.0, t)
    with pytest.raises(TypeError):
        fd.remainder(7, 2)


def test_add_alpha_keeps_integer_results():
    # PyTorch: an integer tensor plus int * int alpha stays an integer tensor
    a = fd.tensor([1, 2, 3])
    for got in (fd.add(a, 2, alpha=3), a.add(2, alpha=3), a.clone().add_(2, alpha=3)):
        assert got.dtype == a.dtype and got.tolist() == [7, 8, 9]
    assert fd.add(1, 2, alpha=3).dtype == fd.int64 and fd.add(1, 2, alpha=3).item() == 7
    assert fd.add(a, a, alpha=3).tolist() == [4, 8, 12]
    assert fd.add(2, a, alpha=3).tolist() == [5, 8, 11]
    f = fd.tensor([1.0, 2.0])
    assert fd.add(f, 2, alpha=0.5).tolist() == [2.0, 3.0] and fd.add(a, 2.5).dtype == fd.get_default_dtype()


def test_gather_empty_index_of_any_integer_type():
    # PyTorch checks neither the dtype nor the rank of an empty index: the result has its shape
    x = fd.randn(5, requires_grad=True)
    y = fd.gather(x, 0, fd.zeros((2, 0), dtype=fd.uint8))
    assert y.shape == (2, 0) and y.requires_grad
    y.sum().backward()
    assert x.grad.tolist() == [0.0] * 5
    with pytest.raises(TypeError, match="gather: index must be an int64 or int32"):
        fd.gather(x, 0, fd.tensor([1], dtype=fd.uint8))


def test_reflected_ops_called_with_a_number_first():
    """Tensor.__rpow__ / __rmod__ / __rfloordiv__ called as functions with a number first give
    t ** n, t % n and t // n, as PyTorch's Python-level dunders do; the Python protocol (n ** t)
    still reaches them with the tensor first."""
    torch = pytest.importorskip("torch")
    a = np.array([[-2.5, -1.0, 0.5, 3.0, 7.25]])
    t, tt = fd.tensor(a), torch.tensor(a)
    for name in ("__rpow__", "__rmod__", "__rfloordiv__"):
        for n in (3.0, 2, -1.5):
            got = getattr(fd.Tensor, name)(n, t).numpy()
            want = getattr(torch.Tensor, name)(n, tt).numpy()
            np.testing.assert_allclose(got, want, rtol=1e-15, equal_nan=True)
    np.testing.assert_allclose((2.0 ** t).numpy(), (2.0 ** tt).numpy(), rtol=1e-15)
    np.testing.assert_allclose((7 % t).numpy(), (7 % tt).numpy(), rtol=1e-15)
    np.testing.assert_allclose((7 // t).numpy(), (7 // tt).numpy(), rtol=1e-15)
    assert fd.Tensor.__rsub__(3.0, t) is NotImplemented and torch.Tensor.__rsub__(3.0, tt) is NotImplemented
