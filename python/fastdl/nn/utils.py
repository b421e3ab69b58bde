"""nn.utils: gradient clipping and parameter vector helpers."""
import math

from fastdl import _C, no_grad


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale gradients in place so their global norm is at most max_norm; returns the norm."""
    from fastdl._C import Tensor
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    norm_type, max_norm = float(norm_type), float(max_norm)  # 'inf' accepted, as PyTorch
    if not grads:
        return _C.full((), 0.0, _C.dtype.float32)
    with no_grad():
        if math.isinf(norm_type):
            total = _C.stack([g.abs().max().to(grads[0].dtype) for g in grads]).max()
        else:
            total = _C.stack([(g.abs() ** norm_type).sum().to(grads[0].dtype) for g in grads]).sum() ** (1.0 / norm_type)
        if error_if_nonfinite and not bool(total.isfinite()):
            raise RuntimeError(f"The total norm of order {norm_type} for gradients is non-finite, so it cannot be clipped")
        coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coef.to(g.dtype))
    return total


def clip_grad_value_(parameters, clip_value, foreach=None):
    from fastdl._C import Tensor
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    with no_grad():
        for p in params:
            if p.grad is not None:
                p.grad.copy_(p.grad.clamp(-clip_value, clip_value))


def parameters_to_vector(parameters):
    return _C.cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec, parameters):
    i = 0
    with no_grad():
        for p in parameters:
            n = p.numel()
            p.copy_(vec[i:i + n].reshape(*p.shape))
            i += n
