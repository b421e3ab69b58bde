"""fastdl.random: the random generators, with torch.random's API.

Every random op draws one 64-bit key per call from a xoshiro256** generator (csrc/ops/create.cpp)
and fills its elements from counter-based Philox words of that key, on the CPU and on CUDA alike.
`default_generator` is the global one that `fd.manual_seed` seeds. A `Generator` is a stream of its
own: an op given `generator=g` swaps g's 32-byte state in for its draw and back out, so g's draws
are the same whatever else runs, and the global stream does not move.

    g = fd.Generator().manual_seed(0)
    a = fd.randn(3, generator=g)
    g.manual_seed(0)
    assert fd.equal(a, fd.randn(3, generator=g))
"""
import contextlib
import functools
import inspect
import os

from fastdl import _C

_DEFAULT_SEED = 67280421310721  # a fresh Generator's seed (torch.Generator()'s)
_STATE_BYTES = 32


def _as_u64(seed, op):
    """seed as the unsigned 64-bit word it names; negative seeds wrap, as in PyTorch. Generator
    methods take integers only; fd.manual_seed converts with int() first, as torch.manual_seed."""
    if isinstance(seed, bool) or not hasattr(seed, "__index__"):
        raise TypeError(f"{op}: seed must be an integer; got {type(seed).__name__}")
    s = int(seed)
    if not -2 ** 63 <= s < 2 ** 64:
        raise ValueError(f"{op}: seed must be within [-0x8000_0000_0000_0000, 0xffff_ffff_ffff_ffff]; got {s}")
    return s & (2 ** 64 - 1)


def _entropy_seed():
    return int.from_bytes(os.urandom(8), "little") & (2 ** 63 - 1)


def _state_of(seed):
    """The generator state that seed gives (the native seeding, run on the global generator and undone)."""
    saved = _C._rng_state()
    try:
        _C.manual_seed(seed)
        return _C._rng_state()
    finally:
        _C._set_rng_state(saved)


def _state_bytes(new_state, op):
    if not isinstance(new_state, _C.Tensor) or new_state.dtype != _C.dtype.uint8:
        got = f"a {new_state.dtype} tensor" if isinstance(new_state, _C.Tensor) else type(new_state).__name__
        raise TypeError(f"{op}: expected the uint8 tensor get_state / get_rng_state returns; got {got}")
    if new_state.numel() != _STATE_BYTES:
        raise ValueError(f"{op}: expected a state of {_STATE_BYTES} bytes; got {new_state.numel()}")
    b = bytes(new_state.detach().cpu().reshape(-1).tolist())
    if not any(b):
        raise ValueError(f"{op}: an all-zero state is not a valid generator state")
    return b


class Generator:
    """A random stream of its own (torch.Generator): pass it as `generator=` to the random ops,
    nn.init and the data pipeline. A fresh one is seeded with PyTorch's default seed."""

    def __init__(self, device="cpu"):
        self._device = str(device if isinstance(device, _C.device) else _C.device(device))
        if self.device.type == "cuda" and not _C.cuda_is_available():
            raise RuntimeError("Generator: device 'cuda' requested, but CUDA is not available")
        self._state = _state_of(_DEFAULT_SEED)
        self._initial = _DEFAULT_SEED

    def manual_seed(self, seed):
        """Restart the stream from seed; returns the generator."""
        s = _as_u64(seed, "Generator.manual_seed")
        self._state, self._initial = _state_of(s), s
        return self

    def seed(self):
        """Seed from the OS's entropy; returns the seed."""
        s = _entropy_seed()
        self.manual_seed(s)
        return s

    def initial_seed(self):
        return self._initial

    def get_state(self):
        """The state as a uint8 tensor; set_state of it repeats the draws that follow."""
        from fastdl._lazy import np
        return _C.from_numpy(np.frombuffer(self._state, dtype=np.uint8).copy())

    def set_state(self, new_state):
        self._state = _state_bytes(new_state, "Generator.set_state")
        return self

    @property
    def device(self):  # kept as a string: no native object lives as long as the module (nanobind's leak check)
        return _C.device(self._device)

    def __repr__(self):
        return f"<fastdl.Generator device={self.device}>"

    def __reduce__(self):  # pickle and deepcopy: a Generator with the same state
        return _restore, (str(self.device), self._state, self._initial)


def _restore(device, state, initial):
    g = Generator(device)
    g._state, g._initial = state, initial
    return g


class _GlobalGenerator(Generator):
    """The global generator: its state is the native one."""

    def __init__(self):
        self._device = "cpu"
        self._initial = None

    _state = property(lambda self: _C._rng_state(), lambda self, v: _C._set_rng_state(v))

    def manual_seed(self, seed):
        s = _as_u64(seed, "manual_seed")
        _C.manual_seed(s)
        self._initial = s
        return self


default_generator = _GlobalGenerator()
default_generator.manual_seed(_entropy_seed())  # a fresh stream per process until seeded, as PyTorch


@contextlib.contextmanager
def _using(generator, op):
    """Run the block's draws on generator (None: the global one)."""
    if generator is None or generator is default_generator:
        yield
        return
    if not isinstance(generator, Generator):
        raise TypeError(f"{op}: generator must be a fastdl.Generator; got {type(generator).__name__}")
    saved = _C._rng_state()
    _C._set_rng_state(generator._state)
    try:
        yield
    finally:
        generator._state = _C._rng_state()
        _C._set_rng_state(saved)


def takes_generator(fn):
    """Decorate a function with a `generator` parameter: its draws run on that Generator."""
    params = inspect.signature(fn).parameters
    at = list(params).index("generator")
    positional = params["generator"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD

    @functools.wraps(fn)
    def run(*args, **kwargs):
        g = kwargs.get("generator", args[at] if positional and len(args) > at else None)
        if g is None:
            return fn(*args, **kwargs)
        with _using(g, fn.__name__):
            return fn(*args, **kwargs)
    return run


def numpy_rng(generator, op="random"):
    """A numpy Generator for draws made in numpy (the data pipeline): a numpy Generator as it is, an
    int as its seed, a fastdl Generator or None (the global one) giving it a seed drawn from it."""
    from fastdl._lazy import np
    if isinstance(generator, np.random.Generator):
        return generator
    if generator is None or isinstance(generator, Generator):
        with _using(generator, op):
            return np.random.default_rng(_C._random_u64())
    return np.random.default_rng(generator)


def manual_seed(seed):
    """Seed the global generator (seed: anything int() takes, as torch.manual_seed); returns it."""
    try:
        s = int(seed)
    except (TypeError, ValueError):
        raise TypeError(f"manual_seed: seed must be convertible to an integer; got {seed!r}") from None
    return default_generator.manual_seed(s)


def seed():
    """Seed the global generator from the OS's entropy and return the seed."""
    return default_generator.seed()


def initial_seed():
    """The global generator's last seed (drawn from the OS's entropy when fastdl is imported)."""
    return default_generator.initial_seed()


def get_rng_state():
    """The global generator's state, a uint8 tensor; set_rng_state of it repeats the draws that follow."""
    return default_generator.get_state()


def set_rng_state(new_state):
    default_generator._state = _state_bytes(new_state, "set_rng_state")


@contextlib.contextmanager
def fork_rng(devices=None, enabled=True, _caller="fork_rng", _devices_kw="devices", device_type="cuda"):
    """Draws inside the block leave the global generator where it was (CUDA draws included: they
    take their keys from the same generator)."""
    if not enabled:
        yield
        return
    saved = _C._rng_state()
    try:
        yield
    finally:
        _C._set_rng_state(saved)
