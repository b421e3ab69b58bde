"""Distribution: the base class every family derives from, and the helpers they share.

A distribution holds a batch of independent distributions (`batch_shape`), each over events of
`event_shape`. `sample(sample_shape)` returns `sample_shape + batch_shape + event_shape`;
`log_prob(value)` returns one number per event, shape `sample_shape + batch_shape`.
"""
import math
import numbers

import fastdl as fd
from fastdl.distributions import constraints

__all__ = ["Distribution"]


class lazy_property:
    """A property computed on first use and then stored on the instance (probs from logits and back)."""

    def __init__(self, fn):
        self.fn, self.__doc__, self.__name__ = fn, fn.__doc__, fn.__name__

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        value = self.fn(instance)
        instance.__dict__[self.fn.__name__] = value
        return value


def broadcast_all(*values):
    """Broadcast tensors and Python numbers together; numbers take the tensors' dtype (default dtype if none)."""
    tensors = [v for v in values if isinstance(v, fd.Tensor)]
    for v in values:
        if not isinstance(v, (fd.Tensor, numbers.Number)):
            raise TypeError(f"Input arguments must all be instances of numbers.Number or fastdl.Tensor, got {type(v)}")
    if tensors:
        dtype, device = tensors[0].dtype, tensors[0].device
    else:
        dtype, device = fd.get_default_dtype(), None
    values = [v if isinstance(v, fd.Tensor) else fd.tensor(v, dtype=dtype, device=device) for v in values]
    shape = tuple(fd.broadcast_shapes(*(tuple(v.shape) for v in values)))
    return tuple(v if tuple(v.shape) == shape else v.expand(shape) for v in values)


def sum_rightmost(value, dim):
    """Sum over the `dim` rightmost dims."""
    return value.reshape(tuple(value.shape[:value.ndim - dim]) + (-1,)).sum(-1) if dim > 0 else value


def probs_to_logits(probs, is_binary=False):
    eps = fd.finfo(probs.dtype).eps
    p = probs.clamp(min=eps, max=1 - eps)
    return fd.log(p) - fd.log1p(-p) if is_binary else fd.log(p)


def logits_to_probs(logits, is_binary=False):
    return fd.sigmoid(logits) if is_binary else fd.softmax(logits, -1)


def _size(shape):
    if isinstance(shape, int):
        shape = (shape,)
    return fd.Size(tuple(shape))


class Distribution:
    has_rsample = False
    has_enumerate_support = False
    _validate_args = __debug__

    @staticmethod
    def set_default_validate_args(value):
        if value not in (True, False):
            raise ValueError("set_default_validate_args expects a bool")
        Distribution._validate_args = value

    def __init__(self, batch_shape=(), event_shape=(), validate_args=None):
        self._batch_shape, self._event_shape = _size(batch_shape), _size(event_shape)
        if validate_args is not None:
            self._validate_args = validate_args
        if self._validate_args:
            for name, constraint in self.arg_constraints.items():
                if constraints.is_dependent(constraint) or name not in self.__dict__:
                    continue  # dependent, or a lazily derived parameter (probs from logits)
                value = getattr(self, name)
                if not bool(constraint.check(value).all()):
                    raise ValueError(
                        f"Expected parameter {name} ({type(value).__name__} of shape {tuple(value.shape)}) of "
                        f"distribution {self!r} to satisfy the constraint {constraint!r}, but found invalid "
                        f"values:\n{value}")

    # ---- shapes ----------------------------------------------------------------------------------------------
    @property
    def batch_shape(self):
        return self._batch_shape

    @property
    def event_shape(self):
        return self._event_shape

    def _extended_shape(self, sample_shape=()):
        return fd.Size(tuple(_size(sample_shape)) + tuple(self._batch_shape) + tuple(self._event_shape))

    def expand(self, batch_shape, _instance=None):
        """A view of this distribution with its parameters broadcast to `batch_shape`.

        The default expands every parameter named in `arg_constraints` (event dims from the constraint)."""
        batch_shape = _size(batch_shape)
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        for name, constraint in self.arg_constraints.items():
            if name in self.__dict__:
                value = self.__dict__[name]
                event = tuple(value.shape[value.ndim - constraint.event_dim:]) if constraint.event_dim else ()
                new.__dict__[name] = value.expand(tuple(batch_shape) + event)
        new._batch_shape = batch_shape
        return new

    # ---- what each family defines ------------------------------------------------------------------------------
    @property
    def arg_constraints(self):
        raise NotImplementedError

    @property
    def support(self):
        raise NotImplementedError

    @property
    def mean(self):
        raise NotImplementedError(f"{type(self).__name__} does not implement mean")

    @property
    def mode(self):
        raise NotImplementedError(f"{type(self).__name__} does not implement mode")

    @property
    def variance(self):
        raise NotImplementedError(f"{type(self).__name__} does not implement variance")

    @property
    def stddev(self):
        return self.variance.sqrt()

    def sample(self, sample_shape=()):
        """Draw without gradient (a reparameterised family reuses rsample under no_grad)."""
        with fd.no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape=()):
        raise NotImplementedError(f"{type(self).__name__} has no reparameterised sampler (has_rsample=False)")

    def sample_n(self, n):
        return self.sample((n,))

    def log_prob(self, value):
        raise NotImplementedError

    def cdf(self, value):
        raise NotImplementedError

    def icdf(self, value):
        raise NotImplementedError

    def enumerate_support(self, expand=True):
        raise NotImplementedError

    def entropy(self):
        raise NotImplementedError

    def perplexity(self):
        return fd.exp(self.entropy())

    # ---- helpers for the families --------------------------------------------------------------------------
    def _validate_sample(self, value):
        """torch's check: value is a tensor whose right-most dims match event_shape, broadcastable with the
        batch, and inside the support."""
        if not isinstance(value, fd.Tensor):
            raise ValueError("The value argument to log_prob must be a Tensor")
        n_event = len(self._event_shape)
        if tuple(value.shape[value.ndim - n_event:] if n_event else ()) != tuple(self._event_shape):
            raise ValueError(f"The right-most size of value must match event_shape: {tuple(value.shape)} vs "
                             f"{tuple(self._event_shape)}.")
        actual, expected = tuple(value.shape[:value.ndim - n_event]), tuple(self._batch_shape)
        for i, j in zip(reversed(actual), reversed(expected)):
            if i != 1 and j != 1 and i != j:
                raise ValueError(f"Value is not broadcastable with batch_shape+event_shape: {tuple(value.shape)} "
                                 f"vs {tuple(self._extended_shape())}.")
        support = self.support
        if not bool(support.check(value).all()):
            raise ValueError(
                f"Expected value argument ({type(value).__name__} of shape {tuple(value.shape)}) to be within the "
                f"support ({support!r}) of the distribution {self!r}, but found invalid values:\n{value}")

    def _new_noise(self, fn, shape, like):
        return fn(tuple(shape), dtype=like.dtype, device=like.device)

    def __repr__(self):
        parts = []
        for name in self.arg_constraints:
            if name in self.__dict__:
                v = self.__dict__[name]
                parts.append(f"{name}: {v if v.numel() == 1 else fd.Size(tuple(v.shape))}")
        return f"{type(self).__name__}({', '.join(parts)})"


_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
