"""Backward kernels against PyTorch float64 on every ISA present, with the upstream gradient
contiguous, expanded (stride 0) and transposed, at odd sizes and at sizes large enough to
run threaded. float32 results are compared to the float64 reference at float32 tolerance."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.nn.functional as F
from checks import assert_close

LAYOUTS = ["contig", "expanded", "transposed"]


def _upstream(rng, shape, layout, dtype):
    """A random gradient of `shape` (never zeros) in the chosen memory layout, as a fastdl
    tensor and as the float64 array it holds."""
    if layout == "expanded" and len(shape) >= 1:
        row = rng.standard_normal((1,) * (len(shape) - 1) + tuple(shape[-1:]))
        return fd.tensor(row, dtype=dtype).expand(*shape), np.broadcast_to(row, shape).copy()
    g = rng.standard_normal(shape)
    if layout == "transposed" and len(shape) >= 2:
        t = fd.tensor(np.ascontiguousarray(np.swapaxes(g, -1, -2)), dtype=dtype).transpose(-1, -2)
        return t, g
    return fd.tensor(g, dtype=dtype), g


def _check(torch, fd_fn, th_fn, arrays, grad_of, layout, rng, dtype=fd.float32, rtol=None, atol=None):
    ins = [fd.tensor(a, dtype=dtype, requires_grad=i in grad_of) if a.dtype.kind == "f" else fd.tensor(a)
           for i, a in enumerate(arrays)]
    out = fd_fn(*ins)
    g, g64 = _upstream(rng, tuple(out.shape), layout, out.dtype)
    out.backward(g)
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=i in grad_of) if a.dtype.kind == "f" else torch.tensor(a)
          for i, a in enumerate(arrays)]
    want = th_fn(*ts)
    want.backward(torch.tensor(g64, dtype=torch.float64))
    r, a = (2e-5, 2e-5) if dtype == fd.float32 else (1e-10, 1e-12)
    assert_close(out, want.detach().numpy(), rtol=rtol or r, atol=atol or a)
    for i in grad_of:
        assert ins[i].grad is not None, f"input {i} got no gradient"
        assert_close(ins[i].grad, ts[i].grad.numpy(), rtol=rtol or r, atol=atol or 10 * a, msg=f"grad of input {i}")


ACTS = {
    "gelu": (F.gelu, "gelu"), "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), "gelu_tanh"),
    "silu": (F.silu, "silu"), "relu": (F.relu, "relu"), "tanh": (lambda x: x.tanh(), "tanh"),
    "sigmoid": (lambda x: x.sigmoid(), "sigmoid"), "softplus": (F.softplus, "softplus"),
    "exp": (lambda x: x.exp(), "exp"),
}


def _torch_act(torch, name):
    tf = torch.nn.functional
    return {"gelu": tf.gelu, "gelu_tanh": lambda x: tf.gelu(x, approximate="tanh"), "silu": tf.silu, "relu": tf.relu,
            "tanh": torch.tanh, "sigmoid": torch.sigmoid, "softplus": tf.softplus, "exp": torch.exp}[name]


@pytest.mark.parametrize("shape", [(7, 13), (3, 67, 129)])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", list(ACTS))
@pytest.mark.parametrize("dtype", [fd.float32, fd.float64])
def test_activation_backward(name, layout, shape, dtype, isa, torch, rng):
    x = rng.standard_normal(shape) * 3
    _check(torch, ACTS[name][0], _torch_act(torch, name), [x], [0], layout, rng, dtype)


BINARY = {
    "add": (lambda a, b: a + b), "sub": (lambda a, b: a - b), "mul": (lambda a, b: a * b), "div": (lambda a, b: a / b),
}


@pytest.mark.parametrize("shapes", [((5, 7), (7,)), ((3, 1, 9), (4, 1)), ((2, 3, 33, 65), (33, 65)), ((300, 129), (300, 1))])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", list(BINARY))
@pytest.mark.parametrize("which", [[0, 1], [0], [1]])
def test_binary_broadcast_backward(name, shapes, layout, which, isa, torch, rng):
    a = rng.standard_normal(shapes[0])
    b = np.abs(rng.standard_normal(shapes[1])) + 0.5
    _check(torch, BINARY[name], BINARY[name], [a, b], which, layout, rng)


@pytest.mark.parametrize("shape,dims", [((6, 5, 7), (0,)), ((6, 5, 7), (0, 2)), ((4, 1, 9), (1,)), ((129, 67), None)])
@pytest.mark.parametrize("dtype", [fd.float32, fd.float64, fd.int64])
def test_sum_of_expanded_tensor(shape, dims, dtype, isa, rng):
    """Sums over broadcast (stride-0) dims are value * size; every mix of expanded and real
    dims must give the sum of the materialised tensor."""
    base_shape = tuple(1 if i % 2 == 0 else s for i, s in enumerate(shape))
    base = rng.integers(-5, 6, base_shape) if dtype == fd.int64 else rng.standard_normal(base_shape)
    t = fd.tensor(base, dtype=dtype).expand(*shape)
    full = np.broadcast_to(base, shape)
    for keepdim in (False, True):
        got = t.sum() if dims is None else t.sum(dims, keepdim=keepdim)
        want = full.sum() if dims is None else full.sum(axis=dims, keepdims=keepdim)
        assert tuple(got.shape) == np.shape(want)
        np.testing.assert_allclose(got.numpy().astype(np.float64), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("op", ["sum", "mean", "amax", "max", "var", "sum_all"])
def test_reduction_backward(op, layout, isa, torch, rng):
    x = rng.standard_normal((7, 33, 65))
    fns = {"sum": lambda t: t.sum(-1), "mean": lambda t: t.mean(1), "amax": lambda t: t.amax(-1),
           "max": lambda t: t.max(-1)[0], "var": lambda t: t.var(-1), "sum_all": lambda t: t.sum()}
    _check(torch, fns[op], fns[op], [x], [0], layout if op != "sum_all" else "contig", rng)


MATMUL = {
    "batched": (lambda a, b: a @ b, [(3, 2, 9, 5), (3, 2, 5, 7)]),
    "b transposed": (lambda a, b: a @ b.transpose(-2, -1), [(3, 2, 9, 5), (3, 2, 7, 5)]),
    "a transposed": (lambda a, b: a.transpose(-2, -1) @ b, [(2, 5, 9), (2, 5, 7)]),
    "b 2-D broadcast": (lambda a, b: a @ b, [(4, 9, 5), (5, 7)]),
    "b 2-D transposed": (lambda a, b: a @ b.t(), [(4, 9, 5), (7, 5)]),
    "a 2-D broadcast": (lambda a, b: a @ b, [(9, 5), (4, 5, 7)]),
    "batch broadcast": (lambda a, b: a @ b, [(1, 3, 9, 5), (2, 1, 5, 7)]),
    "linear": (lambda x, w, b: __import__("fastdl").nn.functional.linear(x, w, b), [(3, 11, 5), (7, 5), (7,)]),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", list(MATMUL))
def test_matmul_backward(case, layout, isa, torch, rng):
    fn, shapes = MATMUL[case]
    arrays = [rng.standard_normal(s) for s in shapes]
    tfn = (lambda x, w, b: torch.nn.functional.linear(x, w, b)) if case == "linear" else fn
    _check(torch, fn, tfn, arrays, list(range(len(arrays))), layout, rng, rtol=1e-4, atol=1e-4)


def test_transposed_operand_grad_reaches_leaf_contiguous(rng):
    k = fd.tensor(rng.standard_normal((2, 6, 4)), requires_grad=True)
    q = fd.tensor(rng.standard_normal((2, 6, 4)), requires_grad=True)
    (q @ k.transpose(-2, -1)).backward(fd.tensor(rng.standard_normal((2, 6, 6))))
    assert k.grad.is_contiguous() and q.grad.is_contiguous()


@pytest.mark.parametrize("shapes", [((37, 11), (11,)), ((5, 1, 7), (3, 1)), ((2, 3, 5, 7), (5, 1)), ((300, 96), (96,)),
                                    ((4, 9), (4, 1))])
@pytest.mark.parametrize("dtype", [fd.float32, fd.float64, fd.int64])
def test_broadcast_row_blocks_forward(shapes, dtype, isa, rng):
    """Broadcast binaries run as blocks of rows per kernel call: every op family (arithmetic,
    comparisons with a bool output, in place) on transposed and broadcast operands."""
    a = rng.integers(-9, 9, shapes[0]) if dtype == fd.int64 else rng.standard_normal(shapes[0])
    b = rng.integers(1, 9, shapes[1]) if dtype == fd.int64 else rng.standard_normal(shapes[1])
    ta = fd.tensor(np.ascontiguousarray(np.swapaxes(a, -1, -2)), dtype=dtype).transpose(-1, -2)
    tb = fd.tensor(b, dtype=dtype)
    np.testing.assert_allclose((ta + tb).numpy(), a + b, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose((ta * tb).numpy(), a * b, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal((ta < tb).numpy(), a.astype(np.float32 if dtype == fd.float32 else a.dtype) < b.astype(np.float32 if dtype == fd.float32 else b.dtype))
    if np.broadcast(a, b).shape != a.shape:
        return
    out = fd.tensor(a, dtype=dtype)
    out -= tb
    np.testing.assert_allclose(out.numpy(), a - b, rtol=1e-6, atol=1e-6)
