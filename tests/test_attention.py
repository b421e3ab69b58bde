"""F.scaled_dot_product_attention (fused flash kernel) against PyTorch in float64 and float32:
outputs and all gradients under a random upstream gradient, with boolean and additive masks
broadcast over batch and heads, causal (top-left when L != S), GQA, odd sizes, non-contiguous
and broadcast inputs, fully masked rows, and dropout whose backward regenerates the mask."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.nn.functional as F

torch = pytest.importorskip("torch")


def _fd(t, grad=False):
    return fd.tensor(t.detach().numpy(), requires_grad=grad)


def _compare(q, k, v, dtype=torch.float64, tol=None, mask=None, make=None, **kw):
    tol = tol or (1e-10 if dtype == torch.float64 else 2e-5)
    q, k, v = (t.detach().clone().to(dtype).requires_grad_() for t in (q, k, v))
    tmask = mask.to(dtype) if mask is not None and mask.dtype != torch.bool else mask
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=tmask, **kw)
    g = torch.randn_like(ref)
    ref.backward(g)
    fq, fk, fv = (_fd(t, True) for t in (q, k, v))
    if make is not None:  # a view built from the leaves (non-contiguous inputs)
        fq_in, fk_in, fv_in = make(fq), make(fk), make(fv)
    else:
        fq_in, fk_in, fv_in = fq, fk, fv
    out = F.scaled_dot_product_attention(fq_in, fk_in, fv_in, attn_mask=None if tmask is None else _fd(tmask), **kw)
    assert tuple(out.shape) == tuple(ref.shape)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), atol=tol, rtol=tol)
    out.backward(_fd(g))
    for a, b, name in ((fq, q, "dq"), (fk, k, "dk"), (fv, v, "dv")):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), atol=tol * 10, rtol=tol * 10, err_msg=name)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", [(2, 3, 5, 7, 8, 3), (1, 2, 70, 130, 16, 20), (2, 2, 67, 67, 64, 64),
                                   (1, 1, 1, 1, 1, 1), (1, 2, 200, 129, 33, 65), (1, 1, 150, 300, 16, 8),
                                   (1, 2, 390, 333, 17, 9)])  # several causal diagonal tiles
@pytest.mark.parametrize("causal", [False, True])
def test_matches_torch(isa, dtype, shape, causal):
    B, H, L, S, E, Ev = shape
    torch.manual_seed(L * 7 + S)
    q, k, v = torch.randn(B, H, L, E), torch.randn(B, H, S, E), torch.randn(B, H, S, Ev)
    _compare(q, k, v, dtype, is_causal=causal)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_masks(isa, dtype):
    torch.manual_seed(1)
    B, H, L, S, E = 2, 3, 67, 90, 24
    q, k, v = torch.randn(B, H, L, E), torch.randn(B, H, S, E), torch.randn(B, H, S, E)
    keep = torch.rand(L, S) > 0.3
    keep[5] = False  # a fully masked row: zeros out, zero gradients (PyTorch's CPU kernel)
    _compare(q, k, v, dtype, mask=keep)
    _compare(q, k, v, dtype, mask=torch.rand(B, 1, L, S) > 0.5)       # broadcast over heads
    _compare(q, k, v, dtype, mask=torch.randn(H, L, S))                 # additive, over batch
    _compare(q, k, v, dtype, mask=torch.randn(L, 1))                    # additive, over keys
    _compare(q, k, v, dtype, mask=(torch.rand(B, H, 1, S) > 0.2))       # key padding form


def test_gqa_and_scale(isa):
    torch.manual_seed(2)
    q, k, v = torch.randn(2, 8, 45, 16), torch.randn(2, 2, 77, 16), torch.randn(2, 2, 77, 9)
    _compare(q, k, v, enable_gqa=True)
    _compare(q, k, v, enable_gqa=True, is_causal=True, scale=0.3)


@pytest.mark.parametrize("block", ["16,16", "7,5", "40,56", "112,80", "160,256"])
def test_any_blocking(monkeypatch, block):
    # The flash kernel is written against the micro-kernel's tile (mr x nr) and the block sizes,
    # not constants: every blocking gives the same answer on the best ISA of this machine (the
    # other ISAs' tiles run this same code), through partial panels, causal diagonals crossing
    # blocks at every offset, masks, GQA and dropout.
    monkeypatch.setenv("FASTDL_ATTENTION_BLOCK", block)
    torch.manual_seed(6)
    q, k, v = torch.randn(1, 4, 131, 17), torch.randn(1, 2, 149, 17), torch.randn(1, 2, 149, 9)
    _compare(q, k, v, enable_gqa=True)
    _compare(q, k, v, enable_gqa=True, is_causal=True)
    _compare(q, k, v, torch.float32, enable_gqa=True, is_causal=True)
    _compare(q[:, :2], k, v, mask=torch.rand(131, 149) > 0.4)
    _compare(q[:, :2], k, v, mask=torch.randn(2, 1, 149))

    def drop(q, k, v):  # the dropout path: equal to the default blocking under one seed
        fd.manual_seed(3)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.3, is_causal=True)
        out.backward(fd.tensor(np.linspace(-1, 1, out.numel()).reshape(out.shape)))
        return [t.numpy() for t in (out.detach(), q.grad, k.grad, v.grad)]
    leaves = lambda: [_fd(t.double(), True) for t in (q[:, :2], k, v)]
    got = drop(*leaves())
    monkeypatch.delenv("FASTDL_ATTENTION_BLOCK")
    for a, b in zip(got, drop(*leaves())):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("block", [None, "16,16"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_scores_growing_along_keys(monkeypatch, isa, block, dtype):
    # The forward keeps each query's reference maximum while later key blocks stay within 2^8 of
    # it (P above 1 summed as is), and moves it, computing the tile again, when a block passes
    # that: slow and steep ramps of the scores along the keys take both paths, block after block.
    if block:
        monkeypatch.setenv("FASTDL_ATTENTION_BLOCK", block)
    torch.manual_seed(9)
    L, S = 70, 600
    q, k, v = torch.randn(1, 2, L, 17), torch.randn(1, 2, S, 17), torch.randn(1, 2, S, 9)
    j = torch.arange(S, dtype=torch.float64)
    # additive masks (natural log units) kept small enough for float32's scores: saw teeth of 128
    # keys (16-key blocks rise 4.8 and 16: both paths), and steps of 5 and 6 every 256 keys
    # (default blocks: 7.2 < 8 and 8.7 > 8 in base 2)
    for ramp in (0.3 * (j % 128 - 64), 1.0 * (j % 128 - 64), 5.0 * (j // 256), 6.0 * (j // 256)):
        _compare(q, k, v, dtype, mask=ramp.expand(L, S))
        _compare(q, k, v, dtype, mask=ramp.flip(0).expand(L, S))  # falling: the first block holds the maxima
    keep = torch.ones(L, S, dtype=torch.bool)  # a row that sees nothing, one that sees keys only
    keep[5] = False                             # from the 300th, one only the last: their panel's
    keep[7, :300] = False                       # other columns take the lazy pass meanwhile
    keep[9, :-1] = False
    _compare(q, k, v, dtype, mask=keep)
    grow = k * (1 + j.float() / 300).unsqueeze(-1)  # |scores| grow along the keys
    _compare(q, grow, v, dtype)
    _compare(q, grow, v, dtype, is_causal=True)


def test_layouts(isa):
    torch.manual_seed(3)
    # (B, L, H, E) tensors viewed as (B, H, L, E): strided heads and rows
    q, k, v = torch.randn(2, 3, 33, 16), torch.randn(2, 3, 40, 16), torch.randn(2, 3, 40, 16)
    _compare(q, k, v, make=lambda t: t.transpose(1, 2).contiguous().transpose(1, 2))
    # batch dims broadcast: one key/value set for every query batch; 3-D and 2-D inputs
    _compare(torch.randn(4, 2, 9, 8), torch.randn(2, 11, 8), torch.randn(2, 11, 5))
    _compare(torch.randn(3, 9, 8), torch.randn(3, 11, 8), torch.randn(3, 11, 5), is_causal=True)
    _compare(torch.randn(9, 8), torch.randn(11, 8), torch.randn(11, 5))


def test_scaled_dot_product_attention_is_flash_memory():
    # Backward keeps out and the row log-sum-exp, not the (L, S) probabilities: the saved state
    # of a long sequence stays O(L).
    L = 2048
    q, k, v = (fd.randn(1, 1, L, 16, requires_grad=True) for _ in range(3))
    fd._C.reset_peak_memory()
    base = fd._C.allocator_stats()["peak_bytes"]
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    out.sum().backward()
    peak = fd._C.allocator_stats()["peak_bytes"] - base
    assert peak < 16 * L * 16 * 4 + (4 << 20), peak  # far below the 16 MiB of an L x L float matrix
    assert np.isfinite(q.grad.numpy()).all()


def test_dropout_mask_is_regenerated(isa):
    # With v = I, out is the dropped-out probability matrix itself, so dv = P_drop^T g can be
    # checked against the forward's own output: backward must regenerate the same mask.
    fd.manual_seed(0)
    L, S, p = 37, 50, 0.3
    q, k = fd.randn(2, L, 8, dtype=fd.float64), fd.randn(2, S, 8, dtype=fd.float64)
    v = fd.tensor(np.broadcast_to(np.eye(S), (2, S, S)).copy(), requires_grad=True)
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
    P = out.detach().numpy()
    dropped = (P == 0).mean()
    assert 0.2 < dropped < 0.4, dropped
    probs = F.scaled_dot_product_attention(q, k, v.detach()).numpy()
    kept = P != 0
    np.testing.assert_allclose(P[kept], probs[kept] / (1 - p), rtol=1e-12)
    g = np.random.default_rng(0).standard_normal(P.shape)
    out.backward(fd.tensor(g))
    np.testing.assert_allclose(v.grad.numpy(), np.swapaxes(P, 1, 2) @ g, rtol=1e-10, atol=1e-12)
    # a second call draws a new mask
    out2 = F.scaled_dot_product_attention(q, k, v, dropout_p=p).detach().numpy()
    assert ((out2 == 0) != (P == 0)).any()


def test_dropout_gradcheck(isa):
    # Fixing the generator state before each call makes the mask a constant, so finite
    # differences apply to the dropout path's gradients too.
    q, k, v = (fd.randn(1, 2, 6, 4, dtype=fd.float64, requires_grad=True) for _ in range(3))

    def f(q, k, v):
        fd.manual_seed(5)
        return F.scaled_dot_product_attention(q, k, v, dropout_p=0.25, is_causal=True)
    assert fd.autograd.gradcheck(f, (q, k, v))


def test_mask_requiring_grad_uses_the_composed_path():
    torch.manual_seed(4)
    q, k, v, m = torch.randn(2, 5, 4), torch.randn(2, 6, 4), torch.randn(2, 6, 3), torch.randn(5, 6)
    m.requires_grad_()
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m)
    ref.sum().backward()
    fm = _fd(m, True)
    out = F.scaled_dot_product_attention(_fd(q), _fd(k), _fd(v), attn_mask=fm)
    out.sum().backward()
    np.testing.assert_allclose(fm.grad.numpy(), m.grad.numpy(), atol=1e-5)


def test_errors():
    q, k, v = fd.randn(2, 3, 5, 4), fd.randn(2, 3, 6, 4), fd.randn(2, 3, 6, 2)
    with pytest.raises(ValueError, match="share the last dim"):
        F.scaled_dot_product_attention(q, fd.randn(2, 3, 6, 5), v)
    with pytest.raises(ValueError, match="key and value"):
        F.scaled_dot_product_attention(q, k, fd.randn(2, 3, 7, 2))
    with pytest.raises(ValueError, match="does not broadcast"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=fd.randn(5, 5))
    with pytest.raises(ValueError, match="enable_gqa"):
        F.scaled_dot_product_attention(fd.randn(2, 4, 5, 4), k, v)
    with pytest.raises(ValueError, match="multiple"):
        F.scaled_dot_product_attention(fd.randn(2, 4, 5, 4), k, v, enable_gqa=True)
    with pytest.raises(ValueError, match="either attn_mask or is_causal"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=fd.ones(5, 6), is_causal=True)
    with pytest.raises(ValueError, match="dropout_p"):
        F.scaled_dot_product_attention(q, k, v, dropout_p=1.5)
    with pytest.raises(TypeError, match="dtype"):
        F.scaled_dot_product_attention(q, k.double(), v)
    with pytest.raises(TypeError, match="attn_mask"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=fd.ones(5, 6, dtype=fd.float64))
    with pytest.raises(ValueError, match="at least 2 dims"):
        F.scaled_dot_product_attention(fd.randn(4), k, v)


def test_bench_attention_runs(capsys):
    from fastdl.bench import attention
    attention.main(["--shape", "1,2,64,16", "--rounds", "1"])
    out = capsys.readouterr().out
    assert out.count("fwd+bwd") == 2 and "extra mem" in out
