"""One helper that checks an op's output and gradients against an independent float64
reference (numpy or PyTorch), on fresh random data; plus small utilities."""
import numpy as np

import fastdl as fd

TOL = {fd.float32: (2e-5, 2e-6), fd.float64: (1e-12, 1e-12), fd.float16: (2e-3, 1e-3), fd.bfloat16: (1.6e-2, 1e-2)}


def assert_close(got, want, dtype=fd.float64, rtol=None, atol=None, msg=""):
    r, a = TOL[dtype]
    got = got.detach().cpu().float().numpy() if isinstance(got, fd.Tensor) and got.dtype == fd.bfloat16 else got
    g = np.asarray(got.detach().cpu().numpy() if isinstance(got, fd.Tensor) else got, dtype=np.float64)
    np.testing.assert_allclose(g, np.asarray(want, dtype=np.float64), rtol=rtol or r, atol=atol if atol is not None else a,
                               err_msg=msg)


def strided(arr, dtype=fd.float32, device="cpu", kind="contig"):
    """A fastdl tensor with arr's values in a chosen memory layout: contiguous, transposed
    storage, or a stepped slice of a larger buffer."""
    if kind == "contig" or arr.ndim == 0:
        return fd.tensor(arr, dtype=dtype, device=device)
    if kind == "transposed":
        t = fd.tensor(np.ascontiguousarray(arr.T), dtype=dtype, device=device)
        return t.permute(*range(arr.ndim - 1, -1, -1))
    big = np.zeros(tuple(s * 2 for s in arr.shape), dtype=arr.dtype) + 7.0
    big[tuple(slice(None, None, 2) for _ in arr.shape)] = arr
    t = fd.tensor(big, dtype=dtype, device=device)
    return t[tuple(slice(None, None, 2) for _ in arr.shape)]


def torch_grads(torch, fn, arrays, upstream):
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out = fn(*ts)
    out.backward(torch.tensor(upstream, dtype=torch.float64))
    return out.detach().numpy(), [t.grad.numpy() if t.grad is not None else np.zeros_like(a) for t, a in zip(ts, arrays)]


def fd_grads(fn, arrays, upstream, dtype=fd.float64):
    ts = [fd.tensor(a, dtype=dtype, requires_grad=True) for a in arrays]
    out = fn(*ts)
    out.backward(fd.tensor(upstream, dtype=out.dtype))
    return out, [t.grad for t in ts]
