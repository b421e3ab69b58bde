"""fastdl.nn.parallel: DistributedDataParallel (data parallelism over fastdl.distributed)."""
from fastdl.nn.parallel.distributed import DistributedDataParallel  # noqa: F401
