"""nn.utils.fusion: fold an eval-mode BatchNorm into the convolution or linear layer before it.

BatchNorm in eval computes y = (x - mean) / sqrt(var + eps) * gamma + beta, an affine map per
channel; after a conv or linear layer z = W x + b it composes into one layer with
W' = W * s (per output channel) and b' = (b - mean) * s + beta, s = gamma / sqrt(var + eps).
For a transposed convolution the output channels are W's dim 1."""
import copy

from fastdl import no_grad


def _eval_only(a, b, op):
    if a.training or b.training:
        raise AssertionError(f"{op}: fusion only for eval (call .eval() on both modules first)")


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b, transpose=False):
    """The fused (weight, bias) as Parameters."""
    from fastdl.nn.parameter import Parameter
    from fastdl._tensor import ones_like, zeros_like
    with no_grad():
        conv_b = zeros_like(bn_rm) if conv_b is None else conv_b
        bn_w = ones_like(bn_rm) if bn_w is None else bn_w
        bn_b = zeros_like(bn_rm) if bn_b is None else bn_b
        scale = bn_w * (bn_rv + bn_eps).rsqrt()
        shape = [1] * conv_w.ndim
        shape[1 if transpose else 0] = -1
        w = (conv_w * scale.reshape(shape).to(conv_w.dtype))
        b = ((conv_b - bn_rm) * scale + bn_b).to(conv_b.dtype)
    return Parameter(w, conv_w.requires_grad), Parameter(b, conv_b.requires_grad)


def fuse_conv_bn_eval(conv, bn, transpose=False):
    """A copy of conv with bn folded in (both in eval mode)."""
    _eval_only(conv, bn, "fuse_conv_bn_eval")
    fused = copy.deepcopy(conv)
    if bn.running_mean is None or bn.running_var is None:
        raise AssertionError("fuse_conv_bn_eval: the BatchNorm must track running statistics")
    fused.weight, fused.bias = fuse_conv_bn_weights(fused.weight, fused.bias, bn.running_mean, bn.running_var,
                                                    bn.eps, bn.weight, bn.bias, transpose)
    return fused


def fuse_linear_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b):
    """The fused (weight, bias) as Parameters."""
    from fastdl.nn.parameter import Parameter
    from fastdl._tensor import ones_like, zeros_like
    with no_grad():
        linear_b = zeros_like(bn_rm) if linear_b is None else linear_b
        bn_w = ones_like(bn_rm) if bn_w is None else bn_w
        bn_b = zeros_like(bn_rm) if bn_b is None else bn_b
        scale = bn_w * (bn_rv + bn_eps).rsqrt()
        w = linear_w * scale.unsqueeze(-1)
        b = (linear_b - bn_rm) * scale + bn_b
    return Parameter(w, linear_w.requires_grad), Parameter(b, linear_b.requires_grad)


def fuse_linear_bn_eval(linear, bn):
    """A copy of linear with bn (over linear's outputs) folded in (both in eval mode)."""
    _eval_only(linear, bn, "fuse_linear_bn_eval")
    if linear.out_features != bn.num_features:
        raise AssertionError(f"fuse_linear_bn_eval: linear.out_features ({linear.out_features}) must equal "
                             f"bn.num_features ({bn.num_features})")
    if bn.running_mean is None or bn.running_var is None:
        raise AssertionError("fuse_linear_bn_eval: the BatchNorm must track running statistics")
    fused = copy.deepcopy(linear)
    fused.weight, fused.bias = fuse_linear_bn_weights(fused.weight, fused.bias, bn.running_mean, bn.running_var,
                                                      bn.eps, bn.weight, bn.bias)
    return fused


