"""Node-classification graphs stored as .npz (../shared/data/cora.npz, citeseer.npz): x (N, F)
features, y (N,) labels (-1 = unlabelled), edge_index (2, E) int64, and boolean train / val /
test masks of the Planetoid split. Loaded with numpy; no download, no pickle."""
import os

import numpy as np


class GraphData:
    """One graph, with PyTorch Geometric's attribute names: x, y, edge_index, train_mask,
    val_mask, test_mask (fastdl tensors), num_nodes, num_features, num_classes, name."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def __repr__(self):
        return (f"GraphData(name={self.name!r}, num_nodes={self.num_nodes}, num_edges={self.num_edges}, "
                f"num_features={self.num_features}, num_classes={self.num_classes})")

    @property
    def num_edges(self):
        return int(self.edge_index.shape[1])

    def to(self, device):
        for k in ("x", "y", "edge_index", "train_mask", "val_mask", "test_mask"):
            setattr(self, k, getattr(self, k).to(device))
        return self


def load_node_classification(path, normalize_features=False, dtype=None, device=None):
    """Loads a Planetoid-style .npz. normalize_features=True scales each row of x to sum 1
    (PyG's NormalizeFeatures, as Kipf & Welling). Masks stay bool tensors; the *_index
    attributes give their int64 node ids."""
    import fastdl as fd
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_node_classification: no such file: {path}")
    with np.load(path) as d:
        missing = [k for k in ("x", "y", "edge_index", "train_mask", "val_mask", "test_mask") if k not in d]
        if missing:
            raise ValueError(f"load_node_classification: {path} lacks {missing}")
        x = d["x"].astype(np.float64)
        y = d["y"].astype(np.int64)
        ei = d["edge_index"].astype(np.int64)
        masks = {k: d[k].astype(bool) for k in ("train_mask", "val_mask", "test_mask")}
    if ei.ndim != 2 or ei.shape[0] != 2:
        raise ValueError(f"load_node_classification: edge_index must have shape (2, E); got {ei.shape}")
    if normalize_features:
        s = x.sum(1, keepdims=True)
        x = x / np.where(s == 0, 1.0, s)
    dt = dtype or fd.float32
    out = GraphData(name=os.path.splitext(os.path.basename(path))[0],
                    x=fd.tensor(x, dtype=dt, device=device), y=fd.tensor(y, device=device),
                    edge_index=fd.tensor(ei, device=device), num_nodes=int(x.shape[0]), num_features=int(x.shape[1]),
                    num_classes=int(y.max()) + 1)
    for k, m in masks.items():
        setattr(out, k, fd.tensor(m, device=device))
        setattr(out, k.replace("_mask", "_index"), fd.tensor(np.nonzero(m & (y >= 0))[0], device=device))
    return out
