#include "core/allocator.h"

#include <sys/mman.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>

#include "core/error.h"

namespace fastdl {
namespace {

constexpr size_t kAlign = 64;
constexpr size_t kSmallMax = 1 << 16;     // thread-local bins up to 64 KiB
constexpr size_t kHugeMin = 1 << 21;      // ask for transparent huge pages from 2 MiB
constexpr int kBinDepth = 32;
constexpr size_t kCacheCap = size_t(4) << 30;

// Under AddressSanitizer every block is its exact size and freed at once, so an overrun past
// the asked size or a use after free is reported instead of landing in a cached block.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kExactBlocks = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kExactBlocks = true;
#else
constexpr bool kExactBlocks = false;
#endif
#else
constexpr bool kExactBlocks = false;
#endif

std::atomic<size_t> g_live{0}, g_peak{0}, g_hits{0}, g_misses{0};

// Round small sizes to 4 classes per power of two, so a bin holds blocks of one size.
size_t small_class(size_t n, int* bin) {
  if (n <= 64) { *bin = 0; return 64; }
  int p = 63 - __builtin_clzll(n - 1);  // 2^p < n <= 2^(p+1), p >= 6
  size_t q = (size_t(1) << p) / 4;
  size_t m = (n - (size_t(1) << p) + q - 1) / q;  // 1..4
  *bin = 1 + (p - 6) * 4 + int(m - 1);
  return (size_t(1) << p) + m * q;
}
constexpr int kNumBins = 1 + 10 * 4 + 4;

void* raw_alloc(size_t sz) {
  void* p = nullptr;
  size_t al = sz >= kHugeMin ? kHugeMin : kAlign;
  if (posix_memalign(&p, al, sz) != 0 || !p) {
    cpu_empty_cache();
    if (posix_memalign(&p, al, sz) != 0 || !p)
      throw OutOfMemory(str_cat("cpu allocator: out of memory allocating ", sz, " bytes"));
  }
  if (sz >= kHugeMin) madvise(p, sz, MADV_HUGEPAGE);
  return p;
}

struct Bins {
  void* slots[kNumBins][kBinDepth];
  int count[kNumBins] = {};
  ~Bins() { for (int b = 0; b < kNumBins; ++b) for (int i = 0; i < count[b]; ++i) std::free(slots[b][i]); }
};
thread_local Bins t_bins;

struct LargeCache {
  std::mutex mu;
  std::multimap<size_t, void*> blocks;
  size_t bytes = 0;
  void clear() {
    std::lock_guard<std::mutex> g(mu);
    for (auto& kv : blocks) std::free(kv.second);
    blocks.clear(); bytes = 0;
  }
};
LargeCache& large() { static LargeCache* c = new LargeCache(); return *c; }

size_t large_class(size_t n) { return (n + 4095) & ~size_t(4095); }

}  // namespace

void* cpu_alloc(size_t n) {
  if (n == 0) n = 1;
  const size_t live = g_live.fetch_add(n, std::memory_order_relaxed) + n;
  for (size_t pk = g_peak.load(std::memory_order_relaxed); live > pk && !g_peak.compare_exchange_weak(pk, live);) {}
  if (kExactBlocks) { g_misses++; return raw_alloc(n); }
  if (n <= kSmallMax) {
    int bin; size_t sz = small_class(n, &bin);
    Bins& b = t_bins;
    if (b.count[bin]) { g_hits++; return b.slots[bin][--b.count[bin]]; }
    g_misses++;
    return raw_alloc(sz);
  }
  size_t sz = large_class(n);
  LargeCache& c = large();
  {
    std::lock_guard<std::mutex> g(c.mu);
    auto it = c.blocks.lower_bound(sz);
    if (it != c.blocks.end() && it->first <= sz + sz / 4) {
      void* p = it->second;
      c.bytes -= it->first;
      c.blocks.erase(it);
      // The block may be up to 25% larger than asked; on free it is filed under the
      // smaller class, which stays safe (it only ever serves requests that fit).
      g_hits++;
      return p;
    }
  }
  g_misses++;
  return raw_alloc(sz);
}

void cpu_free(void* p, size_t n) {
  if (!p) return;
  if (n == 0) n = 1;
  g_live -= n;
  if (kExactBlocks) { std::free(p); return; }
  if (n <= kSmallMax) {
    int bin; small_class(n, &bin);
    Bins& b = t_bins;
    if (b.count[bin] < kBinDepth) { b.slots[bin][b.count[bin]++] = p; return; }
    std::free(p);
    return;
  }
  size_t sz = large_class(n);
  LargeCache& c = large();
  std::lock_guard<std::mutex> g(c.mu);
  if (c.bytes + sz > kCacheCap) { std::free(p); return; }
  c.blocks.emplace(sz, p);
  c.bytes += sz;
}

void cpu_empty_cache() { large().clear(); }

CpuAllocStats cpu_alloc_stats() {
  return {large().bytes, g_live.load(), g_hits.load(), g_misses.load(), g_peak.load()};
}

void cpu_reset_peak() { g_peak.store(g_live.load()); }

}  // namespace fastdl
