"""fastdl.mps: torch.mps's queries (fastdl has no Metal backend)."""


def is_available():
    return False


def device_count():
    return 0


__all__ = ["is_available", "device_count"]
