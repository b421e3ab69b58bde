"""Whole training steps of real models, fastdl against the same model in PyTorch eager, from
the same initial weights, interleaved step by step in one process. Each step is split into
forward (model + loss), backward and optimizer (step + zero_grad); the figures are medians
over steps and the ratio is PyTorch time / fastdl time (> 1: fastdl is faster).

    fastdl bench models [--steps N] [--only NAME[,NAME]] [--quick]
    fastdl bench models --train-gpt [--iters 2000]   whole nanoGPT-recipe training runs of the
              character-level GPT on tiny-shakespeare, fastdl and PyTorch alternating in chunks
              of 100 iterations: wall time of each and validation loss

Models (each written once below against a framework handle, so both sides run the same code):
    mlp       784-256-256-10 MLP, batch 128, AdamW
    char-gpt  character-level GPT of ../shared/data/README.md: 4 layers, 4 heads, 128 wide,
              context 64, batch 12, vocab 65, AdamW; attention composed from q @ k^T, an
              additive causal mask, softmax and @ v (no fused attention)
    gcn       2-layer GCN (16 hidden) on Cora (../shared/data/cora.npz, or a random graph of
              its size when absent), full-batch, Adam; PyTorch side: cached normalised CSR
              adjacency and torch.sparse.mm (the fastest PyTorch route)
    gat       2-layer GAT (8 heads x 8 hidden, then 1 head) on the same graph, Adam; PyTorch
              side: per-edge scores, scatter_reduce softmax and index_add aggregation
    gpt       fastdl.models.GPT, the same character-level GPT (tied head, F.scaled_dot_product_attention
              with is_causal); PyTorch side: the same module structure on torch's fused SDPA
    vit       fastdl.models.ViT on 8x8 one-channel images (digits size), 2x2 patches, 64 wide,
              4 pre-LN layers, 4 heads, batch 64, AdamW; PyTorch side: torch.nn.TransformerEncoderLayer
    lenet     fastdl.models.lenet5 (ReLU, max pool) on 28x28 one-channel images, batch 256, AdamW
    resnet18  fastdl.models.resnet18 (torchvision's layout: 7x7 stride-2 stem, max pool, BasicBlocks
              [2, 2, 2, 2], 64-512 channels), 10 classes, batch 32 of 3x64x64, SGD (issue 9's bar);
              PyTorch side for both: the same source on torch.nn (fastdl.models.twin)
    convnext  fastdl.models.convnext_tiny (4x4 stride-4 stem, 7x7 depthwise blocks on 16x16 to 2x2
              planes, LayerNorm, GELU), 10 classes, batch 16 of 3x64x64, AdamW; PyTorch: its twin
    effnet    fastdl.models.efficientnet_b0 (MBConv: depthwise 3x3 / 5x5, stride 2 among them,
              squeeze-excitation, SiLU), 10 classes, batch 16 of 3x64x64, AdamW, dropout and
              stochastic depth off (both sides then train alike); PyTorch: its twin
    mamba     character-level Mamba LM (fastdl.models.MambaLM): 2 layers, d_model 128, d_state 16,
              context 64, batch 12, vocab 65, AdamW; PyTorch side: conv1d and the sequential
              selective scan of `fastdl bench scan` (mamba_ssm's CPU path)
    dcgan     DCGAN (Radford et al.) on 3x32x32 images, latent 100, width 64, batch 32: transposed
              4x4 convolutions up (1x1 -> 32x32), strided convolutions down; a step trains the
              discriminator on real and generated images and the generator through it, Adam
    lstm-lm   character-level LSTM LM (fastdl.models.RNNLM): embedding 256, 1 LSTM layer of hidden
              256, linear head, batch 32, sequence 64, vocab 65, AdamW (issue 14's bar); PyTorch
              side: the same modules on torch.nn.LSTM
    gru-lm    the same with a GRU layer
"""
import math
import os
import statistics
import time
import warnings

import numpy as np

import fastdl as fd
from fastdl.bench.harness import try_torch


class _Framework:
    """The names a model needs, from either fastdl or torch."""

    def __init__(self, lib, nn, F, optim):
        self.lib, self.nn, self.F, self.optim = lib, nn, F, optim


def _fastdl():
    import fastdl.nn as nn
    import fastdl.nn.functional as F
    return _Framework(fd, nn, F, fd.optim)


def _torch(torch):
    return _Framework(torch, torch.nn, torch.nn.functional, torch.optim)


def build_mlp(fw, sizes=(784, 256, 256, 10)):
    nn = fw.nn
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def build_char_gpt(fw, vocab=65, ctx=64, width=128, heads=4, layers=4):
    """nanoGPT's block structure: pre-LayerNorm, composed causal self-attention, GELU MLP."""
    nn, F, lib = fw.nn, fw.F, fw.lib

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
            self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
            self.fc, self.out = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

        def attn(self, x, mask):
            B, T, C = x.shape
            q, k, v = self.qkv(x).split(C, dim=2)
            q = q.view(B, T, heads, C // heads).transpose(1, 2)
            k = k.view(B, T, heads, C // heads).transpose(1, 2)
            v = v.view(B, T, heads, C // heads).transpose(1, 2)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // heads)) + mask[:T, :T]
            y = F.softmax(att, dim=-1) @ v
            return self.proj(y.transpose(1, 2).contiguous().view(B, T, C))

        def forward(self, x, mask):
            x = x + self.attn(self.ln1(x), mask)
            return x + self.out(F.gelu(self.fc(self.ln2(x))))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok, self.pos = nn.Embedding(vocab, width), nn.Embedding(ctx, width)
            self.blocks = nn.ModuleList([Block() for _ in range(layers)])
            self.ln_f, self.head = nn.LayerNorm(width), nn.Linear(width, vocab)
            causal = np.triu(np.full((ctx, ctx), -np.inf, dtype=np.float32), 1)
            self.mask = lib.tensor(causal)

        def forward(self, idx):
            T = idx.shape[1]
            x = self.tok(idx) + self.pos(lib.arange(T))
            for b in self.blocks:
                x = b(x, self.mask)
            return self.head(self.ln_f(x))

    return GPT()


def _mlp_case(fw, rng_seed=0, batch=128):
    model = build_mlp(fw)
    rng = np.random.default_rng(rng_seed)
    x = fw.lib.tensor(rng.standard_normal((batch, 784)).astype(np.float32))
    y = fw.lib.tensor(rng.integers(0, 10, batch))
    return model, lambda m: fw.F.cross_entropy(m(x), y)


def _gpt_case(fw, rng_seed=0, batch=12, ctx=64):
    model = build_char_gpt(fw, ctx=ctx)
    rng = np.random.default_rng(rng_seed)
    idx = rng.integers(0, 65, (batch, ctx + 1))
    x, y = fw.lib.tensor(idx[:, :-1]), fw.lib.tensor(idx[:, 1:])
    return model, lambda m: fw.F.cross_entropy(m(x).reshape(-1, 65), y.reshape(-1))


def _graph_data():
    """Cora from ../shared/data (FASTDL_DATA overrides the folder), else a random graph of its size."""
    here = os.path.dirname(os.path.abspath(__file__))
    for folder in (os.environ.get("FASTDL_DATA", ""), os.path.join("..", "shared", "data"),
                   os.path.join(here, "..", "..", "..", "..", "shared", "data")):
        path = os.path.join(folder, "cora.npz")
        if folder and os.path.exists(path):
            with np.load(path) as d:
                x = d["x"].astype(np.float32)
                return x / np.maximum(x.sum(1, keepdims=True), 1), d["y"], d["edge_index"], d["train_mask"]
    rng = np.random.default_rng(0)
    n, e = 2708, 10556
    src, dst = rng.integers(0, n, e // 2), rng.integers(0, n, e // 2)
    ei = np.concatenate([np.stack([src, dst]), np.stack([dst, src])], 1)
    x = (rng.random((n, 1433)) < 0.013).astype(np.float32)
    return x / np.maximum(x.sum(1, keepdims=True), 1), rng.integers(0, 7, n), ei, np.arange(n) < 140


def _self_loops(ei, n):
    keep = ei[0] != ei[1]
    loops = np.arange(n)
    return np.concatenate([ei[:, keep], np.stack([loops, loops])], 1)


def _torch_gnn_layers(torch):
    """GCN and GAT layers in plain PyTorch with the parameter names and layouts of fastdl's."""
    tnn, tF = torch.nn, torch.nn.functional

    class GCNConv(tnn.Module):
        def __init__(self, cin, cout, adj):
            super().__init__()
            self.weight, self.bias, self.adj = tnn.Parameter(torch.empty(cout, cin)), tnn.Parameter(torch.zeros(cout)), adj

        def forward(self, x, edge_index):
            return torch.sparse.mm(self.adj, x @ self.weight.t()) + self.bias

    class GATConv(tnn.Module):
        def __init__(self, cin, cout, heads, concat, ei):
            super().__init__()
            self.H, self.C, self.concat, self.ei = heads, cout, concat, ei
            self.weight = tnn.Parameter(torch.empty(heads * cout, cin))
            self.att_src, self.att_dst = tnn.Parameter(torch.empty(1, heads, cout)), tnn.Parameter(torch.empty(1, heads, cout))
            self.bias = tnn.Parameter(torch.zeros(heads * cout if concat else cout))

        def forward(self, x, edge_index):
            n, (src, dst) = x.shape[0], self.ei
            h = (x @ self.weight.t()).view(n, self.H, self.C)
            e = tF.leaky_relu((h * self.att_src).sum(-1)[src] + (h * self.att_dst).sum(-1)[dst], 0.2)
            idx = dst[:, None].expand(-1, self.H)
            emax = torch.full((n, self.H), -float("inf")).scatter_reduce(0, idx, e, "amax", include_self=True)
            ex = torch.exp(e - emax[dst])
            alpha = ex / torch.zeros(n, self.H).index_add(0, dst, ex)[dst]
            out = torch.zeros(n, self.H, self.C).index_add(0, dst, h[src] * alpha[..., None])
            return (out.reshape(n, -1) if self.concat else out.mean(1)) + self.bias
    return GCNConv, GATConv


def _gnn_case(kind):
    def case(fw):
        x, y, ei, train = _graph_data()
        n = x.shape[0]
        lib = fw.lib
        if lib is fd:
            conv = {"gcn": lambda i, o, last: fw.nn.GCNConv(i, o, cached=True),
                    "gat": lambda i, o, last: fw.nn.GATConv(i, o, heads=1 if last else 8, concat=not last)}[kind]
        else:
            GCN, GAT = _torch_gnn_layers(lib)
            full = _self_loops(ei, n)
            if kind == "gcn":
                deg = np.bincount(full[1], minlength=n).astype(np.float64)
                w = (deg[full[0]] * deg[full[1]]) ** -0.5
                with warnings.catch_warnings():  # torch's beta-state notices for sparse CSR
                    warnings.simplefilter("ignore")
                    coo = lib.sparse_coo_tensor(lib.tensor(full[::-1].copy()), lib.tensor(w, dtype=lib.float32), (n, n))
                    adj = coo.coalesce().to_sparse_csr()
                conv = lambda i, o, last: GCN(i, o, adj)  # noqa: E731
            else:
                t_ei = lib.tensor(full)
                conv = lambda i, o, last: GAT(i, o, 1 if last else 8, not last, t_ei)  # noqa: E731
        hidden = 16 if kind == "gcn" else 8
        mid = hidden * (1 if kind == "gcn" else 8)
        act = fw.F.relu if kind == "gcn" else fw.F.elu

        class Net(fw.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1, self.conv2 = conv(x.shape[1], hidden, False), conv(mid, 7, True)

            def forward(self, x, edge_index):
                return self.conv2(act(self.conv1(x, edge_index)), edge_index)

        X, EI = lib.tensor(x), lib.tensor(ei)
        Y, idx = lib.tensor(y[train]), lib.tensor(np.nonzero(train)[0])
        return Net(), lambda m: fw.F.cross_entropy(m(X, EI)[idx], Y)
    return case


def _torch_mamba_lm(torch, vocab, d_model, layers, d_state=16, d_conv=4, expand=2):
    """mamba_ssm's MambaLMHeadModel in plain PyTorch (slow path: conv1d, then the sequential scan
    of fastdl.bench.scan.torch_scan), with fastdl.models.MambaLM's parameter names."""
    from fastdl.bench.scan import torch_scan
    tnn, tF = torch.nn, torch.nn.functional
    d_inner, dt_rank = expand * d_model, math.ceil(d_model / 16)

    class Mamba(tnn.Module):
        def __init__(self):
            super().__init__()
            self.A_log, self.D = tnn.Parameter(torch.zeros(d_inner, d_state)), tnn.Parameter(torch.ones(d_inner))
            self.in_proj = tnn.Linear(d_model, 2 * d_inner, bias=False)
            self.conv1d = tnn.Conv1d(d_inner, d_inner, d_conv, padding=d_conv - 1, groups=d_inner)
            self.x_proj = tnn.Linear(d_inner, dt_rank + 2 * d_state, bias=False)
            self.dt_proj = tnn.Linear(dt_rank, d_inner)
            self.out_proj = tnn.Linear(d_inner, d_model, bias=False)

        def forward(self, h):
            L = h.shape[1]
            x, z = self.in_proj(h).chunk(2, dim=-1)
            x = tF.silu(self.conv1d(x.transpose(1, 2))[..., :L])
            dt, B, C = self.x_proj(x.transpose(1, 2)).split([dt_rank, d_state, d_state], dim=-1)
            delta = (dt @ self.dt_proj.weight.t()).transpose(1, 2)
            y = torch_scan(torch, x, delta, -torch.exp(self.A_log), B.transpose(1, 2), C.transpose(1, 2), self.D,
                           z.transpose(1, 2), self.dt_proj.bias)
            return self.out_proj(y.transpose(1, 2))

    class Block(tnn.Module):
        def __init__(self):
            super().__init__()
            self.norm, self.mixer = tnn.RMSNorm(d_model, eps=1e-5), Mamba()

        def forward(self, x):
            return x + self.mixer(self.norm(x))

    class LM(tnn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = tnn.Embedding(vocab, d_model)
            self.layers = tnn.ModuleList([Block() for _ in range(layers)])
            self.norm_f, self.lm_head = tnn.RMSNorm(d_model, eps=1e-5), tnn.Linear(d_model, vocab, bias=False)
            self.lm_head.weight = self.embedding.weight

        def forward(self, idx):
            x = self.embedding(idx)
            for b in self.layers:
                x = b(x)
            return self.lm_head(self.norm_f(x))
    return LM()


def _mamba_case(fw, rng_seed=0, batch=12, ctx=64, vocab=65, d_model=128, layers=2, d_state=16):
    """fastdl.models.MambaLM (native selective scan) against its PyTorch twin."""
    if fw.lib is fd:
        from fastdl.models import MambaLM
        model = MambaLM(vocab, d_model, layers, d_state=d_state)
    else:
        model = _torch_mamba_lm(fw.lib, vocab, d_model, layers, d_state=d_state)
    rng = np.random.default_rng(rng_seed)
    idx = rng.integers(0, vocab, (batch, ctx + 1))
    x, y = fw.lib.tensor(idx[:, :-1]), fw.lib.tensor(idx[:, 1:])
    return model, lambda m: fw.F.cross_entropy(m(x).reshape(-1, vocab), y.reshape(-1))


def _torch_gpt(torch, vocab_size, block_size=64, n_layer=4, n_head=4, n_embd=128, bias=True):
    """fastdl.models.GPT written in plain PyTorch (nanoGPT's module, torch's fused SDPA), with
    its parameter names."""
    tnn, tF = torch.nn, torch.nn.functional

    class Attn(tnn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn, self.c_proj = tnn.Linear(n_embd, 3 * n_embd, bias=bias), tnn.Linear(n_embd, n_embd, bias=bias)

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = (t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in self.c_attn(x).split(C, dim=2))
            y = tF.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.c_proj(y.transpose(1, 2).reshape(B, T, C))

    class MLP(tnn.Module):
        def __init__(self):
            super().__init__()
            self.c_fc = tnn.Linear(n_embd, 4 * n_embd, bias=bias)
            self.c_proj = tnn.Linear(4 * n_embd, n_embd, bias=bias)

        def forward(self, x):
            return self.c_proj(tF.gelu(self.c_fc(x)))

    class Block(tnn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.attn = tnn.LayerNorm(n_embd, bias=bias), Attn()
            self.ln_2, self.mlp = tnn.LayerNorm(n_embd, bias=bias), MLP()

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class GPT(tnn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = tnn.Embedding(vocab_size, n_embd), tnn.Embedding(block_size, n_embd)
            self.h = tnn.ModuleList([Block() for _ in range(n_layer)])
            self.ln_f = tnn.LayerNorm(n_embd, bias=bias)
            self.lm_head = tnn.Linear(n_embd, vocab_size, bias=False)
            self.lm_head.weight = self.wte.weight

        def forward(self, idx):
            x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
            for b in self.h:
                x = b(x)
            return self.lm_head(self.ln_f(x))

        def param_groups(self, weight_decay=0.1):
            ps = list(self.parameters())
            return [{"params": [p for p in ps if p.ndim >= 2], "weight_decay": weight_decay},
                    {"params": [p for p in ps if p.ndim < 2], "weight_decay": 0.0}]
    return GPT()


def build_gpt(fw, vocab=65, ctx=64, width=128, heads=4, layers=4):
    if fw.lib is fd:
        from fastdl.models import GPT
        return GPT(vocab, ctx, layers, heads, width)
    return _torch_gpt(fw.lib, vocab, ctx, layers, heads, width)


def _gpt_model_case(fw, rng_seed=0, batch=12, ctx=64, vocab=65):
    model = build_gpt(fw, vocab=vocab, ctx=ctx)
    rng = np.random.default_rng(rng_seed)
    idx = rng.integers(0, vocab, (batch, ctx + 1))
    x, y = fw.lib.tensor(idx[:, :-1]), fw.lib.tensor(idx[:, 1:])
    return model, lambda m: fw.F.cross_entropy(m(x).reshape(-1, vocab), y.reshape(-1))


def build_vit(fw, image=8, patch=2, channels=1, classes=10, dim=64, depth=4, heads=4):
    """fastdl.models.ViT, or its twin from torch.nn.TransformerEncoderLayer (same names)."""
    if fw.lib is fd:
        from fastdl.models import ViT
        return ViT(image, patch, classes, dim, depth, heads, channels=channels)
    torch, tnn = fw.lib, fw.nn
    n = (image // patch) ** 2

    class ViT(tnn.Module):
        def __init__(self):
            super().__init__()
            self.patch_embed = tnn.Linear(channels * patch * patch, dim)
            self.cls_token = tnn.Parameter(torch.zeros(1, 1, dim))
            self.pos_embed = tnn.Parameter(torch.zeros(1, n + 1, dim))
            self.blocks = tnn.ModuleList([tnn.TransformerEncoderLayer(dim, heads, 4 * dim, 0.0, "gelu", 1e-6,
                                                                      batch_first=True, norm_first=True)
                                          for _ in range(depth)])
            self.norm, self.head = tnn.LayerNorm(dim, eps=1e-6), tnn.Linear(dim, classes)

        def forward(self, x):
            B, C, H, W = x.shape
            p = x.reshape(B, C, H // patch, patch, W // patch, patch).permute(0, 2, 4, 1, 3, 5).reshape(B, n, -1)
            t = self.patch_embed(p)
            t = torch.cat([self.cls_token.expand(B, 1, dim), t], 1) + self.pos_embed
            for b in self.blocks:
                t = b(t)
            return self.head(self.norm(t)[:, 0])
    return ViT()


def _rnn_lm_case(cell):
    """fastdl.models.RNNLM against the same three modules (embed, rnn, head) on torch.nn."""
    def case(fw, rng_seed=0, batch=32, ctx=64, vocab=65, hidden=256):
        if fw.lib is fd:
            from fastdl.models import RNNLM
            model = RNNLM(vocab, hidden, n_layer=1, cell=cell)
        else:
            nn = fw.nn

            class TorchRNNLM(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.embed = nn.Embedding(vocab, hidden)
                    self.rnn = getattr(nn, cell.upper())(hidden, hidden, batch_first=True)
                    self.head = nn.Linear(hidden, vocab)

                def forward(self, x):
                    return self.head(self.rnn(self.embed(x))[0])
            model = TorchRNNLM()
        rng = np.random.default_rng(rng_seed)
        idx = rng.integers(0, vocab, (batch, ctx + 1))
        x, y = fw.lib.tensor(idx[:, :-1]), fw.lib.tensor(idx[:, 1:])
        return model, lambda m: fw.F.cross_entropy(m(x).reshape(-1, vocab), y.reshape(-1))
    return case


def _vit_case(fw, rng_seed=0, batch=64):
    model = build_vit(fw)
    rng = np.random.default_rng(rng_seed)
    x = fw.lib.tensor(rng.standard_normal((batch, 1, 8, 8)).astype(np.float32))
    y = fw.lib.tensor(rng.integers(0, 10, batch))
    return model, lambda m: fw.F.cross_entropy(m(x), y)


def build_dcgan(fw, latent=100, image=32, channels=3, width=64):
    """DCGAN's generator and discriminator (Radford et al.: transposed 4x4 convolutions with
    BatchNorm and ReLU up from a 1x1 latent, strided 4x4 convolutions with LeakyReLU(0.2) down),
    as one module so that a step trains both."""
    nn = fw.nn
    n = int(round(math.log2(image))) - 2
    c = width * 2 ** (n - 1)
    g = [nn.ConvTranspose2d(latent, c, 4, 1, 0, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
    for _ in range(n - 1):
        g += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU()]
        c //= 2
    g += [nn.ConvTranspose2d(c, channels, 4, 2, 1, bias=False), nn.Tanh()]
    d = [nn.Conv2d(channels, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2)]
    for _ in range(n - 1):
        d += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2)]
        c *= 2
    d += [nn.Conv2d(c, 1, 4, 1, 0, bias=False)]

    class GAN(nn.Module):
        def __init__(self):
            super().__init__()
            self.G, self.D = nn.Sequential(*g), nn.Sequential(*d)

    return GAN()


def _dcgan_case(fw, rng_seed=0, batch=32, latent=100, image=32):
    """One step trains both networks: the discriminator on real and (detached) generated images,
    the generator through the discriminator (non-saturating loss), one backward, one optimizer."""
    model = build_dcgan(fw, latent, image)
    rng = np.random.default_rng(rng_seed)
    lib, F = fw.lib, fw.F
    real = lib.tensor(np.tanh(rng.standard_normal((batch, 3, image, image))).astype(np.float32))
    z = lib.tensor(rng.standard_normal((batch, latent, 1, 1)).astype(np.float32))
    ones, zeros = lib.ones(batch), lib.zeros(batch)

    def loss(m):
        fake = m.G(z)
        bce = F.binary_cross_entropy_with_logits
        d_loss = bce(m.D(real).reshape(-1), ones) + bce(m.D(fake.detach()).reshape(-1), zeros)
        return d_loss + bce(m.D(fake).reshape(-1), ones)
    return model, loss


def _cnn_case(constructor, batch, shape, classes=10, **kw):
    """fastdl.models.<constructor> against its PyTorch twin (fastdl.models.twin: the same source
    on torch.nn), on a random batch."""
    def case(fw, rng_seed=0):
        if fw.lib is fd:
            import fastdl.models
            model = getattr(fastdl.models, constructor)(num_classes=classes, **kw)
        else:
            from fastdl.models.twin import torch_twin
            model = torch_twin(constructor, fw.lib, num_classes=classes, **kw)
        rng = np.random.default_rng(rng_seed)
        x = fw.lib.tensor(rng.standard_normal((batch,) + shape).astype(np.float32))
        y = fw.lib.tensor(rng.integers(0, classes, batch))
        return model, lambda m: fw.F.cross_entropy(m(x), y)
    return case


MODELS = {"mlp": (_mlp_case, "AdamW", 1e-3), "char-gpt": (_gpt_case, "AdamW", 1e-3),
          "gpt": (_gpt_model_case, "AdamW", 1e-3), "vit": (_vit_case, "AdamW", 1e-3),
          "gcn": (_gnn_case("gcn"), "Adam", 1e-2), "gat": (_gnn_case("gat"), "Adam", 5e-3),
          "mamba": (_mamba_case, "AdamW", 1e-3),
          "lstm-lm": (_rnn_lm_case("lstm"), "AdamW", 1e-3), "gru-lm": (_rnn_lm_case("gru"), "AdamW", 1e-3),
          "lenet": (_cnn_case("lenet5", 256, (1, 28, 28), input_size=28), "AdamW", 1e-3),
          "resnet18": (_cnn_case("resnet18", 32, (3, 64, 64)), "SGD", 1e-2),
          "convnext": (_cnn_case("convnext_tiny", 16, (3, 64, 64)), "AdamW", 1e-3),
          "effnet": (_cnn_case("efficientnet_b0", 16, (3, 64, 64), dropout=0.0, stochastic_depth_prob=0.0),
                     "AdamW", 1e-3),
          "dcgan": (_dcgan_case, "Adam", 2e-4)}


def copy_weights(src, dst, torch):
    """fastdl model -> torch model, parameter by parameter (same names and layouts)."""
    sd = {k: torch.from_numpy(np.array(v.detach().numpy())) for k, v in src.state_dict().items()}
    missing = dst.load_state_dict(sd, strict=False)
    if missing.missing_keys:
        raise RuntimeError(f"bench models: weights missing in the torch model: {missing.missing_keys}")


def make_pair(name, torch):
    case, opt_name, lr = MODELS[name]
    fd.manual_seed(0)
    f_model, f_loss = case(_fastdl())
    t_model, t_loss = case(_torch(torch))
    copy_weights(f_model, t_model, torch)
    f_opt = getattr(fd.optim, opt_name)(f_model.parameters(), lr=lr)
    t_opt = getattr(torch.optim, opt_name)(t_model.parameters(), lr=lr)
    return (f_model, f_loss, f_opt), (t_model, t_loss, t_opt)


def _timed_step(model, loss_fn, opt):
    t0 = time.perf_counter()
    loss = loss_fn(model)
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    opt.step()
    opt.zero_grad()
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2, float(loss.item())


def loss_trajectories(name, torch, steps):
    """Losses of `steps` training steps of the fastdl model and of its PyTorch twin, from the
    same initial weights (what the tests compare: both sides must train alike)."""
    f, t = make_pair(name, torch)
    return [_timed_step(*f)[3] for _ in range(steps)], [_timed_step(*t)[3] for _ in range(steps)]


def run_model(name, torch, steps=60, warmup=5, settle_s=0.01):
    """Interleaved steps, alternating which library goes first. settle_s: a pause before each
    step, so the OpenMP team of the library that ran last (it spins for a while after a parallel
    region) does not take a core from the other's step."""
    f, t = make_pair(name, torch)
    rows = {"fastdl": [], "torch": []}
    for i in range(steps + warmup):
        for key, (m, lf, o) in (("fastdl", f), ("torch", t)) if i % 2 == 0 else (("torch", t), ("fastdl", f)):
            if settle_s:
                time.sleep(settle_s)
            r = _timed_step(m, lf, o)
            if i >= warmup:
                rows[key].append(r)
    out = {}
    for key, rs in rows.items():
        fwd, bwd, opt = (statistics.median(r[j] for r in rs) for j in range(3))
        total = statistics.median(r[0] + r[1] + r[2] for r in rs)
        out[key] = {"forward": fwd, "backward": bwd, "optimizer": opt, "step": total, "loss": rs[-1][3]}
    return out


def train_gpt_race(torch, iters=2000, chunk=100, text=None, seed=0, eval_iters=50, verbose=True):
    """The recipe of `fastdl train --model gpt` (nanoGPT's shakespeare_char, CPU configuration)
    run in fastdl and in PyTorch from the same initial weights on the same batches, alternating
    in chunks of `chunk` iterations so both see the same machine load. Returns the training
    wall time (s) of each side and the validation loss after `iters` iterations (mean over
    `eval_iters` fixed batches of the last 10% of the text)."""
    from fastdl.train.lm import get_batch, load_text, lr_at
    _, chars, data = load_text(text)
    n, V, batch, ctx, lr = int(0.9 * len(data)), len(chars), 12, 64, 1e-3
    train, val = data[:n], data[n:]
    fd.manual_seed(seed)
    sides = {}
    for name, fw in (("fastdl", _fastdl()), ("torch", _torch(torch))):
        model = build_gpt(fw, vocab=V, ctx=ctx)
        if name == "torch":
            copy_weights(sides["fastdl"][1], model, torch)
        opt = fw.optim.AdamW(model.param_groups(0.1), lr=lr, betas=(0.9, 0.99))
        sides[name] = (fw, model, opt)
    rng = np.random.default_rng(seed)
    wall = {"fastdl": 0.0, "torch": 0.0}
    for c0 in range(0, iters, chunk):
        batches = [get_batch(train, rng, batch, ctx) for _ in range(min(chunk, iters - c0))]
        order = ("fastdl", "torch") if (c0 // chunk) % 2 == 0 else ("torch", "fastdl")
        for name in order:
            fw, model, opt = sides[name]
            lib, clip = fw.lib, fw.nn.utils.clip_grad_norm_
            t = time.perf_counter()
            for j, (x, y) in enumerate(batches):
                for g in opt.param_groups:
                    g["lr"] = lr_at(c0 + j, iters, lr)
                loss = fw.F.cross_entropy(model(lib.tensor(x)).reshape(-1, V), lib.tensor(y).reshape(-1))
                loss.backward()
                clip(model.parameters(), 1.0)
                opt.step()
                opt.zero_grad()
            wall[name] += time.perf_counter() - t
        if verbose:
            print(f"  iter {c0 + len(batches):5d}: fastdl {wall['fastdl']:7.1f}s  torch {wall['torch']:7.1f}s",
                  flush=True)
    er = np.random.default_rng(1000 + seed)
    vb = [get_batch(val, er, batch, ctx) for _ in range(eval_iters)]
    out = {}
    for name, (fw, model, _) in sides.items():
        model.eval()
        with (fd.no_grad() if fw.lib is fd else fw.lib.no_grad()):
            ls = [float(fw.F.cross_entropy(model(fw.lib.tensor(x)).reshape(-1, V), fw.lib.tensor(y).reshape(-1)).item())
                  for x, y in vb]
        out[name] = {"wall": wall[name], "val_loss": float(np.mean(ls))}
    return out


def main(argv=()):
    argv = list(argv)
    torch = try_torch()
    if torch is None:
        print("fastdl bench models: PyTorch is not installed; nothing to compare against")
        return
    torch.set_num_threads(fd.get_num_threads())
    if "--train-gpt" in argv:
        iters = int(argv[argv.index("--iters") + 1]) if "--iters" in argv else 2000
        print(f"character-level GPT (4 layers, 4 heads, 128 wide, context 64, batch 12), {iters} iterations of "
              f"nanoGPT's recipe on tiny-shakespeare, {fd.get_num_threads()} threads, fastdl and PyTorch "
              f"alternating every 100 iterations")
        r = train_gpt_race(torch, iters)
        f, t = r["fastdl"], r["torch"]
        print(f"  training wall time: fastdl {f['wall']:.1f}s  torch {t['wall']:.1f}s  ({t['wall'] / f['wall']:.2f}x)")
        print(f"  validation loss:    fastdl {f['val_loss']:.4f}  torch {t['val_loss']:.4f}")
        return
    steps = 12 if "--quick" in argv else 60
    if "--steps" in argv:
        steps = int(argv[argv.index("--steps") + 1])
    names = list(MODELS)
    if "--only" in argv:
        names = argv[argv.index("--only") + 1].split(",")
    print(f"training steps, {fd.get_num_threads()} threads, median of {steps} interleaved steps "
          f"(ratio = torch time / fastdl time)")
    for name in names:
        r = run_model(name, torch, steps=steps)
        print(f"  {name}  (loss after {steps + 5} steps: fastdl {r['fastdl']['loss']:.4f}, torch {r['torch']['loss']:.4f})")
        for part in ("step", "forward", "backward", "optimizer"):
            a, b = r["fastdl"][part], r["torch"][part]
            print(f"    {part:10s} fastdl {a * 1e3:8.3f} ms  torch {b * 1e3:8.3f} ms  {b / a:6.2f}x")
