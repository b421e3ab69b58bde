"""numpy, imported on first use: `import fastdl` stays fast (numpy alone costs ~80 ms)."""
import importlib


class LazyModule:
    def __init__(self, name):
        self._name, self._mod = name, None

    def __getattr__(self, attr):  # only called on a miss: cache so later lookups are plain
        if self._mod is None:
            self._mod = importlib.import_module(self._name)
        value = getattr(self._mod, attr)
        setattr(self, attr, value)
        return value


np = LazyModule("numpy")
