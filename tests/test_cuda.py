"""CUDA backend: the same checks on every device present (CUDA cases skip cleanly without a
GPU). The CPU results are the reference."""
import numpy as np
import pytest

import fastdl as fd

pytestmark = pytest.mark.skipif(not fd.cuda.is_available(), reason="no CUDA device")


def test_round_trip_and_device():
    x = fd.randn(5, 7)
    y = x.cuda()
    assert y.device.type == "cuda" and y.is_cuda
    np.testing.assert_array_equal(y.cpu().numpy(), x.numpy())
    z = x.to("cuda:0").T.contiguous().cpu()
    np.testing.assert_array_equal(z.numpy(), x.numpy().T)


@pytest.mark.parametrize("name", ["exp", "log", "tanh", "sigmoid", "relu", "gelu", "silu", "sqrt", "abs", "neg"])
def test_unary_matches_cpu(name, rng):
    a = np.abs(rng.standard_normal((33, 65))).astype(np.float32) + 0.1
    got = getattr(fd, name)(fd.tensor(a).cuda()).cpu().numpy()
    want = getattr(fd, name)(fd.tensor(a)).numpy()
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum", "minimum", "pow", "eq", "lt"])
def test_binary_broadcast_strided_matches_cpu(op, rng):
    a = np.abs(rng.standard_normal((9, 1, 17))) + 0.5
    b = rng.standard_normal((5, 17))
    ta, tb = fd.tensor(a, dtype=fd.float32), fd.tensor(b, dtype=fd.float32)
    got = getattr(fd, op)(ta.cuda(), tb.cuda().T.contiguous().T).cpu().numpy()
    want = getattr(fd, op)(ta, tb).numpy()
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("dim", [None, 0, 1, -1])
def test_reductions_match_cpu(dim, rng):
    a = rng.standard_normal((37, 129)).astype(np.float32)
    t, c = fd.tensor(a), fd.tensor(a).cuda()
    np.testing.assert_allclose(c.sum(dim).cpu().numpy(), t.sum(dim).numpy(), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(c.amax(dim).cpu().numpy(), t.amax(dim).numpy())
    if dim is not None:
        np.testing.assert_array_equal(c.argmax(dim).cpu().numpy(), t.argmax(dim).numpy())


@pytest.mark.parametrize("dtype", [fd.float32, fd.float64, fd.bfloat16])
@pytest.mark.parametrize("shape", [((65, 129), (129, 33)), ((3, 64, 64), (64, 48)), ((1, 257), (257, 1))])
def test_matmul_matches_cpu(dtype, shape, rng):
    a, b = rng.standard_normal(shape[0]), rng.standard_normal(shape[1])
    ta, tb = fd.tensor(a, dtype=dtype), fd.tensor(b, dtype=dtype)
    got = (ta.cuda() @ tb.cuda()).cpu().float().numpy().astype(np.float64)
    ref = np.matmul(a, b)
    tol = 2e-2 if dtype == fd.bfloat16 else 1e-4
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * np.abs(ref).max())


def test_autograd_on_cuda(rng):
    x = fd.tensor(rng.standard_normal((4, 5)), requires_grad=True)
    w = fd.tensor(rng.standard_normal((3, 5)), requires_grad=True)
    (fd.nn.functional.linear(x.cuda(), w.cuda()).tanh().sum()).backward()
    xc = fd.tensor(x.detach().numpy(), requires_grad=True)
    wc = fd.tensor(w.detach().numpy(), requires_grad=True)
    fd.nn.functional.linear(xc, wc).tanh().sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xc.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(w.grad.numpy(), wc.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_mlp_trains_on_cuda():
    fd.manual_seed(0)
    model = fd.nn.Sequential(fd.nn.Linear(8, 32), fd.nn.ReLU(), fd.nn.Linear(32, 1)).cuda()
    opt = fd.optim.Adam(model.parameters(), lr=1e-2)
    x = fd.randn(128, 8).cuda()
    y = (x[:, :1] * 2).tanh()
    first = None
    for _ in range(200):
        loss = fd.nn.functional.mse_loss(model(x), y)
        first = first or loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first * 0.1
