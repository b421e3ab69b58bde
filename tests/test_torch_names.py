"""PyTorch's remaining top-level names and Tensor members (fastdl/_torch_names.py) against
PyTorch: torch.* spellings of nn.functional ops in torch's argument order, comparison aliases,
dtype queries, complex helpers on real tensors, settings."""
import numpy as np
import pytest

import fastdl as fd

torch = pytest.importorskip("torch")


def close(a, b, tol=1e-6):
    a = a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)
    b = b.detach().numpy() if hasattr(b, "detach") else np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.fixture
def x():
    return np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)


def test_aliases_and_identities(x):
    f, t = fd.tensor(x), torch.tensor(x)
    y = np.random.default_rng(1).standard_normal((3, 5)).astype(np.float32)
    for name in ("greater", "greater_equal", "less", "less_equal", "not_equal"):
        close(getattr(fd, name)(f, fd.tensor(y)), getattr(torch, name)(t, torch.tensor(y)))
    close(fd.absolute(f), torch.absolute(t))
    for name in ("conj", "conj_physical", "resolve_conj", "resolve_neg"):
        close(getattr(fd, name)(f), getattr(torch, name)(t))
        close(getattr(f, name)(), getattr(t, name)())
    assert fd.conj(f) is f and f.real is f and not f.is_conj() and not f.is_neg() and not fd.is_complex(f)
    with pytest.raises(RuntimeError, match="imag"):
        f.imag  # noqa: B018
    z = np.array([-2.0, 0.0, 3.0, np.nan], np.float32)
    close(fd.angle(fd.tensor(z)), torch.angle(torch.tensor(z)))
    close(f.H, t.H)
    close(f.mH, t.mH)
    close(fd.adjoint(fd.tensor(x[None])), torch.adjoint(torch.tensor(x[None])))
    with pytest.raises(RuntimeError, match="2-D"):
        fd.tensor(x[0]).H  # noqa: B018
    close(fd.row_stack([f, f]), torch.row_stack([t, t]))
    m = [np.random.default_rng(i).standard_normal(s) for i, s in enumerate([(3, 4), (4, 5), (5, 2)])]
    close(fd.chain_matmul(*map(fd.tensor, m)), torch.chain_matmul(*map(torch.tensor, m)), 1e-10)
    v = np.array([1.5, -2.0, 3.0, 0.5])
    for kw in ({}, {"N": 2}, {"N": 5, "increasing": True}):
        close(fd.vander(fd.tensor(v), **kw), torch.vander(torch.tensor(v), **kw), 1e-12)
    with pytest.warns(UserWarning):
        want = torch.range(1, 4, 0.5)
    close(fd.range(1, 4, 0.5), want)
    assert f.layout is fd.strided and f.get_device() == -1 and f.dim_order() == t.dim_order()
    assert fd.tensor(x).t().dim_order() == tuple(torch.tensor(x).t().dim_order())


def test_dtype_queries():
    for dt, tdt in ((fd.float32, torch.float32), (fd.float64, torch.float64), (fd.float16, torch.float16),
                    (fd.bfloat16, torch.bfloat16)):
        a, b = fd.finfo(dt), torch.finfo(tdt)
        for k in ("bits", "eps", "max", "min", "tiny", "resolution"):
            assert getattr(a, k) == pytest.approx(getattr(b, k), rel=1e-6), (dt, k)
    for dt, tdt in ((fd.int32, torch.int32), (fd.int64, torch.int64)):
        assert (fd.iinfo(dt).min, fd.iinfo(dt).max, fd.iinfo(dt).bits) == \
            (torch.iinfo(tdt).min, torch.iinfo(tdt).max, torch.iinfo(tdt).bits)
    with pytest.raises(TypeError, match="finfo"):
        fd.finfo(fd.int32)
    names = {"float32": (fd.float32, torch.float32), "float64": (fd.float64, torch.float64),
             "int32": (fd.int32, torch.int32), "int64": (fd.int64, torch.int64), "bool": (fd.bool, torch.bool),
             "float16": (fd.float16, torch.float16)}
    for a, (fa, ta) in names.items():
        for b, (fb, tb) in names.items():
            assert str(fd.promote_types(fa, fb)).split(".")[1] == str(torch.promote_types(ta, tb)).split(".")[1], (a, b)
            assert fd.can_cast(fa, fb) == torch.can_cast(ta, tb), (a, b)
    cases = [(fd.tensor([1], dtype=fd.int32), 2.5, torch.tensor([1], dtype=torch.int32), 2.5),
             (fd.tensor([1], dtype=fd.int32), fd.tensor(1.0, dtype=fd.float64),
              torch.tensor([1], dtype=torch.int32), torch.tensor(1.0, dtype=torch.float64)),
             (fd.tensor([1.0], dtype=fd.float32), fd.tensor([1.0], dtype=fd.float64),
              torch.tensor([1.0]), torch.tensor([1.0], dtype=torch.float64)),
             (fd.tensor([True]), 3, torch.tensor([True]), 3)]
    for a, b, ta, tb in cases:
        assert str(fd.result_type(a, b)).split(".")[1] == str(torch.result_type(ta, tb)).split(".")[1]
    assert fd.is_nonzero(fd.tensor([2.0])) and not fd.is_nonzero(fd.tensor(0))
    with pytest.raises(RuntimeError, match="ambiguous"):
        fd.is_nonzero(fd.ones(2))
    assert fd.is_same_size(fd.ones(2, 3), fd.zeros(2, 3)) and not fd.is_same_size(fd.ones(2), fd.ones(3))
    assert fd.is_signed(fd.ones(1)) and not fd.is_signed(fd.ones(1, dtype=fd.bool))


def test_functional_spellings_in_torch_order(x):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    fa, ta = fd.tensor(a), torch.tensor(a)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    close(fd.conv2d(fa, fd.tensor(w), None, 1, 1), torch.conv2d(ta, torch.tensor(w), None, 1, 1), 1e-4)
    g, b = rng.standard_normal(3).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    close(fd.batch_norm(fa, fd.tensor(g), fd.tensor(b), fd.tensor(rm), fd.tensor(rv), True, 0.1, 1e-5, True),
          torch.batch_norm(ta, torch.tensor(g), torch.tensor(b), torch.tensor(rm), torch.tensor(rv), True, 0.1, 1e-5,
                           True), 1e-4)
    close(fd.instance_norm(fa, fd.tensor(g), fd.tensor(b), None, None, True, 0.1, 1e-5, False),
          torch.instance_norm(ta, torch.tensor(g), torch.tensor(b), None, None, True, 0.1, 1e-5, False), 1e-4)
    close(fd.layer_norm(fa, [8, 8]), torch.layer_norm(ta, [8, 8]), 1e-4)
    close(fd.group_norm(fa, 3), torch.group_norm(ta, 3), 1e-4)
    emb = rng.standard_normal((10, 4)).astype(np.float32)
    idx = np.array([[1, 2], [9, 0]])
    close(fd.embedding(fd.tensor(emb), fd.tensor(idx)), torch.embedding(torch.tensor(emb), torch.tensor(idx)))
    close(fd.max_pool2d(fa, 2), torch.max_pool2d(ta, 2))
    s = rng.standard_normal((2, 3, 9)).astype(np.float32)
    fo, fi = fd.adaptive_max_pool1d(fd.tensor(s), 4)
    to, ti = torch.adaptive_max_pool1d(torch.tensor(s), 4)
    close(fo, to)
    assert np.array_equal(fi.numpy(), ti.numpy())
    close(fd.avg_pool1d(fd.tensor(s), 3), torch.avg_pool1d(torch.tensor(s), 3))
    f, t = fd.tensor(x), torch.tensor(x)
    for name, args in (("selu", ()), ("celu", (0.7,)), ("hardshrink", (0.3,)), ("threshold", (0.1, -1.0))):
        close(getattr(fd, name)(f, *args), getattr(torch, name)(t, *args))
    close(f.hardshrink(0.2), t.hardshrink(0.2))
    wp = np.array([0.25], np.float32)
    close(fd.prelu(f, fd.tensor(wp)), torch.prelu(t, torch.tensor(wp)))
    close(fd.cosine_similarity(f, f + 1), torch.cosine_similarity(t, t + 1))
    close(fd.pairwise_distance(f, f * 2), torch.pairwise_distance(t, t * 2), 1e-5)
    close(fd.pdist(f), torch.pdist(t), 1e-5)
    close(fd.pixel_shuffle(fd.tensor(a[:, :, :4, :4].repeat(4, 1)), 2),
          torch.pixel_shuffle(torch.tensor(a[:, :, :4, :4].repeat(4, 1)), 2))
    p = rng.random((3, 5)).astype(np.float32)
    lp = np.log(rng.dirichlet(np.ones(5), 3)).astype(np.float32)
    for red in (0, 1, 2):
        close(fd.kl_div(fd.tensor(lp), fd.tensor(p), red), torch.kl_div(torch.tensor(lp), torch.tensor(p), red), 1e-5)
        close(fd.binary_cross_entropy_with_logits(f, fd.tensor(p), None, None, red),
              torch.binary_cross_entropy_with_logits(t, torch.tensor(p), None, None, red), 1e-5)
    y = np.sign(rng.standard_normal(3)).astype(np.float32)
    close(fd.cosine_embedding_loss(f, f + 1, fd.tensor(y), 0.1, 2),
          torch.cosine_embedding_loss(t, t + 1, torch.tensor(y), 0.1, 2), 1e-5)
    close(fd.margin_ranking_loss(f[:, 0], f[:, 1], fd.tensor(y), 0.2, 1),
          torch.margin_ranking_loss(t[:, 0], t[:, 1], torch.tensor(y), 0.2, 1), 1e-5)
    close(fd.hinge_embedding_loss(f, fd.tensor(np.sign(x)), 1.0, 1),
          torch.hinge_embedding_loss(t, torch.tensor(np.sign(x)), 1.0, 1), 1e-5)
    close(fd.triplet_margin_loss(f, f + 1, f * 2, 1.0, 2.0, 1e-6, False, 1),
          torch.triplet_margin_loss(t, t + 1, t * 2, 1.0, 2.0, 1e-6, False, 1), 1e-5)
    close(fd.poisson_nll_loss(f, fd.tensor(p), True, False, 1e-8, 1),
          torch.poisson_nll_loss(t, torch.tensor(p), True, False, 1e-8, 1), 1e-5)
    with pytest.raises(ValueError, match="reduction"):
        fd.kl_div(fd.tensor(lp), fd.tensor(p), 7)
    fd.manual_seed(3)
    d = fd.dropout(fd.ones(1000), 0.5, True)
    assert set(np.unique(d.numpy())) <= {0.0, 2.0} and 300 < int((d.numpy() == 0).sum()) < 700
    assert fd.dropout(f, 0.5, False) is not None and np.array_equal(fd.dropout(f, 0.5, False).numpy(), x)


def test_members_and_settings(x):
    f, t = fd.tensor(x.copy()), torch.tensor(x.copy())
    m1, m2 = np.random.default_rng(3).standard_normal((2, 3, 3)).astype(np.float32)
    f3, t3 = fd.tensor(x[:, :3].copy()), torch.tensor(x[:, :3].copy())
    close(f3.addmm_(fd.tensor(m1), fd.tensor(m2), beta=0.5, alpha=2), t3.addmm_(torch.tensor(m1), torch.tensor(m2),
                                                                                 beta=0.5, alpha=2), 1e-5)
    close(f.clone().apply_(lambda v: v * 2 + 1), t.clone().apply_(lambda v: v * 2 + 1), 1e-6)
    close(f.clone().map_(f[0], lambda a, b: a - b), t.clone().map_(t[0], lambda a, b: a - b), 1e-6)
    n = f.new(2, 3)
    assert tuple(n.shape) == (2, 3) and n.dtype == f.dtype
    assert np.array_equal(f.new([1.0, 2.0]).numpy(), np.array([1.0, 2.0], np.float32))
    assert not f.is_pinned() and not f.is_sparse() and not f.is_quantized() and not f.is_meta()
    p = f.pin_memory()
    assert p is not f and np.array_equal(p.numpy(), x)
    assert f.share_memory_() is f and f.output_nr == 0
    fd.use_deterministic_algorithms(True)
    assert fd.are_deterministic_algorithms_enabled()
    fd.use_deterministic_algorithms(False)
    fd.set_float32_matmul_precision("high")
    assert fd.get_float32_matmul_precision() == "high"
    fd.set_float32_matmul_precision("highest")
    with pytest.raises(ValueError, match="precision"):
        fd.set_float32_matmul_precision("fast")
    fd.manual_seed(1234)
    assert fd.initial_seed() == 1234
    s = fd.seed()
    assert fd.initial_seed() == s
    a = fd.rand(3)
    fd.manual_seed(s)
    assert np.array_equal(fd.rand(3).numpy(), a.numpy())

    @fd.compile
    def twice(v):
        return v * 2
    assert np.array_equal(twice(f).numpy(), x * 2)
    model = fd.nn.Linear(2, 2)
    assert fd.compile(model) is model and fd.compile(mode="max-autotune")(model) is model
    buf = bytearray(np.arange(6, dtype=np.float32).tobytes())
    fb = fd.frombuffer(buf, dtype=fd.float32, count=4, offset=4)
    assert np.array_equal(fb.numpy(), np.arange(1, 5, dtype=np.float32))
    arr = np.arange(4.0)
    aa = fd.asarray(arr)
    assert np.array_equal(aa.numpy(), arr)
    assert fd.asarray(f) is f and fd.asarray(f, copy=True) is not f


@pytest.mark.parametrize("opts", [{}, {"precision": 2}, {"sci_mode": True}, {"sci_mode": False, "precision": 6},
                                  {"profile": "short"}, {"threshold": 5, "edgeitems": 1}, {"linewidth": 30},
                                  {"threshold": 10, "edgeitems": 2}, {"profile": "full"}])
def test_set_printoptions_prints_as_pytorch(opts):
    rng = np.random.default_rng(5)
    arrays = [np.array([[1.23456, -2.5, 3e-3], [4.0, 5.5, 6.25]], np.float32), np.arange(20, dtype=np.float32) / 7,
              np.arange(12.0, dtype=np.float32), rng.standard_normal((6, 7)).astype(np.float32),
              np.arange(30).reshape(5, 6)]
    # (Known difference: a summarized row longer than the line wraps at other elements than PyTorch's.)
    try:
        fd.set_printoptions(**opts)
        torch.set_printoptions(**opts)
        for a in arrays:
            assert repr(fd.tensor(a)) == repr(torch.tensor(a)), (opts, a.shape)
    finally:
        fd.set_printoptions(profile="default")
        torch.set_printoptions(profile="default")
    with pytest.raises(ValueError, match="profile"):
        fd.set_printoptions(profile="long")


def _t(a, grad=False):
    return fd.tensor(a.detach().numpy(), requires_grad=grad)


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min", "prod"])
@pytest.mark.parametrize("initial", [None, 2.0])
def test_segment_reduce(reduce, initial):
    torch.manual_seed(7)
    d = torch.randn(7, 3, dtype=torch.float64)
    lengths, offsets = torch.tensor([2, 0, 4, 1]), torch.tensor([0, 2, 2, 6, 7])
    for kw, fkw in (({"lengths": lengths}, {"lengths": _t(lengths)}), ({"offsets": offsets}, {"offsets": _t(offsets)})):
        want = torch.segment_reduce(d, reduce, axis=0, initial=initial, **kw)
        got = fd.segment_reduce(_t(d), reduce, axis=0, initial=initial, **fkw)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, equal_nan=True)
    d3, l3 = torch.randn(2, 6, 3, dtype=torch.float64), torch.tensor([[2, 0, 3, 1], [1, 1, 1, 3]])  # batched segments
    np.testing.assert_allclose(fd.segment_reduce(_t(d3), reduce, lengths=_t(l3), axis=1, initial=initial).numpy(),
                               torch.segment_reduce(d3, reduce, lengths=l3, axis=1, initial=initial).numpy(),
                               rtol=1e-12, equal_nan=True)
    if reduce in ("sum", "mean"):  # gradients flow through the segments
        x = _t(d, True)
        fd.segment_reduce(x, reduce, lengths=_t(lengths)).sum().backward()
        dt = d.clone().requires_grad_()
        torch.segment_reduce(dt, reduce, lengths=lengths).nansum().backward()
        np.testing.assert_allclose(x.grad.numpy(), dt.grad.numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="segment_reduce"):
        fd.segment_reduce(_t(d), reduce, lengths=_t(torch.tensor([2, 2])))


def test_aten_spellings():
    torch.manual_seed(8)
    x = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    np.testing.assert_allclose(fd.constant_pad_nd(_t(x), [1, -2, 2, 0], 3.0).numpy(),
                               torch.constant_pad_nd(x, [1, -2, 2, 0], 3.0).numpy())
    grid = torch.rand(2, 4, 6, 2, dtype=torch.float64) * 2.4 - 1.2
    for mode in range(3):
        for pad in range(3):
            np.testing.assert_allclose(fd.grid_sampler_2d(_t(x), _t(grid), mode, pad, True).numpy(),
                                       torch.grid_sampler_2d(x, grid, mode, pad, True).numpy(), atol=1e-12)
    v, g3 = torch.randn(1, 2, 3, 4, 5, dtype=torch.float64), torch.rand(1, 2, 2, 3, 3, dtype=torch.float64) * 2 - 1
    np.testing.assert_allclose(fd.grid_sampler_3d(_t(v), _t(g3), 0, 1, False).numpy(),
                               torch.grid_sampler_3d(v, g3, 0, 1, False).numpy(), atol=1e-12)
    with pytest.raises(ValueError, match="grid_sampler_2d"):
        fd.grid_sampler_2d(_t(x), _t(grid), 3, 0, False)
    go, out = torch.randn(4, 5, dtype=torch.float64), torch.softmax(torch.randn(4, 5, dtype=torch.float64), 1)
    np.testing.assert_allclose(fd._softmax_backward_data(_t(go), _t(out), 1, fd.float64).numpy(),
                               torch._softmax_backward_data(go, out, 1, torch.float64).numpy(), rtol=1e-12)
    keep = torch.rand(4, 5) > 0.5
    np.testing.assert_allclose(fd.native_dropout_backward(_t(go), _t(keep), 2.0).numpy(),
                               torch.ops.aten.native_dropout_backward(go, keep, 2.0).numpy())
    np.testing.assert_allclose(_t(out).__rdiv__(3.0).numpy(), out.__rdiv__(3.0).numpy())


@pytest.mark.parametrize("wshape,xshape,tshape", [((5, 4), (4,), ()), ((5, 4), (6, 4), (6,)),
                                                  ((5, 3, 4), (6, 4), (6, 3))])
def test_linear_cross_entropy(wshape, xshape, tshape):
    torch.manual_seed(9)
    x, w, b = torch.randn(xshape, dtype=torch.float64), torch.randn(wshape, dtype=torch.float64), \
        torch.randn(wshape[:-1], dtype=torch.float64)
    target = torch.randint(0, 5, tshape)
    for kw in ({}, {"reduction": "none", "label_smoothing": 0.1}, {"reduction": "sum", "ignore_index": 2}):
        xs, ws, bs = (t.clone().requires_grad_() for t in (x, w, b))
        want = torch.nn.functional.linear_cross_entropy(xs, ws, target, linear_bias=bs, **kw)
        fx, fw, fb = _t(x, True), _t(w, True), _t(b, True)
        got = fd.nn.functional.linear_cross_entropy(fx, fw, _t(target), linear_bias=fb, **kw)
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-10)
        want.sum().backward()
        got.sum().backward()
        for a, t in ((fx, xs), (fw, ws), (fb, bs)):
            np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="linear_cross_entropy"):
        fd.nn.functional.linear_cross_entropy(_t(x), _t(w[..., :2]), _t(target))


@pytest.mark.parametrize("opts", [dict(batch_chunk_size=1, chunking_method=None), dict(batch_chunk_size=3,
                                  chunking_method=None), dict(chunking_method="aspect_ratio"), dict()])
@pytest.mark.parametrize("kw", [{}, {"reduction": "sum"}, {"ignore_index": 2, "label_smoothing": 0.2},
                                {"class_weight": True, "ignore_index": 1}])
def test_linear_cross_entropy_chunked(opts, kw):
    """The chunked path (options given) against PyTorch's reference path: loss and every gradient,
    a random upstream gradient, chunks that do not divide the batch."""
    rng = np.random.default_rng(len(str(opts)) * 7 + len(str(kw)))
    n, d, c = 10, 4, 7
    x, w, b = (rng.standard_normal(s) for s in ((n, d), (c, d), (c,)))
    target = rng.integers(0, c, n)
    kw = dict(kw)
    cw = rng.random(c) + 0.5 if kw.pop("class_weight", False) else None
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    want = torch.nn.functional.linear_cross_entropy(tx, tw, torch.tensor(target), linear_bias=tb,
                                                    weight=None if cw is None else torch.tensor(cw), **kw)
    fx, fw, fb = (fd.tensor(a, requires_grad=True) for a in (x, w, b))
    got = fd.nn.functional.linear_cross_entropy(fx, fw, fd.tensor(target), linear_bias=fb,
                                                weight=None if cw is None else fd.tensor(cw),
                                                options=fd.nn.LinearCrossEntropyOptions(**opts), **kw)
    assert got.grad_fn is not None
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-12)
    g = float(rng.standard_normal())
    (want * g).backward()
    (got * g).backward()
    for a, t in ((fx, tx), (fw, tw), (fb, tb)):
        np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_linear_cross_entropy_chunked_options_and_module():
    O = fd.nn.LinearCrossEntropyOptions
    with pytest.raises(ValueError, match="chunking_method"):
        O(chunking_method="rows")
    with pytest.raises(ValueError, match="batch_chunk_size"):
        O(batch_chunk_size=0)
    with pytest.raises(ValueError, match="disagree"):
        O(batch_chunk_size=4, chunking_method="aspect_ratio")
    with pytest.raises(ValueError, match="acc_policy"):
        O(acc_policy="fast")
    x = fd.randn(9, 3, requires_grad=True)
    t = fd.tensor([0, 1, 2, 3, 4, 0, 1, 2, 3])
    loss = fd.nn.LinearCrossEntropyLoss(3, 5, bias=True, options=O(batch_chunk_size=2, chunking_method=None))
    ref = fd.nn.LinearCrossEntropyLoss(3, 5, bias=True)
    ref.load_state_dict(loss.state_dict())
    assert sorted(loss.state_dict()) == ["linear.bias", "linear.weight"]
    a, r = loss(x, t), ref(x, t)
    np.testing.assert_allclose(a.item(), r.item(), rtol=1e-6)
    a.backward(retain_graph=True)  # the gradient buffers are consumed by the first backward ...
    with pytest.raises(RuntimeError, match="allow_retain_graph"):
        a.backward()
    keep = fd.nn.LinearCrossEntropyLoss(3, 5, options=O(allow_retain_graph=True))
    a = keep(x, t)
    a.backward(retain_graph=True)
    a.backward()  # ... unless allow_retain_graph keeps them
    with pytest.warns(UserWarning, match="whole logits"):  # reduction='none': the reference path
        out = fd.nn.functional.linear_cross_entropy(x, loss.linear.weight, t, reduction="none", options=O())
    assert tuple(out.shape) == (9,)
    with pytest.raises(RuntimeError, match="weight shape"):
        fd.nn.LinearCrossEntropyLoss(3, 5, weight=fd.ones(4))
    with pytest.raises(TypeError, match="options"):
        fd.nn.functional.linear_cross_entropy(x, loss.linear.weight, t, options={"batch_chunk_size": 2})
