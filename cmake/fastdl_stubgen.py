"""Write fastdl/_C.pyi at build time with nanobind's stubgen.

    python fastdl_stubgen.py <built _C extension> <python source dir> <pattern file> <output .pyi>

nanobind_add_stub() would import `fastdl._C` by name, which in a development checkout finds the
installed (older) copy through the editable hook; here the freshly built file is loaded as
`fastdl._C` directly. The Python layer is then imported too, so the Tensor methods it attaches
(fastdl/_tensor.py: to, cpu, tolist, sort, ...) appear in the stub with their real signatures
and a type checker sees every method a user can call."""
import importlib.machinery
import importlib.util
import re
import sys
import types

from nanobind.stubgen import StubGen, load_pattern_file


def load_extension(path):
    loader = importlib.machinery.ExtensionFileLoader("fastdl._C", path)
    spec = importlib.util.spec_from_loader("fastdl._C", loader, origin=path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["fastdl._C"] = mod
    loader.exec_module(mod)
    return mod


class FastdlStubGen(StubGen):
    """Describes Python functions attached to the extension's classes as their methods, and
    leaves out what the Python layer planted at the module's top level (re-exports)."""

    def __init__(self, module, native_names, patterns):
        super().__init__(module, patterns=patterns)
        self.native_names = native_names

    def put(self, value, name=None, parent=None):
        if parent is self.module and name is not None and name not in self.native_names:
            return
        if isinstance(parent, type) and isinstance(value, property) and isinstance(value.fget, types.FunctionType):
            ret = value.fget.__annotations__.get("return")
            self.write_ln("@property")
            self.write_ln(f"def {name}(self) -> {ret if isinstance(ret, str) else self.bind('typing', 'Any')}: ...")
            if value.fset is not None:
                self.write_ln(f"@{name}.setter")
                self.write_ln(f"def {name}(self, value: {self.bind('typing', 'Any')}) -> None: ...")
            self.write("\n")
            return
        super().put(value, name, parent)

    def put_function(self, fn, name=None, parent=None):
        if isinstance(parent, type) and isinstance(fn, types.FunctionType) and name:
            saved = fn.__module__, fn.__name__
            fn.__module__, fn.__name__ = self.module.__name__, name
            try:
                return super().put_function(fn, name, parent)
            finally:
                fn.__module__, fn.__name__ = saved
        return super().put_function(fn, name, parent)


def _split_top(params):
    """Split a parameter list at the commas outside brackets."""
    parts, depth, cur = [], 0, ""
    for ch in params:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return parts + ([cur.strip()] if cur.strip() else [])


def fix_default_order(text):
    """nanobind lets a required argument follow an optional one (C++ has no such rule); Python
    syntax does not, so such a parameter gets `= ...` in the stub (positional calls still check)."""
    out = []
    for line in text.split("\n"):
        m = re.match(r"^(\s*def \w+\()(.*)(\)(?: -> .*)?:.*)$", line)
        if m:
            parts, seen_default, kwonly = _split_top(m.group(2)), False, False
            for i, p in enumerate(parts):
                if p.startswith("*") or p == "/":
                    kwonly |= p.startswith("*")
                    continue
                if "=" in p:
                    seen_default = True
                elif seen_default and not kwonly:
                    parts[i] = p + " = ..."
            line = m.group(1) + ", ".join(parts) + m.group(3)
        out.append(line)
    return "\n".join(out)


def main(ext_path, src_dir, pattern_path, out_path):
    # Drop any editable-install hook for fastdl: the sources and the fresh build are described.
    sys.meta_path[:] = [f for f in sys.meta_path if "fastdl" not in getattr(f, "known_source_files", {})]
    sys.path.insert(0, src_dir)
    C = load_extension(ext_path)
    native_names = set(C.__dict__)
    try:
        import fastdl  # noqa: F401  (attaches the Python-side Tensor methods)
    except Exception as e:  # the extension's own stub is still right; say what is missing
        print(f"fastdl_stubgen: Python-side Tensor methods left out ({type(e).__name__}: {e})", file=sys.stderr)
    try:
        sg = FastdlStubGen(C, native_names, load_pattern_file(pattern_path))
        sg.put(C)
        text = fix_default_order(sg.get())
    except Exception as e:  # never block the build: a permissive stub, which tests/test_typing.py rejects
        print(f"fastdl_stubgen: FAILED ({type(e).__name__}: {e}); writing a permissive stub", file=sys.stderr)
        text = "from typing import Any\n\ndef __getattr__(name: str) -> Any: ...\n"
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    main(*sys.argv[1:5])
