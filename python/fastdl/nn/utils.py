"""nn.utils: gradient clipping and parameter vector helpers."""
import math

from fastdl import _C, no_grad


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """The norm of all tensors viewed as one vector (0-d, in the first tensor's dtype)."""
    from fastdl._C import Tensor
    tensors = [tensors] if isinstance(tensors, Tensor) else [t for t in tensors if t is not None]
    if not tensors:
        return _C.full((), 0.0, _C.dtype.float32)
    norm_type = float(norm_type)  # 'inf' accepted, as PyTorch
    dt = tensors[0].dtype
    with no_grad():
        if math.isinf(norm_type):
            total = _C.stack([t.abs().max().to(dt) for t in tensors]).max()
        elif norm_type == 2.0 and all(t.dtype in (_C.dtype.float32, _C.dtype.float64) for t in tensors):
            # sum of squares as one dot product per tensor (abs and pow cost ~100x more)
            total = _C.stack([(lambda f: f @ f)(t.reshape(-1)).to(dt) for t in tensors]).sum().sqrt()
        else:
            total = _C.stack([(t.abs() ** norm_type).sum().to(dt) for t in tensors]).sum() ** (1.0 / norm_type)
    if error_if_nonfinite and not bool(total.isfinite()):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it "
                           "cannot be clipped. To disable this error and scale the gradients by the non-finite norm "
                           "anyway, set `error_if_nonfinite=False`")
    return total


def clip_grads_with_norm_(parameters, max_norm, total_norm, foreach=None):
    """Scale gradients by min(1, max_norm / (total_norm + 1e-6)) in place."""
    from fastdl._C import Tensor
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    with no_grad():
        coef = (float(max_norm) / (total_norm + 1e-6)).clamp(max=1.0)
        if coef.device.type == "cpu" and float(coef.item()) == 1.0:
            return  # scaling by exactly 1 changes nothing (on the CPU reading coef costs no sync)
        for g in grads:
            g.mul_(coef.to(g.dtype))


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale gradients in place so their global norm is at most max_norm; returns the norm."""
    from fastdl._C import Tensor
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    total = get_total_norm([p.grad for p in params if p.grad is not None], norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(params, max_norm, total, foreach)
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


# nn.utils.rnn (PackedSequence, pack_padded_sequence, ...), importable as fastdl.nn.utils.rnn too
from fastdl.nn import _rnn_utils as rnn  # noqa: E402
import sys as _sys  # noqa: E402
_sys.modules[__name__ + ".rnn"] = rnn

# nn.utils.parametrize and nn.utils.parametrizations, importable as submodules too; the older
# hook-based weight_norm / spectral_norm
from fastdl.nn import _parametrize as parametrize  # noqa: E402
from fastdl.nn import _parametrizations as parametrizations  # noqa: E402
from fastdl.nn._norm_hooks import remove_spectral_norm, remove_weight_norm, spectral_norm, weight_norm  # noqa: E402,F401
_sys.modules[__name__ + ".parametrize"] = parametrize
_sys.modules[__name__ + ".parametrizations"] = parametrizations
from fastdl.nn import _fusion as fusion  # noqa: E402
from fastdl.nn._fusion import (fuse_conv_bn_eval, fuse_conv_bn_weights, fuse_linear_bn_eval,  # noqa: E402,F401
                               fuse_linear_bn_weights)
_sys.modules[__name__ + ".fusion"] = fusion
from fastdl.nn import _prune as prune  # noqa: E402
_sys.modules[__name__ + ".prune"] = prune
from fastdl.nn import _stateless as stateless  # noqa: E402
_sys.modules[__name__ + ".stateless"] = stateless


def skip_init(module_cls, *args, **kwargs):
    """module_cls(*args, **kwargs) whose parameters and buffers are to be overwritten by the caller
    (PyTorch skips their initialisation; here they are initialised, which is one valid state of
    "uninitialised" values)."""
    if "device" not in __import__("inspect").signature(module_cls).parameters:
        raise RuntimeError("skip_init: the module must accept a 'device' argument")
    return module_cls(*args, **kwargs)
