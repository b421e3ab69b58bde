"""fit(model, optimizer, loss_fn, train_loader, val_loader=None, epochs=1, metrics=None,
callbacks=None): the epoch loop a practitioner writes by hand, once.

Each training step is forward, loss, backward, optimizer step (the step is one fused native
call per param group). The progress bar (tqdm when installed) shows the running loss; after each
epoch the validation loss and metrics go into a History; callbacks may stop training early or
save checkpoints with fd.save."""
import math
import time

import numpy as np

from fastdl import _C, no_grad


def accuracy(output, target):
    """Fraction of rows whose argmax matches the class index."""
    pred = output.argmax(1)
    return float((pred == target).to(_C.dtype.float64).mean().item())


class History:
    """Per-epoch records: history.history['loss'], ['val_loss'], ['val_<metric>'], ..."""

    def __init__(self):
        self.history, self.epoch = {}, []

    def append(self, epoch, logs):
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)

    def __getitem__(self, key):
        return self.history[key]

    def best(self, key="val_loss", mode="min"):
        vals = self.history[key]
        return (min if mode == "min" else max)(vals)

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"


class Callback:
    def on_train_begin(self, state): pass
    def on_batch_end(self, step, state): pass
    def on_epoch_end(self, epoch, logs, state): pass
    def on_train_end(self, state): pass


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by more than min_delta for `patience` epochs;
    restore_best_weights puts the best epoch's weights back at the end."""

    def __init__(self, monitor="val_loss", patience=3, min_delta=0.0, mode="min", restore_best_weights=False):
        self.monitor, self.patience, self.min_delta, self.mode = monitor, patience, abs(min_delta), mode
        self.restore_best_weights = restore_best_weights
        self.best, self.best_epoch, self.wait, self.best_state, self.stopped_epoch = None, -1, 0, None, None

    def _improved(self, v):
        if self.best is None:
            return True
        return v < self.best - self.min_delta if self.mode == "min" else v > self.best + self.min_delta

    def on_train_begin(self, state):
        self.best, self.best_epoch, self.wait, self.best_state, self.stopped_epoch = None, -1, 0, None, None

    def on_epoch_end(self, epoch, logs, state):
        if self.monitor not in logs:
            raise KeyError(f"EarlyStopping: monitored key '{self.monitor}' not in logs {sorted(logs)}")
        v = logs[self.monitor]
        if self._improved(v):
            self.best, self.best_epoch, self.wait = v, epoch, 0
            if self.restore_best_weights:
                self.best_state = {k: t.detach().clone() for k, t in state["model"].state_dict().items()}
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped_epoch = epoch
                state["stop"] = True

    def on_train_end(self, state):
        if self.restore_best_weights and self.best_state is not None:
            state["model"].load_state_dict(self.best_state)


class ModelCheckpoint(Callback):
    """Save the model (and optimizer) state with fd.save after each epoch, or only when
    `monitor` improves (save_best_only). `path` may contain {epoch}."""

    def __init__(self, path, monitor="val_loss", mode="min", save_best_only=False, save_optimizer=False):
        self.path, self.monitor, self.mode = str(path), monitor, mode
        self.save_best_only, self.save_optimizer, self.best = save_best_only, save_optimizer, None
        self.saved = []

    def on_epoch_end(self, epoch, logs, state):
        from fastdl import save
        from fastdl.train.parallel import is_main_process
        if not is_main_process():  # data-parallel: rank 0 alone writes
            return
        if self.save_best_only:
            v = logs.get(self.monitor)
            if v is None or (self.best is not None and (v >= self.best if self.mode == "min" else v <= self.best)):
                return
            self.best = v
        obj = {"model": state["model"].state_dict()}
        if self.save_optimizer:
            obj["optimizer"] = state["optimizer"].state_dict()
        obj["epoch"] = epoch
        path = self.path.format(epoch=epoch)
        save(obj, path)
        self.saved.append(path)


def _progress(iterable, total, desc, enabled):
    if enabled:
        try:
            from tqdm.auto import tqdm
            return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True)
        except ImportError:
            pass
    return iterable


def evaluate(model, loader, loss_fn=None, metrics=None):
    """Mean loss (weighted by batch size) and metrics over a loader, in eval mode without grad."""
    metrics = metrics or {}
    was = model.training
    model.eval()
    n, tot, sums = 0, 0.0, {k: 0.0 for k in metrics}
    with no_grad():
        for x, y in loader:
            out = model(x)
            b = y.shape[0]
            n += b
            if loss_fn is not None:
                tot += float(loss_fn(out, y).item()) * b
            for k, f in metrics.items():
                sums[k] += f(out, y) * b
    model.train(was)
    logs = {k: v / max(n, 1) for k, v in sums.items()}
    if loss_fn is not None:
        logs["loss"] = tot / max(n, 1)
    return logs


def fit(model, optimizer, loss_fn, train_loader, val_loader=None, epochs=1, metrics=None, callbacks=None,
        scheduler=None, progress=True, log_every=10, verbose=True):
    """Train for `epochs`; returns a History with 'loss' (mean training loss per epoch) and,
    with a val_loader, 'val_loss' and 'val_<name>' for each metric (metrics: {name: fn(out, y)}
    or a list of names from {'accuracy'}). scheduler.step() runs per epoch (ReduceLROnPlateau
    gets val_loss). Under `mpirun -n N` it trains data-parallel (fastdl.train.parallel): each
    rank its shard, losses and metrics over all ranks, rank 0 alone prints and saves."""
    from fastdl.train import parallel
    par = parallel.DataParallelFit(model, train_loader) if parallel.auto_init() else None
    try:
        return _fit(model, optimizer, loss_fn, train_loader, val_loader, epochs, metrics, callbacks, scheduler,
                    progress, log_every, verbose, par)
    finally:
        if par is not None:
            par.close()


def _fit(model, optimizer, loss_fn, train_loader, val_loader, epochs, metrics, callbacks, scheduler, progress,
         log_every, verbose, par):
    net, loader = (par.net, par.train_loader) if par is not None else (model, train_loader)
    if par is not None and par.rank != 0:
        progress = verbose = False
    if isinstance(metrics, (list, tuple)):
        metrics = {m: {"accuracy": accuracy, "acc": accuracy}[m] if isinstance(m, str) else m for m in metrics}
    metrics = metrics or {}
    callbacks = list(callbacks or [])
    history = History()
    state = {"model": model, "optimizer": optimizer, "stop": False, "history": history}
    for cb in callbacks:
        cb.on_train_begin(state)
    for epoch in range(epochs):
        model.train()
        t0, running, count = time.perf_counter(), 0.0, 0
        if par is not None:
            par.set_epoch(epoch)
        bar = _progress(loader, len(loader) if hasattr(loader, "__len__") else None,
                        f"epoch {epoch + 1}/{epochs}", progress)
        for i, (x, y) in enumerate(bar):
            optimizer.zero_grad()
            loss = loss_fn(net(x), y)
            loss.backward()
            optimizer.step()
            running += loss.item()
            count += 1
            for cb in callbacks:
                cb.on_batch_end(i, state)
            if bar is not loader and i % log_every == 0:
                bar.set_postfix(loss=f"{running / count:.4f}")
        mean = par.mean_loss(running, count) if par is not None else running / max(count, 1)
        logs = {"loss": mean, "time": time.perf_counter() - t0}
        if not math.isfinite(logs["loss"]):
            raise FloatingPointError(f"fit: training loss became {logs['loss']} in epoch {epoch + 1}")
        if val_loader is not None:
            v = (par.evaluate if par is not None else evaluate)(model, val_loader, loss_fn, metrics)
            logs["val_loss"] = v.pop("loss")
            logs.update({f"val_{k}": val for k, val in v.items()})
        if scheduler is not None:
            if hasattr(scheduler, "is_better"):
                scheduler.step(logs.get("val_loss", logs["loss"]))
            else:
                scheduler.step()
        history.append(epoch, logs)
        if verbose:
            extras = "  ".join(f"{k} {v:.4f}" for k, v in logs.items() if k != "time")
            print(f"epoch {epoch + 1}/{epochs}  {extras}  ({logs['time']:.2f}s)", flush=True)
        for cb in callbacks:
            cb.on_epoch_end(epoch, logs, state)
        if state["stop"]:
            break
    for cb in callbacks:
        cb.on_train_end(state)
    return history


def plot_history(history, path, keys=None):
    """Save the loss (and metric) curves as a PNG with matplotlib (Agg backend). Returns the
    path, or None when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    keys = keys or [k for k in history.history if k != "time"]
    loss_keys = [k for k in keys if k.endswith("loss")]
    other = [k for k in keys if k not in loss_keys]
    fig, axes = plt.subplots(1, 2 if other else 1, figsize=(10 if other else 5, 3.5))
    axes = np.atleast_1d(axes)
    epochs = [e + 1 for e in history.epoch]
    for k in loss_keys:
        axes[0].plot(epochs, history.history[k], marker="o", label=k)
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("loss")
    axes[0].legend()
    for k in other:
        axes[1].plot(epochs, history.history[k], marker="o", label=k)
    if other:
        axes[1].set_xlabel("epoch")
        axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
