"""Second derivatives at their limits: gradgradcheck with PyTorch's semantics (the upstream
gradients are variables too, so ops linear in their input pass and a constant-counted gradient
is caught), and the ops whose backward is a fused kernel with no differentiable form, which must
raise when a second derivative reaches them instead of silently reading 0."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.nn.functional as F
from fastdl.autograd import Function, GradcheckError, gradcheck, gradgradcheck, once_differentiable

NOT_IMPL = "is not implemented"


def _t(shape, seed, requires_grad=True):
    return fd.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=requires_grad)


IDX = np.array([1, 2, 4, 5, 4, 3, 2, 9])


@pytest.mark.parametrize("case", ["embedding_bag_sum", "embedding_bag_mean", "embedding_bag_max", "max_pool2d",
                                  "linear", "reflect_pad", "sum", "embedding"])
def test_gradgradcheck_passes_ops_linear_in_their_input(case):
    # the first derivative of these does not depend on the input, only on the upstream gradient
    fns = {
        "embedding_bag_sum": (lambda w: F.embedding_bag(fd.tensor(IDX), w, fd.tensor(np.array([0, 4])), mode="sum"),
                              [(10, 3)]),
        "embedding_bag_mean": (lambda w: F.embedding_bag(fd.tensor(IDX), w, fd.tensor(np.array([0, 4]))), [(10, 3)]),
        "embedding_bag_max": (lambda w: F.embedding_bag(fd.tensor(IDX), w, fd.tensor(np.array([0, 4])), mode="max"),
                              [(10, 3)]),
        "max_pool2d": (lambda x: F.max_pool2d(x, 2), [(1, 2, 4, 4)]),
        "linear": (lambda x, w: F.linear(x, w), [(3, 4), (2, 4)]),
        "reflect_pad": (lambda x: F.pad(x, (1, 2), mode="reflect"), [(1, 2, 5)]),
        "sum": (lambda x: x.sum(), [(3,)]),
        "embedding": (lambda w: F.embedding(fd.tensor(np.array([1, 2, 1])), w), [(4, 3)]),
    }
    fn, shapes = fns[case]
    assert gradgradcheck(fn, [_t(s, i) for i, s in enumerate(shapes)])


def test_gradgradcheck_catches_a_gradient_counted_as_constant():
    class BadCube(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * x.detach() * x.detach() * g  # right value, but no dependence on x recorded

    x = _t((4,), 1)
    assert gradcheck(BadCube.apply, [x])
    with pytest.raises(GradcheckError, match="gradient mismatch"):
        gradgradcheck(BadCube.apply, [x])
    assert gradgradcheck(BadCube.apply, [x], raise_exception=False) is False
    assert issubclass(GradcheckError, RuntimeError) and issubclass(GradcheckError, AssertionError)


def test_gradgradcheck_takes_explicit_grad_outputs():
    x = _t((3, 2), 2)
    g = _t((3, 2), 3)
    assert gradgradcheck(lambda x: x.sigmoid() * x, [x], [g])
    with pytest.raises(ValueError, match="grad_outputs"):
        gradgradcheck(lambda x: x.sigmoid(), [x], [g, g])


def test_gradcheck_accepts_pytorchs_options_and_keeps_the_version():
    x = _t((3,), 4)
    v = x._version
    assert gradcheck(lambda x: x.exp(), [x], nondet_tol=0.0, check_undefined_grad=True, fast_mode=False,
                     check_batched_grad=False)
    assert x._version == v  # the probes restored x: no in-place write is left for autograd to see
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        gradcheck(lambda x: x.exp(), [x], bogus=1)


def _lstm(x):
    fd.manual_seed(0)
    return fd.nn.LSTM(3, 4).double()(x)[0]


def _gru(x):
    fd.manual_seed(0)
    return fd.nn.GRU(3, 4).double()(x)[0]


def _rnn(x):
    fd.manual_seed(0)
    return fd.nn.RNN(3, 4).double()(x)[0]


EDGES = np.array([[0, 1, 2, 3, 1, 0], [1, 2, 3, 0, 0, 2]])
SEG = np.array([0, 2, 1, 0, 2, 2, 1])
# Fused kernels whose node recomputes the op from differentiable ops under create_graph
# (autograd/composite.py): gradgradcheck passes.
COMPOSED = {
    "lstm": (_lstm, [(4, 2, 3)]),
    "gru": (_gru, [(4, 2, 3)]),
    "rnn": (_rnn, [(4, 2, 3)]),
    "message_passing_max": (lambda x: F.message_passing(x, fd.tensor(EDGES), reduce="max"), [(4, 3)]),
    "message_passing_min_weighted": (lambda x, w: F.message_passing(x, fd.tensor(EDGES), w, reduce="min"),
                                     [(4, 3), (6,)]),
    "scatter_max": (lambda s: F.scatter(s, fd.tensor(SEG), 0, reduce="max"), [(7, 3)]),
    "scatter_min_dim1": (lambda s: F.scatter(s, fd.tensor(SEG), 1, reduce="min"), [(2, 7)]),
    "segment_softmax": (lambda s: F.segment_softmax(s, fd.tensor(SEG)), [(7, 2)]),
    "selective_scan": (lambda u, d, A, B, C, D, z, b: F.selective_scan(u, d, A, B, C, D, z, b, delta_softplus=True),
                       [(1, 2, 5), (1, 2, 5), (2, 3), (1, 3, 5), (1, 3, 5), (2,), (1, 2, 5), (2,)]),
    "selective_scan_grouped": (lambda u, d, A, B, C: F.selective_scan(u, d.abs(), -A.abs(), B, C),
                               [(1, 4, 3), (1, 4, 3), (4, 2), (1, 2, 2, 3), (1, 2, 2, 3)]),
}


@pytest.mark.parametrize("name", sorted(COMPOSED))
def test_second_derivative_of_a_fused_kernel_through_its_composed_form(name):
    fn, shapes = COMPOSED[name]
    xs = [_t(s, 40 + i) for i, s in enumerate(shapes)]
    assert gradgradcheck(fn, xs)
    # an ordinary backward still runs the fused kernel: the same first derivative either way
    plain = fd.autograd.grad(fn(*xs).sum(), xs)
    made = fd.autograd.grad(fn(*xs).sum(), xs, create_graph=True)
    for a, b in zip(plain, made):
        np.testing.assert_allclose(b.detach().numpy(), a.numpy(), rtol=1e-10, atol=1e-12)


def test_lstm_second_derivative_matches_pytorch():
    torch = pytest.importorskip("torch")
    x0 = np.random.default_rng(41).standard_normal((5, 2, 3))
    res = []
    torch.manual_seed(0)
    tm = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2).double()
    for lib in (fd, torch):
        m = tm
        if lib is fd:
            m = fd.nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2).double()
            m.load_state_dict({k: fd.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
        x = lib.tensor(x0, requires_grad=True)
        out, (h, c) = m(x)
        ps = [x] + list(m.parameters())
        gs = lib.autograd.grad((out ** 2).sum() + (h * c[..., :2]).sum(), ps, create_graph=True)
        res.append([g.detach().numpy() for g in lib.autograd.grad(sum((g ** 2).sum() for g in gs), ps)])
    for a, b in zip(*res):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kw", [{}, {"is_causal": True}, {"enable_gqa": True}])
def test_attention_with_dropout_second_derivative(kw):
    # the create_graph backward rebuilds the forward's keep mask from its seed, so the composed
    # gradient is the fused one and has a second derivative
    hq = 4 if kw.get("enable_gqa") else 2
    ts = [_t((2, hq, 5, 4), 50), _t((1, 2, 6, 4), 51), _t((1, 2, 6, 3), 52)]

    def f(q, k, v):
        fd.manual_seed(7)  # the same mask at every call
        return F.scaled_dot_product_attention(q, k, v, dropout_p=0.4, **kw)
    plain = fd.autograd.grad(f(*ts).sum(), ts)
    made = fd.autograd.grad(f(*ts).sum(), ts, create_graph=True)
    for a, b in zip(plain, made):
        np.testing.assert_allclose(b.detach().numpy(), a.numpy(), rtol=1e-10, atol=1e-12)
    assert gradgradcheck(f, ts)


# Fused backwards with no differentiable form: a second derivative raises.
FUSED = {
    "ctc_loss": (lambda lp: F.ctc_loss(F.log_softmax(lp, -1), fd.tensor(np.array([[1, 2], [3, 1]])),
                                       fd.tensor(np.array([6, 5])), fd.tensor(np.array([2, 2]))), (6, 2, 4)),
}


@pytest.mark.parametrize("name", sorted(FUSED))
def test_second_derivative_through_a_fused_backward_raises(name):
    fn, shape = FUSED[name]
    x = _t(shape, 5)
    fd.manual_seed(1)  # sdpa_dropout: the same mask in both passes
    plain, = fd.autograd.grad(fn(x).sum(), [x])
    x2 = _t(shape, 5)
    fd.manual_seed(1)
    g, = fd.autograd.grad(fn(x2).sum(), [x2], create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), plain.numpy(), rtol=1e-12, atol=1e-12)  # first derivative intact
    with pytest.raises(RuntimeError, match=NOT_IMPL):
        (g * g).sum().backward()


def test_once_differentiable():
    seen = {}

    class Square(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        @once_differentiable
        def backward(ctx, g):
            seen["grad_mode"] = fd.is_grad_enabled()
            (x,) = ctx.saved_tensors
            return 2 * x * g

    xv = np.random.default_rng(6).standard_normal(4)
    x = fd.tensor(xv, requires_grad=True)
    Square.apply(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * xv, rtol=1e-12)
    x = fd.tensor(xv, requires_grad=True)
    g, = fd.autograd.grad(Square.apply(x).sum(), [x], create_graph=True)
    assert seen["grad_mode"] is False
    np.testing.assert_allclose(g.detach().numpy(), 2 * xv, rtol=1e-12)
    with pytest.raises(RuntimeError, match=NOT_IMPL):
        g.sum().backward()
    from fastdl.autograd.function import once_differentiable as od
    assert od is once_differentiable


def test_gradcheck_module_layout_matches_pytorch():
    # fastdl.autograd.gradcheck is the function, and the module of the same name stays importable
    from fastdl.autograd.gradcheck import GradcheckError as E, gradgradcheck as ggc
    assert E is GradcheckError and ggc is gradgradcheck
    assert fd.autograd.gradcheck is gradcheck and callable(fd.autograd.gradcheck)


@pytest.mark.parametrize("reduce", ["sum", "mean"])
@pytest.mark.parametrize("layout", ["weighted", "unweighted", "heads", "1d", "num_nodes"])
def test_message_passing_second_derivative(reduce, layout):
    # sum / mean message passing composes its gradients under create_graph (GNN gradient penalties)
    ei = fd.tensor(np.array([[0, 1, 2, 3, 1, 0, 3], [1, 2, 3, 0, 0, 2, 2]]))
    shapes = {"weighted": [(4, 3), (7,)], "unweighted": [(4, 3)], "heads": [(4, 2, 3), (7, 2)], "1d": [(4,), (7,)],
              "num_nodes": [(4, 3), (7,)]}[layout]
    n = 5 if layout == "num_nodes" else None
    args = [_t(s, 20 + i) for i, s in enumerate(shapes)]

    def f(x, w=None):
        return F.message_passing(x, ei, w, reduce=reduce, num_nodes=n)
    assert gradgradcheck(f, args)


def _spd(n, seed):
    a = np.random.default_rng(seed).standard_normal((n, n))
    return a @ a.T + n * np.eye(n)


@pytest.mark.parametrize("name", ["inv", "det", "slogdet", "solve", "solve_triangular", "cholesky", "qr", "svd",
                                  "pinv", "lu_factor", "matrix_exp", "eigh_values", "eigh_vectors", "svdvals", "cond"])
def test_second_derivative_of_functions_that_save_their_outputs(name):
    # Python Functions (linalg) that save their own outputs: under create_graph the saved outputs
    # join the running node, so the second derivative reaches the input (it read 0 before)
    L = fd.linalg
    fns = {
        "inv": (lambda a: L.inv(a), [_spd(3, 1)]),
        "det": (lambda a: L.det(a), [_spd(3, 2)]),
        "slogdet": (lambda a: L.slogdet(a)[1], [_spd(3, 3)]),
        "solve": (lambda a, b: L.solve(a, b), [_spd(3, 4), np.random.default_rng(5).standard_normal((3, 2))]),
        "solve_triangular": (lambda a, b: L.solve_triangular(a.tril() + 3 * fd.eye(3, dtype=fd.float64), b,
                                                             upper=False),
                             [np.random.default_rng(6).standard_normal((3, 3)),
                              np.random.default_rng(7).standard_normal((3, 2))]),
        "cholesky": (lambda a: L.cholesky(a + a.mT), [_spd(3, 8)]),
        "qr": (lambda a: L.qr(a)[1], [np.random.default_rng(9).standard_normal((4, 3))]),
        "svd": (lambda a: L.svd(a, full_matrices=False)[1], [np.random.default_rng(10).standard_normal((4, 3))]),
        "pinv": (lambda a: L.pinv(a), [np.random.default_rng(11).standard_normal((4, 3))]),
        "lu_factor": (lambda a: L.lu_factor(a)[0], [np.random.default_rng(12).standard_normal((3, 3))]),
        "matrix_exp": (lambda a: L.matrix_exp(a), [0.5 * np.random.default_rng(13).standard_normal((3, 3))]),
        "eigh_values": (lambda a: L.eigvalsh(a + a.mT), [np.random.default_rng(14).standard_normal((3, 3))]),
        "eigh_vectors": (lambda a: L.eigh(a + a.mT)[1], [np.random.default_rng(15).standard_normal((3, 3))]),
        "svdvals": (lambda a: L.svdvals(a), [np.random.default_rng(16).standard_normal((4, 3))]),
        "cond": (lambda a: L.cond(a), [np.random.default_rng(17).standard_normal((3, 3))]),
    }
    fn, arrays = fns[name]
    args = [fd.tensor(a, requires_grad=True) for a in arrays]
    assert gradgradcheck(fn, args, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ["erfinv", "i0", "i1", "ndtri", "erfcx", "i0e"])
def test_special_function_second_derivatives(name):
    v = np.array([0.3, -0.5, 0.9, 0.999, -0.01]) if name in ("erfinv", "ndtri") else np.array([0.3, -1.2, 2.5, 9.0])
    if name == "ndtri":
        v = np.abs(v) * 0.98 + 0.01
    x = fd.tensor(v, requires_grad=True)
    assert gradgradcheck(getattr(fd.special, name), [x], atol=1e-5, rtol=1e-4)
    # float32 input: the same second derivative to float32 rounding (it had none: the float64
    # copy the kernel runs on was made outside the graph)
    hs = []
    for dt in (fd.float64, fd.float32):
        x = fd.tensor(v, dtype=dt, requires_grad=True)
        (g,) = fd.autograd.grad(getattr(fd.special, name)(x).sum(), x, create_graph=True)
        (h,) = fd.autograd.grad(g.sum(), x)
        assert h.dtype == dt
        hs.append(h.numpy())
    np.testing.assert_allclose(hs[1], hs[0], rtol=2e-4, atol=1e-5)


@pytest.mark.parametrize("reduce", ["sum", "mean"])
@pytest.mark.parametrize("shape,dim", [((7, 3), 0), ((2, 7), 1), ((7,), 0)])
def test_scatter_second_derivative(reduce, shape, dim):
    idx = fd.tensor(SEG)
    assert gradgradcheck(lambda s: F.scatter(s, idx, dim, reduce=reduce) * F.scatter(s, idx, dim, reduce=reduce),
                         [_t(shape, 30)])


@pytest.mark.parametrize("reduce", ["prod", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_second_derivative(reduce, include_self):
    # PyTorch composes these backwards (prod through scatter_reduce 'prod' itself), so they have a
    # second derivative; a zero in src (prod) and ties (amax / amin) are the special cases
    idx = fd.tensor(np.array([[0, 2], [1, 2], [0, 0], [3, 2]]))
    src = np.random.default_rng(33).standard_normal((4, 2))
    if reduce == "prod":
        src[1, 1] = 0.0  # the only zero of its target
    x0 = np.random.default_rng(34).standard_normal((5, 2))

    def f(x, s):
        return x.scatter_reduce(0, idx, s, reduce, include_self=include_self)
    x, s = fd.tensor(x0, requires_grad=True), fd.tensor(src, requires_grad=True)
    assert gradcheck(f, [x, s])
    assert gradgradcheck(f, [x, s])
    y = fd.index_reduce(x, 0, fd.tensor(np.array([4, 0, 4])), s[:3], reduce, include_self=include_self)
    assert y.requires_grad and gradgradcheck(
        lambda a, b: fd.index_reduce(a, 0, fd.tensor(np.array([4, 0, 4])), b, reduce, include_self=include_self),
        [x, fd.tensor(src[:3], requires_grad=True)])


def test_scatter_reduce_amax_splits_the_gradient_over_ties():
    x = fd.tensor(np.array([1.0, 5.0, 2.0]), requires_grad=True)
    s = fd.tensor(np.array([5.0, 3.0, 5.0]), requires_grad=True)
    x.scatter_reduce(0, fd.tensor(np.array([1, 1, 1])), s, "amax").sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1 / 3, 1.0])
    np.testing.assert_array_equal(s.grad.numpy(), [1 / 3, 0.0, 1 / 3])


def test_scatter_reduce_prod_two_zeros_in_a_target_raise_on_second_derivative():
    x, s = _t((5,), 31), fd.tensor(np.array([0.0, 2.0, 0.0, 3.0]), requires_grad=True)
    y = x.scatter_reduce(0, fd.tensor(np.array([0, 1, 0, 3])), s, "prod")
    g, = fd.autograd.grad(y.sum(), [s], create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), [0.0, x.detach().numpy()[1], 0.0, x.detach().numpy()[3]])
    with pytest.raises(RuntimeError, match="double backward is unsupported"):
        g.sum().backward()


NORMS = {
    "norm": lambda x, **kw: fd.norm(x, **kw),
    "norm_p3": lambda x, **kw: fd.norm(x, 3, **kw),
    "norm_p0.5": lambda x, **kw: fd.norm(x, 0.5, **kw),
    "linalg.norm": lambda x, **kw: fd.linalg.norm(x, **kw),
    "vector_norm": lambda x, **kw: fd.linalg.vector_norm(x, **kw),
}


@pytest.mark.parametrize("name", sorted(NORMS))
def test_norm_gradient_at_a_zero_slice_is_zero(name):
    # a zero row: PyTorch's subgradient 0, not 0 * inf = NaN; the other row's gradient untouched
    x = np.random.default_rng(3).standard_normal((2, 5))
    x[0] = 0.0
    x[1, 2] = 0.0
    t = fd.tensor(x, requires_grad=True)
    NORMS[name](t, dim=1).sum().backward()
    g = t.grad.numpy()
    assert np.all(np.isfinite(g)) and np.all(g[0] == 0)
    p = {"norm_p3": 3.0, "norm_p0.5": 0.5}.get(name, 2.0)
    r = x[1]
    n = np.sum(np.abs(r) ** p) ** (1 / p)
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero entry's gradient is 0, as in PyTorch
        want = np.where(r == 0, 0.0, np.sign(r) * np.abs(r) ** (p - 1) * n ** (1 - p))
    np.testing.assert_allclose(g[1], want, rtol=1e-12)


@pytest.mark.parametrize("name", ["norm", "linalg.norm", "vector_norm"])
def test_two_norm_second_derivative_at_a_zero_entry(name):
    # Hessian of ||x||: (I - x x^T / n^2) / n, which is 1 / n on the diagonal at a zero entry (it
    # read 0 when |x| was squared: the second derivative of |x|^2 through |x| is 0 at 0)
    x = np.random.default_rng(4).standard_normal(6)
    x[[1, 4]] = 0.0
    t = fd.tensor(x, requires_grad=True)
    (g,) = fd.autograd.grad(NORMS[name](t), t, create_graph=True)
    v = np.random.default_rng(5).standard_normal(6)
    (hv,) = fd.autograd.grad((g * fd.tensor(v)).sum(), t)
    n = np.linalg.norm(x)
    np.testing.assert_allclose(hv.numpy(), (v - x * (x @ v) / n**2) / n, rtol=1e-10, atol=1e-12)
    assert gradgradcheck(lambda a: NORMS[name](a), [_t((3, 4), 6)])


def test_bessel_second_derivative_at_zero():
    # I0'' = I1' = 1/2 at 0 and i0e'' = 1/2 there too (they read 0: sign(x)'s product rule at 0)
    for fn in (fd.special.i0, fd.special.i0e):
        x = fd.tensor(np.array([0.0, 0.75]), requires_grad=True)
        (g,) = fd.autograd.grad(fn(x).sum(), x, create_graph=True)
        (h,) = fd.autograd.grad(g.sum(), x)
        assert h.numpy()[0] == pytest.approx(0.5, abs=1e-12)
        assert gradgradcheck(fn, [fd.tensor(np.array([-1.3, 0.75]), requires_grad=True)])  # i0e has a kink at 0
