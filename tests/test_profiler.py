"""fastdl.profiler: every native op and backward node recorded with shapes, nesting and
self/total times, record_function ranges, key_averages tables, Chrome traces, schedules."""
import json

import numpy as np
import pytest

import fastdl as fd
import fastdl.nn.functional as F
from fastdl import profiler


def _step(rng):
    x = fd.tensor(rng.standard_normal((7, 5)).astype(np.float32), requires_grad=True)
    w = fd.tensor(rng.standard_normal((3, 5)).astype(np.float32), requires_grad=True)
    y = F.gelu(F.linear(x, w))
    y.sum().backward()
    return x, w


def test_records_forward_ops_and_backward_nodes(rng):
    with profiler.profile() as prof:
        _step(rng)
    names = [e.name for e in prof.events()]
    for n in ("linear", "gelu", "sum", "GeluBackward0", "SumBackward1", "AccumulateGrad"):
        assert n in names, (n, names)
    kinds = {e.name: e.kind for e in prof.events()}
    assert kinds["linear"] == "op" and kinds["GeluBackward0"] == "backward"
    lin = next(e for e in prof.events() if e.name == "linear")
    assert lin.input_shapes == [[7, 5], [3, 5], []]   # bias undefined: an empty shape


def test_nesting_self_and_total_times(rng):
    with profiler.profile() as prof:
        with profiler.record_function("outer"):
            with profiler.record_function("inner"):
                _step(rng)
    evs = prof.events()
    outer = next(e for e in evs if e.name == "outer")
    inner = next(e for e in evs if e.name == "inner")
    assert inner.parent is outer and outer.kind == "user"
    for e in evs:
        assert 0 <= e.self_cpu_time_total <= e.cpu_time_total + 1e-9
        kids = sum(c.cpu_time_total for c in e.children)
        assert e.self_cpu_time_total == pytest.approx(max(e.cpu_time_total - kids, 0.0), abs=1e-6)
        for c in e.children:
            assert e.start_us <= c.start_us and c.end_us <= e.end_us
    # the ops a backward node runs nest under it
    gb = next(e for e in evs if e.name == "GeluBackward0")
    assert gb.children and all(c.kind == "op" for c in gb.children)
    # the self times partition the whole profile
    top = sum(e.cpu_time_total for e in evs if e.parent is None)
    assert evs.self_cpu_time_total == pytest.approx(top, rel=1e-6)


def test_key_averages_and_shapes(rng):
    with profiler.profile(record_shapes=True) as prof:
        for n in (4, 4, 9):
            a = fd.tensor(rng.standard_normal((n, 3)).astype(np.float32))
            fd.exp(a)
    avg = {r.key: r for r in prof.key_averages()}
    assert avg["exp"].count == 3
    by_shape = [r for r in prof.key_averages(group_by_input_shape=True) if r.key == "exp"]
    assert sorted((r.count, r.input_shapes) for r in by_shape) == [(1, [[9, 3]]), (2, [[4, 3]])]
    fd.exp(a)  # outside the profile: not counted
    t = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=1)
    assert "Self CPU %" in t and "exp" in t and len(t.splitlines()) == 3 + 1 + 2
    ts = prof.key_averages(group_by_input_shape=True).table(sort_by="count")
    assert "Input Shapes" in ts and "[[4, 3]]" in ts
    with pytest.raises(ValueError, match="sort_by"):
        prof.key_averages().table(sort_by="bogus")


def test_nothing_recorded_outside_a_profile(rng):
    with profiler.profile() as prof:
        pass
    _step(rng)
    assert len(prof.events()) == 0
    with profiler.record_function("alone"):   # a range with no active profile is a no-op
        _step(rng)
    assert not fd._C._profiler_active()


def test_profiles_do_not_nest():
    with profiler.profile():
        with pytest.raises(RuntimeError, match="already active"):
            with profiler.profile():
                pass


def test_record_function_decorator(rng):
    @profiler.record_function("my_layer")
    def layer(x):
        return fd.tanh(x)

    with profiler.profile() as prof:
        layer(fd.tensor(rng.standard_normal(5).astype(np.float32)))
    ev = next(e for e in prof.events() if e.name == "my_layer")
    assert [c.name for c in ev.children] == ["tanh"]


def test_chrome_trace(tmp_path, rng):
    with profiler.profile() as prof:
        with profiler.record_function("step"):
            _step(rng)
    path = prof.export_chrome_trace(str(tmp_path / "trace.json"))
    data = json.load(open(path))
    xs = [e for e in data["traceEvents"] if e["ph"] == "X"]
    assert len(xs) == len(prof.events())
    names = {e["name"] for e in xs}
    assert {"step", "linear", "GeluBackward0"} <= names
    for e in xs:
        assert e["dur"] >= 0 and e["ts"] >= 0 and "Input Dims" in e["args"]


def test_schedule_matches_torch():
    torch = pytest.importorskip("torch")
    for kw in (dict(wait=1, warmup=1, active=2), dict(wait=0, warmup=2, active=3, repeat=2),
               dict(wait=2, warmup=0, active=1, repeat=1, skip_first=3)):
        ours, theirs = profiler.schedule(**kw), torch.profiler.schedule(**kw)
        assert [ours(i).name for i in range(20)] == [theirs(i).name for i in range(20)], kw


def test_schedule_records_active_steps_and_calls_on_trace_ready(rng):
    ready = []
    sched = profiler.schedule(wait=1, warmup=1, active=2, repeat=1)
    x = fd.tensor(rng.standard_normal(4).astype(np.float32))
    with profiler.profile(schedule=sched, on_trace_ready=lambda p: ready.append(p.key_averages())) as prof:
        for i in range(6):
            for _ in range(i + 1):   # step i runs i + 1 exps
                fd.exp(x)
            prof.step()
    assert len(ready) == 1
    exp = {r.key: r for r in ready[0]}["exp"]
    assert exp.count == 3 + 4      # steps 2 and 3 are the active ones
    assert {r.key: r for r in ready[0]}["ProfilerStep*"].count == 2


def test_train_profile_flag(capsys):
    pytest.importorskip("sklearn")
    from fastdl.train.main import main
    main(["--epochs", "1", "--profile", "2", "--no-progress", "--out", "/tmp/fastdl_test_profile"])
    out = capsys.readouterr().out
    # the table's top 20 rows by self time depend on timing (under the sanitizers the cheap
    # AccumulateGrad rows fell out of it): check the header and the step's dominant op
    assert "profile of 2 training steps" in out and "Self CPU" in out and "linear" in out


def test_train_profile_flag_on_a_language_model(tmp_path, capsys, monkeypatch):
    # The LM trainer profiles training steps only: the periodic evaluations that fall in the
    # window are skipped, so the profile counts exactly the profiled steps' ops. (Counted from
    # key_averages, not the printed top-20 table, whose rows depend on timing.)
    from fastdl.train import main as train_main
    seen = []
    report = train_main._StepProfiler.report

    def keep(self, rows=20):
        seen.append({e.key: e.count for e in self.prof.key_averages()})
        report(self, rows)
    monkeypatch.setattr(train_main._StepProfiler, "report", keep)
    text = tmp_path / "t.txt"
    text.write_text("to be or not to be, that is the question. " * 40)
    assert train_main.main(["--model", "gpt", "--data", str(text), "--steps", "10", "--context", "8",
                            "--batch-size", "4", "--d-model", "16", "--n-layer", "1", "--n-head", "2",
                            "--eval-iters", "2", "--sample-tokens", "5", "--profile", "3", "--no-progress",
                            "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "profile of 3 training steps" in out and "final val loss" in out
    counts, = seen
    # one loss per step (no evaluation batches); AdamW once per parameter group (decay, no decay)
    assert counts["ProfilerStep*"] == 3 and counts["cross_entropy"] == 3 and counts["AdamW"] == 6
