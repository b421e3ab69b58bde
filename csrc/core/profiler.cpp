#include "core/profiler.h"

#include <chrono>
#include <mutex>
#include <set>

namespace fastdl::profiler {

std::atomic<bool> g_active{false};

namespace {
std::mutex g_mu;
std::vector<Event> g_events;     // guarded by g_mu
uint64_t g_generation = 0;       // bumped by start(): stale thread stacks are dropped
std::atomic<int32_t> g_next_thread{0};

struct ThreadState {
  int32_t thread = g_next_thread.fetch_add(1);
  uint64_t generation = ~uint64_t(0);
  std::vector<int32_t> open;     // stack of open event indices
};
thread_local ThreadState t_state;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

const char* intern(const std::string& s) {
  static std::mutex mu;
  static std::set<std::string> names;
  std::lock_guard<std::mutex> g(mu);
  return names.insert(s).first->c_str();
}

void start() {
  std::lock_guard<std::mutex> g(g_mu);
  g_events.clear();
  ++g_generation;
  g_active.store(true);
}

std::vector<Event> stop() {
  g_active.store(false);
  std::lock_guard<std::mutex> g(g_mu);
  int64_t t = now_ns();
  for (auto& e : g_events) if (e.end_ns == 0) e.end_ns = t;  // ranges still open at the end
  return std::move(g_events);
}

int32_t begin(const char* name, uint8_t kind, std::vector<std::vector<int64_t>> shapes) {
  ThreadState& ts = t_state;
  std::lock_guard<std::mutex> g(g_mu);
  if (!g_active.load(std::memory_order_relaxed)) return -1;
  if (ts.generation != g_generation) { ts.generation = g_generation; ts.open.clear(); }
  int32_t id = int32_t(g_events.size());
  int32_t parent = ts.open.empty() ? -1 : ts.open.back();
  g_events.push_back(Event{name, now_ns(), 0, parent, ts.thread, kind, std::move(shapes)});
  ts.open.push_back(id);
  return id;
}

void end(int32_t id) {
  int64_t t = now_ns();
  ThreadState& ts = t_state;
  std::lock_guard<std::mutex> g(g_mu);
  if (ts.generation != g_generation || id >= int32_t(g_events.size())) return;  // a newer profile began
  g_events[size_t(id)].end_ns = t;
  // Pop this scope (and any range a user left open inside it).
  while (!ts.open.empty()) {
    int32_t top = ts.open.back();
    ts.open.pop_back();
    if (top == id) break;
  }
}

}  // namespace fastdl::profiler
