"""Shared fixtures: a fresh seeded numpy generator per test, the CPU ISA paths present on
this machine (each kernel test runs on every one), devices present, optional PyTorch."""
import os
import sys
import zlib

import numpy as np
import pytest

import fastdl as fd
from fastdl import _C

_ISAS = {"ref": 0, "avx2": 1, "avx512": 2}
_info = _C.cpu_info()
_best = "avx512" if _info["avx512f"] else ("avx2" if _info["avx2"] else "ref")
PRESENT_ISAS = [i for i in ("ref", "avx2", "avx512") if _ISAS[i] <= _ISAS[_best]]
if os.environ.get("FASTDL_CPU_ISA") in PRESENT_ISAS:  # CI pins one path
    PRESENT_ISAS = [os.environ["FASTDL_CPU_ISA"]]
DEVICES = ["cpu"] + (["cuda"] if fd.cuda.is_available() else [])


@pytest.fixture(autouse=True)
def _seed_fastdl(request):
    # fastdl's global generator starts from fresh entropy in each process (as PyTorch's): seed it
    # per test, so a test's random draws do not depend on which tests ran before it
    fd.manual_seed(zlib.crc32(request.node.nodeid.encode()) + int(os.environ.get("FASTDL_TEST_SEED", "0")))


@pytest.fixture
def rng(request):
    # Fresh data per test, reproducible across runs (Python's hash() is salted per process);
    # FASTDL_TEST_SEED shifts every test's stream to explore other data.
    seed = zlib.crc32(request.node.nodeid.encode()) + int(os.environ.get("FASTDL_TEST_SEED", "0"))
    return np.random.default_rng(seed)


@pytest.fixture(params=PRESENT_ISAS)
def isa(request):
    prev = _C.cpu_isa()
    _C.set_cpu_isa(request.param)
    yield request.param
    _C.set_cpu_isa(prev)


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def pytest_unconfigure(config):
    # Under tests/sanitizers/run.sh, LeakSanitizer's check runs here, after pytest has printed
    # its summary and with every thread idle, instead of at process exit. Its thread-suspending
    # tracer sometimes crashes ("Tracer caught signal 11", an intermittent fault of the sanitizer
    # runtime, google/sanitizers#1353) and ends the process; run.sh then sees the summary line
    # before the crash and repeats the leak check on its own (run.sh's recheck_leaks). The check
    # is the same one (same suppressions; a leak ends the process with reports in log_path),
    # and the exit-time check is then skipped.
    if os.environ.get("FASTDL_SAN_SITE"):
        import ctypes
        import gc
        check = getattr(ctypes.CDLL(None), "__lsan_do_leak_check", None)
        if check is not None:
            # Python is still running here, and LeakSanitizer does not scan its object arenas: a
            # tensor held only by garbage not yet collected (a cycle through an exception's frames,
            # say) would read as leaked. Collect it first; what stays alive is a real leak.
            gc.collect()
            sys.stdout.flush()
            sys.stderr.flush()
            check()
