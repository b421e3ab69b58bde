"""CUDA kernels whose index arithmetic can be checked without a GPU: their source, compiled for
the host with emulated threads (tests/cuda_emu), against a float64 reference."""
import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# The compiler and the emulation run as plain programs, also under tests/sanitizers/run.sh
# (whose preloaded ASan runtime would report the compiler's own deliberate leaks).
ENV = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS")}


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ (C++20) to build the emulation")
@pytest.mark.parametrize("name,cases", [("gemm_simt_emu", 13), ("norm_emu", 5), ("conv_emu", 12)])
def test_kernel_emulated(tmp_path, name, cases):
    """gemm_simt_emu: the f32 / f64 SIMT GEMM (layouts, batches, alpha / beta, split K);
    norm_emu: layer_norm's forward, backward and parameter sums;
    conv_emu: conv2d's three implicit GEMMs (strides, padding, dilation, groups, split k)."""
    exe = tmp_path / name
    build = subprocess.run(["g++", "-std=c++20", "-O1", "-pthread", "-I", os.path.join(ROOT, "csrc"),
                            os.path.join(HERE, "cuda_emu", name + ".cpp"), "-o", str(exe)],
                           capture_output=True, text=True, env=ENV)
    if build.returncode != 0 and "barrier" in build.stderr and "No such file" in build.stderr:
        pytest.skip("the C++ library has no <barrier>")
    assert build.returncode == 0, build.stderr[-3000:]
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=600, env=ENV)
    assert run.returncode == 0 and "0 failed" in run.stdout, run.stdout[-3000:]
    assert run.stdout.count("PASS") == cases
