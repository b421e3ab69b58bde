"""Ops not covered by the family files: logical ops, rounding, misc activations, index
helpers, dropout, bernoulli, addmm/bmm, against numpy and PyTorch."""
import numpy as np
import pytest

import fastdl as fd
from checks import assert_close, fd_grads, torch_grads


def test_logical_and_rounding(rng):
    a, b = rng.standard_normal(50) > 0, rng.standard_normal(50) > 0
    A, B = fd.tensor(a), fd.tensor(b)
    np.testing.assert_array_equal(fd.logical_and(A, B).numpy(), a & b)
    np.testing.assert_array_equal(fd.logical_or(A, B).numpy(), a | b)
    np.testing.assert_array_equal(fd.logical_xor(A, B).numpy(), a ^ b)
    np.testing.assert_array_equal(fd.logical_not(A).numpy(), ~a)
    np.testing.assert_array_equal((A & B).numpy(), a & b)
    np.testing.assert_array_equal((~A).numpy(), ~a)
    x = rng.standard_normal(40) * 5
    X = fd.tensor(x, dtype=fd.float64)
    for name, ref in (("floor", np.floor), ("ceil", np.ceil), ("round", np.round), ("trunc", np.trunc)):
        np.testing.assert_array_equal(getattr(fd, name)(X).numpy(), ref(x))
    np.testing.assert_array_equal(fd.gt(X, 0).numpy(), x > 0)
    np.testing.assert_array_equal(fd.isinf(fd.tensor([1.0, float("inf"), -float("inf")])).numpy(), [False, True, True])
    np.testing.assert_allclose(fd.nan_to_num(fd.tensor([float("nan"), float("inf"), 1.0]), nan=0.5).numpy(),
                               np.nan_to_num(np.float32([np.nan, np.inf, 1.0]), nan=0.5))


def test_int_division_python_semantics(rng):
    a = rng.integers(-20, 20, 60)
    b = rng.integers(1, 7, 60) * rng.choice([-1, 1], 60)
    A, B = fd.tensor(a), fd.tensor(b)
    np.testing.assert_array_equal(fd.floor_divide(A, B).numpy(), a // b)
    np.testing.assert_array_equal(fd.remainder(A, B).numpy(), a % b)
    x = rng.standard_normal(60) * 10
    np.testing.assert_allclose(fd.remainder(fd.tensor(x, dtype=fd.float64), 3.0).numpy(), np.mod(x, 3.0))


def test_trig_and_log10(rng):
    x = rng.uniform(-0.99, 0.99, 30)
    X = fd.tensor(x, dtype=fd.float64)
    assert_close(fd.asin(X), np.arcsin(x))
    assert_close(fd.acos(X), np.arccos(x))
    assert_close(fd.log10(X.abs() + 1), np.log10(np.abs(x) + 1))


@pytest.mark.parametrize("name", ["leaky_relu", "hardtanh", "elu"])
def test_activation_variants_vs_torch(name, torch, rng):
    x = rng.standard_normal((4, 9)) * 2
    up = rng.standard_normal((4, 9))
    tf = getattr(torch.nn.functional, name)
    wo, (wg,) = torch_grads(torch, tf, [x], up)
    o, (g,) = fd_grads(getattr(fd, name), [x], up)
    assert_close(o, wo)
    assert_close(g, wg)


def test_lerp_swapaxes_unbind_triu(rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    A, B = fd.tensor(a, dtype=fd.float64), fd.tensor(b, dtype=fd.float64)
    assert_close(fd.lerp(A, B, 0.3), a + 0.3 * (b - a))
    assert_close(fd.swapaxes(A, 0, 1), a.T)
    assert [u.shape for u in fd.unbind(A, 1)] == [(3,)] * 4
    assert_close(fd.triu(A, 1), np.triu(a, 1))


def test_index_helpers(rng):
    a = rng.standard_normal((5, 3))
    A = fd.tensor(a, dtype=fd.float64)
    idx = fd.tensor([4, 0, 4])
    assert_close(fd.index_select(A, 0, idx), a[[4, 0, 4]])
    assert_close(fd.masked_fill(A, A > 0, 0.0), np.where(a > 0, 0, a))
    np.testing.assert_array_equal(fd.nonzero(A > 0).numpy(), np.argwhere(a > 0))
    got = fd.index_put(fd.zeros(5, dtype=fd.float64), [fd.tensor([1, 1, 3])], fd.tensor([1.0, 2.0, 3.0], dtype=fd.float64),
                       accumulate=True)
    np.testing.assert_array_equal(got.numpy(), [0, 3, 0, 3, 0])
    np.testing.assert_array_equal(fd.nn.functional.one_hot(fd.tensor([2, 0]), 3).numpy(), [[0, 0, 1], [1, 0, 0]])


def test_dropout_and_bernoulli():
    fd.manual_seed(0)
    x = fd.ones(200_000)
    y = fd.nn.functional.dropout(x, 0.25, True)
    kept = (y != 0).float().mean().item()
    assert abs(kept - 0.75) < 0.01
    assert abs(y.mean().item() - 1.0) < 0.02  # inverted scaling keeps the mean
    assert fd.nn.functional.dropout(x, 0.25, False) is x or (fd.nn.functional.dropout(x, 0.25, False) == x).all().item()
    p = fd.full((100_000,), 0.3)
    assert abs(fd.bernoulli(p).mean().item() - 0.3) < 0.01


def _dropout_keep_numpy(seed, n, p):
    """F.dropout's keep mask for elements 0..n-1 (kernels/random.h), in numpy: two rounds of a
    32-bit integer hash of the element index and the seed's halves; kept iff the top 24 bits
    are >= round(p * 2^24)."""
    def h32(v):
        v = v ^ (v >> np.uint32(16))
        v = v * np.uint32(0x7FEB352D)
        v = v ^ (v >> np.uint32(15))
        v = v * np.uint32(0x846CA68B)
        return v ^ (v >> np.uint32(16))
    i = np.arange(n, dtype=np.uint64)
    lo = np.uint32(seed & 0xFFFFFFFF)
    hi = (np.uint32(seed >> 32) ^ ((i >> np.uint64(32)).astype(np.uint32) * np.uint32(0x9E3779B9))).astype(np.uint32)
    with np.errstate(over="ignore"):
        u = h32(h32(i.astype(np.uint32) ^ lo) ^ hi) >> np.uint32(8)
    return u >= np.uint32(int(p * 16777216.0 + 0.5))


@pytest.mark.parametrize("dtype", [fd.float32, fd.float64, fd.bfloat16], ids=["f32", "f64", "bf16"])
def test_dropout_mask_is_the_counter_hash_and_backward_regenerates_it(isa, rng, dtype):
    """The fused CPU dropout keeps element i (row-major over the output) iff its counter-based
    draw says so, with the seed drawn once from the global generator; every ISA gives the same
    mask; backward multiplies the upstream gradient by the same mask, regenerated."""
    p = 0.37
    base = rng.standard_normal((53, 41))
    x = fd.tensor(base, dtype=dtype).T.requires_grad_()  # non-contiguous (41, 53)
    fd.manual_seed(11)
    seed = fd._C._random_u64()
    fd.manual_seed(11)
    y = fd.nn.functional.dropout(x, p)
    keep = _dropout_keep_numpy(seed, 41 * 53, p).reshape(41, 53)
    xv = x.detach().to(fd.float64).numpy()
    want = np.where(keep, xv / (1 - p), 0.0)
    tol = 1e-2 if dtype == fd.bfloat16 else 1e-6
    np.testing.assert_allclose(y.detach().to(fd.float64).numpy(), want, rtol=tol, atol=tol)
    assert y.dtype == dtype and y.shape == (41, 53)
    g = rng.standard_normal((53, 41))
    y.backward(fd.tensor(g, dtype=dtype).T)
    gv = fd.tensor(g, dtype=dtype).T.to(fd.float64).numpy()
    np.testing.assert_allclose(x.grad.to(fd.float64).numpy(), np.where(keep, gv / (1 - p), 0.0), rtol=tol, atol=tol)


def test_dropout_statistics_and_nan():
    fd.manual_seed(5)
    n = 1_000_003  # odd, several pool chunks
    x = fd.ones(n)
    for p in (0.05, 0.5, 0.93):
        a = (fd.nn.functional.dropout(x, p) != 0).numpy()
        b = (fd.nn.functional.dropout(x, p) != 0).numpy()
        q = 1 - p
        sd = np.sqrt(q * (1 - q) / n)
        assert abs(a.mean() - q) < 6 * sd and abs(b.mean() - q) < 6 * sd
        both = (a & b).mean()  # consecutive calls draw independent masks
        assert abs(both - q * q) < 6 * np.sqrt(q * q * (1 - q * q) / n)
        # neighbours are independent too
        assert abs((a[1:] & a[:-1]).mean() - q * q) < 6 * np.sqrt(q * q * (1 - q * q) / n)
    # as PyTorch's x * mask: a dropped NaN stays NaN, a kept one too
    y = fd.nn.functional.dropout(fd.full((1000,), float("nan")), 0.5).numpy()
    assert np.isnan(y).all()
    with pytest.raises(TypeError, match="dropout"):
        fd.nn.functional.dropout(fd.ones(4, dtype=fd.int64), 0.5)


def test_addmm_bmm(rng, torch):
    c, a, b = rng.standard_normal((3, 5)), rng.standard_normal((3, 4)), rng.standard_normal((4, 5))
    got = fd.addmm(fd.tensor(c, dtype=fd.float64), fd.tensor(a, dtype=fd.float64), fd.tensor(b, dtype=fd.float64), beta=0.5, alpha=2.0)
    assert_close(got, 0.5 * c + 2 * a @ b)
    x, y = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4, 6))
    assert_close(fd.bmm(fd.tensor(x, dtype=fd.float64), fd.tensor(y, dtype=fd.float64)), x @ y)
    with pytest.raises(ValueError, match="bmm"):
        fd.bmm(fd.randn(3, 4), fd.randn(4, 5))


def test_inplace_follows_out_of_place_rules():
    a = fd.tensor([True, False])
    a += fd.tensor([True, True])
    assert a.dtype == fd.bool and a.int().tolist() == [1, 1]
    with pytest.raises(TypeError, match="can't be cast"):
        b = fd.tensor([True, False])
        b += fd.tensor([1, 2])
    i = fd.tensor([7, -7])
    i //= 2
    assert i.tolist() == [3, -4]
    with pytest.raises(ValueError, match="division by zero"):
        j = fd.tensor([1, 2])
        j %= fd.tensor([1, 0])
    k = fd.tensor([1, 2], dtype=fd.int32)
    k += fd.tensor([1, 1])  # int64 into int32 is allowed, as in PyTorch
    assert k.tolist() == [2, 3] and k.dtype == fd.int32


def test_embedding_index_errors_name_embedding():
    w = fd.randn(3, 2)
    with pytest.raises(IndexError, match="embedding: index 5"):
        fd.nn.functional.embedding(fd.tensor([0, 5]), w)
    with pytest.raises(IndexError, match="embedding: index -1"):
        fd.nn.functional.embedding(fd.tensor([-1]), w)


def test_pytorch_signatures(torch, rng):
    x = rng.integers(-9, 9, 40)
    y = rng.integers(1, 5, 40) * rng.choice([-1, 1], 40)
    for mode in ("trunc", "floor", None):
        for a, b in ((x, y), (x * 0.7, y * 1.0)):
            got = fd.div(fd.tensor(a), fd.tensor(b), rounding_mode=mode)
            want = torch.div(torch.tensor(a), torch.tensor(b), rounding_mode=mode)
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
            assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
    t = fd.tensor([1.5, -2.0])
    np.testing.assert_allclose(fd.pow(2, t).numpy(), [2 ** 1.5, 0.25])
    np.testing.assert_allclose(fd.pow(t, exponent=2).numpy(), [2.25, 4.0])
    np.testing.assert_allclose(fd.sub(t, t, alpha=2).numpy(), [-1.5, 2.0])
    assert fd.cumsum(t, 0, dtype=fd.float64).dtype == fd.float64
    assert t.softmax(0, dtype=fd.float64).dtype == fd.float64
    np.testing.assert_allclose(fd.lerp(t, fd.zeros(2), fd.tensor([0.5, 1.0])).numpy(), [0.75, 0.0])
    with pytest.raises(ValueError, match="rounding_mode"):
        fd.div(t, t, rounding_mode="round")


def test_clamp_min_max_tensor_bound_ties():
    # an element equal to its tensor bound keeps the whole gradient (PyTorch), not half of it
    # (maximum / minimum split ties); the bound gets the gradient only where it wins strictly
    for name, want_x, want_b in (("clamp_min", [1, 1, 1, 0], [0, 0, 0, 1]), ("clamp_max", [1, 0, 1, 1], [0, 1, 0, 0])):
        x = fd.tensor([1.0, 2.0, 3.0, -1.0], dtype=fd.float64, requires_grad=True)
        b = fd.tensor([1.0, 1.0, 3.0, 0.0], dtype=fd.float64, requires_grad=True)
        out = getattr(fd, name)(x, b)
        np.testing.assert_array_equal(out.detach().numpy(), np.maximum(x.detach().numpy(), b.detach().numpy())
                                      if name == "clamp_min" else np.minimum(x.detach().numpy(), b.detach().numpy()))
        out.sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), want_x)
        np.testing.assert_array_equal(b.grad.numpy(), want_b)
        assert np.isnan(getattr(x.detach(), name)(fd.tensor([float("nan")] * 4, dtype=fd.float64)).numpy()).all()


def test_item_int_and_index_are_exact_for_every_int64():
    # item / int / __index__ of an int64 tensor never round through a double (exact above 2**53)
    rng = np.random.default_rng(7)
    for v in [2**62 + 1, -(2**63), 2**63 - 1, 2**53 + 1, int(rng.integers(-2**62, 2**62))]:
        t = fd.tensor([v], dtype=fd.int64)
        assert t.item() == v and int(t[0]) == v and t[0].__index__() == v
    assert [10, 20, 30][fd.tensor(2)] == 30
    assert int(fd.tensor(2.7)) == 2 and int(fd.tensor(-2.7)) == -2 and int(fd.tensor(True)) == 1
    with pytest.raises(ValueError, match="NaN"):
        int(fd.tensor(float("nan")))
    with pytest.raises(OverflowError):
        int(fd.tensor(float("-inf")))


def test_python_ints_beyond_double_precision_stay_exact():
    # PyTorch keeps int64 arithmetic exact with Python ints above 2**53; so does fastdl
    v = 2**62 + 1
    t = fd.tensor([0, 5], dtype=fd.int64)
    assert (t + v).tolist() == [v, v + 5] and (v - t).tolist() == [v, v - 5] and (t - v).tolist() == [-v, 5 - v]
    assert fd.add(t, v).tolist() == [v, v + 5] and t.sub(v).tolist() == [-v, 5 - v]
    assert (fd.tensor([v]) == v).item() and not (fd.tensor([v - 1]) == v).item()
    u = t.clone()
    u += v
    assert u.tolist() == [v, v + 5]
    u[1] = -v
    assert u.tolist() == [v, -v]
    assert fd.arange(v, v + 3).tolist() == [v, v + 1, v + 2]
    assert fd.arange(v + 3, v, -2).tolist() == [v + 3, v + 1]


def test_int_add_sub_mul_wrap_on_overflow_like_torch():
    # PyTorch's int64 / int32 arithmetic wraps; fastdl computes it in unsigned arithmetic, so an
    # overflow is defined (the sanitizer job runs this under UBSan)
    big = fd.tensor([2**62, -(2**62), 537538576803], dtype=fd.int64)
    want = lambda v: (v + 2**63) % 2**64 - 2**63  # noqa: E731
    assert (big * 4).tolist() == [want(v * 4) for v in [2**62, -(2**62), 537538576803]]
    assert (big * fd.tensor([4, 4, 2**31])).tolist() == [0, 0, want(537538576803 * 2**31)]
    assert (big + big).tolist() == [want(2 * v) for v in [2**62, -(2**62), 537538576803]]
    assert (fd.tensor([-(2**63)]) - 1).tolist() == [2**63 - 1]
    i32 = fd.tensor([2**30, -(2**31)], dtype=fd.int32)
    assert (i32 * fd.tensor([4, 1], dtype=fd.int32)).tolist() == [0, -(2**31)]
    assert (i32 + i32).tolist() == [-(2**31), 0]
