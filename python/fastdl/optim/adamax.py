"""Adamax (Kingma & Ba 2015, section 7.1): Adam with the infinity norm, PyTorch's rule, defaults
and state (step, exp_avg, exp_inf); one fused native step per param group."""
from __future__ import annotations

from typing import Any, Callable, Optional

from fastdl import _C
from fastdl.optim.optimizer import Optimizer, ParamsT, _check


class Adamax(Optimizer):
    def __init__(self, params: ParamsT, lr: float = 2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 foreach=None, *, maximize=False, differentiable=False, capturable=False) -> None:
        _check(0.0 <= lr, f"Invalid learning rate: {lr}")
        _check(0.0 <= eps, f"Invalid epsilon value: {eps}")
        _check(0.0 <= betas[0] < 1.0, f"Invalid beta parameter at index 0: {betas[0]}")
        _check(0.0 <= betas[1] < 1.0, f"Invalid beta parameter at index 1: {betas[1]}")
        _check(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable, capturable=capturable))

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        loss = self._closure(closure)
        for g in self.param_groups:
            ps, gs, m1, inf, steps = [], [], [], [], []
            for p, gr, s in self._active(g):
                ps.append(p)
                gs.append(gr)
                m1.append(self._buffer(s, "exp_avg", p))
                inf.append(self._buffer(s, "exp_inf", p))
                steps.append(s["step"])
            if ps:
                b1, b2 = g["betas"]
                _C.adamax_step(ps, gs, m1, inf, steps, g["lr"], b1, b2, g["eps"], g["weight_decay"], g["maximize"])
        return loss
