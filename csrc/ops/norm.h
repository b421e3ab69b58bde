// Batch and group normalisation ops (issue 9) over (N, C, *) inputs: checks naming the op, the
// argument and the shapes, dispatch to the fused kernels of cpu/norm.h, and backward nodes.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace fastdl {

// running_mean / running_var / weight / bias may be undefined; in training the running stats
// (when given) are updated in place with momentum and the unbiased batch variance.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps);
Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight, const Tensor& bias, double eps);

// Backward of y = xh w + b, xh = (x - mean) rsqrt(var + eps) over dims, as differentiable ops
// (create_graph); gxh = g w. Returns {gx, xh}.
std::pair<Tensor, Tensor> normalize_backward_graph(const Tensor& x, const Tensor& gxh, const std::vector<int64_t>& dims,
                                                   double eps);

}  // namespace fastdl
