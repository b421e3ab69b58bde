"""out= on the top-level functions: the result lands in the given tensor (resized when its
shape differs, strided outs written in place, cast within a dtype kind), tuple results take a
tuple, and the errors PyTorch raises (a float result into an integer out, out= with autograd)."""
import numpy as np
import pytest

import fastdl as fd
from fastdl._out import NAMES


def test_results_land_in_out():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    x, y = fd.tensor(a), fd.tensor(b)
    cases = [
        (lambda o: fd.add(x, y, alpha=2, out=o), a + 2 * b),
        (lambda o: fd.mul(x, 3.0, out=o), a * 3),
        (lambda o: fd.exp(x, out=o), np.exp(a)),
        (lambda o: fd.matmul(x, y.T, out=o), a @ b.T),
        (lambda o: fd.cat([x, y], 1, out=o), np.concatenate([a, b], 1)),
        (lambda o: fd.cumsum(x, 0, out=o), np.cumsum(a, 0)),
        (lambda o: fd.where(x > 0, x, y, out=o), np.where(a > 0, a, b)),
        (lambda o: fd.sum(x, 1, out=o), a.sum(1)),
        (lambda o: fd.clamp(x, -0.5, 0.5, out=o), np.clip(a, -0.5, 0.5)),
        (lambda o: fd.zeros(2, 5, dtype=fd.float64, out=o), np.zeros((2, 5))),
        (lambda o: fd.arange(0.0, 3.0, 0.5, dtype=fd.float64, out=o), np.arange(0, 3, 0.5)),
    ]
    for f, want in cases:
        for out in (fd.empty(0, dtype=fd.float64), fd.empty(*want.shape, dtype=fd.float64)):
            got = f(out)
            assert got is out
            np.testing.assert_allclose(out.numpy(), want, rtol=1e-12)


def test_strided_out_tuples_and_casts():
    x = fd.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]])
    buf = fd.zeros(3, 4)
    view = buf[:, ::2].T  # (2, 3), strided
    fd.mul(x, 2.0, out=view)
    np.testing.assert_array_equal(buf.numpy()[:, ::2].T, x.numpy() * 2)
    assert buf.numpy()[:, 1].tolist() == [0.0, 0.0, 0.0]  # untouched between the strides
    vals, idx = fd.empty(0), fd.empty(0, dtype=fd.int64)
    r = fd.sort(x, dim=1, out=(vals, idx))
    assert r.values is vals and r.indices is idx and idx.tolist() == [[1, 2, 0], [0, 2, 1]]
    mx, am = fd.empty(0), fd.empty(0, dtype=fd.int64)
    fd.max(x, 1, out=(mx, am))
    assert mx.tolist() == [3.0, 5.0] and am.tolist() == [0, 1]
    o64 = fd.empty(2, 3, dtype=fd.float64)  # float32 result into a float64 out: cast
    fd.add(x, 1, out=o64)
    assert o64.dtype == fd.float64 and o64.tolist() == (x + 1).tolist()
    oi = fd.empty(3, dtype=fd.int32)
    fd.add(fd.tensor([1, 2, 3]), 1, out=oi)
    assert oi.tolist() == [2, 3, 4] and oi.dtype == fd.int32


def test_out_errors():
    x = fd.ones(3)
    with pytest.raises(RuntimeError, match="can't be cast"):
        fd.add(x, x, out=fd.empty(3, dtype=fd.int64))
    with pytest.raises(RuntimeError, match="automatic differentiation"):
        fd.exp(fd.ones(3, requires_grad=True), out=fd.empty(3))
    with fd.no_grad():
        fd.exp(fd.ones(3, requires_grad=True), out=fd.empty(3))  # no graph: allowed
    with pytest.raises(TypeError, match="tuple of 2"):
        fd.sort(x, out=fd.empty(3))
    with pytest.raises(TypeError, match="Tensor"):
        fd.exp(x, out=[1, 2, 3])


def test_every_listed_function_takes_out():
    import inspect
    for name in NAMES:
        f = getattr(fd, name, None)
        if f is None:
            continue
        assert "out" in inspect.signature(f, follow_wrapped=False).parameters, name
