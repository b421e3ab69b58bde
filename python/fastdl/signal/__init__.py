"""torch.signal: window functions (fastdl.signal.windows)."""
from fastdl.signal import windows  # noqa: F401
