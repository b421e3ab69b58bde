// The op profiler behind fastdl.profiler: while a profile is active, every native op and
// every backward node opens a Scope that records (name, input shapes, begin, end, parent).
// While none is active a Scope costs one relaxed load and a branch.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace fastdl::profiler {

extern std::atomic<bool> g_active;
inline bool active() { return g_active.load(std::memory_order_relaxed); }

struct Event {
  const char* name;               // static or interned: outlives the profile
  int64_t begin_ns, end_ns;       // steady clock; end_ns 0 while the scope is open
  int32_t parent;                 // index of the enclosing open event on this thread, -1 at top
  int32_t thread;                 // small per-thread number
  uint8_t kind;                   // 0 op, 1 backward node, 2 user range (record_function)
  std::vector<std::vector<int64_t>> shapes;  // input shapes (an undefined tensor: empty)
};

void start();                     // clears the buffer and activates
std::vector<Event> stop();        // deactivates and hands back every event
const char* intern(const std::string& s);

// Open/close an event; begin returns its index (or -1 when inactive).
int32_t begin(const char* name, uint8_t kind, std::vector<std::vector<int64_t>> shapes);
void end(int32_t id);

inline void add_shape(std::vector<std::vector<int64_t>>& s, const Tensor& t) {
  if (t.defined()) s.emplace_back(t.shape().begin(), t.shape().end()); else s.emplace_back();
}
inline void add_shape(std::vector<std::vector<int64_t>>& s, const std::vector<Tensor>& ts) {
  for (auto& t : ts) add_shape(s, t);
}
template <class T> inline void add_shape(std::vector<std::vector<int64_t>>&, const T&) {}

class Scope {
 public:
  template <class... T>
  explicit Scope(const char* name, uint8_t kind, const T&... inputs) {
    if (!active()) return;
    std::vector<std::vector<int64_t>> s;
    (add_shape(s, inputs), ...);
    id_ = begin(name, kind, std::move(s));
  }
  ~Scope() { if (id_ >= 0) end(id_); }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  int32_t id_ = -1;
};

}  // namespace fastdl::profiler

// First line of an op: FASTDL_PROFILE("conv2d", input, weight, bias);
#define FASTDL_PROFILE(name, ...) ::fastdl::profiler::Scope fastdl_profile_scope_(name, 0, ##__VA_ARGS__)
