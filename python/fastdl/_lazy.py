"""numpy, imported on first use: `import fastdl` stays fast (numpy alone costs ~80 ms)."""
import importlib


class LazyModule:
    def __init__(self, name):
        self._name, self._mod = name, None

    def __getattr__(self, attr):
        if self._mod is None:
            self._mod = importlib.import_module(self._name)
        return getattr(self._mod, attr)


np = LazyModule("numpy")
