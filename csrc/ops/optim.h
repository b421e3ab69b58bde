// Fused optimizer steps (one native call per param group). Kernels: cpu/optim_vec.cpp, cuda/optim.cu.
#pragma once
#include <vector>

#include "core/tensor.h"
#include "cpu/optim.h"

namespace fastdl {

// Updates params (and the state buffers) in place, no autograd. grads[i] belongs to
// params[i]; `state` holds up to three lists (slots s0..s2 of OptimTensor), each empty or one
// tensor per parameter (undefined = slot unused for it); steps[i], c0[i], c1[i] as
// OptimTensor::step, c0, c1 (each list empty or one per parameter).
// Every tensor of parameter i must share its dtype (float32/float64), device and shape.
void optim_step(const char* name, OptimKind kind, const OptimHyper& h, const std::vector<Tensor>& params,
                const std::vector<Tensor>& grads, const std::vector<std::vector<Tensor>>& state,
                const std::vector<double>& steps, const std::vector<double>& c0 = {},
                const std::vector<double>& c1 = {});

}  // namespace fastdl
