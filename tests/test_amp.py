"""fastdl.amp (torch.amp): autocast regions cast the products' float32 inputs to the region's
dtype and the losses' low-precision inputs to float32, with float32 gradients for float32
parameters; the state nests, is per thread and is restored on exit. GradScaler's scale, skip and
growth follow PyTorch's step for step. Results are checked against the same computation written
out by hand in bfloat16 and against PyTorch's autocast."""
import threading
import warnings

import numpy as np
import pytest

import fastdl as fd
import fastdl.nn as nn
import fastdl.nn.functional as F

BF = fd.bfloat16


def _rand(*shape, seed=0):
    return fd.from_numpy(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def test_products_run_in_the_region_dtype_and_float64_stays():
    x, w, b = _rand(5, 7), _rand(3, 7, seed=1), _rand(3, seed=2)
    a3, b3 = _rand(2, 5, 7, seed=3), _rand(2, 7, 4, seed=4)
    with fd.autocast("cpu"):
        outs = {
            "linear": F.linear(x, w, b), "matmul": fd.matmul(x, w.T), "@": x @ w.T, "mm": fd.mm(x, w.T),
            "Tensor.mm": x.mm(w.T), "bmm": fd.bmm(a3, b3), "addmm": fd.addmm(_rand(5, 3), x, w.T),
            "einsum": fd.einsum("ij,kj->ik", x, w),
            "conv1d": F.conv1d(_rand(2, 3, 9), _rand(4, 3, 3, seed=5)),
            "conv2d": F.conv2d(_rand(1, 3, 6, 6), _rand(4, 3, 3, 3, seed=6), _rand(4, seed=7)),
            "conv_transpose2d": F.conv_transpose2d(_rand(1, 3, 4, 4), _rand(3, 2, 3, 3, seed=8)),
            "sdpa": F.scaled_dot_product_attention(_rand(1, 2, 6, 4), _rand(1, 2, 6, 4, seed=9), _rand(1, 2, 6, 4, seed=10)),
        }
        for name, y in outs.items():
            assert y.dtype == BF, name
        assert fd.matmul(x.double(), w.double().T).dtype == fd.float64
        assert (x + x).dtype == fd.float32  # other ops run in the dtype they are given
        assert F.softmax(outs["linear"], -1).dtype == BF
    assert F.linear(x, w, b).dtype == fd.float32  # the region is closed


def test_autocast_linear_equals_the_bf16_computation_and_torch():
    x, w, b = _rand(6, 33), _rand(10, 33, seed=1), _rand(10, seed=2)
    with fd.autocast("cpu", dtype=BF):
        y = F.linear(x, w, b)
    want = F.linear(x.to(BF), w.to(BF), b.to(BF))
    np.testing.assert_array_equal(y.float().numpy(), want.float().numpy())
    torch = pytest.importorskip("torch")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ty = torch.nn.functional.linear(*(torch.from_numpy(t.numpy()) for t in (x, w, b)))
    assert ty.dtype == torch.bfloat16
    np.testing.assert_allclose(y.float().numpy(), ty.float().numpy(), rtol=2e-2, atol=2e-2)


def test_losses_compute_in_float32_inside_the_region():
    logits, target = _rand(8, 5), fd.from_numpy(np.random.default_rng(3).integers(0, 5, 8))
    with fd.autocast("cpu"):
        low = logits.to(BF)
        for loss in (F.cross_entropy(low, target), F.mse_loss(low, _rand(8, 5, seed=4)),
                     F.binary_cross_entropy_with_logits(low, _rand(8, 5, seed=5).sigmoid()),
                     nn.CrossEntropyLoss()(low, target), nn.L1Loss()(low, _rand(8, 5, seed=6))):
            assert loss.dtype == fd.float32
        got = F.cross_entropy(low, target)
    np.testing.assert_allclose(got.item(), F.cross_entropy(low.float(), target).item(), rtol=1e-6)
    assert F.cross_entropy(low, target).dtype == BF  # outside a region the loss keeps its dtype


def test_gradients_of_float32_parameters_are_float32_and_match_torch():
    torch = pytest.importorskip("torch")
    x, w1, w2 = _rand(16, 12), _rand(20, 12, seed=1) * 0.3, _rand(4, 20, seed=2) * 0.3
    target = fd.from_numpy(np.random.default_rng(5).integers(0, 4, 16))
    p1, p2 = w1.clone().requires_grad_(True), w2.clone().requires_grad_(True)
    with fd.autocast("cpu"):
        loss = F.cross_entropy(F.linear(F.relu(F.linear(x, p1)), p2), target)
    loss.backward()
    assert p1.grad.dtype == fd.float32 and p2.grad.dtype == fd.float32
    t1, t2 = (torch.from_numpy(w.numpy()).requires_grad_(True) for w in (w1, w2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        tl = torch.nn.functional.cross_entropy(
            torch.nn.functional.linear(torch.relu(torch.nn.functional.linear(torch.from_numpy(x.numpy()), t1)), t2),
            torch.from_numpy(target.numpy()))
    tl.backward()
    np.testing.assert_allclose(loss.item(), tl.item(), rtol=2e-2)
    np.testing.assert_allclose(p1.grad.numpy(), t1.grad.numpy(), rtol=5e-2, atol=2e-3)
    np.testing.assert_allclose(p2.grad.numpy(), t2.grad.numpy(), rtol=5e-2, atol=2e-3)


def test_regions_nest_restore_and_decorate():
    x = _rand(3, 4)
    assert not fd.is_autocast_enabled("cpu")
    with fd.autocast("cpu"):
        assert fd.is_autocast_enabled("cpu") and not fd.is_autocast_enabled()  # no-argument form: CUDA
        assert fd.get_autocast_dtype("cpu") == BF
        with fd.autocast("cpu", enabled=False):
            assert not fd.is_autocast_enabled("cpu")
            assert (x @ x.T).dtype == fd.float32
        with fd.autocast("cpu", dtype=fd.float16):
            assert fd.get_autocast_dtype("cpu") == fd.float16
            assert (x @ x.T).dtype == fd.float16
        assert (x @ x.T).dtype == BF
    assert not fd.is_autocast_enabled("cpu")
    with pytest.raises(ZeroDivisionError):
        with fd.autocast("cpu"):
            1 / 0
    assert not fd.is_autocast_enabled("cpu")  # restored after an exception

    @fd.autocast("cpu")
    def f(a):
        return a @ a.T
    assert f(x).dtype == BF and (x @ x.T).dtype == fd.float32
    with fd.amp.autocast(device_type="cuda"):  # a CUDA region leaves CPU tensors alone
        assert fd.is_autocast_enabled("cuda") and (x @ x.T).dtype == fd.float32


def test_region_is_per_thread():
    seen = {}

    def other():
        seen["enabled"] = fd.is_autocast_enabled("cpu")
        seen["dtype"] = (_rand(2, 3) @ _rand(3, 2)).dtype
    with fd.autocast("cpu"):
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert seen == {"enabled": False, "dtype": fd.float32}


def test_bad_arguments():
    with pytest.raises(ValueError, match="autocast: device_type must be 'cpu' or 'cuda'; got 'tpu'"):
        fd.autocast("tpu")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        region = fd.autocast("cpu", dtype=fd.float64)
    assert any("disabled" in str(m.message) for m in w)
    with region:
        assert not fd.is_autocast_enabled("cpu")
    assert fd.is_autocast_available("cpu") and not fd.is_autocast_available("tpu")


def test_mixed_precision_training_learns():
    fd.manual_seed(0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, 10)).astype(np.float32)
    y = (X[:, :3].sum(1) > 0).astype(np.int64)
    X, y = fd.from_numpy(X), fd.from_numpy(y)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 2))
    opt = fd.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        opt.zero_grad()
        with fd.autocast("cpu"):
            loss = F.cross_entropy(model(X), y)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert all(p.dtype == fd.float32 and p.grad.dtype == fd.float32 for p in model.parameters())
    with fd.autocast("cpu"):
        acc = (model(X).argmax(1) == y).float().mean().item()
    assert loss.item() < 0.5 * first and acc > 0.9


class _Param:
    def __init__(self, grad):
        self.grad = grad


class _Opt:
    def __init__(self, params):
        self.param_groups = [{"params": params}]
        self.steps = 0

    def step(self):
        self.steps += 1
        return "stepped"


def test_grad_scaler_scales_skips_and_grows():
    s = fd.amp.GradScaler("cpu", init_scale=8.0, growth_interval=2)
    assert s.get_scale() == 8.0
    assert s.scale(fd.tensor(1.5)).item() == 12.0
    a, b = s.scale([fd.tensor(1.0), (fd.tensor(2.0),)])
    assert a.item() == 8.0 and b[0].item() == 16.0
    p = _Param(fd.tensor([8.0, -16.0]))
    opt = _Opt([p, _Param(None)])
    s.unscale_(opt)
    assert p.grad.tolist() == [1.0, -2.0]
    with pytest.raises(RuntimeError, match="already been called"):
        s.unscale_(opt)
    assert s.step(opt) == "stepped" and opt.steps == 1
    s.update()
    p.grad = fd.tensor([float("inf"), 1.0])
    assert s.step(opt) is None and opt.steps == 1  # skipped: an overflow
    s.update()
    assert s.get_scale() == 4.0  # backed off
    for _ in range(2):
        p.grad = fd.tensor([4.0, 4.0])
        s.step(opt)
        s.update()
    assert s.get_scale() == 8.0 and opt.steps == 3  # grown after growth_interval clean steps
    state = s.state_dict()
    t = fd.amp.GradScaler("cpu")
    t.load_state_dict(state)
    assert t.get_scale() == 8.0 and t.get_growth_interval() == 2
    off = fd.amp.GradScaler("cpu", enabled=False)
    x = fd.tensor(3.0)
    assert off.scale(x) is x and off.step(opt) == "stepped" and off.state_dict() == {}
    with pytest.raises(ValueError, match="growth factor must be > 1.0"):
        fd.amp.GradScaler("cpu", growth_factor=1.0)


def test_grad_scaler_follows_torch():
    torch = pytest.importorskip("torch")
    pattern = [False, True, False, False, False, True, True, False, False, False]  # an overflow at these steps
    ours = fd.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=3)
    theirs = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=3)
    w = fd.zeros(2).requires_grad_(True)
    tw = torch.zeros(2, requires_grad=True)
    opt, topt = fd.optim.SGD([w], lr=0.1), torch.optim.SGD([tw], lr=0.1)
    for bad in pattern:
        g = [float("nan") if bad else 1.0, 2.0]
        opt.zero_grad()
        topt.zero_grad()
        ours.scale((w * fd.tensor(g)).sum()).backward()
        theirs.scale((tw * torch.tensor(g)).sum()).backward()
        ours.step(opt)
        theirs.step(topt)
        ours.update()
        theirs.update()
        assert ours.get_scale() == theirs.get_scale()
        np.testing.assert_allclose(w.detach().numpy(), tw.detach().numpy(), rtol=1e-6)


def test_device_namespaces():
    x = _rand(3, 4)
    with fd.cpu.amp.autocast():
        assert (x @ x.T).dtype == BF
    with fd.cpu.amp.autocast(dtype=fd.float16):
        assert (x @ x.T).dtype == fd.float16
    with fd.cuda.amp.autocast():
        assert fd.is_autocast_enabled() and fd.get_autocast_dtype("cuda") == fd.float16
    assert not fd.is_autocast_enabled()
    assert fd.cpu.amp.GradScaler(init_scale=4.0).get_scale() == 4.0
    assert fd.cpu.is_available() and fd.cpu.device_count() == 1
    fd.cpu.synchronize()


def test_state_functions():
    x = _rand(3, 4)
    try:
        fd.set_autocast_enabled("cpu", True)
        fd.set_autocast_dtype("cpu", fd.float16)
        assert fd.is_autocast_cpu_enabled() and fd.get_autocast_cpu_dtype() == fd.float16
        assert (x @ x.T).dtype == fd.float16
        fd.set_autocast_cpu_dtype(BF)
        assert (x @ x.T).dtype == BF
    finally:
        fd.set_autocast_cpu_enabled(False)
        fd.set_autocast_cpu_dtype(BF)
    assert (x @ x.T).dtype == fd.float32
    fd.set_autocast_enabled(True)  # the one-argument form is CUDA's
    assert fd.is_autocast_enabled("cuda")
    fd.set_autocast_enabled(False)
    assert fd.get_autocast_gpu_dtype() == fd.float16
    with pytest.raises(ValueError, match="set_autocast_dtype"):
        fd.set_autocast_dtype("cpu", fd.float32)
    assert fd.autocast_increment_nesting() == 1 and fd.autocast_decrement_nesting() == 0
    assert fd.is_autocast_cache_enabled()
    fd.clear_autocast_cache()


def test_grad_scaler_follows_torch_on_misuse_and_dtypes():
    s = fd.amp.GradScaler("cpu", init_scale=2.0 ** 16)
    low = s.scale(fd.tensor(2.0, dtype=fd.float16))
    assert low.dtype == fd.float32 and low.item() == 2.0 ** 17  # no float16 overflow
    assert s.scale(fd.ones(3, dtype=fd.float64)).dtype == fd.float64
    assert [t.item() for t in s.scale(iter([fd.tensor(1.0)]))] == [2.0 ** 16]  # any iterable
    with pytest.raises(ValueError, match="outputs must be a Tensor"):
        s.scale(3.0)
    p = _Param(fd.tensor([1.0]))
    opt = _Opt([p])
    s.step(opt)
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
        s.step(opt)
    with pytest.raises(RuntimeError, match="unscale_\\(\\) is being called after step\\(\\)"):
        s.unscale_(opt)
    s.update()
    with pytest.raises(AssertionError, match="No inf checks were recorded"):
        s.update()
    with pytest.raises(RuntimeError, match="Closure"):
        s.step(opt, closure=lambda: 0)
    p.grad = fd.tensor([1.0], dtype=fd.float16)
    with pytest.raises(ValueError, match="FP16 gradients"):
        s.unscale_(_Opt([p]))
    fresh = fd.amp.GradScaler("cpu")
    with pytest.raises(AssertionError, match="scaler.scale"):
        fresh.step(opt)
    with pytest.raises(AssertionError):  # PyTorch asserts on bad factors
        fd.amp.GradScaler("cpu", backoff_factor=1.5)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        off = fd.amp.GradScaler()  # CUDA by default; none here
    if not fd.cuda.is_available():
        assert not off.is_enabled() and off.get_scale() == 1.0 and any("Disabling" in str(m.message) for m in w)


def test_inner_region_inherits_the_dtype():
    x = _rand(3, 4)
    with fd.autocast("cpu", dtype=fd.float16):
        with fd.autocast("cpu") as inner:
            assert inner.fast_dtype == fd.float16 and (x @ x.T).dtype == fd.float16
    assert not fd.is_autocast_enabled("mps")


def test_python_composed_ops_follow_the_lists():
    torch = pytest.importorskip("torch")
    a, b, c = _rand(2, 3, 4), _rand(2, 4, 5, seed=1), _rand(2, 3, 5, seed=2)
    x = _rand(3, 3, seed=3).to(BF)
    with fd.autocast("cpu"):
        ours = [fd.baddbmm(c, a, b).dtype, fd.addbmm(_rand(3, 5), a, b).dtype,
                F.prelu(_rand(2, 3), fd.full((3,), 0.2)).dtype, fd.prod(x).dtype, fd.trace(x).dtype,
                F.avg_pool3d(_rand(1, 1, 4, 4, 4).to(BF), 2).dtype]
    ta, tb, tc = (torch.from_numpy(t.numpy()) for t in (a, b, c))
    tx = torch.from_numpy(x.float().numpy()).bfloat16()
    with torch.autocast("cpu"):
        theirs = [torch.baddbmm(tc, ta, tb).dtype, torch.addbmm(torch.randn(3, 5), ta, tb).dtype,
                  torch.nn.functional.prelu(torch.randn(2, 3), torch.full((3,), 0.2)).dtype, torch.prod(tx).dtype,
                  torch.trace(tx).dtype, torch.nn.functional.avg_pool3d(torch.randn(1, 1, 4, 4, 4).bfloat16(), 2).dtype]
    assert [str(d).split(".")[-1] for d in ours] == [str(d).split(".")[-1] for d in theirs]
    assert fd.prod(x).dtype == BF  # outside a region nothing changes


# Which products PyTorch's CPU autocast lowers (its lower-precision list: mm, bmm, matmul, linear,
# linalg_vecdot, ...) and which dot products it leaves in float32 (dot, vdot, mv, a full inner or
# tensordot contraction, addmv, addr).
_DOT_CASES = {
    "dot": (lambda L: L.dot(L.ones(4), L.ones(4)), "float32"),
    "vdot": (lambda L: L.vdot(L.ones(4), L.ones(4)), "float32"),
    "mv": (lambda L: L.mv(L.ones(3, 4), L.ones(4)), "float32"),
    "addmv": (lambda L: L.addmv(L.ones(3), L.ones(3, 4), L.ones(4)), "float32"),
    "addr": (lambda L: L.addr(L.ones(3, 3), L.ones(3), L.ones(3)), "float32"),
    "inner_1d": (lambda L: L.inner(L.ones(4), L.ones(4)), "float32"),
    "inner_2d": (lambda L: L.inner(L.ones(3, 4), L.ones(3, 4)), "bfloat16"),
    "tensordot_full": (lambda L: L.tensordot(L.ones(3, 4), L.ones(3, 4), 2), "float32"),
    "tensordot": (lambda L: L.tensordot(L.ones(3, 4), L.ones(4, 5), 1), "bfloat16"),
    "matmul_1d": (lambda L: L.matmul(L.ones(4), L.ones(4)), "bfloat16"),
    "matvec": (lambda L: L.ones(3, 4) @ L.ones(4), "bfloat16"),
    "vecdot": (lambda L: L.linalg.vecdot(L.ones(3, 4), L.ones(3, 4)), "bfloat16"),
    "multi_dot": (lambda L: L.linalg.multi_dot([L.ones(3, 4), L.ones(4, 3)]), "bfloat16"),
}


@pytest.mark.parametrize("name", sorted(_DOT_CASES))
def test_autocast_lowers_the_products_pytorch_lowers(name):
    fn, want = _DOT_CASES[name]
    with fd.autocast("cpu"):
        got = fn(fd)
    assert str(got.dtype) == "fastdl." + want
    np.testing.assert_allclose(got.float().numpy(), fn(fd).numpy())
    torch = pytest.importorskip("torch")
    with torch.autocast("cpu"):
        assert str(fn(torch).dtype) == "torch." + want
