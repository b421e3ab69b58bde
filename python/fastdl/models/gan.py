"""DCGAN (Radford et al. 2016) for small images, the three classic GAN objectives, and a
training loop with one optimizer per network.

    DCGANGenerator(latent_dim=32, image_size=8, channels=1, width=32)   G(z) -> images in [-1, 1]
    DCGANDiscriminator(image_size=8, channels=1, width=32)              D(x) -> (N,) logits
    discriminator_loss(real_logits, fake_logits, kind) / generator_loss(fake_logits, kind)
        kind: "minimax" (Goodfellow et al. 2014), "non_saturating" (the same paper's
        -log D(G(z)) generator loss), "hinge" (Lim & Ye 2017; Miyato et al. 2018)
    train_gan(G, D, loader, opt_g, opt_d, epochs, loss="non_saturating") -> {"d_loss": [...], ...}

The generator starts from z as a 1x1 image, a 4x4 transposed convolution makes it 4x4, and
each stride-2 4x4 transposed convolution doubles it (BatchNorm + ReLU between, tanh at the
end); the discriminator mirrors it with stride-2 convolutions and LeakyReLU(0.2) (BatchNorm
on all but the first), ending in a 4x4 convolution to one logit. Weights start as N(0, 0.02),
BatchNorm scales as N(1, 0.02), as the DCGAN paper prescribes. PyTorch has no GAN losses; these
take the discriminator's logits, D(x) = sigmoid(logit)."""
import contextlib
import math
import time

from fastdl import _tensor
from fastdl import nn
from fastdl.nn import functional as F
from fastdl.nn import init

LOSSES = ("minimax", "non_saturating", "hinge")


def _stages(image_size, op):
    n = int(round(math.log2(image_size))) - 2 if image_size >= 8 else 0
    if n < 1 or 4 * 2 ** n != image_size:
        raise ValueError(f"{op}: image_size must be a power of two >= 8; got {image_size}")
    return n


def dcgan_init_(module):
    """DCGAN's initialisation: conv weights N(0, 0.02), BatchNorm scale N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            init.normal_(m.weight, 1.0, 0.02)
            init.zeros_(m.bias)
    return module


class DCGANGenerator(nn.Module):
    """z (N, latent_dim) or (N, latent_dim, 1, 1) -> (N, channels, image_size, image_size) in [-1, 1]."""

    def __init__(self, latent_dim=32, image_size=8, channels=1, width=32):
        super().__init__()
        n = _stages(image_size, "DCGANGenerator")
        self.latent_dim, self.image_size, self.channels = latent_dim, image_size, channels
        c = width * 2 ** (n - 1)
        layers = [nn.ConvTranspose2d(latent_dim, c, 4, 1, 0, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU()]
            c //= 2
        layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        dcgan_init_(self)

    def forward(self, z):
        if z.ndim == 2:
            z = z.reshape(z.shape[0], z.shape[1], 1, 1)
        if z.ndim != 4 or z.shape[1] != self.latent_dim:
            raise ValueError(f"DCGANGenerator: z must be (N, {self.latent_dim}) or (N, {self.latent_dim}, 1, 1); "
                             f"got shape {tuple(z.shape)}")
        return self.main(z)

    def sample(self, n, device=None):
        """n images from z ~ N(0, I), in eval mode (running BatchNorm statistics), no gradient."""
        w = self.main[0].weight
        was = self.training
        self.eval()
        with _tensor.no_grad():
            out = self.forward(_tensor.randn(n, self.latent_dim, dtype=w.dtype, device=device or w.device))
        self.train(was)
        return out


class DCGANDiscriminator(nn.Module):
    """(N, channels, image_size, image_size) -> (N,) logits of "real"."""

    def __init__(self, image_size=8, channels=1, width=32):
        super().__init__()
        n = _stages(image_size, "DCGANDiscriminator")
        self.image_size, self.channels = image_size, channels
        layers, c = [nn.Conv2d(channels, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2)], width
        for _ in range(n - 1):
            layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2)]
            c *= 2
        layers += [nn.Conv2d(c, 1, 4, 1, 0, bias=False)]
        self.main = nn.Sequential(*layers)
        dcgan_init_(self)

    def forward(self, x):
        return self.main(x).reshape(x.shape[0])


def minimax_discriminator_loss(real_logits, fake_logits):
    """-[log D(x) + log(1 - D(G(z)))] = softplus(-real) + softplus(fake), batch means."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def minimax_generator_loss(fake_logits):
    """log(1 - D(G(z))) = -softplus(fake), the generator's side of the original minimax game
    (its gradient vanishes while D rejects the fakes confidently)."""
    return -F.softplus(fake_logits).mean()


def non_saturating_generator_loss(fake_logits):
    """-log D(G(z)) = softplus(-fake): the same fixed point, strong gradients early on."""
    return F.softplus(-fake_logits).mean()


def hinge_discriminator_loss(real_logits, fake_logits):
    """mean relu(1 - real) + mean relu(1 + fake)."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def hinge_generator_loss(fake_logits):
    """-mean D's logit on fakes."""
    return -fake_logits.mean()


def _kind(kind, op):
    if kind not in LOSSES:
        raise ValueError(f"{op}: kind must be one of {LOSSES}; got '{kind}'")
    return kind


def discriminator_loss(real_logits, fake_logits, kind="non_saturating"):
    """The discriminator's loss for `kind` (minimax and non_saturating share it). Pass logits
    of detached fakes so the step reaches only D."""
    if _kind(kind, "discriminator_loss") == "hinge":
        return hinge_discriminator_loss(real_logits, fake_logits)
    return minimax_discriminator_loss(real_logits, fake_logits)


def generator_loss(fake_logits, kind="non_saturating"):
    """The generator's loss for `kind`."""
    k = _kind(kind, "generator_loss")
    if k == "hinge":
        return hinge_generator_loss(fake_logits)
    return minimax_generator_loss(fake_logits) if k == "minimax" else non_saturating_generator_loss(fake_logits)


def _progress(iterable, total, desc, enabled):
    from fastdl.train.fit import _progress as bar
    return bar(iterable, total, desc, enabled)


def _no_sync(model):
    """model.no_sync() for a DistributedDataParallel (its next forward does not arm the gradient
    all-reduce), nothing otherwise."""
    return model.no_sync() if hasattr(model, "no_sync") else contextlib.nullcontext()


def train_gan(generator, discriminator, loader, opt_g, opt_d, epochs=1, loss="non_saturating", d_steps=1,
              progress=True, verbose=True, on_epoch_end=None):
    """Alternate `d_steps` discriminator updates (real batch vs detached fakes, opt_d) and one
    generator update (fresh fakes, opt_g) per batch of `loader` (batches are x or (x, ...)
    with images scaled to [-1, 1]). Returns {"d_loss", "g_loss", "d_real", "d_fake", "time"}
    per epoch (d_real / d_fake: mean D(x) and D(G(z)) as probabilities);
    on_epoch_end(epoch, logs) may return True to stop.

    Under `mpirun -n N` it trains data-parallel as fit does (fastdl.train.parallel): both
    networks in DistributedDataParallel, each rank on its shard of `loader`, the epoch logs
    averaged over the ranks, rank 0 alone printing. The discriminator's two forwards (real, fake)
    feed one backward, so only the second arms its all-reduce; in the generator update the
    discriminator's gradients are not needed and not reduced (opt_d zeroes them first)."""
    _kind(loss, "train_gan")
    from fastdl.train import parallel
    wrapped = []
    if parallel.auto_init():
        G, D = parallel.wrap(generator), parallel.wrap(discriminator)
        wrapped = [w for w, m in ((G, generator), (D, discriminator)) if w is not m]
        loader = parallel.shard(loader)
        if parallel.rank() != 0:
            progress = verbose = False
    else:
        G, D = generator, discriminator
    try:
        return _train_gan(G, D, loader, opt_g, opt_d, epochs, loss, d_steps, progress, verbose, on_epoch_end)
    finally:
        for w in wrapped:
            w._remove_hooks()


def _train_gan(G, D, loader, opt_g, opt_d, epochs, loss, d_steps, progress, verbose, on_epoch_end):
    from fastdl.train import parallel
    history = {k: [] for k in ("d_loss", "g_loss", "d_real", "d_fake", "time")}
    bare_g = parallel.unwrap(G)  # makes the discriminator's fakes: no gradient, nothing to reduce
    zdim = bare_g.latent_dim
    sampler = getattr(loader, "sampler", None)
    for epoch in range(epochs):
        G.train()
        D.train()
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        t0, sums, count = time.perf_counter(), dict(d_loss=0.0, g_loss=0.0, d_real=0.0, d_fake=0.0), 0
        bar = _progress(loader, len(loader) if hasattr(loader, "__len__") else None, f"epoch {epoch + 1}/{epochs}",
                        progress)
        for i, batch in enumerate(bar):
            real = batch[0] if isinstance(batch, (tuple, list)) else batch
            n = real.shape[0]
            for _ in range(d_steps):
                fake = bare_g(_tensor.randn(n, zdim, dtype=real.dtype, device=real.device)).detach()
                opt_d.zero_grad()
                with _no_sync(D):
                    real_logits = D(real)
                fake_logits = D(fake)
                d_loss = discriminator_loss(real_logits, fake_logits, loss)
                d_loss.backward()
                opt_d.step()
            opt_g.zero_grad()
            with _no_sync(D):
                g_fake_logits = D(G(_tensor.randn(n, zdim, dtype=real.dtype, device=real.device)))
            g_loss = generator_loss(g_fake_logits, loss)
            g_loss.backward()
            opt_g.step()
            sums["d_loss"] += d_loss.item()
            sums["g_loss"] += g_loss.item()
            sums["d_real"] += F.sigmoid(real_logits.detach()).mean().item()
            sums["d_fake"] += F.sigmoid(fake_logits.detach()).mean().item()
            count += 1
            if bar is not loader and i % 10 == 0:
                bar.set_postfix(d=f"{sums['d_loss'] / count:.3f}", g=f"{sums['g_loss'] / count:.3f}")
        logs = {k: v / max(count, 1) for k, v in sums.items()}
        if parallel.active():  # every rank took the same number of batches (DistributedSampler)
            logs = dict(zip(logs, parallel.all_mean(list(logs.values()))))
        logs["time"] = time.perf_counter() - t0
        if not (math.isfinite(logs["d_loss"]) and math.isfinite(logs["g_loss"])):
            raise FloatingPointError(f"train_gan: losses became {logs['d_loss']}, {logs['g_loss']} in epoch "
                                     f"{epoch + 1}")
        for k, v in logs.items():
            history[k].append(v)
        if verbose:
            print(f"epoch {epoch + 1}/{epochs}  d_loss {logs['d_loss']:.4f}  g_loss {logs['g_loss']:.4f}  "
                  f"D(x) {logs['d_real']:.3f}  D(G(z)) {logs['d_fake']:.3f}  ({logs['time']:.2f}s)", flush=True)
        if on_epoch_end is not None and on_epoch_end(epoch, logs):
            break
    return history
