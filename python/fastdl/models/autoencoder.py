"""A convolutional autoencoder and a variational autoencoder (Kingma & Welling 2014,
"Auto-Encoding Variational Bayes"; beta as in Higgins et al. 2017) for small images such as
the 8x8 or 16x16 digits.

    ConvAutoencoder(in_channels=1, image_size=8, latent_dim=16, width=32)
        ae(x) -> reconstruction logits; ae.encode(x) -> z; ae.reconstruct(x) -> images in [0, 1]
    VAE(in_channels=1, image_size=8, latent_dim=8, width=32, beta=1.0, likelihood="bernoulli")
        vae(x) -> (logits, mu, logvar); vae.loss(x) -> (beta-weighted negative ELBO, recon, kl)
        vae.sample(n) / vae.reconstruct(x) -> images in [0, 1]

Encoders halve the image twice with stride-2 4x4 convolutions; decoders mirror them with
stride-2 transposed convolutions. Images are expected in [0, 1]: the Bernoulli likelihood is
binary cross-entropy on the decoder's logits, the Gaussian one a unit-variance squared error
(both summed over pixels, up to the Gaussian's constant)."""
from fastdl import _C, _tensor
from fastdl import nn
from fastdl.nn import functional as F
from fastdl.nn import init


def _he_init(module):
    """He-normal weights, zero biases: PyTorch's default init shrinks the signal through these
    eight-layer stacks, which slows learning and lets the VAE's posterior collapse."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            init.kaiming_normal_(m.weight, nonlinearity="relu")
            init.zeros_(m.bias)


def _check_size(image_size, op):
    if image_size % 4 or image_size < 4:
        raise ValueError(f"{op}: image_size must be a positive multiple of 4; got {image_size}")


class ConvEncoder(nn.Module):
    """(N, C, S, S) -> (N, out_features): conv 3x3, two stride-2 4x4 convs (S -> S / 4), linear."""

    def __init__(self, in_channels, image_size, width, out_features):
        super().__init__()
        _check_size(image_size, "ConvEncoder")
        s = image_size // 4
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(2 * width * s * s, out_features))
        _he_init(self)

    def forward(self, x):
        return self.net(x)


class ConvDecoder(nn.Module):
    """(N, in_features) -> (N, C, S, S) logits: linear, two stride-2 transposed convs, conv 3x3."""

    def __init__(self, in_features, out_channels, image_size, width):
        super().__init__()
        _check_size(image_size, "ConvDecoder")
        s = image_size // 4
        self.net = nn.Sequential(
            nn.Linear(in_features, 2 * width * s * s), nn.ReLU(), nn.Unflatten(1, (2 * width, s, s)),
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(width, width, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, out_channels, 3, padding=1))
        _he_init(self)

    def forward(self, z):
        return self.net(z)


class ConvAutoencoder(nn.Module):
    """Deterministic autoencoder: x -> z -> reconstruction logits (train with
    F.binary_cross_entropy_with_logits(ae(x), x) for images in [0, 1])."""

    def __init__(self, in_channels=1, image_size=8, latent_dim=16, width=32):
        super().__init__()
        self.in_channels, self.image_size, self.latent_dim = in_channels, image_size, latent_dim
        self.encoder = ConvEncoder(in_channels, image_size, width, latent_dim)
        self.decoder = ConvDecoder(latent_dim, in_channels, image_size, width)

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        return self.decoder(self.encoder(x))

    def reconstruct(self, x):
        """Images in [0, 1] (sigmoid of the decoder's logits), without gradient."""
        with _tensor.no_grad():
            return F.sigmoid(self.forward(x))


def reparameterize(mu, logvar):
    """z = mu + exp(logvar / 2) * eps with eps ~ N(0, I): a sample whose gradient reaches mu and logvar."""
    return mu + _C.exp(logvar * 0.5) * _tensor.randn_like(mu)


def gaussian_kl(mu, logvar):
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over the latent dims, per row: (N,)."""
    return (_C.exp(logvar) + mu * mu - 1.0 - logvar).sum(1) * 0.5


def vae_loss(logits, x, mu, logvar, beta=1.0, likelihood="bernoulli"):
    """(loss, recon, kl), each the mean over the batch of a per-image sum: recon = -log p(x|z)
    (Bernoulli: BCE on logits; Gaussian: 0.5 ||x - mean||^2, constant dropped), kl =
    KL(q(z|x) || N(0, I)), loss = recon + beta * kl (the negative ELBO at beta = 1)."""
    n = x.shape[0]
    if likelihood == "bernoulli":
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / n
    elif likelihood == "gaussian":
        recon = F.mse_loss(logits, x, reduction="sum") * (0.5 / n)
    else:
        raise ValueError(f"vae_loss: likelihood must be 'bernoulli' or 'gaussian'; got '{likelihood}'")
    kl = gaussian_kl(mu, logvar).mean()
    return recon + kl * beta, recon, kl


class VAE(nn.Module):
    """Convolutional VAE with a diagonal-Gaussian posterior q(z|x) = N(mu, exp(logvar)), prior
    N(0, I) and a Bernoulli (default) or unit-variance Gaussian decoder."""

    def __init__(self, in_channels=1, image_size=8, latent_dim=8, width=32, beta=1.0, likelihood="bernoulli"):
        super().__init__()
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"VAE: likelihood must be 'bernoulli' or 'gaussian'; got '{likelihood}'")
        self.in_channels, self.image_size, self.latent_dim = in_channels, image_size, latent_dim
        self.beta, self.likelihood = float(beta), likelihood
        self.encoder = ConvEncoder(in_channels, image_size, width, 2 * latent_dim)
        self.decoder = ConvDecoder(latent_dim, in_channels, image_size, width)

    def encode(self, x):
        """(mu, logvar), each (N, latent_dim)."""
        h = self.encoder(x)
        return h[:, :self.latent_dim], h[:, self.latent_dim:]

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar) if self.training else mu
        return self.decode(z), mu, logvar

    def loss(self, x, beta=None):
        """(beta-weighted negative ELBO, reconstruction term, KL term), means over the batch."""
        logits, mu, logvar = self.forward(x)
        return vae_loss(logits, x, mu, logvar, self.beta if beta is None else beta, self.likelihood)

    def elbo_estimate(self, x, samples=4):
        """Monte Carlo estimate, without gradient, of (negative ELBO, reconstruction, KL) per
        image for x: the reconstruction term averaged over `samples` draws z ~ q(z|x), the KL
        term exact. Floats, nats per image (beta is not applied)."""
        with _tensor.no_grad():
            mu, logvar = self.encode(x)
            kl = gaussian_kl(mu, logvar).mean().item()
            recon = sum(vae_loss(self.decode(reparameterize(mu, logvar)), x, mu, logvar, 0.0, self.likelihood)[1].item()
                        for _ in range(samples)) / samples
        return recon + kl, recon, kl

    def _mean(self, logits):
        return F.sigmoid(logits) if self.likelihood == "bernoulli" else logits

    def sample(self, n, device=None):
        """n images from the prior: decoder means of z ~ N(0, I), (n, C, S, S), without gradient."""
        w = self.decoder.net[0].weight
        with _tensor.no_grad():
            z = _tensor.randn(n, self.latent_dim, dtype=w.dtype, device=device or w.device)
            return self._mean(self.decode(z))

    def reconstruct(self, x):
        """Decoder means at the posterior means, without gradient."""
        with _tensor.no_grad():
            return self._mean(self.decode(self.encode(x)[0]))
