// CPU caching allocator (64-byte aligned). Small blocks come from thread-local free lists
// (no lock); large blocks are kept in a size-ordered cache and reused, because fresh pages
// fault in ten times slower than memory bandwidth.
#pragma once
#include <cstddef>
#include <cstdint>

namespace fastdl {

void* cpu_alloc(size_t nbytes);   // throws OutOfMemory
void cpu_free(void* p, size_t nbytes);
void cpu_empty_cache();
struct CpuAllocStats { size_t cached_bytes, live_bytes, hits, misses, peak_bytes; };
CpuAllocStats cpu_alloc_stats();
void cpu_reset_peak();  // peak_bytes restarts from the bytes live now

}  // namespace fastdl
