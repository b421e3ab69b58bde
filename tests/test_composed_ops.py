"""tensordot, addbmm, baddbmm, cdist, column_stack, dstack, renorm, gradient, histogramdd and
native_layer_norm / native_group_norm / native_batch_norm against PyTorch: float64 and float32,
forward and gradients (random upstream), broadcasting, non-contiguous inputs, errors naming the op."""
import numpy as np
import pytest

import fastdl as fd

torch = pytest.importorskip("torch")

DTYPES = [(fd.float64, torch.float64, 1e-10), (fd.float32, torch.float32, 2e-5)]


def _leaves(arrays, fdt, tdt, transposed):
    out = []
    for a in arrays:
        if a is None:
            out.append((None, None))
            continue
        if transposed and a.ndim >= 2:
            f = fd.tensor(np.ascontiguousarray(np.swapaxes(a, -1, -2)), dtype=fdt).mT.detach().requires_grad_(True)
        else:
            f = fd.tensor(a, dtype=fdt, requires_grad=True)
        out.append((f, torch.tensor(a, dtype=tdt, requires_grad=True)))
    return out


def _check(f_fd, f_t, arrays, fdt, tdt, tol, transposed=False, grad=True):
    leaves = _leaves(arrays, fdt, tdt, transposed)
    of, ot = f_fd(*[l[0] for l in leaves]), f_t(*[l[1] for l in leaves])
    of = list(of) if isinstance(of, (tuple, list)) else [of]
    ot = list(ot) if isinstance(ot, (tuple, list)) else [ot]
    rng = np.random.default_rng(0)
    lf = lt = 0
    for a, b in zip(of, ot):
        assert tuple(a.shape) == tuple(b.shape), (tuple(a.shape), tuple(b.shape))
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=tol, atol=tol)
        if b.requires_grad:
            w = rng.standard_normal(tuple(b.shape))
            lf = lf + (a * fd.tensor(w, dtype=fdt)).sum()
            lt = lt + (b * torch.tensor(w, dtype=tdt)).sum()
    if grad and not isinstance(lt, int):
        lf.backward()
        lt.backward()
        for f, t in leaves:
            if f is None:
                continue
            want = t.grad.numpy() if t.grad is not None else np.zeros(t.shape)
            got = f.grad.numpy() if f.grad is not None else np.zeros(tuple(f.shape))
            np.testing.assert_allclose(got, want, rtol=tol * 10, atol=tol * 10)


def _r(*shape, seed=0):
    return np.random.default_rng(seed + len(shape)).standard_normal(shape)


@pytest.mark.parametrize("fdt,tdt,tol", DTYPES)
@pytest.mark.parametrize("sa,sb,dims", [((3, 4, 5), (4, 5, 2), 2), ((3, 4), (4, 3), 1), ((2, 3), (5,), 0),
                                        ((3, 4, 5), (5, 3, 2), ([0, 2], [1, 0])), ((1, 4), (2, 4), ([0, 1], [0, 1]))])
def test_tensordot(fdt, tdt, tol, sa, sb, dims):
    _check(lambda a, b: fd.tensordot(a, b, dims), lambda a, b: torch.tensordot(a, b, dims), [_r(*sa), _r(*sb, seed=1)],
           fdt, tdt, tol, transposed=True)


def test_tensordot_errors():
    with pytest.raises(ValueError, match=r"tensordot: contracted dimensions need to match.*\(3, 4\) and \(5, 2\)"):
        fd.tensordot(fd.zeros(3, 4), fd.zeros(5, 2), 1)
    with pytest.raises(ValueError, match="tensordot: both dim lists must have the same length"):
        fd.tensordot(fd.zeros(3, 4), fd.zeros(4, 3), ([0], [0, 1]))


@pytest.mark.parametrize("fdt,tdt,tol", DTYPES)
@pytest.mark.parametrize("beta,alpha", [(1, 1), (0.5, -2.0), (0, 1.5)])
@pytest.mark.parametrize("inshape", [(3, 5), (5,), (1, 1)])
def test_addbmm_baddbmm(fdt, tdt, tol, beta, alpha, inshape):
    b1, b2 = _r(4, 3, 6), _r(4, 6, 5, seed=2)
    _check(lambda i, x, y: fd.addbmm(i, x, y, beta=beta, alpha=alpha),
           lambda i, x, y: torch.addbmm(i, x, y, beta=beta, alpha=alpha), [_r(*inshape), b1, b2], fdt, tdt, tol, True)
    bin_ = (4,) + inshape if len(inshape) == 2 else inshape
    _check(lambda i, x, y: i.baddbmm(x, y, beta=beta, alpha=alpha),
           lambda i, x, y: i.baddbmm(x, y, beta=beta, alpha=alpha), [_r(*bin_), b1, b2], fdt, tdt, tol, True)
    # beta = 0 ignores input's NaN (PyTorch)
    nan = fd.full((3, 5), float("nan"), dtype=fdt)
    assert not fd.addbmm(nan, fd.tensor(b1, dtype=fdt), fd.tensor(b2, dtype=fdt), beta=0).isnan().any().item()
    with pytest.raises(ValueError, match=r"baddbmm: batch1 \(4, 3, 6\) and batch2 \(3, 6, 5\) cannot be multiplied"):
        fd.baddbmm(fd.zeros(3, 5), fd.zeros(4, 3, 6), fd.zeros(3, 6, 5))
    x = fd.tensor(_r(3, 5), dtype=fdt)
    x.addbmm_(fd.tensor(b1, dtype=fdt), fd.tensor(b2, dtype=fdt))
    np.testing.assert_allclose(x.numpy(), torch.tensor(_r(3, 5), dtype=tdt).addbmm_(
        torch.tensor(b1, dtype=tdt), torch.tensor(b2, dtype=tdt)).numpy(), rtol=tol, atol=tol * 10)


@pytest.mark.parametrize("fdt,tdt,tol", DTYPES)
@pytest.mark.parametrize("p", [0.0, 0.5, 1.0, 2.0, 3.0, float("inf")])
@pytest.mark.parametrize("mode", ["use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist",
                                  "donot_use_mm_for_euclid_dist"])
def test_cdist(fdt, tdt, tol, p, mode):
    x1, x2 = _r(2, 7, 3), _r(1, 5, 3, seed=3)  # batch dims broadcast
    _check(lambda a, b: fd.cdist(a, b, p, compute_mode=mode), lambda a, b: torch.cdist(a, b, p, compute_mode=mode),
           [x1, x2], fdt, tdt, tol * (100 if mode == "use_mm_for_euclid_dist" and fdt == fd.float32 else 1),
           grad=p != 0)


def test_cdist_large_uses_matmul_and_errors():
    x1, x2 = _r(30, 4), _r(28, 4, seed=4)
    _check(fd.cdist, torch.cdist, [x1, x2], fd.float64, torch.float64, 1e-9)
    with pytest.raises(ValueError, match=r"cdist: x1 and x2 must have the same number of columns; got shapes \(3, 4\)"):
        fd.cdist(fd.zeros(3, 4), fd.zeros(3, 5))
    with pytest.raises(ValueError, match="cdist: p must be >= 0"):
        fd.cdist(fd.zeros(3, 4), fd.zeros(3, 4), -1.0)


@pytest.mark.parametrize("fdt,tdt,tol", DTYPES)
def test_column_stack_dstack(fdt, tdt, tol):
    arrays = [_r(4), _r(4, 2, seed=5), _r(4, 1, seed=6)]
    _check(lambda *ts: fd.column_stack(ts), lambda *ts: torch.column_stack(ts), arrays, fdt, tdt, tol, True)
    arrays = [_r(3, 4), _r(3, 4, 2, seed=7)]
    _check(lambda *ts: fd.dstack(ts), lambda *ts: torch.dstack(ts), arrays, fdt, tdt, tol, True)
    _check(lambda *ts: fd.dstack(ts), lambda *ts: torch.dstack(ts), [_r(5), _r(5, seed=8)], fdt, tdt, tol)
    _check(lambda t: fd.column_stack([t]), lambda t: torch.column_stack([t]), [np.array(2.5)], fdt, tdt, tol)
    with pytest.raises(ValueError, match="column_stack: expects a non-empty sequence"):
        fd.column_stack([])


@pytest.mark.parametrize("fdt,tdt,tol", DTYPES)
@pytest.mark.parametrize("p,dim,maxnorm", [(2, 0, 1.0), (1, 1, 2.0), (3.5, -1, 0.5), (2, 2, 100.0)])
def test_renorm(fdt, tdt, tol, p, dim, maxnorm):
    _check(lambda x: fd.renorm(x, p, dim, maxnorm), lambda x: torch.renorm(x, p, dim, maxnorm), [_r(3, 4, 5)], fdt,
           tdt, tol, True)
    y = fd.tensor(_r(3, 4, 5), dtype=fdt)
    y.renorm_(p, dim, maxnorm)
    np.testing.assert_allclose(y.numpy(), torch.tensor(_r(3, 4, 5), dtype=tdt).renorm(p, dim, maxnorm).numpy(),
                               rtol=tol, atol=tol)
    with pytest.raises(ValueError, match="renorm: non-positive norm"):
        fd.renorm(fd.zeros(3, 3), 0, 0, 1.0)


@pytest.mark.parametrize("fdt,tdt,tol", DTYPES)
@pytest.mark.parametrize("edge_order", [1, 2])
@pytest.mark.parametrize("kw", [{}, {"spacing": 0.5}, {"spacing": [2.0, 0.3]}, {"dim": 1}, {"dim": [0, -1]},
                                {"spacing": "coords", "dim": 0}])
def test_gradient(fdt, tdt, tol, edge_order, kw):
    x = _r(5, 6)
    kf, kt = dict(kw), dict(kw)
    if kw.get("spacing") == "coords":
        c = np.cumsum(np.random.default_rng(9).uniform(0.2, 1.5, 5))
        kf["spacing"], kt["spacing"] = [fd.tensor(c, dtype=fdt)], [torch.tensor(c, dtype=tdt)]
    _check(lambda a: fd.gradient(a, edge_order=edge_order, **kf), lambda a: torch.gradient(a, edge_order=edge_order,
                                                                                             **kt),
           [x], fdt, tdt, tol * 10, True)


def test_gradient_integers_and_errors():
    xi = np.array([1, 2, 4, 7, 11])
    got, want = fd.gradient(fd.tensor(xi))[0], torch.gradient(torch.tensor(xi))[0]
    assert got.dtype == fd.float32
    np.testing.assert_allclose(got.numpy(), want.numpy())
    with pytest.raises(ValueError, match=r"gradient: expected each dimension size to be at least edge_order\+1"):
        fd.gradient(fd.zeros(2), edge_order=2)
    with pytest.raises(ValueError, match="gradient: expected spacing .* list of length 2"):
        fd.gradient(fd.zeros(3, 3), spacing=[1.0, 2.0, 3.0])


@pytest.mark.parametrize("fdt,tdt", [(fd.float64, torch.float64), (fd.float32, torch.float32)])
@pytest.mark.parametrize("bins", [3, [2, 4], "edges"])
@pytest.mark.parametrize("weighted,density", [(False, False), (True, False), (False, True)])
def test_histogramdd(fdt, tdt, bins, weighted, density):
    rng = np.random.default_rng(10)
    pts = rng.standard_normal((40, 2))
    pts[:5] = np.round(pts[:5])  # some points on bin edges
    w = rng.random(40) if weighted else None
    if bins == "edges":
        bf = [fd.tensor([-2.0, -0.5, 0.0, 1.0, 3.0], dtype=fdt), fd.tensor([-1.0, 0.0, 1.0], dtype=fdt)]
        bt = [torch.tensor(b.numpy()) for b in bf]
    else:
        bf = bt = bins
    got = fd.histogramdd(fd.tensor(pts, dtype=fdt), bf, weight=None if w is None else fd.tensor(w, dtype=fdt),
                         density=density)
    want = torch.histogramdd(torch.tensor(pts, dtype=tdt), bt, weight=None if w is None else torch.tensor(w, dtype=tdt),
                             density=density)
    np.testing.assert_allclose(got.hist.numpy(), want.hist.numpy(), rtol=1e-5, atol=1e-6)
    for e, f in zip(got.bin_edges, want.bin_edges):
        np.testing.assert_allclose(e.numpy(), f.numpy(), rtol=1e-6)
    r = fd.histogramdd(fd.tensor(pts, dtype=fdt), [2, 2], range=[-1.0, 1.0, 0.0, 2.0])
    rt = torch.histogramdd(torch.tensor(pts, dtype=tdt), [2, 2], range=[-1.0, 1.0, 0.0, 2.0])
    np.testing.assert_allclose(r.hist.numpy(), rt.hist.numpy())


def test_histogramdd_errors():
    with pytest.raises(ValueError, match=r"histogramdd: expected 2 bin specifications .* got 3 \(input shape"):
        fd.histogramdd(fd.zeros(5, 2), [2, 2, 2])
    with pytest.raises(TypeError, match="histogramdd: input must be a float tensor"):
        fd.histogramdd(fd.zeros(5, 2, dtype=fd.int64))


@pytest.mark.parametrize("fdt,tdt,tol", DTYPES)
@pytest.mark.parametrize("affine", [True, False])
def test_native_norms(fdt, tdt, tol, affine):
    x = _r(3, 6, 4, 5)
    w, b = (_r(6, seed=11), _r(6, seed=12)) if affine else (None, None)
    _check(lambda a, ww, bb: fd.native_group_norm(a, ww, bb, 3, 6, 20, 2, 1e-5),
           lambda a, ww, bb: torch.native_group_norm(a, ww, bb, 3, 6, 20, 2, 1e-5), [x, w, b], fdt, tdt, tol, True)
    wl, bl = (_r(4, 5, seed=13), _r(4, 5, seed=14)) if affine else (None, None)
    _check(lambda a, ww, bb: fd.native_layer_norm(a, (4, 5), ww, bb, 1e-5),
           lambda a, ww, bb: torch.native_layer_norm(a, (4, 5), ww, bb, 1e-5), [x, wl, bl], fdt, tdt, tol, True)
    for training in (True, False):
        rm_f, rv_f = fd.tensor(_r(6, seed=15), dtype=fdt), fd.tensor(np.abs(_r(6, seed=16)) + 0.5, dtype=fdt)
        rm_t, rv_t = torch.tensor(rm_f.numpy()), torch.tensor(rv_f.numpy())
        _check(lambda a, ww, bb: fd.native_batch_norm(a, ww, bb, rm_f, rv_f, training, 0.3, 1e-5),
               lambda a, ww, bb: torch.native_batch_norm(a, ww, bb, rm_t, rv_t, training, 0.3, 1e-5), [x, w, b], fdt,
               tdt, tol, True)
        np.testing.assert_allclose(rm_f.numpy(), rm_t.numpy(), rtol=tol, atol=tol)
        np.testing.assert_allclose(rv_f.numpy(), rv_t.numpy(), rtol=tol, atol=tol)


def test_native_norm_errors():
    with pytest.raises(ValueError, match=r"native_group_norm: C=6 must be divisible by group=4"):
        fd.native_group_norm(fd.zeros(2, 6, 3), None, None, 2, 6, 3, 4, 1e-5)
    with pytest.raises(ValueError, match=r"native_layer_norm: normalized_shape \(3,\) must match the last dims"):
        fd.native_layer_norm(fd.zeros(2, 4), (3,), None, None, 1e-5)
    with pytest.raises(ValueError, match="native_batch_norm: running_mean and running_var are needed"):
        fd.native_batch_norm(fd.zeros(2, 4), None, None, None, None, False, 0.1, 1e-5)
