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
