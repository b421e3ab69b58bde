"""F.bilinear and nn.Bilinear: y_o = x1^T W_o x2 + b_o over any leading dims, as one matmul
(x1 against W laid out (in1, out * in2)) and a product-sum with x2."""
import math

from fastdl import _C, _tensor
from fastdl.nn.modules.module import Module
from fastdl.nn.parameter import Parameter


def bilinear(input1, input2, weight, bias=None):
    """input1 (*, in1), input2 (*, in2), weight (out, in1, in2), bias (out,) -> (*, out)."""
    op = "bilinear"
    if weight.ndim != 3:
        raise ValueError(f"{op}: weight must be (out, in1, in2); got shape {tuple(weight.shape)}")
    out_f, in1, in2 = weight.shape
    if input1.ndim < 1 or input1.shape[-1] != in1 or input2.ndim < 1 or input2.shape[-1] != in2:
        raise ValueError(f"{op}: input1 (*, {in1}) and input2 (*, {in2}) must match weight {tuple(weight.shape)}; "
                         f"got shapes {tuple(input1.shape)} and {tuple(input2.shape)}")
    if tuple(input1.shape[:-1]) != tuple(input2.shape[:-1]):
        raise ValueError(f"{op}: input1 and input2 must have the same leading dims; got shapes "
                         f"{tuple(input1.shape)} and {tuple(input2.shape)}")
    if bias is not None and tuple(bias.shape) != (out_f,):
        raise ValueError(f"{op}: bias must be ({out_f},); got shape {tuple(bias.shape)}")
    lead = tuple(input1.shape[:-1])
    x1, x2 = input1.reshape(-1, in1), input2.reshape(-1, in2)
    t = x1 @ weight.permute(1, 0, 2).reshape(in1, out_f * in2)  # (M, out * in2)
    y = (t.reshape(-1, out_f, in2) * x2.unsqueeze(1)).sum(-1)
    if bias is not None:
        y = y + bias
    return y.reshape(*lead, out_f)


class Bilinear(Module):
    """nn.Bilinear(in1_features, in2_features, out_features, bias=True): weight and bias uniform in
    +-1/sqrt(in1_features), as PyTorch."""

    def __init__(self, in1_features, in2_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in1_features, self.in2_features, self.out_features = in1_features, in2_features, out_features
        self.weight = Parameter(_tensor.empty(out_features, in1_features, in2_features, dtype=dtype, device=device))
        self.bias = Parameter(_tensor.empty(out_features, dtype=dtype, device=device)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        from fastdl.nn import init
        bound = 1 / math.sqrt(self.weight.shape[1])
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1, input2):
        return bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self):
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")
