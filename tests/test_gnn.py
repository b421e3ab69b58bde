"""Graph layers against dense float64 references (GCN's normalised adjacency, SAGE's mean/max,
GAT's per-edge attention in PyTorch), global pooling, the npz graph loader, `fastdl train
--model gcn`, and GCN on Cora reaching the paper's 81.5% (skipped without ../shared/data)."""
import os

import numpy as np
import pytest

import fastdl as fd
import fastdl.nn as nn
import fastdl.nn.functional as F
from checks import assert_close

CORA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "cora.npz")


def random_graph(rng, n, e):
    ei = rng.integers(0, n, (2, e)).astype(np.int64)
    return ei[:, ei[0] != ei[1]]


def gcn_dense(ei, n, w=None):
    a = np.zeros((n, n))
    np.add.at(a, (ei[1], ei[0]), 1.0 if w is None else w)
    a += np.eye(n)
    d = a.sum(1)
    return a / np.sqrt(d)[:, None] / np.sqrt(d)[None, :]


@pytest.mark.parametrize("out_ch", [3, 9])  # both aggregation orders: A (X W) and (A X) W
def test_gcnconv_matches_dense_reference(torch, rng, out_ch):
    n, f = 12, 5
    ei = random_graph(rng, n, 40)
    x = rng.standard_normal((n, f))
    conv = nn.GCNConv(f, out_ch, dtype=fd.float64)
    up = rng.standard_normal((n, out_ch))
    xt = fd.tensor(x, requires_grad=True)
    out = conv(xt, fd.tensor(ei))
    out.backward(fd.tensor(up))
    a = torch.tensor(gcn_dense(ei, n))
    xr = torch.tensor(x, requires_grad=True)
    wr = torch.tensor(conv.weight.detach().numpy(), requires_grad=True)
    br = torch.tensor(conv.bias.detach().numpy(), requires_grad=True)
    ref = a @ (xr @ wr.T) + br
    ref.backward(torch.tensor(up))
    assert_close(out, ref.detach().numpy())
    assert_close(xt.grad, xr.grad.numpy())
    assert_close(conv.weight.grad, wr.grad.numpy())
    assert_close(conv.bias.grad, br.grad.numpy())


def test_gcnconv_edge_weight_grad_and_cache(torch, rng):
    n, f = 10, 4
    ei = random_graph(rng, n, 30)
    w = rng.uniform(0.5, 2.0, ei.shape[1])
    x = rng.standard_normal((n, f))
    conv = nn.GCNConv(f, 3, dtype=fd.float64)
    wt = fd.tensor(w, requires_grad=True)
    out = conv(fd.tensor(x), fd.tensor(ei), wt)
    out.sum().backward()
    wr = torch.tensor(w, requires_grad=True)
    a = torch.zeros((n, n), dtype=torch.float64).index_put((torch.from_numpy(ei[1]), torch.from_numpy(ei[0])), wr,
                                                           accumulate=True) + torch.eye(n, dtype=torch.float64)
    d = a.sum(1) ** -0.5
    ref = (d[:, None] * a * d[None, :]) @ (torch.tensor(x) @ torch.tensor(conv.weight.detach().numpy()).T)
    ref.sum().backward()
    assert_close(out, ref.detach().numpy())
    assert_close(wt.grad, wr.grad.numpy())
    cached = nn.GCNConv(f, 3, cached=True, dtype=fd.float64)
    y1 = cached(fd.tensor(x), fd.tensor(ei)).detach().numpy()
    y2 = cached(fd.tensor(x), fd.tensor(ei[:, :5])).detach().numpy()  # the first graph is reused
    assert np.array_equal(y1, y2)


@pytest.mark.parametrize("aggr", ["mean", "max"])
def test_sageconv_matches_reference(rng, aggr):
    n, f = 15, 6
    ei = random_graph(rng, n, 50)
    x = rng.standard_normal((n, f))
    conv = nn.SAGEConv(f, 4, aggr=aggr, dtype=fd.float64)
    out = conv(fd.tensor(x), fd.tensor(ei)).detach().numpy()
    agg = np.zeros((n, f))
    for i in range(n):
        m = x[ei[0][ei[1] == i]]
        if len(m):
            agg[i] = m.mean(0) if aggr == "mean" else m.max(0)
    wl, bl, wr = (p.detach().numpy() for p in (conv.lin_l.weight, conv.lin_l.bias, conv.lin_r.weight))
    np.testing.assert_allclose(out, agg @ wl.T + bl + x @ wr.T, rtol=1e-12, atol=1e-12)
    norm = nn.SAGEConv(f, 4, aggr=aggr, normalize=True, root_weight=False, dtype=fd.float64)
    y = norm(fd.tensor(x), fd.tensor(ei)).detach().numpy()
    nz = np.abs(y).sum(1) > 0
    np.testing.assert_allclose(np.linalg.norm(y[nz], axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("concat", [True, False])
def test_gatconv_matches_torch_reference(torch, rng, concat):
    n, f, heads, c = 14, 5, 3, 4
    ei = random_graph(rng, n, 45)
    x = rng.standard_normal((n, f))
    conv = nn.GATConv(f, c, heads=heads, concat=concat, dtype=fd.float64)
    out_dim = heads * c if concat else c
    up = rng.standard_normal((n, out_dim))
    xt = fd.tensor(x, requires_grad=True)
    out = conv(xt, fd.tensor(ei))
    out.backward(fd.tensor(up))
    # reference: per-edge attention in PyTorch (self loops added)
    loops = np.arange(n)
    e2 = np.concatenate([ei, np.stack([loops, loops])], 1)
    src, dst = torch.from_numpy(e2[0]), torch.from_numpy(e2[1])
    xr = torch.tensor(x, requires_grad=True)
    W, As, Ad = (torch.tensor(p.detach().numpy(), requires_grad=True) for p in (conv.weight, conv.att_src, conv.att_dst))
    h = (xr @ W.T).reshape(n, heads, c)
    al = torch.nn.functional.leaky_relu((h * As).sum(-1)[src] + (h * Ad).sum(-1)[dst], 0.2)
    mx = torch.full((n, heads), -np.inf, dtype=torch.float64).scatter_reduce(0, dst[:, None].expand(-1, heads), al, "amax")
    z = torch.exp(al - mx[dst])
    alpha = z / torch.zeros((n, heads), dtype=torch.float64).index_add(0, dst, z)[dst]
    ref = torch.zeros((n, heads, c), dtype=torch.float64).index_add(0, dst, alpha[:, :, None] * h[src])
    ref = ref.reshape(n, heads * c) if concat else ref.mean(1)
    ref = ref + torch.tensor(conv.bias.detach().numpy())
    ref.backward(torch.tensor(up))
    assert_close(out, ref.detach().numpy())
    assert_close(xt.grad, xr.grad.numpy())
    assert_close(conv.weight.grad, W.grad.numpy())
    assert_close(conv.att_src.grad, As.grad.numpy())
    assert_close(conv.att_dst.grad, Ad.grad.numpy())


def test_gat_attention_dropout_only_in_training(rng):
    n = 20
    ei = fd.tensor(random_graph(rng, n, 60))
    x = fd.tensor(rng.standard_normal((n, 4)))
    conv = nn.GATConv(4, 3, heads=2, dropout=0.5, dtype=fd.float64)
    conv.eval()
    a, b = conv(x, ei).detach().numpy(), conv(x, ei).detach().numpy()
    assert np.array_equal(a, b)
    conv.train()
    assert not np.array_equal(conv(x, ei).detach().numpy(), a)
    _, (e2, att) = conv(x, ei, return_attention_weights=True)
    s = F.scatter(att.detach(), e2[1], dim_size=n).numpy()
    np.testing.assert_allclose(s, 1.0, rtol=1e-12)  # weights into each node sum to 1


def test_global_pooling(rng):
    x = rng.standard_normal((10, 3))
    batch = np.array([0, 0, 0, 1, 1, 3, 3, 3, 3, 3])
    xt, bt = fd.tensor(x), fd.tensor(batch)
    for fn, ref in ((nn.global_add_pool, np.sum), (nn.global_mean_pool, np.mean), (nn.global_max_pool, np.max)):
        got = fn(xt, bt).detach().numpy()
        assert got.shape == (4, 3)
        for g in range(4):
            want = ref(x[batch == g], 0) if np.any(batch == g) else np.zeros(3)
            np.testing.assert_allclose(got[g], want, rtol=1e-12)
        assert fn(xt, bt, size=6).shape == (6, 3)
    np.testing.assert_allclose(nn.global_mean_pool(xt).numpy(), x.mean(0, keepdims=True), rtol=1e-12)


def write_toy_graph(path, rng, n=60, classes=3):
    y = rng.integers(0, classes, n)
    x = (rng.random((n, 12)) < 0.2).astype(np.uint8)
    x[np.arange(n), y] = 1
    ei = random_graph(rng, n, 200)
    masks = {k: np.zeros(n, bool) for k in ("train_mask", "val_mask", "test_mask")}
    masks["train_mask"][:20], masks["val_mask"][20:40], masks["test_mask"][40:] = True, True, True
    np.savez(path, x=x, y=y, edge_index=ei, **masks)


def test_load_node_classification_and_train_cli(tmp_path, rng, capsys):
    from fastdl.data import load_node_classification
    from fastdl.train.main import main
    p = str(tmp_path / "toy.npz")
    write_toy_graph(p, rng)
    d = load_node_classification(p, normalize_features=True)
    assert d.num_nodes == 60 and d.num_classes == 3 and d.x.dtype == fd.float32
    np.testing.assert_allclose(d.x.numpy().sum(1)[d.x.numpy().sum(1) > 0], 1.0, rtol=1e-6)
    assert d.train_index.shape == (20,) and bool(d.test_mask.numpy()[50])
    for model in ("gcn", "gat", "sage"):
        assert main(["--model", model, "--data", p, "--epochs", "3", "--no-progress"]) == 0
        assert "test accuracy:" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--model", "gcn"])


@pytest.mark.skipif(not os.path.exists(CORA), reason="../shared/data/cora.npz is absent")
def test_gcn_on_cora_reaches_published_accuracy():
    from fastdl.data import load_node_classification
    from fastdl.train.gnn import train_node_classifier
    d = load_node_classification(CORA, normalize_features=True)
    assert (d.num_nodes, d.num_edges, d.num_classes) == (2708, 10556, 7)
    accs = [train_node_classifier("gcn", d, seed=s)["test_acc"] for s in range(3)]
    assert abs(np.mean(accs) - 0.815) <= 0.01, accs
