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
