// Helpers shared by the op files: run a CPU elementwise kernel over an N-d strided loop, or
// hand the same loop to the CUDA backend.
#pragma once
#include "core/tensor.h"
#include "cpu/elementwise.h"
#include "cpu/loops.h"
#include "cuda/cuda_api.h"

namespace fastdl {

// Strides of `t` seen through broadcasting to `shape` (0 on broadcast dims).
inline Dims bstrides(const Tensor& t, const Dims& shape) {
  Dims s(shape.size(), 0);
  int off = shape.size() - t.ndim();
  for (int i = 0; i < t.ndim(); ++i)
    s[off + i] = (t.shape()[i] == 1 && shape[off + i] != 1) ? 0 : t.strides()[i];
  return s;
}

inline cuda::Strided to_cuda_loop(const cpu::Loop& L) {
  cuda::Strided s;
  FASTDL_CHECK(L.ndim <= cuda::kMaxDims, ValueError, "cuda: at most ", cuda::kMaxDims, " non-mergeable dims are supported");
  s.ndim = L.ndim;
  s.numel = L.numel;
  for (int d = 0; d < L.ndim; ++d) {
    s.shape[d] = L.shape[d];
    for (int k = 0; k < L.nops && k < 3; ++k) s.strides[k][d] = L.strides[k][d];
  }
  return s;
}

void check_same_device(const Tensor& a, const Tensor& b, const char* op);
const char* op_name(BinaryOp op);
const char* op_name(UnaryOp op);

}  // namespace fastdl
