"""Freeing a very deep autograd graph is iterative (no recursive destructor chain): a
1,000,000-node chain is built and dropped, with and without backward, in a subprocess so a
stack overflow fails this test instead of killing the test run."""
import os
import subprocess
import sys
import textwrap

import pytest

DEPTH = 1_000_000

_SCRIPT = textwrap.dedent("""
    import sys
    import fastdl as fd
    depth, backward = int(sys.argv[1]), sys.argv[2] == "1"
    x = fd.ones(2, requires_grad=True)
    y = x
    for _ in range(depth):
        y = y * 1.0
    if backward:
        y.sum().backward()
        assert x.grad.tolist() == [1.0, 1.0], x.grad.tolist()
    del y  # frees the whole chain of nodes
    # a second chain through the graph's saved tensors and views
    y = x
    for _ in range(depth // 4):
        y = (y * 1.0).reshape(2)
    del y
    print("freed")
""")


@pytest.mark.parametrize("backward", [False, True], ids=["no_backward", "after_backward"])
def test_free_million_node_chain(backward):
    env = dict(os.environ)
    r = subprocess.run([sys.executable, "-c", _SCRIPT, str(DEPTH), "1" if backward else "0"],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, f"freeing a {DEPTH}-node graph failed (exit {r.returncode}): {r.stderr[-2000:]}"
    assert r.stdout.strip().endswith("freed")
