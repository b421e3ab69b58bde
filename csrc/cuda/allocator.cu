// Caching device allocator. Requests round up to a size class (512 B steps up to 1 MiB,
// 2 MiB steps above); freed blocks go to a per-device free list of their class and are
// handed out again without cudaMalloc/cudaFree (both synchronise the device). All work runs
// on one stream per device, so a block freed on the host may be reused at once: later
// kernels are ordered after the ones still reading it.
#include <mutex>
#include <unordered_map>
#include <vector>

#include "cuda/common.cuh"

namespace fastdl::cuda {
namespace {

constexpr size_t kSmallStep = 512, kSmallMax = size_t(1) << 20, kLargeStep = size_t(2) << 20;

size_t size_class(size_t n) {
  if (n <= kSmallMax) return (n + kSmallStep - 1) / kSmallStep * kSmallStep;
  return (n + kLargeStep - 1) / kLargeStep * kLargeStep;
}

struct DeviceCache {
  std::unordered_map<size_t, std::vector<void*>> free;  // size class -> cached blocks
  size_t cached_bytes = 0;
};

struct State {
  std::mutex mu;
  std::vector<DeviceCache> devices;
  DeviceCache& at(int device) {
    if (size_t(device) >= devices.size()) devices.resize(size_t(device) + 1);
    return devices[size_t(device)];
  }
};

// Never destroyed: at exit the CUDA runtime may already be gone, so cached blocks are left
// for the driver to reclaim with the context.
State& state() {
  static State* s = new State();
  return *s;
}

// Releases every cached block of one device; caller holds the lock and the device is current.
void release(DeviceCache& c) {
  for (auto& kv : c.free)
    for (void* p : kv.second) cudaFree(p);
  c.free.clear();
  c.cached_bytes = 0;
}

}  // namespace

void* alloc(size_t nbytes, int device) {
  if (nbytes == 0) return nullptr;
  if (device < 0) throw DeviceError(str_cat("cuda: alloc: invalid device ", device));
  // Rounding up to a class would wrap to a tiny block near SIZE_MAX; no device has 2^62 bytes.
  if (nbytes > (size_t(1) << 62))
    throw OutOfMemory(str_cat("cuda: out of memory allocating ", nbytes, " bytes on cuda:", device));
  size_t cls = size_class(nbytes);
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  DeviceCache& c = s.at(device);
  auto it = c.free.find(cls);
  if (it != c.free.end() && !it->second.empty()) {
    void* p = it->second.back();
    it->second.pop_back();
    c.cached_bytes -= cls;
    return p;
  }
  use_device(device);
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, cls);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    release(c);  // give the cache back to the driver and try once more
    e = cudaMalloc(&p, cls);
  }
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    cudaGetLastError();
    throw OutOfMemory(str_cat("cuda: out of memory allocating ", nbytes, " bytes on cuda:", device, " (",
                          free_b >> 20, " MiB free of ", total_b >> 20, " MiB)"));
  }
  check(e, "cudaMalloc");
  return p;
}

void free(void* p, size_t nbytes, int device) {
  if (p == nullptr) return;
  size_t cls = size_class(nbytes);
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  DeviceCache& c = s.at(device);
  c.free[cls].push_back(p);
  c.cached_bytes += cls;
}

void empty_cache() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  int prev = -1;
  for (size_t d = 0; d < s.devices.size(); ++d) {
    if (s.devices[d].free.empty()) continue;
    if (prev < 0) check(cudaGetDevice(&prev), "cudaGetDevice");
    use_device(int(d));
    release(s.devices[d]);
  }
  if (prev >= 0) use_device(prev);  // leave the caller's current device as it was
}

}  // namespace fastdl::cuda
