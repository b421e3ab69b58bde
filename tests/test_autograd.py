"""The autograd engine: accumulation, graph shapes, grad mode, detach, deep graphs without
recursion limits, retain_graph, autograd.grad, higher order, and gradcheck itself."""
import numpy as np
import pytest

import fastdl as fd


def test_leaf_accumulation_and_names():
    x = fd.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (x * x).sum()
    assert y.grad_fn.name() == "SumBackward1" and x.is_leaf and not y.is_leaf
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [2, 4, 6])
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5, 7, 9])
    x.grad = None
    (x + x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2, 2, 2])


def test_shared_subexpression_and_diamond():
    x = fd.tensor(2.0, requires_grad=True)
    a = x * 3
    b = a * a + a.exp()
    b.backward()
    assert abs(x.grad.item() - (18 * 2 + 3 * np.exp(6.0))) < 1e-2


def test_no_grad_and_detach():
    x = fd.randn(3, requires_grad=True)
    with fd.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None
    z = x.detach()
    assert not z.requires_grad
    z[0] = 5.0  # shares storage
    assert x[0].item() == 5.0

    @fd.no_grad()
    def f(t):
        return t * 2
    assert not f(x).requires_grad
    assert fd.is_grad_enabled()


def test_deep_graph_no_recursion_limit():
    x = fd.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(50_000):
        y = y * 1.0 + 0.0
    y.sum().backward()
    assert x.grad.item() == 1.0


def test_retain_graph_and_second_backward_error():
    x = fd.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * np.exp([1.0, 2.0]), rtol=1e-6)
    z = (x.exp() * 2).sum()
    z.backward()
    with pytest.raises(ValueError, match="second time"):
        z.backward()


def test_backward_requires_scalar_or_gradient():
    x = fd.randn(3, requires_grad=True)
    with pytest.raises(ValueError, match="scalar"):
        (x * 2).backward()
    (x * 2).backward(fd.ones(3))
    np.testing.assert_allclose(x.grad.numpy(), [2, 2, 2])
    with pytest.raises(ValueError):
        fd.ones(3).backward()


def test_autograd_grad_and_higher_order():
    x = fd.tensor([0.5, -1.5], dtype=fd.float64, requires_grad=True)
    y = (x ** 3).sum()
    (g,) = fd.autograd.grad(y, x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), 3 * np.array([0.5, -1.5]) ** 2)
    assert x.grad is None
    (g2,) = fd.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(g2.numpy(), 6 * np.array([0.5, -1.5]))


def test_inplace_on_nonleaf_and_leaf_error():
    x = fd.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y += 1
    y *= y
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * (2 * np.array([1.0, 2.0]) + 1) * 2)
    with pytest.raises(ValueError, match="leaf"):
        x += 1
    with fd.no_grad():
        x += 1
    np.testing.assert_allclose(x.detach().numpy(), [2, 3])


def test_setitem_on_nonleaf_grad(torch):
    xs = np.arange(6.0).reshape(2, 3)
    x = fd.tensor(xs, dtype=fd.float64, requires_grad=True)
    v = fd.tensor([10.0, 20.0], dtype=fd.float64, requires_grad=True)
    y = x * 2
    y[:, 1] = v
    (y * y).sum().backward()
    X = torch.tensor(xs, requires_grad=True)
    V = torch.tensor([10.0, 20.0], dtype=torch.float64, requires_grad=True)
    Y = X * 2
    Y[:, 1] = V
    (Y * Y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), X.grad.numpy())
    np.testing.assert_allclose(v.grad.numpy(), V.grad.numpy())


def test_gradcheck_catches_wrong_gradient():
    x = fd.randn(3, dtype=fd.float64, requires_grad=True)
    assert fd.autograd.gradcheck(lambda a: (a * a).sin(), [x])
    # a function whose backward is wrong: detach part of the graph
    with pytest.raises(AssertionError, match="mismatch"):
        fd.autograd.gradcheck(lambda a: a * a.detach() + a * 0, [x])


def test_dtype_mixing_grads():
    a = fd.randn(3, requires_grad=True)
    b = fd.randn(3, dtype=fd.float64, requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.dtype == fd.float32 and b.grad.dtype == fd.float64


def test_requires_grad_on_int_raises():
    with pytest.raises(TypeError):
        fd.tensor([1, 2]).requires_grad_()


def test_custom_function():
    class Cube(fd.autograd.Function):
        @staticmethod
        def forward(ctx, x, k):
            ctx.save_for_backward(x)
            ctx.k = k
            return x * x * x * k

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * x * x * ctx.k * g, None

    x = fd.tensor([1.0, -2.0, 0.5], dtype=fd.float64, requires_grad=True)
    y = Cube.apply(x, 2.0)
    assert y.grad_fn.name() == "CubeBackward" and not y.is_leaf
    (y.sin()).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.cos(2 * x.detach().numpy() ** 3) * 6 * x.detach().numpy() ** 2)
    assert fd.autograd.gradcheck(lambda t: Cube.apply(t, 1.5), [fd.randn(4, dtype=fd.float64, requires_grad=True)])
    with fd.no_grad():
        assert Cube.apply(x, 1.0).grad_fn is None


def test_custom_function_multiple_outputs():
    class SplitScale(fd.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, ga, gb):
            return ga * 2 + gb * 3

    x = fd.tensor([1.0, 2.0], requires_grad=True)
    a, b = SplitScale.apply(x)
    a.sum().backward()  # only one output used: the other's grad arrives as zeros
    np.testing.assert_allclose(x.grad.numpy(), [2, 2])


def test_hooks_and_retain_grad(torch):
    x = fd.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    seen = []
    h = y.register_hook(lambda g: seen.append(g.numpy().copy()))
    x.register_hook(lambda g: g * 10)  # leaf hook replaces the gradient
    (y * y).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), 2 * y.detach().numpy())
    np.testing.assert_allclose(seen[0], 2 * y.detach().numpy())
    np.testing.assert_allclose(x.grad.numpy(), 10 * 4 * 2 * np.array([1.0, 2.0, 3.0]))
    h.remove()
    z = x * 2
    z.register_hook(lambda g: g * 0)
    x.grad = None
    (z * 1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0, 0, 0])
    with pytest.raises(ValueError, match="hook"):
        fd.ones(2).register_hook(lambda g: g)


def test_backward_error_leaves_graph_reusable():
    x = fd.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    calls = []

    def bad(g):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("hook failed")
    y.register_hook(bad)
    z = (y * y).sum()
    with pytest.raises(RuntimeError, match="hook failed"):
        z.backward(retain_graph=True)
    z.backward()  # the failed pass left no stale counts or half-summed gradients
    np.testing.assert_allclose(x.grad.numpy(), 2 * 9 * np.array([1.0, 2.0]))


def test_engine_never_writes_into_tensors_others_can_see(rng):
    # y = x + 0: AddBackward hands the upstream gradient through unchanged; the user's gradient
    # tensor must neither become x.grad nor be summed into.
    a = rng.standard_normal((4, 5))
    x = fd.tensor(a, requires_grad=True)
    g = fd.tensor(rng.standard_normal((4, 5)))
    g_copy = g.numpy().copy()
    (x + 0.0).backward(g)
    np.testing.assert_array_equal(g.numpy(), g_copy)
    g.mul_(3.0)
    np.testing.assert_array_equal(x.grad.numpy(), g_copy)
    # several branches sum into one pending gradient; a second backward accumulates into .grad
    y = x * 2.0 + x * 3.0 + (x + 0.0)
    held = []
    y.register_hook(lambda t: held.append(t) or None)
    y.backward(g)
    np.testing.assert_allclose(x.grad.numpy(), g_copy + 6.0 * 3.0 * g_copy, rtol=1e-12)
    np.testing.assert_array_equal(held[0].numpy(), 3.0 * g_copy)   # what the hook saw stays intact


def test_leaf_grad_takes_over_fresh_buffers_and_accumulates_in_place(rng):
    x = fd.tensor(rng.standard_normal((6, 3)), requires_grad=True)
    w = fd.tensor(rng.standard_normal((3, 2)), requires_grad=True)
    (x @ w).sum().backward()
    gx = x.grad
    ptr = gx.data_ptr()
    (x @ w).sum().backward()
    assert x.grad.data_ptr() == ptr     # accumulated in place
    expect = 2.0 * np.repeat(w.detach().numpy().sum(1)[None], 6, 0)
    np.testing.assert_allclose(x.grad.numpy(), expect, rtol=1e-12)
    # a leaf's grad never aliases another leaf's or the graph's tensors
    a = fd.tensor(rng.standard_normal(5), requires_grad=True)
    b = fd.tensor(rng.standard_normal(5), requires_grad=True)
    (a + b).sum().backward()
    a.grad.add_(1.0)
    np.testing.assert_array_equal(b.grad.numpy(), np.ones(5))


def test_autograd_namespace_grad_modes_and_variable():
    with fd.autograd.no_grad():
        assert not fd.is_grad_enabled()
        with fd.autograd.enable_grad():
            assert fd.is_grad_enabled()
    with fd.autograd.set_grad_enabled(False):
        assert not fd.autograd.is_grad_enabled()
    with fd.autograd.inference_mode():
        assert not fd.is_grad_enabled()
    v = fd.autograd.Variable(fd.ones(2), requires_grad=True)
    assert v.requires_grad and fd.autograd.Variable(fd.ones(2)).requires_grad is False
    with pytest.raises(AttributeError):
        fd.autograd.not_a_name


def test_detect_anomaly_names_the_backward_that_made_a_nan():
    x = fd.tensor([0.0, 1.0], requires_grad=True)
    with fd.autograd.detect_anomaly():
        assert fd.is_anomaly_enabled()
        with pytest.raises(RuntimeError, match="Function 'SqrtBackward0' returned nan values in its 0th output"):
            (x.sqrt() * 0).sum().backward()
        y = fd.tensor([1.0, 4.0], requires_grad=True)
        y.sqrt().sum().backward()  # a clean backward runs as usual
        np.testing.assert_allclose(y.grad.numpy(), [0.5, 0.25])
    assert not fd.is_anomaly_enabled()
    (x.sqrt() * 0).sum().backward()  # outside the mode NaNs pass, as in PyTorch
    assert np.isnan(x.grad.numpy()[0])
    with fd.autograd.set_detect_anomaly(True, check_nan=False):
        assert fd.is_anomaly_enabled() and not fd.is_anomaly_check_nan_enabled()
        (x.sqrt() * 0).sum().backward()
    fd.set_anomaly_enabled(True)
    try:
        with pytest.raises(RuntimeError, match="nan"):
            (x.sqrt() * 0).sum().backward()
    finally:
        fd.set_anomaly_enabled(False)

    @fd.autograd.detect_anomaly()
    def step():
        (x.sqrt() * 0).sum().backward()
    with pytest.raises(RuntimeError, match="SqrtBackward0"):
        step()


def test_grad_of_an_input_named_twice():
    """autograd.grad with the same tensor twice among its inputs (a leaf, or an intermediate
    result) returns its gradient at each position, as torch.autograd.grad does."""
    a = fd.tensor([0.3, -1.2], dtype=fd.float64, requires_grad=True)
    b = a * 2.0
    ga, gb, ga2, gb2 = fd.autograd.grad((b * b * a).sum(), [a, b, a, b])
    np.testing.assert_allclose(ga.numpy(), (12 * a * a).detach().numpy())  # d/da of 4 a^3
    np.testing.assert_allclose(gb.numpy(), (2 * b * a).detach().numpy())
    np.testing.assert_allclose(ga2.numpy(), ga.numpy())
    np.testing.assert_allclose(gb2.numpy(), gb.numpy())
