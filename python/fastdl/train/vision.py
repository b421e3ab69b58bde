"""`fastdl train --model lenet|resnet`: a CNN on scikit-learn's digits, each 8x8 image upsampled
to 16x16 (one channel), trained with random shifts (zero-padded random crops, up to 2 pixels
either way; no flips: digits are not mirror-symmetric), a progress bar, held-out accuracy, a
safetensors checkpoint and a loss plot. lenet: LeNet-5 (ReLU, max pool) for 16x16 inputs;
resnet: ResNet-18's layout (BasicBlocks [2, 2, 2, 2]) with a 3x3 stride-1 stem, `--width`
channels in the first stage (default 16).
Under `mpirun -n N` fit trains data-parallel; the loader is sharded before the augmentation, so
each rank shifts only its own images (with its own random stream)."""
import time

import numpy as np

CNN_MODELS = ("lenet", "resnet")
SIZE = 16


def build(name, width=16):
    from fastdl import models
    if name == "lenet":
        return models.lenet5(num_classes=10, in_channels=1, input_size=SIZE)
    return models.resnet18(num_classes=10, in_channels=1, width=width, small_input=True)


def as_images(x):
    """(N, 64) standardised digits -> (N, 1, 16, 16), each pixel repeated 2x2."""
    return np.kron(x.reshape(-1, 1, 8, 8), np.ones((1, 1, 2, 2), np.float32)).astype(np.float32)


class Augmented:
    """A DataLoader whose image batches pass through `transform` (fresh randomness each epoch)."""

    def __init__(self, loader, transform):
        self.loader, self.transform = loader, transform

    def __len__(self):
        return len(self.loader)

    @property
    def sampler(self):
        """The inner loader's sampler: a DistributedSampler marks this loader as one rank's shard."""
        return getattr(self.loader, "sampler", None)

    def __iter__(self):
        for x, y in self.loader:
            yield self.transform(x), y


def main_vision(args):
    from fastdl.train.main import DEFAULT_LR, OPTIMIZERS, fit_and_report, load_digits_split
    args.epochs = 8 if args.epochs is None else args.epochs
    t0 = time.perf_counter()
    import fastdl as fd
    from fastdl import nn, optim
    from fastdl.data import DataLoader, TensorDataset
    from fastdl.data.transforms import RandomCrop
    from fastdl.train import parallel

    xtr, ytr, xte, yte = load_digits_split(args.seed)
    xtr, xte = as_images(xtr), as_images(xte)
    fd.manual_seed(args.seed)
    model = build(args.model, args.width)
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    kw = dict(lr=lr, momentum=0.9) if args.optimizer == "sgd" else dict(lr=lr)
    opt = getattr(optim, OPTIMIZERS[args.optimizer])(model.parameters(), **kw)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(args.epochs, 1))
    loader = DataLoader(TensorDataset(fd.tensor(xtr), fd.tensor(ytr)), batch_size=args.batch_size or 32, shuffle=True,
                        generator=args.seed)
    if parallel.auto_init():  # shard first: each rank augments only the batches it trains on
        loader = parallel.shard(loader)
    train = Augmented(loader, RandomCrop(SIZE, padding=2, generator=parallel.rank_seed(args.seed)))
    test = DataLoader(TensorDataset(fd.tensor(xte), fd.tensor(yte)), batch_size=256)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"fastdl train: {args.model} ({type(model).__name__}, {n_params} parameters) on digits 16x16 "
          f"({len(ytr)} train / {len(yte)} held out), random shifts of up to 2 pixels, "
          f"{OPTIMIZERS[args.optimizer]} lr={lr:g}, {args.epochs} epochs, seed {args.seed}{parallel.describe()}")
    fit_and_report(model, opt, train, test, (xte, yte), args, sched, [], t0)
    return 0
