"""Adagrad (Duchi et al. 2011) with lr_decay and weight decay, PyTorch's rule and defaults."""
from __future__ import annotations

from typing import Any, Callable, Optional

from fastdl import _C
from fastdl.optim.optimizer import Optimizer, ParamsT, _check


class Adagrad(Optimizer):
    def __init__(self, params: ParamsT, lr: float = 1e-2,
                 lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None) -> None:
        _check(0.0 <= lr, f"Invalid learning rate: {lr}")
        _check(0.0 <= lr_decay, f"Invalid lr_decay value: {lr_decay}")
        _check(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        _check(0.0 <= initial_accumulator_value, f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        _check(0.0 <= eps, f"Invalid epsilon value: {eps}")
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps,
                                      initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable, fused=fused))
        # PyTorch creates Adagrad's state eagerly, every sum filled from the constructor's
        # initial_accumulator_value (a per-group value is stored but not used)
        self._initial_accumulator_value = float(initial_accumulator_value)
        for g in self.param_groups:
            for p in g["params"]:
                self.state[p] = {"step": 0, "sum": _C.full(p.shape, self._initial_accumulator_value, p.dtype,
                                                          p.device)}

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        loss = self._closure(closure)
        for g in self.param_groups:
            ps, gs, sums, steps = [], [], [], []
            for p, gr, s in self._active(g):
                self._buffer(s, "sum", p, self._initial_accumulator_value)
                ps.append(p)
                gs.append(gr)
                sums.append(s["sum"])
                steps.append(s["step"])
            if ps:
                _C.adagrad_step(ps, gs, sums, steps, g["lr"], g["lr_decay"], g["weight_decay"], g["eps"], g["maximize"])
        return loss
