"""nn layers and the fused nn kernels: outputs and gradients against PyTorch in float64 (skipped
without it), numpy references and finite differences (always), Module features."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.nn as nn
import fastdl.nn.functional as F
from fastdl.autograd import gradcheck


def _t(a, rg=True, dtype=fd.float64):
    return fd.tensor(a, dtype=dtype, requires_grad=rg)


def _cmp_torch(torch, fd_fn, th_fn, arrays, rng, rtol=1e-10, atol=1e-12):
    """Run fd_fn / th_fn on the same float64 arrays; compare outputs and input gradients."""
    xs = [_t(a) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    yf, yt = fd_fn(*xs), th_fn(*ts)
    np.testing.assert_allclose(yf.detach().numpy(), yt.detach().numpy(), rtol=rtol, atol=atol)
    g = rng.standard_normal(tuple(yt.shape))
    yf.backward(fd.tensor(g, dtype=fd.float64))
    yt.backward(torch.tensor(g))
    for a, b in zip(xs, ts):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=rtol, atol=atol)


# ---- fused kernels
@pytest.mark.parametrize("shape,dim", [((5, 7), 1), ((3, 4, 6), 0), ((2, 3, 33), -1)])
@pytest.mark.parametrize("log", [False, True])
def test_softmax_backward_torch(shape, dim, log, rng):
    torch = pytest.importorskip("torch")
    f, tf = (F.log_softmax, torch.log_softmax) if log else (F.softmax, torch.softmax)
    _cmp_torch(torch, lambda x: f(x, dim), lambda x: tf(x, dim), [rng.standard_normal(shape) * 3], rng)


def test_softmax_gradcheck_and_float32_every_isa(isa, rng):
    x = _t(rng.standard_normal((3, 5)))
    assert gradcheck(lambda a: F.log_softmax(a, 1), [x])
    assert gradcheck(lambda a: F.softmax(a, 0), [x])
    a = rng.standard_normal((4, 37)).astype(np.float32) * 50
    y = F.softmax(fd.tensor(a), 1).numpy()
    e = np.exp(a.astype(np.float64) - a.max(1, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(1, keepdims=True), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("shape,ns", [((4, 6), (6,)), ((2, 3, 5, 4), (5, 4)), ((3, 40), (40,))])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_torch(shape, ns, affine, rng):
    torch = pytest.importorskip("torch")
    arrays = [rng.standard_normal(shape) * 2 + 1]
    if affine:
        arrays += [rng.standard_normal(ns), rng.standard_normal(ns)]
    _cmp_torch(torch, lambda x, *wb: F.layer_norm(x, ns, *wb, eps=1e-5),
               lambda x, *wb: torch.nn.functional.layer_norm(x, ns, *wb, eps=1e-5), arrays, rng)


def test_layer_norm_numpy_gradcheck_every_isa(isa, rng):
    x, w, b = rng.standard_normal((3, 7)), rng.standard_normal(7), rng.standard_normal(7)
    y = F.layer_norm(_t(x), 7, _t(w), _t(b)).detach().numpy()
    ref = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5) * w + b
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda a, c, d: F.layer_norm(a, (7,), c, d), [_t(x), _t(w), _t(b)])
    assert gradcheck(lambda a, c: F.layer_norm(a, (7,), c, None), [_t(x), _t(w)])
    y32 = F.layer_norm(fd.tensor(x, dtype=fd.float32), 7, fd.tensor(w, dtype=fd.float32),
                       fd.tensor(b, dtype=fd.float32)).numpy()
    np.testing.assert_allclose(y32, ref, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="layer_norm"):
        F.layer_norm(_t(x), (6,))


def test_layer_norm_strided_input():
    x = fd.tensor(np.arange(24.0).reshape(4, 6), dtype=fd.float64).T  # (6, 4) non-contiguous
    y = F.layer_norm(x, (4,)).numpy()
    a = np.arange(24.0).reshape(4, 6).T
    np.testing.assert_allclose(y, (a - a.mean(1, keepdims=True)) / np.sqrt(a.var(1, keepdims=True) + 1e-5), atol=1e-12)


# ---- layers
def test_layer_modules_match_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((6, 5))
    for fm, tm in [(nn.LayerNorm(5), torch.nn.LayerNorm(5)), (nn.GELU("tanh"), torch.nn.GELU("tanh")),
                   (nn.GELU(), torch.nn.GELU()), (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
                   (nn.SiLU(), torch.nn.SiLU()), (nn.Sigmoid(), torch.nn.Sigmoid()), (nn.Tanh(), torch.nn.Tanh()),
                   (nn.Softmax(1), torch.nn.Softmax(1)), (nn.LogSoftmax(1), torch.nn.LogSoftmax(1))]:
        fm.double()
        _cmp_torch(torch, fm, tm.double(), [x], rng)


@pytest.mark.parametrize("two_d", [False, True])
def test_batchnorm_train_eval_running_stats_torch(two_d, rng):
    torch = pytest.importorskip("torch")
    shape = (4, 3, 5, 2) if two_d else (8, 3)
    fm = (nn.BatchNorm2d(3, momentum=0.3) if two_d else nn.BatchNorm1d(3, momentum=0.3)).double()
    tm = (torch.nn.BatchNorm2d(3, momentum=0.3) if two_d else torch.nn.BatchNorm1d(3, momentum=0.3)).double()
    for _ in range(3):
        _cmp_torch(torch, fm, tm, [rng.standard_normal(shape) * 2 + 0.5], rng)
    np.testing.assert_allclose(fm.running_mean.numpy(), tm.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(fm.running_var.numpy(), tm.running_var.numpy(), rtol=1e-12)
    assert int(fm.num_batches_tracked.item()) == 3
    fm.eval()
    tm.eval()
    _cmp_torch(torch, fm, tm, [rng.standard_normal(shape)], rng)
    assert set(fm.state_dict()) == set(tm.state_dict())


def test_batchnorm_numpy_and_gradcheck(rng):
    bn = nn.BatchNorm1d(3).double()
    x = rng.standard_normal((6, 3))
    y = bn(_t(x)).detach().numpy()
    np.testing.assert_allclose(y, (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5), atol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.9 + 0.1 * x.var(0, ddof=1), rtol=1e-12)
    w, b = _t(rng.standard_normal(3)), _t(rng.standard_normal(3))
    assert gradcheck(lambda a, c, d: F.batch_norm(a, None, None, c, d, training=True), [_t(x), w, b])
    with pytest.raises(ValueError, match="channels"):
        bn(_t(rng.standard_normal((4, 2))))


def test_embedding(rng):
    e = nn.Embedding(10, 4, padding_idx=0).double()
    assert np.all(e.weight.detach().numpy()[0] == 0)
    idx = fd.tensor([[0, 3, 3], [9, 0, 1]])
    out = e(idx)
    assert tuple(out.shape) == (2, 3, 4)
    out.sum().backward()
    g = e.weight.grad.numpy()
    assert np.all(g[0] == 0) and np.all(g[3] == 2) and np.all(g[9] == 1) and np.all(g[2] == 0)
    with pytest.raises(IndexError):
        e(fd.tensor([10]))
    pre = nn.Embedding.from_pretrained(fd.tensor(np.eye(3)))
    assert not pre.weight.requires_grad


def test_embedding_padding_row_reads_its_values():
    # PyTorch: padding_idx only blocks the gradient; a non-zero padding row still reads back
    w = fd.tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    out = F.embedding(fd.tensor([2, 1, 2]), w, padding_idx=-1)
    np.testing.assert_array_equal(out.detach().numpy(), [[4, 5], [2, 3], [4, 5]])
    out.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [[0, 0], [1, 1], [0, 0]])


def test_init_functions(rng):
    from fastdl.nn import init
    w = fd.empty(200, 300)
    for fn, std in [(init.xavier_uniform_, np.sqrt(2 / 500)), (init.xavier_normal_, np.sqrt(2 / 500)),
                    (init.kaiming_normal_, np.sqrt(2 / 300)), (lambda t: init.kaiming_uniform_(t, a=0), np.sqrt(2 / 300)),
                    (lambda t: init.normal_(t, 0, 0.5), 0.5)]:
        fn(w)
        assert abs(w.numpy().std() / std - 1) < 0.03
    init.trunc_normal_(w, std=1.0, a=-1.0, b=1.0)
    assert w.numpy().min() >= -1 and w.numpy().max() <= 1
    init.zeros_(w)
    assert not w.numpy().any()
    init.ones_(w)
    assert w.numpy().min() == 1
    init.uniform_(w, -0.1, 0.1)
    assert abs(w.numpy()).max() <= 0.1


# ---- Module features
def _mlp():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def test_state_dict_strict_and_non_strict():
    a, b = _mlp(), _mlp()
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a[0].weight.detach().numpy(), b[0].weight.detach().numpy())
    sd = a.state_dict()
    del sd["2.bias"]
    sd["extra"] = fd.zeros(1)
    with pytest.raises(RuntimeError, match='Missing key.*"2.bias"') as e:
        b.load_state_dict(sd)
    assert '"extra"' in str(e.value)
    res = b.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["2.bias"] and res.unexpected_keys == ["extra"]
    bad = a.state_dict()
    bad["0.weight"] = fd.zeros(3, 3)
    with pytest.raises(RuntimeError, match="size mismatch for 0.weight"):
        b.load_state_dict(bad, strict=False)


def test_freeze_apply_repr_train_eval_modules():
    m = _mlp()
    m[0].requires_grad_(False)
    assert [n for n, p in m.named_parameters() if p.requires_grad] == ["2.weight", "2.bias"]
    seen = []
    m.apply(lambda mod: seen.append(type(mod).__name__))
    assert seen == ["Linear", "ReLU", "Linear", "Sequential"]
    assert "(0): Linear(in_features=4, out_features=8, bias=True)" in repr(m)
    m.eval()
    assert not any(x.training for x in m.modules())
    m.train()
    assert all(x.training for x in m.modules())
    assert len(list(m.children())) == 3 and len(list(m.parameters())) == 4
    d = nn.ModuleDict({"a": nn.Linear(2, 2)})
    lst = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])
    assert len(list(d.parameters())) == 2 and len(list(lst.parameters())) == 4
    m.double()
    assert m[0].weight.dtype == fd.float64
    x = fd.randn(3, 4, dtype=fd.float64)
    m(x).sum().backward()
    assert m[0].weight.grad is None and m[2].weight.grad is not None
    m.zero_grad()
    assert m[2].weight.grad is None


def test_torch_call_signatures():
    x = fd.tensor(np.array([[-1.0, 2.0, 0.5], [3.0, -2.0, 1.0]]))
    # nn.Softmax() without dim takes PyTorch's implicit dim (1 for 2-D input), not -1 by accident
    np.testing.assert_allclose(nn.Softmax()(x.reshape(3, 2, 1)).numpy().sum(0), np.ones((2, 1)))
    assert F.relu(input=x, inplace=False).numpy().min() == 0
    y = x.clone()
    assert F.relu(y, inplace=True) is y and y.numpy().min() == 0
    assert nn.SiLU(inplace=False)(x).shape == x.shape and nn.Sigmoid()(x).shape == x.shape
    w = fd.empty(4, 3)
    nn.init.kaiming_uniform_(tensor=w, a=0, mode="fan_in", nonlinearity="relu", generator=None)
    assert np.abs(w.numpy()).max() <= np.sqrt(6 / 3)


def test_embedding_max_norm_and_scale_grad_by_freq():
    w = fd.tensor(np.array([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]]), requires_grad=True)
    out = F.embedding(fd.tensor([0, 0, 1]), w, max_norm=1.0, scale_grad_by_freq=True)
    np.testing.assert_allclose(w.detach().numpy()[0], [0.6, 0.8], rtol=1e-6)  # read rows renormed in place
    np.testing.assert_array_equal(w.detach().numpy()[2], [6.0, 8.0])  # unread rows untouched
    out.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [[1, 1], [1, 1], [0, 0]])  # row 0 read twice: 2 * 1/2
    bn = nn.BatchNorm1d(3, bias=False)
    assert bn.bias is None and list(bn.state_dict()) == ["weight", "running_mean", "running_var", "num_batches_tracked"]


def test_module_lookup_and_shared_buffers():
    bn = nn.BatchNorm1d(2)
    net = nn.Sequential(bn, nn.Linear(2, 2), bn)
    assert net.get_parameter("1.weight") is net[1].weight and net.get_buffer("0.running_mean") is bn.running_mean
    assert len(list(net.named_buffers())) == 3 and len(list(net.named_buffers(remove_duplicate=False))) == 6
    assert len(list(net.modules(remove_duplicate=False))) == 4
    p = fd.zeros(3, requires_grad=True)
    p.grad = fd.tensor([3.0, -4.0, 0.0])
    assert nn.utils.clip_grad_norm_([p], 1.0, "inf").item() == 4.0


def test_container_edits_renumber_keys_like_torch():
    s = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    s.insert(1, nn.Tanh())
    del s[0]
    assert list(s.state_dict()) == ["2.weight", "2.bias"] and isinstance(s.pop(0), nn.Tanh)
    assert len(s + nn.Sequential(nn.ReLU())) == 3
    ml = nn.ModuleList([nn.Linear(1, 1), nn.Linear(1, 2), nn.Linear(1, 3)])
    del ml[0]
    assert list(ml.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"] and ml[-1].out_features == 3
    d = nn.ModuleDict([("b", nn.ReLU()), ("a", nn.Tanh())])
    assert list(d.keys()) == ["b", "a"] and isinstance(d.pop("b"), nn.ReLU) and len(d) == 1


def test_more_activations_numpy():
    x = np.array([-4.0, -1.5, 0.25, 2.0, 7.0])
    t = fd.tensor(x, requires_grad=True)
    np.testing.assert_allclose(F.relu6(t).detach().numpy(), np.clip(x, 0, 6))
    np.testing.assert_allclose(F.hardswish(t).detach().numpy(), x * np.clip(x + 3, 0, 6) / 6)
    np.testing.assert_allclose(F.mish(t).detach().numpy(), x * np.tanh(np.log1p(np.exp(x))))
    np.testing.assert_allclose(nn.Softsign()(t).detach().numpy(), x / (1 + np.abs(x)))
    np.testing.assert_allclose(nn.GLU()(fd.tensor(x[:4])).numpy(), x[:2] / (1 + np.exp(-x[2:4])))
    F.hardsigmoid(t).sum().backward()  # PyTorch scales by float32(1/6) in backward
    np.testing.assert_array_equal(t.grad.numpy(), np.where(np.abs(x) < 3, np.float64(np.float32(1 / 6)), 0.0))


def test_norm_layers_and_reprs_like_torch():
    assert repr(nn.BatchNorm1d(3, bias=False)) == \
        "BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True, bias=False, track_running_stats=True)"
    assert repr(nn.LayerNorm(3)) == "LayerNorm((3,), eps=1e-05, elementwise_affine=True, bias=True)"
    assert repr(nn.Embedding(3, 2, max_norm=1.0)) == "Embedding(3, 2, max_norm=1.0)"
    assert repr(nn.ELU()) == "ELU(alpha=1.0)"
    x = np.arange(24.0).reshape(2, 4, 3) ** 1.5
    g = nn.GroupNorm(2, 4, affine=False)(fd.tensor(x)).numpy()
    xs = x.reshape(2, 2, 6)
    ref = ((xs - xs.mean(2, keepdims=True)) / np.sqrt(xs.var(2, keepdims=True) + 1e-5)).reshape(2, 4, 3)
    np.testing.assert_allclose(g, ref, rtol=1e-10)
    r = F.rms_norm(fd.tensor(x), (3,)).numpy()
    np.testing.assert_allclose(r, x / np.sqrt((x * x).mean(-1, keepdims=True) + np.finfo(np.float64).eps), rtol=1e-12)


def test_parameter_containers_and_unflatten_keys():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.pl = nn.ParameterList([fd.zeros(2), nn.Parameter(fd.ones(3))])
            self.pd = nn.ParameterDict({"b": nn.Parameter(fd.zeros(1)), "a": fd.zeros(2)})
    net = Net()
    assert list(net.state_dict()) == ["pl.0", "pl.1", "pd.a", "pd.b"]  # plain dict: sorted, as torch
    assert net.pl[0].requires_grad and len(list(net.parameters())) == 4
    assert tuple(nn.Unflatten(1, (2, -1))(fd.zeros(3, 8)).shape) == (3, 2, 4)


def test_hardtanh_family_gradient_excludes_end_points():
    # PyTorch: hardtanh/relu6/hardsigmoid pass gradient only strictly inside the range
    x = fd.tensor([-3.0, -1.0, 0.0, 1.0, 3.0, 6.0], requires_grad=True)
    F.hardtanh(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 1, 0, 0, 0])
    x.grad = None
    F.relu6(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 0, 1, 1, 0])
    x.grad = None
    F.hardswish(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0, 1 / 6, 0.5, 5 / 6, 1, 1])


def test_tiny_exponentials_flush_to_zero(isa, rng):
    """Softmax over a causal mask's -inf (and -1e9) entries, and tanh / sigmoid / GELU far out: the
    float32 kernels flush exponentials below FLT_MIN to 0 rather than computing denormals (a
    microcode assist per element on Intel cores: 3-4x slower softmax, 10x slower tanh), so the
    results match float64 with exact zeros and exact +-1 where float32 rounds there."""
    x = rng.standard_normal((6, 33)).astype(np.float32) * 3
    x[np.triu_indices(6, 1, 33)] = -np.inf
    x[5, 20:] = -1e9
    x[4, :10] = -95.0
    for log in (False, True):
        got = (F.log_softmax if log else F.softmax)(fd.tensor(x), dim=1).numpy()
        z = x.astype(np.float64) - x.max(1, keepdims=True)
        lse = np.log(np.exp(z).sum(1, keepdims=True))
        want = z - lse if log else np.exp(z - lse)
        if log:
            fin = np.isfinite(want)
            np.testing.assert_allclose(got[fin], want[fin], rtol=1e-5, atol=1e-5)
            assert np.array_equal(np.isneginf(got), np.isneginf(want))
        else:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-30)
            assert (got[~np.isfinite(x)] == 0).all()
    far = np.array([-200, -95, -60, -44.5, -20, -0.5, 0.5, 20, 44.5, 60, 95, 200, np.nan], np.float32)
    t = fd.tensor(far)
    with np.errstate(over="ignore"):
        np.testing.assert_allclose(fd.tanh(t).numpy(), np.tanh(far.astype(np.float64)), rtol=1e-6, atol=0)
        np.testing.assert_allclose(fd.sigmoid(t).numpy(), 1 / (1 + np.exp(-far.astype(np.float64))), rtol=1e-6, atol=1e-30)
    assert fd.tanh(t).numpy()[[0, 11]].tolist() == [-1.0, 1.0]
    assert fd.sigmoid(t).numpy()[[0, 11]].tolist() == [0.0, 1.0]
    g = F.gelu(t).numpy()
    assert g[0] == 0 and g[11] == 200 and np.isnan(g[12])
    # fastdl.exp itself keeps its denormal results (exp(-95) ~ 5.5e-42)
    np.testing.assert_allclose(fd.exp(fd.tensor(np.float32([-95.0]))).numpy(), np.exp(np.float64(-95)), rtol=1e-3)


# ---- module constructors, inplace and repr as torch's
_INPLACE_ACTS = ["ReLU", "ReLU6", "LeakyReLU", "ELU", "CELU", "SELU", "SiLU", "Mish", "Hardtanh", "Hardsigmoid",
                 "Hardswish", "RReLU"]


@pytest.mark.parametrize("name", _INPLACE_ACTS)
def test_activation_inplace_and_repr_torch(name, rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((3, 5)) * 3
    for inplace in (False, True):
        m, tm = getattr(nn, name)(inplace=inplace), getattr(torch.nn, name)(inplace=inplace)
        assert repr(m) == repr(tm)
        xf = fd.tensor(x)
        y = m.eval()(xf)
        np.testing.assert_allclose(y.numpy(), tm.eval()(torch.tensor(x)).numpy(), rtol=1e-12, atol=1e-12)
        assert (y is xf) == inplace and np.array_equal(xf.numpy(), y.numpy() if inplace else x)


def test_inplace_on_tensors_that_require_grad():
    # A leaf that requires grad refuses an in-place activation (PyTorch's error); under no_grad it
    # is written; inside a graph the result comes back as a new tensor with the right gradient.
    torch = pytest.importorskip("torch")
    x = fd.tensor([-1.0, 2.0, -3.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        F.relu(x, inplace=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        torch.nn.functional.relu(torch.tensor([1.0], requires_grad=True), inplace=True)
    h = x * 2
    y = nn.LeakyReLU(0.1, inplace=True)(h)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.2, 2.0, 0.2])
    with fd.no_grad():
        assert F.relu(x, inplace=True) is x
    assert x.tolist() == [0.0, 2.0, 0.0]


@pytest.mark.parametrize("name", ["ReLU6", "Hardtanh", "Hardsigmoid", "Hardswish", "Mish", "SELU", "CELU",
                                  "Threshold", "Softmin", "GLU", "Hardshrink", "Softshrink"])
def test_activation_signature_attrs_torch(name):
    import inspect
    torch = pytest.importorskip("torch")
    sf, st = inspect.signature(getattr(nn, name)), inspect.signature(getattr(torch.nn, name))
    assert [(p.name, p.default) for p in sf.parameters.values()] == \
        [(p.name, p.default) for p in st.parameters.values()]
    args = (0.5, 2.0) if name == "Threshold" else ()
    m, tm = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(m) == repr(tm)
    for k, v in vars(tm).items():
        if not k.startswith("_") and k != "training":
            assert getattr(m, k) == v, k
    with pytest.raises(TypeError):
        getattr(nn, name)(*args, not_an_argument=1)


def test_threshold_needs_its_arguments_and_hardtanh_old_names():
    with pytest.raises(TypeError):
        nn.Threshold()
    with pytest.warns(DeprecationWarning):
        m = nn.Hardtanh(min_value=-2.0, max_value=3.0)
    assert (m.min_val, m.max_val) == (-2.0, 3.0)
    assert isinstance(nn.ReLU6(), nn.Hardtanh) and (nn.ReLU6().min_val, nn.ReLU6().max_val) == (0.0, 6.0)


@pytest.mark.parametrize("name,shape", [("Dropout", (4, 6)), ("Dropout1d", (4, 6, 5)), ("Dropout2d", (4, 6, 3, 2)),
                                        ("Dropout3d", (2, 6, 3, 2, 2)), ("AlphaDropout", (4, 6)),
                                        ("FeatureAlphaDropout", (4, 6, 3))])
def test_dropout_inplace_and_repr_torch(name, shape):
    torch = pytest.importorskip("torch")
    assert repr(getattr(nn, name)(0.3, True)) == repr(getattr(torch.nn, name)(0.3, True))
    assert getattr(nn, name)(0.3, True).inplace
    x = fd.ones(*shape, dtype=fd.float64)
    y = getattr(nn, name)(0.3, inplace=True)(x)
    assert y is x and not np.any(x.numpy() == 1.0)  # every element dropped or rescaled, in x itself
    x = fd.ones(*shape, dtype=fd.float64)
    y = getattr(nn, name)(0.3)(x)
    assert y is not x and np.all(x.numpy() == 1.0)
    assert getattr(nn, name)(0.3, inplace=True).eval()(x) is x


def test_sequential_mul_and_modulelist_repr_torch():
    torch = pytest.importorskip("torch")
    a, b = nn.ReLU(), nn.Tanh()
    s = nn.Sequential(a, b) * 2
    assert len(s) == 4 and s[2] is a and s[3] is b and len(2 * s) == 8
    s *= 2
    assert len(s) == 8
    with pytest.raises(ValueError):
        nn.Sequential(a) * 0
    for lib in (nn, torch.nn):
        ml = lib.ModuleList([lib.Linear(2, 2), lib.Linear(2, 2), lib.ReLU(), lib.Sequential(lib.Tanh()),
                             lib.Sequential(lib.Tanh())])
        assert repr(ml) == ("ModuleList(\n  (0-1): 2 x Linear(in_features=2, out_features=2, bias=True)\n"
                            "  (2): ReLU()\n  (3-4): 2 x Sequential(\n    (0): Tanh()\n  )\n)")
    assert repr(nn.ModuleList()) == repr(torch.nn.ModuleList())


def test_stateless_functional_call_is_func_functional_call():
    from fastdl.nn.utils import stateless
    import fastdl.nn.utils.stateless as s2
    m = fd.nn.Linear(3, 2)
    w = fd.zeros(2, 3)
    y = stateless.functional_call(m, {"weight": w}, (fd.ones(1, 3),))
    np.testing.assert_allclose(y.detach().numpy(), m.bias.detach().numpy()[None])
    assert s2 is stateless


def test_set_submodule_and_to_empty():
    m = fd.nn.Sequential(fd.nn.Linear(3, 4), fd.nn.Sequential(fd.nn.ReLU(), fd.nn.Linear(4, 2)))
    m.set_submodule("1.0", fd.nn.Tanh())
    assert isinstance(m[1][0], fd.nn.Tanh)
    with pytest.raises(AttributeError, match="no submodule"):
        m.set_submodule("1.5", fd.nn.ReLU(), strict=True)
    w = m[0].weight
    m.to_empty(device="cpu")
    assert m[0].weight is w and tuple(w.shape) == (4, 3)  # the same parameter, fresh memory
    assert m(fd.ones(1, 3)).shape == (1, 2)


def test_load_state_dict_assign_takes_the_tensors():
    m = fd.nn.Linear(3, 2)
    w, b = fd.randn(2, 3), fd.randn(2)
    m.load_state_dict({"weight": w, "bias": b}, assign=True)
    assert isinstance(m.weight, fd.nn.Parameter) and m.weight.requires_grad
    w[0, 0] = 7.0  # the module holds the given memory, not a copy
    assert float(m.weight[0, 0]) == 7.0
    m2 = fd.nn.Linear(3, 2)
    m2.load_state_dict({"weight": w, "bias": b})
    w[0, 0] = 8.0
    assert float(m2.weight[0, 0]) == 7.0  # the default copies
    bn = fd.nn.BatchNorm1d(2)
    rm = fd.tensor(np.array([0.5, -0.5], dtype=np.float32))
    bn.load_state_dict({**bn.state_dict(), "running_mean": rm}, assign=True)
    assert bn.running_mean is rm


def test_state_dict_hooks():
    m = fd.nn.Sequential(fd.nn.Linear(3, 2))
    seen = []
    m[0].register_state_dict_pre_hook(lambda mod, prefix, keep_vars: seen.append(prefix))

    def add_version(mod, sd, prefix, meta):
        sd[prefix + "version"] = fd.tensor(2)
    m[0].register_state_dict_post_hook(add_version)
    sd = m.state_dict()
    assert seen == ["0."] and "0.version" in sd

    # a load pre-hook renames an old key; a post-hook forgives the extra one
    old = {"0.W": sd["0.weight"] * 2, "0.bias": sd["0.bias"], "0.version": sd["0.version"]}

    def rename(mod, state, prefix, meta, strict, missing, unexpected, errors):
        if prefix + "W" in state:
            state[prefix + "weight"] = state.pop(prefix + "W")

    def forgive(mod, keys):
        if "0.version" in keys.unexpected_keys:
            keys.unexpected_keys.remove("0.version")
    m2 = fd.nn.Sequential(fd.nn.Linear(3, 2))
    m2[0].register_load_state_dict_pre_hook(rename)
    m2.register_load_state_dict_post_hook(forgive)
    r = m2.load_state_dict(old)
    assert r.missing_keys == [] and r.unexpected_keys == []
    np.testing.assert_allclose(m2[0].weight.detach().numpy(), 2 * sd["0.weight"].numpy())
    assert "0.W" in old  # the caller's dict is untouched
    m3 = fd.nn.Sequential(fd.nn.Linear(3, 2))
    m3[0].register_load_state_dict_pre_hook(rename)
    with pytest.raises(RuntimeError, match='Unexpected key.*"0.version"'):
        m3.load_state_dict(old)


def test_half_precision_results_keep_their_dtype():
    """Ops composed with Python-number branches return the input's half dtype (a where() of two
    numbers is float32 and promoted them), and half-precision norms and soft-margin losses do not
    overflow where the float32 result is finite (as PyTorch's)."""
    import fastdl.nn.functional as F
    for dt in (fd.float16, fd.bfloat16):
        x = fd.tensor([-2.0, -0.3, 0.0, 0.4, 3.0, float("nan")], dtype=dt)
        for f in (F.hardshrink, F.softshrink, fd.asinh):
            assert f(x).dtype == dt, f.__name__
        big = fd.tensor([[30.0, -40.0, 50.0]], dtype=dt)
        assert np.isfinite(fd.dist(big, -big, 4).float().item())
        np.testing.assert_allclose(big.norm(p=4).float().item(), (np.array([30.0, 40, 50]) ** 4).sum() ** 0.25,
                                   rtol=1e-2)
        inp = fd.tensor([[-20.0, 15.0]], dtype=dt, requires_grad=True)
        F.soft_margin_loss(inp, fd.tensor([[1.0, -1.0]], dtype=dt)).backward()
        assert np.isfinite(inp.grad.float().numpy()).all()
    nb = fd.nextafter(fd.tensor([1.0, 0.0], dtype=fd.bfloat16), fd.tensor([2.0, -1.0], dtype=fd.bfloat16))
    np.testing.assert_array_equal(nb.float().numpy(), np.array([1.0078125, -(2.0 ** -133)], dtype=np.float32))


@pytest.mark.parametrize("name,kw", [("leaky_relu", dict(negative_slope=0.2)), ("elu", dict(alpha=0.7)),
                                     ("selu", {}), ("celu", dict(alpha=1.3)), ("hardswish", {}),
                                     ("hardsigmoid", {})])
def test_fused_activations_match_torch(name, kw, rng, torch):
    """The activations with one fused CPU pass each way, against PyTorch: values and gradients on
    float64 and float32, the edges (the pieces' ends, 0, NaN, infinities), a transposed input, and
    second-order gradients (create_graph) by the differentiable form."""
    edges = [-np.inf, -3.0, -3.0000001, -1e-30, 0.0, 1e-30, 2.9999999, 3.0, np.inf, np.nan]
    x = np.concatenate([rng.standard_normal(300) * 4, edges]).reshape(31, 10)
    g = rng.standard_normal(x.shape)
    # celu's float64 gradient: PyTorch's takes input_scale as 1 / float32(alpha) (derivatives.yaml),
    # 1e-7 off the exact one fastdl gives
    for dt, tdt, tol in ((fd.float64, torch.float64, 1e-6 if name == "celu" else 1e-12), (fd.float32, torch.float32, 2e-6)):
        fx = fd.tensor(x, dtype=dt).T.requires_grad_()  # transposed: the kernels' strided rows
        tx = torch.tensor(x, dtype=tdt).T.requires_grad_()
        fy, ty = getattr(F, name)(fx, **kw), getattr(torch.nn.functional, name)(tx, **kw)
        np.testing.assert_allclose(fy.detach().numpy(), ty.detach().numpy(), rtol=tol, atol=tol, equal_nan=True)
        fy.backward(fd.tensor(g.T, dtype=dt))
        ty.backward(torch.tensor(g.T, dtype=tdt))
        np.testing.assert_allclose(fx.grad.numpy(), tx.grad.numpy(), rtol=tol, atol=tol, equal_nan=True)
    # second order, away from the kinks
    x2 = rng.standard_normal((4, 5)) * 2
    fx = fd.tensor(x2, requires_grad=True)
    tx = torch.tensor(x2, requires_grad=True)
    (fgx,) = fd.autograd.grad(getattr(F, name)(fx, **kw).sum(), fx, create_graph=True)
    (tgx,) = torch.autograd.grad(getattr(torch.nn.functional, name)(tx, **kw).sum(), tx, create_graph=True)
    np.testing.assert_allclose(fgx.detach().numpy(), tgx.detach().numpy(), rtol=1e-6 if name == "celu" else 1e-12,
                               atol=1e-12)
    w = rng.standard_normal(x2.shape)
    if name == "hardsigmoid":  # PyTorch has no derivative of hardsigmoid_backward; the derivative is constant
        assert not fgx.requires_grad
        return
    (tgg,) = torch.autograd.grad((tgx * torch.tensor(w)).sum(), tx, allow_unused=True)
    if not fgx.requires_grad:  # a piecewise-linear derivative: constant in x
        assert tgg is None or np.allclose(tgg.numpy(), 0)
    else:
        (fgg,) = fd.autograd.grad((fgx * fd.tensor(w)).sum(), fx, allow_unused=True)
        want = np.zeros_like(x2) if tgg is None else tgg.numpy()
        np.testing.assert_allclose(fgg.numpy() if fgg is not None else 0 * x2, want,
                                   rtol=1e-6 if name == "celu" else 1e-10, atol=1e-12)
    # bfloat16 through float32, the same as PyTorch's
    fb = getattr(F, name)(fd.tensor(x, dtype=fd.bfloat16), **kw).float().numpy()
    tb = getattr(torch.nn.functional, name)(torch.tensor(x, dtype=torch.bfloat16), **kw).float().numpy()
    np.testing.assert_allclose(fb, tb, rtol=1e-2, atol=1e-2, equal_nan=True)
