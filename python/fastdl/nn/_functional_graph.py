"""Graph functions: scatter, message passing, segment softmax (native, fused, deterministic)
and global pooling over a batch vector, with PyTorch Geometric's names and arguments."""
from fastdl import _C


def scatter(src, index, dim=0, dim_size=None, reduce="sum"):
    """out[index[k]] = reduce over k of src[..., k, ...] along `dim` (torch_scatter's scatter).

    index: (src.shape[dim],) int64 (or broadcast to src with size 1 elsewhere); reduce in
    "sum" ("add"), "mean", "max", "min"; groups that receive nothing give 0; dim_size defaults
    to index.max() + 1. Gradients flow to src (max/min: to the first winning element)."""
    return _C.scatter(src, index, dim, dim_size, reduce)


def message_passing(x, edge_index, edge_weight=None, reduce="sum", num_nodes=None):
    """out[i] = reduce over edges e = (j -> i) of edge_weight[e] * x[j].

    x (N, ...); edge_index (2, E) int64, row 0 the source j, row 1 the target i; edge_weight
    (E,) or (E, H) for x of shape (N, H, C) (one weight per head); reduce "sum", "mean", "max"
    or "min"; out has num_nodes (default N) rows, 0 where no edge arrives. A fused gather-reduce
    over a CSR cached per edge_index: no (E, F) message tensor, the same bits for any thread
    count; gradients for x and edge_weight."""
    return _C.message_passing(x, edge_index, edge_weight, reduce, num_nodes)


def segment_softmax(src, index, num_nodes=None):
    """Softmax of src (E, ...) over the entries sharing a value of index (E,), per column
    (torch_geometric.utils.softmax): the attention normalisation over a node's incoming edges."""
    return _C.segment_softmax(src, index, num_nodes)


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
