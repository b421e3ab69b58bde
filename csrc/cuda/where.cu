// where(cond, a, b) over contiguous, already-broadcast operands: a select, so NaN and inf
// in the unselected operand never leak (an arithmetic blend would turn 0 * inf into NaN).
#include "cuda/common.cuh"

namespace fastdl::cuda {
namespace {

template <class T>
__global__ void where_kernel(T* __restrict out, const uint8_t* __restrict c, const T* __restrict a,
                             const T* __restrict b, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = c[i] ? a[i] : b[i];
}

}  // namespace

void where(size_t elsize, void* out, const void* cond, const void* a, const void* b, int64_t n, int device) {
  if (n <= 0) return;
  use_device(device);
  const unsigned grid = grid_for(n, device);
  const auto* c = static_cast<const uint8_t*>(cond);
  switch (elsize) {
    case 1: where_kernel<<<grid, kThreads, 0, stream()>>>(static_cast<uint8_t*>(out), c, static_cast<const uint8_t*>(a), static_cast<const uint8_t*>(b), n); break;
    case 2: where_kernel<<<grid, kThreads, 0, stream()>>>(static_cast<uint16_t*>(out), c, static_cast<const uint16_t*>(a), static_cast<const uint16_t*>(b), n); break;
    case 4: where_kernel<<<grid, kThreads, 0, stream()>>>(static_cast<uint32_t*>(out), c, static_cast<const uint32_t*>(a), static_cast<const uint32_t*>(b), n); break;
    default: where_kernel<<<grid, kThreads, 0, stream()>>>(static_cast<uint64_t*>(out), c, static_cast<const uint64_t*>(a), static_cast<const uint64_t*>(b), n); break;
  }
  check_launch("where");
}

}  // namespace fastdl::cuda
