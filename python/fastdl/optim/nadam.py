"""NAdam (Dozat 2016): Adam with Nesterov momentum and the momentum-decay schedule
mu_t = beta1 (1 - 0.5 * 0.96^(t psi)), PyTorch's rule, defaults and state (step, mu_product,
exp_avg, exp_avg_sq); one fused native step per param group."""
from __future__ import annotations

from typing import Any, Callable, Optional

from fastdl import _C
from fastdl.optim.optimizer import Optimizer, ParamsT, _check, _scalar


class NAdam(Optimizer):
    def __init__(self, params: ParamsT, lr: float = 2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, foreach=None, maximize=False,
                 capturable=False, differentiable=False) -> None:
        _check(0.0 <= lr, f"Invalid learning rate: {lr}")
        _check(0.0 <= eps, f"Invalid epsilon value: {eps}")
        _check(0.0 <= betas[0] < 1.0, f"Invalid beta parameter at index 0: {betas[0]}")
        _check(0.0 <= betas[1] < 1.0, f"Invalid beta parameter at index 1: {betas[1]}")
        _check(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        _check(0.0 <= momentum_decay, f"Invalid momentum_decay value: {momentum_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize, foreach=foreach, capturable=capturable,
                                      differentiable=differentiable))

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        loss = self._closure(closure)
        for g in self.param_groups:
            b1, b2 = g["betas"]
            psi = g["momentum_decay"]
            ps, gs, m1, m2, steps, mp, mp_next = [], [], [], [], [], [], []
            for p, gr, s in self._active(g):
                t = s["step"]
                # the product of the mu_t so far, kept in PyTorch's scalar precision
                s["mu_product"] = _scalar(s.get("mu_product", 1.0) * _scalar(b1 * (1 - 0.5 * 0.96 ** (t * psi))))
                ps.append(p)
                gs.append(gr)
                m1.append(self._buffer(s, "exp_avg", p))
                m2.append(self._buffer(s, "exp_avg_sq", p))
                steps.append(t)
                mp.append(s["mu_product"])
                mp_next.append(s["mu_product"] * (b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))))
            if ps:
                _C.nadam_step(ps, gs, m1, m2, steps, mp, mp_next, g["lr"], b1, b2, g["eps"], g["weight_decay"], psi,
                              g["decoupled_weight_decay"], g["maximize"])
        return loss
