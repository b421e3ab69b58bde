// CPU caching allocator (64-byte aligned). Small blocks come from thread-local free lists
// (no lock); large blocks are kept in a size-ordered cache and reused, because fresh pages
// fault in ten times slower than memory bandwidth.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace fastdl {

void* cpu_alloc(size_t nbytes);   // throws OutOfMemory
void cpu_free(void* p, size_t nbytes);
void cpu_empty_cache();
struct CpuAllocStats { size_t cached_bytes, live_bytes, hits, misses, peak_bytes; };
CpuAllocStats cpu_alloc_stats();
void cpu_reset_peak();  // peak_bytes restarts from the bytes live now

// std::vector storage from the caching allocator: 64-byte aligned (vector loads of a kernel's
// workspace never split cache lines) and reused (no fresh pages to fault in per call).
template <class T>
struct CpuAllocator {
  using value_type = T;
  CpuAllocator() = default;
  template <class U> CpuAllocator(const CpuAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(cpu_alloc(n * sizeof(T))); }
  void deallocate(T* p, size_t n) { cpu_free(p, n * sizeof(T)); }
  template <class U> bool operator==(const CpuAllocator<U>&) const { return true; }
  template <class U> bool operator!=(const CpuAllocator<U>&) const { return false; }
};
template <class T> using cpu_vector = std::vector<T, CpuAllocator<T>>;

}  // namespace fastdl
