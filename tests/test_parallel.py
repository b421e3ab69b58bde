"""The CPU thread pool (csrc/core/parallel.cpp): results do not depend on the thread count, on a
second caller while a job runs, or on a fork. (Its speed on a busy machine is measured by
`fastdl bench overhead --busy`, not here.)"""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastdl as fd


def _work(seed):
    """A mix of parallel ops (matvec, matmul, elementwise, reductions, backward); returns numpy."""
    rng = np.random.default_rng(seed)
    w = fd.tensor(rng.standard_normal((512, 300)), dtype=fd.float32, requires_grad=True)
    x = fd.tensor(rng.standard_normal((64, 300)), dtype=fd.float32)
    v = fd.tensor(rng.standard_normal((1, 300)), dtype=fd.float32)
    y = (x @ w.T).relu() * 1.5 + (v @ w.T)
    loss = (y * y).sum() + fd.tensor(rng.standard_normal((200_000,)), dtype=fd.float32).exp().sum()
    loss.backward()
    return np.concatenate([y.detach().numpy().ravel(), w.grad.numpy().ravel(), [loss.item()]])


def _work_and_gemm(seed):
    """_work and a product large enough for the GEMM's thread team (its members meet at barriers)."""
    rng = np.random.default_rng(seed + 100)
    a, b = (fd.tensor(rng.standard_normal((700, 700)), dtype=fd.float32) for _ in range(2))
    return np.concatenate([_work(seed), (a @ b).numpy().ravel()])


@pytest.fixture
def threads():
    prev = fd.get_num_threads()
    yield
    fd.set_num_threads(prev)


def test_thread_counts_agree(threads):
    fd.set_num_threads(1)
    one = _work(0)
    for n in (2, 3, 7):
        fd.set_num_threads(n)
        np.testing.assert_allclose(_work(0), one, rtol=1e-5, atol=1e-3)


def test_concurrent_callers(threads):
    # Python threads running forward / backward at once: the backward engine releases the GIL,
    # so two parallel_for calls overlap and the second one runs inline.
    fd.set_num_threads(2)
    want = {s: _work(s) for s in range(4)}
    errors, got = [], {}

    def run(s):
        try:
            for _ in range(5):
                got[s] = _work(s)
                np.testing.assert_allclose(got[s], want[s], rtol=1e-5, atol=1e-3)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    ts = [threading.Thread(target=run, args=(s,)) for s in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in ts), "a thread hung"
    assert not errors, errors[0]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_child_runs_parallel_ops(threads):
    fd.set_num_threads(2)
    want = _work(1)  # the pool's workers exist in the parent now
    code = f"""
import os, sys, numpy as np
sys.path.insert(0, {os.path.dirname(__file__)!r})
import fastdl as fd
from test_parallel import _work
fd.set_num_threads(2)
want = _work(1)
pid = os.fork()
if pid == 0:
    ok = np.allclose(_work(1), want, rtol=1e-5, atol=1e-3)
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    np.testing.assert_allclose(_work(1), want, rtol=1e-5, atol=1e-3)




@pytest.mark.parametrize("spin_us", ["0", "5"])
def test_short_spins_give_the_same_results(threads, spin_us):
    # FASTDL_SPIN_US: workers that sleep at once (0) or after a few microseconds wake for every
    # op and every barrier of a GEMM team; results are those of the default spin.
    fd.set_num_threads(2)
    want = _work_and_gemm(2)
    code = f"""
import sys, time, numpy as np
sys.path.insert(0, {os.path.dirname(__file__)!r})
import fastdl as fd
from test_parallel import _work_and_gemm
fd.set_num_threads(2)
for i in range(4):
    np.save(sys.stdout.buffer, _work_and_gemm(2)) if i == 3 else _work_and_gemm(2)
    time.sleep(0.002)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120,
                         env={**os.environ, "FASTDL_SPIN_US": spin_us})
    assert out.returncode == 0, out.stderr.decode()
    import io
    np.testing.assert_array_equal(np.load(io.BytesIO(out.stdout)), want)


def _allowed_cpus(tid):
    try:
        with open(f"/proc/self/task/{tid}/status") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("Cpus_allowed_list"))
    except (FileNotFoundError, ProcessLookupError):  # the thread ended meanwhile
        return None


@pytest.mark.skipif(not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs Linux and two CPUs")
def test_workers_woken_after_idle_keep_the_process_affinity(threads):
    # A worker woken on its caller's core moves off it through a moment's narrower affinity
    # (csrc/core/parallel.cpp); afterwards every thread must hold the process's mask again, and
    # the results must not change. Idle gaps past the workers' spin put them to sleep each time.
    import time
    fd.set_num_threads(2)
    want = _work(2)
    mask = _allowed_cpus(threading.get_native_id())
    for _ in range(6):
        time.sleep(0.02)
        np.testing.assert_allclose(_work(2), want, rtol=1e-5, atol=1e-3)
    # A worker woken by the last job may be moving right now (its narrower mask lasts until the
    # other core has taken it, up to a few hundred microseconds on a VM): wait for it, boundedly.
    deadline = time.monotonic() + 5.0
    while True:
        other = {tid: m for tid in os.listdir("/proc/self/task") if (m := _allowed_cpus(tid)) not in (mask, None)}
        if not other or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert not other, f"threads left with another CPU mask than {mask}: {other}"
    # A caller restricted to one CPU: its workers still run, wherever they are allowed.
    prev = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(prev)})
        time.sleep(0.02)
        np.testing.assert_allclose(_work(2), want, rtol=1e-5, atol=1e-3)
    finally:
        os.sched_setaffinity(0, prev)


@pytest.mark.parametrize("env, want", [({"FASTDL_NUM_THREADS": "3"}, 3), ({"OMP_NUM_THREADS": "1"}, 1),
                                       ({"OMP_NUM_THREADS": "2,1"}, 2),
                                       ({"FASTDL_NUM_THREADS": "1", "OMP_NUM_THREADS": "4"}, 1),
                                       ({"FASTDL_NUM_THREADS": "x"}, None), ({"OMP_NUM_THREADS": "0"}, None)])
def test_thread_count_from_the_environment(env, want):
    # The pool's size at start: FASTDL_NUM_THREADS, else OMP_NUM_THREADS (its first value), else
    # one per core (None: the value is ignored); results match the default's.
    code = ("import sys, numpy as np; sys.path.insert(0, %r); import fastdl as fd; from test_parallel import _work; "
            "print(fd.get_num_threads(), fd._C.cpu_info()['cores']); np.save(sys.stdout.buffer, _work(4))"
            % os.path.dirname(__file__))
    base = {k: v for k, v in os.environ.items() if k not in ("FASTDL_NUM_THREADS", "OMP_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120, env={**base, **env})
    assert out.returncode == 0, out.stderr.decode()
    import io
    first, rest = out.stdout.split(b"\n", 1)
    got, cores = (int(v) for v in first.split())
    assert got == (cores if want is None else want)
    np.testing.assert_allclose(np.load(io.BytesIO(rest)), _work(4), rtol=1e-5, atol=1e-3)
