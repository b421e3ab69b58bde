"""linear_cross_entropy: cross_entropy(linear(input, W, b), target), whole (the reference path) or
chunked over the batch (LinearCrossEntropyOptions) so that the (N, C) logits never exist at once:
each chunk's logits, loss and gradients are computed in forward and only the input, weight and
bias gradients (the sizes of the operands) are kept for backward, which scales them by the
upstream gradient. Worth it when C is much larger than in_features (a language model's head)."""
import dataclasses
import math
import warnings

from fastdl import _C
from fastdl._C import Tensor


@dataclasses.dataclass(frozen=True)
class LinearCrossEntropyOptions:
    """How the chunked linear_cross_entropy splits the batch (PyTorch's fields):
    batch_chunk_size rows per chunk, or chunking_method "aspect_ratio" (a chunk's logits as large
    as the input: ceil(N / ceil(C / in_features)) rows rounded up to a power of two),
    "aspect_ratio:K" (that divided by K) or "auto" ("aspect_ratio:2"); None uses batch_chunk_size
    (one chunk when that is None too). acc_policy picks PyTorch's low-precision accumulation
    trade-offs; fastdl accumulates every chunk's gradients in the input's dtype, so all policies
    give its "accurate" results. allow_retain_graph keeps the gradient buffers for a second
    backward."""
    allow_retain_graph: bool = False
    batch_chunk_size: int = None
    chunking_method: str = "auto"
    acc_policy: str = "auto"
    acc_dtype: object = None

    def __post_init__(self):
        if self.batch_chunk_size is not None and (not isinstance(self.batch_chunk_size, int)
                                                  or self.batch_chunk_size < 1):
            raise ValueError(f"LinearCrossEntropyOptions: batch_chunk_size must be a positive int or None; got "
                             f"{self.batch_chunk_size!r}")
        if self.chunking_method is not None and self.batch_chunk_size is not None and self.chunking_method != "auto":
            raise ValueError("LinearCrossEntropyOptions: batch_chunk_size and chunking_method "
                             f"{self.chunking_method!r} disagree; set chunking_method=None to use batch_chunk_size")
        if self.chunking_method is not None:
            _aspect_divisor(self.chunking_method)
        if self.acc_policy not in ("accurate", "balanced", "compact", "auto"):
            raise ValueError(f"LinearCrossEntropyOptions: acc_policy must be 'accurate', 'balanced', 'compact' or "
                             f"'auto'; got {self.acc_policy!r}")


def _aspect_divisor(method):
    if method == "auto":
        return 2
    if method == "aspect_ratio":
        return 1
    if isinstance(method, str) and method.startswith("aspect_ratio:"):
        k = method.split(":", 1)[1]
        if k.isdigit() and int(k) >= 1:
            return int(k)
    raise ValueError(f"LinearCrossEntropyOptions: chunking_method must be 'auto', 'aspect_ratio', 'aspect_ratio:N' "
                     f"(N >= 1) or None; got {method!r}")


def _chunk_rows(options, n, num_classes, in_features):
    if options.chunking_method is None or (options.batch_chunk_size is not None and options.chunking_method == "auto"):
        return min(n, options.batch_chunk_size) if options.batch_chunk_size else n
    rows = math.ceil(n / max(1, math.ceil(num_classes / max(1, in_features))))
    rows = 1 << max(0, rows - 1).bit_length()  # next power of two
    return max(1, min(n, rows // _aspect_divisor(options.chunking_method)))


def _chunked(input, linear_weight, target, linear_bias, weight, reduction, ignore_index, label_smoothing, rows,
             retain):
    import fastdl as fd
    from fastdl.autograd import Function
    from fastdl.nn.functional import cross_entropy

    class _ChunkedLinearCrossEntropy(Function):
        @staticmethod
        def forward(ctx, x, w, b):
            n = x.shape[0]
            valid = target != ignore_index
            if reduction == "mean":  # PyTorch's mean divides by the summed class weights of the kept targets
                denom = (_C.index_select(weight, 0, _C.where(valid, target, 0)) * valid).sum() if weight is not None \
                    else valid.sum().to(x.dtype)
            dx = fd.empty_like(x) if ctx.needs_input_grad[0] else None
            dw = fd.zeros_like(w) if ctx.needs_input_grad[1] else None
            db = fd.zeros_like(b) if b is not None and ctx.needs_input_grad[2] else None
            need = dx is not None or dw is not None or db is not None
            total = None
            for r0 in range(0, n, rows):
                xc, tc = x[r0:r0 + rows], target[r0:r0 + rows]
                logits = _C.linear(xc, w, b).detach()
                if need:
                    logits.requires_grad_(True)
                with fd.set_grad_enabled(need):
                    loss = cross_entropy(logits, tc, weight=weight, ignore_index=ignore_index, reduction="sum",
                                         label_smoothing=label_smoothing)
                    if need:
                        loss.backward()
                g = logits.grad if need else None
                loss = loss.detach()
                total = loss if total is None else total + loss
                if dx is not None:
                    dx[r0:r0 + rows] = g @ w
                if dw is not None:
                    dw.add_(g.mT @ xc)
                if db is not None:
                    db.add_(g.sum(0))
            if total is None:
                total = fd.zeros((), dtype=x.dtype, device=x.device)
            if reduction == "mean":
                scale = 1.0 / denom  # all targets ignored: 0 / 0 = NaN, as PyTorch
                total = total * scale
                dx, dw, db = (None if t is None else t * scale for t in (dx, dw, db))
            ctx.grads, ctx.retain = [dx, dw, db], retain
            return total

        @staticmethod
        def backward(ctx, g):
            if ctx.grads is None:
                raise RuntimeError("linear_cross_entropy: the chunked path's gradients were consumed by the first "
                                   "backward; pass LinearCrossEntropyOptions(allow_retain_graph=True) to backward "
                                   "twice")
            out = tuple(None if t is None else t * g for t in ctx.grads)
            if not ctx.retain:
                ctx.grads = None
            return out

    return _ChunkedLinearCrossEntropy.apply(input, linear_weight, linear_bias)


def linear_cross_entropy(input, linear_weight, target, *, linear_bias=None, weight=None, reduction="mean",
                         ignore_index=None, label_smoothing=0.0, options=None):
    """cross_entropy(linear(input, linear_weight, linear_bias), target): input (in_features,) or
    (N, in_features), linear_weight (C, in_features) or (C, d1, ..., dK, in_features) for a
    K-dimensional loss (batched input only). ignore_index None means -100. With options (a
    LinearCrossEntropyOptions), class-index targets, a (C,) bias or none and a 'mean' or 'sum'
    reduction run chunked over the batch; other cases take the whole-logits path with a warning."""
    op = "linear_cross_entropy"
    if not isinstance(input, Tensor) or not isinstance(linear_weight, Tensor) or not isinstance(target, Tensor):
        raise TypeError(f"{op}: input, linear_weight and target must be Tensors")
    if linear_weight.ndim < 2 or input.ndim not in (1, 2) or input.shape[-1] != linear_weight.shape[-1]:
        raise ValueError(f"{op}: expected input (in_features,) or (N, in_features) and linear_weight (C, ..., "
                         f"in_features) with equal in_features; got input {tuple(input.shape)} and linear_weight "
                         f"{tuple(linear_weight.shape)}")
    out_features = tuple(linear_weight.shape[:-1])
    if ignore_index is not None and target.dtype.is_floating_point:
        raise ValueError(f"{op}: ignore_index cannot be specified when target contains probabilities (a float target "
                         f"of shape {tuple(target.shape)})")
    if len(out_features) > 1 and input.ndim != 2:
        raise ValueError(f"{op}: a multi-dimensional linear_weight {tuple(linear_weight.shape)} needs batched input "
                         f"(N, in_features); got {tuple(input.shape)}")
    if options is not None and not isinstance(options, LinearCrossEntropyOptions):
        raise TypeError(f"{op}: options must be a LinearCrossEntropyOptions or None; got {type(options).__name__}")
    ii = -100 if ignore_index is None else ignore_index
    if options is not None:
        chunkable = (input.ndim == 2 and len(out_features) == 1 and not target.dtype.is_floating_point
                     and tuple(target.shape) == (input.shape[0],) and reduction in ("mean", "sum")
                     and (linear_bias is None or tuple(linear_bias.shape) == out_features))
        if chunkable:
            rows = _chunk_rows(options, input.shape[0], out_features[0], input.shape[1])
            return _chunked(input, linear_weight, target, linear_bias, weight, reduction, ii, label_smoothing, rows,
                            options.allow_retain_graph)
        warnings.warn(f"{op}: the chunked path takes 2-d input, class-index targets, a (C,) bias and a 'mean' or "
                      f"'sum' reduction; computing the whole logits instead", stacklevel=2)
    from fastdl.nn.functional import cross_entropy, linear
    logits = linear(input, linear_weight.reshape(-1, linear_weight.shape[-1]))
    logits = logits.reshape(tuple(input.shape[:-1]) + out_features)
    if linear_bias is not None:
        logits = logits + linear_bias
    return cross_entropy(logits, target, weight=weight, reduction=reduction, ignore_index=ii,
                         label_smoothing=label_smoothing)
