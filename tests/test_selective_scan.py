"""F.selective_scan against an independent float64 reference (mamba_ssm's selective_scan_ref,
written here with PyTorch or numpy), values and every gradient, on every ISA, grouped and
ungrouped B/C, with and without D, z, delta_bias and softplus, odd sizes, strided inputs."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.nn.functional as F


def scan_ref(lib, u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """The sequential definition (mamba_ssm's selective_scan_ref), for torch or numpy arrays."""
    if delta_bias is not None:
        delta = delta + delta_bias[:, None]
    if delta_softplus:
        delta = lib.nn.functional.softplus(delta) if lib is not np else np.log1p(np.exp(delta))
    batch, dim, L = u.shape
    N = A.shape[1]
    if B.ndim == 3:
        B, C = B[:, None], C[:, None]
    G = B.shape[1]
    rep = dim // G
    Bx = B.repeat_interleave(rep, 1) if lib is not np else np.repeat(B, rep, 1)   # (batch, dim, N, L)
    Cx = C.repeat_interleave(rep, 1) if lib is not np else np.repeat(C, rep, 1)
    x = (lib.zeros((batch, dim, N), dtype=u.dtype) if lib is not np else np.zeros((batch, dim, N)))
    ys = []
    for t in range(L):
        dA = lib.exp(delta[:, :, t, None] * A[None])
        x = dA * x + delta[:, :, t, None] * Bx[:, :, :, t] * u[:, :, t, None]
        ys.append((x * Cx[:, :, :, t]).sum(-1))
    y = lib.stack(ys, -1) if lib is not np else np.stack(ys, -1)
    out = y if D is None else y + u * D[:, None]
    if z is not None:
        out = out * z * (1 / (1 + lib.exp(-z)))
    return out, x


def make(rng, batch, dim, L, N, G, with_D, with_z, with_bias):
    a = dict(u=rng.standard_normal((batch, dim, L)),
             delta=rng.uniform(-1.0, 1.0, (batch, dim, L)) * 0.7,
             A=-np.exp(rng.standard_normal((dim, N)) * 0.5),
             B=rng.standard_normal((batch, G, N, L) if G else (batch, N, L)),
             C=rng.standard_normal((batch, G, N, L) if G else (batch, N, L)))
    if with_D:
        a["D"] = rng.standard_normal(dim)
    if with_z:
        a["z"] = rng.standard_normal((batch, dim, L))
    if with_bias:
        a["delta_bias"] = rng.standard_normal(dim) * 0.3
    return a


CASES = [  # (batch, dim, L, N, groups (0: ungrouped B/C), D, z, delta_bias, softplus)
    (2, 5, 7, 3, 0, False, False, False, False),
    (1, 19, 70, 4, 0, True, True, True, True),       # dim not a multiple of the lanes, L > one chunk
    (2, 12, 129, 5, 3, True, False, True, True),     # grouped, chunk boundary + 1
    (3, 16, 64, 16, 2, False, True, False, False),   # exactly one chunk, N 16
    (1, 33, 200, 2, 1, True, True, False, True),
]


@pytest.mark.parametrize("case", CASES)
def test_forward_and_gradients_vs_torch_float64(case, isa, torch, rng):
    batch, dim, L, N, G, wD, wz, wb, sp = case
    a = make(rng, batch, dim, L, N, G, wD, wz, wb)
    fa = {k: fd.tensor(v, requires_grad=True) for k, v in a.items()}
    ta = {k: torch.tensor(v, requires_grad=True) for k, v in a.items()}
    out, last = F.selective_scan(**fa, delta_softplus=sp, return_last_state=True)
    tout, tlast = scan_ref(torch, **ta, delta_softplus=sp)
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(last.numpy(), tlast.detach().numpy(), rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(out.shape)
    out.backward(fd.tensor(g))
    tout.backward(torch.tensor(g))
    for k in a:
        np.testing.assert_allclose(fa[k].grad.numpy(), ta[k].grad.numpy(), rtol=1e-9, atol=1e-9, err_msg=k)


@pytest.mark.parametrize("case", CASES[1:3])
def test_float32_within_reference_error(case, isa, torch, rng):
    """float32 error at most a few times a float32 run of the sequential reference."""
    batch, dim, L, N, G, wD, wz, wb, sp = case
    a = make(rng, batch, dim, L, N, G, wD, wz, wb)
    exact, _ = scan_ref(torch, **{k: torch.tensor(v) for k, v in a.items()}, delta_softplus=sp)
    naive, _ = scan_ref(torch, **{k: torch.tensor(v, dtype=torch.float32) for k, v in a.items()}, delta_softplus=sp)
    fa = {k: fd.tensor(v.astype(np.float32), requires_grad=True) for k, v in a.items()}
    out = F.selective_scan(**fa, delta_softplus=sp)
    assert out.dtype == fd.float32
    err = np.abs(out.detach().numpy() - exact.numpy()).max()
    ref_err = np.abs(naive.numpy() - exact.numpy()).max()
    assert err <= 4 * ref_err + 1e-6, (err, ref_err)
    # gradients in float32 against the float64 ones
    ta = {k: torch.tensor(v, requires_grad=True) for k, v in a.items()}
    tout, _ = scan_ref(torch, **ta, delta_softplus=sp)
    g = rng.standard_normal(out.shape)
    out.backward(fd.tensor(g.astype(np.float32)))
    tout.backward(torch.tensor(g))
    for k in a:
        want = ta[k].grad.numpy()
        np.testing.assert_allclose(fa[k].grad.numpy(), want, rtol=2e-3, atol=2e-3 * np.abs(want).max(), err_msg=k)


def test_gradcheck_finite_differences(rng):
    a = make(rng, 1, 3, 9, 2, 0, True, True, True)
    ts = [fd.tensor(a[k], requires_grad=True) for k in ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")]
    assert fd.autograd.gradcheck(lambda *t: F.selective_scan(*t, delta_softplus=True), ts)


def test_strided_inputs_and_numpy_reference(rng):
    a = make(rng, 2, 6, 11, 3, 0, True, False, False)
    u = fd.tensor(np.ascontiguousarray(a["u"].transpose(0, 2, 1))).transpose(1, 2)   # (batch, dim, L) view
    B = fd.tensor(a["B"][:, :, ::-1].copy())[:, :, ::1]
    want, _ = scan_ref(np, a["u"], a["delta"], a["A"], a["B"][:, :, ::-1], a["C"], D=a["D"])
    got = F.selective_scan(u, fd.tensor(a["delta"]), fd.tensor(a["A"]), B, fd.tensor(a["C"]), D=fd.tensor(a["D"]))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-10)


def test_no_grad_and_empty(rng):
    a = make(rng, 2, 4, 5, 3, 0, False, False, False)
    with fd.no_grad():
        out = F.selective_scan(*(fd.tensor(a[k], requires_grad=True) for k in ("u", "delta", "A", "B", "C")))
    assert out.grad_fn is None and tuple(out.shape) == (2, 4, 5)
    e = F.selective_scan(fd.zeros(2, 4, 0), fd.zeros(2, 4, 0), fd.tensor(a["A"]), fd.zeros(2, 3, 0), fd.zeros(2, 3, 0),
                         return_last_state=True)
    assert tuple(e[0].shape) == (2, 4, 0) and np.all(e[1].numpy() == 0)


def test_errors():
    u = fd.randn(2, 4, 5)
    A, B = fd.randn(4, 3), fd.randn(2, 3, 5)
    with pytest.raises(ValueError, match=r"selective_scan: delta must have shape \(2, 4, 5\)"):
        F.selective_scan(u, fd.randn(2, 4, 6), A, B, B)
    with pytest.raises(ValueError, match="selective_scan: A must be"):
        F.selective_scan(u, u, fd.randn(5, 3), B, B)
    with pytest.raises(ValueError, match="multiple of the number of groups"):
        F.selective_scan(u, u, A, fd.randn(2, 3, 3, 5), fd.randn(2, 3, 3, 5))
    with pytest.raises(ValueError, match="selective_scan: D must have shape"):
        F.selective_scan(u, u, A, B, B, D=fd.randn(3))
    with pytest.raises(TypeError, match="selective_scan"):
        F.selective_scan(u, u, fd.ones(4, 3, dtype=fd.int64), B, B)
    with pytest.raises(ValueError, match=r"selective_scan: u must be \(batch, dim, L\)"):
        F.selective_scan(fd.randn(4, 5), u, A, B, B)


def test_memory_stays_below_four_times_u(rng):
    """No (batch, dim, L, N) tensor in forward or backward: the native allocator's peak over a
    fwd+bwd stays below 4x the size of u (the states alone would be N = 16 times u)."""
    a = make(rng, 2, 64, 512, 16, 0, True, True, True)
    fa = {k: fd.tensor(v.astype(np.float32), requires_grad=True) for k, v in a.items()}
    g = fd.tensor(rng.standard_normal(a["u"].shape).astype(np.float32))
    F.selective_scan(**fa, delta_softplus=True).backward(g)   # warm caches
    for t in fa.values():
        t.grad = None
    fd._C.reset_peak_memory()
    base = fd._C.allocator_stats()["live_bytes"]
    F.selective_scan(**fa, delta_softplus=True).backward(g)
    extra = fd._C.allocator_stats()["peak_bytes"] - base
    grads = sum(t.grad.numel() * 4 for t in fa.values())   # the gradients themselves are the result
    assert extra - grads < 4 * a["u"].size * 4, (extra, grads)


# ---- CUDA: the same cases against the CPU kernels (skipped without a GPU) ----
cuda_only = pytest.mark.skipif(not fd.cuda.is_available(), reason="no CUDA device")
CUDA_CASES = CASES + [
    (2, 300, 150, 16, 0, True, True, True, True),    # many blocks per group: dB/dC partials summed
    (3, 6, 65, 7, 6, False, True, False, True),      # one channel per group
    (2, 10, 90, 100, 2, True, True, False, True),    # N > 64
    (1, 4, 40, 256, 0, True, False, True, True),     # the largest N
]


def _scan_on(device, a, dtype, sp, g):
    """Outputs and every gradient (as float64 numpy) of one run on `device`, leaves on the CPU."""
    leaves = {k: fd.tensor(v, dtype=dtype, requires_grad=True) for k, v in a.items()}
    args = {k: t.to(device) for k, t in leaves.items()}
    out, last = F.selective_scan(**args, delta_softplus=sp, return_last_state=True)
    assert out.device.type == device and last.device.type == device
    out.backward(fd.tensor(g, dtype=dtype).to(device))
    r = {"out": out.detach().cpu().numpy(), "last_state": last.cpu().numpy()}
    r.update({"d" + k: t.grad.numpy() for k, t in leaves.items()})
    return {k: v.astype(np.float64) for k, v in r.items()}


@cuda_only
@pytest.mark.parametrize("case", CUDA_CASES)
def test_cuda_matches_cpu_float64(case, rng):
    batch, dim, L, N, G, wD, wz, wb, sp = case
    a = make(rng, batch, dim, L, N, G, wD, wz, wb)
    g = rng.standard_normal((batch, dim, L))
    want, got = _scan_on("cpu", a, fd.float64, sp, g), _scan_on("cuda", a, fd.float64, sp, g)
    for k in want:
        scale = max(1.0, np.abs(want[k]).max())
        np.testing.assert_allclose(got[k], want[k], rtol=1e-9, atol=1e-10 * scale, err_msg=k)


@cuda_only
@pytest.mark.parametrize("case", CUDA_CASES)
def test_cuda_float32_within_cpu_error(case, rng):
    """float32 on CUDA is as close to the float64 result as float32 on the CPU (within 4x)."""
    batch, dim, L, N, G, wD, wz, wb, sp = case
    a = make(rng, batch, dim, L, N, G, wD, wz, wb)
    g = rng.standard_normal((batch, dim, L))
    exact = _scan_on("cpu", a, fd.float64, sp, g)
    cpu, gpu = _scan_on("cpu", a, fd.float32, sp, g), _scan_on("cuda", a, fd.float32, sp, g)
    for k in exact:
        scale = np.abs(exact[k]).max()
        err, ref_err = np.abs(gpu[k] - exact[k]).max(), np.abs(cpu[k] - exact[k]).max()
        assert err <= 4 * ref_err + 1e-5 * scale, (k, err, ref_err)


@cuda_only
def test_cuda_backward_is_deterministic(rng):
    a = make(rng, 2, 300, 150, 16, 0, True, True, True)
    g = rng.standard_normal((2, 300, 150))
    r1, r2 = _scan_on("cuda", a, fd.float32, True, g), _scan_on("cuda", a, fd.float32, True, g)
    for k in r1:
        np.testing.assert_array_equal(r1[k], r2[k], err_msg=k)


@cuda_only
def test_cuda_bfloat16_no_grad_empty_and_errors(rng):
    a = make(rng, 2, 8, 33, 5, 0, True, True, False)
    cpu = F.selective_scan(**{k: fd.tensor(v, dtype=fd.bfloat16) for k, v in a.items()})
    with fd.no_grad():
        gpu = F.selective_scan(**{k: fd.tensor(v, dtype=fd.bfloat16, requires_grad=True).cuda() for k, v in a.items()})
    assert gpu.dtype == fd.bfloat16 and gpu.grad_fn is None
    want = cpu.float().numpy()
    np.testing.assert_allclose(gpu.float().cpu().numpy(), want, rtol=2e-2, atol=2e-2 * np.abs(want).max())
    Acuda = fd.tensor(a["A"]).cuda()
    e = F.selective_scan(fd.zeros(2, 8, 0).cuda(), fd.zeros(2, 8, 0).cuda(), Acuda, fd.zeros(2, 5, 0).cuda(),
                         fd.zeros(2, 5, 0).cuda(), return_last_state=True)
    assert tuple(e[0].shape) == (2, 8, 0) and np.all(e[1].cpu().numpy() == 0)
    u = fd.randn(1, 2, 3).cuda()
    with pytest.raises(ValueError, match="selective_scan: the CUDA kernel takes 1 <= N <= 256"):
        F.selective_scan(u, u, fd.randn(2, 257).cuda(), fd.randn(1, 257, 3).cuda(), fd.randn(1, 257, 3).cuda())
