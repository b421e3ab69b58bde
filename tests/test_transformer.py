"""nn.MultiheadAttention, TransformerEncoderLayer / DecoderLayer / Encoder / Decoder / Transformer
against torch.nn in float64 with copied weights (eval mode, so dropout is off): outputs,
averaged and per-head weights, masks (boolean and additive, key_padding_mask, causal),
batch_first both ways, unbatched inputs, kdim/vdim and add_bias_kv; gradients of a loss for
the input and every parameter. Rotary embeddings against the rotate-half formula."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.nn as nn

torch = pytest.importorskip("torch")


def _to_torch(fmod, tmod):
    sd = {k: torch.tensor(v.detach().numpy()) for k, v in fmod.state_dict().items()}
    tmod.double().load_state_dict(sd, strict=True)
    return tmod.eval()


def _perturb(module, rng, scale=0.2):
    """Zero-initialised biases get values, so their gradients are exercised."""
    with fd.no_grad():
        for p in module.parameters():
            p.copy_(p + fd.tensor(rng.standard_normal(p.shape) * scale))


def _compare_grads(fmod, tmod, pairs, rtol=1e-9, atol=1e-11):
    tparams = dict(tmod.named_parameters())
    for name, p in fmod.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tparams[name].grad.numpy(), rtol=rtol, atol=atol, err_msg=name)
    for a, b in pairs:
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=rtol, atol=atol)


def _inputs(rng, *shapes):
    arrs = [rng.standard_normal(s) for s in shapes]
    return [fd.tensor(a, requires_grad=True) for a in arrs], [torch.tensor(a, requires_grad=True) for a in arrs]


def test_mha_parameter_names_and_init_match_torch():
    m = nn.MultiheadAttention(12, 3)
    t = torch.nn.MultiheadAttention(12, 3)
    assert set(m.state_dict()) == set(t.state_dict())
    assert float(m.in_proj_bias.abs().sum().item()) == 0 and float(m.out_proj.bias.abs().sum().item()) == 0
    m2 = nn.MultiheadAttention(12, 3, kdim=5, vdim=7, add_bias_kv=True, bias=False)
    t2 = torch.nn.MultiheadAttention(12, 3, kdim=5, vdim=7, add_bias_kv=True, bias=False)
    assert {k: tuple(v.shape) for k, v in m2.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in t2.state_dict().items()}


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("need_weights,average", [(False, True), (True, True), (True, False)])
def test_mha_self_attention_matches_torch(rng, batch_first, need_weights, average):
    E, H, N, L = 12, 3, 3, 7
    fd.manual_seed(0)
    m = nn.MultiheadAttention(E, H, batch_first=batch_first, dtype=fd.float64)
    _perturb(m, rng)
    t = _to_torch(m, torch.nn.MultiheadAttention(E, H, batch_first=batch_first))
    shape = (N, L, E) if batch_first else (L, N, E)
    (fx,), (tx,) = _inputs(rng, shape)
    fo, fw = m(fx, fx, fx, need_weights=need_weights, average_attn_weights=average)
    to, tw = t(tx, tx, tx, need_weights=need_weights, average_attn_weights=average)
    np.testing.assert_allclose(fo.detach().numpy(), to.detach().numpy(), rtol=1e-10, atol=1e-12)
    if need_weights:
        assert tuple(fw.shape) == tuple(tw.shape)
        np.testing.assert_allclose(fw.detach().numpy(), tw.detach().numpy(), rtol=1e-10, atol=1e-12)
    else:
        assert fw is None and tw is None
    g = rng.standard_normal(tuple(to.shape))
    fo.backward(fd.tensor(g))
    to.backward(torch.tensor(g))
    _compare_grads(m, t, [(fx, tx)])


@pytest.mark.parametrize("mask_kind", ["bool", "float", "causal", "heads3d"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_mha_cross_attention_masks_match_torch(rng, mask_kind, batch_first):
    E, H, N, L, S = 8, 2, 2, 5, 9
    fd.manual_seed(0)
    m = nn.MultiheadAttention(E, H, batch_first=batch_first, dtype=fd.float64)
    _perturb(m, rng)
    t = _to_torch(m, torch.nn.MultiheadAttention(E, H, batch_first=batch_first))
    qs, ks = ((N, L, E), (N, S, E)) if batch_first else ((L, N, E), (S, N, E))
    (fq, fk, fv), (tq, tk, tv) = _inputs(rng, qs, ks, ks)
    pad = np.zeros((N, S), dtype=bool)
    pad[0, -3:] = True
    pad[1, 1] = True
    if mask_kind == "bool":
        am = rng.random((L, S)) < 0.3
        am[:, 0] = False  # every query keeps a key
    elif mask_kind == "float":
        am = rng.standard_normal((L, S))
    elif mask_kind == "causal":
        am = np.triu(np.ones((L, S), dtype=bool), 1)
    else:
        am = rng.standard_normal((N * H, L, S))
    fam, tam = fd.tensor(am), torch.tensor(am)
    if am.dtype != bool:  # the same kind for both masks (PyTorch deprecates mixing)
        pad = np.where(pad, -np.inf, 0.0)
    for need in (False, True):
        for g_ in (fq, fk, fv, tq, tk, tv):
            g_.grad = None
        m.zero_grad()
        t.zero_grad()
        fo, _ = m(fq, fk, fv, key_padding_mask=fd.tensor(pad), attn_mask=fam, need_weights=need)
        to, _ = t(tq, tk, tv, key_padding_mask=torch.tensor(pad), attn_mask=tam, need_weights=need)
        np.testing.assert_allclose(fo.detach().numpy(), to.detach().numpy(), rtol=1e-10, atol=1e-12)
        g = rng.standard_normal(tuple(to.shape))
        fo.backward(fd.tensor(g))
        to.backward(torch.tensor(g))
        _compare_grads(m, t, [(fq, tq), (fk, tk), (fv, tv)])


def test_mha_is_causal_without_mask_equals_causal_mask(rng):
    E, H, N, L = 8, 4, 2, 6
    m = nn.MultiheadAttention(E, H, batch_first=True, dtype=fd.float64).eval()
    x = fd.tensor(rng.standard_normal((N, L, E)))
    mask = nn.Transformer.generate_square_subsequent_mask(L, dtype=fd.float64)
    with fd.no_grad():
        a = m(x, x, x, need_weights=False, is_causal=True)[0]
        b = m(x, x, x, need_weights=False, attn_mask=mask)[0]
        c, w = m(x, x, x, need_weights=True, is_causal=True)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(a.numpy(), c.numpy(), rtol=1e-12, atol=1e-13)
    assert np.all(np.triu(w.numpy(), 1) == 0)


def test_mha_kdim_vdim_bias_kv_zero_attn_unbatched_match_torch(rng):
    E, H, L, S = 6, 2, 4, 5
    fd.manual_seed(0)
    kw = dict(kdim=3, vdim=7, add_bias_kv=True, add_zero_attn=True)
    m = nn.MultiheadAttention(E, H, dtype=fd.float64, **kw)
    _perturb(m, rng)
    t = _to_torch(m, torch.nn.MultiheadAttention(E, H, **kw))
    # batched, then unbatched (L, E)
    (fq, fk, fv), (tq, tk, tv) = _inputs(rng, (L, 2, E), (S, 2, 3), (S, 2, 7))
    pad = np.zeros((2, S), dtype=bool)
    pad[1, :2] = True
    fo, fw = m(fq, fk, fv, key_padding_mask=fd.tensor(pad))
    to, tw = t(tq, tk, tv, key_padding_mask=torch.tensor(pad))
    np.testing.assert_allclose(fo.detach().numpy(), to.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fw.detach().numpy(), tw.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(tuple(to.shape))
    fo.backward(fd.tensor(g))
    to.backward(torch.tensor(g))
    _compare_grads(m, t, [(fq, tq), (fk, tk), (fv, tv)])
    (uq, uk, uv), (vq, vk, vv) = _inputs(rng, (L, E), (S, 3), (S, 7))
    fo, fw = m(uq, uk, uv, need_weights=True)
    to, tw = t(vq, vk, vv, need_weights=True)
    assert tuple(fo.shape) == (L, E) and tuple(fw.shape) == tuple(tw.shape)
    np.testing.assert_allclose(fo.detach().numpy(), to.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fw.detach().numpy(), tw.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_mha_bad_input_raises():
    m = nn.MultiheadAttention(8, 2)
    x = fd.randn(5, 3, 8)
    with pytest.raises(ValueError, match="divisible"):
        nn.MultiheadAttention(10, 3)
    with pytest.raises(ValueError, match="embed_dim=8"):
        m(fd.randn(5, 3, 7), x, x)
    with pytest.raises(ValueError, match="key_padding_mask"):
        m(x, x, x, key_padding_mask=fd.zeros(3, 4, dtype=fd.bool))
    with pytest.raises(ValueError, match="attn_mask"):
        m(x, x, x, attn_mask=fd.zeros(5, 4))
    with pytest.raises(ValueError, match="batch"):
        m(x, fd.randn(5, 2, 8), fd.randn(5, 2, 8))
    with pytest.raises(ValueError, match="2-D"):
        m(fd.randn(8), x, x)
    with pytest.raises(TypeError, match="attn_mask"):
        m(x, x, x, attn_mask=fd.zeros(5, 5, dtype=fd.int64))
    with pytest.raises(ValueError, match="activation"):
        nn.TransformerEncoderLayer(8, 2, activation="swish")


@pytest.mark.parametrize("norm_first,activation,batch_first", [(False, "relu", False), (True, "gelu", True),
                                                               (False, "gelu", True)])
def test_encoder_stack_matches_torch(rng, norm_first, activation, batch_first):
    d, H, N, L = 12, 3, 2, 7
    fd.manual_seed(0)
    kw = dict(dim_feedforward=20, dropout=0.1, activation=activation, batch_first=batch_first, norm_first=norm_first)
    flayer = nn.TransformerEncoderLayer(d, H, dtype=fd.float64, **kw)
    fenc = nn.TransformerEncoder(flayer, 2, norm=nn.LayerNorm(d, dtype=fd.float64)).eval()
    _perturb(fenc, rng)
    tenc = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(d, H, **kw), 2, norm=torch.nn.LayerNorm(d),
                                       enable_nested_tensor=False)
    tenc = _to_torch(fenc, tenc)
    (fx,), (tx,) = _inputs(rng, (N, L, d) if batch_first else (L, N, d))
    pad = np.zeros((N, L), dtype=bool)
    pad[1, -2:] = True
    mask = np.triu(np.ones((L, L), dtype=bool), 1)
    fo = fenc(fx, mask=fd.tensor(mask), src_key_padding_mask=fd.tensor(pad))
    to = tenc(tx, mask=torch.tensor(mask), src_key_padding_mask=torch.tensor(pad))
    np.testing.assert_allclose(fo.detach().numpy(), to.detach().numpy(), rtol=1e-9, atol=1e-11)
    loss_f, loss_t = (fo ** 2).sum(), (to ** 2).sum()
    loss_f.backward()
    loss_t.backward()
    _compare_grads(fenc, tenc, [(fx, tx)], rtol=1e-8, atol=1e-10)


@pytest.mark.filterwarnings("ignore:enable_nested_tensor")
@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_and_transformer_match_torch(rng, norm_first):
    d, H, N, L, S = 8, 2, 2, 5, 6
    fd.manual_seed(0)
    kw = dict(dim_feedforward=16, dropout=0.0, batch_first=True, norm_first=norm_first)
    fm = nn.Transformer(d, H, num_encoder_layers=1, num_decoder_layers=2, dtype=fd.float64, **kw)
    _perturb(fm, rng)
    tm = _to_torch(fm, torch.nn.Transformer(d, H, num_encoder_layers=1, num_decoder_layers=2, **kw))
    (fs, ft), (ts, tt) = _inputs(rng, (N, S, d), (N, L, d))
    tmask = nn.Transformer.generate_square_subsequent_mask(L, dtype=fd.float64)
    mpad = np.zeros((N, S), dtype=bool)
    mpad[0, -1] = True
    fo = fm(fs, ft, tgt_mask=tmask, memory_key_padding_mask=fd.tensor(mpad))
    to = tm(ts, tt, tgt_mask=torch.tensor(tmask.numpy()), memory_key_padding_mask=torch.tensor(mpad))
    np.testing.assert_allclose(fo.detach().numpy(), to.detach().numpy(), rtol=1e-9, atol=1e-11)
    g = rng.standard_normal(tuple(to.shape))
    fo.backward(fd.tensor(g))
    to.backward(torch.tensor(g))
    _compare_grads(fm, tm, [(fs, ts), (ft, tt)], rtol=1e-8, atol=1e-10)


def test_decoder_layer_unbatched_seq_first_matches_torch(rng):
    d, H, L, S = 6, 3, 4, 3
    fd.manual_seed(0)
    f = nn.TransformerDecoderLayer(d, H, dim_feedforward=10, activation=nn.functional.gelu, dtype=fd.float64).eval()
    _perturb(f, rng)
    t = _to_torch(f, torch.nn.TransformerDecoderLayer(d, H, dim_feedforward=10,
                                                      activation=torch.nn.functional.gelu))
    (ft, fmem), (tt, tmem) = _inputs(rng, (L, d), (S, d))
    fo = f(ft, fmem, tgt_is_causal=True, tgt_mask=nn.Transformer.generate_square_subsequent_mask(L, dtype=fd.float64))
    to = t(tt, tmem, tgt_is_causal=True, tgt_mask=torch.nn.Transformer.generate_square_subsequent_mask(
        L, dtype=torch.float64))
    np.testing.assert_allclose(fo.detach().numpy(), to.detach().numpy(), rtol=1e-9, atol=1e-11)


def test_rotary_embedding_rotate_half_formula(rng):
    B, H, L, D = 2, 3, 7, 8
    rope = nn.RotaryEmbedding(D, base=100.0)
    q, k = rng.standard_normal((B, H, L, D)), rng.standard_normal((B, H, L, D))
    fq, fk = fd.tensor(q, requires_grad=True), fd.tensor(k)
    rq, rk = rope(fq, fk, offset=3)
    inv = 100.0 ** (-np.arange(0, D, 2) / D)
    ang = (np.arange(L) + 3)[:, None] * inv[None]
    cos, sin = np.cos(np.concatenate([ang, ang], 1)), np.sin(np.concatenate([ang, ang], 1))

    def ref(x):
        return x * cos + np.concatenate([-x[..., D // 2:], x[..., :D // 2]], -1) * sin
    np.testing.assert_allclose(rq.detach().numpy(), ref(q), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(rk.numpy(), ref(k), rtol=1e-12, atol=1e-13)
    # a rotation: norms kept; scores depend only on relative position
    np.testing.assert_allclose(np.linalg.norm(rq.detach().numpy(), axis=-1), np.linalg.norm(q, axis=-1), rtol=1e-12)
    x = rng.standard_normal(D)
    xs = fd.tensor(np.tile(x, (L, 1)))
    a, b = rope(xs), rope(xs, offset=5)
    np.testing.assert_allclose((a.numpy() @ a.numpy().T), (b.numpy() @ b.numpy().T), rtol=1e-10, atol=1e-12)
    # gradient of a rotation is the inverse rotation
    g = rng.standard_normal((B, H, L, D))
    rq.backward(fd.tensor(g))
    tq = torch.tensor(q, requires_grad=True)
    tc, ts = torch.tensor(cos), torch.tensor(sin)
    (tq * tc + torch.cat([-tq[..., D // 2:], tq[..., :D // 2]], -1) * ts).backward(torch.tensor(g))
    np.testing.assert_allclose(fq.grad.numpy(), tq.grad.numpy(), rtol=1e-12, atol=1e-13)
    with pytest.raises(ValueError, match="even"):
        nn.RotaryEmbedding(5)
    with pytest.raises(ValueError, match="last dim"):
        rope(fd.randn(2, 3, 6))
