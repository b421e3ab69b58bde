"""A decoder-only Transformer language model in the GPT-2 layout (Radford et al. 2019; the
structure of nanoGPT): token + learned position embeddings, pre-LayerNorm blocks of causal
self-attention and a GELU MLP, a final LayerNorm and a language-model head tied to the token
embedding. Attention runs through F.scaled_dot_product_attention (is_causal in training).

    GPT(vocab_size, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=True)
    model(idx)                    idx (batch, T <= block_size) int64 -> logits (batch, T, vocab)
    model.generate(idx, n, temperature=1.0, top_k=None)      KV-cache sampling

Generation keeps a key/value cache per layer: the prompt fills it in one pass, then each new
token costs one query attending to the cached keys. Learned positions stop at block_size, so
once the cache is full the model is rerun on the last block_size tokens (the window slides, as
in nanoGPT's generate) and the cache refilled."""
import math

from fastdl import _C, _tensor, no_grad
from fastdl import nn
from fastdl.nn import functional as F, init
from fastdl.models.mamba import _sample


class KVCache:
    """Per-layer key/value buffers (batch, heads, capacity, head_dim) and the filled length."""

    def __init__(self, n_layer, batch, n_head, capacity, head_dim, dtype=None, device=None):
        shape = (batch, n_head, capacity, head_dim)
        self.k = [_tensor.zeros(*shape, dtype=dtype, device=device) for _ in range(n_layer)]
        self.v = [_tensor.zeros(*shape, dtype=dtype, device=device) for _ in range(n_layer)]
        self.n, self.capacity = 0, capacity


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd, n_head, dropout=0.0, bias=True, device=None, dtype=None):
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"GPT: n_embd ({n_embd}) must be divisible by n_head ({n_head})")
        kw = dict(device=device, dtype=dtype)
        self.n_embd, self.n_head, self.dropout = n_embd, n_head, dropout
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias, **kw)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias, **kw)
        self.resid_dropout = nn.Dropout(dropout)

    def forward(self, x, cache=None, layer=0):
        B, T, C = x.shape
        H = self.n_head
        q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in self.c_attn(x).split(C, dim=2))
        p = self.dropout if self.training else 0.0
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        else:
            n = cache.n
            with no_grad():
                cache.k[layer][:, :, n:n + T] = k
                cache.v[layer][:, :, n:n + T] = v
            k, v = cache.k[layer][:, :, :n + T], cache.v[layer][:, :, :n + T]
            if n == 0:
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            elif T == 1:
                y = F.scaled_dot_product_attention(q, k, v)
            else:  # T new queries after n cached keys: query i sees keys <= n + i
                mask = _C.triu(_C.full((T, n + T), float("-inf"), x.dtype, x.device), n + 1)
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = self.c_proj(y.transpose(1, 2).reshape(B, T, C))
        return self.resid_dropout(y) if p > 0 else y


class MLP(nn.Module):
    def __init__(self, n_embd, dropout=0.0, bias=True, device=None, dtype=None):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=bias, device=device, dtype=dtype)
        self.c_proj = nn.Linear(4 * n_embd, n_embd, bias=bias, device=device, dtype=dtype)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        y = self.c_proj(F.gelu(self.c_fc(x)))
        return self.dropout(y) if self.training and self.dropout.p > 0 else y


class Block(nn.Module):
    """x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, n_embd, n_head, dropout=0.0, bias=True, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.ln_1 = nn.LayerNorm(n_embd, bias=bias, **kw)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout, bias, **kw)
        self.ln_2 = nn.LayerNorm(n_embd, bias=bias, **kw)
        self.mlp = MLP(n_embd, dropout, bias, **kw)

    def forward(self, x, cache=None, layer=0):
        x = x + self.attn(self.ln_1(x), cache, layer)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, vocab_size, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=True,
                 device=None, dtype=None):
        super().__init__()
        if vocab_size <= 0 or block_size <= 0 or n_layer <= 0:
            raise ValueError(f"GPT: vocab_size, block_size and n_layer must be > 0; got {vocab_size}, {block_size}, "
                             f"{n_layer}")
        kw = dict(device=device, dtype=dtype)
        self.vocab_size, self.block_size, self.n_layer, self.n_head, self.n_embd = (
            vocab_size, block_size, n_layer, n_head, n_embd)
        self.config = dict(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=n_head,
                           n_embd=n_embd, dropout=dropout, bias=bias)
        self.wte = nn.Embedding(vocab_size, n_embd, **kw)
        self.wpe = nn.Embedding(block_size, n_embd, **kw)
        self.drop = nn.Dropout(dropout)
        self.h = nn.ModuleList([Block(n_embd, n_head, dropout, bias, **kw) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd, bias=bias, **kw)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False, **kw)
        self.lm_head.weight = self.wte.weight  # weight tying (Press & Wolf 2017)
        self._init_weights()

    def _init_weights(self):
        """GPT-2: N(0, 0.02) weights and embeddings, zero biases, residual projections (c_proj)
        N(0, 0.02 / sqrt(2 n_layer))."""
        for name, m in self.named_modules():
            if isinstance(m, nn.Linear):
                std = 0.02 / math.sqrt(2 * self.n_layer) if name.endswith("c_proj") else 0.02
                init.normal_(m.weight, std=std)
                if m.bias is not None:
                    init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                init.normal_(m.weight, std=0.02)

    def param_groups(self, weight_decay=0.1):
        """nanoGPT's optimizer groups: weight decay on matrices and embeddings, none on biases
        and LayerNorm weights."""
        params = list(self.parameters())
        return [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
                {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]

    def new_cache(self, batch):
        w = self.wte.weight
        return KVCache(self.n_layer, batch, self.n_head, self.block_size, self.n_embd // self.n_head, w.dtype,
                       w.device)

    def forward(self, idx, cache=None):
        """idx (batch, T) int64 -> logits (batch, T, vocab). With a cache, the T tokens follow
        the cache.n tokens already in it (positions cache.n ..) and their keys/values are added."""
        if idx.ndim != 2:
            raise ValueError(f"GPT: idx must be (batch, T) token ids; got shape {tuple(idx.shape)}")
        T = idx.shape[1]
        n = 0 if cache is None else cache.n
        if n + T > self.block_size or T == 0:
            raise ValueError(f"GPT: {T} tokens{f' after {n} cached' if n else ''} do not fit block_size "
                             f"{self.block_size} (idx shape {tuple(idx.shape)})")
        pos = _tensor.arange(n, n + T, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        if self.training and self.drop.p > 0:
            x = self.drop(x)
        for i, block in enumerate(self.h):
            x = block(x, cache, i)
        if cache is not None:
            cache.n = n + T
        return self.lm_head(self.ln_f(x))

    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None):
        """Continue idx (batch, T) by max_new_tokens tokens sampled from softmax(logits /
        temperature) (temperature 0: greedy), restricted to the top_k most likely when given.
        Returns (batch, T + max_new_tokens) int64."""
        if idx.ndim != 2 or idx.shape[1] == 0:
            raise ValueError(f"GPT.generate: idx must be a non-empty (batch, T) prompt; got {tuple(idx.shape)}")
        if temperature < 0:
            raise ValueError(f"GPT.generate: temperature must be >= 0; got {temperature}")
        if top_k is not None and top_k < 1:
            raise ValueError(f"GPT.generate: top_k must be >= 1; got {top_k}")
        was_training = self.training
        self.eval()
        out = [idx]
        with no_grad():
            cache = self.new_cache(idx.shape[0])
            logits = self.forward(idx[:, -self.block_size:], cache)[:, -1]
            for i in range(max_new_tokens):
                tok = _sample(logits, temperature, top_k).unsqueeze(1)
                out.append(tok)
                if i + 1 == max_new_tokens:
                    break
                if cache.n == self.block_size:  # positions exhausted: slide the window, refill
                    cache.n = 0
                    logits = self.forward(_C.cat(out, 1)[:, -self.block_size:], cache)[:, -1]
                else:
                    logits = self.forward(tok, cache)[:, -1]
        self.train(was_training)
        return _C.cat(out, 1)
