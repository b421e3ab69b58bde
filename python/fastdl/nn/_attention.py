"""F.scaled_dot_product_attention with PyTorch's semantics.

    q (..., Hq, L, E), k (..., Hkv, S, E), v (..., Hkv, S, Ev) -> (..., Hq, L, Ev)
    softmax(q k^T * scale + mask) v, scale = 1 / sqrt(E) unless given.

attn_mask is boolean (True = take part) or additive, broadcast to (..., L, S); is_causal keeps
key j <= query i (top-left aligned when L != S); a fully masked query row gives zeros, as
PyTorch's CPU kernel does; enable_gqa lets Hq be a multiple of Hkv (query head h reads key/value
head h // (Hq / Hkv))."""
import math

import fastdl
from fastdl import _C


def _check(query, key, value, attn_mask, dropout_p, is_causal, enable_gqa):
    for name, t in (("query", query), ("key", key), ("value", value)):
        if t.ndim < 2:
            raise ValueError(f"scaled_dot_product_attention: {name} must have at least 2 dims (..., L, E); "
                             f"got shape {tuple(t.shape)}")
    q, k, v = tuple(query.shape), tuple(key.shape), tuple(value.shape)
    if q[-1] != k[-1]:
        raise ValueError(f"scaled_dot_product_attention: query and key must share the last dim E; "
                         f"got query {q} and key {k}")
    if k[-2] != v[-2] or k[:-2] != v[:-2]:
        raise ValueError(f"scaled_dot_product_attention: key and value must agree on (..., S); "
                         f"got key {k} and value {v}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"scaled_dot_product_attention: dropout_p must be in [0, 1); got {dropout_p}")
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: pass either attn_mask or is_causal, not both")
    hq = q[-3] if len(q) >= 3 else 1
    hk = k[-3] if len(k) >= 3 else 1
    if hq != hk:
        if not enable_gqa or hk == 0 or hq % hk:
            raise ValueError(f"scaled_dot_product_attention: query heads ({hq}) must equal key/value heads ({hk})"
                             f"{'' if enable_gqa else ' unless enable_gqa=True'}"
                             f"{' and be a multiple of them' if enable_gqa else ''}; got query {q}, key {k}")
    for t in (key, value):
        if t.dtype != query.dtype:
            raise TypeError(f"scaled_dot_product_attention: query, key and value must share a dtype; got "
                            f"{query.dtype}, {key.dtype}, {value.dtype}")
    if attn_mask is not None:
        m = tuple(attn_mask.shape)
        want = q[:-1] + (k[-2],)
        if len(m) > len(want) or any(a != 1 and a != b for a, b in zip(reversed(m), reversed(want))):
            raise ValueError(f"scaled_dot_product_attention: attn_mask of shape {m} does not broadcast to "
                             f"(..., L, S) = {want}")


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False):
    _check(query, key, value, attn_mask, dropout_p, is_causal, enable_gqa)
    native = getattr(_C, "scaled_dot_product_attention", None)
    if native is not None:
        return native(query, key, value, attn_mask, float(dropout_p), bool(is_causal), scale, bool(enable_gqa))
    return _composed(query, key, value, attn_mask, dropout_p, is_causal, scale)


def _composed(query, key, value, attn_mask, dropout_p, is_causal, scale):
    """softmax(q k^T) v through matmul and softmax: O(L S) memory; used until the fused kernel
    is built, and as the plain reference."""
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
