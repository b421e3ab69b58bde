"""Random fills (rand, randn, uniform_, normal_, bernoulli, randint, randperm and the Python fills
built on them): the exact Philox-4x32-10 words (against a numpy Philox checked on Random123's known
answers), distributions (moments and Kolmogorov-Smirnov on 1e6 samples), bounds, independence,
reproducibility under fd.manual_seed on any thread count and ISA, strided in-place fills, every dtype.
Each statistical check runs on fixed seeds, so a pass is reproducible, with tolerances of about
5 standard errors."""
import numpy as np
import pytest

import fastdl as fd
from fastdl import _C

stats = pytest.importorskip("scipy.stats")

N = 1_000_003  # odd: the last Philox group is partial
FLOATS = [fd.float32, fd.float64, fd.bfloat16, fd.float16]


# --- a numpy Philox-4x32-10 (Salmon et al. 2011) in the slot layout of csrc/kernels/random.h ---
def _philox(c, key):
    c0, c1, c2, c3 = (np.asarray(x, np.uint64) for x in c)
    k0, k1 = np.uint64(key[0]), np.uint64(key[1])
    m32 = np.uint64(0xFFFFFFFF)
    for _ in range(10):
        p0, p1 = c0 * np.uint64(0xD2511F53), c2 * np.uint64(0xCD9E8D57)
        c0, c1, c2, c3 = (p1 >> np.uint64(32)) ^ c1 ^ k0, p1 & m32, (p0 >> np.uint64(32)) ^ c3 ^ k1, p0 & m32
        k0, k1 = (k0 + np.uint64(0x9E3779B9)) & m32, (k1 + np.uint64(0xBB67AE85)) & m32
    return c0, c1, c2, c3


def _words(key, nslots):
    """Word slots 0 .. nslots - 1: word w of block 16 g + l at slot 64 g + 16 w + l."""
    ng = -(-nslots // 64)
    b = np.arange(16 * ng, dtype=np.uint64)
    z = np.zeros_like(b)
    out = np.stack(_philox((b & np.uint64(0xFFFFFFFF), b >> np.uint64(32), z, z),
                           (key & 0xFFFFFFFF, key >> 32)))  # (4, 16 ng)
    return out.reshape(4, ng, 16).transpose(1, 0, 2).reshape(-1)[:nslots]


def _key(seed):
    fd.manual_seed(seed)  # a fill's key is the generator's next draw
    return _C._random_u64()


@pytest.mark.parametrize("ctr,key,expect", [
    ((0, 0, 0, 0), (0, 0), (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
    ((0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
     (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1)),
])
def test_numpy_philox_known_answers(ctr, key, expect):
    assert [int(x[0]) for x in _philox([[v] for v in ctr], key)] == list(expect)


def test_rand_bits_are_philox_words(isa):
    n = 5000
    w = _words(_key(7), 64 * -(-2 * n // 64))
    fd.manual_seed(7)
    f32 = fd.rand(n).numpy().astype(np.float64)
    np.testing.assert_array_equal(f32 * 2 ** 24, (w[:n] >> np.uint64(8)).astype(np.float64))
    fd.manual_seed(7)
    f64 = fd.rand(n, dtype=fd.float64).numpy()
    w2 = w.reshape(-1, 2, 2, 16)  # (group, h, hi/lo word, l): element 32 g + 16 h + l
    u53 = (w2[:, :, 0, :] >> np.uint64(6)).astype(np.float64) * 2.0 ** -26 + \
        (w2[:, :, 1, :] >> np.uint64(5)).astype(np.float64) * 2.0 ** -53
    np.testing.assert_array_equal(f64, u53.reshape(-1)[:n])


def _moments(x):
    x = np.asarray(x, np.float64)
    m = x.mean()
    d = x - m
    v = (d * d).mean()
    return m, v, (d ** 3).mean() / v ** 1.5, (d ** 4).mean() / v ** 2 - 3


@pytest.mark.parametrize("dt", FLOATS)
def test_normal_moments_and_ks(dt):
    fd.manual_seed(11)
    x = fd.randn(N, dtype=dt).to(fd.float64).numpy()
    m, v, s, k = _moments(x)
    se = 1 / np.sqrt(N)
    assert abs(m) < 5 * se and abs(v - 1) < 5 * np.sqrt(2) * se
    assert abs(s) < 5 * np.sqrt(6) * se and abs(k) < 5 * np.sqrt(24) * se
    if dt in (fd.float32, fd.float64):
        assert stats.kstest(x, "norm").pvalue > 1e-3
    assert np.isfinite(x).all() and np.abs(x).max() < 7


@pytest.mark.parametrize("dt", FLOATS)
def test_uniform_moments_ks_and_bounds(dt):
    fd.manual_seed(12)
    x = fd.rand(N, dtype=dt).to(fd.float64).numpy()
    m, v, s, k = _moments(x)
    se = 1 / np.sqrt(N)
    assert abs(m - 0.5) < 5 * np.sqrt(1 / 12) * se and abs(v - 1 / 12) < 5 * 0.075 * se
    assert abs(s) < 0.01 and abs(k + 1.2) < 0.01
    if dt in (fd.float32, fd.float64):
        assert stats.kstest(x, "uniform").pvalue > 1e-3
    assert x.min() >= 0 and x.max() < 1


@pytest.mark.parametrize("dt,lo,hi", [(fd.float32, 1000.0, 1000.5), (fd.float64, 1e15, 1e15 + 1.0),
                                      (fd.bfloat16, 1.0, 3.0), (fd.bfloat16, -1.0, 1.0), (fd.float16, 2.0, 3.0),
                                      (fd.float32, -3.0, -2.9999)])
def test_uniform_never_reaches_hi(dt, lo, hi):
    # ranges whose top values round to hi in the output dtype: the fill caps them below it
    fd.manual_seed(13)
    x = fd.empty(300_001, dtype=dt)
    x.uniform_(lo, hi)
    y = x.to(fd.float64).numpy()
    assert y.max() < hi and y.min() >= lo
    assert len(np.unique(y)) > 1


def test_uniform_lo_equals_hi_and_bad_ranges():
    x = fd.empty(1000)
    x.uniform_(2.0, 2.0)
    assert (x.numpy() == 2.0).all()
    with pytest.raises(ValueError, match="uniform_"):
        x.uniform_(1.0, 0.0)
    with pytest.raises(ValueError, match="normal_"):
        x.normal_(0.0, -1.0)
    with pytest.raises(TypeError, match="rand"):
        fd.rand(3, dtype=fd.int64)
    with pytest.raises(TypeError, match="randn"):
        fd.randn(3, dtype=fd.int32)
    with pytest.raises(ValueError, match="randint"):
        fd.randint(3, 3, (2,))


@pytest.mark.parametrize("dt", [fd.float32, fd.float64])
def test_normal_mean_std(dt):
    fd.manual_seed(14)
    x = fd.empty(N, dtype=dt)
    x.normal_(3.0, 0.25)
    m, v, _, _ = _moments(x.numpy())
    assert abs(m - 3.0) < 5 * 0.25 / np.sqrt(N) and abs(v / 0.0625 - 1) < 0.01


@pytest.mark.parametrize("fill", ["rand", "randn"])
@pytest.mark.parametrize("dt", [fd.float32, fd.float64])
def test_independence_between_calls_and_neighbours(fill, dt):
    fd.manual_seed(15)
    f = getattr(fd, fill)
    a, b = f(N, dtype=dt).numpy(), f(N, dtype=dt).numpy()
    tol = 5 / np.sqrt(N)
    assert not np.array_equal(a, b)
    assert abs(np.corrcoef(a, b)[0, 1]) < tol
    for lag in (1, 2, 15, 16, 17, 32, 64):  # 16 and 32: slots of one Philox block / Box-Muller pair
        assert abs(np.corrcoef(a[:-lag], a[lag:])[0, 1]) < tol, lag
        sq = (a - a.mean()) ** 2
        assert abs(np.corrcoef(sq[:-lag], sq[lag:])[0, 1]) < tol, lag


@pytest.mark.parametrize("dt", [fd.float32, fd.float64, fd.bfloat16, fd.float16])
def test_same_seed_same_tensor_on_any_thread_count(dt):
    prev = fd.get_num_threads()
    outs = []
    try:
        for nt in (1, 2, 3):
            fd.set_num_threads(nt)
            fd.manual_seed(16)
            x = fd.empty(1000, 1001, dtype=dt)
            x.normal_(1.0, 2.0)
            y = fd.empty(1000, 1001, dtype=dt).t()
            y.uniform_(-1.0, 1.0)
            p = fd.rand(1000, 1001, dtype=dt)
            outs.append([t.to(fd.float64).numpy() for t in (fd.randn(777, 1031, dtype=dt), fd.rand(1001, 999, dtype=dt),
                                                            x, y, fd.bernoulli(p), fd.randint(-5, 1000, (999, 1001)),
                                                            fd.randperm(100_000))])
    finally:
        fd.set_num_threads(prev)
    for other in outs[1:]:
        for a, b in zip(outs[0], other):
            np.testing.assert_array_equal(a, b)


def test_same_bits_on_every_isa(isa):
    fd.manual_seed(17)
    u, z, z64 = fd.rand(100_001), fd.randn(100_001), fd.randn(100_001, dtype=fd.float64)
    _C.set_cpu_isa("ref")
    fd.manual_seed(17)
    ur, zr, z64r = fd.rand(100_001), fd.randn(100_001), fd.randn(100_001, dtype=fd.float64)
    np.testing.assert_array_equal(u.numpy(), ur.numpy())  # same words; multiply-adds may contract
    np.testing.assert_allclose(z.numpy(), zr.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(z64.numpy(), z64r.numpy(), rtol=1e-13, atol=1e-14)


def test_successive_seeds_and_calls_differ():
    fd.manual_seed(18)
    a = fd.randn(1000).numpy()
    fd.manual_seed(18)
    np.testing.assert_array_equal(a, fd.randn(1000).numpy())
    assert not np.array_equal(a, fd.randn(1000).numpy())
    fd.manual_seed(19)
    assert not np.array_equal(a, fd.randn(1000).numpy())


@pytest.mark.parametrize("dt", FLOATS)
def test_prefix_does_not_depend_on_size(dt):
    # element i is a function of (key, i): a longer fill starts with the shorter one
    fd.manual_seed(20)
    a = fd.randn(1000, dtype=dt).to(fd.float64).numpy()
    fd.manual_seed(20)
    b = fd.randn(70_001, dtype=dt).to(fd.float64).numpy()
    np.testing.assert_array_equal(a, b[:1000])


@pytest.mark.parametrize("dt", [fd.float32, fd.float64, fd.bfloat16])
def test_strided_inplace_fills(dt):
    for fill, args in (("normal_", (0.5, 2.0)), ("uniform_", (-2.0, 2.0))):
        base = fd.full((301, 517), 7.0, dtype=dt)
        view = base.t()[::2]  # (259, 301): base's even columns, strides (2, 517)
        fd.manual_seed(21)
        getattr(view, fill)(*args)
        fd.manual_seed(21)
        ref = fd.empty(*view.shape, dtype=dt)
        getattr(ref, fill)(*args)  # the same draws, written contiguously
        np.testing.assert_array_equal(view.to(fd.float64).numpy(), ref.to(fd.float64).numpy())
        full = base.to(fd.float64).numpy()
        assert (full[:, 1::2] == 7.0).all()  # the columns the view skips are untouched
        if fill == "uniform_":
            v = view.to(fd.float64).numpy()
            assert v.min() >= -2 and v.max() < 2 and abs(v.mean()) < 0.05


def test_inplace_fill_of_integer_tensor():
    x = fd.zeros(1000, dtype=fd.int64)
    x.uniform_(0.0, 10.0)
    v = x.numpy()
    assert v.min() >= 0 and v.max() <= 9 and len(np.unique(v)) == 10


@pytest.mark.parametrize("dt", [fd.float32, fd.float64, fd.bfloat16])
def test_bernoulli(dt):
    fd.manual_seed(22)
    ps = np.array([0.0, 1.0, 0.1, 0.5, 0.9, 0.3])
    p = fd.tensor(np.repeat(ps, 200_000).reshape(6, -1).T.copy()).to(dt).t()  # (6, 200000), strided
    y = fd.bernoulli(p)
    assert y.dtype == dt and tuple(y.shape) == (6, 200_000)
    y = y.to(fd.float64).numpy()
    assert set(np.unique(y)) <= {0.0, 1.0}
    pe = p.to(fd.float64).numpy()[:, 0]
    for row, q in zip(y, pe):
        assert abs(row.mean() - q) <= 5 * np.sqrt(q * (1 - q) / row.size) + 1e-12, q


def test_bernoulli_rows_independent():
    fd.manual_seed(23)
    y = fd.bernoulli(fd.full((2, N), 0.5)).numpy()
    assert abs(np.corrcoef(y[0], y[1])[0, 1]) < 5 / np.sqrt(N)
    assert abs(np.corrcoef(y[0, :-1], y[0, 1:])[0, 1]) < 5 / np.sqrt(N)


@pytest.mark.parametrize("low,high", [(0, 7), (-5, 5), (-2 ** 62, 2 ** 62), (10 ** 12, 10 ** 12 + 3)])
def test_randint(low, high):
    fd.manual_seed(24)
    x = fd.randint(low, high, (600_001,)).numpy()
    assert x.dtype == np.int64 and x.min() >= low and x.max() < high
    if high - low <= 10:
        counts = np.bincount(x - low, minlength=high - low)
        assert stats.chisquare(counts).pvalue > 1e-3
    else:
        assert abs((x / (high - low) - low / (high - low)).mean() - 0.5) < 0.005
    f = fd.randint(0, 10, (1000,), dtype=fd.float32).numpy()
    assert f.dtype == np.float32 and set(np.unique(f)) <= set(range(10))


def test_randperm():
    fd.manual_seed(25)
    p = fd.randperm(100_001).numpy()
    assert np.array_equal(np.sort(p), np.arange(100_001))
    assert abs(np.corrcoef(p, np.arange(p.size))[0, 1]) < 0.02
    firsts = np.array([fd.randperm(5).numpy()[0] for _ in range(5000)])
    assert stats.chisquare(np.bincount(firsts, minlength=5)).pvalue > 1e-3
    assert fd.randperm(0).numel() == 0 and fd.randperm(1).tolist() == [0]


@pytest.mark.parametrize("fill,args,dist", [
    ("exponential_", (2.0,), lambda: stats.expon(scale=0.5)),
    ("log_normal_", (0.5, 0.75), lambda: stats.lognorm(s=0.75, scale=np.exp(0.5))),
    ("cauchy_", (1.0, 2.0), lambda: stats.cauchy(loc=1.0, scale=2.0)),
])
def test_python_fills_follow_their_distributions(fill, args, dist):
    fd.manual_seed(26)
    x = fd.empty(200_001, dtype=fd.float64)
    getattr(x, fill)(*args)
    assert stats.kstest(x.numpy(), dist().cdf).pvalue > 1e-3


def test_same_distribution_as_torch(torch):
    fd.manual_seed(27)
    torch.manual_seed(27)
    a, b = fd.randn(200_000).numpy(), torch.randn(200_000).numpy()
    assert stats.ks_2samp(a, b).pvalue > 1e-3
    a, b = fd.rand(200_000).numpy(), torch.rand(200_000).numpy()
    assert stats.ks_2samp(a, b).pvalue > 1e-3


def test_empty_and_tiny_shapes():
    for dt in FLOATS:
        assert fd.randn(0, 3, dtype=dt).numel() == 0 and fd.rand(0, dtype=dt).numel() == 0
        assert fd.randn(1, dtype=dt).numel() == 1
        x = fd.empty(0, dtype=dt)
        x.normal_()
        x.uniform_()
