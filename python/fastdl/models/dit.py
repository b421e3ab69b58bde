"""Diffusion Transformer (Peebles & Xie 2023, "Scalable Diffusion Models with Transformers"):
image patches as tokens with fixed 2-D sine-cosine positions, a conditioning vector c = the
timestep's sinusoidal embedding through an MLP + a class embedding (an extra "null" class for
classifier-free guidance), and blocks with adaLN-Zero: from c each block regresses a shift, a
scale and a gate for its attention and its MLP, the gates' regression zero-initialised so each
block starts as the identity; the final layer (also adaptive, zero-initialised) maps tokens
back to patches.

    DiTBlock(hidden_size, num_heads, mlp_ratio=4.0)         block(x, c)
    DiT(input_size, patch_size, in_channels, hidden_size, depth, num_heads, num_classes)
    model(x, t, y)   x (batch, C, H, W), t (batch,) float timesteps, y (batch,) int64 labels
"""
import math

import numpy as np

from fastdl import _C, _tensor
from fastdl import nn
from fastdl.nn import init
from fastdl.models.vit import _pair, patchify


def modulate(x, shift, scale):
    """x (B, N, D) * (1 + scale) + shift, shift and scale (B, D) broadcast over tokens."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def timestep_embedding(t, dim, max_period=10000.0):
    """Sinusoidal embedding of (batch,) timesteps: [cos(t f_i), sin(t f_i)], f_i =
    max_period^(-i / (dim / 2)) (zero-padded to an odd dim)."""
    half = dim // 2
    freqs = _tensor.tensor(np.exp(-math.log(max_period) * np.arange(half) / half), dtype=t.dtype, device=t.device)
    args = t.unsqueeze(1) * freqs
    emb = _C.cat([_C.cos(args), _C.sin(args)], -1)
    if dim % 2:
        emb = _C.cat([emb, _tensor.zeros(t.shape[0], 1, dtype=t.dtype, device=t.device)], -1)
    return emb


def sincos_pos_embed_2d(dim, gh, gw):
    """(gh * gw, dim) fixed 2-D sine-cosine position table (half the channels encode the row,
    half the column, each as 1-D sin/cos of the index), as in MAE and DiT."""
    if dim % 4:
        raise ValueError(f"DiT: hidden_size must be divisible by 4 for 2-D sin-cos positions; got {dim}")

    def one_d(d, pos):
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        out = pos.reshape(-1)[:, None] * omega[None]
        return np.concatenate([np.sin(out), np.cos(out)], 1)
    yy, xx = np.meshgrid(np.arange(gh, dtype=np.float64), np.arange(gw, dtype=np.float64), indexing="ij")
    return np.concatenate([one_d(dim // 2, yy), one_d(dim // 2, xx)], 1)


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden_size, frequency_embedding_size=256, **kw):
        super().__init__()
        self.frequency_embedding_size = frequency_embedding_size
        self.mlp = nn.Sequential(nn.Linear(frequency_embedding_size, hidden_size, **kw), nn.SiLU(),
                                 nn.Linear(hidden_size, hidden_size, **kw))

    def forward(self, t):
        dtype = self.mlp[0].weight.dtype
        return self.mlp(timestep_embedding(t.to(dtype), self.frequency_embedding_size))


class LabelEmbedder(nn.Module):
    """Class embedding with one extra row, the null class, which training substitutes for the
    label with probability dropout_prob (classifier-free guidance)."""

    def __init__(self, num_classes, hidden_size, dropout_prob=0.1, **kw):
        super().__init__()
        self.num_classes, self.dropout_prob = num_classes, dropout_prob
        self.embedding_table = nn.Embedding(num_classes + (dropout_prob > 0), hidden_size, **kw)

    def forward(self, y, force_drop=None):
        if (self.training and self.dropout_prob > 0) or force_drop is not None:
            drop = (_C.rand((y.shape[0],), _C.dtype.float32, y.device) < self.dropout_prob) if force_drop is None \
                else force_drop
            y = _C.where(drop, _C.full(tuple(y.shape), float(self.num_classes), y.dtype, y.device), y)
        return self.embedding_table(y)


class DiTBlock(nn.Module):
    """x + gate_msa * attn(modulate(norm1(x), shift_msa, scale_msa)), then the same for the
    MLP, with (shift, scale, gate) x 2 = adaLN_modulation(c) (SiLU then a zero-initialised
    Linear: the block is the identity at initialisation)."""

    def __init__(self, hidden_size, num_heads, mlp_ratio=4.0, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6, **kw)
        self.attn = nn.MultiheadAttention(hidden_size, num_heads, batch_first=True, **kw)
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6, **kw)
        hidden = int(hidden_size * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(hidden_size, hidden, **kw), nn.GELU(approximate="tanh"),
                                 nn.Linear(hidden, hidden_size, **kw))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 6 * hidden_size, **kw))
        init.zeros_(self.adaLN_modulation[1].weight)
        init.zeros_(self.adaLN_modulation[1].bias)

    def forward(self, x, c):
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)
        h = modulate(self.norm1(x), shift_msa, scale_msa)
        x = x + gate_msa.unsqueeze(1) * self.attn(h, h, h, need_weights=False)[0]
        return x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))


class FinalLayer(nn.Module):
    def __init__(self, hidden_size, patch_elems, **kw):
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6, **kw)
        self.linear = nn.Linear(hidden_size, patch_elems, **kw)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size, **kw))
        for lin in (self.linear, self.adaLN_modulation[1]):
            init.zeros_(lin.weight)
            init.zeros_(lin.bias)

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class DiT(nn.Module):
    def __init__(self, input_size=32, patch_size=2, in_channels=4, hidden_size=384, depth=12, num_heads=6,
                 mlp_ratio=4.0, num_classes=10, class_dropout_prob=0.1, learn_sigma=False, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        (H, W), (ph, pw) = _pair(input_size), _pair(patch_size)
        if H % ph or W % pw:
            raise ValueError(f"DiT: input_size {(H, W)} must be divisible by patch_size {(ph, pw)}")
        self.input_size, self.patch_size, self.in_channels = (H, W), (ph, pw), in_channels
        self.out_channels = in_channels * 2 if learn_sigma else in_channels
        self.x_embedder = nn.Linear(in_channels * ph * pw, hidden_size, **kw)
        self.t_embedder = TimestepEmbedder(hidden_size, **kw)
        self.y_embedder = LabelEmbedder(num_classes, hidden_size, class_dropout_prob, **kw)
        pos = sincos_pos_embed_2d(hidden_size, H // ph, W // pw)[None]
        self.register_buffer("pos_embed", _tensor.tensor(pos, dtype=dtype or _tensor.get_default_dtype(),
                                                         device=device), persistent=False)
        self.blocks = nn.ModuleList([DiTBlock(hidden_size, num_heads, mlp_ratio, **kw) for _ in range(depth)])
        self.final_layer = FinalLayer(hidden_size, ph * pw * self.out_channels, **kw)
        init.xavier_uniform_(self.x_embedder.weight)
        init.zeros_(self.x_embedder.bias)
        init.normal_(self.y_embedder.embedding_table.weight, std=0.02)
        init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        init.normal_(self.t_embedder.mlp[2].weight, std=0.02)

    def unpatchify(self, x):
        """(B, N, ph pw C) -> (B, C, H, W)."""
        (H, W), (ph, pw), C = self.input_size, self.patch_size, self.out_channels
        B = x.shape[0]
        x = x.reshape(B, H // ph, W // pw, ph, pw, C).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(B, C, H, W)

    def forward(self, x, t, y):
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.in_channels,) + self.input_size:
            raise ValueError(f"DiT: expected x (batch, {self.in_channels}, {self.input_size[0]}, "
                             f"{self.input_size[1]}); got {tuple(x.shape)}")
        if tuple(t.shape) != (x.shape[0],) or tuple(y.shape) != (x.shape[0],):
            raise ValueError(f"DiT: t and y must be (batch,) = ({x.shape[0]},); got t {tuple(t.shape)}, "
                             f"y {tuple(y.shape)}")
        h = self.x_embedder(patchify(x, *self.patch_size)) + self.pos_embed
        c = self.t_embedder(t) + self.y_embedder(y)
        for blk in self.blocks:
            h = blk(h, c)
        return self.unpatchify(self.final_layer(h, c))
