"""fastdl.testing.assert_close / make_tensor: torch.testing's tolerances, containers and
messages (the messages compared with PyTorch's own when it is installed)."""
import math

import numpy as np
import pytest

import fastdl as fd
from fastdl.testing import assert_close, make_tensor


def _message(fn):
    with pytest.raises(AssertionError) as e:
        fn()
    return str(e.value)


def test_default_tolerances_per_dtype():
    assert_close(fd.tensor([1.0, 2.0]), fd.tensor([1.0 + 1e-6, 2.0]))  # float32: atol 1e-5
    with pytest.raises(AssertionError):
        assert_close(fd.tensor([1.0, 2.0]), fd.tensor([1.0 + 1e-4, 2.0]))
    assert_close(fd.tensor([1.0], dtype=fd.float64), fd.tensor([1.0 + 5e-8], dtype=fd.float64))
    with pytest.raises(AssertionError):
        assert_close(fd.tensor([1.0], dtype=fd.float64), fd.tensor([1.0 + 1e-6], dtype=fd.float64))
    with pytest.raises(AssertionError, match="Tensor-likes are not equal!"):  # integers: exact
        assert_close(fd.tensor([1, 2]), fd.tensor([1, 3]))
    assert_close(fd.tensor([1.0, 2.0]), fd.tensor([1.5, 2.0]), rtol=0, atol=0.5)
    with pytest.raises(ValueError, match="Both 'rtol' and 'atol' must be either specified or omitted"):
        assert_close(fd.ones(2), fd.ones(2), rtol=1e-3)


def test_attributes_nan_inf_and_containers():
    msg = _message(lambda: assert_close(fd.ones(2, 2), fd.ones(3)))
    assert msg == "The values for attribute 'shape' do not match: (2, 2) != (3,)."
    msg = _message(lambda: assert_close(fd.ones(2), fd.ones(2, dtype=fd.float64)))
    assert msg == "The values for attribute 'dtype' do not match: fastdl.float32 != fastdl.float64."
    assert_close(fd.ones(2), fd.ones(2, dtype=fd.float64), check_dtype=False)
    # float32 against a float64 reference: float32's (looser) tolerances, as torch.testing
    assert_close(fd.tensor([1.000001, 2.0]), fd.tensor([1.0, 2.0], dtype=fd.float64), check_dtype=False)
    nan = fd.tensor([1.0, math.nan])
    with pytest.raises(AssertionError):
        assert_close(nan, nan)
    assert_close(nan, nan, equal_nan=True)
    assert_close(fd.tensor([math.inf, -math.inf]), fd.tensor([math.inf, -math.inf]))
    assert_close([fd.ones(2), {"a": 1.0}], (fd.ones(2), {"a": 1.0}))
    assert "The failure occurred for item [1]['a']" in _message(
        lambda: assert_close([fd.ones(2), {"a": fd.ones(1)}], [fd.ones(2), {"a": fd.zeros(1)}]))
    assert_close(np.arange(3.0), np.arange(3.0) + 1e-9)
    assert "Scalars are not close!" in _message(lambda: assert_close(1.0, 1.1))
    with pytest.raises(AssertionError, match="custom"):
        assert_close(fd.ones(2), fd.zeros(2), msg="custom")


def test_messages_match_torch():
    torch = pytest.importorskip("torch")
    cases = [([1.0, 2.0, 3.0], [1.0, 2.1, 3.0]), ([0.5, -4.0], [0.5, 4.0])]
    for a, b in cases:
        want = _message(lambda: torch.testing.assert_close(torch.tensor(a), torch.tensor(b)))
        got = _message(lambda: assert_close(fd.tensor(a), fd.tensor(b)))
        assert got.split("\n")[:3] == want.split("\n")[:3]  # header and mismatch count
        assert [line.split(" at index")[1] for line in got.split("\n")[3:5]] == \
               [line.split(" at index")[1] for line in want.split("\n")[3:5]]  # where, and the allowed tolerances
    want = _message(lambda: torch.testing.assert_close(torch.tensor([1, 2]), torch.tensor([1, 3])))
    got = _message(lambda: assert_close(fd.tensor([1, 2]), fd.tensor([1, 3])))
    assert got.split("\n")[:4] == want.split("\n")[:4]


def test_make_tensor():
    fd.manual_seed(0)
    t = make_tensor(30, 40, dtype=fd.float32)
    assert t.shape == (30, 40) and t.dtype == fd.float32 and t.is_contiguous()
    assert -9 <= float(t.min()) and float(t.max()) < 9 and float(t.std()) > 3
    t = make_tensor((50,), dtype=fd.int64, low=-2, high=3, exclude_zero=True)
    assert set(t.tolist()) <= {-2, -1, 1, 2}
    t = make_tensor(4, 5, dtype=fd.float64, noncontiguous=True, requires_grad=True)
    assert t.shape == (4, 5) and not t.is_contiguous() and t.requires_grad
    assert make_tensor((), dtype=fd.bool).dtype == fd.bool
    with pytest.raises(ValueError, match="low \\(3\\) must not exceed high \\(1\\)"):
        make_tensor(2, dtype=fd.float32, low=3, high=1)
