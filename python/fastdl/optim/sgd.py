"""SGD with momentum, dampening, Nesterov and weight decay (PyTorch's rule), one fused native
step per param group."""
from __future__ import annotations

from typing import Any, Callable, Optional

from fastdl import _C
from fastdl.optim.optimizer import Optimizer, ParamsT, _check


class SGD(Optimizer):
    def __init__(self, params: ParamsT, lr: float = 1e-3,
                 momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None) -> None:
        _check(lr >= 0.0, f"Invalid learning rate: {lr}")
        _check(momentum >= 0.0, f"Invalid momentum value: {momentum}")
        _check(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize, foreach=foreach,
                                      differentiable=differentiable, fused=fused))

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        loss = self._closure(closure)
        for g in self.param_groups:
            mom = g["momentum"]
            ps, gs, bufs, fresh = [], [], [], []
            for p in g["params"]:
                gr = p.grad
                if gr is None:
                    continue
                ps.append(p)
                gs.append(gr)
                if mom:
                    s = self.state[p]
                    buf = s.get("momentum_buffer")
                    fresh.append(buf is None)
                    bufs.append(self._buffer(s, "momentum_buffer", p))
            if ps:
                _C.sgd_step(ps, gs, bufs, fresh, g["lr"], mom, g["dampening"], g["weight_decay"], g["nesterov"],
                            g["maximize"])
        return loss
