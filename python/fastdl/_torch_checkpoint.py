"""Reading PyTorch checkpoints (torch.save's zip format, PyTorch >= 1.6) without PyTorch, so
fd.load takes a model's .pt / .pth weights as they are published.

The archive holds <root>/data.pkl (a pickle whose tensors are persistent ids naming the storage
files <root>/data/<key>) and <root>/byteorder. The pickle is read by a restricted unpickler, as
torch.load(weights_only=True) does: only containers, plain values and the tensor-rebuilding
functions are allowed, so a checkpoint cannot run code. Tensors come back as fastdl tensors (a
view of a shared storage becomes a copy of its elements); parameters as tensors with their
requires_grad flag."""
import collections
import io
import pickle
import zipfile

from fastdl._lazy import np

from fastdl import _C

# torch's legacy typed-storage classes, as the pickle names them -> (fastdl dtype, numpy reading)
_STORAGES = {
    "FloatStorage": (_C.dtype.float32, "float32"), "DoubleStorage": (_C.dtype.float64, "float64"),
    "HalfStorage": (_C.dtype.float16, "float16"), "BFloat16Storage": (_C.dtype.bfloat16, "uint16"),
    "LongStorage": (_C.dtype.int64, "int64"), "IntStorage": (_C.dtype.int32, "int32"),
    "ShortStorage": (_C.dtype.int16, "int16"), "CharStorage": (_C.dtype.int8, "int8"),
    "ByteStorage": (_C.dtype.uint8, "uint8"), "BoolStorage": (_C.dtype.bool, "bool_"),
}


class _StorageType:
    def __init__(self, name):
        self.name = name


def is_torch_zip(head):
    return head[:4] == b"PK\x03\x04"


def _to_fastdl(arr, dtype):
    if dtype == _C.dtype.bfloat16:  # bf16 bits: the top half of a float32
        u = arr.astype(np.uint32)
        u <<= 16
        return _C.from_numpy(np.array(u.view(np.float32), order="C"))._to_dtype(_C.dtype.bfloat16)
    return _C.from_numpy(np.array(arr, order="C"))  # (ascontiguousarray would make a 0-d array 1-d)


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    flat, dtype = storage
    size, stride = tuple(size), tuple(stride)
    need = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1 if all(size) else offset
    if any(n and s < 0 for n, s in zip(size, stride)) or need > flat.size:
        raise ValueError(f"load: a tensor of size {size} and stride {stride} at offset {offset} reaches past its "
                         f"storage of {flat.size} elements (a corrupt checkpoint?)")
    arr = np.lib.stride_tricks.as_strided(flat[offset:] if flat.size else flat, shape=size,
                                          strides=tuple(s * flat.itemsize for s in stride))
    t = _to_fastdl(arr, dtype)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _rebuild_parameter(data, requires_grad, backward_hooks=None, *state):
    from fastdl.nn.parameter import Parameter
    return Parameter(data, requires_grad)


def _rebuild_from_type(func, new_type, args, state):
    return func(*args)


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
    ("torch.nn.parameter", "Parameter"): None,  # only as _rebuild_from_type's new_type
    ("torch", "Tensor"): None,
    ("torch", "Size"): tuple,
    ("builtins", "set"): set, ("builtins", "frozenset"): frozenset, ("builtins", "slice"): slice,
    ("builtins", "complex"): complex,
}


def load_torch_zip(data, where):
    """The object a torch.save zip archive (bytes) holds, tensors as fastdl tensors."""
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as e:
        raise ValueError(f"load: '{where}' is not a PyTorch checkpoint (bad zip archive: {e})") from None
    pkls = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
    if len(pkls) != 1:
        raise ValueError(f"load: '{where}' is a zip archive without a PyTorch data.pkl")
    root = pkls[0][: -len("data.pkl")]
    order = z.read(root + "byteorder").decode().strip() if root + "byteorder" in z.namelist() else "little"
    storages = {}

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if module == "torch" and name in _STORAGES:
                return _StorageType(name)
            if (module, name) in _ALLOWED:
                return _ALLOWED[(module, name)]
            raise pickle.UnpicklingError(
                f"load: '{where}' refers to {module}.{name}, which a checkpoint may not hold (fastdl reads tensors, "
                f"containers and plain values only, as torch.load(weights_only=True))")

        def persistent_load(self, pid):
            if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                    and isinstance(pid[1], _StorageType)):
                raise pickle.UnpicklingError(f"load: '{where}': unsupported persistent id {pid!r}")
            _, stype, key, _location, numel = pid[:5]
            if key not in storages:
                dtype, npname = _STORAGES[stype.name]
                npdt = np.dtype(npname).newbyteorder("<" if order == "little" else ">")
                try:
                    raw = z.read(f"{root}data/{key}")
                except KeyError:
                    raise ValueError(f"load: '{where}' lacks the storage file data/{key}") from None
                if len(raw) < numel * npdt.itemsize:
                    raise ValueError(f"load: '{where}': storage {key} holds {len(raw)} bytes, fewer than its "
                                     f"{numel} elements need (a truncated checkpoint?)")
                flat = np.frombuffer(raw, dtype=npdt, count=numel).astype(npdt.newbyteorder("="))
                storages[key] = (flat, dtype)
            return storages[key]

    return Unpickler(io.BytesIO(z.read(pkls[0]))).load()
