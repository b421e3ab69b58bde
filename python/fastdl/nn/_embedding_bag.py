"""F.embedding_bag and nn.EmbeddingBag: sums, means or maxima of bags of embedding rows, with
PyTorch's arguments (2-D input of equal bags or 1-D input with offsets, include_last_offset,
per_sample_weights for 'sum', padding_idx entries left out of their bag and its count).

The bag layout is index bookkeeping done in numpy; the arithmetic is fastdl ops, so autograd
gives the weight gradient (and per_sample_weights'): rows are gathered with embedding, then
summed into their bag with scatter_add (sum / mean) or maxed over a (bags, longest bag, D) block
padded with -inf (max; empty bags read 0)."""
import numpy as np

from fastdl import _C
from fastdl.nn.modules.module import Module
from fastdl.nn.parameter import Parameter

_MODES = ("sum", "mean", "max")


def _dev(a, like):
    """A host (numpy) table as a tensor on like's device."""
    return _C.from_numpy(np.ascontiguousarray(a)).to(like.device)


def _bags(input, offsets, include_last_offset, op, trailing_in_last):
    """(flat indices as numpy, bag id of each, number of bags)."""
    idx = np.asarray(input.numpy()).astype(np.int64)
    if input.ndim == 2:
        if offsets is not None:
            raise ValueError(f"{op}: offsets must be None when input is 2D; got input shape {tuple(input.shape)}")
        B, L = idx.shape
        return idx.reshape(-1), np.repeat(np.arange(B), L), B
    if input.ndim != 1:
        raise ValueError(f"{op}: input must be 1D (with offsets) or 2D (bags, length); got shape "
                         f"{tuple(input.shape)}")
    if offsets is None:
        raise ValueError(f"{op}: offsets has to be a 1D Tensor when input is 1D; got None")
    off = np.asarray(offsets.numpy()).astype(np.int64).reshape(-1)
    if offsets.ndim != 1:
        raise ValueError(f"{op}: offsets has to be a 1D Tensor; got shape {tuple(offsets.shape)}")
    n = idx.shape[0]
    if include_last_offset:
        if off.size < 1:
            raise ValueError(f"{op}: include_last_offset needs at least one offset; got shape {tuple(offsets.shape)}")
        bounds, B = off, off.size - 1
    else:
        bounds, B = np.append(off, n), off.size
    if off.size and (off[0] != 0 or (np.diff(bounds) < 0).any() or bounds[-1] > n):
        raise ValueError(f"{op}: offsets must start at 0, be non-decreasing and stay within the input length {n}; "
                         f"got {off.tolist()}")
    bag = np.searchsorted(bounds[1:], np.arange(n), side="right") if B else np.zeros(0, np.int64)
    if not trailing_in_last or B == 0:  # entries at or past a last offset belong to no bag ('max', as PyTorch)
        keep = bag < B
        return idx[keep], bag[keep], B
    return idx, np.minimum(bag, B - 1), B  # 'sum' / 'mean': PyTorch adds them to the last bag


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False, mode="mean",
                  sparse=False, per_sample_weights=None, include_last_offset=False, padding_idx=None):
    """Reduce each bag of embedding rows to one (bags, D) row: 'sum' (weighted by
    per_sample_weights when given), 'mean' or 'max'; empty bags give zeros."""
    op = "embedding_bag"
    if mode not in _MODES:
        raise ValueError(f"{op}: mode must be one of {_MODES}; got '{mode}'")
    if weight.ndim != 2:
        raise ValueError(f"{op}: weight must be 2D (num_embeddings, D); got shape {tuple(weight.shape)}")
    if input.dtype not in (_C.dtype.int32, _C.dtype.int64):
        raise TypeError(f"{op}: input must be int32 or int64 indices; got {input.dtype}")
    V, D = weight.shape
    if per_sample_weights is not None:
        if mode != "sum":
            raise ValueError(f"{op}: per_sample_weights is only supported for mode='sum'; got mode='{mode}'")
        if tuple(per_sample_weights.shape) != tuple(input.shape):
            raise ValueError(f"{op}: per_sample_weights shape {tuple(per_sample_weights.shape)} must match input "
                             f"shape {tuple(input.shape)}")
    if padding_idx is not None:
        if not -V <= padding_idx < V:
            raise ValueError(f"{op}: padding_idx must be within [-{V}, {V}); got {padding_idx}")
        padding_idx = padding_idx + V if padding_idx < 0 else padding_idx
    idx, bag, B = _bags(input, offsets, include_last_offset, op, mode != "max")
    if idx.size and (idx.min() < 0 or idx.max() >= V):
        raise IndexError(f"{op}: index {int(idx.max() if idx.max() >= V else idx.min())} out of range for {V} "
                         f"embeddings; input shape {tuple(input.shape)}")
    if max_norm is not None:
        from fastdl.nn.functional import _embedding_renorm_
        _embedding_renorm_(weight, input, max_norm, norm_type)
    pos = np.arange(idx.size)
    if padding_idx is not None:  # padding entries are left out of their bag
        pos = pos[idx != padding_idx]
    sel_idx, sel_bag = idx[pos], bag[pos]
    rows = _C.embedding(weight, _dev(sel_idx, weight))  # (K, D)
    if scale_grad_by_freq and rows.requires_grad and sel_idx.size:  # each row's gradient over its count in input
        _, inv, counts = np.unique(idx, return_inverse=True, return_counts=True)
        scale = _dev((1.0 / counts[inv][pos]).reshape(-1, 1), weight).to(rows.dtype)
        rows = rows.detach() + (rows - rows.detach()) * scale
    if per_sample_weights is not None:
        psw = per_sample_weights.reshape(-1)
        if include_last_offset and offsets is not None and input.ndim == 1:
            psw = psw[:idx.size] if idx.size else psw[:0]
        rows = rows * _C.index_select(psw, 0, _dev(pos.astype(np.int64), weight)).unsqueeze(1)
    zeros = _C.full((B, D), 0.0, weight.dtype, weight.device)
    if mode in ("sum", "mean"):
        target = _dev(np.repeat(sel_bag.reshape(-1, 1), D, axis=1).astype(np.int64), weight)
        out = zeros.scatter_add(0, target, rows) if sel_idx.size else zeros + weight.sum() * 0
        if mode == "mean":
            counts = np.bincount(sel_bag, minlength=B).astype(np.float64)
            out = out / _dev(np.maximum(counts, 1.0).reshape(-1, 1), weight).to(out.dtype)
        return out
    counts = np.bincount(sel_bag, minlength=B)
    longest = int(counts.max()) if counts.size else 0
    if longest == 0:
        return zeros + weight.sum() * 0
    # slot j of bag b reads row k (its j-th member) or the -inf row K
    K = sel_idx.size
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    order = np.argsort(sel_bag, kind="stable")
    slot = np.full((B, longest), K, dtype=np.int64)
    rank = np.arange(K) - starts[sel_bag[order]]
    slot[sel_bag[order], rank] = order
    block = _C.cat([rows, _C.full((1, D), float("-inf"), rows.dtype, rows.device)], 0)
    vals = _C.index_select(block, 0, _dev(slot.reshape(-1), weight)).reshape(B, longest, D)
    out = vals.max(1)[0]
    empty = _dev((counts == 0).reshape(-1, 1), weight)
    return _C.where(empty, 0.0, out) if (counts == 0).any() else out


class EmbeddingBag(Module):
    """nn.EmbeddingBag: a (num_embeddings, embedding_dim) weight drawn from N(0, 1) (padding row
    zeroed), reduced per bag by embedding_bag."""

    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
                 mode="mean", sparse=False, _weight=None, include_last_offset=False, padding_idx=None, device=None,
                 dtype=None):
        super().__init__()
        from fastdl import _tensor, no_grad
        if mode not in _MODES:
            raise ValueError(f"EmbeddingBag: mode must be one of {_MODES}; got '{mode}'")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"EmbeddingBag: padding_idx must be within num_embeddings {num_embeddings}; got "
                                 f"{padding_idx}")
            padding_idx = padding_idx + num_embeddings if padding_idx < 0 else padding_idx
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.max_norm, self.norm_type, self.scale_grad_by_freq = max_norm, norm_type, scale_grad_by_freq
        self.mode, self.sparse = mode, sparse
        self.include_last_offset, self.padding_idx = include_last_offset, padding_idx
        if _weight is None:
            w = _tensor.randn(num_embeddings, embedding_dim, dtype=dtype, device=device)
            if padding_idx is not None:
                with no_grad():
                    w[padding_idx] = 0.0
            self.weight = Parameter(w)
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(f"EmbeddingBag: _weight shape {tuple(_weight.shape)} must be "
                                 f"({num_embeddings}, {embedding_dim})")
            self.weight = Parameter(_weight)

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
                        mode="mean", sparse=False, include_last_offset=False, padding_idx=None):
        """An EmbeddingBag whose weight is a copy of the 2-D `embeddings`, trainable unless freeze."""
        if embeddings.ndim != 2:
            raise ValueError(f"EmbeddingBag.from_pretrained: embeddings must be 2-D; got shape "
                             f"{tuple(embeddings.shape)}")
        n, d = embeddings.shape
        bag = cls(n, d, max_norm, norm_type, scale_grad_by_freq, mode, sparse, embeddings.detach().clone(),
                  include_last_offset, padding_idx)
        bag.weight.requires_grad_(not freeze)
        return bag

    def forward(self, input, offsets=None, per_sample_weights=None):
        return embedding_bag(input, self.weight, offsets, self.max_norm, self.norm_type, self.scale_grad_by_freq,
                             self.mode, self.sparse, per_sample_weights, self.include_last_offset, self.padding_idx)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}, mode='{self.mode}'"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s
