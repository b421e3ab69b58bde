// The library's thread pool. parallel_for splits [begin, end) into at most num_threads
// contiguous chunks; below `grain` elements per thread it runs inline, so small ops never wake
// the pool.
//
// Chunks are claimed, not assigned: the calling thread starts on them at once and takes every
// chunk no worker has claimed yet, and it waits only for chunks a worker is running. A worker the
// OS has not scheduled (a loaded machine, more processes than cores) therefore costs nothing; a
// fork-join that waits for every thread to arrive (OpenMP's) cost milliseconds per call there,
// which made small-op workloads such as token-by-token generation 10-200x slower on two threads
// than on one.
//
// parallel_team runs a kernel whose threads meet at barriers (the blocked GEMM) on the same
// workers, as a team: each of nt threads runs one member, so it waits for every member to start.
// One set of threads for both: a GEMM's team used to be an OpenMP team, whose threads the pool's
// workers then had to displace, and the op after each GEMM found the pool asleep (Xeon, 2
// threads: linear 768 x 128 -> 512 then gelu, 406 us apart, ran 489 us in sequence).
#pragma once
#include <atomic>
#include <cstdint>

namespace fastdl {

int get_num_threads();
void set_num_threads(int n);
bool in_parallel_region();
namespace detail {
// One parallel_for call: fn(ctx, b, e) over chunk i = [begin + i * chunk, min(end, ... + chunk)).
struct ChunkJob {
  void (*fn)(const void* ctx, int64_t b, int64_t e);
  const void* ctx;
  int64_t begin, end, chunk, nchunks;
};
void run_chunks(const ChunkJob& job);  // returns when every chunk has run; rethrows the first error
void run_team(const ChunkJob& job);    // one chunk per thread, nchunks threads at once
void spin_pause(int round);            // round 0 starts a wait: pauses for the spin time, then short sleeps
}  // namespace detail

// The threads a kernel may use now (for a parallel_team or a split of its own): want, capped
// at the thread count; 1 inside a parallel region, where the pool is busy.
int available_threads(int want);

// A barrier for the members of one parallel_team call (made by the caller, shared by all).
class TeamBarrier {
 public:
  explicit TeamBarrier(int n) : n_(n) {}
  void wait() {
    if (n_ <= 1) return;
    const int phase = phase_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
      arrived_.store(0, std::memory_order_relaxed);
      phase_.store(phase + 1, std::memory_order_release);
      return;
    }
    for (int r = 0; phase_.load(std::memory_order_acquire) == phase; ++r) detail::spin_pause(r);
  }

 private:
  const int n_;
  std::atomic<int> arrived_{0}, phase_{0};
};

// f(t) for t in [0, nt) on nt threads at once (the caller runs t = 0); nt from available_threads.
template <class F>
void parallel_team(int nt, const F& f) {
  if (nt <= 1) { f(0); return; }
  const detail::ChunkJob job{[](const void* c, int64_t b, int64_t) { (*static_cast<const F*>(c))(int(b)); }, &f,
                             0, nt, 1, nt};
  detail::run_team(job);
}

template <class F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const F& f) {
  int64_t n = end - begin;
  if (n <= 0) return;
  int nt = get_num_threads();
  if (grain < 1) grain = 1;
  int64_t want = n / grain;
  if (want < nt) nt = int(want < 1 ? 1 : want);
  if (nt <= 1 || in_parallel_region()) { f(begin, end); return; }
  const int64_t chunk = (n + nt - 1) / nt;
  const detail::ChunkJob job{[](const void* c, int64_t b, int64_t e) { (*static_cast<const F*>(c))(b, e); }, &f,
                             begin, end, chunk, (n + chunk - 1) / chunk};
  detail::run_chunks(job);
}

}  // namespace fastdl
