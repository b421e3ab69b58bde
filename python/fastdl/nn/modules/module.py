"""nn.Module: registration of parameters, buffers and submodules through attribute
assignment, traversal, state_dict round trips, train/eval, device/dtype moves, hooks."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Dict, Iterator, Mapping, Tuple, TypeVar

from fastdl import _C
from fastdl._C import Tensor, dtype as _dtype
from fastdl.nn.parameter import Buffer, Parameter, is_lazy

_M = TypeVar("_M", bound="Module")

# Global hooks (torch.nn.modules.module's register_module_*): every module runs them, before its own.
_global_forward_pre_hooks: "OrderedDict[int, Callable]" = OrderedDict()
_global_forward_hooks: "OrderedDict[int, Callable]" = OrderedDict()
_global_forward_hooks_with_kwargs: set = set()
_global_forward_hooks_always_call: set = set()
_global_backward_pre_hooks: "OrderedDict[int, Callable]" = OrderedDict()
_global_backward_hooks: "OrderedDict[int, Callable]" = OrderedDict()
_global_parameter_registration_hooks: "OrderedDict[int, Callable]" = OrderedDict()
_global_buffer_registration_hooks: "OrderedDict[int, Callable]" = OrderedDict()
_global_module_registration_hooks: "OrderedDict[int, Callable]" = OrderedDict()


def _registered(hooks, module, name, value):
    """value after the registration hooks: each hook(module, name, value) may return a replacement."""
    for hook in hooks.values():
        r = hook(module, name, value)
        if r is not None:
            value = r
    return value


def _merged(first, second):
    return OrderedDict(list(first.items()) + list(second.items())) if first else second


class Module:
    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---- registration ---------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign attributes before Module.__init__() call")
        params, bufs, mods = self._parameters, self._buffers, self._modules
        for d in (params, bufs, mods):
            if name in d and not (d is params and isinstance(value, Parameter)) \
                    and not (d is mods and isinstance(value, Module)) and not (d is bufs and isinstance(value, Tensor)):
                if value is None:
                    d[name] = None
                    return
                if d is params:
                    raise TypeError(f"cannot assign '{type(value).__name__}' as parameter '{name}' (nn.Parameter or None expected)")
                del d[name]
        if isinstance(value, Parameter):
            self.__dict__.pop(name, None)
            params[name] = _registered(_global_parameter_registration_hooks, self, name, value)
        elif isinstance(value, Module):
            self.__dict__.pop(name, None)
            mods[name] = _registered(_global_module_registration_hooks, self, name, value)
        elif isinstance(value, Buffer):
            self.register_buffer(name, value.data, value.persistent)
        elif name in bufs:
            bufs[name] = _registered(_global_buffer_registration_hooks, self, name, value)
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            if key in d and name in d[key]:
                return d[key][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for key in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__[key]:
                del self.__dict__[key][name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: '{name}' must be a Parameter or None; got {type(param).__name__}")
        self._parameters[name] = _registered(_global_parameter_registration_hooks, self, name, param)

    def register_buffer(self, name, tensor, persistent=True):
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: '{name}' must be a Tensor or None; got {type(tensor).__name__}")
        self.__dict__.pop(name, None)
        self._buffers[name] = _registered(_global_buffer_registration_hooks, self, name, tensor)
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {type(module).__name__} is not a Module subclass")
        self._modules[name] = _registered(_global_module_registration_hooks, self, name, module)

    register_module = add_module

    # ---- call -----------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"Module [{type(self).__name__}] is missing the required \"forward\" function")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        kw_ids = self.__dict__.get("_hooks_with_kwargs", ())
        always = self.__dict__.get("_hooks_always_call", ())
        fwd = self._forward_hooks
        if _global_forward_hooks:
            fwd = _merged(_global_forward_hooks, fwd)
            kw_ids = set(kw_ids) | _global_forward_hooks_with_kwargs
            always = set(always) | _global_forward_hooks_always_call
        for k, hook in _merged(_global_forward_pre_hooks, self._forward_pre_hooks).items():
            if k in kw_ids:
                r = hook(self, args, kwargs)
                if r is not None:
                    if not (isinstance(r, tuple) and len(r) == 2):
                        raise RuntimeError("forward pre-hook with_kwargs must return None or a tuple (args, kwargs); "
                                           f"got {type(r).__name__}")
                    args, kwargs = r
                continue
            r = hook(self, args)
            if r is not None:
                args = r if isinstance(r, tuple) else (r,)
        bw, bw_pre = self.__dict__.get("_backward_hooks"), self.__dict__.get("_backward_pre_hooks")
        if _global_backward_hooks:
            bw = _merged(_global_backward_hooks, bw or OrderedDict())
        if _global_backward_pre_hooks:
            bw_pre = _merged(_global_backward_pre_hooks, bw_pre or OrderedDict())
        hook_bw = None
        if (bw or bw_pre) and _C.is_grad_enabled():
            from fastdl.nn.modules._backward_hooks import BackwardHook
            hook_bw = BackwardHook(self, (bw or {}).values(), (bw_pre or {}).values())
            args = hook_bw.setup_input_hook(args)
        try:
            out = self.forward(*args, **kwargs)
        except Exception:
            for k, hook in fwd.items():  # always_call hooks run on failure too
                if k in always:
                    hook(self, args, kwargs, None) if k in kw_ids else hook(self, args, None)
            raise
        for k, hook in fwd.items():
            r = hook(self, args, kwargs, out) if k in kw_ids else hook(self, args, out)
            if r is not None:
                out = r
        if hook_bw is not None:
            out = hook_bw.setup_output_hook(out)
        return out

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False, always_call=False):
        """hook(module, args, output) (with_kwargs: hook(module, args, kwargs, output)) -> None or a
        replacement output, after forward; prepend runs it before the hooks already there;
        always_call runs it (with output None) when forward raises too."""
        h = self._add_hook(self._forward_hooks, hook, prepend, with_kwargs)
        if always_call:
            self._flag_set("_hooks_always_call").add(h.id)
        return h

    def register_forward_pre_hook(self, hook, *, prepend=False, with_kwargs=False):
        """hook(module, args) -> None or replacement args (with_kwargs: hook(module, args, kwargs)
        -> None or (args, kwargs)), before forward."""
        return self._add_hook(self._forward_pre_hooks, hook, prepend, with_kwargs)

    def _flag_set(self, name):
        if name not in self.__dict__:
            object.__setattr__(self, name, set())
        return self.__dict__[name]

    def _add_hook(self, d, hook, prepend, with_kwargs):
        h = _Handle(d, hook)
        if prepend:
            d.move_to_end(h.id, last=False)
        if with_kwargs:
            self._flag_set("_hooks_with_kwargs").add(h.id)
        return h

    def register_full_backward_hook(self, hook):
        """hook(module, grad_input, grad_output) -> None or a replacement grad_input, called once
        the gradients of the module's tensor inputs are computed (grad_input holds None for inputs
        that need none)."""
        if "_backward_hooks" not in self.__dict__:
            object.__setattr__(self, "_backward_hooks", OrderedDict())
        return _Handle(self._backward_hooks, hook)

    def register_full_backward_pre_hook(self, hook):
        """hook(module, grad_output) -> None or a replacement grad_output, called when the gradients
        of the module's outputs are computed, before those of its inputs."""
        if "_backward_pre_hooks" not in self.__dict__:
            object.__setattr__(self, "_backward_pre_hooks", OrderedDict())
        return _Handle(self._backward_pre_hooks, hook)

    # ---- traversal ------------------------------------------------------------------------
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        memo = set() if memo is None else memo
        if self in memo and remove_duplicate:
            return
        memo.add(self)
        yield prefix, self
        for name, m in self._modules.items():
            if m is None:
                continue
            yield from m.named_modules(memo, prefix + ("." if prefix else "") + name, remove_duplicate)

    def modules(self, remove_duplicate: bool = True) -> Iterator[Module]:
        for _, m in self.named_modules(remove_duplicate=remove_duplicate):
            yield m

    def named_children(self):
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[Tuple[str, Parameter]]:
        seen = set()
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mp, m in mods:
            for name, p in m._parameters.items():
                if p is None or (remove_duplicate and id(p) in seen):
                    continue
                seen.add(id(p))
                yield mp + ("." if mp else "") + name, p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        seen = set()
        for mp, m in mods:
            for name, b in m._buffers.items():
                if b is None or (remove_duplicate and id(b) in seen):
                    continue
                seen.add(id(b))
                yield mp + ("." if mp else "") + name, b

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target):
        m = self
        for part in target.split(".") if target else []:
            if part not in m._modules:
                raise AttributeError(f"{type(m).__name__} has no submodule '{part}'")
            m = m._modules[part]
        return m

    def set_submodule(self, target, module, strict=False):
        """Replaces (or, unless strict, adds) the submodule at the dotted path target."""
        if not target:
            raise ValueError("set_submodule: cannot set the submodule without a target name")
        parent, _, name = target.rpartition(".")
        m = self.get_submodule(parent)
        if not isinstance(module, Module):
            raise TypeError(f"set_submodule: {type(module).__name__} is not a Module")
        if strict and name not in m._modules:
            raise AttributeError(f"{type(m).__name__} has no submodule '{name}'")
        setattr(m, name, module)

    def to_empty(self, *, device=None, recurse=True):
        """Parameters and buffers moved to device as fresh, uninitialised tensors of their shapes
        and dtypes (for a model built on one device and loaded on another)."""
        import fastdl as fd
        mods = self.modules() if recurse else [self]
        for m in mods:
            for d in (m._parameters, m._buffers):
                for k, t in d.items():
                    if t is None:
                        continue
                    fresh = fd.empty(tuple(t.shape), dtype=t.dtype, device=device if device is not None else t.device)
                    if isinstance(t, Parameter):
                        t.data = fresh
                    else:
                        d[k] = fresh
        return self

    def get_parameter(self, target):
        mod, _, name = target.rpartition(".")
        m = self.get_submodule(mod)
        if name not in m._parameters:
            raise AttributeError(f"{type(m).__name__} has no parameter `{name}`")
        return m._parameters[name]

    def get_buffer(self, target):
        mod, _, name = target.rpartition(".")
        m = self.get_submodule(mod)
        if name not in m._buffers:
            raise AttributeError(f"{type(m).__name__} has no buffer `{name}`")
        return m._buffers[name]

    # ---- state ----------------------------------------------------------------------------
    def _hook_dict(self, name):
        if name not in self.__dict__:
            object.__setattr__(self, name, OrderedDict())
        return self.__dict__[name]

    def register_state_dict_pre_hook(self, hook):
        """hook(module, prefix, keep_vars), before the module's entries are written."""
        return _Handle(self._hook_dict("_state_dict_pre_hooks"), hook)

    def register_state_dict_post_hook(self, hook):
        """hook(module, state_dict, prefix, local_metadata), after the module's (and its children's)
        entries are written; it may edit state_dict in place."""
        return _Handle(self._hook_dict("_state_dict_post_hooks"), hook)

    def register_load_state_dict_pre_hook(self, hook):
        """hook(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
        error_msgs), before loading; it may edit (a copy of) the state dict, e.g. rename old keys."""
        return _Handle(self._hook_dict("_load_state_dict_pre_hooks"), hook)

    def register_load_state_dict_post_hook(self, hook):
        """hook(module, incompatible_keys), after loading; it may edit incompatible_keys'
        missing_keys and unexpected_keys in place, which decides strict's error."""
        return _Handle(self._hook_dict("_load_state_dict_post_hooks"), hook)

    def state_dict(self, destination: Any = None, prefix: str = "", keep_vars: bool = False) -> Dict[str, Any]:
        out = OrderedDict() if destination is None else destination
        for hook in self.__dict__.get("_state_dict_pre_hooks", {}).values():
            hook(self, prefix, keep_vars)
        for name, p in self._parameters.items():
            if p is not None:
                out[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent:
                out[prefix + name] = b if keep_vars else b.detach()
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(out, prefix + name + ".", keep_vars)
        for hook in self.__dict__.get("_state_dict_post_hooks", {}).values():
            if hook(self, out, prefix, {}) is not None:
                raise RuntimeError("state_dict post-hook must return None (edit the state dict in place)")
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        mods = list(self.named_modules())
        hook_errors, post = [], []
        if any("_load_state_dict_pre_hooks" in m.__dict__ or "_load_state_dict_post_hooks" in m.__dict__
               for _, m in mods):
            state_dict = OrderedDict(state_dict)  # pre-hooks edit a copy
            for mp, m in mods:
                for hook in m.__dict__.get("_load_state_dict_pre_hooks", {}).values():
                    hook(m, state_dict, mp + "." if mp else "", {}, strict, [], [], hook_errors)
                post += [(m, h) for h in m.__dict__.get("_load_state_dict_post_hooks", {}).values()]
        for mp, m in mods:  # lazy modules materialize what the state dict gives a shape for
            if hasattr(type(m), "_lazy_load_hook"):
                m._lazy_load_hook(state_dict, mp + "." if mp else "")
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = list(hook_errors)
        for k, t in own.items():
            if k not in state_dict or is_lazy(t):  # still lazy: the source had no shape to give it either
                continue
            src = state_dict[k]
            if not isinstance(src, Tensor):
                from fastdl import tensor
                src = tensor(src)
            if tuple(src.shape) != tuple(t.shape):
                errors.append(f"size mismatch for {k}: copying a param with shape {tuple(src.shape)} from checkpoint, "
                              f"the shape in current model is {tuple(t.shape)}")
        if post and not errors:  # post-hooks see the loaded module (as PyTorch's), then strict decides
            result = self._load_values(state_dict, own, assign, missing, unexpected)
            for m, hook in post:
                if hook(m, result) is not None:
                    raise RuntimeError("load_state_dict post-hook must return None")
            if strict and (result.missing_keys or result.unexpected_keys):
                self._raise_load_errors(result.missing_keys, result.unexpected_keys, [])
            return result
        if errors or (strict and (missing or unexpected)):
            self._raise_load_errors(missing if strict else [], unexpected if strict else [], errors)
        return self._load_values(state_dict, own, assign, missing, unexpected)

    def _raise_load_errors(self, missing, unexpected, errors):
        errors = list(errors)
        if missing:
            errors.insert(0, "Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing))
        if unexpected:
            errors.insert(0, "Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected))
        raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(errors))

    def _load_values(self, state_dict, own, assign, missing, unexpected):
        from fastdl import no_grad
        if assign:  # the state dict's tensors themselves take the places (parameters keep requires_grad)
            for mp, m in self.named_modules(remove_duplicate=False):
                pre = mp + "." if mp else ""
                for d in (m._parameters, m._buffers):
                    for name, t in list(d.items()):
                        src = state_dict.get(pre + name)
                        if t is None or src is None or is_lazy(t):
                            continue
                        src = src if isinstance(src, Tensor) else t.new_tensor(src)
                        d[name] = Parameter(src.detach(), requires_grad=t.requires_grad) if isinstance(t, Parameter) \
                            else src
            return _IncompatibleKeys(missing, unexpected)
        with no_grad():
            for k, t in own.items():
                if k in state_dict and not is_lazy(t):
                    t.copy_(state_dict[k] if isinstance(state_dict[k], Tensor) else t.new_tensor(state_dict[k]))
        return _IncompatibleKeys(missing, unexpected)

    # ---- modes and moves ------------------------------------------------------------------
    def train(self: _M, mode: bool = True) -> _M:
        self.training = mode
        for m in self.children():
            m.train(mode)
        return self

    def eval(self: _M) -> _M:
        return self.train(False)

    def requires_grad_(self: _M, requires_grad: bool = True) -> _M:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()

    def _apply(self, fn):
        for m in self.children():
            m._apply(fn)
        for name, p in self._parameters.items():
            if p is not None:
                new = fn(p.detach())
                if new is not p:
                    p._set_data(new)  # keep the Parameter object: optimizers hold it
                if p.grad is not None:
                    p.grad = fn(p.grad)
        for name, b in self._buffers.items():
            if b is not None:
                self._buffers[name] = fn(b)
        return self

    def to(self: _M, *args: Any, **kwargs: Any) -> _M:
        def move(t):
            dt = None
            a = list(args) + [kwargs.get("device"), kwargs.get("dtype")]
            for x in a:
                if isinstance(x, _dtype):
                    dt = x
            if dt is not None and not t.dtype.is_floating_point:
                dt = None  # integer buffers keep their dtype
            r = t
            for x in a:
                if x is not None and not isinstance(x, _dtype):
                    r = r.to(x)
            return r.to(dt) if dt is not None else r
        return self._apply(move)

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else f"cuda:{device}")

    def float(self):
        return self.to(_dtype.float32)

    def double(self):
        return self.to(_dtype.float64)

    def half(self):
        return self.to(_dtype.float16)

    def bfloat16(self):
        return self.to(_dtype.bfloat16)

    def apply(self: _M, fn: Callable[[Module], None]) -> _M:
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ---- repr -----------------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = []
        extra = self.extra_repr()
        if extra:
            lines = extra.split("\n")
        for name, m in self._modules.items():
            mr = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {mr}")
        main = type(self).__name__ + "("
        if lines:
            if len(lines) == 1 and not self._modules:
                main += lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"

    def __dir__(self):
        return sorted(set(object.__dir__(self)) | set(self._parameters) | set(self._modules) | set(self._buffers))


class _IncompatibleKeys:
    def __init__(self, missing, unexpected):
        self.missing_keys, self.unexpected_keys = missing, unexpected

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return f"_IncompatibleKeys(missing_keys={self.missing_keys}, unexpected_keys={self.unexpected_keys})"

    def __iter__(self):
        return iter((self.missing_keys, self.unexpected_keys))


class _Handle:
    _next = 0

    def __init__(self, d, hook):
        _Handle._next += 1
        self.id, self.d = _Handle._next, d
        d[self.id] = hook

    def remove(self):
        self.d.pop(self.id, None)


# ---- global hooks -------------------------------------------------------------------------------
def register_module_forward_pre_hook(hook):
    """hook(module, args) -> None or replacement args, before every module's forward (and its own pre-hooks)."""
    return _Handle(_global_forward_pre_hooks, hook)


def register_module_forward_hook(hook, *, with_kwargs=False, always_call=False):
    """hook(module, args, output) (with_kwargs: hook(module, args, kwargs, output)) after every module's forward,
    before its own forward hooks; always_call also when forward raises (output None)."""
    h = _Handle(_global_forward_hooks, hook)
    if with_kwargs:
        _global_forward_hooks_with_kwargs.add(h.id)
    if always_call:
        _global_forward_hooks_always_call.add(h.id)
    return h


def register_module_full_backward_pre_hook(hook):
    """hook(module, grad_output) for every module, before its own backward pre-hooks."""
    return _Handle(_global_backward_pre_hooks, hook)


def register_module_full_backward_hook(hook):
    """hook(module, grad_input, grad_output) for every module, before its own full backward hooks."""
    return _Handle(_global_backward_hooks, hook)


def register_module_parameter_registration_hook(hook):
    """hook(module, name, param) -> None or a replacement, whenever a module registers a parameter."""
    return _Handle(_global_parameter_registration_hooks, hook)


def register_module_buffer_registration_hook(hook):
    """hook(module, name, buffer) -> None or a replacement, whenever a module registers a buffer."""
    return _Handle(_global_buffer_registration_hooks, hook)


def register_module_module_registration_hook(hook):
    """hook(module, name, submodule) -> None or a replacement, whenever a module registers a submodule."""
    return _Handle(_global_module_registration_hooks, hook)
