"""`fastdl train --model vae|gan|ddpm`: a generative model on scikit-learn's digits (8x8, or
upsampled to 16x16 with --image-size 16), with a progress bar, a safetensors checkpoint, a
sample grid and the loss curves (PNG; matplotlib draws the curves when installed).

vae: convolutional VAE (Bernoulli decoder, pixels in [0, 1]) trained with fit on the negative
     ELBO; reports the held-out negative ELBO and writes samples and reconstructions.
gan: DCGAN with one Adam optimizer per network (lr 5e-4, betas 0.5, 0.999) and the --gan-loss
     objective (non_saturating, minimax, hinge), pixels in [-1, 1].
ddpm: a U-Net (or, with --denoiser dit, a DiT) denoiser over --timesteps steps of the
     --schedule noise schedule, trained with fit on the epsilon-prediction loss; samples with
     --sampler (ancestral or ddim).
Each reports the digits-classifier check of the tests: the mean max-probability that a
logistic regression fitted on the training digits gives the samples (real digits ~0.95).

Under `mpirun -n N` all three train data-parallel (fit, and train_gan for the GAN's two
networks): each rank on its shard of the training digits, with its own random stream for the
noise (--batch-size is per rank); rank 0 alone prints, samples, saves and plots."""
import os
import time

import numpy as np

GEN_MODELS = ("vae", "gan", "ddpm")
DEFAULT_EPOCHS = {"vae": 30, "gan": 30, "ddpm": 40}
DEFAULT_LR = {"vae": 2e-3, "gan": 5e-4, "ddpm": 3e-3}


def add_arguments(parser):
    g = parser.add_argument_group("generative models (vae, gan, ddpm)")
    g.add_argument("--image-size", type=int, choices=(8, 16), default=8, help="digits at 8x8 or upsampled to 16x16")
    g.add_argument("--latent-dim", type=int, default=None, help="vae: 8, gan: 16")
    g.add_argument("--beta", type=float, default=1.0, help="vae: weight of the KL term (beta-VAE)")
    g.add_argument("--gan-loss", choices=("non_saturating", "minimax", "hinge"), default="non_saturating")
    g.add_argument("--timesteps", type=int, default=100, help="ddpm: diffusion steps (default 100)")
    g.add_argument("--schedule", choices=("linear", "cosine"), default="cosine", help="ddpm noise schedule")
    g.add_argument("--denoiser", choices=("unet", "dit"), default="unet", help="ddpm: U-Net or DiT (patch 2, "
                   "hidden 4 * --width, 4 blocks)")
    g.add_argument("--sampler", choices=("ancestral", "ddim"), default="ancestral")
    g.add_argument("--ddim-steps", type=int, default=20)
    g.add_argument("--samples", type=int, default=64, help="images in the sample grid (default 64)")


def load_digit_images(seed, image_size=8, test_fraction=0.2):
    """Digits as (N, 1, S, S) float32 in [0, 1] (16x16: each pixel repeated 2x2), a seeded
    train / held-out split, and the labels."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SystemExit("fastdl train needs scikit-learn for its dataset (digits): pip install scikit-learn")
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    if image_size == 16:
        x = np.kron(x, np.ones((1, 1, 2, 2), np.float32))
    perm = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    te, tr = perm[:n_test], perm[n_test:]
    return x[tr], d.target[tr], x[te], d.target[te]


def digit_confidence(train_x, train_y, samples):
    """Mean max-probability of a logistic regression fitted on train_x (images in [-1, 1])
    over `samples` (the same scale), and the number of classes it predicts."""
    from sklearn.linear_model import LogisticRegression
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        threadpool_limits = None
    flat = lambda a: np.asarray(a, np.float64).reshape(len(a), -1)  # noqa: E731
    if threadpool_limits is not None:
        with threadpool_limits(1):
            clf = LogisticRegression(max_iter=3000).fit(flat(train_x), train_y)
    else:
        clf = LogisticRegression(max_iter=3000).fit(flat(train_x), train_y)
    p = clf.predict_proba(flat(samples))
    return float(p.max(1).mean()), len(set(p.argmax(1)))


def _finish(args, hist, state, samples, value_range, xtr, ytr, t0, extra_images=()):
    """Checkpoint, sample grid, loss plot and summary lines shared by the three models."""
    import fastdl as fd
    from fastdl.train import plot_history
    from fastdl.train.images import save_curves, save_image
    os.makedirs(args.out, exist_ok=True)
    ckpt = os.path.join(args.out, "model.safetensors")
    fd.save(state, ckpt)
    scale = 32 // args.image_size
    grid = save_image(samples, os.path.join(args.out, "samples.png"), value_range=value_range, scale=scale)
    for name, images in extra_images:
        path = save_image(images, os.path.join(args.out, name + ".png"), value_range=value_range, scale=scale)
        print(f"{name}: {path}")
    plot = plot_history(hist, os.path.join(args.out, "loss.png"))
    if plot is None:  # no matplotlib: the built-in PNG rasteriser
        plot = save_curves(hist.history, os.path.join(args.out, "loss.png"))
    lo, hi = value_range
    to_pm1 = lambda a: (np.asarray(a) - lo) / (hi - lo) * 2 - 1  # noqa: E731
    conf, classes = digit_confidence(to_pm1(xtr), ytr, to_pm1(samples.numpy()))
    print(f"samples: digits-classifier mean max-probability {conf:.3f} over {len(samples)} samples, "
          f"{classes} classes predicted (real digits ~0.95)")
    print(f"checkpoint: {ckpt}")
    print(f"sample grid: {grid}")
    print(f"loss plot: {plot}")
    print(f"time: {time.perf_counter() - t0:.1f}s")
    return conf


def _loaders(fd, xtr, xte, batch, seed, ytr=None, yte=None):
    from fastdl.data import DataLoader, TensorDataset
    a = fd.tensor(xtr)
    b = fd.tensor(xte)
    train = DataLoader(TensorDataset(a, a if ytr is None else fd.tensor(ytr)), batch_size=batch, shuffle=True,
                       generator=seed)
    test = DataLoader(TensorDataset(b, b if yte is None else fd.tensor(yte)), batch_size=256)
    return train, test


def _own_stream(fd, seed):
    """Data-parallel ranks other than 0 draw their own noise (latents, timesteps, dropout):
    their models take rank 0's weights anyway, but the same noise on every rank would waste
    part of the larger batch."""
    from fastdl.train import parallel
    if parallel.rank():
        fd.manual_seed(parallel.rank_seed(seed))
    return parallel.rank() == 0


def main_generative(args):
    t0 = time.perf_counter()
    import fastdl as fd
    from fastdl import optim
    from fastdl.train import fit
    args.epochs = DEFAULT_EPOCHS[args.model] if args.epochs is None else args.epochs
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.model]
    batch = args.batch_size or 32
    xtr, ytr, xte, yte = load_digit_images(args.seed, args.image_size)
    fd.manual_seed(args.seed)
    size, n = args.image_size, args.samples
    from fastdl.train.parallel import describe
    head = (f"fastdl train: {args.model} on digits {size}x{size} ({len(xtr)} train / {len(xte)} held out)"
            f"{describe()}")
    if args.model == "vae":
        from fastdl.models import VAE
        from fastdl.models.autoencoder import vae_loss
        model = VAE(image_size=size, latent_dim=args.latent_dim or 8, width=args.width, beta=args.beta)
        n_params = sum(p.numel() for p in model.parameters())
        print(f"{head}, VAE ({n_params} parameters, latent {model.latent_dim}, beta {args.beta:g}), Adam lr={lr:g}, "
              f"{args.epochs} epochs, seed {args.seed}")
        train, test = _loaders(fd, xtr, xte, batch, args.seed)
        loss_fn = lambda out, x: vae_loss(out[0], x, out[1], out[2], beta=model.beta)[0]  # noqa: E731
        main_rank = _own_stream(fd, args.seed)
        hist = fit(model, optim.Adam(model.parameters(), lr=lr), loss_fn, train, test, epochs=args.epochs,
                   progress=not args.no_progress)
        if not main_rank:
            return 0
        model.eval()
        neg_elbo, recon, kl = model.elbo_estimate(fd.tensor(xte), samples=8)
        print(f"held-out negative ELBO: {neg_elbo:.2f} nats per image (reconstruction {recon:.2f}, KL {kl:.2f}; "
              f"8 posterior samples)")
        pairs = np.concatenate([xte[:8], model.reconstruct(fd.tensor(xte[:8])).numpy()])
        _finish(args, hist, model.state_dict(), model.sample(n), (0.0, 1.0), xtr, ytr, t0,
                [("reconstructions", pairs)])
        return 0
    if args.model == "gan":
        from fastdl.models import DCGANDiscriminator, DCGANGenerator
        from fastdl.models.gan import train_gan
        from fastdl.train import History
        G = DCGANGenerator(latent_dim=args.latent_dim or 16, image_size=size, width=args.width)
        D = DCGANDiscriminator(image_size=size, width=args.width)
        n_g, n_d = (sum(p.numel() for p in m.parameters()) for m in (G, D))
        print(f"{head}, DCGAN (generator {n_g}, discriminator {n_d} parameters), {args.gan_loss} loss, Adam "
              f"lr={lr:g} betas (0.5, 0.999) for each, {args.epochs} epochs, seed {args.seed}")
        train, _ = _loaders(fd, xtr * 2 - 1, xte * 2 - 1, batch, args.seed)
        main_rank = _own_stream(fd, args.seed)
        h = train_gan(G, D, train, optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999)),
                      optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999)), epochs=args.epochs, loss=args.gan_loss,
                      progress=not args.no_progress)
        if not main_rank:
            return 0
        hist = History()
        for e in range(len(h["d_loss"])):
            hist.append(e, {"d_loss": h["d_loss"][e], "g_loss": h["g_loss"][e], "D(x)": h["d_real"][e],
                            "D(G(z))": h["d_fake"][e]})
        state = {**{"generator." + k: v for k, v in G.state_dict().items()},
                 **{"discriminator." + k: v for k, v in D.state_dict().items()}}
        _finish(args, hist, state, G.sample(n), (-1.0, 1.0), xtr * 2 - 1, ytr, t0)
        return 0
    from fastdl.models import DDPM, UNet
    from fastdl.models.diffusion import DiTDenoiser
    if args.denoiser == "dit":
        net = DiTDenoiser(input_size=size, in_channels=1, hidden_size=4 * args.width, depth=4, num_heads=4)
    else:
        net = UNet(in_channels=1, base_channels=args.width, channel_mults=(1, 2) if size == 8 else (1, 2, 2),
                   num_heads=2, groups=4 if args.width < 16 else 8)
    ddpm = DDPM(net, timesteps=args.timesteps, schedule=args.schedule)
    n_params = sum(p.numel() for p in ddpm.parameters())
    print(f"{head}, DDPM with a {'DiT' if args.denoiser == 'dit' else 'U-Net'} ({n_params} parameters), "
          f"{args.schedule} schedule, T={args.timesteps}, "
          f"Adam lr={lr:g}, {args.epochs} epochs, {args.sampler} sampling, seed {args.seed}")
    train, test = _loaders(fd, xtr * 2 - 1, xte * 2 - 1, batch, args.seed, ytr, yte)
    main_rank = _own_stream(fd, args.seed)
    hist = fit(ddpm, optim.Adam(ddpm.parameters(), lr=lr), lambda loss, _: loss, train, test, epochs=args.epochs,
               progress=not args.no_progress)
    if not main_rank:
        return 0
    samples = ddpm.sample(n, (1, size, size), method=args.sampler, steps=args.ddim_steps)
    _finish(args, hist, ddpm.state_dict(), samples, (-1.0, 1.0), xtr * 2 - 1, ytr, t0)
    return 0
