"""Source layout rules (STYLE.md, house habit 14): the CPU and CUDA backends share parameter
structs, op-kind enums and cross-backend formulas through csrc/kernels/, so neither backend
includes the other's files, no kernel includes the op layer, and the shared headers depend on
nothing backend-specific. Each rule names the offending file and line."""
import pathlib
import re

import pytest

CSRC = pathlib.Path(__file__).resolve().parents[1] / "csrc"
pytestmark = pytest.mark.skipif(not (CSRC / "kernels").is_dir(), reason="needs the source tree (csrc/)")

INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"]+)"', re.M)
SOURCES = ("*.h", "*.cuh", "*.cpp", "*.cu")

# folder -> the project folders its files may not include
FORBIDDEN = {
    "cuda": ("cpu/", "ops/", "autograd/", "python/"),
    "cpu": ("cuda/", "ops/", "autograd/", "python/"),
    "kernels": ("cpu/", "cuda/", "ops/", "autograd/", "python/"),
}


def sources(folder):
    root = CSRC / folder
    return sorted(p for pattern in SOURCES for p in root.rglob(pattern))


def includes(path):
    text = path.read_text()
    for m in INCLUDE.finditer(text):
        yield text.count("\n", 0, m.start()) + 1, m.group(1)


def violations(folder):
    bad = FORBIDDEN[folder]
    return [f"{p.relative_to(CSRC.parent)}:{line}: #include \"{inc}\""
            for p in sources(folder) for line, inc in includes(p) if inc.startswith(bad)]


def test_include_scanner_sees_quoted_includes(tmp_path):
    # Guards the rules below against passing vacuously on a scanner that finds nothing.
    f = tmp_path / "x.cu"
    f.write_text('#include <vector>\n#include "cuda/common.cuh"\n  #  include "cpu/gemm.h"\n// "ops/ops.h"\n')
    assert list(includes(f)) == [(2, "cuda/common.cuh"), (3, "cpu/gemm.h")]
    for folder in FORBIDDEN:
        assert sources(folder), f"no sources found under csrc/{folder}"
    assert any(inc.startswith("kernels/") for p in sources("cuda") for _, inc in includes(p))


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_backends_include_only_shared_headers(folder):
    found = violations(folder)
    assert not found, (f"csrc/{folder} may not include {', '.join(FORBIDDEN[folder])}; move what both "
                       "sides need into csrc/kernels/:\n  " + "\n  ".join(found))
