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

