"""LAMB (You et al. 2019, "Large Batch Optimization for Deep Learning", Algorithm 2): Adam
moments with bias correction, update u = m_hat / (sqrt(v_hat) + eps) + weight_decay * p, scaled
per parameter by the trust ratio ||p|| / ||u|| (1 when either norm is 0): p -= lr * ratio * u."""
from __future__ import annotations

from typing import Any, Callable, Optional

from fastdl import _C
from fastdl.optim.optimizer import Optimizer, ParamsT, _check


class LAMB(Optimizer):
    def __init__(self, params: ParamsT, lr: float = 1e-3,
                 betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, bias_correction=True, *,
                 maximize=False) -> None:
        _check(0.0 <= lr, f"Invalid learning rate: {lr}")
        _check(0.0 <= eps, f"Invalid epsilon value: {eps}")
        _check(0.0 <= betas[0] < 1.0, f"Invalid beta parameter at index 0: {betas[0]}")
        _check(0.0 <= betas[1] < 1.0, f"Invalid beta parameter at index 1: {betas[1]}")
        _check(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      bias_correction=bias_correction, maximize=maximize))

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        loss = self._closure(closure)
        for g in self.param_groups:
            ps, gs, m1, m2, steps = [], [], [], [], []
            for p, gr, s in self._active(g):
                ps.append(p)
                gs.append(gr)
                m1.append(self._buffer(s, "exp_avg", p))
                m2.append(self._buffer(s, "exp_avg_sq", p))
                steps.append(s["step"])
            if ps:
                b1, b2 = g["betas"]
                _C.lamb_step(ps, gs, m1, m2, steps, g["lr"], b1, b2, g["eps"], g["weight_decay"], g["bias_correction"],
                             g["maximize"])
        return loss


Lamb = LAMB
