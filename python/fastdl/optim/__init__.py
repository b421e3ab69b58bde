"""fastdl.optim: optimizers with PyTorch's update rules and defaults."""
from fastdl.optim.optimizer import Optimizer  # noqa: F401
from fastdl.optim.sgd import SGD  # noqa: F401
from fastdl.optim.adam import Adam, AdamW  # noqa: F401
