"""Sampling composed from the generator's uniform and normal draws (fd.manual_seed or a
generator= makes them repeatable, fastdl/random.py): bernoulli, multinomial, normal with tensor
mean / std, binomial, poisson, and the in-place Tensor fills random_, exponential_, geometric_, log_normal_,
cauchy_, uniform_, normal_."""
import builtins
import math

from fastdl import _C
from fastdl._C import Tensor
from fastdl._lazy import np
from fastdl.random import takes_generator


def _uniform(shape, dt, device):
    # (0, 1): rand draws [0, 1); 1 - u keeps logs of it finite
    return 1.0 - _C.rand(tuple(shape), dt, device)


@takes_generator
def bernoulli(input, p=None, *, generator=None):
    """0 / 1 draws, each 1 with the probability in input (or with p, a number, in input's shape)."""
    if p is None:
        return _C.bernoulli(input)
    return _C.bernoulli(_C.full(tuple(input.shape), builtins.float(p), input.dtype, input.device))


@takes_generator
def bernoulli_(self, p=0.5, *, generator=None):
    """Fill self with 0 / 1 draws, 1 with probability p (a number, or a tensor broadcast to self)."""
    dt = self.dtype if self.dtype.is_floating_point else _C.dtype.float32
    probs = p.expand(*self.shape).to(dt) if isinstance(p, Tensor) else _C.full(tuple(self.shape), builtins.float(p), dt,
                                                                                   self.device)
    return _fill(self, _C.bernoulli(probs))


@takes_generator
def uniform_(self, from_=0.0, to=1.0, *, generator=None):
    return self._uniform_native(from_, to)


@takes_generator
def normal_(self, mean=0.0, std=1.0, *, generator=None):
    return self._normal_native(mean, std)


@takes_generator
def multinomial(input, num_samples, replacement=False, *, generator=None):
    """num_samples category indices per row of non-negative weights (1-D or 2-D input): with
    replacement by inverting the cumulative distribution, without by the exponential race (the
    smallest E / w of independent exponentials E, i.e. successive weighted draws)."""
    if input.ndim not in (1, 2):
        raise ValueError(f"multinomial: input must be 1-D or 2-D; got {input.ndim}-D")
    if not input.dtype.is_floating_point:
        raise TypeError(f"multinomial: input must be a float tensor; got dtype {input.dtype}")
    if num_samples <= 0:
        raise ValueError(f"multinomial: num_samples must be positive; got {num_samples}")
    w = (input.reshape(1, -1) if input.ndim == 1 else input).detach().to(_C.dtype.float64)
    rows, n = w.shape
    if builtins.bool((w < 0).any()) or not builtins.bool(w.isfinite().all()):
        raise ValueError("multinomial: weights must be finite and non-negative")
    positive = (w > 0).sum(1)
    if builtins.bool((positive == 0).any()):
        raise ValueError("multinomial: every row needs a positive weight sum")
    if not replacement and num_samples > builtins.int(positive.min().item()):
        raise ValueError(f"multinomial: cannot draw {num_samples} samples without replacement from a row with "
                         f"{builtins.int(positive.min().item())} positive weights")
    if replacement:
        cdf = _C.cumsum(w, 1)
        cdf = cdf / cdf.narrow(1, n - 1, 1)
        u = _C.rand((rows, num_samples), _C.dtype.float64, w.device)
        from fastdl._statistics import searchsorted
        idx = _C.clamp(searchsorted(cdf.contiguous(), u.contiguous(), right=True), 0, n - 1)
        # a category of zero weight shares its cdf value with its left neighbour: right=True skips it
    else:
        e = -_C.log(_uniform((rows, n), _C.dtype.float64, w.device))
        keys = _C.where(w > 0, e / w, builtins.float("inf"))
        from fastdl._sorting import argsort
        idx = argsort(keys, 1).narrow(1, 0, num_samples)
    return idx.reshape(-1) if input.ndim == 1 else idx


@takes_generator
def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None, requires_grad=False):
    """mean + std * N(0, 1) with mean and / or std tensors (broadcast) or floats with size;
    differentiable in mean and std (the draw is fixed)."""
    mt, st = isinstance(mean, Tensor), isinstance(std, Tensor)
    if st and builtins.bool((std < 0).any()):
        raise ValueError("normal: std must be non-negative")
    if not st and std < 0:
        raise ValueError(f"normal: std must be non-negative; got {std}")
    if not (mt or st):
        if size is None:
            raise TypeError("normal: give size when mean and std are numbers")
        from fastdl._tensor import _dtype_or_default, _dev
        dv = _dev(device) or _C.device("cpu")
        out = _C.randn(tuple(size), _dtype_or_default(dtype), dv) * builtins.float(std) + builtins.float(mean)
        return out.requires_grad_(True) if requires_grad else out
    like = mean if mt else std
    if mt and st:
        shape = tuple(np.broadcast_shapes(tuple(mean.shape), tuple(std.shape)))
    else:
        shape = tuple(like.shape)
    if not like.dtype.is_floating_point:
        raise TypeError(f"normal: mean and std must be float tensors; got {like.dtype}")
    return mean + std * _C.randn(shape, like.dtype, like.device)


@takes_generator
def binomial(count, prob, generator=None):
    """Binomial(count, prob) draws, elementwise (count and prob broadcast; numpy's BTPE sampler, O(1) per draw,
    seeded from the generator); float counts out, in prob's dtype."""
    if not prob.dtype.is_floating_point:
        raise TypeError(f"binomial: prob must be a float tensor; got dtype {prob.dtype}")
    n = count.detach().cpu().to(_C.dtype.float64).numpy() if isinstance(count, Tensor) else np.float64(count)
    p = prob.detach().cpu().to(_C.dtype.float64).numpy()
    if (n < 0).any() or (n != np.round(n)).any():
        raise ValueError("binomial: count must hold non-negative integers")
    if (p < 0).any() or (p > 1).any() or np.isnan(p).any():
        raise ValueError("binomial: prob must lie in [0, 1]")
    n, p = np.broadcast_arrays(n, p)
    rng = np.random.default_rng(_C._random_u64())
    out = rng.binomial(n.astype(np.int64), p).astype(np.float64)
    return _C.from_numpy(np.ascontiguousarray(out)).to(prob.dtype).to(prob.device)


@takes_generator
def poisson(input, generator=None):
    """Poisson draws with the rates in input (numpy's sampler, seeded from the global generator)."""
    if not input.dtype.is_floating_point:
        raise TypeError(f"poisson: input must be a float tensor; got dtype {input.dtype}")
    rates = input.detach().cpu()
    rates = rates.to(_C.dtype.float64).numpy()
    if (rates < 0).any() or np.isnan(rates).any():
        raise ValueError("poisson: rates must be non-negative")
    rng = np.random.default_rng(_C._random_u64())
    out = rng.poisson(rates).astype(np.float64)
    return _C.from_numpy(np.ascontiguousarray(out)).to(input.dtype).to(input.device)


def _fill(t, values):
    with _no_grad():
        t.copy_(values.to(t.dtype))
    return t


class _no_grad:
    def __enter__(self):
        self.prev = _C.is_grad_enabled()
        _C.set_grad_enabled(False)

    def __exit__(self, *e):
        _C.set_grad_enabled(self.prev)


@takes_generator
def random_(self, from_=0, to=None, *, generator=None):
    """Integers uniform over [from, to - 1]; without to, over [0, 2^mantissa] for floats (the largest
    range of exactly representable integers) or the dtype's range for integers."""
    if to is None:
        if from_ != 0:  # random_(to): one argument is the upper bound
            from_, to = 0, from_
        else:
            to = {_C.dtype.float64: 2 ** 53, _C.dtype.float32: 2 ** 24, _C.dtype.float16: 2 ** 11,
                  _C.dtype.bfloat16: 2 ** 8, _C.dtype.int32: 2 ** 31 - 1, _C.dtype.int64: 2 ** 63 - 1,
                  _C.dtype.int16: 2 ** 15 - 1, _C.dtype.int8: 2 ** 7 - 1, _C.dtype.uint8: 2 ** 8,
                  _C.dtype.bool: 2}[self.dtype] + (1 if self.dtype.is_floating_point else 0)
    if to <= from_:
        raise ValueError(f"random_: expects 'from' < 'to'; got from={from_}, to={to}")
    return _fill(self, _C.randint(from_, to, tuple(self.shape), _C.dtype.int64, self.device))


@takes_generator
def exponential_(self, lambd=1.0, *, generator=None):
    if lambd <= 0:
        raise ValueError(f"exponential_: lambd must be positive; got {lambd}")
    u = _uniform(self.shape, _C.dtype.float64, self.device)
    return _fill(self, -_C.log(u) / lambd)


@takes_generator
def geometric_(self, p, *, generator=None):
    """Trials up to the first success (1, 2, ...) with success probability p."""
    if not 0 < p < 1:
        raise ValueError(f"geometric_: p must be in (0, 1); got {p}")
    u = _uniform(self.shape, _C.dtype.float64, self.device)
    return _fill(self, _C.ceil(_C.log(u) / math.log1p(-p)).clamp(1, None))


@takes_generator
def log_normal_(self, mean=1.0, std=2.0, *, generator=None):
    if std <= 0:
        raise ValueError(f"log_normal_: std must be positive; got {std}")
    return _fill(self, _C.exp(_C.randn(tuple(self.shape), _C.dtype.float64, self.device) * std + mean))


@takes_generator
def cauchy_(self, median=0.0, sigma=1.0, *, generator=None):
    u = _uniform(self.shape, _C.dtype.float64, self.device)
    return _fill(self, median + sigma * _C.tan(math.pi * (u - 0.5)))
