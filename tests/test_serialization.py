"""fd.save / fd.load: safetensors round trips of tensors, state dicts and optimizer state;
atomic writes; header validation on bad or truncated files."""
import json
import struct

import numpy as np
import pytest

import fastdl as fd
from fastdl import nn, optim


def test_round_trip_tensors_and_nested(tmp_path):
    obj = {"a": fd.tensor(np.arange(6.0).reshape(2, 3)), "b": [fd.tensor([1, 2], dtype=fd.int32), 3, "s"],
           "c": {"d": fd.ones(2, dtype=fd.bfloat16), "e": None, "f": 1.5}, "g": fd.tensor([True, False])}
    fd.save(obj, tmp_path / "x.safetensors")
    r = fd.load(tmp_path / "x.safetensors")
    np.testing.assert_array_equal(r["a"].numpy(), obj["a"].numpy())
    assert r["b"][0].dtype == fd.int32 and r["b"][1:] == [3, "s"]
    assert r["c"]["d"].dtype == fd.bfloat16 and r["c"]["e"] is None and r["c"]["f"] == 1.5
    assert r["g"].tolist() == [True, False]
    fd.save(obj["a"], tmp_path / "t.safetensors")
    np.testing.assert_array_equal(fd.load(tmp_path / "t.safetensors").numpy(), obj["a"].numpy())


def test_model_and_optimizer_checkpoint_resume(tmp_path):
    m = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    opt = optim.AdamW(m.parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        m(fd.randn(5, 3)).sum().backward()
        opt.step()
    fd.save({"model": m.state_dict(), "opt": opt.state_dict()}, tmp_path / "ck.safetensors")
    ck = fd.load(tmp_path / "ck.safetensors")
    m2 = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    m2.load_state_dict(ck["model"])
    opt2 = optim.AdamW(m2.parameters())
    opt2.load_state_dict(ck["opt"])
    assert opt2.state[m2[0].weight]["step"] == 3
    np.testing.assert_array_equal(opt2.state[m2[0].weight]["exp_avg"].numpy(), opt.state[m[0].weight]["exp_avg"].numpy())


def test_atomic_write_keeps_previous_file(tmp_path):
    p = tmp_path / "a.safetensors"
    fd.save({"x": fd.ones(3)}, p)
    with pytest.raises(TypeError):
        fd.save({"x": fd.zeros(3), "bad": object()}, p)
    assert fd.load(p)["x"].tolist() == [1.0, 1.0, 1.0]
    assert [f.name for f in tmp_path.iterdir()] == ["a.safetensors"]  # no temp file left behind


def test_bad_and_truncated_files_raise_value_error(tmp_path):
    p = tmp_path / "a.safetensors"
    fd.save({"x": fd.ones(4)}, p)
    raw = p.read_bytes()
    (tmp_path / "trunc").write_bytes(raw[:-3])
    (tmp_path / "short").write_bytes(raw[:5])
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    for name, change in [("dtype", ("dtype", "Q8")), ("shape", ("shape", [5])), ("offsets", ("data_offsets", [0, 99]))]:
        h = json.loads(json.dumps(hdr))
        h["x"][change[0]] = change[1]
        b = json.dumps(h).encode()
        (tmp_path / name).write_bytes(struct.pack("<Q", len(b)) + b + raw[8 + n:])
    (tmp_path / "huge").write_bytes(struct.pack("<Q", 10 ** 12) + raw[8:])
    for name in ["trunc", "short", "dtype", "shape", "offsets", "huge"]:
        with pytest.raises(ValueError):
            fd.load(tmp_path / name)


def test_file_objects(tmp_path):
    # torch.save / torch.load take binary file objects too: in-memory buffers and open files
    import io
    state = {"w": fd.randn(3, 4), "step": 7, "ids": fd.tensor([1, 2], dtype=fd.uint8)}
    buf = io.BytesIO()
    fd.save(state, buf)
    buf.seek(0)
    back = fd.load(buf)
    np.testing.assert_array_equal(back["w"].numpy(), state["w"].numpy())
    assert back["step"] == 7 and back["ids"].dtype == fd.uint8
    with open(tmp_path / "m.safetensors", "wb") as f:
        fd.save(state, f)
    with open(tmp_path / "m.safetensors", "rb") as f:
        assert fd.load(f)["ids"].tolist() == [1, 2]
    with pytest.raises(ValueError):
        fd.load(io.BytesIO(b"\x01\x02"))


def test_load_reads_pytorch_checkpoints(tmp_path):
    """fd.load reads torch.save's zip checkpoints without running pickled code: every dtype,
    views (strided, transposed, offset), 0-d and empty tensors, parameters, nested containers,
    optimizer state; a model's state_dict loads into the same fastdl model and computes the same."""
    torch = pytest.importorskip("torch")
    import io
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                             torch.nn.Linear(4 * 6 * 6, 5))
    opt = torch.optim.AdamW(tm.parameters())
    tm(torch.randn(2, 3, 8, 8)).sum().backward()
    opt.step()
    base = torch.arange(24.0)
    obj = {"model": tm.state_dict(), "optim": opt.state_dict(), "epoch": 7, "name": "run", "sizes": torch.Size([2, 3]),
           "f64": torch.randn(3, dtype=torch.float64), "bf16": torch.randn(4).bfloat16(), "f16": torch.randn(4).half(),
           "i32": torch.tensor([1, -2], dtype=torch.int32), "i8": torch.tensor([-3], dtype=torch.int8),
           "u8": torch.tensor([250], dtype=torch.uint8), "bool": torch.tensor([True, False]),
           "step": base[3:15:4], "t": base.reshape(4, 6).t(), "offset": base[5:].reshape(19, 1)[2:9],
           "scalar": torch.tensor(2.5), "empty": torch.zeros(0, 3), "param": torch.nn.Parameter(torch.ones(2)),
           "shared": [base, base[:4]], "nested": ({"a": [torch.ones(1)]},)}
    path = tmp_path / "ckpt.pt"
    torch.save(obj, path)
    got = fd.load(path)

    def same(g, w, where):
        if isinstance(w, torch.Tensor):
            assert isinstance(g, fd.Tensor) and tuple(g.shape) == tuple(w.shape), where
            assert str(g.dtype).split(".")[-1] == str(w.dtype).split(".")[-1], where
            np.testing.assert_array_equal(g.detach().float().numpy(), w.detach().float().numpy(), err_msg=where)
            assert g.requires_grad == w.requires_grad, where
        elif isinstance(w, dict):
            assert list(g) == list(w), where
            for k in w:
                same(g[k], w[k], f"{where}.{k}")
        elif isinstance(w, (list, tuple)):
            assert len(g) == len(w), where
            for i, (a, b) in enumerate(zip(g, w)):
                same(a, b, f"{where}[{i}]")
        else:
            assert g == w, where
    same(got, obj, "ckpt")
    fm = fd.nn.Sequential(fd.nn.Conv2d(3, 4, 3), fd.nn.BatchNorm2d(4), fd.nn.Flatten(), fd.nn.Linear(4 * 6 * 6, 5))
    fm.load_state_dict(got["model"])
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    tm.eval()
    fm.eval()
    np.testing.assert_allclose(fm(fd.tensor(x)).detach().numpy(), tm(torch.tensor(x)).detach().numpy(), rtol=1e-5,
                               atol=1e-5)
    buf = io.BytesIO()
    torch.save(torch.ones(2, 2), buf)
    buf.seek(0)
    np.testing.assert_array_equal(fd.load(buf).numpy(), np.ones((2, 2)))

    class Payload:
        def __reduce__(self):
            return (print, ("this must not run",))
    torch.save({"x": Payload()}, tmp_path / "code.pt")
    with pytest.raises(Exception, match="may not hold"):
        fd.load(tmp_path / "code.pt")
    raw = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="load"):
        fd.load(tmp_path / "cut.pt")
