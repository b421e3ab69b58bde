"""fastdl.nas: the search space (sampling, one-decision mutations, parameter counts that match
the built modules), random search and regularised evolution mechanics on a synthetic
objective, and a search on the digits that beats a fixed baseline of equal parameter budget."""
import numpy as np
import pytest

import fastdl as fd
from fastdl.nas import SearchSpace, Trainer, random_search, regularized_evolution
from fastdl.nas.space import CELL_FIELDS


@pytest.fixture
def one_thread():
    prev = fd.get_num_threads()
    fd.set_num_threads(1)
    yield
    fd.set_num_threads(prev)


def _decisions(space, arch):
    d = {("depth", None): arch["depth"]}
    d.update({(f, i): arch["layers"][i][f] for i in range(arch["depth"]) for f in CELL_FIELDS})
    return d


def test_space_sample_build_count_and_mutate():
    space = SearchSpace(depth=(1, 2, 3), width=(4, 8), op=("conv", "sepconv", "mbconv"), kernel=(3, 5))
    rng = np.random.default_rng(0)
    assert space.size() == sum((2 * 3 * 2 * 2 * 2) ** d for d in (1, 2, 3))
    seen = set()
    for _ in range(25):
        arch = space.sample(rng)
        seen.add(arch["layers"][0]["op"])
        model = space.build(arch)
        assert space.num_params(arch) == sum(p.numel() for p in model.parameters()), space.describe(arch)
        out = model(fd.randn(3, 1, 8, 8))
        assert tuple(out.shape) == (3, 10)
        child = space.mutate(arch, rng)
        a, b = _decisions(space, arch), _decisions(space, child)
        changed = [k for k in set(a) | set(b) if a.get(k) != b.get(k) and (k[1] is None or k[1] < min(
            arch["depth"], child["depth"]))]
        assert len(changed) == 1, (space.describe(arch), space.describe(child))
        assert space.key(child) != space.key(arch)
    assert seen == {"conv", "sepconv", "mbconv"}
    arch = space.sample(np.random.default_rng(5))
    before = repr(arch)
    space.mutate(arch, np.random.default_rng(1))
    assert repr(arch) == before  # mutate copies
    assert "x" in space.describe(arch)
    with pytest.raises(ValueError, match="op"):
        SearchSpace(op=("conv", "attention"))


def test_pooling_below_one_pixel_is_invalid():
    space = SearchSpace(depth=(4,), pool=(True,), input_shape=(1, 8, 8))
    arch = space.sample(np.random.default_rng(0))
    assert not space.valid(arch)
    with pytest.raises(ValueError, match="below 1x1"):
        space.build(arch)


class _Synthetic:
    """A deterministic stand-in for training: accuracy grows with total width and depth."""

    def __init__(self, space):
        self.space, self.calls = space, []

    def __call__(self, arch, trial=0):
        self.calls.append(arch)
        score = sum(c["width"] for c in arch["layers"][:arch["depth"]]) + 5 * arch["depth"]
        return {"val_acc": score / 200.0, "val_loss": 1.0 - score / 200.0}


def test_regularized_evolution_ages_out_and_improves():
    space = SearchSpace(depth=(1, 2, 3), width=(4, 8, 16, 32), kernel=(3,), pool=(False,))
    ev = _Synthetic(space)
    res = regularized_evolution(space, ev, trials=60, population_size=10, sample_size=4, max_params=20000, seed=0)
    assert len(res.trials) == len(ev.calls) == 60
    assert all(r["parent"] is None for r in res.trials[:10])
    assert all(r["parent"] is not None and r["parent"] < r["trial"] for r in res.trials[10:])
    assert all(r["params"] <= 20000 for r in res.trials)
    # each child differs from its parent in one decision, and parents are recent (aging)
    for r in res.trials[10:]:
        assert r["trial"] - r["parent"] <= 10
    rnd = random_search(space, _Synthetic(space), trials=60, max_params=20000, seed=0)
    first = np.mean([r["val_acc"] for r in res.trials[:10]])
    last = np.mean([r["val_acc"] for r in res.trials[-10:]])
    assert last > first + 0.1                     # the population moves uphill
    assert res.best["val_acc"] >= rnd.best["val_acc"] - 1e-12
    assert res.best_so_far()[-1] == res.best["val_acc"]
    table = res.table(top=5)
    assert table.splitlines()[0].split()[:4] == ["trial", "params", "val_acc", "val_loss"]
    assert len(table.splitlines()) == 7
    rows = rnd.rows()
    assert rows[0]["val_acc"] == max(r["val_acc"] for r in rows) and len({r["arch"] for r in rows}) == 60
    with pytest.raises(ValueError, match="sample_size"):
        regularized_evolution(space, ev, trials=5, population_size=3, sample_size=4)
    with pytest.raises(ValueError, match="max_params"):
        random_search(space, ev, trials=2, max_params=10)


def test_search_on_digits_beats_mlp_baseline_at_equal_parameters(one_thread, tmp_path):
    """Budget 3000 parameters, every model trained 5 epochs by the same Trainer (train.fit,
    Adam): the searched CNN must beat a one-hidden-layer MLP with as many parameters on the
    held-out test split (the search ranks on a separate validation split)."""
    pytest.importorskip("sklearn")
    from fastdl import nn
    from fastdl.train.main import load_digits_split
    xtr, ytr, xte, yte = load_digits_split(0)
    xtr, xte = xtr.reshape(-1, 1, 8, 8), xte.reshape(-1, 1, 8, 8)
    train, val = (xtr[300:], ytr[300:]), (xtr[:300], ytr[:300])
    budget = 3000
    space = SearchSpace()
    res = regularized_evolution(space, Trainer(space, train, val, epochs=5), trials=16, population_size=6,
                                sample_size=3, max_params=budget, seed=0)

    hidden = (budget - 10) // (64 + 1 + 10)

    class MLP:
        def build(self, arch):
            return nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))
    base = Trainer(MLP(), train, val, epochs=5)(None)

    def test_acc(model):
        model.eval()
        with fd.no_grad():
            return float((model(fd.tensor(xte)).argmax(1).numpy() == yte).mean())
    n_base = sum(p.numel() for p in base["model"].parameters())
    best = res.best
    nas_acc, base_acc = test_acc(res.best_model), test_acc(base["model"])
    print(f"\nNAS best {best['arch']} ({best['params']} params): val {best['val_acc']:.4f}, test {nas_acc:.4f}; "
          f"MLP 64-{hidden}-10 ({n_base} params): val {base['val_acc']:.4f}, test {base_acc:.4f}")
    print(res.table(top=5))
    assert best["params"] <= budget and n_base <= budget
    assert nas_acc > base_acc and best["val_acc"] > base["val_acc"]
    path = res.plot(str(tmp_path / "nas.png"))
    assert path == str(tmp_path / "nas.png") and (tmp_path / "nas.png").stat().st_size > 0
