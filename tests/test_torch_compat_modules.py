"""torch's switch-and-query modules that training scripts touch (torch.backends, torch.jit,
torch.compiler, torch.mps, torch.nn.attention): importable, with PyTorch's names, answering for
fastdl, so a script written for PyTorch runs unchanged."""
import pytest

import fastdl as fd
import fastdl.nn.functional as F
from fastdl.nn.attention import SDPBackend, sdpa_kernel


def test_backends_switches_read_back():
    fd.backends.cudnn.benchmark = True
    assert fd.backends.cudnn.benchmark is True
    fd.backends.cudnn.benchmark = False
    with fd.backends.cudnn.flags(enabled=False, deterministic=True):
        assert fd.backends.cudnn.enabled is False and fd.backends.cudnn.deterministic is True
    assert fd.backends.cudnn.enabled is True and fd.backends.cudnn.deterministic is False
    fd.backends.cuda.matmul.allow_tf32 = True
    fd.backends.cuda.matmul.allow_tf32 = False
    fd.backends.cuda.enable_flash_sdp(False)
    assert fd.backends.cuda.flash_sdp_enabled() is False
    fd.backends.cuda.enable_flash_sdp(True)
    assert fd.backends.mps.is_available() is False and fd.mps.is_available() is False
    assert fd.backends.cpu.get_cpu_capability() == {"avx512": "AVX512", "avx2": "AVX2"}.get(fd._C.cpu_isa(), "DEFAULT")
    assert fd.backends.cuda.is_built() == fd.cuda.is_available()


def test_jit_and_compiler_run_eagerly():
    m = fd.nn.Linear(3, 2)
    assert fd.jit.script(m) is m and fd.jit.trace(m, (fd.ones(1, 3),)) is m
    assert not fd.jit.is_scripting() and not fd.compiler.is_compiling()

    @fd.jit.ignore
    def f(x):
        return x + 1
    assert float(f(fd.ones(()))) == 2.0
    assert fd.compiler.disable(f) is f
    with pytest.raises(NotImplementedError, match="state_dict"):
        fd.jit.save(m, "/nonexistent")


def test_sdpa_kernel_selects_and_checks():
    q = fd.randn(1, 2, 4, 8)
    want = F.scaled_dot_product_attention(q, q, q)
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.MATH]):
        got = F.scaled_dot_product_attention(q, q, q)
    assert bool((got == want).all())
    with sdpa_kernel(SDPBackend.MATH):
        pass
    with pytest.raises(ValueError, match="SDPBackend"):
        with sdpa_kernel(["flash"]):
            pass
