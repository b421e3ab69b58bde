"""Recurrent layers: RNN (tanh / relu), LSTM (with proj_size), GRU and their cells, with
PyTorch's arguments, parameter names and layout (a PyTorch state_dict loads unchanged). Each
layer-direction is one native call (`_C.rnn_layer`): the input projection of every step as
one GEMM, a fused gate kernel per step, and backpropagation through time in native code."""
import math

from fastdl import _C, _tensor
from fastdl.nn import functional as F, init
from fastdl.nn._rnn_utils import PackedSequence
from fastdl.nn.modules.module import Module
from fastdl.nn.parameter import Parameter

_MODES = {"RNN_TANH": 0, "RNN_RELU": 1, "LSTM": 2, "GRU": 3}
_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _rnn_layer(x, batch_sizes, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, mode, reverse):
    """One layer-direction on the native kernel; with autograd, its node also gets the composed
    form below for create_graph backwards (second derivatives: gradient penalties, MAML)."""
    r = _C.rnn_layer(x, batch_sizes, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, mode, reverse)
    if _C.is_grad_enabled() and r[0].requires_grad:
        from fastdl.autograd.composite import attach
        bs = None if batch_sizes is None else [int(b) for b in batch_sizes.tolist()]
        attach(r, [x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr],
               lambda *ins: _rnn_layer_composed(mode, reverse, bs, *ins))
    return r


def _rnn_layer_composed(mode, reverse, bs, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr):
    """_C.rnn_layer from differentiable ops, step by step (PyTorch's gate order: LSTM i, f, g, o;
    GRU r, z, n). Packed sequences (bs: the batch size of each step, non-increasing) update the
    first bs[t] rows of the state; the other rows keep theirs (finished, or not yet started when
    reversed)."""
    T = x.shape[0] if bs is None else len(bs)
    B = x.shape[1] if bs is None else bs[0]
    G = {0: 1, 1: 1, 2: 4, 3: 3}[mode]
    H = w_ih.shape[0] // G
    P = w_hr.shape[0] if w_hr is not None else H
    gx = _C.matmul(x, w_ih.mT)
    if b_ih is not None:
        gx = gx + b_ih
    offs = [0]
    for b in bs or []:
        offs.append(offs[-1] + b)
    h = h0 if h0 is not None else _C.full((B, P), 0.0, x.dtype, x.device)
    c = (c0 if c0 is not None else _C.full((B, H), 0.0, x.dtype, x.device)) if mode == 2 else None
    outs = [None] * T
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        bt = B if bs is None else bs[t]
        gxt = gx[t] if bs is None else gx[offs[t]:offs[t] + bt]
        hp = h if bt == B else h[:bt]
        gh = _C.matmul(hp, w_hh.mT)
        if b_hh is not None:
            gh = gh + b_hh
        if mode in (0, 1):
            hn = (_C.tanh if mode == 0 else _C.relu)(gxt + gh)
        elif mode == 2:
            gates = gxt + gh
            i, f, g, o = (gates[:, k * H:(k + 1) * H] for k in range(4))
            cp = c if bt == B else c[:bt]
            cn = _C.sigmoid(f) * cp + _C.sigmoid(i) * _C.tanh(g)
            hn = _C.sigmoid(o) * _C.tanh(cn)
            if w_hr is not None:
                hn = _C.matmul(hn, w_hr.mT)
            c = cn if bt == B else _C.cat([cn, c[bt:]], 0)
        else:
            r = _C.sigmoid(gxt[:, :H] + gh[:, :H])
            z = _C.sigmoid(gxt[:, H:2 * H] + gh[:, H:2 * H])
            n = _C.tanh(gxt[:, 2 * H:] + r * gh[:, 2 * H:])
            hn = (1 - z) * n + z * hp
        outs[t] = hn
        h = hn if bt == B else _C.cat([hn, h[bt:]], 0)
    out = _C.stack(outs, 0) if bs is None else _C.cat(outs, 0)
    return (out, h, c) if mode == 2 else (out, h)


class RNNBase(Module):
    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f"Unrecognized RNN mode: {mode}")
        name = type(self).__name__
        for arg, v in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if not isinstance(v, int):
                raise TypeError(f"{name}: {arg} should be of type int, got: {type(v).__name__}")
            if v <= 0:
                raise ValueError(f"{name}: {arg} must be greater than zero; got {v}")
        for arg, v in (("bias", bias), ("batch_first", batch_first)):
            if not isinstance(v, bool):
                raise TypeError(f"{name}: {arg} should be of type bool, got: {type(v).__name__}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
            raise ValueError(f"{name}: dropout should be a number in range [0, 1] representing the probability of an "
                             f"element being zeroed; got {dropout!r}")
        if proj_size < 0:
            raise ValueError(f"{name}: proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError(f"{name}: proj_size has to be smaller than hidden_size")
        if proj_size and mode != "LSTM":
            raise ValueError(f"{name}: proj_size argument is only supported for LSTM, not RNN or GRU")
        self.mode, self.input_size, self.hidden_size, self.num_layers = mode, input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size = bidirectional, proj_size
        dirs = 2 if bidirectional else 1
        real_hidden = proj_size or hidden_size
        gh = _GATES[mode] * hidden_size
        self._flat_weights_names = []
        for layer in range(num_layers):
            for d in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                in_size = input_size if layer == 0 else real_hidden * dirs
                shapes = [("weight_ih", (gh, in_size)), ("weight_hh", (gh, real_hidden))]
                if bias:
                    shapes += [("bias_ih", (gh,)), ("bias_hh", (gh,))]
                if proj_size:
                    shapes.append(("weight_hr", (proj_size, hidden_size)))
                for pname, shape in shapes:
                    setattr(self, pname + sfx, Parameter(_tensor.empty(*shape, dtype=dtype, device=device)))
                    self._flat_weights_names.append(pname + sfx)
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -stdv, stdv)

    def flatten_parameters(self):
        """PyTorch compacts cuDNN weights here; fastdl's layout needs nothing."""

    @property
    def all_weights(self):
        dirs = 2 if self.bidirectional else 1
        names = self._flat_weights_names
        per = len(names) // (self.num_layers * dirs)
        return [[getattr(self, n) for n in names[i:i + per]] for i in range(0, len(names), per)]

    def _layer_weights(self, layer, d):
        sfx = f"_l{layer}" + ("_reverse" if d else "")
        g = lambda n: getattr(self, n + sfx, None)  # noqa: E731
        return g("weight_ih"), g("weight_hh"), g("bias_ih"), g("bias_hh"), g("weight_hr") if self.proj_size else None

    def _check(self, x, batch_sizes):
        name = type(self).__name__
        want = 2 if batch_sizes is not None else 3
        if x.ndim != want:
            raise ValueError(f"{name}: input must have {want} dimensions; got {x.ndim} (shape {tuple(x.shape)})")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"{name}: input.size(-1) must be equal to input_size. Expected {self.input_size}, got "
                             f"{x.shape[-1]} (input shape {tuple(x.shape)})")

    def _check_hidden(self, h, shape, what):
        if tuple(h.shape) != tuple(shape):
            raise ValueError(f"{type(self).__name__}: Expected {what} size {tuple(shape)}, got {tuple(h.shape)}")

    def forward(self, input, hx=None):
        name = type(self).__name__
        lstm = self.mode == "LSTM"
        packed = isinstance(input, PackedSequence)
        dirs = 2 if self.bidirectional else 1
        real_hidden = self.proj_size or self.hidden_size
        unbatched = False
        if packed:
            x, batch_sizes, sorted_indices, unsorted_indices = input
            B = int(batch_sizes[0])
        else:
            x, batch_sizes, sorted_indices, unsorted_indices = input, None, None, None
            if x.ndim not in (2, 3):
                raise ValueError(f"{name}: Expected input to be 2D or 3D, got {x.ndim}D tensor (shape {tuple(x.shape)})")
            if x.ndim == 2:
                unbatched = True
                x = x.unsqueeze(1)
            elif self.batch_first:
                x = x.transpose(0, 1)
            B = x.shape[1]
        self._check(x, batch_sizes)
        hshape = (self.num_layers * dirs, B, real_hidden)
        cshape = (self.num_layers * dirs, B, self.hidden_size)
        h0 = c0 = None
        if hx is not None:
            if lstm:
                if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                    raise TypeError(f"{name}: hx must be a tuple (h_0, c_0)")
                h0, c0 = hx
            else:
                if isinstance(hx, (tuple, list)):
                    raise TypeError(f"{name}: hx must be a tensor, not a tuple")
                h0 = hx
            if unbatched:
                if h0.ndim != 2 or (c0 is not None and c0.ndim != 2):
                    raise ValueError(f"{name}: For unbatched 2-D input, hx should also be 2-D but got "
                                     f"{h0.ndim}-D tensor")
                h0 = h0.unsqueeze(1)
                c0 = c0.unsqueeze(1) if c0 is not None else None
            elif h0.ndim != 3 or (c0 is not None and c0.ndim != 3):
                raise ValueError(f"{name}: For batched 3-D input, hx should also be 3-D but got {h0.ndim}-D tensor")
            if sorted_indices is not None:
                h0 = h0.index_select(1, sorted_indices)
                c0 = c0.index_select(1, sorted_indices) if c0 is not None else None
            self._check_hidden(h0, hshape, "hidden")
            if c0 is not None:
                self._check_hidden(c0, cshape, "cell")
        mode = _MODES[self.mode]
        hs, cs = [], []
        layer_in = x
        for layer in range(self.num_layers):
            outs = []
            for d in range(dirs):
                idx = layer * dirs + d
                w_ih, w_hh, b_ih, b_hh, w_hr = self._layer_weights(layer, d)
                r = _rnn_layer(layer_in, batch_sizes, None if h0 is None else h0[idx],
                                 None if c0 is None else c0[idx], w_ih, w_hh, b_ih, b_hh, w_hr, mode, d == 1)
                outs.append(r[0])
                hs.append(r[1])
                if lstm:
                    cs.append(r[2])
            layer_in = outs[0] if dirs == 1 else _C.cat(outs, -1)
            if self.dropout > 0 and self.training and layer + 1 < self.num_layers:
                layer_in = F.dropout(layer_in, self.dropout, True)
        out = layer_in
        h_n = _C.stack(hs, 0)
        c_n = _C.stack(cs, 0) if lstm else None
        if unsorted_indices is not None:
            h_n = h_n.index_select(1, unsorted_indices)
            c_n = c_n.index_select(1, unsorted_indices) if lstm else None
        if packed:
            out = PackedSequence(out, batch_sizes, sorted_indices, unsorted_indices)
        elif unbatched:
            out = out.squeeze(1)
            h_n = h_n.squeeze(1)
            c_n = c_n.squeeze(1) if lstm else None
        elif self.batch_first:
            out = out.transpose(0, 1)
        return out, ((h_n, c_n) if lstm else h_n)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(RNNBase):
    """Elman RNN: h_t = tanh or relu of (x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)."""

    def __init__(self, *args, **kwargs):
        if len(args) > 3:  # PyTorch's positional order: input, hidden, num_layers, nonlinearity, bias, ...
            args = list(args)
            kwargs["nonlinearity"] = args.pop(3)
        nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", *args, **kwargs)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """LSTM with PyTorch's gate order (i, f, g, o) and optional projection (proj_size)."""

    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)


class GRU(RNNBase):
    """GRU with PyTorch's gate order (r, z, n): n = tanh(W_in x + b_in + r (W_hn h + b_hn))."""

    def __init__(self, *args, **kwargs):
        super().__init__("GRU", *args, **kwargs)


class RNNCellBase(Module):
    def __init__(self, mode, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__()
        self.mode, self.input_size, self.hidden_size, self.bias = mode, input_size, hidden_size, bias
        gh = _GATES[mode] * hidden_size
        self.weight_ih = Parameter(_tensor.empty(gh, input_size, dtype=dtype, device=device))
        self.weight_hh = Parameter(_tensor.empty(gh, hidden_size, dtype=dtype, device=device))
        if bias:
            self.bias_ih = Parameter(_tensor.empty(gh, dtype=dtype, device=device))
            self.bias_hh = Parameter(_tensor.empty(gh, dtype=dtype, device=device))
        else:
            self.bias_ih = self.bias_hh = None
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -stdv, stdv)

    def _step(self, input, h, c):
        name = type(self).__name__
        if input.ndim not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.ndim}D input instead "
                             f"(shape {tuple(input.shape)})")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"{name}: input has inconsistent input_size: got {input.shape[-1]} expected "
                             f"{self.input_size} (input shape {tuple(input.shape)})")
        unbatched = input.ndim == 1
        for t, what in ((h, "hx"), (c, "cx")):
            if t is not None and t.ndim != input.ndim:
                raise ValueError(f"{name}: Expected {what} to be {input.ndim}D like the input, got {t.ndim}D "
                                 f"(shape {tuple(t.shape)})")
        if unbatched:
            input = input.unsqueeze(0)
            h = h.unsqueeze(0) if h is not None else None
            c = c.unsqueeze(0) if c is not None else None
        r = _rnn_layer(input.unsqueeze(0), None, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                         None, _MODES[self.mode], False)
        out = r[1:]
        return [o.squeeze(0) for o in out] if unbatched else list(out)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s


class RNNCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: Unknown nonlinearity: {nonlinearity}")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size, bias,
                         device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        return self._step(input, hx, None)[0]


class LSTMCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, bias, device, dtype)

    def forward(self, input, hx=None):
        h, c = (None, None) if hx is None else hx
        h1, c1 = self._step(input, h, c)
        return h1, c1


class GRUCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, bias, device, dtype)

    def forward(self, input, hx=None):
        return self._step(input, hx, None)[0]
