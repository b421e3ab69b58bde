"""F.ctc_loss and nn.CTCLoss: Connectionist Temporal Classification (Graves et al. 2006) with
PyTorch's arguments and gradient.

The forward (alpha) and backward (beta) variables run in log space over the extended label
sequence (blank, l1, blank, l2, ..., blank), batched over samples and label positions, one step
per time frame, without autograd. The loss is -log p(target | input); its gradient with respect
to log_probs is PyTorch's: exp(log_probs) - (the posterior occupancy of each class at t) for
t < input_length, 0 beyond (that is the true gradient plus exp(log_probs), which vanishes after a
log_softmax, the usual producer of log_probs); zero_infinity zeroes infinite losses and their
gradients. The gradient is attached as a zero-valued term, so reductions compose by autograd."""
import numpy as np

from fastdl import _C
from fastdl.autograd import Function, once_differentiable
from fastdl.nn.modules.loss import _Loss

_NEG_INF = float("-inf")


def _dev(a, like):
    """A host (numpy) table as a tensor on like's device."""
    return _C.from_numpy(np.ascontiguousarray(a)).to(like.device)


def _lengths(v, n, name, op):
    if isinstance(v, _C.Tensor):
        a = np.asarray(v.detach().numpy()).astype(np.int64).reshape(-1)
    else:
        a = np.asarray(list(v) if isinstance(v, (tuple, list)) else [v], dtype=np.int64).reshape(-1)
    if a.size != n:
        raise ValueError(f"{op}: {name} must have {n} entries (one per batch element); got {a.size}")
    return a


def _lse(*terms):
    """Elementwise log(sum(exp(terms))), -inf where every term is -inf."""
    m = terms[0]
    for t in terms[1:]:
        m = _C.maximum(m, t)
    finite = m != _NEG_INF
    safe = _C.where(finite, m, 0.0)
    s = None
    for t in terms:
        e = _C.exp(t - safe)
        s = e if s is None else s + e
    return _C.where(finite, safe + _C.log(s), _NEG_INF)


def _shift(x, k):
    """x[:, s - k] along dim 1 (-inf where s < k)."""
    N, S = x.shape
    if k >= S:
        return _C.full((N, S), _NEG_INF, x.dtype, x.device)
    return _C.cat([_C.full((N, k), _NEG_INF, x.dtype, x.device), x[:, :S - k]], 1)


def _unshift(x, k):
    """x[:, s + k] along dim 1 (-inf where s + k >= S)."""
    N, S = x.shape
    if k >= S:
        return _C.full((N, S), _NEG_INF, x.dtype, x.device)
    return _C.cat([x[:, k:], _C.full((N, k), _NEG_INF, x.dtype, x.device)], 1)


def _ctc_nll_and_grad(lp, targets, in_len, tg_len, blank, zero_infinity):
    """lp (T, N, C) detached -> (nll (N,), gradient (T, N, C)) by PyTorch's formulas."""
    T, N, C = lp.shape
    L = int(tg_len.max()) if tg_len.size else 0
    S = 2 * L + 1
    ext = np.full((N, S), blank, dtype=np.int64)
    ext[:, 1::2] = targets[:, :L]
    s_idx = np.arange(S)
    inside = s_idx[None, :] < (2 * tg_len[:, None] + 1)  # positions of each sample's own extended labels
    skip = np.zeros((N, S), dtype=bool)  # s may come from s - 2: a label differing from the one before it
    skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    skip_t, inside_t = _dev(skip, lp), _dev(inside, lp)
    lpn = lp.permute(1, 0, 2)  # (N, T, C)
    lpe = _C.gather(lpn, 2, _dev(ext, lp).unsqueeze(1).expand(N, T, S))  # (N, T, S)
    lpe = _C.where(inside_t.unsqueeze(1), lpe, _NEG_INF)
    # alpha
    start = np.zeros((N, S), dtype=bool)
    start[:, 0] = True
    start[:, 1] = tg_len > 0 if S > 1 else False
    alphas = [_C.where(_dev(start, lp), lpe[:, 0], _NEG_INF)]
    for t in range(1, T):
        a = alphas[-1]
        prev = _lse(a, _shift(a, 1), _C.where(skip_t, _shift(a, 2), _NEG_INF))
        alphas.append(lpe[:, t] + prev)
    alpha = _C.stack(alphas, 1)  # (N, T, S)
    # log-likelihood from the last frame of each sample: the last label or the final blank
    last = np.clip(in_len - 1, 0, max(T - 1, 0))
    a_last = _C.index_select(alpha.reshape(N * T, S), 0, _dev(np.arange(N) * T + last, lp))  # (N, S)
    end = np.zeros((N, S), dtype=bool)
    end[np.arange(N), 2 * tg_len] = True
    has_label = tg_len > 0
    end[np.arange(N)[has_label], 2 * tg_len[has_label] - 1] = True
    ll_terms = _C.where(_dev(end, lp), a_last, _NEG_INF)
    m = ll_terms.max(1)[0]
    finite_m = m != _NEG_INF
    safe_m = _C.where(finite_m, m, 0.0)
    ll = _C.where(finite_m, safe_m + _C.log(_C.exp(ll_terms - safe_m.unsqueeze(1)).sum(1)), _NEG_INF)
    if T == 0 or (in_len == 0).any():
        ll = _C.where(_dev(in_len == 0, lp), _C.where(_dev(tg_len == 0, lp), 0.0, _NEG_INF), ll)
    nll = -ll
    # beta, from each sample's last frame back
    betas = [None] * T
    nxt_skip = np.zeros((N, S), dtype=bool)  # s + 2 may lead back to s
    nxt_skip[:, :-2] = skip[:, 2:]
    skip_next = _dev(nxt_skip, lp)
    b = _C.full((N, S), _NEG_INF, lp.dtype, lp.device)
    for t in range(T - 1, -1, -1):
        nxt = _lse(b, _unshift(b, 1), _C.where(skip_next, _unshift(b, 2), _NEG_INF))
        rec = lpe[:, t] + nxt
        init = _C.where(_dev(end, lp), lpe[:, t], _NEG_INF)
        at_end = _dev((in_len - 1 == t).reshape(-1, 1), lp)
        after = _dev((t > in_len - 1).reshape(-1, 1), lp)
        b = _C.where(at_end, init, _C.where(after, _NEG_INF, rec))
        betas[t] = b
    beta = _C.stack(betas, 1) if T else alpha
    # occupancy exp(alpha + beta - lp + ll), summed into classes: the gradient's second term
    log_occ = alpha + beta - lpe + nll.reshape(N, 1, 1)
    occ = _C.where(log_occ == _NEG_INF, 0.0, _C.exp(_C.where(log_occ == _NEG_INF, 0.0, log_occ)))
    occ = _C.where(log_occ != log_occ, 0.0, occ)  # NaN from inf - inf (impossible alignments)
    zeros = _C.full((N, T, C), 0.0, lp.dtype, lp.device)
    occ_c = zeros.scatter_add(2, _dev(ext, lp).unsqueeze(1).expand(N, T, S).contiguous(), occ.contiguous())
    grad = _C.exp(lpn) - occ_c  # (N, T, C)
    live = np.arange(T)[None, :] < in_len[:, None]
    grad = _C.where(_dev(live, lp).unsqueeze(2), grad, 0.0)
    inf = nll == float("inf")
    if zero_infinity:
        grad = _C.where(inf.reshape(N, 1, 1), 0.0, grad)
        nll = _C.where(inf, 0.0, nll)
    return nll, grad.permute(1, 0, 2)


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean", zero_infinity=False):
    """CTC loss of log_probs (T, N, C) (or unbatched (T, C)) against targets, padded (N, S_max) or
    concatenated (sum(target_lengths),); 'mean' divides each loss by its target length first."""
    op = "ctc_loss"
    if log_probs.ndim not in (2, 3) or not log_probs.dtype.is_floating_point:
        raise ValueError(f"{op}: log_probs must be a floating (T, N, C) or (T, C) tensor; got "
                         f"{log_probs.dtype} of shape {tuple(log_probs.shape)}")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none'; got '{reduction}'")
    unbatched = log_probs.ndim == 2
    lp = log_probs.unsqueeze(1) if unbatched else log_probs
    T, N, C = lp.shape
    if not 0 <= blank < C:
        raise ValueError(f"{op}: blank must be in [0, {C}); got {blank}")
    in_len = _lengths(input_lengths, N, "input_lengths", op)
    tg_len = _lengths(target_lengths, N, "target_lengths", op)
    if (in_len < 0).any() or (in_len > T).any():
        raise ValueError(f"{op}: input_lengths must lie in [0, {T}]; got {in_len.tolist()}")
    if (tg_len < 0).any():
        raise ValueError(f"{op}: target_lengths must be non-negative; got {tg_len.tolist()}")
    tg = np.asarray(targets.detach().numpy()).astype(np.int64)
    if unbatched:
        tg = tg.reshape(1, -1)
    if tg.ndim == 1:  # concatenated targets
        if tg.size < tg_len.sum():
            raise ValueError(f"{op}: concatenated targets hold {tg.size} labels, fewer than sum(target_lengths) = "
                             f"{int(tg_len.sum())}")
        padded = np.full((N, max(int(tg_len.max()) if N else 0, 1)), blank, dtype=np.int64)
        off = np.concatenate([[0], np.cumsum(tg_len)])
        for n in range(N):
            padded[n, :tg_len[n]] = tg[off[n]:off[n + 1]]
        tg = padded
    elif tg.shape[0] != N or (N and tg.shape[1] < tg_len.max()):
        raise ValueError(f"{op}: targets of shape {tuple(targets.shape)} do not hold target_lengths "
                         f"{tg_len.tolist()} for batch size {N}")
    if N and tg_len.max() > 0:
        used = np.concatenate([tg[n, :tg_len[n]] for n in range(N)])
        if ((used < 0) | (used >= C) | (used == blank)).any():
            raise ValueError(f"{op}: target labels must lie in [0, {C}) and differ from blank={blank}")
    from fastdl import no_grad
    with no_grad():
        nll, grad = _ctc_nll_and_grad(lp.detach(), tg, in_len, tg_len, int(blank), bool(zero_infinity))
    loss = _CtcNll.apply(lp, nll.to(lp.dtype), grad) if lp.requires_grad else nll.to(lp.dtype)
    if unbatched:
        loss = loss.squeeze(0)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    div = _dev(np.maximum(tg_len, 1).astype(np.float64), lp).to(loss.dtype)
    return (loss / (div.squeeze(0) if unbatched else div)).mean()


class _CtcNll(Function):
    """The per-sample losses, with PyTorch's gradient (computed in the forward pass) applied in
    backward. Like PyTorch's, it has no second derivative: one raises instead of reading 0."""

    @staticmethod
    def forward(ctx, lp, nll, grad):
        ctx.save_for_backward(grad)
        return nll

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        (grad,) = ctx.saved_tensors
        return grad * g.reshape(1, -1, 1), None, None


class CTCLoss(_Loss):
    def __init__(self, blank=0, reduction="mean", zero_infinity=False):
        super().__init__(reduction=reduction)
        self.blank, self.zero_infinity = blank, zero_infinity

    def forward(self, log_probs, targets, input_lengths, target_lengths):
        return ctc_loss(log_probs, targets, input_lengths, target_lengths, self.blank, self.reduction,
                        self.zero_infinity)
