"""fastdl.models: ready-made networks built from fastdl.nn."""
from fastdl.models.mamba import CausalSelfAttention, HybridLM, MambaLM  # noqa: F401
