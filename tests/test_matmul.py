"""matmul / linear through the GEMM kernel: all the PyTorch shape cases, strided operands,
every ISA, gradients; random shapes against a float64 reference."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.nn.functional as F
from checks import assert_close, fd_grads, strided, torch_grads

CASES = [((7,), (7,)), ((3, 7), (7,)), ((7,), (7, 5)), ((3, 7), (7, 5)), ((2, 3, 7), (7, 5)), ((7,), (2, 7, 5)),
         ((2, 1, 3, 7), (4, 7, 5)), ((1, 3, 7), (2, 7, 5)), ((65, 130), (130, 67)), ((0, 4), (4, 3)), ((3, 0), (0, 2))]


@pytest.mark.parametrize("sa,sb", CASES)
@pytest.mark.parametrize("dtype", [fd.float32, fd.float64])
def test_matmul_shapes(sa, sb, dtype, isa, rng):
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    got = fd.matmul(fd.tensor(a, dtype=dtype), fd.tensor(b, dtype=dtype))
    want = np.matmul(a, b)
    assert tuple(got.shape) == want.shape
    tol = dict(rtol=2e-5, atol=2e-5) if dtype == fd.float32 else dict(rtol=1e-11, atol=1e-11)
    assert_close(got, want, **tol)


@pytest.mark.parametrize("la", ["contig", "transposed", "stepped"])
@pytest.mark.parametrize("lb", ["contig", "transposed", "stepped"])
def test_matmul_strided(la, lb, isa, rng):
    a, b = rng.standard_normal((33, 47)), rng.standard_normal((47, 29))
    got = strided(a, fd.float64, kind=la) @ strided(b, fd.float64, kind=lb)
    assert_close(got, a @ b, rtol=1e-11, atol=1e-11)


def test_random_shapes_vs_float64(isa):
    rng = np.random.default_rng(1234)
    for _ in range(25):
        m, k, n = (int(x) for x in rng.integers(1, 300, 3))
        a = rng.standard_normal((k, m) if rng.random() < 0.5 else (m, k)).astype(np.float32)
        b = rng.standard_normal((n, k) if rng.random() < 0.5 else (k, n)).astype(np.float32)
        ta, tb = fd.tensor(a), fd.tensor(b)
        if a.shape != (m, k):
            ta, a = ta.T, a.T
        if b.shape != (k, n):
            tb, b = tb.T, b.T
        got = (ta @ tb).numpy().astype(np.float64)
        want = a.astype(np.float64) @ b.astype(np.float64)
        bound = 1e-5 * (np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)) + 1e-6
        assert (np.abs(got - want) <= bound).all(), (m, k, n)


def test_matmul_int_and_errors():
    a = fd.tensor([[1, 2], [3, 4]])
    np.testing.assert_array_equal((a @ a).numpy(), np.array([[7, 10], [15, 22]]))
    with pytest.raises(ValueError, match="cannot be multiplied"):
        fd.randn(3, 4) @ fd.randn(5, 6)
    with pytest.raises(ValueError, match="at least 1D"):
        fd.matmul(fd.tensor(1.0), fd.randn(3))


@pytest.mark.parametrize("sa,sb", [((3, 7), (7, 5)), ((2, 3, 7), (7, 5)), ((2, 1, 3, 7), (4, 7, 5)), ((7,), (7, 5)), ((3, 7), (7,))])
def test_matmul_grads_vs_torch(sa, sb, torch, rng):
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    up = rng.standard_normal(np.matmul(a, b).shape)
    wo, wg = torch_grads(torch, torch.matmul, [a, b], up)
    o, g = fd_grads(fd.matmul, [a, b], up)
    assert_close(o, wo, rtol=1e-11, atol=1e-11)
    for x, y in zip(g, wg):
        assert_close(x, y, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("xshape", [(5, 7), (2, 3, 7), (7,)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_vs_torch(xshape, bias, torch, rng):
    x, w = rng.standard_normal(xshape), rng.standard_normal((4, 7))
    bb = rng.standard_normal(4)
    up = rng.standard_normal(xshape[:-1] + (4,))
    args = [x, w, bb] if bias else [x, w]
    wo, wg = torch_grads(torch, torch.nn.functional.linear, args, up)
    o, g = fd_grads(F.linear, args, up)
    assert_close(o, wo, rtol=1e-11, atol=1e-11)
    for p, q in zip(g, wg):
        assert_close(p, q, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("rows,inf,outf", [
    (1, 300, 70),        # one row: the vector kernels
    (300, 70, 1),        # one column: transposed to one row (the vector kernels), the bias filled first
    (20, 40, 64),        # small: the unpacked tile kernel
    (768, 128, 128),     # tall and narrow: A read in place, rows in blocks
    (3000, 200, 60),     # the same with a partial column panel (through a temporary tile)
    (128, 4096, 96),     # deep: split over K
    (40, 512, 1000),     # short M: one A block, column chunks
    (700, 300, 530),     # the blocked loops, split over N, partial tiles everywhere
    (3000, 300, 300),    # tall: split over M
    (6, 0, 5), (0, 3, 4)])
def test_linear_bias_in_every_gemm_path(rows, inf, outf, isa, rng):
    # The CPU GEMM adds linear's bias as it first writes each block of the output; every path
    # the product can take gets it once, in float32 and float64, on every ISA.
    x, w, b = rng.standard_normal((rows, inf)), rng.standard_normal((outf, inf)), rng.standard_normal(outf)
    want = x @ w.T + b
    for dt, tol in ((fd.float64, 1e-12), (fd.float32, 2e-5)):
        got = F.linear(fd.tensor(x, dtype=dt), fd.tensor(w, dtype=dt), fd.tensor(b, dtype=dt)).numpy()
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1.0, np.abs(want).max(initial=0)))
    # a strided input and a bias of another dtype (promoted, as PyTorch's type promotion would)
    xs = fd.tensor(np.repeat(x, 2, axis=0), dtype=fd.float32)[::2]
    got = F.linear(xs, fd.tensor(w, dtype=fd.float32), fd.tensor(b, dtype=fd.float32)).numpy()
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * max(1.0, np.abs(want).max(initial=0)))


@pytest.mark.parametrize("m,n,k", [(128, 128, 128), (96, 80, 96), (200, 384, 130), (64, 576, 77), (300, 160, 257)])
def test_matmul_column_chunks_and_small_splits(m, n, k, isa, rng):
    # Short M with N in uneven panel counts (3, 5, 12, 18 panels of 32 float columns): the
    # column chunks are balanced over the threads and each is computed once; float32 and
    # float64 (other panel widths) against numpy, with a transposed B (packed differently).
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    want = a @ b
    for dt, tol in ((fd.float64, 1e-12), (fd.float32, 3e-5)):
        fa, fb = fd.tensor(a, dtype=dt), fd.tensor(b, dtype=dt)
        for got in (fa @ fb, fa @ fd.tensor(np.ascontiguousarray(b.T), dtype=dt).T):
            np.testing.assert_allclose(got.numpy(), want, rtol=tol, atol=tol * np.abs(want).max())


_CHUNKED_KC_SCRIPT = """
import sys, numpy as np, fastdl as fd, fastdl.nn.functional as F
from fastdl import _C
_C.set_cpu_isa(sys.argv[1])
fd.set_num_threads(int(sys.argv[2]))
rng = np.random.default_rng(7)
for m, n, k in [(40, 512, 1000), (7, 600, 700), (96, 160, 401)]:
    a, b, c = rng.standard_normal((m, k)), rng.standard_normal((k, n)), rng.standard_normal((m, n))
    w, bias = rng.standard_normal((n, k)), rng.standard_normal(n)
    for dt, tol in ((fd.float64, 1e-12), (fd.float32, 5e-5)):
        fa, fb, fc = (fd.tensor(x, dtype=dt) for x in (a, b, c))
        runs = [fd.addmm(fc, fa, fb, beta=0.5, alpha=2.0).numpy() for _ in range(4)]
        want = 0.5 * c + 2.0 * (a @ b)
        np.testing.assert_allclose(runs[0], want, rtol=tol, atol=tol * np.abs(want).max())
        assert all(np.array_equal(r, runs[0]) for r in runs), (m, n, k, dt)  # k order fixed per chunk
        got = F.linear(fa, fd.tensor(w, dtype=dt), fd.tensor(bias, dtype=dt)).numpy()
        want = a @ w.T + bias
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())
print("ok")
"""


@pytest.mark.parametrize("threads,span", [(2, 0), (2, 2), (5, 3)])
def test_matmul_column_chunks_over_many_kc_blocks(threads, span, isa):
    # Short M over several kc blocks (kc forced to 64): a column chunk runs its kc blocks in order
    # on one thread, in spans of K (forced to 2 or 3 kc blocks; 0: the whole K, as packed A is
    # small) whose next span waits only for that chunk's previous one, wherever it ran, never for
    # a barrier. More threads than cores make some start late, so chunks hop between threads
    # from span to span; the sums must still match numpy, in float32 and float64, with addmm's
    # beta and linear's bias, and be bitwise the same run to run.
    import os
    import subprocess
    import sys
    env = dict(os.environ, FASTDL_GEMM_KC="64", FASTDL_GEMM_TUNE="0", FASTDL_GEMM_SPAN=str(span))
    out = subprocess.run([sys.executable, "-c", _CHUNKED_KC_SCRIPT, isa, str(threads)], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


@pytest.mark.parametrize("m,n,k", [(200, 128, 160), (29, 256, 256), (500, 64, 100), (90, 96, 250)])
def test_matmul_unpacked_mid_sizes(m, n, k, isa, rng):
    # Mid-size row-major products run the tile kernel on A and B where they lie, their row
    # tiles split over the threads: row counts off the tile height, operands that are column
    # slices of wider arrays (rows strided past their width), and addmm's alpha and beta; on one
    # thread and on two, in float32 and float64.
    a = rng.standard_normal((m, k + 7))[:, 5 : 5 + k]
    b = rng.standard_normal((k, n + 40))[:, 3 : 3 + n]
    c = rng.standard_normal((m, n))
    want = 2.0 * (a @ b) + 0.5 * c
    threads = fd.get_num_threads()
    try:
        for nt in (1, 2):
            fd.set_num_threads(nt)
            for dt, tol in ((fd.float64, 1e-12), (fd.float32, 3e-5)):
                fa = fd.tensor(np.ascontiguousarray(rng.standard_normal((m, k + 7))), dtype=dt)
                fa[:, 5 : 5 + k] = fd.tensor(a, dtype=dt)
                fb = fd.tensor(np.zeros((k, n + 40)), dtype=dt)
                fb[:, 3 : 3 + n] = fd.tensor(b, dtype=dt)
                va, vb = fa[:, 5 : 5 + k], fb[:, 3 : 3 + n]
                assert not va.is_contiguous() and not vb.is_contiguous()
                scale = tol * np.abs(want).max()
                np.testing.assert_allclose((va @ vb).numpy(), a @ b, rtol=tol, atol=scale)
                got = fd.addmm(fd.tensor(c, dtype=dt), va, vb, beta=0.5, alpha=2.0).numpy()
                np.testing.assert_allclose(got, want, rtol=tol, atol=scale)
    finally:
        fd.set_num_threads(threads)


def test_linear_gradcheck(rng):
    x = fd.tensor(rng.standard_normal((3, 4)), dtype=fd.float64, requires_grad=True)
    w = fd.tensor(rng.standard_normal((2, 4)), dtype=fd.float64, requires_grad=True)
    b = fd.tensor(rng.standard_normal(2), dtype=fd.float64, requires_grad=True)
    assert fd.autograd.gradcheck(lambda x, w, b: F.linear(x, w, b).tanh(), [x, w, b])


def test_matmul_broadcast_batch_against_smaller_rank(torch):
    # regression: (3, 3, 1, 2) @ (1, 2, 4) read the broadcast operand with wrong strides
    rng = np.random.default_rng(0)
    for sa, sb, dt in [((3, 3, 1, 2), (1, 2, 4), np.float64), ((3, 2), (3, 1, 2, 1), np.int64)]:
        a, b = rng.integers(-3, 4, sa).astype(dt), rng.integers(-3, 4, sb).astype(dt)
        np.testing.assert_allclose((fd.tensor(a) @ fd.tensor(b)).numpy(), (torch.tensor(a) @ torch.tensor(b)).numpy())


def test_matmul_empty_operands_with_batch_fold():
    assert (fd.ones(2, 4, 1) @ fd.ones(1, 0)).shape == (2, 4, 0)
    r = fd.ones(2, 3, 0) @ fd.ones(0, 4)
    assert r.shape == (2, 3, 4) and r.sum().item() == 0
    assert (fd.ones(2, 3, 0, dtype=fd.bfloat16) @ fd.ones(0, dtype=fd.bfloat16)).shape == (2, 3)


@pytest.mark.parametrize("dtype", [fd.float32, fd.float64])
def test_small_unpacked_path(dtype, isa, rng):
    # Small row-major problems with N a multiple of the tile width skip packing; cover row
    # tails, K = 1, B transposed (packed once) and beta = 1 through linear's bias.
    for m, k, n in [(1, 1, 16), (5, 7, 32), (14, 64, 64), (15, 33, 96), (64, 64, 64), (29, 256, 32), (3, 5, 48)]:
        a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
        A, B = fd.tensor(a, dtype=dtype), fd.tensor(b, dtype=dtype)
        tol = dict(rtol=2e-5, atol=2e-5) if dtype == fd.float32 else dict(rtol=1e-11, atol=1e-11)
        assert_close(A @ B, a @ b, **tol)
        BT = fd.tensor(np.ascontiguousarray(b.T), dtype=dtype).T
        assert_close(A @ BT, a @ b, **tol)
        bias = rng.standard_normal(n)
        got = F.linear(A, fd.tensor(np.ascontiguousarray(b.T), dtype=dtype), fd.tensor(bias, dtype=dtype))
        assert_close(got, a @ b + bias, **tol)


@pytest.mark.parametrize("dtype", [fd.float32, fd.float64])
def test_short_row_tiles_every_k_parity(dtype, isa, rng):
    # The last 1-3 rows of M (128 = 21 x 6 + 2 on AVX2, 14 + 1..3 on AVX-512) run a tile that sums
    # even and odd k apart: every tail height against float64, K odd and even (1, 2, 3, 64, 257),
    # through the packed path (K past the unpacked path's bound) and the unpacked one.
    eps = 3e-5 if dtype == fd.float32 else 1e-11
    for m in (1, 2, 3, 7, 8, 9, 15, 16, 17, 29, 30, 31):
        for k in (1, 2, 3, 64, 257, 600):
            n = 48 if k < 300 else 40
            a, b, c = rng.standard_normal((m, k)), rng.standard_normal((k, n)), rng.standard_normal((m, n))
            for want, got in ((a @ b, lambda x, y: x @ y),
                              (0.5 * c + 2.0 * (a @ b), lambda x, y: fd.addmm(fd.tensor(c, dtype=dtype), x, y,
                                                                                beta=0.5, alpha=2.0))):
                out = got(fd.tensor(a, dtype=dtype), fd.tensor(b, dtype=dtype))
                assert_close(out, want, rtol=eps, atol=eps * np.abs(want).max(), msg=f"m={m} k={k}")


def _heads(x, h):  # (B, T, H*D) -> (B, H, T, D) view, as attention splits heads
    B, T, C = x.shape
    return x.reshape(B, T, h, C // h).swapaxes(1, 2) if isinstance(x, np.ndarray) else \
        x.view(B, T, h, C // h).transpose(1, 2)


@pytest.mark.parametrize("case", ["qk", "pv", "qkT_b", "bcast", "three_levels", "bcast_outer"])
def test_matmul_batched_views(case, isa, rng):
    """Batched operands whose batch dims don't collapse into one stride (heads split out of
    (B, T, H, D), broadcast batch dims) are read in place; results as float64 numpy."""
    if case in ("qk", "pv", "qkT_b"):
        x = rng.standard_normal((3, 9, 4 * 5))
        y = rng.standard_normal((3, 9, 4 * 5))
        A, B = _heads(x, 4), _heads(y, 4)
        fa, fb = _heads(fd.tensor(x), 4), _heads(fd.tensor(y), 4)
        if case == "qk":
            A, B, fa, fb = A, B.swapaxes(-1, -2), fa, fb.transpose(-2, -1)
        elif case == "pv":
            p = rng.standard_normal((3, 4, 9, 9))
            A, fa = p.swapaxes(-1, -2), fd.tensor(p).transpose(-2, -1)
        else:
            A, fa = A.swapaxes(-1, -2), fa.transpose(-2, -1)
    elif case == "bcast":
        a, b = rng.standard_normal((2, 1, 5, 7)), rng.standard_normal((3, 7, 6)).transpose(0, 2, 1)
        A, B, fa, fb = a, b.swapaxes(-1, -2), fd.tensor(a), fd.tensor(b).transpose(-1, -2)
    elif case == "three_levels":
        a = rng.standard_normal((2, 3, 4, 5, 6))
        b = rng.standard_normal((6, 7))
        A, B = a.transpose(2, 0, 1, 3, 4), b
        fa, fb = fd.tensor(a).permute(2, 0, 1, 3, 4), fd.tensor(b)
        A = A[:, :, :, ::2]
        fa = fa[:, :, :, ::2]
    else:
        a, b = rng.standard_normal((4, 1, 2, 5, 3)), rng.standard_normal((3, 1, 3, 6))
        A, B, fa, fb = a, b, fd.tensor(a), fd.tensor(b)
    for dt, tol in ((fd.float64, 1e-11), (fd.float32, 2e-5)):
        got = fa.to(dt) @ fb.to(dt)
        assert_close(got, np.matmul(A, B), rtol=tol, atol=tol)


def test_matmul_batched_view_grads_vs_torch(torch, rng):
    x = rng.standard_normal((2, 7, 12))
    y = rng.standard_normal((2, 7, 12))
    g = rng.standard_normal((2, 3, 7, 7))
    fx, fy = fd.tensor(x, requires_grad=True), fd.tensor(y, requires_grad=True)
    (_heads(fx, 3) @ _heads(fy, 3).transpose(-2, -1)).backward(fd.tensor(g))
    tx, ty = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    (_heads(tx, 3) @ _heads(ty, 3).transpose(-2, -1)).backward(torch.tensor(g))
    assert_close(fx.grad, tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    assert_close(fy.grad, ty.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(2708, 16, 1433), (1500, 7, 900), (1999, 40, 600), (16, 1433, 2708), (7, 1000, 700),
                                   (20, 517, 1100), (768, 128, 128), (769, 65, 129), (1000, 127, 256), (700, 100, 64),
                                   (1200, 24, 700), (900, 8, 1000), (800, 128, 513), (1030, 100, 2000),
                                   (600, 127, 4200)])
@pytest.mark.parametrize("dtype", [fd.float32, fd.float64])
def test_narrow_products(shape, dtype, isa, rng):
    """Few columns (X @ W^T with a narrow W, GCN layers, and up to 8 panels while the packed B
    is at most 2 MiB, a GPT block's products, in groups of rows that threads claim (600 x 127 x
    4200 is past that in float32 and packed): the tile kernel reads A in place, a partial last panel goes through a
    temporary, on the half-width tile when it has at most nr / 2 columns: 16, 7, 8, the 8 of 40
    and the 1 of 65 on AVX-512, 8 of 24 on AVX2) and few rows (weight gradients g^T @ X);
    every layout against float64 numpy."""
    m, n, k = shape
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    tol = dict(rtol=1e-4, atol=1e-4 * np.sqrt(k)) if dtype == fd.float32 else dict(rtol=1e-10, atol=1e-10)
    fa, fb = fd.tensor(a, dtype=dtype), fd.tensor(b, dtype=dtype)
    assert_close(fa @ fb, a @ b, **tol)
    assert_close(fa @ fd.tensor(b.T.copy(), dtype=dtype).T, a @ b, **tol)       # B transposed
    assert_close(fd.tensor(a.T.copy(), dtype=dtype).T @ fb, a @ b, **tol)       # A transposed
    bias = rng.standard_normal(n)                                               # beta = 1 path
    got = F.linear(fa, fd.tensor(b.T.copy(), dtype=dtype), fd.tensor(bias, dtype=dtype))
    assert_close(got, a @ b + bias, **tol)


@pytest.mark.parametrize("k", [900, 96])  # groups of one tile; of seven, the last one partial
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_narrow_row_groups_any_thread_count(threads, k, isa, rng):
    # Threads claim groups of rows, each packing B once: every row written once, bias included,
    # the same bits on any thread count.
    a, b, bias = rng.standard_normal((1003, k)), rng.standard_normal((k, 72)), rng.standard_normal(72)
    fa, fw, fbias = fd.tensor(a, dtype=fd.float32), fd.tensor(b.T.copy(), dtype=fd.float32), fd.tensor(bias, dtype=fd.float32)
    prev = fd.get_num_threads()
    try:
        fd.set_num_threads(1)
        want = F.linear(fa, fw, fbias).numpy()
        fd.set_num_threads(threads)
        got = F.linear(fa, fw, fbias).numpy()
    finally:
        fd.set_num_threads(prev)
    np.testing.assert_array_equal(got, want)
    assert_close(got, a @ b + bias, rtol=1e-4, atol=1e-4 * np.sqrt(k))


@pytest.mark.parametrize("shape", [(37, 41, 2050), (64, 80, 12288), (256, 256, 1024), (5, 300, 4099), (130, 3, 2600)])
@pytest.mark.parametrize("dtype", [fd.float32, fd.float64])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_deep_products_split_k(shape, dtype, threads, isa, rng):
    """K well beyond M and N: threads split K into partial products summed in thread order
    (a K share per thread ending mid-block, beta / alpha applied once, NaN in C under
    beta = 0 ignored); every layout against float64 numpy, on 1, 2 and 3 threads."""
    m, n, k = shape
    a, b, c = rng.standard_normal((m, k)), rng.standard_normal((k, n)), rng.standard_normal((m, n))
    tol = dict(rtol=1e-4, atol=1e-4 * np.sqrt(k)) if dtype == fd.float32 else dict(rtol=1e-10, atol=1e-10)
    prev = fd.get_num_threads()
    fd.set_num_threads(threads)
    try:
        fa, fb = fd.tensor(a, dtype=dtype), fd.tensor(b, dtype=dtype)
        assert_close(fa @ fb, a @ b, **tol)
        assert_close(fd.tensor(a.T.copy(), dtype=dtype).T @ fd.tensor(b.T.copy(), dtype=dtype).T, a @ b, **tol)
        got = fd.addmm(fd.tensor(c, dtype=dtype), fa, fb, beta=0.5, alpha=-2.0)
        assert_close(got, 0.5 * c - 2.0 * (a @ b), **tol)
        nanc = fd.tensor(np.full((m, n), np.nan), dtype=dtype)
        assert_close(fd.addmm(nanc, fa, fb, beta=0.0), a @ b, **tol)
    finally:
        fd.set_num_threads(prev)


@pytest.mark.parametrize("K,N", [(256, 1024), (1433, 16), (37, 130), (300, 7), (4096, 97), (3, 64), (6, 130), (7, 33)])
@pytest.mark.parametrize("dtype", [fd.float32, fd.float64])
def test_one_row_products(K, N, dtype, isa, rng):
    """M == 1 (one token through a layer): the vector kernels read B in place, down its columns
    (X @ W^T) or along its rows (x @ B), from contiguous or strided vectors; against numpy."""
    x, w = rng.standard_normal((1, K)), rng.standard_normal((N, K))
    bias = rng.standard_normal(N)
    tol = dict(rtol=1e-4, atol=1e-4 * np.sqrt(K)) if dtype == fd.float32 else dict(rtol=1e-10, atol=1e-10)
    fx, fw = fd.tensor(x, dtype=dtype), fd.tensor(w, dtype=dtype)
    assert_close(F.linear(fx, fw), x @ w.T, **tol)                                      # dot form
    assert_close(F.linear(fx, fw, fd.tensor(bias, dtype=dtype)), x @ w.T + bias, **tol)  # beta = 1
    assert_close(fx @ fd.tensor(w.T.copy(), dtype=dtype), x @ w.T, **tol)               # axpy form
    assert_close(fx[0] @ fd.tensor(w.T.copy(), dtype=dtype), x[0] @ w.T, **tol)         # 1-D @ 2-D
    xs = fd.tensor(np.repeat(x, 3, axis=1), dtype=dtype)[:, ::3]                         # strided vector
    assert_close(F.linear(xs, fw), x @ w.T, **tol)
    assert_close(fw @ fx[0], w @ x[0], **tol)                                           # matrix @ vector


# ---- bf16: every kernel path the CPU has (widened f32 FMAs, VDPBF16PS pair dots, AMX tiles) ----

def _bf16(x):
    """float64 array of the bf16 values fastdl stores for x (round to nearest even)."""
    return fd.tensor(x, dtype=fd.bfloat16).to(fd.float64).numpy()


@pytest.mark.parametrize("path", ["widen", "dot", "amx", "amx-emulated"])
def test_bf16_gemm_paths(path, rng):
    # amx-emulated runs the AMX packing layouts, k padding and tile loops on an emulated tile
    # unit, so they are checked on every CPU; "amx" runs the real unit where the CPU has one.
    from fastdl import _C
    info = _C.cpu_info()
    if path == "dot" and not info["avx512bf16"]:
        pytest.skip("this CPU has no AVX512-BF16")
    if path == "amx" and not info["amx_bf16"]:
        pytest.skip("this CPU has no AMX-BF16 (amx_tile / amx_bf16 in /proc/cpuinfo)")
    if path in ("dot", "amx") and _C.cpu_isa() != "avx512":
        # (FASTDL_CPU_ISA=ref or avx2: the suite's second pass runs the scalar reference kernels)
        with pytest.raises(ValueError, match="under the ISA in force"):
            _C._gemm_bf16_path(path)
        pytest.skip(f"the {path} path runs under the avx512 ISA only; {_C.cpu_isa()} is in force")
    name = _C._gemm_bf16_path(path)
    try:
        assert _C._gemm_kernel_name("bfloat16") == name
        if path.startswith("amx"):
            assert name.startswith("amx/")
        # (100, 600, 96): full 32-row / 32-column panels and a partial one, K in three chunks of 256
        # with a tail (the AMX kernel keeps f32 sums across chunks), every operand layout.
        for m, k, n in [(1, 1, 1), (45, 77, 50), (33, 31, 65), (130, 129, 70), (7, 300, 33), (64, 64, 64), (2, 1000, 3),
                        (100, 600, 96)]:
            a, b = _bf16(rng.standard_normal((m, k))), _bf16(rng.standard_normal((k, n)))
            A, B = fd.tensor(a, dtype=fd.bfloat16), fd.tensor(b, dtype=fd.bfloat16)
            want = a @ b
            tol = dict(rtol=1e-2, atol=1e-2 * np.sqrt(k))  # f32 sums, one rounding to bf16
            assert_close((A @ B).to(fd.float64), want, **tol)
            BT = fd.tensor(np.ascontiguousarray(b.T), dtype=fd.bfloat16).T  # X @ W^T layout
            assert_close((A @ BT).to(fd.float64), want, **tol)
            AT = fd.tensor(np.ascontiguousarray(a.T), dtype=fd.bfloat16).T  # X^T @ G layout (weight grads)
            assert_close((AT @ B).to(fd.float64), want, **tol)
            assert_close((AT @ BT).to(fd.float64), want, **tol)
        # batched, and linear forward and backward (bias, grads of all three)
        x, w, bias = _bf16(rng.standard_normal((3, 37, 70))), _bf16(rng.standard_normal((45, 70))), _bf16(rng.standard_normal(45))
        g = _bf16(rng.standard_normal((3, 37, 45)))
        X, W, Bb = (fd.tensor(v, dtype=fd.bfloat16, requires_grad=True) for v in (x, w, bias))
        y = F.linear(X, W, Bb)
        assert_close(y.to(fd.float64), x @ w.T + bias, rtol=1e-2, atol=0.1)
        y.backward(fd.tensor(g, dtype=fd.bfloat16))
        assert_close(X.grad.to(fd.float64), g @ w, rtol=1e-2, atol=0.1)
        assert_close(W.grad.to(fd.float64), np.einsum("bio,bij->oj", g, x), rtol=1e-2, atol=0.3)
        assert_close(Bb.grad.to(fd.float64), g.sum((0, 1)), rtol=1e-2, atol=0.3)
    finally:
        _C._gemm_bf16_path("auto")


def test_bf16_gemm_path_errors():
    from fastdl import _C
    with pytest.raises(ValueError, match="_gemm_bf16_path"):
        _C._gemm_bf16_path("tensor-cores")
    if not _C.cpu_info()["amx_bf16"]:
        with pytest.raises(ValueError, match="amx"):
            _C._gemm_bf16_path("amx")
    assert _C._gemm_bf16_path("auto") == _C._gemm_kernel_name("bfloat16")


def test_bf16_race_times_both_paths():
    """_gemm_bf16_race runs what "auto" measures between pair dots and widening (on AVX512-BF16
    CPUs without AMX); here on paths every CPU has. No speed is asserted (tests are not timed)."""
    from fastdl import _C
    ta, tb = _C._gemm_bf16_race("widen", "amx-emulated")
    assert 0 < ta < 60 and 0 < tb < 60
    with pytest.raises(ValueError, match="_gemm_bf16_race"):
        _C._gemm_bf16_race("widen", "tensor-cores")


def test_bf16_auto_follows_the_measured_choice(tmp_path):
    """Where the CPU has pair dots and no AMX, "auto" takes whichever of dots and widening the
    machine measured faster, and the cached choice decides later processes."""
    import glob
    import os
    import subprocess
    import sys
    from fastdl import _C
    info = _C.cpu_info()
    if not info["avx512bf16"] or info["amx_bf16"] or _C.cpu_isa() != "avx512":
        pytest.skip("auto measures dots against widening only on AVX512-BF16 CPUs without AMX (avx512 ISA)")

    def auto_kernel(tune):
        env = dict(os.environ, FASTDL_CACHE_DIR=str(tmp_path), FASTDL_GEMM_TUNE=tune)
        env.pop("FASTDL_GEMM_BF16", None)
        code = "from fastdl import _C; print(_C._gemm_kernel_name('bfloat16'))"
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    first = auto_kernel("redo")
    files = [f for f in glob.glob(str(tmp_path / "gemm-*")) if open(f).read().startswith("dot_wins")]
    assert len(files) == 1
    won = open(files[0]).read().split()[1] == "1"
    dot, widen = _C._gemm_bf16_path("dot"), _C._gemm_bf16_path("widen")
    _C._gemm_bf16_path("auto")
    assert first == (dot if won else widen)
    with open(files[0], "w") as f:  # the cache decides: flip it
        f.write(f"dot_wins {0 if won else 1}\n")
    assert auto_kernel("1") == (widen if won else dot)
    assert auto_kernel("0") == dot  # no measuring: the model's choice


def _blocking_in_subprocess(tmp_path, tune, m=1024, n=1024, k=2048, kc=None):
    import os
    import subprocess
    import sys
    env = dict(os.environ, FASTDL_CACHE_DIR=str(tmp_path), FASTDL_GEMM_TUNE=tune)
    env.pop("FASTDL_GEMM_KC", None)
    if kc:
        env["FASTDL_GEMM_KC"] = str(kc)
    code = f"from fastdl import _C; print(*_C._gemm_blocking({m}, {n}, {k}, 'float32'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return tuple(int(v) for v in out.stdout.split())


def test_gemm_blocking_is_measured_once_and_cached(tmp_path):
    # The first large float32 product measures kc on this CPU and caches it; a later process
    # reads the cache; FASTDL_GEMM_TUNE=0 keeps the analytic model; the ref ISA is never tuned.
    from fastdl import _C
    if _C.cpu_isa() == "ref":
        pytest.skip("the scalar reference ISA is not tuned")
    model = _blocking_in_subprocess(tmp_path, "0")
    assert not list(tmp_path.iterdir())  # nothing measured, nothing written
    measured = _blocking_in_subprocess(tmp_path, "redo")
    files = list(tmp_path.glob("gemm-*.txt"))
    assert len(files) == 1 and "f32" in files[0].name
    kc = int(files[0].read_text().split()[1])
    # in force: the measured kc (balanced over K like any kc), or the model's when it won (0)
    assert measured == (model if kc == 0 else _blocking_in_subprocess(tmp_path, "0", kc=kc))
    files[0].write_text("kc3 256\n")  # a later process takes the cached value as it stands
    assert _blocking_in_subprocess(tmp_path, "")[1] == 256
    assert _blocking_in_subprocess(tmp_path, "0") == model
    for old in ("kc", "kc2"):  # caches from before the kMinMcRows model or the normal-number race
        files[0].write_text(f"{old} 256\n")  # are measured again
        _blocking_in_subprocess(tmp_path, "")
        assert files[0].read_text().startswith("kc3 ")


def test_gemm_model_keeps_a_tall_a_block(tmp_path):
    # The model leaves L2 room for an A block of 128 rows (all of M when shorter), so a short,
    # deep product streams B past one A block instead of three (128 x 4096 x 4096 ran at 0.73x
    # PyTorch with 56-row blocks), while K = 2048 keeps one K block.
    from fastdl import _C
    if _C.cpu_isa() == "ref":
        pytest.skip("the scalar reference ISA has its own blocking")
    for m in (128, 100, 4096):
        mc, kc, _ = _blocking_in_subprocess(tmp_path, "0", m=m, n=4096, k=4096)
        assert mc >= min(m, 128), (m, mc, kc)


@pytest.mark.parametrize("cshape", [(6, 9), (9,), (1, 9), (6, 1), ()])
def test_addmm_one_gemm_matches_torch(cshape, isa, rng, torch):
    """addmm runs as one GEMM into a copy of the broadcast input (alpha and beta in the kernel):
    values and the gradients of input, mat1 and mat2 against PyTorch, with a transposed mat1,
    mixed dtypes, and the input left untouched."""
    c, a, b = rng.standard_normal(cshape), rng.standard_normal((5, 6)), rng.standard_normal((5, 9))
    tc, ta, tb = (torch.tensor(x, requires_grad=True) for x in (c, a, b))
    want = torch.addmm(tc, ta.T, tb, beta=-0.7, alpha=1.3)
    g = rng.standard_normal(want.shape)
    want.backward(torch.tensor(g))
    fc, fa, fb = (fd.tensor(x, requires_grad=True) for x in (c, a, b))
    got = fd.addmm(fc, fa.T, fb, beta=-0.7, alpha=1.3)
    got.backward(fd.tensor(g))
    assert_close(got, want.detach().numpy(), rtol=1e-12, atol=1e-12)
    for x, y in ((fc, tc), (fa, ta), (fb, tb)):
        assert_close(x.grad, y.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(fc.detach().numpy(), c)
    mixed = fd.addmm(fd.tensor(c, dtype=fd.float32), fd.tensor(a.T), fd.tensor(b, dtype=fd.float32))
    assert mixed.dtype == fd.float64
    assert_close(mixed, c.astype(np.float32) + a.T @ b.astype(np.float32), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("m,k", [(512, 1024), (7, 3), (1000, 33)])
def test_matrix_times_vector_every_layout(m, k, isa, rng):
    """A @ v (one output column) runs as one row of the transposed problem (the vector kernels):
    A row-major, transposed or stepped, v a vector or a (k, 1) matrix, and the gradients."""
    a, v, up = rng.standard_normal((m, k)), rng.standard_normal(k), rng.standard_normal(m)
    for dt, tol in ((fd.float64, 1e-12), (fd.float32, 3e-5)):
        for kind in ("contig", "transposed", "stepped"):
            fa = strided(a, dt, kind=kind)
            np.testing.assert_allclose((fa @ fd.tensor(v, dtype=dt)).numpy(), a @ v, rtol=tol, atol=tol * np.sqrt(k))
            got = (fa @ fd.tensor(v.reshape(k, 1), dtype=dt)).numpy()
            np.testing.assert_allclose(got, (a @ v).reshape(m, 1), rtol=tol, atol=tol * np.sqrt(k))
    out, (ga, gv) = fd_grads(lambda x, y: x @ y, [a, v], up)
    np.testing.assert_allclose(ga.numpy(), np.outer(up, v), rtol=1e-12)
    np.testing.assert_allclose(gv.numpy(), a.T @ up, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [fd.float32, fd.float64])
def test_batched_split_over_threads(dtype, isa, rng):
    """Batches of at least one matrix per thread run whole matrices per thread; larger matrices
    only as many as divide evenly, the remainder threaded inside each matrix. Every split, odd
    batch counts, narrow (few columns) and one-row products, against float64 numpy."""
    eps = 2e-5 if dtype == fd.float32 else 1e-11
    cases = [((3, 260, 150), (3, 150, 230)),  # large: 2 whole, 1 threaded inside (2 threads)
             ((5, 256, 64), (5, 64, 256)), ((7, 33, 20), (7, 20, 45)),  # small: all whole
             ((3, 900, 300), (3, 300, 4)), ((4, 1, 500), (4, 500, 300)),  # narrow, one row
             ((2, 3, 130, 70), (2, 1, 70, 90)),  # broadcast batch
             ((5, 128, 128), (5, 128, 128)), ((3, 100, 96), (3, 96, 160))]  # unpacked, near the work bound
    for sa, sb in cases:
        a, b = rng.standard_normal(sa), rng.standard_normal(sb)
        got = fd.tensor(a, dtype=dtype) @ fd.tensor(b, dtype=dtype)
        want = a @ b
        assert_close(got, want, rtol=eps, atol=eps * np.abs(want).max(), msg=f"{sa} @ {sb}")


@pytest.mark.parametrize("m,n,k", [(2, 37, 256), (5, 300, 301), (8, 64, 1024), (3, 1, 512), (9, 40, 300)])
def test_few_rows_times_w_either_layout(m, n, k, isa, rng):
    """A few rows (M <= 8, K >= 256) against W^T (dot kernel) or a row-major W (axpy kernel) read W
    once for all of them, unpacked; 9 rows take the packed path. Every A layout (its rows gathered
    for the dots when k is not contiguous), a bias, addmm's alpha / beta, a stepped W, a batch of
    such products, and the gradients."""
    x, w, b, c = (rng.standard_normal(s) for s in ((m, k), (n, k), (n,), (m, n)))
    for dt, tol in ((fd.float64, 1e-12), (fd.float32, 3e-5)):
        for wt in (fd.tensor(w, dtype=dt).T, fd.tensor(np.ascontiguousarray(w.T), dtype=dt),
                   strided(w.T, dt, kind="stepped")):  # W^T, row-major W (k x n), W with column steps
            for kind in ("contig", "transposed", "stepped"):
                fx = strided(x, dt, kind=kind)
                want = x @ w.T
                np.testing.assert_allclose((fx @ wt).numpy(), want, rtol=tol, atol=tol * np.sqrt(k))
                got = fd.addmm(fd.tensor(c, dtype=dt), fx, wt, beta=0.5, alpha=-2.0).numpy()
                np.testing.assert_allclose(got, 0.5 * c - 2.0 * want, rtol=tol, atol=tol * np.sqrt(k))
            xs = rng.standard_normal((3, m, k))
            np.testing.assert_allclose((fd.tensor(xs, dtype=dt) @ wt).numpy(), xs @ w.T, rtol=tol,
                                       atol=tol * np.sqrt(k))
        got = F.linear(fd.tensor(x, dtype=dt), fd.tensor(w, dtype=dt), fd.tensor(b, dtype=dt)).numpy()
        np.testing.assert_allclose(got, x @ w.T + b, rtol=tol, atol=tol * np.sqrt(k))
    up = rng.standard_normal((m, n))
    out, (gx, gw) = fd_grads(lambda p, q: F.linear(p, q), [x, w], up)
    np.testing.assert_allclose(out.detach().numpy(), x @ w.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gx.numpy(), up @ w, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw.numpy(), up.T @ x, rtol=1e-12, atol=1e-12)
