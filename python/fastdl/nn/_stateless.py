"""nn.utils.stateless (PyTorch's older home of functional_call): the module called with the given
parameters and buffers in place of its own (fastdl.func.functional_call)."""


def functional_call(module, parameters_and_buffers, args=None, kwargs=None, *, tie_weights=True, strict=False):
    from fastdl.func import functional_call as call
    return call(module, parameters_and_buffers, args, kwargs, tie_weights=tie_weights, strict=strict)


__all__ = ["functional_call"]
