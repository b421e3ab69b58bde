// fastdl._C profiler entry points behind fastdl.profiler (python/fastdl/profiler.py).
#include "core/profiler.h"
#include "python/common.h"

namespace fastdl::py {

void init_profiler(nb::module_& m) {
  m.def("_profiler_start", &profiler::start, "Clear the event buffer and record every native op from now on.");
  m.def("_profiler_active", &profiler::active);
  m.def("_profiler_stop", []() {
    // (name, kind, begin_ns, end_ns, parent, thread, shapes) per event, in the order they began
    std::vector<profiler::Event> ev = profiler::stop();
    nb::list out;
    for (auto& e : ev) {
      nb::list shapes;
      for (auto& s : e.shapes) {
        nb::list d;
        for (int64_t x : s) d.append(x);
        shapes.append(d);
      }
      out.append(nb::make_tuple(e.name, int(e.kind), e.begin_ns, e.end_ns, e.parent, e.thread, shapes));
    }
    return out;
  }, "Stop recording; return the events as (name, kind, begin_ns, end_ns, parent, thread, shapes) tuples.");
  m.def("_profiler_push", [](const std::string& name) { return profiler::begin(profiler::intern(name), 2, {}); },
        "name"_a, "Open a user range (record_function); returns its id, -1 when no profile is active.");
  m.def("_profiler_pop", [](int32_t id) { if (id >= 0) profiler::end(id); }, "id"_a);
}

}  // namespace fastdl::py
