"""RMSprop (Hinton's lecture 6e) with momentum and the centered variant, PyTorch's rule and defaults."""
from __future__ import annotations

from typing import Any, Callable, Optional

from fastdl import _C
from fastdl.optim.optimizer import Optimizer, ParamsT, _check


class RMSprop(Optimizer):
    def __init__(self, params: ParamsT, lr: float = 1e-2,
                 alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False) -> None:
        _check(0.0 <= lr, f"Invalid learning rate: {lr}")
        _check(0.0 <= eps, f"Invalid epsilon value: {eps}")
        _check(0.0 <= momentum, f"Invalid momentum value: {momentum}")
        _check(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        _check(0.0 <= alpha, f"Invalid alpha value: {alpha}")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered, capturable=capturable, foreach=foreach, maximize=maximize,
                                      differentiable=differentiable))

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        loss = self._closure(closure)
        for g in self.param_groups:
            mom, centered = g["momentum"], g["centered"]
            ps, gs, sq, bufs, gavg = [], [], [], [], []
            for p, gr, s in self._active(g):
                ps.append(p)
                gs.append(gr)
                sq.append(self._buffer(s, "square_avg", p))
                if mom > 0:
                    bufs.append(self._buffer(s, "momentum_buffer", p))
                if centered:
                    gavg.append(self._buffer(s, "grad_avg", p))
            if ps:
                _C.rmsprop_step(ps, gs, sq, bufs, gavg, g["lr"], g["alpha"], g["eps"], g["weight_decay"], mom, centered,
                                g["maximize"])
        return loss
