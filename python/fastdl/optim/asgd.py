"""ASGD (Polyak & Juditsky 1992): SGD with a decaying rate eta_t = lr / (1 + lambd lr t)^alpha and
the running average ax of the iterates from step t0 on, PyTorch's rule, defaults and state
(step, eta, mu, ax); one fused native step per param group."""
from __future__ import annotations

from typing import Any, Callable, Optional

from fastdl import _C
from fastdl.optim.optimizer import Optimizer, ParamsT, _check, _scalar


class ASGD(Optimizer):
    def __init__(self, params: ParamsT, lr: float = 1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0,
                 foreach=None, maximize=False, differentiable=False, capturable=False) -> None:
        _check(0.0 <= lr, f"Invalid learning rate: {lr}")
        _check(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        super().__init__(params, dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay,
                                      foreach=foreach, maximize=maximize, differentiable=differentiable,
                                      capturable=capturable))

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        loss = self._closure(closure)
        for g in self.param_groups:
            lr, lambd, alpha, t0 = g["lr"], g["lambd"], g["alpha"], g["t0"]
            ps, gs, axs, etas, mus, states = [], [], [], [], [], []
            for p, gr, s in self._active(g):
                if "eta" not in s:
                    s["eta"], s["mu"] = _scalar(lr), 1.0
                ps.append(p)
                gs.append(gr)
                axs.append(self._buffer(s, "ax", p))
                etas.append(s["eta"])
                mus.append(s["mu"])
                states.append(s)
            if ps:
                _C.asgd_step(ps, gs, axs, etas, mus, lambd, g["weight_decay"], g["maximize"])
            for s in states:  # the rate and averaging weight of the next step
                t = s["step"]
                s["eta"] = _scalar(lr / ((1 + lambd * lr * t) ** alpha))
                s["mu"] = _scalar(1 / max(1, t - t0))
        return loss
