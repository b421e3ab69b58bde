"""2-D convolution forward and forward + backward, fastdl against PyTorch (oneDNN), NCHW in and
out, float32, interleaved in one process (median of rounds): the issue's ResNet 3x3 layers at
batch 32 (input gradient included, as inside a network), LeNet's c1 at batch 256 (the data
needs no gradient), the depthwise and patchify layers of ConvNeXt and MobileNet, a ResNet's stem
and stride-2 layer on 64x64 images, and DCGAN's discriminator (its generator's transposed layers
are these layers' input gradients). Ratios are PyTorch's time over fastdl's: above 1 means fastdl is faster.
GF/s count every tap, the ones that fall on padding too: both fastdl (cpu/conv_taps_vec.cpp)
and oneDNN skip those on small images, so a 7x7 layer can show more than the FMA peak.

    fastdl bench conv [--quick] [--stem] [--rounds R]
"""
import numpy as np

import fastdl as fd
import fastdl.nn.functional as F
from fastdl.bench.harness import interleaved, try_torch

# (name, N, C, H, K, k, stride, padding, input needs grad[, groups]); the last stages of a ResNet
# on 64x64 images (fastdl.bench models' resnet18) are 8x8, 4x4 and 2x2; ConvNeXt-T on 64x64
# images runs its 7x7 depthwise layers on 16x16 to 2x2 planes
LAYERS = [
    ("resnet 64x56x56", 32, 64, 56, 64, 3, 1, 1, True),
    ("resnet 128x28x28", 32, 128, 28, 128, 3, 1, 1, True),
    ("resnet 256x14x14", 32, 256, 14, 256, 3, 1, 1, True),
    ("resnet 512x7x7", 32, 512, 7, 512, 3, 1, 1, True),
    ("resnet 256x4x4", 32, 256, 4, 256, 3, 1, 1, True),
    ("lenet c1 1x28x28->6", 256, 1, 28, 6, 5, 1, 0, False),
    ("convnext stem 3x64x64 k4 s4", 16, 3, 64, 96, 4, 4, 0, False),
    ("convnext dw7 96x16x16", 16, 96, 16, 96, 7, 1, 3, True, 96),
    ("convnext dw7 384x4x4", 16, 384, 4, 384, 7, 1, 3, True, 384),
    ("mobilenet dw3 s2 144x32x32", 32, 144, 32, 144, 3, 2, 1, True, 144),
    ("resnet stem 3x64x64 k7 s2", 32, 3, 64, 64, 7, 2, 3, False),
    ("resnet down 64x32x32 s2", 32, 64, 32, 128, 3, 2, 1, True),
    ("dcgan D 64x16x16 k4 s2", 32, 64, 16, 128, 4, 2, 1, True),
    ("dcgan D 128x8x8 k4 s2", 32, 128, 8, 256, 4, 2, 1, True),
    ("dcgan D 256x4x4 -> 1", 32, 256, 4, 1, 4, 1, 0, True),
]
STEM = ("resnet stem 3x224x224 k7 s2", 8, 3, 224, 64, 7, 2, 3, True)


def _flops(N, C, H, K, k, s, p, need_x, groups=1):
    OH = (H + 2 * p - k) // s + 1
    fwd = 2.0 * N * K * C // groups * k * k * OH * OH
    return fwd, fwd * (3 if need_x else 2)


def _cases(torch, layer, seed=0):
    name, N, C, H, K, k, s, p, need_x, *groups = layer
    g_ = groups[0] if groups else 1
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, H)).astype(np.float32)
    w = (rng.standard_normal((K, C // g_, k, k)) / np.sqrt(C // g_ * k * k)).astype(np.float32)
    b = rng.standard_normal(K).astype(np.float32)
    OH = (H + 2 * p - k) // s + 1
    g = rng.standard_normal((N, K, OH, OH)).astype(np.float32)
    fx, fw, fb, fg = fd.tensor(x, requires_grad=need_x), fd.tensor(w, requires_grad=True), \
        fd.tensor(b, requires_grad=True), fd.tensor(g)
    cases = {}

    def f_fwd():
        with fd.no_grad():
            F.conv2d(fx, fw, fb, stride=s, padding=p, groups=g_)

    def f_both():
        fx.grad = fw.grad = fb.grad = None
        F.conv2d(fx, fw, fb, stride=s, padding=p, groups=g_).backward(fg)

    cases["fastdl fwd"], cases["fastdl fwd+bwd"] = f_fwd, f_both
    if torch is not None:
        tx, tw, tb, tg = (torch.tensor(a, requires_grad=r) for a, r in ((x, need_x), (w, True), (b, True), (g, False)))

        def t_fwd():
            with torch.no_grad():
                torch.nn.functional.conv2d(tx, tw, tb, stride=s, padding=p, groups=g_)

        def t_both():
            tx.grad = tw.grad = tb.grad = None
            torch.nn.functional.conv2d(tx, tw, tb, stride=s, padding=p, groups=g_).backward(tg)

        cases["torch fwd"], cases["torch fwd+bwd"] = t_fwd, t_both
    return cases


def main(argv=()):
    argv = list(argv)
    quick = "--quick" in argv
    rounds = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else (3 if quick else 7)
    torch = try_torch()
    if torch is not None:
        torch.set_num_threads(fd.get_num_threads())
    layers = LAYERS + ([STEM] if "--stem" in argv else [])
    if quick:  # same layers, a fraction of the batch
        layers = [(n, max(1, N // 8)) + rest for n, N, *rest in layers]
    print(f"conv2d float32 NCHW, {fd.get_num_threads()} threads, ISA {fd._C.cpu_isa()}"
          + ("" if torch is not None else " (PyTorch not installed: fastdl only)"))
    print(f"{'layer':30s} {'fastdl fwd':>11s} {'GF/s':>6s} {'ratio':>6s}   {'fastdl f+b':>11s} {'GF/s':>6s} {'ratio':>6s}")
    for layer in layers:
        t = interleaved(_cases(torch, layer), rounds=rounds, target_s=0.05, warmup=1, settle_s=0.05)
        ffl, bfl = _flops(*layer[1:])
        line = f"{layer[0]:30s} {t['fastdl fwd'] * 1e3:9.2f}ms {ffl / t['fastdl fwd'] / 1e9:6.1f} "
        line += f"{t['torch fwd'] / t['fastdl fwd']:5.2f}x" if torch is not None else "     -"
        line += f"   {t['fastdl fwd+bwd'] * 1e3:9.2f}ms {bfl / t['fastdl fwd+bwd'] / 1e9:6.1f} "
        line += f"{t['torch fwd+bwd'] / t['fastdl fwd+bwd']:5.2f}x" if torch is not None else "     -"
        print(line, flush=True)
    return 0
