"""Fuzzing the boundaries where outside bytes and indices meet fastdl's C++: the safetensors
loader, DLPack import, from_numpy with odd strides and alignment, and every native op that
takes indices. Hypothesis draws structured inputs (valid ones, then the edges: negative and
out-of-range indices, wrong index dtypes and ranks, empty tensors, corrupted headers); each
call must give numpy's result or a clean Python exception of the documented class. Run under
the sanitizer build too (tests/sanitizers/run.sh), where a stray read or write is a report.

Bounded and deterministic (derandomize=True); FASTDL_FUZZ_EXAMPLES=500 explores harder."""
import json
import os
import struct

import numpy as np
import pytest

import fastdl as fd
import fastdl.nn.functional as F

hyp = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

N = int(os.environ.get("FASTDL_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=N, derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
CLEAN = (ValueError, TypeError, IndexError, RuntimeError, MemoryError)
NP_OF = {fd.float32: np.float32, fd.float64: np.float64, fd.int32: np.int32, fd.int64: np.int64, fd.bool: np.bool_}


def same(t, ref):
    ref = np.asarray(ref)
    assert tuple(t.shape) == ref.shape, (tuple(t.shape), ref.shape)
    np.testing.assert_array_equal(t.numpy(), ref)


# ---- indices: each op sees in-range, negative and out-of-range indices ---------------------------------
def index_array(draw, n, shape, allow_neg=True):
    """Indices for a dimension of size n, tagged 'ok', 'neg' (in [-n, 0)) or 'oob'."""
    kind = draw(st.sampled_from(["ok", "ok", "neg", "oob"] if allow_neg else ["ok", "ok", "oob"]))
    size = int(np.prod(shape)) if shape else 1
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    if n == 0 and kind != "oob":
        kind = "ok" if size == 0 else "oob"
    if kind == "ok":
        idx = rng.integers(0, max(n, 1), size=size) if n else np.zeros(size, np.int64)
    elif kind == "neg":
        idx = rng.integers(-n, n, size=size)
    else:
        idx = rng.integers(0, max(n, 1), size=size)
        if size:
            bad = draw(st.sampled_from([n, n + 7, -n - 1, 2**31, 2**40, -(2**62)]))
            idx[rng.integers(0, size)] = bad
        else:
            kind = "ok"
    return idx.reshape(shape).astype(np.int64), kind


def check_indexed(kind, call, ref):
    """In range: numpy's result. Negative: numpy's (wrapped) result or IndexError. Out of range:
    IndexError (DESIGN.md section 4), never a read or write out of bounds."""
    if kind == "oob":
        with pytest.raises(IndexError):
            call()
        return
    try:
        out = call()
    except IndexError:
        assert kind == "neg", "an in-range index was rejected"
        return
    same(out, ref())


shapes = st.lists(st.integers(0, 5), min_size=1, max_size=3).map(tuple)


@FUZZ
@given(shape=shapes, data=st.data())
def test_index_select(shape, data):
    dim = data.draw(st.integers(0, len(shape) - 1))
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    idx, kind = index_array(data.draw, shape[dim], (data.draw(st.integers(0, 6)),))
    check_indexed(kind, lambda: fd.index_select(fd.from_numpy(x), dim, fd.from_numpy(idx)),
                  lambda: np.take(x, idx % max(shape[dim], 1), axis=dim))


@FUZZ
@given(shape=shapes, data=st.data())
def test_gather_and_take_along_dim(shape, data):
    dim = data.draw(st.integers(0, len(shape) - 1))
    x = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    ishape = tuple(data.draw(st.integers(0, s)) if d != dim else data.draw(st.integers(0, 4))
                   for d, s in enumerate(shape))
    idx, kind = index_array(data.draw, shape[dim], ishape)
    sub = x[tuple(slice(0, s) if d != dim else slice(None) for d, s in enumerate(ishape))]
    ref = lambda: np.take_along_axis(sub, idx % max(shape[dim], 1), axis=dim)  # noqa: E731
    check_indexed(kind, lambda: fd.gather(fd.from_numpy(x), dim, fd.from_numpy(idx)), ref)
    if ishape == tuple(s if d != dim else ishape[d] for d, s in enumerate(shape)):
        check_indexed(kind, lambda: fd.take_along_dim(fd.from_numpy(x), fd.from_numpy(idx), dim), ref)


@FUZZ
@given(shape=shapes, data=st.data())
def test_scatter_add(shape, data):
    dim = data.draw(st.integers(0, len(shape) - 1))
    x = np.zeros(shape)
    ishape = tuple(data.draw(st.integers(0, s)) if d != dim else data.draw(st.integers(0, 4))
                   for d, s in enumerate(shape))
    idx, kind = index_array(data.draw, shape[dim], ishape)
    src = np.arange(1, int(np.prod(ishape)) + 1, dtype=np.float64).reshape(ishape)

    def ref():
        out = x.copy()
        pos = list(np.indices(ishape))
        pos[dim] = idx % max(shape[dim], 1)
        np.add.at(out, tuple(pos), src)
        return out
    check_indexed(kind, lambda: fd.scatter_add(fd.from_numpy(x), dim, fd.from_numpy(idx), fd.from_numpy(src)), ref)


@FUZZ
@given(n=st.integers(0, 6), d=st.integers(1, 4), data=st.data())
def test_embedding_and_take(n, d, data):
    w = np.arange(n * d, dtype=np.float32).reshape(n, d)
    ishape = tuple(data.draw(st.lists(st.integers(0, 4), max_size=2)))
    idx, kind = index_array(data.draw, n, ishape, allow_neg=False)
    check_indexed(kind, lambda: F.embedding(fd.from_numpy(idx), fd.from_numpy(w)), lambda: w[idx])
    idx2, kind2 = index_array(data.draw, n * d, ishape)
    check_indexed(kind2, lambda: fd.take(fd.from_numpy(w), fd.from_numpy(idx2)),
                  lambda: w.reshape(-1)[idx2 % max(n * d, 1)])


@FUZZ
@given(shape=st.lists(st.integers(0, 5), min_size=1, max_size=3).map(tuple), data=st.data(),
       accumulate=st.booleans())
def test_index_put_and_setitem(shape, data, accumulate):
    k = data.draw(st.integers(1, len(shape)))
    m = data.draw(st.integers(0, 5))
    idxs, kinds = zip(*[index_array(data.draw, shape[i], (m,)) for i in range(k)])
    kind = "oob" if "oob" in kinds else "neg" if "neg" in kinds else "ok"
    x = np.zeros(shape)
    vals = np.arange(1, m + 1, dtype=np.float64).reshape((m,) + (1,) * 0)
    vals = np.broadcast_to(vals.reshape((m,) + (1,) * (len(shape) - k)), (m,) + shape[k:]).copy()
    wrapped = tuple(i % max(s, 1) for i, s in zip(idxs, shape))
    flat = np.ravel_multi_index(wrapped, shape[:k]) if m and all(shape[:k]) else np.zeros(0, np.int64)
    unique = len(set(flat.tolist())) == len(flat)

    def ref():
        out = x.copy()
        if accumulate:
            np.add.at(out, wrapped, vals)
        else:
            out[wrapped] = vals
        return out
    if not accumulate and not unique and kind != "oob":
        return  # duplicate targets without accumulate: which write wins is unspecified
    check_indexed(kind, lambda: fd.index_put(fd.from_numpy(x), [fd.from_numpy(i) for i in idxs],
                                             fd.from_numpy(vals), accumulate), ref)
    if not accumulate:
        def setitem():
            t = fd.from_numpy(x.copy())
            t[tuple(fd.from_numpy(i) for i in idxs)] = fd.from_numpy(vals)
            return t
        check_indexed(kind, setitem, ref)


@FUZZ
@given(shape=shapes, data=st.data())
def test_getitem_advanced(shape, data):
    x = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    dim = data.draw(st.integers(0, len(shape) - 1))
    idx, kind = index_array(data.draw, shape[dim], tuple(data.draw(st.lists(st.integers(0, 3), max_size=2))))
    key = (slice(None),) * dim + (idx,)
    check_indexed(kind, lambda: fd.from_numpy(x)[tuple(fd.from_numpy(k) if isinstance(k, np.ndarray) else k for k in key)],
                  lambda: x[(slice(None),) * dim + (idx % max(shape[dim], 1),)])
    mask = data.draw(st.lists(st.booleans(), min_size=shape[0], max_size=shape[0]))
    same(fd.from_numpy(x)[fd.from_numpy(np.array(mask, dtype=bool))], x[np.array(mask, dtype=bool)])
    if shape[0] > 0:
        with pytest.raises(IndexError):
            fd.from_numpy(x)[fd.from_numpy(np.ones(shape[0] + 1, dtype=bool))]


@FUZZ
@given(n=st.integers(0, 6), f=st.integers(1, 3), e=st.integers(0, 8), data=st.data(),
       reduce=st.sampled_from(["sum", "mean", "max", "min"]))
def test_scatter_and_message_passing(n, f, e, data, reduce):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    src = rng.normal(size=(e, f))
    idx, kind1 = index_array(data.draw, n, (e,), allow_neg=False)
    srcs, kind2 = index_array(data.draw, n, (e,), allow_neg=False)  # all draws before any call
    kind = kind1

    def ref_reduce(values, targets, size):
        out = np.zeros((size, f))
        for i in range(size):
            sel = values[targets == i]
            if len(sel):
                out[i] = {"sum": sel.sum(0), "mean": sel.mean(0), "max": sel.max(0), "min": sel.min(0)}[reduce]
        return out

    def approx(call, ref):
        def go():
            return call()
        if kind == "oob":
            with pytest.raises(IndexError):
                go()
            return
        np.testing.assert_allclose(go().numpy(), ref(), rtol=1e-12, atol=1e-12)
    approx(lambda: F.scatter(fd.from_numpy(src), fd.from_numpy(idx), 0, n, reduce), lambda: ref_reduce(src, idx, n))
    x = rng.normal(size=(n, f))
    kind = "oob" if "oob" in (kind1, kind2) else "ok"
    edge_index = np.stack([srcs, idx]) if e else np.zeros((2, 0), np.int64)
    w = rng.normal(size=e)
    approx(lambda: F.message_passing(fd.from_numpy(x), fd.from_numpy(edge_index), fd.from_numpy(w), reduce, n),
           lambda: ref_reduce(w[:, None] * x[srcs % max(n, 1)] if n else np.zeros((e, f)), idx, n))


@FUZZ
@given(op=st.sampled_from(["index_select", "gather", "embedding", "index_put", "getitem", "scatter", "mp"]),
       idx_dtype=st.sampled_from([np.float32, np.float64, np.int32, np.bool_, np.int16]), rank=st.integers(0, 3))
def test_index_dtype_and_rank(op, idx_dtype, rank):
    """Index tensors of the wrong dtype or rank: a TypeError / ValueError / IndexError, or (int32,
    bool where they mean something) a correct result; never a crash."""
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    raw = np.zeros((2,) * rank, dtype=np.int64)
    idx = raw.astype(idx_dtype)
    try:
        ti = fd.from_numpy(idx) if idx_dtype != np.int16 else fd.tensor(idx.astype(np.int64)).to(fd.int32)
    except CLEAN:
        return
    t = fd.from_numpy(x)
    calls = {
        "index_select": lambda: fd.index_select(t, 0, ti),
        "gather": lambda: fd.gather(t, 0, ti),
        "embedding": lambda: F.embedding(ti, t),
        "index_put": lambda: fd.index_put(t, [ti], fd.zeros(1)),
        "getitem": lambda: t[ti],
        "scatter": lambda: F.scatter(fd.ones(*(2,) * rank, 3) if rank else fd.ones(3), ti, 0, 3),
        "mp": lambda: F.message_passing(t, ti, None, "sum", 3),
    }
    try:
        out = calls[op]()
    except CLEAN:
        return
    assert isinstance(out, fd.Tensor)
    out.numpy()  # materialises every element: a bad read would be a sanitizer report


# ---- from_numpy and DLPack: strides, offsets, alignment, dtypes ------------------------------------------
DTYPES = [np.float32, np.float64, np.int32, np.int64, np.bool_, np.float16]


@st.composite
def strided_views(draw):
    """A view into a byte buffer: any dtype, shape, non-negative strides (multiples of the item
    size or not, zero for broadcast), byte offset (aligned or not); always inside the buffer."""
    dt = np.dtype(draw(st.sampled_from(DTYPES)))
    ndim = draw(st.integers(0, 3))
    shape = tuple(draw(st.integers(0, 4)) for _ in range(ndim))
    odd = draw(st.booleans())
    strides = tuple(draw(st.integers(0, 40)) if odd else dt.itemsize * draw(st.integers(0, 6)) for _ in range(ndim))
    offset = draw(st.integers(0, 9))
    span = sum((s - 1) * st_ for s, st_ in zip(shape, strides)) if all(shape) else 0
    buf = np.frombuffer(np.random.default_rng(draw(st.integers(0, 2**31))).bytes(offset + span + dt.itemsize + 8),
                        dtype=np.uint8).copy()
    if dt == np.bool_:
        buf &= 1
    elif dt.kind == "f":  # keep float bit patterns finite so values compare with ==
        buf[:] = np.arange(len(buf)) % 60 + 1
    a = np.lib.stride_tricks.as_strided(buf[offset:].view(np.uint8), shape=shape, strides=strides) \
        if dt.itemsize == 1 else None
    if a is None:
        base = np.ndarray(shape=shape, dtype=dt, buffer=buf, offset=offset, strides=strides)
        a = base
    else:
        a = a.view(dt) if a.ndim and a.shape[-1] and strides and strides[-1] == 1 else \
            np.ndarray(shape=shape, dtype=dt, buffer=buf, offset=offset, strides=strides)
    return a


@FUZZ
@given(a=strided_views(), flip=st.booleans())
def test_from_numpy_odd_strides(a, flip):
    if flip and a.ndim:
        a = a[..., ::-1]
    try:
        t = fd.from_numpy(a)
    except CLEAN:
        return
    same(t, a)
    same(t.contiguous(), a)
    if a.dtype in (np.float32, np.float64):
        np.testing.assert_allclose((t * 2 + 1).numpy(), a * 2 + 1)
        np.testing.assert_allclose(t.sum().item(), a.astype(np.float64).sum(), rtol=1e-5)


@FUZZ
@given(a=strided_views(), flip=st.booleans(), readonly=st.booleans())
def test_from_dlpack_numpy(a, flip, readonly):
    if flip and a.ndim:
        a = a[..., ::-1]
    if readonly:
        a.flags.writeable = False
    try:
        t = fd.from_dlpack(a)
    except CLEAN + (BufferError,):
        return
    same(t, a)
    if a.dtype in (np.float32, np.float64):
        np.testing.assert_allclose((t + 0).numpy(), a)


@FUZZ
@given(dt=st.sampled_from(["uint8", "int8", "int16", "complex64", "float32", "int64", "bool", "float16"]),
       shape=st.lists(st.integers(0, 4), max_size=3), data=st.data())
def test_from_dlpack_torch(dt, shape, data):
    torch = pytest.importorskip("torch")
    x = torch.arange(int(np.prod(shape)) if shape else 1).reshape(shape).to(getattr(torch, dt))
    if x.ndim and data.draw(st.booleans()):
        x = x.transpose(0, -1)
    if x.ndim and x.shape[0] > 1 and data.draw(st.booleans()):
        x = x[::2]
    if x.ndim and data.draw(st.booleans()):
        x = x.expand(3, *x.shape) if data.draw(st.booleans()) else x.unsqueeze(0)
    try:
        t = fd.from_dlpack(x)
    except CLEAN + (BufferError,):
        assert dt == "complex64", f"supported dtype {dt} refused"
        return
    assert dt != "complex64"
    same(t, x.numpy())


# ---- the safetensors loader ------------------------------------------------------------------------------
def write_st(path, header, body):
    hb = json.dumps(header).encode() if not isinstance(header, bytes) else header
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb + body)


MUTATIONS = ["none", "dtype", "shape", "offsets", "offsets_type", "shape_type", "missing", "meta", "truncate",
             "header_len", "junk_header", "overlap", "huge_shape", "extra_key", "not_object", "entry_type",
             "meta_fastdl"]


@FUZZ
@given(tensors=st.dictionaries(st.text("abcxyz._", min_size=1, max_size=6),
                               st.tuples(st.sampled_from(["F32", "F64", "I32", "I64", "BOOL", "F16", "BF16"]),
                                         st.lists(st.integers(0, 4), max_size=3)), min_size=1, max_size=3),
       mutation=st.sampled_from(MUTATIONS), data=st.data())
def test_safetensors_loader(tmp_path_factory, tensors, mutation, data):
    sizes = {"F32": 4, "F64": 8, "I32": 4, "I64": 8, "BOOL": 1, "F16": 2, "BF16": 2}
    header, body = {}, b""
    for name, (code, shape) in tensors.items():
        n = int(np.prod(shape)) if shape else 1
        chunk = bytes((i % 3) if code == "BOOL" else 0 for i in range(n * sizes[code]))
        header[name] = {"dtype": code, "shape": shape, "data_offsets": [len(body), len(body) + len(chunk)]}
        body += chunk
    name = next(iter(header))
    entry = header[name]
    v = data.draw(st.integers(-(2**63), 2**64))
    if mutation == "dtype":
        entry["dtype"] = data.draw(st.sampled_from(["U8", "C64", "", "f32", "F32 ", None, 3]))
    elif mutation == "shape":
        entry["shape"] = entry["shape"] + [data.draw(st.integers(-3, 3))]
    elif mutation == "offsets":
        entry["data_offsets"] = [data.draw(st.integers(-5, 100)), data.draw(st.integers(-5, 100))]
    elif mutation == "offsets_type":
        entry["data_offsets"] = data.draw(st.sampled_from([["0", "4"], [0.5, 4], [0], [0, 1, 2], None, {}, [v, v]]))
    elif mutation == "shape_type":
        entry["shape"] = data.draw(st.sampled_from([["2"], [1.5], "abc", None, [[1]], [v], {"a": 1}, [True]]))
    elif mutation == "missing":
        del entry[data.draw(st.sampled_from(["dtype", "shape", "data_offsets"]))]
    elif mutation == "meta":
        header["__metadata__"] = data.draw(st.sampled_from([[], "x", 3, {"fastdl": 3}, {"fastdl": "{"}, None]))
    elif mutation == "meta_fastdl":
        header["__metadata__"] = {"fastdl": json.dumps(data.draw(st.sampled_from(
            [[1], {"a": [1, 2]}, {name: "not json"}, {"": 1}, "s", {"x": {"__tensor__": 7}}])))}
    elif mutation == "truncate":
        body = body[:data.draw(st.integers(0, max(len(body) - 1, 0)))]
    elif mutation == "overlap" and len(header) > 1:
        second = list(header.values())[1]
        second["data_offsets"] = [entry["data_offsets"][0], entry["data_offsets"][0] +
                                  second["data_offsets"][1] - second["data_offsets"][0]]
    elif mutation == "huge_shape":
        entry["shape"] = [2**32, 2**32] if data.draw(st.booleans()) else [2**62, 4]
    elif mutation == "extra_key":
        entry["extra"] = [1, 2]
    elif mutation == "entry_type":
        header[name] = data.draw(st.sampled_from([[1, 2], "x", 3, None]))
    path = tmp_path_factory.mktemp("st") / "f.safetensors"
    if mutation == "header_len":
        hb = json.dumps(header).encode()
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", v % 2**64) + hb + body)
    elif mutation == "junk_header":
        write_st(path, data.draw(st.binary(max_size=40)), body)
    elif mutation == "not_object":
        write_st(path, json.dumps(data.draw(st.sampled_from([[1], "s", 3, None]))).encode(), body)
    else:
        write_st(path, header, body)
    try:
        out = fd.load(str(path))
    except ValueError:
        return  # the loader's documented error for a bad or truncated file
    assert isinstance(out, dict)
    for k, t in out.items():
        if isinstance(t, fd.Tensor):
            t.float().numpy() if t.dtype == fd.bfloat16 else t.numpy()


# ---- what the fuzzing found, pinned --------------------------------------------------------------------
def test_found_zero_dim_bf16_roundtrip(tmp_path):
    """A 0-d bfloat16 tensor saved by fd.save failed to load (numpy turned `arr << 16` into a scalar)."""
    t = fd.tensor(1.5).to(fd.bfloat16)
    fd.save({"t": t}, tmp_path / "x.safetensors")
    out = fd.load(tmp_path / "x.safetensors")["t"]
    assert out.dtype == fd.bfloat16 and out.shape == () and out.float().item() == 1.5


def test_found_scatter_without_rows_is_zeros():
    """scatter of a (0, F) src took its row width from numel / rows (1 for no rows), so only the
    first column of the (dim_size, F) output was written and the rest was uninitialised memory."""
    for reduce in ("sum", "mean", "max", "min"):
        for _ in range(20):
            fd.randn(64, 64).mul_(5)  # leave garbage in the allocator's cache
            out = F.scatter(fd.zeros(0, 3, dtype=fd.float64), fd.zeros(0, dtype=fd.int64), 0, 2, reduce)
            same(out, np.zeros((2, 3)))


def test_found_loader_errors_are_value_errors(tmp_path):
    """Malformed headers raised TypeError / AttributeError from deep inside the loader."""
    cases = [{"__metadata__": "x"}, {"__metadata__": {"fastdl": "3"}},
             {"a": {"dtype": "F32", "shape": [1], "data_offsets": ["0", "4"]}},
             {"a": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}},
             {"a": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}},
             {"a": {"dtype": "F32", "shape": [2**62, 4], "data_offsets": [0, 0]}}]
    for i, header in enumerate(cases):
        p = tmp_path / f"{i}.safetensors"
        write_st(p, header, b"\0" * 4)
        with pytest.raises(ValueError, match="load:"):
            fd.load(p)


def test_found_unaligned_arrays_are_refused():
    """A numpy view at an odd byte offset was wrapped as is, so every kernel read misaligned
    8-byte items (UBSan in the sanitizer job); now a clean ValueError asks for a copy."""
    buf = np.zeros(8 * 5 + 1, np.uint8)
    a = np.ndarray((5,), np.float64, buffer=buf, offset=1)
    with pytest.raises(ValueError, match="aligned"):
        fd.from_numpy(a)
    same(fd.from_numpy(a.copy()), a)
