"""Adadelta (Zeiler 2012), PyTorch's rule, defaults (lr=1.0) and state (step, square_avg,
acc_delta); one fused native step per param group."""
from __future__ import annotations

from typing import Any, Callable, Optional

from fastdl import _C
from fastdl.optim.optimizer import Optimizer, ParamsT, _check


class Adadelta(Optimizer):
    def __init__(self, params: ParamsT, lr: float = 1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 capturable=False, maximize=False, differentiable=False) -> None:
        _check(0.0 <= lr, f"Invalid learning rate: {lr}")
        _check(0.0 <= rho <= 1.0, f"Invalid rho value: {rho}")
        _check(0.0 <= eps, f"Invalid epsilon value: {eps}")
        _check(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
                                      capturable=capturable, foreach=foreach, differentiable=differentiable))

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        loss = self._closure(closure)
        for g in self.param_groups:
            ps, gs, sq, acc = [], [], [], []
            for p, gr, s in self._active(g):
                ps.append(p)
                gs.append(gr)
                sq.append(self._buffer(s, "square_avg", p))
                acc.append(self._buffer(s, "acc_delta", p))
            if ps:
                _C.adadelta_step(ps, gs, sq, acc, g["lr"], g["rho"], g["eps"], g["weight_decay"], g["maximize"])
        return loss
