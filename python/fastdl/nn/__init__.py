"""fastdl.nn: modules, parameters, functional ops and initialisers, PyTorch-style."""
from fastdl.nn import functional, init  # noqa: F401
from fastdl.nn.parameter import Buffer, Parameter, UninitializedBuffer, UninitializedParameter  # noqa: F401
from fastdl.nn.modules.module import Module  # noqa: F401
from fastdl.nn.modules.container import (  # noqa: F401
    Container, ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential,
)
from fastdl.nn.modules.linear import Identity, Linear  # noqa: F401
from fastdl.nn.modules.activation import (  # noqa: F401
    CELU, ELU, GELU, GLU, SELU, Hardsigmoid, Hardswish, Hardtanh, LeakyReLU, LogSigmoid, LogSoftmax, Mish, ReLU, ReLU6,
    Sigmoid, SiLU, Softmax, Softmin, Softplus, Softsign, Tanh, Tanhshrink, Threshold, Hardshrink, Softshrink, PReLU,
    CosineSimilarity, PairwiseDistance,
)
from fastdl.nn.modules.dropout import Dropout, Dropout1d, Dropout2d, Dropout3d  # noqa: F401
from fastdl.nn.modules.flatten import Flatten, Unflatten  # noqa: F401
from fastdl.nn.modules.normalization import (  # noqa: F401
    BatchNorm1d, BatchNorm2d, BatchNorm3d, GroupNorm, LayerNorm, RMSNorm,
)
from fastdl.nn.modules.sparse import Embedding  # noqa: F401
from fastdl.nn.modules.pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, MaxPool2d  # noqa: F401
from fastdl.nn.modules.loss import (  # noqa: F401
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, InfoNCELoss, KLDivLoss, L1Loss, MSELoss, NLLLoss,
    SmoothL1Loss, MarginRankingLoss, HingeEmbeddingLoss, SoftMarginLoss, CosineEmbeddingLoss, TripletMarginLoss,
    MultiLabelSoftMarginLoss, PoissonNLLLoss, GaussianNLLLoss, NLLLoss2d, LinearCrossEntropyLoss,
)
from fastdl.nn._linear_cross_entropy import LinearCrossEntropyOptions  # noqa: F401
from fastdl.nn.lora import LoRALinear  # noqa: F401
from fastdl.nn._conv import Conv1d  # noqa: F401
from fastdl.nn.modules.conv import Conv2d, ConvTranspose2d  # noqa: F401
from fastdl.nn._interpolate import Upsample  # noqa: F401
from fastdl.nn.modules.mamba import Mamba  # noqa: F401
from fastdl.nn.modules.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase  # noqa: F401
from fastdl.nn.modules.transformer import (  # noqa: F401
    MultiheadAttention, RotaryEmbedding, Transformer, TransformerDecoder, TransformerDecoderLayer, TransformerEncoder,
    TransformerEncoderLayer, apply_rotary_emb,
)
from fastdl.nn.modules.graph import (  # noqa: F401
    GATConv, GCNConv, SAGEConv, add_self_loops, gcn_norm, global_add_pool, global_max_pool, global_mean_pool,
    remove_self_loops,
)
from fastdl.nn.modules.syncbn import SyncBatchNorm  # noqa: F401
from fastdl.nn.modules.padding import (  # noqa: F401
    CircularPad1d, CircularPad2d, CircularPad3d, ConstantPad1d, ConstantPad2d, ConstantPad3d, ReflectionPad1d,
    ReflectionPad2d, ReflectionPad3d, ReplicationPad1d, ReplicationPad2d, ReplicationPad3d, ZeroPad1d, ZeroPad2d,
    ZeroPad3d,
)
from fastdl.nn.modules.shuffle import ChannelShuffle, PixelShuffle, PixelUnshuffle  # noqa: F401
from fastdl.nn.modules.instancenorm import InstanceNorm1d, InstanceNorm2d, InstanceNorm3d  # noqa: F401
from fastdl.nn.modules.pooling1d import (  # noqa: F401
    AdaptiveAvgPool1d, AdaptiveMaxPool1d, AvgPool1d, LPPool1d, LPPool2d, LPPool3d, MaxPool1d,
)
from fastdl.nn._conv_transpose1d import ConvTranspose1d  # noqa: F401
from fastdl.nn.modules.fold import Fold, Unfold  # noqa: F401
from fastdl.nn.modules.normalization import CrossMapLRN2d, LocalResponseNorm  # noqa: F401
from fastdl.nn.modules.dropout import AlphaDropout, FeatureAlphaDropout  # noqa: F401
from fastdl.nn.modules.activation import RReLU, Softmax2d  # noqa: F401
from fastdl.nn._bilinear import Bilinear  # noqa: F401
from fastdl.nn._interpolate import UpsamplingBilinear2d, UpsamplingNearest2d  # noqa: F401
from fastdl.nn import lora, parallel, utils  # noqa: F401
from fastdl.nn.parallel import DataParallel  # noqa: F401,E402
from fastdl.nn._conv3d import Conv3d, ConvTranspose3d  # noqa: F401,E402
from fastdl.nn.modules.pooling3d import (  # noqa: F401,E402
    AdaptiveAvgPool3d, AdaptiveMaxPool3d, AvgPool3d, FractionalMaxPool2d, FractionalMaxPool3d, MaxPool3d, MaxUnpool1d,
    MaxUnpool2d, MaxUnpool3d,
)
from fastdl.nn.modules.loss_margin import (  # noqa: F401,E402
    MultiLabelMarginLoss, MultiMarginLoss, TripletMarginWithDistanceLoss,
)
from fastdl.nn._embedding_bag import EmbeddingBag  # noqa: F401,E402
from fastdl.nn._ctc import CTCLoss  # noqa: F401,E402
from fastdl.nn.modules.adaptive import AdaptiveLogSoftmaxWithLoss  # noqa: F401,E402
from fastdl.nn.modules.lazy import (  # noqa: F401,E402
    LazyBatchNorm1d, LazyBatchNorm2d, LazyBatchNorm3d, LazyConv1d, LazyConv2d, LazyConv3d, LazyConvTranspose1d,
    LazyConvTranspose2d, LazyConvTranspose3d, LazyInstanceNorm1d, LazyInstanceNorm2d, LazyInstanceNorm3d, LazyLinear,
)
