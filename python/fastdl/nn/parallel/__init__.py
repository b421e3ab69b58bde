"""fastdl.nn.parallel: DistributedDataParallel (data parallelism over fastdl.distributed) and DataParallel."""
from fastdl.nn.parallel.data_parallel import DataParallel, data_parallel  # noqa: F401
from fastdl.nn.parallel.distributed import DistributedDataParallel  # noqa: F401
