"""Optimizer base: param groups with per-group options, per-parameter state (keyed by the
parameter, as in PyTorch), zero_grad and state_dict round trips. A subclass declares its
defaults and its state, and its step() hands each group to one fused native kernel."""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Dict, Iterable, Optional, Union

import numpy as np

from fastdl import _C
from fastdl._C import Tensor

# What an optimizer takes: tensors, or param groups (dicts with a "params" entry and options).
ParamsT = Union[Iterable[Tensor], Iterable[Dict[str, Any]]]


def _check(cond, msg):
    if not cond:
        raise ValueError(msg)


def _scalar(x):
    """x as PyTorch keeps a per-parameter state scalar (a 0-d tensor of its default scalar
    dtype: float32 unless the default dtype is float64), returned as a Python float."""
    from fastdl import float64, get_default_dtype
    return float(x) if get_default_dtype() == float64 else float(np.float32(x))


class _RequiredParameter:
    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


class Optimizer:
    _state_like_params = True  # every state tensor has its parameter's shape (checked on load)

    def __init__(self, params: ParamsT, defaults: Dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self._optimizer_step_pre_hooks, self._optimizer_step_post_hooks = {}, {}
        _hook_step(type(self))
        self.state = defaultdict(dict)  # opt.state[p] is {} before p's first step, as in PyTorch
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            "but got a Tensor")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict; got {type(param_group).__name__}")
        g = dict(param_group)
        ps = g["params"]
        g["params"] = [ps] if isinstance(ps, Tensor) else list(ps)
        named = [isinstance(p, tuple) for p in g["params"]]
        if any(named) and not all(named):
            raise ValueError("all optimizer params should be with/without names. Some param names are missing")
        if any(named):  # named_parameters(): keep names, as PyTorch
            g["param_names"] = [n for n, _ in g["params"]]
            g["params"] = [p for _, p in g["params"]]
        if self.param_groups and ("param_names" in g) != ("param_names" in self.param_groups[0]):
            raise ValueError("all optimizer param groups should be with/without names. cannot add param group "
                             f"{'with' if 'param_names' in g else 'without'} names to the optimizer")
        for p in g["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors; got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        if len({id(p) for p in g["params"]}) != len(g["params"]):
            raise ValueError("optimizer: a parameter group contains duplicate parameters")
        seen = {id(p) for og in self.param_groups for p in og["params"]}
        if any(id(p) in seen for p in g["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        for k, v in self.defaults.items():
            if v is required and k not in g:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {k}")
            g.setdefault(k, v)
        self.param_groups.append(g)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        p.grad.zero_()

    # ---- state dicts: parameters become integer indices in group order, as in PyTorch
    def state_dict(self) -> Dict[str, Any]:
        index, groups, k = {}, [], 0
        for g in self.param_groups:
            ids = []
            for p in g["params"]:
                if id(p) not in index:
                    index[id(p)] = k
                    k += 1
                ids.append(index[id(p)])
            d = {key: v for key, v in g.items() if key != "params"}
            d["params"] = ids
            groups.append(d)
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                s = self.state.get(p)
                if s:
                    state[index[id(p)]] = dict(s)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        pairs = []
        for g, sg in zip(self.param_groups, groups):
            if len(g["params"]) != len(sg["params"]):
                raise ValueError("loaded state dict contains a parameter group that doesn't match the size of "
                                 "optimizer's group")
            pairs.extend(zip(sg["params"], g["params"]))
        for g, sg in zip(self.param_groups, groups):
            for k, v in sg.items():
                if k != "params":
                    g[k] = tuple(v) if isinstance(v, list) and isinstance(g.get(k), tuple) else v
        self.state = defaultdict(dict)
        st = state_dict["state"]
        for idx, p in pairs:
            s = st.get(idx, st.get(str(idx)))
            if s is None:
                continue
            new = {}
            for k, v in s.items():
                if isinstance(v, Tensor):
                    if self._state_like_params and tuple(v.shape) != tuple(p.shape) and v.ndim:
                        raise ValueError(f"{type(self).__name__}.load_state_dict: state '{k}' of parameter {idx} has "
                                         f"shape {tuple(v.shape)} but the parameter has shape {tuple(p.shape)}")
                    v = v.to(p.device)
                    if v.dtype.is_floating_point and v.dtype != p.dtype:
                        v = v.to(p.dtype)
                    v = v.contiguous().clone()
                new[k] = v
            self.state[p] = new

    def _closure(self, closure):
        if closure is None:
            return None
        with _enable_grad():
            return closure()

    def _active(self, group):
        """(param, grad, state) for each parameter of the group that has a gradient, with
        state["step"] advanced: the loop every fused optimizer step starts from."""
        for p in group["params"]:
            grad = p.grad
            if grad is None:
                continue
            s = self.state[p]
            s["step"] = s.get("step", 0) + 1
            yield p, grad, s

    def _buffer(self, s, key, p, fill=0.0):
        """The state tensor `key` of parameter p, created (contiguous, p's dtype/device) when absent."""
        t = s.get(key)
        if t is None:
            t = s[key] = _C.full(p.shape, fill, p.dtype, p.device)
        return t

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        raise NotImplementedError

    def register_step_pre_hook(self, hook):
        """hook(optimizer, args, kwargs) runs before step(); it may return new (args, kwargs)."""
        from fastdl.nn.modules.module import _Handle
        return _Handle(self._optimizer_step_pre_hooks, hook)

    def register_step_post_hook(self, hook):
        """hook(optimizer, args, kwargs) runs after step()."""
        from fastdl.nn.modules.module import _Handle
        return _Handle(self._optimizer_step_post_hooks, hook)

    def __repr__(self):
        s = type(self).__name__ + " ("
        for i, g in enumerate(self.param_groups):
            s += f"\nParameter Group {i}"
            for k in sorted(g):
                if k != "params":
                    s += f"\n    {k}: {g[k]}"
        return s + "\n)"


def _hook_step(cls):
    """Wrap cls.step once so that it runs the instance's step hooks (PyTorch patches the class the
    same way, so a subclass's super().step() does not run them twice)."""
    step = cls.__dict__.get("step", cls.step)
    if getattr(step, "_runs_hooks", False):
        return

    def hooked(*args, **kwargs):  # args[0] is the optimizer; hooks see it in args, as in PyTorch
        self = args[0]
        for hook in list(getattr(self, "_optimizer_step_pre_hooks", {}).values()):
            out = hook(self, args, kwargs)
            if out is not None:
                if not (isinstance(out, tuple) and len(out) == 2):
                    raise RuntimeError(f"{hook} must return None or a tuple of (new_args, new_kwargs), but got {out}.")
                args, kwargs = out
        result = step(*args, **kwargs)
        for hook in list(getattr(self, "_optimizer_step_post_hooks", {}).values()):
            hook(self, args, kwargs)
        return result

    hooked._runs_hooks = True
    hooked.__name__, hooked.__qualname__, hooked.__doc__ = step.__name__, step.__qualname__, step.__doc__
    cls.step = hooked


def _enable_grad():
    from fastdl import enable_grad
    return enable_grad()
