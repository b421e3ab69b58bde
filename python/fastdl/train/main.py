"""`fastdl train`: train a default model on scikit-learn's digits (8x8 images, 10 classes),
with a progress bar, print held-out accuracy, save a safetensors checkpoint and a loss plot.
`fastdl train --model gcn|gat|sage --data PATH.npz` trains node classification on a
Planetoid-style graph (../shared/data/cora.npz) and reports test accuracy.
`fastdl train --model gpt|mamba|hybrid|lstm|gru --data FILE.txt` trains a character-level GPT,
Mamba, Mamba/attention hybrid or LSTM/GRU language model (default text
../shared/data/tinyshakespeare.txt),
printing train/val loss and a generated sample; `fastdl generate` samples from its checkpoint.
`fastdl train --model lenet|resnet` trains a CNN on the digits upsampled to 16x16 with random
shifts (fastdl.train.vision); `--model vae|gan|ddpm` a generative model on the digits, writing
a sample grid (fastdl.train.generative)."""
import argparse
import os
import sys
import time

import numpy as np

MODELS = {
    "mlp": lambda nn: nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)),
    "deep": lambda nn: nn.Sequential(nn.Linear(64, 256), nn.GELU(), nn.Dropout(0.1), nn.Linear(256, 128),
                                     nn.LayerNorm(128), nn.GELU(), nn.Linear(128, 10)),
    "linear": lambda nn: nn.Linear(64, 10),
}
GNN_MODELS = ("gcn", "gat", "sage")
LM_MODELS = ("gpt", "gru", "hybrid", "lstm", "mamba")
CNN_MODELS = ("lenet", "resnet")  # fastdl.train.vision
GEN_MODELS = ("vae", "gan", "ddpm")  # fastdl.train.generative
OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop", "adagrad": "Adagrad",
              "lamb": "LAMB", "nadam": "NAdam", "radam": "RAdam", "adamax": "Adamax", "adadelta": "Adadelta"}
DEFAULT_LR = {"adam": 3e-3, "adamw": 3e-3, "sgd": 0.05, "rmsprop": 1e-3, "adagrad": 0.05, "lamb": 1e-2,
              "nadam": 3e-3, "radam": 3e-3, "adamax": 3e-3, "adadelta": 1.0}


def _parser():
    p = argparse.ArgumentParser(prog="fastdl train", description=__doc__)
    p.add_argument("--model", choices=sorted(MODELS) + sorted(GNN_MODELS) + sorted(LM_MODELS) + sorted(CNN_MODELS)
                   + sorted(GEN_MODELS),
                   default="mlp")
    p.add_argument("--data", default=None, help="graph .npz for gcn/gat/sage (e.g. ../shared/data/cora.npz), "
                   "text file for gpt/mamba/hybrid (default ../shared/data/tinyshakespeare.txt)")
    p.add_argument("--epochs", type=int, default=None, help="default 20 (digits), 8 (CNNs), 200 (graphs)")
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adamw")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default depends on the optimizer)")
    p.add_argument("--batch-size", type=int, default=None, help="default 32 (digits), 12 (gpt), 16 (mamba, hybrid)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="fastdl_out", help="directory for the checkpoint and the loss plot")
    p.add_argument("--no-progress", action="store_true", help="disable the progress bar")
    p.add_argument("--profile", type=int, nargs="?", const=5, default=0, metavar="STEPS",
                   help="profile STEPS training steps (default 5, after 2 warm-up steps) and print the op table")
    cnn = p.add_argument_group("CNNs (lenet, resnet)")
    cnn.add_argument("--width", type=int, default=16, help="resnet: channels of the first stage (default 16)")
    lm = p.add_argument_group("language models (gpt, mamba, hybrid, lstm, gru)")
    lm.add_argument("--steps", type=int, default=None, help="default 2000 (gpt), 300 (mamba, hybrid), 1000 (lstm, gru)")
    lm.add_argument("--context", type=int, default=64)
    lm.add_argument("--d-model", type=int, default=None, help="default 128; 256 (lstm, gru: hidden size)")
    lm.add_argument("--n-layer", type=int, default=None, help="default 4; 2 (lstm, gru)")
    lm.add_argument("--n-head", type=int, default=4)
    lm.add_argument("--dropout", type=float, default=0.0, help="gpt / lstm / gru dropout (default 0)")
    lm.add_argument("--eval-iters", type=int, default=20, help="batches per train/val loss estimate (default 20)")
    lm.add_argument("--pattern", default=None, help="hybrid layers, m: Mamba, a: attention, f: MLP (default mma...)")
    lm.add_argument("--sample-tokens", type=int, default=300)
    from fastdl.train.generative import add_arguments
    add_arguments(p)
    return p


def load_digits_split(seed, test_fraction=0.2):
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SystemExit("fastdl train needs scikit-learn for its dataset (digits): pip install scikit-learn "
                         "(or pip install 'fastdl[sklearn]')")
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(len(y) * test_fraction))
    te, tr = perm[:n_test], perm[n_test:]
    mean, std = x[tr].mean(0), x[tr].std(0) + 1e-2
    x = (x - mean) / std
    return x[tr], y[tr], x[te], y[te]


class _StepProfiler:
    """A fit callback that profiles `steps` training steps after two warm-up steps."""

    def __init__(self, steps, warmup=2):
        from fastdl.profiler import profile, schedule
        self.steps = steps
        self.prof = profile(schedule=schedule(wait=0, warmup=warmup, active=steps, repeat=1))
        self.prof.start()

    def on_train_begin(self, state): pass
    def on_epoch_end(self, epoch, logs, state): pass
    def on_train_end(self, state): self.prof.stop()

    def on_batch_end(self, step, state):
        self.prof.step()

    def report(self, rows=20):
        print(f"profile of {self.steps} training steps (forward, backward, optimizer):")
        print(self.prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


def main(argv=None):
    args = _parser().parse_args(argv)
    from fastdl.train import parallel
    if parallel.auto_init():  # under mpirun -n N: data-parallel, rank 0 alone prints
        parallel.quiet_other_ranks()
    if args.model in GNN_MODELS:
        from fastdl.train.gnn import main_gnn
        return main_gnn(args)
    if args.model in CNN_MODELS:
        from fastdl.train.vision import main_vision
        return main_vision(args)
    if args.model in LM_MODELS:
        from fastdl.train.lm import main_lm
        return main_lm(args)
    if args.model in GEN_MODELS:
        from fastdl.train.generative import main_generative
        return main_generative(args)
    args.epochs = 20 if args.epochs is None else args.epochs
    t0 = time.perf_counter()
    import fastdl as fd
    from fastdl import nn, optim
    from fastdl.data import DataLoader, TensorDataset
    from fastdl.train import EarlyStopping, parallel

    xtr, ytr, xte, yte = load_digits_split(args.seed)
    fd.manual_seed(args.seed)
    model = MODELS[args.model](nn)
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    kw = dict(lr=lr, momentum=0.9) if args.optimizer == "sgd" else dict(lr=lr)
    opt = getattr(optim, OPTIMIZERS[args.optimizer])(model.parameters(), **kw)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(args.epochs, 1))
    train = DataLoader(TensorDataset(fd.tensor(xtr), fd.tensor(ytr)), batch_size=args.batch_size or 32, shuffle=True,
                       generator=args.seed)
    test = DataLoader(TensorDataset(fd.tensor(xte), fd.tensor(yte)), batch_size=512)
    print(f"fastdl train: {args.model} on digits ({len(ytr)} train / {len(yte)} held out), "
          f"{OPTIMIZERS[args.optimizer]} lr={lr:g}, {args.epochs} epochs, seed {args.seed}{parallel.describe()}")
    callbacks = [EarlyStopping("val_loss", patience=8, restore_best_weights=True)]
    fit_and_report(model, opt, train, test, (xte, yte), args, sched, callbacks, t0)
    return 0


def fit_and_report(model, opt, train, test, held_out, args, sched, callbacks, t0):
    """The classifiers' common tail: fit (with --profile's step profiler), held-out accuracy,
    checkpoint and loss plot under args.out, and the summary lines."""
    import fastdl as fd
    from fastdl import nn
    from fastdl.train import fit, plot_history
    prof = _StepProfiler(args.profile) if args.profile else None
    hist = fit(model, opt, nn.CrossEntropyLoss(), train, test, epochs=args.epochs, metrics=["accuracy"],
               scheduler=sched, progress=not args.no_progress, callbacks=list(callbacks) + ([prof] if prof else []))
    if prof:
        prof.report()
    model.eval()
    xte, yte = held_out
    with fd.no_grad():
        acc = float((model(fd.tensor(xte)).argmax(1).numpy() == yte).mean())
    from fastdl.train.parallel import is_main_process
    ckpt = os.path.join(args.out, "model.safetensors")
    plot = None
    if is_main_process():  # data-parallel: rank 0 alone writes
        os.makedirs(args.out, exist_ok=True)
        fd.save(model.state_dict(), ckpt)
        plot = plot_history(hist, os.path.join(args.out, "loss.png"))
    print(f"held-out accuracy: {acc * 100:.2f}%")
    print(f"checkpoint: {ckpt}")
    print(f"loss plot: {plot}" if plot else "loss plot: skipped (matplotlib is not installed)")
    print(f"time: {time.perf_counter() - t0:.1f}s")
    return acc


if __name__ == "__main__":
    sys.exit(main())
