"""Vision Transformer (Dosovitskiy et al. 2021): the image cut into non-overlapping p x p
patches, each flattened (channel-major, as a conv with kernel = stride = p would read it) and
projected by one Linear, a learned [class] token and learned position embeddings, pre-LN
encoder layers (nn.TransformerEncoderLayer, GELU), a final LayerNorm and a linear head on the
class token (or on the mean of the patch tokens with pool="mean").

    ViT(image_size, patch_size, num_classes, dim, depth, heads, mlp_dim=None, channels=3)
    model(x)        x (batch, channels, H, W) -> logits (batch, num_classes)
"""
from fastdl import _C, _tensor
from fastdl import nn
from fastdl.nn import init
from fastdl.nn.parameter import Parameter


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def patchify(x, ph, pw):
    """(B, C, H, W) -> (B, (H / ph) (W / pw), C ph pw), patches in row-major order."""
    B, C, H, W = x.shape
    x = x.reshape(B, C, H // ph, ph, W // pw, pw).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(B, (H // ph) * (W // pw), C * ph * pw)


class ViT(nn.Module):
    def __init__(self, image_size, patch_size, num_classes, dim, depth, heads, mlp_dim=None, channels=3,
                 dropout=0.0, pool="cls", layer_norm_eps=1e-6, device=None, dtype=None):
        super().__init__()
        (H, W), (ph, pw) = _pair(image_size), _pair(patch_size)
        if H % ph or W % pw:
            raise ValueError(f"ViT: image_size {(H, W)} must be divisible by patch_size {(ph, pw)}")
        if pool not in ("cls", "mean"):
            raise ValueError(f"ViT: pool must be 'cls' or 'mean'; got {pool!r}")
        kw = dict(device=device, dtype=dtype)
        self.image_size, self.patch_size, self.channels, self.pool = (H, W), (ph, pw), channels, pool
        self.num_patches = (H // ph) * (W // pw)
        self.patch_embed = nn.Linear(channels * ph * pw, dim, **kw)
        self.cls_token = Parameter(_tensor.zeros(1, 1, dim, **kw))
        self.pos_embed = Parameter(_tensor.zeros(1, self.num_patches + 1, dim, **kw))
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([
            nn.TransformerEncoderLayer(dim, heads, dim_feedforward=mlp_dim or 4 * dim, dropout=dropout,
                                       activation="gelu", layer_norm_eps=layer_norm_eps, batch_first=True,
                                       norm_first=True, **kw) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=layer_norm_eps, **kw)
        self.head = nn.Linear(dim, num_classes, **kw)
        init.trunc_normal_(self.pos_embed, std=0.02)
        init.trunc_normal_(self.cls_token, std=0.02)

    def forward_features(self, x):
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.channels,) + self.image_size:
            raise ValueError(f"ViT: expected input (batch, {self.channels}, {self.image_size[0]}, "
                             f"{self.image_size[1]}); got {tuple(x.shape)}")
        t = self.patch_embed(patchify(x, *self.patch_size))
        B = t.shape[0]
        t = _C.cat([self.cls_token.expand(B, 1, t.shape[2]), t], 1) + self.pos_embed
        if self.training and self.dropout.p > 0:
            t = self.dropout(t)
        for blk in self.blocks:
            t = blk(t)
        return self.norm(t)

    def forward(self, x):
        t = self.forward_features(x)
        return self.head(t[:, 0] if self.pool == "cls" else t[:, 1:].mean(1))
