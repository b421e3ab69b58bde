"""LoRA (Hu et al. 2021): a frozen Linear plus a trainable low-rank update
y = x W^T + b + (alpha / r) * (x A^T) B^T, with A (r, in) Kaiming-uniform and B (out, r) zero,
so an adapted model starts equal to the original. merge() folds the update into W (no extra
cost at inference); unmerge() takes it back out."""
import math

from fastdl import _tensor, no_grad
from fastdl.nn import functional as F, init
from fastdl.nn.modules.dropout import Dropout
from fastdl.nn.modules.linear import Linear
from fastdl.nn.modules.module import Module
from fastdl.nn.parameter import Parameter


class LoRALinear(Module):
    def __init__(self, base, rank=4, alpha=None, dropout=0.0):
        super().__init__()
        if not isinstance(base, Linear):
            raise TypeError(f"LoRALinear: expected an nn.Linear to adapt; got {type(base).__name__}")
        if rank < 1:
            raise ValueError(f"LoRALinear: rank must be >= 1; got {rank}")
        self.base = base
        base.requires_grad_(False)
        self.rank, self.alpha = rank, float(rank if alpha is None else alpha)
        self.scaling = self.alpha / rank
        w = base.weight
        self.lora_A = Parameter(_tensor.empty(rank, base.in_features, dtype=w.dtype, device=w.device))
        self.lora_B = Parameter(_tensor.zeros(base.out_features, rank, dtype=w.dtype, device=w.device))
        init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = Dropout(dropout) if dropout > 0 else None
        self.merged = False

    @property
    def in_features(self):
        return self.base.in_features

    @property
    def out_features(self):
        return self.base.out_features

    def delta_weight(self):
        return (self.lora_B @ self.lora_A) * self.scaling

    def merge(self):
        if not self.merged:
            with no_grad():
                self.base.weight.add_(self.delta_weight())
            self.merged = True
        return self

    def unmerge(self):
        if self.merged:
            with no_grad():
                self.base.weight.sub_(self.delta_weight())
            self.merged = False
        return self

    def forward(self, x):
        y = self.base(x)
        if self.merged:
            return y
        h = self.dropout(x) if self.dropout is not None else x
        return y + F.linear(F.linear(h, self.lora_A), self.lora_B) * self.scaling

    def extra_repr(self):
        return f"rank={self.rank}, alpha={self.alpha}, merged={self.merged}"


def apply(model, rank=4, alpha=None, targets=None, dropout=0.0):
    """Freeze `model` and wrap its Linear layers (those whose qualified name ends with one of
    `targets`, or all when targets is None) in LoRALinear adapters. Returns the model."""
    model.requires_grad_(False)
    for name, mod in list(model.named_modules()):
        for child_name, child in list(mod.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if isinstance(child, Linear) and (targets is None or any(full == t or full.endswith("." + t) or
                                                                     child_name == t for t in targets)):
                setattr(mod, child_name, LoRALinear(child, rank, alpha, dropout))
    return model


def lora_parameters(model):
    """The adapter parameters (lora_A, lora_B) of a model, for the optimizer."""
    return [p for n, p in model.named_parameters() if n.rsplit(".", 1)[-1] in ("lora_A", "lora_B")]


def merge(model):
    for m in model.modules():
        if isinstance(m, LoRALinear):
            m.merge()
    return model


def unmerge(model):
    for m in model.modules():
        if isinstance(m, LoRALinear):
            m.unmerge()
    return model
