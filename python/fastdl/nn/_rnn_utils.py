"""nn.utils.rnn: PackedSequence and the packing helpers, with PyTorch's semantics. A packed
sequence holds the rows of step t contiguously (batch_sizes[t] of them, longest sequences
first), which is the layout the native recurrent kernels walk. Packing and unpacking are one
index_select each (differentiable), with the row maps built in numpy."""
from collections import namedtuple

import numpy as np

from fastdl import _C

__all__ = ["PackedSequence", "pack_padded_sequence", "pad_packed_sequence", "pad_sequence", "pack_sequence",
           "unpack_sequence", "unpad_sequence", "invert_permutation"]


def _i64(a):
    import fastdl
    return fastdl.from_numpy(np.ascontiguousarray(a, dtype=np.int64))


def _np(t):
    return np.asarray(t.cpu().numpy() if isinstance(t, _C.Tensor) else t, dtype=np.int64).reshape(-1)


def invert_permutation(permutation):
    if permutation is None:
        return None
    p = _np(permutation)
    inv = np.empty_like(p)
    inv[p] = np.arange(len(p))
    return _i64(inv).to(permutation.device)


class PackedSequence(namedtuple("PackedSequence", ["data", "batch_sizes", "sorted_indices", "unsorted_indices"])):
    """data (sum(batch_sizes), *) with the rows of step t at [sum(batch_sizes[:t]), +batch_sizes[t]);
    batch_sizes an int64 CPU tensor; sorted_indices maps sorted position -> original batch index."""

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if batch_sizes is None:
            raise ValueError("PackedSequence: batch_sizes is required (build one with pack_padded_sequence)")
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs):
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        dev = data.device
        si = None if self.sorted_indices is None else self.sorted_indices.to(dev)
        ui = None if self.unsorted_indices is None else self.unsorted_indices.to(dev)
        return type(self)(data, self.batch_sizes, si, ui)

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else device)

    def double(self):
        return self.to(_C.dtype.float64)

    def float(self):
        return self.to(_C.dtype.float32)

    @property
    def is_cuda(self):
        return self.data.device.type == "cuda"

    def is_pinned(self):
        return False


def _batch_sizes(lengths):
    """batch_sizes[t] = #sequences longer than t, for lengths sorted in decreasing order."""
    steps = np.arange(int(lengths[0]))
    return (lengths[None, :] > steps[:, None]).sum(1)


def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):
    """Packs a padded (T, B, *) tensor ((B, T, *) when batch_first) of sequences with the given
    lengths. enforce_sorted=False sorts by decreasing length and records sorted_indices."""
    lengths = _np(lengths)
    bdim = 0 if batch_first else 1
    if input.ndim < 2:
        raise ValueError(f"pack_padded_sequence: input must be at least 2-D (T, B, *); got shape {tuple(input.shape)}")
    B, T = input.shape[bdim], input.shape[1 - bdim]
    if len(lengths) != B:
        raise ValueError(f"pack_padded_sequence: Expected `len(lengths)` to be equal to batch_size, but got "
                         f"{len(lengths)} (batch_size={B}, input shape {tuple(input.shape)})")
    if B == 0 or lengths.min() <= 0:
        raise RuntimeError("pack_padded_sequence: Length of all samples has to be greater than 0, but found an element "
                           "in 'lengths' that is <= 0")
    if lengths.max() > T:
        raise ValueError(f"pack_padded_sequence: a length ({lengths.max()}) exceeds the padded length {T} "
                         f"(input shape {tuple(input.shape)})")
    if enforce_sorted:
        if np.any(np.diff(lengths) > 0):
            raise RuntimeError("pack_padded_sequence: `lengths` array must be sorted in decreasing order when "
                               "`enforce_sorted` is True. You can pass `enforce_sorted=False` to pack_padded_sequence "
                               "and/or pack_sequence to sidestep this requirement if you do not need ONNX exportability.")
        order, sorted_indices = None, None
    else:
        order = np.argsort(-lengths, kind="stable")
        lengths = lengths[order]
        sorted_indices = _i64(order).to(input.device)
    bs = _batch_sizes(lengths)
    # row of (t, b) in the (T, B) grid of time-major sorted input, for each packed row
    src_b = order if order is not None else np.arange(B)
    rows = np.concatenate([(t * B if not batch_first else t) + (src_b[:n] * (1 if not batch_first else T))
                           for t, n in enumerate(bs)])
    flat = input.reshape(B * T, *input.shape[2:])
    data = flat.index_select(0, _i64(rows).to(input.device))
    return PackedSequence(data, _i64(bs), sorted_indices, None)


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """Inverse of pack_padded_sequence: (padded (T, B, *) or (B, T, *), lengths int64 tensor),
    batch order restored when the sequence was packed unsorted."""
    data, batch_sizes, sorted_indices, unsorted_indices = sequence
    bs = _np(batch_sizes)
    T, B = len(bs), int(bs[0])
    if total_length is not None:
        if total_length < T:
            raise ValueError(f"pad_packed_sequence: Expected total_length to be at least the length of the longest "
                             f"sequence in input, but got total_length={total_length} and max sequence length being {T}")
        T_out = int(total_length)
    else:
        T_out = T
    offsets = np.concatenate([[0], np.cumsum(bs)[:-1]])
    N = int(bs.sum())
    lengths = (bs[None, :] > np.arange(B)[:, None]).sum(1)  # per sorted batch slot
    order = _np(unsorted_indices) if unsorted_indices is not None else np.arange(B)
    # output (t, b) reads packed row offsets[t] + slot(b), or the padding row N
    slot = order  # original batch b sits at sorted slot unsorted_indices[b]
    t_idx = np.arange(T_out)[:, None]
    valid = t_idx < lengths[slot][None, :]
    src = np.where(valid, offsets[np.minimum(t_idx, T - 1)] + slot[None, :], N)
    if batch_first:
        src = src.T
    pad = _C.full((1,) + tuple(data.shape[1:]), float(padding_value), data.dtype, data.device)
    ext = _C.cat([data, pad], 0)
    out = ext.index_select(0, _i64(src.reshape(-1)).to(data.device))
    shape = (B, T_out) if batch_first else (T_out, B)
    return out.reshape(*shape, *data.shape[1:]), _i64(lengths[slot])


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Stacks variable-length (L_i, *) tensors into (L_max, B, *) ((B, L_max, *) when batch_first)."""
    if padding_side not in ("left", "right"):
        raise ValueError(f"pad_sequence: padding_side must be 'left' or 'right'; got {padding_side!r}")
    sequences = list(sequences)
    if not sequences:
        raise ValueError("pad_sequence: received an empty list of sequences")
    rest = tuple(sequences[0].shape[1:])
    for s in sequences:
        if tuple(s.shape[1:]) != rest:
            raise ValueError(f"pad_sequence: all sequences must have the same trailing shape {rest}; got "
                             f"{tuple(s.shape)}")
    L = max(s.shape[0] for s in sequences)
    padded = []
    for s in sequences:
        n = L - s.shape[0]
        if n:
            fill = _C.full((n,) + rest, float(padding_value), s.dtype, s.device)
            s = _C.cat([s, fill] if padding_side == "right" else [fill, s], 0)
        padded.append(s)
    return _C.stack(padded, 0 if batch_first else 1)


def pack_sequence(sequences, enforce_sorted=True):
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences):
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return [padded[i, :int(n)] for i, n in enumerate(lengths.tolist())]


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    """The inverse of pad_sequence: the list of sequences padded_sequences holds, sequence i its first
    lengths[i] steps (views)."""
    n = padded_sequences.shape[0 if batch_first else 1]
    lengths = [int(v) for v in (lengths.tolist() if hasattr(lengths, "tolist") else lengths)]
    if len(lengths) != n:
        raise ValueError(f"unpad_sequence: {len(lengths)} lengths for a batch of {n} sequences")
    steps = padded_sequences.shape[1 if batch_first else 0]
    if any(v < 0 or v > steps for v in lengths):
        raise ValueError(f"unpad_sequence: lengths must lie in [0, {steps}]; got {lengths}")
    if batch_first:
        return [padded_sequences[i, :v] for i, v in enumerate(lengths)]
    return [padded_sequences[:v, i] for i, v in enumerate(lengths)]
