"""Ops against PyTorch, interleaved in one process, at the char-GPT's shapes (and a ResNet-18's
on 64x64 images, batch 32, for pooling and batch norm): forward alone,
forward + backward with a random contiguous upstream gradient, and forward + backward with
an expanded (stride-0) one, `y.backward(g)`, leaf gradients reset to None between calls as
zero_grad(set_to_none=True) does. Ratios are PyTorch time / fastdl time (> 1: fastdl faster).
`--quick` times fewer rounds; `--only SUBSTR` keeps the matching rows.

    fastdl bench ops [--quick] [--only SUBSTR]"""
import numpy as np

import fastdl as fd
import fastdl.nn.functional as F
from fastdl.bench.harness import interleaved, try_torch

B, T, C, H = 12, 64, 128, 4  # the char-GPT: batch, context, width, heads
ACT = (B, T, 4 * C)          # (12, 64, 512) MLP activations


class _Case:
    """One op: `fd_fn(*fd_inputs)` and `torch_fn(*torch_inputs)` from the same float32 data;
    `grad` marks which inputs require grad (None: forward only)."""

    def __init__(self, name, fd_fn, torch_fn, inputs, grad=None, expanded=True):
        self.name, self.fd_fn, self.torch_fn, self.inputs = name, fd_fn, torch_fn, inputs
        self.grad, self.expanded = grad, expanded


def _rand(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


def _cases(torch, rng):
    tf = torch.nn.functional
    r = lambda *s: _rand(rng, s)  # noqa: E731
    act = r(*ACT)
    att = r(B, H, T, T)
    mask = np.triu(np.full((T, T), -np.inf, np.float32), 1)
    idx = rng.integers(0, T, 2 * T)
    tokens = rng.integers(0, 65, (B, T))
    labels = rng.integers(0, 65, B * T)
    cases = [
        _Case("gelu (12,64,512)", F.gelu, tf.gelu, [act], [0]),
        _Case("gelu tanh (12,64,512)", lambda x: F.gelu(x, approximate="tanh"),
              lambda x: tf.gelu(x, approximate="tanh"), [act], [0]),
        _Case("silu (12,64,512)", F.silu, tf.silu, [act], [0]),
        _Case("relu (12,64,512)", F.relu, tf.relu, [act], [0]),
        _Case("tanh (12,64,512)", lambda x: x.tanh(), lambda x: x.tanh(), [act], [0]),
        _Case("sigmoid (12,64,512)", lambda x: x.sigmoid(), lambda x: x.sigmoid(), [act], [0]),
        _Case("exp (12,64,512)", lambda x: x.exp(), lambda x: x.exp(), [act], [0]),
        _Case("erf (12,64,512)", lambda x: x.erf(), lambda x: x.erf(), [act], [0]),
        _Case("hand-written gelu, erf (12,64,512)", lambda x: 0.5 * x * (1 + (x * 0.7071067811865476).erf()),
              lambda x: 0.5 * x * (1 + (x * 0.7071067811865476).erf()), [act], [0]),
        _Case("sin (12,64,512) (positional / timestep embeddings)", lambda x: x.sin(), lambda x: x.sin(), [act], [0]),
        _Case("log1p (12,64,512)", lambda x: x.abs().log1p(), lambda x: x.abs().log1p(), [act], [0]),
        _Case("elu (12,64,512) (expm1)", F.elu, tf.elu, [act], [0]),
        _Case("leaky_relu 0.2 (12,64,512) (GAN, GAT)", lambda x: F.leaky_relu(x, 0.2), lambda x: tf.leaky_relu(x, 0.2),
              [act], [0]),
        _Case("hardswish (12,64,512) (MobileNetV3)", F.hardswish, tf.hardswish, [act], [0]),
        _Case("selu (12,64,512)", F.selu, tf.selu, [act], [0]),
        _Case("atan (12,64,512)", lambda x: x.atan(), lambda x: x.atan(), [act], [0]),
        _Case("where (12,64,512)", lambda c, x, y: fd.where(c, x, y), lambda c, x, y: torch.where(c, x, y),
              [act > 0, act, r(*ACT)], [1, 2]),
        _Case("remainder (12,64,512) % 0.7", lambda x: x % 0.7, lambda x: x % 0.7, [act], [0]),
        _Case("x.T + y.T (12,64,512)", lambda x, y: x.transpose(0, 2) + y.transpose(0, 2),
              lambda x, y: x.transpose(0, 2) + y.transpose(0, 2), [act, r(*ACT)], [0, 1]),
        _Case("x * y (12,64,512)", lambda x, y: x * y, lambda x, y: x * y, [act, r(*ACT)], [0, 1]),
        _Case("x / y (12,64,512)", lambda x, y: x / y, lambda x, y: x / y, [act, np.abs(r(*ACT)) + 0.5], [0, 1]),
        _Case("x + bias (768,384)+(384,)", lambda x, b: x + b, lambda x, b: x + b, [r(B * T, 3 * C), r(3 * C)], [0, 1]),
        _Case("x * w (12,64,512)*(512,)", lambda x, w: x * w, lambda x, w: x * w, [act, r(4 * C)], [0, 1]),
        _Case("att + mask (12,4,64,64)+(64,64)", lambda x, m: x + m, lambda x, m: x + m, [att, mask], [0]),
        _Case("att * scale (12,4,64,64)", lambda x: x * 0.17, lambda x: x * 0.17, [att], [0]),
        _Case("sum dim -1 (12,64,512)", lambda x: x.sum(-1), lambda x: x.sum(-1), [act], [0]),
        _Case("mean dim 1 (12,64,512)", lambda x: x.mean(1), lambda x: x.mean(1), [act], [0]),
        _Case("sum all (12,64,512)", lambda x: x.sum(), lambda x: x.sum(), [act], [0], expanded=False),
        _Case("amax dim -1 (12,64,512)", lambda x: x.amax(-1), lambda x: x.amax(-1), [act], [0]),
        _Case("max dim -1 values (12,64,512)", lambda x: x.max(-1)[0], lambda x: x.max(-1)[0], [act], [0]),
        _Case("var dim -1 (12,64,512)", lambda x: x.var(-1), lambda x: x.var(-1), [act], [0]),
        _Case("softmax (12,4,64,64)", lambda x: F.softmax(x, -1), lambda x: torch.softmax(x, -1), [att], [0]),
        _Case("log_softmax (768,65)", lambda x: F.log_softmax(x, -1), lambda x: torch.log_softmax(x, -1),
              [r(B * T, 65)], [0]),
        _Case("layer_norm (768,128)", lambda x, w, b: F.layer_norm(x, (C,), w, b),
              lambda x, w, b: tf.layer_norm(x, (C,), w, b), [r(B * T, C), r(C), r(C)], [0, 1, 2]),
        _Case("cross_entropy (768,65)", F.cross_entropy, tf.cross_entropy, [r(B * T, 65), labels], [0],
              expanded=False),
        _Case("dropout 0.1 (12,64,512)", lambda x: F.dropout(x, 0.1), lambda x: tf.dropout(x, 0.1), [act], [0]),
        _Case("dropout 0.5 (2708,1433) (GCN on Cora's input)", lambda x: F.dropout(x, 0.5),
              lambda x: tf.dropout(x, 0.5), [r(2708, 1433)], [0]),
        _Case("rand (1024,4096)", lambda: fd.rand(1024, 4096), lambda: torch.rand(1024, 4096), []),
        _Case("randn (1024,4096)", lambda: fd.randn(1024, 4096), lambda: torch.randn(1024, 4096), []),
        _Case("normal_ (1024,4096)", lambda x: x.normal_(), lambda x: x.normal_(), [r(1024, 4096)]),
        _Case("uniform_ (1024,4096)", lambda x: x.uniform_(-1, 1), lambda x: x.uniform_(-1, 1), [r(1024, 4096)]),
        _Case("x ** 2 (12,64,512)", lambda x: x ** 2, lambda x: x ** 2, [act], [0]),
        _Case("x ** 3 (12,64,512)", lambda x: x ** 3, lambda x: x ** 3, [act], [0]),
        _Case("linear (768,128)->384", F.linear, tf.linear, [r(B * T, C), r(3 * C, C), r(3 * C)], [0, 1, 2]),
        _Case("matmul (12,4,64,32)@(12,4,32,64)", lambda a, b: a @ b, lambda a, b: a @ b,
              [r(B, H, T, C // H), r(B, H, C // H, T)], [0, 1]),
        _Case("q @ k.T (12,4,64,32)", lambda q, k: q @ k.transpose(-2, -1), lambda q, k: q @ k.transpose(-2, -1),
              [r(B, H, T, C // H), r(B, H, T, C // H)], [0, 1]),
        _Case("matmul bcast (12,64,128)@(128,384)", lambda a, b: a @ b, lambda a, b: a @ b,
              [r(B, T, C), r(C, 3 * C)], [0, 1]),
        _Case("embedding (65,128)[12,64]", lambda t, w: F.embedding(t, w), lambda t, w: tf.embedding(t, w),
              [tokens, r(65, C)], [1]),
        _Case("transpose(1,2).contiguous() (12,64,4,32)", lambda x: x.transpose(1, 2).contiguous(),
              lambda x: x.transpose(1, 2).contiguous(), [r(B, T, H, C // H)], [0]),
        _Case("split 3 (768,384) -> [1]", lambda x: x.split(C, -1)[1], lambda x: x.split(C, -1)[1],
              [r(B * T, 3 * C)], [0]),
        _Case("x[:, 1:] (768,384)", lambda x: x[:, 1:], lambda x: x[:, 1:], [r(B * T, 3 * C)], [0]),
        _Case("cat 3 x (768,128) dim -1", lambda a, b, c: fd.cat([a, b, c], -1), lambda a, b, c: torch.cat([a, b, c], -1),
              [r(B * T, C), r(B * T, C), r(B * T, C)], [0, 1, 2]),
        _Case("x[idx] (768,128)[128]", lambda x, i: x[i], lambda x, i: x[i], [r(B * T, C), idx], [0]),
        _Case("gather dim 1 (768,65)", lambda x, i: x.gather(1, i), lambda x, i: x.gather(1, i),
              [r(B * T, 65), labels.reshape(-1, 1)], [0]),
        _Case("topk k=50 (12,65) (top-k sampling)", lambda x: x.topk(50, -1).values, lambda x: x.topk(50, -1).values,
              [r(B, 65)], [0], expanded=False),
        _Case("topk k=50 (64,50257) (GPT-2 vocabulary)", lambda x: x.topk(50, -1), lambda x: x.topk(50, -1),
              [r(64, 50257)]),
        _Case("sort dim -1 (1024,4096)", lambda x: x.sort(-1), lambda x: x.sort(-1), [r(1024, 4096)]),
        _Case("sort dim 0 (1024,4096)", lambda x: x.sort(0), lambda x: x.sort(0), [r(1024, 4096)]),
        _Case("sort dim -1 (768,65)", lambda x: x.sort(-1).values, lambda x: x.sort(-1).values, [r(B * T, 65)], [0],
              expanded=False),
        _Case("kthvalue k=100 dim -1 (64,4096)", lambda x: x.kthvalue(100, -1), lambda x: x.kthvalue(100, -1),
              [r(64, 4096)]),
        # a ResNet-18 on 64x64 images, batch 32: the stem's pool, the head's global pool, and
        # batch norm at the last two stages (rows of 16 and 4 elements)
        _Case("max_pool2d 3x3 s2 (32,64,32,32)", lambda x: F.max_pool2d(x, 3, 2, 1),
              lambda x: tf.max_pool2d(x, 3, 2, 1), [r(32, 64, 32, 32)], [0]),
        _Case("avg_pool2d 3x3 s2 (32,64,32,32)", lambda x: F.avg_pool2d(x, 3, 2, 1),
              lambda x: tf.avg_pool2d(x, 3, 2, 1), [r(32, 64, 32, 32)], [0]),
        _Case("adaptive_avg_pool2d 1 (32,64,32,32)", lambda x: F.adaptive_avg_pool2d(x, 1),
              lambda x: tf.adaptive_avg_pool2d(x, 1), [r(32, 64, 32, 32)], [0]),
        # ops a sweep against PyTorch found slow (see the session notes of 2026-12-05): the
        # matrix-vector product, index_select / interpolate, rms_norm, the 2-norm, cumsum, group
        # and layer norm's backward, scatter / gather with a full index
        _Case("matmul (512,1024)@(1024,) (A @ v)", lambda a, v: a @ v, lambda a, v: a @ v, [r(512, 1024), r(1024)],
              [0, 1], expanded=False),
        _Case("index_select dim -1 (8,64,32,32)[64]", lambda x, i: x.index_select(-1, i),
              lambda x, i: x.index_select(-1, i), [r(8, 64, 32, 32), rng.integers(0, 32, 64)], [0]),
        _Case("interpolate bilinear x2 (8,64,32,32)", lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"),
              lambda x: tf.interpolate(x, scale_factor=2, mode="bilinear"), [r(8, 64, 32, 32)], [0]),
        _Case("rms_norm (768,128)", lambda x, w: F.rms_norm(x, (C,), w), lambda x, w: tf.rms_norm(x, (C,), w),
              [r(B * T, C), r(C)], [0, 1]),
        _Case("norm dim -1 (512,1024)", lambda x: x.norm(dim=-1), lambda x: x.norm(dim=-1), [r(512, 1024)], [0]),
        _Case("cumsum dim 1 (512,1024)", lambda x: x.cumsum(1), lambda x: x.cumsum(1), [r(512, 1024)], [0]),
        _Case("group_norm 32 (8,128,32,32)", lambda x, w, b: F.group_norm(x, 32, w, b),
              lambda x, w, b: tf.group_norm(x, 32, w, b), [r(8, 128, 32, 32), r(128), r(128)], [0, 1, 2]),
        _Case("layer_norm (2048,256)", lambda x, w, b: F.layer_norm(x, (256,), w, b),
              lambda x, w, b: tf.layer_norm(x, (256,), w, b), [r(2048, 256), r(256), r(256)], [0, 1, 2]),
        _Case("scatter dim 1 (512,1024) full index", lambda x, i, s: x.scatter(1, i, s),
              lambda x, i, s: x.scatter(1, i, s),
              [r(512, 1024), np.argsort(r(512, 1024), axis=1), r(512, 1024)], [0, 2]),
        _Case("gather dim 1 (512,1024) full index", lambda x, i: x.gather(1, i), lambda x, i: x.gather(1, i),
              [r(512, 1024), np.argsort(r(512, 1024), axis=1)], [0]),
        *[_Case(f"batch_norm train ({', '.join(map(str, shp))})",
                lambda x, m, v, w, b: F.batch_norm(x, m, v, w, b, training=True),
                lambda x, m, v, w, b: tf.batch_norm(x, m, v, w, b, training=True),
                [r(*shp), r(shp[1]), np.abs(r(shp[1])) + 0.5, r(shp[1]), r(shp[1])], [0, 3, 4])
          for shp in ((32, 256, 4, 4), (32, 512, 2, 2))],
    ]
    return cases


def _runners(case, torch, rng):
    """{row label: (fastdl callable, torch callable)} for one case."""
    fdin = [fd.tensor(a) for a in case.inputs]
    thin = [torch.from_numpy(a.copy()) for a in case.inputs]
    out = {"fwd": (lambda: case.fd_fn(*fdin), lambda: case.torch_fn(*thin))}
    if case.grad is None:
        return out
    fdg = [fd.tensor(a, requires_grad=(i in case.grad)) for i, a in enumerate(case.inputs)]
    thg = [torch.from_numpy(a.copy()).requires_grad_(i in case.grad) for i, a in enumerate(case.inputs)]
    with fd.no_grad():
        shape = tuple(case.fd_fn(*fdin).shape)
    g = _rand(rng, shape)
    grads = {"fwd+bwd": (fd.tensor(g), torch.from_numpy(g))}
    if case.expanded and len(shape) >= 1:
        row = _rand(rng, (1,) * (len(shape) - 1) + shape[-1:])
        grads["fwd+bwd expanded g"] = (fd.tensor(row).expand(*shape), torch.from_numpy(row).expand(*shape))
    leaves_fd = [fdg[i] for i in case.grad]
    leaves_th = [thg[i] for i in case.grad]

    def step(fn, ins, leaves, gy):
        def run():
            for t in leaves:
                t.grad = None
            fn(*ins).backward(gy)
        return run

    for label, (gf, gt) in grads.items():
        out[label] = (step(case.fd_fn, fdg, leaves_fd, gf), step(case.torch_fn, thg, leaves_th, gt))
    return out


def main(argv=()):
    torch = try_torch()
    if torch is None:
        print("fastdl bench ops: PyTorch is not installed; nothing to compare against")
        return
    argv = list(argv)
    torch.set_num_threads(fd.get_num_threads())
    only = argv[argv.index("--only") + 1] if "--only" in argv else None
    rounds, target = (3, 0.01) if "--quick" in argv else (7, 0.03)
    rng = np.random.default_rng(0)
    fd.manual_seed(0)
    torch.manual_seed(0)
    print(f"ops, float32, {fd.get_num_threads()} threads (ratio = torch time / fastdl time)")
    worst = []
    for case in _cases(torch, rng):
        if only and only not in case.name:
            continue
        for label, (f, g) in _runners(case, torch, rng).items():
            t = interleaved({"fastdl": f, "torch": g}, rounds=rounds, target_s=target, warmup=1)
            ratio = t["torch"] / t["fastdl"]
            worst.append((ratio, f"{case.name} {label}"))
            print(f"  {case.name:42s} {label:19s} fastdl {t['fastdl'] * 1e3:8.3f} ms  "
                  f"torch {t['torch'] * 1e3:8.3f} ms  {ratio:6.2f}x", flush=True)
    if worst:
        below = sorted(w for w in worst if w[0] < 1.0)
        print(f"{len(worst)} rows, {len(below)} below 1.0x" + (f"; slowest: {below[0][1]} {below[0][0]:.2f}x" if below else ""))
