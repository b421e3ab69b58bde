"""Graph functions: scatter, message passing, segment softmax (native, fused, deterministic)
and global pooling over a batch vector, with PyTorch Geometric's names and arguments."""
from fastdl import _C
from fastdl._lazy import np


def scatter(src, index, dim=0, dim_size=None, reduce="sum"):
    """out[index[k]] = reduce over k of src[..., k, ...] along `dim` (torch_scatter's scatter).

    index: (src.shape[dim],) int64 (or broadcast to src with size 1 elsewhere); reduce in
    "sum" ("add"), "mean", "max", "min"; groups that receive nothing give 0; dim_size defaults
    to index.max() + 1. Gradients flow to src (max/min: to the first winning element)."""
    out = _C.scatter(src, index, dim, dim_size, reduce)
    if reduce in ("max", "min") and _C.is_grad_enabled() and out.requires_grad:
        _attach(out, [src], lambda s: _scatter_extreme_composed(s, index, dim, dim_size, reduce))
    return out


def _attach(out, inputs, composite):
    """A create_graph form for a fused graph op's node (autograd/composite.py)."""
    from fastdl.autograd.composite import attach
    attach(out, inputs, composite)


def _scatter_extreme_composed(src, index, dim, dim_size, reduce):
    """scatter max / min as a sum of the winners (the first winning element of each group and
    column, as the fused backward picks), so its second derivative exists (0: the winners are
    constant)."""
    out = _C.scatter(src.detach(), index, dim, dim_size, reduce)
    d = dim % src.ndim
    s = np.moveaxis(src.detach().cpu().numpy(), d, 0)
    E = s.shape[0]
    s = s.reshape(E, -1)
    o = np.moveaxis(out.cpu().numpy(), d, 0).reshape(out.shape[d], -1)
    ix = index.reshape(-1).cpu().numpy().astype(np.int64)
    eq = s == o[ix]
    k = np.where(eq, np.arange(E)[:, None], E)
    first = np.full(o.shape, E)
    np.minimum.at(first, ix, k)
    win = eq & (k == first[ix])
    shape = (E,) + tuple(src.shape[j] for j in range(src.ndim) if j != d)
    mask = _C.movedim(_C.from_numpy(np.ascontiguousarray(win.reshape(shape))).to(src.device), 0, d)
    return _C.scatter(_C.where(mask, src, _C.full((), 0.0, src.dtype, src.device)), index, dim, dim_size, "sum")


def message_passing(x, edge_index, edge_weight=None, reduce="sum", num_nodes=None):
    """out[i] = reduce over edges e = (j -> i) of edge_weight[e] * x[j].

    x (N, ...); edge_index (2, E) int64, row 0 the source j, row 1 the target i; edge_weight
    (E,) or (E, H) for x of shape (N, H, C) (one weight per head); reduce "sum", "mean", "max"
    or "min"; out has num_nodes (default N) rows, 0 where no edge arrives. A fused gather-reduce
    over a CSR cached per edge_index: no (E, F) message tensor, the same bits for any thread
    count; gradients for x and edge_weight."""
    out = _C.message_passing(x, edge_index, edge_weight, reduce, num_nodes)
    if reduce in ("max", "min") and _C.is_grad_enabled() and out.requires_grad:
        _attach(out, [x, edge_weight],
                lambda a, w: _message_passing_extreme_composed(a, edge_index, w, reduce, num_nodes))
    return out


def _message_passing_extreme_composed(x, edge_index, w, reduce, num_nodes):
    msg = x.index_select(0, edge_index[0])
    if w is not None:
        msg = msg * w.reshape(tuple(w.shape) + (1,) * (msg.ndim - w.ndim))
    n = x.shape[0] if num_nodes is None else num_nodes
    return _scatter_extreme_composed(msg, edge_index[1], 0, n, reduce)


def segment_softmax(src, index, num_nodes=None):
    """Softmax of src (E, ...) over the entries sharing a value of index (E,), per column
    (torch_geometric.utils.softmax): the attention normalisation over a node's incoming edges."""
    out = _C.segment_softmax(src, index, num_nodes)
    if _C.is_grad_enabled() and out.requires_grad:
        _attach(out, [src], lambda s: _segment_softmax_composed(s, index, num_nodes))
    return out


def _segment_softmax_composed(src, index, num_nodes):
    m = _C.scatter(src.detach(), index, 0, num_nodes, "max").index_select(0, index)
    e = _C.exp(src - m)
    return e / _C.scatter(e, index, 0, num_nodes, "sum").index_select(0, index)


def _batch_size(batch, size):
    if size is not None:
        return int(size)
    return int(batch.max().item()) + 1 if batch.numel() else 0


def global_add_pool(x, batch=None, size=None):
    """Sum of node features per graph: (N, F) with batch (N,) graph ids -> (num_graphs, F)."""
    if batch is None:
        return x.sum(0, keepdim=True)
    return _C.scatter(x, batch, 0, _batch_size(batch, size), "sum")


def global_mean_pool(x, batch=None, size=None):
    """Mean of node features per graph (empty graphs give 0)."""
    if batch is None:
        return x.mean(0, keepdim=True)
    return _C.scatter(x, batch, 0, _batch_size(batch, size), "mean")


def global_max_pool(x, batch=None, size=None):
    """Feature-wise max per graph (empty graphs give 0)."""
    if batch is None:
        return x.amax(0, keepdim=True) if hasattr(x, "amax") else x.max(0, keepdim=True)[0]
    return _C.scatter(x, batch, 0, _batch_size(batch, size), "max")


global_sum_pool = global_add_pool
