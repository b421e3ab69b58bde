"""nn.utils.prune: masks, the name_orig / name_mask layout and the forward pre-hook, iterative
pruning (a new method prunes among what is left), global pruning and remove(), against
PyTorch's torch.nn.utils.prune on the same weights when it is installed."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.nn as nn
from fastdl.nn.utils import prune

try:
    import torch
    import torch.nn.utils.prune  # noqa: F401  (not imported by torch.nn.utils itself)
except ImportError:  # the PyTorch comparisons skip; the fastdl checks still run
    torch = None


def _pair(shape_in=6, shape_out=5, seed=0):
    w = np.random.default_rng(seed).standard_normal((shape_out, shape_in))
    m = nn.Linear(shape_in, shape_out).double()
    with fd.no_grad():
        m.weight.copy_(fd.tensor(w))
    t = None
    if torch is not None:
        t = torch.nn.Linear(shape_in, shape_out).double()
        with torch.no_grad():
            t.weight.copy_(torch.tensor(w))
            t.bias.copy_(torch.tensor(m.bias.detach().numpy()))
    return m, t, w


def test_l1_unstructured_masks_the_smallest_and_reparametrises():
    m, _, w = _pair()
    prune.l1_unstructured(m, "weight", amount=0.3)
    names = {n for n, _ in m.named_parameters()}
    assert names == {"weight_orig", "bias"} and "weight_mask" in dict(m.named_buffers())
    mask = m.weight_mask.numpy()
    k = round(0.3 * w.size)
    assert mask.sum() == w.size - k
    assert np.abs(w)[mask == 0].max() <= np.abs(w)[mask == 1].min()
    x = fd.tensor(np.random.default_rng(1).standard_normal((3, 6)))
    y = m(x)
    np.testing.assert_allclose(y.detach().numpy(), x.numpy() @ (w * mask).T + m.bias.detach().numpy())
    y.sum().backward()  # the gradient reaches weight_orig only where the mask keeps it
    assert np.all(m.weight_orig.grad.numpy()[mask == 0] == 0)
    assert prune.is_pruned(m)


@pytest.mark.parametrize("case", ["l1", "l1_int", "ln2_dim0", "ln1_dim1", "lninf", "iterative", "custom"])
def test_masks_match_pytorch(case):
    if torch is None:
        pytest.skip("PyTorch not installed")
    m, t, _ = _pair(seed=3)
    TP = torch.nn.utils.prune
    steps = {
        "l1": [("l1_unstructured", dict(amount=0.4))],
        "l1_int": [("l1_unstructured", dict(amount=7))],
        "ln2_dim0": [("ln_structured", dict(amount=2, n=2, dim=0))],
        "ln1_dim1": [("ln_structured", dict(amount=0.5, n=1, dim=1))],
        "lninf": [("ln_structured", dict(amount=1, n=float("inf"), dim=0))],
        "iterative": [("l1_unstructured", dict(amount=0.3)), ("ln_structured", dict(amount=1, n=2, dim=0)),
                      ("l1_unstructured", dict(amount=0.5))],
        "custom": [("custom_from_mask", dict(mask=np.arange(30).reshape(5, 6) % 3 != 0))],
    }[case]
    for fn, kw in steps:
        if "mask" in kw:
            getattr(prune, fn)(m, "weight", mask=fd.tensor(kw["mask"]))
            getattr(TP, fn)(t, "weight", mask=torch.tensor(kw["mask"]))
        else:
            getattr(prune, fn)(m, "weight", **kw)
            getattr(TP, fn)(t, "weight", **kw)
    np.testing.assert_array_equal(m.weight_mask.numpy(), t.weight_mask.numpy())
    np.testing.assert_allclose(m.weight.detach().numpy(), t.weight.detach().numpy())
    if case == "iterative":
        assert len(m._forward_pre_hooks) == 1
        hook = next(iter(m._forward_pre_hooks.values()))
        assert isinstance(hook, prune.PruningContainer) and len(hook) == 3


def test_global_unstructured_prunes_across_parameters():
    a, ta, _ = _pair(seed=4)
    b, tb, _ = _pair(seed=5)
    prune.global_unstructured([(a, "weight"), (b, "weight")], pruning_method=prune.L1Unstructured, amount=0.5)
    wa, wb = a.weight_orig.detach().numpy(), b.weight_orig.detach().numpy()
    ma, mb = a.weight_mask.numpy(), b.weight_mask.numpy()
    assert ma.sum() + mb.sum() == 30  # half of the 60 entries, split by magnitude across both
    kept = np.concatenate([np.abs(wa)[ma == 1], np.abs(wb)[mb == 1]])
    cut = np.concatenate([np.abs(wa)[ma == 0], np.abs(wb)[mb == 0]])
    assert cut.max() <= kept.min()
    if torch is not None:
        TP = torch.nn.utils.prune
        TP.global_unstructured([(ta, "weight"), (tb, "weight")], pruning_method=TP.L1Unstructured, amount=0.5)
        np.testing.assert_array_equal(ma, ta.weight_mask.numpy())
        np.testing.assert_array_equal(mb, tb.weight_mask.numpy())


def test_remove_makes_pruning_permanent():
    m, _, w = _pair(seed=6)
    prune.ln_structured(m, "weight", amount=2, n=2, dim=0)
    mask = m.weight_mask.numpy()
    prune.remove(m, "weight")
    assert {n for n, _ in m.named_parameters()} == {"weight", "bias"}
    assert isinstance(m.weight, nn.Parameter) and not m._forward_pre_hooks and not dict(m.named_buffers())
    np.testing.assert_allclose(m.weight.detach().numpy(), w * mask)
    assert mask.sum(1).tolist().count(0) == 2  # two whole rows (output channels) gone
    assert not prune.is_pruned(m)
    with pytest.raises(ValueError, match="has to be pruned"):
        prune.remove(m, "weight")


def test_random_methods_prune_the_requested_amount():
    fd.manual_seed(0)
    m, _, _ = _pair(seed=7)
    prune.random_unstructured(m, "weight", amount=0.2)
    assert m.weight_mask.numpy().sum() == 30 - 6
    prune.random_structured(m, "weight", amount=1, dim=1)
    cols = m.weight_mask.numpy().sum(0)
    assert (cols == 0).sum() >= 1


def test_bad_amounts_raise():
    m, _, _ = _pair(seed=8)
    with pytest.raises(ValueError, match="amount"):
        prune.l1_unstructured(m, "weight", amount=1.5)
    with pytest.raises(ValueError, match="amount"):
        prune.l1_unstructured(m, "weight", amount=31)
    with pytest.raises(TypeError, match="amount"):
        prune.l1_unstructured(m, "weight", amount="half")
    with pytest.raises(IndexError, match="dim"):
        prune.ln_structured(m, "weight", amount=1, n=2, dim=3)
    assert not prune.is_pruned(m) and "weight" in dict(m.named_parameters())  # left as it was
    prune.l1_unstructured(m, "weight", amount=3)
    with pytest.raises(ValueError, match="amount"):
        prune.l1_unstructured(m, "weight", amount=28)  # only 27 left
    hooks = list(m._forward_pre_hooks.values())
    assert len(hooks) == 1 and isinstance(hooks[0], prune.L1Unstructured) and m.weight_mask.numpy().sum() == 27


def test_state_dict_and_training_step():
    m, _, _ = _pair(seed=9)
    prune.l1_unstructured(m, "weight", amount=0.5)
    sd = m.state_dict()
    assert set(sd) == {"weight_orig", "weight_mask", "bias"}
    opt = fd.optim.SGD(m.parameters(), lr=0.1)
    x = fd.tensor(np.random.default_rng(2).standard_normal((4, 6)))
    for _ in range(3):
        opt.zero_grad()
        (m(x) ** 2).sum().backward()
        opt.step()
    w = m.weight.detach().numpy()
    assert np.all(w[m.weight_mask.numpy() == 0] == 0)  # masked entries stay 0 through training
