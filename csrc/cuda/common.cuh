// Shared helpers for the CUDA backend: error checks, the device guard, the default stream,
// launch sizing, dtype traits (storage type <-> compute type) and strided offsets.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/error.h"
#include "cuda/cuda_api.h"

namespace fastdl::cuda {

// Throws DeviceError("cuda: <what> failed: <reason>") when `e` is an error.
void check(cudaError_t e, const char* what);
// Checks the launch that just happened (cudaGetLastError).
void check_launch(const char* what);
// Makes `device` current for this thread (no-op when it already is).
void use_device(int device);
// Multiprocessor count of `device`, cached.
int sm_count(int device);
// Kernels and copies run in order on one stream per device: the legacy default stream.
inline cudaStream_t stream() { return 0; }

__host__ __device__ __forceinline__ int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
__host__ __device__ __forceinline__ int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Device scratch from the caching allocator, handed back (stream-ordered) on scope exit.
struct Scratch {
  void* ptr = nullptr;
  size_t bytes = 0;
  int device = 0;
  Scratch(size_t n, int dev) : bytes(n), device(dev) { if (n) ptr = alloc(n, dev); }
  ~Scratch() { if (ptr) free(ptr, bytes, device); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

constexpr int kThreads = 256;
// Blocks for a grid-stride loop over `work` items: enough to fill the device, no more.
inline unsigned grid_for(int64_t work, int device, int threads = kThreads) {
  int64_t want = (work + threads - 1) / threads;
  int64_t cap = int64_t(sm_count(device)) * (2048 / threads) * 2;
  if (want > cap) want = cap;
  return unsigned(want < 1 ? 1 : want);
}

inline const char* dtype_str(DType t) { return dtype_name(t); }  // "float32", ... (core/dtype.h)

// ---- dtype traits: storage type S, compute type C (arithmetic), float type F (math) ----
template <DType D> struct Traits;
template <> struct Traits<DType::f32> { using S = float; using C = float; using F = float; };
template <> struct Traits<DType::f64> { using S = double; using C = double; using F = double; };
template <> struct Traits<DType::f16> { using S = __half; using C = float; using F = float; };
template <> struct Traits<DType::bf16> { using S = __nv_bfloat16; using C = float; using F = float; };
template <> struct Traits<DType::i32> { using S = int32_t; using C = int32_t; using F = float; };
template <> struct Traits<DType::i64> { using S = int64_t; using C = int64_t; using F = double; };
template <> struct Traits<DType::b8> { using S = uint8_t; using C = int32_t; using F = float; };

// Conversions used by every kernel: load storage into a compute type, store back.
// Half types go through float (as PyTorch's casts do); bool stores are `!= 0`.
template <class To> __device__ __forceinline__ To cvt(float v) { return To(v); }
template <class To> __device__ __forceinline__ To cvt(double v) { return To(v); }
template <class To> __device__ __forceinline__ To cvt(int32_t v) { return To(v); }
template <class To> __device__ __forceinline__ To cvt(int64_t v) { return To(v); }
template <class To> __device__ __forceinline__ To cvt(uint8_t v) { return To(v); }
template <class To> __device__ __forceinline__ To cvt(__half v) { return To(__half2float(v)); }
template <class To> __device__ __forceinline__ To cvt(__nv_bfloat16 v) { return To(__bfloat162float(v)); }

#define FASTDL_CVT_TO_HALF(From)                                                             \
  template <> __device__ __forceinline__ __half cvt<__half>(From v) { return __float2half_rn(float(v)); } \
  template <> __device__ __forceinline__ __nv_bfloat16 cvt<__nv_bfloat16>(From v) {             \
    return __float2bfloat16_rn(float(v));                                                        \
  }                                                                                              \
  template <> __device__ __forceinline__ uint8_t cvt<uint8_t>(From v) { return v != From(0); }
FASTDL_CVT_TO_HALF(float)
FASTDL_CVT_TO_HALF(double)
FASTDL_CVT_TO_HALF(int32_t)
FASTDL_CVT_TO_HALF(int64_t)
#undef FASTDL_CVT_TO_HALF
template <> __device__ __forceinline__ __half cvt<__half>(uint8_t v) { return __float2half_rn(float(v)); }
template <> __device__ __forceinline__ __nv_bfloat16 cvt<__nv_bfloat16>(uint8_t v) {
  return __float2bfloat16_rn(float(v));
}
template <> __device__ __forceinline__ uint8_t cvt<uint8_t>(uint8_t v) { return v != 0; }
template <> __device__ __forceinline__ __half cvt<__half>(__half v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 cvt<__nv_bfloat16>(__nv_bfloat16 v) { return v; }
template <> __device__ __forceinline__ __half cvt<__half>(__nv_bfloat16 v) {
  return __float2half_rn(__bfloat162float(v));
}
template <> __device__ __forceinline__ __nv_bfloat16 cvt<__nv_bfloat16>(__half v) {
  return __float2bfloat16_rn(__half2float(v));
}
template <> __device__ __forceinline__ uint8_t cvt<uint8_t>(__half v) { return __half2float(v) != 0.f; }
template <> __device__ __forceinline__ uint8_t cvt<uint8_t>(__nv_bfloat16 v) {
  return __bfloat162float(v) != 0.f;
}

// ---- strided offsets: linear index -> element offset of each operand ----
// 32-bit division when every extent fits (the common case), 64-bit otherwise.
template <int NOps> struct Offsets { int64_t o[NOps]; };

template <int NOps, class I>
__device__ __forceinline__ Offsets<NOps> offsets_t(const Strided& it, I i) {
  Offsets<NOps> r;
#pragma unroll
  for (int k = 0; k < NOps; ++k) r.o[k] = 0;
  for (int d = it.ndim - 1; d >= 0; --d) {
    I n = I(it.shape[d]);
    I q = i / n, idx = i - q * n;
    i = q;
#pragma unroll
    for (int k = 0; k < NOps; ++k) r.o[k] += int64_t(idx) * it.strides[k][d];
  }
  return r;
}
template <int NOps>
__device__ __forceinline__ Offsets<NOps> offsets(const Strided& it, int64_t i, bool small) {
  return small ? offsets_t<NOps, uint32_t>(it, uint32_t(i)) : offsets_t<NOps, uint64_t>(it, uint64_t(i));
}
inline bool fits32(const Strided& it) { return it.numel < (int64_t(1) << 31); }

// True when operand k walks memory contiguously in loop order (size-1 dims ignored).
inline bool is_contiguous(const Strided& it, int k) {
  int64_t expect = 1;
  for (int d = it.ndim - 1; d >= 0; --d) {
    if (it.shape[d] == 1) continue;
    if (it.strides[k][d] != expect) return false;
    expect *= it.shape[d];
  }
  return true;
}

// Calls f(Traits<D>-tag) for the runtime dtype: `visit(dt, [&](auto tag) { using T = ...; })`.
template <DType D> struct Tag { static constexpr DType value = D; using S = typename Traits<D>::S; };
template <class Fn> void visit(DType dt, Fn&& f) {
  switch (dt) {
    case DType::f32: f(Tag<DType::f32>{}); return;
    case DType::f64: f(Tag<DType::f64>{}); return;
    case DType::f16: f(Tag<DType::f16>{}); return;
    case DType::bf16: f(Tag<DType::bf16>{}); return;
    case DType::i32: f(Tag<DType::i32>{}); return;
    case DType::i64: f(Tag<DType::i64>{}); return;
    case DType::b8: f(Tag<DType::b8>{}); return;
    default: break;
  }
  // uint8 / int8 / int16 kernels are not instantiated for CUDA (compile time): move such
  // tensors to the GPU after a cast to int32 or a float dtype.
  throw TypeError(str_cat("cuda: ", dtype_str(dt), " tensors have no CUDA kernels; cast to int32 or a float dtype first"));
}

}  // namespace fastdl::cuda
