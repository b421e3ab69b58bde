"""fastdl.models: ready-made networks built from fastdl.nn."""
from fastdl.models.mamba import CausalSelfAttention, HybridLM, MambaLM  # noqa: F401
from fastdl.models.gpt import GPT  # noqa: F401
from fastdl.models.rnn_lm import RNNLM  # noqa: F401
from fastdl.models.vit import ViT  # noqa: F401
from fastdl.models.bert import BERT, mask_tokens  # noqa: F401
from fastdl.models.dit import DiT, DiTBlock  # noqa: F401
from fastdl.models.vision import (  # noqa: F401
    AlexNet, GoogLeNet, LeNet5, VGG, alexnet, googlenet, lenet5, vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn,
    vgg19, vgg19_bn,
)
from fastdl.models.resnet import DenseNet, ResNet, densenet121, resnet18, resnet34, resnet50, resnet101  # noqa: F401
from fastdl.models.modern_cnn import ConvNeXt, EfficientNet, convnext_tiny, efficientnet_b0  # noqa: F401
from fastdl.models.autoencoder import VAE, ConvAutoencoder  # noqa: F401
from fastdl.models.gan import DCGANDiscriminator, DCGANGenerator  # noqa: F401
from fastdl.models.diffusion import DDPM, DiTDenoiser, UNet  # noqa: F401
