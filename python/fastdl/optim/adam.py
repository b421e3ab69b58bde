"""Adam (with amsgrad) and AdamW (decoupled weight decay, Loshchilov & Hutter 2019), with
PyTorch's update rules and defaults."""
import math

from fastdl import _C, no_grad
from fastdl.optim.optimizer import Optimizer


class Adam(Optimizer):
    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False):
        if lr < 0 or eps < 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1) or weight_decay < 0:
            raise ValueError(f"{type(self).__name__}: invalid hyperparameters lr={lr} betas={betas} eps={eps} "
                             f"weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize))

    @no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with __import__("fastdl").enable_grad():
                loss = closure()
        for g in self.param_groups:
            lr, (b1, b2), eps, wd, ams = g["lr"], g["betas"], g["eps"], g["weight_decay"], g["amsgrad"]
            for p in g["params"]:
                if p.grad is None:
                    continue
                grad = p.grad if not g["maximize"] else -p.grad
                s = self._state(p)
                if not s:
                    s["step"] = 0
                    s["exp_avg"] = _C.full(p.shape, 0.0, p.dtype, p.device)
                    s["exp_avg_sq"] = _C.full(p.shape, 0.0, p.dtype, p.device)
                    if ams:
                        s["max_exp_avg_sq"] = _C.full(p.shape, 0.0, p.dtype, p.device)
                s["step"] += 1
                t = s["step"]
                if wd:
                    if self._decoupled:
                        p.mul_(1 - lr * wd)
                    else:
                        grad = grad + p * wd
                m, v = s["exp_avg"], s["exp_avg_sq"]
                m.mul_(b1).add_(grad, alpha=1 - b1)
                v.mul_(b2).add_(grad * grad, alpha=1 - b2)
                bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
                if ams:
                    mx = s["max_exp_avg_sq"]
                    mx.copy_(_C.maximum(mx, v))
                    v = mx
                denom = (v.sqrt() / math.sqrt(bc2)).add_(eps)
                p.add_(m / denom, alpha=-lr / bc1)
        return loss


class AdamW(Adam):
    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)
