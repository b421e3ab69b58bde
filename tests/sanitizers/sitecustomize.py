"""Loaded at start-up under tests/sanitizers/run.sh: makes `import fastdl` find the sanitized
copy on PYTHONPATH even when an editable install's import hook would redirect it, and hides
the modules named in FASTDL_SAN_HIDE (e.g. torch) so their tests skip."""
import os
import sys

_site = os.environ.get("FASTDL_SAN_SITE")
if _site:
    sys.meta_path[:] = [f for f in sys.meta_path
                        if not any(k == "fastdl" or k.startswith("fastdl.")
                                   for k in getattr(f, "known_source_files", {}))]
for _name in filter(None, os.environ.get("FASTDL_SAN_HIDE", "").split(",")):
    sys.modules[_name] = None  # `import torch` raises ImportError; importorskip skips
