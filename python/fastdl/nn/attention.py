"""nn.attention: torch.nn.attention's backend selection for scaled_dot_product_attention.
fastdl has one fused kernel per device (flash-style, the same result as the math path), so
sdpa_kernel checks its arguments and lets every call through to it."""
import contextlib
import enum


class SDPBackend(enum.IntEnum):
    ERROR = -1
    MATH = 0
    FLASH_ATTENTION = 1
    EFFICIENT_ATTENTION = 2
    CUDNN_ATTENTION = 3
    OVERRIDEABLE = 4


@contextlib.contextmanager
def sdpa_kernel(backends, set_priority=False):
    backends = [backends] if isinstance(backends, SDPBackend) else list(backends)
    for b in backends:
        if not isinstance(b, SDPBackend):
            raise ValueError(f"sdpa_kernel: backends must be SDPBackend values; got {b!r}")
    if not backends:
        raise ValueError("sdpa_kernel: at least one backend is required")
    yield


__all__ = ["SDPBackend", "sdpa_kernel"]
