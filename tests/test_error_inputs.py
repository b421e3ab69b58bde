"""PyTorch's own bad inputs through fastdl: every ErrorInput of every OpInfo in torch's op database
whose name fastdl exposes (as tests/test_opinfo.py matches them) must raise a Python exception in
fastdl too, never return. Left out, with their reason:
- the samples where a Python number stands for a tensor (torch's generic binary-op samples, error
  type Exception and no message): fastdl's binary functions take numbers there, as its operators do;
- the reflected dunders (__radd__ ...) called on a number: not a fastdl call at all;
- the samples about memory shared between out= and an input, or within out (an expanded view):
  converting torch's tensors copies them, so the sharing is lost; test_out_memory_overlap makes
  those cases with fastdl's own views."""
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")

import fastdl as fd  # noqa: E402
import test_opinfo as T  # noqa: E402


def _left_out(op, e):
    if e.error_type is Exception and not str(e.error_regex):
        return True
    if op.name.startswith("__r"):
        return True
    return "unsupported operation" in str(e.error_regex) or "single memory location" in str(e.error_regex)


def _silent():
    from torch.testing._internal.common_methods_invocations import op_db
    silent, total = [], 0
    with T._lean_sampling():
        for op in op_db:
            fd_op = T._fd_callable(op)
            if fd_op is None or op.name in T.RANDOM_OPS:
                continue
            try:
                errors = list(op.error_inputs("cpu"))
            except Exception:  # noqa: BLE001 - torch cannot build this op's error samples here
                continue
            for i, e in enumerate(errors):
                if _left_out(op, e):
                    continue
                s = e.sample_input
                try:
                    memo = {}
                    args = T._to_fd(s.input, memo), T._to_fd(s.args, memo), T._to_fd(s.kwargs, memo)
                except Exception:  # noqa: BLE001 - an argument fastdl cannot even represent counts as refused
                    continue
                total += 1
                try:
                    fd_op(args[0], *args[1], **args[2])
                except Exception:  # noqa: BLE001
                    continue
                silent.append(f"{op.name} #{i}: torch raises {e.error_type.__name__} ({str(e.error_regex)[:70]})")
    return silent, total


def test_error_inputs_raise():
    silent, total = _silent()
    assert total > 400, f"only {total} error samples matched fastdl names"
    assert not silent, f"{len(silent)} of {total} bad inputs returned instead of raising:\n" + "\n".join(silent)


def test_out_memory_overlap():
    """out= that shares memory: within itself (an expanded view) for every function, and with an
    input for the gathers and joins (as PyTorch refuses both); out equal to an elementwise op's
    input is an in-place write and allowed."""
    x = fd.arange(6.0)
    i = fd.tensor([0, 2, 4])
    for f in (lambda: fd.gather(x, 0, i, out=x[:3]), lambda: fd.take(x, i, out=x[3:]),
              lambda: fd.index_select(x, 0, i, out=x[1:4]), lambda: fd.masked_select(x, x > 2, out=x[:3]),
              lambda: fd.cat([x, x], out=x), lambda: fd.stack([x[:2], x[2:4]], out=x[:4].reshape(2, 2))):
        with pytest.raises(RuntimeError, match="single memory location"):
            f()
    with pytest.raises(RuntimeError, match="more than one element"):
        fd.add(x, x, out=fd.zeros(1).expand(6))
    y = fd.arange(6.0)
    assert fd.add(y, y, out=y) is y and y.tolist() == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    o = fd.zeros(3)
    assert fd.gather(x, 0, i, out=o) is o and o.tolist() == [0.0, 2.0, 4.0]
    # Interleaved views share an address range but no element: allowed, as PyTorch allows them.
    z = fd.arange(12.0)
    assert fd.index_select(z[::2], 0, i, out=z[1::2][:3]).tolist() == [0.0, 4.0, 8.0]
    assert z.tolist()[:7] == [0.0, 0.0, 2.0, 4.0, 4.0, 8.0, 6.0]
    w = fd.arange(24.0).reshape(4, 6)
    fd.cat([w[:, :3]], out=w[:, 3:])  # column halves of one matrix: disjoint, not dense
    assert w[:, 3:].tolist() == w[:, :3].tolist()


def test_out_dtype_rules():
    """Elementwise ops, reductions and joins cast into out within the dtype's kind; the rest
    (gathers, products, sorts, ...) want out's dtype to be the result's, as in PyTorch."""
    x = fd.tensor([[3.0, 1.0], [2.0, 4.0]])
    o64 = fd.zeros(2, 2, dtype=fd.float64)
    assert fd.add(x, x, out=o64).dtype == fd.float64 and o64.tolist() == [[6.0, 2.0], [4.0, 8.0]]
    assert fd.cat([x], out=o64) is o64
    for f in (lambda: fd.gather(x, 1, fd.tensor([[0, 1], [1, 0]]), out=o64), lambda: fd.matmul(x, x, out=o64),
              lambda: fd.tril(x, out=o64), lambda: fd.sort(x, out=(o64, fd.zeros(2, 2, dtype=fd.int64)))):
        with pytest.raises(RuntimeError, match="expected out tensor to have dtype fastdl.float32"):
            f()
    with pytest.raises(RuntimeError, match="can't be cast"):
        fd.add(x, x, out=fd.zeros(2, 2, dtype=fd.int64))
