"""nn.Mamba: the selective-SSM block of Gu & Dao (2023), with mamba_ssm's `Mamba` arguments,
parameter names and initialisation: in_proj -> causal depthwise conv1d + SiLU -> x_proj to
(dt, B, C) -> dt_proj -> selective scan (softplus on dt, D skip, SiLU(z) gate) -> out_proj.
`step` advances one token from a (conv_state, ssm_state) pair in O(1) work."""
import math

from fastdl import _C, _tensor, no_grad
from fastdl.nn import functional as F, init
from fastdl.nn._conv import Conv1d
from fastdl.nn.modules.linear import Linear
from fastdl.nn.modules.module import Module
from fastdl.nn.parameter import Parameter


class Mamba(Module):
    def __init__(self, d_model, d_state=16, d_conv=4, expand=2, dt_rank="auto", dt_min=0.001, dt_max=0.1,
                 dt_init="random", dt_scale=1.0, dt_init_floor=1e-4, conv_bias=True, bias=False, layer_idx=None,
                 device=None, dtype=None):
        super().__init__()
        self.d_model, self.d_state, self.d_conv, self.expand = d_model, d_state, d_conv, expand
        self.d_inner = int(expand * d_model)
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)
        self.layer_idx = layer_idx
        kw = dict(device=device, dtype=dtype)
        self.in_proj = Linear(d_model, 2 * self.d_inner, bias=bias, **kw)
        self.conv1d = Conv1d(self.d_inner, self.d_inner, d_conv, padding=d_conv - 1, groups=self.d_inner,
                             bias=conv_bias, **kw)
        self.x_proj = Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False, **kw)
        self.dt_proj = Linear(self.dt_rank, self.d_inner, bias=True, **kw)
        std = self.dt_rank ** -0.5 * dt_scale  # keeps dt_proj's output variance at init
        if dt_init == "constant":
            init.constant_(self.dt_proj.weight, std)
        elif dt_init == "random":
            init.uniform_(self.dt_proj.weight, -std, std)
        else:
            raise ValueError(f"Mamba: dt_init must be 'random' or 'constant'; got '{dt_init}'")
        # dt log-uniform in [dt_min, dt_max] (floored); the bias is its inverse softplus
        u = _tensor.rand(self.d_inner, dtype=_C.dtype.float64)
        dt = _C.clamp(_C.exp(u * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)), dt_init_floor, None)
        with no_grad():
            self.dt_proj.bias.copy_((dt + _C.log(-_C.expm1(-dt))).to(self.dt_proj.bias.dtype))
        # S4D-real: A = -(1, 2, ..., d_state) in every channel, stored as its log
        a = _C.arange(1, d_state + 1, 1, _C.dtype.float32).reshape(1, d_state).expand(self.d_inner, d_state)
        self.A_log = Parameter(_C.log(a).contiguous().to(dtype or _C.dtype.float32))
        self.D = Parameter(_tensor.ones(self.d_inner, dtype=dtype, device=device))
        self.out_proj = Linear(self.d_inner, d_model, bias=bias, **kw)

    def forward(self, hidden_states, return_state=False):
        """(batch, L, d_model) -> (batch, L, d_model); with return_state also the
        (conv_state, ssm_state) after the last token, ready for `step`."""
        L = hidden_states.shape[1]
        x, z = self.in_proj(hidden_states).chunk(2, dim=-1)
        x = x.transpose(1, 2)                                             # (batch, d_inner, L)
        xc = F.silu(self.conv1d(x)[..., :L])
        dt, B, C = self.x_proj(xc.transpose(1, 2)).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.linear(dt, self.dt_proj.weight).transpose(1, 2)         # (batch, d_inner, L)
        A = -_C.exp(self.A_log)
        y = F.selective_scan(xc, delta, A, B.transpose(1, 2), C.transpose(1, 2), self.D, z.transpose(1, 2),
                             self.dt_proj.bias, delta_softplus=True, return_last_state=return_state)
        if not return_state:
            return self.out_proj(y.transpose(1, 2))
        y, ssm_state = y
        k = self.d_conv
        conv_state = x[:, :, L - k:] if L >= k else \
            _C.cat([x.new_zeros((x.shape[0], self.d_inner, k - L)), x], 2)
        return self.out_proj(y.transpose(1, 2)), (conv_state.detach().contiguous(), ssm_state)

    def init_state(self, batch, dtype=None, device=None):
        dtype = dtype or self.D.dtype
        return (_tensor.zeros(batch, self.d_inner, self.d_conv, dtype=dtype, device=device),
                _tensor.zeros(batch, self.d_inner, self.d_state, dtype=dtype, device=device))

    def step(self, hidden_states, state):
        """One token: (batch, d_model) and (conv_state (batch, d_inner, d_conv), ssm_state
        (batch, d_inner, d_state)) -> (batch, d_model), new state. The new input shifts into the
        conv window; the state advances by x = exp(dt A) x + dt B u."""
        conv_state, ssm_state = state
        x, z = self.in_proj(hidden_states).chunk(2, dim=-1)               # (batch, d_inner)
        conv_state = _C.cat([conv_state[:, :, 1:], x.unsqueeze(2)], 2)
        xc = (conv_state * self.conv1d.weight[:, 0, :]).sum(-1)
        if self.conv1d.bias is not None:
            xc = xc + self.conv1d.bias
        xc = F.silu(xc)
        dt, B, C = self.x_proj(xc).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.softplus(F.linear(dt, self.dt_proj.weight, self.dt_proj.bias))   # (batch, d_inner)
        dA = _C.exp(dt.unsqueeze(2) * -_C.exp(self.A_log))                    # (batch, d_inner, d_state)
        ssm_state = ssm_state * dA + (dt * xc).unsqueeze(2) * B.unsqueeze(1)
        y = (ssm_state * C.unsqueeze(1)).sum(-1) + self.D * xc
        return self.out_proj(y * F.silu(z)), (conv_state, ssm_state)

    def extra_repr(self):
        return (f"d_model={self.d_model}, d_state={self.d_state}, d_conv={self.d_conv}, expand={self.expand}, "
                f"dt_rank={self.dt_rank}")
