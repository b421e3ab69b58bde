"""nn.utils.weight_norm / spectral_norm and their remove_*, PyTorch's older hook-based forms of
nn.utils.parametrizations.weight_norm / spectral_norm (_parametrizations.py): a forward pre-hook
recomputes module.weight from the parameters weight_g, weight_v, or from the parameter
weight_orig and the power-iteration buffers weight_u, weight_v (PyTorch's keys and update
order: v, then u)."""
import fastdl as fd
from fastdl import no_grad
from fastdl.nn._parametrizations import _as_matrix, _check_dim, _check_iterations, _norm_except_dim, _transposed_conv
from fastdl.nn._parametrizations import _weight_norm
from fastdl.nn.functional import normalize
from fastdl.nn.parameter import Parameter


class WeightNorm:
    def __init__(self, name, dim):
        self.name, self.dim = name, -1 if dim is None else dim

    def compute_weight(self, module):
        return _weight_norm(getattr(module, self.name + "_v"), getattr(module, self.name + "_g"), self.dim)

    def __call__(self, module, inputs):
        setattr(module, self.name, self.compute_weight(module))

    def remove(self, module):
        with no_grad():
            weight = self.compute_weight(module)
        delattr(module, self.name)
        del module._parameters[self.name + "_g"]
        del module._parameters[self.name + "_v"]
        module.register_parameter(self.name, Parameter(weight.detach()))


class SpectralNorm:
    def __init__(self, name="weight", n_power_iterations=1, dim=0, eps=1e-12):
        _check_iterations(n_power_iterations, "spectral_norm")
        self.name, self.n_power_iterations, self.dim, self.eps = name, n_power_iterations, dim, eps

    def compute_weight(self, module, do_power_iteration):
        weight = getattr(module, self.name + "_orig")
        u, v = getattr(module, self.name + "_u"), getattr(module, self.name + "_v")
        w = _as_matrix(weight, self.dim)
        if do_power_iteration:
            with no_grad():
                wd = w.detach()
                for _ in range(self.n_power_iterations):
                    v.copy_(normalize(fd.mv(wd.T, u), dim=0, eps=self.eps))
                    u.copy_(normalize(fd.mv(wd, v), dim=0, eps=self.eps))
        u, v = u.clone(), v.clone()
        return weight / fd.dot(u, fd.mv(w, v))

    def __call__(self, module, inputs):
        setattr(module, self.name, self.compute_weight(module, do_power_iteration=module.training))

    def remove(self, module):
        with no_grad():
            weight = self.compute_weight(module, do_power_iteration=False)
        delattr(module, self.name)
        for suffix in ("_u", "_v", "_orig"):
            delattr(module, self.name + suffix)
        module.register_parameter(self.name, Parameter(weight.detach()))


def _find_hook(module, kind, name):
    for key, hook in module._forward_pre_hooks.items():
        if isinstance(hook, kind) and hook.name == name:
            return key, hook
    return None, None


def weight_norm(module, name="weight", dim=0):
    """module.name = name_g name_v / ||name_v||, recomputed before every forward (the older
    form of nn.utils.parametrizations.weight_norm)."""
    if _find_hook(module, WeightNorm, name)[1] is not None:
        raise RuntimeError(f"Cannot register two weight_norm hooks on the same parameter {name}")
    weight = module._parameters.get(name)
    if weight is None:
        raise ValueError(f"weight_norm: {type(module).__name__} has no parameter '{name}'")
    fn = WeightNorm(name, dim)
    with no_grad():
        g = _norm_except_dim(weight, fn.dim).detach()
    del module._parameters[name]
    module.register_parameter(name + "_g", Parameter(g))
    module.register_parameter(name + "_v", Parameter(weight.detach()))
    setattr(module, name, fn.compute_weight(module))
    module.register_forward_pre_hook(fn)
    return module


def _remove(module, kind, name, what):
    """Undo a hook form: the hook's tensors become the plain parameter `name` again."""
    key, hook = _find_hook(module, kind, name)
    if hook is None:
        raise ValueError(f"{what} of '{name}' not found in {module}")
    hook.remove(module)
    del module._forward_pre_hooks[key]
    return module


def remove_weight_norm(module, name="weight"):
    return _remove(module, WeightNorm, name, "weight_norm")


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """module.name = name_orig / sigma, sigma by power iteration on the buffers name_u, name_v
    before every training-mode forward (the older form of
    nn.utils.parametrizations.spectral_norm)."""
    if _find_hook(module, SpectralNorm, name)[1] is not None:
        raise RuntimeError(f"Cannot register two spectral_norm hooks on the same parameter {name}")
    weight = module._parameters.get(name)
    if weight is None:
        raise ValueError(f"`SpectralNorm` cannot be applied as parameter `{name}` is None")
    if dim is None:
        dim = 1 if _transposed_conv(module) else 0
    fn = SpectralNorm(name, n_power_iterations, _check_dim(weight, dim, "spectral_norm"), eps)
    with no_grad():
        h, k = _as_matrix(weight, fn.dim).shape
        u = normalize(weight.new_empty(h).normal_(0, 1), dim=0, eps=eps)
        v = normalize(weight.new_empty(k).normal_(0, 1), dim=0, eps=eps)
    delattr(module, name)
    module.register_parameter(name + "_orig", weight)
    setattr(module, name, weight.detach())
    module.register_buffer(name + "_u", u)
    module.register_buffer(name + "_v", v)
    module.register_forward_pre_hook(fn)
    return module


def remove_spectral_norm(module, name="weight"):
    return _remove(module, SpectralNorm, name, "spectral_norm")
