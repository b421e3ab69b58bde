"""In-place ops through views of tensors in a graph (PyTorch's CopySlices): the base's history takes the write,
so gradients through the base and through the view match torch; a base outside the graph joins it; a view of a
leaf that requires grad refuses in-place writes; second derivatives flow through the rebased history."""
import numpy as np
import pytest

import fastdl as fd

torch = pytest.importorskip("torch")

CASES = {
    "slice_mul": lambda lib, K, w: K[:, 1].mul_(3),
    "row_add": lambda lib, K, w: K[0].add_(w[1, 1]),
    "diagonal_mul": lambda lib, K, w: K.diagonal().mul_(w[0, 2]),
    "diagonal_add_jitter": lambda lib, K, w: K.diagonal().add_(1e-3),
    "copy_into_column": lambda lib, K, w: K[:, 1].copy_(w[0] * 2),
    "fill_row": lambda lib, K, w: K[0].fill_(2.0),
    "zero_diagonal": lambda lib, K, w: K.diagonal().zero_(),
    "relu_rows": lambda lib, K, w: K[1:].relu_(),
    "nested_views": lambda lib, K, w: K[1:][:, 1:].diagonal().mul_(w[0, 0]),
    "two_writes": lambda lib, K, w: (K[0].mul_(2), K[:, 0].add_(w[1, 2])),
    "setitem_on_view": lambda lib, K, w: K[1].__setitem__(slice(0, 2), w[2, :2] * 5),
    "unfold_window": lambda lib, K, w: K.reshape(-1).unfold(0, 3, 3)[1].mul_(w[2, 2]),
    "transposed_view": lambda lib, K, w: K.T[0].sub_(w[0]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_inplace_through_view_matches_torch(name):
    x = np.random.default_rng(0).normal(size=(3, 3))
    res = []
    for lib in (fd, torch):
        w = lib.tensor(x, requires_grad=True)
        K = w @ w.T
        CASES[name](lib, K, w)
        (K ** 2).sum().backward()
        res.append((K.detach().numpy(), w.grad.numpy()))
    np.testing.assert_allclose(res[0][0], res[1][0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(res[0][1], res[1][1], rtol=1e-10, atol=1e-12)


def test_view_used_after_the_write_and_second_derivative():
    x = np.random.default_rng(1).normal(size=(3, 3))
    out = []
    for lib in (fd, torch):
        w = lib.tensor(x, requires_grad=True)
        K = w @ w.T
        v = K[1]
        v.mul_(w[0, 1])
        loss = (v ** 3).sum() + (K ** 2).sum()
        (g,) = lib.autograd.grad(loss, w, create_graph=True)
        (h,) = lib.autograd.grad((g ** 2).sum(), w)
        out.append((g.detach().numpy(), h.numpy()))
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-10)
    np.testing.assert_allclose(out[0][1], out[1][1], rtol=1e-9)


def test_base_outside_the_graph_joins_it_and_leaf_views_refuse():
    x = np.random.default_rng(2).normal(size=(3, 3))
    w = fd.tensor(x, requires_grad=True)
    buf = fd.zeros(3, 3)
    buf[:, 0].copy_(w[0] * 2)
    buf.diagonal().mul_(w[1, 1])
    buf.sum().backward()
    tw = torch.tensor(x, requires_grad=True)
    tbuf = torch.zeros(3, 3)
    tbuf[:, 0].copy_(tw[0] * 2)
    tbuf.diagonal().mul_(tw[1, 1])
    tbuf.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-12)
    leaf = fd.tensor(x, requires_grad=True)
    with pytest.raises(ValueError, match="view of a leaf"):
        leaf[0].mul_(2)
    with fd.no_grad():  # optimizer-style updates of a leaf's views stay allowed
        leaf[0].mul_(2)
    assert float(leaf[0, 0]) == 2 * x[0, 0]


def test_views_do_not_keep_their_base_alive():
    """A node that saves a view of B, written into B's history by an in-place op, must not keep B alive (views
    reach their base through a link the base clears when it dies): no reference cycle, nothing leaked."""
    import gc

    def live():
        return fd._C.allocator_stats()["live_bytes"]
    gc.collect()
    before = live()
    for _ in range(50):
        w = fd.randn(1000, requires_grad=True)
        K = w * 2
        K[:500].copy_(K[500:] * K[500:])  # the product saves views of K; K's history then includes it
        h = fd.zeros(6, 50)
        W = fd.randn(50, 50, requires_grad=True)
        for t in range(1, 6):
            h[t] = fd.tanh(h[t - 1] @ W)
    del w, K, h, W
    gc.collect()
    assert live() - before == 0
    # a view outliving its base: the write updates the view's own history
    w = fd.randn(4, requires_grad=True)
    v = (w * 2)[1:]
    v.mul_(3)
    v.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [0.0, 6.0, 6.0, 6.0])
