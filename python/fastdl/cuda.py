"""fastdl.cuda: device queries. Without a GPU (or a CUDA build) is_available() is False."""
from fastdl import _C


def is_available():
    return bool(_C.cuda_is_available())


def device_count():
    return int(_C.cuda_device_count())


def synchronize(device=0):
    if is_available():
        _C.cuda_synchronize(device if isinstance(device, int) else (device.index or 0))


def empty_cache():
    if is_available():
        _C.cuda_empty_cache()
