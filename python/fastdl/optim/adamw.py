"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter 2019), PyTorch's defaults."""
from __future__ import annotations

from fastdl.optim.adam import Adam
from fastdl.optim.optimizer import ParamsT


class AdamW(Adam):
    _decoupled = True

    def __init__(self, params: ParamsT, lr: float = 1e-3,
                 betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, capturable=False, differentiable=False, fused=None) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize, foreach=foreach,
                         capturable=capturable, differentiable=differentiable, fused=fused, decoupled_weight_decay=True)
