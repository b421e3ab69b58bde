// The thread pool behind parallel_for (core/parallel.h): persistent workers, one job at a time,
// chunks claimed from a shared ticket.
//
// A job is posted with a generation number g; the ticket holds (g, next chunk) in one 64-bit
// atomic, so a worker that wakes late (after its job finished, or during a later one) fails to
// claim and never touches a job it does not own. The caller claims chunks too and then waits
// only until every chunk has run: `done` counts finished chunks, and a chunk is claimed before
// it runs, so the job's lambda (on the caller's stack) outlives every use. Workers spin briefly
// for the next job (successive ops follow each other within microseconds), then sleep on a
// condition variable. A team job (parallel_team: the GEMM's threads, which meet at barriers)
// gives each thread one chunk and waits for the pool rather than running inline. A second
// thread calling parallel_for while a job runs gets the job inline; a forked child rebuilds the
// pool on first use.
//
// Waking after idle. On a VM whose other cores are idle (halted vCPUs look preempted to the
// guest's scheduler), a sleeping worker woken by the caller is queued on the caller's own core:
// it either waited there until the caller's op ended, or took turns with it, while the other core
// idled (a worker queued on a halted vCPU instead starts ~260-380 us late). So: the caller yields
// once after waking sleepers, so that a worker queued behind it runs at once; a worker that finds
// itself on the caller's core moves off it before taking chunks; and a worker never spins on the
// caller's core. Zen 3 VM (Firecracker), 2 threads, after 10 ms idle, median of 75: F.linear
// 128 x 784 -> 256 1.06-1.21 ms -> 0.64-0.68 ms (one thread: 0.90-1.02 ms), 512^3 matmul 3.05-3.20
// -> 1.67-1.80 ms (one thread 3.04 ms), 256^3 0.71-0.75 -> 0.49-0.51 ms; warm timings unchanged.
#include "core/parallel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <pthread.h>
#ifdef __linux__
#include <sched.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "core/cpu_info.h"

namespace fastdl {

namespace {

std::atomic<int> g_threads{0};
thread_local bool t_in_pool = false;  // a pool worker, or a caller running its job's chunks

inline int current_cpu() {
#ifdef __linux__
  return sched_getcpu();
#else
  return -1;
#endif
}
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// How long an idle worker spins before it sleeps, and a waiting caller before it naps: 300 us
// of clock time (checked every kClockRounds pauses; a pause takes ~10 ns on the Xeon VM where
// 10000 pauses were tuned and ~33 ns on Zen 3). Shorter spins let workers fall asleep between
// the ops of a training step, and every op then waited for a wake-up: 20 us against 100 us,
// GCN g^T X 0.95 -> 1.2 ms (Xeon); 100 us against 330 us, `fastdl bench models` mlp step
// 1.52-1.56x against 1.59-1.79x PyTorch, gcn 1.97-2.11x against 1.97-2.25x (Zen 3, alternated
// three times; char-gpt and lenet level). FASTDL_SPIN_US sets it (0: sleep at once).
using Clock = std::chrono::steady_clock;
constexpr int kClockRounds = 64;
Clock::duration spin_time() {
  static const Clock::duration t = [] {
    double us = 300;
    const char* e = std::getenv("FASTDL_SPIN_US");
    char* end = nullptr;
    if (e && *e) {
      const double v = std::strtod(e, &end);
      if (end != e && *end == 0 && v >= 0 && v < 1e9) us = v;  // else the default
    }
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::micro>(us));
  }();
  return t;
}

class Pool {
 public:
  // Runs every chunk of j; false (nothing run) when another thread's job holds the pool. A team
  // job (one chunk per thread, its members meet at barriers) waits for the pool instead; the
  // caller runs member 0 and each worker claims at most one of the others.
  bool run(const detail::ChunkJob& j, bool team = false) {
    std::unique_lock<std::mutex> busy(busy_, std::defer_lock);
    if (team) busy.lock();
    else if (!busy.try_lock()) return false;
    grow(int(team ? j.nchunks - 1 : std::min<int64_t>(get_num_threads() - 1, j.nchunks - 1)));
    uint32_t g;
    {
      std::lock_guard<std::mutex> lk(mu_);
      job_ = j;
      team_ = team;
      caller_cpu_.store(current_cpu(), std::memory_order_relaxed);  // before the job is visible
      g = posted_.load(std::memory_order_relaxed) + 1;
      done_.store(0, std::memory_order_relaxed);
      err_ = nullptr;
      ticket_.store(uint64_t(g) << 32 | (team ? 1 : 0), std::memory_order_release);
      posted_.store(g, std::memory_order_release);
    }
    cv_.notify_all();
    if (sleepers_.load(std::memory_order_relaxed) > 0) std::this_thread::yield();
    t_in_pool = true;
    if (team) run_chunk(j, 0);  // the caller is member 0 (the same rows on the same core each call)
    else work(j, g, false);
    for (int s = 0; done_.load(std::memory_order_acquire) < j.nchunks; ++s) detail::spin_pause(s);
    t_in_pool = false;
    if (err_) std::rethrow_exception(err_);
    return true;
  }

 private:
  void run_chunk(const detail::ChunkJob& j, int64_t i) {
    const int64_t b = j.begin + i * j.chunk, e = b + j.chunk < j.end ? b + j.chunk : j.end;
    try {
      j.fn(j.ctx, b, e);
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu_);
      if (!err_) err_ = std::current_exception();
    }
    done_.fetch_add(1, std::memory_order_acq_rel);
  }

  // Claims chunks of generation g until none is left (one only, for a team).
  void work(const detail::ChunkJob& j, uint32_t g, bool one) {
    uint64_t t = ticket_.load(std::memory_order_acquire);
    for (bool ran = false; !(one && ran);) {
      if (uint32_t(t >> 32) != g) return;
      const int64_t i = int64_t(t & 0xffffffffu);
      if (i >= j.nchunks) return;
      if (!ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel)) continue;
      run_chunk(j, i);
      ran = true;
      t = ticket_.load(std::memory_order_acquire);
    }
  }

  // seen: the generation posted before the worker was made (the job that made it is the next
  // one; a team job waits for this worker to take its share).
  void worker(uint32_t seen) {
    t_in_pool = true;
    for (;;) {
      const Clock::time_point until = Clock::now() + spin_time();
      // Spin until work is posted, the deadline passes, or this worker finds itself on the
      // caller's core (spinning there would take the core the caller runs on).
      for (int s = 0; posted_.load(std::memory_order_acquire) == seen; ++s) {
        if (s % kClockRounds == 0 && (on_caller_cpu() || Clock::now() >= until)) break;
        cpu_relax();
      }
      detail::ChunkJob j;
      bool team;
      {
        std::unique_lock<std::mutex> lk(mu_);
        sleepers_.fetch_add(1, std::memory_order_relaxed);
        cv_.wait(lk, [&] { return posted_.load(std::memory_order_relaxed) != seen; });
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
        seen = posted_.load(std::memory_order_relaxed);
        j = job_;
        team = team_;
      }
      if (on_caller_cpu()) leave_caller_cpu();
      work(j, seen, team);
    }
  }

  // Workers are created on demand and live as long as the process (detached: nothing to join
  // at interpreter exit).
  void grow(int n) {
    while (nworkers_ < n) {
      std::thread([this, seen = posted_.load(std::memory_order_acquire)] { worker(seen); }).detach();
      ++nworkers_;
    }
  }

  std::mutex busy_;  // held by the caller whose job runs
  std::mutex mu_;    // job_, err_, and the condition variable
  std::condition_variable cv_;
  detail::ChunkJob job_{};
  bool team_ = false;  // job_ is a team's (under mu_)
  std::exception_ptr err_;
  std::atomic<uint32_t> posted_{0};  // generation of the latest job
  std::atomic<uint64_t> ticket_{0};  // generation << 32 | next chunk
  std::atomic<int64_t> done_{0};     // chunks finished in the current generation
  std::atomic<int> caller_cpu_{-1};  // the CPU the latest job was posted from
  std::atomic<int> sleepers_{0};     // workers waiting on cv_ (or about to)
  // A worker on its caller's core (wherever the scheduler queued it) moves to another of the
  // process's CPUs: a moment's affinity without that core, then the process's own again.
  void leave_caller_cpu() const {
#ifdef __linux__
    cpu_set_t all, other;
    const int c = caller_cpu_.load(std::memory_order_relaxed);
    if (c < 0 || c >= CPU_SETSIZE || sched_getaffinity(0, sizeof all, &all) != 0 || !CPU_ISSET(c, &all) ||
        CPU_COUNT(&all) < 2)
      return;
    other = all;
    CPU_CLR(c, &other);
    if (sched_setaffinity(0, sizeof other, &other) == 0) sched_setaffinity(0, sizeof all, &all);
#endif
  }
  bool on_caller_cpu() const {
    const int c = current_cpu();
    return c >= 0 && c == caller_cpu_.load(std::memory_order_relaxed);
  }
  int nworkers_ = 0;                 // under busy_
};

std::atomic<Pool*> g_pool{nullptr};

// The child of a fork has none of the pool's workers, and a mutex may have been held at the
// fork: it starts a new pool (the old one is left as it was).
const int g_atfork = pthread_atfork(nullptr, nullptr, [] { g_pool.store(nullptr); });

Pool& pool() {
  Pool* p = g_pool.load(std::memory_order_acquire);
  if (!p) {
    Pool* fresh = new Pool;  // never freed: workers may run until the process ends
    if (g_pool.compare_exchange_strong(p, fresh)) p = fresh;
    else delete fresh;
  }
  return *p;
}

}  // namespace

namespace detail {
void run_chunks(const ChunkJob& job) {
  if (job.nchunks <= 1 || !pool().run(job)) job.fn(job.ctx, job.begin, job.end);
}
void run_team(const ChunkJob& job) { pool().run(job, true); }
// Waiting for another thread: spin a while, then sleep in short naps, so that a thread holding
// a chunk or a team member but no core (another process's threads have it) can have this core.
// (Naps and yields timed the same in the GCN step interleaved with PyTorch's; naps leave the
// core idle for the scheduler instead of busy.)
void spin_pause(int round) {
  thread_local Clock::time_point until;
  thread_local bool nap = false;
  if (round == 0) {
    until = Clock::now() + spin_time();
    nap = spin_time() == Clock::duration::zero();
  } else if (!nap && round % kClockRounds == 0) {
    nap = Clock::now() >= until;
  }
  if (nap) std::this_thread::sleep_for(std::chrono::microseconds(20));
  else cpu_relax();
}
}  // namespace detail

int available_threads(int want) {
  return in_parallel_region() ? 1 : std::max(1, std::min(want, get_num_threads()));
}

// The thread count until set_num_threads: FASTDL_NUM_THREADS, else OMP_NUM_THREADS (its first
// value, as PyTorch reads it), else one per core. A value that is not a positive integer is
// ignored.
static int default_threads() {
  for (const char* name : {"FASTDL_NUM_THREADS", "OMP_NUM_THREADS"}) {
    const char* e = std::getenv(name);
    if (!e || !*e) continue;
    char* end = nullptr;
    const long v = std::strtol(e, &end, 10);
    if (end != e && (*end == 0 || *end == ',') && v > 0) return int(std::min<long>(v, 1024));
  }
  return cpu_info().cores;
}

int get_num_threads() {
  int n = g_threads.load(std::memory_order_relaxed);
  if (n == 0) {
    n = default_threads();
    g_threads.store(n, std::memory_order_relaxed);
  }
  return n;
}
void set_num_threads(int n) {
  g_threads.store(n < 1 ? 1 : n);
#ifdef _OPENMP
  omp_set_num_threads(n < 1 ? 1 : n);
#endif
}
bool in_parallel_region() {
#ifdef _OPENMP
  if (omp_in_parallel()) return true;
#endif
  return t_in_pool;
}

}  // namespace fastdl
