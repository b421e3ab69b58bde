"""In-place writes whose operands share memory, as PyTorch decides them: a written-to tensor with
elements that share memory (an expanded view) and an input that shares part of the written-to
tensor's memory in another layout raise RuntimeError before anything is written; the same memory in
the same layout (x.mul_(x)), disjoint views and views too interleaved to decide go through with the
right values."""
import numpy as np
import pytest

import fastdl as fd


def _cases(lib):
    """(name, fresh-state callable) pairs; each builds its own tensors."""
    def ar(n):
        return lib.arange(float(n))

    def self_t(y):
        return y.add_(y.T)

    def row0(y):
        return y.add_(y[0])

    def setitem(x):
        x[1:] = x[:-1]
        return x

    return [
        ("add_ shifted", lambda: (lambda x: x[1:].add_(x[:-1]))(ar(6))),
        ("mul_ shifted", lambda: (lambda x: x[:-2].mul_(x[2:]))(ar(7))),
        ("copy_ shifted", lambda: (lambda x: x[1:].copy_(x[:-1]))(ar(6))),
        ("add_ own transpose", lambda: self_t(lib.ones(3, 3) * ar(3))),
        ("add_ own first row", lambda: row0(lib.ones(2, 3) * ar(3))),
        ("setitem shifted", lambda: setitem(ar(6))),
        ("add_ expanded", lambda: lib.zeros(3).expand(2, 3).add_(1.0)),
        ("add_ tensor into expanded", lambda: lib.zeros(3).expand(2, 3).add_(lib.ones(2, 3))),
        ("exp_ expanded", lambda: lib.zeros(3).expand(2, 3).exp_()),
        ("relu_ expanded", lambda: lib.zeros(3).expand(2, 3).relu_()),
        ("clamp_ expanded", lambda: lib.zeros(3).expand(2, 3).clamp_(0, 1)),
        ("copy_ into expanded", lambda: lib.zeros(3).expand(2, 3).copy_(lib.ones(2, 3))),
        ("logical_not_ expanded", lambda: lib.tensor([True, False]).expand(3, 2).logical_not_()),
        ("index assign from itself", lambda: (lambda x: (x.__setitem__(lib.tensor([1, 2]), x[0:2]), x)[1])(ar(4))),
        ("list index assign from itself", lambda: (lambda x: (x.__setitem__([1, 2], x[2:4]), x)[1])(ar(4))),
        ("slice assign into expanded", lambda: (lambda b: (b.expand(3, 4).__setitem__(slice(0, 2), 1.0), b)[1])(ar(4))),
        # allowed
        ("mul_ itself", lambda: (lambda x: x.mul_(x))(ar(5) + 1)),
        ("add_ disjoint halves", lambda: (lambda x: (x[:3].add_(x[3:]), x)[1])(ar(6))),
        ("add_ interleaved", lambda: (lambda x: (x[::2].add_(x[1::2]), x)[1])(ar(6))),
        ("add_ other tensor's transpose", lambda: (lambda y: y.add_((ar(9).reshape(3, 3)).T))(ar(9).reshape(3, 3))),
        ("fill_ expanded", lambda: (lambda z: (z.expand(2, 3).fill_(2.0), z)[1])(lib.zeros(3))),
        ("zero_ expanded", lambda: (lambda z: (z.expand(2, 3).zero_(), z)[1])(lib.ones(3))),
        ("setitem disjoint", lambda: (lambda x: (x.__setitem__(slice(0, 3), x[3:]), x)[1])(ar(6))),
        ("copy_ itself", lambda: (lambda x: x.copy_(x))(ar(4))),
        ("add_ into empty expanded", lambda: lib.zeros(0, 1).expand(0, 3).add_(1.0)),
        ("index assign from another", lambda: (lambda x: (x.__setitem__([1, 2], ar(2) + 7), x)[1])(ar(4))),
        ("slice assign into one expanded row", lambda: (lambda b: (b.expand(3, 4).__setitem__(0, ar(4) + 1), b)[1])(ar(4))),
    ]


def _outcome(f):
    try:
        return ("ok", f().numpy())
    except RuntimeError as e:
        return ("raises", str(e))


def test_overlap_decisions_and_values():
    raising = {"add_ shifted", "mul_ shifted", "copy_ shifted", "add_ own transpose", "add_ own first row",
               "setitem shifted", "add_ expanded", "add_ tensor into expanded", "exp_ expanded", "relu_ expanded",
               "clamp_ expanded", "copy_ into expanded", "logical_not_ expanded", "index assign from itself",
               "list index assign from itself", "slice assign into expanded"}
    for name, f in _cases(fd):
        if name in raising:
            with pytest.raises(RuntimeError, match="unsupported operation"):
                f()
        else:
            f()  # no error
    a = np.arange(6.0)
    x = fd.arange(6.0)
    x[:3].add_(x[3:])
    np.testing.assert_array_equal(x.numpy(), [3, 5, 7, 3, 4, 5])
    x = fd.arange(6.0)
    x[::2].add_(x[1::2])
    np.testing.assert_array_equal(x.numpy(), [1, 1, 5, 3, 9, 5])
    x = fd.arange(5.0) + 1
    x.mul_(x)
    np.testing.assert_array_equal(x.numpy(), (a[:5] + 1) ** 2)


def test_failed_write_leaves_the_tensor_unchanged():
    x = fd.arange(6.0)
    with pytest.raises(RuntimeError, match=r"add_: unsupported operation: some elements.*shape \(5,\)"):
        x[1:].add_(x[:-1])
    np.testing.assert_array_equal(x.numpy(), np.arange(6.0))
    z = fd.zeros(3)
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        z.expand(2, 3).add_(1.0)
    np.testing.assert_array_equal(z.numpy(), np.zeros(3))


def test_same_decisions_as_torch(torch):
    for (name, f), (_, g) in zip(_cases(fd), _cases(torch)):
        got, want = _outcome(f), _outcome(g)
        assert got[0] == want[0], f"{name}: fastdl {got[0]}, torch {want[0]} ({want[1] if want[0] == 'raises' else ''})"
        if got[0] == "ok":
            np.testing.assert_array_equal(got[1], want[1], err_msg=name)
