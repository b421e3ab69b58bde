"""Every op that fastdl exports is exercised by some test: walk the native module's functions
and fail on any that no test file mentions (STYLE.md: declared once, tested always)."""
import inspect
import pathlib

import fastdl as fd
from fastdl import _C

# Internal entry points covered through their public wrappers.
_INTERNAL = {"cuda_is_available", "cuda_device_count", "cuda_synchronize", "cuda_empty_cache", "empty_cache",
             "allocator_stats", "cpu_info", "cpu_isa", "set_cpu_isa", "is_grad_enabled", "set_grad_enabled",
             "get_num_threads", "set_num_threads", "manual_seed", "sum_to", "cross_entropy_rows"}


def test_every_native_op_has_a_test():
    text = "\n".join(p.read_text() for p in pathlib.Path(__file__).parent.glob("test_*.py")
                     if p.name != "test_registry.py")
    names = [n for n, f in vars(_C).items() if callable(f) and not inspect.isclass(f) and not n.startswith("_")]
    # fused optimizer steps are exercised through their optimizer classes
    via = {n: n[:-5] for n in names if n.endswith("_step")}
    missing = [n for n in names if n not in _INTERNAL and n not in text and via.get(n, "\0").lower() not in text.lower()]
    assert not missing, f"ops without a test mentioning them: {sorted(missing)}"


def test_public_namespace_resolves():
    for name in ("tensor", "zeros", "matmul", "no_grad", "from_numpy", "from_dlpack", "save", "load", "einsum"):
        assert callable(getattr(fd, name))


def test_bench_commands_run_quick(capsys):
    pytest = __import__("pytest")
    pytest.importorskip("torch")
    from fastdl.bench import main
    assert main(["ops", "--quick"]) == 0
    assert "softmax" in capsys.readouterr().out


def test_bench_arguments_checked(capsys):
    # Every kernel's options come from its usage line: --help prints it, an unknown option or a
    # missing value is an error (exit status 2) before anything is timed.
    from fastdl.bench import main
    assert main(["gemm", "--help"]) == 0
    out = capsys.readouterr().out
    assert "fastdl bench gemm [--quick] [--models]" in out and "matmul float32, " not in out  # nothing timed
    for args, msg in ((["gemm", "--bogus"], "unknown argument '--bogus' (options: --quick, --models"),
                      (["attention", "--shape"], "option --shape needs a value"),
                      (["models", "--only", "--quick"], "option --only needs a value"),
                      (["elementwise", "--quick"], "unknown argument '--quick' (options: none"),
                      (["scan", "64,16"], "unknown argument '64,16'"),
                      (["all", "--nope"], "fastdl bench all: unknown argument '--nope'"),
                      (["attention", "--rounds=3"], "write --rounds 3 (an option and its value as two words)"),
                      (["nope"], "unknown kernel 'nope'")):
        assert main(args) == 2, args
        assert msg in capsys.readouterr().err, args


def test_bench_overhead_idle_runs(capsys):
    # `fastdl bench overhead --idle`: each small op timed after the pool's workers went to sleep,
    # fastdl on the thread count in force and on one thread (and PyTorch when installed).
    from fastdl.bench import overhead
    threads = fd.get_num_threads()
    res = overhead.main(["--idle", "--quick"])
    assert fd.get_num_threads() == threads
    assert set(res) == {"linear 128x784->256", "matmul 256^3", "matmul 512^3", "exp 256k"}
    for med in res.values():
        assert "fastdl 1T" in med and all(0 < v < 10 for v in med.values())
    assert "ms idle" in capsys.readouterr().out
