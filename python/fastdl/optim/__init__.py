"""fastdl.optim: optimizers with PyTorch's update rules and defaults, each step one fused
native kernel per param group (Adafactor, Muon and LBFGS are composed from tensor ops);
fastdl.optim.lr_scheduler for learning-rate schedules."""
from fastdl.optim.optimizer import Optimizer  # noqa: F401
from fastdl.optim.sgd import SGD  # noqa: F401
from fastdl.optim.adam import Adam  # noqa: F401
from fastdl.optim.adamw import AdamW  # noqa: F401
from fastdl.optim.adagrad import Adagrad  # noqa: F401
from fastdl.optim.rmsprop import RMSprop  # noqa: F401
from fastdl.optim.lamb import LAMB, Lamb  # noqa: F401
from fastdl.optim.nadam import NAdam  # noqa: F401
from fastdl.optim.radam import RAdam  # noqa: F401
from fastdl.optim.adamax import Adamax  # noqa: F401
from fastdl.optim.adadelta import Adadelta  # noqa: F401
from fastdl.optim.rprop import Rprop  # noqa: F401
from fastdl.optim.asgd import ASGD  # noqa: F401
from fastdl.optim.lbfgs import LBFGS  # noqa: F401
from fastdl.optim import lr_scheduler  # noqa: F401
from fastdl.optim import swa_utils  # noqa: F401
from fastdl.optim.adafactor import Adafactor  # noqa: F401
from fastdl.optim.muon import Muon  # noqa: F401
