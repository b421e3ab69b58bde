"""fastdl.nn: modules, parameters, functional ops and initialisers, PyTorch-style."""
from fastdl.nn import functional, init  # noqa: F401
from fastdl.nn.parameter import Buffer, Parameter  # noqa: F401
from fastdl.nn.modules.module import Module  # noqa: F401
from fastdl.nn.modules.container import ModuleDict, ModuleList, Sequential  # noqa: F401
from fastdl.nn.modules.linear import Identity, Linear  # noqa: F401
from fastdl.nn.modules.activation import (  # noqa: F401
    ELU, GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, SiLU, Softmax, Softplus, Tanh,
)
from fastdl.nn.modules.dropout import Dropout  # noqa: F401
from fastdl.nn.modules.flatten import Flatten  # noqa: F401
from fastdl.nn.modules.loss import CrossEntropyLoss, MSELoss  # noqa: F401
from fastdl.nn import utils  # noqa: F401
