"""Denoising diffusion (Ho et al. 2020, "Denoising Diffusion Probabilistic Models"): noise
schedules, a small U-Net denoiser, epsilon-prediction training, ancestral and DDIM (Song et al.
2021) sampling. The DiT of fastdl.models.dit is a second denoiser (DiTDenoiser; class labels
y optional).

    linear_beta_schedule(T, beta_start=1e-4, beta_end=0.02) / cosine_beta_schedule(T, s=0.008)
    UNet(in_channels=1, base_channels=32, channel_mults=(1, 2), num_res_blocks=1,
         attention_levels=(1,), num_heads=4, groups=8)            unet(x, t) -> predicted noise
    DiTDenoiser(input_size=8, in_channels=1, hidden_size=64, depth=4, num_classes=1)   dit(x, t[, y])
    DDPM(model, timesteps=1000, schedule="linear")
        ddpm.loss(x0, y=None)                  E_t,eps ||eps - model(sqrt(ab_t) x0 + sqrt(1 - ab_t) eps, t)||^2
        ddpm.sample(n, shape, method="ancestral" | "ddim", steps=None, eta=0.0, y=None)

Timesteps reach the networks as float tensors (batch,) in [0, T); the schedules' tables are
float64 numpy arrays, gathered per batch on the host and broadcast as (batch, 1, 1, 1)."""
import math

import numpy as np

from fastdl import _C, _tensor
from fastdl import nn
from fastdl.nn import functional as F
from fastdl.nn import init
from fastdl.models.dit import timestep_embedding


def linear_beta_schedule(timesteps, beta_start=1e-4, beta_end=0.02):
    """Ho et al.'s betas, linear from beta_start to beta_end (given for T = 1000; scaled by
    1000 / T so shorter chains reach the same total noise)."""
    scale = 1000.0 / timesteps
    return np.linspace(beta_start * scale, beta_end * scale, timesteps, dtype=np.float64)


def cosine_beta_schedule(timesteps, s=0.008, max_beta=0.999):
    """Nichol & Dhariwal 2021: alpha_bar(t) = cos^2(pi / 2 (t / T + s) / (1 + s)) / alpha_bar(0),
    beta_t = 1 - alpha_bar(t) / alpha_bar(t - 1), clipped at max_beta."""
    t = np.arange(timesteps + 1, dtype=np.float64) / timesteps
    ab = np.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return np.clip(1.0 - ab[1:] / ab[:-1], 0.0, max_beta)


SCHEDULES = {"linear": linear_beta_schedule, "cosine": cosine_beta_schedule}


class ResBlock(nn.Module):
    """GroupNorm, SiLU, 3x3 conv, + Linear(time embedding), GroupNorm, SiLU, dropout, 3x3 conv
    (zero-initialised), plus the input (through a 1x1 conv when the width changes)."""

    def __init__(self, in_channels, out_channels, temb_dim, groups=8, dropout=0.0):
        super().__init__()
        self.norm1 = nn.GroupNorm(min(groups, in_channels), in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.temb = nn.Linear(temb_dim, out_channels)
        self.norm2 = nn.GroupNorm(min(groups, out_channels), out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        init.zeros_(self.conv2.weight)
        init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def _skip(self, x):
        if isinstance(self.skip, nn.Identity):
            return x
        # the 1x1 convolution as one batched GEMM over the positions: on small feature maps
        # this is several times faster than conv2d's 1x1 path, forward and backward
        B, C, H, W = x.shape
        w, b = self.skip.weight, self.skip.bias
        return (w.reshape(w.shape[0], C) @ x.reshape(B, C, H * W) + b.unsqueeze(-1)).reshape(B, w.shape[0], H, W)

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(F.silu(temb)).unsqueeze(-1).unsqueeze(-1)
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self._skip(x) + h


class AttentionBlock(nn.Module):
    """Self-attention over the H * W positions: GroupNorm, a linear map of each position's
    channels to q, k, v (a 1x1 convolution, applied as one GEMM over the tokens), multi-head
    scaled dot-product attention (the fused kernel), a zero-initialised output projection, residual."""

    def __init__(self, channels, num_heads=4, groups=8):
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"AttentionBlock: channels {channels} must be divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.norm = nn.GroupNorm(min(groups, channels), channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        init.zeros_(self.proj.weight)
        init.zeros_(self.proj.bias)

    def forward(self, x):
        B, C, H, W = x.shape
        nh = self.num_heads
        tokens = self.norm(x).reshape(B, C, H * W).transpose(1, 2)           # (B, HW, C)
        qkv = self.qkv(tokens).reshape(B, H * W, 3, nh, C // nh).permute(2, 0, 3, 1, 4)
        h = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])           # (B, heads, HW, C / heads)
        h = self.proj(h.transpose(1, 2).reshape(B, H * W, C))
        return x + h.transpose(1, 2).reshape(B, C, H, W)


class Downsample(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour 2x, then a 3x3 conv."""

    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class UNet(nn.Module):
    """A DDPM U-Net: sinusoidal time embedding through an MLP; per level num_res_blocks ResBlocks
    (attention after each at the levels in attention_levels) then a stride-2 downsample (not
    after the last level); a middle ResBlock, attention, ResBlock; the mirrored decoder with
    skip connections concatenated; GroupNorm, SiLU and a zero-initialised 3x3 conv to the
    output. Level i has base_channels * channel_mults[i] channels; the input side needs H and
    W divisible by 2^(levels - 1)."""

    def __init__(self, in_channels=1, base_channels=32, channel_mults=(1, 2), num_res_blocks=1, attention_levels=(1,),
                 num_heads=4, groups=8, dropout=0.0, out_channels=None):
        super().__init__()
        self.in_channels, self.levels = in_channels, len(channel_mults)
        self.out_channels = out_channels or in_channels
        self.base_channels = base_channels
        tdim = 4 * base_channels
        self.time_mlp = nn.Sequential(nn.Linear(base_channels, tdim), nn.SiLU(), nn.Linear(tdim, tdim))
        self.stem = nn.Conv2d(in_channels, base_channels, 3, padding=1)
        self.down, chans, ch = nn.ModuleList(), [base_channels], base_channels
        for i, mult in enumerate(channel_mults):
            for _ in range(num_res_blocks):
                out = base_channels * mult
                self.down.append(nn.ModuleList([ResBlock(ch, out, tdim, groups, dropout)] + (
                    [AttentionBlock(out, num_heads, groups)] if i in attention_levels else [])))
                ch = out
                chans.append(ch)
            if i < self.levels - 1:
                self.down.append(Downsample(ch))
                chans.append(ch)
        self.mid = nn.ModuleList([ResBlock(ch, ch, tdim, groups, dropout), AttentionBlock(ch, num_heads, groups),
                                  ResBlock(ch, ch, tdim, groups, dropout)])
        self.up = nn.ModuleList()
        for i, mult in reversed(list(enumerate(channel_mults))):
            for _ in range(num_res_blocks + 1):
                out = base_channels * mult
                self.up.append(nn.ModuleList([ResBlock(ch + chans.pop(), out, tdim, groups, dropout)] + (
                    [AttentionBlock(out, num_heads, groups)] if i in attention_levels else [])))
                ch = out
            if i > 0:
                self.up.append(Upsample(ch))
        self.out_norm = nn.GroupNorm(min(groups, ch), ch)
        self.out_conv = nn.Conv2d(ch, self.out_channels, 3, padding=1)
        init.zeros_(self.out_conv.weight)
        init.zeros_(self.out_conv.bias)

    def forward(self, x, t):
        f = 2 ** (self.levels - 1)
        if x.ndim != 4 or x.shape[1] != self.in_channels or x.shape[2] % f or x.shape[3] % f:
            raise ValueError(f"UNet: x must be (N, {self.in_channels}, H, W) with H, W divisible by {f}; "
                             f"got {tuple(x.shape)}")
        if tuple(t.shape) != (x.shape[0],):
            raise ValueError(f"UNet: t must be (batch,) = ({x.shape[0]},); got {tuple(t.shape)}")
        temb = self.time_mlp(timestep_embedding(t.to(x.dtype), self.base_channels))
        h = self.stem(x)
        hs = [h]
        for blk in self.down:
            h = blk(h) if isinstance(blk, Downsample) else _apply(blk, h, temb)
            hs.append(h)
        h = self.mid[2](self.mid[1](self.mid[0](h, temb)), temb)
        for blk in self.up:
            h = blk(h) if isinstance(blk, Upsample) else _apply(blk, _C.cat([h, hs.pop()], 1), temb)
        return self.out_conv(F.silu(self.out_norm(h)))


def _apply(blocks, h, temb):
    h = blocks[0](h, temb)
    return blocks[1](h) if len(blocks) > 1 else h


class DiTDenoiser(nn.Module):
    """A DiT (fastdl.models.dit) as an (x, t) denoiser for DDPM: without labels every image gets
    the DiT's one class, so the class embedding acts as a learned bias; with num_classes > 1,
    DDPM.loss(x0, y) / DDPM.sample(..., y=labels) pass labels through (class-conditional)."""

    def __init__(self, input_size=8, in_channels=1, patch_size=2, hidden_size=64, depth=4, num_heads=4,
                 num_classes=1):
        super().__init__()
        from fastdl.models.dit import DiT
        self.dit = DiT(input_size=input_size, patch_size=patch_size, in_channels=in_channels, hidden_size=hidden_size,
                       depth=depth, num_heads=num_heads, num_classes=num_classes, class_dropout_prob=0.0)

    def forward(self, x, t, y=None):
        if y is None:
            y = _tensor.zeros(x.shape[0], dtype=_C.dtype.int64, device=x.device)
        return self.dit(x, t, y)


class DDPM(nn.Module):
    """Wraps a denoiser model(x_t, t[, y]) -> predicted noise with a T-step schedule."""

    def __init__(self, model, timesteps=1000, schedule="linear", betas=None):
        super().__init__()
        self.model = model
        if betas is None:
            if schedule not in SCHEDULES:
                raise ValueError(f"DDPM: schedule must be one of {sorted(SCHEDULES)}; got '{schedule}'")
            betas = SCHEDULES[schedule](timesteps)
        self.betas = np.asarray(betas, dtype=np.float64)
        self.timesteps, self.schedule = len(self.betas), schedule
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = np.cumprod(self.alphas)
        self.alphas_cumprod_prev = np.concatenate([[1.0], self.alphas_cumprod[:-1]])
        # posterior q(x_{t-1} | x_t, x_0) = N(c0 x_0 + ct x_t, beta_tilde)
        self.posterior_variance = self.betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_c0 = self.betas * np.sqrt(self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_ct = (1.0 - self.alphas_cumprod_prev) * np.sqrt(self.alphas) / (1.0 - self.alphas_cumprod)

    def _col(self, values, like):
        """(batch,) host values -> (batch, 1, 1, 1) tensor of like's dtype and device."""
        v = np.asarray(values, dtype=np.float64).reshape((-1,) + (1,) * (like.ndim - 1))
        return _tensor.tensor(v, dtype=like.dtype, device=like.device)

    def _tvec(self, t, like):
        return _tensor.tensor(np.asarray(t, dtype=np.float64), dtype=like.dtype, device=like.device)

    def _eps(self, x, t, y):
        tt = self._tvec(t, x)
        return self.model(x, tt) if y is None else self.model(x, tt, y)

    def q_sample(self, x0, t, noise):
        """x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise, t a (batch,) int array."""
        ab = self.alphas_cumprod[np.asarray(t)]
        return x0 * self._col(np.sqrt(ab), x0) + noise * self._col(np.sqrt(1.0 - ab), x0)

    def loss(self, x0, y=None, t=None):
        """Ho et al.'s simple objective: mean squared error between the noise and its prediction
        at uniformly drawn t (or the given (batch,) int array t)."""
        n = x0.shape[0]
        if t is None:
            t = _tensor.randint(0, self.timesteps, (n,)).numpy()
        noise = _tensor.randn_like(x0)
        return F.mse_loss(self._eps(self.q_sample(x0, t, noise), t, y), noise)

    def forward(self, x0, y=None):
        """The training loss (so fit(ddpm, opt, lambda loss, _: loss, ...) trains it)."""
        return self.loss(x0, y)

    def _x0(self, x, eps, t, clip):
        ab = self.alphas_cumprod[t]
        x0 = (x - eps * math.sqrt(1.0 - ab)) / math.sqrt(ab)
        return x0.clamp(-1.0, 1.0) if clip else x0

    def sample(self, n, shape, method="ancestral", steps=None, eta=0.0, y=None, clip=True, return_trajectory=False):
        """n samples of `shape` (C, H, W), without gradient, model in eval mode. ancestral: all T
        steps of p(x_{t-1} | x_t) with the posterior variance beta_tilde; ddim: `steps` evenly
        spaced timesteps (default 50), eta=0 deterministic, eta=1 DDPM-like noise. clip keeps the
        predicted x0 in [-1, 1] (data scaled there)."""
        if method not in ("ancestral", "ddim"):
            raise ValueError(f"DDPM.sample: method must be 'ancestral' or 'ddim'; got '{method}'")
        p = next(iter(self.model.parameters()))
        was = self.model.training
        self.model.eval()
        traj = []
        with _tensor.no_grad():
            x = _tensor.randn(n, *shape, dtype=p.dtype, device=p.device)
            if method == "ancestral":
                for t in range(self.timesteps - 1, -1, -1):
                    x0 = self._x0(x, self._eps(x, np.full(n, t), y), t, clip)
                    x = x0 * self.posterior_c0[t] + x * self.posterior_ct[t]
                    if t > 0:
                        x = x + _tensor.randn_like(x) * math.sqrt(self.posterior_variance[t])
                    if return_trajectory:
                        traj.append(x)
            else:
                seq = np.unique(np.linspace(0, self.timesteps - 1, steps or 50).round().astype(np.int64))[::-1]
                for i, t in enumerate(seq):
                    eps = self._eps(x, np.full(n, t), y)
                    x0 = self._x0(x, eps, t, clip)
                    ab = self.alphas_cumprod[t]
                    if clip:  # the noise consistent with the clipped x0
                        eps = (x - x0 * math.sqrt(ab)) / math.sqrt(1.0 - ab)
                    ab_prev = self.alphas_cumprod[seq[i + 1]] if i + 1 < len(seq) else 1.0
                    sigma = eta * math.sqrt((1.0 - ab_prev) / (1.0 - ab) * (1.0 - ab / ab_prev))
                    x = x0 * math.sqrt(ab_prev) + eps * math.sqrt(max(1.0 - ab_prev - sigma ** 2, 0.0))
                    if sigma > 0:
                        x = x + _tensor.randn_like(x) * sigma
                    if return_trajectory:
                        traj.append(x)
        self.model.train(was)
        return (x, traj) if return_trajectory else x
