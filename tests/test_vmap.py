"""vmap (fd.vmap, fd.func.vmap) against torch.vmap: in_dims as ints, None, negative, nested tuples /
dicts; out_dims per output; pytree outputs; keyword arguments; gradients through the mapped
function; per-sample gradients composed with func.grad; randomness="same"; and the errors."""
import numpy as np
import pytest

import fastdl as fd

torch = pytest.importorskip("torch")


def _pair(*shape, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape)
    return fd.from_numpy(a.copy()), torch.tensor(a)


def _close(ours, theirs):
    if isinstance(ours, (tuple, list)):
        assert len(ours) == len(theirs)
        for o, t in zip(ours, theirs):
            _close(o, t)
    elif isinstance(ours, dict):
        assert set(ours) == set(theirs)
        for k in ours:
            _close(ours[k], theirs[k])
    else:
        assert tuple(ours.shape) == tuple(theirs.shape)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12, atol=1e-12)


def test_in_dims_and_out_dims_match_torch():
    x, tx = _pair(4, 3, 5)
    w, tw = _pair(5, 2, seed=1)
    cases = [
        (lambda a, m: (a @ m).sin().sum(0), dict(in_dims=(0, None))),
        (lambda a, m: (a @ m).cos(), dict(in_dims=(1, None), out_dims=1)),
        (lambda a, m: a.sum() * m, dict(in_dims=(-1, None), out_dims=-1)),
        (lambda a, m: (a.exp(), a.mean(0) @ m), dict(in_dims=(1, None), out_dims=(0, 1))),
    ]
    for f, kw in cases:
        _close(fd.vmap(f, **kw)(x, w), torch.vmap(f, **kw)(tx, tw))


def test_nested_inputs_outputs_and_kwargs():
    x, tx = _pair(3, 4)
    y, ty = _pair(4, 3, seed=1)

    def f(pair, d, *, scale):
        return {"s": (pair[0] * pair[1]).sum() * scale, "v": (pair[0] + d["z"], d["z"] * 2)}
    ours = fd.vmap(f, in_dims=((0, 1), {"z": 0}))((x, y), {"z": x}, scale=0.5)
    theirs = torch.vmap(f, in_dims=((0, 1), {"z": 0}))((tx, ty), {"z": tx}, scale=0.5)
    _close(ours, theirs)
    ours = fd.vmap(lambda a: (a.sum(), a), out_dims=(0, None))(fd.ones(3, 2))  # an unmapped output
    assert tuple(ours[0].shape) == (3,)


def test_nested_vmap_and_gradients():
    x, tx = _pair(3, 4, 5)
    f = fd.vmap(fd.vmap(lambda v: (v * v).sum()))
    tf = torch.vmap(torch.vmap(lambda v: (v * v).sum()))
    _close(f(x), tf(tx))
    xr = x.clone().requires_grad_(True)
    fd.vmap(lambda v: v.tanh().sum())(xr).sum().backward()
    np.testing.assert_allclose(xr.grad.numpy(), 1 - np.tanh(x.numpy()) ** 2, rtol=1e-12)


def test_per_sample_gradients():
    func = pytest.importorskip("fastdl.func")
    x, tx = _pair(6, 4)
    y, ty = _pair(6, seed=1)
    w, tw = _pair(4, seed=2)

    def loss(wt, xi, yi):
        return ((xi * wt).sum() - yi) ** 2
    ours = fd.vmap(func.grad(loss), in_dims=(None, 0, 0))(w, x, y)
    theirs = torch.vmap(torch.func.grad(loss), in_dims=(None, 0, 0))(tw, tx, ty)
    _close(ours, theirs)


def test_randomness_same_replays_one_draw():
    fd.manual_seed(0)
    out = fd.vmap(lambda v: v + fd.rand(3), randomness="same")(fd.zeros(4, 3))
    assert np.allclose(out.numpy(), out.numpy()[0])
    out = fd.vmap(lambda v: v + fd.rand(3), randomness="different")(fd.zeros(4, 3))
    assert not np.allclose(out.numpy(), out.numpy()[0])


def test_errors():
    x = fd.randn(3, 4)
    with pytest.raises(ValueError, match="same size in the mapped dimension"):
        fd.vmap(lambda a, b: a + b)(x, fd.randn(5, 4))
    with pytest.raises(ValueError, match="at least one input must be mapped"):
        fd.vmap(lambda a: a, in_dims=None)(x)
    with pytest.raises(ValueError, match="out of range"):
        fd.vmap(lambda a: a, in_dims=2)(x)
    with pytest.raises(ValueError, match="only tensors"):
        fd.vmap(lambda a, n: a * n, in_dims=(0, 0))(x, 3)
    with pytest.raises(ValueError, match="must return tensors"):
        fd.vmap(lambda a: 3)(x)
    with pytest.raises(ValueError, match="randomness"):
        fd.vmap(lambda a: a, randomness="sometimes")
    with pytest.raises(ValueError, match="in_dims has 1 entries"):
        fd.vmap(lambda a, b: a, in_dims=(0,))(x, x)
