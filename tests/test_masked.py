"""fastdl.masked against torch.masked: every op, float64 and float32, with and without a mask, a
broadcast mask, fully masked-out slices, keepdim, non-contiguous input, gradients (random
upstream) and errors."""
import numpy as np
import pytest

import fastdl as fd

torch = pytest.importorskip("torch")

DTYPES = [(fd.float64, torch.float64, 1e-10), (fd.float32, torch.float32, 2e-5)]
REDUCTIONS = ["sum", "prod", "amax", "amin", "mean", "logsumexp", "var", "std"]
NORMALIZATIONS = ["softmax", "log_softmax", "softmin", "cumsum", "cumprod"]


def _data(transposed):
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 1.5, (4, 5)) * rng.choice([-1, 1], (4, 5))
    mask = rng.random((4, 5)) > 0.4
    mask[1] = False  # a fully masked-out row
    if transposed:
        return x.T, mask.T
    return x, mask


def _run(name, fdt, tdt, tol, call_fd, call_t, transposed=False, with_mask=True, grad=True):
    x, mask = _data(transposed)
    xf = fd.tensor(np.ascontiguousarray(x.T), dtype=fdt).t().detach().requires_grad_(True) if transposed \
        else fd.tensor(x, dtype=fdt, requires_grad=True)
    xt = torch.tensor(x, dtype=tdt, requires_grad=True)
    mf, mt = (fd.tensor(mask), torch.tensor(mask)) if with_mask else (None, None)
    of, ot = call_fd(xf, mf), call_t(xt, mt)
    assert tuple(of.shape) == tuple(ot.shape) and of.dtype.is_floating_point == ot.dtype.is_floating_point
    np.testing.assert_allclose(of.detach().numpy(), ot.detach().numpy(), rtol=tol, atol=tol, equal_nan=True)
    if not grad or not ot.dtype.is_floating_point:
        return
    w = np.random.default_rng(1).standard_normal(tuple(ot.shape))
    keep = np.isfinite(ot.detach().numpy())  # -inf / nan outputs of fully masked slices carry no gradient
    (of * fd.tensor(np.where(keep, w, 0), dtype=fdt)).sum().backward()
    (ot * torch.tensor(np.where(keep, w, 0), dtype=tdt)).nansum().backward()
    np.testing.assert_allclose(xf.grad.numpy(), xt.grad.numpy(), rtol=tol, atol=tol, equal_nan=True)


@pytest.mark.parametrize("fdt,tdt,tol", DTYPES)
@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize("dim,keepdim", [(1, False), (0, True), (None, False), ((0, 1), True)])
@pytest.mark.parametrize("transposed", [False, True])
def test_reductions(fdt, tdt, tol, name, dim, keepdim, transposed):
    _run(name, fdt, tdt, tol, lambda x, m: getattr(fd.masked, name)(x, dim, keepdim=keepdim, mask=m),
         lambda x, m: getattr(torch.masked, name)(x, dim, keepdim=keepdim, mask=m), transposed)


@pytest.mark.parametrize("fdt,tdt,tol", DTYPES)
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reductions_without_mask(fdt, tdt, tol, name):
    _run(name, fdt, tdt, tol, lambda x, m: getattr(fd.masked, name)(x, 1, mask=m),
         lambda x, m: getattr(torch.masked, name)(x, 1, mask=m), with_mask=False)


@pytest.mark.parametrize("fdt,tdt,tol", DTYPES)
@pytest.mark.parametrize("name", NORMALIZATIONS)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_normalizations(fdt, tdt, tol, name, dim):
    _run(name, fdt, tdt, tol, lambda x, m: getattr(fd.masked, name)(x, dim, mask=m),
         lambda x, m: getattr(torch.masked, name)(x, dim, mask=m), transposed=dim == 0)


@pytest.mark.parametrize("fdt,tdt,tol", DTYPES)
@pytest.mark.parametrize("ord", [2.0, 1.0, 3.5, float("inf"), float("-inf"), 0.0])
def test_norm_and_normalize(fdt, tdt, tol, ord):
    _run("norm", fdt, tdt, tol, lambda x, m: fd.masked.norm(x, ord, 1, mask=m),
         lambda x, m: torch.masked.norm(x, ord, 1, mask=m), grad=ord != 0)
    if ord > 0:
        _run("normalize", fdt, tdt, tol, lambda x, m: fd.masked.normalize(x, ord, 1, mask=m),
             lambda x, m: torch.masked.normalize(x, ord, 1, mask=m))


@pytest.mark.parametrize("fdt,tdt,tol", DTYPES)
def test_arg_reductions_median_and_var_options(fdt, tdt, tol):
    for name in ("argmax", "argmin"):
        _run(name, fdt, tdt, tol, lambda x, m: getattr(fd.masked, name)(x, 1, mask=m),
             lambda x, m: getattr(torch.masked, name)(x, 1, mask=m), grad=False)
    _run("median", fdt, tdt, tol, lambda x, m: fd.masked.median(x, 1, mask=m),
         lambda x, m: torch.masked.median(x, 1, mask=m))
    for kw in ({"unbiased": False}, {"correction": 2}, {"correction": 0}):
        _run("var", fdt, tdt, tol, lambda x, m: fd.masked.var(x, 1, mask=m, **kw),
             lambda x, m: torch.masked.var(x, 1, mask=m, **kw))


def test_broadcast_mask_logaddexp_and_integers():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    row = rng.random(4) > 0.5
    np.testing.assert_allclose(fd.masked.sum(fd.tensor(x), 0, mask=fd.tensor(row)).numpy(),
                               torch.masked.sum(torch.tensor(x), 0, mask=torch.tensor(row)).numpy())
    got = fd.masked.logaddexp(fd.tensor(x), fd.tensor(y), input_mask=fd.tensor(row), other_mask=fd.tensor(~row))
    want = torch.masked.logaddexp(torch.tensor(x), torch.tensor(y), input_mask=torch.tensor(row),
                                  other_mask=torch.tensor(~row))
    np.testing.assert_allclose(got.numpy(), want.numpy())
    xi = rng.integers(-5, 6, (3, 4))
    mi = rng.random((3, 4)) > 0.3
    for name in ("sum", "prod", "amax", "amin"):
        g = getattr(fd.masked, name)(fd.tensor(xi), 1, mask=fd.tensor(mi))
        w = getattr(torch.masked, name)(torch.tensor(xi), 1, mask=torch.tensor(mi))
        assert g.dtype == fd.int64
        np.testing.assert_array_equal(g.numpy(), w.numpy())


def test_errors_name_the_op():
    x = fd.zeros(3, 4)
    with pytest.raises(ValueError, match=r"masked.sum: mask of shape \(2,\) does not broadcast to the input's shape"):
        fd.masked.sum(x, 0, mask=fd.ones(2, dtype=fd.bool))
    with pytest.raises(IndexError, match="masked.amax: dim 2 is out of range"):
        fd.masked.amax(x, 2)
    with pytest.raises(TypeError, match="masked.mean: .*floating point"):
        fd.masked.mean(fd.zeros(3, dtype=fd.int64))
    with pytest.raises(ValueError, match="masked.sum: dim 1 appears multiple times"):
        fd.masked.sum(x, (-1, 1))
