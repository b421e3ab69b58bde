"""F.scaled_dot_product_attention with PyTorch's semantics.

    q (..., Hq, L, E), k (..., Hkv, S, E), v (..., Hkv, S, Ev) -> (..., Hq, L, Ev)
    softmax(q k^T * scale + mask) v, scale = 1 / sqrt(E) unless given.

attn_mask is boolean (True = take part) or additive, broadcast to (..., L, S); is_causal keeps
key j <= query i (top-left aligned when L != S); a fully masked query row gives zeros, as
PyTorch's CPU kernel does; enable_gqa lets Hq be a multiple of Hkv (query head h reads key/value
head h // (Hq / Hkv)). The fused kernel (csrc/cpu/attention*.cpp) never stores the L x S
scores: forward keeps the row log-sum-exp, backward recomputes score tiles from it; dropout
regenerates its mask from a counter-based generator instead of storing it."""
import math

import fastdl
from fastdl import _C


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False):
    if attn_mask is not None and attn_mask.requires_grad:  # the fused kernel treats masks as constants
        return _composed(query, key, value, attn_mask, dropout_p, is_causal, scale)
    return _C.scaled_dot_product_attention(query, key, value, attn_mask, float(dropout_p), bool(is_causal), scale,
                                           bool(enable_gqa))


def _composed(query, key, value, attn_mask, dropout_p, is_causal, scale):
    """softmax(q k^T) v through matmul and softmax, O(L S) memory: the path for an additive mask
    that requires grad, and a plain reference."""
    L, S = query.shape[-2], key.shape[-2]
    hq = query.shape[-3] if query.ndim >= 3 else 1
    hk = key.shape[-3] if key.ndim >= 3 else 1
    if hq != hk:
        rep = hq // hk
        key, value = (t.unsqueeze(-3).expand(*t.shape[:-2], rep, S, t.shape[-1]).reshape(*t.shape[:-3], hq, S, -1)
                      for t in (key, value))
    s = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    att = (query @ key.transpose(-2, -1)) * s
    keep = None
    if is_causal:
        keep = _C.tril(_C.full((L, S), 1.0, query.dtype, query.device), 0) > 0.5
    elif attn_mask is not None:
        if attn_mask.dtype == fastdl.bool:
            keep = attn_mask
        else:
            att = att + attn_mask
    if keep is not None:
        att = _C.masked_fill(att, _C.logical_not(keep), float("-inf"))
    p = _C.softmax(att, -1)
    p = _C.where(_C.isnan(p), _C.full((), 0.0, p.dtype, p.device), p)  # fully masked rows -> 0
    if dropout_p > 0:
        p = _C.dropout(p, dropout_p, True)
    return p @ value
