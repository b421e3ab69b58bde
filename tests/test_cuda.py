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


# Fused attention: CUDA against the CPU kernel on the same inputs, output and every gradient.
# (name, q shape, k shape, v shape, mask: None | "bool" | "add", is_causal, enable_gqa)
_ATTN_CASES = [
    ("plain L != S", (2, 3, 37, 24), (2, 3, 45, 24), (2, 3, 45, 40), None, False, False),
    ("causal L > S", (1, 2, 70, 32), (1, 2, 33, 32), (1, 2, 33, 32), None, True, False),
    ("causal L < S", (2, 20, 16), (2, 50, 16), (2, 50, 16), None, True, False),
    ("GQA causal", (2, 6, 40, 64), (2, 2, 40, 64), (2, 2, 40, 64), None, True, True),
    ("bool mask, masked row", (2, 2, 33, 20), (2, 2, 47, 20), (2, 2, 47, 28), "bool", False, False),
    ("additive mask per head", (1, 4, 50, 48), (1, 4, 31, 48), (1, 4, 31, 48), "add", False, False),
    ("E 128", (1, 2, 65, 128), (1, 2, 70, 128), (1, 2, 70, 96), None, True, False),
]


def _sdpa_on(device, arrays, dtype, mask, causal, gqa, dropout_p=0.0, strided=False):
    q, k, v, g = (fd.tensor(a, dtype=dtype).to(device) for a in arrays[:4])
    if strided:  # (b, L, h, E) storage seen as (b, h, L, E)
        q = q.transpose(1, 2).contiguous().transpose(1, 2)
    for t in (q, k, v):
        t.requires_grad_()
    m = None
    if mask is not None:
        m = fd.tensor(arrays[4]).to(device)
        m = m if mask == "bool" else m.to(dtype)
    if dropout_p:
        fd.manual_seed(7)
    out = fd.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m, dropout_p=dropout_p, is_causal=causal,
                                                        enable_gqa=gqa)
    out.backward(g)
    return [t.detach().cpu().numpy() for t in (out, q.grad, k.grad, v.grad)]


def _attn_arrays(case, rng):
    _, qs, ks, vs, mask, _, _ = case
    arrays = [rng.standard_normal(qs), rng.standard_normal(ks), rng.standard_normal(vs),
              rng.standard_normal(qs[:-1] + vs[-1:])]
    L, S = qs[-2], ks[-2]
    if mask == "bool":
        m = rng.random((L, S)) < 0.7
        m[3] = False  # a fully masked row: zero output and gradients
        arrays.append(m)
    elif mask == "add":
        arrays.append(rng.uniform(-2, 2, (1, qs[1], L, S)))
    return arrays


@pytest.mark.parametrize("dtype", [fd.float64, fd.float32])
@pytest.mark.parametrize("case", _ATTN_CASES, ids=[c[0] for c in _ATTN_CASES])
def test_attention_matches_cpu(case, dtype, rng):
    arrays = _attn_arrays(case, rng)
    args = (arrays, dtype, case[4], case[5], case[6])
    want, got = _sdpa_on("cpu", *args), _sdpa_on("cuda", *args)
    tol = 1e-9 if dtype == fd.float64 else 2e-4
    for name, w, g in zip(("out", "dq", "dk", "dv"), want, got):
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol * max(np.abs(w).max(), 1e-30), err_msg=name)


def test_attention_strided_query_matches_cpu(rng):
    case = ("strided", (2, 4, 41, 64), (2, 4, 39, 64), (2, 4, 39, 64), None, False, False)
    arrays = _attn_arrays(case, rng)
    want = _sdpa_on("cpu", arrays, fd.float64, None, False, False, strided=True)
    got = _sdpa_on("cuda", arrays, fd.float64, None, False, False, strided=True)
    for name, w, g in zip(("out", "dq", "dk", "dv"), want, got):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-9 * np.abs(w).max(), err_msg=name)


def test_attention_dropout_mask_matches_cpu(rng):
    """The counter-based dropout mask is a function of the seed and the element only, so the
    same seed gives the same mask (and gradients) on both devices."""
    case = ("dropout", (2, 2, 45, 32), (2, 1, 60, 32), (2, 1, 60, 32), None, False, True)
    arrays = _attn_arrays(case, rng)
    want = _sdpa_on("cpu", arrays, fd.float64, None, False, True, dropout_p=0.3)
    got = _sdpa_on("cuda", arrays, fd.float64, None, False, True, dropout_p=0.3)
    for name, w, g in zip(("out", "dq", "dk", "dv"), want, got):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-9 * np.abs(w).max(), err_msg=name)


# conv2d, pooling and normalisation: CUDA against the CPU kernels, output and every gradient.
def _grads_on(device, fn, arrays, dtype, upstream):
    """fn(*tensors) on `device` with leaves created there; returns output and leaf gradients."""
    leaves = [fd.tensor(a, dtype=dtype).to(device).requires_grad_() for a in arrays]
    out = fn(*leaves)
    out.backward(fd.tensor(upstream, dtype=dtype).to(device))
    return [out.detach().cpu().numpy()] + [t.grad.cpu().numpy() for t in leaves]


def _check_cuda_vs_cpu(fn, arrays, out_shape, rng, dtype=fd.float64):
    g = rng.standard_normal(out_shape)
    want, got = _grads_on("cpu", fn, arrays, dtype, g), _grads_on("cuda", fn, arrays, dtype, g)
    tol = 1e-9 if dtype == fd.float64 else 1e-4
    for i, (w, c) in enumerate(zip(want, got)):
        np.testing.assert_allclose(c, w, rtol=tol, atol=tol * max(np.abs(w).max(), 1e-30), err_msg=f"output {i}")


_CONV_CASES = [  # (x shape, w shape, bias, stride, padding, dilation, groups)
    ((2, 3, 9, 11), (4, 3, 3, 3), True, 1, 1, 1, 1),
    ((2, 4, 13, 10), (6, 2, 3, 2), True, (2, 3), (2, 1), (2, 1), 2),
    ((1, 8, 7, 7), (8, 1, 3, 3), True, 1, 1, 1, 8),
    ((2, 70, 5, 6), (130, 70, 1, 1), True, 1, 0, 1, 1),
    ((1, 2, 6, 6), (3, 2, 2, 2), False, 1, "same", 1, 1),
    ((4, 16, 20, 20), (8, 16, 3, 3), False, 1, 1, 1, 1),
]


@pytest.mark.parametrize("dtype", [fd.float64, fd.float32])
@pytest.mark.parametrize("case", _CONV_CASES)
def test_conv2d_matches_cpu(case, dtype, rng):
    xs, ws, bias, stride, padding, dilation, groups = case
    arrays = [rng.standard_normal(xs), rng.standard_normal(ws)] + ([rng.standard_normal(ws[0])] if bias else [])
    fn = lambda x, w, *b: fd.nn.functional.conv2d(x, w, b[0] if b else None, stride, padding, dilation, groups)
    out_shape = fn(*(fd.tensor(a) for a in arrays)).shape
    _check_cuda_vs_cpu(fn, arrays, out_shape, rng, dtype)


@pytest.mark.parametrize("dtype", [fd.bfloat16, fd.float16])
@pytest.mark.parametrize("case", _CONV_CASES)
def test_conv2d_half_matches_cpu_float32(case, dtype, rng):
    """bf16 / fp16 conv2d on CUDA (tensor cores, fp32 accumulation, results in the operand dtype)
    against the CPU float32 result on the same (half-rounded) operands, output and every gradient."""
    xs, ws, bias, stride, padding, dilation, groups = case
    # Round operands and upstream gradient to the half dtype once, so both sides see the same values.
    rnd = lambda a: fd.tensor(a, dtype=dtype).to(fd.float32).numpy().astype(np.float64)
    arrays = [rnd(rng.standard_normal(xs)), rnd(rng.standard_normal(ws))]
    arrays += [rnd(rng.standard_normal(ws[0]))] if bias else []
    fn = lambda x, w, *b: fd.nn.functional.conv2d(x, w, b[0] if b else None, stride, padding, dilation, groups)
    out_shape = fn(*(fd.tensor(a) for a in arrays)).shape
    g = rnd(rng.standard_normal(out_shape))
    want = _grads_on("cpu", fn, arrays, fd.float32, g)
    leaves = [fd.tensor(a, dtype=dtype).to("cuda").requires_grad_() for a in arrays]
    out = fn(*leaves)
    assert out.dtype == dtype and out.is_cuda
    out.backward(fd.tensor(g, dtype=dtype).to("cuda"))
    assert all(t.grad.dtype == dtype for t in leaves)
    got = [out.detach().to(fd.float32).cpu().numpy()] + [t.grad.to(fd.float32).cpu().numpy() for t in leaves]
    # One rounding of an fp32-accumulated result: 2^-9 relative (bf16), 2^-12 (fp16), with margin.
    tol = 1e-2 if dtype == fd.bfloat16 else 2e-3
    for i, (w, c) in enumerate(zip(want, got)):
        np.testing.assert_allclose(c, w, rtol=tol, atol=tol * max(np.abs(w).max(), 1e-30), err_msg=f"output {i}")


_POOL_CASES = [
    ("max_pool2d", dict(kernel_size=3, stride=2, padding=1)),
    ("max_pool2d", dict(kernel_size=(2, 3), stride=(3, 2), padding=(0, 1), dilation=(2, 1), ceil_mode=True)),
    ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1)),
    ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ("avg_pool2d", dict(kernel_size=2, stride=2, ceil_mode=True, divisor_override=5)),
    ("adaptive_avg_pool2d", dict(output_size=(3, 4))),
    ("adaptive_max_pool2d", dict(output_size=(4, 5))),
]


@pytest.mark.parametrize("case", _POOL_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(_POOL_CASES)])
def test_pool2d_matches_cpu(case, rng):
    name, kw = case
    x = rng.standard_normal((2, 3, 7, 9))
    x[0, 0, :2, :2] = 0.5  # ties: the first maximum wins on both devices
    fn = lambda t: getattr(fd.nn.functional, name)(t, **kw)
    _check_cuda_vs_cpu(fn, [x], fn(fd.tensor(x)).shape, rng)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_cpu(training, rng):
    x, w, b = rng.standard_normal((4, 5, 6, 7)) * 2 + 1, rng.standard_normal(5), rng.standard_normal(5)
    rm, rv = rng.standard_normal(5), rng.uniform(0.5, 2, 5)
    stats = {}
    for dev in ("cpu", "cuda"):
        stats[dev] = (fd.tensor(rm).to(dev), fd.tensor(rv).to(dev))

    def fn(x, w, b):
        dev = x.device.type
        return fd.nn.functional.batch_norm(x, *stats[dev], w, b, training=training)
    _check_cuda_vs_cpu(fn, [x, w, b], x.shape, rng)
    for c, g in zip(stats["cpu"], stats["cuda"]):  # running stats moved alike
        np.testing.assert_allclose(g.cpu().numpy(), c.numpy(), rtol=1e-9, atol=1e-12)


def test_group_norm_matches_cpu(rng):
    x, w, b = rng.standard_normal((3, 6, 5, 4)), rng.standard_normal(6), rng.standard_normal(6)
    fn = lambda x, w, b: fd.nn.functional.group_norm(x, 3, w, b)
    _check_cuda_vs_cpu(fn, [x, w, b], x.shape, rng)


@pytest.mark.parametrize("dtype", [fd.float32, fd.float64])
def test_layer_norm_matches_cpu(dtype, rng):
    """layer_norm's CUDA path (group norm's forward per row, its own backward and chunked
    parameter sums) against the CPU kernels: output and all three gradients."""
    x, w, b = rng.standard_normal((33, 7, 96)) + 0.5, rng.standard_normal(96), rng.standard_normal(96)
    g = rng.standard_normal((33, 7, 96))
    res = []
    for dev in ("cpu", "cuda"):
        ts = [fd.tensor(a, dtype=dtype, device=dev, requires_grad=True) for a in (x, w, b)]
        y = fd.nn.functional.layer_norm(ts[0], (96,), ts[1], ts[2])
        (y * fd.tensor(g, dtype=dtype, device=dev)).sum().backward()
        res.append([y.detach().cpu().numpy()] + [t.grad.cpu().numpy() for t in ts])
    tol = 1e-4 if dtype == fd.float32 else 1e-10
    for got, want in zip(res[1], res[0]):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
