"""Twins in PyTorch: the vision model files (vision, resnet, modern_cnn) are written against
`lib`, `nn`, `F` and `init` names, so executing the same source with PyTorch's builds the same
architecture in plain torch.nn (no torchvision), with the same module names. Tests load a
fastdl model's state_dict into its twin to compare forward and gradients, and `fastdl bench
models` times the two side by side."""
import importlib.util

VISION_MODULES = ("vision", "resnet", "modern_cnn")
_cache = {}


def torch_module(name, torch):
    """fastdl.models.<name> executed with torch as its backend (cached per module)."""
    if name not in VISION_MODULES:
        raise ValueError(f"twin: no PyTorch twin for module {name!r}; expected one of {VISION_MODULES}")
    if name not in _cache:
        import torch.nn  # noqa: F401  (make torch.nn.functional / init importable as attributes)
        import torch.nn.functional  # noqa: F401
        import torch.nn.init  # noqa: F401
        spec = importlib.util.find_spec(f"fastdl.models.{name}")
        with open(spec.origin) as f:
            code = compile(f.read(), spec.origin, "exec")
        ns = {"__name__": f"fastdl.models._torch_{name}", "__backend__": torch}
        exec(code, ns)  # noqa: S102 -- our own source, run against another framework
        _cache[name] = ns
    return _cache[name]


def torch_twin(constructor, torch, **kwargs):
    """Build fastdl.models.<constructor>(**kwargs)'s architecture in PyTorch, e.g.
    torch_twin("resnet18", torch, num_classes=10)."""
    for name in VISION_MODULES:
        ns = torch_module(name, torch)
        if constructor in ns and callable(ns[constructor]):
            return ns[constructor](**kwargs)
    raise ValueError(f"twin: unknown model constructor {constructor!r}")
