"""`fastdl nas`: neural architecture search on scikit-learn's digits (8x8, one channel) under a
parameter budget. The training split is cut into search-train and validation parts; every
trial trains with fastdl.train.fit and is ranked on validation accuracy; the best model is
then scored on the held-out test split, next to a one-hidden-layer MLP of the same budget
trained the same way. Prints the results table, writes it as JSON, and plots the search."""
import argparse
import json
import os
import sys
import time

import numpy as np


def _parser():
    p = argparse.ArgumentParser(prog="fastdl nas", description=__doc__)
    p.add_argument("--strategy", choices=("evolution", "random"), default="evolution",
                   help="regularised evolution (Real et al. 2019) or random search")
    p.add_argument("--trials", type=int, default=30, help="architectures trained in all (default 30)")
    p.add_argument("--max-params", type=int, default=5000, help="parameter budget per architecture (default 5000)")
    p.add_argument("--population", type=int, default=10, help="evolution: population size (default 10)")
    p.add_argument("--sample-size", type=int, default=3, help="evolution: tournament sample size (default 3)")
    p.add_argument("--epochs", type=int, default=5, help="training epochs per trial (default 5)")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--depth", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--widths", type=int, nargs="+", default=[8, 16, 32])
    p.add_argument("--ops", nargs="+", default=["conv", "sepconv", "mbconv"])
    p.add_argument("--kernels", type=int, nargs="+", default=[3, 5])
    p.add_argument("--val-size", type=int, default=300, help="validation images cut from the training split")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="fastdl_out", help="directory for nas.json, nas.png and the best model")
    p.add_argument("--no-progress", action="store_true", help="disable the progress bar")
    p.add_argument("--top", type=int, default=10, help="rows of the printed table (default 10)")
    return p


def main(argv=None):
    args = _parser().parse_args(argv)
    t0 = time.perf_counter()
    import fastdl as fd
    from fastdl import nn
    from fastdl.nas import SearchSpace, Trainer, random_search, regularized_evolution
    from fastdl.train.main import load_digits_split
    xtr, ytr, xte, yte = load_digits_split(args.seed)
    xtr, xte = xtr.reshape(-1, 1, 8, 8), xte.reshape(-1, 1, 8, 8)
    v = args.val_size
    train, val = (xtr[v:], ytr[v:]), (xtr[:v], ytr[:v])
    space = SearchSpace(depth=args.depth, width=args.widths, op=args.ops, kernel=args.kernels)
    evaluator = Trainer(space, train, val, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed)
    print(f"fastdl nas: {args.strategy} over {space.size()} architectures ({space.choices}), {args.trials} trials, "
          f"<= {args.max_params} parameters, {args.epochs} epochs each; digits {len(train[1])} train / "
          f"{len(val[1])} validation / {len(yte)} test")
    kw = dict(trials=args.trials, max_params=args.max_params, seed=args.seed, progress=not args.no_progress,
              verbose=args.no_progress)
    if args.strategy == "evolution":
        result = regularized_evolution(space, evaluator, population_size=args.population,
                                       sample_size=args.sample_size, **kw)
    else:
        result = random_search(space, evaluator, **kw)
    print(result.table(top=args.top))

    hidden = max((args.max_params - 10) // (64 + 1 + 10), 1)

    class _MLP:
        def build(self, arch):
            return nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))
    base = Trainer(_MLP(), train, val, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed)(None)

    def test_acc(model):
        model.eval()
        with fd.no_grad():
            return float((model(fd.tensor(xte)).argmax(1).numpy() == yte).mean())
    best = result.best
    best_acc, base_acc = test_acc(result.best_model), test_acc(base["model"])
    n_base = sum(p.numel() for p in base["model"].parameters())
    print(f"best: {best['arch']} ({best['params']} parameters), validation accuracy {best['val_acc'] * 100:.2f}%, "
          f"test accuracy {best_acc * 100:.2f}%")
    print(f"baseline MLP 64-{hidden}-10 ({n_base} parameters): validation {base['val_acc'] * 100:.2f}%, "
          f"test {base_acc * 100:.2f}%")
    os.makedirs(args.out, exist_ok=True)
    table = os.path.join(args.out, "nas.json")
    with open(table, "w") as f:
        json.dump({"strategy": result.strategy, "max_params": args.max_params, "trials": result.rows(sort=False),
                   "best": {k: best[k] for k in ("trial", "arch", "params", "val_acc")}, "best_test_acc": best_acc,
                   "baseline": {"arch": f"mlp 64-{hidden}-10", "params": n_base, "val_acc": base["val_acc"],
                                "test_acc": base_acc}}, f, indent=1, default=lambda o: o.item()
                  if isinstance(o, np.generic) else str(o))
    ckpt = os.path.join(args.out, "nas_best.safetensors")
    fd.save(result.best_model.state_dict(), ckpt)
    plot = result.plot(os.path.join(args.out, "nas.png"))
    print(f"results: {table}")
    print(f"best model: {ckpt}")
    print(f"plot: {plot}")
    print(f"time: {time.perf_counter() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
