"""LU (linalg.lu, lu_factor, lu_factor_ex, lu_solve; torch.lu, lu_solve, lu_unpack), Householder QR
(geqrf, householder_product, ormqr) and vander / tensorinv / tensorsolve against PyTorch: float64
and float32, batched square / wide / tall matrices, gradients (random upstream), non-contiguous
inputs, errors naming the op."""
import numpy as np
import pytest

import fastdl as fd

torch = pytest.importorskip("torch")

DTYPES = [(fd.float64, torch.float64, 1e-9), (fd.float32, torch.float32, 2e-4)]
SHAPES = [(4, 4), (3, 5), (6, 4), (2, 5, 5), (2, 3, 4, 2), (1, 1)]


def _leaf(a, fdt, tdt, transposed=False):
    if transposed:
        f = fd.tensor(np.ascontiguousarray(np.swapaxes(a, -1, -2)), dtype=fdt).mT.detach().requires_grad_(True)
    else:
        f = fd.tensor(a, dtype=fdt, requires_grad=True)
    return f, torch.tensor(a, dtype=tdt, requires_grad=True)


def _compare(f_fd, f_t, arrays, fdt, tdt, tol, transposed=False, grad=True):
    leaves = [_leaf(a, fdt, tdt, transposed and a.ndim >= 2) for a in arrays]
    of, ot = f_fd(*[l[0] for l in leaves]), f_t(*[l[1] for l in leaves])
    of = list(of) if isinstance(of, (tuple, list)) else [of]
    ot = list(ot) if isinstance(ot, (tuple, list)) else [ot]
    rng = np.random.default_rng(0)
    lf = lt = 0
    for a, b in zip(of, ot):
        assert tuple(a.shape) == tuple(b.shape)
        if b.dtype in (torch.int32, torch.int64):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
            continue
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=tol, atol=tol)
        if grad and b.requires_grad:
            w = rng.standard_normal(tuple(b.shape))
            lf = lf + (a * fd.tensor(w, dtype=fdt)).sum()
            lt = lt + (b * torch.tensor(w, dtype=tdt)).sum()
    if grad and not isinstance(lt, int):
        lf.backward()
        lt.backward()
        for f, t in leaves:
            want = t.grad.numpy() if t.grad is not None else np.zeros(t.shape)
            np.testing.assert_allclose(f.grad.numpy(), want, rtol=tol * 10, atol=tol * 10)


def _mat(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("fdt,tdt,tol", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("transposed", [False, True])
def test_lu_and_lu_factor(fdt, tdt, tol, shape, transposed):
    A = _mat(shape)
    _compare(fd.linalg.lu, torch.linalg.lu, [A], fdt, tdt, tol, transposed)
    _compare(fd.linalg.lu_factor, torch.linalg.lu_factor, [A], fdt, tdt, tol, transposed)
    _compare(fd.linalg.lu_factor_ex, torch.linalg.lu_factor_ex, [A], fdt, tdt, tol, transposed)
    _compare(lambda a: fd.lu(a, get_infos=True), lambda a: torch.lu(a, get_infos=True), [A], fdt, tdt, tol)


def test_lu_reconstructs_and_pivots_like_lapack():
    A = _mat((3, 6, 6), 1)
    P, L, U = fd.linalg.lu(fd.tensor(A))
    np.testing.assert_allclose((P @ L @ U).numpy(), A, atol=1e-12)
    LU, piv = fd.linalg.lu_factor(fd.tensor(A))
    assert piv.dtype == fd.int32
    np.testing.assert_array_equal(piv.numpy(), torch.linalg.lu_factor(torch.tensor(A)).pivots.numpy())
    # a singular matrix factors (a zero pivot), info names its column
    S = np.array([[1.0, 2.0], [2.0, 4.0]])
    _, _, info = fd.linalg.lu_factor_ex(fd.tensor(S))
    assert info.item() == torch.linalg.lu_factor_ex(torch.tensor(S)).info.item() == 2


@pytest.mark.parametrize("fdt,tdt,tol", DTYPES)
@pytest.mark.parametrize("left,adjoint", [(True, False), (True, True), (False, False), (False, True)])
def test_lu_solve(fdt, tdt, tol, left, adjoint):
    A = _mat((2, 4, 4), 2) + 4 * np.eye(4)
    B = _mat((2, 4, 3) if left else (2, 3, 4), 3)
    LUt, pivt = torch.linalg.lu_factor(torch.tensor(A, dtype=tdt))
    piv = fd.tensor(pivt.numpy())
    _compare(lambda lu, b: fd.linalg.lu_solve(lu, piv, b, left=left, adjoint=adjoint),
             lambda lu, b: torch.linalg.lu_solve(lu, pivt, b, left=left, adjoint=adjoint),
             [LUt.detach().numpy().astype(np.float64), B], fdt, tdt, tol, transposed=True)


@pytest.mark.parametrize("fdt,tdt,tol", DTYPES)
def test_torch_lu_solve_and_unpack(fdt, tdt, tol):
    A = _mat((3, 5, 5), 4) + 5 * np.eye(5)
    LUt, pivt = torch.linalg.lu_factor(torch.tensor(A, dtype=tdt))
    piv = fd.tensor(pivt.numpy())
    b = _mat((3, 5, 2), 5)
    lu = LUt.detach().numpy().astype(np.float64)
    _compare(lambda x, l: fd.lu_solve(x, l, piv), lambda x, l: torch.lu_solve(x, l, pivt), [b, lu], fdt, tdt, tol)
    _compare(lambda l: fd.Tensor.lu_solve(fd.tensor(b, dtype=fdt), l, piv), lambda l: torch.tensor(b, dtype=tdt)
             .lu_solve(l, pivt), [lu], fdt, tdt, tol)
    _compare(lambda l: fd.lu_unpack(l, piv), lambda l: torch.lu_unpack(l, pivt), [lu], fdt, tdt, tol)
    for shape in ((4, 6), (6, 4)):
        LUw, pw = torch.linalg.lu_factor(torch.tensor(_mat(shape, 6), dtype=tdt))
        _compare(lambda l: fd.lu_unpack(l, fd.tensor(pw.numpy())), lambda l: torch.lu_unpack(l, pw),
                 [LUw.detach().numpy().astype(np.float64)], fdt, tdt, tol)


def test_lu_errors():
    with pytest.raises(ValueError, match=r"linalg.lu: A must have at least 2 dimensions; got shape \(3,\)"):
        fd.linalg.lu(fd.zeros(3))
    with pytest.raises(TypeError, match="linalg.lu: A must be float32 or float64"):
        fd.linalg.lu(fd.zeros(3, 3, dtype=fd.int64))
    with pytest.raises(NotImplementedError, match="linalg.lu: LU without pivoting"):
        fd.linalg.lu(fd.zeros(3, 3), pivot=False)
    with pytest.raises(ValueError, match=r"linalg.lu_solve: B of shape \(3, 2\) does not match LU of shape \(4, 4\)"):
        fd.linalg.lu_solve(fd.eye(4), fd.ones(4, dtype=fd.int32), fd.zeros(3, 2))
    with pytest.raises(ValueError, match="lu_unpack: LU_pivots of shape"):
        fd.lu_unpack(fd.eye(4), fd.ones(3, dtype=fd.int32))


@pytest.mark.parametrize("fdt,tdt,tol", DTYPES)
@pytest.mark.parametrize("shape", [(5, 3), (4, 4), (2, 6, 4)])
def test_householder(fdt, tdt, tol, shape):
    A = _mat(shape, 7)
    a_t, tau_t = torch.geqrf(torch.tensor(A, dtype=tdt))
    a_f, tau_f = fd.geqrf(fd.tensor(A, dtype=fdt))
    np.testing.assert_allclose(a_f.numpy(), a_t.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(tau_f.numpy(), tau_t.numpy(), rtol=tol, atol=tol)
    a, tau = a_t.numpy().astype(np.float64), tau_t.numpy().astype(np.float64)
    _compare(fd.linalg.householder_product, torch.linalg.householder_product, [a, tau], fdt, tdt, tol,
             transposed=True)
    m = shape[-2]
    for left in (True, False):
        for transpose in (True, False):
            C = _mat(shape[:-2] + ((m, 3) if left else (3, m)), 8)
            _compare(lambda x, t, c: fd.ormqr(x, t, c, left, transpose),
                     lambda x, t, c: torch.ormqr(x, t, c, left, transpose), [a, tau, C], fdt, tdt, tol)


def test_householder_errors():
    with pytest.raises(ValueError, match="linalg.householder_product: input must have at least as many rows"):
        fd.linalg.householder_product(fd.zeros(2, 3), fd.zeros(2))
    with pytest.raises(ValueError, match=r"ormqr: other of shape \(4, 2\) does not match the 3 x 3 Q"):
        fd.ormqr(fd.zeros(3, 3), fd.zeros(3), fd.zeros(4, 2))


@pytest.mark.parametrize("fdt,tdt,tol", DTYPES)
def test_vander_tensorinv_tensorsolve(fdt, tdt, tol):
    x = _mat((2, 5), 9)
    for N in (None, 2, 7):
        _compare(lambda a: fd.linalg.vander(a, N=N), lambda a: torch.linalg.vander(a, N=N), [x], fdt, tdt, tol)
    xi = np.arange(-2, 3)
    np.testing.assert_array_equal(fd.linalg.vander(fd.tensor(xi)).numpy(), torch.linalg.vander(torch.tensor(xi)))
    A = _mat((4, 6, 8, 3), 10)
    _compare(lambda a: fd.linalg.tensorinv(a, ind=2), lambda a: torch.linalg.tensorinv(a, ind=2), [A], fdt, tdt,
             tol * 10)
    A2, B2 = _mat((2, 3, 6), 11), _mat((2, 3), 12)
    for dims in (None, (0, 2), (2,)):
        _compare(lambda a, b: fd.linalg.tensorsolve(a, b, dims), lambda a, b: torch.linalg.tensorsolve(a, b, dims),
                 [A2, B2], fdt, tdt, tol * 10)
    with pytest.raises(ValueError, match="linalg.vander: N must be greater than 1"):
        fd.linalg.vander(fd.zeros(3), N=1)
    with pytest.raises(ValueError, match=r"linalg.tensorinv: the product of the first ind=1 dims \(4\)"):
        fd.linalg.tensorinv(fd.zeros(4, 3), ind=1)
    with pytest.raises(ValueError, match=r"linalg.tensorsolve: A of shape \(2, 3, 5\) does not reshape"):
        fd.linalg.tensorsolve(fd.zeros(2, 3, 5), fd.zeros(2, 3))
