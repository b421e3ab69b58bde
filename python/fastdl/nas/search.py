"""Search strategies over a SearchSpace under a budget of trials and of parameters.

    evaluator = Trainer(space, (x_train, y_train), (x_val, y_val), epochs=3)
    result = random_search(space, evaluator, trials=20, max_params=5000, seed=0)
    result = regularized_evolution(space, evaluator, trials=20, population_size=8, sample_size=3,
                                   max_params=5000, seed=0)
    print(result.table()); result.best; result.plot("nas.png")

Regularised (aging) evolution, Real et al. 2019 ("Regularized Evolution for Image Classifier
Architecture Search"): a population of `population_size` random architectures is trained;
then each cycle samples `sample_size` members at random, mutates the best of them (by
validation accuracy), trains the child, adds it and removes the OLDEST member, so every
architecture eventually ages out, however lucky its one evaluation was. Every trial, whatever
the strategy, is trained with fastdl.train.fit and ranked on validation data."""
import time

import numpy as np

COLUMNS = ("trial", "params", "val_acc", "val_loss", "time", "parent", "arch")


class Trainer:
    """Trains space.build(arch) with fastdl.train.fit (Adam, cross-entropy, `epochs` epochs)
    on (x, y) numpy arrays and returns its validation accuracy and loss (the final epoch's)."""

    def __init__(self, space, train, val, epochs=3, lr=3e-3, batch_size=32, seed=0):
        self.space, self.train, self.val = space, train, val
        self.epochs, self.lr, self.batch_size, self.seed = epochs, lr, batch_size, seed

    def __call__(self, arch, trial=0):
        import fastdl as fd
        from fastdl import nn, optim
        from fastdl.data import DataLoader, TensorDataset
        from fastdl.train import fit
        fd.manual_seed(self.seed + trial)
        model = self.space.build(arch)
        opt = optim.Adam(model.parameters(), lr=self.lr)
        (xt, yt), (xv, yv) = self.train, self.val
        train = DataLoader(TensorDataset(fd.tensor(xt), fd.tensor(yt)), batch_size=self.batch_size, shuffle=True,
                           generator=self.seed + trial)
        val = DataLoader(TensorDataset(fd.tensor(xv), fd.tensor(yv)), batch_size=512)
        hist = fit(model, opt, nn.CrossEntropyLoss(), train, val, epochs=self.epochs, metrics=["accuracy"],
                   progress=False, verbose=False)
        return {"val_acc": hist["val_accuracy"][-1], "val_loss": hist["val_loss"][-1], "model": model}


class SearchResult:
    """Trials in order: dicts with trial, params, val_acc, val_loss, time (s), parent (trial
    index or None), arch (description) and genome (the architecture dict)."""

    def __init__(self, space, strategy, trials, models=None):
        self.space, self.strategy, self.trials = space, strategy, trials
        self.models = models or {}

    @property
    def best(self):
        """The trial with the highest validation accuracy (lowest loss breaks ties)."""
        return max(self.trials, key=lambda r: (r["val_acc"], -r["val_loss"]))

    @property
    def best_model(self):
        return self.models.get(self.best["trial"])

    def best_so_far(self):
        """Running maximum of validation accuracy after each trial."""
        return list(np.maximum.accumulate([r["val_acc"] for r in self.trials]))

    def rows(self, sort=True):
        rows = [{k: r[k] for k in COLUMNS} for r in self.trials]
        return sorted(rows, key=lambda r: (-r["val_acc"], r["val_loss"])) if sort else rows

    def table(self, top=None, sort=True):
        """A printable table, best first (sort=False keeps trial order)."""
        rows = self.rows(sort)[:top]
        head = f"{'trial':>5} {'params':>7} {'val_acc':>8} {'val_loss':>8} {'time':>6} {'parent':>6}  arch"
        lines = [head, "-" * len(head)]
        for r in rows:
            parent = "-" if r["parent"] is None else str(r["parent"])
            lines.append(f"{r['trial']:>5} {r['params']:>7} {r['val_acc']:>8.4f} {r['val_loss']:>8.4f} "
                         f"{r['time']:>6.2f} {parent:>6}  {r['arch']}")
        return "\n".join(lines)

    def __str__(self):
        return self.table()

    def plot(self, path):
        """Validation accuracy per trial with the running best, and (with matplotlib) accuracy
        against parameters, as a PNG; returns path."""
        acc = [r["val_acc"] for r in self.trials]
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            from fastdl.train.images import save_curves
            return save_curves({"val_acc": acc, "best so far": self.best_so_far()}, path, xlabel="trial")
        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
        a.scatter(range(len(acc)), acc, s=14, label="trial")
        a.plot(range(len(acc)), self.best_so_far(), color="C1", label="best so far")
        a.set_xlabel("trial")
        a.set_ylabel("validation accuracy")
        a.set_title(self.strategy)
        a.legend()
        b.scatter([r["params"] for r in self.trials], acc, s=14)
        b.set_xlabel("parameters")
        b.set_ylabel("validation accuracy")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path


def _within(space, arch, max_params):
    return space.valid(arch) and (max_params is None or space.num_params(arch) <= max_params)


def _draw(space, rng, max_params, tries=10000):
    for _ in range(tries):
        arch = space.sample(rng)
        if _within(space, arch, max_params):
            return arch
    raise ValueError(f"nas: no architecture within max_params={max_params} found in {tries} random draws")


def _mutate(space, arch, rng, max_params, tries=100):
    for _ in range(tries):
        child = space.mutate(arch, rng)
        if _within(space, child, max_params) and space.key(child) != space.key(arch):
            return child
    return _draw(space, rng, max_params)


class _Runner:
    """Evaluates trials, keeps the records and the best model, shows progress."""

    def __init__(self, space, evaluator, trials, progress, verbose):
        from fastdl.train.fit import _progress
        self.space, self.evaluator, self.records, self.models = space, evaluator, [], {}
        self.bar = _progress(range(trials), trials, "nas", progress)
        self.iter, self.verbose, self.best = iter(self.bar), verbose, None

    def run(self, arch, parent=None):
        next(self.iter, None)
        i = len(self.records)
        t0 = time.perf_counter()
        out = self.evaluator(arch, trial=i)
        rec = {"trial": i, "params": self.space.num_params(arch), "val_acc": float(out["val_acc"]),
               "val_loss": float(out["val_loss"]), "time": time.perf_counter() - t0, "parent": parent,
               "arch": self.space.describe(arch), "genome": arch}
        self.records.append(rec)
        if "model" in out and (self.best is None or (rec["val_acc"], -rec["val_loss"]) > self.best):
            self.best, self.models = (rec["val_acc"], -rec["val_loss"]), {i: out["model"]}
        if hasattr(self.bar, "set_postfix"):
            self.bar.set_postfix(best=f"{max(r['val_acc'] for r in self.records):.4f}")
        if self.verbose:
            print(f"trial {i:3d}  params {rec['params']:6d}  val_acc {rec['val_acc']:.4f}  "
                  f"val_loss {rec['val_loss']:.4f}  {rec['arch']}", flush=True)
        return rec

    def close(self):
        if hasattr(self.bar, "close"):
            self.bar.close()


def random_search(space, evaluator, trials=20, max_params=None, seed=0, progress=False, verbose=False):
    """`trials` distinct uniformly drawn architectures within max_params, each evaluated once."""
    rng, runner, seen = np.random.default_rng(seed), _Runner(space, evaluator, trials, progress, verbose), set()
    for _ in range(trials):
        arch = _draw(space, rng, max_params)
        for _ in range(100):  # prefer unseen architectures while the space allows
            if space.key(arch) not in seen:
                break
            arch = _draw(space, rng, max_params)
        seen.add(space.key(arch))
        runner.run(arch)
    runner.close()
    return SearchResult(space, "random search", runner.records, runner.models)


def regularized_evolution(space, evaluator, trials=20, population_size=8, sample_size=3, max_params=None, seed=0,
                          progress=False, verbose=False):
    """Aging evolution (Real et al. 2019) with `trials` evaluations in all, the first
    population_size of them random."""
    if not 1 <= sample_size <= population_size:
        raise ValueError(f"regularized_evolution: need 1 <= sample_size <= population_size; got {sample_size}, "
                         f"{population_size}")
    rng, runner = np.random.default_rng(seed), _Runner(space, evaluator, trials, progress, verbose)
    population = []  # oldest first
    while len(runner.records) < min(population_size, trials):
        population.append(runner.run(_draw(space, rng, max_params)))
    while len(runner.records) < trials:
        picks = rng.choice(len(population), size=sample_size, replace=False)
        parent = max((population[int(j)] for j in picks), key=lambda r: (r["val_acc"], -r["val_loss"]))
        child = runner.run(_mutate(space, parent["genome"], rng, max_params), parent=parent["trial"])
        population.append(child)
        population.pop(0)
    runner.close()
    return SearchResult(space, "regularized evolution", runner.records, runner.models)
