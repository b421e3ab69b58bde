"""torch.func's remaining helpers (linearize, stack_module_state, functionalize,
replace_all_batch_norm_modules_), nn.utils.rnn.unpad_sequence and nn.DataParallel, against torch."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.nn as nn

torch = pytest.importorskip("torch")


def test_linearize_against_torch():
    r = np.random.default_rng(0)
    x, w = r.normal(size=(4, 3)), r.normal(size=(3, 5))
    t1, t2 = r.normal(size=(4, 3)), r.normal(size=(4, 3))

    def f(lib):
        return lambda a: (lib.tanh(a @ lib.tensor(w)) ** 2).sum(-1)
    out, jfn = fd.func.linearize(f(fd), fd.tensor(x))
    tout, tjfn = torch.func.linearize(f(torch), torch.tensor(x))
    np.testing.assert_allclose(out.numpy(), tout.numpy(), rtol=1e-12)
    for t in (t1, t2):  # one recorded forward, any number of tangents
        np.testing.assert_allclose(jfn(fd.tensor(t)).numpy(), tjfn(torch.tensor(t)).numpy(), rtol=1e-10, atol=1e-12)
    assert not out.requires_grad
    with pytest.raises(RuntimeError):
        jfn(fd.ones(2, 2))


def test_stack_module_state_and_ensemble_call():
    fd.manual_seed(0)
    models = [nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2)) for _ in range(3)]
    params, buffers = fd.func.stack_module_state(models)
    assert set(params) == {n for n, _ in models[0].named_parameters()}
    assert set(buffers) == {n for n, _ in models[0].named_buffers()}
    assert tuple(params["0.weight"].shape) == (3, 4, 3) and params["0.weight"].requires_grad
    assert params["0.weight"].is_leaf
    x = fd.randn(5, 3)
    for i, m in enumerate(models):
        m.eval()
        out = fd.func.functional_call(m, ({k: v[i] for k, v in params.items()}, {k: v[i] for k, v in buffers.items()}),
                                      (x,))
        np.testing.assert_allclose(out.detach().numpy(), m(x).detach().numpy(), rtol=1e-6)
    with pytest.raises(RuntimeError):
        fd.func.stack_module_state([])
    with pytest.raises(RuntimeError):
        fd.func.stack_module_state([nn.Linear(2, 2), nn.Linear(2, 2).eval()])


def test_functionalize_and_replace_batch_norm():
    def f(x):
        y = x.clone()
        y.add_(1.0)
        return y * 2
    x = fd.randn(4)
    np.testing.assert_array_equal(fd.func.functionalize(f)(x).numpy(), f(x).numpy())
    with pytest.raises(RuntimeError):
        fd.func.functionalize(f, remove="everything")
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Flatten(), nn.Sequential(nn.BatchNorm1d(27)))
    assert fd.func.replace_all_batch_norm_modules_(net) is net
    for m in (net[1], net[3][0]):
        assert m.running_mean is None and m.running_var is None and not m.track_running_stats
    net(fd.randn(2, 2, 5, 5))  # batch statistics, no running ones to update
    assert not list(net.named_buffers())
    tnet = torch.nn.Sequential(torch.nn.BatchNorm2d(3))
    torch.func.replace_all_batch_norm_modules_(tnet)
    assert not list(tnet.named_buffers())


@pytest.mark.parametrize("batch_first", [False, True])
def test_unpad_sequence_against_torch(batch_first):
    r = np.random.default_rng(1)
    seqs = [r.normal(size=(n, 3)) for n in (5, 2, 4)]
    padded = fd.nn.utils.rnn.pad_sequence([fd.tensor(s) for s in seqs], batch_first=batch_first)
    lengths = fd.tensor([5, 2, 4])
    out = fd.nn.utils.rnn.unpad_sequence(padded, lengths, batch_first=batch_first)
    tpadded = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in seqs], batch_first=batch_first)
    tout = torch.nn.utils.rnn.unpad_sequence(tpadded, torch.tensor([5, 2, 4]), batch_first=batch_first)
    assert len(out) == 3
    for a, b, s in zip(out, tout, seqs):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        np.testing.assert_array_equal(a.numpy(), s)
    with pytest.raises(ValueError):
        fd.nn.utils.rnn.unpad_sequence(padded, [5, 2], batch_first=batch_first)


def test_data_parallel_wraps_the_module():
    fd.manual_seed(0)
    inner = nn.Linear(3, 2)
    dp = nn.DataParallel(inner)
    x = fd.randn(4, 3)
    np.testing.assert_array_equal(dp(x).detach().numpy(), inner(x).detach().numpy())
    assert dp.module is inner
    assert set(dp.state_dict()) == {"module.weight", "module.bias"}
    tdp = torch.nn.DataParallel(torch.nn.Linear(3, 2))
    assert set(tdp.state_dict()) == set(dp.state_dict())
    dp(x).sum().backward()
    assert inner.weight.grad is not None
    np.testing.assert_array_equal(nn.parallel.data_parallel(inner, x).detach().numpy(), inner(x).detach().numpy())
    with pytest.raises(NotImplementedError):
        nn.DataParallel(inner, device_ids=[0, 1])
    with pytest.raises(TypeError):
        nn.DataParallel(lambda v: v)
