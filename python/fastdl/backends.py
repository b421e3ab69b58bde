"""fastdl.backends: torch.backends' switches and queries, so that training scripts written for
PyTorch run unchanged. The queries answer for fastdl (the CPU ISA its kernels dispatch to; no MPS,
cuDNN or oneDNN); the switches are kept and read back, and steer nothing that fastdl has no
choice about (its CUDA kernels never use TF32, its convolutions are its own, its algorithms are
deterministic: same bits for any thread count)."""
import contextlib
import types

from fastdl import _C


def _cpu_capability():
    isa = _C.cpu_isa()
    return {"avx512": "AVX512", "avx2": "AVX2"}.get(isa, "DEFAULT")


cpu = types.SimpleNamespace(get_cpu_capability=_cpu_capability)


def _sdp_flag():
    state = {"on": True}

    def enabled():
        return state["on"]

    def enable(on):
        state["on"] = bool(on)
    return enabled, enable


_flash, _enable_flash = _sdp_flag()
_mem, _enable_mem = _sdp_flag()
_math, _enable_math = _sdp_flag()
_cudnn_sdp, _enable_cudnn_sdp = _sdp_flag()

cuda = types.SimpleNamespace(
    is_built=lambda: bool(_C.cuda_is_available()),  # a CPU-only build and a build without a GPU look alike
    matmul=types.SimpleNamespace(allow_tf32=False, allow_fp16_reduced_precision_reduction=True,
                  allow_bf16_reduced_precision_reduction=True),
    flash_sdp_enabled=_flash, enable_flash_sdp=_enable_flash,
    mem_efficient_sdp_enabled=_mem, enable_mem_efficient_sdp=_enable_mem,
    math_sdp_enabled=_math, enable_math_sdp=_enable_math,
    cudnn_sdp_enabled=_cudnn_sdp, enable_cudnn_sdp=_enable_cudnn_sdp,
)

cudnn = types.SimpleNamespace(enabled=True, benchmark=False, deterministic=False, allow_tf32=True,
                              is_available=lambda: False, version=lambda: None)


@contextlib.contextmanager
def _flags_ctx(ns, **kw):
    old = {k: getattr(ns, k) for k in kw}
    for k, v in kw.items():
        if v is not None:
            setattr(ns, k, v)
    try:
        yield
    finally:
        for k, v in old.items():
            setattr(ns, k, v)


cudnn.flags = lambda enabled=None, benchmark=None, deterministic=None, allow_tf32=None: _flags_ctx(
    cudnn, enabled=enabled, benchmark=benchmark, deterministic=deterministic, allow_tf32=allow_tf32)
mps = types.SimpleNamespace(is_available=lambda: False, is_built=lambda: False)
mkldnn = types.SimpleNamespace(is_available=lambda: False, enabled=False)
mkl = types.SimpleNamespace(is_available=lambda: False)
openmp = types.SimpleNamespace(is_available=lambda: True)

__all__ = ["cpu", "cuda", "cudnn", "mps", "mkldnn", "mkl", "openmp"]
