"""Misuse a type checker must catch through fastdl's stubs and annotations: each line marked
`# E: <code>` must draw exactly that mypy error (tests/test_typing.py), so the types are real
and not Any."""
import fastdl as fd
import fastdl.nn as nn
from fastdl.optim import SGD

x = fd.zeros(2, 3)
x.no_such_method()  # E: attr-defined
fd.zeros("2", 3)  # E: arg-type
fd.ones(2, dtype="float32")  # E: arg-type
s: str = x.sum()  # E: assignment
n: str = x.numel()  # E: assignment
y: str = x @ x.T  # E: assignment
z: str = x + 1  # E: assignment
SGD(nn.Linear(2, 2).parameters(), lr="fast")  # E: arg-type
nn.Linear(2, 2).train(mode="yes")  # E: arg-type
