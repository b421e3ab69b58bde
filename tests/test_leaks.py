"""Memory is given back once tensors and their graphs are unreachable: no reference cycle hides
in C++ where Python's collector cannot see it. Checked through the CPU allocator's live bytes
(fastdl._C.allocator_stats()), so these run in every build; the sanitizer job
(tests/sanitizers/run.sh) found the original leaks with LeakSanitizer.

Two kinds of cycle are covered:
- a backward node that saves its own output's TensorImpl (impl -> grad_fn -> node -> impl):
  segment_softmax did for float32 / float64; ops must save `detach(out)` instead;
- a Python hook that refers to its own tensor (Tensor -> impl -> hook -> closure -> Tensor):
  collected since fastdl._C.Tensor reports the hooks it owns to the collector (tensor_gc.cpp)."""
import gc
import weakref

import numpy as np
import pytest

import fastdl as fd
import fastdl.nn as nn
import fastdl.nn.functional as F


def _live_bytes():
    gc.collect()
    return fd._C.allocator_stats()["live_bytes"]


def _leaked_per_call(make, n=4):
    """Bytes that each call of make() leaves allocated after everything it built is dropped."""
    make()  # first call: one-time caches (CSR plans, scalar constants) are not leaks
    base = _live_bytes()
    for _ in range(n):
        make()
    return (_live_bytes() - base) / n


_IDX = np.array([0, 0, 1, 2, 2, 2, 4, 1])

# Ops whose backward reads their own output (or a buffer of it): the pattern that can tie a node
# to its output. Each takes x of shape (8, 6) and returns a tensor that requires grad.
OUTPUT_SAVING_OPS = {
    "segment_softmax": lambda x: F.segment_softmax(x, fd.tensor(_IDX)),
    "segment_softmax_1d": lambda x: F.segment_softmax(x[:, 0], fd.tensor(_IDX), num_nodes=5),
    "softmax": lambda x: F.softmax(x, dim=1),
    "log_softmax": lambda x: F.log_softmax(x, dim=0),
    "exp": lambda x: x.exp(),
    "sigmoid": lambda x: x.sigmoid(),
    "tanh": lambda x: x.tanh(),
    "sqrt": lambda x: (x * x + 1).sqrt(),
    "prod": lambda x: x.prod(dim=1),
    "amax": lambda x: x.amax(dim=0),
    "max_dim": lambda x: x.max(dim=1)[0],
    "cumsum": lambda x: x.cumsum(dim=1),
    "pow": lambda x: (x * x + 1) ** x,
    "attention": lambda x: F.scaled_dot_product_attention(x[None], x[None], x[None]),
    "inplace_on_nonleaf": lambda x: (x * 1.0).exp_(),
}


@pytest.mark.parametrize("dtype", [fd.float32, fd.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", sorted(OUTPUT_SAVING_OPS))
def test_graph_of_output_saving_op_is_freed(name, dtype):
    op = OUTPUT_SAVING_OPS[name]
    x = fd.randn(8, 6, dtype=dtype).requires_grad_()

    def make():
        y = op(x)
        assert y.requires_grad and y.grad_fn is not None
    assert _leaked_per_call(make) == 0
    # and after a backward, which releases the saved tensors
    assert _leaked_per_call(lambda: op(x).sum().backward()) == 0
    assert x.grad is not None and np.isfinite(x.grad.numpy()).all()


def test_recurrent_layer_graph_is_freed():
    lstm = nn.LSTM(6, 5)
    x = fd.randn(4, 2, 6)
    assert _leaked_per_call(lambda: lstm(x)[0]) == 0


@pytest.mark.parametrize("kind", ["leaf", "nonleaf", "post_accumulate"])
def test_hook_referring_to_its_own_tensor_is_collected(kind):
    def make():
        x = fd.randn(1000, dtype=fd.float64).requires_grad_()
        if kind == "leaf":
            t = x
            t.register_hook(lambda g: g * t.detach())
        elif kind == "nonleaf":
            t = x * 2.0
            t.register_hook(lambda g: g + t.detach())
        else:
            t = x
            t.register_post_accumulate_grad_hook(lambda p: t.grad)
        return weakref.ref(t)

    assert _leaked_per_call(make) == 0
    r = make()
    gc.collect()
    assert r() is None


def test_collector_leaves_hooks_of_live_tensors_alone():
    """A tensor kept alive (by a variable, or by a graph that still needs it) keeps its hooks
    through any number of collections, and they still run."""
    x = fd.tensor([1.0, 2.0, 3.0], requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(x.shape) or g * 2.0)   # refers to x: a cycle
    gc.collect()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0, 6.0])
    assert seen == [(3,)]

    # x's Python object is unreachable, but the graph still holds x's impl: not garbage yet
    calls = []

    def graph_over_hooked_leaf():
        w = fd.tensor([1.0, -1.0], requires_grad=True)
        w.register_hook(lambda g: calls.append(w) or g)
        w.register_post_accumulate_grad_hook(lambda p: calls.append("post"))
        return (w * 5.0).sum(), weakref.ref(w)
    y, r = graph_over_hooked_leaf()
    gc.collect()
    assert r() is not None
    y.backward()
    assert len(calls) == 2 and calls[1] == "post"
    np.testing.assert_allclose(calls[0].grad.numpy(), [5.0, 5.0])
    del calls, y
    gc.collect()
    assert r() is None  # graph gone: now the cycle is garbage and is collected

    # a non-leaf whose node a second output shares: its hooks are left alone, and still run
    z = fd.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    a, b = (z * 1.0).split(2)
    got = []
    a.register_hook(lambda g: got.append(a.shape) or g * 4.0)
    gc.collect()
    (a.sum() + b.sum()).backward()
    np.testing.assert_allclose(z.grad.numpy(), [4.0, 4.0, 1.0, 1.0])
    assert got == [(2,)]


def test_parameter_subclass_with_hook_cycle_is_collected():
    """nn.Parameter is a Python subclass of fastdl.Tensor: the collector reaches the base
    type's traversal through it."""
    def make():
        p = nn.Parameter(fd.randn(500, dtype=fd.float64))
        p.register_post_accumulate_grad_hook(lambda t: p.grad)
        return weakref.ref(p)

    assert _leaked_per_call(make) == 0
    r = make()
    gc.collect()
    assert r() is None


@pytest.mark.parametrize("kind", ["leaf", "nonleaf", "post_accumulate"])
def test_hook_that_keeps_its_own_handle_is_collected(kind):
    """A one-shot hook removes itself through its handle, so its closure keeps the handle: the
    handle refers to the hook weakly (as PyTorch's), which leaves no hidden cycle."""
    def make():
        x = fd.randn(1000, dtype=fd.float64).requires_grad_()
        t = x if kind != "nonleaf" else x * 2.0
        handle = None
        if kind == "post_accumulate":
            handle = t.register_post_accumulate_grad_hook(lambda p: handle.remove())
        else:
            handle = t.register_hook(lambda g: handle.remove() or g * 3.0)
        return weakref.ref(t), x, t

    assert _leaked_per_call(lambda: make()[0]) == 0

    r, x, t = make()   # the hook still works, and runs once
    (t * 1.0).sum().backward()
    expect = 3.0 if kind == "leaf" else 2.0 * 3.0 if kind == "nonleaf" else 1.0
    np.testing.assert_allclose(x.grad.numpy(), np.full(1000, expect))
    if kind != "nonleaf":  # a non-leaf's graph is spent after one backward
        x.grad = None
        (t * 1.0).sum().backward()   # removed by its first call: gradient unchanged now
        np.testing.assert_allclose(x.grad.numpy(), np.full(1000, 1.0))
    del x, t
    gc.collect()
    assert r() is None


def test_removing_a_hook_after_its_tensor_died_is_a_no_op():
    x = fd.randn(5, dtype=fd.float64).requires_grad_()
    calls = []
    h = x.register_hook(lambda g: calls.append(1))
    h2 = x.register_post_accumulate_grad_hook(lambda p: calls.append(2))
    h2.remove()
    x.sum().backward()
    assert calls == [1]
    h.remove()
    h.remove()  # twice is fine
    x.sum().backward()
    assert calls == [1]
    del x
    gc.collect()
    h.remove()
    h2.remove()
