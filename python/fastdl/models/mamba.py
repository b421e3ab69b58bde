"""Mamba language models (Gu & Dao 2023; mamba_ssm's MambaLMHeadModel) and a hybrid that
interleaves Mamba, causal self-attention and MLP layers (Jamba-style), all with pre-RMSNorm
residual blocks, and recurrent generation: `step(token, state)` costs O(1) per token in Mamba
layers (a d_conv window and a (batch, d_inner, d_state) state) and O(context) in attention
layers (a key/value cache).

    MambaLM(vocab_size, d_model, n_layer)                 all layers Mamba
    HybridLM(vocab_size, d_model, pattern="mmam")         m: Mamba, a: attention, f: MLP
    HybridLM(vocab_size, d_model, pattern="af" * n)       a GPT without position embeddings
"""
import math

from fastdl import _C, _tensor, no_grad
from fastdl import nn
from fastdl.nn import functional as F, init
from fastdl.nn.modules.mamba import Mamba


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention composed from matmul and softmax (no fused kernel)."""

    def __init__(self, d_model, n_head, bias=False, device=None, dtype=None):
        super().__init__()
        if d_model % n_head:
            raise ValueError(f"CausalSelfAttention: d_model {d_model} must be divisible by n_head {n_head}")
        self.d_model, self.n_head = d_model, n_head
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias, device=device, dtype=dtype)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias, device=device, dtype=dtype)

    def _heads(self, x):  # (batch, L, 3 d) -> 3 x (batch, heads, L, d / heads)
        b, L, _ = x.shape
        q, k, v = self.qkv(x).split(self.d_model, dim=2)
        return [t.reshape(b, L, self.n_head, -1).transpose(1, 2) for t in (q, k, v)]

    def _attend(self, q, k, v, mask=None):
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
        y = F.softmax(att if mask is None else att + mask, dim=-1) @ v     # (batch, heads, Lq, hd)
        return self.out_proj(y.transpose(1, 2).reshape(q.shape[0], q.shape[2], self.d_model))

    def forward(self, x, return_state=False):
        q, k, v = self._heads(x)
        L = x.shape[1]
        mask = _C.triu(_C.full((L, L), float("-inf"), x.dtype, x.device), 1)
        out = self._attend(q, k, v, mask)
        if not return_state:
            return out
        cap = max(2 * L, 16)  # step doubles it when full
        pad = k.new_zeros((k.shape[0], self.n_head, cap - L, k.shape[3]))
        return out, (_C.cat([k.detach(), pad], 2), _C.cat([v.detach(), pad], 2), L)

    def init_state(self, batch, dtype=None, device=None, capacity=64):
        shape = (batch, self.n_head, capacity, self.d_model // self.n_head)
        dtype = dtype or self.qkv.weight.dtype
        return (_tensor.zeros(*shape, dtype=dtype, device=device), _tensor.zeros(*shape, dtype=dtype, device=device), 0)

    def step(self, x, state):
        """(batch, d_model) -> (batch, d_model): the new key/value written into the cache (grown by
        doubling when full), the query attending to the n + 1 cached positions."""
        kc, vc, n = state
        q, k, v = self._heads(x.unsqueeze(1))
        if n == kc.shape[2]:
            kc, vc = _C.cat([kc, kc.new_zeros(kc.shape)], 2), _C.cat([vc, vc.new_zeros(vc.shape)], 2)
        with no_grad():
            kc[:, :, n] = k[:, :, 0]
            vc[:, :, n] = v[:, :, 0]
        out = self._attend(q, kc[:, :, :n + 1], vc[:, :, :n + 1])
        return out[:, 0], (kc, vc, n + 1)


class MLP(nn.Module):
    def __init__(self, d_model, expand=4, bias=False, device=None, dtype=None):
        super().__init__()
        self.fc = nn.Linear(d_model, expand * d_model, bias=bias, device=device, dtype=dtype)
        self.out_proj = nn.Linear(expand * d_model, d_model, bias=bias, device=device, dtype=dtype)

    def forward(self, x, return_state=False):
        out = self.out_proj(F.gelu(self.fc(x)))
        return (out, None) if return_state else out

    def init_state(self, batch, dtype=None, device=None):
        return None

    def step(self, x, state):
        return self.forward(x), None


class Block(nn.Module):
    """Pre-norm residual block: x + mixer(RMSNorm(x)) (mamba_ssm's Block, residual in fp of x)."""

    def __init__(self, d_model, mixer, eps=1e-5, device=None, dtype=None):
        super().__init__()
        self.norm = nn.RMSNorm(d_model, eps=eps, device=device, dtype=dtype)
        self.mixer = mixer

    def forward(self, x, return_state=False):
        if not return_state:
            return x + self.mixer(self.norm(x))
        out, state = self.mixer(self.norm(x), True)
        return x + out, state

    def step(self, x, state):
        out, state = self.mixer.step(self.norm(x), state)
        return x + out, state


class HybridLM(nn.Module):
    """Embedding, one pre-norm block per letter of `pattern` (m: Mamba, a: causal attention, f:
    MLP), final RMSNorm and a language-model head (tied to the embedding by default)."""

    def __init__(self, vocab_size, d_model, pattern="mmam", n_head=4, d_state=16, d_conv=4, expand=2,
                 mlp_expand=4, tie_embeddings=True, eps=1e-5, device=None, dtype=None, **mamba_kw):
        super().__init__()
        if not pattern or set(pattern) - set("maf"):
            raise ValueError(f"HybridLM: pattern must be a non-empty string of m (Mamba), a (attention), "
                             f"f (MLP); got '{pattern}'")
        kw = dict(device=device, dtype=dtype)
        self.vocab_size, self.d_model, self.pattern = vocab_size, d_model, pattern
        self.embedding = nn.Embedding(vocab_size, d_model, **kw)

        def mixer(i, c):
            if c == "m":
                return Mamba(d_model, d_state=d_state, d_conv=d_conv, expand=expand, layer_idx=i, **mamba_kw, **kw)
            return CausalSelfAttention(d_model, n_head, **kw) if c == "a" else MLP(d_model, mlp_expand, **kw)
        self.layers = nn.ModuleList([Block(d_model, mixer(i, c), eps, **kw) for i, c in enumerate(pattern)])
        self.norm_f = nn.RMSNorm(d_model, eps=eps, **kw)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False, **kw)
        self._init_weights()
        if tie_embeddings:
            self.lm_head.weight = self.embedding.weight

    def _init_weights(self):
        """mamba_ssm's _init_weights: embedding N(0, 0.02), Linear biases zero (dt_proj's kept),
        each residual branch's output projection scaled by 1 / sqrt(n_layer) (GPT-2)."""
        init.normal_(self.embedding.weight, std=0.02)
        scale = 1.0 / math.sqrt(len(self.layers))
        with no_grad():
            for name, m in self.named_modules():
                if isinstance(m, nn.Linear) and m.bias is not None and not name.endswith("dt_proj"):
                    init.zeros_(m.bias)
                if name.endswith("out_proj"):
                    m.weight.mul_(scale)

    def forward(self, idx, return_state=False):
        """idx (batch, L) int64 -> logits (batch, L, vocab); with return_state also the per-layer
        recurrent state after the last token."""
        x = self.embedding(idx)
        states = []
        for layer in self.layers:
            if return_state:
                x, s = layer(x, True)
                states.append(s)
            else:
                x = layer(x)
        logits = self.lm_head(self.norm_f(x))
        return (logits, states) if return_state else logits

    def init_state(self, batch):
        dtype = self.norm_f.weight.dtype
        return [layer.mixer.init_state(batch, dtype=dtype) for layer in self.layers]

    def step(self, token, state=None):
        """token (batch,) int64 and the state after the previous tokens (None: empty) -> logits
        (batch, vocab) for the next token and the new state."""
        if state is None:
            state = self.init_state(token.shape[0])
        x = self.embedding(token)
        new = []
        for layer, s in zip(self.layers, state):
            x, s = layer.step(x, s)
            new.append(s)
        return self.lm_head(self.norm_f(x)), new

    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None):
        """Continue idx (batch, T) by max_new_tokens sampled tokens: one parallel pass over the
        prompt fills the recurrent state, then one `step` per token. temperature 0 is greedy;
        top_k keeps the k most likely tokens. Returns (batch, T + max_new_tokens) int64."""
        return generate_recurrent(self, idx, max_new_tokens, temperature, top_k)


class MambaLM(HybridLM):
    """mamba_ssm's MambaLMHeadModel: n_layer Mamba blocks."""

    def __init__(self, vocab_size, d_model, n_layer, d_state=16, d_conv=4, expand=2, tie_embeddings=True,
                 eps=1e-5, device=None, dtype=None, **mamba_kw):
        super().__init__(vocab_size, d_model, "m" * n_layer, d_state=d_state, d_conv=d_conv, expand=expand,
                         tie_embeddings=tie_embeddings, eps=eps, device=device, dtype=dtype, **mamba_kw)


def generate_recurrent(model, idx, max_new_tokens, temperature=1.0, top_k=None):
    """Sampling for any model with forward(idx, return_state=True) -> (logits, state) and
    step(tok, state) -> (logits, state): the prompt in one pass, then one step per token."""
    with no_grad():
        logits, state = model.forward(idx, return_state=True)
        logits = logits[:, -1]
        out = [idx]
        for i in range(max_new_tokens):
            tok = _sample(logits, temperature, top_k)
            out.append(tok.unsqueeze(1))
            if i + 1 < max_new_tokens:
                logits, state = model.step(tok, state)
    return _C.cat(out, 1)


def _sample(logits, temperature, top_k):
    """One token per row of (batch, vocab) logits: argmax at temperature 0, else the Gumbel-max
    trick (argmax of logits / T + Gumbel noise draws from softmax(logits / T))."""
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1)[0][:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    u = _C.clamp(_C.rand(tuple(logits.shape), logits.dtype, logits.device), 1e-20, 1.0 - 1e-7)
    return (logits - _C.log(-_C.log(u))).argmax(-1)
