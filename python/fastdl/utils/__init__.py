"""fastdl.utils: torch.utils's names. fastdl.utils.data is fastdl.data; fastdl.utils.checkpoint
is activation checkpointing."""
import sys

from fastdl import data
from fastdl.utils import checkpoint  # noqa: F401

sys.modules[__name__ + ".data"] = data
