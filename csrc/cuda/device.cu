// Device queries, the device guard, synchronisation, host/device copies, error checking.
#include <mutex>
#include <string>

#include "cuda/common.cuh"

namespace fastdl::cuda {

void check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  cudaGetLastError();  // clear the non-sticky error so the next call starts clean
  throw DeviceError(std::string("cuda: ") + what + " failed: " + cudaGetErrorString(e));
}

void check_launch(const char* what) { check(cudaGetLastError(), what); }

namespace {
// Probed once: with no driver (or no device) cudaGetDeviceCount fails and we report 0.
int probe_count() {
  static int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    return n;
  }();
  return count;
}
constexpr int kMaxDevices = 64;
}  // namespace

bool is_available() { return probe_count() > 0; }
int device_count() { return probe_count(); }

void set_device(int device) {
  int n = probe_count();
  if (device < 0 || device >= n)
    throw DeviceError(str_cat("cuda: set_device: device ", device, " out of range; ", n, " device(s) present"));
  check(cudaSetDevice(device), "cudaSetDevice");
}

void use_device(int device) {
  int cur = -1;
  check(cudaGetDevice(&cur), "cudaGetDevice");
  if (cur != device) check(cudaSetDevice(device), "cudaSetDevice");
}

int sm_count(int device) {
  static int cache[kMaxDevices] = {};
  if (device < 0 || device >= kMaxDevices) return 132;
  int n = __atomic_load_n(&cache[device], __ATOMIC_RELAXED);
  if (n > 0) return n;
  check(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute");
  __atomic_store_n(&cache[device], n, __ATOMIC_RELAXED);
  return n;
}

void synchronize(int device) {
  use_device(device);
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}

void copy_h2d(void* dst, const void* src, size_t nbytes, int device) {
  if (nbytes == 0) return;
  use_device(device);
  // Synchronous: the host buffer may be freed as soon as we return.
  check(cudaMemcpy(dst, src, nbytes, cudaMemcpyHostToDevice), "cudaMemcpy (h2d)");
}

void copy_d2h(void* dst, const void* src, size_t nbytes, int device) {
  if (nbytes == 0) return;
  use_device(device);
  check(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, stream()), "cudaMemcpyAsync (d2h)");
  check(cudaStreamSynchronize(stream()), "cudaStreamSynchronize (d2h)");
}

void copy_d2d(void* dst, const void* src, size_t nbytes, int device) {
  if (nbytes == 0) return;
  use_device(device);
  // Stream-ordered like every kernel; cudaMemcpyDefault also covers peer copies.
  check(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDefault, stream()), "cudaMemcpyAsync (d2d)");
}

}  // namespace fastdl::cuda
