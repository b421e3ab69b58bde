"""Lazy modules and Uninitialized{Parameter,Buffer} against PyTorch: reprs, state_dict keys and
types before the first call, inferred sizes, parameter shapes/dtypes and the class change after
it, outputs and gradients once torch's parameters are copied in (float64), init statistics,
load_state_dict materialization, and the errors an uninitialized parameter raises."""
import copy

import numpy as np
import pytest

import fastdl as fd
import fastdl.nn as nn
from fastdl.nn.parameter import is_lazy

torch = pytest.importorskip("torch")

# (name, constructor kwargs, input shape)
CASES = [
    ("LazyLinear", dict(out_features=5), (4, 7)),
    ("LazyLinear", dict(out_features=3, bias=False), (2, 3, 6)),
    ("LazyConv1d", dict(out_channels=6, kernel_size=3, groups=2), (2, 4, 9)),
    ("LazyConv2d", dict(out_channels=3, kernel_size=(3, 2), stride=2, padding=1), (2, 4, 7, 6)),
    ("LazyConv2d", dict(out_channels=3, kernel_size=3, padding="same", padding_mode="reflect"), (4, 6, 5)),
    ("LazyConv3d", dict(out_channels=2, kernel_size=2, bias=False), (2, 3, 5, 6, 4)),
    ("LazyConvTranspose1d", dict(out_channels=6, kernel_size=3, groups=2, stride=2), (2, 4, 5)),
    ("LazyConvTranspose2d", dict(out_channels=4, kernel_size=3, output_padding=1, stride=2), (2, 3, 4, 5)),
    ("LazyConvTranspose3d", dict(out_channels=2, kernel_size=2), (2, 3, 3, 4, 3)),
    ("LazyBatchNorm1d", dict(), (5, 4)),
    ("LazyBatchNorm2d", dict(), (3, 4, 5, 2)),
    ("LazyBatchNorm3d", dict(momentum=None), (3, 4, 2, 3, 2)),
    ("LazyInstanceNorm1d", dict(), (2, 4, 6)),
    ("LazyInstanceNorm2d", dict(affine=False), (2, 3, 5, 4)),
    ("LazyInstanceNorm3d", dict(track_running_stats=False), (2, 3, 3, 4, 3)),
]
IDS = [f"{n}-{i}" for i, (n, _, _) in enumerate(CASES)]


def _fd(t, rg=False):
    return fd.tensor(t.detach().numpy(), dtype=fd.float64, requires_grad=rg)


def _close(a, b, tol=1e-10):
    np.testing.assert_allclose(np.asarray(a.detach().numpy() if hasattr(a, "detach") else a),
                               b.detach().numpy(), rtol=tol, atol=tol)


def _both(name, kw):
    return getattr(torch.nn, name)(**kw, dtype=torch.float64), getattr(nn, name)(**kw, dtype=fd.float64)


@pytest.mark.parametrize("name,kw,shape", CASES, ids=IDS)
def test_lazy_before_first_call_torch(name, kw, shape):
    tm, fm = _both(name, kw)
    assert repr(fm) == repr(tm)
    assert fm.has_uninitialized_params() and tm.has_uninitialized_params()
    tsd, fsd = tm.state_dict(), fm.state_dict()
    assert list(fsd) == list(tsd)
    assert [type(v).__name__ for v in fsd.values()] == [type(v).__name__ for v in tsd.values()]
    assert [n for n, _ in fm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert all(is_lazy(p) and p.dtype == fd.float64 for p in fm.parameters())


@pytest.mark.parametrize("name,kw,shape", CASES, ids=IDS)
def test_lazy_first_call_against_torch(name, kw, shape):
    torch.manual_seed(0)
    tm, fm = _both(name, kw)
    x = torch.randn(*shape, dtype=torch.float64)
    tm(x)
    fm(_fd(x))
    eager = getattr(nn, name[len("Lazy"):])
    assert type(fm) is eager and type(tm).__name__ == eager.__name__
    assert repr(fm) == repr(tm)
    for attr in ("in_features", "in_channels", "num_features"):
        assert getattr(fm, attr, None) == getattr(tm, attr, None)
    tsd, fsd = tm.state_dict(), fm.state_dict()
    assert list(fsd) == list(tsd)
    for k in tsd:
        assert tuple(fsd[k].shape) == tuple(tsd[k].shape), k
    assert all(type(p) is nn.Parameter and p.dtype == fd.float64 and p.requires_grad for p in fm.parameters())
    assert not any(is_lazy(b) for b in fm.buffers())
    # same parameters and buffers: outputs, input and parameter gradients
    fm.load_state_dict({k: fd.tensor(v.numpy()) for k, v in tsd.items()})
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    xf = _fd(x, True)
    y, yf = tm(x), fm(xf)
    _close(yf, y)
    g = torch.randn_like(y)
    y.backward(g)
    yf.backward(_fd(g))
    _close(xf.grad, x.grad)
    for (n, p), (tn, tp) in zip(fm.named_parameters(), tm.named_parameters()):
        assert n == tn
        _close(p.grad, tp.grad)
    for (n, b), (_, tb) in zip(fm.named_buffers(), tm.named_buffers()):
        _close(b.to(fd.float64), tb.double())


def test_lazy_init_statistics_match_eager():
    fd.manual_seed(3)
    lin = nn.LazyLinear(300)
    lin(fd.randn(2, 200))
    w, b = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    bound = 1 / np.sqrt(200)  # kaiming_uniform(a=sqrt(5)) and the bias share this bound
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.02 * bound and abs(w.mean()) < 0.02 * bound
    fd.manual_seed(3)
    fd.randn(2, 200)
    eager = nn.Linear(200, 300)
    np.testing.assert_array_equal(w, eager.weight.detach().numpy())  # the lazy constructor draws nothing
    fd.manual_seed(4)
    conv = nn.LazyConv2d(64, 3)
    conv(fd.randn(1, 20, 5, 5))
    bound = 1 / np.sqrt(20 * 9)
    cw = conv.weight.detach().numpy()
    assert cw.shape == (64, 20, 3, 3) and np.abs(cw).max() <= bound
    assert abs(cw.std() - bound / np.sqrt(3)) < 0.03 * bound
    bn = nn.LazyBatchNorm2d()
    bn.eval()
    bn.initialize_parameters(fd.randn(2, 6, 3, 3))
    assert type(bn) is nn.LazyBatchNorm2d and not bn.has_uninitialized_params()
    np.testing.assert_array_equal(bn.weight.detach().numpy(), np.ones(6))
    np.testing.assert_array_equal(bn.bias.detach().numpy(), np.zeros(6))
    np.testing.assert_array_equal(bn.running_var.numpy(), np.ones(6))
    assert bn.num_batches_tracked.item() == 0


def test_lazy_unbatched_and_dtype_moves_torch():
    tm, fm = torch.nn.LazyConv2d(4, 3), nn.LazyConv2d(4, 3)
    tm.double()
    fm.double()
    assert fm.weight.dtype == fd.float64 and is_lazy(fm.weight)
    x = torch.randn(5, 6, 6, dtype=torch.float64)
    tm(x)
    fm(_fd(x))
    assert fm.in_channels == tm.in_channels == 5
    assert tuple(fm.weight.shape) == tuple(tm.weight.shape) and fm.weight.dtype == fd.float64
    lin = nn.LazyLinear(3)
    lin(fd.randn(6))
    assert lin.in_features == 6 and tuple(lin.weight.shape) == (3, 6)


def test_lazy_load_state_dict_materializes_torch():
    src_t = torch.nn.Linear(5, 3).double()
    tm = torch.nn.LazyLinear(3, dtype=torch.float64)
    fm = nn.LazyLinear(3, dtype=fd.float64)
    tm.load_state_dict(src_t.state_dict())
    fm.load_state_dict({k: _fd(v) for k, v in src_t.state_dict().items()})
    assert type(fm) is nn.LazyLinear and not fm.has_uninitialized_params()
    assert fm.in_features == tm.in_features == 0
    _close(fm.weight, src_t.weight)
    x = torch.randn(2, 5, dtype=torch.float64)
    _close(fm(_fd(x)), tm(x))
    assert type(fm) is nn.Linear and fm.in_features == tm.in_features == 5
    # nested, buffers too
    seq = nn.Sequential(nn.LazyLinear(4), nn.LazyBatchNorm1d())
    seq.load_state_dict(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).state_dict())
    assert tuple(seq[1].running_mean.shape) == (4,) and not seq[0].has_uninitialized_params()
    # lazy into lazy: nothing to materialize, no error
    fresh = nn.LazyLinear(3)
    fresh.load_state_dict(nn.LazyLinear(3).state_dict())
    assert fresh.has_uninitialized_params()


def test_lazy_load_state_dict_errors_torch():
    with pytest.raises(RuntimeError, match="Missing key"):
        nn.LazyLinear(3).load_state_dict({"weight": fd.randn(3, 4)})
    with pytest.raises(torch_error_type(lambda: torch.nn.Linear(2, 3).load_state_dict(
            torch.nn.LazyLinear(3).state_dict())), match="Can't access the shape of an uninitialized"):
        nn.Linear(2, 3).load_state_dict(nn.LazyLinear(3).state_dict())


def torch_error_type(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 (the type torch raises is what we compare)
        return type(e)
    raise AssertionError("torch raised nothing")


def test_uninitialized_parameter_and_buffer_torch():
    for T, F in ((torch.nn.UninitializedParameter, nn.UninitializedParameter),
                 (torch.nn.UninitializedBuffer, nn.UninitializedBuffer)):
        t, f = T(dtype=torch.float64), F(dtype=fd.float64)
        assert repr(f) == repr(t) and f.requires_grad == t.requires_grad
        assert type(copy.deepcopy(f)) is F
        t.materialize((2, 3))
        f.materialize((2, 3))
        assert type(f).__name__ == type(t).__name__
        assert tuple(f.shape) == (2, 3) and f.dtype == fd.float64
    assert nn.parameter.UninitializedParameter is nn.UninitializedParameter
    p = nn.UninitializedParameter(requires_grad=False)
    p.materialize(4, dtype=fd.float64)
    assert type(p) is nn.Parameter and not p.requires_grad and tuple(p.shape) == (4,)
    b = nn.UninitializedBuffer()
    b.materialize([3])
    assert type(b) is fd.Tensor


def test_uninitialized_errors_torch():
    w = torch.nn.LazyLinear(3).weight
    f = nn.LazyLinear(3).weight
    for op in (lambda p: p + 1, lambda p: p.numel(), lambda p: p.sum()):
        with pytest.raises(ValueError, match="Attempted to use an uninitialized parameter"):
            op(w)
        with pytest.raises(ValueError, match="Attempted to use an uninitialized parameter"):
            op(f)
    msg = "Can't access the shape of an uninitialized parameter or buffer"
    with pytest.raises(RuntimeError, match=msg):
        w.shape
    with pytest.raises(RuntimeError, match=msg):
        f.shape
    with pytest.raises(ValueError, match="Attempted to use an uninitialized parameter"):
        torch.optim.Adagrad(torch.nn.LazyLinear(3).parameters())
    # As in PyTorch, an optimizer may hold a lazy module's parameters before the first call:
    # they are materialized in place, so it steps the real ones.
    lazy = nn.LazyLinear(3)
    opt = fd.optim.SGD(lazy.parameters(), lr=0.1)
    lazy(fd.randn(2, 4)).sum().backward()
    before = lazy.weight.detach().clone()
    opt.step()
    np.testing.assert_allclose((before - lazy.weight.detach()).numpy(), 0.1 * lazy.weight.grad.numpy(), rtol=1e-6)


def test_lazy_bad_inputs_torch():
    for tm, fm, x in ((torch.nn.LazyConv2d(4, 3), nn.LazyConv2d(4, 3), (3, 5)),
                      (torch.nn.LazyConv2d(4, 3, groups=2), nn.LazyConv2d(4, 3, groups=2), (1, 3, 5, 5))):
        with pytest.raises(Exception) as te:
            tm(torch.randn(*x))
        with pytest.raises(te.type) as fe:
            fm(fd.randn(*x))
        assert str(fe.value) == str(te.value).replace("torch.Size([3, 5])", "(3, 5)")
    assert type(fm).__name__ == "LazyConv2d" and fm.has_uninitialized_params()


def test_custom_lazy_module():
    class LazyScale(nn.modules.lazy.LazyModuleMixin, nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.UninitializedParameter()

        def initialize_parameters(self, x):
            if self.has_uninitialized_params():
                self.scale.materialize(x.shape[-1:])
                with fd.no_grad():
                    self.scale.fill_(2.0)

        def forward(self, x):
            return x * self.scale

    m = LazyScale()
    y = m(fd.ones(2, 3))
    assert type(m) is LazyScale and y.tolist() == [[2.0] * 3] * 2
    assert m(fd.ones(3)).tolist() == [2.0] * 3
