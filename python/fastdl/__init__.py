"""fastdl: a deep-learning library with a native tensor engine."""
from fastdl._C import Tensor  # noqa: F401
