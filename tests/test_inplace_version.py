"""In-place writes and autograd: Tensor._version counts the user-facing in-place writes (shared by
views and detached aliases), and a backward whose saved tensor was written in place since the
forward raises PyTorch's "modified by an inplace operation" RuntimeError instead of returning a
gradient computed from the changed values. Each scenario runs in fastdl and, when installed, in
PyTorch, which must agree on whether it raises."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.nn.functional as F

try:
    import torch
except ImportError:  # the PyTorch comparison skips; the fastdl checks still run
    torch = None

MSG = "modified by an inplace operation"


def _data(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


# Each scenario: (lib, F) -> the loss, built with an in-place write somewhere between the forward
# and the backward; `raises` is PyTorch's behaviour.
def _sigmoid_out(lib, Fn):
    x = lib.tensor(_data((5,), 1), requires_grad=True)
    y = x.sigmoid()
    y.mul_(2)  # SigmoidBackward saves its output
    return y.sum()


def _exp_out(lib, Fn):
    x = lib.tensor(_data((3, 4), 2), requires_grad=True)
    y = x.exp()
    y[0, 1] = 0.0  # index assignment into the saved output
    return y.sum()


def _softmax_out(lib, Fn):
    x = lib.tensor(_data((3, 4), 3), requires_grad=True)
    y = Fn.softmax(x, dim=-1)
    y.add_(1)
    return (y * y).sum()


def _mul_input(lib, Fn):
    x = lib.tensor(_data((4,), 4), requires_grad=True)
    c = lib.tensor(_data((4,), 5))
    y = x * c
    c.zero_()  # the factor x's gradient needs
    return y.sum()


def _mul_other_input(lib, Fn):
    x = lib.tensor(_data((4,), 4), requires_grad=True)
    c = lib.tensor(_data((4,), 5))
    h = x + 0
    y = h * c
    h.mul_(3)  # c needs no gradient, so h is not saved
    return y.sum()


def _matmul_input(lib, Fn):
    a = lib.tensor(_data((2, 3), 6))
    w = lib.tensor(_data((3, 4), 7), requires_grad=True)
    out = a @ w
    a.add_(1)  # reusing an input buffer before backward
    return out.sum()


def _linear_weight_step(lib, Fn):
    # the GAN pitfall: an optimizer step on weights a pending graph saved
    lin = (fd if lib is fd else torch).nn.Linear(3, 2)
    x = lib.tensor(_data((4, 3), 8).astype(np.float32), requires_grad=True)
    loss = lin(x).pow(2).sum()
    lin.weight.grad = lib.ones(2, 3)
    opt = (fd if lib is fd else torch).optim.SGD(lin.parameters(), lr=0.1)
    opt.step()
    return loss


def _conv_residual(lib, Fn):
    # ResNet's `out += identity` then an in-place ReLU: legal, nothing saved is written
    x = lib.tensor(_data((1, 2, 5, 5), 9), requires_grad=True)
    w = lib.tensor(_data((2, 2, 3, 3), 10), requires_grad=True)
    out = Fn.conv2d(x, w, padding=1)
    out += x
    out = Fn.relu(out, inplace=True)
    return out.sum()


def _add_then_write(lib, Fn):
    x = lib.tensor(_data((4,), 11), requires_grad=True)
    h = x * 2
    y = h + 1  # AddBackward saves nothing
    h.add_(5)
    return (y * 3).sum()


def _layer_norm_input(lib, Fn):
    x = lib.tensor(_data((3, 6), 12), requires_grad=True)
    h = x * 1
    y = Fn.layer_norm(h, (6,))
    h.sub_(1)
    return (y * y).sum()


def _detached_output(lib, Fn):
    x = lib.tensor(_data((5,), 14), requires_grad=True)
    y = x.sigmoid()
    y.detach().add_(1)  # detach() shares the version counter
    return y.sum()


def _data_output(lib, Fn):
    x = lib.tensor(_data((5,), 15), requires_grad=True)
    y = x.sigmoid()
    y.data.add_(1)  # .data has its own: autograd does not see the write
    return y.sum()


def _no_grad_write_after_backward(lib, Fn):
    x = lib.tensor(_data((4,), 13), requires_grad=True)
    y = (x.exp() * 2).sum()
    return y  # nothing written: the control


SCENARIOS = {
    "sigmoid_output": (_sigmoid_out, True),
    "exp_output_setitem": (_exp_out, True),
    "softmax_output": (_softmax_out, True),
    "mul_saved_factor": (_mul_input, True),
    "mul_unsaved_factor": (_mul_other_input, False),
    "matmul_input": (_matmul_input, True),
    "optimizer_step_before_backward": (_linear_weight_step, True),
    "conv_residual_inplace_relu": (_conv_residual, False),
    "add_saves_nothing": (_add_then_write, False),
    "layer_norm_input": (_layer_norm_input, True),
    "detached_output": (_detached_output, True),
    "data_output": (_data_output, False),
    "control": (_no_grad_write_after_backward, False),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_inplace_write_to_saved_tensor_raises_as_pytorch(name):
    build, raises = SCENARIOS[name]
    if torch is not None:  # the expectation is PyTorch's behaviour
        torch_raised = False
        try:
            build(torch, torch.nn.functional).backward()
        except RuntimeError as e:
            assert MSG in str(e)
            torch_raised = True
        assert torch_raised == raises
    loss = build(fd, F)
    if raises:
        with pytest.raises(RuntimeError, match=MSG):
            loss.backward()
    else:
        loss.backward()


def test_message_names_the_node_shape_and_versions():
    x = fd.randn(2, 3, requires_grad=True)
    y = x.tanh()
    y.add_(1)
    y.add_(1)
    with pytest.raises(RuntimeError, match=r"\[float32 \(2, 3\)\], saved by TanhBackward0, is at version 2; "
                                           r"expected version 0"):
        y.sum().backward()


def test_gradient_is_correct_when_the_write_comes_after_backward():
    xv = _data((5,), 14)
    x = fd.tensor(xv, requires_grad=True)
    y = x.sigmoid()
    y.sum().backward()
    y.mul_(2)  # the graph has run: nothing to check
    s = 1 / (1 + np.exp(-xv))
    np.testing.assert_allclose(x.grad.numpy(), s * (1 - s), rtol=1e-12)


def test_version_counts_user_facing_inplace_writes():
    a = fd.randn(3, 4)
    assert a._version == 0
    a.add_(1)
    assert a._version == 1
    a[0] = 2.0
    assert a._version == 2
    a.copy_(fd.ones(3, 4))
    a.mul_(2).sigmoid_()
    assert a._version == 5
    a.fill_(1.0)
    a.zero_()
    a.uniform_()
    a.normal_()
    assert a._version == 9
    a += 1  # __iadd__
    assert a._version == 10
    b = a.clone()  # out-of-place ops and new tensors start at 0
    assert b._version == 0 and (a + 1)._version == 0


def test_version_is_shared_by_views_and_detached_aliases():
    a = fd.randn(4, 4)
    v = a[1:, ::2]
    v.mul_(2)
    d = a.detach()
    d.add_(1)
    assert a._version == v._version == d._version == 2
    if torch is not None:  # the same counts in PyTorch
        ta = torch.randn(4, 4)
        ta[1:, ::2].mul_(2)
        ta.detach().add_(1)
        assert ta._version == 2


def test_data_has_its_own_version_counter():
    a = fd.randn(4)
    a.data.add_(1)
    d = a.data
    d[0] = 5.0
    d[1:].mul_(2)  # a view of .data shares .data's counter
    assert a._version == 0 and d._version == 2
    np.testing.assert_allclose(a.numpy(), d.numpy())  # the same memory
    if torch is not None:
        ta = torch.randn(4)
        ta.data.add_(1)
        td = ta.data
        td[0] = 5.0
        td[1:].mul_(2)
        assert ta._version == 0 and td._version == 2


def test_optimizer_step_counts_on_parameters():
    p = fd.nn.Parameter(fd.randn(3))
    p.grad = fd.ones(3)
    opt = fd.optim.Adam([p], lr=0.1)
    v0 = p._version
    opt.step()
    assert p._version == v0 + 1


def test_nonleaf_inplace_op_keeps_its_own_backward_valid():
    # x.mul_(c) on a non-leaf computes on a clone, so its own MulBackward still sees the old x
    xv, cv = _data((4,), 15), _data((4,), 16)
    x = fd.tensor(xv, requires_grad=True)
    c = fd.tensor(cv, requires_grad=True)
    h = x * 1
    h.mul_(c)
    h.exp_()
    h.sum().backward()
    e = np.exp(xv * cv)
    np.testing.assert_allclose(x.grad.numpy(), e * cv, rtol=1e-12)
    np.testing.assert_allclose(c.grad.numpy(), e * xv, rtol=1e-12)


def test_custom_function_saved_tensors_check_versions():
    class Cube(fd.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x, None)
            return x * x * x

        @staticmethod
        def backward(ctx, g):
            x, _ = ctx.saved_tensors
            return 3 * x * x * g

    xv = _data((4,), 17)
    x = fd.tensor(xv, requires_grad=True)
    Cube.apply(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 3 * xv ** 2, rtol=1e-12)

    h = fd.tensor(xv, requires_grad=True) * 1
    y = Cube.apply(h)
    h.add_(1)
    with pytest.raises(RuntimeError, match=MSG + r": \[float64 \(4,\)\], saved by save_for_backward, is at version 1"):
        y.sum().backward()
