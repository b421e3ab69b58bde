"""Adam (Kingma & Ba 2015) with amsgrad, PyTorch's rule and defaults; one fused native step per
param group (AdamW shares it with decoupled weight decay)."""
from __future__ import annotations

from typing import Any, Callable, Optional

from fastdl import _C
from fastdl.optim.optimizer import Optimizer, ParamsT, _check


class Adam(Optimizer):
    _decoupled = False

    def __init__(self, params: ParamsT, lr: float = 1e-3,
                 betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False) -> None:
        _check(0.0 <= lr, f"Invalid learning rate: {lr}")
        _check(0.0 <= eps, f"Invalid epsilon value: {eps}")
        _check(0.0 <= betas[0] < 1.0, f"Invalid beta parameter at index 0: {betas[0]}")
        _check(0.0 <= betas[1] < 1.0, f"Invalid beta parameter at index 1: {betas[1]}")
        _check(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize, foreach=foreach, capturable=capturable,
                                      differentiable=differentiable, fused=fused,
                                      decoupled_weight_decay=self._decoupled or decoupled_weight_decay))

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        loss = self._closure(closure)
        state = self.state
        for g in self.param_groups:
            ams = g["amsgrad"]
            ps, gs, m1, m2, mx, steps = [], [], [], [], [], []
            for p in g["params"]:
                gr = p.grad
                if gr is None:
                    continue
                s = state[p]
                if not s:
                    s.update(step=0, exp_avg=_C.full(p.shape, 0.0, p.dtype, p.device),
                             exp_avg_sq=_C.full(p.shape, 0.0, p.dtype, p.device))
                if ams:
                    mx.append(self._buffer(s, "max_exp_avg_sq", p))
                s["step"] = t = s["step"] + 1
                ps.append(p)
                gs.append(gr)
                m1.append(s["exp_avg"])
                m2.append(s["exp_avg_sq"])
                steps.append(t)
            if ps:
                b1, b2 = g["betas"]
                _C.adam_step(ps, gs, m1, m2, mx, steps, g["lr"], b1, b2, g["eps"], g["weight_decay"], ams,
                             g["maximize"], g["decoupled_weight_decay"])
        return loss
