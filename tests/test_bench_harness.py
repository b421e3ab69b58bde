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
    assert calls["slow"] == 2  # the calibration call and one timed call
    assert calls["fast"] > 4  # calibrated batches in every round
    assert t["slow"] >= 0.03 > t["fast"]


def test_interleaved_repeats_candidates_under_the_slow_threshold():
    n = {"a": 0}

    def a():
        n["a"] += 1
        time.sleep(0.002)

    t = interleaved({"a": a}, rounds=3, target_s=0.001, warmup=1, slow_s=10.0)
    assert n["a"] >= 1 + 4  # calibration, then warmup + 3 rounds
    assert 0.002 <= t["a"] < 0.5
