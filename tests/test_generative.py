"""Autoencoder / VAE, DCGAN and DDPM building blocks against PyTorch in float64 (the same
weights copied into torch layers: outputs, input and parameter gradients for a random upstream
gradient), the GAN losses against their formulas, the noise schedules and DDPM's closed forms,
the samplers' shapes, and the PNG grids. The learning tests are in test_generative_learning.py."""
import math

import numpy as np
import pytest

import fastdl as fd
from fastdl.models import autoencoder, diffusion, gan


def _copy_into_torch(torch, fd_module, torch_module, strip=""):
    """Copy fd_module's state_dict (keys without `strip`) into torch_module, float64."""
    sd = {k[len(strip):] if k.startswith(strip) else k: v for k, v in fd_module.state_dict().items()}
    tsd = torch_module.state_dict()
    assert set(tsd) == set(sd), (sorted(set(tsd) ^ set(sd)))
    torch_module.load_state_dict({k: torch.tensor(np.asarray(sd[k].numpy())).to(tsd[k].dtype) for k in tsd})


def _check_grads(torch, fd_module, torch_module, fd_out, t_out, fd_in, t_in, rng, strip="", tol=1e-9):
    np.testing.assert_allclose(fd_out.detach().numpy(), t_out.detach().numpy(), rtol=tol, atol=tol)
    g = rng.standard_normal(tuple(t_out.shape))
    fd_out.backward(fd.tensor(g))
    t_out.backward(torch.tensor(g))
    if fd_in is not None:
        np.testing.assert_allclose(fd_in.grad.numpy(), t_in.grad.numpy(), rtol=tol, atol=tol)
    tp = dict(torch_module.named_parameters())
    for name, p in fd_module.named_parameters():
        key = name[len(strip):] if name.startswith(strip) else name
        np.testing.assert_allclose(p.grad.numpy(), tp[key].grad.numpy(), rtol=tol, atol=tol, err_msg=name)


def _torch_dcgan(torch, image_size, latent, width, channels=1):
    tn = torch.nn
    n = int(math.log2(image_size)) - 2
    c = width * 2 ** (n - 1)
    g = [tn.ConvTranspose2d(latent, c, 4, 1, 0, bias=False), tn.BatchNorm2d(c), tn.ReLU()]
    for _ in range(n - 1):
        g += [tn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), tn.BatchNorm2d(c // 2), tn.ReLU()]
        c //= 2
    g += [tn.ConvTranspose2d(c, channels, 4, 2, 1, bias=False), tn.Tanh()]
    d, c = [tn.Conv2d(channels, width, 4, 2, 1, bias=False), tn.LeakyReLU(0.2)], width
    for _ in range(n - 1):
        d += [tn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), tn.BatchNorm2d(2 * c), tn.LeakyReLU(0.2)]
        c *= 2
    d += [tn.Conv2d(c, 1, 4, 1, 0, bias=False)]
    return tn.Sequential(*g).double(), tn.Sequential(*d).double()


@pytest.mark.parametrize("image_size", [8, 16])
def test_dcgan_matches_torch(image_size, rng, torch):
    fd.manual_seed(int(rng.integers(1 << 30)))
    G = gan.DCGANGenerator(latent_dim=6, image_size=image_size, width=4).to(fd.float64)
    D = gan.DCGANDiscriminator(image_size=image_size, width=4).to(fd.float64)
    tG, tD = _torch_dcgan(torch, image_size, 6, 4)
    _copy_into_torch(torch, G, tG, "main.")
    _copy_into_torch(torch, D, tD, "main.")
    z = rng.standard_normal((5, 6))
    fz, tz = fd.tensor(z, requires_grad=True), torch.tensor(z, requires_grad=True)
    fx, tx = G(fz), tG(tz.reshape(5, 6, 1, 1))
    assert tuple(fx.shape) == (5, 1, image_size, image_size)
    _check_grads(torch, G, tG, fx, tx, fz, tz, rng, "main.")
    x = rng.uniform(-1, 1, (5, 1, image_size, image_size))
    fxx, txx = fd.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    _check_grads(torch, D, tD, D(fxx), tD(txx).reshape(5), fxx, txx, rng, "main.")
    # the running statistics moved the same way in training mode
    np.testing.assert_allclose(G.main[1].running_var.numpy(), tG[1].running_var.numpy(), rtol=1e-12)


def test_gan_losses_match_formulas(rng):
    r, f = rng.standard_normal(7) * 3, rng.standard_normal(7) * 3
    sp = lambda v: np.logaddexp(0, v)  # noqa: E731
    tr, tf = fd.tensor(r), fd.tensor(f)
    expect_d = sp(-r).mean() + sp(f).mean()   # -[log D(x) + log(1 - D(G(z)))]
    assert gan.discriminator_loss(tr, tf, "minimax").item() == pytest.approx(expect_d, rel=1e-12)
    assert gan.discriminator_loss(tr, tf, "non_saturating").item() == pytest.approx(expect_d, rel=1e-12)
    assert gan.discriminator_loss(tr, tf, "hinge").item() == pytest.approx(
        np.maximum(1 - r, 0).mean() + np.maximum(1 + f, 0).mean(), rel=1e-12)
    d_fake = 1 / (1 + np.exp(-f))
    assert gan.generator_loss(tf, "minimax").item() == pytest.approx(np.log(1 - d_fake).mean(), rel=1e-9)
    assert gan.generator_loss(tf, "non_saturating").item() == pytest.approx(-np.log(d_fake).mean(), rel=1e-9)
    assert gan.generator_loss(tf, "hinge").item() == pytest.approx(-f.mean(), rel=1e-12)
    # the non-saturating generator gradient stays large where the minimax one vanishes
    x = fd.tensor([-8.0], dtype=fd.float64, requires_grad=True)
    gan.generator_loss(x, "minimax").backward()
    g_mm = abs(x.grad.item())
    x.grad = None
    gan.generator_loss(x, "non_saturating").backward()
    assert g_mm < 1e-3 < abs(x.grad.item())
    with pytest.raises(ValueError, match="kind"):
        gan.generator_loss(tf, "wasserstein")


def _torch_encoder_decoder(torch, width, image_size, latent_out, latent_in):
    tn = torch.nn
    s = image_size // 4
    enc = tn.Sequential(tn.Conv2d(1, width, 3, padding=1), tn.ReLU(), tn.Conv2d(width, width, 4, 2, 1), tn.ReLU(),
                        tn.Conv2d(width, 2 * width, 4, 2, 1), tn.ReLU(), tn.Flatten(),
                        tn.Linear(2 * width * s * s, latent_out))
    dec = tn.Sequential(tn.Linear(latent_in, 2 * width * s * s), tn.ReLU(), tn.Unflatten(1, (2 * width, s, s)),
                        tn.ConvTranspose2d(2 * width, width, 4, 2, 1), tn.ReLU(),
                        tn.ConvTranspose2d(width, width, 4, 2, 1), tn.ReLU(), tn.Conv2d(width, 1, 3, padding=1))
    return enc.double(), dec.double()


def test_vae_matches_torch(rng, torch):
    fd.manual_seed(int(rng.integers(1 << 30)))
    vae = autoencoder.VAE(image_size=8, latent_dim=3, width=4, beta=0.7).to(fd.float64)
    tenc, tdec = _torch_encoder_decoder(torch, 4, 8, 6, 3)
    _copy_into_torch(torch, vae.encoder, tenc, "net.")
    _copy_into_torch(torch, vae.decoder, tdec, "net.")
    x = rng.uniform(0, 1, (5, 1, 8, 8))
    vae.eval()  # z = mu: deterministic, so torch can follow
    loss, recon, kl = vae.loss(fd.tensor(x))
    tx = torch.tensor(x)
    h = tenc(tx)
    mu, logvar = h[:, :3], h[:, 3:]
    t_recon = torch.nn.functional.binary_cross_entropy_with_logits(tdec(mu), tx, reduction="sum") / 5
    t_kl = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(1)).mean()
    t_loss = t_recon + 0.7 * t_kl
    assert recon.item() == pytest.approx(t_recon.item(), rel=1e-10)
    assert kl.item() == pytest.approx(t_kl.item(), rel=1e-10)
    loss.backward()
    t_loss.backward()
    tp = dict(tenc.named_parameters()) | {f"d{k}": v for k, v in tdec.named_parameters()}
    for name, p in vae.named_parameters():
        part, key = name.split(".net.")
        t = tp[key if part == "encoder" else "d" + key]
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


def test_autoencoder_vae_shapes_and_reparameterisation(rng):
    fd.manual_seed(1)
    ae = autoencoder.ConvAutoencoder(image_size=16, latent_dim=5, width=4)
    x = fd.tensor(rng.uniform(0, 1, (3, 1, 16, 16)).astype(np.float32))
    assert tuple(ae.encode(x).shape) == (3, 5) and tuple(ae(x).shape) == (3, 1, 16, 16)
    r = ae.reconstruct(x).numpy()
    assert r.shape == (3, 1, 16, 16) and r.min() >= 0 and r.max() <= 1
    vae = autoencoder.VAE(image_size=16, latent_dim=4, width=4)
    s = vae.sample(6).numpy()
    assert s.shape == (6, 1, 16, 16) and 0 <= s.min() and s.max() <= 1
    assert vae.reconstruct(x).shape == (3, 1, 16, 16)
    # z = mu + sigma * eps: mean and spread of many draws, gradient 1 to mu
    mu = fd.full((20000, 1), 1.5, requires_grad=True)
    logvar = fd.full((20000, 1), math.log(0.25))
    z = autoencoder.reparameterize(mu, logvar)
    zn = z.detach().numpy()
    assert abs(zn.mean() - 1.5) < 0.02 and abs(zn.std() - 0.5) < 0.02
    z.sum().backward()
    np.testing.assert_allclose(mu.grad.numpy(), 1.0)
    # KL of N(mu, s^2) to N(0, 1) per dim: (s^2 + mu^2 - 1 - log s^2) / 2
    kl = autoencoder.gaussian_kl(fd.tensor([[0.5, -1.0]]), fd.tensor([[0.0, math.log(4.0)]])).item()
    assert kl == pytest.approx(0.5 * (1 + 0.25 - 1 - 0) + 0.5 * (4 + 1 - 1 - math.log(4.0)), rel=1e-6)
    with pytest.raises(ValueError, match="likelihood"):
        autoencoder.VAE(likelihood="poisson")
    with pytest.raises(ValueError, match="image_size"):
        autoencoder.VAE(image_size=10)


def _torch_resblock(torch, blk, x, temb):
    F = torch.nn.functional
    p = {k: torch.tensor(v.detach().numpy(), requires_grad=True) for k, v in blk.named_parameters()}
    h = F.conv2d(F.silu(F.group_norm(x, blk.norm1.num_groups, p["norm1.weight"], p["norm1.bias"])),
                 p["conv1.weight"], p["conv1.bias"], padding=1)
    h = h + F.linear(F.silu(temb), p["temb.weight"], p["temb.bias"])[:, :, None, None]
    h = F.conv2d(F.silu(F.group_norm(h, blk.norm2.num_groups, p["norm2.weight"], p["norm2.bias"])),
                 p["conv2.weight"], p["conv2.bias"], padding=1)
    skip = F.conv2d(x, p["skip.weight"], p["skip.bias"]) if "skip.weight" in p else x
    return skip + h, p


def _torch_attention(torch, blk, x):
    F = torch.nn.functional
    p = {k: torch.tensor(v.detach().numpy(), requires_grad=True) for k, v in blk.named_parameters()}
    B, C, H, W = x.shape
    nh = blk.num_heads
    tok = F.group_norm(x, blk.norm.num_groups, p["norm.weight"], p["norm.bias"]).flatten(2).transpose(1, 2)
    q, k, v = F.linear(tok, p["qkv.weight"], p["qkv.bias"]).reshape(B, H * W, 3, nh, C // nh).permute(2, 0, 3, 1, 4)
    h = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, H * W, C)
    return x + F.linear(h, p["proj.weight"], p["proj.bias"]).transpose(1, 2).reshape(B, C, H, W), p


def _randomise(module, rng):
    """Fill every parameter with random values (the zero-initialised output convs would hide
    half of the gradient check)."""
    for p in module.parameters():
        p.data = fd.tensor(rng.standard_normal(tuple(p.shape)) * 0.3)


@pytest.mark.parametrize("cin,cout", [(4, 8), (8, 8)])
def test_unet_resblock_matches_torch(cin, cout, rng, torch):
    blk = diffusion.ResBlock(cin, cout, temb_dim=6, groups=2).to(fd.float64)
    _randomise(blk, rng)
    x, temb = rng.standard_normal((3, cin, 5, 6)), rng.standard_normal((3, 6))
    fx, ft = fd.tensor(x, requires_grad=True), fd.tensor(temb, requires_grad=True)
    tx, tt = torch.tensor(x, requires_grad=True), torch.tensor(temb, requires_grad=True)
    out, p = _torch_resblock(torch, blk, tx, tt)
    fo = blk(fx, ft)
    np.testing.assert_allclose(fo.detach().numpy(), out.detach().numpy(), rtol=1e-9, atol=1e-10)
    g = rng.standard_normal(tuple(out.shape))
    fo.backward(fd.tensor(g))
    out.backward(torch.tensor(g))
    np.testing.assert_allclose(fx.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(ft.grad.numpy(), tt.grad.numpy(), rtol=1e-9, atol=1e-10)
    for name, prm in blk.named_parameters():
        np.testing.assert_allclose(prm.grad.numpy(), p[name].grad.numpy(), rtol=1e-9, atol=1e-10, err_msg=name)


def test_unet_attention_block_matches_torch(rng, torch):
    blk = diffusion.AttentionBlock(8, num_heads=2, groups=4).to(fd.float64)
    _randomise(blk, rng)
    x = rng.standard_normal((2, 8, 3, 5))
    fx, tx = fd.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, p = _torch_attention(torch, blk, tx)
    fo = blk(fx)
    np.testing.assert_allclose(fo.detach().numpy(), out.detach().numpy(), rtol=1e-9, atol=1e-10)
    g = rng.standard_normal(tuple(out.shape))
    fo.backward(fd.tensor(g))
    out.backward(torch.tensor(g))
    np.testing.assert_allclose(fx.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-10)
    for name, prm in blk.named_parameters():
        np.testing.assert_allclose(prm.grad.numpy(), p[name].grad.numpy(), rtol=1e-9, atol=1e-10, err_msg=name)


def test_unet_shapes_and_identity_at_init(rng):
    fd.manual_seed(3)
    for mults, size in (((1, 2), 8), ((1, 2, 2), 16)):
        u = diffusion.UNet(in_channels=1, base_channels=8, channel_mults=mults, num_heads=2, groups=4)
        x = fd.tensor(rng.standard_normal((2, 1, size, size)).astype(np.float32))
        out = u(x, fd.tensor([3.0, 40.0]))
        # zero-initialised output conv: the untrained U-Net predicts zero noise
        assert tuple(out.shape) == (2, 1, size, size) and np.abs(out.detach().numpy()).max() == 0
        out.sum().backward()
        assert u.out_conv.weight.grad is not None
    with pytest.raises(ValueError, match="divisible"):
        u(fd.randn(1, 1, 6, 6), fd.tensor([1.0]))


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_noise_schedules(name):
    b = diffusion.SCHEDULES[name](1000)
    ab = np.cumprod(1 - b)
    assert b.shape == (1000,) and (b > 0).all() and (b < 1).all() and (np.diff(ab) < 0).all()
    assert ab[-1] < 1e-3 and ab[0] > 0.99   # from nearly clean data to nearly pure noise
    if name == "linear":
        assert b[0] == pytest.approx(1e-4) and b[-1] == pytest.approx(0.02)
        assert diffusion.linear_beta_schedule(100)[-1] == pytest.approx(0.2)   # scaled by 1000 / T
    else:
        t = np.arange(1, 1001) / 1000
        f = np.cos((t + 0.008) / 1.008 * np.pi / 2) ** 2 / np.cos(0.008 / 1.008 * np.pi / 2) ** 2
        np.testing.assert_allclose(ab[:990], f[:990], rtol=1e-9)


class _Oracle(fd.nn.Module):
    """A denoiser that knows the data is the constant image c: eps = (x - sqrt(ab) c) / sqrt(1 - ab)."""

    def __init__(self, ddpm_ref, c):
        super().__init__()
        self.ref, self.c, self.w = ddpm_ref, c, fd.nn.Parameter(fd.zeros(1))

    def forward(self, x, t):
        ab = self.ref[0].alphas_cumprod[t.numpy().astype(np.int64)].reshape(-1, 1, 1, 1)
        return (x - fd.tensor(np.sqrt(ab), dtype=x.dtype) * self.c) / fd.tensor(np.sqrt(1 - ab), dtype=x.dtype)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_ddpm_samplers_recover_known_data(schedule):
    """With the exact noise predictor for a one-point data distribution, ancestral sampling and
    DDIM (eta 0 and 1) land on that point: checks the posterior coefficients and both updates."""
    fd.manual_seed(0)
    ref = []
    model = _Oracle(ref, 0.3)
    ddpm = diffusion.DDPM(model, timesteps=50, schedule=schedule)
    ref.append(ddpm)
    for kw in (dict(method="ancestral"), dict(method="ddim", steps=10), dict(method="ddim", steps=10, eta=1.0)):
        x = ddpm.sample(4, (1, 3, 3), **kw).numpy()
        np.testing.assert_allclose(x, 0.3, atol=1e-4, err_msg=str(kw))
    # q_sample and the loss: the oracle's noise prediction is exact, so the loss is ~0
    x0 = fd.full((6, 1, 3, 3), 0.3)
    assert ddpm.loss(x0).item() < 1e-8
    xt = ddpm.q_sample(x0, np.array([0, 10, 20, 30, 40, 49]), fd.zeros(6, 1, 3, 3)).numpy()
    np.testing.assert_allclose(xt[:, 0, 0, 0], 0.3 * np.sqrt(ddpm.alphas_cumprod[[0, 10, 20, 30, 40, 49]]), rtol=1e-5)
    _, traj = ddpm.sample(2, (1, 3, 3), method="ddim", steps=5, return_trajectory=True)
    assert len(traj) == 5
    with pytest.raises(ValueError, match="method"):
        ddpm.sample(1, (1, 3, 3), method="euler")


def test_ddpm_with_dit_denoiser():
    """The DiT as DDPM's second denoiser: class labels reach it, and 80 steps on 8x8 digit-like
    blobs (a bright square at a class-dependent place) cut the noise-prediction loss by half."""
    fd.manual_seed(0)
    prev = fd.get_num_threads()
    fd.set_num_threads(1)
    try:
        net = diffusion.DiTDenoiser(input_size=8, in_channels=1, hidden_size=32, depth=2, num_heads=2, num_classes=4)
        ddpm = diffusion.DDPM(net, timesteps=50, schedule="cosine")
        rng = np.random.default_rng(0)
        opt = fd.optim.Adam(ddpm.parameters(), lr=3e-3)
        losses = []
        for _ in range(80):
            y = rng.integers(0, 4, 32)
            x = -np.ones((32, 1, 8, 8), np.float32)
            for i, c in enumerate(y):
                r, q = divmod(int(c), 2)
                x[i, 0, 4 * r:4 * r + 4, 4 * q:4 * q + 4] = 1.0
            opt.zero_grad()
            loss = ddpm.loss(fd.tensor(x), fd.tensor(y))
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10]), (losses[:10], losses[-10:])
        s = ddpm.sample(4, (1, 8, 8), method="ddim", steps=4, y=fd.tensor(np.array([0, 1, 2, 3]))).numpy()
        assert s.shape == (4, 1, 8, 8) and np.isfinite(s).all() and np.abs(s).max() <= 1.0 + 1e-6
        unconditional = diffusion.DiTDenoiser(input_size=8, hidden_size=16, depth=1, num_heads=2)
        assert tuple(unconditional(fd.randn(2, 1, 8, 8), fd.tensor([1.0, 2.0])).shape) == (2, 1, 8, 8)
    finally:
        fd.set_num_threads(prev)


def test_image_grid_png_roundtrip(tmp_path, rng):
    from fastdl.train.images import make_grid, read_png, save_image
    imgs = rng.uniform(-1, 1, (5, 1, 4, 3))
    grid = make_grid(imgs, nrow=3, padding=1)
    assert grid.shape == (1, 2 * 5 + 1, 3 * 4 + 1)
    np.testing.assert_array_equal(grid[0, 1:5, 1:4], imgs[0, 0])
    path = save_image(fd.tensor(imgs.astype(np.float32)), str(tmp_path / "g.png"), nrow=3, value_range=(-1, 1),
                      scale=2)
    px = read_png(path)
    assert px.shape == (2 * 11, 2 * 13) and px.dtype == np.uint8
    expect = np.round((np.clip(imgs[4, 0], -1, 1) + 1) / 2 * 255)
    np.testing.assert_array_equal(px[2 * 6:2 * 10:2, 2 * 5:2 * 8:2], expect)
    rgb = save_image(rng.uniform(0, 1, (2, 3, 4, 4)), str(tmp_path / "c.png"))
    assert read_png(rgb).shape == (6, 11, 3)


def test_save_curves_draws_each_series(tmp_path):
    from fastdl.train.images import _COLORS, read_png, save_curves
    path = save_curves({"loss": [1.0, 0.5, 0.2], "val_loss": [0.9, 0.6, 0.4], "val_accuracy": [0.5, 0.8, 0.9],
                        "time": [1, 1, 1]}, str(tmp_path / "loss.png"))
    px = read_png(path)
    assert px.ndim == 3 and px.shape[1] > px.shape[0]   # two panels side by side
    colors = {tuple(c) for c in px.reshape(-1, 3)}
    assert _COLORS[0] in colors and _COLORS[1] in colors
    half = px[:, px.shape[1] // 2:].reshape(-1, 3)
    assert _COLORS[0] in {tuple(c) for c in half}     # val_accuracy, first series of the right panel
    with pytest.raises(ValueError, match="no series"):
        save_curves({"time": [1.0]}, str(tmp_path / "x.png"))


@pytest.mark.parametrize("kind", gan.LOSSES)
def test_train_gan_updates_each_network_with_its_own_optimizer(kind, rng):
    """Each objective runs; the discriminator step leaves G alone (fakes detached) and the
    generator step leaves D's weights alone (only opt_g steps)."""
    from fastdl.data import DataLoader, TensorDataset
    fd.manual_seed(int(rng.integers(1 << 30)))
    x = fd.tensor(rng.uniform(-1, 1, (48, 1, 8, 8)).astype(np.float32))
    loader = DataLoader(TensorDataset(x), batch_size=16)
    for frozen in ("g", "d"):
        G, D = gan.DCGANGenerator(latent_dim=4, width=4), gan.DCGANDiscriminator(width=4)
        g0 = [p.detach().numpy().copy() for p in G.parameters()]
        d0 = [p.detach().numpy().copy() for p in D.parameters()]
        opt_g = fd.optim.SGD(G.parameters(), lr=0.0 if frozen == "g" else 0.1)
        opt_d = fd.optim.SGD(D.parameters(), lr=0.0 if frozen == "d" else 0.1)
        hist = gan.train_gan(G, D, loader, opt_g, opt_d, epochs=2, loss=kind, progress=False, verbose=False)
        assert len(hist["d_loss"]) == 2 and np.isfinite(hist["d_loss"] + hist["g_loss"]).all()
        assert 0 < hist["d_real"][0] < 1 and 0 < hist["d_fake"][0] < 1
        g_moved = any(not np.array_equal(a, p.detach().numpy()) for a, p in zip(g0, G.parameters()))
        d_moved = any(not np.array_equal(a, p.detach().numpy()) for a, p in zip(d0, D.parameters()))
        assert (g_moved, d_moved) == ((False, True) if frozen == "g" else (True, False))
