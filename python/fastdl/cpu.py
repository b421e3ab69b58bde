"""fastdl.cpu: torch.cpu's names (the CPU is always there; fastdl's CPU work is synchronous)."""


def is_available():
    return True


def device_count():
    return 1


def current_device():
    return "cpu"


def synchronize(device=None):
    """Nothing to wait for: CPU ops have finished when they return."""


from fastdl.amp import _device_amp  # noqa: E402

amp = _device_amp("cpu")  # torch.cpu.amp: the "cpu" forms of fastdl.amp
