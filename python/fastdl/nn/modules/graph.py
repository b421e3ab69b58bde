"""Graph layers with PyTorch Geometric's names and arguments: GCNConv (Kipf & Welling 2017),
SAGEConv (Hamilton et al. 2017), GATConv (Velickovic et al. 2018), global pooling over a batch
vector, and the edge helpers they use (self loops, GCN normalisation). Aggregation runs on the
native fused message-passing kernel (F.message_passing / F.segment_softmax): no (E, F) message
tensor, deterministic, gradients for features and edge weights."""
import math

import numpy as np

from fastdl import _C, _tensor
from fastdl.nn import functional as F, init
from fastdl.nn._functional_graph import global_add_pool, global_max_pool, global_mean_pool  # noqa: F401
from fastdl.nn.modules.module import Module
from fastdl.nn.parameter import Parameter


def _num_nodes(x, num_nodes):
    return int(x.shape[0]) if num_nodes is None else int(num_nodes)


def _ei_numpy(edge_index):
    return np.asarray(edge_index.cpu().numpy() if hasattr(edge_index, "cpu") else edge_index, dtype=np.int64)


def remove_self_loops(edge_index, edge_weight=None):
    """Drops edges i -> i; returns (edge_index, edge_weight)."""
    ei = _ei_numpy(edge_index)
    keep = np.nonzero(ei[0] != ei[1])[0]
    dev = getattr(edge_index, "device", None)
    out = _tensor.tensor(ei[:, keep], device=dev)
    if edge_weight is not None:
        edge_weight = edge_weight[_tensor.tensor(keep, device=dev)]
    return out, edge_weight


def add_self_loops(edge_index, edge_weight=None, fill_value=1.0, num_nodes=None):
    """Appends one edge i -> i per node (weight fill_value) after removing existing self loops
    (their weights are replaced by fill_value); returns (edge_index, edge_weight)."""
    ei = _ei_numpy(edge_index)
    n = int(ei.max()) + 1 if num_nodes is None and ei.size else int(num_nodes or 0)
    dev = getattr(edge_index, "device", None)
    keep = np.nonzero(ei[0] != ei[1])[0]
    loops = np.arange(n, dtype=np.int64)
    out = _tensor.tensor(np.concatenate([ei[:, keep], np.stack([loops, loops])], axis=1), device=dev)
    if edge_weight is not None:
        fill = _tensor.full((n,), float(fill_value), dtype=edge_weight.dtype, device=dev)
        edge_weight = _C.cat([edge_weight[_tensor.tensor(keep, device=dev)], fill], 0)
    return out, edge_weight


def gcn_norm(edge_index, edge_weight=None, num_nodes=None, improved=False, add_self_loops=True, dtype=None):
    """Symmetric normalisation D^-1/2 (A + I) D^-1/2 of GCN: returns (edge_index, edge_weight)
    with w_ji = w_ji / sqrt(deg_j deg_i), degrees summed over incoming edge weights."""
    fill = 2.0 if improved else 1.0
    ei = _ei_numpy(edge_index)
    n = num_nodes if num_nodes is not None else (int(ei.max()) + 1 if ei.size else 0)
    dev = getattr(edge_index, "device", None)
    if edge_weight is None or not edge_weight.requires_grad:
        # constant weights: normalise in float64 numpy, once
        w = np.ones(ei.shape[1]) if edge_weight is None else np.asarray(edge_weight.cpu().numpy(), np.float64)
        if add_self_loops:
            keep = ei[0] != ei[1]
            ei = np.concatenate([ei[:, keep], np.stack([np.arange(n)] * 2)], axis=1)
            w = np.concatenate([w[keep], np.full(n, fill)])
        deg = np.bincount(ei[1], weights=w, minlength=n)
        dis = np.where(deg > 0, 1.0 / np.sqrt(np.where(deg > 0, deg, 1.0)), 0.0)
        w = dis[ei[0]] * w * dis[ei[1]]
        wdt = dtype or (edge_weight.dtype if edge_weight is not None else _tensor.get_default_dtype())
        return _tensor.tensor(ei, device=dev), _tensor.tensor(w, dtype=wdt, device=dev)
    if add_self_loops:  # differentiable edge weights: the same with native ops
        edge_index, edge_weight = globals()["add_self_loops"](edge_index, edge_weight, fill, n)
    col = edge_index[1]
    deg = F.scatter(edge_weight, col, dim_size=n, reduce="sum")
    dis = _C.where(deg > 0, deg.clamp(min=1e-30) ** -0.5, _tensor.zeros_like(deg))
    return edge_index, dis[edge_index[0]] * edge_weight * dis[col]


def _glorot(t):
    init.xavier_uniform_(t)


class GCNConv(Module):
    """out = D^-1/2 (A + I) D^-1/2 X W + b (torch_geometric.nn.GCNConv). cached=True stores the
    normalised graph of the first call (transductive use); edge_weight (E,) optional."""

    def __init__(self, in_channels, out_channels, improved=False, cached=False, add_self_loops=True, normalize=True,
                 bias=True, device=None, dtype=None):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.improved, self.cached, self.add_self_loops, self.normalize = improved, cached, add_self_loops, normalize
        self.weight = Parameter(_tensor.empty(out_channels, in_channels, dtype=dtype, device=device))
        self.bias = Parameter(_tensor.empty(out_channels, dtype=dtype, device=device)) if bias else None
        self._cached_graph = None
        self.reset_parameters()

    def reset_parameters(self):
        _glorot(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)
        self._cached_graph = None

    def forward(self, x, edge_index, edge_weight=None):
        n = int(x.shape[0])
        if self.normalize:
            if self.cached and self._cached_graph is not None:
                edge_index, edge_weight = self._cached_graph
            else:
                edge_index, edge_weight = gcn_norm(edge_index, edge_weight, n, self.improved, self.add_self_loops,
                                                   dtype=x.dtype)
                if self.cached:
                    self._cached_graph = (edge_index, edge_weight)
        # aggregate on the narrower side: A (X W) when out <= in, else (A X) W
        if self.out_channels <= self.in_channels:
            out = F.message_passing(F.linear(x, self.weight), edge_index, edge_weight, reduce="sum", num_nodes=n)
        else:
            out = F.linear(F.message_passing(x, edge_index, edge_weight, reduce="sum", num_nodes=n), self.weight)
        return out + self.bias if self.bias is not None else out

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}"


class SAGEConv(Module):
    """out = lin_l(aggr_{j -> i} x_j) + lin_r(x_i) (torch_geometric.nn.SAGEConv); aggr "mean",
    "max" or "sum"; root_weight=False drops lin_r; normalize=True L2-normalises the output."""

    def __init__(self, in_channels, out_channels, aggr="mean", normalize=False, root_weight=True, bias=True,
                 device=None, dtype=None):
        super().__init__()
        from fastdl.nn.modules.linear import Linear
        if aggr not in ("mean", "max", "sum", "add", "min"):
            raise ValueError(f"SAGEConv: aggr must be 'mean', 'max', 'min' or 'sum'; got '{aggr}'")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.aggr, self.normalize, self.root_weight = aggr, normalize, root_weight
        self.lin_l = Linear(in_channels, out_channels, bias=bias, device=device, dtype=dtype)
        self.lin_r = Linear(in_channels, out_channels, bias=False, device=device, dtype=dtype) if root_weight else None

    def forward(self, x, edge_index):
        agg = F.message_passing(x, edge_index, None, reduce=self.aggr, num_nodes=int(x.shape[0]))
        out = self.lin_l(agg)
        if self.lin_r is not None:
            out = out + self.lin_r(x)
        if self.normalize:
            out = F.normalize(out, p=2.0, dim=-1)
        return out

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, aggr={self.aggr}"


class GATConv(Module):
    """Graph attention (torch_geometric.nn.GATConv): per head h, alpha_ji = softmax over the
    edges into i of LeakyReLU(a_src . W x_j + a_dst . W x_i), out_i = sum_j alpha_ji W x_j;
    heads concatenated (concat=True) or averaged; dropout on the attention coefficients."""

    def __init__(self, in_channels, out_channels, heads=1, concat=True, negative_slope=0.2, dropout=0.0,
                 add_self_loops=True, bias=True, device=None, dtype=None):
        super().__init__()
        self.in_channels, self.out_channels, self.heads, self.concat = in_channels, out_channels, heads, concat
        self.negative_slope, self.dropout, self.add_self_loops = negative_slope, dropout, add_self_loops
        self.weight = Parameter(_tensor.empty(heads * out_channels, in_channels, dtype=dtype, device=device))
        self.att_src = Parameter(_tensor.empty(1, heads, out_channels, dtype=dtype, device=device))
        self.att_dst = Parameter(_tensor.empty(1, heads, out_channels, dtype=dtype, device=device))
        nb = heads * out_channels if concat else out_channels
        self.bias = Parameter(_tensor.empty(nb, dtype=dtype, device=device)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        _glorot(self.weight)
        for a in (self.att_src, self.att_dst):  # glorot over (heads, out_channels), as PyG
            bound = math.sqrt(6.0 / (a.shape[-2] + a.shape[-1]))
            init.uniform_(a, -bound, bound)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, x, edge_index, return_attention_weights=False):
        n, H, C = int(x.shape[0]), self.heads, self.out_channels
        if self.add_self_loops:
            edge_index, _ = add_self_loops(edge_index, num_nodes=n)
        h = F.linear(x, self.weight).reshape(n, H, C)
        a_src = (h * self.att_src).sum(-1)  # (N, H)
        a_dst = (h * self.att_dst).sum(-1)
        alpha = a_src[edge_index[0]] + a_dst[edge_index[1]]  # (E, H)
        alpha = F.leaky_relu(alpha, self.negative_slope)
        alpha = F.segment_softmax(alpha, edge_index[1], num_nodes=n)
        att = alpha
        if self.dropout > 0:
            alpha = F.dropout(alpha, p=self.dropout, training=self.training)
        out = F.message_passing(h, edge_index, alpha, reduce="sum", num_nodes=n)  # (N, H, C)
        out = out.reshape(n, H * C) if self.concat else out.mean(1)
        if self.bias is not None:
            out = out + self.bias
        return (out, (edge_index, att)) if return_attention_weights else out

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, heads={self.heads}"
