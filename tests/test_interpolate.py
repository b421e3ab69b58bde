"""F.interpolate / nn.Upsample (every mode) against PyTorch in float64: values
and input gradients for a random upstream gradient, odd sizes, up- and down-sampling."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.nn as nn
import fastdl.nn.functional as F

CASES = [((2, 3, 5, 7), dict(scale_factor=2)), ((2, 3, 5, 7), dict(size=(9, 4))),
         ((1, 2, 8, 8), dict(scale_factor=0.5)), ((2, 3, 5, 7), dict(size=(9, 4), mode="bilinear")),
         ((2, 3, 5, 7), dict(scale_factor=1.7, mode="bilinear")),
         ((2, 3, 5, 7), dict(scale_factor=(1.7, 0.6), mode="bilinear", align_corners=True)),
         ((2, 3, 6), dict(size=11, mode="linear")), ((2, 3, 6), dict(scale_factor=3)),
         ((2, 3, 5, 7), dict(size=(9, 4), mode="bicubic")),
         ((1, 2, 5, 6), dict(scale_factor=1.7, mode="bicubic", align_corners=True)),
         ((1, 2, 3, 4, 5), dict(size=(5, 3, 7), mode="trilinear")),
         ((2, 3, 7, 9), dict(size=(3, 4), mode="area")), ((2, 3, 5), dict(scale_factor=2.5, mode="nearest-exact")),
         ((2, 3, 5, 7), dict(scale_factor=1.7, mode="bilinear", recompute_scale_factor=True))]


@pytest.mark.parametrize("shape,kw", CASES)
def test_interpolate_matches_torch(shape, kw, rng, torch):
    a = rng.standard_normal(shape)
    x = fd.tensor(a, requires_grad=True)
    y = F.interpolate(x, **kw)
    tx = torch.tensor(a, requires_grad=True)
    ty = torch.nn.functional.interpolate(tx, **kw)
    assert tuple(y.shape) == tuple(ty.shape)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(tuple(ty.shape))
    y.backward(fd.tensor(g))
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_upsample_module_and_errors(rng):
    x = fd.tensor(rng.standard_normal((1, 2, 3, 3)).astype(np.float32))
    y = nn.Upsample(scale_factor=2)(x).numpy()
    assert y.shape == (1, 2, 6, 6) and y.dtype == np.float32
    np.testing.assert_array_equal(y[:, :, ::2, ::2], x.numpy())
    np.testing.assert_array_equal(y[:, :, 1::2, 1::2], x.numpy())
    with pytest.raises(ValueError, match="interpolate"):
        F.interpolate(x, size=4, scale_factor=2)
    with pytest.raises(ValueError, match="mode"):
        F.interpolate(x, size=4, mode="cubic")
    with pytest.raises(ValueError, match="4-D"):
        F.interpolate(fd.randn(1, 2, 3), size=4, mode="bilinear")


@pytest.mark.parametrize("kw", [dict(scale_factor=2), dict(scale_factor=(2, 3)), dict(size=(7, 9), mode="bilinear"),
                                dict(scale_factor=1.5, mode="bicubic")])
def test_upsample_attrs_and_repr_torch(kw, rng):
    """nn.Upsample keeps scale_factor as float(s) and prints scale_factor first, as torch."""
    torch = pytest.importorskip("torch")
    m, tm = nn.Upsample(**kw), torch.nn.Upsample(**kw)
    assert (m.scale_factor, m.size, m.name) == (tm.scale_factor, tm.size, tm.name) and repr(m) == repr(tm)
    x = rng.standard_normal((1, 2, 4, 5))
    np.testing.assert_allclose(m(fd.tensor(x)).numpy(), tm(torch.tensor(x)).numpy(), rtol=1e-12, atol=1e-12)
