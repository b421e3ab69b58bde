"""fastdl.linalg against numpy.linalg (float64) and PyTorch: forward values on random,
well-conditioned, batched, odd-sized inputs; gradients against torch's (random upstream
weights) and central finite differences (fastdl.autograd.gradcheck); errors.

Eigenvectors and singular vectors are defined up to sign (and LAPACK builds may differ), so
those outputs are compared through sign-invariant functions of them (V diag(c) V^T,
U diag(c) Vh, elementwise squares)."""
import math

import numpy as np
import pytest

import fastdl as fd
import fastdl.linalg as LA
from fastdl.autograd import gradcheck

try:
    import torch
except ImportError:  # the torch comparisons skip; numpy and finite differences still run
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch not installed")


# ---- inputs (never zeros): each a function of a numpy Generator -----------------------------------

def general(rng, *shape):
    """Well-conditioned square matrices: random / sqrt(n) + 2 I (singular values about 1..3)."""
    n = shape[-1]
    return rng.standard_normal(shape) / math.sqrt(n) + 2 * np.eye(n)


def spd(rng, *shape):
    n = shape[-1]
    x = rng.standard_normal(shape)
    return x @ np.swapaxes(x, -1, -2) / n + np.eye(n)


def sym(rng, *shape):
    """Symmetric with well-separated eigenvalues (1, 2, ..., n rotated)."""
    n = shape[-1]
    q, _ = np.linalg.qr(rng.standard_normal(shape))
    return q @ (np.arange(1, n + 1) * np.swapaxes(q, -1, -2))


def rect(rng, *shape):
    """Full-rank rectangular with distinct singular values (1.5, 2.5, ...)."""
    m, n = shape[-2:]
    k = min(m, n)
    u, _ = np.linalg.qr(rng.standard_normal(shape[:-2] + (m, k)))
    v, _ = np.linalg.qr(rng.standard_normal(shape[:-2] + (n, k)))
    return (u * (np.arange(k) + 1.5)) @ np.swapaxes(v, -1, -2)


def _const(a, like):
    """numpy values as a tensor of like's library and dtype (the post-processing serves both)."""
    if isinstance(like, fd.Tensor):
        return fd.from_numpy(a).to(like.dtype)
    return torch.tensor(a, dtype=like.dtype)


def _sign_free_eigh(res):
    L, V = res
    c = _const(np.linspace(0.5, 1.7, V.shape[-1]), V)
    return L, (V * c) @ V.mT, V * V


def _sign_free_svd(res):
    U, S, Vh = res
    k = S.shape[-1]
    c = _const(np.linspace(0.5, 1.7, k), S)
    U, Vh = U[..., :, :k], Vh[..., :k, :]
    return S, (U * c) @ Vh, U * U, Vh * Vh


def _sym_in(f):
    """f of the symmetrized input: eigh/cholesky read one triangle, so finite differences and
    torch's gradient agree only on the symmetric part (torch's OpInfo wrapper does the same)."""
    return lambda A, *a, **k: f(0.5 * (A + A.mT), *a, **k)


# name -> (fastdl fn, torch fn or None, numpy reference or None, [input makers], post-process)
CASES = {
    "inv": (LA.inv, "linalg.inv", np.linalg.inv, [general], None),
    "det": (LA.det, "linalg.det", np.linalg.det, [general], None),
    "slogdet": (LA.slogdet, "linalg.slogdet", lambda a: tuple(np.linalg.slogdet(a)), [general], None),
    "logdet": (fd.logdet, "logdet", lambda a: np.log(np.linalg.det(a)), [spd], None),
    "solve": (LA.solve, "linalg.solve", np.linalg.solve, [general, "rhs"], None),
    "solve_right": (lambda A, B: LA.solve(A, B, left=False), lambda A, B: torch.linalg.solve(A, B, left=False),
                    lambda a, b: np.swapaxes(np.linalg.solve(np.swapaxes(a, -1, -2), np.swapaxes(b, -1, -2)), -1, -2),
                    [general, "rhs_right"], None),
    "solve_triangular_lower": (lambda A, B: LA.solve_triangular(A, B, upper=False),
                               lambda A, B: torch.linalg.solve_triangular(A, B, upper=False),
                               lambda a, b: np.linalg.solve(np.tril(a), b), [general, "rhs"], None),
    "solve_triangular_upper_unit_right": (
        lambda A, B: LA.solve_triangular(A, B, upper=True, left=False, unitriangular=True),
        lambda A, B: torch.linalg.solve_triangular(A, B, upper=True, left=False, unitriangular=True),
        None, [general, "rhs_right"], None),
    "cholesky": (_sym_in(LA.cholesky), _sym_in(lambda A: torch.linalg.cholesky(A)), np.linalg.cholesky, [spd], None),
    "cholesky_upper": (_sym_in(lambda A: LA.cholesky(A, upper=True)),
                       _sym_in(lambda A: torch.linalg.cholesky(A, upper=True)),
                       lambda a: np.swapaxes(np.linalg.cholesky(a), -1, -2), [spd], None),
    "qr_tall": (LA.qr, "linalg.qr", lambda a: tuple(np.linalg.qr(a)), ["tall"], None),
    "qr_square": (LA.qr, "linalg.qr", lambda a: tuple(np.linalg.qr(a)), [general], None),
    "qr_wide": (LA.qr, "linalg.qr", lambda a: tuple(np.linalg.qr(a)), ["wide"], None),
    "eigh": (_sym_in(LA.eigh), _sym_in(lambda A: torch.linalg.eigh(A)), None, [sym], _sign_free_eigh),
    "eigvalsh": (_sym_in(LA.eigvalsh), _sym_in(lambda A: torch.linalg.eigvalsh(A)), np.linalg.eigvalsh, [sym], None),
    "svd_tall": (lambda A: LA.svd(A, full_matrices=False), lambda A: torch.linalg.svd(A, full_matrices=False),
                 None, ["tall"], _sign_free_svd),
    "svd_wide": (lambda A: LA.svd(A, full_matrices=False), lambda A: torch.linalg.svd(A, full_matrices=False),
                 None, ["wide"], _sign_free_svd),
    "svd_full": (LA.svd, "linalg.svd", None, ["tall"], _sign_free_svd),
    "svdvals": (LA.svdvals, "linalg.svdvals", lambda a: np.linalg.svd(a, compute_uv=False), ["wide"], None),
    "pinv_tall": (LA.pinv, "linalg.pinv", np.linalg.pinv, ["tall"], None),
    "pinv_wide": (LA.pinv, "linalg.pinv", np.linalg.pinv, ["wide"], None),
    "lstsq": (lambda A, B: LA.lstsq(A, B).solution, lambda A, B: torch.linalg.lstsq(A, B).solution,
              lambda a, b: np.linalg.pinv(a) @ b, ["tall", "rhs_tall"], None),
    "matrix_exp": (LA.matrix_exp, "linalg.matrix_exp", None, [general], None),
    "matrix_power_neg": (lambda A: LA.matrix_power(A, -3), lambda A: torch.linalg.matrix_power(A, -3),
                         lambda a: np.linalg.matrix_power(a, -3), [general], None),
    "matrix_norm_nuc": (lambda A: LA.matrix_norm(A, "nuc"), lambda A: torch.linalg.matrix_norm(A, "nuc"),
                        lambda a: np.linalg.norm(a, "nuc", axis=(-2, -1)), ["wide"], None),
    "matrix_norm_2": (lambda A: LA.matrix_norm(A, 2), lambda A: torch.linalg.matrix_norm(A, 2),
                      lambda a: np.linalg.norm(a, 2, axis=(-2, -1)), ["tall"], None),
    "cond": (LA.cond, "linalg.cond", np.linalg.cond, [general], None),
    "eigh_upper": (_sym_in(lambda A: LA.eigh(A, UPLO="U")), _sym_in(lambda A: torch.linalg.eigh(A, UPLO="U")), None,
                   [sym], _sign_free_eigh),
    "qr_complete_wide": (lambda A: LA.qr(A, "complete"), lambda A: torch.linalg.qr(A, "complete"),
                         lambda a: tuple(np.linalg.qr(a, "complete")), ["wide"], None),
    "pinv_hermitian": (_sym_in(lambda A: LA.pinv(A, hermitian=True)),
                       _sym_in(lambda A: torch.linalg.pinv(A, hermitian=True)), np.linalg.inv, [sym], None),
    "cholesky_solve": (lambda B, A: fd.cholesky_solve(B, fd.cholesky(0.5 * (A + A.mT))),
                       lambda B, A: torch.cholesky_solve(B, torch.linalg.cholesky(0.5 * (A + A.mT))),
                       lambda b, a: np.linalg.solve(a, b), ["rhs_batched", spd], None),
    "cholesky_inverse_upper": (_sym_in(lambda A: fd.cholesky_inverse(fd.cholesky(A, upper=True), upper=True)),
                               _sym_in(lambda A: torch.cholesky_inverse(torch.linalg.cholesky(A, upper=True),
                                                                        upper=True)),
                               np.linalg.inv, [spd], None),
    "triangular_solve_transpose": (lambda B, A: fd.triangular_solve(B, A, upper=False, transpose=True)[0],
                                   lambda B, A: torch.triangular_solve(B, A, upper=False, transpose=True)[0],
                                   lambda b, a: np.linalg.solve(np.swapaxes(np.tril(a), -1, -2), b),
                                   ["rhs_batched", general], None),
    "pinverse": (fd.pinverse, "pinverse", np.linalg.pinv, ["wide"], None),
}
BATCH, N, M = (2, 3), 5, 7  # odd sizes, two batch dims


def _inputs(case, rng, batch=BATCH):
    makers = CASES[case][3]
    out = []
    for mk in makers:
        if mk == "tall":
            out.append(rect(rng, *batch, M, N))
        elif mk == "wide":
            out.append(rect(rng, *batch, N, M))
        elif mk == "rhs":  # broadcasts against A's batch: (3, N, 2) with A (2, 3, N, N)
            out.append(rng.standard_normal(batch[1:] + (N, 2)))
        elif mk == "rhs_right":
            out.append(rng.standard_normal(batch[1:] + (2, N)))
        elif mk == "rhs_batched":
            out.append(rng.standard_normal(batch + (N, 2)))
        elif mk == "rhs_tall":
            out.append(rng.standard_normal(batch + (M, 2)))
        else:
            out.append(mk(rng, *batch, N, N))
    return out


def _flat(x):
    if isinstance(x, (tuple, list)):
        return [t for v in x for t in _flat(v)]
    return [x]


def _torch_fn(case):
    f = CASES[case][1]
    if isinstance(f, str):
        mod = torch
        for part in f.split("."):
            mod = getattr(mod, part)
        return mod
    return f


def _run(fn, post, ts):
    res = fn(*ts)
    return _flat(post(res) if post else res)


@pytest.mark.parametrize("case", sorted(CASES))
def test_forward_vs_numpy(case, rng):
    fn, _, ref, _, _ = CASES[case]
    if ref is None:
        pytest.skip("no numpy counterpart (compared with torch and by reconstruction)")
    arrs = _inputs(case, rng)
    got = _flat(fn(*[fd.from_numpy(a) for a in arrs]))
    want = _flat(ref(*arrs))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-9, atol=1e-10)


@needs_torch
@pytest.mark.filterwarnings("ignore:torch.triangular_solve is deprecated")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_forward_and_grad_vs_torch(case, dtype, rng):
    fn, _, _, _, post = CASES[case]
    tfn = _torch_fn(case)
    arrs = [a.astype(dtype) for a in _inputs(case, rng)]
    fts = [fd.from_numpy(a.copy()).requires_grad_(True) for a in arrs]
    tts = [torch.tensor(a, requires_grad=True) for a in arrs]
    got, want = _run(fn, post, fts), _run(tfn, post, tts)
    tol = dict(rtol=1e-9, atol=1e-9) if dtype == "float64" else dict(rtol=2e-4, atol=2e-4)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == getattr(fd, dtype) and tuple(g.shape) == tuple(w.shape)
        np.testing.assert_allclose(g.detach().numpy(), w.detach().numpy(), **tol)
    weights = [rng.standard_normal(tuple(w.shape)).astype(dtype) for w in want]
    diff = [i for i, w in enumerate(want) if w.requires_grad]
    sum(((want[i] * torch.tensor(weights[i])).sum() for i in diff)).backward()
    sum(((got[i] * fd.from_numpy(weights[i])).sum() for i in diff)).backward()
    for f, t in zip(fts, tts):
        np.testing.assert_allclose(f.grad.numpy(), t.grad.numpy(), **tol)


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradcheck(case, rng):
    """Central finite differences in float64, on one small batch (sizes kept small: each
    element costs two forward passes)."""
    fn, _, _, _, post = CASES[case]
    arrs = _inputs(case, rng, batch=(2,))
    ts = [fd.from_numpy(a).requires_grad_(True) for a in arrs]
    outs = lambda *xs: _flat(post(fn(*xs)) if post else fn(*xs))  # noqa: E731
    keep = [i for i, o in enumerate(outs(*ts)) if o.requires_grad]  # slogdet's sign has no gradient
    assert gradcheck(lambda *xs: tuple(outs(*xs)[i] for i in keep), ts, eps=1e-6, atol=1e-6, rtol=1e-5)


# ---- semantics ----------------------------------------------------------------------------------

def test_solve_vector_and_broadcast(rng):
    A = general(rng, 4, N, N)
    b = rng.standard_normal(N)
    x = LA.solve(fd.from_numpy(A), fd.from_numpy(b))
    assert tuple(x.shape) == (4, N)
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(A, b[:, None])[..., 0], rtol=1e-10)
    bb = rng.standard_normal((4, N))  # shape A.shape[:-1]: a batch of vectors
    np.testing.assert_allclose(LA.solve(fd.from_numpy(A), fd.from_numpy(bb)).numpy(),
                               np.linalg.solve(A, bb[..., None])[..., 0], rtol=1e-10)


def test_solve_ex_reports_singular_matrices(rng):
    a = np.stack([general(rng, N, N), np.ones((N, N)), general(rng, N, N)])
    b = rng.standard_normal((3, N, 2))
    X, info = LA.solve_ex(fd.from_numpy(a), fd.from_numpy(b))
    assert info.tolist()[0] == 0 and info.tolist()[1] != 0 and info.tolist()[2] == 0
    x = X.numpy()
    np.testing.assert_allclose(x[[0, 2]], np.linalg.solve(a[[0, 2]], b[[0, 2]]), rtol=1e-10)
    assert np.isnan(x[1]).all()
    with pytest.raises(LA.LinAlgError, match="linalg.solve"):
        LA.solve_ex(fd.from_numpy(a), fd.from_numpy(b), check_errors=True)


def test_qr_modes(rng):
    a = rect(rng, 3, M, N)
    Q, R = LA.qr(fd.from_numpy(a), mode="complete")
    assert tuple(Q.shape) == (3, M, M) and tuple(R.shape) == (3, M, N)
    np.testing.assert_allclose((Q @ R).numpy(), a, atol=1e-12)
    Q, R = LA.qr(fd.from_numpy(a), mode="r")
    assert Q.numel() == 0
    np.testing.assert_allclose(np.abs(R.numpy()), np.abs(np.linalg.qr(a, mode="r")), atol=1e-12)
    with pytest.raises(ValueError, match="mode"):
        LA.qr(fd.from_numpy(a), mode="raw")


def test_svd_full_reconstructs(rng):
    a = rect(rng, 2, N, M)
    U, S, Vh = LA.svd(fd.from_numpy(a))
    assert tuple(U.shape) == (2, N, N) and tuple(Vh.shape) == (2, M, M)
    np.testing.assert_allclose(((U * S.unsqueeze(-2)) @ Vh[..., :N, :]).numpy(), a, atol=1e-12)


def test_eigh_upper_and_reconstruction(rng):
    a = sym(rng, 3, N, N)
    lower_only = np.tril(a) + np.triu(rng.standard_normal((3, N, N)), 1)  # junk above the diagonal
    L, V = LA.eigh(fd.from_numpy(lower_only))
    np.testing.assert_allclose(((V * L.unsqueeze(-2)) @ V.mT).numpy(), a, atol=1e-12)
    upper_only = np.swapaxes(lower_only, -1, -2)
    np.testing.assert_allclose(LA.eigvalsh(fd.from_numpy(upper_only), UPLO="U").numpy(), np.linalg.eigvalsh(a),
                               atol=1e-12)


def test_pinv_rank_deficient_and_rank(rng):
    a = rng.standard_normal((M, 2)) @ rng.standard_normal((2, N))  # rank 2
    np.testing.assert_allclose(LA.pinv(fd.from_numpy(a)).numpy(), np.linalg.pinv(a), atol=1e-10)
    assert LA.matrix_rank(fd.from_numpy(a)).item() == 2
    assert LA.matrix_rank(fd.from_numpy(spd(rng, N, N)), hermitian=True).item() == N
    assert LA.matrix_rank(fd.from_numpy(a), atol=1e9).item() == 0
    s = sym(rng, N, N)
    np.testing.assert_allclose(LA.pinv(fd.from_numpy(s), hermitian=True).numpy(), np.linalg.inv(s), atol=1e-10)


def test_det_grad_of_singular_matrix(rng):
    """det's gradient is the cofactor matrix, defined at singular A too (no inverse there)."""
    a = general(rng, N, N)
    a[-1] = a[0] + a[1]
    A = fd.from_numpy(a).requires_grad_(True)
    LA.det(A).backward()
    cof = np.array([[(-1) ** (i + j) * np.linalg.det(np.delete(np.delete(a, i, 0), j, 1)) for j in range(N)]
                    for i in range(N)])
    np.testing.assert_allclose(A.grad.numpy(), cof, atol=1e-10)


def test_logdet_of_negative_det_is_nan(rng):
    a = general(rng, N, N)
    a[0] *= -1
    assert math.isnan(fd.logdet(fd.from_numpy(a)).item())


def test_top_level_aliases_and_methods(rng):
    a = spd(rng, 2, N, N)
    A = fd.from_numpy(a)
    np.testing.assert_allclose(fd.inverse(A).numpy(), np.linalg.inv(a), rtol=1e-10)
    np.testing.assert_allclose(A.det().numpy(), np.linalg.det(a), rtol=1e-10)
    np.testing.assert_allclose(fd.cholesky(A, upper=True).numpy(), np.swapaxes(np.linalg.cholesky(a), -1, -2),
                               rtol=1e-10)
    L = fd.cholesky(A)
    np.testing.assert_allclose(fd.cholesky_inverse(L).numpy(), np.linalg.inv(a), rtol=1e-9, atol=1e-11)
    b = rng.standard_normal((2, N, 3))
    np.testing.assert_allclose(fd.cholesky_solve(fd.from_numpy(b), L).numpy(), np.linalg.solve(a, b), rtol=1e-9)
    U, S, V = fd.svd(A)
    np.testing.assert_allclose(((U * S.unsqueeze(-2)) @ V.mT).numpy(), a, atol=1e-12)
    X, _ = fd.triangular_solve(fd.from_numpy(b), A, upper=True)
    np.testing.assert_allclose(X.numpy(), np.linalg.solve(np.triu(a), b), rtol=1e-9)
    np.testing.assert_allclose(fd.pinverse(A).numpy(), np.linalg.inv(a), rtol=1e-9)


def test_ex_variants_report_info(rng):
    a = np.stack([general(rng, N, N), np.ones((N, N))])  # second matrix singular
    inv_, info = LA.inv_ex(fd.from_numpy(a))
    assert info.dtype == fd.int32 and info.tolist()[0] == 0 and info.tolist()[1] != 0
    np.testing.assert_allclose(inv_.numpy()[0], np.linalg.inv(a[0]), rtol=1e-10)
    with pytest.raises(LA.LinAlgError, match="linalg.inv"):
        LA.inv_ex(fd.from_numpy(a), check_errors=True)
    s = np.stack([spd(rng, N, N), -np.eye(N)])
    L, info = LA.cholesky_ex(fd.from_numpy(s))
    assert info.tolist() == [0, 1]
    np.testing.assert_allclose(L.numpy()[0], np.linalg.cholesky(s[0]), rtol=1e-10)


def test_norms(rng):
    x = rng.standard_normal((3, 4, 5))
    X = fd.from_numpy(x)
    for o in (2, 1, 3.5, math.inf, -math.inf, 0):
        np.testing.assert_allclose(LA.vector_norm(X, o, dim=-1).numpy(), np.linalg.norm(x, o, axis=-1), rtol=1e-12)
    for o in ("fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf):
        np.testing.assert_allclose(LA.matrix_norm(X, o).numpy(), np.linalg.norm(x, o, axis=(-2, -1)), rtol=1e-10)
        np.testing.assert_allclose(LA.matrix_norm(X, o, dim=(0, 2), keepdim=True).numpy(),
                                   np.linalg.norm(x, o, axis=(0, 2), keepdims=True), rtol=1e-10)
    np.testing.assert_allclose(LA.norm(X).numpy(), np.linalg.norm(x.ravel()), rtol=1e-12)
    np.testing.assert_allclose(LA.norm(X[0], "nuc").numpy(), np.linalg.norm(x[0], "nuc"), rtol=1e-10)


def test_multi_dot_cross_vecdot(rng):
    a, b, c = rng.standard_normal(4), rng.standard_normal((4, 3)), rng.standard_normal(3)
    np.testing.assert_allclose(LA.multi_dot([fd.from_numpy(v) for v in (a, b, c)]).numpy(),
                               np.linalg.multi_dot([a, b, c]), rtol=1e-12)
    p, q = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    np.testing.assert_allclose(LA.cross(fd.from_numpy(p), fd.from_numpy(q)).numpy(), np.cross(p, q), rtol=1e-12)
    np.testing.assert_allclose(LA.vecdot(fd.from_numpy(p), fd.from_numpy(q)).numpy(), (p * q).sum(-1), rtol=1e-12)


def test_strided_input(rng):
    a = general(rng, N, N)
    At = fd.from_numpy(np.ascontiguousarray(a.T)).mT  # transposed storage
    np.testing.assert_allclose(LA.inv(At).numpy(), np.linalg.inv(a), rtol=1e-10)


# ---- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("fn", [LA.inv, LA.det, LA.slogdet, LA.cholesky, LA.eigh, LA.matrix_exp])
def test_non_square_errors(fn, rng):
    A = fd.from_numpy(rng.standard_normal((2, 3, 4)))
    with pytest.raises(ValueError, match=r"square.*\(2, 3, 4\)"):
        fn(A)


def test_singular_and_non_pd_errors(rng):
    s = fd.from_numpy(np.ones((3, 3)))
    with pytest.raises(LA.LinAlgError, match="linalg.inv.*singular"):
        LA.inv(s)
    with pytest.raises(RuntimeError, match="linalg.solve.*singular"):  # LinAlgError is a RuntimeError
        LA.solve(s, fd.from_numpy(rng.standard_normal((3, 2))))
    with pytest.raises(LA.LinAlgError, match="linalg.cholesky.*positive-definite"):
        LA.cholesky(fd.from_numpy(-np.eye(3)))
    assert issubclass(LA.LinAlgError, RuntimeError)


def test_argument_errors(rng):
    A = fd.from_numpy(general(rng, 3, 3))
    with pytest.raises(ValueError, match="linalg.solve.*incompatible"):
        LA.solve(A, fd.from_numpy(rng.standard_normal((4, 2))))
    with pytest.raises(TypeError, match="linalg.inv.*float32 or float64"):
        LA.inv(fd.from_numpy(np.eye(3, dtype=np.int64)))
    with pytest.raises(ValueError, match="at least 2"):
        LA.svd(fd.from_numpy(rng.standard_normal(3)))
    with pytest.raises(ValueError, match="UPLO"):
        LA.eigh(A, UPLO="X")


def test_qr_mode_r_has_no_gradient(rng):
    A = fd.from_numpy(rect(rng, M, N)).requires_grad_(True)
    with pytest.raises(RuntimeError, match="mode='r'"):
        LA.qr(A, mode="r").R.sum().backward()


@pytest.mark.skipif(not fd.cuda.is_available(), reason="no CUDA device")
def test_cuda_round_trip(rng):
    a = general(rng, 2, N, N)
    A = fd.from_numpy(a).cuda().requires_grad_(True)
    X = LA.inv(A)
    assert X.device.type == "cuda"
    X.sum().backward()
    assert A.grad.device.type == "cuda"
    ainv = np.linalg.inv(a)
    np.testing.assert_allclose(X.detach().cpu().numpy(), ainv, rtol=1e-10)
    np.testing.assert_allclose(A.grad.cpu().numpy(), -np.swapaxes(ainv, -1, -2) @ np.ones_like(a)
                               @ np.swapaxes(ainv, -1, -2), rtol=1e-9)
