"""fastdl.autograd.functional and fastdl.func against torch.autograd.functional and torch.func,
in float64 on random inputs: values, return structures (tensor vs tuple vs nested tuple),
create_graph, has_aux, argnums, pytrees, functional_call on modules with buffers, and errors.

The test functions use only methods both libraries share, so one lambda runs on both."""
import numpy as np
import pytest

import fastdl as fd
import fastdl.autograd.functional as AF
import fastdl.func as FF

RTOL, ATOL = 1e-9, 1e-10


def _pair(rng, torch, *shape):
    a = np.asarray(rng.standard_normal(shape) + 0.5)  # never zeros; log/sqrt-free functions below accept any sign
    return fd.from_numpy(a.copy()), torch.from_numpy(a.copy())


def _pairs(rng, torch, shapes):
    ps = [_pair(rng, torch, *s) for s in shapes]
    return tuple(p[0] for p in ps), tuple(p[1] for p in ps)


def _close(ours, ref, torch, what="result"):
    """Same structure (tensor / tuple / list / dict, recursively), shapes and values."""
    if isinstance(ref, torch.Tensor):
        assert isinstance(ours, fd.Tensor), f"{what}: expected a Tensor, got {type(ours).__name__}"
        assert tuple(ours.shape) == tuple(ref.shape), f"{what}: shape {tuple(ours.shape)} vs {tuple(ref.shape)}"
        np.testing.assert_allclose(ours.detach().numpy(), ref.detach().numpy(), rtol=RTOL, atol=ATOL, err_msg=what)
    elif isinstance(ref, dict):
        assert isinstance(ours, dict) and list(ours) == list(ref), f"{what}: keys {ours} vs {list(ref)}"
        for k in ref:
            _close(ours[k], ref[k], torch, f"{what}[{k!r}]")
    elif isinstance(ref, (tuple, list)):
        assert type(ours) is type(ref) and len(ours) == len(ref), \
            f"{what}: {type(ours).__name__} of {len(ours) if hasattr(ours, '__len__') else '?'} vs " \
            f"{type(ref).__name__} of {len(ref)}"
        for i, (a, b) in enumerate(zip(ours, ref)):
            _close(a, b, torch, f"{what}[{i}]")
    else:
        assert ours == ref, f"{what}: {ours!r} vs {ref!r}"


def _grads_of(ours, ref, ins, ins_t, torch, rng):
    """Backpropagate a random weighting of create_graph results to the inputs in both libraries."""
    ol = ours if isinstance(ours, tuple) else (ours,)
    rl = ref if isinstance(ref, tuple) else (ref,)
    ws = [rng.standard_normal(tuple(r.shape)) for r in rl]
    lo = sum((o * fd.from_numpy(w)).sum() for o, w in zip(ol, ws))
    lr = sum((r * torch.from_numpy(w)).sum() for r, w in zip(rl, ws))
    _close(fd.autograd.grad(lo, list(ins)), torch.autograd.grad(lr, list(ins_t)), torch, "grad of create_graph result")


# Functions of one or two tensors: (name, fn, input shapes). fn works on fastdl and torch tensors.
JAC_CASES = [
    ("vector", lambda x: (x.sin() * x).tanh(), [(5,)]),
    ("matrix", lambda x: x.exp() * x.sigmoid(), [(2, 3)]),
    ("scalar_in", lambda x: x * x.cos(), [()]),
    ("to_scalar", lambda x: (x * x).sum(), [(3, 2)]),
    ("tuple_out", lambda x: (x.exp().sum(0), x.sigmoid() * 2), [(3, 4)]),
    ("tuple_in", lambda x, y: x @ y.tanh(), [(2, 3), (3, 4)]),
    ("tuple_in_out", lambda x, y: ((x * y).sin(), (x - y).sum()), [(3, 2), (3, 2)]),
]
# Second order needs a differentiable backward (see test_second_order_of_fused_activations).
SCALAR_CASES = [
    ("vector", lambda x: (x.sin() * x * x).sum(), [(4,)]),
    ("matrix", lambda x: (x @ x.T).cos().sum(), [(2, 3)]),
    ("scalar_in", lambda x: x.sin() * x ** 3, [()]),
    ("tuple_in", lambda x, y: ((x @ y).sin() * (x.sum() ** 2)).sum(), [(2, 3), (3,)]),
]


def _args(shapes, ins):
    return ins if len(shapes) > 1 else ins[0]


# ---- fastdl.autograd.functional ------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["reverse-mode", "forward-mode"])
@pytest.mark.parametrize("vectorize", [False, True])
@pytest.mark.parametrize("name,fn,shapes", JAC_CASES, ids=[c[0] for c in JAC_CASES])
def test_jacobian(rng, torch, name, fn, shapes, strategy, vectorize):
    ins, ins_t = _pairs(rng, torch, shapes)
    ours = AF.jacobian(fn, _args(shapes, ins), vectorize=vectorize, strategy=strategy)
    # torch's forward-mode needs vectorize=True and then returns lists for tuple inputs; its
    # documented structure (tuples) is reverse mode's
    ref = torch.autograd.functional.jacobian(fn, _args(shapes, ins_t), vectorize=vectorize)
    _close(ours, ref, torch)
    assert not any(t.requires_grad for t in _flat(ours))


def _flat(r):
    return [r] if isinstance(r, fd.Tensor) else [t for x in r for t in _flat(x)]


@pytest.mark.parametrize("name,fn,shapes", SCALAR_CASES[:2] + [
    ("tuple_out", lambda x: (x.sin() * x, (x * x).cos().sum()), [(3,)])], ids=["vector", "matrix", "tuple_out"])
def test_jacobian_create_graph(rng, torch, name, fn, shapes):
    ins, ins_t = _pairs(rng, torch, shapes)
    ins = tuple(t.requires_grad_() for t in ins)
    ins_t = tuple(t.requires_grad_() for t in ins_t)
    ours = AF.jacobian(fn, ins[0], create_graph=True)
    ref = torch.autograd.functional.jacobian(fn, ins_t[0], create_graph=True)
    _close(ours, ref, torch)
    assert all(t.requires_grad for t in _flat(ours))
    _grads_of(ours, ref, ins, ins_t, torch, rng)


def test_jacobian_unused_input_and_constant_output(rng, torch):
    (x, y), (xt, yt) = _pairs(rng, torch, [(3,), (2,)])
    fn = lambda a, b: (a.sin(), a * 0 + 1.5)  # noqa: E731  (b unused; second output constant in b)
    _close(AF.jacobian(fn, (x, y)), torch.autograd.functional.jacobian(fn, (xt, yt)), torch)
    const = AF.jacobian(lambda a: fd.ones(2, dtype=fd.float64), x)  # output needs no grad: zeros
    np.testing.assert_array_equal(const.numpy(), np.zeros((2, 3)))


@pytest.mark.parametrize("name,fn,shapes", JAC_CASES, ids=[c[0] for c in JAC_CASES])
def test_vjp_and_jvp(rng, torch, name, fn, shapes):
    ins, ins_t = _pairs(rng, torch, shapes)
    out_t = fn(*ins_t)
    outs_t = out_t if isinstance(out_t, tuple) else (out_t,)
    vo, vo_t = _pairs(rng, torch, [tuple(o.shape) for o in outs_t])
    vi, vi_t = _pairs(rng, torch, shapes)
    pick = lambda v, ref: v if isinstance(ref, tuple) else v[0]  # noqa: E731
    _close(AF.vjp(fn, _args(shapes, ins), pick(vo, out_t)),
           torch.autograd.functional.vjp(fn, _args(shapes, ins_t), pick(vo_t, out_t)), torch)
    _close(AF.jvp(fn, _args(shapes, ins), _args(shapes, vi)),
           torch.autograd.functional.jvp(fn, _args(shapes, ins_t), _args(shapes, vi_t)), torch)


def test_vjp_jvp_default_v_and_create_graph(rng, torch):
    (x,), (xt,) = _pairs(rng, torch, [(1,)])
    fn = lambda a: a.sin() * a  # noqa: E731
    _close(AF.vjp(fn, x), torch.autograd.functional.vjp(fn, xt), torch)
    _close(AF.jvp(fn, x), torch.autograd.functional.jvp(fn, xt), torch)
    (x, v), (xt, vt) = _pairs(rng, torch, [(3, 2), (3, 2)])
    x.requires_grad_()
    xt.requires_grad_()
    for name in ("vjp", "jvp"):
        ours = getattr(AF, name)(fn, x, v, create_graph=True)
        ref = getattr(torch.autograd.functional, name)(fn, xt, vt, create_graph=True)
        _close(ours, ref, torch)
        assert ours[1].requires_grad
        _grads_of(ours[1], ref[1], (x,), (xt,), torch, rng)
        plain = getattr(AF, name)(fn, x, v)
        assert not plain[0].requires_grad and not plain[1].requires_grad


@pytest.mark.parametrize("outer", ["reverse-mode", "forward-mode"])
@pytest.mark.parametrize("name,fn,shapes", SCALAR_CASES, ids=[c[0] for c in SCALAR_CASES])
def test_hessian(rng, torch, name, fn, shapes, outer):
    ins, ins_t = _pairs(rng, torch, shapes)
    ours = AF.hessian(fn, _args(shapes, ins), outer_jacobian_strategy=outer)
    _close(ours, torch.autograd.functional.hessian(fn, _args(shapes, ins_t)), torch)
    h = ours if isinstance(ours, fd.Tensor) else None
    if h is not None and h.ndim == 2:  # symmetric
        np.testing.assert_allclose(h.numpy(), h.numpy().T, rtol=1e-12, atol=1e-12)


def test_hessian_create_graph(rng, torch):
    fn = SCALAR_CASES[0][1]
    (x,), (xt,) = _pairs(rng, torch, [(3,)])
    x.requires_grad_()
    xt.requires_grad_()
    ours = AF.hessian(fn, x, create_graph=True)
    ref = torch.autograd.functional.hessian(fn, xt, create_graph=True)
    _close(ours, ref, torch)
    _grads_of(ours, ref, (x,), (xt,), torch, rng)


@pytest.mark.parametrize("op", ["vhp", "hvp"])
@pytest.mark.parametrize("name,fn,shapes", SCALAR_CASES, ids=[c[0] for c in SCALAR_CASES])
def test_vhp_hvp(rng, torch, name, fn, shapes, op):
    ins, ins_t = _pairs(rng, torch, shapes)
    v, vt = _pairs(rng, torch, shapes)
    ours = getattr(AF, op)(fn, _args(shapes, ins), _args(shapes, v))
    _close(ours, getattr(torch.autograd.functional, op)(fn, _args(shapes, ins_t), _args(shapes, vt)), torch)
    if len(shapes) == 1:
        ins = tuple(t.requires_grad_() for t in ins)
        ins_t = tuple(t.requires_grad_() for t in ins_t)
        o = getattr(AF, op)(fn, ins[0], v[0], create_graph=True)
        r = getattr(torch.autograd.functional, op)(fn, ins_t[0], vt[0], create_graph=True)
        _close(o, r, torch)
        _grads_of(o[1], r[1], ins, ins_t, torch, rng)


def test_strict_and_argument_errors(rng):
    x = fd.from_numpy(rng.standard_normal(3) + 0.5)
    y = fd.from_numpy(rng.standard_normal(2) + 0.5)
    with pytest.raises(RuntimeError, match="jacobian: output 0 .* independent of input 1"):
        AF.jacobian(lambda a, b: a.sin(), (x, y), strict=True)
    with pytest.raises(RuntimeError, match="jvp: .* independent of input 1"):
        AF.jvp(lambda a, b: a.sin(), (x, y), (x, y), strict=True)
    w = fd.from_numpy(rng.standard_normal(2) + 0.5).requires_grad_()
    with pytest.raises(RuntimeError, match="jvp: output 1 .* independent of the inputs"):
        AF.jvp(lambda a, b: (a.sin() * b.sum(), w * 2), (x, y), (x, y), strict=True)
    with pytest.raises(RuntimeError, match="vjp: output 0 .* does not require gradients"):
        AF.vjp(lambda a: fd.ones(3, dtype=fd.float64), x, x, strict=True)
    with pytest.raises(RuntimeError, match="hessian: .*single element; got shape \\(3,\\)"):
        AF.hessian(lambda a: a.sin(), x)
    with pytest.raises(RuntimeError, match="vhp: .*single Tensor"):
        AF.vhp(lambda a: (a.sin().sum(), a.sum()), x, x)
    with pytest.raises(RuntimeError, match="vjp: v has invalid size: should be \\(3,\\) but got \\(2,\\)"):
        AF.vjp(lambda a: a.sin(), x, y)
    with pytest.raises(RuntimeError, match="jvp: v is a tuple of invalid length"):
        AF.jvp(lambda a, b: a * b.sum(), (x, y), (x,))
    with pytest.raises(RuntimeError, match="vjp: the vector v can only be None"):
        AF.vjp(lambda a: a.sin(), x)
    with pytest.raises(TypeError, match="jacobian: the inputs must be either a Tensor"):
        AF.jacobian(lambda a: a, [x])
    with pytest.raises(ValueError, match="jacobian: strategy"):
        AF.jacobian(lambda a: a, x, strategy="sideways")
    with pytest.raises(RuntimeError, match="strict=True and vectorize=True"):
        AF.jacobian(lambda a: a, x, strict=True, vectorize=True)


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "exp"])
def test_second_order_of_fused_activations(rng, torch, act):
    (x,), (xt,) = _pairs(rng, torch, [(3,)])
    fn = lambda a: getattr(a, act)().sum()  # noqa: E731
    _close(AF.hessian(fn, x), torch.autograd.functional.hessian(fn, xt), torch)


# ---- fastdl.func -----------------------------------------------------------------------------
def test_grad_argnums_and_values(rng, torch):
    (x, y), (xt, yt) = _pairs(rng, torch, [(3, 2), (2,)])
    f = lambda a, b: ((a @ b).sin() * a.sum()).sum()  # noqa: E731
    for argnums in (0, 1, -1, (0, 1), (1,)):
        _close(FF.grad(f, argnums)(x, y), torch.func.grad(f, argnums)(xt, yt), torch, f"argnums={argnums}")
    _close(FF.grad_and_value(f, (1, 0))(x, y), torch.func.grad_and_value(f, (1, 0))(xt, yt), torch)
    g = FF.grad(f)(x, y)
    assert not g.requires_grad and not x.requires_grad  # plain inputs give plain results


def test_grad_has_aux_and_pytrees(rng, torch):
    (w, b, x), (wt, bt, xt) = _pairs(rng, torch, [(3, 2), (3,), (4, 2)])

    def loss(params, inp):
        out = (inp @ params["w"].T + params["b"]).sin()
        return (out * out).sum(), {"out": out, "total": out.sum()}
    ours = FF.grad(loss, has_aux=True)({"w": w, "b": b}, x)
    ref = torch.func.grad(loss, has_aux=True)({"w": wt, "b": bt}, xt)
    _close(ours, ref, torch)
    assert not ours[1]["out"].requires_grad
    _close(FF.grad_and_value(loss, has_aux=True)({"w": w, "b": b}, x),
           torch.func.grad_and_value(loss, has_aux=True)({"w": wt, "b": bt}, xt), torch)
    tl = lambda ab, inp: ((inp @ ab[0].T).cos() * ab[1]).sum()  # noqa: E731  (a list and a tuple)
    _close(FF.grad(tl)([w, b], x), torch.func.grad(tl)([wt, bt], xt), torch)
    _close(FF.grad(tl)((w, b), x), torch.func.grad(tl)((wt, bt), xt), torch)


def test_grad_nested(rng, torch):
    (x,), (xt,) = _pairs(rng, torch, [()])
    f = lambda a: a.sin() * a ** 3  # noqa: E731
    _close(FF.grad(FF.grad(f))(x), torch.func.grad(torch.func.grad(f))(xt), torch)
    _close(FF.grad(FF.grad(FF.grad(f)))(x), torch.func.grad(torch.func.grad(torch.func.grad(f)))(xt), torch)
    (v, y), (vt, yt) = _pairs(rng, torch, [(3,), (3,)])
    # gradient of a function of another gradient, inputs mixed between levels
    h = lambda a, b: (FF.grad(lambda c: (c.sin() * b).sum())(a) * a).sum()  # noqa: E731
    ht = lambda a, b: (torch.func.grad(lambda c: (c.sin() * b).sum())(a) * a).sum()  # noqa: E731
    _close(FF.grad(h, (0, 1))(v, y), torch.func.grad(ht, (0, 1))(vt, yt), torch)


def test_grad_through_captured_parameter(rng, torch):
    """A gradient penalty: grad's result stays differentiable w.r.t. tensors the function captures."""
    (w, x), (wt, xt) = _pairs(rng, torch, [(3,), (3,)])
    w.requires_grad_()
    wt.requires_grad_()
    penalty = (FF.grad(lambda a: (a * w).sin().sum())(x) ** 2).sum()
    penalty_t = (torch.func.grad(lambda a: (a * wt).sin().sum())(xt) ** 2).sum()
    _close(penalty, penalty_t, torch)
    assert penalty.requires_grad
    _close(fd.autograd.grad(penalty, [w]), torch.autograd.grad(penalty_t, [wt]), torch)
    with fd.no_grad():
        assert not FF.grad(lambda a: (a * w).sin().sum())(x).requires_grad


def test_func_vjp_and_jvp(rng, torch):
    (x, y), (xt, yt) = _pairs(rng, torch, [(3, 2), (2,)])
    f = lambda a, b: ((a @ b).sin(), {"s": (a * a).sum() * b})  # noqa: E731
    out, fn = FF.vjp(f, x, y)
    out_t, fn_t = torch.func.vjp(f, xt, yt)
    _close(out, out_t, torch)
    for _ in range(2):  # vjp_fn may be called again
        (c0, c1), (c0t, c1t) = _pairs(rng, torch, [(3,), (2,)])
        _close(fn((c0, {"s": c1})), fn_t((c0t, {"s": c1t})), torch)
    out, fn, aux = FF.vjp(lambda a: (a.exp(), a.sum()), x, has_aux=True)
    out_t, fn_t, aux_t = torch.func.vjp(lambda a: (a.exp(), a.sum()), xt, has_aux=True)
    (c,), (ct,) = _pairs(rng, torch, [(3, 2)])
    _close((out, fn(c), aux), (out_t, fn_t(ct), aux_t), torch)
    (tx, ty), (txt, tyt) = _pairs(rng, torch, [(3, 2), (2,)])
    _close(FF.jvp(f, (x, y), (tx, ty)), torch.func.jvp(f, (xt, yt), (txt, tyt)), torch)
    g = lambda a: (a.tanh(), a.sum())  # noqa: E731
    _close(FF.jvp(g, (x,), (tx,), has_aux=True), torch.func.jvp(g, (xt,), (txt,), has_aux=True), torch)


@pytest.mark.parametrize("api", ["jacrev", "jacfwd"])
def test_jacrev_jacfwd(rng, torch, api):
    (x, y), (xt, yt) = _pairs(rng, torch, [(3, 2), (2,)])
    ours_api, ref_api = getattr(FF, api), getattr(torch.func, api)
    f = lambda a, b: ((a @ b).sin(), {"p": a.exp() * b})  # noqa: E731
    for argnums in (0, 1, (0, 1), (1, 0)):
        _close(ours_api(f, argnums)(x, y), ref_api(f, argnums)(xt, yt), torch, f"argnums={argnums}")
    h = lambda a: (a.sigmoid() * a, a.sum())  # noqa: E731
    kw = {"has_aux": True}
    _close(ours_api(h, **kw)(x), ref_api(h, **kw)(xt), torch)
    _close(ours_api(lambda d: d["a"].sin() * d["b"])({"a": x, "b": y}),
           ref_api(lambda d: d["a"].sin() * d["b"])({"a": xt, "b": yt}), torch)


def test_func_hessian(rng, torch):
    (x, y), (xt, yt) = _pairs(rng, torch, [(3,), (2,)])
    f = lambda a, b: ((a.sin() * a).sum() * (b * b).sum().cos())  # noqa: E731
    for argnums in (0, 1, (0, 1)):
        _close(FF.hessian(f, argnums)(x, y), torch.func.hessian(f, argnums)(xt, yt), torch, f"argnums={argnums}")
    _close(FF.jacrev(FF.jacrev(f))(x, y), torch.func.hessian(f)(xt, yt), torch)


def test_func_errors(rng):
    x = fd.from_numpy(rng.standard_normal(3) + 0.5)

    def loss(a):
        return a.sin()
    with pytest.raises(RuntimeError, match=r"grad\(loss\)\(\*args\): loss must return a scalar .*got shape \(3,\)"):
        FF.grad(loss)(x)
    with pytest.raises(RuntimeError, match=r"grad_and_value\(loss\)\(\*args\): loss must return a scalar"):
        FF.grad_and_value(loss)(x)
    with pytest.raises(RuntimeError, match=r"grad\(loss\)\(\*args\): loss should return a tuple \(output, aux\)"):
        FF.grad(loss, has_aux=True)(x)
    with pytest.raises(ValueError, match=r"jacrev\(loss\)\(\*args\): argnums=2 but only 1 positional"):
        FF.jacrev(loss, argnums=2)(x)
    with pytest.raises(ValueError, match="argnums must be unique"):
        FF.grad(lambda a, b: (a * b).sum(), (0, -2))(x, x)
    with pytest.raises(TypeError, match="floating point"):
        FF.grad(lambda a: a.sum())(fd.tensor([1, 2]))
    _, fn = FF.vjp(loss, x)
    with pytest.raises(RuntimeError, match=r"cotangent 0 must match output 0 of shape \(3,\); got \(2,\)"):
        fn(fd.ones(2, dtype=fd.float64))
    with pytest.raises(RuntimeError, match="independent of the primals"):
        FF.jvp(lambda a: fd.ones(2, dtype=fd.float64), (x,), (x,), strict=True)


def test_func_vmap_is_fastdl_vmap(rng, torch):
    """func.vmap is fd.vmap (tests/test_vmap.py); here composed with jacrev and functional_call."""
    assert FF.vmap is fd.vmap
    (x,), (xt,) = _pairs(rng, torch, [(4, 3)])
    f = lambda a: a.sin() * a.sum()  # noqa: E731
    _close(FF.vmap(FF.jacrev(f))(x), torch.func.vmap(torch.func.jacrev(f))(xt), torch)


# ---- functional_call -------------------------------------------------------------------------
def _twin_linear(rng, torch, i, o):
    m = fd.nn.Linear(i, o, dtype=fd.float64)
    mt = torch.nn.Linear(i, o).double()
    with torch.no_grad():
        mt.weight.copy_(torch.from_numpy(m.weight.detach().numpy()))
        mt.bias.copy_(torch.from_numpy(m.bias.detach().numpy()))
    return m, mt


def test_functional_call_linear(rng, torch):
    m, mt = _twin_linear(rng, torch, 4, 3)
    (w, b, x), (wt, bt, xt) = _pairs(rng, torch, [(3, 4), (3,), (5, 4)])
    w.requires_grad_()
    wt.requires_grad_()
    old_w = m.weight
    out = FF.functional_call(m, {"weight": w, "bias": b}, (x,))
    out_t = torch.func.functional_call(mt, {"weight": wt, "bias": bt}, (xt,))
    _close(out, out_t, torch)
    assert m.weight is old_w and "weight" not in m.__dict__
    _close(fd.autograd.grad(out.sin().sum(), [w]), torch.autograd.grad(out_t.sin().sum(), [wt]), torch)
    # a partial dict swaps only what it names; a single tensor argument is wrapped; kwargs pass through
    _close(FF.functional_call(m, {"bias": b}, x), torch.func.functional_call(mt, {"bias": bt}, xt), torch)
    _close(FF.functional_call(m, ({"weight": w}, {"bias": b}), kwargs={"input": x}),
           torch.func.functional_call(mt, ({"weight": wt}, {"bias": bt}), kwargs={"input": xt}), torch)


def test_functional_call_sequential_batchnorm(rng, torch):
    (l1, l1t), (l2, l2t) = _twin_linear(rng, torch, 4, 3), _twin_linear(rng, torch, 3, 2)
    m = fd.nn.Sequential(l1, fd.nn.BatchNorm1d(3, dtype=fd.float64), l2)
    mt = torch.nn.Sequential(l1t, torch.nn.BatchNorm1d(3).double(), l2t)
    names = [n for n, _ in mt.named_parameters()] + [n for n, _ in mt.named_buffers()]
    assert names == [n for n, _ in m.named_parameters()] + [n for n, _ in m.named_buffers()]
    vals, vals_t = {}, {}
    for n, t in mt.state_dict().items():
        if n.endswith("num_batches_tracked"):
            vals[n], vals_t[n] = fd.tensor(3, dtype=fd.int64), torch.tensor(3)
        else:
            a = rng.standard_normal(tuple(t.shape)) + (2.0 if n.endswith("running_var") else 0.5)
            a = np.abs(a) if n.endswith("running_var") else a
            vals[n], vals_t[n] = fd.from_numpy(a.copy()), torch.from_numpy(a.copy())
    (x,), (xt,) = _pairs(rng, torch, [(6, 4)])
    before = {n: t.detach().numpy().copy() for n, t in m.state_dict().items()}
    for train in (True, False):
        m.train(train)
        mt.train(train)
        _close(FF.functional_call(m, vals, (x,)), torch.func.functional_call(mt, vals_t, (xt,)), torch, f"train={train}")
    for n in vals:  # running stats were updated in the given buffers, as torch does
        _close(vals[n], vals_t[n], torch, n)
    for n, t in m.state_dict().items():  # the module's own state is untouched
        np.testing.assert_array_equal(t.detach().numpy(), before[n])
    # gradients through functional_call w.r.t. a dict of parameters, composed with func.grad
    params = {n: vals[n] for n, _ in m.named_parameters()}
    params_t = {n: vals_t[n] for n, _ in mt.named_parameters()}
    loss = lambda mod, fc, p, inp: (fc(mod, p, (inp,)) ** 2).sum()  # noqa: E731
    _close(FF.grad(lambda p: loss(m, FF.functional_call, p, x))(params),
           torch.func.grad(lambda p: loss(mt, torch.func.functional_call, p, xt))(params_t), torch)


def test_functional_call_restores_on_error_and_checks(rng, torch):
    m, _ = _twin_linear(rng, torch, 4, 3)
    old = m.weight
    w = fd.from_numpy(rng.standard_normal((3, 4)))
    with pytest.raises(ValueError):
        FF.functional_call(m, {"weight": w}, (fd.ones(2, 5, dtype=fd.float64),))  # wrong in_features
    assert m.weight is old
    with pytest.raises(RuntimeError, match="Unexpected key\\(s\\): 'nope'.\n\tMissing key\\(s\\): 'bias'"):
        FF.functional_call(m, {"weight": w, "nope": w}, (fd.ones(2, 4, dtype=fd.float64),), strict=True)
    with pytest.raises(ValueError, match="appeared in multiple dictionaries"):
        FF.functional_call(m, ({"weight": w}, {"weight": w}), (fd.ones(2, 4, dtype=fd.float64),))
    with pytest.raises(ValueError, match="must be a dict or a list/tuple of dicts"):
        FF.functional_call(m, [w], (fd.ones(2, 4, dtype=fd.float64),))
    assert m.weight is old


def test_functional_call_tied_weights(rng, torch):
    a, b = fd.nn.Linear(3, 3, dtype=fd.float64), fd.nn.Linear(3, 3, dtype=fd.float64)
    b.weight = a.weight
    m = fd.nn.Sequential(a, b)
    at, bt = torch.nn.Linear(3, 3).double(), torch.nn.Linear(3, 3).double()
    bt.weight = at.weight
    mt = torch.nn.Sequential(at, bt)
    with torch.no_grad():
        for (n, p), (_, pt) in zip(m.named_parameters(), mt.named_parameters()):
            pt.copy_(torch.from_numpy(p.detach().numpy()))
    (w, x), (wt, xt) = _pairs(rng, torch, [(3, 3), (2, 3)])
    for tie in (True, False):
        _close(FF.functional_call(m, {"0.weight": w}, (x,), tie_weights=tie),
               torch.func.functional_call(mt, {"0.weight": wt}, (xt,), tie_weights=tie), torch, f"tie={tie}")
    with pytest.raises(ValueError, match="tied"):
        FF.functional_call(m, {"0.weight": w, "1.weight": w * 2}, (x,))
    assert m[0].weight is m[1].weight is a.weight
