"""Optimizer base: param groups with per-group options, per-parameter state, zero_grad and
state_dict round trips. Subclasses declare defaults and write step()."""
from fastdl._C import Tensor


class Optimizer:
    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}
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

    def add_param_group(self, group):
        g = dict(group)
        ps = g["params"]
        g["params"] = [ps] if isinstance(ps, Tensor) else list(ps)
        for p in g["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors; got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        seen = {id(p) for og in self.param_groups for p in og["params"]}
        if any(id(p) in seen for p in g["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        for k, v in self.defaults.items():
            g.setdefault(k, v)
        self.param_groups.append(g)

    def zero_grad(self, set_to_none=True):
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        p.grad.zero_()

    def state_dict(self):
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
        state = {index[id(p)]: dict(s) for p, s in self._state_items()}
        return {"state": state, "param_groups": groups}

    def _state_items(self):
        for g in self.param_groups:
            for p in g["params"]:
                if id(p) in self.state:
                    yield p, self.state[id(p)]

    def load_state_dict(self, sd):
        groups = sd["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        params = []
        for g, sg in zip(self.param_groups, groups):
            if len(g["params"]) != len(sg["params"]):
                raise ValueError("loaded state dict contains a parameter group that doesn't match the size of optimizer's group")
            params.extend(zip(sg["params"], g["params"]))
            for k, v in sg.items():
                if k != "params":
                    g[k] = v
        self.state = {}
        st = sd["state"]
        for idx, p in params:
            s = st.get(idx, st.get(str(idx)))
            if s is not None:
                self.state[id(p)] = {k: (v.to(p.device).to(p.dtype) if isinstance(v, Tensor) and v.dtype.is_floating_point
                                         else v) for k, v in s.items()}

    def _state(self, p):
        s = self.state.get(id(p))
        if s is None:
            s = self.state[id(p)] = {}
        return s

    def step(self, closure=None):
        raise NotImplementedError

    def __repr__(self):
        s = type(self).__name__ + " ("
        for i, g in enumerate(self.param_groups):
            s += f"\nParameter Group {i}"
            for k in sorted(g):
                if k != "params":
                    s += f"\n    {k}: {g[k]}"
        return s + "\n)"
