"""fd.save / fd.load in the safetensors format: an 8-byte little-endian header length, a
JSON header (dtype, shape, data_offsets per tensor, optional __metadata__ of strings), then
the raw little-endian bytes. Written atomically (temp file + rename); loading validates the
header and raises ValueError on a bad or truncated file. fastdl never writes pickle; fd.load also
reads PyTorch's zip checkpoints through a restricted unpickler (_torch_checkpoint.py)."""
import json
import os
import struct
import tempfile

from fastdl._lazy import np

from fastdl import _C
from fastdl._C import Tensor

_ST_DTYPES = {
    _C.dtype.float32: "F32", _C.dtype.float64: "F64", _C.dtype.float16: "F16", _C.dtype.bfloat16: "BF16",
    _C.dtype.int32: "I32", _C.dtype.int64: "I64", _C.dtype.bool: "BOOL", _C.dtype.uint8: "U8", _C.dtype.int8: "I8",
    _C.dtype.int16: "I16",
}
_FROM_ST = {v: k for k, v in _ST_DTYPES.items()}
_NP_NAMES = {"F32": "float32", "F64": "float64", "F16": "float16", "BF16": "uint16", "I32": "int32", "I64": "int64",
             "BOOL": "bool_", "U8": "uint8", "I8": "int8", "I16": "int16"}
_SIZES = {"F32": 4, "F64": 8, "F16": 2, "BF16": 2, "I32": 4, "I64": 8, "BOOL": 1, "U8": 1, "I8": 1, "I16": 2}
_SEP = "\x1f"  # nested keys (optimizer state) are flattened with this separator


def _flatten(obj, prefix, out, meta):
    if isinstance(obj, Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        if not obj:
            meta[prefix + _SEP + "__kind__"] = "emptydict"
        for k, v in obj.items():
            key = str(k)
            if not isinstance(k, str):
                meta[(prefix + _SEP if prefix else "") + key + _SEP + "__keytype__"] = type(k).__name__
            _flatten(v, (prefix + _SEP if prefix else "") + key, out, meta)
    elif isinstance(obj, (list, tuple)):
        meta[(prefix + _SEP if prefix else "") + "__kind__"] = "list" if isinstance(obj, list) else "tuple"
        meta[(prefix + _SEP if prefix else "") + "__len__"] = str(len(obj))
        for i, v in enumerate(obj):
            _flatten(v, (prefix + _SEP if prefix else "") + str(i), out, meta)
    elif obj is None or isinstance(obj, (bool, int, float, str)):
        meta[prefix] = json.dumps(obj)
    else:
        raise TypeError(f"save: cannot serialise object of type {type(obj).__name__} at '{prefix}' (tensors, dicts, "
                        f"lists, tuples, numbers, strings and None only; fastdl never pickles)")


def save(obj, path):
    """Save a tensor, or a (nested) dict/list of tensors and plain values, to `path` (a file name,
    written atomically, or a binary file object such as io.BytesIO)."""
    tensors, meta = {}, {}
    if isinstance(obj, Tensor):
        tensors[""] = obj
        meta["__single__"] = "1"
    else:
        _flatten(obj, "", tensors, meta)
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        code = _ST_DTYPES[t.dtype]
        if t.dtype == _C.dtype.bfloat16:
            raw = _bf16_bytes(t)
        else:
            raw = np.ascontiguousarray(t.numpy()).astype(getattr(np, _NP_NAMES[code]), copy=False).tobytes()
        header[name if name else "__tensor__"] = {"dtype": code, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = {"fastdl": json.dumps(meta)}
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    if hasattr(path, "write"):  # a binary file object (io.BytesIO, an open file), as torch.save takes
        path.write(struct.pack("<Q", len(hb)) + hb)
        for b in blobs:
            path.write(b)
        return
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".fastdl-", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(hb)))
            f.write(hb)
            for b in blobs:
                f.write(b)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _bf16_bytes(t):
    # round-to-nearest bf16 bits via float32
    f = t._to_dtype(_C.dtype.float32).numpy().astype(np.float32)
    u = f.view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return u.tobytes()


def _read(path):
    if hasattr(path, "read"):  # a binary file object, read from its current position
        data = path.read()
        path = getattr(path, "name", type(path).__name__)
    else:
        with open(path, "rb") as f:
            data = f.read()
    if len(data) < 8:
        raise ValueError(f"load: '{path}' is not a safetensors file (truncated header length)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8 or n > 100_000_000:
        raise ValueError(f"load: '{path}' has a header length {n} beyond the file size {len(data)}")
    try:
        header = json.loads(data[8:8 + n].decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"load: '{path}' has a corrupt header: {e}") from None
    if not isinstance(header, dict):
        raise ValueError(f"load: '{path}' header is not a JSON object")
    body = memoryview(data)[8 + n:]
    meta = header.pop("__metadata__", {}) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ValueError(f"load: '{path}': __metadata__ must map strings to strings")
    out, spans = {}, []
    for name, info in header.items():
        try:  # JSON integers only (not bools, floats or strings) for shapes and offsets
            code, shape, (b, e) = info["dtype"], list(info["shape"]), info["data_offsets"]
            if not all(type(v) is int for v in [*shape, b, e]) or isinstance(info["shape"], (str, dict)):
                raise TypeError
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"load: '{path}': malformed entry for tensor '{name}'") from None
        if not isinstance(code, str) or code not in _FROM_ST:
            raise ValueError(f"load: '{path}': tensor '{name}' has unsupported dtype {code!r}")
        if any(s < 0 for s in shape):
            raise ValueError(f"load: '{path}': tensor '{name}' has a negative dimension in shape {shape}")
        count = 1
        for s in shape:  # Python ints: no silent overflow of a huge shape's element count
            count *= s
        if not (0 <= b <= e <= len(body)) or e - b != count * _SIZES[code]:
            raise ValueError(f"load: '{path}': tensor '{name}' has data offsets [{b}, {e}] that do not match its shape "
                             f"{shape} and dtype {code} or exceed the data size {len(body)} (truncated file?)")
        spans.append((b, e, name))
        arr = np.frombuffer(body[b:e], dtype=getattr(np, _NP_NAMES[code])).reshape(shape).copy()
        if code == "BF16":
            u = arr.astype(np.uint32)
            u <<= 16  # in place: `arr << 16` would turn a 0-d array into a numpy scalar
            t = _C.from_numpy(u.view(np.float32))._to_dtype(_C.dtype.bfloat16)
        else:
            t = _C.from_numpy(arr)
        out[name] = t
    spans.sort()
    for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise ValueError(f"load: '{path}': tensors '{n0}' and '{n1}' overlap")
    return out, meta


def _unflatten(tensors, meta):
    root = {}

    def put(key, value):
        parts = key.split(_SEP)
        node = root
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value

    special = {}
    for k, v in meta.items():
        if k.endswith("__kind__") or k.endswith("__len__") or k.endswith("__keytype__"):
            special[k] = v
        else:
            put(k, json.loads(v))
    for k, t in tensors.items():
        put(k, t)
    for k, v in special.items():
        if k.endswith("__kind__") and v == "emptydict":
            put(k[: -len(_SEP + "__kind__")], {})

    def fix(node, prefix):
        if not isinstance(node, dict):
            return node
        kind = special.get((prefix + _SEP if prefix else "") + "__kind__")
        items = {k: fix(v, (prefix + _SEP if prefix else "") + k) for k, v in node.items()}
        if kind in ("list", "tuple"):
            n = int(special[(prefix + _SEP if prefix else "") + "__len__"])
            seq = [items[str(i)] for i in range(n)]
            return seq if kind == "list" else tuple(seq)
        res = {}
        for k, v in items.items():
            kt = special.get((prefix + _SEP if prefix else "") + k + _SEP + "__keytype__")
            res[int(k) if kt == "int" else float(k) if kt == "float" else k] = v
        return res
    return fix(root, "")


def _to_location(obj, map_location):
    if isinstance(obj, Tensor):
        return obj.to(map_location)
    if isinstance(obj, dict):
        return type(obj)((k, _to_location(v, map_location)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_location(v, map_location) for v in obj)
    return obj


def load(path, map_location=None, weights_only=True):
    """Load what `save` wrote, any safetensors file (a dict of tensors), or a PyTorch checkpoint
    (torch.save's zip format, read without PyTorch and without running pickled code)."""
    from fastdl._torch_checkpoint import is_torch_zip, load_torch_zip
    if hasattr(path, "read"):
        data = path.read()
        where = getattr(path, "name", type(path).__name__)
    else:
        where = os.fspath(path)
        with open(where, "rb") as f:
            data = f.read()
    if is_torch_zip(data):
        obj = load_torch_zip(data, where)
        return _to_location(obj, map_location) if map_location else obj
    import io
    stream = io.BytesIO(data)
    stream.name = where
    tensors, meta = _read(stream)
    fmeta = meta.get("fastdl")
    try:
        inner = json.loads(fmeta) if fmeta else {}
        if not isinstance(inner, dict) or not all(isinstance(v, str) for v in inner.values()):
            raise ValueError("not a JSON object of strings")
        if inner.get("__single__"):
            t = tensors["__tensor__"]
            return t.to(map_location) if map_location else t
        if map_location:
            tensors = {k: v.to(map_location) for k, v in tensors.items()}
        if not fmeta:
            return tensors
        return _unflatten(tensors, inner)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
        if isinstance(e, ValueError) and str(e).startswith("load:"):
            raise
        raise ValueError(f"load: '{path}' has corrupt fastdl metadata ({type(e).__name__}: {e})") from None
