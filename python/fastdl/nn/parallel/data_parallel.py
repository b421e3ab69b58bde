"""DataParallel(module, device_ids=None, output_device=None, dim=0): torch's single-process data parallelism.

fastdl runs one device per process and already spreads each op over the CPU's cores, so the wrapper runs the
module as it is (torch does the same without CUDA devices); with device_ids of several GPUs, use
DistributedDataParallel over fastdl.distributed (one process per GPU, torch's own recommendation). It keeps
torch's surface: `.module`, state_dict keys prefixed "module.", and the dim / device arguments checked.
"""
from fastdl.nn.modules.module import Module

__all__ = ["DataParallel", "data_parallel"]


class DataParallel(Module):
    def __init__(self, module, device_ids=None, output_device=None, dim=0):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DataParallel: module must be a fastdl.nn.Module; got {type(module).__name__}")
        ids = list(device_ids) if device_ids is not None else []
        if len(ids) > 1:
            raise NotImplementedError(
                f"DataParallel over several devices ({ids}) runs one process per device in fastdl: use "
                "fastdl.nn.parallel.DistributedDataParallel with fastdl.distributed")
        self.module = module
        self.device_ids, self.output_device, self.dim = ids, output_device, dim

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)


def data_parallel(module, inputs, device_ids=None, output_device=None, dim=0, module_kwargs=None):
    """The functional form: module(*inputs, **module_kwargs) (inputs a tensor or a tuple)."""
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    return DataParallel(module, device_ids, output_device, dim)(*inputs, **(module_kwargs or {}))
