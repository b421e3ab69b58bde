"""fastdl.profiler: where a step's time goes, op by op, as torch.profiler shows it.

    with fastdl.profiler.profile(record_shapes=True) as prof:
        with fastdl.profiler.record_function("forward"):
            loss = model(x)
        loss.backward()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    print(prof.key_averages(group_by_input_shape=True).table(sort_by="cpu_time_total"))
    prof.export_chrome_trace("trace.json")      # chrome://tracing or ui.perfetto.dev

Every native op call is recorded (forward ops and the ops a backward runs), each backward
node as `<Op>Backward0`, and `record_function` ranges from Python; ranges nest, so each
event has a total time and a self time (total less its children's). With no profile
active the recording costs one branch per op.
"""
import enum
import json
import os
import threading

from fastdl import _C

__all__ = ["profile", "record_function", "ProfilerActivity", "schedule", "ProfilerAction",
           "tensorboard_trace_handler"]

_KINDS = ("op", "backward", "user")


class ProfilerActivity(enum.Enum):
    CPU = 0
    CUDA = 1


class ProfilerAction(enum.Enum):
    NONE = 0
    WARMUP = 1
    RECORD = 2
    RECORD_AND_SAVE = 3


def schedule(*, wait, warmup, active, repeat=0, skip_first=0):
    """torch.profiler.schedule: skip_first steps, then cycles of wait, warmup and active steps
    (repeat cycles, 0 = forever). Returns step -> ProfilerAction."""
    if min(wait, warmup, repeat, skip_first) < 0 or active < 1:
        raise ValueError(f"schedule: needs wait, warmup, repeat, skip_first >= 0 and active >= 1; got "
                         f"wait={wait}, warmup={warmup}, active={active}, repeat={repeat}, skip_first={skip_first}")
    cycle = wait + warmup + active

    def fn(step):
        if step < skip_first:
            return ProfilerAction.NONE
        step -= skip_first
        if repeat and step // cycle >= repeat:
            return ProfilerAction.NONE
        pos = step % cycle
        if pos < wait:
            return ProfilerAction.NONE
        if pos < wait + warmup:
            return ProfilerAction.WARMUP
        return ProfilerAction.RECORD_AND_SAVE if pos == cycle - 1 else ProfilerAction.RECORD
    return fn


def tensorboard_trace_handler(dir_name, worker_name=None):
    """on_trace_ready handler writing one Chrome trace per active cycle into dir_name."""
    count = [0]

    def handler(prof):
        os.makedirs(dir_name, exist_ok=True)
        name = worker_name or f"{os.uname().nodename}_{os.getpid()}"
        prof.export_chrome_trace(os.path.join(dir_name, f"{name}.{count[0]}.pt.trace.json"))
        count[0] += 1
    return handler


class FunctionEvent:
    """One recorded call: name, input shapes, thread, start/end (us), children, self time."""
    __slots__ = ("id", "name", "kind", "start_us", "end_us", "parent", "thread", "input_shapes", "children",
                 "self_cpu_time_total")

    def __init__(self, i, name, kind, begin_ns, end_ns, parent, thread, shapes, origin_ns):
        self.id, self.name, self.kind = i, name, _KINDS[kind]
        self.start_us = (begin_ns - origin_ns) / 1e3
        self.end_us = (end_ns - origin_ns) / 1e3
        self.parent, self.thread, self.input_shapes = parent, thread, shapes
        self.children = []
        self.self_cpu_time_total = 0.0

    @property
    def cpu_time_total(self):
        return self.end_us - self.start_us

    def __repr__(self):
        return (f"<FunctionEvent {self.name} total={self.cpu_time_total:.1f}us self={self.self_cpu_time_total:.1f}us "
                f"shapes={self.input_shapes}>")


class FunctionEventAvg:
    """Calls of one name (and input shapes, when grouped by them) summed up."""

    def __init__(self, key, input_shapes=None):
        self.key, self.input_shapes = key, input_shapes
        self.count = 0
        self.cpu_time_total = self.self_cpu_time_total = 0.0

    def add(self, ev):
        self.count += 1
        self.cpu_time_total += ev.cpu_time_total
        self.self_cpu_time_total += ev.self_cpu_time_total

    @property
    def cpu_time(self):
        return self.cpu_time_total / max(self.count, 1)

    @property
    def self_cpu_time(self):
        return self.self_cpu_time_total / max(self.count, 1)

    def __repr__(self):
        return (f"<FunctionEventAvg key={self.key} count={self.count} cpu_time_total={self.cpu_time_total:.1f}us "
                f"self_cpu_time_total={self.self_cpu_time_total:.1f}us>")


_SORT_KEYS = {
    "self_cpu_time_total": "self_cpu_time_total", "cpu_time_total": "cpu_time_total", "cpu_time": "cpu_time",
    "self_cpu_time": "self_cpu_time", "count": "count", "calls": "count",
    # no device timing yet: accepted so torch scripts run, ordered by the CPU time
    "cuda_time_total": "cpu_time_total", "self_cuda_time_total": "self_cpu_time_total",
    "device_time_total": "cpu_time_total", "self_device_time_total": "self_cpu_time_total",
}


def _fmt_us(us):
    if us >= 1e6:
        return f"{us / 1e6:.3f}s"
    if us >= 1e3:
        return f"{us / 1e3:.3f}ms"
    return f"{us:.3f}us"


class EventList(list):
    """A list of FunctionEventAvg (from key_averages) or FunctionEvent, with torch's table()."""

    def __init__(self, items=(), total_us=0.0, with_shapes=False):
        super().__init__(items)
        self._total_us, self._with_shapes = total_us, with_shapes

    def table(self, sort_by=None, row_limit=100, max_name_column_width=55, max_shapes_column_width=80,
              header=None, top_level_events_only=False):
        rows = list(self)
        if sort_by is not None:
            if sort_by not in _SORT_KEYS:
                raise ValueError(f"table: sort_by must be one of {sorted(_SORT_KEYS)}; got {sort_by!r}")
            attr = _SORT_KEYS[sort_by]
            rows.sort(key=lambda r: getattr(r, attr), reverse=True)
        if row_limit is not None and row_limit >= 0:
            rows = rows[:row_limit]
        total = self._total_us or 1.0
        name_w = min(max_name_column_width, max([len(r.key if hasattr(r, "key") else r.name) for r in rows] + [4]))
        cols = [("Name", name_w), ("Self CPU %", 10), ("Self CPU", 11), ("CPU total %", 11), ("CPU total", 11),
                ("CPU time avg", 12), ("# of Calls", 10)]
        if self._with_shapes:
            cols.append(("Input Shapes", max_shapes_column_width))
        line = "-" * (sum(w for _, w in cols) + 2 * (len(cols) - 1))
        out = [] if header is None else [header]
        out += [line, "  ".join(f"{n:>{w}}" if i else f"{n:<{w}}" for i, (n, w) in enumerate(cols)), line]
        for r in rows:
            name = r.key if hasattr(r, "key") else r.name
            count = getattr(r, "count", 1)
            cells = [name[:name_w].ljust(name_w),
                     f"{100 * r.self_cpu_time_total / total:.2f}%".rjust(10), _fmt_us(r.self_cpu_time_total).rjust(11),
                     f"{100 * r.cpu_time_total / total:.2f}%".rjust(11), _fmt_us(r.cpu_time_total).rjust(11),
                     _fmt_us(r.cpu_time_total / max(count, 1)).rjust(12), str(count).rjust(10)]
            if self._with_shapes:
                cells.append(str(r.input_shapes or [])[:max_shapes_column_width].rjust(max_shapes_column_width))
            out.append("  ".join(cells))
        out += [line, f"Self CPU time total: {_fmt_us(self._total_us)}"]
        return "\n".join(out)

    def __str__(self):
        return self.table()

    @property
    def self_cpu_time_total(self):
        return self._total_us


class profile:
    """Records every native op while active (torch.profiler.profile's interface).

    activities, profile_memory, with_stack, with_flops, with_modules, experimental_config
    are accepted for compatibility; record_shapes is always on (shapes cost nothing unless
    grouped by). schedule / on_trace_ready / step() follow torch: with a schedule, steps in
    the warmup and active phases record and on_trace_ready(prof) runs after each cycle."""

    def __init__(self, activities=None, schedule=None, on_trace_ready=None, record_shapes=False,
                 profile_memory=False, with_stack=False, with_flops=False, with_modules=False,
                 experimental_config=None, acc_events=False, use_cuda=None):
        self.activities = activities or [ProfilerActivity.CPU]
        self.schedule, self.on_trace_ready = schedule, on_trace_ready
        self.record_shapes = record_shapes
        self.acc_events = acc_events
        self.step_num = 0
        self._events = []
        self._recording = False
        self._step_range = None

    # ---- recording
    def _start(self):
        if _C._profiler_active():
            raise RuntimeError("profile: another profile is already active; profiles do not nest")
        _C._profiler_start()
        self._recording = True

    def _stop(self):
        raw = _C._profiler_stop()
        self._recording = False
        self._events = _build_events(raw) if not self.acc_events else self._events + _build_events(raw)

    def start(self):
        if self.schedule is None:
            self._start()
        else:
            self._apply(self.schedule(self.step_num), None)
            self._open_step()   # steps are ranges once a schedule (or step()) drives them
        return self

    def stop(self):
        self._close_step()
        if self._recording:
            self._stop()
            if self.schedule is not None and self.on_trace_ready is not None:
                self.on_trace_ready(self)
        elif self.schedule is None:
            pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        if self.schedule is None and self.on_trace_ready is not None:
            self.on_trace_ready(self)
        return False

    def _open_step(self):
        if self._recording:
            self._step_range = _C._profiler_push(f"ProfilerStep#{self.step_num}")

    def _close_step(self):
        if self._step_range is not None:
            _C._profiler_pop(self._step_range)
            self._step_range = None

    def _apply(self, action, prev):
        recording = action in (ProfilerAction.WARMUP, ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE)
        if recording and not self._recording:
            self._start()
        elif not recording and self._recording:
            self._stop()

    def step(self):
        """Mark the end of a training step (drives the schedule)."""
        self._close_step()
        if self.schedule is None:
            self.step_num += 1
            self._open_step()
            return
        prev = self.schedule(self.step_num)
        self.step_num += 1
        cur = self.schedule(self.step_num)
        if prev == ProfilerAction.RECORD_AND_SAVE and self._recording:
            self._stop()
            if self.on_trace_ready is not None:
                self.on_trace_ready(self)
        if prev == ProfilerAction.WARMUP and cur != ProfilerAction.WARMUP and self._recording:
            _C._profiler_stop()   # warm-up steps are recorded and then dropped, as torch does
            self._recording = False
        self._apply(cur, prev)
        self._open_step()

    # ---- results
    def events(self):
        """Every recorded call, in the order they began."""
        return EventList(self._events, _total_self(self._events))

    def key_averages(self, group_by_input_shape=False, group_by_stack_n=0):
        groups = {}
        for ev in self._events:
            if ev.kind == "user" and ev.name.startswith("ProfilerStep#"):
                key = ("ProfilerStep*", None)
            else:
                key = (ev.name, str(ev.input_shapes) if group_by_input_shape else None)
            g = groups.get(key)
            if g is None:
                g = groups[key] = FunctionEventAvg(key[0], ev.input_shapes if group_by_input_shape else None)
            g.add(ev)
        return EventList(groups.values(), _total_self(self._events), with_shapes=group_by_input_shape)

    def export_chrome_trace(self, path):
        """Chrome / Perfetto trace-event JSON: one complete ('X') event per call."""
        pid = os.getpid()
        trace = [{"name": "process_name", "ph": "M", "pid": pid, "args": {"name": "fastdl"}}]
        for ev in self._events:
            args = {"Input Dims": ev.input_shapes, "kind": ev.kind}
            trace.append({"name": ev.name, "cat": "cpu_op" if ev.kind != "user" else "user_annotation", "ph": "X",
                          "ts": ev.start_us, "dur": ev.cpu_time_total, "pid": pid, "tid": ev.thread, "args": args})
        with open(path, "w") as f:
            json.dump({"traceEvents": trace, "displayTimeUnit": "ms"}, f)
        return path


def _build_events(raw):
    if not raw:
        return []
    origin = min(r[2] for r in raw)
    evs = [FunctionEvent(i, *r, origin) for i, r in enumerate(raw)]
    for ev in evs:
        ev.self_cpu_time_total = ev.cpu_time_total
    for ev in evs:
        if ev.parent >= 0:
            p = evs[ev.parent]
            p.children.append(ev)
            p.self_cpu_time_total -= ev.cpu_time_total
    for ev in evs:
        ev.parent = evs[ev.parent] if ev.parent >= 0 else None
        ev.self_cpu_time_total = max(ev.self_cpu_time_total, 0.0)
    return evs


def _total_self(events):
    return sum(ev.self_cpu_time_total for ev in events)


class record_function:
    """A named range in the profile, as a context manager or a decorator; ranges nest."""

    def __init__(self, name, args=None):
        self.name = str(name)
        self._ids = threading.local()

    def __enter__(self):
        stack = getattr(self._ids, "stack", None)
        if stack is None:
            stack = self._ids.stack = []
        stack.append(_C._profiler_push(self.name))
        return self

    def __exit__(self, *exc):
        _C._profiler_pop(self._ids.stack.pop())
        return False

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapped(*a, **k):
            with record_function(self.name):
                return fn(*a, **k)
        return wrapped
