// csrc/kernels/ holds what the CPU and CUDA backends share: the plain parameter structs an op
// fills and every backend's kernel reads, the enums naming op variants, and the few formulas
// both must compute bit-identically. Nothing here is backend-specific, so csrc/cpu and
// csrc/cuda each include these headers and never one another's files.
// This header: FASTDL_HD marks a helper callable from host code and from CUDA device code.
#pragma once

#if defined(__CUDACC__)
#define FASTDL_HD __host__ __device__ __forceinline__
#else
#define FASTDL_HD inline
#endif
