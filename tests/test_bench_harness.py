"""The benchmark harness (fastdl.bench.harness): interleaved rounds, median per call, and a
candidate too slow to repeat timed once instead of rounds + warmup times."""
import time

from fastdl.bench.harness import interleaved


def test_interleaved_times_each_candidate_and_a_slow_one_once():
    calls = {"fast": 0, "slow": 0}

    def fast():
        calls["fast"] += 1

    def slow():
        calls["slow"] += 1
        time.sleep(0.03)

    t = interleaved({"fast": fast, "slow": slow}, rounds=3, target_s=0.001, warmup=1, slow_s=0.02)
    assert set(t) == {"fast", "slow"}
    assert calls["slow"] == 2  # the first call and one timed call
    assert calls["fast"] > 4  # calibrated batches in every round
    assert t["slow"] >= 0.03 > t["fast"]


def test_interleaved_repeats_candidates_under_the_slow_threshold():
    n = {"a": 0}

    def a():
        n["a"] += 1
        time.sleep(0.002)

    t = interleaved({"a": a}, rounds=3, target_s=0.001, warmup=1, slow_s=10.0)
    assert n["a"] >= 2 + 4  # first call, calibration, then warmup + 3 rounds
    assert 0.002 <= t["a"] < 0.5


def test_interleaved_leaves_one_time_work_of_the_first_call_out():
    # A first call that does one-time work (fastdl's GEMM measures its blocking once per machine,
    # ~2 s) must neither mark the candidate slow nor reach the figures.
    n = {"a": 0}

    def a():
        n["a"] += 1
        time.sleep(0.05 if n["a"] == 1 else 0.001)

    t = interleaved({"a": a}, rounds=3, target_s=0.002, warmup=1, slow_s=0.02)
    assert n["a"] >= 1 + 1 + 4  # first call, calibration, warmup + 3 rounds
    assert 0.001 <= t["a"] < 0.02
