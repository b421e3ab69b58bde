"""fastdl.models: ready-made networks built from fastdl.nn."""
from fastdl.models.mamba import CausalSelfAttention, HybridLM, MambaLM  # noqa: F401
from fastdl.models.gpt import GPT  # noqa: F401
from fastdl.models.vit import ViT  # noqa: F401
from fastdl.models.bert import BERT, mask_tokens  # noqa: F401
from fastdl.models.dit import DiT, DiTBlock  # noqa: F401
