# nanobind stubgen pattern file (see nanobind's docs/typing.rst): entries whose generated
# signature is too loose for a type checker. Each query is a regex on the qualified name.

# Operators return a new Tensor (bindings take nb::handle, so stubgen only sees `object`).
\.Tensor\.__(r|i)?(add|sub|mul|truediv|floordiv|mod|pow|and|or|xor)__$:
    def __\1\2__(self, other: Tensor | float | int | bool, /) -> Tensor: ...

\.Tensor\.__(eq|ne)__$:
    def __\1__(self, other: object, /) -> Tensor: ...  # type: ignore[override]

\.Tensor\.__(lt|le|gt|ge)__$:
    def __\1__(self, other: Tensor | float | int | bool, /) -> Tensor: ...

\.Tensor\.grad$:
    @property
    def grad(self) -> Tensor | None: ...
    @grad.setter
    def grad(self, value: Tensor | None) -> None: ...

\.Tensor\.item$:
    def item(self) -> float | int | bool: ...

\.Tensor\.size$:
    @overload
    def size(self, dim: None = None) -> tuple[int, ...]: ...
    @overload
    def size(self, dim: int) -> int: ...

\.Tensor\.(max|min)$:
    @overload
    def \1(self, dim: None = None, keepdim: bool = False) -> Tensor: ...
    @overload
    def \1(self, dim: int, keepdim: bool = False) -> Any: ...

# The enum member `bool` shadows the builtin inside the class body.
\.dtype\.is_floating_point$:
    @property
    def is_floating_point(self) -> builtins.bool: ...

\.dtype\.is_signed$:
    @property
    def is_signed(self) -> builtins.bool: ...

\.dtype\.itemsize$:
    @property
    def itemsize(self) -> int: ...

\.Node\.__eq__$:
    def __eq__(self, other: object, /) -> bool: ...

\._C\.__prefix__:
    \import builtins
    \from typing import Any, overload
