"""Adafactor (Shazeer & Stern 2018) with PyTorch's rule, defaults and state: the second moment of a
matrix (or of a stack of matrices: the last two dims) is kept factored as its row and column means
(row_var, col_var), of a vector in full (variance); the step size is relative to the parameter's RMS
(at least eps2), the update's RMS is clipped at d, and beta2 decays as 1 - t^beta2_decay.
Composed from tensor ops (no fused kernel): its state is O(rows + cols) per matrix."""
from __future__ import annotations

import math
from typing import Any, Callable, Optional

from fastdl import _C
from fastdl.optim.optimizer import Optimizer, ParamsT, _check

_EPS = {_C.dtype.float32: 2.0 ** -23, _C.dtype.float64: 2.0 ** -52, _C.dtype.float16: 2.0 ** -10,
        _C.dtype.bfloat16: 2.0 ** -7}


class Adafactor(Optimizer):
    _state_like_params = False  # row_var / col_var are the factored shapes
    def __init__(self, params: ParamsT, lr: float = 1e-2, beta2_decay: float = -0.8, eps=(None, 1e-3), d: float = 1.0,
                 weight_decay: float = 0.0, *, foreach=None, maximize=False) -> None:
        _check(0.0 <= lr, f"Learning rate should be >= 0 but is: {lr}")
        _check(beta2_decay <= 0.0, f"beta2_decay should be <= 0 but is: {beta2_decay}")
        _check(eps[0] is None or 0.0 <= eps[0], f"epsilon1 should be >= 0 but is: {eps[0]}")
        _check(0.0 <= eps[1], f"epsilon2 should be >= 0 but is: {eps[1]}")
        _check(1.0 <= d, f"Clipping threshold d should be >= 1 but is: {d}")
        _check(0.0 <= weight_decay, f"weight_decay should be >= 0 but is: {weight_decay}")
        super().__init__(params, dict(lr=lr, beta2_decay=beta2_decay, eps=tuple(eps), d=d, weight_decay=weight_decay,
                                      foreach=foreach, maximize=maximize))

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        loss = self._closure(closure)
        from fastdl import no_grad
        with no_grad():
            for g in self.param_groups:
                lr, wd, d = g["lr"], g["weight_decay"], g["d"]
                eps1_given, eps2 = g["eps"]
                for p, grad, s in self._active(g):
                    grad = -grad if g["maximize"] else grad
                    eps1 = _EPS.get(p.dtype, 2.0 ** -23) if eps1_given is None else eps1_given
                    t = float(s["step"])
                    one_minus_beta2 = t ** g["beta2_decay"]
                    rho = min(lr, 1.0 / math.sqrt(t))
                    alpha = max(eps2, p.norm().item() / math.sqrt(max(p.numel(), 1))) * rho
                    if wd != 0:
                        p.mul_(1 - lr * wd)
                    sq = grad * grad
                    if grad.ndim > 1:
                        row = s.get("row_var")
                        if row is None:
                            row = s["row_var"] = _C.full(tuple(grad.shape[:-1]) + (1,), 0.0, grad.dtype, grad.device)
                            s["col_var"] = _C.full(tuple(grad.shape[:-2]) + (1, grad.shape[-1]), 0.0, grad.dtype,
                                                   grad.device)
                        col = s["col_var"]
                        row.lerp_(sq.mean(-1, keepdim=True), one_minus_beta2)
                        col.lerp_(sq.mean(-2, keepdim=True), one_minus_beta2)
                        var = (row @ col) / row.mean(-2, keepdim=True).clamp(min=eps1)
                    else:
                        var = self._buffer(s, "variance", p)
                        var.lerp_(sq, one_minus_beta2)
                    update = var.clamp(min=eps1 * eps1).rsqrt() * grad
                    denom = max(1.0, update.norm().item() / (math.sqrt(max(update.numel(), 1)) * d))
                    p.add_(update, alpha=-alpha / denom)
        return loss
