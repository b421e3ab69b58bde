"""Full-batch node classification on a Planetoid-style graph (cora.npz, citeseer.npz) with the
papers' settings: GCN (Kipf & Welling 2017: 2 layers, 16 hidden, dropout 0.5, Adam lr 0.01,
weight decay 5e-4 on the first layer, 200 epochs), GAT (Velickovic et al. 2018: 8 heads x 8,
dropout 0.6, Adam lr 0.005, weight decay 5e-4) and GraphSAGE (mean aggregation). The reported
test accuracy is the one at the epoch of best validation accuracy (PyG's examples).

Under `mpirun -n N` (fastdl.train.parallel) the training nodes are shared out: every rank runs
the full-batch forward (message passing needs the whole graph) with the same dropout masks, and
takes the loss over its share of the training nodes, weighted by share * N / total so that
DistributedDataParallel's average of the ranks' gradients is the gradient of the full loss; the
accuracies come from the same logits on every rank, and rank 0 alone prints."""
import time

import numpy as np

import fastdl as fd
from fastdl import nn, optim
from fastdl.nn import functional as F


class TwoLayerGNN(nn.Module):
    """The papers' two-layer nets: dropout, conv1, activation, dropout, conv2."""

    def __init__(self, conv1, conv2, act, dropout):
        super().__init__()
        self.conv1, self.conv2, self.act, self.p = conv1, conv2, act, dropout

    def forward(self, x, edge_index):
        x = F.dropout(x, self.p, self.training)
        x = self.act(self.conv1(x, edge_index))
        x = F.dropout(x, self.p, self.training)
        return self.conv2(x, edge_index)


DEFAULTS = {  # model: (lr, weight decay, epochs)
    "gcn": (0.01, 5e-4, 200),
    "gat": (0.005, 5e-4, 200),
    "sage": (0.01, 5e-4, 200),
}


def build(model, data, hidden=None):
    nf, nc = data.num_features, data.num_classes
    if model == "gcn":  # 16 hidden, dropout 0.5
        h = hidden or 16
        return TwoLayerGNN(nn.GCNConv(nf, h, cached=True), nn.GCNConv(h, nc, cached=True), F.relu, 0.5)
    if model == "gat":  # 8 heads x 8 hidden, dropout 0.6 (also on the attention)
        h, heads = hidden or 8, 8
        return TwoLayerGNN(nn.GATConv(nf, h, heads=heads, dropout=0.6),
                           nn.GATConv(h * heads, nc, heads=1, concat=False, dropout=0.6), F.elu, 0.6)
    if model == "sage":  # mean aggregation, 16 hidden, dropout 0.5
        h = hidden or 16
        return TwoLayerGNN(nn.SAGEConv(nf, h, aggr="mean"), nn.SAGEConv(h, nc, aggr="mean"), F.relu, 0.5)
    raise ValueError(f"unknown graph model '{model}'; choose gcn, gat or sage")


def _accuracy(logits, y, idx):
    pred = logits.argmax(1).numpy()
    return float((pred[idx] == y[idx]).mean()) if len(idx) else float("nan")


def train_node_classifier(model_name, data, seed=0, epochs=None, lr=None, weight_decay=None, hidden=None,
                          log=None):
    """Trains `model_name` (gcn, gat, sage) on `data` (fastdl.data.load_node_classification) and
    returns {"test_acc", "val_acc", "best_epoch", "seconds"}."""
    d_lr, d_wd, d_ep = DEFAULTS[model_name]
    lr, weight_decay, epochs = lr or d_lr, d_wd if weight_decay is None else weight_decay, epochs or d_ep
    fd.manual_seed(seed)
    model = build(model_name, data, hidden)
    if model_name == "gcn":  # Kipf & Welling: weight decay on the first layer only
        groups = [{"params": list(model.conv1.parameters()), "weight_decay": weight_decay},
                  {"params": list(model.conv2.parameters()), "weight_decay": 0.0}]
    else:
        groups = [{"params": list(model.parameters()), "weight_decay": weight_decay}]
    opt = optim.Adam(groups, lr=lr)
    y = data.y.numpy()
    tr, va, te = (getattr(data, k).numpy() for k in ("train_index", "val_index", "test_index"))
    tr_idx = data.train_index
    from fastdl.train import parallel
    net, weight = model, None
    if parallel.auto_init():  # this rank's share of the training nodes (rank 0's weights, one RNG stream)
        rank, world = parallel.rank(), parallel.world()
        part = tr[rank::world]
        tr_idx = fd.tensor(part.astype(np.int64))
        weight = len(part) * world / max(len(tr), 1)
        net = parallel.wrap(model)
    best = (-1.0, 0.0, 0)
    t0 = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        opt.zero_grad()
        out = net(data.x, data.edge_index)
        if weight is None:
            loss = F.cross_entropy(out[tr_idx], data.y[tr_idx])
        elif len(tr_idx):
            loss = F.cross_entropy(out[tr_idx], data.y[tr_idx]) * weight
        else:  # more ranks than training nodes: no loss here, but the gradients still meet
            loss = out.sum() * 0.0
        loss.backward()
        opt.step()
        model.eval()
        with fd.no_grad():
            logits = model(data.x, data.edge_index)
        val, test = _accuracy(logits, y, va), _accuracy(logits, y, te)
        if val > best[0]:
            best = (val, test, epoch)
        if log and (epoch % 20 == 0 or epoch == epochs):
            shown = float(loss.item()) if weight is None else parallel.all_mean([float(loss.item())])[0]
            log(f"epoch {epoch:4d}  loss {shown:.4f}  val {val * 100:.1f}%  test {test * 100:.1f}%")
    return {"val_acc": best[0], "test_acc": best[1], "best_epoch": best[2], "seconds": time.perf_counter() - t0,
            "final_test_acc": test, "train_nodes": len(tr)}


def main_gnn(args):
    """`fastdl train --model gcn --data PATH.npz [--epochs N] [--lr LR] [--seed S]`."""
    import os
    from fastdl.data import load_node_classification
    from fastdl.train import parallel
    if not args.data:
        raise SystemExit(f"fastdl train --model {args.model} needs --data PATH.npz (e.g. ../shared/data/cora.npz)")
    if not os.path.exists(args.data):
        raise SystemExit(f"fastdl train: no such file: {args.data}")
    data = load_node_classification(args.data, normalize_features=True)
    lr, wd, ep = DEFAULTS[args.model]
    print(f"fastdl train: {args.model} on {data.name} ({data.num_nodes} nodes, {data.num_edges} edges, "
          f"{data.num_features} features, {data.num_classes} classes; Planetoid split "
          f"{int(data.train_mask.sum().item())}/{int(data.val_mask.sum().item())}/{int(data.test_mask.sum().item())}), "
          f"Adam lr={args.lr or lr:g} weight_decay={wd:g}, {args.epochs or ep} epochs, seed {args.seed}"
          f"{parallel.describe('the training nodes shared out')}")
    r = train_node_classifier(args.model, data, seed=args.seed, epochs=args.epochs, lr=args.lr,
                              log=None if args.no_progress else print)
    print(f"best validation accuracy: {r['val_acc'] * 100:.2f}% (epoch {r['best_epoch']})")
    print(f"test accuracy: {r['test_acc'] * 100:.2f}%")
    print(f"time: {r['seconds']:.1f}s")
    return 0
