"""Muon (Jordan et al. 2024, "Muon: an optimizer for hidden layers") with PyTorch's rule, defaults
and state: SGD momentum (Nesterov by default) whose update matrix is orthogonalised by a few
quintic Newton-Schulz iterations in bfloat16 before the step, with the learning rate scaled by
the matrix's shape ("original": sqrt(max(1, rows / cols)); "match_rms_adamw": 0.2 sqrt(max(rows,
cols))). For 2-D parameters only (hidden layers; embeddings and heads go to another optimizer)."""
from __future__ import annotations

import math
from typing import Any, Callable, Optional

from fastdl import _C
from fastdl.optim.optimizer import Optimizer, ParamsT, _check

_COEFFS = (3.4445, -4.7750, 2.0315)


def _newton_schulz(g, coeffs, steps, eps):
    """The orthogonal factor of g's polar decomposition, approximately (in bfloat16)."""
    if steps >= 100:
        raise ValueError("Muon: the number of Newton-Schulz steps must be less than 100")
    if len(coeffs) != 3:
        raise ValueError(f"Muon: ns_coefficients must be 3 values; got {len(coeffs)}")
    a, b, c = coeffs
    x = g.to(_C.dtype.bfloat16)
    tall = g.shape[0] > g.shape[1]
    if tall:
        x = x.T
    x = x / x.norm().clamp(min=eps)
    for _ in range(steps):
        gram = x @ x.T
        x = _C.addmm(x, _C.addmm(gram, gram, gram, b, c), x, a, 1.0)
    return x.T if tall else x


def _adjust_lr(lr, fn, shape):
    rows, cols = shape[:2]
    if fn is None or fn == "original":
        return lr * math.sqrt(max(1.0, rows / cols))
    if fn == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(rows, cols))
    return lr


class Muon(Optimizer):
    def __init__(self, params: ParamsT, lr: float = 1e-3, weight_decay: float = 0.1, momentum: float = 0.95,
                 nesterov: bool = True, ns_coefficients=_COEFFS, eps: float = 1e-7, ns_steps: int = 5,
                 adjust_lr_fn: Optional[str] = None) -> None:
        _check(0.0 <= lr, f"Learning rate should be >= 0 but is: {lr}")
        _check(0.0 <= momentum, f"momentum should be >= 0 but is: {momentum}")
        _check(0.0 <= weight_decay, f"weight decay should be >= 0 but is: {weight_decay}")
        _check(adjust_lr_fn in (None, "original", "match_rms_adamw"),
               f"Adjust learning rate function {adjust_lr_fn} is not supported")
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
                                      ns_coefficients=tuple(ns_coefficients), eps=eps, ns_steps=ns_steps,
                                      adjust_lr_fn=adjust_lr_fn))
        for g in self.param_groups:
            for p in g["params"]:
                if p.ndim != 2:
                    raise ValueError(f"Muon only supports 2D parameters whereas we found a parameter with size: "
                                     f"{tuple(p.shape)}")

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        loss = self._closure(closure)
        from fastdl import no_grad
        with no_grad():
            for g in self.param_groups:
                mu, lr = g["momentum"], g["lr"]
                for p in g["params"]:
                    grad = p.grad
                    if grad is None:
                        continue
                    if grad.ndim != 2:
                        raise ValueError(f"Muon: the gradient must be a 2-D matrix; got shape {tuple(grad.shape)}")
                    s = self.state[p]
                    buf = self._buffer(s, "momentum_buffer", p)
                    buf.lerp_(grad, 1 - mu)
                    update = grad.lerp(buf, mu) if g["nesterov"] else buf
                    update = _newton_schulz(update, g["ns_coefficients"], g["ns_steps"], g["eps"])
                    p.mul_(1 - lr * g["weight_decay"])
                    p.add_(update.to(p.dtype), alpha=-_adjust_lr(lr, g["adjust_lr_fn"], tuple(p.shape)))
        return loss
