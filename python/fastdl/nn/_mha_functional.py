"""F.multi_head_attention_forward with PyTorch's arguments: sequence-first (L, N, E) or unbatched
(L, E) query / key / value, packed or separate projection weights, bias_k / bias_v,
add_zero_attn, boolean or additive attn_mask ((L, S) or (N * H, L, S)) and key_padding_mask
(N, S), static_k / static_v ((N * H, S, head_dim)), dropout on the attention weights when
training; returns (output, weights averaged over heads or per head, or None)."""
import math

from fastdl import _C
from fastdl.nn.modules.transformer import _additive, causal_mask


def _zero_col(t):
    return _C.cat([t, _C.full(tuple(t.shape[:-1]) + (1,), 0, t.dtype, t.device)], -1)


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads, in_proj_weight, in_proj_bias,
                                 bias_k, bias_v, add_zero_attn, dropout_p, out_proj_weight, out_proj_bias,
                                 training=True, key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None, k_proj_weight=None,
                                 v_proj_weight=None, static_k=None, static_v=None, average_attn_weights=True,
                                 is_causal=False):
    op = "multi_head_attention_forward"
    from fastdl.nn import functional as F
    if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
        raise ValueError(f"{op}: query, key and value must all be 2-D (L, E) or 3-D (L, N, E); got "
                         f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
    unbatched = query.ndim == 2
    if unbatched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    L, N, E = query.shape
    S = key.shape[0]
    H = int(num_heads)
    if E != embed_dim_to_check:
        raise ValueError(f"{op}: query embedding dim {E} differs from embed_dim_to_check {embed_dim_to_check}")
    if E % H:
        raise ValueError(f"{op}: embed_dim {E} must be divisible by num_heads {H}")
    hd = E // H
    if key.shape[:2] != value.shape[:2]:
        raise ValueError(f"{op}: key shape {tuple(key.shape)} does not match value shape {tuple(value.shape)}")
    bq = bk = bv = None
    if in_proj_bias is not None:
        bq, bk, bv = in_proj_bias[:E], in_proj_bias[E:2 * E], in_proj_bias[2 * E:]
    if use_separate_proj_weight:
        if q_proj_weight is None or k_proj_weight is None or v_proj_weight is None:
            raise ValueError(f"{op}: use_separate_proj_weight needs q_proj_weight, k_proj_weight and v_proj_weight")
        wq, wk, wv = q_proj_weight, k_proj_weight, v_proj_weight
    else:
        if in_proj_weight is None:
            raise ValueError(f"{op}: in_proj_weight is None without use_separate_proj_weight")
        wq, wk, wv = in_proj_weight[:E], in_proj_weight[E:2 * E], in_proj_weight[2 * E:]
    q, k, v = F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)
    if attn_mask is not None:
        attn_mask = _additive(attn_mask, q.dtype, "attn_mask")
        if attn_mask.ndim == 2:
            if tuple(attn_mask.shape) != (L, S):
                raise ValueError(f"{op}: 2-D attn_mask must be ({L}, {S}); got {tuple(attn_mask.shape)}")
            attn_mask = attn_mask.unsqueeze(0)
        elif tuple(attn_mask.shape) != (N * H, L, S):
            raise ValueError(f"{op}: 3-D attn_mask must be ({N * H}, {L}, {S}); got {tuple(attn_mask.shape)}")
    elif is_causal:
        attn_mask = causal_mask(L, S, q.dtype, q.device).unsqueeze(0)
    if bias_k is not None and bias_v is not None:
        if static_k is not None or static_v is not None:
            raise ValueError(f"{op}: bias cannot be added to static key / value")
        k = _C.cat([k, bias_k.reshape(1, 1, E).expand(1, N, E)], 0)
        v = _C.cat([v, bias_v.reshape(1, 1, E).expand(1, N, E)], 0)
        attn_mask = None if attn_mask is None else _zero_col(attn_mask)
        key_padding_mask = None if key_padding_mask is None else _zero_col(key_padding_mask)
    q = q.reshape(L, N * H, hd).transpose(0, 1)  # (N * H, L, hd)
    k = k.reshape(k.shape[0], N * H, hd).transpose(0, 1) if static_k is None else static_k
    v = v.reshape(v.shape[0], N * H, hd).transpose(0, 1) if static_v is None else static_v
    if add_zero_attn:
        z = _C.full((N * H, 1, hd), 0.0, q.dtype, q.device)
        k, v = _C.cat([k, z], 1), _C.cat([v, z], 1)
        attn_mask = None if attn_mask is None else _zero_col(attn_mask)
        key_padding_mask = None if key_padding_mask is None else _zero_col(key_padding_mask)
    S2 = k.shape[1]
    if key_padding_mask is not None:
        if tuple(key_padding_mask.shape) != (N, S2):
            raise ValueError(f"{op}: key_padding_mask must be ({N}, {S2 - (S2 - S)}); got "
                             f"{tuple(key_padding_mask.shape)}")
        kpm = _additive(key_padding_mask, q.dtype, "key_padding_mask").reshape(N, 1, 1, S2)
        kpm = kpm.expand(N, H, 1, S2).reshape(N * H, 1, S2)
        attn_mask = kpm if attn_mask is None else attn_mask + kpm
    scores = (q * (1.0 / math.sqrt(hd))) @ k.transpose(1, 2)  # (N * H, L, S2)
    if attn_mask is not None:
        scores = scores + attn_mask
    w = F.softmax(scores, dim=-1)
    if training and dropout_p > 0:
        w = F.dropout(w, dropout_p, True)
    out = (w @ v).transpose(0, 1).reshape(L, N, E)
    out = F.linear(out, out_proj_weight, out_proj_bias)
    weights = None
    if need_weights:
        weights = w.reshape(N, H, L, S2)
        if average_attn_weights:
            weights = weights.mean(1)
    if unbatched:
        out = out.squeeze(1)
        weights = None if weights is None else weights.squeeze(0)
    return out, weights
