"""fastdl.cpu: torch.cpu's names (the CPU is always there; fastdl's CPU work is synchronous)."""


def is_available():
    return True


def device_count():
    return 1


def current_device():
    return "cpu"


def synchronize(device=None):
    """Nothing to wait for: CPU ops have finished when they return."""


class amp:  # noqa: N801  (torch.cpu.amp: the "cpu" forms of fastdl.amp)
    @staticmethod
    def autocast(enabled=True, dtype=None, cache_enabled=True):
        from fastdl import _C
        from fastdl.amp import autocast
        return autocast("cpu", dtype if dtype is not None else _C.dtype.bfloat16, enabled, cache_enabled)

    @staticmethod
    def GradScaler(init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000,  # noqa: N802
                   enabled=True):
        from fastdl.amp import GradScaler
        return GradScaler("cpu", init_scale, growth_factor, backoff_factor, growth_interval, enabled)
