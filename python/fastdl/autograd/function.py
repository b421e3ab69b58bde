"""torch.autograd.function's names: Function, FunctionCtx and once_differentiable."""
from fastdl.autograd import Function, FunctionCtx, once_differentiable

__all__ = ["Function", "FunctionCtx", "once_differentiable"]
