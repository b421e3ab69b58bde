"""L-BFGS (Nocedal 1980; Liu & Nocedal 1989) with PyTorch's options, defaults and state: a
closure-driven method over the flattened parameter vector, so it is written with fastdl tensor
ops (each a native kernel over the whole vector) rather than a per-element kernel. Optional
strong-Wolfe line search: bracketing, then zoom with safeguarded cubic interpolation
(Nocedal & Wright, Numerical Optimization, algorithms 3.5 and 3.6, as in minFunc).
Dot products, step lengths and curvature scalars stay 0-d tensors of the parameters' dtype, as
in PyTorch, so float32 runs take the same decisions PyTorch's do."""
from __future__ import annotations

import math
from typing import Any, Callable, Optional

import fastdl as fd
from fastdl._C import Tensor
from fastdl.optim.optimizer import Optimizer, ParamsT, _check


def _cubic_min(x1, f1, g1, x2, f2, g2, bounds=None):
    """Minimiser of the cubic through (x1, f1, slope g1) and (x2, f2, slope g2), clamped to
    `bounds` (default: the interval between x1 and x2); the bounds' midpoint when the cubic has
    no real minimiser."""
    lo, hi = bounds if bounds is not None else ((x1, x2) if x1 <= x2 else (x2, x1))
    a = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    disc = a * a - g1 * g2
    if disc < 0:
        return (lo + hi) / 2.0
    b = disc.sqrt() if isinstance(disc, Tensor) else math.sqrt(disc)
    if x1 <= x2:
        x = x2 - (x2 - x1) * ((g2 + b - a) / (g2 - g1 + 2 * b))
    else:
        x = x1 - (x1 - x2) * ((g1 + b - a) / (g1 - g2 + 2 * b))
    return min(max(x, lo), hi)


def _strong_wolfe(evaluate, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    """A step t along d meeting the strong Wolfe conditions f(t) <= f + c1 t gtd and
    |g(t).d| <= -c2 gtd. evaluate(t) returns (loss, flat grad) at x + t d.
    Returns (loss, flat grad, t, evaluations)."""
    d_norm = d.abs().max()
    f_new, g_new = evaluate(t)
    evals, it = 1, 0
    gtd_new = g_new.dot(d)
    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done = False
    # phase 1: grow t until [t_prev, t] brackets an acceptable step (or t is one)
    while it < max_ls:
        sufficient = f_new <= f + c1 * t * gtd and not (it > 1 and f_new >= f_prev)
        if sufficient and abs(gtd_new) <= -c2 * gtd:
            br, br_f, br_g, br_gtd = [t], [f_new], [g_new], [gtd_new]
            done = True
            break
        if not sufficient or gtd_new >= 0:
            br, br_f, br_g, br_gtd = [t_prev, t], [f_prev, f_new], [g_prev, g_new], [gtd_prev, gtd_new]
            break
        nxt = _cubic_min(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(t + 0.01 * (t - t_prev), t * 10))
        t_prev, f_prev, g_prev, gtd_prev = t, f_new, g_new, gtd_new
        t = nxt
        f_new, g_new = evaluate(t)
        evals += 1
        gtd_new = g_new.dot(d)
        it += 1
    if it == max_ls:
        br, br_f, br_g, br_gtd = [0.0, t], [f, f_new], [g, g_new], [gtd, gtd_new]
    # phase 2 (zoom): shrink the bracket, keeping br[lo] the lower of its two ends
    stalled = False
    lo, hi = (0, 1) if br_f[0] <= br_f[-1] else (1, 0)
    while not done and it < max_ls:
        if abs(br[1] - br[0]) * d_norm < tolerance_change:
            break
        t = _cubic_min(br[0], br_f[0], br_gtd[0], br[1], br_f[1], br_gtd[1])
        bmin, bmax = min(br), max(br)
        margin = 0.1 * (bmax - bmin)
        if min(bmax - t, t - bmin) < margin:  # too close to an end: move inside unless just done
            if stalled or t >= bmax or t <= bmin:
                t = bmax - margin if abs(t - bmax) < abs(t - bmin) else bmin + margin
                stalled = False
            else:
                stalled = True
        else:
            stalled = False
        f_new, g_new = evaluate(t)
        evals += 1
        gtd_new = g_new.dot(d)
        it += 1
        if f_new > f + c1 * t * gtd or f_new >= br_f[lo]:
            br[hi], br_f[hi], br_g[hi], br_gtd[hi] = t, f_new, g_new, gtd_new
            lo, hi = (0, 1) if br_f[0] <= br_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (br[hi] - br[lo]) >= 0:
                br[hi], br_f[hi], br_g[hi], br_gtd[hi] = br[lo], br_f[lo], br_g[lo], br_gtd[lo]
            br[lo], br_f[lo], br_g[lo], br_gtd[lo] = t, f_new, g_new, gtd_new
    return br_f[lo], br_g[lo], br[lo], evals


class LBFGS(Optimizer):
    _state_like_params = False  # its state holds flat vectors over all parameters

    def __init__(self, params: ParamsT, lr: float = 1, max_iter: int = 20, max_eval: Optional[int] = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: Optional[str] = None) -> None:
        _check(0.0 <= lr, f"Invalid learning rate: {lr}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        super().__init__(params, dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                                      tolerance_change=tolerance_change, history_size=history_size,
                                      line_search_fn=line_search_fn))
        _check(len(self.param_groups) == 1, "LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        for s in self.state.values():  # the history lists become this optimizer's own copies
            for k, v in s.items():
                if isinstance(v, list):
                    s[k] = [x.clone() if isinstance(x, Tensor) else x for x in v]

    # ---- the parameters as one flat vector
    def _flat_grad(self):
        parts = [fd.zeros(p.numel(), dtype=p.dtype, device=p.device) if p.grad is None else p.grad.reshape(-1)
                 for p in self._params]
        return fd.cat(parts)

    def _add(self, t, d):
        """p += t d over the flat vector d."""
        k = 0
        for p in self._params:
            n = p.numel()
            p.add_(d[k:k + n].view(p.shape), alpha=float(t))
            k += n

    def _evaluate(self, closure, x0, t, d):
        """(loss, flat grad) at x0 + t d; the parameters are restored to x0 afterwards."""
        self._add(t, d)
        with fd.enable_grad():
            loss = float(closure())
        g = self._flat_grad()
        for p, x in zip(self._params, x0):
            p.copy_(x)
        return loss, g

    def step(self, closure: Callable[[], Any]) -> Any:  # type: ignore[override]
        if closure is None:
            raise RuntimeError("LBFGS requires a closure that reevaluates the model and returns the loss")
        grp = self.param_groups[0]
        lr, max_iter, max_eval = grp["lr"], grp["max_iter"], grp["max_eval"]
        tol_grad, tol_change = grp["tolerance_grad"], grp["tolerance_change"]
        line_search, history = grp["line_search_fn"], grp["history_size"]
        if line_search not in (None, "strong_wolfe"):
            raise RuntimeError("only 'strong_wolfe' is supported")
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        with fd.enable_grad():
            orig_loss = closure()
        loss = float(orig_loss)
        evals = 1
        state["func_evals"] += 1
        with fd.no_grad():
            g = self._flat_grad()
            if g.abs().max() <= tol_grad:
                return orig_loss
            d, t = state.get("d"), state.get("t")
            old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
            h_diag, prev_g, prev_loss = state.get("H_diag"), state.get("prev_flat_grad"), state.get("prev_loss")
            n = 0
            while n < max_iter:
                n += 1
                state["n_iter"] += 1
                # direction: -H g with H the two-loop L-BFGS inverse-Hessian estimate
                if state["n_iter"] == 1:
                    d = -g
                    old_dirs, old_stps, ro, h_diag = [], [], [], 1.0
                else:
                    y = g - prev_g
                    s = d * t
                    ys = y.dot(s)
                    if ys > 1e-10:  # keep the pair only while curvature is positive
                        if len(old_dirs) == history:
                            old_dirs.pop(0)
                            old_stps.pop(0)
                            ro.pop(0)
                        old_dirs.append(y)
                        old_stps.append(s)
                        ro.append(1.0 / ys)
                        h_diag = ys / y.dot(y)
                    al = state.setdefault("al", [None] * history)
                    q = -g
                    for i in range(len(old_dirs) - 1, -1, -1):
                        al[i] = old_stps[i].dot(q) * ro[i]
                        q.add_(old_dirs[i], alpha=-float(al[i]))
                    d = r = q * h_diag
                    for i in range(len(old_dirs)):
                        be = old_dirs[i].dot(r) * ro[i]
                        r.add_(old_stps[i], alpha=float(al[i] - be))
                prev_g = g.clone()
                prev_loss = loss
                t = min(1.0, 1.0 / g.abs().sum()) * lr if state["n_iter"] == 1 else lr
                gtd = g.dot(d)
                if gtd > -tol_change:  # not a descent direction
                    break
                ls_evals = 0
                if line_search is not None:
                    x0 = [p.clone() for p in self._params]
                    # the search may spend what is left of max_eval
                    loss, g, t, ls_evals = _strong_wolfe(lambda a: self._evaluate(closure, x0, a, d), t, d, loss, g,
                                                         gtd, max_ls=max_eval - evals)
                    self._add(t, d)
                    opt_cond = bool(g.abs().max() <= tol_grad)
                else:
                    self._add(t, d)  # fixed step lr
                    opt_cond = False
                    if n != max_iter:
                        with fd.enable_grad():
                            loss = float(closure())
                        g = self._flat_grad()
                        opt_cond = bool(g.abs().max() <= tol_grad)
                        ls_evals = 1
                evals += ls_evals
                state["func_evals"] += ls_evals
                if n == max_iter or evals >= max_eval or opt_cond:
                    break
                if (d * t).abs().max() <= tol_change or abs(loss - prev_loss) < tol_change:
                    break
            state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=h_diag, prev_flat_grad=prev_g,
                         prev_loss=prev_loss)
        return orig_loss
