"""fd.svd_lowrank / fd.pca_lowrank (randomized truncated SVD, PyTorch's API): exact on matrices of
rank <= q, singular values against numpy's SVD in float64, orthonormal factors, batches, the M
argument, both orientations, gradients by finite differences, and PyTorch's results when installed."""
import numpy as np
import pytest

import fastdl as fd
from fastdl.autograd import gradcheck


def _low_rank(shape, r, seed):
    rng = np.random.default_rng(seed)
    *b, m, n = shape
    return rng.standard_normal((*b, m, r)) @ rng.standard_normal((*b, r, n))


@pytest.mark.parametrize("shape", [(9, 7), (7, 9), (3, 8, 5), (2, 5, 11)])
@pytest.mark.parametrize("niter", [0, 2])
def test_svd_lowrank_is_exact_on_low_rank_matrices(shape, niter):
    a = _low_rank(shape, 3, 1)
    fd.manual_seed(0)
    U, S, V = fd.svd_lowrank(fd.tensor(a), q=4, niter=niter)
    m, n = shape[-2:]
    assert tuple(U.shape) == (*shape[:-2], m, 4) and tuple(S.shape) == (*shape[:-2], 4)
    assert tuple(V.shape) == (*shape[:-2], n, 4)
    u, s, v = U.numpy(), S.numpy(), V.numpy()
    np.testing.assert_allclose((u * s[..., None, :]) @ np.swapaxes(v, -1, -2), a, atol=1e-10)
    want = np.linalg.svd(a, compute_uv=False)[..., :4]
    np.testing.assert_allclose(s, want, atol=1e-10)
    eye = np.eye(4)
    uu = np.swapaxes(u[..., :3], -1, -2) @ u[..., :3]
    np.testing.assert_allclose(uu, np.broadcast_to(eye[:3, :3], uu.shape), atol=1e-10)
    np.testing.assert_allclose(np.swapaxes(v, -1, -2) @ v, np.broadcast_to(eye, v.shape[:-2] + (4, 4)), atol=1e-10)


def test_svd_lowrank_approximates_the_top_singular_values():
    rng = np.random.default_rng(2)
    # decaying spectrum: a few power iterations recover the leading values closely
    u, _ = np.linalg.qr(rng.standard_normal((40, 40)))
    v, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    s = 2.0 ** -np.arange(30)
    a = (u[:, :30] * s) @ v.T
    fd.manual_seed(3)
    _, S, _ = fd.svd_lowrank(fd.tensor(a), q=8, niter=4)
    np.testing.assert_allclose(S.numpy()[:4], s[:4], rtol=1e-8)


def test_svd_lowrank_subtracts_m():
    a = _low_rank((8, 6), 2, 4)
    mean = np.random.default_rng(5).standard_normal((1, 6))
    fd.manual_seed(0)
    U, S, V = fd.svd_lowrank(fd.tensor(a + mean), q=3, M=fd.tensor(mean))
    rec = (U.numpy() * S.numpy()) @ V.numpy().T
    np.testing.assert_allclose(rec, a, atol=1e-10)


def test_pca_lowrank_matches_centered_svd():
    x = np.random.default_rng(6).standard_normal((20, 5)) @ np.diag([5.0, 3.0, 1.0, 0.5, 0.1])
    fd.manual_seed(0)
    U, S, V = fd.pca_lowrank(fd.tensor(x), q=5)
    c = x - x.mean(0, keepdims=True)
    np.testing.assert_allclose(S.numpy(), np.linalg.svd(c, compute_uv=False), rtol=1e-10)
    np.testing.assert_allclose((U.numpy() * S.numpy()) @ V.numpy().T, c, atol=1e-10)
    fd.manual_seed(0)
    assert tuple(fd.pca_lowrank(fd.tensor(x))[1].shape) == (5,)  # q = min(6, m, n)
    fd.manual_seed(0)
    _, S2, _ = fd.pca_lowrank(fd.tensor(x), q=5, center=False)
    np.testing.assert_allclose(S2.numpy(), np.linalg.svd(x, compute_uv=False), rtol=1e-10)


def test_svd_lowrank_gradient():
    a = fd.tensor(_low_rank((6, 5), 5, 7), requires_grad=True)

    def f(a):
        fd.manual_seed(0)  # the same random directions at every probe
        U, S, V = fd.svd_lowrank(a, q=3, niter=1)
        return S

    assert gradcheck(f, [a], eps=1e-6, atol=1e-6, rtol=1e-4)


def test_svd_lowrank_against_torch():
    torch = pytest.importorskip("torch")
    a = _low_rank((10, 7), 3, 8)
    torch.manual_seed(0)
    tu, ts, tv = torch.svd_lowrank(torch.tensor(a), q=4)
    fd.manual_seed(0)
    U, S, V = fd.svd_lowrank(fd.tensor(a), q=4)
    np.testing.assert_allclose(S.numpy()[:3], ts.numpy()[:3], rtol=1e-10)
    np.testing.assert_allclose((U.numpy()[:, :3] * S.numpy()[:3]) @ V.numpy()[:, :3].T,
                               (tu.numpy()[:, :3] * ts.numpy()[:3]) @ tv.numpy()[:, :3].T, atol=1e-10)


def test_lowrank_errors():
    with pytest.raises(ValueError, match=r"svd_lowrank: q must be in \[1, min\(m, n\)\] = \[1, 3\]"):
        fd.svd_lowrank(fd.randn(5, 3), q=4)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        fd.svd_lowrank(fd.randn(5))
    with pytest.raises(TypeError, match="floating-point"):
        fd.pca_lowrank(fd.ones(4, 3, dtype=fd.int64))
    with pytest.raises(ValueError, match="niter must be non-negative"):
        fd.pca_lowrank(fd.randn(4, 3), niter=-1)
