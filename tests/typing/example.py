"""A user's training script, type-checked by tests/test_typing.py (mypy over fastdl's stubs and
annotations). It is also run, so it must stay a working program."""
from __future__ import annotations

import fastdl as fd
import fastdl.nn as nn
import fastdl.nn.functional as F
from fastdl.optim import SGD, AdamW, Optimizer


class MLP(nn.Module):
    def __init__(self, d_in: int, d_hidden: int, n_classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d_in, d_hidden), nn.ReLU(), nn.Dropout(0.1))
        self.head = nn.Linear(d_hidden, n_classes)

    def forward(self, x: fd.Tensor) -> fd.Tensor:
        return self.head(self.body(x))


def train_step(model: nn.Module, opt: Optimizer, x: fd.Tensor, y: fd.Tensor) -> float:
    opt.zero_grad()
    logits = model(x)
    loss = F.cross_entropy(logits, y, label_smoothing=0.05)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return float(loss.item())


def accuracy(model: nn.Module, x: fd.Tensor, y: fd.Tensor) -> float:
    model.eval()
    with fd.no_grad():
        pred = model(x).argmax(dim=1)
    model.train()
    return float((pred == y).float().mean().item())


def main() -> None:
    fd.manual_seed(0)
    x = fd.randn(64, 8)
    w: fd.Tensor = fd.randn(8, 3, dtype=fd.float32)
    y = (x @ w).argmax(dim=1)
    model = MLP(8, 32, 3)
    opt: Optimizer = AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
    losses = [train_step(model, opt, x, y) for _ in range(30)]
    assert losses[-1] < losses[0]
    assert accuracy(model, x, y) > 0.5

    sgd = SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
    train_step(model, sgd, x, y)

    state = model.state_dict()
    clone = MLP(8, 32, 3)
    clone.load_state_dict(state)
    n_params = sum(p.numel() for p in clone.parameters())
    names = [name for name, _ in clone.named_parameters()]
    assert n_params == 8 * 32 + 32 + 32 * 3 + 3 and "head.weight" in names

    t = fd.zeros(2, 3) + fd.ones(2, 3) * 2.0 - 1
    t = fd.cat([t, fd.full((1, 3), 4.0)], dim=0).reshape(3, 3).T
    s = fd.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    (s * s).sum().backward()
    g = s.grad
    assert g is not None and g.shape == (2, 2)
    z = fd.arange(6, dtype=fd.int64).view(2, 3)
    size: tuple[int, ...] = z.size()
    rows: int = z.size(0)
    first: list = z.tolist()
    arr = t.numpy()
    assert size == (2, 3) and rows == 2 and len(first) == 2 and arr.shape == (3, 3)
    u = fd.from_numpy(arr).to(fd.float64).clamp(min=0.0)
    assert u.dtype == fd.float64 and fd.linspace(0.0, 1.0, 5).numel() == 5
    assert fd.eye(3).sum().item() == 3.0 and fd.zeros_like(u).shape == u.shape


if __name__ == "__main__":
    main()
