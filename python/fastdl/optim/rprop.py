"""Rprop (Riedmiller & Braun 1993, the variant without weight backtracking), PyTorch's rule,
defaults and state (step, prev, step_size); one fused native step per param group."""
from __future__ import annotations

from typing import Any, Callable, Optional

from fastdl import _C
from fastdl.optim.optimizer import Optimizer, ParamsT, _check


class Rprop(Optimizer):
    def __init__(self, params: ParamsT, lr: float = 1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *,
                 capturable=False, foreach=None, maximize=False, differentiable=False) -> None:
        _check(0.0 <= lr, f"Invalid learning rate: {lr}")
        _check(0.0 < etas[0] < 1.0 < etas[1], f"Invalid eta values: {etas[0]}, {etas[1]}")
        super().__init__(params, dict(lr=lr, etas=tuple(etas), step_sizes=tuple(step_sizes), foreach=foreach,
                                      maximize=maximize, differentiable=differentiable, capturable=capturable))

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        loss = self._closure(closure)
        for g in self.param_groups:
            ps, gs, prevs, sizes = [], [], [], []
            for p, gr, s in self._active(g):
                ps.append(p)
                gs.append(gr)
                prevs.append(self._buffer(s, "prev", p))
                sizes.append(self._buffer(s, "step_size", p, float(g["lr"])))  # the lr when the state is made
            if ps:
                (eta_minus, eta_plus), (lo, hi) = g["etas"], g["step_sizes"]
                _C.rprop_step(ps, gs, prevs, sizes, eta_minus, eta_plus, lo, hi, g["maximize"])
        return loss
