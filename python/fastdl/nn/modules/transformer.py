"""Attention layers with PyTorch's names, arguments and state-dict layout: MultiheadAttention,
TransformerEncoderLayer / TransformerDecoderLayer (post- or pre-LN), TransformerEncoder /
TransformerDecoder stacks and nn.Transformer; plus rotary position embeddings (Su et al. 2021,
"RoFormer"), rotate-half convention of GPT-NeoX / LLaMA.

Every attention here without returned weights goes through F.scaled_dot_product_attention, so
the fused kernel serves all of them; MultiheadAttention(need_weights=True) computes the
softmax matrix explicitly, as PyTorch does, because it returns it."""
import copy
import math

import numpy as np

from fastdl import _C, _tensor
from fastdl.nn import functional as F, init
from fastdl.nn.modules.container import ModuleList
from fastdl.nn.modules.dropout import Dropout
from fastdl.nn.modules.linear import Linear
from fastdl.nn.modules.module import Module
from fastdl.nn.modules.normalization import LayerNorm
from fastdl.nn.parameter import Parameter

def _additive(mask, dtype, name):
    """A boolean mask (True = not allowed, PyTorch's nn convention) or an additive float mask ->
    an additive mask of `dtype`."""
    if mask.dtype == _C.dtype.bool:
        return _C.masked_fill(_tensor.zeros(*mask.shape, dtype=dtype, device=mask.device), mask, float("-inf"))
    if not _tensor.is_floating_point(mask):
        raise TypeError(f"MultiheadAttention: {name} must be bool or floating point; got {mask.dtype}")
    return mask if mask.dtype == dtype else mask.to(dtype)


def _pad_last(t):
    """Append one column (along the last dim) that masks nothing (False / 0)."""
    return _C.cat([t, _tensor.zeros(*t.shape[:-1], 1, dtype=t.dtype, device=t.device)], -1)


def causal_mask(L, S=None, dtype=None, device=None):
    """Additive (L, S) mask, -inf above the diagonal (key j > query i), 0 elsewhere."""
    S = L if S is None else S
    return _C.triu(_C.full((L, S), float("-inf"), dtype or _tensor.get_default_dtype(), device or "cpu"), 1)


class MultiheadAttention(Module):
    """PyTorch's nn.MultiheadAttention: in_proj_weight (3E, E) and in_proj_bias (3E) when
    kdim == vdim == embed_dim, else q_proj_weight (E, E), k_proj_weight (E, kdim),
    v_proj_weight (E, vdim); out_proj Linear(E, E); bias_k / bias_v (1, 1, E) with
    add_bias_kv. Inputs (L, N, E) or (N, L, E) with batch_first, or unbatched (L, E).

    forward returns (output, weights): weights (N, L, S) averaged over heads (or (N, H, L, S))
    when need_weights, else None. Masks follow PyTorch: attn_mask (L, S) or (N * H, L, S),
    key_padding_mask (N, S); boolean True marks a position that may NOT be attended, float
    masks are added to the scores."""

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, device=None, dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: embed_dim and num_heads must be > 0; got {embed_dim}, {num_heads}")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible by num_heads "
                             f"({num_heads})")
        kw = dict(dtype=dtype, device=device)
        self.embed_dim, self.num_heads, self.dropout, self.batch_first = embed_dim, num_heads, dropout, batch_first
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.head_dim = embed_dim // num_heads
        self.add_zero_attn = add_zero_attn
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(_tensor.empty(3 * embed_dim, embed_dim, **kw))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = Parameter(_tensor.empty(embed_dim, embed_dim, **kw))
            self.k_proj_weight = Parameter(_tensor.empty(embed_dim, self.kdim, **kw))
            self.v_proj_weight = Parameter(_tensor.empty(embed_dim, self.vdim, **kw))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(_tensor.empty(3 * embed_dim, **kw))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, **kw)
        if add_bias_kv:
            self.bias_k = Parameter(_tensor.empty(1, 1, embed_dim, **kw))
            self.bias_v = Parameter(_tensor.empty(1, 1, embed_dim, **kw))
        else:
            self.bias_k = self.bias_v = None
        self._reset_parameters()

    def _reset_parameters(self):
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    def _project(self, query, key, value):
        E, b = self.embed_dim, self.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else (b[:E], b[E:2 * E], b[2 * E:])
        if self._qkv_same_embed_dim:
            W = self.in_proj_weight
            if query is key and key is value:  # self-attention: one product
                return F.linear(query, W, b).chunk(3, -1)
            if key is value:
                q = F.linear(query, W[:E], bq)
                k, v = F.linear(key, W[E:], None if b is None else b[E:]).chunk(2, -1)
                return q, k, v
            return F.linear(query, W[:E], bq), F.linear(key, W[E:2 * E], bk), F.linear(value, W[2 * E:], bv)
        return (F.linear(query, self.q_proj_weight, bq), F.linear(key, self.k_proj_weight, bk),
                F.linear(value, self.v_proj_weight, bv))

    def _check(self, query, key, value, key_padding_mask, attn_mask):
        q, k, v = tuple(query.shape), tuple(key.shape), tuple(value.shape)
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise ValueError(f"MultiheadAttention: query, key and value must all be 2-D (unbatched) or 3-D "
                             f"(batched); got query {q}, key {k}, value {v}")
        if q[-1] != self.embed_dim or k[-1] != self.kdim or v[-1] != self.vdim:
            raise ValueError(f"MultiheadAttention: expected last dims embed_dim={self.embed_dim}, kdim={self.kdim}, "
                             f"vdim={self.vdim}; got query {q}, key {k}, value {v}")
        if k[:-1] != v[:-1]:
            raise ValueError(f"MultiheadAttention: key and value must agree on all but the last dim; got key {k}, "
                             f"value {v}")
        if query.ndim == 3:
            bdim = 0 if self.batch_first else 1
            if q[bdim] != k[bdim]:
                raise ValueError(f"MultiheadAttention: query and key batch sizes differ (batch_first="
                                 f"{self.batch_first}); got query {q}, key {k}")
        N = (q[0] if self.batch_first else q[1]) if query.ndim == 3 else None
        L = q[-2] if (query.ndim == 2 or self.batch_first) else q[0]
        S = k[-2] if (key.ndim == 2 or self.batch_first) else k[0]
        if key_padding_mask is not None:
            want = (S,) if N is None else (N, S)
            if tuple(key_padding_mask.shape) != want:
                raise ValueError(f"MultiheadAttention: key_padding_mask must have shape {want} (batch, source "
                                 f"length); got {tuple(key_padding_mask.shape)}")
        if attn_mask is not None:
            m = tuple(attn_mask.shape)
            ok = m == (L, S) or (attn_mask.ndim == 3 and m == ((N or 1) * self.num_heads, L, S))
            if not ok:
                raise ValueError(f"MultiheadAttention: attn_mask must have shape (L, S) = {(L, S)} or "
                                 f"(N * num_heads, L, S) = {((N or 1) * self.num_heads, L, S)}; got {m}")
        return N, L, S

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        N, L, S = self._check(query, key, value, key_padding_mask, attn_mask)
        batched = N is not None
        same_kv, self_attn = key is value, query is key and key is value
        if batched and not self.batch_first:  # work batch-first: (N, L, E)
            query = query.transpose(0, 1)
            key = query if self_attn else key.transpose(0, 1)
            value = key if same_kv else value.transpose(0, 1)
        elif not batched:
            query = query.unsqueeze(0)
            key = query if self_attn else key.unsqueeze(0)
            value = key if same_kv else value.unsqueeze(0)
        n, E, H, hd = query.shape[0], self.embed_dim, self.num_heads, self.head_dim
        q, k, v = self._project(query, key, value)
        if self.bias_k is not None:
            k = _C.cat([k, self.bias_k.expand(n, 1, E)], 1)
            v = _C.cat([v, self.bias_v.expand(n, 1, E)], 1)
            attn_mask = None if attn_mask is None else _pad_last(attn_mask)
            key_padding_mask = None if key_padding_mask is None else _pad_last(key_padding_mask)
        q = q.reshape(n, L, H, hd).transpose(1, 2)
        k = k.reshape(n, k.shape[1], H, hd).transpose(1, 2)
        v = v.reshape(n, v.shape[1], H, hd).transpose(1, 2)
        if self.add_zero_attn:
            z = k.new_zeros((n, H, 1, hd))
            k, v = _C.cat([k, z], 2), _C.cat([v, z], 2)
            attn_mask = None if attn_mask is None else _pad_last(attn_mask)
            key_padding_mask = None if key_padding_mask is None else _pad_last(key_padding_mask)

        causal = is_causal and attn_mask is None
        mask = None
        if attn_mask is not None:
            mask = _additive(attn_mask, q.dtype, "attn_mask")
            if mask.ndim == 3:
                mask = mask.reshape(n, H, L, mask.shape[-1])
        if key_padding_mask is not None:
            kpm = _additive(key_padding_mask, q.dtype, "key_padding_mask").reshape(n, 1, 1, k.shape[2])
            mask = kpm if mask is None else mask + kpm
        if causal and (mask is not None or need_weights):
            cm = causal_mask(L, k.shape[2], q.dtype, q.device)
            mask = cm if mask is None else mask + cm
            causal = False
        p = self.dropout if self.training else 0.0

        weights = None
        if need_weights:  # PyTorch's path: the (L, S) weights are part of the result
            s = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
            w = F.softmax(s if mask is None else s + mask, dim=-1)
            if p > 0:
                w = F.dropout(w, p, True)
            out = w @ v
            weights = w.mean(1) if average_attn_weights else w
            if not batched:
                weights = weights.squeeze(0)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=causal)
        out = self.out_proj(out.transpose(1, 2).reshape(n, L, E))
        if not batched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        return out, weights

    def extra_repr(self):
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, "
                f"batch_first={self.batch_first}")


def _activation(activation, who):
    if activation in ("relu", F.relu):
        return F.relu
    if activation in ("gelu", F.gelu):
        return F.gelu
    if callable(activation):
        return activation
    raise ValueError(f"{who}: activation should be 'relu', 'gelu' or a callable; got {activation!r}")


class TransformerEncoderLayer(Module):
    """PyTorch's TransformerEncoderLayer: self-attention and a feed-forward block, each with
    dropout and a residual; post-LN (x = norm(x + f(x))) or, with norm_first, pre-LN
    (x = x + f(norm(x)))."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1, self.dropout2 = Dropout(dropout), Dropout(dropout)
        self.activation = _activation(activation, "TransformerEncoderLayer")
        self.batch_first = batch_first

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False,
                           is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x):
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff_block(self.norm2(x))
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff_block(x))


class TransformerDecoderLayer(Module):
    """PyTorch's TransformerDecoderLayer: self-attention, cross-attention over `memory` and a
    feed-forward block, post-LN or pre-LN (norm_first)."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                                 **kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1, self.dropout2, self.dropout3 = Dropout(dropout), Dropout(dropout), Dropout(dropout)
        self.activation = _activation(activation, "TransformerDecoderLayer")
        self.batch_first = batch_first

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False,
                           is_causal=is_causal)[0]
        return self.dropout1(x)

    def _mha_block(self, x, mem, attn_mask, key_padding_mask, is_causal):
        x = self.multihead_attn(x, mem, mem, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                need_weights=False, is_causal=is_causal)[0]
        return self.dropout2(x)

    def _ff_block(self, x):
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False):
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask, memory_is_causal)
            return x + self._ff_block(self.norm3(x))
        x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
        x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal))
        return self.norm3(x + self._ff_block(x))


def _clones(layer, n):
    return ModuleList([copy.deepcopy(layer) for _ in range(n)])


class TransformerEncoder(Module):
    """num_layers deep copies of encoder_layer, then an optional final norm."""

    def __init__(self, encoder_layer, num_layers, norm=None, enable_nested_tensor=True, mask_check=True):
        super().__init__()
        self.layers = _clones(encoder_layer, num_layers)
        self.num_layers, self.norm = num_layers, norm

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=bool(is_causal))
        return x if self.norm is None else self.norm(x)


class TransformerDecoder(Module):
    """num_layers deep copies of decoder_layer, then an optional final norm."""

    def __init__(self, decoder_layer, num_layers, norm=None):
        super().__init__()
        self.layers = _clones(decoder_layer, num_layers)
        self.num_layers, self.norm = num_layers, norm

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False):
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask, tgt_key_padding_mask=tgt_key_padding_mask,
                      memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=bool(tgt_is_causal),
                      memory_is_causal=memory_is_causal)
        return x if self.norm is None else self.norm(x)


class Transformer(Module):
    """PyTorch's nn.Transformer: an encoder and a decoder stack, each ending in a LayerNorm;
    matrices Xavier-uniform initialised."""

    def __init__(self, d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6, dim_feedforward=2048,
                 dropout=0.1, activation="relu", custom_encoder=None, custom_decoder=None, layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        lkw = dict(dim_feedforward=dim_feedforward, dropout=dropout, activation=activation,
                   layer_norm_eps=layer_norm_eps, batch_first=batch_first, norm_first=norm_first, bias=bias, **kw)
        self.encoder = custom_encoder if custom_encoder is not None else TransformerEncoder(
            TransformerEncoderLayer(d_model, nhead, **lkw), num_encoder_layers,
            LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw))
        self.decoder = custom_decoder if custom_decoder is not None else TransformerDecoder(
            TransformerDecoderLayer(d_model, nhead, **lkw), num_decoder_layers,
            LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw))
        self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p)

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None, src_key_padding_mask=None,
                tgt_key_padding_mask=None, memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
                memory_is_causal=False):
        bdim = 0 if self.batch_first else 1
        if src.ndim == 3 and tgt.ndim == 3 and src.shape[bdim] != tgt.shape[bdim]:
            raise ValueError(f"Transformer: src and tgt batch sizes differ (batch_first={self.batch_first}); got "
                             f"src {tuple(src.shape)}, tgt {tuple(tgt.shape)}")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise ValueError(f"Transformer: src and tgt must end in d_model={self.d_model}; got src "
                             f"{tuple(src.shape)}, tgt {tuple(tgt.shape)}")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask, memory_key_padding_mask=memory_key_padding_mask,
                            tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)

    @staticmethod
    def generate_square_subsequent_mask(sz, device=None, dtype=None):
        return causal_mask(sz, sz, dtype, device)


def rotate_half(x):
    """(x1, x2) -> (-x2, x1) over the two halves of the last dim."""
    x1, x2 = x.chunk(2, -1)
    return _C.cat([-x2, x1], -1)


def apply_rotary_emb(x, cos, sin):
    """x * cos + rotate_half(x) * sin; cos and sin (L, D) broadcast over x (..., L, D)."""
    return x * cos + rotate_half(x) * sin


class RotaryEmbedding(Module):
    """Rotary position embedding over the last dim (D, even) of (..., L, D) queries and keys:
    position m rotates the pair (x_i, x_{i + D/2}) by m * base^(-2i/D) (rotate-half layout).
    forward(q, k, offset=0) rotates positions offset .. offset + L - 1; cos_sin(L) gives the
    (L, D) tables for apply_rotary_emb."""

    def __init__(self, dim, base=10000.0):
        super().__init__()
        if dim <= 0 or dim % 2:
            raise ValueError(f"RotaryEmbedding: dim must be a positive even number; got {dim}")
        self.dim, self.base = dim, float(base)
        self._cache = {}

    def cos_sin(self, seq_len, offset=0, dtype=None, device=None):
        key = (seq_len + offset, str(dtype), str(device))
        if key not in self._cache:
            inv = self.base ** (-np.arange(0, self.dim, 2, dtype=np.float64) / self.dim)
            ang = np.arange(seq_len + offset, dtype=np.float64)[:, None] * inv[None]
            ang = np.concatenate([ang, ang], 1)
            self._cache = {key: tuple(_tensor.tensor(f(ang), dtype=dtype, device=device) for f in (np.cos, np.sin))}
        cos, sin = self._cache[key]
        return cos[offset:], sin[offset:]

    def forward(self, q, k=None, offset=0):
        if q.shape[-1] != self.dim or (k is not None and k.shape[-1] != self.dim):
            raise ValueError(f"RotaryEmbedding: last dim must be {self.dim}; got q {tuple(q.shape)}"
                             f"{'' if k is None else f', k {tuple(k.shape)}'}")
        cos, sin = self.cos_sin(q.shape[-2], offset, q.dtype, q.device)
        if k is None:
            return apply_rotary_emb(q, cos, sin)
        if k.shape[-2] != q.shape[-2]:
            kc, ks = self.cos_sin(k.shape[-2], offset, k.dtype, k.device)
            return apply_rotary_emb(q, cos, sin), apply_rotary_emb(k, kc, ks)
        return apply_rotary_emb(q, cos, sin), apply_rotary_emb(k, cos, sin)

    def extra_repr(self):
        return f"dim={self.dim}, base={self.base:g}"
