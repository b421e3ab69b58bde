"""fastdl.Generator and fastdl.random (torch.Generator's and torch.random's API): a generator's
stream repeats after manual_seed and set_state, is independent of the global stream and of other
generators, and reaches every op that takes generator= (creation, in-place fills, the composed
samplers, nn.init, the data pipeline); the global state round-trips exactly; bad states and
generators are refused by name."""
import numpy as np
import pytest

import fastdl as fd
from fastdl.data import DataLoader, TensorDataset, random_split


def _gen(seed):
    return fd.Generator().manual_seed(seed)


# Every op that takes generator=, as a function of it (each makes a fresh tensor to fill).
OPS = {
    "rand": lambda g: fd.rand(3, 5, generator=g),
    "randn": lambda g: fd.randn(7, generator=g, dtype=fd.float64),
    "randint": lambda g: fd.randint(-4, 9, (11,), generator=g),
    "randperm": lambda g: fd.randperm(13, generator=g),
    "normal": lambda g: fd.normal(fd.arange(5.0), 2.0, generator=g),
    "normal_size": lambda g: fd.normal(1.0, 3.0, (6,), generator=g),
    "bernoulli": lambda g: fd.bernoulli(fd.full((17,), 0.4), generator=g),
    "multinomial": lambda g: fd.multinomial(fd.arange(1.0, 9.0), 4, generator=g),
    "poisson": lambda g: fd.poisson(fd.full((9,), 3.5), generator=g),
    "uniform_": lambda g: fd.empty(9).uniform_(-2, 5, generator=g),
    "normal_": lambda g: fd.empty(9).normal_(1, 2, generator=g),
    "random_": lambda g: fd.empty(9).random_(0, 100, generator=g),
    "exponential_": lambda g: fd.empty(9).exponential_(2.0, generator=g),
    "geometric_": lambda g: fd.empty(9).geometric_(0.3, generator=g),
    "log_normal_": lambda g: fd.empty(9).log_normal_(0.0, 0.5, generator=g),
    "cauchy_": lambda g: fd.empty(9).cauchy_(generator=g),
    "bernoulli_": lambda g: fd.empty(9).bernoulli_(0.5, generator=g),
    "Tensor.bernoulli": lambda g: fd.full((9,), 0.5).bernoulli(generator=g),
    "Tensor.multinomial": lambda g: fd.ones(6).multinomial(6, generator=g),
    "init.uniform_": lambda g: fd.nn.init.uniform_(fd.empty(4, 5), -1, 1, generator=g),
    "init.normal_": lambda g: fd.nn.init.normal_(fd.empty(4, 5), generator=g),
    "init.xavier_uniform_": lambda g: fd.nn.init.xavier_uniform_(fd.empty(4, 5), generator=g),
    "init.xavier_normal_": lambda g: fd.nn.init.xavier_normal_(fd.empty(4, 5), generator=g),
    "init.kaiming_uniform_": lambda g: fd.nn.init.kaiming_uniform_(fd.empty(4, 5), generator=g),
    "init.kaiming_normal_": lambda g: fd.nn.init.kaiming_normal_(fd.empty(4, 5), generator=g),
    "init.trunc_normal_": lambda g: fd.nn.init.trunc_normal_(fd.empty(4, 5), generator=g),
    "init.orthogonal_": lambda g: fd.nn.init.orthogonal_(fd.empty(4, 5), generator=g),
    "init.sparse_": lambda g: fd.nn.init.sparse_(fd.empty(6, 5), 0.5, generator=g),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_op_follows_its_generator(name):
    op = OPS[name]
    fd.manual_seed(11)
    a = op(_gen(123)).numpy()
    after_global = fd.rand(4).numpy()  # the global stream did not move for the generator's draws
    fd.manual_seed(999)  # the global seed does not matter to a generator's draws
    b = op(_gen(123)).numpy()
    np.testing.assert_array_equal(a, b)
    fd.manual_seed(11)
    np.testing.assert_array_equal(fd.rand(4).numpy(), after_global)
    if name not in ("randperm", "Tensor.multinomial"):  # a permutation of few may repeat; the values below do not
        c = op(_gen(124)).numpy()
        assert not np.array_equal(a, c), "another seed gives another draw"


def test_generator_stream_continues_and_repeats():
    g = _gen(7)
    a, b = fd.randn(50, generator=g), fd.randn(50, generator=g)
    assert not fd.equal(a, b)  # the stream moves on between calls
    g.manual_seed(7)
    assert fd.equal(a, fd.randn(50, generator=g))
    state = g.get_state()
    c = fd.rand(20, generator=g)
    fd.rand(5, generator=g)
    g.set_state(state)
    assert fd.equal(c, fd.rand(20, generator=g))
    assert state.dtype == fd.uint8 and tuple(state.shape) == (32,)
    assert g.initial_seed() == 7


def test_generators_are_independent():
    g1, g2 = _gen(5), _gen(5)
    a = fd.randn(30, generator=g1)
    fd.randn(30, generator=_gen(6))  # another generator between: no effect on g2
    fd.randn(30)  # nor the global one
    assert fd.equal(a, fd.randn(30, generator=g2))


def test_fresh_generator_and_seed():
    g = fd.Generator()
    assert g.initial_seed() == 67280421310721  # PyTorch's default seed
    assert fd.equal(fd.rand(8, generator=g), fd.rand(8, generator=_gen(67280421310721)))
    s = g.seed()
    assert isinstance(s, int) and g.initial_seed() == s
    assert str(g.device) == "cpu" and "Generator" in repr(g)
    assert g.manual_seed(1) is g


def test_global_generator_state_round_trip():
    fd.manual_seed(2024)
    fd.rand(3)
    state = fd.get_rng_state()
    a = fd.randn(40)
    b = fd.rand(7)
    fd.set_rng_state(state)
    assert fd.equal(a, fd.randn(40)) and fd.equal(b, fd.rand(7))
    # get_rng_state leaves the stream where it was
    fd.manual_seed(3)
    x = fd.rand(10)
    fd.manual_seed(3)
    fd.get_rng_state()
    assert fd.equal(x, fd.rand(10))
    assert fd.default_generator.get_state().tolist() == fd.get_rng_state().tolist()
    assert fd.random.get_rng_state().tolist() == fd.get_rng_state().tolist()


def test_manual_seed_returns_default_generator_and_wraps_negative():
    assert fd.manual_seed(4) is fd.default_generator
    assert fd.initial_seed() == 4 and fd.random.initial_seed() == 4
    fd.manual_seed(-1)
    assert fd.initial_seed() == 2 ** 64 - 1
    a = fd.rand(5)
    fd.manual_seed(2 ** 64 - 1)
    assert fd.equal(a, fd.rand(5))
    with pytest.raises(ValueError, match="manual_seed"):
        fd.manual_seed(2 ** 64)
    fd.manual_seed("7")  # int() of it, as torch.manual_seed
    assert fd.initial_seed() == 7
    with pytest.raises(TypeError, match="manual_seed"):
        fd.manual_seed("seven")
    with pytest.raises(TypeError, match="Generator.manual_seed"):
        fd.Generator().manual_seed(1.5)


def test_fork_rng_restores_global_stream():
    fd.manual_seed(8)
    a = fd.rand(6)
    fd.manual_seed(8)
    with fd.random.fork_rng():
        fd.randn(100)
    assert fd.equal(a, fd.rand(6))
    with fd.random.fork_rng(enabled=False):
        fd.rand(1)
    fd.manual_seed(8)
    fd.rand(1)
    b = fd.rand(6)
    fd.manual_seed(8)
    with fd.random.fork_rng(enabled=False):
        fd.rand(1)
    assert fd.equal(b, fd.rand(6))


def test_generator_survives_an_error_inside_the_draw():
    fd.manual_seed(1)
    before = fd.get_rng_state()
    with pytest.raises(ValueError):
        fd.multinomial(fd.tensor([-1.0, 2.0]), 1, generator=_gen(3))
    assert fd.get_rng_state().tolist() == before.tolist()


def test_bad_generator_and_state_are_refused():
    with pytest.raises(TypeError, match="randn: generator must be a fastdl.Generator; got int"):
        fd.randn(2, generator=3)
    with pytest.raises(TypeError, match="uniform_"):
        fd.empty(2).uniform_(generator="g")
    with pytest.raises(TypeError, match="set_rng_state"):
        fd.set_rng_state(fd.ones(32))
    with pytest.raises(ValueError, match="set_rng_state: expected a state of 32 bytes; got 3"):
        fd.set_rng_state(fd.ones(3, dtype=fd.uint8))
    with pytest.raises(ValueError, match="all-zero"):
        fd.Generator().set_state(fd.zeros(32, dtype=fd.uint8))
    with pytest.raises(TypeError, match="Generator.set_state"):
        fd.Generator().set_state([0] * 32)


def test_data_pipeline_takes_a_generator():
    ds = TensorDataset(fd.arange(40))

    def order(loader):
        return np.concatenate([b[0].numpy() for b in loader])

    g = _gen(0)
    loader = DataLoader(ds, batch_size=8, shuffle=True, generator=g)
    e1, e2 = order(loader), order(loader)
    assert sorted(e1.tolist()) == list(range(40))
    assert not np.array_equal(e1, e2)  # each epoch draws from the generator
    g.manual_seed(0)
    np.testing.assert_array_equal(order(loader), e1)  # reseeding repeats the epochs
    a = [s.indices for s in random_split(ds, [10, 30], generator=_gen(1))]
    b = [s.indices for s in random_split(ds, [10, 30], generator=_gen(1))]
    assert a == b and sorted(a[0] + a[1]) == list(range(40))
    # without a generator, random_split follows the global seed
    fd.manual_seed(2)
    c = random_split(ds, [0.5, 0.5])[0].indices
    fd.manual_seed(2)
    assert random_split(ds, [0.5, 0.5])[0].indices == c


def test_cuda_seeding_names_exist():
    fd.cuda.manual_seed_all(0)  # no GPU: nothing happens, as in PyTorch
    fd.cuda.manual_seed(0)
    assert isinstance(fd.cuda.initial_seed(), int)
    assert tuple(fd.cuda.get_rng_state().shape) == (32,)


def test_generator_pickles_and_copies():
    import copy
    import pickle
    g = _gen(9)
    fd.rand(3, generator=g)
    for clone in (copy.deepcopy(g), pickle.loads(pickle.dumps(g))):
        assert clone is not g and clone.initial_seed() == 9
        assert fd.equal(fd.rand(5, generator=clone), fd.rand(5, generator=copy.deepcopy(g)))
    snap = pickle.loads(pickle.dumps(fd.default_generator))  # a Generator holding the global state
    assert isinstance(snap, fd.Generator) and snap.get_state().tolist() == fd.get_rng_state().tolist()


def test_fresh_process_seeds_from_entropy():
    import subprocess
    import sys
    code = "import fastdl as fd; print(fd.initial_seed(), fd.rand(1).item())"
    a, b = (subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
            for _ in range(2))
    assert a != b  # as PyTorch: unseeded runs differ


def test_like_ops_take_a_generator():
    for op in (lambda g: fd.rand_like(fd.ones(4), generator=g), lambda g: fd.randn_like(fd.ones(4), generator=g),
               lambda g: fd.randint_like(fd.ones(4), 100, generator=g)):
        assert fd.equal(op(_gen(3)), op(_gen(3)))
    if not fd.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            fd.Generator("cuda")
