// Pooling ops (issue 9): checks naming the op, the argument and the shapes, output shapes,
// dispatch to the kernels of cpu/pool.h, and backward nodes. Inputs are (N, C, H, W) or (C, H, W).
#pragma once
#include <optional>
#include <vector>

#include "core/tensor.h"
#include "ops/ops.h"

namespace fastdl {

// {out, indices}: indices (same shape as out, int64) are flat h * W + w within each plane.
// kernel_size / stride / padding / dilation: 1 or 2 values; an empty stride means kernel_size.
std::vector<Tensor> max_pool2d(const Tensor& x, const IntList& kernel_size, const IntList& stride,
                               const IntList& padding, const IntList& dilation, bool ceil_mode);
Tensor avg_pool2d(const Tensor& x, const IntList& kernel_size, const IntList& stride, const IntList& padding,
                  bool ceil_mode, bool count_include_pad, std::optional<int64_t> divisor_override);
// output_size: 1 or 2 values; a negative value keeps the input's size (PyTorch's None).
Tensor adaptive_avg_pool2d(const Tensor& x, const IntList& output_size);
std::vector<Tensor> adaptive_max_pool2d(const Tensor& x, const IntList& output_size);

}  // namespace fastdl
