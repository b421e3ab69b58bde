"""Weight averaging with PyTorch's names and semantics: stochastic weight averaging (SWA,
Izmailov et al. 2018) and exponential moving averages (EMA, as diffusion models and GANs keep).

    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.999))
    ... optimizer.step(); ema.update_parameters(model)
    swa = AveragedModel(model); scheduler = SWALR(optimizer, swa_lr=0.05)
    ... swa.update_parameters(model); scheduler.step()
    update_bn(loader, swa)   # BatchNorm statistics of the averaged weights

AveragedModel holds a deep copy of the model and `n_averaged`; the first update copies the
model's parameters, later ones fold them in: SWA the running mean a + (p - a) / (n + 1), EMA
decay a + (1 - decay) p. Buffers follow the model unless use_buffers=True averages them too."""
import copy
import itertools
import math

import fastdl as fd
from fastdl import no_grad
from fastdl.nn.modules.module import Module
from fastdl.nn.modules.normalization import _BatchNorm
from fastdl.optim.lr_scheduler import LRScheduler

__all__ = ["AveragedModel", "SWALR", "update_bn", "get_ema_multi_avg_fn", "get_swa_multi_avg_fn", "get_ema_avg_fn",
           "get_swa_avg_fn"]


def _check_decay(decay):
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"Invalid decay value {decay} provided. Please provide a value in [0,1] range.")


def get_ema_multi_avg_fn(decay=0.999):
    """In place over lists: ema = decay ema + (1 - decay) p."""
    _check_decay(decay)

    def ema_update(ema_params, params, num_averaged):
        with no_grad():
            for a, p in zip(ema_params, params):
                a.copy_(a * decay + p * (1 - decay) if not a.is_floating_point() else a + (p - a) * (1 - decay))
    return ema_update


def get_swa_multi_avg_fn():
    """In place over lists: a = a + (p - a) / (n + 1), the running mean."""
    def swa_update(averaged_params, params, num_averaged):
        n = float(num_averaged)
        with no_grad():
            for a, p in zip(averaged_params, params):
                a.copy_(a + (p - a) / (n + 1))
    return swa_update


def get_ema_avg_fn(decay=0.999):
    """One tensor: returns decay ema + (1 - decay) p."""
    _check_decay(decay)

    def ema_update(ema_param, current_param, num_averaged):
        return decay * ema_param + (1 - decay) * current_param
    return ema_update


def get_swa_avg_fn():
    """One tensor: returns a + (p - a) / (n + 1)."""
    def swa_update(averaged_param, current_param, num_averaged):
        return averaged_param + (current_param - averaged_param) / (float(num_averaged) + 1)
    return swa_update


class AveragedModel(Module):
    """A running average of a model's parameters (and buffers with use_buffers), held in a deep
    copy that forward() runs. avg_fn(avg, p, n) returns one averaged tensor; multi_avg_fn(avgs,
    ps, n) updates lists in place; neither: SWA's running mean."""

    def __init__(self, model, device=None, avg_fn=None, multi_avg_fn=None, use_buffers=False):
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise ValueError("AveragedModel: only one of avg_fn and multi_avg_fn should be provided")
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", fd.tensor(0, dtype=fd.int64, device=device))
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def _tensors(self, model):
        return list(itertools.chain(model.parameters(), model.buffers()) if self.use_buffers else model.parameters())

    def update_parameters(self, model):
        mine, theirs = self._tensors(self.module), self._tensors(model)
        if len(mine) != len(theirs):
            raise ValueError(f"AveragedModel.update_parameters: the model has {len(theirs)} tensors to average, the "
                             f"averaged copy {len(mine)}")
        n = int(self.n_averaged.item())
        with no_grad():
            avg = [a.detach() for a in mine]
            cur = [p.detach().to(a.device) for a, p in zip(avg, theirs)]
            if n == 0:
                for a, p in zip(avg, cur):
                    a.copy_(p)
            elif self.avg_fn is not None:
                for a, p in zip(avg, cur):
                    a.copy_(self.avg_fn(a, p, self.n_averaged))
            else:
                groups = {}  # one call per dtype, as PyTorch groups its foreach updates
                for a, p in zip(avg, cur):
                    groups.setdefault((str(a.device), a.dtype), ([], []))
                    groups[(str(a.device), a.dtype)][0].append(a)
                    groups[(str(a.device), a.dtype)][1].append(p)
                update = self.multi_avg_fn or get_swa_multi_avg_fn()
                for a_list, p_list in groups.values():
                    update(a_list, p_list, self.n_averaged)
            if not self.use_buffers:  # buffers follow the model
                for b, mb in zip(self.module.buffers(), model.buffers()):
                    b.copy_(mb.detach().to(b.device))
            self.n_averaged.add_(1)


def update_bn(loader, model, device=None):
    """Recompute every BatchNorm's running statistics with one pass over loader (its batches, or
    their first elements) in training mode, as a cumulative average (momentum None)."""
    momenta = {}
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.reset_running_stats()
            momenta[m] = m.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for m in momenta:
        m.momentum = None
    with no_grad():
        for batch in loader:
            if isinstance(batch, (list, tuple)):
                batch = batch[0]
            if device is not None:
                batch = batch.to(device)
            model(batch)
    for m, momentum in momenta.items():
        m.momentum = momentum
    model.train(was_training)


class SWALR(LRScheduler):
    """Anneals each group's lr to its swa_lr over anneal_epochs steps ('cos' or 'linear'), then
    holds it."""

    def __init__(self, optimizer, swa_lr, anneal_epochs=10, anneal_strategy="cos", last_epoch=-1):
        n = len(optimizer.param_groups)
        if isinstance(swa_lr, (list, tuple)):
            if len(swa_lr) != n:
                raise ValueError(f"swa_lr must have the same length as optimizer.param_groups. swa_lr has "
                                 f"{len(swa_lr)} values, param_groups has {n}.")
            lrs = list(swa_lr)
        else:
            lrs = [swa_lr] * n
        for lr, g in zip(lrs, optimizer.param_groups):
            g["swa_lr"] = lr
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must by one of 'cos' or 'linear', instead got {anneal_strategy}")
        self.anneal_func = self._cosine_anneal if anneal_strategy == "cos" else self._linear_anneal
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _linear_anneal(t):
        return t

    @staticmethod
    def _cosine_anneal(t):
        return (1 - math.cos(math.pi * t)) / 2

    @staticmethod
    def _get_initial_lr(lr, swa_lr, alpha):
        return swa_lr if alpha == 1 else (lr - alpha * swa_lr) / (1 - alpha)

    def get_lr(self):
        # The lr before annealing is recovered from the current one, so other changes to it carry
        # into the anneal (PyTorch's recursion).
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_alpha = self.anneal_func(max(0, min(1, (step - 1) / max(1, self.anneal_epochs))))
        prev = [self._get_initial_lr(g["lr"], g["swa_lr"], prev_alpha) for g in self.optimizer.param_groups]
        alpha = self.anneal_func(max(0, min(1, step / max(1, self.anneal_epochs))))
        return [g["swa_lr"] * alpha + lr * (1 - alpha) for g, lr in zip(self.optimizer.param_groups, prev)]

    def state_dict(self):
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "anneal_func")}
